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
    prost_build::Config::new()
        .btree_map(["."])
        .compile_protos(&protos, &["proto"])
}
