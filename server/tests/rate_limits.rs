//! Rate limits measured over loopback: a transfer under a limit never beats size / rate and
//! comes within 5 % of it; the overall limit is shared evenly, a per-connection limit is not
//! shared at all; the real binary takes both from its config file.

use std::num::NonZeroU64;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use ferry_protocol::ClientEvent;

use crate::support::ferryd::Ferryd;
use crate::support::{Client, TestServer, data, tag};

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

#[test]
fn an_upload_under_the_overall_limit_takes_ten_seconds_within_five_percent() {
    let server = TestServer::start(|config| config.limit_rate = Some(MIB_PER_SEC));
    let mut client = server.client();
    let bytes = data(10 << 20, 1);
    let started = Instant::now();
    let (offset, outcome) = client.put("ten", &bytes, false, true, tag(1));
    let took = started.elapsed();
    assert_eq!((offset, outcome), (0, ClientEvent::PutStored));
    assert_within(
        took,
        at_rate(bytes.len(), MIB_PER_SEC),
        0.05,
        "10 MiB up at 1 MiB/s",
    );
}

/// Stores `files` on an unlimited server, then restarts it under `limits`.
fn server_holding(
    files: &[(&str, &[u8])],
    limits: impl FnOnce(&mut ferry_server::ServerConfig),
) -> TestServer {
    let server = TestServer::start(|_| {});
    let mut client = server.client();
    for (name, bytes) in files {
        client.put_new(name, bytes);
    }
    drop(client);
    server.restart(limits)
}

/// Downloads each name on a connection of its own, all at once; returns how long each took.
/// Each download's time counts from one instant taken before any of them asks: counted from
/// its own start, a download that began a moment after the other would not have all the shared
/// bytes ahead of it, and could beat the shared rate without the limit being broken.
fn download_together(server: &TestServer, names: &[&str]) -> Vec<Duration> {
    let mut clients: Vec<_> = names.iter().map(|_| server.client()).collect();
    let started = Instant::now();
    thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter_mut()
            .zip(names)
            .map(|(client, name)| {
                scope.spawn(move || {
                    let got = client.get(name).expect("download");
                    (started.elapsed(), got.len())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                let (took, len) = handle.join().expect("download thread");
                assert_eq!(len, 1 << 20);
                took
            })
            .collect()
    })
}

#[test]
fn two_downloads_under_the_overall_limit_each_get_about_half() {
    let (a, b) = (data(1 << 20, 2), data(1 << 20, 3));
    let two_mib = NonZeroU64::new(2 << 20).expect("not zero");
    let server = server_holding(&[("a", &a), ("b", &b)], |config| {
        config.limit_rate = Some(two_mib);
    });
    // Together 2 MiB at 2 MiB/s: one second; shared evenly, each ends near the second
    // (one hogging the limit would end in half of it).
    let took = download_together(&server, &["a", "b"]);
    eprintln!("two downloads of 1 MiB sharing 2 MiB/s took {took:?}");
    let together = at_rate(2 << 20, two_mib);
    for took in &took {
        assert!(
            *took >= together.mul_f64(0.9),
            "one hogged the limit: {took:?}"
        );
        assert!(*took <= together.mul_f64(1.15), "too slow: {took:?}");
    }
    let slowest = took.iter().max().copied().unwrap_or_default();
    assert!(slowest >= together, "the two beat the limit: {took:?}");
}

#[test]
fn downloads_under_a_per_connection_limit_each_get_the_whole_rate() {
    let (a, b) = (data(1 << 20, 4), data(1 << 20, 5));
    let server = server_holding(&[("a", &a), ("b", &b)], |config| {
        config.limit_rate_per_connection = Some(MIB_PER_SEC);
    });
    // Each 1 MiB at its own 1 MiB/s: both done in about one second, not two.
    let took = download_together(&server, &["a", "b"]);
    for (took, name) in took.iter().zip(["a", "b"]) {
        let what = format!("download {name} at 1 MiB/s of its own");
        assert_within(*took, at_rate(1 << 20, MIB_PER_SEC), 0.15, &what);
    }
}

#[test]
fn ferryd_takes_both_limits_from_its_config_file_and_the_lower_one_applies() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferryd.toml");
    std::fs::write(
        &config,
        "limit-rate = \"4M\"\nlimit-rate-per-connection = \"1M\"\n",
    )
    .unwrap();
    let ferryd = Ferryd::start(
        &dir.path().join("root"),
        &["--config", config.to_str().unwrap()],
    );
    let mut client = Client::connect(ferryd.addr);
    let bytes = data(512 << 10, 6);
    let started = Instant::now();
    client.put_new("half", &bytes);
    let took = started.elapsed();
    assert_within(
        took,
        at_rate(bytes.len(), MIB_PER_SEC),
        0.15,
        "512 KiB up under 1M of 4M",
    );
}

#[test]
fn a_rate_of_zero_in_the_config_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferryd.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlimit-rate = \"0\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .env_clear()
        .args(["check-config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(":2: bad value for `limit-rate`: a rate of 0 would never finish"),
        "{stderr}"
    );
}
