//! The one module that builds and parses store keys. Every byte layout of every column family
//! is decided here, and documented as a table in `docs/DESIGN.md`; nothing else in the crate
//! knows how a key is laid out.
//!
//! Building blocks, all order-preserving and self-delimiting:
//! - `S(x)`: a string's bytes with each `0x00` written as `0x00 0xFF`, then `0x00 0x01`.
//! - `N(i)`: an i64 as 8 big-endian bytes with the sign bit flipped (so −2⁶³ < … < 2⁶³−1).
//! - `V(v)`: `0x01 N(i)` for an integer, `0x02 S(s)` for a string of at most
//!   [`LONG_STR_BYTES`] bytes, `0x03 H(s)` (16 bytes of BLAKE3) for a longer string, whose full
//!   text is then the entry's value and is checked on every read.
//! - `C(s)`: a commit stamp, `N(micros)` then its tiebreak as 4 big-endian bytes (12 bytes);
//!   `D(s)`: `C(s)` with every byte inverted (sorts newest first).
//! - `B(s)`: the tagged value prefix `0xFF C(s)`: when a live row was born. UTF-8 never starts
//!   with `0xFF`, so an untagged value (empty, or a long string's text) is a row from before
//!   history began.

use std::borrow::Cow;

use super::engine::Cf;
use super::history::{Actor, Stamp};
use super::{Iden, Row, RowVisitor, StorageError, Valu, ValuRef};

mod past;
pub(crate) use past::*;

/// The on-disk format version this build writes and reads: 2 keeps history (past row
/// indexes, blob versions, commit records).
pub const FORMAT_VERSION: u32 = 2;
/// The format version of stores made before history was kept: opened by this build, a store
/// one process owns is upgraded in place (its history begins then).
pub const FORMAT_VERSION_BEFORE_HISTORY: u32 = 1;
/// Meta key holding when the store's history began (µs of the store clock, 8 bytes
/// big-endian).
pub const META_HISTORY_SINCE: &[u8] = b"history-since";
/// Meta key holding the newest time a reader settled the clock of a store one process owns
/// at (µs, 8 bytes big-endian): its clock restarts after it.
pub const META_HISTORY_HORIZON: &[u8] = b"history-horizon";
/// Meta key holding the oldest time the store still answers for (µs, 8 bytes big-endian):
/// gc raised it to reclaim what only earlier times needed.
pub const META_HISTORY_FLOOR: &[u8] = b"history-floor";
/// Meta key holding the format version (4 bytes, big-endian).
pub const META_FORMAT_VERSION: &[u8] = b"format-version";
/// Meta key holding the store's creation time (epoch ms, 8 bytes big-endian).
pub const META_CREATED: &[u8] = b"created";
/// The blob a new store records its creation time in (epoch ms, 8-byte big-endian i64),
/// beside [`META_CREATED`]: what every Synapse storage layer records at creation.
pub const SYN_CREATED: &str = "syn:core:created";
/// Strings longer than this many bytes are stored hashed in index keys.
pub const LONG_STR_BYTES: usize = 128;

const TAG_INT: u8 = 0x01;
const TAG_STR: u8 = 0x02;
const TAG_HASHED: u8 = 0x03;
const HASH_LEN: usize = 16;

/// A key range `[start, end)`; no `end` means to the end of the column family.
pub(crate) type Span = (Vec<u8>, Option<Vec<u8>>);

/// A row's three index entries: `(column family, key)`, plus the value they all carry (the
/// full string for a hashed long string, else empty).
pub(crate) struct RowEntries {
    /// Keys in `ByIden`, `ByPropValu` and `ByPropTime`.
    pub keys: [(Cf, Vec<u8>); 3],
    /// The entries' value.
    pub value: Vec<u8>,
}

/// Returns the index entries that store `row`.
pub(crate) fn row_entries(row: &Row) -> RowEntries {
    let iden = row.iden.as_str().as_bytes();
    let prop = row.prop.as_bytes();
    let mut by_iden = Vec::with_capacity(iden.len() + prop.len() + 32);
    put_str(&mut by_iden, iden);
    put_str(&mut by_iden, prop);
    put_valu(&mut by_iden, &row.valu);
    put_i64(&mut by_iden, row.time);

    let mut by_prop_valu = Vec::with_capacity(by_iden.len());
    put_str(&mut by_prop_valu, prop);
    put_valu(&mut by_prop_valu, &row.valu);
    put_i64(&mut by_prop_valu, row.time);
    put_str(&mut by_prop_valu, iden);

    let mut by_prop_time = Vec::with_capacity(by_iden.len());
    put_str(&mut by_prop_time, prop);
    put_i64(&mut by_prop_time, row.time);
    put_str(&mut by_prop_time, iden);
    put_valu(&mut by_prop_time, &row.valu);

    let value = match &row.valu {
        Valu::Str(s) if is_long(s) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    };
    RowEntries {
        keys: [
            (Cf::ByIden, by_iden),
            (Cf::ByPropValu, by_prop_valu),
            (Cf::ByPropTime, by_prop_time),
        ],
        value,
    }
}

/// Decodes the row stored by an entry of `cf` (one of the three row indexes).
pub(crate) fn decode_row(cf: Cf, key: &[u8], value: &[u8]) -> Result<Row, StorageError> {
    let (iden, prop, valu, time, rest);
    match cf {
        Cf::ByIden => {
            let (i, r) = take_str(key)?;
            let (p, r) = take_str(r)?;
            let (v, r) = take_valu(r)?;
            let (t, r) = take_i64(r)?;
            (iden, prop, valu, time, rest) = (i, p, v, t, r);
        }
        Cf::ByPropValu => {
            let (p, r) = take_str(key)?;
            let (v, r) = take_valu(r)?;
            let (t, r) = take_i64(r)?;
            let (i, r) = take_str(r)?;
            (iden, prop, valu, time, rest) = (i, p, v, t, r);
        }
        Cf::ByPropTime => {
            let (p, r) = take_str(key)?;
            let (t, r) = take_i64(r)?;
            let (i, r) = take_str(r)?;
            let (v, r) = take_valu(r)?;
            (iden, prop, valu, time, rest) = (i, p, v, t, r);
        }
        Cf::Meta
        | Cf::Blobs
        | Cf::PastByIden
        | Cf::PastByPropValu
        | Cf::PastByPropTime
        | Cf::BlobHistory
        | Cf::History => return Err(corrupt("rows are not stored in this column family")),
    }
    if !rest.is_empty() {
        return Err(corrupt("trailing bytes after a row key"));
    }
    let (_, value) = split_value(value)?;
    Ok(Row {
        iden: Iden::new(utf8(iden)?).map_err(|_| corrupt("invalid iden in a row key"))?,
        prop: utf8(prop)?,
        valu: valu.resolve(value)?,
        time,
    })
}

/// Decodes the part of a `ByIden` key after its iden (`S(prop) V(valu) I(time)`) and the
/// entry's value, and hands the row to `visit` borrowed (no owned strings are made).
pub(crate) fn visit_iden_row(
    rest: &[u8],
    value: &[u8],
    visit: &mut RowVisitor<'_>,
) -> Result<(), StorageError> {
    let (prop, r) = take_str(rest)?;
    let (valu, r) = take_valu(r)?;
    let (time, r) = take_i64(r)?;
    if !r.is_empty() {
        return Err(corrupt("trailing bytes after a row key"));
    }
    let (_, value) = split_value(value)?;
    visit(str_of(&prop)?, valu.borrow(value)?, time);
    Ok(())
}

/// Returns `S(iden)`: the prefix of every `ByIden` key of `iden`.
pub(crate) fn iden_prefix(iden: &Iden) -> Vec<u8> {
    let mut out = Vec::with_capacity(iden.as_str().len() + 2);
    put_str(&mut out, iden.as_str().as_bytes());
    out
}

/// Returns `S(iden) S(prop)`, or `S(iden) S(prop) V(valu)` when `valu` is given.
pub(crate) fn iden_prop_prefix(iden: &Iden, prop: &str, valu: Option<&Valu>) -> Vec<u8> {
    let mut out = iden_prefix(iden);
    put_str(&mut out, prop.as_bytes());
    if let Some(v) = valu {
        put_valu(&mut out, v);
    }
    out
}

/// Returns `S(prop)`, or `S(prop) V(valu)`: the prefix of a prop's entries in `ByPropTime`
/// (without value) or `ByPropValu` (with value).
pub(crate) fn prop_prefix(prop: &str, valu: Option<&Valu>) -> Vec<u8> {
    let mut out = Vec::with_capacity(prop.len() + 16);
    put_str(&mut out, prop.as_bytes());
    if let Some(v) = valu {
        put_valu(&mut out, v);
    }
    out
}

/// Returns the `ByPropValu` key range `[start, end)` holding the integer rows of `prop` with
/// `lo <= value <= hi`: one contiguous ascending range over the whole i64 domain.
pub(crate) fn int_span(prop: &str, lo: i64, hi: i64) -> Span {
    let mut start = prop_prefix(prop, None);
    let mut last = start.clone();
    start.push(TAG_INT);
    put_i64(&mut start, lo);
    last.push(TAG_INT);
    put_i64(&mut last, hi);
    (start, prefix_end(&last))
}

/// Returns the range `[start, end)` of keys that begin with `prefix` followed by `N(time)` with
/// `mintime <= time < maxtime` (either bound optional).
pub(crate) fn time_span(prefix: &[u8], mintime: Option<i64>, maxtime: Option<i64>) -> Span {
    let with_time = |t: i64| {
        let mut k = prefix.to_vec();
        put_i64(&mut k, t);
        k
    };
    let start = mintime.map_or_else(|| prefix.to_vec(), with_time);
    let end = maxtime.map_or_else(|| prefix_end(prefix), |t| Some(with_time(t)));
    (start, end)
}

/// Returns the smallest key of a prop lift under `prefix` (by prop, or by prop and value) past
/// every key of node `iden` at `time`, or `None` when no key is past them.
pub(crate) fn past_node_at(prefix: &[u8], time: i64, iden: &Iden) -> Option<Vec<u8>> {
    let mut key = prefix.to_vec();
    put_i64(&mut key, time);
    put_str(&mut key, iden.as_str().as_bytes());
    prefix_end(&key)
}

/// Returns the smallest key greater than every key starting with `prefix`, or `None` when no
/// such key exists (the prefix is empty or all `0xFF`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Returns the part of a `ByIden` key (or seek target) that names one node: `S(iden)`, or the
/// whole input when it does not start with a complete `S(..)`. Used as RocksDB's prefix
/// extractor, so a node's lookup can skip files by bloom filter.
pub fn iden_key_prefix(key: &[u8]) -> &[u8] {
    str_len(key).map_or(key, |n| &key[..n])
}

/// Returns the part of a `ByPropValu` key (or seek target) that names one prop=value pair:
/// `S(prop) V(valu)`, or the whole input when it does not start with a complete one.
pub fn prop_valu_key_prefix(key: &[u8]) -> &[u8] {
    prop_valu_len(key).map_or(key, |n| &key[..n])
}

/// Returns the iden a `ByIden` key belongs to.
pub(crate) fn iden_of_key(key: &[u8]) -> Result<String, StorageError> {
    let (iden, _) = take_str(key)?;
    utf8(iden)
}

/// Returns whether [`iden_key_prefix`] finds a complete prefix in `key`.
pub fn has_iden_key_prefix(key: &[u8]) -> bool {
    str_len(key).is_some()
}

/// Returns whether [`prop_valu_key_prefix`] finds a complete prefix in `key`.
pub fn has_prop_valu_key_prefix(key: &[u8]) -> bool {
    prop_valu_len(key).is_some()
}

fn prop_valu_len(key: &[u8]) -> Option<usize> {
    let p = str_len(key)?;
    let rest = &key[p..];
    let v = match *rest.first()? {
        TAG_INT => 9,
        TAG_STR => 1 + str_len(&rest[1..])?,
        TAG_HASHED => 1 + HASH_LEN,
        _ => return None,
    };
    (rest.len() >= v).then_some(p + v)
}

/// Returns the length of the complete `S(..)` at the start of `input`, terminator included.
fn str_len(input: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        i += input[i..].iter().position(|&b| b == 0)?;
        match input.get(i + 1)? {
            0x01 => return Some(i + 2),
            0xFF => i += 2,
            _ => return None,
        }
    }
}

/// Returns the `Blobs` key of blob `key`.
pub(crate) fn blob_key(key: &str) -> Vec<u8> {
    key.as_bytes().to_vec()
}

/// Returns the blob name stored in a `Blobs` key.
pub(crate) fn decode_blob_key(key: &[u8]) -> Result<String, StorageError> {
    utf8(Cow::Borrowed(key))
}

/// Returns whether `s` is stored hashed in index keys.
pub(crate) fn is_long(s: &str) -> bool {
    s.len() > LONG_STR_BYTES
}

/// The value part of a key, before a hashed long string is resolved from the entry's value.
enum ValuKey<'a> {
    Int(i64),
    Str(Cow<'a, [u8]>),
    Hashed(&'a [u8]),
}

impl ValuKey<'_> {
    /// Returns the value, its string borrowed from the key or from the entry's `value` (a
    /// hashed long string, checked against its hash).
    fn borrow<'v>(&'v self, value: &'v [u8]) -> Result<ValuRef<'v>, StorageError> {
        match self {
            ValuKey::Int(i) => Ok(ValuRef::Int(*i)),
            ValuKey::Str(s) => Ok(ValuRef::Str(str_of(s)?)),
            ValuKey::Hashed(h) => {
                if &blake3::hash(value).as_bytes()[..HASH_LEN] != *h {
                    return Err(corrupt("long string does not match its hash"));
                }
                Ok(ValuRef::Str(str_of(value)?))
            }
        }
    }

    fn resolve(self, value: &[u8]) -> Result<Valu, StorageError> {
        match self {
            ValuKey::Str(s) => Ok(Valu::Str(utf8(s)?)),
            other => Ok(match other.borrow(value)? {
                ValuRef::Int(i) => Valu::Int(i),
                ValuRef::Str(s) => Valu::Str(s.to_string()),
            }),
        }
    }
}

/// Returns `S(key)`: the prefix of every `BlobHistory` key of blob `key`.
pub(crate) fn blob_history_prefix(key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2 + STAMP_LEN);
    put_str(&mut out, key.as_bytes());
    out
}

/// Returns the escaped bytes every `BlobHistory` key of a blob whose name starts with
/// `prefix` starts with (`S(..)` without its terminator).
pub(crate) fn blob_history_name_prefix(prefix: &str) -> Vec<u8> {
    let mut out = blob_history_prefix(prefix);
    out.truncate(out.len() - 2);
    out
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let mut rest = s;
    while let Some(pos) = rest.iter().position(|&b| b == 0) {
        out.extend_from_slice(&rest[..=pos]);
        out.push(0xFF);
        rest = &rest[pos + 1..];
    }
    out.extend_from_slice(rest);
    out.extend_from_slice(&[0x00, 0x01]);
}

fn take_str(input: &[u8]) -> Result<(Cow<'_, [u8]>, &[u8]), StorageError> {
    let mut owned: Option<Vec<u8>> = None;
    let mut start = 0;
    let mut i = 0;
    loop {
        let pos = input[i..].iter().position(|&b| b == 0).map(|p| p + i);
        let pos = pos.ok_or_else(|| corrupt("unterminated string in a key"))?;
        match input.get(pos + 1) {
            Some(0x01) => {
                let text = match owned {
                    None => Cow::Borrowed(&input[..pos]),
                    Some(mut buf) => {
                        buf.extend_from_slice(&input[start..pos]);
                        Cow::Owned(buf)
                    }
                };
                return Ok((text, &input[pos + 2..]));
            }
            Some(0xFF) => {
                let buf = owned.get_or_insert_with(Vec::new);
                buf.extend_from_slice(&input[start..=pos]);
                start = pos + 2;
                i = pos + 2;
            }
            _ => return Err(corrupt("bad escape in a key string")),
        }
    }
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
}

fn take_i64(input: &[u8]) -> Result<(i64, &[u8]), StorageError> {
    let (head, rest) = input
        .split_at_checked(8)
        .ok_or_else(|| corrupt("short integer in a key"))?;
    let raw = u64::from_be_bytes(head.try_into().expect("8 bytes"));
    Ok(((raw ^ (1 << 63)) as i64, rest))
}

fn put_valu(out: &mut Vec<u8>, valu: &Valu) {
    match valu {
        Valu::Int(i) => {
            out.push(TAG_INT);
            put_i64(out, *i);
        }
        Valu::Str(s) if is_long(s) => {
            out.push(TAG_HASHED);
            out.extend_from_slice(&blake3::hash(s.as_bytes()).as_bytes()[..HASH_LEN]);
        }
        Valu::Str(s) => {
            out.push(TAG_STR);
            put_str(out, s.as_bytes());
        }
    }
}

fn take_valu(input: &[u8]) -> Result<(ValuKey<'_>, &[u8]), StorageError> {
    match input.split_first() {
        Some((&TAG_INT, rest)) => take_i64(rest).map(|(i, r)| (ValuKey::Int(i), r)),
        Some((&TAG_STR, rest)) => take_str(rest).map(|(s, r)| (ValuKey::Str(s), r)),
        Some((&TAG_HASHED, rest)) => {
            let (h, r) = rest
                .split_at_checked(HASH_LEN)
                .ok_or_else(|| corrupt("short hash"))?;
            Ok((ValuKey::Hashed(h), r))
        }
        _ => Err(corrupt("unknown value tag in a key")),
    }
}

fn str_of(bytes: &[u8]) -> Result<&str, StorageError> {
    std::str::from_utf8(bytes).map_err(|_| corrupt("invalid UTF-8 in a key"))
}

fn utf8(bytes: Cow<'_, [u8]>) -> Result<String, StorageError> {
    String::from_utf8(bytes.into_owned()).map_err(|_| corrupt("invalid UTF-8 in a key"))
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corruption(what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn row(iden: &str, prop: &str, valu: Valu, time: i64) -> Row {
        Row {
            iden: Iden::new(iden).unwrap(),
            prop: prop.into(),
            valu,
            time,
        }
    }

    #[test]
    fn every_index_round_trips() {
        let long = "x\0y".repeat(100);
        for r in [
            row("a\0b", "p:q", Valu::Int(i64::MIN), -5),
            row("ffff", "p", Valu::Int(i64::MAX), i64::MAX),
            row("i", "\0", Valu::Str("\0\0".into()), 0),
            row("i", "p", Valu::Str(long.clone()), 7),
            row("i", "p", Valu::Str(String::new()), i64::MIN),
        ] {
            let e = row_entries(&r);
            for (cf, key) in &e.keys {
                assert_eq!(decode_row(*cf, key, &e.value).unwrap(), r);
            }
        }
    }

    #[test]
    fn integers_and_strings_sort_in_order() {
        let ints = [i64::MIN, -300, -1, 0, 1, 255, 256, i64::MAX];
        let keys: Vec<_> = ints
            .iter()
            .map(|i| prop_prefix("p", Some(&Valu::Int(*i))))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let strs = ["", "\0", "\0\0", "a", "a\0", "ab", "b"];
        let keys: Vec<_> = strs
            .iter()
            .map(|s| prop_prefix("p", Some(&Valu::from(*s))))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_prop_prefix_never_matches_a_longer_prop() {
        let short = prop_prefix("ab", None);
        let long = prop_prefix("abc", None);
        let nul = prop_prefix("ab\0", None);
        assert!(!long.starts_with(&short));
        assert!(!nul.starts_with(&short));
    }

    #[test]
    fn extractor_prefixes_name_one_node_or_one_value() {
        let r = row("a\0b", "p\0", Valu::Str("v\0w".into()), 5);
        let e = row_entries(&r);
        assert_eq!(
            iden_key_prefix(&e.keys[0].1),
            iden_prefix(&r.iden).as_slice()
        );
        let pv = prop_prefix("p\0", Some(&r.valu));
        assert_eq!(prop_valu_key_prefix(&e.keys[1].1), pv.as_slice());
        assert_eq!(
            prop_valu_key_prefix(&pv),
            pv.as_slice(),
            "a seek target is its own prefix"
        );
        assert!(has_prop_valu_key_prefix(&pv));
        let int = prop_prefix("p", Some(&Valu::Int(-1)));
        assert_eq!(prop_valu_key_prefix(&int), int.as_slice());
        assert!(!has_prop_valu_key_prefix(&prop_prefix("p", None)));
        assert!(!has_iden_key_prefix(b"abc"));
        assert_eq!(iden_key_prefix(b"abc"), b"abc");
    }

    #[test]
    fn prefix_end_edges() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn a_wrong_long_string_is_corruption() {
        let r = row("i", "p", Valu::Str("z".repeat(200)), 1);
        let e = row_entries(&r);
        let err = decode_row(Cf::ByIden, &e.keys[0].1, b"other").unwrap_err();
        assert!(matches!(err, StorageError::Corruption(_)));
    }

    #[test]
    fn truncated_keys_are_corruption_not_panics() {
        let r = row("iden", "prop", Valu::Str("v".into()), 1);
        let e = row_entries(&r);
        for (cf, key) in &e.keys {
            for cut in 0..key.len() {
                assert!(decode_row(*cf, &key[..cut], b"").is_err());
            }
        }
    }
}
