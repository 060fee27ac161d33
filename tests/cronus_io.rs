//! Export to the Python Cronus layout and import back: every object, row and protobuf info
//! survives the round trip; the exported files are where and what the Python Cronus expects.

use std::io::Read;

use cronusfs::meta::cronus_io::{export_cronus, import_cronus};
use cronusfs::meta::{JobId, MetaError, Metastore, ObjectPath};
use cronusfs::pb::cronus::{Configuration, Menu};
use cronusfs::pb::store::{ConfigObjectInfo, CronusObjectStore, MenuObjectInfo, cronus_object};
use cronusfs::storage::{MemoryStore, RocksStore, RowWrite, Storage, Valu};
use prost::Message;

use crate::arrow_meta::arrow_file;
use crate::conformance::sorted;

fn all_rows(s: &dyn Storage) -> Vec<cronusfs::storage::Row> {
    sorted(
        s.backup_rows(1000)
            .map(|c| c.unwrap())
            .collect::<Vec<_>>()
            .concat(),
    )
}

#[test]
fn export_then_import_round_trips_everything() {
    let m = Metastore::new(MemoryStore::new());
    let menu = Menu {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: "m.menu.dat".into(),
        graphs: vec![],
    };
    let config = Configuration {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: "c.config.dat".into(),
        ..Default::default()
    };
    m.register_menu(&menu, MenuObjectInfo::default()).unwrap();
    m.register_config(&config, ConfigObjectInfo::default())
        .unwrap();
    let ds = m.register_dataset(&menu.uuid, &config.uuid).unwrap();
    for key in ["key1", "key2"] {
        m.add_partition(ds, key).unwrap();
    }
    for job in 0..3 {
        assert_eq!(m.new_job(ds).unwrap(), JobId(job));
        for key in ["key1", "key2"] {
            m.put_object(
                &ObjectPath::new(ds, key, JobId(job), "data.arrow"),
                &mut &arrow_file(job as usize + 1)[..],
                &mut |_| {},
            )
            .unwrap();
        }
    }
    let p = ObjectPath::new(ds, "key1", JobId(0), "data.arrow");
    m.put_object(&p, &mut &b"second version"[..], &mut |_| {})
        .unwrap();
    let obj = m.object(&p).unwrap();
    m.storage()
        .set_rows_by_id_prop(
            &cronusfs::storage::Iden::new(obj.id.to_string()).unwrap(),
            "user.quality",
            &Valu::Int(3),
        )
        .unwrap();
    m.gc().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let report = export_cronus(&m, dir.path(), "test").unwrap();
    assert_eq!(
        (report.messages, report.datasets, report.objects),
        (2, 1, 6)
    );

    // The layout the Python Cronus reads: the store message, and every member under its name.
    let store =
        CronusObjectStore::decode(std::fs::read(&report.store_file).unwrap().as_slice()).unwrap();
    assert!(store.name.ends_with(".test.cronus.pb") && store.name.starts_with(&store.uuid));
    let objects = store.info.unwrap().objects;
    assert_eq!(objects.len(), 3);
    assert!(dir.path().join("m.menu.dat").is_file() && dir.path().join("c.config.dat").is_file());
    let Some(cronus_object::Info::Dataset(info)) = &objects[2].info else {
        panic!("dataset last")
    };
    assert_eq!(
        (info.partitions.clone(), info.job_idx, info.files.len()),
        (vec!["key1".to_string(), "key2".into()], 3, 6)
    );
    for f in &info.files {
        assert!(
            f.name.starts_with(&format!("{ds}.job_")) && dir.path().join(&f.name).is_file(),
            "{}",
            f.name
        );
        assert_eq!(
            f.address,
            format!(
                "file://{}",
                dir.path().canonicalize().unwrap().join(&f.name).display()
            )
        );
    }

    let back = Metastore::new(MemoryStore::new());
    let r = import_cronus(&back, dir.path()).unwrap();
    assert_eq!(
        (r.messages, r.datasets, r.objects, r.skipped.len()),
        (2, 1, 6, 0)
    );
    assert_eq!(back.menu(&menu.uuid).unwrap(), menu);
    assert_eq!(back.config(&config.uuid).unwrap(), config);
    assert_eq!(
        all_rows(back.storage()),
        all_rows(m.storage()),
        "every row, times included"
    );
    for o in m.list(ds, "", "").unwrap() {
        assert_eq!(back.object_by_id(o.id).unwrap(), o);
        assert_eq!(
            back.info(&o.id.to_string()).unwrap(),
            m.info(&o.id.to_string()).unwrap(),
            "protobuf info"
        );
        let (mut a, mut b) = (Vec::new(), Vec::new());
        m.open(&o).unwrap().read_to_end(&mut a).unwrap();
        back.open(&o).unwrap().read_to_end(&mut b).unwrap();
        assert!(a == b);
    }
    assert!(
        matches!(
            import_cronus(&back, dir.path()),
            Err(MetaError::DuplicateUuid(_))
        ),
        "a second import is refused"
    );
}

#[test]
fn import_without_the_sidecar_and_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let m = Metastore::new(RocksStore::create(&src).unwrap());
    let menu = Menu {
        uuid: "menu-uuid".into(),
        name: "menu-uuid.menu.dat".into(),
        graphs: vec![],
    };
    let config = Configuration {
        uuid: "config-uuid".into(),
        name: "config-uuid.config.dat".into(),
        ..Default::default()
    };
    m.register_menu(&menu, MenuObjectInfo::default()).unwrap();
    m.register_config(&config, ConfigObjectInfo::default())
        .unwrap();
    let ds = m.register_dataset("menu-uuid", "config-uuid").unwrap();
    m.add_partition(ds, "k").unwrap();
    m.new_job(ds).unwrap();
    let meta = m
        .put_object(
            &ObjectPath::new(ds, "k", JobId(0), "x.arrow"),
            &mut &arrow_file(2)[..],
            &mut |_| {},
        )
        .unwrap();
    drop(m);

    let out = dir.path().join("cronus");
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cronusfs"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&[
        "export-cronus".as_ref(),
        src.as_os_str(),
        out.as_os_str(),
        "--name".as_ref(),
        "t".as_ref(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".rows.jsonl") {
            std::fs::remove_file(path).unwrap(); // As the Python Cronus writes it: no sidecar.
        }
    }
    let dst = dir.path().join("dst");
    let o = run(&["import-cronus".as_ref(), dst.as_os_str(), out.as_os_str()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("2 menus/configurations, 1 datasets, 1 objects, 0 job entries, 0 rows")
    );
    let back = Metastore::new(RocksStore::open(&dst).unwrap());
    let got = back.object_by_id(meta.id).unwrap();
    assert_eq!(
        (got.content, got.cronus_name.clone(), got.table.clone()),
        (meta.content, meta.cronus_name.clone(), meta.table)
    );
    assert_eq!(
        got.path.name, meta.cronus_name,
        "without the sidecar an object is named by its Cronus name"
    );
    assert_eq!(back.partitions(ds).unwrap(), ["k"]);
    assert_eq!(back.jobs(ds).unwrap(), [JobId(0)]);
}

/// A menu registered with no name, and a configuration named `../x`, are exported under
/// `<uuid>.<kind>.dat` inside the export's directory (never beside or above it), and an
/// import of the export gives both back, byte for byte.
#[test]
fn members_without_a_plain_file_name_are_exported_under_their_uuid() {
    let m = Metastore::new(MemoryStore::new());
    let menu = Menu {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: String::new(),
        graphs: vec![],
    };
    let config = Configuration {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: "../escaped.config.dat".into(),
        ..Default::default()
    };
    m.register_menu(&menu, MenuObjectInfo::default()).unwrap();
    m.register_config(&config, ConfigObjectInfo::default())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let report = export_cronus(&m, &out, "test").unwrap();
    assert_eq!(report.messages, 2);
    assert!(!dir.path().join("escaped.config.dat").exists());
    for (uuid, kind) in [(&menu.uuid, "menu"), (&config.uuid, "config")] {
        assert!(out.join(format!("{uuid}.{kind}.dat")).is_file(), "{kind}");
    }
    let back = Metastore::new(MemoryStore::new());
    import_cronus(&back, &out).unwrap();
    assert_eq!(back.menu(&menu.uuid).unwrap(), menu);
    assert_eq!(back.config(&config.uuid).unwrap(), config);
}

/// A job's entries (histograms, job metadata, a table, a log written later, one never
/// written) are exported into the dataset's lists with their bytes beside them, and imported
/// back, with and without the rows file: same uuids, names, infos, jobs and bytes.
#[test]
fn job_entries_round_trip_through_the_cronus_layout() {
    use cronusfs::pb::store::{
        CronusObject, HistsObjectInfo, JobObjectInfo, LogObjectInfo, TableObjectInfo,
    };
    let m = Metastore::new(MemoryStore::new());
    let ds = cronusfs::meta::DatasetId::random();
    m.create_dataset(ds).unwrap();
    m.add_partition(ds, "key").unwrap();
    let job = m.new_job(ds).unwrap();
    let entry = |suffix: &str, info: cronus_object::Info| {
        let uuid = uuid::Uuid::new_v4().to_string();
        CronusObject {
            name: format!("{ds}.job_{}.{uuid}.{suffix}", job.0),
            uuid,
            parent_uuid: ds.to_string(),
            info: Some(info),
            ..Default::default()
        }
    };
    let hists = entry(
        "hist.pb",
        cronus_object::Info::Hists(HistsObjectInfo::default()),
    );
    let meta = entry("job.pb", cronus_object::Info::Job(JobObjectInfo::default()));
    let log = entry("log", cronus_object::Info::Log(LogObjectInfo::default()));
    let unwritten = entry("log", cronus_object::Info::Log(LogObjectInfo::default()));
    let mut table = entry("", cronus_object::Info::Table(TableObjectInfo::default()));
    table.name = "schema.pb".into(); // a table's name is its own: the rows file says its job
    m.register_entry(ds, job, &hists, Some(b"hist bytes"))
        .unwrap();
    m.register_entry(ds, job, &meta, Some(b"job bytes"))
        .unwrap();
    m.register_entry(ds, job, &log, None).unwrap();
    m.set_entry_content(&log.uuid, b"log lines").unwrap();
    m.register_entry(ds, job, &unwritten, None).unwrap();
    m.register_entry(ds, job, &table, Some(b"table bytes"))
        .unwrap();
    assert!(matches!(
        m.register_entry(ds, job, &hists, None),
        Err(MetaError::DuplicateUuid(_))
    ));
    assert!(matches!(m.remove_job(ds, job), Err(MetaError::NotEmpty(_))));
    m.gc().unwrap(); // keeps what entries hold
    let dir = tempfile::tempdir().unwrap();
    let report = export_cronus(&m, dir.path(), "entries").unwrap();
    assert_eq!(report.entries, 5);
    let exported = CronusObjectStore::decode(&*std::fs::read(&report.store_file).unwrap()).unwrap();
    let Some(cronus_object::Info::Dataset(info)) = &exported.info.unwrap().objects[0].info else {
        panic!("no dataset");
    };
    assert_eq!(
        (info.hists.len(), info.jobs.len(), info.logs.len()),
        (1, 1, 2)
    );
    assert_eq!(info.tables.len(), 1);
    for with_rows in [true, false] {
        if !with_rows {
            let sidecar = report
                .store_file
                .to_string_lossy()
                .replace(".cronus.pb", ".rows.jsonl");
            std::fs::remove_file(sidecar).unwrap();
        }
        let back = Metastore::new(MemoryStore::new());
        let imported = import_cronus(&back, dir.path()).unwrap();
        // Without the rows file a table's job is not known: it is skipped, and said.
        assert_eq!(imported.entries, if with_rows { 5 } else { 4 });
        for (e, bytes) in [
            (&hists, Some(&b"hist bytes"[..])),
            (&meta, Some(b"job bytes")),
            (&log, Some(b"log lines")),
            (&unwritten, None),
        ] {
            let got = back.entry(&e.uuid).unwrap();
            assert_eq!((&got.object.name, &got.object.info), (&e.name, &e.info));
            assert_eq!((got.dataset, got.job), (ds, job));
            match bytes {
                Some(b) => assert_eq!(back.entry_bytes(&e.uuid).unwrap(), b),
                None => assert!(back.entry_bytes(&e.uuid).is_err()),
            }
        }
        match with_rows {
            true => assert_eq!(back.entry_bytes(&table.uuid).unwrap(), b"table bytes"),
            false => assert!(imported.skipped.iter().any(|s| s.contains("schema.pb"))),
        }
    }
}

/// Members that share a name (two tables of two datasets both `schema.pb`, a table named as
/// an object's file, two menus of one name) are exported each under a file of its own, and
/// import back each with its own bytes; an entry whose name says another job than the one
/// it is in is imported in its own job, and the job counter stays past every job.
#[test]
fn members_of_one_name_are_exported_apart() {
    use cronusfs::pb::store::{CronusObject, TableObjectInfo};
    let m = Metastore::new(MemoryStore::new());
    let menu = |uuid: String| Menu {
        uuid,
        name: "menu.pb".into(),
        graphs: vec![],
    };
    let menus = [
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    ];
    for uuid in &menus {
        m.register_menu(&menu(uuid.clone()), MenuObjectInfo::default())
            .unwrap();
    }
    let mut tables = Vec::new();
    let mut object_name = String::new();
    for n in 0..2u8 {
        let ds = cronusfs::meta::DatasetId::random();
        m.create_dataset(ds).unwrap();
        m.add_partition(ds, "key").unwrap();
        let job = m.new_job(ds).unwrap();
        let path = ObjectPath::new(ds, "key", job, "data.arrow");
        object_name = m
            .put_object(&path, &mut &[n; 10][..], &mut |_| {})
            .unwrap()
            .cronus_name;
        let table = CronusObject {
            uuid: uuid::Uuid::new_v4().to_string(),
            // The second table lies about its job, and takes the first object's name.
            name: match n {
                0 => "schema.pb".into(),
                _ => format!("{ds}.job_7.lie"),
            },
            info: Some(cronus_object::Info::Table(TableObjectInfo::default())),
            ..Default::default()
        };
        m.register_entry(ds, job, &table, Some(&[100 + n; 5]))
            .unwrap();
        let same = CronusObject {
            uuid: uuid::Uuid::new_v4().to_string(),
            name: if n == 0 {
                "schema.pb".into()
            } else {
                object_name.clone()
            },
            ..table.clone()
        };
        // A third one named as the second's fallback file would be.
        let squatter = CronusObject {
            uuid: uuid::Uuid::new_v4().to_string(),
            name: format!("{}.entry.dat", same.uuid),
            ..table.clone()
        };
        // Registered first, so it is exported first and takes that name.
        m.register_entry(ds, job, &squatter, Some(&[50 + n; 5]))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        m.register_entry(ds, job, &same, Some(&[200 + n; 5]))
            .unwrap();
        tables.push((ds, table, [100 + n; 5]));
        tables.push((ds, same, [200 + n; 5]));
        tables.push((ds, squatter, [50 + n; 5]));
    }
    let dir = tempfile::tempdir().unwrap();
    let report = export_cronus(&m, dir.path(), "same-names").unwrap();
    assert_eq!((report.messages, report.objects, report.entries), (2, 2, 6));
    let back = Metastore::new(MemoryStore::new());
    let imported = import_cronus(&back, dir.path()).unwrap();
    assert_eq!(imported.entries, 6, "{:?}", imported.skipped);
    for uuid in &menus {
        assert_eq!(back.menu(uuid).unwrap().uuid, *uuid);
    }
    for (ds, table, bytes) in &tables {
        assert_eq!(
            back.entry_bytes(&table.uuid).unwrap(),
            bytes,
            "{}",
            table.name
        );
        assert_eq!(back.entry(&table.uuid).unwrap().job, JobId(0));
        assert_eq!(back.jobs(*ds).unwrap(), [JobId(0)], "no job 7 made up");
    }
    for ds in back.datasets().unwrap() {
        assert_eq!(
            back.new_job(ds).unwrap(),
            JobId(1),
            "the counter is past every job"
        );
        let objects = back.list(ds, "", "").unwrap();
        assert_eq!(objects.len(), 1);
        let n = u8::from(objects[0].cronus_name != object_name);
        let mut bytes = Vec::new();
        back.open(&objects[0])
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert!(
            bytes == [0u8; 10] || bytes == [1u8; 10],
            "an object keeps its own bytes ({n})"
        );
    }
    let long = CronusObject {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: "x".repeat(1025),
        info: Some(cronus_object::Info::Table(TableObjectInfo::default())),
        ..Default::default()
    };
    let (ds, ..) = &tables[0];
    assert!(matches!(
        m.register_entry(*ds, JobId(0), &long, None),
        Err(MetaError::BadName { .. })
    ));
    let reserved = CronusObject {
        uuid: "cronusfs:session:x".into(),
        ..long.clone()
    };
    assert!(matches!(
        m.register_entry(*ds, JobId(0), &reserved, None),
        Err(MetaError::BadName { .. })
    ));
}
