//! The compatibility listener's accept thread: a seat under the server's connection limit and
//! a thread per client, or a plain close when the server is full.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::server::{Shared, listen, wake_address};

use super::config::SeedCompatConfig;
use super::connection;

/// Stack of a compatibility connection thread (its buffers are on the heap).
const CONNECTION_STACK: usize = 256 * 1024;

/// A bound compatibility address, not yet accepting.
#[derive(Debug)]
pub(crate) struct Bound {
    listener: TcpListener,
    config: SeedCompatConfig,
}

/// Binds the compatibility address. Done before the server starts any thread, so a taken port
/// fails the start cleanly.
pub(crate) fn bind(config: &SeedCompatConfig) -> io::Result<Bound> {
    Ok(Bound {
        listener: listen(config.listen)?,
        config: config.clone(),
    })
}

/// A running compatibility listener.
#[derive(Debug)]
pub(crate) struct SeedListener {
    local_addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl SeedListener {
    /// Starts accepting original clients on `bound`.
    pub(crate) fn start(shared: &Arc<Shared>, bound: Bound) -> io::Result<SeedListener> {
        let Bound { listener, config } = bound;
        let local_addr = listener.local_addr()?;
        tracing::warn!(
            listen = %local_addr,
            "seed-compat listener on: the original protocol has no encryption, no \
             authentication and no checksum; anyone who reaches this address can store files"
        );
        let shared = Arc::clone(shared);
        let accept = thread::Builder::new()
            .name("ferry-seed-accept".into())
            .spawn(move || accept_loop(&shared, &listener, &config))?;
        Ok(SeedListener {
            local_addr,
            accept: Some(accept),
        })
    }

    /// The address original clients connect to (with the real port when bound to port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting; call after the server's shutdown has begun. Connections under way end
    /// with the server's grace period like any other.
    pub(crate) fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        match TcpStream::connect_timeout(&wake_address(self.local_addr), Duration::from_secs(1)) {
            Ok(_) => {
                let _ = accept.join();
            }
            Err(error) => tracing::warn!("could not wake the seed-compat accept thread: {error}"),
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, config: &SeedCompatConfig) {
    for stream in listener.incoming() {
        if shared.shutdown.is_stopping() {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!("seed-compat accept failed: {error}");
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        let Ok(seat) = shared.try_seat(peer.ip()) else {
            // The original protocol cannot say "busy": the close is the refusal.
            tracing::warn!(%peer, "seed-compat: refused a connection: at a connection limit");
            continue;
        };
        let config = config.clone();
        let spawned = thread::Builder::new()
            .name("ferry-seed-conn".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                let seat = seat;
                connection::serve(seat.shared(), &config, stream, peer);
            });
        if let Err(error) = spawned {
            tracing::error!(%peer, "could not start a seed-compat connection thread: {error}");
        }
    }
    tracing::debug!("seed-compat accept loop ended");
}
