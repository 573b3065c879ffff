//! One download over one connection, and what carries over between attempts of the same
//! download.
//!
//! Bytes go to the sink as they arrive. A retry resumes at the machine's last hash checkpoint,
//! which may lie up to two hash units before the bytes already written; the server sends those
//! bytes again, and they are compared with the copy kept in `tail` instead of being written
//! twice, so a sink only ever needs `Write`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ferry_protocol::{ClientEvent, Digest, HASH_UNIT_LEN, HashCheckpoint, ProtocolError};

use crate::error::ClientError;
use crate::link::{Link, unexpected};
use crate::options::Progress;

/// Bytes of the sink's end kept for comparison: a resumed attempt repeats fewer than this.
const TAIL_KEEP: usize = 2 * HASH_UNIT_LEN as usize;

/// A download in progress, across attempts.
pub(crate) struct Download<'a, W: Write> {
    name: &'a str,
    /// Where the sink's bytes end up, for messages.
    path: PathBuf,
    sink: &'a mut W,
    /// Hash state the next attempt starts from.
    checkpoint: HashCheckpoint,
    /// Bytes of the file in the sink, from offset 0.
    written: u64,
    /// The last bytes written: `[written - tail.len(), written)`.
    tail: Tail,
    size: Option<u64>,
    pub(crate) bytes_received: u64,
    pub(crate) resumed_from: u64,
}

impl<'a, W: Write> Download<'a, W> {
    /// A download into `sink`, which already holds the first `checkpoint.offset()` bytes.
    pub(crate) fn new(
        name: &'a str,
        path: PathBuf,
        sink: &'a mut W,
        checkpoint: HashCheckpoint,
    ) -> Self {
        Download {
            name,
            path,
            sink,
            written: checkpoint.offset(),
            checkpoint,
            tail: Tail::default(),
            size: None,
            bytes_received: 0,
            resumed_from: 0,
        }
    }

    /// Size of the file, once the server said.
    pub(crate) fn size(&self) -> u64 {
        self.size.unwrap_or(0)
    }

    /// One attempt; on failure, remembers where the next one can start.
    pub(crate) fn attempt(
        &mut self,
        link: &mut Link,
        attempt: u32,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Digest, ClientError> {
        let mut started = false;
        let result = self.run(link, attempt, progress, &mut started);
        if result.is_err()
            && started
            && let Some(checkpoint) = link.conn.download_checkpoint()
        {
            let earliest = self.written - self.tail.len() as u64;
            if (earliest..=self.written).contains(&checkpoint.offset()) {
                self.checkpoint = checkpoint;
            }
        }
        result
    }

    fn run(
        &mut self,
        link: &mut Link,
        attempt: u32,
        progress: &mut dyn FnMut(Progress),
        started: &mut bool,
    ) -> Result<Digest, ClientError> {
        let offset = self.checkpoint.offset();
        link.conn.get(self.name, self.checkpoint.clone())?;
        link.flush("sending a download request")?;
        let size = match link
            .next_event("waiting for the server to start the download", &mut |_| {
                Ok(())
            })? {
            ClientEvent::GetReady { size, .. } => size,
            ClientEvent::Refused { code, message } => {
                return Err(ClientError::Refused {
                    request: "download",
                    code,
                    message,
                });
            }
            other => return Err(unexpected(&other, "waiting for GET_READY").into()),
        };
        *started = true;
        if self.size.is_some_and(|known| known != size) || size < self.written {
            return Err(self.changed());
        }
        self.size = Some(size);
        self.resumed_from = offset;
        tracing::debug!(name = self.name, offset, size, attempt, "download started");
        progress(Progress {
            done: self.written,
            total: size,
            attempt,
        });
        // Bytes the server sends again that are already in the sink: check, don't write.
        let mut repeat = usize::try_from(self.written - offset).unwrap_or(usize::MAX);
        let event = link.next_event("receiving a download", &mut |mut data: &[u8]| {
            self.bytes_received += data.len() as u64;
            if repeat > 0 {
                let n = repeat.min(data.len());
                if !self.tail.matches(repeat, &data[..n]) {
                    return Err(changed(self.name));
                }
                repeat -= n;
                data = &data[n..];
            }
            if data.is_empty() {
                return Ok(());
            }
            self.sink
                .write_all(data)
                .map_err(|e| write_error(&self.path, e))?;
            self.written += data.len() as u64;
            self.tail.push(data);
            progress(Progress {
                done: self.written,
                total: size,
                attempt,
            });
            Ok(())
        });
        match event {
            Ok(ClientEvent::GetVerified { digest }) => {
                self.sink.flush().map_err(|e| self.write_error(e))?;
                Ok(digest)
            }
            Ok(other) => Err(unexpected(&other, "receiving a download").into()),
            Err(ClientError::Protocol(ProtocolError::DigestMismatch { expected, actual })) => {
                Err(ClientError::Integrity {
                    name: self.name.to_owned(),
                    reason: format!(
                        "the received bytes hash to {actual} but the server's digest is {expected}; \
                         the download was discarded"
                    ),
                })
            }
            Err(error) => Err(error),
        }
    }

    fn changed(&self) -> ClientError {
        changed(self.name)
    }

    fn write_error(&self, source: io::Error) -> ClientError {
        write_error(&self.path, source)
    }
}

/// The last [`TAIL_KEEP`] bytes written, in a ring: each byte is copied in once at most (of a
/// slice longer than the ring, only its end), never moved again.
#[derive(Default)]
struct Tail {
    ring: Vec<u8>,
    /// Bytes held, at most the ring's size.
    len: usize,
    /// Where in the ring the next byte goes (just after the newest).
    end: usize,
}

impl Tail {
    fn len(&self) -> usize {
        self.len
    }

    /// Keeps `data` as the newest bytes.
    fn push(&mut self, data: &[u8]) {
        if self.ring.is_empty() {
            self.ring = vec![0; TAIL_KEEP];
        }
        let size = self.ring.len();
        let data = &data[data.len().saturating_sub(size)..];
        let first = (size - self.end).min(data.len());
        self.ring[self.end..self.end + first].copy_from_slice(&data[..first]);
        self.ring[..data.len() - first].copy_from_slice(&data[first..]);
        self.end = (self.end + data.len()) % size;
        self.len = (self.len + data.len()).min(size);
    }

    /// Whether `data` equals the bytes held from `back` bytes before the newest's end.
    fn matches(&self, back: usize, data: &[u8]) -> bool {
        if back > self.len || data.len() > back {
            return false;
        }
        if data.is_empty() {
            return true;
        }
        let size = self.ring.len();
        let start = (self.end + size - back) % size;
        let first = (size - start).min(data.len());
        self.ring[start..start + first] == data[..first]
            && self.ring[..data.len() - first] == data[first..]
    }
}

fn changed(name: &str) -> ClientError {
    ClientError::Integrity {
        name: name.to_owned(),
        reason: "the file changed on the server while it was being downloaded; download it again"
            .to_owned(),
    }
}

fn write_error(path: &Path, source: io::Error) -> ClientError {
    ClientError::Local {
        action: "cannot write",
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ring holds exactly the last bytes pushed, however the pushes were cut.
    #[test]
    fn tail_keeps_the_last_bytes_in_any_cut() {
        let data: Vec<u8> = (0..3 * TAIL_KEEP + 17)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        for piece in [
            1,
            1000,
            TAIL_KEEP - 1,
            TAIL_KEEP,
            TAIL_KEEP + 3,
            2 * TAIL_KEEP + 5,
        ] {
            let mut tail = Tail::default();
            let mut pushed = 0;
            let chunks = data.chunks(piece).count();
            for (i, chunk) in data.chunks(piece).enumerate() {
                tail.push(chunk);
                pushed += chunk.len();
                if i % 97 != 0 && i + 1 != chunks {
                    continue; // comparing all at every byte would take minutes unoptimized
                }
                let held = tail.len();
                assert_eq!(held, pushed.min(TAIL_KEEP));
                let expect = &data[pushed - held..pushed];
                assert!(tail.matches(held, expect), "piece {piece}, pushed {pushed}");
                assert!(tail.matches(held.min(5), &expect[held - held.min(5)..][..held.min(5)]));
                assert!(!tail.matches(held + 1, &data[pushed - held..pushed]));
                if held > 1 {
                    let mut wrong = expect.to_vec();
                    wrong[held / 2] ^= 1;
                    assert!(!tail.matches(held, &wrong));
                }
            }
        }
    }
}
