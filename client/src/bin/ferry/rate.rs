//! `--limit-rate`: a rate in bytes per second, written as ferryd writes its sizes and rates
//! (`10M`, `512K`, `1G`; K, M, G, T are powers of 1024 with or without `iB`, and KB, MB, GB,
//! TB powers of 1000).

use std::num::NonZeroU64;

/// Parses a rate in bytes per second: a whole number with an optional unit, not zero.
pub fn parse_rate(text: &str) -> Result<NonZeroU64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a rate like 10M or 512KiB (bytes per second)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => return Err(format!("unknown unit {other:?}; use K, M, G or T")),
    };
    let rate = number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    NonZeroU64::new(rate)
        .ok_or_else(|| "a rate of 0 would never finish; leave --limit-rate out for none".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_ferryd_reads_sizes() {
        let get = |text| parse_rate(text).map(NonZeroU64::get);
        assert_eq!(get("10M"), Ok(10 << 20));
        assert_eq!(get("512KiB"), Ok(512 << 10));
        assert_eq!(get("2 GB"), Ok(2_000_000_000));
        assert_eq!(get("1000"), Ok(1000));
        assert!(get("0").is_err());
        assert!(get("fast").is_err());
        assert!(get("10 parsecs").is_err());
        assert!(get("99999999999T").is_err());
    }
}
