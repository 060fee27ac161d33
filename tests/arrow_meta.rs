//! Arrow metadata at commit: an Arrow IPC file or stream put into the catalogue gets its schema,
//! counts and custom metadata recorded as rows and in the Cronus FileObjectInfo; bytes that only
//! look like Arrow are stored intact, typed as what they are, and never crash the inspection.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::{FileWriter, StreamWriter};
use arrow_schema::{DataType, Field, Schema};
use cronusfs::meta::table_meta::{self, TableField};
use cronusfs::meta::{JobId, Metastore, ObjectMeta, ObjectPath};
use cronusfs::pb::cronus::{Configuration, Menu};
use cronusfs::pb::store::{ConfigObjectInfo, FileType, MenuObjectInfo};
use cronusfs::storage::{MemoryStore, PropQuery, RowRead, Valu};

/// The Cronus test batch: f0 = [1,2,3,4], f1 = ['foo','bar','baz',null], f2 = [true,null,false,true].
pub fn batch() -> RecordBatch {
    let meta = HashMap::from([("origin".to_string(), "cronusfs-test".to_string())]);
    let schema = Schema::new(vec![
        Field::new("f0", DataType::Int64, false),
        Field::new("f1", DataType::Utf8, true),
        Field::new("f2", DataType::Boolean, true),
    ])
    .with_metadata(meta);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
        Arc::new(StringArray::from(vec![
            Some("foo"),
            Some("bar"),
            Some("baz"),
            None,
        ])),
        Arc::new(BooleanArray::from(vec![
            Some(true),
            None,
            Some(false),
            Some(true),
        ])),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).unwrap()
}

/// An Arrow IPC file of `batches` copies of [`batch`].
pub fn arrow_file(batches: usize) -> Vec<u8> {
    let b = batch();
    let mut w = FileWriter::try_new(Vec::new(), &b.schema()).unwrap();
    for _ in 0..batches {
        w.write(&b).unwrap();
    }
    w.into_inner().unwrap()
}

fn arrow_stream(batches: usize) -> Vec<u8> {
    let b = batch();
    let mut w = StreamWriter::try_new(Vec::new(), &b.schema()).unwrap();
    for _ in 0..batches {
        w.write(&b).unwrap();
    }
    w.into_inner().unwrap()
}

pub fn store() -> (Metastore<MemoryStore>, ObjectPath) {
    let m = Metastore::new(MemoryStore::new());
    let (menu, config) = (
        Menu {
            uuid: "menu-1".into(),
            ..Default::default()
        },
        Configuration {
            uuid: "config-1".into(),
            ..Default::default()
        },
    );
    m.register_menu(&menu, MenuObjectInfo::default()).unwrap();
    m.register_config(&config, ConfigObjectInfo::default())
        .unwrap();
    let ds = m.register_dataset("menu-1", "config-1").unwrap();
    m.add_partition(ds, "key").unwrap();
    let job = m.new_job(ds).unwrap();
    assert_eq!(job, JobId(0));
    (m, ObjectPath::new(ds, "key", job, "data.arrow"))
}

pub fn put(m: &Metastore<MemoryStore>, p: &ObjectPath, bytes: &[u8]) -> ObjectMeta {
    m.put_object(p, &mut &bytes[..], &mut |_| {}).unwrap()
}

pub fn expected_fields() -> Vec<TableField> {
    [
        ("f0", "Int64", false),
        ("f1", "Utf8", true),
        ("f2", "Boolean", true),
    ]
    .map(|(n, t, null)| TableField {
        name: n.into(),
        data_type: t.into(),
        nullable: null,
    })
    .to_vec()
}

#[test]
fn arrow_file_metadata_becomes_rows() {
    let (m, p) = store();
    let bytes = arrow_file(10);
    let meta = put(&m, &p, &bytes);
    assert_eq!(meta.file_type, FileType::Arrow);
    let arrow = meta.table.clone().expect("Arrow metadata");
    assert_eq!(
        (arrow.num_columns(), arrow.num_rows, arrow.num_batches),
        (3, 40, 10)
    );
    assert_eq!(arrow.fields, expected_fields());
    assert_eq!(
        arrow.metadata.get("origin").map(String::as_str),
        Some("cronusfs-test")
    );
    assert_eq!(m.object(&p).unwrap(), meta, "read back from rows");

    let rows = m.storage();
    let forty = Valu::Int(40);
    let hit = rows
        .rows_by_prop(&PropQuery::new("cronus:arrow:num_rows").valu(&forty))
        .unwrap();
    assert_eq!(hit.len(), 1);
    assert_eq!(
        rows.size_by_ge("cronus:arrow:num_batches", 10, None)
            .unwrap(),
        1
    );
    let utf8 = Valu::from("Utf8");
    assert_eq!(
        rows.size_by_prop(&PropQuery::new("cronus:arrow:field:f1").valu(&utf8))
            .unwrap(),
        1
    );

    let mut back = Vec::new();
    m.open(&meta).unwrap().read_to_end(&mut back).unwrap();
    let reader = FileReader::try_new(std::io::Cursor::new(back), None).unwrap();
    assert_eq!(reader.num_batches(), 10, "a real reader sees ten batches");
}

#[test]
fn arrow_stream_metadata_becomes_rows() {
    let (m, p) = store();
    let meta = put(&m, &p, &arrow_stream(7));
    assert_eq!(meta.file_type, FileType::ArrowStream);
    let arrow = meta.table.expect("Arrow metadata");
    assert_eq!(
        (arrow.num_columns(), arrow.num_rows, arrow.num_batches),
        (3, 28, 7)
    );
    assert_eq!(arrow.fields, expected_fields());
}

#[test]
fn a_new_non_arrow_version_drops_the_arrow_rows() {
    let (m, p) = store();
    put(&m, &p, &arrow_file(2));
    let v2 = put(&m, &p, b"just text\n");
    assert_eq!(
        (v2.version, v2.file_type, v2.table.clone()),
        (2, FileType::None, None)
    );
    assert_eq!(m.object(&p).unwrap(), v2);
    assert_eq!(
        m.storage()
            .size_by_prop(&PropQuery::new("cronus:arrow:num_rows"))
            .unwrap(),
        0
    );
}

#[test]
fn pretend_arrow_is_stored_intact_and_typed_as_what_it_is() {
    let (m, p) = store();
    let good = arrow_file(3);
    let truncated = &good[..good.len() - 20];
    let mut garbled = good.clone();
    let n = garbled.len();
    garbled[n - 60..n - 10].fill(0xAB); // The footer, magic kept at both ends.
    let mut fake = b"ARROW1\0\0".to_vec();
    fake.extend_from_slice(&[0x55; 100]);
    fake.extend_from_slice(b"ARROW1");
    assert_stored_untyped(&m, &p, &[truncated, &garbled[..], &fake[..]]);
}

/// Puts each of `cases` at `p`: each is typed `NONE`, has no table metadata, and reads back
/// as it was.
pub fn assert_stored_untyped(m: &Metastore<MemoryStore>, p: &ObjectPath, cases: &[&[u8]]) {
    for bytes in cases {
        let meta = put(m, p, bytes);
        assert_eq!((meta.file_type, meta.table.clone()), (FileType::None, None));
        let mut back = Vec::new();
        m.open(&meta).unwrap().read_to_end(&mut back).unwrap();
        assert!(back == *bytes, "stored as they are");
    }
}

/// `good` cut every `cut` bytes, and with one byte flipped every `flip` bytes.
pub fn damaged(good: &[u8], cut: usize, flip: usize) -> Vec<Vec<u8>> {
    let mut cases: Vec<Vec<u8>> = (0..good.len())
        .step_by(cut)
        .map(|at| good[..at].to_vec())
        .collect();
    for pos in (0..good.len()).step_by(flip) {
        let mut flipped = good.to_vec();
        flipped[pos] ^= 0xFF;
        cases.push(flipped);
    }
    cases
}

/// Inspects `bytes` held in memory as a content of type `kind`.
pub fn inspect_bytes(kind: FileType, bytes: &[u8]) -> Option<table_meta::TableMeta> {
    let mut read_at = |off: u64, buf: &mut [u8]| {
        let from = (off as usize).min(bytes.len());
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        Ok(n)
    };
    table_meta::inspect(kind, bytes.len() as u64, &mut read_at)
}

#[test]
fn inspection_never_panics_on_damaged_bytes() {
    for (kind, good) in [
        (FileType::Arrow, arrow_file(3)),
        (FileType::ArrowStream, arrow_stream(3)),
    ] {
        for bytes in damaged(&good, 7, 13) {
            if let Some(meta) = inspect_bytes(kind, &bytes) {
                assert!(
                    meta.num_batches <= 3 && meta.num_columns() <= 3,
                    "{kind:?}: {meta:?}"
                );
            }
        }
    }
}
