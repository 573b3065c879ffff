//! Uploads from a stream of unknown length ([`Client::put_reader`]): standard input, a pipe, a
//! socket. The protocol's streamed upload (version 3, PROTOCOL.md §7) sends the size at the
//! end, with the digest; the bytes are hashed as they are read, through one fixed buffer, so
//! memory stays bounded however long the stream.
//!
//! A stream cannot be read twice, so a streamed upload never resumes: a connection lost before
//! any byte was read is retried like any request, one lost later ends the upload (the server
//! keeps nothing of it), and one lost after the last byte and `DONE_SIZED` went out is settled
//! by asking the server whether it holds exactly those bytes.

use std::io::{self, Read};
use std::path::PathBuf;

use ferry_protocol::limits::{MAX_DATA_CHUNK, STREAMED_SINCE};
use ferry_protocol::{ClientEvent, Digest, ErrorCode, FileHasher, SourceTag};

use crate::client::{Client, check_name};
use crate::error::ClientError;
use crate::link::{Link, no_data, unexpected};
use crate::options::{Progress, PutOptions, PutOutcome, PutReport};

/// A streamed upload across attempts: what was read and whether its end was sent.
struct Streamed {
    name: String,
    overwrite: bool,
    /// Bytes read from the source (and sent) so far.
    read: u64,
    /// The size and digest sent in `DONE_SIZED`, once sent.
    done_sent: Option<(u64, Digest)>,
    buf: Vec<u8>,
}

impl Client {
    /// Uploads everything `source` yields until its end as `name`, without knowing the size in
    /// advance (standard input, a pipe): the bytes are read, hashed and sent a buffer at a
    /// time, and the size and digest go to the server at the end. Returns once the file is
    /// durable on the server.
    ///
    /// Needs a server speaking protocol version 3 ([`ClientError::ServerTooOld`]
    /// otherwise). The server's file size limit and space are checked as the bytes arrive. A
    /// stream cannot be read twice, so the upload cannot resume: a connection lost before the
    /// first byte was read is retried, one lost later ends it with
    /// [`ClientError::StreamInterrupted`] and the server keeps nothing. `opts.resume` and
    /// `opts.tag` do not apply; `opts.overwrite` does (an existing name is refused without
    /// it, whatever it holds: the stream's bytes are not known before they are sent).
    ///
    /// [`Progress::total`] is the bytes read so far.
    pub fn put_reader<R: Read>(
        &mut self,
        source: &mut R,
        name: &str,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PutReport, ClientError> {
        check_name(name)?;
        let chunk = self.options().chunk_size.clamp(1, MAX_DATA_CHUNK);
        let mut stream = Streamed {
            name: name.to_owned(),
            overwrite: opts.overwrite,
            read: 0,
            done_sent: None,
            buf: vec![0; chunk],
        };
        let (digest, attempts) =
            self.retrying(|link, attempt| stream.attempt(link, source, attempt, progress))?;
        Ok(PutReport {
            name: name.to_owned(),
            size: stream.read,
            digest,
            outcome: PutOutcome::Uploaded,
            resumed_from: 0,
            attempts,
            bytes_sent: stream.read,
        })
    }
}

impl Streamed {
    /// One attempt: the whole stream, or (after a connection lost once everything was sent)
    /// the question whether the server stored it.
    fn attempt<R: Read>(
        &mut self,
        link: &mut Link,
        source: &mut R,
        attempt: u32,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Digest, ClientError> {
        if let Some((size, digest)) = self.done_sent {
            return self.confirm(link, size, digest);
        }
        let version = link.conn.version();
        if version < STREAMED_SINCE {
            return Err(ClientError::ServerTooOld {
                operation: "put -",
                version,
                needs: STREAMED_SINCE,
            });
        }
        let result = self.send(link, source, attempt, progress);
        match result {
            // Bytes the source gave cannot be had again: a retry cannot send them.
            Err(error) if error.is_transient() && self.read > 0 && self.done_sent.is_none() => {
                Err(self.interrupted(error.to_string()))
            }
            other => other,
        }
    }

    fn interrupted(&self, reason: String) -> ClientError {
        ClientError::StreamInterrupted {
            name: self.name.clone(),
            reason,
        }
    }

    /// `PUT` (streamed), the data as the source gives it, `DONE_SIZED`, and the answer.
    fn send<R: Read>(
        &mut self,
        link: &mut Link,
        source: &mut R,
        attempt: u32,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Digest, ClientError> {
        link.conn.put_streamed(&self.name, self.overwrite)?;
        link.flush("sending an upload request")?;
        let during = "waiting for the server to accept the upload";
        match link.next_event(during, &mut no_data)? {
            ClientEvent::PutReady { offset: 0 } => {}
            ClientEvent::Refused { code, message } => {
                return Err(ClientError::Refused {
                    request: "upload",
                    code,
                    message,
                });
            }
            other => return Err(unexpected(&other, during).into()),
        }
        let mut hasher = FileHasher::new();
        loop {
            // What one read gives goes out at once: a slow producer's bytes do not wait for a
            // full buffer (the server's idle timeout runs while it waits for data).
            let n = read_some(source, &mut self.buf).map_err(|source| ClientError::Local {
                action: "cannot read the stream for",
                path: PathBuf::from(&self.name),
                source,
            })?;
            if n == 0 {
                break;
            }
            let chunk = &self.buf[..n];
            hasher.update(chunk);
            self.read += n as u64;
            link.send_data(chunk)?;
            progress(Progress {
                done: self.read,
                total: self.read,
                attempt,
            });
        }
        let digest = hasher.finalize();
        link.conn.finish_upload(digest)?;
        self.done_sent = Some((self.read, digest));
        link.flush("sending the end of the upload")?;
        let during = "waiting for the server to store the upload";
        match link.next_event(during, &mut no_data)? {
            ClientEvent::PutStored => Ok(digest),
            ClientEvent::Refused {
                code: ErrorCode::DigestMismatch,
                message,
            } => Err(ClientError::Integrity {
                name: self.name.clone(),
                reason: format!(
                    "the server found that the streamed bytes do not match their digest \
                     ({message}); nothing was stored"
                ),
            }),
            ClientEvent::Refused { code, message } => Err(ClientError::Refused {
                request: "upload",
                code,
                message,
            }),
            other => Err(unexpected(&other, during).into()),
        }
    }

    /// After a connection lost once `DONE_SIZED` was out: the upload succeeded if the server
    /// holds exactly the bytes sent (size and digest), as for any upload whose `ACK` was lost.
    fn confirm(&self, link: &mut Link, size: u64, digest: Digest) -> Result<Digest, ClientError> {
        link.conn.query(&self.name, SourceTag::default())?;
        link.flush("sending a query")?;
        let during = "asking whether the streamed upload was stored";
        match link.next_event(during, &mut no_data)? {
            ClientEvent::QueryReply {
                stored_size: Some(stored),
                stored_digest: Some(stored_digest),
                ..
            } if stored == size && stored_digest == digest => {
                tracing::info!(
                    name = self.name,
                    "streamed upload was stored before the connection was lost"
                );
                Ok(digest)
            }
            ClientEvent::QueryReply { .. } | ClientEvent::Refused { .. } => Err(self.interrupted(
                "the connection was lost after the whole stream was sent, and the server \
                     does not hold it"
                    .to_owned(),
            )),
            other => Err(unexpected(&other, during).into()),
        }
    }
}

/// One read from `source` into `buf`, retried when interrupted; 0 at the end of the stream.
fn read_some<R: Read>(source: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match source.read(buf) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that is interrupted once, then yields its bytes in small pieces.
    struct Trickle {
        bytes: Vec<u8>,
        interrupted: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.bytes.len()).min(3);
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn a_read_is_retried_when_interrupted_and_ends_with_zero() {
        let mut source = Trickle {
            bytes: b"hello".to_vec(),
            interrupted: false,
        };
        let mut buf = [0; 16];
        assert_eq!(read_some(&mut source, &mut buf).unwrap(), 3);
        assert_eq!(read_some(&mut source, &mut buf).unwrap(), 2);
        assert_eq!(read_some(&mut source, &mut buf).unwrap(), 0);
    }
}
