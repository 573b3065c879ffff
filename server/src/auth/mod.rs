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
//! `ferryd hash-token` prints such a line, and refuses a token with less than 128 bits of
//! estimated entropy ([`check_token_strength`]): a plain SHA-256 of such a token is as good as a
//! slow password hash. A presented token is hashed and compared with every line in constant
//! time, once the guess caps ([`guesses`]) admit the attempt: an address, and the server as a
//! whole, may only try so many tokens a second, and a correct token never resets that.
//!
//! - `grant`: what an accepted token allows, and its folder's names in and out.
//! - `guesses`: the caps on attempts, on a clock passed in.
//! - `strength`: the entropy estimate, and `--generate`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use ferry_protocol::{ErrorCode, Timestamp, validate_name};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

mod grant;
mod guesses;
mod strength;

pub(crate) use grant::Grant;
pub use grant::Rights;
use guesses::{GuessLimiter, TooManyGuesses};
pub use strength::{MIN_TOKEN_BITS, WeakToken, check_token_strength, generate_token};

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

/// The accepted tokens, loaded from a file. Cheap to clone (clones share the guess caps).
#[derive(Clone)]
pub struct Tokens {
    entries: Arc<Vec<Entry>>,
    guesses: Arc<Mutex<GuessLimiter>>,
    /// Where the guess caps' clock starts: times given to [`Tokens::check`] count from here.
    epoch: Instant,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// Why a `HELLO` was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The token was checked and matches no line.
    #[error("wrong or missing access token")]
    WrongToken {
        /// Guesses its address has left before it must wait.
        guesses_left: u32,
    },
    /// Too many attempts: the token was not looked at.
    #[error(transparent)]
    TooManyGuesses(#[from] TooManyGuesses),
}

impl Refusal {
    /// The code the client receives: `Busy` for a cap, which the client may retry later.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Refusal::WrongToken { .. } => ErrorCode::NotAuthorised,
            Refusal::TooManyGuesses(_) => ErrorCode::Busy,
        }
    }
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
            guesses: Arc::default(),
            epoch: Instant::now(),
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

    /// The grant of `token` presented from `ip` at `now`, once the guess caps admit the
    /// attempt (see [`guesses`]); the token is only looked at if they do.
    pub(crate) fn check(&self, ip: IpAddr, token: &[u8], now: Instant) -> Result<Grant, Refusal> {
        let since = now.saturating_duration_since(self.epoch);
        let now = Timestamp::from_micros(u64::try_from(since.as_micros()).unwrap_or(u64::MAX));
        let guess = self.limiter().admit(ip, now)?;
        match self.find(token) {
            Some(grant) => {
                self.limiter().handle_correct(guess, now);
                Ok(grant)
            }
            None => {
                let guesses_left = self.limiter().handle_wrong(guess, now);
                Err(Refusal::WrongToken { guesses_left })
            }
        }
    }

    /// The grant of `token`, comparing its hash with every entry in constant time.
    fn find(&self, token: &[u8]) -> Option<Grant> {
        let presented: [u8; 32] = Sha256::digest(token).into();
        let mut found = None;
        for entry in self.entries.iter() {
            if bool::from(entry.hash.ct_eq(&presented)) && found.is_none() {
                found = Some(entry.grant.clone());
            }
        }
        found
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, GuessLimiter> {
        self.guesses.lock().unwrap_or_else(PoisonError::into_inner)
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

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn check(tokens: &Tokens, token: &[u8]) -> Option<Grant> {
        tokens.check(IP, token, tokens.epoch).ok()
    }

    #[test]
    fn a_line_made_by_token_line_accepts_its_token_only() {
        let line = token_line("s3cret", Rights::ReadOnly, Some("photos/alice/")).unwrap();
        let tokens = Tokens::parse(&format!("# comment\n\n{line}\n")).unwrap();
        assert_eq!(tokens.len(), 1);
        let grant = check(&tokens, b"s3cret").unwrap();
        assert!(!grant.may_write());
        assert_eq!(grant.name("a.jpg"), "photos/alice/a.jpg");
        assert_eq!(grant.client_name("photos/alice/a.jpg"), Some("a.jpg"));
        assert!(check(&tokens, b"s3cret ").is_none());
        assert!(check(&tokens, b"").is_none());
    }

    #[test]
    fn rights_default_to_read_write() {
        let line = token_line("t", Rights::ReadWrite, None).unwrap();
        let hash_only = line.split_whitespace().next().unwrap();
        let tokens = Tokens::parse(hash_only).unwrap();
        assert!(check(&tokens, b"t").unwrap().may_write());
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
    fn past_the_cap_even_a_correct_token_is_refused_unchecked_with_a_time_to_retry() {
        let line = token_line("good", Rights::ReadWrite, None).unwrap();
        let tokens = Tokens::parse(&line).unwrap();
        let now = tokens.epoch;
        let mut wrong = 0;
        let refusal = loop {
            match tokens.check(IP, b"bad", now) {
                Err(Refusal::WrongToken { .. }) => wrong += 1,
                Err(refusal) => break refusal,
                Ok(_) => panic!("a wrong token was accepted"),
            }
        };
        assert_eq!(wrong, guesses::PER_ADDRESS.burst);
        assert_eq!(refusal.code(), ErrorCode::Busy);
        assert!(
            refusal.to_string().contains("try again in 2 s"),
            "{refusal}"
        );
        assert_eq!(tokens.check(IP, b"good", now), Err(refusal));
        let later = now + guesses::PER_ADDRESS.interval;
        assert!(tokens.check(IP, b"good", later).is_ok());
    }

    #[test]
    fn a_wrong_token_is_not_authorised_and_says_so() {
        let tokens = Tokens::parse("").unwrap();
        let refusal = tokens.check(IP, b"bad", tokens.epoch).unwrap_err();
        assert_eq!(refusal.code(), ErrorCode::NotAuthorised);
        assert_eq!(refusal, Refusal::WrongToken { guesses_left: 9 });
    }
}
