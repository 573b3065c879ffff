//! The harness's own tests: instances side by side, cleanup on drop and when the parent dies,
//! a failing `weed` reported quickly, unique prefixes.

use std::process::Command;

use super::probe::ProbeError;
use super::*;

/// `weed` if the tests are to use it (as [`SeaweedFs::for_tests`] decides).
fn weed() -> Option<PathBuf> {
    SeaweedFs::for_tests()?;
    find_weed().ok()
}

/// Waits up to `limit` for `done`.
fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

fn refuses_connections(endpoint: &str) -> bool {
    let addr = endpoint.trim_start_matches("http://");
    std::net::TcpStream::connect(addr).is_err()
}

#[test]
fn instances_run_side_by_side_and_drop_cleans_up() {
    let Some(weed) = weed() else { return };
    let starts: Vec<_> = (0..2)
        .map(|_| {
            let weed = weed.clone();
            std::thread::spawn(move || SeaweedFs::start_watched(&weed, std::process::id()))
        })
        .collect();
    let [a, b]: [SeaweedFs; 2] = starts
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    assert_ne!(a.endpoint(), b.endpoint());
    assert_ne!(a.bucket(), b.bucket());
    assert_eq!(a.region(), "us-east-1");
    let probe_a = a.probe().unwrap();
    let probe_b = b.probe().unwrap();
    probe_a.put("only-in-a", b"a").unwrap();
    assert!(probe_a.exists("only-in-a").unwrap());
    assert!(!probe_b.exists("only-in-a").unwrap());
    // Each instance's keys are its own.
    let crossed = Probe::new(
        b.endpoint(),
        REGION,
        a.bucket(),
        a.access_key(),
        a.secret_key(),
    )
    .unwrap();
    let denied = crossed.check_access().unwrap_err();
    assert!(
        matches!(
            &denied,
            ProbeError::Status {
                status: 401 | 403,
                ..
            }
        ) || matches!(&denied, ProbeError::Status { body, .. } if body.contains("NoSuchBucket")),
        "{denied:?}"
    );

    let (dir, endpoint) = (a.dir.clone(), a.endpoint().to_owned());
    let started = Instant::now();
    drop(a);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(refuses_connections(&endpoint));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopping took {:?}",
        started.elapsed()
    );
    probe_b.check_access().unwrap();
}

#[test]
fn the_watchdog_stops_weed_when_its_parent_dies() {
    let Some(weed) = weed() else { return };
    let mut parent = Command::new("sleep").arg("1000").spawn().unwrap();
    let instance = SeaweedFs::start_watched(&weed, parent.id()).unwrap();
    let (dir, endpoint) = (instance.dir.clone(), instance.endpoint().to_owned());
    // Dropping would stop it: forget it instead, as a killed test process would.
    std::mem::forget(instance);
    parent.kill().unwrap();
    parent.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(15), || !dir.exists()),
        "{} left behind",
        dir.display()
    );
    assert!(eventually(Duration::from_secs(5), || refuses_connections(
        &endpoint
    )));
}

#[test]
fn a_weed_that_exits_fails_fast_with_its_log() {
    let dir = std::env::temp_dir().join(format!("ferry-fake-weed-{}", &unique_hex()[..12]));
    std::fs::create_dir(&dir).unwrap();
    let fake = dir.join("weed");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'fake weed: cannot bind' >&2\nexit 3\n",
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let started = Instant::now();
    let error = SeaweedFs::start_watched(&fake, std::process::id()).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        error.to_string().contains("fake weed: cannot bind"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn prefixes_are_unique() {
    let a = SeaweedFs::unique_prefix("t");
    assert!(a.starts_with("t-") && a.len() == 18, "{a}");
    assert_ne!(a, SeaweedFs::unique_prefix("t"));
}
