//! A scripted server that breaks the name policy (PROTOCOL.md §6) on purpose: it lists the
//! names it was given, whatever they are, and refuses every other request. ferryd never lists
//! such a name, so no real server can stand in here; this one holds none of ferryd's rules, only
//! the protocol machine and a fixed script, to test what the client makes of a hostile server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use ferry_protocol::{Config, ErrorCode, ServerConnection, ServerEvent, Timestamp};

/// Size every listed file claims.
const LISTED_SIZE: u64 = 1;

/// A running hostile server; it lives until the test process ends.
pub struct HostileServer {
    /// Where it listens (plaintext).
    pub addr: SocketAddr,
}

impl HostileServer {
    /// Starts listening on a free loopback port; every listing holds `names` (those under the
    /// prefix asked for), in the order given.
    pub fn listing(names: &[&str]) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let names = names.clone();
                std::thread::spawn(move || serve(stream, &names));
            }
        });
        HostileServer { addr }
    }
}

/// Runs the script on one connection until the client leaves.
fn serve(mut stream: TcpStream, names: &[String]) {
    let epoch = Instant::now();
    let now = || Timestamp::from_micros(epoch.elapsed().as_micros() as u64);
    let mut conn = ServerConnection::new(Config::default(), now());
    let mut input = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    while !conn.is_closed() {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        input.extend_from_slice(&chunk[..n]);
        loop {
            let Ok(received) = conn.handle_input(now(), &input) else {
                return;
            };
            let consumed = received.consumed;
            input.drain(..consumed);
            let mut events = 0;
            while let Some(event) = conn.poll_event() {
                events += 1;
                answer(&mut conn, names, event);
            }
            if consumed == 0 && events == 0 {
                break;
            }
        }
        conn.poll_transmit(&mut out);
        if stream.write_all(&out).is_err() {
            return;
        }
        out.clear();
    }
}

/// The script: welcome anyone, list the names, refuse the rest.
fn answer(conn: &mut ServerConnection, names: &[String], event: ServerEvent) {
    match event {
        ServerEvent::ClientHello { .. } => conn.accept_client().unwrap(),
        ServerEvent::ListRequested { prefix } => {
            for name in names.iter().filter(|name| name.starts_with(&prefix)) {
                conn.send_list_entry(name, LISTED_SIZE, 0).unwrap();
            }
            conn.finish_list().unwrap();
        }
        ServerEvent::PutRequested(_)
        | ServerEvent::GetRequested { .. }
        | ServerEvent::RemoveRequested { .. }
        | ServerEvent::QueryRequested { .. } => conn
            .refuse(ErrorCode::Forbidden, "this test server only lists")
            .unwrap(),
        _ => {}
    }
}
