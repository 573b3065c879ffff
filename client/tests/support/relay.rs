//! A TCP relay that forwards bytes between a client and a server, and cuts, stalls or
//! corrupts a connection at a set byte in one direction, to test resumption and integrity. It
//! decodes what it forwards into a [`WireLog`] (plaintext connections only).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::wire_log::{StreamReader, WireLog};

/// Which bytes count towards the fault.
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
    /// Whether the fault (cut, stall or corruption) happened.
    pub cut: Arc<AtomicBool>,
    /// The requests and go-aheads that crossed it.
    pub log: WireLog,
}

/// What happens to a connection at its limit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Both sockets are shut down.
    Cut,
    /// Nothing is forwarded any more, in either direction, and nothing is closed.
    Stall,
    /// The byte at the limit is flipped; everything is forwarded.
    Corrupt,
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
        Relay::spawn(target, direction, limit, Fault::Cut, 1)
    }

    /// Like [`Relay::start`], but the first connection stalls instead of being cut.
    pub fn stalling(target: SocketAddr, direction: Direction, limit: usize) -> Relay {
        Relay::spawn(target, direction, limit, Fault::Stall, 1)
    }

    /// Like [`Relay::stalling`], but every connection stalls at its limit: a server that
    /// falls silent every time.
    pub fn stalling_every(target: SocketAddr, direction: Direction, limit: usize) -> Relay {
        Relay::spawn(target, direction, limit, Fault::Stall, usize::MAX)
    }

    /// Like [`Relay::start`], but each of the first `victims` connections is cut at its
    /// limit.
    pub fn cutting_first(
        target: SocketAddr,
        direction: Direction,
        limit: usize,
        victims: usize,
    ) -> Relay {
        Relay::spawn(target, direction, limit, Fault::Cut, victims)
    }

    /// Forwards everything, but flips one bit of the byte at position `at` (counted from 0)
    /// going `direction` on the first connection.
    pub fn corrupting(target: SocketAddr, direction: Direction, at: usize) -> Relay {
        Relay::spawn(target, direction, at, Fault::Corrupt, 1)
    }

    /// Forwards everything untouched, only logging it.
    pub fn passing(target: SocketAddr) -> Relay {
        Relay::spawn(target, Direction::Upstream, usize::MAX, Fault::Cut, 1)
    }

    fn spawn(
        target: SocketAddr,
        direction: Direction,
        limit: usize,
        fault: Fault,
        victims: usize,
    ) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let log = WireLog::default();
        let (count, was_cut, logged) = (connections.clone(), cut.clone(), log.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let number = count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let limit = if number < victims { limit } else { usize::MAX };
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
                let (reader_up, reader_down) = (
                    StreamReader::new(logged.clone()),
                    StreamReader::new(logged.clone()),
                );
                std::thread::spawn(move || pump(client, server, up, fault, reader_up, &pair));
                std::thread::spawn(move || pump(s2, c2, down, fault, reader_down, &other));
            }
        });
        Relay {
            addr,
            connections,
            cut,
            log,
        }
    }
}

/// Copies `from` to `to` until EOF or until `limit` bytes passed, then applies `fault`;
/// `reader` decodes what is forwarded.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: usize,
    fault: Fault,
    mut reader: StreamReader,
    pair: &Pair,
) {
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
        if fault == Fault::Corrupt {
            if let Some(at) = limit.checked_sub(passed).filter(|at| *at < n) {
                buf[at] ^= 0x01;
                pair.cut.store(true, Ordering::SeqCst);
            }
            reader.feed(&buf[..n]);
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            passed += n;
            continue;
        }
        let allowed = n.min(limit - passed);
        reader.feed(&buf[..allowed]);
        if to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        passed += allowed;
        if passed == limit {
            pair.cut.store(true, Ordering::SeqCst);
            match fault {
                Fault::Cut | Fault::Corrupt => break,
                Fault::Stall => pair.stalled.store(true, Ordering::SeqCst),
            }
        }
    }
    for stream in &pair.sockets {
        let _ = stream.shutdown(Shutdown::Both);
    }
}
