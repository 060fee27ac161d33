//! `fsck` names exactly the objects that cannot be read (issue 20): a blob file cut short
//! (`truncate -s -5`) loses its footer, and with it every value it holds; when one of those
//! values is a manifest, the list of contents cannot be read whole, and fsck checks each
//! object's content on its own instead of calling every object's content missing.

use std::io::Read;
use std::path::{Path, PathBuf};

use cronusfs::meta::content::CHUNK_SIZE;
use cronusfs::meta::{DatasetId, JobId, Metastore, ObjectId, ObjectPath};
use cronusfs::storage::{RocksStore, RowWrite};

/// Chunks of the sparse object: the even ones all 0xA5 (one stored chunk, every time), the
/// odd ones holes. Its manifest has one 36-byte entry per chunk: 128 of them make it larger
/// than 4096 bytes, so it is stored in a blob file, which the list of contents then reads.
const SPARSE_CHUNKS: u64 = 128;

/// The bytes of the sparse object, made as they are read.
struct Sparse {
    pos: u64,
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let chunk = CHUNK_SIZE as u64;
        if self.pos >= SPARSE_CHUNKS * chunk || buf.is_empty() {
            return Ok(0);
        }
        let index = self.pos / chunk;
        let n = ((index + 1) * chunk - self.pos).min(buf.len() as u64) as usize;
        buf[..n].fill(if index.is_multiple_of(2) { 0xA5 } else { 0 });
        self.pos += n as u64;
        Ok(n)
    }
}

/// What an object holds.
enum Want {
    Bytes(Vec<u8>),
    Sparse,
}

/// Fills `buf` from `r` unless it ends first; returns how many bytes were read.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Returns whether `got` reads to its end without an error and holds what `want` holds.
fn same(got: &mut dyn Read, want: &mut dyn Read) -> bool {
    let (mut a, mut b) = (vec![0u8; CHUNK_SIZE], vec![0u8; CHUNK_SIZE]);
    loop {
        let (Ok(n), Ok(k)) = (fill(got, &mut a), fill(want, &mut b)) else {
            return false;
        };
        if n != k || a[..n] != b[..k] {
            return false;
        }
        if n < a.len() {
            return true;
        }
    }
}

/// Returns whether object `id` of `m` reads back whole, with the bytes it was given.
fn reads_back(m: &Metastore<RocksStore>, id: ObjectId, want: &Want) -> bool {
    let Ok(meta) = m.object_by_id(id) else {
        return false;
    };
    let Ok(mut reader) = m.open(&meta) else {
        return false;
    };
    match want {
        Want::Bytes(bytes) => same(&mut reader, &mut bytes.as_slice()),
        Want::Sparse => same(&mut reader, &mut Sparse { pos: 0 }),
    }
}

/// Puts `count` objects of 100 to 400 KiB, each its own bytes, from seed `seed` on.
fn put_small(
    m: &Metastore<RocksStore>,
    ds: DatasetId,
    seed: u8,
    count: u8,
) -> Vec<(ObjectId, Want)> {
    (seed..seed + count)
        .map(|i| {
            let bytes = crate::content::bytes((100 << 10) + usize::from(i) * 7_331, i);
            let path = ObjectPath::new(ds, "k", JobId(0), &format!("small{i}"));
            let meta = m.put_object(&path, &mut bytes.as_slice(), &mut |_| {});
            (meta.unwrap().id, Want::Bytes(bytes))
        })
        .collect()
}

/// Makes a store of 44 objects whose values lie in three blob files (each flush of the blob
/// column family makes one): small objects, the sparse object (past 8 MiB its chunks are
/// flushed), more small ones, a 9 MiB object (flushed too: the sparse object's manifest goes
/// with it), more small ones (flushed at the close or the next open).
fn fill_store(store: &Path) -> Vec<(ObjectId, Want)> {
    let m = Metastore::new(RocksStore::create(store).unwrap());
    let ds = DatasetId::random();
    m.create_dataset(ds).unwrap();
    m.add_partition(ds, "k").unwrap();
    m.open_job(ds, JobId(0)).unwrap();
    let mut objects = put_small(&m, ds, 0, 14);
    let path = ObjectPath::new(ds, "k", JobId(0), "sparse");
    let meta = m.put_object(&path, &mut Sparse { pos: 0 }, &mut |_| {});
    objects.push((meta.unwrap().id, Want::Sparse));
    objects.extend(put_small(&m, ds, 14, 14));
    let bytes = crate::content::bytes(9 << 20, 200);
    let path = ObjectPath::new(ds, "k", JobId(0), "large");
    let meta = m.put_object(&path, &mut bytes.as_slice(), &mut |_| {});
    objects.push((meta.unwrap().id, Want::Bytes(bytes)));
    objects.extend(put_small(&m, ds, 28, 14));
    objects
}

/// Runs `cronusfs --store STORE fsck`: its exit status and standard output and error.
fn fsck(store: &Path) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("--store")
        .arg(store)
        .arg("fsck")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Copies directory `from` (a store: files, and any directories below) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        match entry.file_type().unwrap() {
            t if t.is_dir() => copy_dir(&entry.path(), &target),
            t if t.is_file() => {
                std::fs::copy(entry.path(), &target).unwrap();
            }
            _ => {}
        }
    }
}

/// Returns the blob files of `store`, sorted.
fn blob_files(store: &Path) -> Vec<PathBuf> {
    let mut blobs: Vec<PathBuf> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "blob"))
        .collect();
    blobs.sort();
    blobs
}

/// Cuts the last 5 bytes off `file` (`truncate -s -5`).
fn cut_five_bytes(file: &Path) {
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - 5).unwrap();
}

/// Damages blob file `name` of a copy of `store` and returns what is wrong: each object fsck
/// names but that reads back, and each it does not name but that does not; and whether fsck
/// could not read the list of contents.
fn check_one_damage(
    store: &Path,
    copy: &Path,
    name: &std::ffi::OsStr,
    objects: &[(ObjectId, Want)],
) -> (Vec<String>, bool) {
    copy_dir(store, copy);
    cut_five_bytes(&copy.join(name));
    let (code, stdout, stderr) = fsck(copy);
    let is_named = |id: &ObjectId| {
        let id = id.to_string();
        stdout
            .lines()
            .any(|l| l.starts_with("object ") && l.contains(&id))
    };
    let m = Metastore::new(RocksStore::open(copy).unwrap());
    let mut wrong = Vec::new();
    let mut unreadable = 0;
    for (id, want) in objects {
        let (named, readable) = (is_named(id), reads_back(&m, *id, want));
        unreadable += usize::from(!readable);
        if named == readable {
            let said = if named { "names" } else { "does not name" };
            let reads = if readable {
                "reads back"
            } else {
                "cannot be read"
            };
            wrong.push(format!("{name:?}: fsck {said} object {id}, which {reads}"));
        }
    }
    let expected = if unreadable > 0 { Some(1) } else { Some(0) };
    if code != expected {
        wrong.push(format!(
            "{name:?}: fsck exits {code:?} with {unreadable} objects unreadable: {stderr}"
        ));
    }
    (wrong, stdout.contains("the list of contents: "))
}

#[test]
fn fsck_names_exactly_the_objects_a_cut_blob_file_makes_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let objects = fill_store(&store);
    // Opened and closed once more: whatever the close left in the log is in files now.
    let (code, stdout, stderr) = fsck(&store);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let clean = format!("{} objects, row indexes agree", objects.len());
    assert!(
        stdout.starts_with("clean: ") && stdout.contains(&clean),
        "{stdout}"
    );
    let blobs = blob_files(&store);
    assert!(blobs.len() >= 2, "{blobs:?}");
    let (mut wrong, mut unlisted) = (Vec::new(), false);
    for (i, blob) in blobs.iter().enumerate() {
        let copy = dir.path().join(format!("copy{i}"));
        let name = blob.file_name().unwrap();
        let (found, listing_failed) = check_one_damage(&store, &copy, name, &objects);
        wrong.extend(found);
        unlisted |= listing_failed;
        std::fs::remove_dir_all(&copy).unwrap();
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        unlisted,
        "no cut blob file held a manifest: the list of contents was always read whole ({blobs:?})"
    );
}

/// An object whose content's manifest is gone is named as referring to missing content, also
/// now that contents committed after fsck listed them are looked up on their own.
#[test]
fn fsck_names_an_object_whose_content_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (path, gone) = {
        let m = Metastore::new(RocksStore::create(&store).unwrap());
        let ds = DatasetId::random();
        m.create_dataset(ds).unwrap();
        m.add_partition(ds, "k").unwrap();
        m.open_job(ds, JobId(0)).unwrap();
        let path = ObjectPath::new(ds, "k", JobId(0), "lost");
        let meta = m
            .put_object(&path, &mut &b"soon missing"[..], &mut |_| {})
            .unwrap();
        let kept = ObjectPath::new(ds, "k", JobId(0), "kept");
        m.put_object(&kept, &mut &b"still here"[..], &mut |_| {})
            .unwrap();
        m.storage()
            .blob_del(&format!("content/{}", meta.content))
            .unwrap();
        (path, meta.content)
    };
    let (code, out, _) = fsck(&store);
    assert_eq!(code, Some(1), "{out}");
    let named: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("missing content"))
        .collect();
    assert_eq!(named.len(), 1, "{out}");
    assert!(named[0].contains(&path.to_string()) && named[0].contains(&gone.to_string()));
}
