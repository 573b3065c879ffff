//! Seed compatibility: the original Python clients (`seed_client.py`, written to the original
//! protocol with the standard library only) upload through the compatibility listener, and
//! afterwards a native listing shows exactly the files that arrived whole, with their bytes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_protocol::limits::MAX_NAME_LEN;
use ferry_server::SeedCompatConfig;

use crate::support::{Client, PATIENCE, TestServer, data, snapshot, wait_until};

/// One upload by an original client.
struct Job {
    name: String,
    body: Vec<u8>,
    /// Size to declare instead of the body's.
    declare: Option<u64>,
    /// Bytes to send before stopping.
    stop_after: Option<usize>,
    /// `plain`, `trickle` (header in pieces), `close` or `reset` (see `seed_client.py`).
    mode: &'static str,
}

impl Job {
    fn whole(name: &str, body: Vec<u8>) -> Job {
        Job {
            name: name.to_owned(),
            body,
            declare: None,
            stop_after: None,
            mode: "plain",
        }
    }
}

fn seed_server(
    configure: impl FnOnce(&mut ferry_server::ServerConfig),
) -> (TestServer, SocketAddr) {
    let server = TestServer::start(|config| {
        config.seed_compat = Some(SeedCompatConfig::default());
        configure(config);
    });
    let addr = server
        .handle
        .as_ref()
        .and_then(|handle| handle.seed_compat_addr())
        .expect("the seed-compat listener is on");
    (server, addr)
}

/// Runs every job at once in `seed_client.py`; returns each job's outcome.
fn run_original_clients(server: &TestServer, addr: SocketAddr, jobs: &[Job]) -> Vec<String> {
    let work = server.dir.path().join(format!("seed-jobs-{}", rand_tick()));
    std::fs::create_dir_all(&work).unwrap();
    let mut lines = String::new();
    for (i, job) in jobs.iter().enumerate() {
        let path = work.join(format!("{i}.bin"));
        std::fs::write(&path, &job.body).unwrap();
        let opt = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
        lines.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            job.name,
            path.display(),
            opt(job.declare.map(|d| d.to_string())),
            opt(job.stop_after.map(|s| s.to_string())),
            job.mode
        ));
    }
    let jobs_file = work.join("jobs.tsv");
    std::fs::write(&jobs_file, lines).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seed_client.py");
    let output = match Command::new("python3")
        .arg(&script)
        .arg(addr.to_string())
        .arg(&jobs_file)
        .output()
    {
        Ok(output) => output,
        Err(error) => panic!(
            "the seed-compat tests run the original client with `python3`, which could not \
             be started ({error}); install Python 3 (standard library only) to run them"
        ),
    };
    std::fs::remove_dir_all(&work).unwrap();
    assert!(
        output.status.success(),
        "seed_client.py failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let outcomes: Vec<String> = stdout
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let (index, outcome) = line.split_once(' ').unwrap();
            assert_eq!(index, i.to_string(), "outcomes come in job order");
            outcome.to_owned()
        })
        .collect();
    assert_eq!(outcomes.len(), jobs.len(), "one outcome per job:\n{stdout}");
    outcomes
}

/// A few bits that differ between calls in one test run, for unique folder names.
fn rand_tick() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Waits until the server has let go of every upload: nothing staged.
fn wait_for_empty_staging(server: &TestServer) {
    wait_until("the staging area to be empty", || {
        server.staged_files().is_empty()
    });
}

/// The native listing: each listed file downloaded with its digest checked.
fn listed_files(server: &TestServer) -> Vec<(String, Vec<u8>)> {
    listed_by(&mut server.client())
}

fn listed_by(client: &mut Client) -> Vec<(String, Vec<u8>)> {
    let entries = client.list("");
    entries
        .into_iter()
        .map(|entry| {
            let bytes = client
                .get(&entry.name)
                .unwrap_or_else(|refusal| panic!("download of {}: {refusal:?}", entry.name));
            assert_eq!(bytes.len() as u64, entry.size, "{}", entry.name);
            (entry.name, bytes)
        })
        .collect()
}

#[test]
fn original_clients_store_files_that_native_clients_list_and_verify() {
    let (server, addr) = seed_server(|_| {});
    let one = data(300_000, 1);
    let nested = data(5_000, 2);
    let jobs = vec![
        Job::whole("one.bin", one.clone()),
        Job::whole("empty", Vec::new()),
        Job {
            mode: "trickle",
            ..Job::whole("dossier/été/in-pieces.txt", nested.clone())
        },
    ];
    let outcomes = run_original_clients(&server, addr, &jobs);
    assert_eq!(outcomes, ["sent", "sent", "sent"]);
    wait_until("three stored files", || server.client().names().len() == 3);
    assert_eq!(
        listed_files(&server),
        [
            ("dossier/été/in-pieces.txt".to_owned(), nested),
            ("empty".to_owned(), Vec::new()),
            ("one.bin".to_owned(), one),
        ]
    );
    wait_for_empty_staging(&server);
}

#[test]
fn original_clients_upload_into_an_object_store_part_by_part() {
    let Some(weed) = ferry_testkit::SeaweedFs::for_tests() else {
        return;
    };
    let store = weed.config(&ferry_testkit::SeaweedFs::unique_prefix("seed"));
    let (server, addr) = seed_server(|config| {
        config.object_store = Some(store);
        config.s3_part_size = 5 << 20;
    });
    // Larger than a part plus what the store lets wait in memory: only parts cut as the data
    // arrives let it through.
    let big = data(14 << 20, 7);
    let outcomes = run_original_clients(&server, addr, &[Job::whole("big.bin", big.clone())]);
    assert_eq!(outcomes, ["sent"]);
    wait_until("the stored file", || server.client().names().len() == 1);
    assert_eq!(listed_files(&server), [("big.bin".to_owned(), big)]);
}

#[test]
fn client_that_disconnects_halfway_leaves_nothing() {
    let (server, addr) = seed_server(|_| {});
    let body = data(200_000, 3);
    let jobs = vec![
        Job {
            stop_after: Some(100_000),
            mode: "close",
            ..Job::whole("closed-halfway", body.clone())
        },
        Job {
            stop_after: Some(100_000),
            mode: "reset",
            ..Job::whole("reset-halfway", body.clone())
        },
        Job {
            stop_after: Some(0),
            mode: "close",
            ..Job::whole("closed-at-once", body)
        },
    ];
    assert_eq!(
        run_original_clients(&server, addr, &jobs),
        ["sent", "sent", "sent"]
    );
    wait_for_empty_staging(&server);
    assert_eq!(server.client().names(), Vec::<String>::new());
}

#[test]
fn more_bytes_than_declared_is_refused_and_nothing_is_visible() {
    let (server, addr) = seed_server(|_| {});
    let jobs = vec![
        Job {
            declare: Some(1_000),
            ..Job::whole("lies-small", data(50_000, 4))
        },
        Job {
            declare: Some(0),
            ..Job::whole("lies-empty", data(10, 5))
        },
    ];
    for outcome in run_original_clients(&server, addr, &jobs) {
        assert!(outcome == "sent" || outcome == "send-failed", "{outcome}");
    }
    wait_for_empty_staging(&server);
    assert_eq!(server.client().names(), Vec::<String>::new());
}

#[test]
fn hostile_names_are_refused_without_go_ahead_and_nothing_is_written() {
    let (server, addr) = seed_server(|_| {});
    let outside = server.dir.path().to_path_buf();
    let before = snapshot(&outside);
    let names = [
        "../x".to_owned(),
        "a/../../x".to_owned(),
        "/tmp/ferry-seed-escape".to_owned(),
        "/etc/passwd".to_owned(),
        "C:/Windows/evil".to_owned(),
        "a\\..\\b".to_owned(),
        ".ferry-staging/x".to_owned(),
        "trailing/".to_owned(),
        "n".repeat(MAX_NAME_LEN + 1),
    ];
    let jobs: Vec<Job> = names
        .iter()
        .map(|name| Job::whole(name, b"evil".to_vec()))
        .collect();
    let outcomes = run_original_clients(&server, addr, &jobs);
    for (name, outcome) in names.iter().zip(&outcomes) {
        assert_eq!(outcome, "refused", "{name:?}");
    }
    assert_eq!(snapshot(&outside), before);
    assert!(!Path::new("/tmp/ferry-seed-escape").exists());
    assert_eq!(server.client().names(), Vec::<String>::new());
}

#[test]
fn fifty_original_clients_at_once_and_only_the_whole_files_appear() {
    let (server, addr) = seed_server(|_| {});
    let mut jobs: Vec<Job> = (0..50u64)
        .map(|i| {
            let len = if i == 0 {
                0
            } else {
                (i as usize * 7919) % 120_000
            };
            Job::whole(&format!("batch/{i:02}.bin"), data(len, 100 + i))
        })
        .collect();
    let whole: Vec<(String, Vec<u8>)> = jobs
        .iter()
        .map(|j| (j.name.clone(), j.body.clone()))
        .collect();
    // Broken clients at the same moment must leave nothing behind.
    jobs.push(Job {
        stop_after: Some(30_000),
        mode: "close",
        ..Job::whole("broken/halfway", data(60_000, 7))
    });
    jobs.push(Job {
        declare: Some(10),
        ..Job::whole("broken/too-many", data(60_000, 8))
    });
    jobs.push(Job::whole("../broken", data(10, 9)));
    let outcomes = run_original_clients(&server, addr, &jobs);
    assert!(outcomes[..50].iter().all(|o| o == "sent"), "{outcomes:?}");
    assert_eq!(outcomes[52], "refused");
    wait_for_empty_staging(&server);
    wait_until("fifty stored files", || server.client().names().len() >= 50);
    assert_eq!(listed_files(&server), whole);
}

#[test]
fn an_existing_name_is_kept_unless_overwrite_is_on() {
    let (server, addr) = seed_server(|_| {});
    let first = data(1_000, 10);
    assert_eq!(
        run_original_clients(&server, addr, &[Job::whole("keep", first.clone())]),
        ["sent"]
    );
    wait_until("the first version", || server.client().names() == ["keep"]);
    assert_eq!(
        run_original_clients(&server, addr, &[Job::whole("keep", data(2_000, 11))]),
        ["refused"]
    );
    assert_eq!(listed_files(&server), [("keep".to_owned(), first)]);

    let server = server.restart(|config| {
        config.seed_compat = Some(SeedCompatConfig {
            overwrite: true,
            ..SeedCompatConfig::default()
        });
    });
    let addr = server.handle.as_ref().unwrap().seed_compat_addr().unwrap();
    let second = data(2_000, 11);
    assert_eq!(
        run_original_clients(&server, addr, &[Job::whole("keep", second.clone())]),
        ["sent"]
    );
    wait_until("the second version", || {
        server.client().list("")[0].size == 2_000
    });
    assert_eq!(listed_files(&server), [("keep".to_owned(), second)]);
}

#[test]
fn sizes_past_the_limits_are_refused_before_go_ahead() {
    let (server, addr) = seed_server(|config| {
        config.max_file_size = 10_000;
        config.quota = Some(15_000);
    });
    let jobs = vec![
        Job::whole("too-large", data(10_001, 12)),
        Job::whole("fits", data(10_000, 13)),
    ];
    assert_eq!(
        run_original_clients(&server, addr, &jobs),
        ["refused", "sent"]
    );
    wait_until("the file that fits", || server.client().names() == ["fits"]);
    assert_eq!(
        run_original_clients(&server, addr, &[Job::whole("over-quota", data(6_000, 14))]),
        ["refused"]
    );
    assert_eq!(server.client().names(), ["fits"]);
}

#[test]
fn a_header_that_never_completes_is_closed_after_the_handshake_timeout() {
    let (server, addr) = seed_server(|config| {
        config.handshake_timeout = Duration::from_millis(500);
    });
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(&[0, 0, 0]).unwrap();
    let started = Instant::now();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert!(reply.is_empty(), "no `go ahead`: {reply:?}");
    assert!(
        started.elapsed() < PATIENCE,
        "closed by the server, not our timeout"
    );
    assert_eq!(server.client().names(), Vec::<String>::new());
}

#[test]
fn original_clients_share_the_connection_limit() {
    let (server, addr) = seed_server(|config| config.max_connections = 1);
    let native = server.client();
    assert_eq!(
        run_original_clients(&server, addr, &[Job::whole("later", data(100, 15))]),
        ["refused"]
    );
    drop(native);
    // The native connection's seat is free once the server has seen it close.
    wait_until("a free seat", || {
        run_original_clients(&server, addr, &[Job::whole("later", data(100, 15))]) == ["sent"]
    });
    wait_for_empty_staging(&server);
    // The original client's seat is free once its connection thread has ended.
    let mut lister = None;
    wait_until("a free seat for a native listing", || {
        lister = Client::try_connect(server.addr).ok();
        lister.is_some()
    });
    let mut lister = lister.unwrap();
    assert_eq!(
        listed_by(&mut lister),
        [("later".to_owned(), data(100, 15))]
    );
}

#[test]
fn ferryd_with_seed_compat_announces_it_warns_and_stores_uploads() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let log = dir.path().join("ferryd.log");
    // The main port keeps its default (TLS); the compatibility port is plaintext beside it.
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_ferryd"))
            .arg("--root")
            .arg(&root)
            .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
            .args(["--seed-compat", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // Kept open until the end, so a late line from ferryd never meets a closed pipe.
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let prefix = "ferryd seed-compat (plaintext, unauthenticated) listening on ";
    let addr: Option<SocketAddr> = stdout
        .by_ref()
        .lines()
        .take(20)
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix(prefix).map(|a| a.parse().unwrap()));
    let Some(addr) = addr else {
        panic!("ferryd did not announce its seed-compat address");
    };
    let body = data(70_000, 16);
    let server = TestServer::start(|_| {}); // only lends its temporary folder to the jobs
    let outcomes = run_original_clients(&server, addr, &[Job::whole("from-python", body.clone())]);
    let stored = root.join("from-python");
    wait_until("the upload on disk", || {
        std::fs::read(&stored).is_ok_and(|bytes| bytes == body)
    });
    drop(child);
    drop(stdout);
    assert_eq!(outcomes, ["sent"]);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("no encryption, no authentication and no checksum"),
        "{log}"
    );
}

/// A child process killed (and reaped) when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
