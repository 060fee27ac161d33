//! Wire compatibility with the Python Cronus: messages are built here byte by byte from the
//! documented field numbers, the way Python's protobuf serialises them (fields in number order,
//! proto3 defaults omitted), then decoded with the prost types and encoded back byte-identically.

use cronusfs::pb::cronus::{Configuration, Menu, Table};
use cronusfs::pb::store::{CronusObject, CronusObjectStore, FileType, cronus_object};
use prost::Message;

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A varint field.
fn vi(field: u64, v: u64) -> Vec<u8> {
    [varint(field << 3), varint(v)].concat()
}

/// A length-delimited field (string, bytes, message).
fn ld(field: u64, payload: &[u8]) -> Vec<u8> {
    [
        varint((field << 3) | 2),
        varint(payload.len() as u64),
        payload.to_vec(),
    ]
    .concat()
}

/// A 32-bit fixed field (float).
fn f32_field(field: u64, v: f32) -> Vec<u8> {
    [varint((field << 3) | 5), v.to_le_bytes().to_vec()].concat()
}

fn s(field: u64, text: &str) -> Vec<u8> {
    ld(field, text.as_bytes())
}

fn round_trip<M: Message + Default>(bytes: &[u8]) -> M {
    let msg = M::decode(bytes).expect("decodes");
    assert_eq!(msg.encode_to_vec(), bytes, "re-encodes byte-identically");
    msg
}

/// A `google.protobuf.Timestamp`; zero fields are omitted, as proto3 serialisers do.
fn timestamp(seconds: u64, nanos: u64) -> Vec<u8> {
    let nanos = if nanos == 0 { Vec::new() } else { vi(2, nanos) };
    [vi(1, seconds), nanos].concat()
}

/// A produced Arrow file object, as `register_content(buf, fileinfo, …)` makes it.
fn file_object() -> Vec<u8> {
    let aux = [s(1, "Some dummy data"), vi(2, 3), vi(3, 40), vi(4, 10)].concat();
    let info = [ld(1, &aux), vi(2, 5), vi(3, 1234), s(5, "key1")].concat();
    [
        s(1, "ds.job_0.part_key1.f00d.arrow"),
        s(2, "f00d"),
        s(3, "ds"),
        ld(11, &info),
        s(13, "file:///tmp/test/ds.job_0.part_key1.f00d.arrow"),
    ]
    .concat()
}

#[test]
fn cronus_object_with_file_info() {
    let obj: CronusObject = round_trip(&file_object());
    assert_eq!(obj.name, "ds.job_0.part_key1.f00d.arrow");
    assert_eq!(
        obj.address,
        "file:///tmp/test/ds.job_0.part_key1.f00d.arrow"
    );
    let Some(cronus_object::Info::File(file)) = obj.info else {
        panic!("file info")
    };
    assert_eq!(file.r#type(), FileType::Arrow);
    assert_eq!(file.size_bytes, 1234);
    assert_eq!(file.partition, "key1");
    let aux = file.aux.unwrap();
    assert_eq!(
        (aux.num_columns, aux.num_rows, aux.num_batches),
        (3, 40, 10)
    );
}

#[test]
fn whole_metastore_message() {
    let menu_obj = [
        s(1, "m.menu.dat"),
        s(2, "m"),
        s(3, "store"),
        ld(
            4,
            &[ld(1, &s(1, "menu")), ld(2, &timestamp(1_560_000_000, 5))].concat(),
        ),
        s(13, "file:///r/m.menu.dat"),
    ]
    .concat();
    let job = [
        s(1, "ds.job_0.j.job.pb"),
        s(2, "j"),
        s(3, "ds"),
        ld(8, &ld(1, &s(1, "job"))),
    ]
    .concat();
    let dataset_info = [
        s(2, "key1"),
        s(2, "key2"),
        ld(4, &ld(1, &menu_obj)),
        ld(5, &job),
        ld(11, &file_object()),
        vi(13, 10),
    ]
    .concat();
    let dataset = [
        s(1, "ds.dataset"),
        s(2, "ds"),
        s(3, "store"),
        ld(6, &dataset_info),
    ]
    .concat();
    let store_info = [
        ld(2, &timestamp(1_560_000_000, 0)),
        ld(3, &s(1, "a store")),
        ld(5, &menu_obj),
        ld(5, &dataset),
    ]
    .concat();
    let bytes = [
        s(1, "store.test.cronus.pb"),
        s(2, "store"),
        s(4, "file:///r/store.test.cronus.pb"),
        ld(5, &store_info),
    ]
    .concat();
    let store: CronusObjectStore = round_trip(&bytes);
    let info = store.info.unwrap();
    assert_eq!(info.objects.len(), 2);
    let Some(cronus_object::Info::Dataset(ds)) = &info.objects[1].info else {
        panic!("dataset")
    };
    assert_eq!(ds.partitions, ["key1", "key2"]);
    assert_eq!(ds.job_idx, 10);
    assert_eq!(
        ds.transform.as_ref().unwrap().menu.as_ref().unwrap().name,
        "m.menu.dat"
    );
    assert_eq!(ds.files.len(), 1);
}

#[test]
fn menu_and_configuration() {
    let node = [s(1, "leaf"), s(2, "root"), s(3, "algo1"), s(3, "algo2")].concat();
    let graph = [s(1, "g"), ld(2, &s(1, "root")), ld(2, &node)].concat();
    let menu: Menu = round_trip(&[s(1, "u.menu.dat"), s(2, "u"), ld(3, &graph)].concat());
    assert_eq!(menu.graphs[0].nodes[1].algos, ["algo1", "algo2"]);

    let property = [s(1, "seed"), s(2, "int"), s(3, "42")].concat();
    let module = [
        s(1, "csv"),
        s(2, "artemis.tools"),
        s(3, "CsvTool"),
        ld(4, &ld(1, &property)),
    ]
    .concat();
    let config = [
        s(1, "c.config.dat"),
        s(2, "c"),
        ld(3, &module),
        ld(4, &module),
        vi(5, 1 << 33),
        ld(6, &[vi(1, 100), vi(2, 4)].concat()),
        ld(
            7,
            &ld(2, &[s(1, "atom"), s(2, "repo"), s(3, "*.csv")].concat()),
        ),
    ]
    .concat();
    let config: Configuration = round_trip(&config);
    assert_eq!(config.max_malloc_size_bytes, 1 << 33);
    assert_eq!(
        config.tools[0].properties.as_ref().unwrap().property[0].value,
        "42"
    );
    assert_eq!(config.sampler.unwrap().nchunks, 4);
}

#[test]
fn table_with_floats_bools_and_maps() {
    let value = [s(1, "flag"), vi(5, 1)].concat();
    let meta_entry = [s(1, "k"), ld(2, &value)].concat();
    let param = [s(1, "mu"), f32_field(2, 0.5), s(3, "float")].concat();
    let field_aux = [
        ld(2, &meta_entry),
        ld(3, &[s(1, "normal"), ld(2, &param)].concat()),
    ]
    .concat();
    let field = [
        s(1, "f0"),
        ld(
            3,
            &[ld(1, &field_aux), s(2, "String"), vi(3, 1), vi(4, 10)].concat(),
        ),
    ]
    .concat();
    let schema_aux = [s(1, "desc"), ld(2, b"\x00\x01"), vi(6, 3)].concat();
    let schema = [
        s(1, "schema"),
        ld(3, &[ld(1, &schema_aux), ld(2, &field)].concat()),
    ]
    .concat();
    let table_aux = ld(1, &[f32_field(1, 0.25), s(2, "uniform"), vi(3, 2)].concat());
    let table: Table = round_trip(
        &[
            s(1, "t"),
            s(2, "tu"),
            ld(3, &[ld(1, &table_aux), ld(2, &schema)].concat()),
        ]
        .concat(),
    );
    let info = table.info.unwrap();
    let f = &info.schema.unwrap().info.unwrap().fields[0];
    assert!(f.info.as_ref().unwrap().nullable);
    assert_eq!(info.aux.unwrap().duplicate.unwrap().probability, 0.25);
}
