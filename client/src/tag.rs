//! Source tags: the identity of a local file, so that a partial upload on the server is only
//! ever completed with bytes of the same file.

use std::fs::Metadata;
use std::path::Path;
use std::time::UNIX_EPOCH;

use ferry_protocol::SourceTag;

/// Domain separation for the tag derivation, so tags never collide with other BLAKE3 uses.
const CONTEXT: &str = "ferry 2026 source tag v1";

/// The tag of a local file: its canonical path, size and modification time. Any change to the
/// file that moves its mtime or size gives a new tag, and the server starts that upload over.
pub fn file_tag(path: &Path, metadata: &Metadata) -> SourceTag {
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut hasher = blake3::Hasher::new_derive_key(CONTEXT);
    hasher.update(b"file\0");
    hasher.update(canonical.as_os_str().as_encoded_bytes());
    hasher.update(b"\0");
    hasher.update(&metadata.len().to_be_bytes());
    hasher.update(&mtime.to_be_bytes());
    truncate(hasher.finalize())
}

/// The default tag of a source known only by the name it is uploaded as and its size.
pub fn name_tag(name: &str, size: u64) -> SourceTag {
    let mut hasher = blake3::Hasher::new_derive_key(CONTEXT);
    hasher.update(b"name\0");
    hasher.update(name.as_bytes());
    hasher.update(b"\0");
    hasher.update(&size.to_be_bytes());
    truncate(hasher.finalize())
}

fn truncate(hash: blake3::Hash) -> SourceTag {
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&hash.as_bytes()[..16]);
    SourceTag(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_tag_changes_with_name_and_size() {
        let base = name_tag("a.txt", 10);
        assert_eq!(base, name_tag("a.txt", 10));
        assert_ne!(base, name_tag("a.txt", 11));
        assert_ne!(base, name_tag("b.txt", 10));
    }

    #[test]
    fn file_tag_changes_when_the_file_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"one").unwrap();
        let first = file_tag(&path, &std::fs::metadata(&path).unwrap());
        std::fs::write(&path, b"one more").unwrap();
        let second = file_tag(&path, &std::fs::metadata(&path).unwrap());
        assert_ne!(first, second);
    }
}
