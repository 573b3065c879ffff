//! A loopback relay in front of a server that breaks the first connection to carry a number of
//! bytes from the client, once: it cuts it, or stalls it (holds it open, moving nothing more).
//! Everything else passes through untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What happens to the connection that reaches the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Both sockets are shut down.
    Cut,
    /// Nothing more moves, but the sockets stay open as long as the relay lives.
    Stall,
}

/// A running relay.
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Stalled sockets, held open until the relay is dropped.
    _held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// Relays to `server`; the first connection whose client sends `limit` bytes suffers
    /// `fault` there. Its threads end with their connections (the accepting one with the test
    /// process).
    pub fn start(server: SocketAddr, limit: usize, fault: Fault) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let used = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&held);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(upstream) = TcpStream::connect(server) else {
                    return;
                };
                let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let breaker = Breaker {
                    limit,
                    fault,
                    used: Arc::clone(&used),
                    held: Arc::clone(&shared),
                };
                std::thread::spawn(move || pump(client, upstream, Some(breaker)));
                std::thread::spawn(move || pump(u2, c2, None));
            }
        });
        Relay { addr, _held: held }
    }
}

/// The fault waiting for the first connection to reach the limit.
struct Breaker {
    limit: usize,
    fault: Fault,
    used: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

/// Copies `from` to `to`, breaking the connection where `breaker` says, if no other
/// connection used it first.
fn pump(mut from: TcpStream, mut to: TcpStream, breaker: Option<Breaker>) {
    let mut buf = [0u8; 16 * 1024];
    let mut passed = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let allowed = match &breaker {
            Some(b) if !b.used.load(Ordering::SeqCst) => n.min(b.limit.saturating_sub(passed)),
            _ => n,
        };
        if to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        passed += allowed;
        if allowed < n
            && let Some(b) = &breaker
        {
            b.used.store(true, Ordering::SeqCst);
            if b.fault == Fault::Stall {
                b.held.lock().unwrap().extend([from, to]);
                return;
            }
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
