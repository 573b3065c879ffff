//! The known-servers file: the certificate fingerprint each server showed the first time, one
//! `HOST:PORT SHA256:<hex>` line per server, like ssh's `known_hosts`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ferry_transport::Fingerprint;

/// The user's ferry config folder, where the known-servers file lives: `FERRY_CONFIG_DIR`,
/// else `$XDG_CONFIG_HOME/ferry`, else `~/.config/ferry` (`%APPDATA%\ferry` on Windows).
/// `None` when none of those variables is set. Every front end finds it the same way.
pub fn config_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("FERRY_CONFIG_DIR")
        .or_else(|| var("XDG_CONFIG_HOME").map(|p| p.join("ferry")))
        .or_else(|| var("HOME").map(|p| p.join(".config/ferry")))
        .or_else(|| var("APPDATA").map(|p| p.join("ferry")))
}

/// What the file says about a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    /// Never seen.
    Unknown,
    /// Seen with this very certificate.
    Same,
    /// Seen with another certificate (the first one recorded).
    Different(Fingerprint),
}

/// Looks `server` up. A missing file knows nothing; an unreadable one is an error (never a
/// reason to trust anew).
pub(crate) fn lookup(file: &Path, server: &str, seen: &Fingerprint) -> io::Result<Known> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Known::Unknown),
        Err(error) => return Err(error),
    };
    let mut known = Known::Unknown;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(name), Some(fingerprint)) = (fields.next(), fields.next()) else {
            continue;
        };
        if name != server || name.starts_with('#') {
            continue;
        }
        match fingerprint.parse::<Fingerprint>() {
            Ok(recorded) if recorded == *seen => return Ok(Known::Same),
            Ok(recorded) if known == Known::Unknown => known = Known::Different(recorded),
            _ => {}
        }
    }
    Ok(known)
}

/// Appends `server` (`HOST:PORT`) with its fingerprint to the known-servers `file`, creating
/// the file and its folder if needed: what trust on first use records, for other front ends
/// (the desktop client's trust prompt) to record the same way.
pub fn record(file: &Path, server: &str, fingerprint: &Fingerprint) -> io::Result<()> {
    if let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(folder)?;
    }
    let mut out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    // One write, so that parallel clients never interleave within a line.
    out.write_all(format!("{server} {fingerprint}\n").as_bytes())?;
    out.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_server_is_known_with_its_certificate_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config/known_servers");
        let (a, b) = (Fingerprint::of(b"a"), Fingerprint::of(b"b"));
        assert_eq!(lookup(&file, "h:1", &a).unwrap(), Known::Unknown);
        record(&file, "h:1", &a).unwrap();
        record(&file, "other:1", &b).unwrap();
        assert_eq!(lookup(&file, "h:1", &a).unwrap(), Known::Same);
        assert_eq!(lookup(&file, "h:1", &b).unwrap(), Known::Different(a));
        assert_eq!(lookup(&file, "h:2", &a).unwrap(), Known::Unknown);
    }
}
