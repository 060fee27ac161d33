//! The SQL of one write batch: every change of a commit as one upsert and one delete per
//! column family, its stamp and its announcement, sent in one round trip.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Cf, StampSlot, WriteBatch};

/// Returns the SQL that applies `batch` (the last change of each key wins) and commits: one
/// upsert and one delete per column family, as literals (hex bytea), so that all of it is one
/// round trip.
pub(super) fn batch_sql(schema: &str, batch: WriteBatch, begin: bool) -> String {
    let announce = crate::storage::announce::payload(batch.changed(), batch.scope());
    let (ops, slots) = batch.into_ops_and_slots();
    let slots_of = |op: usize, in_key: bool| -> Vec<&StampSlot> {
        (slots.iter())
            .filter(|s| s.op == op && s.in_key == in_key)
            .collect()
    };
    let mut last: BTreeMap<(Cf, Vec<u8>), (String, Option<String>)> = BTreeMap::new();
    for (i, (cf, key, value)) in ops.into_iter().enumerate() {
        let key_sql = super::clock::stamped_bytes(&key, &slots_of(i, true));
        let value_sql = value.map(|v| super::clock::stamped_bytes(&v, &slots_of(i, false)));
        last.insert((cf, key), (key_sql, value_sql));
    }
    let mut sql = String::new();
    if begin {
        sql.push_str("BEGIN ISOLATION LEVEL SERIALIZABLE;");
    }
    if !slots.is_empty() {
        sql.push_str(&super::clock::stamp_sql(schema));
    }
    for cf in Cf::ALL {
        let mine = last
            .range((cf, Vec::new())..)
            .take_while(|((c, _), _)| *c == cf);
        let (mut puts, mut deletes) = (String::new(), String::new());
        for (_, (key, value)) in mine {
            match value {
                Some(v) => {
                    let sep = if puts.is_empty() { "" } else { "," };
                    let _ = write!(puts, "{sep}({key},{v})");
                }
                None => {
                    let sep = if deletes.is_empty() { "" } else { "," };
                    let _ = write!(deletes, "{sep}{key}");
                }
            }
        }
        let t = super::table(schema, cf);
        if !puts.is_empty() {
            let _ = write!(
                sql,
                "INSERT INTO {t} (k, v) VALUES {puts} ON CONFLICT (k) DO UPDATE SET v = excluded.v;"
            );
        }
        if !deletes.is_empty() {
            let _ = write!(sql, "DELETE FROM {t} WHERE k IN ({deletes});");
        }
    }
    // Every daemon of the store LISTENs: they drop what they keep of these nodes when this
    // commits (PostgreSQL delivers a NOTIFY only with its transaction's commit).
    if let Some(payload) = announce {
        let _ = write!(
            sql,
            "NOTIFY {}, '{}';",
            super::channel(schema),
            payload.replace('\'', "''")
        );
    }
    sql.push_str("COMMIT;");
    sql
}
