//! Replaying committed fuzz corpora in `cargo test`, for every crate whose fuzz target bodies
//! live in its library (`ferry_protocol::fuzzing`, `ferry_server::fuzzing`).

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace's `fuzz/` folder, seen from a crate's manifest folder.
pub fn fuzz_dir(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir).join("../fuzz")
}

/// The files of one folder, sorted; none if the folder does not exist.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable folder entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `run_target(target, bytes)` on every file of `files`.
pub fn replay(target: &str, files: &[PathBuf], run_target: impl Fn(&str, &[u8])) {
    for file in files {
        let bytes = match fs::read(file) {
            Ok(bytes) => bytes,
            // A fuzzer running beside the tests replaces corpus files as it shrinks them.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => panic!("cannot read {}: {error}", file.display()),
        };
        eprintln!("replaying {}", file.display());
        run_target(target, &bytes);
    }
}
