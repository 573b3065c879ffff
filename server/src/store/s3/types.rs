//! What the S3 client's requests take and give: object records, listings, conditions.

/// An object's key, size, ETag and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The full object key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, quoted as S3 sends it in the `ETag` header (e.g. `"9b2c…"`): the value to
    /// pass back in [`PutCondition::IfMatch`] or a ranged GET's `If-Match`.
    pub etag: String,
    /// When it was last written, in milliseconds since the Unix epoch (0 when the service
    /// gave no date this client can read).
    pub modified_ms: u64,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The objects, in S3's order (by the UTF-8 bytes of their keys).
    pub objects: Vec<ObjectInfo>,
    /// The token for the next page, or `None` on the last.
    pub next: Option<String>,
}

/// When a write may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// Always: replace whatever is there.
    Always,
    /// Only when no object has the key (`If-None-Match: *`).
    IfAbsent,
    /// Only when the object still has this ETag (`If-Match`).
    IfMatch(String),
}

impl PutCondition {
    /// The request header that carries the condition.
    pub(crate) fn header(&self) -> Option<(&'static str, &str)> {
        match self {
            PutCondition::Always => None,
            PutCondition::IfAbsent => Some(("if-none-match", "*")),
            PutCondition::IfMatch(etag) => Some(("if-match", etag)),
        }
    }
}

/// A multipart upload that was started and neither completed nor aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    /// The key it will complete to.
    pub key: String,
    /// Its upload id.
    pub upload_id: String,
    /// When it was started, in milliseconds since the Unix epoch (0 if unknown).
    pub initiated_ms: u64,
}

/// `etag` in the quoted form of the `ETag` header, whichever form the service used.
pub(crate) fn quoted_etag(etag: &str) -> String {
    let etag = etag.trim();
    if etag.starts_with('"') || etag.starts_with("W/") {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    }
}

/// Milliseconds since the Unix epoch of an HTTP date (`Wed, 25 Nov 2026 13:17:55 GMT`) or an
/// ISO 8601 one (`2026-11-25T13:17:55.000Z`); 0 if neither.
pub(crate) fn parse_time_ms(text: &str) -> u64 {
    let text = text.trim();
    let parsed = text.parse::<jiff::Timestamp>().ok().or_else(|| {
        jiff::fmt::rfc2822::DateTimeParser::new()
            .parse_timestamp(text)
            .ok()
    });
    parsed
        .and_then(|t| u64::try_from(t.as_millisecond()).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dates_and_etags() {
        assert_eq!(parse_time_ms("Thu, 01 Jan 1970 00:00:01 GMT"), 1000);
        assert_eq!(parse_time_ms("1970-01-01T00:00:01.500Z"), 1500);
        assert_eq!(parse_time_ms("yesterday"), 0);
        assert_eq!(quoted_etag("abc"), "\"abc\"");
        assert_eq!(quoted_etag("\"abc\""), "\"abc\"");
    }
}
