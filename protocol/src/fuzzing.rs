//! Bodies of the cargo-fuzz targets in `fuzz/` (feature `fuzzing`, also built for tests).
//!
//! Each public function is one target: the files in `fuzz/fuzz_targets/` only call it, and
//! `tests/fuzz_corpus.rs` replays every committed corpus file through it, so this code builds
//! and runs in ordinary `cargo test`. The functions assert invariants and panic when one
//! breaks; "no panic" alone is not the point:
//!
//! - [`decode_frames`]: the codec is incremental (a prefix of a frame is "need more bytes" or
//!   the same error) and decode→encode gives back exactly the bytes consumed.
//! - [`server_from_first_byte`], [`server_after_handshake`], [`client_from_server_bytes`]: one
//!   machine fed hostile bytes at arbitrary split points. Consumed never exceeds the input;
//!   file data is the tail of the consumed bytes and never more than the declared size;
//!   verified digests match an independent BLAKE3 of the bytes handed out; events come only in
//!   states that allow them; everything the machine transmits decodes; errors are sticky.
//! - [`names`]: the name checks accept exactly the names an independent specification accepts,
//!   and an accepted name joined to a root stays under it.
//!
//! The `pair` target, a client against ferryd's real session, runs the server's rules and so
//! lives with them: `ferry_server::fuzzing` (the protocol crate cannot depend on the server).

use std::path::{Component, Path};
use std::sync::OnceLock;

use crate::limits::{
    FRAME_HEADER_LEN, MAGIC, MAX_CONTROL_PAYLOAD, MAX_DATA_CHUNK, MAX_NAME_COMPONENT_LEN,
    MAX_NAME_DEPTH, MAX_NAME_LEN, PROTOCOL_VERSION, RESERVED_PREFIX,
};
use crate::{
    ClientConnection, ClientEvent, CommandError, Config, Digest, ErrorCode, FileHasher, Frame,
    HASH_UNIT_LEN, HashCheckpoint, NameError, ProtocolError, ServerConnection, ServerEvent,
    SourceTag, Timestamp, decode_frame, validate_name, validate_prefix,
};

// ---------------------------------------------------------------------------------------------
// Target 1: the frame decoder
// ---------------------------------------------------------------------------------------------

/// Prefixes of frames up to this length are all checked; longer frames are sampled.
const ALL_PREFIXES_UP_TO: usize = 64;

/// Decodes `data` as a stream of frames (skipping `DATA` payloads) and checks each result.
pub fn decode_frames(data: &[u8]) {
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let result = decode_frame(rest);
        match &result {
            Ok(None) => {
                // "Need more bytes" must be stable: no prefix is an error either.
                check_prefixes(rest, rest.len(), &result);
                break;
            }
            Err(_) => {
                // The error is decided by the bytes up to some point; every prefix either
                // needs more bytes or already gives that same error.
                check_prefixes(rest, rest.len(), &result);
                break;
            }
            Ok(Some((frame, consumed))) => {
                let consumed = *consumed;
                assert!(
                    consumed >= FRAME_HEADER_LEN && consumed <= rest.len(),
                    "consumed {consumed} of {}",
                    rest.len()
                );
                let mut encoded = Vec::new();
                frame.encode(&mut encoded);
                assert_eq!(
                    encoded,
                    rest[..consumed],
                    "decode→encode changed the bytes of {frame:?}"
                );
                check_prefixes(rest, consumed, &Ok(None));
                // The frame is decided by its own bytes: nothing after it changes the result.
                assert_eq!(
                    decode_frame(&rest[..consumed]),
                    result,
                    "frame depends on bytes after it"
                );
                let step = match frame {
                    Frame::Data { len } => {
                        let len = *len as usize;
                        assert!(
                            (1..=MAX_DATA_CHUNK).contains(&len),
                            "DATA length {len} out of range"
                        );
                        consumed + len
                    }
                    _ => {
                        assert!(consumed - FRAME_HEADER_LEN <= MAX_CONTROL_PAYLOAD);
                        consumed
                    }
                };
                pos += step.min(rest.len());
            }
        }
    }
}

/// Every prefix of `bytes[..end]` (sampled for long frames) decodes to `Ok(None)` or to
/// `full`, if `full` is an error.
fn check_prefixes(
    bytes: &[u8],
    end: usize,
    full: &Result<Option<(Frame<'_>, usize)>, crate::DecodeError>,
) {
    let check = |cut: usize| {
        let got = decode_frame(&bytes[..cut]);
        let ok = match (&got, full) {
            (Ok(None), _) => true,
            (Err(a), Err(b)) => a == b,
            _ => false,
        };
        assert!(
            ok,
            "prefix of {cut} bytes decodes to {got:?}, the whole to {full:?}"
        );
    };
    if end <= ALL_PREFIXES_UP_TO {
        (0..end).for_each(check);
    } else {
        (0..FRAME_HEADER_LEN + 2)
            .chain((1..16).map(|i| end * i / 16))
            .chain([end - 1])
            .for_each(check);
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// A small deterministic generator (splitmix64), seeded from the input so runs reproduce.
struct Rng(u64);

impl Rng {
    fn from_bytes(data: &[u8]) -> Self {
        // FNV-1a: any change of the input changes the split points.
        let seed = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// A piece length in `1..=left`, mostly small, sometimes everything.
    fn piece(&mut self, left: usize) -> usize {
        let left = left.max(1);
        let len = match self.below(4) {
            0 => 1,
            1 => 1 + self.below(8) as usize,
            2 => 1 + self.below(256) as usize,
            _ => left,
        };
        len.min(left)
    }
}

/// Bytes of a made-up file: a pattern that depends on `seed`.
fn content(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(31)
                .wrapping_add(seed.wrapping_mul(7))
                .wrapping_add((i >> 8) as u64) as u8
        })
        .collect()
}

/// The checkpoint after one unit of zero bytes: a resumed transfer whose first unit is zeros.
fn zero_unit_checkpoint() -> &'static HashCheckpoint {
    static CHECKPOINT: OnceLock<HashCheckpoint> = OnceLock::new();
    CHECKPOINT.get_or_init(|| {
        // One byte past the unit, so that the hasher folds it into its checkpoint.
        let checkpoint = checkpoint_of(&vec![0; HASH_UNIT_LEN as usize + 1]);
        assert_eq!(checkpoint.offset(), HASH_UNIT_LEN);
        checkpoint
    })
}

/// The checkpoint a receiver holding `bytes` (from offset 0) resumes from.
fn checkpoint_of(bytes: &[u8]) -> HashCheckpoint {
    let mut hasher = FileHasher::new();
    hasher.update(bytes);
    hasher.checkpoint()
}

/// A receiver holding `bytes` (from offset 0) can resume hashing from `checkpoint`: it is at
/// a unit boundary within the bytes, and hashing the rest from there gives BLAKE3 of them all.
fn assert_resumes(checkpoint: &HashCheckpoint, bytes: &[u8]) {
    let offset = checkpoint.offset();
    assert!(
        offset <= bytes.len() as u64 && offset.is_multiple_of(HASH_UNIT_LEN),
        "checkpoint at {offset} for {} bytes",
        bytes.len()
    );
    if offset == bytes.len() as u64 && offset > 0 {
        // Resumed at the very end: see `FileHasher::finalize` (not always computable).
        return;
    }
    let mut hasher = FileHasher::resume(checkpoint);
    hasher.update(&bytes[offset as usize..]);
    assert_eq!(
        hasher.finalize(),
        Digest::of(bytes),
        "resuming from the checkpoint gives another digest"
    );
}

fn ts(micros: u64) -> Timestamp {
    Timestamp::from_micros(micros)
}

/// `part` is exactly the `part.len()` bytes of `whole` that end at `whole[end]`.
fn assert_tail_of(part: &[u8], whole: &[u8], end: usize) {
    if part.is_empty() {
        return;
    }
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    assert!(
        start <= whole.len() && start + part.len() == end,
        "file data is not the tail of the consumed input (starts at {start}, {} bytes, consumed {end})",
        part.len()
    );
}

/// The ERROR frame `error` queues for the peer, if it queues one.
fn expects_error_frame(error: &ProtocolError) -> bool {
    !matches!(
        error,
        ProtocolError::Peer { .. } | ProtocolError::UnexpectedEof { .. }
    )
}

/// Follows everything one machine transmits (its magic, frames, and the file data its driver
/// writes after `DATA` headers) and fails on anything that does not decode.
#[derive(Default)]
struct StreamChecker {
    buf: Vec<u8>,
    magic_seen: usize,
    data_left: usize,
    last_error: Option<ErrorCode>,
    frames: usize,
}

impl StreamChecker {
    fn feed(&mut self, mut bytes: &[u8]) {
        if self.magic_seen < MAGIC.len() {
            let n = (MAGIC.len() - self.magic_seen).min(bytes.len());
            assert_eq!(
                bytes[..n],
                MAGIC[self.magic_seen..self.magic_seen + n],
                "stream does not start with the magic"
            );
            self.magic_seen += n;
            bytes = &bytes[n..];
        }
        self.buf.extend_from_slice(bytes);
        let mut pos = 0;
        loop {
            if self.data_left > 0 {
                let n = self.data_left.min(self.buf.len() - pos);
                if n == 0 {
                    break;
                }
                self.data_left -= n;
                pos += n;
                continue;
            }
            match decode_frame(&self.buf[pos..]) {
                Ok(Some((frame, used))) => {
                    self.frames += 1;
                    self.last_error = match frame {
                        Frame::Error { code, .. } => Some(code),
                        _ => None,
                    };
                    if let Frame::Data { len } = frame {
                        self.data_left = len as usize;
                    }
                    pos += used;
                }
                Ok(None) => break,
                Err(error) => panic!("the machine transmitted a malformed frame: {error}"),
            }
        }
        self.buf.drain(..pos);
    }

    /// Everything sent so far ends on a frame boundary.
    fn assert_complete(&self) {
        assert!(
            self.buf.is_empty() && self.data_left == 0,
            "transmitted stream ends inside a frame"
        );
    }
}

/// Checks the sticky-error contract on any machine: the same error from every later call, and
/// the ERROR frame that tells the peer why as the last thing transmitted.
fn assert_sticky<T>(error: &ProtocolError, again: Result<T, ProtocolError>, what: &str) {
    match again {
        Err(e) => assert_eq!(
            &e, error,
            "{what} after an error returned a different error"
        ),
        Ok(_) => panic!("{what} after the error {error:?} succeeded"),
    }
}

// ---------------------------------------------------------------------------------------------
// Targets 2 and 3: the server fed hostile bytes
// ---------------------------------------------------------------------------------------------

/// The server machine fed `data` from its very first byte.
pub fn server_from_first_byte(data: &[u8]) {
    run_server(data, Rng::from_bytes(data));
}

/// The server machine fed the magic and a valid `HELLO`, then `data`: the fuzzer starts in
/// the request and transfer states.
pub fn server_after_handshake(data: &[u8]) {
    let mut input = MAGIC.to_vec();
    Frame::Hello {
        min_version: PROTOCOL_VERSION,
        max_version: PROTOCOL_VERSION,
        token: b"",
    }
    .encode(&mut input);
    input.extend_from_slice(data);
    run_server(&input, Rng::from_bytes(data));
}

/// The upload the server is receiving, as the fuzz driver sees it.
struct UploadModel {
    size: u64,
    /// File bytes from offset 0: the resumed prefix, then every `file_data` handed out.
    bytes: Vec<u8>,
}

/// The download the server is sending.
struct DownloadModel {
    file: Vec<u8>,
    pos: usize,
}

/// Size of the file a fuzzed server pretends to hold under `name`.
fn served_file(name: &str) -> Vec<u8> {
    let seed = name
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b)));
    let len = match seed % 4 {
        0 => 0,
        1 => (seed % 97) as usize,
        2 => (seed % 5000) as usize,
        _ => HASH_UNIT_LEN as usize + (seed % 3000) as usize,
    };
    content(seed, len)
}

struct ServerHarness {
    conn: ServerConnection,
    rng: Rng,
    now: u64,
    out: StreamChecker,
    upload: Option<UploadModel>,
    download: Option<DownloadModel>,
    /// The code of the ERROR with which the driver closed the connection, if it did.
    closed_with: Option<ErrorCode>,
}

fn run_server(input: &[u8], rng: Rng) {
    let mut h = ServerHarness {
        conn: ServerConnection::new(Config::default(), Timestamp::ZERO),
        rng,
        now: 0,
        out: StreamChecker::default(),
        upload: None,
        download: None,
        closed_with: None,
    };
    let error = h.feed_all(input);
    let error = match error {
        Some(error) => Some(error),
        None => {
            while h.download.is_some() && !h.conn.is_closed() {
                h.send_download_chunk();
            }
            h.flush();
            h.conn.handle_eof(ts(h.now)).err()
        }
    };
    h.flush();
    if let Some(error) = error {
        h.check_failed(&error);
    }
    if let Some(code) = h.closed_with {
        // The driver closed the connection: its ERROR went out last, and nothing more happens.
        assert!(h.conn.is_closed());
        assert_eq!(
            h.out.last_error,
            Some(code),
            "the driver's ERROR was not sent last"
        );
        let again = h.conn.handle_input(ts(h.now + 1), b"\x01");
        assert!(
            matches!(again, Ok(crate::Received { consumed: 0, .. })),
            "{again:?}"
        );
        assert!(h.conn.poll_event().is_none());
    }
    if let Some(upload) = &h.upload {
        // An upload that ended unfinished stays resumable from the machine's checkpoint.
        let checkpoint = h
            .conn
            .upload_checkpoint()
            .expect("an unfinished upload keeps its checkpoint");
        assert_resumes(&checkpoint, &upload.bytes);
    }
}

impl ServerHarness {
    /// Feeds `input` in pieces; returns the error that ended the connection, if one did.
    fn feed_all(&mut self, input: &[u8]) -> Option<ProtocolError> {
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        while fed < input.len() {
            let n = self.rng.piece(input.len() - fed);
            buf.extend_from_slice(&input[fed..fed + n]);
            fed += n;
            self.now += self.rng.below(50_000);
            if self.rng.one_in(256) {
                // A long silence, past some or all timeouts.
                self.now += 5_000_000 + self.rng.below(70_000_000);
            }
            if let Err(error) = self.tick() {
                return Some(error);
            }
            let mut start = 0;
            // Each round consumes a byte or yields an event (whose frame consumed bytes).
            let mut rounds = 0;
            loop {
                rounds += 1;
                assert!(rounds <= buf.len() + 2, "handle_input made no progress");
                let received = match self.conn.handle_input(ts(self.now), &buf[start..]) {
                    Ok(received) => received,
                    Err(error) => return Some(error),
                };
                let offered = buf.len() - start;
                assert!(
                    received.consumed <= offered,
                    "consumed {} of {offered}",
                    received.consumed
                );
                assert_tail_of(received.file_data, &buf[start..], received.consumed);
                if !received.file_data.is_empty() {
                    let upload = self.upload.as_mut().expect("file data outside an upload");
                    upload.bytes.extend_from_slice(received.file_data);
                    assert!(
                        upload.bytes.len() as u64 <= upload.size,
                        "more file data than declared"
                    );
                    if let Some(checkpoint) = self.conn.upload_checkpoint() {
                        assert!(
                            checkpoint.offset() <= upload.bytes.len() as u64,
                            "checkpoint ahead of data"
                        );
                    }
                    // The "disk fills up" policy: abort mid-upload, keeping it resumable.
                    if upload.size % 7 == 6 && upload.bytes.len() as u64 > upload.size / 2 {
                        self.conn.abort(ErrorCode::DiskFull, "disk full");
                        self.closed_with = Some(ErrorCode::DiskFull);
                        self.flush();
                        return None;
                    }
                }
                start += received.consumed;
                let events = self.drain_events();
                if received.consumed == 0 && events == 0 {
                    break;
                }
            }
            buf.drain(..start);
            self.send_download_chunk();
            self.flush();
        }
        None
    }

    /// Calls `handle_timeout` when a deadline has passed.
    fn tick(&mut self) -> Result<(), ProtocolError> {
        match self.conn.poll_timeout() {
            Some(deadline) if deadline <= ts(self.now) => {
                let result = self.conn.handle_timeout(ts(self.now));
                // A past deadline either times out, or (after this side sent something) starts
                // the wait now, moving the deadline into the future.
                let started_wait = result.is_ok()
                    && self
                        .conn
                        .poll_timeout()
                        .is_none_or(|next| next > ts(self.now));
                assert!(
                    matches!(result, Err(ProtocolError::Timeout { .. })) || started_wait,
                    "deadline passed but {result:?}"
                );
                result
            }
            Some(_) => {
                let result = self.conn.handle_timeout(ts(self.now));
                assert_eq!(result, Ok(()), "timeout before the deadline");
                result
            }
            None => Ok(()),
        }
    }

    fn flush(&mut self) {
        let mut bytes = Vec::new();
        let n = self.conn.poll_transmit(&mut bytes);
        assert_eq!(n, bytes.len());
        self.out.feed(&bytes);
    }

    fn send_download_chunk(&mut self) {
        let Some(download) = self.download.as_mut() else {
            return;
        };
        let left = download.file.len() - download.pos;
        if left > 0 {
            let n = self.rng.piece(left).min(MAX_DATA_CHUNK);
            let chunk = &download.file[download.pos..download.pos + n];
            self.conn
                .send_file_data(chunk)
                .expect("a chunk within the file is accepted");
            download.pos += n;
            let mut header = Vec::new();
            let _ = self.conn.poll_transmit(&mut header);
            self.out.feed(&header);
            self.out.feed(chunk);
            assert_eq!(
                self.conn.download_remaining(),
                Some((download.file.len() - download.pos) as u64)
            );
        } else {
            assert_eq!(
                self.conn.send_file_data(b"x"),
                Err(CommandError::TooMuchData {
                    given: 1,
                    allowed: 0
                }),
                "a byte past the end of the download was accepted"
            );
            self.conn
                .finish_download(Digest::of(&download.file))
                .expect("finishing a fully sent download");
            self.download = None;
        }
    }

    /// Answers every queued event with a simple policy that uses the request's own fields.
    fn drain_events(&mut self) -> usize {
        let mut count = 0;
        while let Some(event) = self.conn.poll_event() {
            count += 1;
            assert!(
                self.closed_with.is_none(),
                "event {event:?} after the driver closed the connection"
            );
            self.on_event(event);
        }
        count
    }

    fn on_event(&mut self, event: ServerEvent) {
        let busy = self.upload.is_some() || self.download.is_some();
        match event {
            ServerEvent::ClientHello { version, token } => {
                assert_eq!(version, PROTOCOL_VERSION);
                if token.first() == Some(&b'!') {
                    self.conn
                        .refuse_connection(ErrorCode::NotAuthorised, "bad token")
                        .expect("refuse after HELLO");
                    self.closed_with = Some(ErrorCode::NotAuthorised);
                    assert!(self.conn.is_closed());
                } else {
                    self.conn.accept_client().expect("accept after HELLO");
                }
            }
            ServerEvent::PutRequested(request) => {
                assert!(!busy, "PUT during a transfer");
                assert_eq!(
                    validate_name(&request.name),
                    Ok(()),
                    "unvalidated name reached the driver"
                );
                if request.size % 5 == 4 {
                    self.conn
                        .refuse(ErrorCode::TooLarge, "too large")
                        .expect("refuse a PUT");
                    return;
                }
                let (checkpoint, prefix) = if request.resume && request.size >= HASH_UNIT_LEN {
                    (
                        zero_unit_checkpoint().clone(),
                        vec![0; HASH_UNIT_LEN as usize],
                    )
                } else {
                    (HashCheckpoint::start(), Vec::new())
                };
                self.conn
                    .accept_put(&checkpoint)
                    .expect("accept a PUT within its size");
                self.upload = Some(UploadModel {
                    size: request.size,
                    bytes: prefix,
                });
            }
            ServerEvent::GetRequested { name, offset } => {
                assert!(!busy, "GET during a transfer");
                assert_eq!(validate_name(&name), Ok(()));
                let file = served_file(&name);
                if name.len() % 4 == 3 {
                    self.conn
                        .refuse(ErrorCode::NotFound, "no such file")
                        .expect("refuse a GET");
                } else if offset > file.len() as u64 {
                    assert!(matches!(
                        self.conn.accept_get(file.len() as u64),
                        Err(CommandError::TooMuchData { .. })
                    ));
                    self.conn
                        .refuse(ErrorCode::NotFound, "offset past the end")
                        .expect("refuse a GET");
                } else {
                    self.conn
                        .accept_get(file.len() as u64)
                        .expect("accept a GET within the file");
                    self.download = Some(DownloadModel {
                        pos: offset as usize,
                        file,
                    });
                }
            }
            ServerEvent::ListRequested { prefix } => {
                assert_eq!(validate_prefix(&prefix), Ok(()));
                if prefix.len() % 5 == 4 {
                    self.conn
                        .refuse(ErrorCode::Forbidden, "no listing")
                        .expect("refuse a LIST");
                    return;
                }
                for i in 0..prefix.len() % 4 {
                    let name = format!("{prefix}{i}");
                    let result = self
                        .conn
                        .send_list_entry(&name, i as u64, 1_700_000_000_000);
                    if name.len() > MAX_NAME_LEN {
                        assert!(matches!(result, Err(CommandError::TooLong { .. })));
                    } else {
                        result.expect("send a listing entry");
                    }
                }
                self.conn.finish_list().expect("finish a listing");
            }
            ServerEvent::RemoveRequested { name } => {
                assert_eq!(validate_name(&name), Ok(()));
                if name.len() % 2 == 0 {
                    self.conn.confirm().expect("confirm a REMOVE");
                } else {
                    self.conn
                        .refuse(ErrorCode::NotFound, "no such file")
                        .expect("refuse a REMOVE");
                }
            }
            ServerEvent::QueryRequested { name, tag } => {
                assert_eq!(validate_name(&name), Ok(()));
                let partial = (tag.0[0] % 2 == 1).then_some(HASH_UNIT_LEN);
                let stored = (name.len() % 2 == 0).then_some(name.len() as u64);
                let digest = stored.map(|_| Digest([tag.0[1]; 32]));
                self.conn
                    .reply_query(stored, digest, partial)
                    .expect("answer a QUERY");
            }
            ServerEvent::UploadVerified { digest, size } => {
                let upload = self
                    .upload
                    .take()
                    .expect("UploadVerified without an upload");
                assert_eq!(size, upload.size, "verified size is not the declared size");
                assert_eq!(
                    upload.bytes.len() as u64,
                    size,
                    "verified size is not the bytes handed out"
                );
                assert_eq!(
                    digest,
                    Digest::of(&upload.bytes),
                    "verified digest is not BLAKE3 of the data"
                );
                if digest.0[0] % 4 == 0 {
                    self.conn
                        .refuse(ErrorCode::StorageError, "disk trouble")
                        .expect("refuse a commit");
                } else {
                    self.conn.confirm().expect("confirm a commit");
                }
            }
            ServerEvent::UploadRejected { error } => {
                let upload = self
                    .upload
                    .take()
                    .expect("UploadRejected without an upload");
                assert_eq!(
                    upload.bytes.len() as u64,
                    upload.size,
                    "rejected before every byte arrived"
                );
                match error {
                    ProtocolError::DigestMismatch { actual, expected } => {
                        assert_ne!(actual, expected);
                        assert_eq!(
                            actual,
                            Digest::of(&upload.bytes),
                            "reported digest is not BLAKE3 of the data"
                        );
                    }
                    other => panic!("upload rejected for {other:?}"),
                }
            }
            ServerEvent::UploadCancelled {
                received,
                checkpoint,
            } => {
                let upload = self
                    .upload
                    .take()
                    .expect("UploadCancelled without an upload");
                assert_eq!(
                    received,
                    upload.bytes.len() as u64,
                    "cancelled upload miscounted its bytes"
                );
                assert_resumes(&checkpoint, &upload.bytes);
            }
            ServerEvent::RequestRefused { code, message } => {
                assert_eq!(code, ErrorCode::BadName);
                assert!(!message.is_empty());
            }
        }
    }

    fn check_failed(&mut self, error: &ProtocolError) {
        assert!(self.conn.is_closed(), "failed but not closed");
        assert_eq!(self.conn.error(), Some(error));
        assert_eq!(
            self.conn.poll_timeout(),
            None,
            "a closed connection asks for a timeout"
        );
        assert_sticky(
            error,
            self.conn.handle_input(ts(self.now + 1), b"\x01"),
            "handle_input",
        );
        assert_sticky(
            error,
            self.conn.handle_timeout(ts(self.now + 100_000_000)),
            "handle_timeout",
        );
        assert_sticky(error, self.conn.handle_eof(ts(self.now + 2)), "handle_eof");
        assert!(self.conn.poll_event().is_none(), "events after the error");
        self.flush();
        self.out.assert_complete();
        if expects_error_frame(error) && self.closed_with.is_none() {
            assert_eq!(
                self.out.last_error,
                Some(error.code()),
                "no ERROR frame for {error:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Target 4: the client fed hostile server bytes
// ---------------------------------------------------------------------------------------------

/// What the fuzzed client is waiting for.
#[derive(Debug)]
enum Pending {
    Put {
        size: u64,
        file: Vec<u8>,
    },
    Upload {
        file: Vec<u8>,
        pos: usize,
        cancel: bool,
    },
    PutStored,
    Get {
        checkpoint_offset: u64,
    },
    Download {
        size: u64,
        bytes: Vec<u8>,
    },
    List,
    Remove,
    Query,
}

/// The client machine after one command, fed server bytes.
///
/// `data[0]`: bits 0–2 the first command (put, get, list, remove, query, then ping+put...), bits
/// 3–4 the upload size class, bit 5 cancel the upload after one chunk, bit 6 resume a download
/// after one unit of zeros, bit 7 prepend the server's magic and `WELCOME`. `data[1]`: the size.
/// The rest is the server's stream.
pub fn client_from_server_bytes(data: &[u8]) {
    let (control, size_byte, rest) = match data {
        [c, s, rest @ ..] => (*c, *s, rest),
        [c] => (*c, 0, &[][..]),
        [] => (0, 0, &[][..]),
    };
    let mut input = Vec::new();
    if control & 0x80 != 0 {
        input.extend_from_slice(&MAGIC);
        Frame::Welcome {
            version: PROTOCOL_VERSION,
        }
        .encode(&mut input);
    }
    input.extend_from_slice(rest);
    let mut h = ClientHarness {
        conn: ClientConnection::new(Config::default(), Timestamp::ZERO, b"token")
            .expect("short token"),
        rng: Rng::from_bytes(data),
        now: 0,
        out: StreamChecker::default(),
        pending: None,
        connected: false,
        command: u64::from(control & 7),
        upload_size: match (control >> 3) & 3 {
            0 => 0,
            1 => u64::from(size_byte),
            2 => u64::from(size_byte) * 257,
            _ => HASH_UNIT_LEN + u64::from(size_byte),
        },
        cancel: control & 0x20 != 0,
        resume_get: control & 0x40 != 0,
        commands_left: 6,
    };
    h.flush();
    let error = match h.feed_all(&input) {
        Some(error) => Some(error),
        None => {
            while matches!(h.pending, Some(Pending::Upload { .. })) {
                h.send_upload_chunk();
            }
            h.flush();
            let idle = h.conn.is_idle();
            let result = h.conn.handle_eof(ts(h.now));
            assert_eq!(
                result.is_ok(),
                idle,
                "EOF while {:?} gave {result:?}",
                h.pending
            );
            result.err()
        }
    };
    h.flush();
    if let Some(error) = error {
        assert!(h.conn.is_closed());
        assert_eq!(h.conn.error(), Some(&error));
        assert_eq!(h.conn.poll_timeout(), None);
        assert_sticky(
            &error,
            h.conn.handle_input(ts(h.now + 1), b"\x01"),
            "handle_input",
        );
        assert_sticky(
            &error,
            h.conn.handle_timeout(ts(h.now + 100_000_000)),
            "handle_timeout",
        );
        assert_sticky(&error, h.conn.handle_eof(ts(h.now + 2)), "handle_eof");
        assert_eq!(h.conn.ping(1), Err(CommandError::Closed));
        assert!(matches!(h.conn.list(""), Err(CommandError::Closed)));
        h.flush();
        h.out.assert_complete();
        if expects_error_frame(&error) {
            assert_eq!(
                h.out.last_error,
                Some(error.code()),
                "no ERROR frame for {error:?}"
            );
        }
    }
    if let Some(Pending::Download { bytes, .. }) = &h.pending {
        // A download that ended unfinished stays resumable from the machine's checkpoint.
        let checkpoint = h
            .conn
            .download_checkpoint()
            .expect("an unfinished download keeps its checkpoint");
        assert_resumes(&checkpoint, bytes);
    }
}

struct ClientHarness {
    conn: ClientConnection,
    rng: Rng,
    now: u64,
    out: StreamChecker,
    pending: Option<Pending>,
    connected: bool,
    command: u64,
    upload_size: u64,
    cancel: bool,
    resume_get: bool,
    commands_left: u32,
}

impl ClientHarness {
    fn feed_all(&mut self, input: &[u8]) -> Option<ProtocolError> {
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        while fed < input.len() {
            let n = self.rng.piece(input.len() - fed);
            buf.extend_from_slice(&input[fed..fed + n]);
            fed += n;
            self.now += self.rng.below(50_000);
            if self.rng.one_in(256) {
                self.now += 5_000_000 + self.rng.below(70_000_000);
            }
            if let Some(deadline) = self.conn.poll_timeout()
                && deadline <= ts(self.now)
            {
                let result = self.conn.handle_timeout(ts(self.now));
                // A past deadline either times out, or (after this side sent something) starts
                // the wait now, moving the deadline into the future.
                let started_wait = result.is_ok()
                    && self
                        .conn
                        .poll_timeout()
                        .is_none_or(|next| next > ts(self.now));
                assert!(
                    matches!(result, Err(ProtocolError::Timeout { .. })) || started_wait,
                    "deadline passed but {result:?}"
                );
                if let Err(error) = result {
                    return Some(error);
                }
            }
            let mut start = 0;
            let mut rounds = 0;
            loop {
                rounds += 1;
                assert!(rounds <= buf.len() + 2, "handle_input made no progress");
                let received = match self.conn.handle_input(ts(self.now), &buf[start..]) {
                    Ok(received) => received,
                    Err(error) => return Some(error),
                };
                let offered = buf.len() - start;
                assert!(
                    received.consumed <= offered,
                    "consumed {} of {offered}",
                    received.consumed
                );
                assert_tail_of(received.file_data, &buf[start..], received.consumed);
                if !received.file_data.is_empty() {
                    match self.pending.as_mut() {
                        Some(Pending::Download { size, bytes }) => {
                            bytes.extend_from_slice(received.file_data);
                            assert!(bytes.len() as u64 <= *size, "more file data than declared");
                        }
                        other => panic!("file data while {other:?}"),
                    }
                }
                start += received.consumed;
                let events = self.drain_events();
                if received.consumed == 0 && events == 0 {
                    break;
                }
            }
            buf.drain(..start);
            self.send_upload_chunk();
            self.flush();
        }
        None
    }

    fn flush(&mut self) {
        let mut bytes = Vec::new();
        let _ = self.conn.poll_transmit(&mut bytes);
        self.out.feed(&bytes);
    }

    fn send_upload_chunk(&mut self) {
        let Some(Pending::Upload { file, pos, cancel }) = self.pending.as_mut() else {
            return;
        };
        let left = file.len() - *pos;
        if left > 0 && !(*cancel && *pos > 0) {
            let n = self.rng.piece(left).min(MAX_DATA_CHUNK);
            let chunk = &file[*pos..*pos + n];
            self.conn
                .send_file_data(chunk)
                .expect("a chunk within the upload is accepted");
            *pos += n;
            let mut header = Vec::new();
            let _ = self.conn.poll_transmit(&mut header);
            self.out.feed(&header);
            self.out.feed(chunk);
            assert_eq!(
                self.conn.upload_remaining(),
                Some((file.len() - *pos) as u64)
            );
        } else if *cancel {
            self.conn
                .cancel_upload()
                .expect("cancel an upload under way");
            self.pending = None;
            self.next_command();
        } else {
            assert!(
                self.conn.send_file_data(b"x").is_err(),
                "a byte past the end of the upload was accepted"
            );
            self.conn
                .finish_upload(Digest::of(file))
                .expect("finish a fully sent upload");
            self.pending = Some(Pending::PutStored);
        }
    }

    fn next_command(&mut self) {
        assert!(
            self.conn.is_idle(),
            "request finished but the client is not idle"
        );
        if self.commands_left == 0 {
            return;
        }
        self.commands_left -= 1;
        let command = self.command;
        self.command += 1;
        let tag = SourceTag([command as u8; 16]);
        self.pending = Some(match command % 8 {
            0 | 5 => {
                if command % 8 == 5 {
                    self.conn.ping(command).expect("ping while idle");
                }
                let file = content(command, self.upload_size as usize);
                self.conn
                    .put(
                        "fuzz/upload.bin",
                        self.upload_size,
                        command.is_multiple_of(2),
                        true,
                        tag,
                    )
                    .expect("put while idle");
                Pending::Put {
                    size: self.upload_size,
                    file,
                }
            }
            1 | 6 => {
                let checkpoint = if self.resume_get {
                    zero_unit_checkpoint().clone()
                } else {
                    HashCheckpoint::start()
                };
                let checkpoint_offset = checkpoint.offset();
                self.conn
                    .get("fuzz/download.bin", checkpoint)
                    .expect("get while idle");
                Pending::Get { checkpoint_offset }
            }
            2 | 7 => {
                self.conn.list("fuzz/").expect("list while idle");
                Pending::List
            }
            3 => {
                self.conn.remove("fuzz/old.bin").expect("remove while idle");
                Pending::Remove
            }
            _ => {
                self.conn
                    .query("fuzz/upload.bin", tag)
                    .expect("query while idle");
                Pending::Query
            }
        });
        assert!(
            !self.conn.is_idle(),
            "a request was sent but the client is idle"
        );
        assert!(
            matches!(self.conn.list(""), Err(CommandError::WrongState { .. })),
            "two requests at once"
        );
    }

    fn drain_events(&mut self) -> usize {
        let mut count = 0;
        while let Some(event) = self.conn.poll_event() {
            count += 1;
            self.on_event(event);
        }
        count
    }

    fn finish_request(&mut self) {
        self.pending = None;
        self.next_command();
    }

    fn on_event(&mut self, event: ClientEvent) {
        match (self.pending.take(), event) {
            (pending, ClientEvent::Pong { .. }) => self.pending = pending,
            (None, ClientEvent::Connected { version }) if !self.connected => {
                assert_eq!(version, PROTOCOL_VERSION);
                self.connected = true;
                self.next_command();
            }
            (Some(Pending::Put { size, file }), ClientEvent::PutReady { offset }) => {
                assert!(offset <= size, "PUT_READY offset {offset} past size {size}");
                assert_eq!(self.conn.upload_remaining(), Some(size - offset));
                self.pending = Some(Pending::Upload {
                    file,
                    pos: offset as usize,
                    cancel: self.cancel,
                });
                // Send the whole upload now, in chunks of random sizes, so that a server stream
                // with the answer right after PUT_READY is a valid exchange.
                while matches!(self.pending, Some(Pending::Upload { .. })) {
                    self.send_upload_chunk();
                }
            }
            (Some(Pending::PutStored), ClientEvent::PutStored) => self.finish_request(),
            (Some(Pending::Get { checkpoint_offset }), ClientEvent::GetReady { size, offset }) => {
                assert_eq!(
                    offset, checkpoint_offset,
                    "download starts away from the checkpoint"
                );
                assert!(offset <= size);
                self.pending = Some(Pending::Download {
                    size,
                    bytes: vec![0; offset as usize],
                });
            }
            (Some(Pending::Download { size, bytes }), ClientEvent::GetVerified { digest }) => {
                assert_eq!(
                    bytes.len() as u64,
                    size,
                    "download verified before every byte arrived"
                );
                assert_eq!(
                    digest,
                    Digest::of(&bytes),
                    "verified digest is not BLAKE3 of the data"
                );
                self.finish_request();
            }
            (Some(Pending::List), ClientEvent::ListEntry(_)) => self.pending = Some(Pending::List),
            (Some(Pending::List), ClientEvent::ListEnd) => self.finish_request(),
            (Some(Pending::Remove), ClientEvent::Removed) => self.finish_request(),
            (Some(Pending::Query), ClientEvent::QueryReply { .. }) => self.finish_request(),
            (
                Some(
                    Pending::Put { .. }
                    | Pending::PutStored
                    | Pending::Get { .. }
                    | Pending::List
                    | Pending::Remove
                    | Pending::Query,
                ),
                ClientEvent::Refused { .. },
            ) => self.finish_request(),
            (pending, event) => panic!("client event {event:?} while {pending:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Target 5: names
// ---------------------------------------------------------------------------------------------

/// `data` as a name and as a listing prefix (lossily decoded if it is not UTF-8).
pub fn names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_name(&text);
    check_prefix(&text);
    // Also every suffix after a `/`, so deep names get short variants.
    for (i, _) in text.match_indices('/').take(4) {
        check_name(&text[i + 1..]);
    }
}

/// The bidirectional controls PROTOCOL.md §6 lists, written out again for the specification.
const SPEC_BIDI_CONTROLS: [u32; 12] = [
    0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069,
];

/// A character §6 refuses because it cannot be seen or breaks lines: control, bidi control,
/// format (`Cf`), line or paragraph separator.
fn spec_hidden(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_control()
        || SPEC_BIDI_CONTROLS.contains(&u32::from(c))
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// Whether `name` is in NFC, computed the long way (normalise and compare) rather than with the
/// quick check `validate_name` uses.
fn spec_is_nfc(name: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().eq(name.chars())
}

/// An independent reading of PROTOCOL.md §6: why `name` is not acceptable, if it is not.
fn name_violation(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Some("too long");
    }
    if name.chars().any(spec_hidden) {
        return Some("a character that cannot be seen");
    }
    if name.contains('\\') {
        return Some("backslash");
    }
    if !spec_is_nfc(name) {
        return Some("not NFC");
    }
    if name.starts_with('/') {
        return Some("absolute");
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Some("drive prefix");
    }
    let components: Vec<&str> = name.split('/').collect();
    if components.len() > MAX_NAME_DEPTH {
        return Some("too deep");
    }
    if components.iter().any(|c| c.is_empty()) {
        return Some("empty component");
    }
    if components.iter().any(|c| *c == "." || *c == "..") {
        return Some("dot component");
    }
    if components.iter().any(|c| c.len() > MAX_NAME_COMPONENT_LEN) {
        return Some("long component");
    }
    if components[0]
        .to_ascii_lowercase()
        .starts_with(RESERVED_PREFIX)
    {
        return Some("reserved");
    }
    None
}

fn check_name(name: &str) {
    let result = validate_name(name);
    let violation = name_violation(name);
    match (&result, violation) {
        (Ok(()), None) => assert_stays_under_root(name),
        (Err(error), Some(_)) => assert_reason_holds(name, error),
        (Ok(()), Some(why)) => panic!("validate_name accepted {name:?}: {why}"),
        (Err(error), None) => panic!("validate_name refused the acceptable {name:?}: {error}"),
    }
}

fn check_prefix(prefix: &str) {
    let expected = match prefix.strip_suffix('/') {
        _ if prefix.is_empty() => None,
        Some(folder) => name_violation(folder),
        None => name_violation(prefix),
    };
    let result = validate_prefix(prefix);
    assert_eq!(
        result.is_ok(),
        expected.is_none(),
        "validate_prefix({prefix:?}) = {result:?}, spec says {expected:?}"
    );
}

/// An accepted name is a plain relative path: joined to a root it stays below it.
fn assert_stays_under_root(name: &str) {
    let path = Path::new(name);
    let components: Vec<Component<'_>> = path.components().collect();
    assert!(
        components.iter().all(|c| matches!(c, Component::Normal(_))),
        "{name:?} has a non-plain component"
    );
    assert_eq!(
        components.len(),
        name.split('/').count(),
        "{name:?} has hidden components"
    );
    assert!(components.len() <= MAX_NAME_DEPTH);
    let root = Path::new("/srv/ferry-root");
    let joined = root.join(path);
    assert!(joined.starts_with(root), "{name:?} escapes the root");
    assert_eq!(
        joined.components().count(),
        root.components().count() + components.len()
    );
}

/// The reason `validate_name` gives is true of the name.
fn assert_reason_holds(name: &str, error: &NameError) {
    let holds = match error {
        NameError::Empty => name.is_empty(),
        NameError::TooLong { len } => *len == name.len() && name.len() > MAX_NAME_LEN,
        NameError::ComponentTooLong => name.split('/').any(|c| c.len() > MAX_NAME_COMPONENT_LEN),
        NameError::TooDeep => name.split('/').count() > MAX_NAME_DEPTH,
        NameError::Absolute => name.starts_with('/'),
        NameError::DrivePath { drive } => {
            drive.is_ascii_alphabetic() && name.starts_with(*drive) && name[1..].starts_with(':')
        }
        NameError::DotComponent => name.split('/').any(|c| c == "." || c == ".."),
        NameError::EmptyComponent => name.split('/').any(str::is_empty),
        NameError::Backslash => name.contains('\\'),
        NameError::ControlCharacter { code_point } => {
            char::from_u32(*code_point).is_some_and(|c| c.is_control() && name.contains(c))
        }
        NameError::BidiControl { code_point } => {
            SPEC_BIDI_CONTROLS.contains(code_point)
                && char::from_u32(*code_point).is_some_and(|c| name.contains(c))
        }
        NameError::InvisibleCharacter { code_point } | NameError::LineSeparator { code_point } => {
            char::from_u32(*code_point).is_some_and(|c| spec_hidden(c) && name.contains(c))
        }
        NameError::NotNfc { nfc } => !spec_is_nfc(name) && spec_is_nfc(nfc) && nfc != name,
        NameError::Reserved => name
            .get(..RESERVED_PREFIX.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(RESERVED_PREFIX)),
    };
    assert!(
        holds,
        "validate_name({name:?}) gave a reason that does not hold: {error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Seed corpora
// ---------------------------------------------------------------------------------------------

/// The fuzz targets, by the names of their files in `fuzz/fuzz_targets/` and their corpus
/// folders in `fuzz/corpus/`.
pub const TARGETS: [&str; 5] = [
    "decode_frames",
    "server_from_first_byte",
    "server_after_handshake",
    "client_from_server_bytes",
    "names",
];

/// Runs one corpus file through the target named `target` (one of [`TARGETS`]), exactly as
/// its `fuzz_target!` does.
#[cfg(feature = "fuzzing")]
pub fn run_target(target: &str, data: &[u8]) {
    match target {
        "decode_frames" => decode_frames(data),
        "server_from_first_byte" => server_from_first_byte(data),
        "server_after_handshake" => server_after_handshake(data),
        "client_from_server_bytes" => client_from_server_bytes(data),
        "names" => names(data),
        other => panic!("no fuzz target named {other:?}"),
    }
}

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

fn encode_all(frames: &[Frame<'_>]) -> Vec<u8> {
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

fn client_handshake(token: &[u8]) -> Vec<u8> {
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
            tag,
        },
        Frame::Get {
            name: "a/b.txt",
            offset: HASH_UNIT_LEN,
        },
        Frame::List { prefix: "a/" },
        Frame::Remove { name: "a/b.txt" },
        Frame::Query { name: "a", tag },
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
        tag,
    }]);
    data_frame(&mut cancelled, &[1; 40]);
    Frame::Cancel.encode(&mut cancelled);
    let mut bad_digest = encode_all(&[Frame::Put {
        name: "d.bin",
        size: 3,
        overwrite: false,
        resume: false,
        tag,
    }]);
    data_frame(&mut bad_digest, b"abc");
    Frame::Done { digest }.encode(&mut bad_digest);
    // Size 13: the harness's "disk full" policy aborts it halfway.
    let disk_full = upload_frames("full.bin", &content(3, 13), 0, false);
    let requests: Vec<(&str, Vec<u8>)> = vec![
        ("put", upload_frames("a/b.txt", &small, 0, false)),
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
            "bad-names",
            encode_all(&[
                Frame::Put {
                    name: "../x",
                    size: 1,
                    overwrite: false,
                    resume: false,
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
        if !name.starts_with("ping") {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `server_after_handshake`: an upload resumed at its very end (checkpoint offset
    /// equal to the size) panicked in `FileHasher::finalize` when `DONE` came, inside blake3
    /// ("empty subtrees are never valid"). A peer could crash the other side with it.
    #[test]
    fn a_transfer_resumed_at_its_very_end_is_checked_without_panicking() {
        let unit = HASH_UNIT_LEN as usize;
        // Three units (subtrees of 2 and 1): the digest can be computed from the checkpoint.
        // One unit: it cannot, and the upload is rejected instead of accepted unverified.
        for (units, verified) in [(3, true), (1, false)] {
            let zeros = vec![0; units * unit];
            let checkpoint = checkpoint_of(&[&zeros[..], &[0]].concat());
            assert_eq!(checkpoint.offset(), zeros.len() as u64);
            let mut server = ServerConnection::new(Config::default(), Timestamp::ZERO);
            let mut input = client_handshake(b"");
            let _ = server.handle_input(Timestamp::ZERO, &input).unwrap();
            assert!(matches!(
                server.poll_event(),
                Some(ServerEvent::ClientHello { .. })
            ));
            server.accept_client().unwrap();
            input = encode_all(&[Frame::Put {
                name: "f",
                size: zeros.len() as u64,
                overwrite: false,
                resume: true,
                tag: SourceTag::default(),
            }]);
            let _ = server.handle_input(Timestamp::ZERO, &input).unwrap();
            assert!(matches!(
                server.poll_event(),
                Some(ServerEvent::PutRequested(_))
            ));
            server.accept_put(&checkpoint).unwrap();
            input = encode_all(&[Frame::Done {
                digest: Digest::of(&zeros),
            }]);
            let _ = server.handle_input(Timestamp::ZERO, &input).unwrap();
            match server.poll_event() {
                Some(ServerEvent::UploadVerified { digest, .. }) => {
                    assert!(verified, "{units} units");
                    assert_eq!(digest, Digest::of(&zeros));
                }
                Some(ServerEvent::UploadRejected { .. }) => assert!(!verified, "{units} units"),
                other => panic!("{units} units: {other:?}"),
            }
        }
    }

    /// Found by `client_from_server_bytes`: a peer whose first bytes were not the magic failed
    /// the connection in its core only, so the machine's own state stayed open (commands said
    /// "wrong state" instead of "closed", and the server could queue a second ERROR).
    #[test]
    fn a_peer_that_is_not_ferry_closes_the_whole_machine() {
        let mut client = ClientConnection::new(Config::default(), Timestamp::ZERO, b"").unwrap();
        let error = client
            .handle_input(Timestamp::ZERO, b"HTTP/1.1 200 OK")
            .unwrap_err();
        assert_eq!(error, ProtocolError::NotFerry);
        assert_eq!(client.list(""), Err(CommandError::Closed));
        assert!(client.is_closed() && !client.is_idle());

        let mut server = ServerConnection::new(Config::default(), Timestamp::ZERO);
        let error = server
            .handle_input(Timestamp::ZERO, b"GET / HTTP/1.1")
            .unwrap_err();
        assert_eq!(error, ProtocolError::NotFerry);
        let mut sent = Vec::new();
        let _ = server.poll_transmit(&mut sent);
        assert!(server.refuse_connection(ErrorCode::Busy, "busy").is_err());
        assert!(
            !server.wants_transmit(),
            "a second ERROR was queued after the failure"
        );
        let mut checker = StreamChecker::default();
        checker.feed(&sent);
        assert_eq!(checker.last_error, Some(ErrorCode::NotFerry));
        assert_eq!(checker.frames, 1);
    }

    fn hello_put(name: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        Frame::Put {
            name,
            size: data.len() as u64,
            overwrite: false,
            resume: false,
            tag: SourceTag::default(),
        }
        .encode(&mut bytes);
        Frame::Data {
            len: data.len() as u32,
        }
        .encode(&mut bytes);
        bytes.extend_from_slice(data);
        Frame::Done {
            digest: Digest::of(data),
        }
        .encode(&mut bytes);
        bytes
    }

    #[test]
    fn valid_upload_after_handshake_passes_the_server_checks() {
        server_after_handshake(&hello_put("a/b.txt", b"hello"));
    }

    #[test]
    fn garbage_from_the_first_byte_fails_the_server_cleanly() {
        server_from_first_byte(b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn every_frame_of_a_valid_stream_decodes_and_re_encodes() {
        decode_frames(&hello_put("x", b"data"));
    }

    #[test]
    fn hostile_names_are_checked_against_the_spec() {
        for name in [
            "../a", "a/./b", "/abs", "C:x", "ok/name", ".ferry/x", "a\\b", "a\u{85}b",
        ] {
            names(name.as_bytes());
        }
    }
}
