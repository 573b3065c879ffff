//! The client's TLS 1.3 handshake (PROTOCOL.md §10): which certificate it accepts (pinned,
//! known from an earlier visit, or signed by a well-known authority) and what it tells the
//! user when the answer is no.

use std::io;
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use ferry_transport::{Fingerprint, HandshakeError, Transport};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::ClientError;
use crate::known_servers::{self, Known};
use crate::security::Trust;

/// What the verifier concluded about the server's certificate.
#[derive(Clone, Debug)]
enum Verdict {
    /// Accepted: pinned, known, or signed by an authority.
    Trusted,
    /// Accepted as a server met for the first time: record it once the handshake succeeds.
    /// A certificate from an authority is recorded too, so that a later certificate that is
    /// not from one (an interceptor's self-signed one) is refused as a change.
    FirstUse {
        seen: Fingerprint,
        by_authority: bool,
    },
    /// Refused: the recorded certificate of this server is another one.
    Changed {
        known: Fingerprint,
        seen: Fingerprint,
    },
    /// Refused: not the pinned certificate.
    NotPinned {
        pinned: Fingerprint,
        seen: Fingerprint,
    },
    /// Refused: the known-servers file could not be read.
    Unreadable(String),
}

#[derive(Debug)]
struct Verifier {
    trust: Trust,
    /// `HOST:PORT`, the server's entry in the known-servers file.
    server: String,
    provider: Arc<CryptoProvider>,
    verdict: Mutex<Option<Verdict>>,
}

impl Verifier {
    fn decide(&self, verdict: Verdict) -> Result<ServerCertVerified, rustls::Error> {
        let ok = matches!(verdict, Verdict::Trusted | Verdict::FirstUse { .. });
        *self.verdict.lock().unwrap_or_else(PoisonError::into_inner) = Some(verdict);
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate is not trusted".into(),
            ))
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of(end_entity);
        let by_authority = || {
            webpki_verifier(&self.provider)?.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )
        };
        match &self.trust {
            Trust::Pinned(pinned) if *pinned == seen => self.decide(Verdict::Trusted),
            Trust::Pinned(pinned) => self.decide(Verdict::NotPinned {
                pinned: *pinned,
                seen,
            }),
            Trust::WebPki => by_authority(),
            Trust::KnownServers(file) => {
                let known = known_servers::lookup(file, &self.server, &seen);
                if by_authority().is_ok() {
                    // Valid by name: accepted even if renewed since it was recorded.
                    return self.decide(match known {
                        Ok(Known::Unknown) => Verdict::FirstUse {
                            seen,
                            by_authority: true,
                        },
                        _ => Verdict::Trusted,
                    });
                }
                match known {
                    Ok(Known::Same) => self.decide(Verdict::Trusted),
                    Ok(Known::Unknown) => self.decide(Verdict::FirstUse {
                        seen,
                        by_authority: false,
                    }),
                    Ok(Known::Different(known)) => self.decide(Verdict::Changed { known, seen }),
                    Err(error) => self.decide(Verdict::Unreadable(format!(
                        "cannot read the known-servers file {}: {error}",
                        file.display()
                    ))),
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The verifier for certificates from well-known authorities, built once.
fn webpki_verifier(
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, rustls::Error> {
    static VERIFIER: OnceLock<Result<Arc<WebPkiServerVerifier>, String>> = OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(rustls::Error::General)
}

/// Runs the TLS handshake over `socket` to the server known as `server` (`HOST:PORT`, whose
/// host part is checked against a certificate from an authority) within `timeout`.
pub(crate) fn connect(
    socket: TcpStream,
    host: &str,
    server: &str,
    trust: &Trust,
    timeout: Duration,
) -> Result<Transport, ClientError> {
    let verifier = Arc::new(Verifier {
        trust: trust.clone(),
        server: server.to_owned(),
        provider: ferry_transport::provider(),
        verdict: Mutex::new(None),
    });
    let config = ferry_transport::client_config(Arc::<Verifier>::clone(&verifier))
        .map_err(|e| tls_error(server, &e))?;
    // A host name TLS cannot carry (an underscore, say) is left out: the address stands in.
    let name = match (ServerName::try_from(host.to_owned()), socket.peer_addr()) {
        (Ok(name), _) => name,
        (Err(_), Ok(peer)) => ServerName::IpAddress(peer.ip().into()),
        (Err(_), Err(source)) => {
            return Err(ClientError::Network {
                during: "starting TLS",
                source,
            });
        }
    };
    let mut transport =
        Transport::tls_client(socket, config, name).map_err(|e| tls_error(server, &e))?;
    let result = transport.handshake(Instant::now() + timeout);
    let verdict = verifier
        .verdict
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match (result, verdict) {
        (Ok(()), Some(Verdict::FirstUse { seen, by_authority })) => {
            if let Trust::KnownServers(file) = trust {
                known_servers::record(file, server, &seen).map_err(|source| {
                    ClientError::Local {
                        action: "cannot record the server's certificate in",
                        path: file.clone(),
                        source,
                    }
                })?;
                if by_authority {
                    tracing::info!(server, fingerprint = %seen, file = %file.display(), "recorded a server verified by its certificate authority");
                } else {
                    tracing::warn!(server, fingerprint = %seen, file = %file.display(), "trusting a new server on first use");
                }
            }
            Ok(transport)
        }
        (Ok(()), _) => Ok(transport),
        (Err(_), Some(Verdict::Changed { known, seen })) => {
            let file = match trust {
                Trust::KnownServers(file) => file.clone(),
                _ => Default::default(),
            };
            Err(ClientError::CertificateChanged {
                server: server.to_owned(),
                known,
                seen,
                file,
            })
        }
        (Err(_), Some(Verdict::NotPinned { pinned, seen })) => Err(ClientError::NotPinned {
            server: server.to_owned(),
            pinned,
            seen,
        }),
        (Err(_), Some(Verdict::Unreadable(reason))) => Err(ClientError::Tls {
            server: server.to_owned(),
            reason,
        }),
        (Err(error), _) => Err(handshake_error(error, server, timeout)),
    }
}

/// What the user is told when the handshake failed for another reason than the certificate.
fn handshake_error(error: HandshakeError, server: &str, timeout: Duration) -> ClientError {
    let during = "the TLS handshake";
    match error {
        HandshakeError::TimedOut => ClientError::TimedOut {
            what: during,
            after: timeout,
        },
        HandshakeError::Closed => ClientError::Network {
            during,
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the TLS handshake",
            ),
        },
        HandshakeError::PlaintextPeer => ClientError::ServerInsecure {
            server: server.to_owned(),
        },
        HandshakeError::Tls(error) => tls_error(server, &error),
        HandshakeError::Io(source) => ClientError::Network { during, source },
        other => ClientError::Network {
            during,
            source: io::Error::other(other),
        },
    }
}

fn tls_error(server: &str, error: &rustls::Error) -> ClientError {
    ClientError::Tls {
        server: server.to_owned(),
        reason: error.to_string(),
    }
}
