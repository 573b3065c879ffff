//! Programs some tests check ferry's generated files and output with (`systemd-analyze`,
//! `strace`, `promtool`, `bash`, `zsh`, `fish`, `man`): present on CI (`.ci/run` installs them),
//! maybe not on a developer's machine.

use std::process::{Command, Stdio};

/// Environment variable that makes a missing tool a failure instead of a skip (set by CI).
const REQUIRE: &str = "FERRY_REQUIRE_TOOLS";

/// Whether `tool` runs. If not, prints that the test checking `what` is skipped, or panics
/// when `FERRY_REQUIRE_TOOLS=1` asks for every tool.
pub fn have(tool: &str, what: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var(REQUIRE).as_deref() != Ok("1"),
            "`{tool}` is missing and {REQUIRE}=1: install it (see .ci/run)"
        );
        eprintln!("skipped: `{tool}` is not installed, so {what} is not checked");
    }
    found
}
