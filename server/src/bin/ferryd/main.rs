//! `ferryd`: the ferry file-transfer server.
//!
//! Every flag can also be set by an environment variable (shown in `--help`) or a key of the
//! `--config` file (TOML). Sizes take suffixes (`10G`, `512MiB`), durations human forms (`30s`,
//! `7days`).
//!
//! TLS is on unless `--insecure` is given: the first start makes a self-signed certificate in
//! the state folder and every start prints its fingerprint for clients to pin.

mod args;
mod config_file;
mod generate;
mod hash_token;
mod logging;
mod scrub;
mod settings;
mod store_args;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use ferry_server::{Server, TlsIdentity};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::args::{Args, Tool};
// `scrub --limit-rate` parses rates as the serving flags and ferry's `--limit-rate` do.
use ferry_protocol::units::parse_rate;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            logging::report_fatal(&error);
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let (args, _) = Args::parse_from_with_config(std::env::args_os())?;
    match args.tool {
        Some(tool) => run_tool(tool),
        None => serve(&args),
    }
}

/// Runs one of the tools instead of the server.
fn run_tool(tool: Tool) -> anyhow::Result<()> {
    match tool {
        Tool::HashToken {
            read_only,
            folder,
            generate,
        } => hash_token::hash_token(read_only, folder.as_deref(), generate),
        Tool::CheckConfig { file } => settings::check_config(&file),
        Tool::Completions { shell } => generate::completions(shell),
        Tool::Man { dir } => generate::man(dir.as_deref()),
        Tool::Scrub(args) => std::process::exit(scrub::run(&args)),
    }
}

/// Serves until SIGINT or SIGTERM, then shuts down within the grace (a second signal exits at
/// once).
fn serve(args: &Args) -> anyhow::Result<()> {
    logging::init(args.log_format, &args.log_level)?;
    let config = settings::server_config(args)?;
    let config_tls = config.tls.as_ref().map(TlsIdentity::fingerprint);
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    let server = Server::start(config).with_context(|| {
        format!(
            "starting on {} with root {}",
            args.listen,
            args.storage.root.display()
        )
    })?;
    // The first line on stdout tells scripts (and tests) the real address.
    println!("ferryd listening on {}", server.local_addr());
    // Scripts that read only the first line may have closed stdout already: never fail here.
    let _ = match &config_tls {
        Some(fingerprint) => writeln!(std::io::stdout(), "ferryd TLS certificate {fingerprint}"),
        None => writeln!(std::io::stdout(), "ferryd serving plaintext (--insecure)"),
    };
    if let Some(addr) = server.seed_compat_addr() {
        println!("ferryd seed-compat (plaintext, unauthenticated) listening on {addr}");
    }
    if let Some(addr) = server.metrics_addr() {
        let _ = writeln!(std::io::stdout(), "ferryd metrics on http://{addr}/metrics");
    }

    if let Some(signal) = signals.forever().next() {
        tracing::info!(
            signal,
            "signal received; shutting down (send it again to exit at once)"
        );
    }
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            std::process::exit(130);
        }
    });
    server.shutdown();
    Ok(())
}
