//! Replays every committed corpus file of the fuzz targets whose bodies live in this crate
//! (`ferry_server::fuzzing`, feature `fuzzing`, switched on for these tests by the crate's
//! dev-dependency on itself), so that plain `cargo test` runs what the fuzzers found and the
//! seeds they started from. The protocol crate's `tests/fuzz_corpus.rs` replays the others.

use std::fs;
use std::path::PathBuf;

use ferry_testkit::corpus::{self, files_in};

use ferry_server::fuzzing::{TARGETS, run_target, seed_corpus};

fn fuzz_dir() -> PathBuf {
    corpus::fuzz_dir(env!("CARGO_MANIFEST_DIR"))
}

fn replay(target: &str, files: &[PathBuf]) {
    corpus::replay(target, files, run_target);
}

#[test]
fn every_server_fuzz_target_has_a_committed_corpus_and_it_replays_cleanly() {
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
fn every_crash_of_a_server_fuzz_target_kept_as_a_regression_replays_cleanly() {
    for target in TARGETS {
        replay(
            target,
            &files_in(&fuzz_dir().join("regressions").join(target)),
        );
    }
}

#[test]
fn every_seed_input_of_a_server_fuzz_target_replays_cleanly() {
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
/// `cargo test -p ferry-server --test server -- --ignored write_server_seed_corpus`.
#[test]
#[ignore = "writes files; run by hand to regenerate the seed corpus"]
fn write_server_seed_corpus() {
    for seed in seed_corpus() {
        let dir = fuzz_dir().join("corpus").join(seed.target);
        fs::create_dir_all(&dir).expect("create the corpus folder");
        fs::write(dir.join(&seed.name), &seed.bytes).expect("write a seed");
    }
}
