//! Seed corpora: valid exchanges for every target (and, for the names, a list of good and
//! hostile names), which `tests/fuzz_corpus.rs` writes into `fuzz/corpus/` and the fuzzers start
//! from.

use crate::fuzzing::rng::content;
use crate::limits::{MAGIC, MAX_NAME_COMPONENT_LEN, MAX_NAME_DEPTH, PROTOCOL_VERSION};
use crate::{Digest, ErrorCode, Frame, HASH_UNIT_LEN, SourceTag};

/// One file of a seed corpus: valid exchanges the fuzzers start from.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The target whose corpus it belongs to.
    pub target: &'static str,
    /// File name in the corpus folder.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

pub(super) fn encode_all(frames: &[Frame<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        frame.encode(&mut out);
    }
    out
}

/// A `DATA` frame with its payload.
fn data_frame(out: &mut Vec<u8>, payload: &[u8]) {
    Frame::Data {
        len: payload.len() as u32,
    }
    .encode(out);
    out.extend_from_slice(payload);
}

/// Client → server: an upload of `file` resumed at `offset` (0 for a new one).
fn upload_frames(name: &str, file: &[u8], offset: usize, resume: bool) -> Vec<u8> {
    let mut out = encode_all(&[Frame::Put {
        name,
        size: file.len() as u64,
        overwrite: true,
        resume,
        eager: false,
        streamed: false,
        tag: SourceTag([9; 16]),
    }]);
    for chunk in file[offset..].chunks(4000) {
        data_frame(&mut out, chunk);
    }
    Frame::Done {
        digest: Digest::of(file),
    }
    .encode(&mut out);
    out
}

/// Client → server: a streamed upload of `file` (version 3) whose `DONE_SIZED` declares
/// `declared` bytes.
fn streamed_frames(name: &str, file: &[u8], declared: u64) -> Vec<u8> {
    let mut out = encode_all(&[Frame::Put {
        name,
        size: 0,
        overwrite: false,
        resume: false,
        eager: false,
        streamed: true,
        tag: SourceTag::default(),
    }]);
    for chunk in file.chunks(3000) {
        data_frame(&mut out, chunk);
    }
    Frame::DoneSized {
        size: declared,
        digest: Digest::of(file),
    }
    .encode(&mut out);
    out
}

/// Server → client: a download of `file` from `offset`.
fn download_frames(file: &[u8], offset: usize) -> Vec<u8> {
    let mut out = encode_all(&[Frame::GetReady {
        size: file.len() as u64,
        offset: offset as u64,
    }]);
    for chunk in file[offset..].chunks(3000) {
        data_frame(&mut out, chunk);
    }
    Frame::Done {
        digest: Digest::of(file),
    }
    .encode(&mut out);
    out
}

pub(super) fn client_handshake(token: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    Frame::Hello {
        min_version: PROTOCOL_VERSION,
        max_version: PROTOCOL_VERSION,
        token,
    }
    .encode(&mut out);
    out
}

/// Seed files for every target, built from valid exchanges (and, for the names, a list of
/// good and hostile names). `tests/fuzz_corpus.rs` writes them into `fuzz/corpus/`.
pub fn seed_corpus() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        seeds.push(Seed {
            target,
            name: format!("seed-{name}"),
            bytes,
        });
    };
    let tag = SourceTag([9; 16]);
    let digest = Digest::of(b"hello");
    let every_frame: Vec<Frame<'_>> = vec![
        Frame::Hello {
            min_version: 1,
            max_version: 1,
            token: b"secret",
        },
        Frame::Welcome { version: 1 },
        Frame::Put {
            name: "a/b.txt",
            size: 5,
            overwrite: true,
            resume: true,
            eager: false,
            streamed: false,
            tag,
        },
        Frame::Get {
            name: "a/b.txt",
            offset: HASH_UNIT_LEN,
        },
        Frame::List { prefix: "a/" },
        Frame::Remove { name: "a/b.txt" },
        Frame::Query { name: "a", tag },
        Frame::Move {
            from: "a/b.txt",
            to: "c/d.txt",
            overwrite: true,
        },
        Frame::PutReady { offset: 0 },
        Frame::GetReady { size: 5, offset: 0 },
        Frame::Entry {
            name: "a/b.txt",
            size: 5,
            modified_ms: 1_700_000_000_000,
        },
        Frame::ListEnd,
        Frame::Ack,
        Frame::QueryReply {
            stored_size: Some(5),
            partial_offset: None,
            stored_digest: Some(digest),
        },
        Frame::Data { len: 5 },
        Frame::Done { digest },
        Frame::DoneSized { size: 5, digest },
        Frame::Cancel,
        Frame::Ping { nonce: 7 },
        Frame::Pong { nonce: 7 },
        Frame::Error {
            code: ErrorCode::NotFound,
            message: "no such file",
        },
    ];
    for frame in &every_frame {
        let mut bytes = encode_all(std::slice::from_ref(frame));
        if let Frame::Data { len } = frame {
            bytes.extend(std::iter::repeat_n(b'd', *len as usize));
        }
        add("decode_frames", &frame.name().to_lowercase(), bytes);
    }

    // Client → server exchanges; each is a seed after the handshake and, with it, from the
    // first byte. The server harness's policy decides from the request fields (see
    // `ServerHarness::on_event`).
    let small = b"hello".to_vec();
    let resumed = content(5, HASH_UNIT_LEN as usize + 10);
    let mut resumed_file = vec![0; HASH_UNIT_LEN as usize];
    resumed_file.extend_from_slice(&resumed[HASH_UNIT_LEN as usize..]);
    let mut cancelled = encode_all(&[Frame::Put {
        name: "c.bin",
        size: 100,
        overwrite: false,
        resume: true,
        eager: false,
        streamed: false,
        tag,
    }]);
    data_frame(&mut cancelled, &[1; 40]);
    Frame::Cancel.encode(&mut cancelled);
    let mut bad_digest = encode_all(&[Frame::Put {
        name: "d.bin",
        size: 3,
        overwrite: false,
        resume: false,
        eager: false,
        streamed: false,
        tag,
    }]);
    data_frame(&mut bad_digest, b"abc");
    Frame::Done { digest }.encode(&mut bad_digest);
    // Size 13: the harness's "disk full" policy aborts it halfway.
    let disk_full = upload_frames("full.bin", &content(3, 13), 0, false);
    let streamed = content(4, 7000);
    let requests: Vec<(&str, Vec<u8>)> = vec![
        ("put", upload_frames("a/b.txt", &small, 0, false)),
        (
            "put-streamed",
            streamed_frames("s.bin", &streamed, streamed.len() as u64),
        ),
        ("put-streamed-empty", streamed_frames("e.bin", &[], 0)),
        // The harness's size limit for streams ends it partway.
        (
            "put-streamed-too-large",
            streamed_frames("l.bin", &content(6, 12_000), 0),
        ),
        ("put-disk-full", disk_full),
        (
            "put-resumed",
            upload_frames("big.bin", &resumed_file, HASH_UNIT_LEN as usize, true),
        ),
        ("put-cancelled", cancelled),
        ("put-bad-digest", bad_digest),
        (
            "get",
            encode_all(&[
                Frame::Get {
                    name: "docs.txt",
                    offset: 0,
                },
                Frame::Ping { nonce: 1 },
            ]),
        ),
        (
            "list",
            encode_all(&[Frame::List { prefix: "docs/" }, Frame::List { prefix: "" }]),
        ),
        (
            "remove",
            encode_all(&[
                Frame::Remove { name: "ab" },
                Frame::Remove { name: "old.bin" },
            ]),
        ),
        ("query", encode_all(&[Frame::Query { name: "a", tag }])),
        (
            "move",
            encode_all(&[
                Frame::Move {
                    from: "ab",
                    to: "cd/ef",
                    overwrite: false,
                },
                Frame::Move {
                    from: "old.bin",
                    to: "new.bin",
                    overwrite: true,
                },
                Frame::Move {
                    from: "a",
                    to: "../b",
                    overwrite: false,
                },
            ]),
        ),
        (
            "bad-names",
            encode_all(&[
                Frame::Put {
                    name: "../x",
                    size: 1,
                    overwrite: false,
                    resume: false,
                    eager: false,
                    streamed: false,
                    tag,
                },
                Frame::List { prefix: "../" },
                Frame::Get {
                    name: "/etc/passwd",
                    offset: 0,
                },
            ]),
        ),
        (
            "ping-and-error",
            encode_all(&[
                Frame::Ping { nonce: 9 },
                Frame::Error {
                    code: ErrorCode::ShuttingDown,
                    message: "bye",
                },
            ]),
        ),
    ];
    let mut everything = Vec::new();
    // A download keeps the server busy, so the session ends with it.
    for (name, bytes) in requests
        .iter()
        .filter(|(n, _)| *n != "get")
        .chain(requests.iter().filter(|(n, _)| *n == "get"))
    {
        if !name.starts_with("ping") && *name != "put-streamed-too-large" {
            everything.extend_from_slice(bytes);
        }
        add("server_after_handshake", name, bytes.clone());
        let mut from_first = client_handshake(b"");
        from_first.extend_from_slice(bytes);
        add("server_from_first_byte", name, from_first);
    }
    add("server_after_handshake", "session", everything.clone());
    let mut session = client_handshake(b"token");
    session.extend_from_slice(&everything);
    add("server_from_first_byte", "session", session);
    add(
        "server_from_first_byte",
        "refused-token",
        client_handshake(b"!bad"),
    );
    let mut old_version = MAGIC.to_vec();
    Frame::Hello {
        min_version: 7,
        max_version: 9,
        token: b"",
    }
    .encode(&mut old_version);
    add("server_from_first_byte", "no-common-version", old_version);
    add(
        "server_from_first_byte",
        "http",
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    );
    let mut client_stream = client_handshake(b"");
    client_stream.extend_from_slice(&encode_all(&[Frame::List { prefix: "" }]));
    add(
        "decode_frames",
        "client-stream",
        client_stream[MAGIC.len()..].to_vec(),
    );

    // Server → client exchanges: control byte, size byte, then the server's stream. The
    // client runs the commands put, get, list, remove, query in turn from the first one.
    let mut welcome = MAGIC.to_vec();
    Frame::Welcome {
        version: PROTOCOL_VERSION,
    }
    .encode(&mut welcome);
    let served = content(11, 5000);
    let mut answers = encode_all(&[Frame::PutReady { offset: 0 }, Frame::Ack]);
    answers.extend_from_slice(&download_frames(&served, 0));
    answers.extend_from_slice(&encode_all(&[
        Frame::Entry {
            name: "fuzz/upload.bin",
            size: 10,
            modified_ms: 1,
        },
        Frame::ListEnd,
        Frame::Ack,
        Frame::QueryReply {
            stored_size: Some(10),
            partial_offset: None,
            stored_digest: None,
        },
        Frame::Pong { nonce: 5 },
        Frame::PutReady { offset: 0 },
        Frame::Ack,
    ]));
    let put_then_all = [&[0x80 | (1 << 3), 10][..], &answers].concat();
    add("client_from_server_bytes", "session", put_then_all);
    let mut explicit = vec![1 << 3, 10];
    explicit.extend_from_slice(&welcome);
    explicit.extend_from_slice(&answers);
    add("client_from_server_bytes", "session-own-welcome", explicit);
    let mut zeros_then = vec![0; HASH_UNIT_LEN as usize];
    zeros_then.extend_from_slice(&served[..100]);
    let resumed_get = [
        &[0x80 | 0x40 | 1, 0][..],
        &download_frames(&zeros_then, HASH_UNIT_LEN as usize),
    ]
    .concat();
    add("client_from_server_bytes", "get-resumed", resumed_get);
    let refusal = encode_all(&[Frame::Error {
        code: ErrorCode::NotFound,
        message: "no such file",
    }]);
    let cancelled = [
        &[0x80 | 0x20 | (2 << 3), 3][..],
        &encode_all(&[Frame::PutReady { offset: 0 }]),
        &refusal,
        &refusal,
    ]
    .concat();
    add("client_from_server_bytes", "put-cancelled", cancelled);
    let refusals: Vec<u8> = [0x80 | 2, 0]
        .into_iter()
        .chain(std::iter::repeat_n(refusal.clone(), 5).flatten())
        .collect();
    add("client_from_server_bytes", "refusals", refusals);
    let fatal = [
        &[0x80 | 3, 0][..],
        &encode_all(&[
            Frame::Ping { nonce: 3 },
            Frame::Ack,
            Frame::Welcome { version: 1 },
        ]),
    ]
    .concat();
    add("client_from_server_bytes", "unexpected-welcome", fatal);
    add("decode_frames", "server-stream", answers);

    for (i, name) in [
        "a",
        "report.pdf",
        "photos/2026/img 001.jpg",
        "ünïcødé/файл",
        ".hidden",
        "../etc/passwd",
        "a/./b",
        "/abs",
        "C:/Windows",
        "a\\b",
        "a\u{0}b",
        "a\u{85}b",
        "a//b",
        "a/",
        "docs/",
        ".ferry-staging/x",
        "...",
        "a:b",
        "cafe\u{301}",
        "caf\u{e9}",
        "a\u{202e}gpj.exe",
        "zero\u{200b}width",
        "line\u{2028}separator",
        ".Ferry-tls/key.pem",
        "ab:c",
        "C:x",
    ]
    .iter()
    .enumerate()
    {
        add("names", &format!("{i:02}"), name.as_bytes().to_vec());
    }
    add(
        "names",
        "deep",
        vec!["d"; MAX_NAME_DEPTH + 1].join("/").into_bytes(),
    );
    add(
        "names",
        "long-component",
        "y".repeat(MAX_NAME_COMPONENT_LEN + 1).into_bytes(),
    );

    seeds
}
