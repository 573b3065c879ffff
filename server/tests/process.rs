//! The `ferryd` binary as a child process: its command line, and `kill -9` mid-upload.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use ferry_protocol::{ClientEvent, HASH_UNIT_LEN};

use crate::support::{Client, data, tag, wait_until};

/// A `ferryd` child process; killed when dropped.
struct Ferryd {
    child: Child,
    addr: SocketAddr,
}

impl Ferryd {
    fn start(root: &Path, extra: &[&str]) -> Ferryd {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferryd"))
            .arg("--root")
            .arg(root)
            .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("ferryd listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Ferryd { child, addr }
    }

    /// SIGKILL: no chance to checkpoint, flush or clean up.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Ferryd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn kill_9_mid_upload_then_restart_shows_nothing_and_the_upload_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let interval = ["--checkpoint-interval", "256KiB"];
    let server = Ferryd::start(&root, &interval);
    let body = data(4 << 20, 1);
    let mut client = Client::connect(server.addr);
    assert_eq!(
        client.put_request("victim", body.len() as u64, false, true, tag(1)),
        ClientEvent::PutReady { offset: 0 }
    );
    let sent = 2 << 20;
    client.send_data(&body[..sent]);
    // Wait until a periodic checkpoint past the first megabyte is durable, then kill.
    let mut observer = Client::connect(server.addr);
    let mut durable = 0;
    wait_until("a durable checkpoint", || {
        durable = observer.query("victim", tag(1)).1.unwrap_or(0);
        durable >= 1 << 20
    });
    server.kill_9();
    drop(client);

    let server = Ferryd::start(&root, &interval);
    let mut client = Client::connect(server.addr);
    assert!(client.names().is_empty(), "no partial file is visible");
    assert!(!root.join("victim").exists());
    let (offset, outcome) = client.put("victim", &body, false, true, tag(1));
    assert!(
        offset >= durable && offset <= sent as u64 && offset % HASH_UNIT_LEN == 0,
        "resumed at {offset}, durable checkpoint was {durable}, {sent} sent"
    );
    assert_eq!(outcome, ClientEvent::PutStored);
    assert_eq!(client.get("victim").unwrap(), body);
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Ferryd::start(&dir.path().join("root"), &["--shutdown-grace", "5s"]);
    let mut client = Client::connect(server.addr);
    client.put_new("kept", b"before the signal");
    let pid = rustix::process::Pid::from_raw(server.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    // The idle client is told why it is being closed, and the server exits cleanly.
    match client.next_event() {
        Err(ferry_protocol::ProtocolError::Peer { code, .. }) => {
            assert_eq!(code, ferry_protocol::ErrorCode::ShuttingDown)
        }
        other => panic!("expected ShuttingDown, got {other:?}"),
    }
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(
        std::fs::read(dir.path().join("root/kept")).unwrap(),
        b"before the signal"
    );
}

#[test]
fn ferryd_with_no_flags_serves_an_upload_in_its_working_folder() {
    let dir = tempfile::tempdir().unwrap();
    // No flags at all except the port (7070 may be taken on a shared machine).
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .current_dir(dir.path())
        .env("FERRY_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let mut client = Client::connect(addr);
    client.put_new("hello.txt", b"hello");
    assert_eq!(
        std::fs::read(dir.path().join("ferry-data/hello.txt")).unwrap(),
        b"hello"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn help_explains_every_flag_and_its_environment_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for (flag, env) in [
        ("--root", "FERRY_ROOT"),
        ("--listen", "FERRY_LISTEN"),
        ("--max-connections", "FERRY_MAX_CONNECTIONS"),
        ("--max-file-size", "FERRY_MAX_FILE_SIZE"),
        ("--quota", "FERRY_QUOTA"),
        ("--idle-timeout", "FERRY_IDLE_TIMEOUT"),
        ("--handshake-timeout", "FERRY_HANDSHAKE_TIMEOUT"),
        ("--staging-max-age", "FERRY_STAGING_MAX_AGE"),
        ("--shutdown-grace", "FERRY_SHUTDOWN_GRACE"),
        ("--log-level", "FERRY_LOG"),
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
        assert!(help.contains(env), "--help lacks {env}");
    }
}
