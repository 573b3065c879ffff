//! How a client protects its connection: TLS 1.3 and whom it trusts, or plaintext.

use std::path::PathBuf;

use ferry_transport::Fingerprint;

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
