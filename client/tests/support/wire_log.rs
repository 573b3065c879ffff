//! What crosses the wire, decoded as it passes: the requests a client sent and the offsets the
//! server said go ahead from. A relay ([`super::relay`]) feeds it the plaintext bytes it
//! forwards, so a test can check what was asked of a real server without a server of its own.

use std::sync::{Arc, Mutex};

use ferry_protocol::Frame;
use ferry_protocol::limits::MAGIC;

/// Frames seen so far, on every connection of one relay, in the order they passed.
#[derive(Clone, Default)]
pub struct WireLog {
    /// Requests from clients, by kind: "put", "get", "list", "remove", "query".
    requests: Arc<Mutex<Vec<&'static str>>>,
    /// The offset of every `PUT_READY` a server sent.
    put_offsets: Arc<Mutex<Vec<u64>>>,
    /// Queries sent and not answered yet, and the most there were at once.
    queries_in_flight: Arc<Mutex<(u64, u64)>>,
}

impl WireLog {
    /// The requests clients sent, by kind, in order.
    pub fn requests(&self) -> Vec<&'static str> {
        self.requests.lock().unwrap().clone()
    }

    /// The offsets of the `PUT_READY`s servers sent, in order.
    pub fn put_offsets(&self) -> Vec<u64> {
        self.put_offsets.lock().unwrap().clone()
    }

    /// The most queries that had crossed towards the server before their answers came back:
    /// more than one shows them pipelined.
    pub fn most_queries_in_flight(&self) -> u64 {
        self.queries_in_flight.lock().unwrap().1
    }

    /// Notes one frame.
    fn note(&self, frame: &Frame<'_>) {
        {
            let mut queries = self.queries_in_flight.lock().unwrap();
            match frame {
                Frame::Query { .. } => {
                    queries.0 += 1;
                    queries.1 = queries.1.max(queries.0);
                }
                Frame::QueryReply { .. } => queries.0 = queries.0.saturating_sub(1),
                _ => {}
            }
        }
        let request = match frame {
            Frame::Put { .. } => "put",
            Frame::Get { .. } => "get",
            Frame::List { .. } => "list",
            Frame::Remove { .. } => "remove",
            Frame::Query { .. } => "query",
            Frame::PutReady { offset } => {
                self.put_offsets.lock().unwrap().push(*offset);
                return;
            }
            _ => return,
        };
        self.requests.lock().unwrap().push(request);
    }
}

/// Decodes one direction of one connection, a piece at a time: the magic, then frames, with
/// the file data after each `DATA` header skipped.
pub struct StreamReader {
    log: WireLog,
    /// Bytes not decoded yet (an incomplete magic or frame).
    pending: Vec<u8>,
    /// Whether the magic has been passed.
    past_magic: bool,
    /// File data still to skip.
    skip: u64,
    /// Set on bytes that do not decode: nothing more is read.
    broken: bool,
}

impl StreamReader {
    /// A reader of a new stream that notes into `log`.
    pub fn new(log: WireLog) -> StreamReader {
        StreamReader {
            log,
            pending: Vec::new(),
            past_magic: false,
            skip: 0,
            broken: false,
        }
    }

    /// Reads the next piece of the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.broken {
            return;
        }
        self.pending.extend_from_slice(bytes);
        if !self.past_magic {
            if self.pending.len() < MAGIC.len() {
                return;
            }
            if self.pending[..MAGIC.len()] != MAGIC {
                self.broken = true;
                return;
            }
            self.pending.drain(..MAGIC.len());
            self.past_magic = true;
        }
        let mut start = 0;
        loop {
            let skipped = usize::try_from(self.skip)
                .unwrap_or(usize::MAX)
                .min(self.pending.len() - start);
            start += skipped;
            self.skip -= skipped as u64;
            if self.skip > 0 {
                break;
            }
            match ferry_protocol::decode_frame(&self.pending[start..]) {
                Ok(Some((frame, used))) => {
                    if let Frame::Data { len } = frame {
                        self.skip = u64::from(len);
                    }
                    self.log.note(&frame);
                    start += used;
                }
                Ok(None) => break,
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
        }
        self.pending.drain(..start);
    }
}
