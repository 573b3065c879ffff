//! The `ferryd` binary as a child process: its command line, and `kill -9` mid-upload.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use ferry_protocol::{ClientEvent, ErrorCode, HASH_UNIT_LEN};

use ferry_testkit::SeaweedFs;

use crate::support::ferryd::{Ferryd, s3_env};
use crate::support::{Client, data, tag, wait_until};

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
fn kill_9_of_a_node_over_s3_mid_upload_then_another_node_resumes_it() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let store = weed.config(&SeaweedFs::unique_prefix("kill-9"));
    let part = ["--s3-part-size", "5MiB"];
    let first = Ferryd::over(&store, &part);
    let second = Ferryd::over(&store, &part);
    let body = data(13 << 20, 2);
    let mut client = Client::connect(first.addr);
    assert_eq!(
        client.put_request("victim", body.len() as u64, false, true, tag(1)),
        ClientEvent::PutReady { offset: 0 }
    );
    client.send_data(&body[..11 << 20]);
    let mut observer = Client::connect(second.addr);
    let mut durable = 0;
    wait_until("two parts in the bucket", || {
        durable = observer.query("victim", tag(1)).1.unwrap_or(0);
        durable >= 10 << 20
    });
    // The node dies holding the name: no release, its lease still fresh.
    first.kill_9();
    drop(client);

    assert!(observer.names().is_empty(), "no partial file is visible");
    // Another client file must wait for the dead node's lease...
    let (_, outcome) = observer.put("victim", &data(10, 3), false, true, tag(2));
    assert!(
        matches!(
            outcome,
            ClientEvent::Refused {
                code: ErrorCode::InProgress,
                ..
            }
        ),
        "{outcome:?}"
    );
    // ...but the same client file reconnecting takes its upload over at once.
    let (offset, outcome) = observer.put("victim", &body, false, true, tag(1));
    assert_eq!(offset, durable, "resumed from the last part");
    assert_eq!(outcome, ClientEvent::PutStored);
    assert_eq!(observer.get("victim").unwrap(), body);
}

#[test]
fn ferryd_with_wrong_object_store_keys_exits_with_an_error_naming_them() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let mut store = weed.config(&SeaweedFs::unique_prefix("wrong-keys"));
    store.secret_key = "wrong".into();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .envs(s3_env(&store))
        .arg("--root")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--insecure"])
        .args(["--store", &format!("s3://{}/x", store.bucket)])
        .args(["--s3-endpoint", &store.endpoint])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("check the access key"), "{stderr}");
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

/// Runs `ferryd` with no flags but the port in `dir`; returns it with its first two lines.
fn ferryd_with_no_flags(dir: &Path) -> (Child, SocketAddr, String) {
    // No flags at all except the port (7070 may be taken on a shared machine).
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .current_dir(dir)
        .env("FERRY_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let addr: SocketAddr = first.trim().rsplit(' ').next().unwrap().parse().unwrap();
    (child, addr, second.trim().to_owned())
}

#[test]
fn ferryd_with_no_flags_serves_tls_with_a_private_key_and_refuses_plaintext_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, second) = ferryd_with_no_flags(dir.path());
    let fingerprint = second
        .strip_prefix("ferryd TLS certificate ")
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"));
    let state = dir.path().join("ferry-data/.ferry-tls");
    let identity = ferry_server::TlsIdentity::load_or_create(&state).unwrap();
    assert!(
        !identity.is_new(),
        "ferryd kept its certificate in {}",
        state.display()
    );
    assert_eq!(identity.fingerprint().to_string(), fingerprint);
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::metadata(state.join(ferry_server::KEY_FILE)).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }
    // A plaintext ferry client is told why, in plaintext, instead of hanging.
    let error = Client::try_connect(addr)
        .err()
        .expect("a plaintext client is refused");
    match error {
        ferry_protocol::ProtocolError::Peer { code, message } => {
            assert_eq!(code, ferry_protocol::ErrorCode::NotAuthorised);
            assert!(message.contains("requires TLS"), "{message}");
        }
        other => panic!("expected the server's refusal, got {other}"),
    }
    let _ = child.kill();
    let _ = child.wait();
    // A restart keeps the certificate, so pinned clients keep working.
    let (mut child, _, again) = ferryd_with_no_flags(dir.path());
    assert_eq!(again, second);
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
        ("--insecure", "FERRY_INSECURE"),
        ("--state-dir", "FERRY_STATE_DIR"),
        ("--tls-cert", "FERRY_TLS_CERT"),
        ("--tls-key", "FERRY_TLS_KEY"),
        ("--tokens", "FERRY_TOKENS"),
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
        assert!(help.contains(env), "--help lacks {env}");
    }
}

/// Runs `ferryd hash-token ARGS` with `stdin` as its standard input.
fn hash_token(args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .arg("hash-token")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn hash_token_prints_a_line_the_tokens_file_accepts() {
    let token = "3f9a0c7e51b2d86e4a1f0b9c7d2e5a83";
    let output = hash_token(
        &["--read-only", "--folder", "photos/alice"],
        format!("{token}\n").as_bytes(),
    );
    assert!(output.status.success(), "{output:?}");
    let line = String::from_utf8(output.stdout).unwrap();
    let expected =
        ferry_server::token_line(token, ferry_server::Rights::ReadOnly, Some("photos/alice"));
    assert_eq!(line.trim(), expected.unwrap());
    assert!(line.ends_with(" ro photos/alice\n"), "{line}");
    assert_eq!(ferry_server::Tokens::parse(&line).unwrap().len(), 1);
}

#[test]
fn hash_token_refuses_a_weak_token_saying_the_entropy_needed() {
    for weak in ["s3cret", "x", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
        let output = hash_token(&[], format!("{weak}\n").as_bytes());
        assert!(!output.status.success(), "{weak:?} was accepted");
        assert!(output.stdout.is_empty(), "{weak:?} got a line");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("at least 128 bits"), "{weak:?}: {stderr}");
        assert!(
            stderr.contains("hash-token --generate"),
            "{weak:?}: {stderr}"
        );
    }
}

#[test]
fn hash_token_generate_shows_the_token_once_and_prints_only_its_line() {
    let output = hash_token(&["--generate", "--folder", "home/alice"], b"");
    assert!(output.status.success(), "{output:?}");
    let line = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let token = stderr.lines().last().unwrap();
    assert_eq!(token.len(), 64, "{stderr}");
    assert!(
        !line.contains(token),
        "the clear token went to the tokens-file line"
    );
    let expected =
        ferry_server::token_line(token, ferry_server::Rights::ReadWrite, Some("home/alice"));
    assert_eq!(line.trim(), expected.unwrap());
}

#[test]
fn ferryd_serves_the_certificate_it_is_given_and_makes_none() {
    let dir = tempfile::tempdir().unwrap();
    let given = dir.path().join("given");
    let identity = ferry_server::TlsIdentity::load_or_create(&given).unwrap();
    let root = dir.path().join("root");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .arg("--root")
        .arg(&root)
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
        .arg("--tls-cert")
        .arg(given.join(ferry_server::CERT_FILE))
        .arg("--tls-key")
        .arg(given.join(ferry_server::KEY_FILE))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        second.trim(),
        format!("ferryd TLS certificate {}", identity.fingerprint())
    );
    assert!(!root.join(ferry_server::DEFAULT_STATE_DIR).exists());
}
