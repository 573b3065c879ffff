//! A link's buffers: kept while bytes flow, given back once they have not for
//! [`KEEP_BUFFERS`].

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{KEEP_BUFFERS, Link, Next, Outcome, Step, read_buffer};
use crate::config::{Engine, ServerConfig};
use crate::server::{Server, ServerHandle};
use crate::store::memory::{ManualClock, MemoryLimits, MemoryStore};

/// A plaintext server (only its shared state is used) and a link to a connected client.
fn linked() -> (ServerHandle, Link, std::net::TcpStream) {
    let store = MemoryStore::new(MemoryLimits::default(), ManualClock::default().clock());
    let mut config = ServerConfig::new("unused-by-the-memory-store");
    config.engine = Engine::Threads;
    let server = Server::start_with_store(config, Arc::new(store)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (socket, peer) = listener.accept().unwrap();
    socket.set_nonblocking(true).unwrap();
    let socket = Arc::new(mio::net::TcpStream::from_std(socket));
    let link = Link::new(server.shared(), socket, peer);
    (server, link, client)
}

/// Gives `link` the outcome of a step that took `consumed` bytes and said nothing.
fn answer(link: &mut Link, step: Step, consumed: usize) {
    let mut input = step.input;
    input.consume(consumed);
    link.handle_outcome(Outcome {
        input,
        consumed,
        out: step.out,
        more: false,
        closed: false,
        deadline: None,
    });
}

/// Serves `link` until it asks for a step, which takes every byte offered; returns how many.
fn step_taking_all(server: &ServerHandle, link: &mut Link, scratch: &mut [u8]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match link.serve(server.shared(), scratch) {
            Next::Step(step) if !step.input.is_empty() => {
                let consumed = step.input.len();
                answer(link, step, consumed);
                return consumed;
            }
            Next::Step(step) => answer(link, step, 0),
            Next::Wait => assert!(Instant::now() < deadline, "no bytes came"),
            Next::Finish(why) => panic!("the link ended: {why:?}"),
        }
    }
}

/// Serves `link` with nothing to read, answering the steps it asks for (the first look at a
/// new connection is one), until it waits.
fn serve_until_it_waits(server: &ServerHandle, link: &mut Link, scratch: &mut [u8]) {
    for _ in 0..4 {
        match link.serve(server.shared(), scratch) {
            Next::Wait => return,
            Next::Step(step) => answer(link, step, 0),
            Next::Finish(why) => panic!("the link ended: {why:?}"),
        }
    }
    panic!("the link never waited");
}

#[test]
fn a_link_keeps_its_buffers_between_bursts_and_gives_them_back_once_bytes_stop() {
    let (server, mut link, mut client) = linked();
    let mut scratch = Vec::new();
    let scratch = read_buffer(&mut scratch);
    let burst = vec![7u8; 64 * 1024];
    client.write_all(&burst).unwrap();
    let mut taken = 0;
    while taken < burst.len() {
        taken += step_taking_all(&server, &mut link, scratch);
    }
    assert!(link.input.holds_memory(), "a transfer's buffer was grown");
    // The socket is empty: the buffer stays, and the loop is asked to look again when it goes.
    let quiet_at = Instant::now();
    serve_until_it_waits(&server, &mut link, scratch);
    assert!(link.input.holds_memory(), "kept for the next burst");
    let wake = link
        .next_wake(server.shared())
        .expect("a wake to give it back");
    assert!(
        wake >= quiet_at && wake <= Instant::now() + KEEP_BUFFERS,
        "{wake:?}"
    );
    // Bytes again within the time: read into the same buffer.
    client.write_all(&burst).unwrap();
    let mut taken = 0;
    while taken < burst.len() {
        taken += step_taking_all(&server, &mut link, scratch);
    }
    assert!(link.input.holds_memory());
    // Nothing for the whole time: the wake gives the buffers back, and asks for no other.
    serve_until_it_waits(&server, &mut link, scratch);
    assert!(link.input.holds_memory());
    std::thread::sleep(KEEP_BUFFERS);
    serve_until_it_waits(&server, &mut link, scratch);
    assert!(!link.input.holds_memory(), "given back");
    assert_eq!(link.out.capacity(), 0);
    assert_eq!(link.next_wake(server.shared()), None);
    server.shutdown();
}
