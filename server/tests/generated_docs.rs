//! `ferryd completions SHELL` and `ferryd man`: each shell's script parses in that shell, and
//! `man` renders the page.

use std::path::Path;
use std::process::Command;

use ferry_testkit::tools;

fn ferryd(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ferryd {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Writes `text` to a file and runs `shell -n` on it (parse, run nothing).
fn assert_parses(shell: &str, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ferryd-completion");
    std::fs::write(&file, text).unwrap();
    let output = Command::new(shell).arg("-n").arg(&file).output().unwrap();
    assert!(
        output.status.success(),
        "{shell} -n refuses the completion script: {}",
        String::from_utf8_lossy(&output.stderr)
    );
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
fn completions_of_every_shell_name_the_flags_and_tools() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = ferryd(&["completions", shell]);
        for word in [
            "ferryd",
            "max-file-size",
            "log-format",
            "check-config",
            "hash-token",
        ] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
}

#[test]
fn completions_parse_in_their_shells() {
    for shell in ["bash", "zsh", "fish"] {
        if tools::have(shell, &format!("the {shell} completion script")) {
            assert_parses(shell, &ferryd(&["completions", shell]));
        }
    }
}

#[test]
fn a_broken_script_fails_the_parse_check() {
    // The check above can fail: bash refuses a script with an unclosed `if`.
    if !tools::have("bash", "the parse check itself") {
        return;
    }
    let result = std::panic::catch_unwind(|| assert_parses("bash", "if true; then\n"));
    assert!(result.is_err());
}

#[test]
fn man_page_renders_with_man() {
    if !tools::have("man", "the man page") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("ferryd.1");
    std::fs::write(&page, ferryd(&["man"])).unwrap();
    let text = render(&page);
    assert!(text.contains("ferryd"), "{text}");
    assert!(text.contains("--max-file-size"), "{text}");
    assert!(text.contains("FERRY_CONFIG"), "{text}");
}

#[test]
fn man_dir_writes_a_page_per_tool_that_man_renders() {
    let dir = tempfile::tempdir().unwrap();
    ferryd(&["man", "--dir", dir.path().to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "ferryd-check-config.1",
            "ferryd-completions.1",
            "ferryd-hash-token.1",
            "ferryd-man.1",
            "ferryd-scrub.1",
            "ferryd.1"
        ]
    );
    if tools::have("man", "the man pages") {
        let text = render(&dir.path().join("ferryd-hash-token.1"));
        assert!(text.contains("--read-only"), "{text}");
    }
}
