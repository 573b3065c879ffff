//! The server's end of one simulated connection: ferryd's real [`Session`], driven the way
//! ferryd's connection thread drives it, over a [`Link`] instead of a socket.
//!
//! Like `server/src/connection/`, this driver holds no rule of the server: it feeds the bytes
//! the link delivers to [`Session::handle_input`] (keeping what was not consumed), drains
//! [`Session::poll_transmit`] into the link, sleeps until [`Session::poll_timeout`], and
//! closes the connection once the session is closed or the client has closed its side. The
//! two things a socket does by itself are modelled here as ferryd's socket does them: a write
//! gives up once the client has taken no bytes for the idle timeout (ferryd's write timeout),
//! and a newer connection taking the upload over wakes the session by ending its reads
//! (ferryd shuts the socket's read side). The one difference: the simulated window is the
//! socket buffer, so the driver stops pulling download chunks while the window is full
//! instead of blocking in a write, and goes on reading meanwhile.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_protocol::Timestamp;
use ferry_server::{Context, Session};

use super::link::{Dir, Link};

/// The server's end of one connection.
#[derive(Debug)]
pub(crate) struct ServerEnd {
    /// The session, until the connection is closed or the server crashed.
    session: Option<Session>,
    /// Bytes delivered but not yet consumed by the session.
    inbox: Vec<u8>,
    /// The client closed its side (or a takeover ended our reads): flush, then close.
    read_closed: bool,
    /// Since when a write has been waiting for room in the window.
    blocked_since: Option<u64>,
    /// Set by the store when a newer connection takes this one's upload over.
    woken: Arc<AtomicBool>,
    /// The idle timeout, µs: how long a write waits for a client that stopped reading.
    write_timeout: u64,
    /// Bytes written to the client.
    sent: u64,
}

impl ServerEnd {
    /// Accepts connection `id` at `now`: a session of `context`, from a peer address made
    /// from the connection's number.
    pub(crate) fn accept(context: &Context, id: usize, now: u64, write_timeout: u64) -> Self {
        let port = u16::try_from(id % 60_000).unwrap_or(0) + 1024;
        let peer = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), port));
        let mut session = Session::new(context.clone(), peer, Timestamp::from_micros(now));
        let woken = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&woken);
        session.set_waker(Arc::new(move || flag.store(true, Ordering::Release)));
        ServerEnd {
            session: Some(session),
            inbox: Vec::new(),
            read_closed: false,
            blocked_since: None,
            woken,
            write_timeout,
            sent: 0,
        }
    }

    /// Whether the connection is over on the server's side.
    pub(crate) fn is_closed(&self) -> bool {
        self.session.is_none()
    }

    /// Bytes the server wrote to the client.
    pub(crate) fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Bytes from the client.
    pub(crate) fn on_data(&mut self, now: u64, bytes: &[u8], link: &mut Link) {
        let Some(session) = self.session.as_mut().filter(|_| !self.read_closed) else {
            return;
        };
        self.inbox.extend_from_slice(bytes);
        let used = session.handle_input(Timestamp::from_micros(now), &self.inbox);
        self.inbox.drain(..used);
        self.pump(now, link);
    }

    /// The client's end of the stream.
    pub(crate) fn on_eof(&mut self, now: u64, link: &mut Link) {
        let Some(session) = self.session.as_mut().filter(|_| !self.read_closed) else {
            return;
        };
        self.read_closed = true;
        session.handle_eof(Timestamp::from_micros(now));
        self.pump(now, link);
    }

    /// When this end must next act by itself: the session's deadline, a write that gives up,
    /// or at once after a takeover woke it.
    pub(crate) fn next_time(&self) -> Option<u64> {
        let session = self.session.as_ref()?;
        if self.woken.load(Ordering::Acquire) {
            return Some(0);
        }
        let deadline = session.poll_timeout().map(Timestamp::as_micros);
        let write_limit = self.blocked_since.map(|since| since + self.write_timeout);
        deadline.into_iter().chain(write_limit).min()
    }

    /// Acts on what is due at `now`.
    pub(crate) fn on_timer(&mut self, now: u64, link: &mut Link) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let ts = Timestamp::from_micros(now);
        if self.woken.swap(false, Ordering::AcqRel) {
            // ferryd shuts the read side: the next read sees the end of the stream.
            if !self.read_closed {
                self.read_closed = true;
                session.handle_eof(ts);
            }
        } else if self
            .blocked_since
            .is_some_and(|since| now >= since + self.write_timeout)
        {
            session.handle_lost("writing failed: the client took no bytes for the idle timeout");
            self.finish(now, link);
            return;
        } else if session
            .poll_timeout()
            .is_some_and(|deadline| deadline <= ts)
        {
            session.handle_timeout(ts);
        }
        self.pump(now, link);
    }

    /// Drains the session into the link while the window has room (everything once the
    /// connection is ending: only frames are left then), and closes the connection when the
    /// session is over.
    pub(crate) fn pump(&mut self, now: u64, link: &mut Link) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        loop {
            if !self.read_closed && !link.has_room(Dir::ToClient) {
                self.blocked_since.get_or_insert(now);
                break;
            }
            self.blocked_since = None;
            out.clear();
            if session.poll_transmit(&mut out) == 0 {
                break;
            }
            link.write(Dir::ToClient, now, &out);
            self.sent += out.len() as u64;
        }
        if session.is_closed() || self.read_closed {
            self.finish(now, link);
        }
    }

    /// Closes the connection: the session leaves an upload under way resumable, the socket
    /// closes.
    fn finish(&mut self, now: u64, link: &mut Link) {
        if let Some(mut session) = self.session.take() {
            session.close();
        }
        self.blocked_since = None;
        link.close(Dir::ToClient, now);
    }

    /// The server process died: the session is dropped without a word to the client and the
    /// transport vanishes. Call it after the store's power cut, so that nothing the dropped
    /// session does on its way out reaches the store (its upload belongs to a boot that is
    /// over).
    pub(crate) fn crash(&mut self) {
        self.session = None;
        self.inbox.clear();
        self.blocked_since = None;
    }
}
