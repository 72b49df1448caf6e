//! Compiles `tillsyn/v1/*.proto` with `protox`, so a fresh machine needs no system `protoc`.

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
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
