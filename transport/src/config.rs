//! The TLS settings both ends share (PROTOCOL.md §10): TLS 1.3 only, with rustls's `ring`
//! provider. Whom a client trusts is the client's business: it passes its own verifier.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The cryptography both ends use: rustls's `ring` provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration for the certificate `chain` (leaf first) and its private `key`:
/// TLS 1.3 only, no client certificates, no session tickets (clients open a fresh connection
/// per transfer batch and never resume sessions).
///
/// # Errors
///
/// rustls refuses a key that does not match the certificate, or of an unsupported type.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A client configuration that accepts the server certificates `verifier` accepts: TLS 1.3
/// only, no client certificate.
///
/// # Errors
///
/// Only if the provider cannot do TLS 1.3, which `ring` can: kept as an error rather than a
/// panic.
pub fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
