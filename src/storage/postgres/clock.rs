//! The commit clock of a shared store, kept by the PostgreSQL server: the statements that
//! stamp a commit and settle the clock, and the SQL of batch keys and values that carry a
//! commit's stamp. Host clocks never enter it.

use crate::storage::engine::StampSlot;

/// `i64::MIN` as a SQL bigint (the literal itself would overflow before its negation).
const MIN_BIGINT: &str = "(-9223372036854775807 - 1)";

/// The server's clock in microseconds.
const CLOCK_US: &str = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

/// Returns the advisory lock key of the store in `schema`: commits hold it shared from their
/// stamp to their end, a settle holds it alone (so it waits out the commits in flight).
fn lock_key(schema: &str) -> i64 {
    let hash = blake3::hash(format!("cronusfs clock {schema}").as_bytes());
    i64::from_be_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Returns the statements that give the commit in progress its stamp (`cronusfs.c`, and
/// inverted `cronusfs.d`, as hex settings of the transaction): after the store's horizon and
/// the server's clock now, tiebroken by a sequence of the store, so that no two commits ever
/// share a stamp (not even when the server's clock steps back below the horizon, where every
/// commit's time is the horizon's next microsecond).
pub(super) fn stamp_sql(schema: &str) -> String {
    format!(
        "SELECT pg_advisory_xact_lock_shared({key});\
         SELECT set_config('cronusfs.c', encode(int8send(m # {MIN_BIGINT}) || int4send(p), 'hex'), true), \
         set_config('cronusfs.d', encode(int8send(~(m # {MIN_BIGINT})) || int4send(~p), 'hex'), true) \
         FROM (SELECT greatest({CLOCK_US}, (SELECT last_value FROM {schema}.horizon) + 1) AS m, \
         ((nextval('{schema}.tiebreak') % 4294967296) - 2147483648)::int4 AS p) AS s;",
        key = lock_key(schema)
    )
}

/// Returns the statement that settles the clock: once every commit holding the lock shared
/// has ended, the horizon becomes the server's clock now (never less than it was), and every
/// later commit is stamped after it. Its one row is the horizon (µs).
pub(super) fn settle_sql(schema: &str) -> String {
    format!(
        "SELECT setval('{schema}.horizon', greatest((SELECT last_value FROM {schema}.horizon), {CLOCK_US})) \
         FROM (SELECT pg_advisory_xact_lock({key})) AS l",
        key = lock_key(schema)
    )
}

/// Returns the statements that make the horizon and the tiebreak (part of the store's
/// schema).
pub(super) fn horizon_sql(schema: &str) -> String {
    format!(
        "CREATE SEQUENCE IF NOT EXISTS {schema}.horizon MINVALUE 0 START 0;\
         CREATE SEQUENCE IF NOT EXISTS {schema}.tiebreak;"
    )
}

/// Returns `bytes` as a SQL bytea expression, with the commit's stamp in place of the 12
/// bytes at each of `slots`.
pub(super) fn stamped_bytes(bytes: &[u8], slots: &[&StampSlot]) -> String {
    let mut parts = Vec::new();
    let mut at = 0;
    let mut sorted: Vec<_> = slots.to_vec();
    sorted.sort_by_key(|s| s.offset);
    for slot in sorted {
        parts.push(super::hex_literal(&bytes[at..slot.offset]));
        let setting = if slot.inverted {
            "cronusfs.d"
        } else {
            "cronusfs.c"
        };
        parts.push(format!("decode(current_setting('{setting}'), 'hex')"));
        at = slot.offset + crate::storage::keys::STAMP_LEN;
    }
    parts.push(super::hex_literal(&bytes[at..]));
    format!("({})", parts.join(" || "))
}
