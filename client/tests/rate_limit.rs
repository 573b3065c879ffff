//! `--limit-rate` and [`ClientOptions::limit_rate`] measured over loopback: a transfer never
//! beats size / rate and comes within 5 % of it over ten seconds; with `-j` each connection
//! has the rate of its own.

use std::io::Cursor;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use ferry_client::{Client, ClientOptions, PutOptions};

use crate::support::cli::{TestServer, ferry};
use crate::support::memory_server::MemoryServer;
use crate::support::pattern;

/// 1 MiB/s.
const MIB_PER_SEC: NonZeroU64 = NonZeroU64::new(1 << 20).expect("not zero");

/// The time `bytes` take at `rate`, exactly (rounded up to the microsecond).
fn at_rate(bytes: usize, rate: NonZeroU64) -> Duration {
    Duration::from_micros((bytes as u64 * 1_000_000).div_ceil(rate.get()))
}

/// Asserts `took` is at least `expected` and at most `slack` more.
fn assert_within(took: Duration, expected: Duration, slack: f64, what: &str) {
    let rate = expected.as_secs_f64() / took.as_secs_f64() * 100.0;
    eprintln!("{what}: {took:?} for {expected:?} at the limit ({rate:.1} % of the rate)");
    assert!(
        took >= expected,
        "{what} beat the limit: {took:?} < {expected:?}"
    );
    assert!(
        took <= expected.mul_f64(1.0 + slack),
        "{what} took {took:?}, more than {:.0} % over {expected:?}",
        slack * 100.0
    );
}

fn options(limit_rate: Option<NonZeroU64>) -> ClientOptions {
    ClientOptions {
        security: ferry_client::Security::Insecure,
        limit_rate,
        ..ClientOptions::default()
    }
}

fn put(client: &mut Client, name: &str, data: &[u8]) {
    client
        .put_from(
            &mut Cursor::new(data),
            data.len() as u64,
            name,
            &PutOptions::default(),
            &mut |_| {},
        )
        .unwrap();
}

#[test]
fn a_download_under_the_client_limit_takes_ten_seconds_within_five_percent() {
    let server = MemoryServer::start();
    let data = pattern(10 << 20, 1);
    put(
        &mut Client::connect(server.addr(), options(None)).unwrap(),
        "ten",
        &data,
    );
    let mut client = Client::connect(server.addr(), options(Some(MIB_PER_SEC))).unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    client.get_to("ten", &mut got, &mut |_| {}).unwrap();
    let took = started.elapsed();
    assert!(got == data, "the download differs");
    assert_within(
        took,
        at_rate(data.len(), MIB_PER_SEC),
        0.05,
        "10 MiB down at 1 MiB/s",
    );
}

#[test]
fn an_upload_under_the_client_limit_moves_at_the_rate() {
    let server = MemoryServer::start();
    let data = pattern(1 << 20, 2);
    let mut client = Client::connect(server.addr(), options(Some(MIB_PER_SEC))).unwrap();
    let started = Instant::now();
    put(&mut client, "one", &data);
    let took = started.elapsed();
    assert_eq!(server.stored("one"), Some(data.clone()));
    assert_within(
        took,
        at_rate(data.len(), MIB_PER_SEC),
        0.15,
        "1 MiB up at 1 MiB/s",
    );
}

#[test]
fn with_jobs_each_connection_of_ferry_gets_the_whole_rate() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        std::fs::write(work.path().join(name), pattern(1 << 20, 3)).unwrap();
    }
    let started = Instant::now();
    ferry(
        server.addr(),
        work.path(),
        &["--limit-rate", "1M", "put", "-j", "2", "a", "b"],
    )
    .ok();
    let took = started.elapsed();
    eprintln!("two files of 1 MiB at --limit-rate 1M -j 2: {took:?}");
    // Each connection moves its 1 MiB in a second; sharing the rate would take two.
    assert!(took >= at_rate(1 << 20, MIB_PER_SEC), "{took:?}");
    assert!(took < Duration::from_millis(1800), "{took:?}");
}

#[test]
fn a_rate_of_zero_or_without_a_number_is_a_usage_error() {
    let work = tempfile::tempdir().unwrap();
    let addr = "127.0.0.1:9".parse().unwrap();
    for rate in ["0", "fast"] {
        let run = ferry(addr, work.path(), &["--limit-rate", rate, "ls"]);
        assert_eq!(run.code, 2, "{rate}: {}", run.stderr);
        assert!(run.stderr.contains("--limit-rate"), "{}", run.stderr);
    }
}
