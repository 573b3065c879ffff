//! How the compatibility listener for the original Python clients is set up.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Default pause that ends an original client's file name: the original protocol has no length
/// or terminator for it, so the name is what arrived before the client went quiet waiting for
/// `go ahead`. The original clients send size and name in one write, so on any real network
/// the whole header arrives well within this.
pub const DEFAULT_SEED_NAME_PAUSE: Duration = Duration::from_millis(200);

/// The seed-compatibility listener: a separate plaintext port where the original Python
/// clients (8-byte size, name, `go ahead`, data, close) upload unchanged. Off unless set in
/// [`ServerConfig::seed_compat`](crate::ServerConfig::seed_compat).
///
/// The original protocol has no encryption, no authentication and no checksum: anyone who can
/// reach this address can store files, and bytes corrupted on the way are stored as they
/// arrived (their digest is computed on arrival, so later downloads are checked from then on).
#[derive(Clone, Debug)]
pub struct SeedCompatConfig {
    /// Address of the compatibility listener (port 0 picks a free port; ask
    /// [`ServerHandle::seed_compat_addr`](crate::ServerHandle::seed_compat_addr)).
    pub listen: SocketAddr,
    /// Replace an existing file of the same name, as the original server did. Off by default:
    /// an upload to an existing name is then refused (closed without `go ahead`).
    pub overwrite: bool,
    /// Silence after the size and name that ends the name (see [`DEFAULT_SEED_NAME_PAUSE`]).
    pub name_pause: Duration,
}

impl SeedCompatConfig {
    /// A compatibility listener on `listen`, refusing to overwrite, with the default pause.
    pub fn new(listen: SocketAddr) -> Self {
        SeedCompatConfig {
            listen,
            overwrite: false,
            name_pause: DEFAULT_SEED_NAME_PAUSE,
        }
    }
}

impl Default for SeedCompatConfig {
    /// On `127.0.0.1:0`, for tests.
    fn default() -> Self {
        SeedCompatConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }
}
