//! How a client protects its connection: TLS 1.3 and whom it trusts, or plaintext.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// How the connection is protected. The default is TLS trusting only certificates signed by a
/// well-known authority for the server's name ([`Trust::WebPki`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Security {
    /// TLS 1.3, trusting the server's certificate as [`Trust`] says.
    Tls(Trust),
    /// Plaintext: anyone on the path can read and change the data and the token. The server
    /// must run `--insecure` too.
    Insecure,
}

impl Default for Security {
    fn default() -> Self {
        Security::Tls(Trust::WebPki)
    }
}

/// Which server certificates a client accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// A certificate from a well-known certificate authority (the Mozilla roots), valid for
    /// [`ClientOptions::server_name`](crate::ClientOptions::server_name).
    WebPki,
    /// Exactly the certificate with this fingerprint, whatever its name or dates.
    Pinned(Fingerprint),
    /// Like ssh: a certificate from a well-known authority, valid for the server's name, is
    /// accepted; otherwise the certificate this server showed before, as recorded in this
    /// known-servers file. A server met for the first time is trusted and recorded (one with
    /// an authority's certificate too, so that an interceptor's self-signed certificate is
    /// refused later); a server whose certificate changed is refused
    /// ([`ClientError::CertificateChanged`]) and the file is left as it is.
    ///
    /// [`ClientError::CertificateChanged`]: crate::ClientError::CertificateChanged
    KnownServers(PathBuf),
}

/// The SHA-256 digest of a certificate (its DER bytes), written `SHA256:<64 hex digits>` as
/// `ferryd` prints it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHA256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A fingerprint that is not `SHA256:` and 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a certificate fingerprint; expected SHA256: and 64 hex digits, as ferryd prints at start"
)]
pub struct FingerprintError(String);

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(text: &str) -> Result<Fingerprint, FingerprintError> {
        let invalid = || FingerprintError(text.to_owned());
        let trimmed = text.trim();
        let hex = trimmed
            .get(..7)
            .filter(|prefix| prefix.eq_ignore_ascii_case("sha256:"))
            .map(|_| &trimmed[7..])
            .ok_or_else(invalid)?;
        let hex: String = hex.chars().filter(|c| *c != ':').collect();
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(Fingerprint(bytes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_reads_back_what_it_shows() {
        let fingerprint = Fingerprint::of(b"abc");
        let shown = fingerprint.to_string();
        assert_eq!(
            shown,
            "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(shown.parse::<Fingerprint>().unwrap(), fingerprint);
        assert_eq!(
            shown
                .to_uppercase()
                .replace("SHA256:", "sha256:")
                .parse::<Fingerprint>(),
            Ok(fingerprint)
        );
    }

    #[test]
    fn malformed_fingerprints_are_refused() {
        for text in [
            "",
            "SHA256:",
            "ba7816bf",
            "MD5:ba78",
            "SHA256:zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ] {
            assert!(text.parse::<Fingerprint>().is_err(), "{text}");
        }
    }
}
