//! Progress of many files for scripts: with `--json`, one line per finished file on stderr.

use crate::support::cli::{TestServer, ferry, write_tree};

#[test]
fn json_prints_one_line_per_finished_file_and_the_document_at_the_end() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    let tree: Vec<(String, Vec<u8>)> = (0..5u8)
        .map(|i| (format!("f{i}"), vec![i; 100 * usize::from(i)]))
        .collect();
    write_tree(&work.path().join("t"), &tree);
    let run = ferry(server.addr(), work.path(), &["--json", "put", "-r", "t"]).ok();
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{}", run.stderr);
    let mut names: Vec<&str> = lines.iter().map(|l| l["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["t/f0", "t/f1", "t/f2", "t/f3", "t/f4"]);
    for line in &lines {
        assert_eq!(line["event"], "file_finished");
        assert_eq!(line["ok"], true);
        assert_eq!(line["files_total"], 5);
        let name = line["name"].as_str().unwrap();
        let i: u64 = name[3..].parse().unwrap();
        assert_eq!(line["bytes"], 100 * i, "{line}");
    }
    let done: Vec<u64> = lines
        .iter()
        .map(|l| l["files_done"].as_u64().unwrap())
        .collect();
    assert_eq!(done, [1, 2, 3, 4, 5]);
    assert_eq!(run.json()["summary"]["stored"], 5);

    let sync = ferry(
        server.addr(),
        work.path(),
        &["--json", "sync", "t", ":copy"],
    )
    .ok();
    assert_eq!(sync.stderr.lines().count(), 5, "{}", sync.stderr);
    assert_eq!(sync.json()["summary"]["sent"], 5);
}
