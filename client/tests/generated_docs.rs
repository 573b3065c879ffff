//! `ferry completions SHELL` and `ferry man`: each shell's script parses in that shell, and
//! `man` renders the pages; none of it needs a server or a config folder.

use std::path::Path;
use std::process::Command;

use ferry_testkit::tools;

/// Runs `ferry` with no environment at all (no HOME, no config folder) and returns stdout.
fn ferry(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .env_clear()
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ferry {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The page as `MANWIDTH=80 man -l` shows it (plain text: stdout is no terminal).
fn render(page: &Path) -> String {
    let output = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "80")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "man -l {}: {}",
        page.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn completions_of_every_shell_name_the_subcommands_and_flags() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = ferry(&["completions", shell]);
        for word in ["ferry", "put", "get", "overwrite", "fingerprint"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
}

#[test]
fn completions_parse_in_their_shells() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        if !tools::have(shell, &format!("the {shell} completion script")) {
            continue;
        }
        let file = dir.path().join(format!("ferry.{shell}"));
        std::fs::write(&file, ferry(&["completions", shell])).unwrap();
        let output = Command::new(shell).arg("-n").arg(&file).output().unwrap();
        assert!(
            output.status.success(),
            "{shell} -n refuses the completion script: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn completion_for_an_unknown_shell_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("possible values: bash"), "{stderr}");
}

#[test]
fn man_page_renders_with_man() {
    if !tools::have("man", "the man page") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("ferry.1");
    std::fs::write(&page, ferry(&["man"])).unwrap();
    let text = render(&page);
    assert!(text.starts_with("ferry(1)"), "{text}");
    assert!(text.contains("--fingerprint"), "{text}");
    assert!(text.contains("FERRY_SERVER"), "{text}");
}

#[test]
fn man_dir_writes_a_page_per_subcommand_that_man_renders() {
    let dir = tempfile::tempdir().unwrap();
    ferry(&["man", "--dir", dir.path().to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "ferry-completions.1",
            "ferry-get.1",
            "ferry-ls.1",
            "ferry-man.1",
            "ferry-mv.1",
            "ferry-put.1",
            "ferry-rm.1",
            "ferry-stat.1",
            "ferry-sync.1",
            "ferry.1"
        ]
    );
    if tools::have("man", "the man pages") {
        let text = render(&dir.path().join("ferry-put.1"));
        assert!(text.contains("--overwrite"), "{text}");
    }
}
