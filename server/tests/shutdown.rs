//! Graceful shutdown: no new work, a grace period for transfers, then uploads left resumable.

use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use ferry_protocol::{ClientEvent, ErrorCode, HASH_UNIT_LEN, ProtocolError};

use crate::support::{TestServer, data, tag};

#[test]
fn shutdown_ends_an_upload_after_the_grace_period_and_leaves_it_resumable() {
    let mut server = TestServer::start(|config| config.shutdown_grace = Duration::from_millis(300));
    let body = data(1 << 20, 1);
    let mut client = server.client();
    assert_eq!(
        client.put_request("inflight", body.len() as u64, false, true, tag(1)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data(&body[..500_000]);
    client.sync();
    let handle = server.handle.take().unwrap();
    let stopper = thread::spawn(move || handle.shutdown());
    // The client stays connected but sends nothing more; after the grace period the server
    // ends the transfer and says why.
    match client.next_event() {
        Err(ProtocolError::Peer { code, .. }) => assert_eq!(code, ErrorCode::ShuttingDown),
        other => panic!("expected ShuttingDown, got {other:?}"),
    }
    stopper.join().unwrap();
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "no longer accepting"
    );

    let server = server.restart(|_| {});
    let mut client = server.client();
    let resumable = (500_000 - 1) / HASH_UNIT_LEN * HASH_UNIT_LEN;
    assert_eq!(client.query("inflight", tag(1)), (None, Some(resumable)));
    assert!(client.names().is_empty(), "nothing half-written is visible");
    let (offset, outcome) = client.put("inflight", &body, false, true, tag(1));
    assert_eq!((offset, outcome), (resumable, ClientEvent::PutStored));
    assert_eq!(client.get("inflight").unwrap(), body);
}

#[test]
fn an_upload_that_finishes_within_the_grace_period_is_stored() {
    let mut server = TestServer::start(|config| config.shutdown_grace = Duration::from_secs(30));
    let body = data(600_000, 2);
    let mut client = server.client();
    assert_eq!(
        client.put_request("finishes", body.len() as u64, false, true, tag(2)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data(&body[..300_000]);
    let handle = server.handle.take().unwrap();
    let stopper = thread::spawn(move || handle.shutdown());
    thread::sleep(Duration::from_millis(100)); // let the shutdown begin
    client.send_data(&body[300_000..]);
    assert_eq!(
        client
            .finish_upload(ferry_protocol::Digest::of(&body))
            .unwrap(),
        ClientEvent::PutStored
    );
    // Its connection is then closed as the server goes down.
    assert!(matches!(
        client.next_event(),
        Err(ProtocolError::Peer {
            code: ErrorCode::ShuttingDown,
            ..
        })
    ));
    stopper.join().unwrap();
    assert_eq!(std::fs::read(server.root().join("finishes")).unwrap(), body);
}

#[test]
fn shutdown_closes_idle_clients_with_shutting_down() {
    let mut server = TestServer::start(|_| {});
    let mut client = server.client();
    server.handle.take().unwrap().shutdown();
    match client.next_event() {
        Err(ProtocolError::Peer { code, .. }) => assert_eq!(code, ErrorCode::ShuttingDown),
        other => panic!("expected ShuttingDown, got {other:?}"),
    }
}

#[test]
fn shutdown_ends_a_download_to_a_client_that_stopped_reading() {
    let large = data(24 << 20, 3); // more than the socket buffers hold
    let mut server = TestServer::start(|config| config.shutdown_grace = Duration::from_millis(300));
    let mut client = server.client();
    client.put_new("large", &large);
    assert!(matches!(
        client.get_request("large"),
        ClientEvent::GetReady { .. }
    ));
    // The client reads nothing more: the server is stuck on a full socket when shutdown
    // begins, and must not wait for the client (60 s idle timeout) to end the transfer.
    server.handle.take().unwrap().shutdown();
    match client.next_event() {
        Err(_) => {}
        Ok(event) => panic!("the download was not ended by the shutdown: {event:?}"),
    }
    assert!(client.downloaded.len() < large.len());
}
