//! Target 4, [`client_from_server_bytes`]: the client machine after one command, fed hostile
//! server bytes at arbitrary split points, driven by a harness that checks every event against
//! what the client is waiting for.

use crate::fuzzing::checks::{
    StreamChecker, assert_resumes, assert_sticky, assert_tail_of, expects_error_frame, ts,
    zero_unit_checkpoint,
};
use crate::fuzzing::rng::{Rng, content};
use crate::limits::{
    MAGIC, MAX_DATA_CHUNK, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, STREAMED_SINCE,
};
use crate::{
    ClientConnection, ClientEvent, CommandError, Config, Digest, Frame, HASH_UNIT_LEN,
    HashCheckpoint, ProtocolError, SourceTag, Timestamp,
};

/// What the fuzzed client is waiting for.
#[derive(Debug)]
enum Pending {
    Put {
        size: u64,
        file: Vec<u8>,
        streamed: bool,
    },
    Upload {
        file: Vec<u8>,
        pos: usize,
        cancel: bool,
        streamed: bool,
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
        let Some(Pending::Upload {
            file,
            pos,
            cancel,
            streamed,
        }) = self.pending.as_mut()
        else {
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
            let remaining = match streamed {
                true => u64::MAX - *pos as u64,
                false => (file.len() - *pos) as u64,
            };
            assert_eq!(self.conn.upload_remaining(), Some(remaining));
        } else if *cancel {
            self.conn
                .cancel_upload()
                .expect("cancel an upload under way");
            self.pending = None;
            self.next_command();
        } else {
            assert!(
                *streamed || self.conn.send_file_data(b"x").is_err(),
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
                // The second put of a version-3 connection streams (its size told at the end).
                let streamed = command % 8 == 5 && self.conn.version() >= STREAMED_SINCE;
                if streamed {
                    self.conn
                        .put_streamed("fuzz/upload.bin", false)
                        .expect("put while idle");
                } else {
                    self.conn
                        .put(
                            "fuzz/upload.bin",
                            self.upload_size,
                            command.is_multiple_of(2),
                            true,
                            tag,
                        )
                        .expect("put while idle");
                }
                Pending::Put {
                    size: self.upload_size,
                    file,
                    streamed,
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
        if self.conn.version() < 2 {
            assert!(
                matches!(self.conn.list(""), Err(CommandError::WrongState { .. })),
                "two requests at once under version 1"
            );
        }
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
                assert!((MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version));
                self.connected = true;
                self.next_command();
            }
            (
                Some(Pending::Put {
                    size,
                    file,
                    streamed,
                }),
                ClientEvent::PutReady { offset },
            ) => {
                if streamed {
                    assert_eq!(offset, 0, "a streamed upload accepted past byte 0");
                    assert_eq!(self.conn.upload_remaining(), Some(u64::MAX));
                } else {
                    assert!(offset <= size, "PUT_READY offset {offset} past size {size}");
                    assert_eq!(self.conn.upload_remaining(), Some(size - offset));
                }
                self.pending = Some(Pending::Upload {
                    file,
                    pos: offset as usize,
                    cancel: self.cancel,
                    streamed,
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
