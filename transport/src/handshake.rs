//! Completing the TLS handshake by a deadline, and why it may fail.

use std::io::{self, BufRead};
use std::time::Instant;

use crate::sniff::FirstByte;
use crate::stream::Transport;
use crate::timeout::is_timeout;

/// Why a TLS handshake did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The deadline passed, or the socket's write timeout did, before the handshake was done.
    #[error("the TLS handshake did not finish in time")]
    TimedOut,
    /// The peer closed the connection before the handshake was done.
    #[error("the peer closed the connection during the TLS handshake")]
    Closed,
    /// The peer answered in plaintext ferry: it runs without TLS (`--insecure`).
    #[error("the peer speaks ferry without TLS (it runs with --insecure)")]
    PlaintextPeer,
    /// TLS refused the peer (a certificate the verifier did not accept, no common version, a
    /// malformed message). The alert telling the peer why was sent if the socket took it.
    #[error("TLS failed: {0}")]
    Tls(#[source] rustls::Error),
    /// The socket failed.
    #[error("the connection failed during the TLS handshake: {0}")]
    Io(#[source] io::Error),
}

impl From<io::Error> for HandshakeError {
    fn from(error: io::Error) -> HandshakeError {
        if is_timeout(&error) {
            HandshakeError::TimedOut
        } else {
            HandshakeError::Io(error)
        }
    }
}

impl Transport {
    /// Completes the TLS handshake by `until`, each wait for the peer bounded by the time
    /// left (this sets the socket's read timeout). A peer whose first byte is the plaintext
    /// ferry magic is [`HandshakeError::PlaintextPeer`]. Plaintext has no handshake: `Ok`.
    ///
    /// # Errors
    ///
    /// See [`HandshakeError`].
    pub fn handshake(&mut self, until: Instant) -> Result<(), HandshakeError> {
        let Some(tls) = self.tls_mut() else {
            return Ok(());
        };
        let mut first = true;
        while tls.conn.is_handshaking() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HandshakeError::TimedOut);
            }
            tls.push()?;
            tls.socket.get_ref().set_read_timeout(Some(left))?;
            if first {
                // A plaintext server answers a TLS hello with its own magic and an error.
                let buffered = tls.socket.fill_buf()?;
                if buffered.first().copied().map(FirstByte::of) == Some(FirstByte::PlainFerry) {
                    return Err(HandshakeError::PlaintextPeer);
                }
                first = false;
            }
            if tls.conn.read_tls(&mut tls.socket)? == 0 {
                return Err(HandshakeError::Closed);
            }
            if let Err(error) = tls.conn.process_new_packets() {
                let _ = tls.push(); // the alert that tells the peer why
                return Err(HandshakeError::Tls(error));
            }
        }
        tls.push()?;
        Ok(())
    }
}
