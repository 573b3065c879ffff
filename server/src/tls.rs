//! TLS 1.3 for the server: its certificate and key, made on first start or given by the
//! operator, and the rustls configuration built from them (PROTOCOL.md §10).
//!
//! A self-signed certificate is the zero-setup default: clients pin its SHA-256 fingerprint
//! (printed at start) or trust it on first use, as ssh does with host keys.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};

/// Default state folder inside the storage root. Names starting with `.ferry` are reserved
/// (PROTOCOL.md §6), so no client can read or replace it.
pub const DEFAULT_STATE_DIR: &str = ".ferry-tls";

/// The certificate file in the state folder.
pub const CERT_FILE: &str = "cert.pem";

/// The private key file in the state folder, readable by its owner only.
pub const KEY_FILE: &str = "key.pem";

/// Why the server's TLS identity could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The state folder or a file in it could not be written.
    #[error("cannot write {}: {source}; check the state folder (--state-dir)", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A file holds no usable PEM certificate or private key.
    #[error("{} holds no PEM {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        what: &'static str,
    },
    /// The self-signed certificate could not be made.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate and key (a key that does not match the certificate, an
    /// unsupported key type).
    #[error("the certificate and key cannot be used for TLS 1.3: {0}")]
    Config(#[from] rustls::Error),
}

/// The SHA-256 digest of a certificate (its DER bytes), shown as `SHA256:<64 hex digits>`.
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

/// The server's certificate and key as a ready rustls configuration (TLS 1.3 only, `ring`).
#[derive(Clone)]
pub struct TlsIdentity {
    config: Arc<rustls::ServerConfig>,
    fingerprint: Fingerprint,
    created: bool,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Loads the certificate and key kept in `state_dir`, or, when they are not both there,
    /// makes a self-signed pair and keeps it there (the folder is created with mode 0700, the
    /// key file with mode 0600).
    pub fn load_or_create(state_dir: &Path) -> Result<TlsIdentity, TlsError> {
        let cert = state_dir.join(CERT_FILE);
        let key = state_dir.join(KEY_FILE);
        if cert.is_file() && key.is_file() {
            return TlsIdentity::from_pem_files(&cert, &key);
        }
        create_private_dir(state_dir)?;
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        // The key first: a certificate without its key is never left behind as complete.
        write_file(&key, made.signing_key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&cert, made.cert.pem().as_bytes(), 0o644)?;
        let mut identity = TlsIdentity::from_pem_files(&cert, &key)?;
        identity.created = true;
        Ok(identity)
    }

    /// Loads a certificate chain (leaf first) and its private key from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
        let read = |path: &Path| {
            fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
            .collect::<Result<_, _>>()
            .map_err(|_| TlsError::Pem {
                path: cert.to_owned(),
                what: "certificate",
            })?;
        let leaf = chain.first().ok_or_else(|| TlsError::Pem {
            path: cert.to_owned(),
            what: "certificate",
        })?;
        let fingerprint = Fingerprint::of(leaf);
        let key_der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|_| TlsError::Pem {
            path: key.to_owned(),
            what: "private key",
        })?;
        warn_if_readable_by_others(key);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)?;
        // Clients open a fresh connection per transfer batch and never resume sessions.
        config.send_tls13_tickets = 0;
        Ok(TlsIdentity {
            config: Arc::new(config),
            fingerprint,
            created: false,
        })
    }

    /// The certificate's fingerprint, the value clients pin with `--fingerprint`.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Whether [`TlsIdentity::load_or_create`] made a new certificate (rather than loading one).
    pub fn is_new(&self) -> bool {
        self.created
    }

    pub(crate) fn config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }
}

/// Creates `dir` with mode 0700 (its parents, such as the storage root, with the usual mode).
fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|source| TlsError::Write {
            path: parent.to_owned(),
            source,
        })?;
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// Writes `bytes` to `path` through a fresh temporary file created with `mode`, so the key is
/// never readable by others, not even for a moment, and never left half written.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let error = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let temporary = path.with_extension("tmp");
    let _ = fs::remove_file(&temporary);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&temporary).map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    file.sync_all().map_err(error)?;
    fs::rename(&temporary, path).map_err(error)
}

fn warn_if_readable_by_others(key: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = fs::metadata(key) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                key = %key.display(),
                "the TLS private key is readable by other users; run chmod 600 on it"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_in_hex() {
        let shown = Fingerprint::of(b"abc").to_string();
        assert_eq!(
            shown,
            "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_identity_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = TlsIdentity::load_or_create(&state).unwrap();
        assert!(first.is_new());
        let second = TlsIdentity::load_or_create(&state).unwrap();
        assert!(!second.is_new());
        assert_eq!(first.fingerprint(), second.fingerprint());
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        TlsIdentity::load_or_create(&state).unwrap();
        let key_mode = fs::metadata(state.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        let dir_mode = fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn a_file_without_a_certificate_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        fs::write(&cert, "not pem").unwrap();
        let error = TlsIdentity::from_pem_files(&cert, &cert).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("cert.pem holds no PEM certificate"),
            "{error}"
        );
    }
}
