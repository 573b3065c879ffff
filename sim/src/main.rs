//! `ferry-sim`: runs the simulation and prints a summary; exits non-zero on any breach.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_sim::crash::{self, CrashArgs, ServeArgs};
use ferry_sim::det::{DetConfig, run_seeds};
use ferry_sim::report::Summary;
use ferry_sim::sockets::{self, SocketConfig};
use ferry_sim::store::StoreArgs;

/// Hundreds of concurrent ferry clients with injected delays and faults; every byte checked.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Args {
    /// Another mode than the simulation.
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Concurrent clients, hostile ones included (socket mode default 200; deterministic
    /// mode default 3 well-behaved plus one hostile per seed).
    #[arg(long)]
    clients: Option<u32>,
    /// Seed of every choice; without it a random seed is chosen and printed.
    #[arg(long)]
    seed: Option<u64>,
    /// A ferryd to test, run with `--insecure` (the simulator speaks plaintext); without it one
    /// is started in-process on a fresh temporary root.
    #[arg(long)]
    server: Option<SocketAddr>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Run the deterministic mode (no sockets, no threads, virtual time) instead.
    #[arg(long)]
    deterministic: bool,
    /// Deterministic mode: how many consecutive seeds to run, from `--seed`.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Socket mode: where the in-process servers keep files.
    #[command(flatten)]
    store: StoreArgs,
    /// Socket mode: in-process servers (nodes) over the one store, behind a round-robin load
    /// balancer, so a retried connection lands on another node; more than one needs an object
    /// store (--store seaweedfs or s3://…).
    #[arg(long, default_value_t = 1)]
    nodes: u32,
    /// Socket mode: bytes per part, in MiB, of the nodes' uploads to an object store (at least
    /// 5; default: the server's).
    #[arg(long, value_name = "MIB")]
    s3_part_mib: Option<u64>,
    /// Socket mode: the largest file of the plans, in MiB (default 6, or 0.5 with --small);
    /// files are mostly small, a few are drawn up to this. The relays' slowest link is then a
    /// quarter of it per second, so a large file takes seconds, not minutes.
    #[arg(long, value_name = "MIB")]
    max_file_mib: Option<u64>,
    /// Socket mode: the percentage of files drawn large (up to the largest file) rather than
    /// small (default 4, or 2 with --small).
    #[arg(long, value_name = "PERCENT")]
    large_percent: Option<f64>,
    /// Socket mode: no stalls or cuts (latency, bandwidth and segment limits remain).
    #[arg(long)]
    no_faults: bool,
    /// Socket mode: small files, as the CI test uses.
    #[arg(long)]
    small: bool,
    /// Socket mode: the in-process server's handshake timeout, in seconds (default 8, above
    /// the longest injected stall).
    #[arg(long)]
    server_handshake_timeout: Option<u64>,
    /// Socket mode: the in-process server and the clients speak TLS 1.3 (no hostile clients:
    /// they speak raw plaintext).
    #[arg(long)]
    tls: bool,
    /// Socket mode: how the in-process server drives its connections (`events` or `threads`).
    #[arg(long, env = "FERRY_ENGINE")]
    engine: Option<String>,
    /// Test only: run the server (in-process, or the deterministic mode's) with its digest
    /// check skipped.
    #[arg(long, hide = true)]
    sabotage_skip_digest_check: bool,
}

/// Modes other than the simulation.
#[derive(Debug, Subcommand)]
enum Mode {
    /// Crash consistency: kill -9 the server at random moments under a mixed load, restart
    /// it, and check every file against what clients sent and were told.
    Crash(CrashArgs),
    /// The server process the crash mode starts and kills.
    #[command(hide = true)]
    CrashServer(ServeArgs),
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    // The in-process servers' and the clients' logs, when RUST_LOG asks for them (for
    // instance RUST_LOG=ferry_server=warn to see why a node refused with a storage error).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    match &args.mode {
        Some(Mode::CrashServer(serve)) => {
            crash::process::serve(&serve.options()).context("the crash-mode server")?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Mode::Crash(crash_args)) => return crash_mode(crash_args),
        None => {}
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    if args.seed.is_none() {
        eprintln!("ferry-sim: seed {seed} (rerun with --seed {seed})");
    }
    let summary = if args.deterministic {
        let mut config = DetConfig::default();
        if let Some(clients) = args.clients {
            config.clients = clients.saturating_sub(config.hostile_clients).max(1);
        }
        config.sabotage.skip_digest_check = args.sabotage_skip_digest_check;
        run_seeds(seed, args.seeds.max(1), &config)
    } else {
        let clients = args.clients.unwrap_or(200);
        let mut config = if args.small {
            SocketConfig::ci(clients, seed)
        } else {
            SocketConfig::new(clients, seed)
        };
        config.server = args.server;
        config.store = args.store.spec().context("--store")?;
        config.nodes = args.nodes;
        config.s3_part_size = args.s3_part_mib.map(|mib| mib << 20);
        if let Some(mib) = args.max_file_mib {
            config.plan.max_size = mib << 20;
            // Large files through the slowest links would take minutes.
            config.slowest_link = config.slowest_link.max((mib << 20) / 4);
        }
        if let Some(percent) = args.large_percent {
            config.plan.large_chance = (percent / 100.0).clamp(0.0, 1.0);
        }
        config.faults = !args.no_faults;
        if args.tls {
            config.tls = true;
            config.hostile_every = 0;
        }
        config.sabotage_skip_digest_check = args.sabotage_skip_digest_check;
        if let Some(engine) = &args.engine {
            config.engine = engine.parse().map_err(anyhow::Error::msg)?;
        }
        if let Some(secs) = args.server_handshake_timeout {
            config.server_handshake_timeout = std::time::Duration::from_secs(secs);
        }
        sockets::run(&config).context("the simulation could not start")?
    };
    report(&summary, args.json)?;
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `ferry-sim crash`: runs the crash test, prints its figures and violations.
fn crash_mode(args: &CrashArgs) -> anyhow::Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("ferry-sim crash: seed {seed} (rerun with --seed {seed})");
    let exe = std::env::current_exe().context("finding the ferry-sim binary to run servers")?;
    let summary = crash::run(&args.config(seed, exe)).context("the crash run could not go on")?;
    for violation in &summary.violations {
        eprintln!("{violation}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.table());
    }
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn report(summary: &Summary, json: bool) -> anyhow::Result<()> {
    for breach in summary.breaches.iter().take(50) {
        eprintln!("{breach}");
    }
    if summary.breaches.len() > 50 {
        eprintln!("... and {} more breaches", summary.breaches.len() - 50);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
        print!("{}", summary.table());
    }
    Ok(())
}
