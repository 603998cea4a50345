//! The committed Rust of the connect messages (`src/connect/pb/`) is exactly what `prost-build`
//! makes of the vendored `proto/` files today. Run with `INNGEST_REGENERATE_PROTO=1` to rewrite
//! the committed files after changing the protos or bumping prost.

use std::path::{Path, PathBuf};

/// The generated files, by protobuf package.
const GENERATED: [&str; 2] = ["connect.v1.rs", "sdk_feature_observations.v1.rs"];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate(out: &Path) {
    let proto = crate_dir().join("proto");
    let fds = protox::compile(["connect/v1/connect.proto"], [&proto]).expect("protos compile");
    prost_build::Config::new()
        .out_dir(out)
        .compile_fds(fds)
        .expect("prost-build generates");
}

#[test]
fn committed_connect_messages_match_the_protos() {
    let out = std::env::temp_dir().join(format!("inngest-connect-codegen-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    generate(&out);

    let committed_dir = crate_dir().join("src/connect/pb");
    let regenerate = std::env::var_os("INNGEST_REGENERATE_PROTO").is_some();
    for name in GENERATED {
        let fresh = std::fs::read_to_string(out.join(name)).expect("generated file exists");
        let path = committed_dir.join(name);
        if regenerate {
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{} is stale: run INNGEST_REGENERATE_PROTO=1 cargo test -p inngest-protocol --test connect_codegen",
            path.display()
        );
    }
    let extra: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !GENERATED.contains(&n.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "prost-build made files the crate does not include: {extra:?}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}
