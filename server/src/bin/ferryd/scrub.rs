//! `ferryd scrub`: the command line over [`ferry_server::scrub`].
//!
//! Progress goes to standard error; one line per finding and the summary (or, with `--json`,
//! the whole report as JSON) to standard output. Exit status: 0 when every file matched its
//! recorded digest, 1 when any file did not (a mismatch, no recorded digest, unreadable), 2
//! when the command line is wrong or the store could not be opened or listed.

use std::io::Write as _;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use ferry_server::{Progress, ScrubOptions, ScrubReport, ServerConfig, scrub};

use crate::store_args::StoreArgs;

/// Shortest time between two progress lines.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Re-read every stored file, recompute its BLAKE3 digest and compare it with the one recorded
/// when it was stored. Reports each mismatch, file without a recorded digest and unreadable
/// file; exits 1 if there is any, 0 if all matched, 2 if the scrub could not run. Safe beside
/// a running ferryd on the same store: it changes nothing.
#[derive(Debug, clap::Args)]
pub(crate) struct ScrubArgs {
    /// The store to scrub, named as for the server.
    #[command(flatten)]
    storage: StoreArgs,

    /// Read at most this many bytes per second (e.g. 50M), to leave the disk or network to
    /// live traffic. Unlimited if unset.
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = super::parse_rate)]
    limit_rate: Option<NonZeroU64>,

    /// Print the report as JSON on standard output instead of lines for people.
    #[arg(long)]
    json: bool,
}

impl ScrubArgs {
    /// The server configuration naming the store to scrub.
    fn config(&self) -> anyhow::Result<ServerConfig> {
        let mut config = ServerConfig::new(&self.storage.root);
        config.object_store = self.storage.object_store()?;
        Ok(config)
    }
}

/// Exit status when every file matched.
const CLEAN: i32 = 0;
/// Exit status when a file did not match, has no recorded digest or could not be read.
const PROBLEMS: i32 = 1;
/// Exit status when the scrub could not run (as clap's for a wrong command line).
const FAILED: i32 = 2;

/// Runs `ferryd scrub` and returns its exit status: progress on standard error, the findings
/// and summary (or with `--json` the report) on standard output.
pub(crate) fn run(args: &ScrubArgs) -> i32 {
    let config = match args.config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("ferryd scrub: {message}");
            return FAILED;
        }
    };
    let options = ScrubOptions {
        limit_rate: args.limit_rate,
    };
    let mut last = None::<Instant>;
    let report = scrub(&config, &options, |progress| {
        print_progress(progress, &mut last)
    });
    match report {
        Ok(report) => finish(&report, args.json),
        Err(error) => {
            eprintln!("ferryd scrub: {error}");
            FAILED
        }
    }
}

/// Prints progress at most every [`PROGRESS_EVERY`], and always when the last file is done.
fn print_progress(progress: &Progress, last: &mut Option<Instant>) {
    let done = progress.files_done == progress.files_total;
    if last.is_some_and(|at| at.elapsed() < PROGRESS_EVERY) && !done {
        return;
    }
    *last = Some(Instant::now());
    eprintln!("scrub: {progress}");
}

/// Prints the findings and the summary, or the JSON report; returns the exit status.
fn finish(report: &ScrubReport, json: bool) -> i32 {
    let mut out = std::io::stdout().lock();
    let printed = if json {
        serde_json::to_writer_pretty(&mut out, report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        report
            .findings
            .iter()
            .try_for_each(|finding| writeln!(out, "{finding}"))
            .and_then(|()| writeln!(out, "{report}"))
    };
    if let Err(error) = printed.and_then(|()| out.flush()) {
        eprintln!("ferryd scrub: cannot print the report: {error}");
        return FAILED;
    }
    if report.is_clean() { CLEAN } else { PROBLEMS }
}
