//! Many files on one connection (`Client::put_files`, `Client::get_files`) against ferryd over
//! the in-memory store, through a relay that reads what crosses and can cut the connection.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ferry_client::{Client, ClientError, ClientOptions, GetOptions, PutOptions, WINDOW_REQUESTS};
use ferry_protocol::limits::MAGIC;

use crate::support::memory_server::MemoryServer;
use crate::support::pattern;
use crate::support::relay::{Direction, Relay};

fn fast_options() -> ClientOptions {
    ClientOptions {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        security: ferry_client::Security::Insecure,
        ..ClientOptions::default()
    }
}

/// `count` local files of a few KiB each (one of 2 MiB, above the eager limit, among them).
fn local_files(dir: &std::path::Path, count: usize) -> Vec<(PathBuf, String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let size = if i == count / 2 {
                2 << 20
            } else {
                1000 + 37 * i
            };
            let data = pattern(size, i as u64);
            let path = dir.join(format!("f{i}"));
            std::fs::write(&path, &data).unwrap();
            (path, format!("tree/f{i}"), data)
        })
        .collect()
}

/// Uploads every file with `put_files`; returns each file's outcome by index.
fn put_all(
    client: &mut Client,
    files: &[(PathBuf, String, Vec<u8>)],
) -> Vec<Option<Result<ferry_client::PutReport, ClientError>>> {
    let list: Vec<_> = files
        .iter()
        .map(|(path, name, _)| (path.clone(), name.clone()))
        .collect();
    let mut outcomes: Vec<_> = files.iter().map(|_| None).collect();
    client.put_files(&list, &PutOptions::default(), &mut |i, result| {
        assert!(outcomes[i].is_none(), "file {i} reported twice");
        outcomes[i] = Some(result);
    });
    outcomes
}

#[test]
fn put_files_sends_small_files_without_waiting_for_go_aheads_on_one_connection() {
    let server = MemoryServer::start();
    let relay = Relay::passing(server.addr());
    let dir = tempfile::tempdir().unwrap();
    let files = local_files(dir.path(), 200);
    let mut client = Client::connect(relay.addr, fast_options()).unwrap();
    for (i, outcome) in put_all(&mut client, &files).into_iter().enumerate() {
        let report = outcome.expect("every file reported").expect("stored");
        assert_eq!(report.size, files[i].2.len() as u64);
        assert_eq!(server.stored(&files[i].1).as_deref(), Some(&files[i].2[..]));
    }
    assert_eq!(relay.connections.load(Ordering::SeqCst), 1);
    let puts = relay.log.requests().iter().filter(|r| **r == "put").count();
    assert_eq!(puts, 200);
    // Only the large file waited for a go-ahead; the 199 small ones went eagerly.
    assert_eq!(relay.log.put_offsets(), vec![0]);
}

#[test]
fn a_refusal_inside_a_window_is_that_files_outcome_and_the_others_are_stored() {
    let server = MemoryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = local_files(dir.path(), 20);
    server.store.insert(&files[7].1, b"another file's bytes");
    let mut client = Client::connect(server.addr(), fast_options()).unwrap();
    let outcomes = put_all(&mut client, &files);
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let outcome = outcome.expect("every file reported");
        if i == 7 {
            assert!(outcome.is_err(), "an existing name was overwritten");
            assert_eq!(
                server.stored(&files[7].1).as_deref(),
                Some(&b"another file's bytes"[..])
            );
        } else {
            outcome.expect("stored");
            assert_eq!(server.stored(&files[i].1).as_deref(), Some(&files[i].2[..]));
        }
    }
}

#[test]
fn a_cut_inside_a_window_ends_with_every_file_stored_whole_and_reported_once() {
    let server = MemoryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files = local_files(dir.path(), 120);
    // The cut falls among the small files, before the large one's data.
    let relay = Relay::start(server.addr(), Direction::Upstream, 60_000);
    let mut client = Client::connect(relay.addr, fast_options()).unwrap();
    for (i, outcome) in put_all(&mut client, &files).into_iter().enumerate() {
        outcome.expect("every file reported").expect("stored");
        assert_eq!(server.stored(&files[i].1).as_deref(), Some(&files[i].2[..]));
    }
    assert!(relay.cut.load(Ordering::SeqCst), "the relay never cut");
    assert!(relay.connections.load(Ordering::SeqCst) >= 2);
}

#[test]
fn get_files_fetches_a_folder_on_one_connection_and_survives_a_cut() {
    let server = MemoryServer::start();
    let data: Vec<Vec<u8>> = (0..150).map(|i| pattern(500 + 91 * i, i as u64)).collect();
    for (i, bytes) in data.iter().enumerate() {
        server.store.insert(&format!("tree/g{i}"), bytes);
    }
    let dir = tempfile::tempdir().unwrap();
    let list: Vec<_> = (0..data.len())
        .map(|i| (format!("tree/g{i}"), dir.path().join(format!("g{i}"))))
        .collect();
    for cut in [usize::MAX, 40_000] {
        for (_, local) in &list {
            let _ = std::fs::remove_file(local);
        }
        let relay = Relay::start(server.addr(), Direction::Downstream, cut);
        let mut client = Client::connect(relay.addr, fast_options()).unwrap();
        let mut reported = vec![0; list.len()];
        client.get_files(&list, &GetOptions::default(), &mut |i, result| {
            reported[i] += 1;
            result.expect("fetched");
        });
        assert!(reported.iter().all(|n| *n == 1), "{reported:?}");
        for (i, (_, local)) in list.iter().enumerate() {
            assert_eq!(
                std::fs::read(local).unwrap(),
                data[i],
                "file {i}, cut {cut}"
            );
        }
        let gets = relay.log.requests().iter().filter(|r| **r == "get").count();
        if cut == usize::MAX {
            assert_eq!(relay.connections.load(Ordering::SeqCst), 1);
            assert_eq!(gets, list.len());
        } else {
            assert!(relay.cut.load(Ordering::SeqCst), "the relay never cut");
        }
    }
}

#[test]
fn a_sync_of_small_files_pipelines_its_queries_and_its_uploads_on_one_connection() {
    use ferry_client::sync::{DigestCache, SyncDirection, SyncOptions};
    let server = MemoryServer::start();
    let dir = tempfile::tempdir().unwrap();
    let count = 150;
    let changed = |i: usize| i % 50 == 7;
    let files: Vec<_> = (0..count)
        .map(|i| {
            let path = dir.path().join(format!("s{i}"));
            std::fs::write(&path, pattern(700 + 13 * i, i as u64)).unwrap();
            (path, format!("synced/s{i}"))
        })
        .collect();
    // Stored by the client, so the server knows every digest; then three change locally, to
    // other bytes of the same size.
    let mut first = Client::connect(server.addr(), fast_options()).unwrap();
    first.put_files(&files, &PutOptions::default(), &mut |_, result| {
        result.expect("stored");
    });
    for i in (0..count).filter(|&i| changed(i)) {
        std::fs::write(&files[i].0, pattern(700 + 13 * i, 1000 + i as u64)).unwrap();
    }
    let relay = Relay::passing(server.addr());
    let mut client = Client::connect(relay.addr, fast_options()).unwrap();
    let mut cache = DigestCache::in_memory();
    let options = SyncOptions::default();
    let plan = client
        .plan_sync(
            SyncDirection::Upload,
            dir.path(),
            "synced",
            &options,
            &mut cache,
        )
        .unwrap();
    let report = client.run_sync(&plan, &mut cache, &mut ());
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!((report.sent, report.skipped), (3, count - 3));
    for (path, name) in &files {
        assert_eq!(server.stored(name), Some(std::fs::read(path).unwrap()));
    }
    assert_eq!(relay.connections.load(Ordering::SeqCst), 1);
    let queries = relay
        .log
        .requests()
        .iter()
        .filter(|r| **r == "query")
        .count();
    assert_eq!(queries, count, "one query per file of the same size");
    assert!(
        relay.log.most_queries_in_flight() > 1,
        "the queries went one round trip each"
    );
    // The three uploads went eagerly: no go-ahead was waited for.
    assert_eq!(relay.log.put_offsets(), Vec::<u64>::new());
}

#[test]
fn get_files_makes_the_local_folders_its_files_go_into() {
    let server = MemoryServer::start();
    let data: Vec<Vec<u8>> = (0..4).map(|i| pattern(300 + i, i as u64)).collect();
    for (i, bytes) in data.iter().enumerate() {
        server.store.insert(&format!("deep/d{i}"), bytes);
    }
    let dir = tempfile::tempdir().unwrap();
    let list: Vec<_> = (0..data.len())
        .map(|i| {
            let local = dir.path().join(format!("not/yet/made/{i}/d{i}"));
            (format!("deep/d{i}"), local)
        })
        .collect();
    let relay = Relay::passing(server.addr());
    let mut client = Client::connect(relay.addr, fast_options()).unwrap();
    let mut fetched = 0;
    client.get_files(&list, &GetOptions::default(), &mut |i, result| {
        result.unwrap_or_else(|error| panic!("file {i}: {error}"));
        fetched += 1;
    });
    assert_eq!(fetched, data.len());
    for (i, (_, local)) in list.iter().enumerate() {
        assert_eq!(std::fs::read(local).unwrap(), data[i]);
    }
    // All in the pipeline, on the one connection: none fell back to one by one.
    assert_eq!(relay.connections.load(Ordering::SeqCst), 1);
    assert_eq!(relay.log.requests(), ["get"; 4]);
}

/// The bytes a client sends before its first request (the magic and its `HELLO`), read by a
/// listener that never answers.
fn hello_len() -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let options = ClientOptions {
        retries: 0,
        ..fast_options()
    };
    let connecting = std::thread::spawn(move || Client::connect(addr, options).is_err());
    let (mut socket, _) = listener.accept().unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0; 1024];
    let len = loop {
        let n = socket.read(&mut buf).unwrap();
        assert!(n > 0, "the client closed before its HELLO");
        bytes.extend_from_slice(&buf[..n]);
        if let Some(rest) = bytes.get(MAGIC.len()..)
            && let Ok(Some((_, used))) = ferry_protocol::decode_frame(rest)
        {
            break MAGIC.len() + used;
        }
    };
    drop((socket, listener));
    assert!(
        connecting.join().unwrap(),
        "connected to a listener that never answered"
    );
    len
}

#[test]
fn a_window_cut_each_time_is_tried_retries_plus_one_times_then_each_file_goes_alone() {
    let server = MemoryServer::start();
    // More files than two windows hold, so that a third window would still have some to send.
    let files = 2 * WINDOW_REQUESTS + 52;
    for i in 0..files {
        server
            .store
            .insert(&format!("cut/c{i}"), &pattern(40, i as u64));
    }
    let dir = tempfile::tempdir().unwrap();
    let list: Vec<_> = (0..files)
        .map(|i| (format!("cut/c{i}"), dir.path().join(format!("c{i}"))))
        .collect();
    let retries = 1;
    // The first `retries + 1` connections are cut three bytes into their first request (the
    // server answers none); later ones pass.
    let cut = retries as usize + 1;
    let relay = Relay::cutting_first(server.addr(), Direction::Upstream, hello_len() + 3, cut);
    let options = ClientOptions {
        retries,
        ..fast_options()
    };
    let mut client = Client::connect(relay.addr, options).unwrap();
    let mut reported = Vec::new();
    client.get_files(&list, &GetOptions::default(), &mut |i, result| {
        let report = result.unwrap_or_else(|error| panic!("file {i}: {error}"));
        // Each on the connection after the cut ones, at its first attempt: the windows took
        // every cut connection.
        assert_eq!(report.attempts, 1, "file {i}");
        reported.push(i);
    });
    // In order: none was sent in a window after the cut ones.
    assert!(
        reported.iter().copied().eq(0..files),
        "{} reported, beginning {:?}",
        reported.len(),
        &reported[..reported.len().min(8)]
    );
    assert_eq!(relay.connections.load(Ordering::SeqCst), cut + 1);
}
