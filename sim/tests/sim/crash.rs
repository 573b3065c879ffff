//! The crash mode: `kill -9` of a real server process under load, every file checked.

use ferry_sim::crash::{CrashConfig, run};

#[test]
fn kill_9_under_mixed_load_breaks_no_promise_and_interrupted_uploads_complete() {
    let config = CrashConfig::short(3, env!("CARGO_BIN_EXE_ferry-sim").into());
    let summary = run(&config).expect("the crash run goes on to the end");
    for violation in &summary.violations {
        eprintln!("{violation}");
    }
    eprintln!("{}", summary.table());
    assert!(summary.passed(), "{} violations", summary.violations.len());
    // The run must still be exercising crashes, not only passing.
    assert_eq!(summary.kills, config.kills);
    assert!(
        summary.kills_mid_upload >= config.kills / 2,
        "only {} of {} kills hit an upload under way",
        summary.kills_mid_upload,
        config.kills
    );
    assert!(summary.acked > 0 && summary.refused > 0, "{summary:?}");
    assert!(
        summary.interrupted >= 1,
        "no upload was interrupted by a kill"
    );
    assert_eq!(
        summary.reruns, summary.interrupted,
        "every interrupted upload reruns"
    );
    assert!(
        summary.resumed_in_load + summary.rerun_resumed >= 1,
        "no upload resumed past byte 0 after a kill"
    );
    assert_eq!(summary.checks, 2 * config.kills + 1);
}
