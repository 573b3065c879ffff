//! Access tokens end to end: wrong guesses capped per address before any token is checked,
//! and a confined token's errors naming files as its client knows them.

use std::net::IpAddr;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use ferry_protocol::{ClientEvent, ErrorCode, ProtocolError};
use ferry_server::{Rights, Tokens, token_line};

use crate::support::{Client, TestServer, tag};

/// A read-write token for the whole root.
const WRITER: &str = "3f9a0c7e51b2d86e4a1f0b9c7d2e5a83";
/// A read-write token confined to `home/alice`.
const ALICE: &str = "b7e2c94d0a6f1853e9d4a27c6b0f3e18";

/// Attempts from one address checked at once before the cap (the server's per-address burst).
const BURST: usize = 10;
/// Seconds for one spent guess to come back (the server's per-address interval).
const REFILL_SECS: u64 = 2;

const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const ELSEWHERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// A server accepting [`WRITER`] and [`ALICE`], with room for more connections than the test
/// opens, so that only the guess cap can refuse them.
fn server() -> TestServer {
    TestServer::start(|config| {
        let lines = [
            token_line(WRITER, Rights::ReadWrite, None).unwrap(),
            token_line(ALICE, Rights::ReadWrite, Some("home/alice")).unwrap(),
        ];
        config.tokens = Some(Tokens::parse(&lines.join("\n")).unwrap());
        config.max_connections = 200;
    })
}

/// The code and message of a refused handshake.
fn refusal(result: Result<Client, ProtocolError>) -> (ErrorCode, String) {
    match result {
        Err(ProtocolError::Peer { code, message }) => (code, message),
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got a connection"),
    }
}

#[test]
fn parallel_wrong_guesses_from_one_address_are_cut_by_the_cap_while_another_address_gets_in() {
    let server = server();
    let addr = server.addr;
    let attempts = 60;
    let start = Arc::new(Barrier::new(attempts));
    let began = Instant::now();
    let threads: Vec<_> = (0..attempts)
        .map(|_| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                refusal(Client::try_connect_from(addr, HOME, b"wrong guess"))
            })
        })
        .collect();
    let outcomes: Vec<(ErrorCode, String)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let elapsed = began.elapsed();

    let checked = outcomes
        .iter()
        .filter(|(code, _)| *code == ErrorCode::NotAuthorised)
        .count();
    let capped = outcomes
        .iter()
        .filter(|(code, message)| {
            *code == ErrorCode::Busy
                && message
                    .starts_with("too many wrong access tokens from your address; try again in")
        })
        .count();
    assert_eq!(checked + capped, attempts, "{outcomes:#?}");
    // The first burst is checked; after it, one more each refill, however many connect at once.
    let allowed = BURST + usize::try_from(elapsed.as_secs() / REFILL_SECS).unwrap() + 1;
    assert!(
        (BURST..=allowed).contains(&checked),
        "{checked} guesses checked in {elapsed:?}, at most {allowed} allowed"
    );

    // Another address is not locked out: its guesses are checked, its good token accepted.
    let (code, message) = refusal(Client::try_connect_from(addr, ELSEWHERE, b"wrong guess"));
    assert_eq!(code, ErrorCode::NotAuthorised, "{message}");
    let mut writer = Client::try_connect_from(addr, ELSEWHERE, WRITER.as_bytes()).unwrap();
    writer.put_new("after.txt", b"in");
}

#[test]
fn a_confined_tokens_errors_name_its_files_relative_to_its_folder() {
    let server = server();
    let mut alice = Client::try_connect_from(server.addr, HOME, ALICE.as_bytes()).unwrap();

    let (code, message) = alice.get("OWN.TXT").unwrap_err();
    assert_eq!(code, ErrorCode::NotFound);
    assert_eq!(message, r#"no file named "OWN.TXT""#);

    alice.put_new("mine.txt", b"alice's");
    assert!(server.root().join("home/alice/mine.txt").is_file());
    let (_, again) = alice.put("mine.txt", b"alice's", false, true, tag(1));
    match again {
        ClientEvent::Refused { code, message } => {
            assert_eq!(code, ErrorCode::AlreadyExists);
            assert!(!message.contains("home"), "{message}");
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    let (_, through_a_file) = alice.put("mine.txt/x", b"x", false, true, tag(2));
    match through_a_file {
        ClientEvent::Refused { code, message } => {
            assert_eq!(code, ErrorCode::BadName);
            assert!(
                message.starts_with(r#"bad name "mine.txt/x": "#),
                "{message}"
            );
        }
        other => panic!("expected BadName, got {other:?}"),
    }

    match alice.remove("gone.txt") {
        ClientEvent::Refused { code, message } => {
            assert_eq!(code, ErrorCode::NotFound);
            assert_eq!(message, r#"no file named "gone.txt""#);
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}
