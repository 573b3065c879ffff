//! What the window shows people: sizes, rates, durations and UTC times, and names and messages
//! with their hidden characters escaped (PROTOCOL.md §6, "Showing names").

use std::time::Duration;

/// A byte count in the largest unit that keeps it at or above 1: `512 B`, `1.5 KiB`, `3.0 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A rate in bytes per second.
pub fn rate(bytes_per_second: f64) -> String {
    format!("{}/s", size(bytes_per_second.max(0.0) as u64))
}

/// A duration to the second: `42s`, `3m 05s`, `2h 01m`.
pub fn duration(time: Duration) -> String {
    let secs = time.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM` in UTC, as `ferry ls` shows times.
pub use ferry_client::utc_time;

/// A file name as `ferry ls` shows it: control, format, bidi and separator characters written
/// as `\u{202e}`, a backslash as `\\`. A server may list any name, so every name the window
/// shows goes through this.
pub use ferry_client::display_name as name;

/// A message (which may quote a server) with each line's hidden characters escaped; the line
/// breaks between messages are kept.
pub fn message(text: &str) -> String {
    text.split('\n')
        .map(ferry_client::display_text)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
    }

    #[test]
    fn names_and_messages_are_shown_with_hidden_characters_escaped() {
        assert_eq!(name("a\u{202E}gpj.exe"), r"a\u{202e}gpj.exe");
        assert_eq!(
            message("x: refused\nbad name \"a\u{200B}\"\u{2028}"),
            "x: refused\nbad name \"a\\u{200b}\"\\u{2028}"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_secs(42)), "42s");
        assert_eq!(duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(duration(Duration::from_secs(7260)), "2h 01m");
    }
}
