//! The simulated server's driver for one connection: the same loop as ferryd's, over a
//! [`Link`] instead of a socket and the in-memory [`Store`] instead of a disk.

use std::rc::Rc;

use ferry_protocol::{
    Config, Digest, ErrorCode, ServerConnection, ServerEvent, Timestamp, limits::DEFAULT_DATA_CHUNK,
};

use super::link::{Dir, Link};
use super::store::Store;

/// A download being sent.
#[derive(Debug)]
struct Serving {
    data: Rc<Vec<u8>>,
    pos: usize,
    digest: Digest,
}

/// The server end of one connection.
#[derive(Debug)]
pub(crate) struct ServerSide {
    id: usize,
    conn: ServerConnection,
    config: Config,
    inbox: Vec<u8>,
    receiving: Option<String>,
    serving: Option<Serving>,
    /// Since when a download has been blocked on a full window.
    blocked_since: Option<u64>,
    /// The socket is closed: nothing more is read or written.
    pub closed: bool,
    /// Inconsistencies found in the store while serving.
    pub errors: Vec<String>,
    /// File bytes sent in downloads.
    sent: u64,
}

impl ServerSide {
    pub(crate) fn new(id: usize, config: Config, now: u64, link: &mut Link) -> Self {
        let mut side = ServerSide {
            id,
            conn: ServerConnection::new(config, Timestamp::from_micros(now)),
            config,
            inbox: Vec::new(),
            receiving: None,
            serving: None,
            blocked_since: None,
            closed: false,
            errors: Vec::new(),
            sent: 0,
        };
        side.flush(now, link);
        side
    }

    /// File bytes sent in downloads so far.
    pub(crate) fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Bytes from the client.
    pub(crate) fn on_data(&mut self, now: u64, bytes: &[u8], link: &mut Link, store: &mut Store) {
        if self.closed {
            return;
        }
        let ts = Timestamp::from_micros(now);
        self.inbox.extend_from_slice(bytes);
        let inbox = std::mem::take(&mut self.inbox);
        let mut start = 0;
        while let Ok(received) = self.conn.handle_input(ts, &inbox[start..]) {
            start += received.consumed;
            if let Some(name) = &self.receiving {
                store.write(name, received.file_data);
            }
            let had_events = self.events(store);
            if received.consumed == 0 && !had_events {
                break;
            }
        }
        // An error stops the loop; its cause is sticky in the connection.
        let _ = self.conn.error();
        self.inbox = inbox[start..].to_vec();
        self.after_input(now, link, store);
    }

    /// The client's end of the stream.
    pub(crate) fn on_eof(&mut self, now: u64, link: &mut Link, store: &mut Store) {
        if self.closed {
            return;
        }
        let _ = self.conn.handle_eof(Timestamp::from_micros(now));
        self.after_input(now, link, store);
        self.close(now, link, store);
    }

    /// When this side must next act by itself: a protocol deadline, or a blocked download that
    /// gives up.
    pub(crate) fn next_time(&self) -> Option<u64> {
        if self.closed {
            return None;
        }
        let deadline = self.conn.poll_timeout().map(Timestamp::as_micros);
        let write_limit = self
            .blocked_since
            .map(|since| since + self.config.idle_timeout.as_micros() as u64);
        deadline.into_iter().chain(write_limit).min()
    }

    /// Acts on deadlines due at `now`.
    pub(crate) fn on_timer(&mut self, now: u64, link: &mut Link, store: &mut Store) {
        if self.closed {
            return;
        }
        let _ = self.conn.handle_timeout(Timestamp::from_micros(now));
        if self
            .blocked_since
            .is_some_and(|since| now >= since + self.config.idle_timeout.as_micros() as u64)
        {
            self.conn.abort(
                ErrorCode::Timeout,
                "the client stopped reading the download",
            );
        }
        self.after_input(now, link, store);
    }

    /// Sends download data while the window has room.
    pub(crate) fn pump(&mut self, now: u64, link: &mut Link, chunk: usize) {
        if self.closed {
            return;
        }
        while let Some(serving) = &mut self.serving {
            if !link.has_room(Dir::ToClient) {
                self.blocked_since.get_or_insert(now);
                return;
            }
            self.blocked_since = None;
            if serving.pos == serving.data.len() {
                let digest = serving.digest;
                self.serving = None;
                if self.conn.finish_download(digest).is_err() {
                    break;
                }
            } else {
                let end = serving
                    .data
                    .len()
                    .min(serving.pos + chunk.clamp(1, DEFAULT_DATA_CHUNK));
                if self
                    .conn
                    .send_file_data(&serving.data[serving.pos..end])
                    .is_err()
                {
                    self.serving = None;
                    break;
                }
                let mut header = Vec::new();
                self.conn.poll_transmit(&mut header);
                link.write(Dir::ToClient, now, &header);
                link.write(Dir::ToClient, now, &serving.data[serving.pos..end]);
                self.sent += (end - serving.pos) as u64;
                serving.pos = end;
            }
        }
        self.blocked_since = None;
        self.flush(now, link);
    }

    fn after_input(&mut self, now: u64, link: &mut Link, store: &mut Store) {
        self.flush(now, link);
        if self.conn.is_closed() {
            self.close(now, link, store);
        }
    }

    fn flush(&mut self, now: u64, link: &mut Link) {
        let mut out = Vec::new();
        if self.conn.poll_transmit(&mut out) > 0 {
            link.write(Dir::ToClient, now, &out);
        }
    }

    /// Closes the socket; an upload under way stays resumable from its checkpoint.
    fn close(&mut self, now: u64, link: &mut Link, store: &mut Store) {
        if self.closed {
            return;
        }
        self.flush(now, link);
        if let Some(name) = self.receiving.take() {
            store.interrupt(&name, self.conn.upload_checkpoint());
        }
        self.serving = None;
        self.closed = true;
        link.close(Dir::ToClient, now);
    }

    fn events(&mut self, store: &mut Store) -> bool {
        let mut any = false;
        while let Some(event) = self.conn.poll_event() {
            any = true;
            self.act(event, store);
        }
        any
    }

    fn act(&mut self, event: ServerEvent, store: &mut Store) {
        let conn = &mut self.conn;
        // Commands below fail only if the connection closed meanwhile; the sticky error says why.
        match event {
            ServerEvent::ClientHello { .. } => {
                let _ = conn.accept_client();
            }
            ServerEvent::PutRequested(request) => match store.put(self.id, &request) {
                Ok(checkpoint) => {
                    self.receiving = Some(request.name);
                    let _ = conn.accept_put(&checkpoint);
                }
                Err(code) => {
                    let _ = conn.refuse(code, code.describe());
                }
            },
            ServerEvent::UploadVerified { digest, size } => {
                let name = self.receiving.take().unwrap_or_default();
                match store.commit(&name, digest, size) {
                    Ok(()) => {
                        let _ = conn.confirm();
                    }
                    Err(error) => {
                        self.errors.push(error);
                        let _ = conn.refuse(ErrorCode::StorageError, "storage inconsistency");
                    }
                }
            }
            ServerEvent::UploadRejected { .. } => {
                if let Some(name) = self.receiving.take() {
                    store.reject(&name);
                }
            }
            ServerEvent::UploadCancelled { checkpoint, .. } => {
                if let Some(name) = self.receiving.take() {
                    store.interrupt(&name, Some(checkpoint));
                }
            }
            ServerEvent::GetRequested { name, offset } => match store.get(&name) {
                Some(file) if offset <= file.data.len() as u64 => {
                    if conn.accept_get(file.data.len() as u64).is_ok() {
                        self.serving = Some(Serving {
                            data: Rc::clone(&file.data),
                            pos: usize::try_from(offset).unwrap_or(usize::MAX),
                            digest: file.digest,
                        });
                    }
                }
                Some(_) => {
                    let _ = conn.refuse(ErrorCode::SizeMismatch, "offset past the end");
                }
                None => {
                    let _ = conn.refuse(ErrorCode::NotFound, "no such file");
                }
            },
            ServerEvent::ListRequested { prefix } => {
                for (name, size) in store.list(&prefix) {
                    let _ = conn.send_list_entry(&name, size, 0);
                }
                let _ = conn.finish_list();
            }
            ServerEvent::RemoveRequested { name } => match store.remove(&name) {
                Ok(()) => {
                    let _ = conn.confirm();
                }
                Err(code) => {
                    let _ = conn.refuse(code, "no such file");
                }
            },
            ServerEvent::QueryRequested { name, tag } => {
                let (stored, digest, partial) = store.query(&name, tag);
                let _ = conn.reply_query(stored, digest, partial);
            }
            _ => {}
        }
    }
}
