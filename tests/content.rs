//! Content-addressed bytes: ids are BLAKE3 of the bytes, identical content and chunks are
//! stored once, any range reads back, gc reclaims exactly what nothing refers to, and damage is
//! reported (never a panic).

use std::collections::HashSet;
use std::io::Read;

use cronusfs::meta::content::CHUNK_SIZE;
use cronusfs::meta::{ContentId, ContentStore, GcReport, Manifest, MetaError};
use cronusfs::storage::{MemoryStore, RocksStore, RowRead, RowWrite, Storage};

/// Returns `len` pseudo-random bytes (xorshift; no two chunks alike).
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Stores `data` as a committed content; returns its manifest.
fn put(store: &dyn Storage, data: &[u8]) -> Manifest {
    let content = ContentStore::new(store);
    let manifest = content.write_chunks(&mut &data[..], &mut |_| {}).unwrap();
    let txn = store.begin().unwrap();
    ContentStore::commit_manifest(&*txn, &manifest).unwrap();
    txn.commit().unwrap();
    manifest
}

fn chunk_count(store: &dyn Storage) -> usize {
    store.blob_keys_with_prefix("chunk/").unwrap().len()
}

#[test]
fn ids_sizes_and_reads_at_every_boundary() {
    let store = MemoryStore::new();
    let content = ContentStore::new(&store);
    for len in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        3 * CHUNK_SIZE + CHUNK_SIZE / 2,
    ] {
        let data = bytes(len, 1);
        let m = put(&store, &data);
        assert_eq!(m.id, ContentId::of(&data), "len {len}");
        assert_eq!(m.id.to_string(), blake3::hash(&data).to_hex().to_string());
        assert_eq!(m.size, len as u64);
        assert_eq!(m.chunk_count(), len.div_ceil(CHUNK_SIZE) as u64);
        let mut back = Vec::new();
        let mut reader = content.reader(m.id).unwrap();
        let mut small = [0u8; 8191];
        loop {
            let n = reader.read(&mut small).unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&small[..n]);
        }
        assert!(back == data, "len {len} reads back");
        for (off, n) in [
            (0, 10),
            (CHUNK_SIZE - 3, 7),
            (len.saturating_sub(5), 100),
            (len, 4),
            (len + 9, 4),
        ] {
            let mut buf = vec![0u8; n];
            let got = content.read_at(&m, off as u64, &mut buf).unwrap();
            let want = &data[off.min(len)..(off + n).min(len)];
            assert_eq!(&buf[..got], want, "len {len} range {off}+{n}");
        }
    }
}

#[test]
fn identical_content_and_chunks_are_stored_once() {
    let store = MemoryStore::new();
    let data = bytes(3 * CHUNK_SIZE, 2);
    let a = put(&store, &data);
    assert_eq!(chunk_count(&store), 3);
    let b = put(&store, &data);
    assert_eq!(a, b);
    assert_eq!(chunk_count(&store), 3, "same bytes, no new chunk");
    let mut edited = data.clone();
    edited[CHUNK_SIZE + 17] ^= 0xFF;
    let c = put(&store, &edited);
    assert_ne!(c.id, a.id);
    assert_eq!(
        chunk_count(&store),
        4,
        "a one-byte edit stores one new chunk, not the whole object"
    );
    assert_eq!(ContentStore::new(&store).ids().unwrap().len(), 2);
}

#[test]
fn gc_frees_exactly_what_nothing_refers_to() {
    let store = MemoryStore::new();
    let content = ContentStore::new(&store);
    let keep = bytes(2 * CHUNK_SIZE + 5, 3);
    let mut other = keep.clone();
    other[5] ^= 1; // Shares its second and third chunks with `keep`.
    let kept = put(&store, &keep);
    let dropped = put(&store, &other);
    // Chunks written but never committed (a put that died before its commit).
    content
        .write_chunks(&mut &bytes(CHUNK_SIZE / 2, 9)[..], &mut |_| {})
        .unwrap();
    assert_eq!(chunk_count(&store), 5);

    let mut seen = Vec::new();
    let report = content
        .collect_garbage(&HashSet::from([kept.id]), &HashSet::new(), &mut |d, t| {
            seen.push((d, t))
        })
        .unwrap();
    // Two contents, then the five chunks: every item counted once, against the final total.
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.last(), Some(&(7, 7)));
    assert!(seen.iter().all(|&(_, total)| total == 7));
    assert!(seen.windows(2).all(|w| w[1].0 == w[0].0 + 1));
    let freed = CHUNK_SIZE as u64 + (CHUNK_SIZE / 2) as u64;
    assert_eq!(
        report,
        GcReport {
            contents: 1,
            chunks: 2,
            bytes: freed,
            held: 0,
            history: 0,
            snapshots: 0,
            pruned: 0,
        }
    );
    assert!(!content.contains(dropped.id).unwrap());
    assert!(matches!(
        content.manifest(dropped.id),
        Err(MetaError::NoSuchContent(_))
    ));
    let mut back = Vec::new();
    content
        .reader(kept.id)
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == keep, "shared chunks survive");
    assert!(content.verify(kept.id).unwrap().is_empty());
    assert_eq!(
        content
            .collect_garbage(&HashSet::from([kept.id]), &HashSet::new(), &mut |_, _| {})
            .unwrap(),
        GcReport::default()
    );
}

#[test]
fn damage_is_reported_not_panicked() {
    let store = MemoryStore::new();
    let content = ContentStore::new(&store);
    let m = put(&store, &bytes(2 * CHUNK_SIZE + 1, 4));
    assert!(content.verify(m.id).unwrap().is_empty());
    let keys = store.blob_keys_with_prefix("chunk/").unwrap();
    let full = |k: &&String| store.blob_get(k).unwrap().unwrap().len() == CHUNK_SIZE;
    let victim = keys.iter().find(full).unwrap();
    let good = store.blob_get(victim).unwrap().unwrap();

    let mut flipped = good.clone();
    flipped[100] ^= 1;
    store.blob_set(victim, &flipped).unwrap();
    let problems = content.verify(m.id).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("does not match its hash"));

    store.blob_set(victim, &good[..10]).unwrap();
    let mut buf = vec![0u8; 3 * CHUNK_SIZE];
    assert!(matches!(
        content.read_at(&m, 0, &mut buf),
        Err(MetaError::Corrupt(_))
    ));

    store.blob_del(victim).unwrap();
    assert!(content.verify(m.id).unwrap()[0].contains("is missing"));
    let mut out = Vec::new();
    assert!(content.reader(m.id).unwrap().read_to_end(&mut out).is_err());
}

#[test]
fn content_ids_parse_strictly() {
    let id = ContentId::of(b"x");
    assert_eq!(id.to_string().parse::<ContentId>().unwrap(), id);
    for bad in [
        "",
        "abc",
        &"g".repeat(64),
        &id.to_string().to_uppercase(),
        &format!("{id}0"),
    ] {
        assert!(
            matches!(bad.parse::<ContentId>(), Err(MetaError::BadContentId(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn content_survives_reopening_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let data = bytes(5 * CHUNK_SIZE + 123, 5);
    let id = {
        let store = RocksStore::create(&path).unwrap();
        put(&store, &data).id
    };
    let store = RocksStore::open(&path).unwrap();
    let content = ContentStore::new(&store);
    let mut back = Vec::new();
    content.reader(id).unwrap().read_to_end(&mut back).unwrap();
    assert!(back == data);
    assert!(content.verify(id).unwrap().is_empty());
}

/// A content stored before holes existed: a whole chunk of zeros stored as a chunk, and the
/// content named by the BLAKE3 of all its bytes. It still reads, verifies and survives gc.
#[test]
fn contents_from_before_holes_still_verify() {
    use cronusfs::meta::content::{Run, zero_chunk};
    let store = cronusfs::storage::MemoryStore::new();
    let content = ContentStore::new(&store);
    let data = [vec![0u8; CHUNK_SIZE], b"tail".to_vec()].concat();
    let tail = *blake3::hash(b"tail").as_bytes();
    let chunk_key = |h: &[u8; 32]| format!("chunk/{}", blake3::Hash::from_bytes(*h).to_hex());
    store
        .blob_set(&chunk_key(zero_chunk()), &data[..CHUNK_SIZE])
        .unwrap();
    store.blob_set(&chunk_key(&tail), b"tail").unwrap();
    let runs = vec![
        Run {
            hash: *zero_chunk(),
            len: CHUNK_SIZE as u32,
            count: 1,
        },
        Run {
            hash: tail,
            len: 4,
            count: 1,
        },
    ];
    let id = ContentId::of(&data);
    let manifest = cronusfs::meta::Manifest::new(id, data.len() as u64, runs);
    let txn = store.begin().unwrap();
    ContentStore::commit_manifest(&*txn, &manifest).unwrap();
    txn.commit().unwrap();
    assert!(content.verify(id).unwrap().is_empty());
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut content.reader(id).unwrap(), &mut back).unwrap();
    assert!(back == data);
    let live = std::collections::HashSet::from([id]);
    content
        .collect_garbage(&live, &Default::default(), &mut |_, _| {})
        .unwrap();
    assert!(content.verify(id).unwrap().is_empty(), "after gc");
}
