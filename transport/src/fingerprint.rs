//! A certificate's fingerprint: the SHA-256 digest of its DER bytes, as `ferryd` prints it at
//! start and clients pin it (PROTOCOL.md §10).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// The text every fingerprint starts with, in any case when read.
const PREFIX: &str = "SHA256:";

/// The SHA-256 digest of a certificate (its DER bytes), written `SHA256:<64 hex digits>` as
/// `ferryd` prints it. Read back from that form, in either case, with `:` between digits
/// allowed (`SHA256:ba:78:16:…`).
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
        f.write_str(PREFIX)?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A fingerprint that is not `SHA256:` and 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a certificate fingerprint; expected SHA256: and 64 hex digits, as ferryd prints at start"
)]
pub struct FingerprintError(String);

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(text: &str) -> Result<Fingerprint, FingerprintError> {
        let invalid = || FingerprintError(text.to_owned());
        let trimmed = text.trim();
        let hex = trimmed
            .get(..PREFIX.len())
            .filter(|prefix| prefix.eq_ignore_ascii_case(PREFIX))
            .and_then(|_| trimmed.get(PREFIX.len()..))
            .ok_or_else(invalid)?;
        let hex: String = hex.chars().filter(|c| *c != ':').collect();
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let digits = hex.get(2 * i..2 * i + 2).ok_or_else(invalid)?;
            *byte = u8::from_str_radix(digits, 16).map_err(|_| invalid())?;
        }
        Ok(Fingerprint(bytes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_sha256_in_lower_hex_and_reads_back() {
        let fingerprint = Fingerprint::of(b"abc");
        let shown = fingerprint.to_string();
        assert_eq!(
            shown,
            "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(format!("{fingerprint:?}"), shown);
        assert_eq!(shown.parse::<Fingerprint>().unwrap(), fingerprint);
        assert_eq!(
            shown
                .to_uppercase()
                .replace("SHA256:", "sha256:")
                .parse::<Fingerprint>(),
            Ok(fingerprint)
        );
    }

    #[test]
    fn a_fingerprint_reads_with_colons_and_surrounding_spaces() {
        let fingerprint = Fingerprint::of(b"abc");
        let hex = &fingerprint.to_string()[PREFIX.len()..];
        let pairs: Vec<&str> = (0..32).map(|i| &hex[2 * i..2 * i + 2]).collect();
        let text = format!("  SHA256:{}\n", pairs.join(":"));
        assert_eq!(text.parse::<Fingerprint>(), Ok(fingerprint));
    }

    #[test]
    fn malformed_fingerprints_are_refused() {
        let good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        for text in [
            String::new(),
            "SHA256:".to_owned(),
            "ba7816bf".to_owned(),
            good.to_owned(),
            format!("MD5:{good}"),
            format!("SHA256:{}", &good[..62]),
            format!("SHA256:{good}00"),
            format!("SHA256:zz{}", &good[2..]),
            // 64 bytes but not 64 ASCII digits; a split inside a character must not panic.
            format!("SHA256:é{}", &good[2..]),
            format!("SHA256:{}é", &good[..62]),
            "SHA25é:".to_owned(),
        ] {
            let error = text.parse::<Fingerprint>().unwrap_err();
            assert!(error.to_string().contains("expected SHA256:"), "{error}");
        }
    }
}
