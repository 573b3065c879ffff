//! One download over one connection, and what carries over between attempts of the same
//! download.
//!
//! Bytes go to the sink as they arrive. A retry resumes at the machine's last hash checkpoint,
//! which may lie up to two hash units before the bytes already written; the server sends those
//! bytes again, and they are compared with the copy kept in `tail` instead of being written
//! twice, so a sink only ever needs `Write`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ferry_protocol::{
    ClientConnection, ClientEvent, Digest, HASH_UNIT_LEN, HashCheckpoint, ProtocolError,
};

use crate::error::ClientError;
use crate::link::{Link, unexpected};
use crate::options::Progress;

/// Bytes of the sink's end kept for comparison: a resumed attempt repeats fewer than this.
const TAIL_KEEP: usize = 2 * HASH_UNIT_LEN as usize;

/// A download in progress, across attempts: where the next attempt starts (a hash
/// checkpoint), what the sink holds, and the last bytes written (to check bytes sent again).
pub struct Download {
    name: String,
    /// Where the sink's bytes end up, for messages.
    path: PathBuf,
    /// Hash state the next attempt starts from.
    checkpoint: HashCheckpoint,
    /// Bytes of the file in the sink, from offset 0.
    written: u64,
    /// The last bytes written: `[written - tail.len(), written)`.
    tail: Tail,
    size: Option<u64>,
    /// File bytes received in all attempts (those sent again included).
    pub bytes_received: u64,
    /// The offset the last attempt started from.
    pub resumed_from: u64,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("name", &self.name)
            .field("written", &self.written)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// A download of `name` into a sink (at `path`, for messages) that already holds the first
    /// `checkpoint.offset()` bytes.
    pub fn new(name: &str, path: PathBuf, checkpoint: HashCheckpoint) -> Self {
        Download {
            name: name.to_owned(),
            path,
            written: checkpoint.offset(),
            checkpoint,
            tail: Tail::default(),
            size: None,
            bytes_received: 0,
            resumed_from: 0,
        }
    }

    /// Size of the file, once the server said.
    pub fn size(&self) -> u64 {
        self.size.unwrap_or(0)
    }

    /// One attempt over a blocking link; on failure, remembers where the next one can start.
    /// Every decision is [`DownloadAttempt`]'s; this only moves bytes.
    pub(crate) fn attempt<W: Write>(
        &mut self,
        link: &mut Link,
        sink: &mut W,
        attempt: u32,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Digest, ClientError> {
        let mut run = DownloadAttempt::begin(self, &mut link.conn, attempt)?;
        let result = (|| loop {
            link.flush(run.during())?;
            let during = run.during();
            let event = link.next_event(during, &mut |data: &[u8]| {
                run.on_data(self, sink, data)?;
                progress(run.progress(self));
                Ok(())
            });
            let event = event.map_err(|error| self.failed(error))?;
            if let Some(digest) = run.on_event(self, sink, event)? {
                return Ok(digest);
            }
            progress(run.progress(self));
        })();
        if result.is_err() {
            run.interrupted(self, &link.conn);
        }
        result
    }

    /// An error of the connection, in the words the user needs: a digest mismatch means the
    /// bytes received were discarded.
    fn failed(&self, error: ClientError) -> ClientError {
        match error {
            ClientError::Protocol(ProtocolError::DigestMismatch { expected, actual }) => {
                ClientError::Integrity {
                    name: self.name.clone(),
                    reason: format!(
                        "the received bytes hash to {actual} but the server's digest is {expected}; \
                         the download was discarded"
                    ),
                }
            }
            other => other,
        }
    }

    fn changed(&self) -> ClientError {
        changed(&self.name)
    }

    fn write_error(&self, source: io::Error) -> ClientError {
        write_error(&self.path, source)
    }
}

/// One attempt of a download on one connection, without sockets: it queues the `GET` (from
/// the download's checkpoint), checks bytes the server sends again against the sink's end,
/// writes the new ones, and decides on each event. The blocking library and the
/// deterministic simulator drive it the same way: hand each piece of file data to
/// [`on_data`](Self::on_data) and each event to [`on_event`](Self::on_event) until it returns
/// the verified digest; if the connection fails, call [`interrupted`](Self::interrupted).
#[derive(Debug)]
pub struct DownloadAttempt {
    attempt: u32,
    /// The server's answer came: the file's size is known.
    started: bool,
    /// Bytes still to come that the sink holds already (the server resumed before its end).
    repeat: usize,
}

impl DownloadAttempt {
    /// Starts attempt number `attempt` on a connected machine: queues the `GET`.
    pub fn begin(
        download: &mut Download,
        conn: &mut ClientConnection,
        attempt: u32,
    ) -> Result<DownloadAttempt, ClientError> {
        conn.get(&download.name, download.checkpoint.clone())?;
        Ok(DownloadAttempt {
            attempt,
            started: false,
            repeat: 0,
        })
    }

    /// What the attempt waits for, for error messages.
    pub fn during(&self) -> &'static str {
        if self.started {
            "receiving a download"
        } else {
            "waiting for the server to start the download"
        }
    }

    /// How far the download is.
    pub fn progress(&self, download: &Download) -> Progress {
        Progress {
            done: download.written,
            total: download.size(),
            attempt: self.attempt,
        }
    }

    /// File data as it arrives (already counted and hashed by the machine).
    pub fn on_data<W: Write>(
        &mut self,
        download: &mut Download,
        sink: &mut W,
        mut data: &[u8],
    ) -> Result<(), ClientError> {
        download.bytes_received += data.len() as u64;
        if self.repeat > 0 {
            let n = self.repeat.min(data.len());
            if !download.tail.matches(self.repeat, &data[..n]) {
                return Err(download.changed());
            }
            self.repeat -= n;
            data = &data[n..];
        }
        if data.is_empty() {
            return Ok(());
        }
        sink.write_all(data).map_err(|e| download.write_error(e))?;
        download.written += data.len() as u64;
        download.tail.push(data);
        Ok(())
    }

    /// An event of the machine: `Some` with the verified digest once the file is whole.
    pub fn on_event<W: Write>(
        &mut self,
        download: &mut Download,
        sink: &mut W,
        event: ClientEvent,
    ) -> Result<Option<Digest>, ClientError> {
        match (self.started, event) {
            (false, ClientEvent::GetReady { size, offset }) => {
                self.started = true;
                if download.size.is_some_and(|known| known != size) || size < download.written {
                    return Err(download.changed());
                }
                download.size = Some(size);
                download.resumed_from = offset;
                tracing::debug!(
                    name = download.name,
                    offset,
                    size,
                    attempt = self.attempt,
                    "download started"
                );
                // Bytes the server sends again that are already in the sink: check, don't write.
                self.repeat = usize::try_from(download.written - offset).unwrap_or(usize::MAX);
                Ok(None)
            }
            (false, ClientEvent::Refused { code, message }) => Err(ClientError::Refused {
                request: "download",
                code,
                message,
            }),
            (true, ClientEvent::GetVerified { digest }) => {
                sink.flush().map_err(|e| download.write_error(e))?;
                Ok(Some(digest))
            }
            (_, other) => Err(unexpected(&other, self.during()).into()),
        }
    }

    /// The connection failed: the next attempt starts from the machine's last hash checkpoint
    /// of what arrived, if it lies within the bytes the sink can check.
    pub fn interrupted(&self, download: &mut Download, conn: &ClientConnection) {
        if !self.started {
            return;
        }
        if let Some(checkpoint) = conn.download_checkpoint() {
            let earliest = download.written - download.tail.len() as u64;
            if (earliest..=download.written).contains(&checkpoint.offset()) {
                download.checkpoint = checkpoint;
            }
        }
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
