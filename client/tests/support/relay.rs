//! A TCP relay that forwards bytes between a client and a server and cuts its first
//! connection after a set number of bytes in one direction, to test resumption.

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
    /// Whether the cut happened.
    pub cut: Arc<AtomicBool>,
}

impl Relay {
    /// Forwards to `target`; the first connection is cut after `cut_after` bytes going
    /// `direction`, later ones are forwarded whole.
    pub fn start(target: SocketAddr, direction: Direction, cut_after: usize) -> Relay {
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
                let limit = if first { cut_after } else { usize::MAX };
                let (up_limit, down_limit) = match direction {
                    Direction::Upstream => (limit, usize::MAX),
                    Direction::Downstream => (usize::MAX, limit),
                };
                let pair = [client.try_clone().unwrap(), server.try_clone().unwrap()];
                let pair2 = [client.try_clone().unwrap(), server.try_clone().unwrap()];
                let cut_up = was_cut.clone();
                let cut_down = was_cut.clone();
                std::thread::spawn(move || pump(client, server, up_limit, &pair, &cut_up));
                std::thread::spawn(move || {
                    let [c, s] = pair2;
                    let both = [c.try_clone().unwrap(), s.try_clone().unwrap()];
                    pump(s, c, down_limit, &both, &cut_down)
                });
            }
        });
        Relay {
            addr,
            connections,
            cut,
        }
    }
}

/// Copies `from` to `to` until EOF, or until `limit` bytes passed: then closes both sockets.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: usize,
    both: &[TcpStream; 2],
    cut: &AtomicBool,
) {
    let mut passed = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let allowed = n.min(limit - passed);
        if to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        passed += allowed;
        if passed == limit {
            cut.store(true, Ordering::SeqCst);
            break;
        }
    }
    for stream in both {
        let _ = stream.shutdown(Shutdown::Both);
    }
}
