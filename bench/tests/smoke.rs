//! The benchmark's smoke run: every scenario at small sizes, once, so that the runner cannot
//! rot. Its timings are not judged.

use std::path::Path;
use std::process::Command;

/// Runs the benchmark as `configure` sets it up (plus scratch folders, removed after) and returns
/// its standard output, failing the test if it failed.
fn run_bench(name: &str, configure: impl FnOnce(&mut Command)) -> String {
    let bench = env!("CARGO_BIN_EXE_ferry-bench");
    let dir = std::env::temp_dir().join(format!("ferry-bench-{name}-{}", std::process::id()));
    let mut command = Command::new(bench);
    configure(&mut command);
    let output = command
        .arg("--tmpfs")
        .arg(dir.join("tmpfs"))
        .arg("--disk")
        .arg(dir.join("disk"))
        .output()
        .expect("ferry-bench starts");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "ferry-bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn every_scenario_runs_and_reports() {
    let bench = env!("CARGO_BIN_EXE_ferry-bench");
    // The idle scenario starts a `ferryd` child; it is built beside us when the workspace is.
    let with_idle = Path::new(bench).with_file_name("ferryd").exists();
    let only = if with_idle {
        "large,durable,many,small,idle"
    } else {
        "large,durable,many,small"
    };
    let stdout = run_bench("smoke", |command| {
        command
            .args(["--smoke", "--size-mib", "4", "--runs", "1", "--json"])
            .args(["--only", only]);
    });
    let mut rows = vec![
        "raw TCP, memory",
        "raw TCP, tmpfs → tmpfs",
        "ferry put, plaintext",
        "ferry get, plaintext",
        "ferry put, TLS",
        "ferry get, TLS",
        "dd conv=fdatasync",
        "raw TCP, tmpfs → disk",
        "ferry put, durable",
        "20 clients × 1024 KiB",
        "100 clients × 64 KiB",
        "500 × 4 KiB files",
    ];
    if with_idle {
        rows.push("50 idle handshaken: server RSS");
        rows.push("500 idle: new client's 1 MiB put p99");
    }
    // Every row once per engine, both measured in the same run.
    for engine in ["events", "threads"] {
        for row in &rows {
            let row = format!("[{engine}] {row}");
            assert!(stdout.contains(&row), "no \"{row}\" row in {stdout}");
        }
    }
}

#[test]
fn an_object_store_gets_its_own_rows_beside_the_local_ones() {
    let Some(seaweedfs) = ferry_sim::store::SeaweedFs::for_tests() else {
        return;
    };
    let prefix = ferry_sim::store::SeaweedFs::unique_prefix("bench-smoke");
    let stdout = run_bench("s3", |command| {
        command
            .args([
                "--smoke",
                "--size-mib",
                "8",
                "--runs",
                "1",
                "--only",
                "large,many",
            ])
            .arg("--store")
            .arg(format!("s3://{}/{prefix}", seaweedfs.bucket()))
            .args(["--s3-endpoint", seaweedfs.endpoint()])
            .env("AWS_ACCESS_KEY_ID", seaweedfs.access_key())
            .env("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key());
    });
    for row in [
        "ferry put → S3 (1 node)",
        "ferry get ← S3 (1 node)",
        "20 × 1024 KiB → S3, aggregate",
    ] {
        assert!(stdout.contains(row), "no \"{row}\" row in {stdout}");
    }
    assert!(stdout.contains("× local put"), "{stdout}");
}
