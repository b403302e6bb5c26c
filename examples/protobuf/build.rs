//! Generates the Rust types of `people.proto` (into `OUT_DIR`) with prost-build, using the
//! `protoc` shipped by the `protoc-bin-vendored` crate.

fn main() -> std::io::Result<()> {
    let protoc = protoc_bin_vendored::protoc_bin_path().map_err(std::io::Error::other)?;
    prost_build::Config::new()
        .protoc_executable(protoc)
        .compile_protos(&["people.proto"], &["."])
}
