//! A loopback socket pair, a throwaway certificate, and a client verifier that pins it.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_transport::{Fingerprint, is_timeout};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A connected pair of loopback sockets: (client's end, server's end).
pub fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let client = TcpStream::connect(listener.local_addr().expect("its address")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// A self-signed certificate for `localhost` and the server configuration that shows it.
pub struct Identity {
    pub config: Arc<rustls::ServerConfig>,
    pub fingerprint: Fingerprint,
}

pub fn identity() -> Identity {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("make a certificate");
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let fingerprint = Fingerprint::of(&cert);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let config = ferry_transport::server_config(vec![cert], key).expect("a server config");
    Identity {
        config,
        fingerprint,
    }
}

/// The client configuration that trusts exactly the certificate with `fingerprint`.
pub fn client_config(fingerprint: Fingerprint) -> Arc<rustls::ClientConfig> {
    let verifier = Arc::new(Pinned {
        fingerprint,
        provider: ferry_transport::provider(),
    });
    ferry_transport::client_config(verifier).expect("a client config")
}

pub fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("a valid name")
}

#[derive(Debug)]
struct Pinned {
    fingerprint: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Fingerprint::of(end_entity) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
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

/// How long any test waits for its peer before failing rather than hanging.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Reads until `buf` is full, retrying reads that only timed out (a TLS read reports "records
/// but no plaintext yet" as a timeout), for at most [`PATIENCE`].
pub fn read_exact_patiently(stream: &mut impl Read, buf: &mut [u8]) {
    let until = Instant::now() + PATIENCE;
    let mut filled = 0;
    while filled < buf.len() {
        assert!(Instant::now() < until, "the peer sent too little");
        match stream.read(&mut buf[filled..]) {
            Ok(0) => panic!("the stream ended after {filled} of {} bytes", buf.len()),
            Ok(n) => filled += n,
            Err(error) if is_timeout(&error) => {}
            Err(error) => panic!("read failed: {error}"),
        }
    }
}

/// Reads until the stream ends, retrying reads that only timed out; returns the error if one
/// ends it instead.
pub fn read_to_end_patiently(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let until = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        assert!(Instant::now() < until, "the stream did not end");
        match stream.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(error) if is_timeout(&error) => {}
            Err(error) => return Err(error),
        }
    }
}
