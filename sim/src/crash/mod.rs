//! The crash mode: a crash-consistency run as SQLite would do it. A real `ferryd` process is
//! killed with `SIGKILL` at random moments under a mixed load of real clients, restarted on the
//! same root and port, and the root is checked after every kill against everything the
//! clients sent and were told; at the end every interrupted upload is run again and must
//! complete.
//!
//! ```text
//!  client threads (ferry_client, retries + resume)          ledger: every upload, its version,
//!    small / large, fresh / shared names, ± overwrite ───►   start tick, ACK / refusal / give-up
//!        │ TCP 127.0.0.1:PORT
//!        ▼
//!  ferry-sim crash-server (child process: ferry_server::Server, real fsyncs) on ROOT
//!        │  after a random pause: SIGKILL
//!        ▼
//!  check 1: ROOT read directly (no server running) ─ rules ─► violations
//!  check 2: a server on ROOT on a private port: ROOT again, inodes, listing, downloads; SIGKILL
//!  random downtime, then the load's server again on the same PORT; clients retry and resume
//!  … × kills, then: the load stops, interrupted uploads rerun one by one, check 3 (everything)
//! ```
//!
//! The rules are exact and written in [`rules`]; the checks in [`check`]. The seed fixes every
//! draw (the clients' uploads, the pauses before kills, the downtimes), not the interleaving
//! of threads: two runs with one seed hit different moments. The server runs in plaintext;
//! `SIGKILL` ends the process, not the machine, so what it tests is that no step of a commit
//! leaves a state the restart misreads — not what a power cut does to unsynced pages.
//!
//! ```text
//! cargo run --release -p ferry-sim -- crash --kills 120 --seed 1
//! ```

mod args;
pub mod check;
pub mod ledger;
pub mod load;
pub mod process;
pub mod rerun;
pub mod rules;
pub mod scan;
pub mod served;
pub mod summary;

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_client::{ClientError, ClientOptions, Security};
use rand::RngExt;

pub use self::args::{CrashArgs, ServeArgs};
use self::check::Checker;
use self::ledger::Ledger;
use self::load::{Gate, Load, LoadShape};
use self::process::{ServeOptions, ServerProcess, free_port};
pub use self::summary::CrashSummary;
use crate::plan::rng_for;

/// Stream of the kill schedule's generator (see [`rng_for`]).
const KILL_STREAM: u64 = 0xD1E;

/// Why a crash run could not be carried out (as opposed to a violation it found).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrashError {
    /// The storage root could not be made or read.
    #[error("cannot read the storage root: {0}")]
    Root(#[source] std::io::Error),
    /// The storage root given holds files already, which the run did not send.
    #[error("{} is not empty: a crash run needs an empty or missing root", .0.display())]
    RootNotEmpty(PathBuf),
    /// A server process did not start or could not be killed.
    #[error("server process: {0}")]
    Server(#[source] std::io::Error),
    /// The load's client threads could not be started.
    #[error("cannot start the client threads: {0}")]
    Threads(#[source] std::io::Error),
    /// A checking client could not talk to an idle server.
    #[error("the checking client failed: {0}")]
    Client(#[source] ClientError),
}

/// The shape of a crash run.
#[derive(Clone, Debug)]
pub struct CrashConfig {
    /// Seed of every draw.
    pub seed: u64,
    /// `SIGKILL`s under load.
    pub kills: u32,
    /// What the clients upload.
    pub load: LoadShape,
    /// How long the load runs between a restart and the next kill.
    pub uptime: RangeInclusive<Duration>,
    /// Longest extra downtime after the checks, before the restart (drawn from 0).
    pub max_downtime: Duration,
    /// The server's bytes between durable checkpoints (small, so a kill mid-file leaves a
    /// resumable offset).
    pub checkpoint_interval: u64,
    /// The clients' options (plaintext; a retry budget some downtimes exceed).
    pub client: ClientOptions,
    /// The `ferry-sim` binary that runs the server (`crash-server` subcommand).
    pub server_exe: PathBuf,
    /// Storage root (empty or missing; kept afterwards); `None` makes a fresh temporary one,
    /// removed afterwards.
    pub root: Option<PathBuf>,
    /// Print a line to standard error after each kill's checks.
    pub progress: bool,
}

impl CrashConfig {
    /// A long run: `kills` kills, 4 clients, files up to 6 MiB.
    pub fn new(seed: u64, kills: u32, server_exe: PathBuf) -> Self {
        CrashConfig {
            seed,
            kills,
            load: LoadShape {
                clients: 4,
                shared_names: 12,
                small_max: 48 * 1024,
                large: (1 << 20)..=(6 << 20),
                large_chance: 0.3,
                fresh_chance: 0.15,
                overwrite_chance: 0.6,
                resend_chance: 0.3,
            },
            uptime: Duration::from_millis(150)..=Duration::from_millis(2000),
            max_downtime: Duration::from_millis(1500),
            checkpoint_interval: 256 * 1024,
            client: ClientOptions {
                security: Security::Insecure,
                connect_timeout: Duration::from_secs(2),
                io_timeout: Duration::from_secs(5),
                // About 1.3 s of backoff: a restart within it is resumed by the library, a
                // longer downtime makes the upload an interrupted one.
                retries: 5,
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(500),
                ..ClientOptions::default()
            },
            server_exe,
            root: None,
            progress: false,
        }
    }

    /// A short run for `cargo test`: 8 kills, 3 clients, files up to 1 MiB.
    pub fn short(seed: u64, server_exe: PathBuf) -> Self {
        let mut config = CrashConfig::new(seed, 8, server_exe);
        config.load.clients = 3;
        config.load.shared_names = 6;
        config.load.small_max = 16 * 1024;
        config.load.large = (256 << 10)..=(1 << 20);
        config.load.large_chance = 0.4;
        config.uptime = Duration::from_millis(150)..=Duration::from_millis(900);
        // A budget of 350 ms of backoff against downtimes up to a second (plus the checks):
        // most kills outlast it, so uploads are interrupted and rerun; some do not, so the
        // library resumes others by itself.
        config.client.retries = 3;
        config.max_downtime = Duration::from_millis(1000);
        config.checkpoint_interval = 64 * 1024;
        config
    }
}

/// Runs the crash test; the summary lists every violation found.
pub fn run(config: &CrashConfig) -> Result<CrashSummary, CrashError> {
    let started = Instant::now();
    let temp = tempfile::tempdir().map_err(CrashError::Root)?;
    let root = config
        .root
        .clone()
        .unwrap_or_else(|| temp.path().join("root"));
    // Files the ledger does not know would all be violations.
    if std::fs::read_dir(&root).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(CrashError::RootNotEmpty(root));
    }
    let serve = ServeOptions {
        root,
        listen: free_port().map_err(CrashError::Server)?,
        checkpoint_interval: config.checkpoint_interval,
    };
    let exe = &config.server_exe;
    let mut summary = CrashSummary {
        seed: config.seed,
        clients: config.load.clients,
        ..CrashSummary::default()
    };
    let mut server = ServerProcess::restart(exe, &serve).map_err(CrashError::Server)?;
    let ledger = Arc::new(Ledger::new());
    let gate = Arc::new(Gate::new());
    let load = Load::start(
        config.seed,
        &config.load,
        serve.listen,
        &config.client,
        &ledger,
        &gate,
    )
    .map_err(CrashError::Threads)?;
    let mut checker = Checker::new(exe.clone(), serve.clone(), config.client.clone());
    let mut rng = rng_for(config.seed, u64::MAX, KILL_STREAM);
    let mut violations = Vec::new();
    gate.open();
    for kill in 1..=config.kills {
        std::thread::sleep(rng.random_range(config.uptime.clone()));
        gate.close();
        let in_flight = ledger.pending() as u64;
        server.kill_9().map_err(CrashError::Server)?;
        summary.kills += 1;
        summary.kills_mid_upload += u32::from(in_flight > 0);
        summary.in_flight_at_kills += in_flight;
        violations.extend(checker.after_kill(&ledger, kill, &mut summary)?);
        violations.extend(checker.after_restart(&ledger, kill, &mut summary)?);
        if config.progress {
            eprintln!(
                "kill {kill}/{}: {in_flight} upload(s) under way; {} violation(s) so far",
                config.kills,
                violations.len()
            );
        }
        std::thread::sleep(rng.random_range(Duration::ZERO..=config.max_downtime));
        server = ServerProcess::restart(exe, &serve).map_err(CrashError::Server)?;
        gate.open();
    }
    load.finish();
    violations.extend(
        rerun::rerun_interrupted(server.addr(), &config.client, &ledger, &mut summary)
            .map_err(CrashError::Client)?,
    );
    violations.extend(checker.at_end(&ledger, server.addr(), &mut summary)?);
    server.kill_9().map_err(CrashError::Server)?;
    summary.count(&ledger.snapshot());
    summary.violations = violations;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
