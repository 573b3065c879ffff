//! The trust prompt's groundwork: whether the known-servers file (the one the `ferry` command
//! uses) already lists a server, the fingerprint an unknown server shows, and recording it
//! once the user accepted (with the client library's `record_known_server`). The verdict
//! itself (same certificate, or refused as changed) is always the client library's, through
//! [`Trust::KnownServers`].

use std::fs;
use std::io;
use std::path::Path;

use ferry_client::{Client, ClientError, Fingerprint, Trust};

use crate::settings::ConnectSettings;

/// The server's entry name in the known-servers file, `HOST:PORT`, as the client library
/// writes it (the host as given, IPv6 in brackets).
pub fn server_key(settings: &ConnectSettings) -> String {
    let host = settings.host();
    let port = settings
        .addr
        .trim()
        .rsplit_once(':')
        .map_or("", |(_, port)| port);
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Whether `file` has a line for `server` (whatever its fingerprint: the library decides
/// whether it still matches). A missing file lists nothing.
pub fn is_known(file: &Path, server: &str) -> io::Result<bool> {
    match fs::read_to_string(file) {
        Ok(text) => Ok(text.lines().any(|line| {
            let mut fields = line.split_whitespace();
            fields.next() == Some(server) && fields.next().is_some()
        })),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// The fingerprint of the certificate the server shows, learnt by a handshake that trusts
/// nothing (a pin no certificate has), so nothing is sent and nothing is recorded.
pub fn probe(settings: &ConnectSettings) -> Result<Fingerprint, ClientError> {
    let nothing = Trust::Pinned(Fingerprint::of(b"ferry-gui: trusts no certificate"));
    match Client::connect(settings.addr.trim(), settings.options(nothing)) {
        Err(ClientError::NotPinned { seen, .. }) => Ok(seen),
        Err(error) => Err(error),
        Ok(_) => Err(ClientError::Tls {
            server: settings.addr.clone(),
            reason: "the server's certificate could not be read".to_owned(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_server_is_known_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ferry/known_servers");
        assert!(!is_known(&file, "h:1").unwrap());
        ferry_client::record_known_server(&file, "h:1", &Fingerprint::of(b"a")).unwrap();
        assert!(is_known(&file, "h:1").unwrap());
        assert!(!is_known(&file, "h:2").unwrap());
    }

    #[test]
    fn server_key_matches_the_librarys_host_port() {
        let mut settings = ConnectSettings::default();
        assert_eq!(server_key(&settings), "127.0.0.1:7070");
        settings.addr = "[::1]:9".into();
        assert_eq!(server_key(&settings), "[::1]:9");
    }
}
