//! The Cronus catalogue through the library: the seed walkthrough (menu, config, dataset, three
//! partitions, ten jobs, an object per job and partition, close, reopen, read all again), the
//! Cronus error cases as typed errors, versions, listing, and gc.

use std::io::Read;

use cronusfs::meta::{DatasetId, JobId, MetaError, Metastore, ObjectPath};
use cronusfs::pb::cronus::{Configuration, Menu};
use cronusfs::pb::store::{ConfigObjectInfo, FileType, MenuObjectInfo};
use cronusfs::storage::{MemoryStore, RocksStore, Storage};

fn menu() -> Menu {
    let uuid = uuid::Uuid::new_v4().to_string();
    Menu {
        name: format!("{uuid}.menu.dat"),
        uuid,
        graphs: vec![],
    }
}

fn config() -> Configuration {
    let uuid = uuid::Uuid::new_v4().to_string();
    Configuration {
        name: format!("{uuid}.config.dat"),
        uuid,
        max_malloc_size_bytes: 1 << 30,
        ..Default::default()
    }
}

/// Registers a menu, a configuration and a dataset with `keys` as partitions.
pub fn dataset<S: Storage>(m: &Metastore<S>, keys: &[&str]) -> (DatasetId, Menu, Configuration) {
    let (menu, config) = (menu(), config());
    m.register_menu(&menu, MenuObjectInfo::default()).unwrap();
    m.register_config(&config, ConfigObjectInfo::default())
        .unwrap();
    let ds = m.register_dataset(&menu.uuid, &config.uuid).unwrap();
    for k in keys {
        m.add_partition(ds, k).unwrap();
    }
    (ds, menu, config)
}

fn content_for(job: u32, key: &str) -> Vec<u8> {
    format!("a,b,c\n{job},{key},x\n")
        .repeat(200 + job as usize)
        .into_bytes()
}

pub fn read_all<S: Storage>(m: &Metastore<S>, path: &ObjectPath) -> Vec<u8> {
    let meta = m.object(path).unwrap();
    let mut out = Vec::new();
    m.open(&meta).unwrap().read_to_end(&mut out).unwrap();
    out
}

#[test]
fn seed_walkthrough_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(RocksStore::create(&path).unwrap());
    seed_walkthrough(&|| Metastore::new(RocksStore::open(&path).unwrap()));
}

/// The seed walkthrough on the store `open` opens (again after the first part: a reopen).
pub fn seed_walkthrough<S: Storage>(open: &dyn Fn() -> Metastore<S>) {
    let keys = ["key1", "key2", "key3"];
    let (ds, menu, config, ids) = {
        let m = open();
        let (ds, menu, config) = dataset(&m, &keys);
        assert_eq!(m.partitions(ds).unwrap(), keys);
        assert_eq!(m.menu(&menu.uuid).unwrap(), menu);
        assert_eq!(m.config(&config.uuid).unwrap(), config);
        let mut ids = Vec::new();
        for n in 0..10 {
            let job = m.new_job(ds).unwrap();
            assert_eq!(job, JobId(n), "jobs count from 0");
            for key in keys {
                let p = ObjectPath::new(ds, key, job, "data.csv");
                let meta = m
                    .put_object(&p, &mut &content_for(n, key)[..], &mut |_| {})
                    .unwrap();
                assert_eq!(meta.file_type, FileType::Csv);
                assert!(
                    meta.cronus_name
                        .starts_with(&format!("{ds}.job_{n}.part_{key}."))
                );
                assert!(meta.cronus_name.ends_with(".csv"));
                ids.push(meta.id);
            }
        }
        (ds, menu, config, ids)
    };
    let m = open();
    assert_eq!(m.datasets().unwrap(), vec![ds]);
    assert_eq!(m.partitions(ds).unwrap(), keys);
    assert_eq!(m.jobs(ds).unwrap(), (0..10).map(JobId).collect::<Vec<_>>());
    assert_eq!(m.menu(&menu.uuid).unwrap(), menu);
    assert_eq!(m.config(&config.uuid).unwrap(), config);
    assert_eq!(
        m.dataset_transform(ds).unwrap(),
        Some((menu.uuid.clone(), config.uuid.clone()))
    );
    for n in 0..10 {
        for key in keys {
            let p = ObjectPath::new(ds, key, JobId(n), "data.csv");
            assert!(read_all(&m, &p) == content_for(n, key), "{p}");
        }
    }
    for id in &ids {
        let meta = m.object_by_id(*id).unwrap();
        assert!(m.content().verify(meta.content).unwrap().is_empty());
    }
    assert_eq!(
        m.list(ds, &format!("{ds}.job_3."), ".csv").unwrap().len(),
        3
    );
    assert_eq!(m.list(ds, "", "").unwrap().len(), 30);
    assert_eq!(m.objects(ds, "key2", JobId(4)).unwrap().len(), 1);
}

#[test]
fn cronus_error_cases_are_typed() {
    let m = Metastore::new(MemoryStore::new());
    let (ds, menu, config) = dataset(&m, &["key"]);
    let ghost: DatasetId = uuid::Uuid::new_v4().to_string().parse().unwrap();
    assert!(matches!(
        m.add_partition(ghost, "k"),
        Err(MetaError::NoSuchDataset(_))
    ));
    assert!(matches!(m.new_job(ghost), Err(MetaError::NoSuchDataset(_))));
    assert!(matches!(
        m.partitions(ghost),
        Err(MetaError::NoSuchDataset(_))
    ));
    assert!(matches!(
        m.add_partition(ds, "key"),
        Err(MetaError::PartitionExists { .. })
    ));
    assert!(matches!(
        m.register_menu(&menu, MenuObjectInfo::default()),
        Err(MetaError::DuplicateUuid(_))
    ));
    assert!(matches!(
        m.register_dataset("nope", &config.uuid),
        Err(MetaError::NoSuchMenu(_))
    ));
    assert!(matches!(
        m.register_dataset(&menu.uuid, "nope"),
        Err(MetaError::NoSuchConfig(_))
    ));
    assert!(
        matches!(
            m.register_dataset(&config.uuid, &config.uuid),
            Err(MetaError::NoSuchMenu(_))
        ),
        "wrong kind"
    );
    assert!(matches!(
        m.menu(&config.uuid),
        Err(MetaError::NoSuchMenu(_))
    ));
    let job = m.new_job(ds).unwrap();
    let put = |key: &str, job: JobId, name: &str| {
        m.put_object(
            &ObjectPath::new(ds, key, job, name),
            &mut &b"x"[..],
            &mut |_| {},
        )
    };
    assert!(matches!(
        put("other", job, "f"),
        Err(MetaError::NoSuchPartition { .. })
    ));
    assert!(matches!(
        put("key", JobId(7), "f"),
        Err(MetaError::NoSuchJob { job: 7, .. })
    ));
    for bad in ["", "a//b", "/a", "..", "n\0ul"] {
        assert!(
            matches!(put("key", job, bad), Err(MetaError::BadName { .. })),
            "{bad:?}"
        );
    }
    for bad in ["", "a/b", "..", "n\0ul"] {
        assert!(
            matches!(m.add_partition(ds, bad), Err(MetaError::BadName { .. })),
            "{bad:?}"
        );
    }
    // An object name may be a path, but only into a folder that exists.
    assert!(matches!(
        put("key", job, "no-folder/f"),
        Err(MetaError::NoSuchFolder(_))
    ));
    assert!(matches!(
        m.object(&ObjectPath::new(ds, "key", job, "absent")),
        Err(MetaError::NoSuchObject(_))
    ));
    assert!(matches!(
        "not-a-uuid".parse::<DatasetId>(),
        Err(MetaError::BadName { .. })
    ));
    assert_eq!(
        m.content().ids().unwrap().len(),
        2,
        "refused puts stored no content"
    );
}

#[test]
fn versions_dedup_and_gc() {
    versions_dedup_and_gc_on(&Metastore::new(MemoryStore::new()));
}

/// Versions, dedup and gc on catalogue `m` (empty).
pub fn versions_dedup_and_gc_on<S: Storage>(m: &Metastore<S>) {
    // Reclaimed at once: no history kept past the present.
    m.set_history_retention(std::time::Duration::ZERO).unwrap();
    let (ds, ..) = dataset(m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let p = ObjectPath::new(ds, "k", job, "obj");
    let v1 = m
        .put_object(&p, &mut &b"{\"v\": 1}"[..], &mut |_| {})
        .unwrap();
    let v2 = m
        .put_object(&p, &mut &b"{\"v\": 2}"[..], &mut |_| {})
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.id, v2.id, "a new version of the same object");
    assert_eq!(v2.file_type, FileType::Json);
    assert_eq!(read_all(m, &p), b"{\"v\": 2}");
    assert!(
        m.content().contains(v1.content).unwrap(),
        "old content kept until gc"
    );
    // An identical object elsewhere shares the content.
    let twin = ObjectPath::new(ds, "k", job, "twin");
    m.put_object(&twin, &mut &b"{\"v\": 2}"[..], &mut |_| {})
        .unwrap();
    let report = m.gc().unwrap();
    assert_eq!(report.contents, 1, "only the superseded version is freed");
    assert!(!m.content().contains(v1.content).unwrap());
    m.delete_object(&p).unwrap();
    assert!(matches!(m.object(&p), Err(MetaError::NoSuchObject(_))));
    assert_eq!(
        m.gc().unwrap().contents,
        0,
        "the twin still refers to the content"
    );
    assert_eq!(read_all(m, &twin), b"{\"v\": 2}");
    assert_eq!(
        m.objects(ds, "k", job)
            .unwrap()
            .iter()
            .map(|o| o.path.name.as_str())
            .collect::<Vec<_>>(),
        ["twin"]
    );
}

/// An object's `cronus:history` rows name its latest 16 versions only (every read of the
/// object reads them all: one per version made a file rewritten all day slower at each
/// rewrite), while the store's history still lists every version (`cronusfs log`).
#[test]
fn an_object_names_its_latest_versions_and_the_log_every_one() {
    let m = Metastore::new(MemoryStore::new());
    let (ds, ..) = dataset(&m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let p = ObjectPath::new(ds, "k", job, "obj");
    let mut id = None;
    for v in 1..=40 {
        let put = m.put_object(&p, &mut format!("v{v}").as_bytes(), &mut |_| {});
        id = Some(put.unwrap().id);
    }
    let iden = id.unwrap().iden();
    let mut named: Vec<i64> = (m.node_rows(&iden).unwrap().iter())
        .filter(|r| r.prop == "cronus:history")
        .map(|r| {
            r.valu
                .to_string()
                .split_once(':')
                .unwrap()
                .0
                .parse()
                .unwrap()
        })
        .collect();
    named.sort_unstable();
    assert_eq!(named, (25..=40).collect::<Vec<i64>>());
    let mut logged: Vec<i64> = (m.log(&iden).unwrap().iter())
        .filter_map(|e| e.version)
        .collect();
    logged.dedup();
    assert_eq!(logged, (1..=40).collect::<Vec<i64>>());
}

#[test]
fn large_objects_stream_in_and_out() {
    large_objects_stream_in_and_out_of(&Metastore::new(MemoryStore::new()));
}

/// A 20 MiB object in and out of catalogue `m` (empty), chunk by chunk.
pub fn large_objects_stream_in_and_out_of<S: Storage>(m: &Metastore<S>) {
    let (ds, ..) = dataset(m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let p = ObjectPath::new(ds, "k", job, "big.bin");
    let size = 20 * (1 << 20) + 3;
    let mut seen = 0;
    let meta = m
        .put_object(&p, &mut std::io::repeat(7).take(size), &mut |n| seen = n)
        .unwrap();
    assert_eq!((meta.size, seen), (size, size));
    assert_eq!(meta.file_type, FileType::None);
    let mut reader = m.open(&meta).unwrap();
    let (mut total, mut buf) = (0u64, vec![0u8; 65536]);
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|b| *b == 7));
        total += n as u64;
    }
    assert_eq!(total, size);
}

/// gc with mark sets of two ids each (every set spills sorted runs to disk, and the sweep
/// merges dozens of them) frees exactly what nothing refers to, like any budget: the deleted
/// objects' contents and the overwritten versions', never a shared one or a live one.
#[test]
fn gc_with_mark_sets_spilled_to_disk_frees_exactly_what_nothing_refers_to() {
    let dir = tempfile::tempdir().unwrap();
    let m = Metastore::new(RocksStore::create(&dir.path().join("store")).unwrap());
    m.set_history_retention(std::time::Duration::ZERO).unwrap();
    let (ds, ..) = dataset(&m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let path = |i: usize| ObjectPath::new(ds, "k", job, &format!("o{i}"));
    for i in 0..40 {
        m.put_object(
            &path(i),
            &mut format!("object {i}\n").as_bytes(),
            &mut |_| {},
        )
        .unwrap();
    }
    for i in 40..50 {
        m.put_object(&path(i), &mut &b"shared\n"[..], &mut |_| {})
            .unwrap();
    }
    for i in 0..15 {
        m.delete_object(&path(i)).unwrap();
    }
    for i in 15..20 {
        m.put_object(&path(i), &mut format!("new {i}\n").as_bytes(), &mut |_| {})
            .unwrap();
    }
    m.delete_object(&path(40)).unwrap();
    let before = m.content().ids().unwrap().len();
    let (mut examined, mut total) = (0, 0);
    let report = m
        .gc_within(64, &mut |done, all| (examined, total) = (done, all))
        .unwrap();
    assert_eq!((report.contents, report.chunks), (20, 20), "{report:?}");
    // Every content and every chunk (one each: small contents), the two messages' too.
    assert_eq!((examined, total), (2 * before as u64, 2 * before as u64));
    assert_eq!(before, 46 + 2);
    assert_eq!(m.content().ids().unwrap().len(), before - 20);
    for i in 15..50 {
        let want = match i {
            15..20 => format!("new {i}\n"),
            20..40 => format!("object {i}\n"),
            _ if i == 40 => continue,
            _ => "shared\n".to_string(),
        };
        assert_eq!(read_all(&m, &path(i)), want.as_bytes(), "o{i}");
    }
    assert_eq!(m.gc_within(64, &mut |_, _| {}).unwrap().contents, 0);
}
