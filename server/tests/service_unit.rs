//! `dist/ferryd.service` and `dist/ferryd.toml`: the unit passes `systemd-analyze verify` and
//! its offline security review, and agrees with the example config it starts ferryd with.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferry_testkit::tools;

/// Where the unit expects ferryd; the verify test points it at the binary under test instead.
const INSTALLED_FERRYD: &str = "/usr/local/bin/ferryd";

/// The highest `systemd-analyze security` exposure accepted, in its tenths (2.0 of 10: "OK").
const MAX_EXPOSURE: &str = "20";

fn dist(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../dist")
        .join(name)
}

fn unit_text() -> String {
    std::fs::read_to_string(dist("ferryd.service")).unwrap()
}

/// The values of `key=` in the unit, in order.
fn unit_values(key: &str) -> Vec<String> {
    unit_text()
        .lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
        .collect()
}

fn unit_value(key: &str) -> String {
    let values = unit_values(key);
    assert_eq!(values.len(), 1, "{key}= should be set once: {values:?}");
    values[0].clone()
}

fn example_config() -> toml::Table {
    toml::from_str(&std::fs::read_to_string(dist("ferryd.toml")).unwrap()).unwrap()
}

/// A temporary copy of the unit starting the ferryd under test, beside a man folder holding the
/// page `ferryd man` prints (the unit's `Documentation=man:ferryd(1)` is checked too).
struct UnitUnderTest {
    dir: tempfile::TempDir,
    unit: PathBuf,
}

impl UnitUnderTest {
    fn new() -> UnitUnderTest {
        let dir = tempfile::tempdir().unwrap();
        let text = unit_text();
        assert!(text.contains(&format!("ExecStart={INSTALLED_FERRYD} ")));
        let text = text.replace(INSTALLED_FERRYD, env!("CARGO_BIN_EXE_ferryd"));
        let unit = dir.path().join("ferryd.service");
        std::fs::write(&unit, text).unwrap();
        let man1 = dir.path().join("man/man1");
        std::fs::create_dir_all(&man1).unwrap();
        let page = Command::new(env!("CARGO_BIN_EXE_ferryd"))
            .arg("man")
            .output()
            .unwrap();
        assert!(page.status.success());
        std::fs::write(man1.join("ferryd.1"), page.stdout).unwrap();
        UnitUnderTest { dir, unit }
    }

    fn analyze(&self, args: &[&str]) -> std::process::Output {
        Command::new("systemd-analyze")
            .args(args)
            .arg(&self.unit)
            .env("MANPATH", self.dir.path().join("man"))
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .unwrap()
    }
}

#[test]
fn service_unit_passes_systemd_analyze_verify() {
    if !tools::have("systemd-analyze", "dist/ferryd.service") {
        return;
    }
    let unit = UnitUnderTest::new();
    let output = unit.analyze(&["verify"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "systemd-analyze verify: {stderr}");
    // verify also prints warnings (unknown or misspelt settings) without failing.
    assert!(
        !stderr.contains("ferryd.service"),
        "systemd-analyze verify warns: {stderr}"
    );
}

#[test]
fn service_unit_is_hardened_by_systemds_own_measure() {
    if !tools::have("systemd-analyze", "the unit's hardening") {
        return;
    }
    let unit = UnitUnderTest::new();
    let threshold = format!("--threshold={MAX_EXPOSURE}");
    let output = unit.analyze(&["security", "--offline=true", &threshold, "--no-pager"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exposure above {MAX_EXPOSURE}/100: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Overall exposure level for ferryd.service"),
        "{stdout}"
    );
}

#[test]
fn service_unit_stops_ferryd_by_sigterm_just_after_the_example_shutdown_grace() {
    assert_eq!(unit_value("KillSignal"), "SIGTERM");
    let stop = humantime::parse_duration(&unit_value("TimeoutStopSec")).unwrap();
    let grace = example_config()["shutdown-grace"]
        .as_str()
        .map(humantime::parse_duration)
        .unwrap()
        .unwrap();
    assert!(
        stop > grace && stop <= grace + Duration::from_secs(10),
        "TimeoutStopSec {stop:?} should be a little above shutdown-grace {grace:?}"
    );
    assert_eq!(unit_value("Restart"), "on-failure");
}

#[test]
fn service_unit_runs_ferryd_with_the_example_config_writing_only_to_its_root() {
    assert_eq!(
        unit_value("ExecStart"),
        format!("{INSTALLED_FERRYD} --config /etc/ferryd/ferryd.toml")
    );
    let root = example_config()["root"].as_str().unwrap().to_owned();
    assert_eq!(unit_value("ReadWritePaths"), root);
    assert_eq!(unit_value("ProtectSystem"), "strict");
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
    ] {
        assert_eq!(unit_value(key), value, "{key}");
    }
}
