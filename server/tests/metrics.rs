//! `/metrics` scraped with a real HTTP client after real transfers: the counts match what was
//! sent, and Prometheus's own `promtool check metrics` accepts the page.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use ferry_protocol::{ClientEvent, Digest, ErrorCode, ProtocolError};
use ferry_server::{Rights, TlsIdentity, Tokens, token_line};
use ferry_testkit::SeaweedFs;

use crate::support::ferryd::Ferryd;
use crate::support::{Client, TestServer, data, tag, wait_until};
use ferry_testkit::tools;

/// Most protocol bytes (handshake, requests, frame headers, digests) the few transfers of a
/// test add to the file bytes they move.
const PROTOCOL_OVERHEAD: f64 = 16.0 * 1024.0;

/// Fetches the page at `addr` with an HTTP client.
fn scrape(addr: SocketAddr) -> String {
    let mut response = ureq::get(&format!("http://{addr}/metrics")).call().unwrap();
    assert_eq!(response.status(), 200);
    response.body_mut().read_to_string().unwrap()
}

/// The value of the sample `series` (name and labels as printed), or `None` if absent.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(value.split(' ').next()?.parse().unwrap())
    })
}

/// Like [`sample`], for a series that must be on the page.
fn value(page: &str, series: &str) -> f64 {
    sample(page, series).unwrap_or_else(|| panic!("no `{series}` on the page:\n{page}"))
}

/// Runs `promtool check metrics` on `page` when promtool is installed: the page must parse,
/// and promtool's lints must find nothing but the one way its classic-format parser misreads
/// OpenMetrics (which `prometheus-client` writes and Prometheus scrapes): a counter's samples end
/// in `_total` while its `HELP` and `TYPE` lines name it without, so promtool reports
/// `<name>_total no help text`. Each such report must name a counter whose `HELP` and `TYPE`
/// lines are on the page; any other report fails.
fn check_with_promtool(page: &str) {
    if !tools::have("promtool", "the metrics page's format") {
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // 0: clean; 3: lint problems only; anything else (1: the page does not parse) fails.
    assert!(
        matches!(output.status.code(), Some(0 | 3)),
        "promtool could not read the page:\n{report}\n{page}"
    );
    for problem in report.lines().filter(|line| !line.trim().is_empty()) {
        let counter = problem
            .strip_suffix("_total no help text")
            .unwrap_or_else(|| panic!("promtool: {problem}\n{page}"));
        assert!(
            page.contains(&format!("# TYPE {counter} counter\n"))
                && page.contains(&format!("# HELP {counter} ")),
            "promtool: {problem}, and the page has no counter `{counter}` with help:\n{page}"
        );
    }
}

#[test]
fn metrics_after_real_transfers_count_what_was_sent() {
    let server = TestServer::start(|config| {
        config.max_connections = 1;
        config.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let metrics = server.handle.as_ref().unwrap().metrics_addr().unwrap();
    let sizes = [1_000usize, 70_000, 300_001];
    let files: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| (format!("dir/file-{i}"), data(size, i as u64)))
        .collect();
    let mut client = server.client();
    for (name, bytes) in &files {
        client.put_new(name, bytes);
    }
    let fetched = [&files[1], &files[2]];
    for (name, bytes) in fetched {
        assert_eq!(&client.get(name).unwrap(), bytes);
    }
    // The only seat is taken: this one is refused as busy.
    match Client::try_connect(server.addr) {
        Err(ProtocolError::Peer { code, .. }) => assert_eq!(code, ErrorCode::Busy),
        other => panic!("expected Busy, got {:?}", other.err()),
    }
    drop(client);
    wait_until("the connection to close", || {
        sample(&scrape(metrics), "ferry_connections_open") == Some(0.0)
    });

    let page = scrape(metrics);
    let put_bytes: usize = sizes.iter().sum();
    let get_bytes: usize = fetched.iter().map(|(_, bytes)| bytes.len()).sum();
    let (put_bytes, get_bytes) = (put_bytes as f64, get_bytes as f64);
    assert_eq!(
        value(&page, r#"ferry_transfers_total{op="put",outcome="ok"}"#),
        3.0
    );
    assert_eq!(
        value(&page, r#"ferry_transfers_total{op="get",outcome="ok"}"#),
        2.0
    );
    assert_eq!(
        value(&page, r#"ferry_transfer_size_bytes_sum{op="put"}"#),
        put_bytes
    );
    assert_eq!(
        value(&page, r#"ferry_transfer_size_bytes_count{op="put"}"#),
        3.0
    );
    assert_eq!(
        value(&page, r#"ferry_transfer_size_bytes_sum{op="get"}"#),
        get_bytes
    );
    assert_eq!(
        value(&page, r#"ferry_transfer_duration_seconds_count{op="get"}"#),
        2.0
    );
    let received = value(&page, "ferry_received_bytes_total");
    assert!(
        (put_bytes..put_bytes + PROTOCOL_OVERHEAD).contains(&received),
        "received {received} for {put_bytes} file bytes"
    );
    let sent = value(&page, "ferry_sent_bytes_total");
    assert!(
        (get_bytes..get_bytes + PROTOCOL_OVERHEAD).contains(&sent),
        "sent {sent} for {get_bytes} file bytes"
    );
    assert_eq!(value(&page, "ferry_connections_accepted_total"), 1.0);
    assert_eq!(
        value(&page, r#"ferry_connections_refused_total{reason="busy"}"#),
        1.0
    );
    assert_eq!(
        value(
            &page,
            r#"ferry_store_call_duration_seconds_count{call="commit"}"#
        ),
        3.0
    );
    assert_eq!(
        value(
            &page,
            r#"ferry_store_call_duration_seconds_count{call="open_for_download"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(&page, r#"ferry_store_errors_total{call="commit"}"#),
        None
    );
    assert_eq!(value(&page, "ferry_staging_bytes"), 0.0);
    assert!(
        !page.contains("file-"),
        "a file name leaked into the page:\n{page}"
    );
    check_with_promtool(&page);
}

#[test]
fn a_failed_store_call_is_counted_as_an_error() {
    let server = TestServer::start(|config| {
        config.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let metrics = server.handle.as_ref().unwrap().metrics_addr().unwrap();
    let mut client = server.client();
    assert_eq!(client.get("missing").unwrap_err().0, ErrorCode::NotFound);
    let page = scrape(metrics);
    assert_eq!(
        value(
            &page,
            r#"ferry_store_errors_total{call="open_for_download"}"#
        ),
        1.0
    );
}

#[test]
fn a_failed_and_an_interrupted_upload_are_counted_by_outcome() {
    let server = TestServer::start(|config| {
        config.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let metrics = server.handle.as_ref().unwrap().metrics_addr().unwrap();
    let body = data(50_000, 9);
    let mut client = server.client();
    assert!(matches!(
        client.put_request("tampered", body.len() as u64, false, true, tag(4)),
        ClientEvent::PutReady { offset: 0 }
    ));
    client.send_data(&body);
    match client.finish_upload(Digest::of(b"something else")).unwrap() {
        ClientEvent::Refused { code, .. } => assert_eq!(code, ErrorCode::DigestMismatch),
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert!(matches!(
        client.put_request("cut", 1 << 20, false, true, tag(5)),
        ClientEvent::PutReady { offset: 0 }
    ));
    client.send_data(&body);
    client.sync();
    // Staged bytes of the upload under way are held until it ends.
    assert_eq!(
        value(&scrape(metrics), "ferry_staging_bytes"),
        body.len() as f64
    );
    drop(client);
    wait_until("the cut upload to be counted", || {
        let page = scrape(metrics);
        sample(
            &page,
            r#"ferry_transfers_total{op="put",outcome="interrupted"}"#,
        ) == Some(1.0)
    });
    let page = scrape(metrics);
    assert_eq!(
        value(
            &page,
            r#"ferry_transfers_total{op="put",outcome="digest_mismatch"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&page, r#"ferry_transfers_total{op="put",outcome="ok"}"#),
        None
    );
    assert_eq!(value(&page, "ferry_staging_bytes"), 0.0);
    check_with_promtool(&page);
}

#[test]
fn store_calls_to_s3_are_timed_and_their_errors_counted() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = weed.config(&SeaweedFs::unique_prefix("metrics"));
    let server = TestServer::start(move |config| {
        config.object_store = Some(store);
        config.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let metrics = server.handle.as_ref().unwrap().metrics_addr().unwrap();
    let body = data(200_000, 11);
    let mut client = server.client();
    client.put_new("in-the-bucket", &body);
    assert_eq!(client.get("in-the-bucket").unwrap(), body);
    assert_eq!(client.get("not-there").unwrap_err().0, ErrorCode::NotFound);
    let page = scrape(metrics);
    assert_eq!(
        value(
            &page,
            r#"ferry_store_call_duration_seconds_count{call="commit"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &page,
            r#"ferry_store_call_duration_seconds_count{call="open_for_download"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &page,
            r#"ferry_store_errors_total{call="open_for_download"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&page, r#"ferry_store_errors_total{call="commit"}"#),
        None
    );
    check_with_promtool(&page);
}

#[test]
fn refused_plaintext_and_failed_tls_handshakes_are_counted() {
    let state = tempfile::tempdir().unwrap();
    let identity = TlsIdentity::load_or_create(&state.path().join("tls")).unwrap();
    let server = TestServer::start(|config| {
        config.tls = Some(identity);
        config.handshake_timeout = Duration::from_millis(300);
        config.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let metrics = server.handle.as_ref().unwrap().metrics_addr().unwrap();
    assert!(Client::try_connect(server.addr).is_err());
    // The start of a TLS record header, then silence until the handshake timeout.
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    wait_until("the stalled handshake to be counted", || {
        sample(&scrape(metrics), "ferry_tls_handshakes_failed_total") == Some(1.0)
    });
    let page = scrape(metrics);
    assert_eq!(
        value(
            &page,
            r#"ferry_connections_refused_total{reason="plaintext-on-tls"}"#
        ),
        1.0
    );
    check_with_promtool(&page);
}

#[test]
fn ferryd_serves_metrics_on_the_address_of_its_flag() {
    // A free port for the flag (ferryd prints the address after the line the harness reads).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Ferryd::start(&dir.path().join("root"), &["--metrics", &addr.to_string()]);
    let body = data(123_456, 3);
    let mut client = Client::connect(server.addr);
    client.put_new("report.pdf", &body);
    assert_eq!(client.get("report.pdf").unwrap(), body);
    let page = scrape(addr);
    assert_eq!(
        value(&page, r#"ferry_transfers_total{op="put",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        value(&page, r#"ferry_transfer_size_bytes_sum{op="put"}"#),
        body.len() as f64
    );
    check_with_promtool(&page);
}

#[test]
fn a_wrong_token_is_counted_as_a_refusal() {
    let server = TestServer::start(|config| {
        let line = token_line("3f9a0c7e51b2d86e4a1f0b9c7d2e5a83", Rights::ReadWrite, None).unwrap();
        config.tokens = Some(Tokens::parse(&line).unwrap());
        config.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let metrics = server.handle.as_ref().unwrap().metrics_addr().unwrap();
    match Client::try_connect(server.addr) {
        Err(ProtocolError::Peer { code, .. }) => assert_eq!(code, ErrorCode::NotAuthorised),
        other => panic!("expected NotAuthorised, got {:?}", other.err()),
    }
    let page = scrape(metrics);
    assert_eq!(
        value(
            &page,
            r#"ferry_connections_refused_total{reason="wrong-token"}"#
        ),
        1.0
    );
}

#[test]
fn other_paths_are_not_found() {
    let server = TestServer::start(|config| {
        config.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let metrics = server.handle.as_ref().unwrap().metrics_addr().unwrap();
    match ureq::get(&format!("http://{metrics}/")).call() {
        Err(ureq::Error::StatusCode(code)) => assert_eq!(code, 404),
        other => panic!("expected 404, got {other:?}"),
    }
    assert!(scrape(metrics).ends_with("# EOF\n"));
}
