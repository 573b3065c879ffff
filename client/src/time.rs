//! Times shown to people.

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM` in UTC, as `ferry ls` and the
/// desktop client show a file's time; `-` for a time past what a calendar can show.
pub fn utc_time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || "-".to_owned(),
            |time| time.strftime("%Y-%m-%d %H:%M").to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_read_as_calendar_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00");
        // 2024-02-29 12:34:56 UTC, a leap day.
        assert_eq!(utc_time(1_709_210_096_000), "2024-02-29 12:34");
        assert_eq!(utc_time(u64::MAX), "-");
    }
}
