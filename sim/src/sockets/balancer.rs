//! The load balancer in front of the run's nodes: round robin over their addresses, one pick
//! per new connection. Every relay asks it where to send each connection it accepts, so the
//! balancing sits inside the relays (no extra hop): a client whose connection is cut reconnects
//! through its relay and, with more than one node, usually lands on another node, where its
//! upload must resume.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Round robin over the nodes' addresses, counting the connections each node was given.
#[derive(Debug)]
pub struct Balancer {
    nodes: Vec<SocketAddr>,
    next: AtomicUsize,
    given: Vec<AtomicU64>,
}

impl Balancer {
    /// A balancer over `nodes`.
    ///
    /// # Panics
    ///
    /// When `nodes` is empty.
    pub fn new(nodes: Vec<SocketAddr>) -> Self {
        assert!(!nodes.is_empty(), "a balancer needs at least one node");
        let given = nodes.iter().map(|_| AtomicU64::new(0)).collect();
        Balancer {
            nodes,
            next: AtomicUsize::new(0),
            given,
        }
    }

    /// The node the next connection goes to: its index and address.
    pub fn pick(&self) -> (usize, SocketAddr) {
        let node = self.next.fetch_add(1, Ordering::Relaxed) % self.nodes.len();
        self.given[node].fetch_add(1, Ordering::Relaxed);
        (node, self.nodes[node])
    }

    /// Every node's address, in order.
    pub fn nodes(&self) -> &[SocketAddr] {
        &self.nodes
    }

    /// Connections given to each node so far.
    pub fn connections(&self) -> Vec<u64> {
        self.given
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_go_round_the_nodes_in_turn() {
        let nodes: Vec<SocketAddr> = (1..=3)
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .collect();
        let balancer = Balancer::new(nodes.clone());
        let picked: Vec<usize> = (0..7).map(|_| balancer.pick().0).collect();
        assert_eq!(picked, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(balancer.connections(), [3, 2, 2]);
        assert_eq!(balancer.pick().1, nodes[1]);
    }
}
