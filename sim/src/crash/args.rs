//! The command line of the crash mode (`ferry-sim crash …`) and of the server process it
//! starts (`ferry-sim crash-server …`, hidden).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::CrashConfig;
use super::process::ServeOptions;

/// `ferry-sim crash`: kill -9 the server at random moments under a mixed load, restart it,
/// check every file against what the clients sent and were told.
#[derive(Clone, Debug, clap::Args)]
pub struct CrashArgs {
    /// Kills under load.
    #[arg(long, default_value_t = 120)]
    pub kills: u32,
    /// Seed of every draw; without it a random seed is chosen and printed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Client threads.
    #[arg(long, default_value_t = 4)]
    pub clients: u32,
    /// The largest file, in MiB.
    #[arg(long, default_value_t = 6, value_name = "MIB")]
    pub max_file_mib: u64,
    /// The short shape `cargo test` runs (3 clients, files up to 1 MiB); --kills still counts.
    #[arg(long)]
    pub short: bool,
    /// Storage root to use, empty or missing (kept afterwards); default a temporary folder,
    /// removed.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// No line per kill on standard error.
    #[arg(long)]
    pub quiet: bool,
}

impl CrashArgs {
    /// The run these arguments ask for, with `seed` chosen and servers run by `server_exe`.
    pub fn config(&self, seed: u64, server_exe: PathBuf) -> CrashConfig {
        let mut config = if self.short {
            CrashConfig::short(seed, server_exe)
        } else {
            let mut config = CrashConfig::new(seed, self.kills, server_exe);
            config.load.clients = self.clients.max(1);
            let max = (self.max_file_mib << 20).max(1);
            config.load.large = (*config.load.large.start()).min(max)..=max;
            config
        };
        config.kills = self.kills;
        config.root.clone_from(&self.root);
        config.progress = !self.quiet;
        config
    }
}

/// `ferry-sim crash-server`: the server process a crash run kills (not for use by hand).
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Storage root.
    #[arg(long)]
    pub root: PathBuf,
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Bytes between durable checkpoints of an upload.
    #[arg(long)]
    pub checkpoint_interval: u64,
}

impl ServeArgs {
    /// The server these arguments describe.
    pub fn options(&self) -> ServeOptions {
        ServeOptions {
            root: self.root.clone(),
            listen: self.listen,
            checkpoint_interval: self.checkpoint_interval,
        }
    }
}
