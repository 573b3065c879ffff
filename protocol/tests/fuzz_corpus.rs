//! Replays every committed fuzz corpus file through its target, so that plain `cargo test`
//! runs what the fuzzers found (and the seeds they started from).
//!
//! The corpora live in `fuzz/corpus/<target>/`, crashes kept as regressions in
//! `fuzz/regressions/<target>/`. The target bodies are `ferry_protocol::fuzzing` (feature
//! `fuzzing`, switched on for this crate's tests by its dev-dependency on itself).

use std::fs;
use std::path::PathBuf;

use ferry_testkit::corpus::{self, files_in};

use ferry_protocol::fuzzing::{TARGETS, run_target, seed_corpus};

fn fuzz_dir() -> PathBuf {
    corpus::fuzz_dir(env!("CARGO_MANIFEST_DIR"))
}

fn replay(target: &str, files: &[PathBuf]) {
    corpus::replay(target, files, run_target);
}

#[test]
fn every_target_has_a_committed_corpus_and_it_replays_cleanly() {
    for target in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        let files = files_in(&dir);
        assert!(
            !files.is_empty(),
            "no corpus for fuzz target {target} in {}",
            dir.display()
        );
        replay(target, &files);
    }
}

#[test]
fn every_crash_kept_as_a_regression_replays_cleanly() {
    for target in TARGETS {
        replay(
            target,
            &files_in(&fuzz_dir().join("regressions").join(target)),
        );
    }
}

#[test]
fn every_seed_input_replays_cleanly() {
    let seeds = seed_corpus();
    for target in TARGETS {
        assert!(
            seeds.iter().any(|s| s.target == target),
            "no seeds for {target}"
        );
    }
    for seed in seeds {
        eprintln!("seed {}/{}", seed.target, seed.name);
        run_target(seed.target, &seed.bytes);
    }
}

/// Writes the seed inputs into `fuzz/corpus/<target>/`. Run after changing the seeds:
/// `cargo test -p ferry-protocol --test fuzz_corpus -- --ignored write_seed_corpus`.
#[test]
#[ignore = "writes files; run by hand to regenerate the seed corpus"]
fn write_seed_corpus() {
    for seed in seed_corpus() {
        let dir = fuzz_dir().join("corpus").join(seed.target);
        fs::create_dir_all(&dir).expect("create the corpus folder");
        fs::write(dir.join(&seed.name), &seed.bytes).expect("write a seed");
    }
}
