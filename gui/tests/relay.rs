//! A loopback relay in front of a server that cuts the first connection to carry a number of
//! bytes from the client, once, and passes everything else through untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Relays to `server`; the first connection whose client sends `cut_after` bytes is cut there.
/// Returns the relay's address. Its threads end with their connections (the accepting one
/// with the test process).
pub fn cutting_relay(server: SocketAddr, cut_after: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(upstream) = TcpStream::connect(server) else {
                return;
            };
            let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let cut = Arc::clone(&cut);
            std::thread::spawn(move || pump(client, upstream, Some((cut_after, cut))));
            std::thread::spawn(move || pump(u2, c2, None));
        }
    });
    addr
}

/// Copies `from` to `to`; with a limit not yet used by another connection, cuts both sockets
/// once that many bytes passed.
fn pump(mut from: TcpStream, mut to: TcpStream, limit: Option<(usize, Arc<AtomicBool>)>) {
    let mut buf = [0u8; 16 * 1024];
    let mut passed = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let allowed = match &limit {
            Some((limit, cut)) if !cut.load(Ordering::SeqCst) => {
                n.min(limit.saturating_sub(passed))
            }
            _ => n,
        };
        if to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        passed += allowed;
        if allowed < n {
            if let Some((_, cut)) = &limit {
                cut.store(true, Ordering::SeqCst);
            }
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
