//! How strong a token is, checked when `ferryd hash-token` makes its line (the tokens file
//! holds only hashes, so this is the one moment a token is seen), and making a strong one.
//!
//! The estimate is deliberately conservative: it assumes each character was drawn at random
//! from the smallest alphabet that holds the kinds of characters used (16 for hex digits, 64
//! for base64url, …), and it discounts what is obviously not random: a token that repeats
//! itself counts once, and a long run of one character or of consecutive ones (`aaaa`,
//! `abcd`, `4321`) counts as one character. Random tokens of the documented sizes pass (a
//! false refusal of 32 random hex digits has odds below one in a million); words and
//! patterns of the same length may still be overrated, hence `ferryd hash-token --generate`.

use std::fmt::Write as _;

use rand::TryRng as _;
use rand::rngs::SysRng;

/// Bits of entropy a token must have, at least: 2^128 guesses stay out of reach whatever the
/// guess rate, so a plain SHA-256 of the token is as good as a slow password hash.
pub const MIN_TOKEN_BITS: u32 = 128;

/// What every weakness message ends with: what is needed and how to get it.
const NEEDED: &str = "at least 128 bits are needed: 32 random hex digits or 22 random base64url \
                      characters; `ferryd hash-token --generate` makes one";

/// Fewest different characters a token may use. Random tokens of the documented sizes use
/// more (32 random hex digits use fewer than 8 with odds under 4 in 100 million).
const MIN_DISTINCT: usize = 8;

/// Shortest run of one character or consecutive ones (`aaaa…`, `abcd…`, `9876…`) that counts
/// as a single character. Long enough that random tokens almost never hold one (2.8 in 10
/// million for 32 hex digits).
const MIN_RUN: usize = 8;

/// Random bytes in a generated token: 256 bits, twice the minimum.
const GENERATED_BYTES: usize = 32;

/// Why a token is too weak to accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WeakToken {
    /// The token is empty.
    #[error("the token is empty; {}", NEEDED)]
    Empty,
    /// The token uses too few different characters to be random.
    #[error(
        "the token uses only {distinct} different characters (at least {} needed); {}",
        MIN_DISTINCT,
        NEEDED
    )]
    FewCharacters {
        /// Different characters in the token.
        distinct: usize,
    },
    /// The estimate is below [`MIN_TOKEN_BITS`].
    #[error("the token has about {bits} bits of entropy; {}", NEEDED)]
    TooFewBits {
        /// The estimate.
        bits: u32,
    },
}

/// Checks that `token` is strong enough for a tokens file; returns its estimated entropy in
/// bits (see the module docs for how it is estimated).
pub fn check_token_strength(token: &str) -> Result<u32, WeakToken> {
    let chars: Vec<char> = token.chars().collect();
    if chars.is_empty() {
        return Err(WeakToken::Empty);
    }
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT {
        return Err(WeakToken::FewCharacters {
            distinct: distinct.len(),
        });
    }
    let bits = estimate_bits(&chars);
    if bits < MIN_TOKEN_BITS {
        return Err(WeakToken::TooFewBits { bits });
    }
    Ok(bits)
}

/// A new token of 256 bits from the operating system's random generator, as 64 hex digits.
pub fn generate_token() -> std::io::Result<String> {
    let mut bytes = [0u8; GENERATED_BYTES];
    SysRng.try_fill_bytes(&mut bytes).map_err(|error| {
        std::io::Error::other(format!("the system's random generator: {error}"))
    })?;
    let mut token = String::with_capacity(2 * GENERATED_BYTES);
    for byte in bytes {
        let _ = write!(token, "{byte:02x}");
    }
    Ok(token)
}

/// Estimated bits: characters that count, times the bits of one character of the alphabet.
fn estimate_bits(chars: &[char]) -> u32 {
    let per_char = f64::from(alphabet_size(chars)).log2();
    let bits = (counted_length(chars) as f64 * per_char).floor();
    // A token's length fits in memory, so its bits fit in u32 for any sane input; saturate.
    if bits >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        bits as u32
    }
}

/// The smallest alphabet holding the kinds of characters used.
fn alphabet_size(chars: &[char]) -> u32 {
    let has = |test: fn(&char) -> bool| chars.iter().any(test);
    if chars.iter().all(char::is_ascii_hexdigit) {
        let lower = has(|c| c.is_ascii_lowercase());
        let upper = has(|c| c.is_ascii_uppercase());
        return match (lower, upper) {
            (false, false) => 10,
            (true, true) => 22,
            _ => 16,
        };
    }
    let mut size = 0;
    if has(char::is_ascii_digit) {
        size += 10;
    }
    if has(char::is_ascii_lowercase) {
        size += 26;
    }
    if has(char::is_ascii_uppercase) {
        size += 26;
    }
    if has(|c| matches!(c, '-' | '_')) {
        size += 2;
    }
    if has(|c| !c.is_ascii_alphanumeric() && !matches!(c, '-' | '_')) {
        size += 32; // ASCII punctuation and space; anything else is counted as no richer
    }
    size
}

/// Characters that count: a token repeating a part of at most half its length counts that
/// part once, and in it each run of at least [`MIN_RUN`] counts as one character.
fn counted_length(chars: &[char]) -> usize {
    let chars = &chars[..period(chars)];
    let mut counted = 0;
    let mut i = 0;
    while i < chars.len() {
        let run = run_length(&chars[i..]);
        counted += 1;
        i += if run >= MIN_RUN { run } else { 1 };
    }
    counted
}

/// The shortest period of at most half the length, or the whole length.
fn period(chars: &[char]) -> usize {
    (1..=chars.len() / 2)
        .find(|&p| chars.iter().zip(&chars[p..]).all(|(a, b)| a == b))
        .unwrap_or(chars.len())
}

/// Length of the run at the start of `chars` with one step of -1, 0 or +1 between neighbours.
fn run_length(chars: &[char]) -> usize {
    let step = |pair: &[char]| i64::from(u32::from(pair[1])) - i64::from(u32::from(pair[0]));
    let mut steps = chars.windows(2).map(step);
    let Some(first) = steps.next() else {
        return chars.len();
    };
    if first.abs() > 1 {
        return 1;
    }
    2 + steps.take_while(|&s| s == first).count()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn short_tokens_are_refused_with_the_entropy_needed() {
        for weak in ["s3cret", "x", "correct-horse", "0123456789abcdef"] {
            let error = check_token_strength(weak).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("at least 128 bits"), "{weak}: {message}");
            assert!(message.contains("--generate"), "{weak}: {message}");
        }
        assert_eq!(check_token_strength("").unwrap_err(), WeakToken::Empty);
    }

    #[test]
    fn tokens_of_the_documented_sizes_are_accepted() {
        assert_eq!(
            check_token_strength("3f9a0c7e51b2d86e4a1f0b9c7d2e5a83"),
            Ok(128)
        );
        assert_eq!(check_token_strength("q7Xk2-mPz_R9vL4tN8wB3c"), Ok(132));
    }

    #[test]
    fn one_repeated_character_is_refused_however_long() {
        let token = "a".repeat(200);
        assert_eq!(
            check_token_strength(&token),
            Err(WeakToken::FewCharacters { distinct: 1 })
        );
    }

    #[test]
    fn a_repeated_part_counts_once() {
        let token = "q7xk2mpzR9".repeat(6);
        assert_eq!(
            check_token_strength(&token),
            Err(WeakToken::TooFewBits { bits: 59 })
        );
    }

    #[test]
    fn runs_of_consecutive_characters_count_as_one() {
        let token = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let bits = match check_token_strength(token) {
            Err(WeakToken::TooFewBits { bits }) => bits,
            other => panic!("{other:?}"),
        };
        assert!(bits < 20, "{bits}");
        assert!(check_token_strength("zyxwvutsrqponmlkjihgfedcba9876543210").is_err());
    }

    #[test]
    fn hex_digits_count_four_bits_each() {
        let line = "3f9a0c7e51b2d86e4a1f0b9c7d2e5a8";
        assert_eq!(
            check_token_strength(line),
            Err(WeakToken::TooFewBits { bits: 124 })
        );
    }

    #[test]
    fn generated_tokens_are_strong_and_different() {
        let first = generate_token().unwrap();
        let second = generate_token().unwrap();
        assert_eq!(first.len(), 64);
        assert!(first.chars().all(|c| c.is_ascii_hexdigit()), "{first}");
        assert_ne!(first, second);
        assert!(check_token_strength(&first).unwrap() >= MIN_TOKEN_BITS);
    }
}
