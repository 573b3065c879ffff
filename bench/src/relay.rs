//! A TCP relay that delays every byte by half a round trip in each direction, so that a
//! benchmark sees what a real network's latency costs (there is no `tc netem` here).
//!
//! Each direction is a reader and a writer thread: the reader stamps each piece with the time
//! it arrived and queues it; the writer sends it once half the round trip has passed. Pieces
//! keep flowing while earlier ones wait, so the link is delayed, not slowed (bandwidth stays
//! what loopback gives; the queue is bounded, which bounds the relay's memory).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

/// Pieces queued per direction at most (each up to [`PIECE`] bytes).
const QUEUE: usize = 4096;

/// Largest piece read at once.
const PIECE: usize = 64 * 1024;

/// A running relay: connect to [`Relay::addr`] to reach the target with the delay added.
pub struct Relay {
    addr: SocketAddr,
}

impl Relay {
    /// Starts a relay to `target` adding `rtt` in all (half each way). It runs until the
    /// process ends; each connection's threads end with the connection.
    pub fn start(target: SocketAddr, rtt: Duration) -> std::io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let one_way = rtt / 2;
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    pipe(c, s, one_way);
                    pipe(server, client, one_way);
                }
            }
        });
        Ok(Relay { addr })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Moves bytes from `from` to `to`, each `delay` after it arrived.
fn pipe(from: TcpStream, to: TcpStream, delay: Duration) {
    let (queue, pieces) = sync_channel::<(Instant, Vec<u8>)>(QUEUE);
    thread::spawn(move || read_side(from, queue));
    thread::spawn(move || write_side(to, pieces, delay));
}

fn read_side(mut from: TcpStream, queue: SyncSender<(Instant, Vec<u8>)>) {
    let mut buf = vec![0u8; PIECE];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if queue.send((Instant::now(), buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    // Dropping the queue tells the writer the stream ended.
}

fn write_side(mut to: TcpStream, pieces: Receiver<(Instant, Vec<u8>)>, delay: Duration) {
    for (arrived, piece) in pieces {
        let due = arrived + delay;
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        if to.write_all(&piece).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_through_the_relay_takes_the_delay_and_keeps_every_byte() {
        let echo = TcpListener::bind("127.0.0.1:0").expect("bind");
        let target = echo.local_addr().expect("addr");
        thread::spawn(move || {
            if let Ok((mut stream, _)) = echo.accept() {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        });
        let rtt = Duration::from_millis(40);
        let relay = Relay::start(target, rtt).expect("relay");
        let mut stream = TcpStream::connect(relay.addr()).expect("connect");
        let start = Instant::now();
        stream.write_all(b"ferry").expect("write");
        let mut back = [0u8; 5];
        stream.read_exact(&mut back).expect("read");
        let took = start.elapsed();
        assert_eq!(&back, b"ferry");
        assert!(
            took >= rtt,
            "the round trip took {took:?}, less than {rtt:?}"
        );
        assert!(
            took < rtt * 3,
            "the round trip took {took:?}, far more than {rtt:?}"
        );
    }
}
