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
    tail: Vec<u8>,
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
            tail: Vec::new(),
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
        let mut repeat_at = self.tail.len().saturating_sub(repeat);
        let event = link.next_event("receiving a download", &mut |mut data: &[u8]| {
            self.bytes_received += data.len() as u64;
            if repeat > 0 {
                let n = repeat.min(data.len());
                if self.tail.get(repeat_at..repeat_at + n) != Some(&data[..n]) {
                    return Err(changed(self.name));
                }
                repeat -= n;
                repeat_at += n;
                data = &data[n..];
            }
            if data.is_empty() {
                return Ok(());
            }
            self.sink
                .write_all(data)
                .map_err(|e| write_error(&self.path, e))?;
            self.written += data.len() as u64;
            self.tail.extend_from_slice(data);
            if self.tail.len() > 2 * TAIL_KEEP {
                let cut = self.tail.len() - TAIL_KEEP;
                self.tail.drain(..cut);
                repeat_at = repeat_at.saturating_sub(cut);
            }
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
