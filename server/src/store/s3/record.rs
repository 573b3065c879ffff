//! The small objects the S3 backend keeps beside the files, under the reserved `.ferry-` prefix
//! (no client name can reach it, listings hide it):
//!
//! - `.ferry-uploads/<hash of name>`: the upload of that name under way or interrupted — which
//!   client file (tag, size), which node holds it and when it last said so (its lease), the
//!   multipart upload, its parts and the BLAKE3 state at the end of the last part. Any node can
//!   resume from it. Every write of it is conditional on the version read (`If-Match`), so two
//!   nodes never both believe they hold a name.
//! - `.ferry-digests/<hash of name>`: the digest of a stored file, tied to the object's ETag so
//!   a record of an older version is never believed.
//!
//! Both are short text, one `key value` per line, so an operator can read them with any S3 tool.

use std::fmt::Write as _;

use ferry_protocol::{Digest, HashCheckpoint, SourceTag};

/// Folder (key prefix) of upload records.
pub(crate) const UPLOADS_DIR: &str = ".ferry-uploads";

/// Folder (key prefix) of digest records.
pub(crate) const DIGESTS_DIR: &str = ".ferry-digests";

const UPLOAD_MAGIC: &str = "ferry-upload 1";
const DIGEST_MAGIC: &str = "ferry-digest 1";

/// A record that could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("malformed ferry record in the bucket: {0}")]
pub(crate) struct RecordError(&'static str);

/// The key, under the store's prefix, of the record of `name` in `dir`.
pub(crate) fn record_key(dir: &str, name: &str) -> String {
    format!("{dir}/{}", &Digest::of(name.as_bytes()).to_hex()[..40])
}

/// One uploaded part of a multipart upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    /// Its S3 part number (1, 2, …).
    pub(crate) number: u16,
    /// Offset in the file just past its last byte.
    pub(crate) end: u64,
    /// The ETag S3 returned for it.
    pub(crate) etag: String,
}

/// The state of one name's upload, as kept in the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UploadRecord {
    /// The file's name.
    pub(crate) name: String,
    /// Tag of the client's file.
    pub(crate) tag: SourceTag,
    /// Declared size of the whole file.
    pub(crate) size: u64,
    /// The connection holding the name (`node/upload`), `None` once it let go.
    pub(crate) owner: Option<String>,
    /// When the holder last renewed its hold, in milliseconds since the Unix epoch.
    pub(crate) renewed_ms: u64,
    /// The multipart upload, once one was created.
    pub(crate) upload_id: Option<String>,
    /// Parts uploaded so far, in order.
    pub(crate) parts: Vec<Part>,
    /// Hash state after the last part (at offset 0 when there is none).
    pub(crate) checkpoint: HashCheckpoint,
}

impl UploadRecord {
    /// Where a resume continues: the end of the last part.
    pub(crate) fn offset(&self) -> u64 {
        self.parts.last().map_or(0, |part| part.end)
    }

    /// The record as stored.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        let _ = writeln!(out, "{UPLOAD_MAGIC}");
        let _ = writeln!(out, "name {}", self.name);
        let _ = writeln!(out, "tag {}", hex(&self.tag.0));
        let _ = writeln!(out, "size {}", self.size);
        let _ = writeln!(out, "owner {}", self.owner.as_deref().unwrap_or("-"));
        let _ = writeln!(out, "renewed_ms {}", self.renewed_ms);
        let _ = writeln!(
            out,
            "upload_id {}",
            self.upload_id.as_deref().unwrap_or("-")
        );
        let _ = writeln!(out, "checkpoint {}", hex(&self.checkpoint.to_bytes()));
        for part in &self.parts {
            let _ = writeln!(out, "part {} {} {}", part.number, part.end, part.etag);
        }
        out.into_bytes()
    }

    /// Reads back what [`UploadRecord::encode`] wrote, checking that it is consistent.
    pub(crate) fn decode(bytes: &[u8]) -> Result<UploadRecord, RecordError> {
        let mut fields = Fields::open(bytes, UPLOAD_MAGIC)?;
        let mut field = |key| fields.next(key);
        let name = field("name")?.to_owned();
        let tag = SourceTag(
            unhex(field("tag")?)
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or(RecordError("bad tag"))?,
        );
        let size = number(field("size")?)?;
        let owner = optional(field("owner")?);
        let renewed_ms = number(field("renewed_ms")?)?;
        let upload_id = optional(field("upload_id")?);
        let checkpoint = unhex(field("checkpoint")?)
            .and_then(|bytes| HashCheckpoint::from_bytes(&bytes).ok())
            .ok_or(RecordError("bad checkpoint"))?;
        let mut parts = Vec::new();
        for line in fields.lines {
            let mut words = line.split(' ');
            let (Some("part"), Some(number), Some(end), Some(etag), None) = (
                words.next(),
                words.next(),
                words.next(),
                words.next(),
                words.next(),
            ) else {
                return Err(RecordError("bad part line"));
            };
            parts.push(Part {
                number: number.parse().map_err(|_| RecordError("bad part number"))?,
                end: end.parse().map_err(|_| RecordError("bad part end"))?,
                etag: etag.to_owned(),
            });
        }
        let record = UploadRecord {
            name,
            tag,
            size,
            owner,
            renewed_ms,
            upload_id,
            parts,
            checkpoint,
        };
        record.check()?;
        Ok(record)
    }

    fn check(&self) -> Result<(), RecordError> {
        let mut end = 0;
        for (i, part) in self.parts.iter().enumerate() {
            if usize::from(part.number) != i + 1 || part.end <= end || part.etag.is_empty() {
                return Err(RecordError("parts out of order"));
            }
            end = part.end;
        }
        if end > self.size || self.checkpoint.offset() != end {
            return Err(RecordError("checkpoint and parts disagree"));
        }
        if !self.parts.is_empty() && self.upload_id.is_none() {
            return Err(RecordError("parts without a multipart upload"));
        }
        Ok(())
    }
}

/// Most versions a digest record remembers: the stored one, and one written just before a
/// completion that may fail.
const DIGEST_VERSIONS: usize = 3;

/// The digests of the latest versions of a stored file, each tied to the object's ETag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DigestRecord {
    /// The file's name.
    pub(crate) name: String,
    /// (ETag, BLAKE3 digest) of each version, newest last.
    pub(crate) versions: Vec<(String, Digest)>,
}

impl DigestRecord {
    /// The digest of the version `etag`, if recorded.
    pub(crate) fn digest_of(&self, etag: &str) -> Option<Digest> {
        self.versions
            .iter()
            .rev()
            .find(|(known, _)| known == etag)
            .map(|(_, digest)| *digest)
    }

    /// Adds (or refreshes) the version `etag`, forgetting the oldest past a few.
    pub(crate) fn add(&mut self, etag: &str, digest: Digest) {
        self.versions.retain(|(known, _)| known != etag);
        self.versions.push((etag.to_owned(), digest));
        let excess = self.versions.len().saturating_sub(DIGEST_VERSIONS);
        self.versions.drain(..excess);
    }

    /// The record as stored.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = format!("{DIGEST_MAGIC}\nname {}\n", self.name);
        for (etag, digest) in &self.versions {
            let _ = writeln!(out, "version {etag} {}", digest.to_hex());
        }
        out.into_bytes()
    }

    /// Reads back what [`DigestRecord::encode`] wrote.
    pub(crate) fn decode(bytes: &[u8]) -> Result<DigestRecord, RecordError> {
        let mut fields = Fields::open(bytes, DIGEST_MAGIC)?;
        let name = fields.next("name")?.to_owned();
        let mut versions = Vec::new();
        for line in fields.lines {
            let mut words = line.split(' ');
            let (Some("version"), Some(etag), Some(digest), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                return Err(RecordError("bad version line"));
            };
            let digest = Digest::from_hex(digest).ok_or(RecordError("bad digest"))?;
            versions.push((etag.to_owned(), digest));
        }
        Ok(DigestRecord { name, versions })
    }
}

/// The ETag S3 gives an object completed from parts with these ETags (the MD5 of their MD5s,
/// then `-` and their count), or `None` when a part's ETag is not an MD5 (a store with another
/// scheme: the digest is then recorded after the completion instead of before).
pub(crate) fn multipart_etag<'a>(parts: impl ExactSizeIterator<Item = &'a str>) -> Option<String> {
    use md5::Digest as _;
    let count = parts.len();
    let mut md5 = md5::Md5::new();
    for etag in parts {
        md5.update(unhex(etag.trim_matches('"')).filter(|bytes| bytes.len() == 16)?);
    }
    Some(format!("\"{}-{count}\"", hex(&md5.finalize())))
}

/// The ETag S3 gives an object stored by one `PUT` of `body`: its MD5.
pub(crate) fn single_etag(body: &[u8]) -> String {
    use md5::Digest as _;
    format!("\"{}\"", hex(&md5::Md5::digest(body)))
}

/// The `key value` lines of a record, read in order.
struct Fields<'a> {
    lines: std::str::Lines<'a>,
}

impl<'a> Fields<'a> {
    /// The lines after the first, which must be `magic`.
    fn open(bytes: &'a [u8], magic: &str) -> Result<Fields<'a>, RecordError> {
        let text = std::str::from_utf8(bytes).map_err(|_| RecordError("not UTF-8"))?;
        let mut lines = text.lines();
        if lines.next() != Some(magic) {
            return Err(RecordError("not a record of the expected kind"));
        }
        Ok(Fields { lines })
    }

    /// The value of the next line, which must be the field `key`.
    fn next(&mut self, key: &str) -> Result<&'a str, RecordError> {
        self.lines
            .next()
            .and_then(|line| line.strip_prefix(key))
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or(RecordError("a field is missing"))
    }
}

fn optional(word: &str) -> Option<String> {
    (word != "-").then(|| word.to_owned())
}

fn number(word: &str) -> Result<u64, RecordError> {
    word.parse().map_err(|_| RecordError("bad number"))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use ferry_protocol::FileHasher;

    use super::*;

    fn record_with_parts() -> UploadRecord {
        let mut hasher = FileHasher::new();
        hasher.update(&vec![7u8; 5 * 1024 * 1024 + 1]);
        let checkpoint = hasher.checkpoint();
        UploadRecord {
            name: "photos/a b+c%.jpg".into(),
            tag: SourceTag([9; 16]),
            size: 12 << 20,
            owner: Some("node1/7".into()),
            renewed_ms: 1_700_000_000_000,
            upload_id: Some("abc-123".into()),
            parts: vec![Part {
                number: 1,
                end: checkpoint.offset(),
                etag: "\"0123abcd\"".into(),
            }],
            checkpoint,
        }
    }

    #[test]
    fn an_upload_record_reads_back_as_written() {
        let record = record_with_parts();
        assert_eq!(UploadRecord::decode(&record.encode()).unwrap(), record);
        let released = UploadRecord {
            owner: None,
            upload_id: None,
            parts: Vec::new(),
            checkpoint: HashCheckpoint::start(),
            ..record
        };
        assert_eq!(UploadRecord::decode(&released.encode()).unwrap(), released);
    }

    #[test]
    fn an_inconsistent_upload_record_is_refused() {
        let mut record = record_with_parts();
        record.parts[0].end += 1; // the checkpoint no longer covers exactly the parts
        assert!(UploadRecord::decode(&record.encode()).is_err());
        let truncated = record_with_parts().encode();
        assert!(UploadRecord::decode(&truncated[..truncated.len() / 2]).is_err());
        assert!(UploadRecord::decode(b"ferry-upload 1\nname x\n").is_err());
        assert!(UploadRecord::decode(b"something else").is_err());
    }

    #[test]
    fn a_digest_record_keeps_the_latest_versions() {
        let mut record = DigestRecord {
            name: "a/b".into(),
            versions: Vec::new(),
        };
        for i in 0..5u8 {
            record.add(&format!("\"e{i}-2\""), Digest::of(&[i]));
        }
        record.add("\"e3-2\"", Digest::of(&[3]));
        let back = DigestRecord::decode(&record.encode()).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.versions.len(), DIGEST_VERSIONS);
        assert_eq!(back.digest_of("\"e3-2\""), Some(Digest::of(&[3])));
        assert_eq!(back.digest_of("\"e0-2\""), None, "the oldest is forgotten");
        assert!(DigestRecord::decode(b"ferry-digest 1\nname a\nversion x zz\n").is_err());
    }

    #[test]
    fn etags_are_predicted_as_s3_computes_them() {
        // Known answers: MD5("") and the multipart ETag of two parts "a" and "b".
        assert_eq!(single_etag(b""), "\"d41d8cd98f00b204e9800998ecf8427e\"");
        let a = single_etag(b"a");
        let b = single_etag(b"b");
        let both = multipart_etag([a.as_str(), b.as_str()].into_iter()).unwrap();
        assert!(both.ends_with("-2\""), "{both}");
        assert_eq!(multipart_etag(["\"not-md5\""].into_iter()), None);
    }

    #[test]
    fn record_keys_are_fixed_length_and_differ_by_name() {
        let a = record_key(UPLOADS_DIR, "a");
        assert_eq!(a.len(), UPLOADS_DIR.len() + 41);
        assert_ne!(a, record_key(UPLOADS_DIR, "b"));
    }
}
