//! TLS, certificate trust and access tokens, end to end against an in-process `ferry_server`.

use std::io::Cursor;
use std::time::Duration;

use ferry_client::{
    Client, ClientError, ClientOptions, ErrorCode, Fingerprint, PutOptions, Security, Trust,
};
use ferry_server::{Rights, ServerConfig, TlsIdentity, Tokens, token_line};

use crate::support::cli::{TestServer, ferry_with, fingerprint};
use crate::support::pattern;

/// Patient options: a mismatch must be reported from what the peer sent, never by a timeout.
fn options(security: Security) -> ClientOptions {
    ClientOptions {
        security,
        connect_timeout: Duration::from_secs(120),
        io_timeout: Duration::from_secs(120),
        retries: 0,
        ..ClientOptions::default()
    }
}

fn pinned() -> Security {
    Security::Tls(Trust::Pinned(fingerprint().parse().unwrap()))
}

fn with_token(security: Security, token: &str) -> ClientOptions {
    ClientOptions {
        token: token.as_bytes().to_vec(),
        ..options(security)
    }
}

fn put(client: &mut Client, name: &str, data: &[u8]) -> Result<(), ClientError> {
    client
        .put_from(
            &mut Cursor::new(data),
            data.len() as u64,
            name,
            &PutOptions::default(),
            &mut |_| {},
        )
        .map(|_| ())
}

fn get(client: &mut Client, name: &str) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    client.get_to(name, &mut out, &mut |_| {})?;
    Ok(out)
}

/// A server accepting three tokens: `writer` (read-write), `reader` (read-only) and `alice`
/// (read-write, confined to `home/alice`).
fn server_with_tokens() -> TestServer {
    let lines = [
        token_line("writer", Rights::ReadWrite, None).unwrap(),
        token_line("reader", Rights::ReadOnly, None).unwrap(),
        token_line("alice", Rights::ReadWrite, Some("home/alice")).unwrap(),
    ];
    let tokens = Tokens::parse(&lines.join("\n")).unwrap();
    TestServer::start_with(|config: &mut ServerConfig| config.tokens = Some(tokens))
}

#[test]
fn tls_round_trip_of_a_multi_chunk_file() {
    let server = TestServer::start();
    let mut client = Client::connect(server.addr(), options(pinned())).unwrap();
    let data = pattern(3 * 1024 * 1024 + 17, 41);
    put(&mut client, "big.bin", &data).unwrap();
    assert_eq!(server.stored("big.bin"), data);
    assert_eq!(get(&mut client, "big.bin").unwrap(), data);
    assert_eq!(client.list("").unwrap().len(), 1);
}

#[test]
fn a_server_whose_certificate_is_not_the_pinned_one_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let other = TlsIdentity::load_or_create(&state.path().join("tls")).unwrap();
    let server = TestServer::start_with(|config| config.tls = Some(other.clone()));
    let error = Client::connect(server.addr(), options(pinned())).unwrap_err();
    match &error {
        ClientError::NotPinned { pinned, seen, .. } => {
            assert_eq!(pinned.to_string(), fingerprint());
            assert_eq!(seen.to_string(), other.fingerprint().to_string());
        }
        other => panic!("expected NotPinned, got {other}"),
    }
    assert!(!error.is_transient());
    assert_eq!(error.exit_code(), 3);
}

#[test]
fn the_default_trust_refuses_a_self_signed_certificate() {
    let server = TestServer::start();
    let error = Client::connect(server.addr(), options(Security::default())).unwrap_err();
    assert!(matches!(error, ClientError::Tls { .. }), "{error}");
}

#[test]
fn trust_on_first_use_records_then_accepts_and_a_changed_certificate_is_refused() {
    let server = TestServer::start();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), b"first").unwrap();
    let known = work.path().join(".ferry-config/known_servers");
    let entry = format!("{} {}\n", server.addr(), fingerprint());

    let first = ferry_with(server.addr(), work.path(), &[], &["put", "f"]).ok();
    assert!(
        first.stderr.contains("trusting a new server on first use"),
        "{}",
        first.stderr
    );
    assert_eq!(std::fs::read_to_string(&known).unwrap(), entry);
    let second = ferry_with(server.addr(), work.path(), &[], &["ls"]).ok();
    assert!(!second.stderr.contains("first use"), "{}", second.stderr);
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        entry,
        "a known server is not recorded twice"
    );

    // The same address now shows another certificate than the one recorded.
    let recorded = format!(
        "{} {}\n",
        server.addr(),
        Fingerprint::of(b"the old certificate")
    );
    std::fs::write(&known, &recorded).unwrap();
    let run = ferry_with(server.addr(), work.path(), &[], &["rm", "f"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("has CHANGED"), "{}", run.stderr);
    assert!(run.stderr.contains(&fingerprint()), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        recorded,
        "file untouched"
    );
    assert_eq!(server.stored("f"), b"first", "nothing was sent");
}

#[test]
fn a_plaintext_client_of_a_tls_server_is_told_to_use_tls() {
    let server = TestServer::start();
    let error = Client::connect(server.addr(), options(Security::Insecure)).unwrap_err();
    assert!(matches!(error, ClientError::TlsRequired { .. }), "{error}");
    assert!(error.to_string().contains("requires TLS"), "{error}");
}

#[test]
fn a_tls_client_of_a_plaintext_server_is_told_it_runs_insecure() {
    let server = TestServer::start_with(|config| config.tls = None);
    let error = Client::connect(server.addr(), options(pinned())).unwrap_err();
    assert!(
        matches!(error, ClientError::ServerInsecure { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("--insecure"), "{error}");
    // And the command line says so too, with the connection exit code.
    let work = tempfile::tempdir().unwrap();
    let run = ferry_with(server.addr(), work.path(), &[], &["ls"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("does not speak TLS"), "{}", run.stderr);
}

#[test]
fn wrong_and_missing_tokens_are_not_authorised_and_nothing_is_written() {
    let server = server_with_tokens();
    for token in ["wrong", ""] {
        let error = Client::connect(server.addr(), with_token(pinned(), token)).unwrap_err();
        match &error {
            ClientError::Refused { code, .. } => assert_eq!(*code, ErrorCode::NotAuthorised),
            other => panic!("token {token:?}: expected a refusal, got {other}"),
        }
        assert_eq!(error.exit_code(), 4);
    }
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), b"x").unwrap();
    let pin = fingerprint();
    let run = ferry_with(
        server.addr(),
        work.path(),
        &["--fingerprint", &pin],
        &["put", "f"],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("not authorised"), "{}", run.stderr);
    let root = server.root.path();
    let visible: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with(".ferry"))
        .collect();
    assert!(visible.is_empty(), "{visible:?}");
    // The right token works.
    let run = ferry_with(
        server.addr(),
        work.path(),
        &["--fingerprint", &pin, "--token", "writer"],
        &["put", "f"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.stored("f"), b"x");
}

#[test]
fn a_read_only_token_reads_but_may_not_write_or_remove() {
    let server = server_with_tokens();
    let mut writer = Client::connect(server.addr(), with_token(pinned(), "writer")).unwrap();
    put(&mut writer, "shared.txt", b"hello").unwrap();
    let mut reader = Client::connect(server.addr(), with_token(pinned(), "reader")).unwrap();
    assert_eq!(get(&mut reader, "shared.txt").unwrap(), b"hello");
    assert_eq!(reader.list("").unwrap().len(), 1);
    for error in [
        put(&mut reader, "new.txt", b"no").unwrap_err(),
        reader.remove("shared.txt").unwrap_err(),
    ] {
        match &error {
            ClientError::Refused { code, .. } => assert_eq!(*code, ErrorCode::Forbidden),
            other => panic!("expected Forbidden, got {other}"),
        }
    }
    assert!(!server.root.path().join("new.txt").exists());
    assert_eq!(server.stored("shared.txt"), b"hello");
    // The connection stays usable after a refusal.
    assert_eq!(get(&mut reader, "shared.txt").unwrap(), b"hello");
}

#[test]
fn a_confined_token_cannot_reach_outside_its_folder() {
    let server = server_with_tokens();
    let mut writer = Client::connect(server.addr(), with_token(pinned(), "writer")).unwrap();
    put(&mut writer, "top.txt", b"top secret").unwrap();
    put(&mut writer, "home/bob/notes.txt", b"bob's").unwrap();
    put(&mut writer, "home/alice2/x.txt", b"alice2's").unwrap();

    let mut alice = Client::connect(server.addr(), with_token(pinned(), "alice")).unwrap();
    put(&mut alice, "mine.txt", b"alice's").unwrap();
    put(&mut alice, "home/bob/notes.txt", b"alice's own bob folder").unwrap();
    assert_eq!(server.stored("home/alice/mine.txt"), b"alice's");
    assert_eq!(
        server.stored("home/bob/notes.txt"),
        b"bob's",
        "bob's file untouched"
    );

    let names: Vec<String> = alice
        .list("")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["home/bob/notes.txt", "mine.txt"]);
    assert!(alice.list("home/alice").unwrap().is_empty());
    for outside in ["top.txt", "home/alice2/x.txt"] {
        match get(&mut alice, outside).unwrap_err() {
            ClientError::Refused { code, .. } => assert_eq!(code, ErrorCode::NotFound),
            other => panic!("{outside}: expected NotFound, got {other}"),
        }
    }
    assert_eq!(
        get(&mut alice, "home/bob/notes.txt").unwrap(),
        b"alice's own bob folder"
    );
    alice.remove("home/bob/notes.txt").unwrap();
    assert_eq!(server.stored("home/bob/notes.txt"), b"bob's");
    assert!(
        !server
            .root
            .path()
            .join("home/alice/home/bob/notes.txt")
            .exists()
    );
}
