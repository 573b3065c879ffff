//! The real server over an in-memory store (`Server::start_with_store`, feature
//! `memory-store`): what a client stores lands in that store and nowhere else, and the store's
//! faults and crashes reach the client as a disk's would.

use std::path::Path;
use std::sync::Arc;

use ferry_protocol::{ClientEvent, Digest, ErrorCode, ProtocolError};
use ferry_server::memory::{Faults, ManualClock, MemoryLimits, MemoryStore};
use ferry_server::{Server, ServerHandle};

use crate::support::{self, Client, data, tag};

const MIB: usize = 1024 * 1024;

/// A root the server is given but must never create: the files live in the store.
const UNUSED_ROOT: &str = "target/unused-by-the-memory-store";

fn memory_store() -> MemoryStore {
    MemoryStore::new(MemoryLimits::default(), ManualClock::default().clock())
}

fn serve(store: &MemoryStore) -> ServerHandle {
    let mut config = support::config(UNUSED_ROOT);
    config.checkpoint_interval = MIB as u64;
    Server::start_with_store(config, Arc::new(store.clone())).unwrap()
}

#[test]
fn a_server_over_a_memory_store_stores_serves_and_lists_from_it() {
    let store = memory_store();
    let server = serve(&store);
    let mut client = Client::connect(server.local_addr());
    let body = data(3 * MIB + 17, 1);
    client.put_new("photos/big.bin", &body);

    let stored = store.file("photos/big.bin").unwrap();
    assert_eq!(*stored.bytes, body);
    assert_eq!(stored.digest, Some(Digest::of(&body)));
    assert_eq!(client.get("photos/big.bin").unwrap(), body);
    assert_eq!(client.names(), ["photos/big.bin"]);
    assert!(!Path::new(UNUSED_ROOT).exists(), "nothing went to a disk");
}

#[test]
fn a_full_memory_store_tells_the_client_the_truth_and_the_upload_resumes_after_a_crash() {
    let store = memory_store();
    let server = serve(&store);
    store.set_faults(Faults {
        full_after: Some(5 * MIB as u64 + 1234),
        ..Faults::default()
    });
    let body = data(8 * MIB, 2);
    let mut client = Client::connect(server.local_addr());
    assert_eq!(
        client.put_request("big", body.len() as u64, false, true, tag(2)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data_lenient(&body);
    client.conn.finish_upload(Digest::of(&body)).ok();
    client.flush();
    let (code, message) = match client.next_event() {
        Ok(ClientEvent::Refused { code, message }) | Err(ProtocolError::Peer { code, message }) => {
            (code, message)
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(code, ErrorCode::DiskFull, "{message}");
    let told: u64 = message
        .split("resumable from byte ")
        .nth(1)
        .unwrap_or_else(|| panic!("{message}"))
        .parse()
        .unwrap();
    assert!(told > 0 && told <= 5 * MIB as u64, "{message}");
    assert_eq!(
        Client::connect(server.local_addr()).query("big", tag(2)).1,
        Some(told)
    );

    // A power cut keeps what the client was told; the upload resumes there and completes.
    server.shutdown();
    store.crash();
    store.set_faults(Faults::default());
    let server = serve(&store);
    let mut client = Client::connect(server.local_addr());
    let (offset, outcome) = client.put("big", &body, false, true, tag(2));
    assert_eq!((offset, outcome), (told, ClientEvent::PutStored));
    assert_eq!(*store.file("big").unwrap().bytes, body);
}
