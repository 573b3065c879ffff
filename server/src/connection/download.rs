//! Downloads: a file streamed from an open handle with a bounded buffer, so a replacement of
//! the file during the download leaves this client with the old version whole.

use std::io::{self, Read};
use std::time::Instant;

use ferry_protocol::limits::DEFAULT_DATA_CHUNK;
use ferry_protocol::{Digest, ErrorCode, FileHasher};

use super::writer::WriteFrom;
use super::{Connection, Flow};
use crate::store::error::StorageError;
use crate::transfer_log::{self, Op};

impl Connection<'_> {
    /// Streams a file from an open handle, so a replacement during the download does not
    /// change what this client receives.
    pub(super) fn on_get(&mut self, name: &str, offset: u64) -> Flow {
        if self.shared.shutdown.is_stopping() {
            let error = StorageError::ShuttingDown;
            return self.refuse_storage(&error);
        }
        let mut opened = match self.shared.store.open_for_download(name) {
            Ok(opened) => opened,
            Err(error) => {
                tracing::warn!(peer = %self.peer, name, code = %error.code(), "refused: {error}");
                return self.refuse_storage(&error);
            }
        };
        let size = opened.size;
        if offset > size {
            let error = StorageError::OffsetPastEnd { offset, size };
            return self.refuse_storage(&error);
        }
        // The digest of exactly this version: recorded, hashed while sending, or computed now.
        let mut hasher = None;
        let mut digest = opened.digest;
        if digest.is_none() {
            if offset == 0 {
                hasher = Some(FileHasher::new());
            } else {
                match opened.content.read_from(0).and_then(hash_all) {
                    Ok(computed) => {
                        opened.content.remember_digest(&computed);
                        digest = Some(computed);
                    }
                    Err(error) => {
                        let error = StorageError::io("reading a file to hash it")(error);
                        return self.refuse_storage(&error);
                    }
                }
            }
        }
        let mut reader = match opened.content.read_from(offset) {
            Ok(reader) => reader,
            Err(error) => {
                let error = StorageError::io("opening a file to send")(error);
                return self.refuse_storage(&error);
            }
        };
        if let Flow::Stop = self.command(|c| c.accept_get(size)) {
            return Flow::Stop;
        }
        let started = Instant::now();
        if self.file_buf.is_empty() {
            self.file_buf = vec![0u8; DEFAULT_DATA_CHUNK];
        }
        let mut remaining = size - offset;
        while remaining > 0 {
            if self.shared.shutdown.is_past_grace() {
                transfer_log::finished(
                    self.peer,
                    Op::Get,
                    name,
                    size - offset - remaining,
                    started,
                    "ended by shutdown",
                );
                self.abort(
                    ErrorCode::ShuttingDown,
                    "the server is shutting down; resume the download later",
                );
                return Flow::Stop;
            }
            let want = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(self.file_buf.len());
            let n = match read_some(&mut reader, &mut self.file_buf[..want]) {
                Ok(0) => {
                    let error = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while being sent",
                    );
                    return self.fail_download(name, size - offset - remaining, started, error);
                }
                Ok(n) => n,
                Err(error) => {
                    return self.fail_download(name, size - offset - remaining, started, error);
                }
            };
            let chunk = &self.file_buf[..n];
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(chunk);
            }
            if let Err(error) = self.conn.send_file_data(chunk) {
                tracing::error!(peer = %self.peer, "connection state error (a server bug): {error}");
                return Flow::Stop;
            }
            self.out.clear();
            self.conn.poll_transmit(&mut self.out);
            if let Err(error) = self.write(WriteFrom::OutThenFile(n)) {
                let outcome = format!("client gone: {error}");
                transfer_log::finished(
                    self.peer,
                    Op::Get,
                    name,
                    size - offset - remaining,
                    started,
                    &outcome,
                );
                return Flow::Stop;
            }
            remaining -= n as u64;
        }
        let digest = match (digest, hasher) {
            (Some(digest), _) => digest,
            (None, Some(hasher)) => {
                let computed = hasher.finalize();
                drop(reader);
                opened.content.remember_digest(&computed);
                computed
            }
            (None, None) => return Flow::Stop, // unreachable: one of the two is always set
        };
        if let Flow::Stop = self.command(|c| c.finish_download(digest)) {
            return Flow::Stop;
        }
        if self.flush().is_err() {
            transfer_log::finished(
                self.peer,
                Op::Get,
                name,
                size - offset,
                started,
                "client gone before DONE",
            );
            return Flow::Stop;
        }
        transfer_log::finished(self.peer, Op::Get, name, size - offset, started, "ok");
        Flow::Continue
    }

    fn fail_download(&mut self, name: &str, sent: u64, started: Instant, error: io::Error) -> Flow {
        let error = StorageError::io("reading a file to send")(error);
        tracing::error!(peer = %self.peer, name, "download failed: {error}");
        transfer_log::finished(self.peer, Op::Get, name, sent, started, &error.to_string());
        self.abort(error.code(), &error.to_string());
        Flow::Stop
    }
}

/// Reads until `buf` is full or the file ends.
fn read_some(file: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// The digest of everything `reader` yields.
fn hash_all(mut reader: Box<dyn Read + '_>) -> io::Result<Digest> {
    let file = &mut *reader;
    let mut hasher = FileHasher::new();
    let mut buf = vec![0u8; DEFAULT_DATA_CHUNK];
    loop {
        let n = read_some(file, &mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buf[..n]);
    }
}
