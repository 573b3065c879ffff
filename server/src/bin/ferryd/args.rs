//! The command line of `ferryd`, declared with clap: the serving flags (which the `--config`
//! file mirrors key for key) and the tools run instead of serving.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use ferry_protocol::units::{parse_rate, parse_size};

use crate::config_file::{ConfigError, ConfigFile};
use crate::logging::LogFormat;
use crate::store_args::StoreArgs;

/// Printed after `--help`: where settings come from.
const AFTER_HELP: &str = "\
Settings come from, highest first: a flag on the command line, its environment variable
(shown with each flag), a key of the --config file, the default. The config file is TOML whose
keys are the long flags without their dashes, e.g. `max-file-size = \"500G\"` or
`insecure = true`; `ferryd check-config FILE` checks one without starting.";

/// ferryd: receive, store and serve files over the ferry protocol.
///
/// Files appear under their names in the storage root only once every byte has arrived, matched
/// its digest and is durable on disk. Interrupted uploads stay resumable.
#[derive(Debug, Parser)]
#[command(
    name = "ferryd",
    version,
    about,
    long_about,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// A tool instead of serving.
    #[command(subcommand)]
    pub tool: Option<Tool>,

    /// Read settings from this TOML file: keys named like the long flags (`listen = "0.0.0.0:7070"`).
    /// Flags and environment variables override it.
    #[arg(long, env = "FERRY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where the files live.
    #[command(flatten)]
    pub storage: StoreArgs,

    /// Bytes per part of an upload to the object store (at least 5MiB); each upload sends two
    /// parts at once and keeps up to three in memory.
    #[arg(long, env = "FERRY_S3_PART_SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub s3_part_size: u64,

    /// Address and port to listen on. Use 0.0.0.0:7070 to accept other machines.
    #[arg(long, env = "FERRY_LISTEN", default_value = ferry_server::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Most clients served at once; further clients get a "busy" refusal at once.
    #[arg(long, env = "FERRY_MAX_CONNECTIONS", default_value_t = ferry_server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Most clients served at once from one IP address, so that one host cannot take every
    /// slot; further clients from it get a "busy" refusal at once.
    #[arg(long, env = "FERRY_MAX_CONNECTIONS_PER_IP", default_value_t = NonZeroUsize::new(ferry_server::DEFAULT_MAX_CONNECTIONS_PER_IP).unwrap_or(NonZeroUsize::MIN))]
    pub max_connections_per_ip: NonZeroUsize,

    /// How connections are served: `events` (a few event-loop threads for every connection,
    /// store calls on a bounded pool) or `threads` (a thread per connection).
    #[arg(long, env = "FERRY_ENGINE", default_value_t = ferry_server::Engine::default().name().to_owned(), value_parser = ["events", "threads"])]
    pub engine: String,

    /// Largest file accepted (e.g. 500G); larger uploads are refused before any data moves.
    #[arg(long, env = "FERRY_MAX_FILE_SIZE", default_value = "1TiB", value_parser = parse_size)]
    pub max_file_size: u64,

    /// Most bytes stored in all, partial uploads included (e.g. 2T). No limit if unset.
    #[arg(long, env = "FERRY_QUOTA", value_parser = parse_size)]
    pub quota: Option<u64>,

    /// Close a client silent this long while the server waits for it (a request or upload
    /// data); also ends a download to a client that stops reading. Stalled uploads stay
    /// resumable.
    #[arg(long, env = "FERRY_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// Close a new connection that has not completed its handshake in this time.
    #[arg(long, env = "FERRY_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,

    /// Delete partial uploads untouched for this long.
    #[arg(long, env = "FERRY_STAGING_MAX_AGE", default_value = "7days", value_parser = humantime::parse_duration)]
    pub staging_max_age: Duration,

    /// On SIGINT/SIGTERM, let transfers under way run this long before ending them (uploads
    /// stay resumable). A second signal exits at once.
    #[arg(long, env = "FERRY_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Received bytes between durable checkpoints of an upload (the most a crash can make a
    /// client resend).
    #[arg(long, env = "FERRY_CHECKPOINT_INTERVAL", default_value = "64MiB", value_parser = parse_size)]
    pub checkpoint_interval: u64,

    /// Also listen here, in plaintext, for the original Python clients (8-byte size, name,
    /// `go ahead`, data). Off unless set. The original protocol has NO encryption, NO
    /// authentication and NO checksum: anyone who reaches this address can store files. A port
    /// of its own keeps the main port's policy strict.
    #[arg(long, env = "FERRY_SEED_COMPAT", value_name = "ADDR")]
    pub seed_compat: Option<SocketAddr>,

    /// Let original clients replace an existing file, as the original server did. Without it an
    /// upload to an existing name is refused (the connection is closed without `go ahead`).
    #[arg(long, env = "FERRY_SEED_COMPAT_OVERWRITE", requires = "seed_compat")]
    pub seed_compat_overwrite: bool,

    /// Silence that ends an original client's file name (the original protocol sends it with no
    /// length or terminator and then waits for `go ahead`).
    #[arg(long, env = "FERRY_SEED_COMPAT_PAUSE", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub seed_compat_pause: Duration,

    /// Serve Prometheus metrics (text format) on `GET /metrics` at this address, e.g.
    /// 127.0.0.1:9464. Off unless set; the page shows counts, not file names, but keep it off
    /// the public network.
    #[arg(long, env = "FERRY_METRICS", value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,

    /// Most bytes per second all clients together may move (e.g. 100M), uploads and downloads
    /// counted together and shared fairly among the connections. No limit if unset.
    #[arg(long, env = "FERRY_LIMIT_RATE", value_name = "BYTES_PER_SEC", value_parser = parse_rate)]
    pub limit_rate: Option<NonZeroU64>,

    /// Most bytes per second each connection may move (e.g. 10M), uploads and downloads counted
    /// together. No limit if unset.
    #[arg(long, env = "FERRY_LIMIT_RATE_PER_CONNECTION", value_name = "BYTES_PER_SEC", value_parser = parse_rate)]
    pub limit_rate_per_connection: Option<NonZeroU64>,

    /// Serve plaintext instead of TLS: anyone on the network can read and change the data.
    /// Clients must say --insecure too.
    #[arg(long, env = "FERRY_INSECURE", conflicts_with_all = ["tls_cert", "tls_key", "state_dir"])]
    pub insecure: bool,

    /// Folder keeping the self-signed certificate and key made on first start [default:
    /// ROOT/.ferry-tls].
    #[arg(long, env = "FERRY_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// A certificate chain (PEM, leaf first) to serve instead of the self-signed one.
    #[arg(
        long,
        env = "FERRY_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "FERRY_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Accept only clients presenting a token listed (hashed) in this file: lines of
    /// `sha256:<hex> [ro|rw] [folder]`, made by `ferryd hash-token`. Without it, any client
    /// that reaches the server may read and write everything.
    #[arg(long, env = "FERRY_TOKENS", value_name = "FILE")]
    pub tokens: Option<PathBuf>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive like
    /// `ferry_server=debug`.
    #[arg(long, env = "FERRY_LOG", default_value = "info")]
    pub log_level: String,

    /// Log format on stderr: `text` for people, `json` for log collectors (one object a line,
    /// the same fields as the text).
    #[arg(long, env = "FERRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Args {
    /// Parses `argv` as [`Parser::parse_from`] does (a usage error, `--help` or `--version`
    /// exits with clap's message), then, if `--config` names a file and no tool is asked for,
    /// takes its value for every flag that neither `argv` nor the environment sets. Returns the
    /// file too.
    pub fn parse_from_with_config(
        argv: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Result<(Args, Option<ConfigFile>), ConfigError> {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let args = Args::parse_from(&argv);
        // The tools take no serving settings (FERRY_CONFIG may still be set for the server).
        let (Some(path), None) = (&args.config, &args.tool) else {
            return Ok((args, None));
        };
        let file = ConfigFile::read(path, &Args::command())?;
        let matches = file.merge(Args::command(), &argv)?;
        let args = Args::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
        Ok((args, Some(file)))
    }
}

/// Tools run instead of the server.
#[derive(Debug, Subcommand)]
pub enum Tool {
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
    /// Check a config file without starting.
    ///
    /// Every key must be a flag, every value valid for it, and the files it names (tokens,
    /// certificate and key) readable. Prints a one-line summary, or the error with the file's
    /// line and exits non-zero. Environment variables count as they would at start.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Print a shell completion script for ferryd.
    ///
    /// For example `ferryd completions bash > /usr/share/bash-completion/completions/ferryd`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print ferryd's man page (roff), or write it and one page per tool into a folder.
    ///
    /// For example `ferryd man > /usr/share/man/man1/ferryd.1`.
    Man {
        /// Write ferryd.1 and a page per tool (ferryd-hash-token.1, ...) into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Re-read every stored file and check it against its recorded digest (bit rot).
    Scrub(crate::scrub::ScrubArgs),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
