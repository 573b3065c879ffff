//! Opening a connection: plaintext, or TLS once the first byte shows a TLS client; and the
//! refusals sent before a connection is served (a plaintext client of a TLS server, a server
//! at its connection limit), each in the client's own language.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_protocol::{ErrorCode, ServerConnection};
use ferry_transport::{FirstByte, Transport, sniff};

use super::CLOSE_LINGER;
use crate::metrics::Refusal;
use crate::server::{Shared, linger};

/// How often a wait for the client's first byte looks at the shutdown flag.
const TICK: Duration = Duration::from_millis(250);

/// What a plaintext ferry client of a TLS server is told (the client recognises "requires TLS").
const REQUIRES_TLS: &str =
    "this server requires TLS; connect without --insecure (and check the server's fingerprint)";

/// The connection's transport: plaintext, or TLS once the first byte shows a TLS client. A
/// plaintext ferry client of a TLS server is told so in plaintext and let go.
pub(super) fn open_transport(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
    opened: Instant,
) -> Option<Transport> {
    let Some(identity) = shared.config.tls.as_ref() else {
        return Some(Transport::plain(stream));
    };
    let until = opened + shared.config.handshake_timeout;
    match sniff(&stream, until, TICK, || shared.shutdown.is_stopping())? {
        FirstByte::PlainFerry => {
            tracing::warn!(%peer, "refused a plaintext client: this server requires TLS");
            shared.metrics.handle_refused(Refusal::PlaintextOnTls);
            refuse_plaintext(shared, stream, ErrorCode::NotAuthorised, REQUIRES_TLS);
            None
        }
        // Anything else goes to TLS, which refuses what is not a TLS hello with an alert.
        _ => match Transport::tls_server(stream, Arc::clone(identity.config())) {
            Ok(transport) => Some(transport),
            Err(error) => {
                tracing::error!(%peer, "cannot start TLS: {error}");
                None
            }
        },
    }
}

/// What a plaintext ferry client of a TLS server is told: the magic and an `ERROR` saying
/// TLS is required.
pub(crate) fn plaintext_refusal(shared: &Shared) -> Vec<u8> {
    refusal(shared, ErrorCode::NotAuthorised, REQUIRES_TLS)
}

/// The magic and an `ERROR` with `code` and `message`.
fn refusal(shared: &Shared, code: ErrorCode, message: &str) -> Vec<u8> {
    let mut conn = ServerConnection::new(shared.config.protocol(), shared.now());
    let _ = conn.refuse_connection(code, message);
    let mut bytes = Vec::new();
    conn.poll_transmit(&mut bytes);
    bytes
}

/// Answers a plaintext client with the magic and an `ERROR`, then closes.
fn refuse_plaintext(shared: &Shared, mut stream: TcpStream, code: ErrorCode, message: &str) {
    let bytes = refusal(shared, code, message);
    let _ = stream.set_write_timeout(Some(CLOSE_LINGER));
    if io::Write::write_all(&mut stream, &bytes).is_ok() {
        linger(&mut stream, CLOSE_LINGER);
    }
}

/// Refuses a connection before serving it (the server is at its connection limit), over TLS
/// when the server speaks TLS, waiting at most `patience` for the client.
pub(crate) fn refuse_early(
    shared: &Shared,
    stream: TcpStream,
    code: ErrorCode,
    message: &str,
    patience: Duration,
) {
    let Some(identity) = shared.config.tls.as_ref() else {
        refuse_plaintext(shared, stream, code, message);
        return;
    };
    let until = Instant::now() + patience;
    match sniff(&stream, until, patience, || false) {
        Some(FirstByte::PlainFerry) => {
            refuse_plaintext(shared, stream, ErrorCode::NotAuthorised, REQUIRES_TLS)
        }
        None => {}
        Some(_) => {
            let _ = stream.set_read_timeout(Some(patience));
            let _ = stream.set_write_timeout(Some(patience));
            let Ok(mut transport) = Transport::tls_server(stream, Arc::clone(identity.config()))
            else {
                return;
            };
            let mut conn = ServerConnection::new(shared.config.protocol(), shared.now());
            let _ = conn.refuse_connection(code, message);
            let mut bytes = Vec::new();
            conn.poll_transmit(&mut bytes);
            if transport.handshake(until).is_ok()
                && io::Write::write_all(&mut transport, &bytes).is_ok()
                && io::Write::flush(&mut transport).is_ok()
            {
                linger(transport.finish(), patience);
            }
        }
    }
}
