//! Sizes and rates as people write them on ferry's and ferryd's command lines and in ferryd's
//! configuration: `1024`, `64MiB`, `10M`, `1.5G`, `1TB`. One reading for both programs.
//!
//! K, M, G, T and P are powers of 1024, with or without `iB` (`K` = `KiB` = 1024); KB, MB, GB,
//! TB and PB are powers of 1000. A fraction is allowed (`1.5G`, `0.5MB`) and what it gives is
//! rounded down to a whole byte. Case does not matter, and a space may stand before the unit.

use std::fmt;
use std::num::NonZeroU64;

/// Why a size or rate could not be read; its message names the text and says what to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitError {
    /// No number where one was expected.
    NotANumber(String),
    /// A unit that is not one of K, M, G, T, P (with or without `iB`) or KB, MB, GB, TB, PB.
    UnknownUnit(String),
    /// More bytes than 2^64 − 1.
    TooLarge(String),
    /// A rate of 0, which would never finish.
    ZeroRate,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitError::NotANumber(text) => {
                write!(f, "{text:?} is not a size like 10G, 1.5GiB or 512MB")
            }
            UnitError::UnknownUnit(unit) => write!(
                f,
                "unknown unit {unit:?}; use K, M, G, T or P (powers of 1024) or KB, MB, GB, TB \
                 or PB (powers of 1000)"
            ),
            UnitError::TooLarge(text) => write!(f, "{text:?} is too large"),
            UnitError::ZeroRate => {
                write!(f, "a rate of 0 would never finish; leave it out for none")
            }
        }
    }
}

impl std::error::Error for UnitError {}

/// Bytes in one of `unit` (already lower case), if it is one.
fn multiplier(unit: &str) -> Option<u64> {
    Some(match unit {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "p" | "pib" => 1 << 50,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        _ => return None,
    })
}

/// Reads a size in bytes (see the module's documentation for the units).
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let text = text.trim();
    let number_end = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let not_a_number = || UnitError::NotANumber(text.to_owned());
    if whole.is_empty() && fraction.is_empty() {
        return Err(not_a_number());
    }
    let multiplier = multiplier(&unit.trim().to_ascii_lowercase())
        .ok_or_else(|| UnitError::UnknownUnit(unit.trim().to_owned()))?;
    let too_large = || UnitError::TooLarge(text.to_owned());
    let whole: u128 = match whole {
        "" => 0,
        digits => digits.parse().map_err(|_| too_large())?,
    };
    let mut bytes = whole
        .checked_mul(u128::from(multiplier))
        .ok_or_else(too_large)?;
    if !fraction.is_empty() {
        // Digits past the 19th cannot add a byte to a multiplier below 10^19.
        let kept = &fraction[..fraction.len().min(19)];
        if !kept.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_a_number());
        }
        let numerator: u128 = kept.parse().map_err(|_| not_a_number())?;
        let denominator = 10u128.pow(kept.len() as u32);
        bytes += numerator * u128::from(multiplier) / denominator;
    }
    u64::try_from(bytes).map_err(|_| too_large())
}

/// Reads a rate in bytes per second: a size as [`parse_size`] reads it, not zero.
pub fn parse_rate(text: &str) -> Result<NonZeroU64, UnitError> {
    NonZeroU64::new(parse_size(text)?).ok_or(UnitError::ZeroRate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_sizes_read_with_binary_and_decimal_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("7b"), Ok(7));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("3 TiB"), Ok(3 << 40));
        assert_eq!(parse_size("1p"), Ok(1 << 50));
        assert_eq!(parse_size("1KB"), Ok(1_000));
        assert_eq!(parse_size("5mb"), Ok(5_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size(" 1TB "), Ok(1_000_000_000_000));
        assert_eq!(parse_size("2PB"), Ok(2_000_000_000_000_000));
    }

    #[test]
    fn fractions_read_and_round_down_to_a_byte() {
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("0.5MB"), Ok(500_000));
        assert_eq!(parse_size(".25K"), Ok(256));
        assert_eq!(parse_size("2."), Ok(2));
        // 0.3 KiB is 307.2 bytes.
        assert_eq!(parse_size("0.3K"), Ok(307));
        assert_eq!(parse_size("1.0000000000000000000000001K"), Ok(1024));
    }

    #[test]
    fn what_is_not_a_size_is_refused_with_its_reason() {
        assert_eq!(parse_size(""), Err(UnitError::NotANumber(String::new())));
        assert_eq!(
            parse_size("fast"),
            Err(UnitError::NotANumber("fast".into()))
        );
        assert_eq!(parse_size("."), Err(UnitError::NotANumber(".".into())));
        assert_eq!(
            parse_size("1.2.3K"),
            Err(UnitError::NotANumber("1.2.3K".into()))
        );
        assert_eq!(
            parse_size("12 parsecs"),
            Err(UnitError::UnknownUnit("parsecs".into()))
        );
        assert_eq!(
            parse_size("99999999999P"),
            Err(UnitError::TooLarge("99999999999P".into()))
        );
        assert_eq!(
            parse_size("18446744073709551616"),
            Err(UnitError::TooLarge("18446744073709551616".into()))
        );
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert!(
            UnitError::UnknownUnit("x".into())
                .to_string()
                .contains("KB")
        );
    }

    #[test]
    fn rates_read_as_sizes_and_refuse_zero() {
        assert_eq!(parse_rate("10M").map(NonZeroU64::get), Ok(10 << 20));
        assert_eq!(parse_rate("1.5K").map(NonZeroU64::get), Ok(1536));
        assert_eq!(parse_rate("0"), Err(UnitError::ZeroRate));
        assert_eq!(parse_rate("0.1b"), Err(UnitError::ZeroRate));
        assert_eq!(
            parse_rate("fast"),
            Err(UnitError::NotANumber("fast".into()))
        );
    }
}
