//! The servers of a socket run: `nodes` in-process `ferryd`s over one store, or one server
//! running elsewhere, with the [`Balancer`] that spreads connections over them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_client::{Security, Trust};
use ferry_server::{Server, ServerHandle, TlsIdentity};

use super::balancer::Balancer;
use super::{SetupError, SocketConfig};
use crate::store::{Store, StoreSpec};

/// The run's servers, stopped by [`Cluster::shutdown`].
#[derive(Debug)]
pub(crate) struct Cluster {
    /// In-process nodes; none when the server runs elsewhere.
    nodes: Vec<ServerHandle>,
    /// Round robin over the nodes' addresses.
    pub balancer: Arc<Balancer>,
    /// What the clients must speak to the nodes.
    pub security: Security,
    /// What the servers store files in, for the report.
    pub label: String,
    /// Dropped after the nodes: it may hold the SeaweedFS they store in.
    store: Option<Store>,
}

impl Cluster {
    /// Starts the nodes `config` asks for over its store (or takes its `server`).
    pub(crate) fn start(config: &SocketConfig) -> Result<Cluster, SetupError> {
        if let Some(addr) = config.server {
            return Self::elsewhere(config, addr);
        }
        if config.nodes == 0 {
            return Err(SetupError::NoNodes);
        }
        if config.nodes > 1 && !config.store.is_object_store() {
            return Err(SetupError::NodesNeedObjectStore {
                nodes: config.nodes,
            });
        }
        let store = Store::open(&config.store).map_err(SetupError::Store)?;
        let mut security = Security::Insecure;
        let mut tls = None;
        if config.tls {
            // One identity for every node, so the clients' one pin fits whichever they reach.
            let state = store.scratch().join(ferry_server::DEFAULT_STATE_DIR);
            let identity = TlsIdentity::load_or_create(&state)
                .map_err(|e| SetupError::Server(std::io::Error::other(e)))?;
            let pin = identity.fingerprint().to_string().parse().map_err(|e| {
                SetupError::Server(std::io::Error::other(format!("fingerprint: {e}")))
            })?;
            security = Security::Tls(Trust::Pinned(pin));
            tls = Some(identity);
        }
        let mut nodes = Vec::with_capacity(config.nodes as usize);
        for node in 0..config.nodes as usize {
            let mut server_config = store.server_config(node);
            server_config.handshake_timeout = config.server_handshake_timeout;
            server_config.idle_timeout = config.server_idle_timeout;
            server_config.max_connections = config.clients as usize * 4 + 64;
            server_config.shutdown_grace = Duration::from_millis(200);
            server_config.fault_skip_digest_check = config.sabotage_skip_digest_check;
            server_config.tls = tls.clone();
            server_config.engine = config.engine;
            if let Some(part) = config.s3_part_size {
                server_config.s3_part_size = part;
            }
            match Server::start(server_config) {
                Ok(handle) => nodes.push(handle),
                Err(error) => {
                    nodes.into_iter().for_each(ServerHandle::shutdown);
                    return Err(SetupError::Server(error));
                }
            }
        }
        let addrs = nodes.iter().map(ServerHandle::local_addr).collect();
        Ok(Cluster {
            nodes,
            balancer: Arc::new(Balancer::new(addrs)),
            security,
            label: store.label().to_owned(),
            store: Some(store),
        })
    }

    /// The one server at `addr`, started elsewhere: its store and nodes are its own business.
    fn elsewhere(config: &SocketConfig, addr: SocketAddr) -> Result<Cluster, SetupError> {
        if config.nodes != 1 || !matches!(config.store, StoreSpec::TempFolder) {
            return Err(SetupError::ServerWithStore);
        }
        Ok(Cluster {
            nodes: Vec::new(),
            balancer: Arc::new(Balancer::new(vec![addr])),
            security: Security::Insecure,
            label: format!("the server's own (at {addr})"),
            store: None,
        })
    }

    /// Stops the nodes, then lets go of the store (and any SeaweedFS started for it).
    pub(crate) fn shutdown(self) {
        for node in self.nodes {
            node.shutdown();
        }
        drop(self.store);
    }
}
