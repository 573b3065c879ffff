//! Bugs planted in the real server (the session and the in-memory store) are caught by the
//! deterministic mode, each as the breach it causes; the same seeds without them pass.

use std::time::Duration;

use ferry_server::memory::CORRUPTED_BYTE;
use ferry_sim::det::{DetConfig, Sabotage, run_seeds};
use ferry_sim::report::Summary;

/// Runs `count` seeds with `sabotage` planted.
fn sabotaged(sabotage: Sabotage, count: u64, config: DetConfig) -> Summary {
    run_seeds(0, count, &DetConfig { sabotage, ..config })
}

#[test]
fn a_session_that_stores_an_upload_whose_digest_failed_is_caught() {
    let sabotage = Sabotage {
        skip_digest_check: true,
        ..Sabotage::default()
    };
    let summary = sabotaged(sabotage, 40, DetConfig::default());
    assert!(!summary.passed());
    assert!(
        summary.breaches.iter().any(|b| b
            .what
            .contains("visible but no upload of it was acknowledged")),
        "{:?}",
        summary.breaches
    );
    assert!(run_seeds(0, 40, &DetConfig::default()).passed());
}

#[test]
fn a_store_that_corrupts_a_committed_file_is_caught_at_the_first_differing_byte() {
    let sabotage = Sabotage {
        corrupt_commits: true,
        ..Sabotage::default()
    };
    let summary = sabotaged(sabotage, 20, DetConfig::default());
    assert!(!summary.passed());
    let first_differences: Vec<u64> = summary
        .breaches
        .iter()
        .filter_map(|b| b.first_difference)
        .collect();
    assert!(!first_differences.is_empty(), "{:?}", summary.breaches);
    assert!(first_differences.iter().all(|&at| at == CORRUPTED_BYTE));
}

#[test]
fn a_store_that_acknowledges_before_durability_is_caught_by_a_crash() {
    let sabotage = Sabotage {
        volatile_commits: true,
        ..Sabotage::default()
    };
    let crashing = DetConfig {
        crash_chance: 1.0,
        crash_window: Duration::from_secs(3),
        ..DetConfig::default()
    };
    let summary = sabotaged(sabotage, 100, crashing.clone());
    assert!(!summary.passed());
    assert!(
        summary
            .breaches
            .iter()
            .any(|b| b.what.contains("is missing") || b.what.contains("NotFound")),
        "{:?}",
        summary.breaches
    );
    // Without a crash the lie is never found out: the crash is what catches it.
    let calm = DetConfig {
        crash_chance: 0.0,
        ..DetConfig::default()
    };
    assert!(sabotaged(sabotage, 100, calm).passed());
    assert!(run_seeds(0, 100, &crashing).passed());
}
