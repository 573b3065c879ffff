//! `ferryd`: the ferry file-transfer server.
//!
//! Every flag can also be set by an environment variable (shown in `--help`). Sizes take
//! suffixes (`10G`, `512MiB`), durations human forms (`30s`, `7days`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ferry_server::{SeedCompatConfig, Server, ServerConfig};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// ferryd: receive, store and serve files over the ferry protocol.
///
/// Files appear under their names in the storage root only once every byte has arrived, matched
/// its digest and is durable on disk. Interrupted uploads stay resumable.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Storage root: files are stored under their names inside it (created if missing).
    #[arg(long, env = "FERRY_ROOT", default_value = "./ferry-data")]
    root: PathBuf,

    /// Address and port to listen on. Use 0.0.0.0:7070 to accept other machines.
    #[arg(long, env = "FERRY_LISTEN", default_value = ferry_server::DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Most clients served at once; further clients get a "busy" refusal at once.
    #[arg(long, env = "FERRY_MAX_CONNECTIONS", default_value_t = ferry_server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,

    /// Largest file accepted (e.g. 500G); larger uploads are refused before any data moves.
    #[arg(long, env = "FERRY_MAX_FILE_SIZE", default_value = "1TiB", value_parser = parse_size)]
    max_file_size: u64,

    /// Most bytes stored in all, partial uploads included (e.g. 2T). No limit if unset.
    #[arg(long, env = "FERRY_QUOTA", value_parser = parse_size)]
    quota: Option<u64>,

    /// Close a client silent this long while the server waits for it (a request or upload
    /// data); also ends a download to a client that stops reading. Stalled uploads stay
    /// resumable.
    #[arg(long, env = "FERRY_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,

    /// Close a new connection that has not completed its handshake in this time.
    #[arg(long, env = "FERRY_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    handshake_timeout: Duration,

    /// Delete partial uploads untouched for this long.
    #[arg(long, env = "FERRY_STAGING_MAX_AGE", default_value = "7days", value_parser = humantime::parse_duration)]
    staging_max_age: Duration,

    /// On SIGINT/SIGTERM, let transfers under way run this long before ending them (uploads
    /// stay resumable). A second signal exits at once.
    #[arg(long, env = "FERRY_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,

    /// Received bytes between durable checkpoints of an upload (the most a crash can make a
    /// client resend).
    #[arg(long, env = "FERRY_CHECKPOINT_INTERVAL", default_value = "64MiB", value_parser = parse_size)]
    checkpoint_interval: u64,

    /// Also listen here, in plaintext, for the original Python clients (8-byte size, name,
    /// `go ahead`, data). Off unless set. The original protocol has NO encryption, NO
    /// authentication and NO checksum: anyone who reaches this address can store files. A port
    /// of its own keeps the main port's policy strict.
    #[arg(long, env = "FERRY_SEED_COMPAT", value_name = "ADDR")]
    seed_compat: Option<SocketAddr>,

    /// Let original clients replace an existing file, as the original server did. Without it an
    /// upload to an existing name is refused (the connection is closed without `go ahead`).
    #[arg(long, env = "FERRY_SEED_COMPAT_OVERWRITE", requires = "seed_compat")]
    seed_compat_overwrite: bool,

    /// Silence that ends an original client's file name (the original protocol sends it with no
    /// length or terminator and then waits for `go ahead`).
    #[arg(long, env = "FERRY_SEED_COMPAT_PAUSE", default_value = "200ms", value_parser = humantime::parse_duration)]
    seed_compat_pause: Duration,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive like
    /// `ferry_server=debug`.
    #[arg(long, env = "FERRY_LOG", default_value = "info")]
    log_level: String,
}

/// Parses a byte size: a number with an optional suffix (K, M, G, T, P; KiB etc. are the same
/// powers of 1024; KB etc. powers of 1000).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 10G or 512MiB"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "p" | "pib" => 1 << 50,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        _ => return Err(format!("unknown size unit {unit:?}; use K, M, G, T or P")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log_level)
                .with_context(|| format!("bad --log-level {:?}", args.log_level))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let mut config = ServerConfig::new(&args.root);
    config.listen = args.listen;
    config.max_connections = args.max_connections;
    config.max_file_size = args.max_file_size;
    config.quota = args.quota;
    config.idle_timeout = args.idle_timeout;
    config.handshake_timeout = args.handshake_timeout;
    config.staging_max_age = args.staging_max_age;
    config.shutdown_grace = args.shutdown_grace;
    config.checkpoint_interval = args.checkpoint_interval;
    config.seed_compat = args.seed_compat.map(|listen| SeedCompatConfig {
        overwrite: args.seed_compat_overwrite,
        name_pause: args.seed_compat_pause,
        ..SeedCompatConfig::new(listen)
    });

    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    let server = Server::start(config).with_context(|| {
        format!(
            "starting on {} with root {}",
            args.listen,
            args.root.display()
        )
    })?;
    // The first line on stdout tells scripts (and tests) the real address.
    println!("ferryd listening on {}", server.local_addr());
    if let Some(addr) = server.seed_compat_addr() {
        println!("ferryd seed-compat (plaintext, unauthenticated) listening on {addr}");
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1TB"), Ok(1_000_000_000_000));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999P").is_err());
    }

    #[test]
    fn help_is_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
