//! A TCP relay that forwards bytes between a client and a server, and cuts (or stalls) its
//! first connection after a set number of bytes in one direction, to test resumption.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Which bytes count towards the cut.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// Client to server (an upload).
    Upstream,
    /// Server to client (a download).
    Downstream,
}

/// A running relay.
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Whether the cut (or stall) happened.
    pub cut: Arc<AtomicBool>,
}

/// What happens to the first connection at its limit.
#[derive(Clone, Copy)]
enum Fault {
    /// Both sockets are shut down.
    Cut,
    /// Nothing is forwarded any more, in either direction, and nothing is closed.
    Stall,
}

/// One relayed connection's shared state.
struct Pair {
    sockets: [TcpStream; 2],
    stalled: AtomicBool,
    cut: Arc<AtomicBool>,
}

impl Relay {
    /// Forwards to `target`; the first connection is cut after `limit` bytes going
    /// `direction`, later ones are forwarded whole.
    pub fn start(target: SocketAddr, direction: Direction, limit: usize) -> Relay {
        Relay::spawn(target, direction, limit, Fault::Cut)
    }

    /// Like [`Relay::start`], but the first connection stalls instead of being cut.
    pub fn stalling(target: SocketAddr, direction: Direction, limit: usize) -> Relay {
        Relay::spawn(target, direction, limit, Fault::Stall)
    }

    fn spawn(target: SocketAddr, direction: Direction, limit: usize, fault: Fault) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (count, was_cut) = (connections.clone(), cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let first = count.fetch_add(1, Ordering::SeqCst) == 0;
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let limit = if first { limit } else { usize::MAX };
                let (up, down) = match direction {
                    Direction::Upstream => (limit, usize::MAX),
                    Direction::Downstream => (usize::MAX, limit),
                };
                let pair = Arc::new(Pair {
                    sockets: [client.try_clone().unwrap(), server.try_clone().unwrap()],
                    stalled: AtomicBool::new(false),
                    cut: was_cut.clone(),
                });
                let other = pair.clone();
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client, server, up, fault, &pair));
                std::thread::spawn(move || pump(s2, c2, down, fault, &other));
            }
        });
        Relay {
            addr,
            connections,
            cut,
        }
    }
}

/// Copies `from` to `to` until EOF or until `limit` bytes passed, then applies `fault`.
fn pump(mut from: TcpStream, mut to: TcpStream, limit: usize, fault: Fault, pair: &Pair) {
    let mut passed = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if pair.stalled.load(Ordering::SeqCst) {
            continue; // swallow, forward nothing, close nothing
        }
        let allowed = n.min(limit - passed);
        if to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        passed += allowed;
        if passed == limit {
            pair.cut.store(true, Ordering::SeqCst);
            match fault {
                Fault::Cut => break,
                Fault::Stall => pair.stalled.store(true, Ordering::SeqCst),
            }
        }
    }
    for stream in &pair.sockets {
        let _ = stream.shutdown(Shutdown::Both);
    }
}
