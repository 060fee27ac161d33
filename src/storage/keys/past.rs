//! The key layouts of history: commit stamps, tagged live values, the three past row indexes,
//! blob versions and commit records (the `keys.rs` rules, for the column families of format 2).

use super::{
    Actor, Cf, Stamp, StorageError, TAG_HASHED, TAG_INT, TAG_STR, corrupt, prop_valu_len, put_i64,
    put_str, str_len, take_i64, take_str, utf8,
};

/// Bytes of an encoded stamp, `C(s)` or `D(s)`.
pub(crate) const STAMP_LEN: usize = 12;
/// The first byte of a tagged live value (`B(s)`).
const VALUE_TAG: u8 = 0xFF;
/// Bytes of `B(s)`.
pub(crate) const VALUE_TAG_LEN: usize = 1 + STAMP_LEN;
/// The first byte of a blob version that sets the blob, and of one that deletes it.
const BLOB_SET: u8 = 0x01;
const BLOB_GONE: u8 = 0x00;

/// Returns `C(s)`.
pub(crate) fn stamp_bytes(s: Stamp) -> [u8; STAMP_LEN] {
    let mut out = [0; STAMP_LEN];
    out[..8].copy_from_slice(&((s.micros as u64) ^ (1 << 63)).to_be_bytes());
    out[8..].copy_from_slice(&s.node.to_be_bytes());
    out
}

/// Returns `D(s)`: `C(s)` inverted, so that newer stamps sort first.
pub(crate) fn stamp_bytes_inverted(s: Stamp) -> [u8; STAMP_LEN] {
    stamp_bytes(s).map(|b| !b)
}

/// Decodes `C(s)` at the start of `input`.
pub(crate) fn take_stamp(input: &[u8]) -> Result<(Stamp, &[u8]), StorageError> {
    let (micros, rest) = take_i64(input)?;
    let (node, rest) = rest
        .split_at_checked(4)
        .ok_or_else(|| corrupt("short stamp in a key"))?;
    let node = u32::from_be_bytes(node.try_into().expect("4 bytes"));
    Ok((Stamp { micros, node }, rest))
}

/// Decodes `D(s)` at the start of `input`.
pub(crate) fn take_stamp_inverted(input: &[u8]) -> Result<(Stamp, &[u8]), StorageError> {
    let (head, rest) = input
        .split_at_checked(STAMP_LEN)
        .ok_or_else(|| corrupt("short stamp in a key"))?;
    let plain: Vec<u8> = head.iter().map(|b| !b).collect();
    Ok((take_stamp(&plain)?.0, rest))
}

/// Splits a live row entry's value into when the row was born and the rest (a long string's
/// text, or nothing). An untagged value is a row from before history began.
pub(crate) fn split_value(value: &[u8]) -> Result<(Stamp, &[u8]), StorageError> {
    match value.split_first() {
        Some((&VALUE_TAG, rest)) => take_stamp(rest),
        _ => Ok((Stamp::BEFORE_HISTORY, value)),
    }
}

/// Returns `B(born) text`: a live row entry's value.
pub(crate) fn tag_value(born: Stamp, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(VALUE_TAG_LEN + text.len());
    out.push(VALUE_TAG);
    out.extend_from_slice(&stamp_bytes(born));
    out.extend_from_slice(text);
    out
}

/// Returns the offset of the stamp inside a value made by [`tag_value`].
pub(crate) const TAGGED_STAMP_OFFSET: usize = 1;

/// Returns the past index that keeps the dead rows of live index `cf`.
pub(crate) fn past_cf(cf: Cf) -> Option<Cf> {
    match cf {
        Cf::ByIden => Some(Cf::PastByIden),
        Cf::ByPropValu => Some(Cf::PastByPropValu),
        Cf::ByPropTime => Some(Cf::PastByPropTime),
        Cf::Meta
        | Cf::Blobs
        | Cf::PastByIden
        | Cf::PastByPropValu
        | Cf::PastByPropTime
        | Cf::BlobHistory
        | Cf::History => None,
    }
}

/// Returns the length of the group a key of live index `cf` (or of its past index) begins
/// with: `S(iden)` in `ByIden`, `S(prop) V(valu)` in `ByPropValu`, `S(prop)` in `ByPropTime`.
/// A past key is its live key with `C(died)` put right after the group, so that the rows of
/// one group that died after a time are one range.
pub(crate) fn group_len(cf: Cf, key: &[u8]) -> Option<usize> {
    match cf {
        Cf::ByIden | Cf::PastByIden | Cf::ByPropTime | Cf::PastByPropTime => str_len(key),
        Cf::ByPropValu | Cf::PastByPropValu => prop_valu_len(key),
        Cf::Meta | Cf::Blobs | Cf::BlobHistory | Cf::History => None,
    }
}

/// Returns the key in the past index of live index `cf` of the row whose live key is
/// `live`, dead at `died`.
pub(crate) fn past_key(cf: Cf, live: &[u8], died: Stamp) -> Result<Vec<u8>, StorageError> {
    let g = group_len(cf, live).ok_or_else(|| corrupt("a row key without its group"))?;
    let mut out = Vec::with_capacity(live.len() + STAMP_LEN);
    out.extend_from_slice(&live[..g]);
    out.extend_from_slice(&stamp_bytes(died));
    out.extend_from_slice(&live[g..]);
    Ok(out)
}

/// Returns the live key of a past index entry (`past_cf` is the past index) and when its
/// row died.
pub(crate) fn live_of_past(past_cf: Cf, past: &[u8]) -> Result<(Vec<u8>, Stamp), StorageError> {
    let g = group_len(past_cf, past).ok_or_else(|| corrupt("a past key without its group"))?;
    let (died, rest) = take_stamp(&past[g..])?;
    Ok(([&past[..g], rest].concat(), died))
}

/// Returns the offset of `C(died)` in a key made by [`past_key`].
pub(crate) fn past_key_stamp_offset(cf: Cf, past: &[u8]) -> Result<usize, StorageError> {
    group_len(cf, past).ok_or_else(|| corrupt("a past key without its group"))
}

/// Returns the three live index keys of the row whose `ByIden` key is `by_iden`, made from
/// its encoded parts (a hashed long string needs no text for them).
pub(crate) fn sibling_keys(by_iden: &[u8]) -> Result<[(Cf, Vec<u8>); 3], StorageError> {
    let short = || corrupt("short row key");
    let i = str_len(by_iden).ok_or_else(short)?;
    let p = i + str_len(&by_iden[i..]).ok_or_else(short)?;
    let v = p + valu_len(&by_iden[p..]).ok_or_else(short)?;
    if by_iden.len() != v + 8 {
        return Err(corrupt("a row key of the wrong length"));
    }
    let (iden, prop, valu, time) = (&by_iden[..i], &by_iden[i..p], &by_iden[p..v], &by_iden[v..]);
    Ok([
        (Cf::ByIden, by_iden.to_vec()),
        (Cf::ByPropValu, [prop, valu, time, iden].concat()),
        (Cf::ByPropTime, [prop, time, iden, valu].concat()),
    ])
}

/// Returns the length of the complete `V(..)` at the start of `input`.
fn valu_len(input: &[u8]) -> Option<usize> {
    let n = match *input.first()? {
        TAG_INT => 9,
        TAG_STR => 1 + str_len(&input[1..])?,
        TAG_HASHED => 1 + super::HASH_LEN,
        _ => return None,
    };
    (input.len() >= n).then_some(n)
}

/// Returns the `BlobHistory` key of blob `key`'s version stamped `s`: `S(key) D(s)`.
pub(crate) fn blob_version_key(key: &str, s: Stamp) -> Vec<u8> {
    let mut out = super::blob_history_prefix(key);
    out.extend_from_slice(&stamp_bytes_inverted(s));
    out
}

/// Returns a blob version's value: the bytes it was set to, or `None` for a deletion.
pub(crate) fn blob_version_value(bytes: Option<&[u8]>) -> Vec<u8> {
    match bytes {
        Some(b) => [&[BLOB_SET][..], b].concat(),
        None => vec![BLOB_GONE],
    }
}

/// Decodes a `BlobHistory` entry: the blob's name, the version's stamp and its bytes (`None`
/// for a deletion).
pub(crate) fn decode_blob_version<'v>(
    key: &[u8],
    value: &'v [u8],
) -> Result<(String, Stamp, Option<&'v [u8]>), StorageError> {
    let (name, rest) = take_str(key)?;
    let (stamp, rest) = take_stamp_inverted(rest)?;
    if !rest.is_empty() {
        return Err(corrupt("trailing bytes after a blob version key"));
    }
    let bytes = match value.split_first() {
        Some((&BLOB_SET, b)) => Some(b),
        Some((&BLOB_GONE, [])) => None,
        _ => return Err(corrupt("bad blob version value")),
    };
    Ok((utf8(name)?, stamp, bytes))
}

/// Returns the `History` key of the commit record stamped `s`: `D(s)` (newest first).
pub(crate) fn commit_record_key(s: Stamp) -> Vec<u8> {
    stamp_bytes_inverted(s).to_vec()
}

/// Returns the `History` key saying that the commit stamped `s` changed node `iden`:
/// `D(s) S(iden)` (stores written before the record named the nodes; read, never written).
#[cfg(test)]
pub(crate) fn change_key(s: Stamp, iden: &str) -> Vec<u8> {
    let mut out = commit_record_key(s);
    put_str(&mut out, iden.as_bytes());
    out
}

/// Decodes a `History` key: the commit's stamp, and the node it changed (`None` for the
/// commit record itself).
pub(crate) fn decode_history_key(key: &[u8]) -> Result<(Stamp, Option<String>), StorageError> {
    let (stamp, rest) = take_stamp_inverted(key)?;
    if rest.is_empty() {
        return Ok((stamp, None));
    }
    let (iden, rest) = take_str(rest)?;
    match rest.is_empty() {
        true => Ok((stamp, Some(utf8(iden)?))),
        false => Err(corrupt("trailing bytes after a history key")),
    }
}

/// Returns the start of a commit record's value, who made it: `S(host) N(pid) N(uid)
/// S(what)`; [`add_changed_node`] appends the nodes it changed.
pub(crate) fn encode_commit_record(actor: &Actor) -> Vec<u8> {
    let mut out = Vec::with_capacity(actor.host.len() + actor.what.len() + 60);
    put_str(&mut out, actor.host.as_bytes());
    put_i64(&mut out, actor.pid);
    put_i64(&mut out, actor.uid);
    put_str(&mut out, actor.what.as_bytes());
    out
}

/// Appends `S(iden)` to commit record `record`: the commit changed node `iden`.
pub(crate) fn add_changed_node(record: &mut Vec<u8>, iden: &str) {
    put_str(record, iden.as_bytes());
}

/// Decodes a commit record's value: who made it, and the nodes it changed.
pub(crate) fn decode_commit_record(value: &[u8]) -> Result<(Actor, Vec<String>), StorageError> {
    let (host, r) = take_str(value)?;
    let (pid, r) = take_i64(r)?;
    let (uid, r) = take_i64(r)?;
    let (what, mut r) = take_str(r)?;
    let mut nodes = Vec::new();
    while !r.is_empty() {
        let (iden, rest) = take_str(r)?;
        nodes.push(utf8(iden)?);
        r = rest;
    }
    let actor = Actor {
        host: utf8(host)?,
        pid,
        uid,
        what: utf8(what)?,
    };
    Ok((actor, nodes))
}

#[cfg(test)]
mod tests {
    use super::super::{row_entries, tests::row};
    use super::*;
    use crate::storage::Valu;

    #[test]
    fn stamps_sort_by_time_and_inverted_ones_newest_first() {
        let stamps = [
            Stamp::at(-5),
            Stamp::at(0),
            Stamp { micros: 0, node: 7 },
            Stamp::at(1),
            Stamp::end_of(i64::MAX),
        ];
        let plain: Vec<_> = stamps.iter().map(|s| stamp_bytes(*s)).collect();
        assert!(plain.windows(2).all(|w| w[0] < w[1]));
        let inv: Vec<_> = stamps.iter().map(|s| stamp_bytes_inverted(*s)).collect();
        assert!(inv.windows(2).all(|w| w[0] > w[1]));
        for s in stamps {
            assert_eq!(take_stamp(&stamp_bytes(s)).unwrap().0, s);
            assert_eq!(take_stamp_inverted(&stamp_bytes_inverted(s)).unwrap().0, s);
        }
    }

    #[test]
    fn tagged_and_untagged_values_split() {
        let born = Stamp {
            micros: 42,
            node: 3,
        };
        let long = "é".repeat(100);
        assert_eq!(
            split_value(&tag_value(born, long.as_bytes())).unwrap(),
            (born, long.as_bytes())
        );
        assert_eq!(
            split_value(long.as_bytes()).unwrap(),
            (Stamp::BEFORE_HISTORY, long.as_bytes())
        );
        assert_eq!(split_value(b"").unwrap(), (Stamp::BEFORE_HISTORY, &b""[..]));
        assert!(
            split_value(&[VALUE_TAG, 1, 2]).is_err(),
            "short tag is corruption"
        );
    }

    #[test]
    fn past_keys_round_trip_and_group_by_death() {
        let r = row("a\0b", "p", Valu::Str("x".repeat(200)), 9);
        let e = row_entries(&r);
        for (cf, live) in &e.keys {
            let past = past_cf(*cf).unwrap();
            let early = past_key(*cf, live, Stamp::at(5)).unwrap();
            let late = past_key(*cf, live, Stamp::at(6)).unwrap();
            assert!(early < late, "in one group, rows sort by when they died");
            assert_eq!(
                live_of_past(past, &late).unwrap(),
                (live.clone(), Stamp::at(6))
            );
            let g = group_len(*cf, live).unwrap();
            assert_eq!(&late[..g], &live[..g]);
        }
    }

    #[test]
    fn sibling_keys_match_row_entries() {
        for v in [
            Valu::Int(-3),
            Valu::from("s\0t"),
            Valu::Str("y".repeat(300)),
        ] {
            let r = row("node", "prop", v, 77);
            let e = row_entries(&r);
            assert_eq!(sibling_keys(&e.keys[0].1).unwrap(), e.keys);
            assert!(sibling_keys(&e.keys[0].1[..e.keys[0].1.len() - 1]).is_err());
        }
    }

    #[test]
    fn blob_versions_and_history_keys_round_trip() {
        let s = Stamp {
            micros: 1_000,
            node: 2,
        };
        let key = blob_version_key("info/a\0", s);
        let set = blob_version_value(Some(b"abc"));
        assert_eq!(
            decode_blob_version(&key, &set).unwrap(),
            ("info/a\0".to_string(), s, Some(&b"abc"[..]))
        );
        let gone = blob_version_value(None);
        assert_eq!(decode_blob_version(&key, &gone).unwrap().2, None);
        assert!(key.starts_with(&super::super::blob_history_name_prefix("info/")));
        assert_eq!(
            decode_history_key(&commit_record_key(s)).unwrap(),
            (s, None)
        );
        assert_eq!(
            decode_history_key(&change_key(s, "n\0")).unwrap(),
            (s, Some("n\0".into()))
        );
        let actor = Actor {
            host: "h".into(),
            pid: 12,
            uid: 0,
            what: "cronusfs put x".into(),
        };
        let mut record = encode_commit_record(&actor);
        assert_eq!(
            decode_commit_record(&record).unwrap(),
            (actor.clone(), vec![])
        );
        add_changed_node(&mut record, "a");
        add_changed_node(&mut record, "b\0");
        assert_eq!(
            decode_commit_record(&record).unwrap(),
            (actor, vec!["a".to_string(), "b\0".to_string()])
        );
        assert!(decode_commit_record(&record[..record.len() - 1]).is_err());
    }
}
