//! Compiles the Cronus protobuf schemas in `proto/` with prost (needs `protoc`: Debian's
//! `protobuf-compiler`, or the `PROTOC` environment variable).

fn main() -> std::io::Result<()> {
    let protos = [
        "proto/cronus.proto",
        "proto/menu.proto",
        "proto/configuration.proto",
        "proto/table.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    // Maps as BTreeMap: encoding is then deterministic (sorted keys), like protobuf's
    // deterministic serialisation, so equal messages always give equal bytes.
    // The descriptors go beside the code: the Python package builds its message classes from
    // them, so that its messages are these, field for field.
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    prost_build::Config::new()
        .file_descriptor_set_path(out.join("cronus_descriptors.bin"))
        .btree_map(["."])
        .compile_protos(&protos, &["proto"])
}
