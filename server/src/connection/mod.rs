//! One connection's thread: moves bytes between a socket and a [`Session`], and sleeps until
//! the session's own deadline. Every decision is the session's; this loop only reads, writes
//! and tells the time.
//!
//! Under TLS the loop reads and writes plaintext through a [`Transport`] that drives rustls;
//! the first byte tells a TLS client from a plaintext ferry client, which is answered in
//! plaintext that the server requires TLS (see `opening`). Writes give up once the client has
//! taken no bytes for the idle timeout (the socket's write timeout), which ends a download to
//! a client that stopped reading. Shutdown wakes an idle connection's read (see
//! [`crate::server::ShutdownSignal`]), so no periodic tick is needed.
//!
//! Rate limits (the connection's own and the one all connections share) pace the stream
//! itself ([`Paced`]): a write waits before each slice of a download, and a read waits after
//! each slice of an upload, so that the socket's buffers fill and TCP slows the client down.
//! The session never sees the waits; it only sees bytes arrive more slowly.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_transport::{Paced, Transport, is_timeout};

use crate::server::{Shared, linger};
use crate::session::Session;

mod input;
mod opening;

use input::{IDLE_READ, Input};

use opening::open_transport;
pub(crate) use opening::{plaintext_refusal, refuse_early};

/// Bytes read from the socket at once. Control frames are at most 16 KiB, so a frame always fits.
const INPUT_BUFFER: usize = 256 * 1024;

/// How long a closing connection lets the client read our last frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Serves one client until it leaves, fails, times out or the server shuts down.
pub(crate) fn serve(shared: &Shared, stream: TcpStream, peer: SocketAddr) {
    let opened = shared.now();
    let Some(stream) = open_transport(shared, stream, peer, Instant::now()) else {
        return;
    };
    let mut stream = Paced::new(stream, shared.rate_limits());
    let _ = stream
        .get_ref()
        .socket()
        .set_write_timeout(Some(shared.config.idle_timeout));
    let Ok(wake) = shared.shutdown.register(stream.get_ref().socket()) else {
        return;
    };
    let mut session = Session::new(shared.context(), peer, opened);
    // A takeover of this connection's upload by a newer one ends its reads.
    if let Ok(socket) = stream.get_ref().socket().try_clone() {
        session.set_waker(Arc::new(move || {
            let _ = socket.shutdown(Shutdown::Read);
        }));
    }
    tracing::debug!(%peer, "connection opened");
    let peer_closed = drive(shared, &mut stream, &mut session, &wake);
    session.close();
    if stream.get_ref().is_handshaking() {
        shared.metrics.handle_tls_failed();
    }
    if !peer_closed {
        linger(stream.get_mut().finish(), CLOSE_LINGER);
    }
    tracing::debug!(%peer, "connection closed");
}

/// The loop; returns whether the client closed its side first.
fn drive(
    shared: &Shared,
    stream: &mut Paced<Transport>,
    session: &mut Session,
    wake: &crate::server::Wake,
) -> bool {
    let mut input = Input::default();
    let (mut out, mut peer_closed) = (Vec::new(), false);
    loop {
        if shared.shutdown.is_stopping() {
            session.handle_shutdown(shared.now(), shared.shutdown.is_past_grace());
        }
        // Before the answer goes out, so a client told to go ahead is never woken as idle.
        wake.set_busy(session.is_busy());
        while {
            out.clear();
            session.poll_transmit(&mut out) > 0
        } {
            if let Err(error) = stream.write_all(&out).and_then(|()| stream.flush()) {
                session.handle_lost(&format!("writing failed: {error}"));
                return peer_closed;
            }
            shared.metrics.handle_sent(out.len());
            if shared.shutdown.is_past_grace() {
                session.handle_shutdown(shared.now(), true);
            }
        }
        // The output is drained: the buffer it used goes until the next answer.
        release(&mut out);
        if session.is_closed() || peer_closed {
            return peer_closed;
        }
        // Bytes the session left (a pipelined request behind a download) are offered again
        // now that its output drained, before waiting for more from the socket.
        if !input.is_empty() && input.offer(session, shared.now()) > 0 {
            continue;
        }
        let now = shared.now();
        let wait = match session.poll_timeout() {
            Some(deadline) if deadline <= now => {
                session.handle_timeout(now);
                continue;
            }
            Some(deadline) => Some(deadline.saturating_since(now).max(Duration::from_millis(1))),
            None => None,
        };
        let keep = input.keep_left(session.is_busy());
        let wait = wait.into_iter().chain(keep).min();
        let _ = stream.get_ref().socket().set_read_timeout(wait);
        match input.read(stream, session.is_busy()) {
            // A shutdown wakes a waiting connection by ending its reads: not the client's doing.
            Ok(0) if shared.shutdown.is_stopping() => {
                session.handle_shutdown(shared.now(), true);
            }
            Err(error)
                if !is_timeout(&error)
                    && error.kind() != io::ErrorKind::Interrupted
                    && shared.shutdown.is_stopping() =>
            {
                session.handle_shutdown(shared.now(), true);
            }
            Ok(0) => {
                peer_closed = true;
                session.handle_eof(shared.now());
            }
            // A TLS stream whose read side was shut ends without close_notify.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                peer_closed = true;
                session.handle_eof(shared.now());
            }
            Ok(n) => {
                shared.metrics.handle_received(n);
                input.offer(session, shared.now());
                if input.is_full() {
                    // Unreachable: every frame but DATA fits in a fraction of the buffer and
                    // DATA streams through.
                    tracing::error!("input buffer full without progress (a server bug)");
                    session.handle_lost("input not consumed");
                    return peer_closed;
                }
            }
            Err(error) if is_timeout(&error) || error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                session.handle_lost(&format!("reading failed: {error}"));
                return true;
            }
        }
    }
}

/// Frees `buffer`'s memory once it is empty.
pub(super) fn release(buffer: &mut Vec<u8>) {
    if buffer.capacity() > IDLE_READ {
        *buffer = Vec::new();
    }
}
