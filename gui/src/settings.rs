//! What the connect panel holds (server, token, TLS or plaintext), where the user's ferry
//! config folder is, and the servers remembered between runs.

use std::fs;
use std::io;
use std::path::Path;

use ferry_client::{ClientOptions, Security, Trust};

/// Name of the known-servers file in the config folder, shared with the `ferry` command.
pub const KNOWN_SERVERS: &str = "known_servers";

/// Name of the file listing the servers this program connected to, newest first.
pub const REMEMBERED_SERVERS: &str = "gui_servers";

/// Servers remembered at most.
pub const MAX_REMEMBERED: usize = 10;

/// How to reach a server, as typed in the connect panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectSettings {
    /// `HOST:PORT` of the server.
    pub addr: String,
    /// Access token (empty for none).
    pub token: String,
    /// Plaintext instead of TLS, for a server run with `--insecure`.
    pub insecure: bool,
}

impl Default for ConnectSettings {
    fn default() -> Self {
        ConnectSettings {
            addr: "127.0.0.1:7070".to_owned(),
            token: String::new(),
            insecure: false,
        }
    }
}

impl ConnectSettings {
    /// The server's host (without the brackets of an IPv6 address).
    pub fn host(&self) -> String {
        let addr = self.addr.trim();
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned()
    }

    /// The client options for these settings with `trust` (ignored when insecure).
    pub fn options(&self, trust: Trust) -> ClientOptions {
        ClientOptions {
            token: self.token.clone().into_bytes(),
            security: if self.insecure {
                Security::Insecure
            } else {
                Security::Tls(trust)
            },
            server_name: Some(self.host()),
            ..ClientOptions::default()
        }
    }
}

/// The remembered servers in `file`, newest first: one `HOST:PORT` per line, followed by
/// ` insecure` for a plaintext one. A missing file remembers nothing.
pub fn load_remembered(file: &Path) -> io::Result<Vec<ConnectSettings>> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let addr = fields.next()?;
            Some(ConnectSettings {
                addr: addr.to_owned(),
                token: String::new(),
                insecure: fields.next() == Some("insecure"),
            })
        })
        .take(MAX_REMEMBERED)
        .collect())
}

/// Puts `settings` first in `list` (without its token: tokens are secrets and never saved).
pub fn remember(list: &mut Vec<ConnectSettings>, settings: &ConnectSettings) {
    list.retain(|known| known.addr != settings.addr);
    list.insert(
        0,
        ConnectSettings {
            token: String::new(),
            ..settings.clone()
        },
    );
    list.truncate(MAX_REMEMBERED);
}

/// Writes `list` to `file`, creating its folder.
pub fn save_remembered(file: &Path, list: &[ConnectSettings]) -> io::Result<()> {
    if let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(folder)?;
    }
    let text: String = list
        .iter()
        .map(|s| {
            let mode = if s.insecure { " insecure" } else { "" };
            format!("{}{mode}\n", s.addr)
        })
        .collect();
    fs::write(file, text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn remembered_servers_round_trip_newest_first_without_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config/gui_servers");
        assert!(load_remembered(&file).unwrap().is_empty());
        let mut list = Vec::new();
        let a = ConnectSettings {
            addr: "a:1".into(),
            token: "secret".into(),
            insecure: true,
        };
        let b = ConnectSettings {
            addr: "b:2".into(),
            ..ConnectSettings::default()
        };
        remember(&mut list, &a);
        remember(&mut list, &b);
        remember(&mut list, &a);
        save_remembered(&file, &list).unwrap();
        let loaded = load_remembered(&file).unwrap();
        assert_eq!(
            loaded.iter().map(|s| s.addr.as_str()).collect::<Vec<_>>(),
            ["a:1", "b:2"]
        );
        assert!(loaded[0].insecure && !loaded[1].insecure);
        assert!(loaded.iter().all(|s| s.token.is_empty()));
        assert!(!fs::read_to_string(&file).unwrap().contains("secret"));
    }

    #[test]
    fn host_drops_port_and_brackets() {
        let mut s = ConnectSettings::default();
        assert_eq!(s.host(), "127.0.0.1");
        s.addr = "[::1]:7070".into();
        assert_eq!(s.host(), "::1");
    }
}
