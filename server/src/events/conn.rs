//! One connection on an event loop: its socket, its session and its [`Link`] (the byte side),
//! and where it is in its life. Between steps both the session and the link are home; a step
//! takes both to the pool, which runs the session and, while the connection stays busy, serves
//! the link there too (`step::run_away`), so that a large transfer does not come back to the
//! loop for every batch.

use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::link::{Link, Next};
use super::step::Away;
use crate::server::{Seat, Shared};
use crate::session::Session;

/// How long a closing connection lets the client read our last frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Served: the session and link are home or on the pool.
    Open,
    /// The session's last step is on the pool.
    Finishing,
    /// Our side is shut; reading what the client still sends until it closes or `until`.
    Lingering { until: Instant },
    /// Done: remove it.
    Gone,
}

/// What `advance` asks of the loop.
pub(super) enum Action {
    /// Nothing now: wait for readiness, a step's outcome or the time.
    Wait,
    /// Run this step of the session on the pool.
    Step(Away),
    /// Run the session's last step on the pool (`lost`: why the transport broke).
    Finish(Box<Session>, Option<String>),
}

/// One connection.
pub(super) struct Conn {
    socket: Arc<TcpStream>,
    pub(super) peer: SocketAddr,
    /// Home between steps; `None` while a step runs on the pool.
    session: Option<Box<Session>>,
    link: Option<Box<Link>>,
    /// Holds the connection's place under the limits until the connection is gone.
    _seat: Seat,
    pub(super) phase: Phase,
    /// Asked for a step while the link was on the pool: it gets one when it is home.
    nudged: bool,
    /// What the link said last on the pool, acted on when the loop next advances it.
    returned: Option<Next>,
    /// When `advance` wants to run again at the latest, as last told to the loop.
    pub(super) wake_at: Option<Instant>,
}

impl Conn {
    /// A new connection (its socket registered with the loop's poll), with its session.
    pub(super) fn new(
        shared: &Shared,
        socket: TcpStream,
        peer: SocketAddr,
        seat: Seat,
        session: Session,
    ) -> Conn {
        let socket = Arc::new(socket);
        Conn {
            link: Some(Box::new(Link::new(shared, Arc::clone(&socket), peer))),
            socket,
            peer,
            session: Some(Box::new(session)),
            _seat: seat,
            phase: Phase::Open,
            nudged: false,
            returned: None,
            wake_at: None,
        }
    }

    /// The socket's file descriptor, for the loop's poll.
    pub(super) fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Asks for a step as soon as the session is home.
    pub(super) fn nudge(&mut self) {
        match self.link.as_mut() {
            Some(link) => link.nudged = true,
            None => self.nudged = true,
        }
    }

    /// A newer connection took this one's upload over: its reads end, as the thread driver's
    /// do, and the session finds out at the end of stream.
    pub(super) fn end_reads(&mut self) {
        let _ = self.socket.shutdown(Shutdown::Read);
    }

    /// The session and link came back from the pool, where the link's last word was `next`;
    /// the loop's next `advance` acts on it.
    pub(super) fn handle_return(&mut self, session: Box<Session>, mut link: Box<Link>, next: Next) {
        link.nudged |= std::mem::take(&mut self.nudged);
        self.session = Some(session);
        self.link = Some(link);
        // On `Wait` the link is served again: readiness that came while it was away was not
        // seen by anyone.
        self.returned = match next {
            Next::Wait => None,
            next => Some(next),
        };
    }

    /// The session's last step ran: linger (unless the client left or the transport broke),
    /// then go.
    pub(super) fn handle_finished(&mut self) {
        match self.link.as_mut() {
            Some(link) if !link.peer_closed => {
                link.close();
                self.phase = Phase::Lingering {
                    until: Instant::now() + CLOSE_LINGER,
                };
            }
            _ => self.phase = Phase::Gone,
        }
    }

    /// Whether the TLS handshake never finished (counted when the connection goes).
    pub(super) fn tls_failed(&self) -> bool {
        self.link
            .as_ref()
            .is_some_and(|link| link.wire.is_handshaking())
    }

    /// Moves the connection as far as it goes without waiting; `scratch` is the loop's read
    /// buffer.
    pub(super) fn advance(&mut self, shared: &Shared, scratch: &mut [u8]) -> Action {
        match self.phase {
            Phase::Open => {}
            Phase::Lingering { until } => {
                self.linger(until, scratch);
                return Action::Wait;
            }
            Phase::Finishing | Phase::Gone => return Action::Wait,
        }
        let Some(link) = self.link.as_mut() else {
            return Action::Wait; // on the pool
        };
        self.wake_at = None;
        let next = match self.returned.take() {
            Some(next) => next,
            None => link.serve(shared, scratch),
        };
        self.act(shared, next)
    }

    /// Does what the link said comes next.
    fn act(&mut self, shared: &Shared, next: Next) -> Action {
        let (Some(session), Some(mut link)) = (self.session.take(), self.link.take()) else {
            return Action::Wait;
        };
        match next {
            Next::Wait => {
                self.wake_at = link.next_wake(shared);
                self.session = Some(session);
                self.link = Some(link);
                Action::Wait
            }
            Next::Step(step) => Action::Step(Away {
                session,
                link,
                step,
            }),
            Next::Finish(lost) => {
                self.phase = Phase::Finishing;
                if lost.is_some() {
                    link.peer_closed = true; // no linger on a broken transport
                }
                self.link = Some(link);
                Action::Finish(session, lost)
            }
        }
    }

    /// Reads and drops what the client still sends after our close, until it closes too.
    fn linger(&mut self, until: Instant, scratch: &mut [u8]) {
        use std::io::Read;
        loop {
            match (&*self.socket).read(scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() < until {
                        self.wake_at = Some(until);
                        return;
                    }
                    break;
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.phase = Phase::Gone;
    }
}
