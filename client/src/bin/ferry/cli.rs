//! The command line, declared with clap.

use std::num::NonZeroU64;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::select::Selection;
use crate::sync::SyncArgs;

/// Printed after `--help`: what scripts can rely on.
const AFTER_HELP: &str = "\
Exit codes:
  0  success (put: also a name that already holds the same bytes, reported as already stored)
  1  other error (local file, internal)
  2  usage error (bad arguments or file name)
  3  connection error (server unreachable, or the connection was lost and retries ran out)
  4  refused by the server (exists with other bytes and no --overwrite, no such file,
     not authorised, ...)
  5  integrity failure (data did not match its BLAKE3 digest; nothing was kept, except
     with get -o -: the bytes already went to standard output, so discard them)

When several files fail, the exit code is that of the first failure.
With --json, a document on stdout at the end, and one JSON line per finished file on stderr.
Set FERRY_LOG=info (or debug) to log connections, retries and resumes on stderr.
Servers trusted on first use are recorded in known_servers in FERRY_CONFIG_DIR
(default: $XDG_CONFIG_HOME/ferry or ~/.config/ferry); a changed certificate is refused.
Interrupted transfers resume by themselves; run the same command again to continue one
that ran out of retries.";

/// Move files to and from a ferry server: every byte verified, interrupted transfers resumed.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Server address.
    #[arg(
        long,
        env = "FERRY_SERVER",
        default_value = "127.0.0.1:7070",
        global = true,
        value_name = "HOST:PORT"
    )]
    pub server: String,
    /// Access token for the server.
    #[arg(long, env = "FERRY_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Accept only the server certificate with this fingerprint (ferryd prints it at start).
    /// Without it, a certificate from a well-known authority is accepted by name, and any
    /// other is trusted on first use and must stay the same (see FERRY_CONFIG_DIR).
    #[arg(
        long,
        env = "FERRY_FINGERPRINT",
        global = true,
        value_name = "SHA256:HEX",
        conflicts_with = "insecure"
    )]
    pub fingerprint: Option<ferry_client::Fingerprint>,
    /// Talk plaintext, to a server run with --insecure: anyone on the network can read and
    /// change the data and the token.
    #[arg(long, env = "FERRY_INSECURE", global = true)]
    pub insecure: bool,
    /// Print nothing but errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Print results as JSON on stdout, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds without progress after which a connection counts as lost and is retried.
    #[arg(long, default_value_t = 30, global = true, value_name = "SECS")]
    pub stall_timeout: u64,
    /// How many times a lost or stalled transfer is retried on a new connection.
    #[arg(long, default_value_t = 8, global = true)]
    pub retries: u32,
    /// Most bytes per second each transfer moves (e.g. 10M, 512K), sent and received counted
    /// together; with -j each connection gets this rate. No limit if unset.
    #[arg(
        long,
        env = "FERRY_LIMIT_RATE",
        global = true,
        value_name = "BYTES_PER_SEC",
        value_parser = ferry_protocol::units::parse_rate
    )]
    pub limit_rate: Option<NonZeroU64>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload files (or folders, with -r), or standard input with `put - --as NAME`.
    #[command(after_help = crate::select::FILTER_HELP)]
    Put {
        /// Local files or folders; `-` alone reads standard input until it ends (with --as
        /// NAME; its size need not be known, but it cannot resume: a connection lost midway
        /// ends the upload and nothing is stored). A file named `-` is `./-`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Name on the server. Ending in `/`, the server folder to put the files in, each
        /// under its own name (`put a.txt b.txt photos --as docs/ -r` stores docs/a.txt,
        /// docs/b.txt and docs/photos/…); with one folder PATH, the folder's own name on the
        /// server (`put -r photos --as pics/` stores pics/…). Without `/`, one PATH only.
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// Upload folders with everything in them, keeping relative paths as names.
        #[arg(short, long)]
        recursive: bool,
        /// Replace files that already exist on the server. Without it, an existing name is
        /// refused, unless it holds the same bytes (same size and BLAKE3 digest): then the file
        /// counts as done ("already stored", exit code 0).
        #[arg(long)]
        overwrite: bool,
        /// Transfers to run in parallel, each on its own connection.
        #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Start over instead of resuming a partial upload left by an earlier run.
        #[arg(long)]
        no_resume: bool,
        /// Which files of the folders, and whether to only print the plan.
        #[command(flatten)]
        select: Selection,
    },
    /// Download files (or everything under a folder name, with -r).
    #[command(after_help = crate::select::FILTER_HELP)]
    Get {
        /// Names on the server.
        #[arg(required = true)]
        names: Vec<String>,
        /// Folder to write into, or `-` for standard output (one NAME). To standard output
        /// the bytes stream out as they arrive and are checked against the server's BLAKE3
        /// digest at the end; written bytes cannot be taken back, so on a mismatch ferry says
        /// so on stderr and exits with code 5: discard what was read.
        #[arg(short, long, default_value = ".", value_name = "DIR")]
        output: PathBuf,
        /// Treat each NAME as a folder and download everything under it, keeping its path.
        #[arg(short, long)]
        recursive: bool,
        /// Transfers to run in parallel, each on its own connection.
        #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Start over instead of resuming a partial download left by an earlier run.
        #[arg(long)]
        no_resume: bool,
        /// Which files of the folders, and whether to only print the plan.
        #[command(flatten)]
        select: Selection,
    },
    /// List files on the server.
    Ls {
        /// Only names starting with this.
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Remove files from the server.
    Rm {
        /// Names on the server.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Give a file on the server a new name, or a folder with everything under it.
    ///
    /// The move is atomic on a folder store: whoever downloads NEW meanwhile gets the old file
    /// or the moved one, whole, and a download of OLD already under way finishes with the
    /// bytes it started with. Nothing is sent again, and the digest the server recorded moves
    /// with the file. An existing NEW is refused unless --overwrite, which replaces a file
    /// only: a folder is never replaced, and a folder moves only to a name that is free.
    /// Missing folders of NEW are made. On an S3 store the file is copied, then its old name
    /// removed (for a moment it is under both names), and folders do not move. Needs ferryd
    /// with protocol version 3.
    Mv {
        /// Name on the server now.
        #[arg(value_name = "OLD")]
        from: String,
        /// Name it gets.
        #[arg(value_name = "NEW")]
        to: String,
        /// Replace a file stored under NEW (never a folder).
        #[arg(long)]
        overwrite: bool,
    },
    /// Show a stored file's size, modification time (UTC) and BLAKE3 digest, without
    /// downloading it.
    Stat {
        /// Name on the server.
        name: String,
    },
    /// Make a server folder match a local folder (`sync DIR :FOLDER`), or a local folder
    /// match a server folder (`sync :FOLDER DIR`).
    ///
    /// Like `rsync -r --checksum SRC/ DST/` or `rclone sync`: a file the destination already
    /// holds with the same size and BLAKE3 digest is skipped without sending a byte; every
    /// other file is sent whole, replacing what is there. Local digests are cached by path,
    /// size and modification time in FERRY_CACHE_DIR (default $XDG_CACHE_HOME/ferry or
    /// ~/.cache/ferry, sync-digests/), so a second sync of an unchanged tree reads no file's
    /// content; like rsync's quick check, a file rewritten with the same size and its old
    /// modification time put back is taken as unchanged. Symbolic links are skipped. Ends with
    /// a summary: sent, skipped, deleted, failed, bytes moved.
    #[command(after_help = crate::select::FILTER_HELP)]
    Sync(SyncArgs),
    /// Shell completions and man pages.
    #[command(flatten)]
    Generate(Generate),
}

/// Subcommands that print what packagers install; they need no server.
#[derive(Debug, Subcommand)]
pub enum Generate {
    /// Print a shell completion script for ferry.
    ///
    /// For example `ferry completions bash > /usr/share/bash-completion/completions/ferry`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print ferry's man page (roff), or write it and one page per subcommand into a folder.
    ///
    /// For example `ferry man > /usr/share/man/man1/ferry.1`.
    Man {
        /// Write ferry.1 and a page per subcommand (ferry-put.1, ...) into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}
