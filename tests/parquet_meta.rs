//! Parquet metadata at commit: a Parquet file put into the catalogue gets its footer's schema
//! (as Arrow types), rows, row groups, key-value metadata and writer recorded as
//! `cronus:parquet:*` rows and in the Cronus FileObjectInfo; a damaged footer is stored as it
//! is, typed `NONE`, and never crashes the inspection.

use std::io::Read;

use cronusfs::meta::table_meta::TableFormat;
use cronusfs::pb::store::FileType;
use cronusfs::pb::store::cronus_object::Info;
use cronusfs::storage::{PropQuery, RowRead, Valu};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::arrow_meta::{
    assert_stored_untyped, batch, damaged, expected_fields, inspect_bytes, put, store,
};

/// A Parquet file of `row_groups` row groups, each one [`batch`] (4 rows), written by the
/// Parquet crate's Arrow writer (which embeds the Arrow schema) with a key-value pair of its
/// own and a `created_by` of its own.
pub fn parquet_file(row_groups: usize) -> Vec<u8> {
    let b = batch();
    let props = WriterProperties::builder()
        .set_created_by("cronusfs-test writer".into())
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "team".to_string(),
            "artemis".to_string(),
        )]))
        .build();
    let mut w = ArrowWriter::try_new(Vec::new(), b.schema(), Some(props)).unwrap();
    for _ in 0..row_groups {
        w.write(&b).unwrap();
        w.flush().unwrap(); // Ends the row group.
    }
    w.into_inner().unwrap()
}

#[test]
fn parquet_footer_becomes_rows_and_cronus_info() {
    let (m, p) = store();
    let bytes = parquet_file(3);
    let meta = put(&m, &p, &bytes);
    assert_eq!(meta.file_type, FileType::Parquet);
    let table = meta.table.clone().expect("Parquet metadata");
    assert_eq!(table.format, TableFormat::Parquet);
    assert_eq!(
        (table.num_columns(), table.num_rows, table.num_batches),
        (3, 12, 3)
    );
    assert_eq!(table.fields, expected_fields(), "the embedded Arrow types");
    assert_eq!(
        table.metadata.get("team").map(String::as_str),
        Some("artemis")
    );
    assert_eq!(
        table.metadata.get("origin").map(String::as_str),
        Some("cronusfs-test"),
        "the Arrow schema's own metadata"
    );
    assert!(!table.metadata.contains_key("ARROW:schema"));
    assert_eq!(table.created_by.as_deref(), Some("cronusfs-test writer"));
    assert!(
        meta.cronus_name.ends_with(".parquet"),
        "{}",
        meta.cronus_name
    );
    assert_eq!(m.object(&p).unwrap(), meta, "read back from rows");

    let rows = m.storage();
    let node = rows.rows_by_id(&meta.id.iden()).unwrap();
    let valu = |prop: &str| node.iter().find(|r| r.prop == prop).map(|r| r.valu.clone());
    assert_eq!(valu("cronus:parquet:num_rows"), Some(Valu::Int(12)));
    assert_eq!(valu("cronus:parquet:num_row_groups"), Some(Valu::Int(3)));
    assert_eq!(valu("cronus:parquet:num_columns"), Some(Valu::Int(3)));
    assert_eq!(valu("cronus:parquet:field:f1"), Some(Valu::from("Utf8")));
    assert_eq!(
        valu("cronus:parquet:meta:team"),
        Some(Valu::from("artemis"))
    );
    assert_eq!(
        valu("cronus:parquet:created_by"),
        Some(Valu::from("cronusfs-test writer"))
    );
    assert!(
        !node.iter().any(|r| r.prop.starts_with("cronus:arrow:")),
        "no Arrow rows for a Parquet file"
    );
    assert_eq!(
        rows.size_by_ge("cronus:parquet:num_rows", 10, None)
            .unwrap(),
        1
    );

    let Some(Info::File(file)) = m.info(&meta.id.to_string()).unwrap().info else {
        panic!("a file's Cronus info");
    };
    let aux = file.aux.expect("aux info");
    assert_eq!(
        (file.r#type, aux.num_columns, aux.num_rows, aux.num_batches),
        (FileType::Parquet as i32, 3, 12, 3)
    );
    let mut back = Vec::new();
    m.open(&meta).unwrap().read_to_end(&mut back).unwrap();
    assert!(back == bytes);
}

#[test]
fn a_new_version_of_another_kind_replaces_the_parquet_rows() {
    let (m, p) = store();
    put(&m, &p, &parquet_file(2));
    let v2 = put(&m, &p, &crate::arrow_meta::arrow_file(1));
    assert_eq!(
        v2.table.as_ref().map(|t| t.format),
        Some(TableFormat::Arrow)
    );
    let rows = m.storage();
    assert_eq!(
        rows.size_by_prop(&PropQuery::new("cronus:parquet:num_rows"))
            .unwrap(),
        0
    );
    assert_eq!(
        rows.size_by_prop(&PropQuery::new("cronus:parquet:created_by"))
            .unwrap(),
        0
    );
    assert_eq!(m.object(&p).unwrap(), v2);
}

#[test]
fn a_damaged_parquet_footer_is_stored_intact_and_typed_none() {
    let (m, p) = store();
    let good = parquet_file(2);
    let n = good.len();
    let mut garbled = good.clone();
    garbled[n - 60..n - 8].fill(0xAB); // The footer; its length and both magics kept.
    let mut huge_len = good.clone();
    huge_len[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let fake = [b"PAR1".as_slice(), &[0x55; 100], &[4, 0, 0, 0], b"PAR1"].concat();
    assert_stored_untyped(&m, &p, &[&garbled[..], &huge_len[..], &fake[..]]);
}

#[test]
fn parquet_inspection_never_panics_on_damaged_bytes() {
    let good = parquet_file(3);
    let cases = damaged(&good, 11, 5);
    let mut typed = 0;
    for bytes in &cases {
        if let Some(meta) = inspect_bytes(FileType::Parquet, bytes) {
            typed += 1;
            assert!(meta.num_columns() <= 3, "{meta:?}");
        }
    }
    // Flipped bytes in the pages leave the footer valid: some cases still read as Parquet.
    assert!(
        typed > 0 && typed < cases.len(),
        "{typed} of {}",
        cases.len()
    );
}

#[test]
fn an_object_first_committed_empty_takes_the_extension_of_its_type() {
    let (m, p) = store();
    let empty = put(&m, &p, b"");
    assert!(
        empty.cronus_name.ends_with(".none"),
        "{}",
        empty.cronus_name
    );
    let stem = empty.cronus_name.trim_end_matches(".none").to_string();
    let v2 = put(&m, &p, &parquet_file(1));
    assert_eq!(
        v2.cronus_name,
        format!("{stem}.parquet"),
        "same uuid and place"
    );
    assert_eq!(v2.id, empty.id);
    let names: Vec<_> = (m.storage().rows_by_id(&v2.id.iden()).unwrap().into_iter())
        .filter(|r| r.prop == "cronus:name")
        .map(|r| r.valu.to_string())
        .collect();
    assert_eq!(names.len(), 1, "one name row");
    assert_eq!(names[0], v2.cronus_name, "the new one");
    assert_eq!(m.info(&v2.id.to_string()).unwrap().name, v2.cronus_name);
    assert_eq!(m.object(&p).unwrap(), v2);
    // A version of the same type leaves the name row as it was (not rewritten: its time).
    std::thread::sleep(std::time::Duration::from_millis(5));
    let v3 = put(&m, &p, &parquet_file(2));
    assert_eq!(v3.cronus_name, v2.cronus_name);
    let name_rows: Vec<_> = (m.storage().rows_by_id(&v3.id.iden()).unwrap().into_iter())
        .filter(|r| r.prop == "cronus:name")
        .collect();
    assert_eq!(name_rows.len(), 1);
    assert_eq!(
        name_rows[0].time, v2.modified,
        "written by v2, untouched by v3"
    );
    assert!(v3.modified > v2.modified);
}
