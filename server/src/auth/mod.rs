//! Access tokens (PROTOCOL.md §10): which clients may connect, whether they may write, and the
//! folder each is confined to.
//!
//! The tokens file holds one token a line, hashed, never in clear:
//!
//! ```text
//! # sha256 of the token     rights  folder (optional)
//! sha256:9f86d08…15b0f00a08 rw
//! sha256:2c26b46…7e7425e7ae ro      photos/alice
//! ```
//!
//! `ferryd hash-token` prints such a line. Tokens should be long random strings (say 32 random
//! bytes in hex): a plain SHA-256 is then as good as a slow password hash. A presented token is
//! hashed and compared with every line in constant time. Failed attempts are logged and each
//! one from the same address waits longer before its refusal.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferry_protocol::validate_name;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// Pause before the first refusal from an address; it doubles with each further failure.
const FIRST_PENALTY: Duration = Duration::from_millis(200);

/// Longest pause before a refusal, so a connection thread is never held for long.
const MAX_PENALTY: Duration = Duration::from_secs(5);

/// Failures older than this are forgotten.
const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);

/// Addresses remembered at most; past it, the oldest half is forgotten.
const MAX_TRACKED: usize = 4096;

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rights {
    /// Download, list and query only; uploads and removals get `Forbidden`.
    ReadOnly,
    /// Everything.
    ReadWrite,
}

/// What one connection may do, decided at its `HELLO`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Grant {
    rights: Rights,
    /// Every name the client uses is taken inside this folder.
    folder: Option<String>,
}

impl Grant {
    /// Everything, everywhere: the grant when the server has no tokens file.
    pub(crate) fn full() -> Grant {
        Grant {
            rights: Rights::ReadWrite,
            folder: None,
        }
    }

    pub(crate) fn may_write(&self) -> bool {
        self.rights == Rights::ReadWrite
    }

    /// The stored name for a client's name: inside the token's folder. A valid client name
    /// has no `..` and is relative (the protocol checks it first), so the result stays inside.
    pub(crate) fn name(&self, name: &str) -> String {
        match &self.folder {
            Some(folder) => format!("{folder}/{name}"),
            None => name.to_owned(),
        }
    }

    /// The client's name for a stored name, or `None` if it lies outside the token's folder.
    pub(crate) fn client_name<'a>(&self, stored: &'a str) -> Option<&'a str> {
        match &self.folder {
            Some(folder) => stored.strip_prefix(folder.as_str())?.strip_prefix('/'),
            None => Some(stored),
        }
    }
}

/// Why a tokens file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// The file could not be read.
    #[error("cannot read the tokens file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `sha256:<64 hex digits> [ro|rw] [folder]`.
    #[error(
        "tokens file line {line}: {reason}; expected `sha256:<64 hex digits> [ro|rw] [folder]` (make one with `ferryd hash-token`)"
    )]
    Syntax {
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A folder given to `hash-token` is not a valid name.
    #[error("{0}")]
    Folder(String),
}

struct Entry {
    hash: [u8; 32],
    grant: Grant,
}

/// The accepted tokens, loaded from a file. Cheap to clone (clones share the failure counts).
#[derive(Clone)]
pub struct Tokens {
    entries: Arc<Vec<Entry>>,
    failures: Arc<Mutex<HashMap<IpAddr, Failures>>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Tokens {
    /// Reads a tokens file (see the module docs for its format).
    pub fn from_file(path: &Path) -> Result<Tokens, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: path.to_owned(),
            source,
        })?;
        Tokens::parse(&text)
    }

    /// Parses the text of a tokens file.
    pub fn parse(text: &str) -> Result<Tokens, TokensError> {
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let syntax = |reason: &str| TokensError::Syntax {
                line: index + 1,
                reason: reason.to_owned(),
            };
            let mut fields = line.split_whitespace();
            let hash = fields
                .next()
                .and_then(|f| f.strip_prefix("sha256:"))
                .and_then(parse_hex)
                .ok_or_else(|| syntax("the hash is not sha256: and 64 hex digits"))?;
            let mut rights = Rights::ReadWrite;
            let mut folder = None;
            for field in fields {
                match field {
                    "ro" if folder.is_none() => rights = Rights::ReadOnly,
                    "rw" if folder.is_none() => rights = Rights::ReadWrite,
                    _ if folder.is_none() => {
                        let name = field.trim_end_matches('/');
                        validate_name(name).map_err(|e| {
                            syntax(&format!("the folder {field:?} is not valid: {e}"))
                        })?;
                        folder = Some(name.to_owned());
                    }
                    _ => return Err(syntax(&format!("unexpected {field:?} after the folder"))),
                }
            }
            entries.push(Entry {
                hash,
                grant: Grant { rights, folder },
            });
        }
        Ok(Tokens {
            entries: Arc::new(entries),
            failures: Arc::default(),
        })
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is accepted (every client is refused).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The grant of `token`, comparing its hash with every entry in constant time.
    pub(crate) fn check(&self, token: &[u8]) -> Option<Grant> {
        let presented: [u8; 32] = Sha256::digest(token).into();
        let mut found = None;
        for entry in self.entries.iter() {
            if bool::from(entry.hash.ct_eq(&presented)) && found.is_none() {
                found = Some(entry.grant.clone());
            }
        }
        found
    }

    /// Counts a failed attempt from `ip` and returns how long to wait before refusing it.
    pub(crate) fn penalty(&self, ip: IpAddr) -> (u32, Duration) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, f| now.duration_since(f.last) < FAILURE_MEMORY / 2);
        }
        let entry = failures.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(entry.last) >= FAILURE_MEMORY {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        let factor = 1u32 << (entry.count - 1).min(8);
        (
            entry.count,
            FIRST_PENALTY.saturating_mul(factor).min(MAX_PENALTY),
        )
    }

    /// Forgets the failures of `ip` after it presented a good token.
    pub(crate) fn forgive(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&ip);
    }
}

/// The tokens-file line for `token`: its hash, rights and optional folder.
pub fn token_line(
    token: &str,
    rights: Rights,
    folder: Option<&str>,
) -> Result<String, TokensError> {
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut line = String::from("sha256:");
    for byte in hash {
        let _ = write!(line, "{byte:02x}");
    }
    line.push_str(match rights {
        Rights::ReadOnly => " ro",
        Rights::ReadWrite => " rw",
    });
    if let Some(folder) = folder {
        let folder = folder.trim_end_matches('/');
        validate_name(folder)
            .map_err(|e| TokensError::Folder(format!("the folder {folder:?} is not valid: {e}")))?;
        line.push(' ');
        line.push_str(folder);
    }
    Ok(line)
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_line_made_by_token_line_accepts_its_token_only() {
        let line = token_line("s3cret", Rights::ReadOnly, Some("photos/alice/")).unwrap();
        let tokens = Tokens::parse(&format!("# comment\n\n{line}\n")).unwrap();
        assert_eq!(tokens.len(), 1);
        let grant = tokens.check(b"s3cret").unwrap();
        assert!(!grant.may_write());
        assert_eq!(grant.name("a.jpg"), "photos/alice/a.jpg");
        assert_eq!(grant.client_name("photos/alice/a.jpg"), Some("a.jpg"));
        assert_eq!(grant.client_name("photos/alice2/a.jpg"), None);
        assert!(tokens.check(b"s3cret ").is_none());
        assert!(tokens.check(b"").is_none());
    }

    #[test]
    fn rights_default_to_read_write() {
        let line = token_line("t", Rights::ReadWrite, None).unwrap();
        let hash_only = line.split_whitespace().next().unwrap();
        let tokens = Tokens::parse(hash_only).unwrap();
        assert!(tokens.check(b"t").unwrap().may_write());
    }

    #[test]
    fn bad_lines_name_their_line_number() {
        let error = Tokens::parse("\nsha256:abc rw\n").err().unwrap();
        assert!(
            error.to_string().starts_with("tokens file line 2:"),
            "{error}"
        );
        let line = token_line("t", Rights::ReadWrite, None).unwrap();
        let error = Tokens::parse(&format!("{line} ../up")).err().unwrap();
        assert!(error.to_string().contains("folder"), "{error}");
    }

    #[test]
    fn penalties_grow_per_address_and_are_capped() {
        let tokens = Tokens::parse("").unwrap();
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(tokens.penalty(ip), (1, FIRST_PENALTY));
        assert_eq!(tokens.penalty(ip), (2, FIRST_PENALTY * 2));
        for _ in 0..20 {
            let _ = tokens.penalty(ip);
        }
        assert_eq!(tokens.penalty(ip).1, MAX_PENALTY);
        let other: IpAddr = [10, 0, 0, 2].into();
        assert_eq!(tokens.penalty(other), (1, FIRST_PENALTY));
        tokens.forgive(ip);
        assert_eq!(tokens.penalty(ip), (1, FIRST_PENALTY));
    }
}
