//! The byte side of one connection: its wire (plaintext or TLS), the bytes on their way in and
//! out, its rate limits and what it waits for. [`Link::serve`] moves it as far as it can
//! without waiting — writes what the session gave, reads when the session is ready for more —
//! and says what comes next: nothing until the socket or the time says so, a step of the
//! session, or the end. It never calls the session, so it runs on the event loop and, between
//! the steps of one busy connection, on the pool (see `step::run_away`). Every decision about
//! the protocol is the session's; this file only knows "bytes to write", "bytes read", "the
//! time came".

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

use ferry_protocol::Timestamp;
use ferry_transport::{FirstByte, Pace};
use mio::net::TcpStream;

use super::input::{INPUT_LIMIT, Input};
use super::step::{Outcome, Step};
use super::wire::Wire;
use crate::metrics::Refusal;
use crate::server::Shared;

/// Bytes read from a socket at once, into the read buffer of the thread serving the link (the
/// loop's, shared by its connections, or a pool thread's own).
const READ_AT_ONCE: usize = 256 * 1024;

/// How long a link keeps its buffers once bytes stop flowing: a busy connection's socket is
/// often found empty for a moment between two steps (the server took its bytes faster than
/// they came), and freeing the buffers then cost a fresh buffer, and its page faults, at the
/// next step.
const KEEP_BUFFERS: Duration = Duration::from_millis(100);

/// `buffer` as a thread's read buffer, made on first use. Zeroed by the allocator, so that its
/// pages cost memory only once a read fills them.
pub(super) fn read_buffer(buffer: &mut Vec<u8>) -> &mut [u8] {
    if buffer.is_empty() {
        *buffer = vec![0; READ_AT_ONCE];
    }
    buffer
}

/// What comes next for a served connection.
pub(super) enum Next {
    /// Nothing now: wait for readiness or the time.
    Wait,
    /// A step of the session.
    Step(Step),
    /// The session's last step (`Some`: why the transport broke).
    Finish(Option<String>),
}

/// The byte side of one connection.
pub(super) struct Link {
    socket: Arc<TcpStream>,
    pub(super) peer: std::net::SocketAddr,
    pub(super) wire: Wire,
    /// Bytes read and not yet taken by the session.
    input: Input,
    /// The last step's output, and how much of it was written.
    out: Vec<u8>,
    sent: usize,
    /// The session has more output than the last step's batch held.
    more: bool,
    /// The session is over once its output is written.
    closed: bool,
    /// The session's deadline.
    deadline: Option<Timestamp>,
    /// The input the session left is worth offering again once the output drained (the last
    /// step took bytes or answered: a pipelined request waits behind what it sent).
    reoffer: bool,
    /// `input` holds bytes the session has not been offered yet (read during a rate limit's
    /// pause, or while a step ran that offered none).
    fresh: bool,
    /// The client ended its side (the session was told, or is told in the next step).
    pub(super) peer_closed: bool,
    /// The connection's rate limits, and the bytes paid for and not yet written.
    pace: Pace,
    credit: usize,
    /// No bytes move before this (a rate limit's wait).
    paused: Option<Instant>,
    /// A step is due whatever the socket does (a shutdown began, a newer connection took the
    /// upload over).
    pub(super) nudged: bool,
    /// Since when a write has found the client taking nothing.
    stalled: Option<Instant>,
    /// Since when no bytes have moved (reads found nothing, no output went out): the buffers
    /// go after [`KEEP_BUFFERS`].
    quiet: Option<Instant>,
}

impl Link {
    /// The link of a new connection; TLS servers sniff its first byte first.
    pub(super) fn new(shared: &Shared, socket: Arc<TcpStream>, peer: std::net::SocketAddr) -> Link {
        Link {
            socket,
            peer,
            wire: match shared.config.tls {
                Some(_) => Wire::Sniffing,
                None => Wire::Plain,
            },
            input: Input::default(),
            out: Vec::new(),
            sent: 0,
            more: false,
            closed: false,
            deadline: None,
            reoffer: false,
            fresh: false,
            peer_closed: false,
            pace: Pace::new(shared.rate_limits()),
            credit: 0,
            paused: None,
            nudged: true,
            stalled: None,
            quiet: None,
        }
    }

    /// Takes in what a step of the session gave.
    pub(super) fn handle_outcome(&mut self, outcome: Outcome) {
        let progress = outcome.consumed > 0 || !outcome.out.is_empty();
        self.reoffer = !outcome.input.is_empty() && (progress || self.fresh);
        self.fresh = false;
        self.input = outcome.input;
        self.out = outcome.out;
        self.sent = 0;
        self.more = outcome.more;
        self.closed = outcome.closed;
        self.deadline = outcome.deadline;
    }

    /// For a link not held by a rate limit: waits up to `patience` for room in the socket if
    /// its output waits for it (a download under way), or else, with `reading`, for the
    /// client's next bytes (an upload under way); says whether they came. A pool thread that
    /// finds them this way goes on serving the link instead of handing the connection back to
    /// the loop, which would take two thread wake-ups to bring it back (the server's CPU for a
    /// 512 MiB get went from 0.75 to 0.61 s with the wait for room). The caller waits only
    /// while nobody else waits for a pool thread: a thread waiting on a client is a thread
    /// taken from everybody else.
    pub(super) fn await_ready(&self, patience: Duration, reading: bool) -> bool {
        let writing = self.sent < self.out.len() || self.wire.wants_write();
        if !(writing || reading) || self.is_paused() {
            return false;
        }
        let timeout = Timespec::try_from(patience).ok();
        let flags = if writing {
            PollFlags::OUT
        } else {
            PollFlags::IN
        };
        let mut fds = [PollFd::new(&*self.socket, flags)];
        rustix::event::poll(&mut fds, timeout.as_ref()).is_ok_and(|ready| ready > 0)
    }

    /// Our side ends: TLS says `close_notify` (best effort) and the socket's write side shuts.
    pub(super) fn close(&mut self) {
        self.wire.close_notify();
        let mut sent = 0;
        let _ = self.wire.write(&self.socket, &[], &mut sent);
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
    }

    /// The session is home: what comes next.
    pub(super) fn serve(&mut self, shared: &Shared, scratch: &mut [u8]) -> Next {
        if matches!(self.wire, Wire::Sniffing) {
            match self.sniff(shared) {
                Ok(true) => {}
                Ok(false) => return self.idle_step(shared),
                Err(lost) => return Next::Finish(Some(lost)),
            }
        }
        // 1. What the session gave goes out first.
        if self.sent < self.out.len() || self.wire.wants_write() {
            match self.write_out() {
                Ok(true) => {
                    shared.metrics.handle_sent(self.out.len());
                    self.stalled = None;
                    self.quiet = None;
                }
                Ok(false) if self.is_paused() => return Next::Wait,
                Ok(false) => {
                    let since = *self.stalled.get_or_insert_with(Instant::now);
                    // As the thread driver's write timeout: a client that takes nothing for
                    // the idle timeout is gone.
                    if since.elapsed() >= shared.config.idle_timeout {
                        return Next::Finish(Some("writing failed: timed out".to_owned()));
                    }
                    return Next::Wait;
                }
                Err(error) => return Next::Finish(Some(format!("writing failed: {error}"))),
            }
        }
        self.out.clear();
        self.sent = 0;
        if self.closed {
            return Next::Finish(None);
        }
        if self.more {
            return Next::Step(self.step(false, false));
        }
        if self.peer_closed {
            // As the thread driver: once the client left and the output drained, it is over.
            return Next::Finish(None);
        }
        if self.is_paused() {
            return self.idle_step(shared);
        }
        // 2. Input the session left is offered again now that its output drained.
        if self.reoffer {
            self.reoffer = false;
            return Next::Step(self.step(true, false));
        }
        if self.input.len() >= INPUT_LIMIT {
            tracing::error!(peer = %self.peer, "input buffer full without progress (a server bug)");
            return Next::Finish(Some("input not consumed".to_owned()));
        }
        // 3. More from the client (a slice at a time under a rate limit, handed on after the
        // limit's wait, as the thread driver's paced reads).
        let limit = INPUT_LIMIT.min(self.input.len().saturating_add(self.pace.slice()));
        match self
            .wire
            .read(&self.socket, &mut self.input, limit, scratch)
        {
            Ok(read) if read.bytes > 0 || read.eof => {
                shared.metrics.handle_received(read.bytes);
                self.quiet = None;
                self.peer_closed = read.eof;
                if self.pay(read.bytes) && !read.eof {
                    self.fresh = true;
                    self.reoffer = true;
                    return Next::Wait;
                }
                return Next::Step(self.step(read.bytes > 0, read.eof));
            }
            Ok(_) => {}
            Err(error) => return Next::Finish(Some(format!("reading failed: {error}"))),
        }
        // Nothing flows: the buffers go until bytes do again, once they have not for a moment.
        let now = Instant::now();
        if now >= *self.quiet.get_or_insert(now) + KEEP_BUFFERS {
            release(&mut self.out);
            self.input.release();
        }
        self.idle_step(shared)
    }

    /// Nothing from the socket: a step only if the time came or the loop asked for one.
    fn idle_step(&mut self, shared: &Shared) -> Next {
        let due = self
            .deadline
            .is_some_and(|deadline| deadline <= shared.now());
        if due || std::mem::take(&mut self.nudged) {
            return Next::Step(self.step(false, false));
        }
        Next::Wait
    }

    fn step(&mut self, offer: bool, eof: bool) -> Step {
        self.fresh &= !offer;
        Step {
            offer: offer || (eof && !self.input.is_empty()),
            input: std::mem::take(&mut self.input),
            eof,
            out: std::mem::take(&mut self.out),
        }
    }

    /// A TLS server's first look at a connection: `Ok(true)` once it knows what the client
    /// speaks, `Ok(false)` before the first byte. A plaintext ferry client is answered in
    /// plaintext that TLS is required.
    fn sniff(&mut self, shared: &Shared) -> Result<bool, String> {
        let mut byte = [0u8; 1];
        let first = match self.socket.peek(&mut byte) {
            Ok(0) => {
                self.peer_closed = true;
                return Err("closed before its first byte".to_owned());
            }
            Ok(_) => FirstByte::of(byte[0]),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(error) => return Err(format!("reading failed: {error}")),
        };
        let Some(identity) = shared.config.tls.as_ref() else {
            self.wire = Wire::Plain;
            return Ok(true);
        };
        if first == FirstByte::PlainFerry {
            tracing::warn!(peer = %self.peer, "refused a plaintext client: this server requires TLS");
            shared.metrics.handle_refused(Refusal::PlaintextOnTls);
            self.wire = Wire::Plain;
            self.out = crate::connection::plaintext_refusal(shared);
            self.sent = 0;
            self.closed = true;
            return Ok(true);
        }
        // Anything else goes to TLS, which refuses what is not a TLS hello with an alert.
        match Wire::tls(std::sync::Arc::clone(identity.config())) {
            Ok(wire) => {
                self.wire = wire;
                Ok(true)
            }
            Err(error) => {
                tracing::error!(peer = %self.peer, "cannot start TLS: {error}");
                Err(format!("cannot start TLS: {error}"))
            }
        }
    }

    /// When to look at the connection again if nothing else happens.
    pub(super) fn next_wake(&self, shared: &Shared) -> Option<Instant> {
        let deadline = self.deadline.map(|deadline| shared.instant(deadline));
        let stall = self.stalled.map(|since| since + shared.config.idle_timeout);
        // The end of a rate limit's pause, while something waits for it: the pause may have
        // ended already (between `pay` and now), and then the wake is at once; skipping it
        // would leave paid-for input unoffered, or output unwritten, until the idle deadline.
        let waiting = self.reoffer || self.sent < self.out.len();
        let paused = self.paused.filter(|_| self.is_paused() || waiting);
        let holds = self.input.holds_memory() || self.out.capacity() > 0;
        let release = self
            .quiet
            .filter(|_| holds)
            .map(|since| since + KEEP_BUFFERS);
        deadline
            .into_iter()
            .chain(stall)
            .chain(paused)
            .chain(release)
            .min()
    }

    /// Pays the rate limits for `bytes` now; returns whether the connection must now wait.
    fn pay(&mut self, bytes: usize) -> bool {
        let now = Instant::now();
        self.paused = Some(now + self.pace.pay(now, bytes));
        self.is_paused()
    }

    fn is_paused(&self) -> bool {
        self.paused.is_some_and(|until| Instant::now() < until)
    }

    /// Writes the output, a paid slice at a time under a rate limit (paying before each, as
    /// the thread driver's paced writes); returns whether all of it went out.
    fn write_out(&mut self) -> std::io::Result<bool> {
        if !self.pace.is_limited() {
            return self.wire.write(&self.socket, &self.out, &mut self.sent);
        }
        loop {
            if self.is_paused() {
                return Ok(false);
            }
            if self.sent == self.out.len() {
                // Only what TLS still holds, already paid for.
                return self.wire.write(&self.socket, &self.out, &mut self.sent);
            }
            if self.credit == 0 {
                let len = (self.out.len() - self.sent).min(self.pace.slice());
                self.credit = len;
                if self.pay(len) {
                    return Ok(false);
                }
            }
            let (before, end) = (self.sent, self.sent + self.credit);
            let done = self
                .wire
                .write(&self.socket, &self.out[..end], &mut self.sent)?;
            self.credit -= self.sent - before;
            if !done {
                return Ok(false);
            }
        }
    }
}

/// Frees `buffer`'s memory once it is empty: a connection pays for buffers only while data
/// flows.
fn release(buffer: &mut Vec<u8>) {
    if buffer.is_empty() && buffer.capacity() > 0 {
        *buffer = Vec::new();
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
