//! The socket mode: a CI-sized run passes, and a broken server is caught.

use ferry_server::{Server, ServerConfig};
use ferry_sim::plan::HostileKind;
use ferry_sim::sockets::{SocketConfig, run};

/// A CI-sized run against the engine under test: `FERRY_ENGINE` (`threads` or `events`), else
/// the default. CI runs these tests once per engine.
fn ci(clients: u32, seed: u64) -> SocketConfig {
    let mut config = SocketConfig::ci(clients, seed);
    if let Ok(name) = std::env::var("FERRY_ENGINE") {
        config.engine = name
            .parse()
            .unwrap_or_else(|error| panic!("FERRY_ENGINE: {error}"));
    }
    config
}

#[test]
fn two_hundred_clients_with_faults_keep_every_promise() {
    let summary = run(&ci(200, 7)).expect("run starts");
    for breach in &summary.breaches {
        eprintln!("{breach}");
    }
    eprintln!("{}", summary.table());
    assert!(summary.passed(), "{} breaches", summary.breaches.len());
    assert_eq!(summary.clients, 200);
    assert_eq!(summary.hostile_clients, 20);
    let fault = |kind: &str| summary.faults.get(kind).copied().unwrap_or(0);
    assert!(fault("cut") > 10, "cuts: {}", fault("cut"));
    assert!(fault("stall") > 0, "no stall fired");
    assert!(summary.resumes > 0);
    assert!(
        summary.resumed_mid_file > 0,
        "no transfer resumed past byte 0"
    );
    assert!(summary.expected_failures > 0);
}

#[test]
fn clients_over_tls_with_faults_keep_every_promise() {
    let mut config = ci(60, 13);
    config.tls = true;
    config.hostile_every = 0; // hostile clients speak raw plaintext
    let summary = run(&config).expect("run starts");
    for breach in &summary.breaches {
        eprintln!("{breach}");
    }
    eprintln!("{}", summary.table());
    assert!(summary.passed(), "{} breaches", summary.breaches.len());
    let fault = |kind: &str| summary.faults.get(kind).copied().unwrap_or(0);
    assert!(fault("cut") > 0, "no cut fired");
    assert!(
        summary.resumes > 0,
        "no transfer resumed over a new TLS connection"
    );
}

/// A run where every client is hostile and lies about its digest half of the time.
fn wrong_digest_run(seed: u64, sabotage: bool) -> SocketConfig {
    let mut config = ci(12, seed);
    config.hostile_every = 1;
    config.faults = false;
    config.plan.hostile_kinds = vec![HostileKind::WrongDigest];
    config.sabotage_skip_digest_check = sabotage;
    config
}

#[test]
fn a_server_that_skips_the_digest_check_is_caught() {
    let summary = run(&wrong_digest_run(11, true)).expect("run starts");
    assert!(!summary.passed(), "the broken server went unnoticed");
    assert!(
        summary.breaches.iter().any(|b| b
            .what
            .contains("visible but no upload of it was acknowledged")),
        "{:?}",
        summary.breaches
    );
}

#[test]
fn the_same_wrong_digests_against_a_correct_server_pass() {
    let summary = run(&wrong_digest_run(11, false)).expect("run starts");
    assert!(summary.passed(), "{:?}", summary.breaches);
    assert!(
        summary
            .faults
            .get("hostile_wrong_digest")
            .copied()
            .unwrap_or(0)
            > 0
    );
}

#[test]
fn a_server_started_elsewhere_is_tested_through_its_address() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut server_config = ServerConfig::new(root.path());
    server_config.idle_timeout = std::time::Duration::from_secs(3);
    server_config.handshake_timeout = std::time::Duration::from_secs(2);
    let server = Server::start(server_config).expect("server starts");
    let mut config = ci(10, 5);
    config.server = Some(server.local_addr());
    config.plan.hostile_kinds = vec![HostileKind::SizeLieOver, HostileKind::GarbageMagic];
    let summary = run(&config).expect("run starts");
    assert!(summary.passed(), "{:?}", summary.breaches);
    assert!(summary.operations > 0);
    server.shutdown();
}
