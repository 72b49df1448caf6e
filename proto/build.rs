//! Compiles `tillsyn/v1/*.proto` with `protox`, so a fresh machine needs no system `protoc`;
//! the tonic clients and servers only with the `grpc` feature.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "tillsyn/v1/enrollment.proto",
        "tillsyn/v1/inventory.proto",
        "tillsyn/v1/jobs.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        .compile_fds(descriptors)?;
    Ok(())
}
