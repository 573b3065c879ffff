//! The deterministic mode runs ferryd's real session over the in-memory store: ten thousand
//! seeds keep every promise through cuts, stalls and server crashes, and a run repeats exactly.

use std::time::{Duration, Instant};

use ferry_sim::det::{DetConfig, run_seed, run_seeds};

/// Seeds `cargo test` sweeps: about 59 s of CPU in a debug build, spread over the cores.
const SEEDS: u64 = 10_000;

#[test]
fn ten_thousand_seeds_keep_every_promise_through_cuts_stalls_and_crashes() {
    let started = Instant::now();
    let summary = run_seeds(0, SEEDS, &DetConfig::default());
    for breach in summary.breaches.iter().take(20) {
        eprintln!("{breach}");
    }
    eprintln!("{}", summary.table());
    eprintln!("{SEEDS} seeds in {:.1} s", started.elapsed().as_secs_f64());
    assert!(summary.passed(), "{} breaches", summary.breaches.len());
    assert_eq!(summary.seeds, SEEDS);
    // The faults really happen, and clients really resume after them.
    let fault = |kind: &str| summary.faults.get(kind).copied().unwrap_or(0);
    assert!(fault("cut") > 3_000, "cuts: {}", fault("cut"));
    assert!(fault("stall") > 1_000, "stalls: {}", fault("stall"));
    assert!(fault("net_tiny_segments") > 1_000);
    assert!(fault("hostile_wrong_digest") > 1_000);
    // About a third of the runs crash the server, and the crashes break live connections.
    assert!(
        fault("server_restart") > 2_500,
        "{}",
        fault("server_restart")
    );
    assert!(fault("server_crash") > 2_500, "{}", fault("server_crash"));
    assert!(summary.resumes >= fault("cut") + fault("stall"));
    // Some interrupted transfers continue from a durable checkpoint instead of starting over.
    assert!(
        summary.resumed_mid_file > 300,
        "{}",
        summary.resumed_mid_file
    );
}

#[test]
fn batches_send_several_uploads_per_round_trip_and_keep_every_promise_through_faults() {
    let summary = run_seeds(0, 1_000, &DetConfig::default());
    for breach in summary.breaches.iter().take(20) {
        eprintln!("{breach}");
    }
    eprintln!("{}", summary.table());
    assert!(summary.passed(), "{} breaches", summary.breaches.len());
    // Every link has latency, so an answer takes a round trip: a window that sent several
    // uploads before its first answer came back did more than one operation per round trip.
    assert!(summary.windows > 1_000, "{}", summary.windows);
    assert!(
        summary.windows_pipelined * 10 >= summary.windows * 9,
        "{} of {} windows pipelined",
        summary.windows_pipelined,
        summary.windows
    );
    assert!(
        summary.requests_per_round_trip() > 3.0,
        "{}",
        summary.requests_per_round_trip()
    );
    assert!(summary.requests_in_flight_max >= 8);
    // Cuts, stalls and server crashes fall inside windows (each file in flight then settled
    // one by one), and refusals come inside them (a batch's file under a name that exists):
    // every file's outcome was judged, and the end checks found the store as told.
    assert!(
        summary.windows_interrupted > 40,
        "{}",
        summary.windows_interrupted
    );
    assert!(summary.window_refusals > 300, "{}", summary.window_refusals);
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_does_not() {
    let config = DetConfig {
        crash_chance: 1.0,
        ..DetConfig::default()
    };
    for seed in [3, 77, 1234] {
        let first = run_seed(seed, &config);
        let second = run_seed(seed, &config);
        // The runs compared go through crashes, so the crash path repeats too.
        assert!(first.summary.faults.get("server_restart") >= Some(&1));
        assert_eq!(first.trace, second.trace, "seed {seed}");
        assert_eq!(first.summary.operations, second.summary.operations);
        assert_eq!(first.summary.faults, second.summary.faults);
        assert_eq!(first.summary.elapsed_secs, second.summary.elapsed_secs);
        assert_ne!(first.trace, run_seed(seed + 1, &config).trace);
    }
}

#[test]
fn crashes_at_every_run_lose_nothing_that_was_acknowledged() {
    let config = DetConfig {
        crash_chance: 1.0,
        max_crashes: 4,
        crash_window: Duration::from_secs(3),
        ..DetConfig::default()
    };
    let summary = run_seeds(0, 300, &config);
    for breach in summary.breaches.iter().take(20) {
        eprintln!("{breach}");
    }
    assert!(summary.passed(), "{} breaches", summary.breaches.len());
    let fault = |kind: &str| summary.faults.get(kind).copied().unwrap_or(0);
    assert!(
        fault("server_restart") >= 300,
        "{}",
        fault("server_restart")
    );
    assert!(fault("server_crash") > 300, "{}", fault("server_crash"));
}
