//! One event loop: a mio `Poll` over its connections' sockets, a channel on which it receives
//! new connections, finished steps and takeover wake-ups (each send wakes the poll), and a heap
//! of the times its connections want to be looked at again.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::conn::{Action, Conn, Phase};
use super::link::{Link, Next, read_buffer};
use super::pool::Pool;
use super::step;
use crate::server::{Seat, Shared};
use crate::session::Session;

/// The poll's own wake-up (a message waits on the channel).
pub(super) const WAKE: Token = Token(usize::MAX);

/// What a watched connection's socket is watched for.
const WATCHED: Interest = Interest::READABLE.add(Interest::WRITABLE);

/// Readiness events taken from the poll at once.
const EVENTS: usize = 1024;

/// What reaches a loop from outside.
pub(super) enum Message {
    /// A connection accepted, with its place under the limits.
    Accepted(std::net::TcpStream, SocketAddr, Seat),
    /// A connection's steps ended on the pool: its session, its link and the link's last word.
    Stepped(usize, Box<Session>, Box<Link>, Next),
    /// A session's last step ended on the pool.
    Finished(usize),
    /// A newer connection took this one's upload over.
    TakenOver(usize),
}

/// How a loop is reached: its channel and the poll's waker.
#[derive(Clone)]
pub(super) struct Mailbox {
    pub(super) sender: Sender<Message>,
    pub(super) waker: Arc<mio::Waker>,
}

impl Mailbox {
    /// Sends `message` and wakes the loop (a loop that is gone drops it).
    pub(super) fn send(&self, message: Message) {
        if self.sender.send(message).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// A loop's state, on its own thread.
pub(super) struct EventLoop {
    shared: Arc<Shared>,
    poll: Poll,
    mailbox: Mailbox,
    inbox: Receiver<Message>,
    pool: Arc<Pool>,
    conns: HashMap<usize, Conn>,
    next_id: usize,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    scratch: Vec<u8>,
    /// The shutdown phase the connections were last nudged for: (stopping, past grace).
    told: (bool, bool),
    /// Set when the server is done with its connections: the loop ends.
    quit: Arc<AtomicBool>,
}

impl EventLoop {
    pub(super) fn new(
        shared: Arc<Shared>,
        poll: Poll,
        mailbox: Mailbox,
        inbox: Receiver<Message>,
        pool: Arc<Pool>,
        quit: Arc<AtomicBool>,
    ) -> EventLoop {
        EventLoop {
            shared,
            poll,
            mailbox,
            inbox,
            pool,
            conns: HashMap::new(),
            next_id: 0,
            timers: BinaryHeap::new(),
            scratch: Vec::new(),
            told: (false, false),
            quit,
        }
    }

    /// Runs until the server stops and every connection is gone.
    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS);
        let mut due = Vec::new();
        loop {
            // The poll counts whole milliseconds and rounds up: wait the whole ones, and look
            // again without waiting through the last fraction, so that a timer (a rate limit's
            // wait, say) fires on time rather than up to a millisecond late.
            let timeout = self.timers.peek().map(|Reverse((at, _))| {
                let left = at.saturating_duration_since(Instant::now());
                Duration::from_millis(u64::try_from(left.as_millis()).unwrap_or(u64::MAX))
            });
            if let Err(error) = self.poll.poll(&mut events, timeout)
                && error.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!("event loop failed: {error}");
                return;
            }
            due.clear();
            due.extend(
                events
                    .iter()
                    .map(|event| event.token().0)
                    .filter(|&id| id != WAKE.0),
            );
            while let Ok(message) = self.inbox.try_recv() {
                if let Some(id) = self.receive(message) {
                    due.push(id);
                }
            }
            let now = Instant::now();
            while let Some(Reverse((at, id))) = self.timers.peek().copied() {
                if at > now {
                    break;
                }
                self.timers.pop();
                if self
                    .conns
                    .get(&id)
                    .is_some_and(|conn| conn.wake_at == Some(at))
                {
                    due.push(id);
                }
            }
            self.follow_shutdown(&mut due);
            for &id in &due {
                self.advance(id);
            }
            if self.quit.load(Ordering::Acquire) {
                if !self.conns.is_empty() {
                    tracing::warn!(
                        left = self.conns.len(),
                        "event loop stopped with connections open"
                    );
                }
                return;
            }
        }
    }

    /// Takes in one message; returns the connection it concerns.
    fn receive(&mut self, message: Message) -> Option<usize> {
        match message {
            Message::Accepted(stream, peer, seat) => self.accept(stream, peer, seat),
            Message::Stepped(id, session, link, next) => {
                let conn = self.conns.get_mut(&id)?;
                conn.handle_return(session, link, next);
                watch(self.poll.registry(), id, conn.fd(), true);
                Some(id)
            }
            Message::Finished(id) => {
                let conn = self.conns.get_mut(&id)?;
                conn.handle_finished();
                Some(id)
            }
            Message::TakenOver(id) => {
                let conn = self.conns.get_mut(&id)?;
                conn.end_reads();
                Some(id)
            }
        }
    }

    fn accept(
        &mut self,
        stream: std::net::TcpStream,
        peer: SocketAddr,
        seat: Seat,
    ) -> Option<usize> {
        let opened = self.shared.now();
        if let Err(error) = stream.set_nonblocking(true) {
            tracing::warn!(%peer, "cannot serve a connection: {error}");
            return None;
        }
        let mut socket = mio::net::TcpStream::from_std(stream);
        let id = self.next_id;
        self.next_id = (self.next_id + 1) % WAKE.0;
        if let Err(error) = self
            .poll
            .registry()
            .register(&mut socket, Token(id), WATCHED)
        {
            tracing::warn!(%peer, "cannot serve a connection: {error}");
            return None;
        }
        let mut session = Session::new(self.shared.context(), peer, opened);
        let mailbox = self.mailbox.clone();
        session.set_waker(Arc::new(move || mailbox.send(Message::TakenOver(id))));
        tracing::debug!(%peer, "connection opened");
        self.conns
            .insert(id, Conn::new(&self.shared, socket, peer, seat, session));
        Some(id)
    }

    /// A shutdown that began, or whose grace period ended, is news to every session.
    fn follow_shutdown(&mut self, due: &mut Vec<usize>) {
        let shutdown = &self.shared.shutdown;
        let now = (shutdown.is_stopping(), shutdown.is_past_grace());
        if now == self.told {
            return;
        }
        self.told = now;
        for (&id, conn) in &mut self.conns {
            conn.nudge();
            due.push(id);
        }
    }

    fn advance(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let before = conn.wake_at;
        let now = Instant::now();
        match conn.advance(&self.shared, read_buffer(&mut self.scratch)) {
            Action::Wait => {}
            Action::Step(away) => {
                watch(self.poll.registry(), id, conn.fd(), false);
                let (shared, mailbox) = (Arc::clone(&self.shared), self.mailbox.clone());
                let pool = Arc::clone(&self.pool);
                self.pool.run(Box::new(move || {
                    let (session, link, next) = step::run_away(&shared, &pool, away);
                    mailbox.send(Message::Stepped(id, session, link, next));
                }));
            }
            Action::Finish(session, lost) => {
                let mailbox = self.mailbox.clone();
                self.pool.run(Box::new(move || {
                    step::finish(session, lost.as_deref());
                    mailbox.send(Message::Finished(id));
                }));
            }
        }
        if conn.phase == Phase::Gone {
            self.remove(id);
            return;
        }
        // A new time, or the old one again after it fired.
        let fired = before.is_some_and(|at| at <= now);
        if let Some(at) = conn.wake_at.filter(|&at| fired || Some(at) != before) {
            self.timers.push(Reverse((at, id)));
        }
    }

    fn remove(&mut self, id: usize) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        if conn.tls_failed() {
            self.shared.metrics.handle_tls_failed();
        }
        watch(self.poll.registry(), id, conn.fd(), false);
        tracing::debug!(peer = %conn.peer, "connection closed");
        // Dropping the connection closes the socket and gives its seat back.
    }
}

/// Stops or resumes the poll's watch on a connection's socket. A connection whose link is on
/// the pool is not watched: the pool serves its socket, and every arrival of its bytes would
/// otherwise wake the loop for nothing (a 512 MiB upload woke it about 5 500 times; the thread
/// engine's server switched threads 50 times for the same upload). It is watched again when
/// the link comes home, which reports a socket already ready, and the loop serves the link then
/// anyway.
fn watch(registry: &mio::Registry, id: usize, fd: RawFd, on: bool) {
    let result = if on {
        registry.register(&mut SourceFd(&fd), Token(id), WATCHED)
    } else {
        registry.deregister(&mut SourceFd(&fd))
    };
    if let Err(error) = result {
        tracing::error!("cannot change the watch on a connection: {error}");
    }
}
