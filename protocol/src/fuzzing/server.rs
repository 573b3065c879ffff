//! Targets 2 and 3, [`server_from_first_byte`] and [`server_after_handshake`]: the server
//! machine fed hostile bytes at arbitrary split points, driven by a harness that models the
//! upload and download under way and checks every event, transmission and error against it.

use crate::fuzzing::checks::{
    StreamChecker, assert_resumes, assert_sticky, assert_tail_of, expects_error_frame, ts,
    zero_unit_checkpoint,
};
use crate::fuzzing::rng::{Rng, content};
use crate::limits::{MAGIC, MAX_DATA_CHUNK, MAX_NAME_LEN, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use crate::{
    CommandError, Config, Digest, ErrorCode, Frame, HASH_UNIT_LEN, HashCheckpoint, ProtocolError,
    ServerConnection, ServerEvent, Timestamp, validate_name, validate_prefix,
};

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

/// The fuzzed server's limit on a streamed upload's size, checked as its bytes arrive.
const STREAM_LIMIT: usize = 10_000;

/// The upload the server is receiving, as the fuzz driver sees it.
struct UploadModel {
    /// The declared size; `u64::MAX` for a streamed upload (its size comes at the end).
    size: u64,
    streamed: bool,
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
                    // The "file size limit" policy for streams, checked as the bytes arrive.
                    if upload.streamed && upload.bytes.len() > STREAM_LIMIT {
                        self.conn
                            .abort(ErrorCode::TooLarge, "past the file size limit");
                        self.closed_with = Some(ErrorCode::TooLarge);
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
                assert!((MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version));
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
                if request.streamed {
                    assert!(!request.resume && !request.eager && request.size == 0);
                    self.conn
                        .accept_put(&HashCheckpoint::start())
                        .expect("accept a streamed PUT");
                    self.upload = Some(UploadModel {
                        size: u64::MAX,
                        streamed: true,
                        bytes: Vec::new(),
                    });
                    return;
                }
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
                    streamed: false,
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
            ServerEvent::MoveRequested { from, to, .. } => {
                assert_eq!(validate_name(&from), Ok(()));
                assert_eq!(validate_name(&to), Ok(()));
                if from.len() % 2 == to.len() % 2 {
                    self.conn.confirm().expect("confirm a MOVE");
                } else {
                    self.conn
                        .refuse(ErrorCode::AlreadyExists, "exists")
                        .expect("refuse a MOVE");
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
                assert!(
                    upload.streamed || size == upload.size,
                    "verified size is not the declared size"
                );
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
                assert!(
                    upload.streamed || upload.bytes.len() as u64 == upload.size,
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
