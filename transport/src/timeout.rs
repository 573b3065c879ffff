//! Telling a socket timeout from a real failure.

use std::io;

/// Whether a socket error only means its read or write timeout passed (platforms report it as
/// either of two kinds), so that the caller may look at its clock and try again. A
/// [`Transport`](crate::Transport) under TLS reports "records came, but no plaintext yet" the
/// same way.
pub fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_timeout_kinds_are_timeouts() {
        assert!(is_timeout(&io::ErrorKind::WouldBlock.into()));
        assert!(is_timeout(&io::ErrorKind::TimedOut.into()));
        for kind in [
            io::ErrorKind::Interrupted,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::InvalidData,
        ] {
            assert!(!is_timeout(&kind.into()), "{kind:?}");
        }
    }
}
