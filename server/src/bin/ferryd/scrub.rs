//! `ferryd scrub`: the command line over [`ferry_server::scrub`].
//!
//! Progress goes to standard error; one line per finding and the summary (or, with `--json`,
//! the whole report as JSON) to standard output. Exit status: 0 when every file matched its
//! recorded digest, 1 when any file did not (a mismatch, no recorded digest, unreadable), 2
//! when the command line is wrong or the store could not be opened or listed.

use std::io::Write as _;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferry_server::{Progress, S3Config, ScrubOptions, ScrubReport, ServerConfig, scrub};

/// Shortest time between two progress lines.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Re-read every stored file, recompute its BLAKE3 digest and compare it with the one recorded
/// when it was stored. Reports each mismatch, file without a recorded digest and unreadable
/// file; exits 1 if there is any, 0 if all matched, 2 if the scrub could not run. Safe beside
/// a running ferryd on the same store: it changes nothing.
#[derive(Debug, clap::Args)]
pub(crate) struct ScrubArgs {
    /// Storage root to scrub (as given to the server).
    #[arg(long, env = "FERRY_ROOT", default_value = "./ferry-data")]
    root: PathBuf,

    /// Scrub an S3-compatible bucket instead of --root: `s3://BUCKET` or `s3://BUCKET/PREFIX`.
    #[arg(long, env = "FERRY_STORE", value_name = "s3://BUCKET/PREFIX")]
    store: Option<String>,

    /// The object store's URL [default: AWS S3 in --s3-region].
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL", requires = "store")]
    s3_endpoint: Option<String>,

    /// The region requests to the object store are signed for.
    #[arg(
        long,
        env = "AWS_REGION",
        default_value = "us-east-1",
        requires = "store"
    )]
    s3_region: String,

    /// The object store's access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", requires = "store")]
    s3_access_key: Option<String>,

    /// The object store's secret key (prefer the environment variable).
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        requires = "store"
    )]
    s3_secret_key: Option<String>,

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
    fn config(&self) -> Result<ServerConfig, String> {
        let mut config = ServerConfig::new(&self.root);
        let Some(location) = &self.store else {
            return Ok(config);
        };
        let endpoint = self
            .s3_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.s3_region));
        let (Some(access_key), Some(secret_key)) = (&self.s3_access_key, &self.s3_secret_key)
        else {
            return Err(
                "--store needs the object store's keys: set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (or --s3-access-key and --s3-secret-key)"
                    .into(),
            );
        };
        let s3 = S3Config::from_url(location, endpoint, &self.s3_region, access_key, secret_key)
            .map_err(|error| error.to_string())?;
        config.object_store = Some(s3);
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
