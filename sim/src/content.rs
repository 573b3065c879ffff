//! File content generated from the seed: nothing the simulator uploads is stored anywhere but
//! on the server, because any byte of any file can be produced again on demand.
//!
//! A file's bytes are the BLAKE3 extendable output keyed by its [`ContentId`] (seed, client,
//! step, size). BLAKE3's output reader can seek, so [`ContentReader`] is a `Read + Seek` source
//! that never holds more than one buffer, and two files never share content.

use std::io::{self, Read, Seek, SeekFrom};

use ferry_protocol::{Digest, FileHasher, SourceTag};

/// Identity of one generated file: who made it, at which step of its plan, and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId {
    /// Run seed.
    pub seed: u64,
    /// Client that uploads it.
    pub client: u32,
    /// Step of the client's plan.
    pub step: u32,
    /// Length in bytes.
    pub size: u64,
}

impl ContentId {
    fn output(&self) -> blake3::OutputReader {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"ferry-sim content v1");
        hasher.update(&self.seed.to_le_bytes());
        hasher.update(&self.client.to_le_bytes());
        hasher.update(&self.step.to_le_bytes());
        hasher.update(&self.size.to_le_bytes());
        hasher.finalize_xof()
    }

    /// Fills `buf` with the file's bytes from `offset` on (as far as the file goes); returns
    /// how many bytes were written.
    pub fn fill(&self, offset: u64, buf: &mut [u8]) -> usize {
        let n = usize::try_from(self.size.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if n > 0 {
            let mut output = self.output();
            output.set_position(offset);
            output.fill(&mut buf[..n]);
        }
        n
    }

    /// The whole file in memory (for small files and checks).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; usize::try_from(self.size).unwrap_or(usize::MAX)];
        self.fill(0, &mut out);
        out
    }

    /// BLAKE3 digest of the whole file, computed in pieces.
    pub fn digest(&self) -> Digest {
        let mut hasher = FileHasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut offset = 0;
        while offset < self.size {
            let n = self.fill(offset, &mut buf);
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        hasher.finalize()
    }

    /// The resume tag a client derives for this file: the same on every attempt.
    pub fn tag(&self) -> SourceTag {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"ferry-sim tag v1");
        hasher.update(&self.seed.to_le_bytes());
        hasher.update(&self.client.to_le_bytes());
        hasher.update(&self.step.to_le_bytes());
        hasher.update(&self.size.to_le_bytes());
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        SourceTag(tag)
    }

    /// First offset at which `data` differs from this file (or where one of them ends early),
    /// `None` if they are equal.
    pub fn first_difference(&self, data: &[u8]) -> Option<u64> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut offset = 0u64;
        for piece in data.chunks(buf.len()) {
            let n = self.fill(offset, &mut buf[..piece.len()]);
            // Slice equality is a memcmp even in debug builds; look for the byte only if needed.
            if buf[..n] != piece[..n]
                && let Some(i) = (0..n).find(|&i| buf[i] != piece[i])
            {
                return Some(offset + i as u64);
            }
            if n < piece.len() {
                return Some(offset + n as u64);
            }
            offset += n as u64;
        }
        (offset != self.size).then_some(offset)
    }

    /// A reader over the file's bytes.
    pub fn reader(&self) -> ContentReader {
        ContentReader { id: *self, pos: 0 }
    }
}

/// A `Read + Seek` view of generated content: nothing is kept in memory.
#[derive(Clone, Debug)]
pub struct ContentReader {
    id: ContentId,
    pos: u64,
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.id.fill(self.pos, buf);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for ContentReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(delta) => self.id.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        match target {
            Some(pos) => {
                self.pos = pos;
                Ok(pos)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of generated content",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(size: u64) -> ContentId {
        ContentId {
            seed: 7,
            client: 1,
            step: 2,
            size,
        }
    }

    #[test]
    fn reader_after_seek_gives_the_same_bytes_as_the_whole_file() {
        let file = id(200_000);
        let whole = file.bytes();
        let mut reader = file.reader();
        reader.seek(SeekFrom::Start(123_457)).expect("seek");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).expect("read");
        assert_eq!(rest, whole[123_457..]);
        assert_eq!(file.digest(), Digest::of(&whole));
    }

    #[test]
    fn different_ids_give_different_content_and_tags() {
        let a = id(64);
        let b = ContentId { step: 3, ..a };
        assert_ne!(a.bytes(), b.bytes());
        assert_ne!(a.tag(), b.tag());
    }

    #[test]
    fn first_difference_finds_the_changed_byte_and_short_data() {
        let file = id(100_000);
        let mut data = file.bytes();
        assert_eq!(file.first_difference(&data), None);
        data[70_001] ^= 1;
        assert_eq!(file.first_difference(&data), Some(70_001));
        assert_eq!(file.first_difference(&file.bytes()[..10]), Some(10));
    }
}
