//! The `ferry-sim` command line.

use std::process::Command;

use ferry_sim::plan::{HostileKind, Op, draw_plan};
use ferry_sim::sockets::SocketConfig;

#[test]
fn deterministic_seeds_print_a_json_summary_and_exit_zero() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-sim"))
        .args(["--deterministic", "--seed", "40", "--seeds", "5", "--json"])
        .output()
        .expect("ferry-sim runs");
    assert!(output.status.success(), "{output:?}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(summary["mode"], "deterministic");
    assert_eq!(summary["seeds"], 5);
    assert_eq!(summary["breaches"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_broken_server_makes_the_run_exit_non_zero_and_name_the_seed() {
    // Client 9 of 10 is hostile; pick a seed whose plan makes it lie about a digest.
    let seed = (0..1000)
        .find(|&seed| {
            let config = SocketConfig::ci(10, seed);
            draw_plan(seed, 9, true, &config.plan).iter().any(|op| {
                matches!(
                    op,
                    Op::Hostile {
                        kind: HostileKind::WrongDigest,
                        ..
                    }
                )
            })
        })
        .expect("some seed draws a wrong digest");
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-sim"))
        .args(["--clients", "10", "--small", "--no-faults"])
        .args(["--seed", &seed.to_string(), "--sabotage-skip-digest-check"])
        .output()
        .expect("ferry-sim runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("BREACH seed={seed} client=9 step=")),
        "{stderr}"
    );
    assert!(stderr.contains("visible but no upload of it was acknowledged"));
    assert!(String::from_utf8_lossy(&output.stdout).contains("FAIL"));
}

#[test]
fn several_nodes_over_a_folder_are_refused_with_what_to_do() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-sim"))
        .args(["--clients", "2", "--seed", "1", "--nodes", "3"])
        .output()
        .expect("ferry-sim runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("3 nodes need an object store") && stderr.contains("--store seaweedfs"),
        "{stderr}"
    );
}

#[test]
fn crash_mode_runs_its_own_server_process_and_prints_a_json_summary() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-sim"))
        .args(["crash", "--short", "--kills", "1", "--seed", "5"])
        .args(["--json", "--quiet"])
        .output()
        .expect("ferry-sim runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("seed 5"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(summary["kills"], 1);
    assert_eq!(summary["violations"].as_array().map(Vec::len), Some(0));
    assert!(summary["acked"].as_u64() > Some(0), "{summary}");
}
