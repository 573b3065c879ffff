//! TLS 1.3 for the server: its certificate and key, made on first start or given by the
//! operator, and the rustls configuration built from them (PROTOCOL.md §10).
//!
//! A self-signed certificate is the zero-setup default: clients pin its SHA-256 fingerprint
//! (printed at start) or trust it on first use, as ssh does with host keys.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_transport::Fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::confined::{Folder, Kind, StateFolderError};

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
    /// The state folder is a symbolic link, not a folder or another user's.
    #[error(transparent)]
    StateFolder(#[from] StateFolderError),
    /// The self-signed certificate could not be made.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate and key (a key that does not match the certificate, an
    /// unsupported key type).
    #[error("the certificate and key cannot be used for TLS 1.3: {0}")]
    Config(#[from] rustls::Error),
}

/// The server's certificate and key as a ready rustls configuration (TLS 1.3 only, `ring`:
/// [`ferry_transport::server_config`]).
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
    /// makes a self-signed pair and keeps it there. The folder is the server's own: created
    /// with mode 0700, refused if it is a symbolic link or another user's; its files are
    /// reached through its handle and never through a symbolic link, and the key file is
    /// written with mode 0600.
    pub fn load_or_create(state_dir: &Path) -> Result<TlsIdentity, TlsError> {
        let folder = open_state_folder(state_dir)?;
        let cert = state_dir.join(CERT_FILE);
        let key = state_dir.join(KEY_FILE);
        let is_file = |name| {
            folder
                .status(name)
                .ok()
                .flatten()
                .is_some_and(|s| s.kind() == Kind::File)
        };
        if is_file(CERT_FILE) && is_file(KEY_FILE) {
            let read = |name, path: &Path| {
                folder
                    .read(name, MAX_PEM_LEN)
                    .map_err(|source| TlsError::Read {
                        path: path.to_owned(),
                        source,
                    })
            };
            return TlsIdentity::from_pem(
                &read(CERT_FILE, &cert)?,
                &cert,
                &read(KEY_FILE, &key)?,
                &key,
            );
        }
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        // The key first: a certificate without its key is never left behind as complete.
        let key_pem = made.signing_key.serialize_pem();
        let cert_pem = made.cert.pem();
        for (name, path, bytes, mode) in [
            (KEY_FILE, &key, key_pem.as_bytes(), 0o600),
            (CERT_FILE, &cert, cert_pem.as_bytes(), 0o644),
        ] {
            folder
                .write_atomically(name, bytes, mode, true)
                .and_then(|()| folder.sync())
                .map_err(|source| TlsError::Write {
                    path: path.to_owned(),
                    source,
                })?;
        }
        let mut identity =
            TlsIdentity::from_pem(cert_pem.as_bytes(), &cert, key_pem.as_bytes(), &key)?;
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
        warn_if_readable_by_others(key);
        TlsIdentity::from_pem(&read(cert)?, cert, &read(key)?, key)
    }

    /// The identity from PEM bytes of a certificate chain and a key (their paths for errors).
    fn from_pem(
        cert_pem: &[u8],
        cert: &Path,
        key_pem: &[u8],
        key: &Path,
    ) -> Result<TlsIdentity, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
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
        let key_der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::Pem {
            path: key.to_owned(),
            what: "private key",
        })?;
        Ok(TlsIdentity {
            config: ferry_transport::server_config(chain, key_der)?,
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

/// Longest certificate chain or key file read from the state folder.
const MAX_PEM_LEN: u64 = 1024 * 1024;

/// Opens the state folder as the server's own (see [`Folder::own_folder`]), creating the
/// folders above it with the usual mode if they are missing.
fn open_state_folder(dir: &Path) -> Result<Folder, TlsError> {
    let io = |source| {
        TlsError::StateFolder(StateFolderError::Io {
            path: dir.to_owned(),
            source,
        })
    };
    let name = dir
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| io(io::Error::other("the path does not end in a folder name")))?;
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(|source| TlsError::Write {
        path: parent.to_owned(),
        source,
    })?;
    let parent = Folder::open(parent).map_err(io)?;
    Ok(parent.own_folder(name, dir)?)
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
