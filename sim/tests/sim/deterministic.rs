//! The deterministic mode: many seeds pass, runs repeat exactly, sabotage is caught.

use ferry_protocol::HASH_UNIT_LEN;
use ferry_sim::det::{DetConfig, Sabotage, run_seed, run_seeds};

/// Seeds `cargo test` runs (about four seconds in a debug build).
const SEEDS: u64 = 1000;

#[test]
fn a_thousand_seeds_keep_every_promise() {
    let summary = run_seeds(0, SEEDS, &DetConfig::default());
    for breach in summary.breaches.iter().take(20) {
        eprintln!("{breach}");
    }
    eprintln!("{}", summary.table());
    assert!(summary.passed(), "{} breaches", summary.breaches.len());
    assert_eq!(summary.seeds, SEEDS);
    // The faults really happen, and clients really resume after them.
    let fault = |kind: &str| summary.faults.get(kind).copied().unwrap_or(0);
    assert!(fault("cut") > 300, "cuts: {}", fault("cut"));
    assert!(fault("stall") > 100, "stalls: {}", fault("stall"));
    assert!(fault("net_tiny_segments") > 100);
    assert!(fault("hostile_wrong_digest") > 100);
    assert!(summary.resumes >= fault("cut") + fault("stall"));
    // Some interrupted transfers continue from their checkpoint instead of starting over.
    assert!(
        summary.resumed_mid_file > 30,
        "{}",
        summary.resumed_mid_file
    );
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_does_not() {
    let config = DetConfig::default();
    for seed in [3, 77, 1234] {
        let first = run_seed(seed, &config);
        let second = run_seed(seed, &config);
        assert_eq!(first.trace, second.trace, "seed {seed}");
        assert_eq!(first.summary.operations, second.summary.operations);
        assert_eq!(first.summary.faults, second.summary.faults);
        assert_ne!(first.trace, run_seed(seed + 1, &config).trace);
    }
}

#[test]
fn a_server_that_commits_despite_a_digest_mismatch_is_caught() {
    let config = DetConfig {
        sabotage: Sabotage {
            commit_on_digest_mismatch: true,
            ..Sabotage::default()
        },
        ..DetConfig::default()
    };
    let summary = run_seeds(0, 40, &config);
    assert!(!summary.passed());
    assert!(
        summary.breaches.iter().any(|b| b
            .what
            .contains("visible but no upload of it was acknowledged")),
        "{:?}",
        summary.breaches
    );
}

#[test]
fn a_server_that_corrupts_stored_data_is_caught_at_the_first_differing_byte() {
    let config = DetConfig {
        sabotage: Sabotage {
            corrupt_after_commit: true,
            ..Sabotage::default()
        },
        ..DetConfig::default()
    };
    let summary = run_seeds(0, 20, &config);
    assert!(!summary.passed());
    let first_differences: Vec<u64> = summary
        .breaches
        .iter()
        .filter_map(|b| b.first_difference)
        .collect();
    assert!(!first_differences.is_empty(), "{:?}", summary.breaches);
    assert!(first_differences.iter().all(|&at| at == HASH_UNIT_LEN));
}
