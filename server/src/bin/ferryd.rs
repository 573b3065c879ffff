//! `ferryd`: the ferry file-transfer server.
//!
//! Every flag can also be set by an environment variable (shown in `--help`). Sizes take
//! suffixes (`10G`, `512MiB`), durations human forms (`30s`, `7days`).
//!
//! TLS is on unless `--insecure` is given: the first start makes a self-signed certificate in
//! the state folder and every start prints its fingerprint for clients to pin.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_server::{
    Rights, S3Config, SeedCompatConfig, Server, ServerConfig, TlsIdentity, Tokens,
    check_token_strength, generate_token, token_line,
};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[path = "ferryd/scrub.rs"]
mod scrub;

/// ferryd: receive, store and serve files over the ferry protocol.
///
/// Files appear under their names in the storage root only once every byte has arrived, matched
/// its digest and is durable on disk. Interrupted uploads stay resumable.
#[derive(Debug, Parser)]
#[command(version, about, long_about, args_conflicts_with_subcommands = true)]
struct Args {
    /// A tool instead of serving.
    #[command(subcommand)]
    tool: Option<Tool>,

    /// Storage root: files are stored under their names inside it (created if missing).
    #[arg(long, env = "FERRY_ROOT", default_value = "./ferry-data")]
    root: PathBuf,

    /// Keep files in an S3-compatible bucket instead of --root: `s3://BUCKET` or
    /// `s3://BUCKET/PREFIX`. Every ferryd given the same bucket and prefix serves one namespace
    /// (run several behind a TCP load balancer); --root then only keeps this node's TLS
    /// identity.
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

    /// The object store's secret key (prefer the environment variable: arguments are visible
    /// to other users of the machine).
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        requires = "store"
    )]
    s3_secret_key: Option<String>,

    /// Bytes per part of an upload to the object store (at least 5MiB); each upload sends two
    /// parts at once and keeps up to three in memory.
    #[arg(long, env = "FERRY_S3_PART_SIZE", default_value = "8MiB", value_parser = parse_size)]
    s3_part_size: u64,

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

    /// Serve plaintext instead of TLS: anyone on the network can read and change the data.
    /// Clients must say --insecure too.
    #[arg(long, env = "FERRY_INSECURE", conflicts_with_all = ["tls_cert", "tls_key", "state_dir"])]
    insecure: bool,

    /// Folder keeping the self-signed certificate and key made on first start [default:
    /// ROOT/.ferry-tls].
    #[arg(long, env = "FERRY_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// A certificate chain (PEM, leaf first) to serve instead of the self-signed one.
    #[arg(
        long,
        env = "FERRY_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "FERRY_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,

    /// Accept only clients presenting a token listed (hashed) in this file: lines of
    /// `sha256:<hex> [ro|rw] [folder]`, made by `ferryd hash-token`. Without it, any client
    /// that reaches the server may read and write everything.
    #[arg(long, env = "FERRY_TOKENS", value_name = "FILE")]
    tokens: Option<PathBuf>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive like
    /// `ferry_server=debug`.
    #[arg(long, env = "FERRY_LOG", default_value = "info")]
    log_level: String,
}

/// Tools run instead of the server.
#[derive(Debug, Subcommand)]
enum Tool {
    /// Read a token from standard input (or make one with --generate) and print its line for
    /// the --tokens file. A token needs at least 128 bits of entropy: 32 random hex digits or 22
    /// random base64url characters; weaker ones are refused.
    HashToken {
        /// The token may only download, list and query.
        #[arg(long)]
        read_only: bool,
        /// Confine the token to this folder: its names are taken inside it.
        #[arg(long, value_name = "DIR")]
        folder: Option<String>,
        /// Make a new random token (256 bits, 64 hex digits) instead of reading one. It is
        /// shown once, on standard error, so that `>> tokens` appends only its hashed line.
        #[arg(long)]
        generate: bool,
    },
    /// Re-read every stored file and check it against its recorded digest (bit rot).
    Scrub(scrub::ScrubArgs),
}

/// Prints the tokens-file line for the token on standard input, or for a new one.
fn hash_token(read_only: bool, folder: Option<&str>, generate: bool) -> anyhow::Result<()> {
    let token = if generate {
        generate_token().context("making a token")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the token from standard input")?;
        let token = line.trim_end_matches(['\r', '\n']).to_owned();
        anyhow::ensure!(
            !token.is_empty(),
            "no token on standard input; `ferryd hash-token --generate` makes one"
        );
        check_token_strength(&token)?;
        token
    };
    let rights = if read_only {
        Rights::ReadOnly
    } else {
        Rights::ReadWrite
    };
    let line = token_line(&token, rights, folder)?;
    if generate {
        eprintln!("# the new token, shown only now; give it to its client (ferry --token):");
        eprintln!("{token}");
    }
    println!("{line}");
    Ok(())
}

/// The TLS identity the flags ask for, or `None` for `--insecure`.
fn tls_identity(args: &Args) -> anyhow::Result<Option<TlsIdentity>> {
    if args.insecure {
        tracing::warn!(
            "--insecure: serving PLAINTEXT; anyone on the network can read and change transfers and tokens"
        );
        return Ok(None);
    }
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => TlsIdentity::from_pem_files(cert, key)?,
        _ => {
            let dir = args
                .state_dir
                .clone()
                .unwrap_or_else(|| args.root.join(ferry_server::DEFAULT_STATE_DIR));
            let identity = TlsIdentity::load_or_create(&dir)?;
            if identity.is_new() {
                tracing::info!(dir = %dir.display(), "made a self-signed TLS certificate");
            }
            identity
        }
    };
    Ok(Some(identity))
}

/// Parses a byte size: a number with an optional suffix (K, M, G, T, P; KiB etc. are the same
/// powers of 1024; KB etc. powers of 1000).
/// The object store named by `--store` and its flags, if any.
fn object_store(args: &Args) -> anyhow::Result<Option<S3Config>> {
    let Some(location) = &args.store else {
        return Ok(None);
    };
    let endpoint = args
        .s3_endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", args.s3_region));
    let (Some(access_key), Some(secret_key)) = (&args.s3_access_key, &args.s3_secret_key) else {
        anyhow::bail!(
            "--store needs the object store's keys: set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (or --s3-access-key and --s3-secret-key)"
        );
    };
    Ok(Some(S3Config::from_url(
        location,
        endpoint,
        &args.s3_region,
        access_key,
        secret_key,
    )?))
}

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
    if let Some(Tool::HashToken {
        read_only,
        folder,
        generate,
    }) = &args.tool
    {
        return hash_token(*read_only, folder.as_deref(), *generate);
    }
    if let Some(Tool::Scrub(scrub)) = &args.tool {
        std::process::exit(scrub::run(scrub));
    }
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
    config.object_store = object_store(&args)?;
    config.s3_part_size = args.s3_part_size;
    config.tls = tls_identity(&args)?;
    config.tokens = match &args.tokens {
        Some(path) => Some(Tokens::from_file(path)?),
        None => None,
    };
    config.seed_compat = args.seed_compat.map(|listen| SeedCompatConfig {
        overwrite: args.seed_compat_overwrite,
        name_pause: args.seed_compat_pause,
        ..SeedCompatConfig::new(listen)
    });
    if config.tokens.is_some() && config.seed_compat.is_some() {
        tracing::warn!(
            "--tokens does not protect the --seed-compat listener: the original protocol has no \
             authentication, so anyone who reaches it can upload"
        );
    }

    let config_tls = config.tls.as_ref().map(TlsIdentity::fingerprint);
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
    // Scripts that read only the first line may have closed stdout already: never fail here.
    let _ = match &config_tls {
        Some(fingerprint) => writeln!(std::io::stdout(), "ferryd TLS certificate {fingerprint}"),
        None => writeln!(std::io::stdout(), "ferryd serving plaintext (--insecure)"),
    };
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
