//! A download sink that compares bytes with their source as they arrive, so a downloaded file
//! is never held in memory.

use std::io::{self, Write};

use crate::content::ContentId;

/// Compares everything written with `expected` (or, with `None`, expects nothing at all).
#[derive(Debug)]
pub struct CompareSink {
    expected: Option<ContentId>,
    pos: u64,
    first_difference: Option<u64>,
    buf: Vec<u8>,
}

impl CompareSink {
    /// A sink expecting the bytes of `expected`.
    pub fn new(expected: Option<ContentId>) -> Self {
        CompareSink {
            expected,
            pos: 0,
            first_difference: None,
            buf: Vec::new(),
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.pos
    }

    /// The first offset where what was written differs from the source, counting a short or
    /// long file as differing where it ends; `None` if the bytes are exactly the source.
    pub fn first_difference(&self) -> Option<u64> {
        let size = self.expected.map_or(0, |content| content.size);
        self.first_difference
            .or_else(|| (self.pos != size).then_some(self.pos.min(size)))
    }
}

impl Write for CompareSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.first_difference.is_none() {
            self.buf.resize(data.len(), 0);
            let n = self
                .expected
                .map_or(0, |content| content.fill(self.pos, &mut self.buf));
            if self.buf[..n] != data[..n] {
                let at = (0..n).find(|&i| self.buf[i] != data[i]).unwrap_or(0);
                self.first_difference = Some(self.pos + at as u64);
            } else if n < data.len() {
                self.first_difference = Some(self.pos + n as u64);
            }
        }
        self.pos += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(size: u64) -> ContentId {
        ContentId {
            seed: 1,
            client: 2,
            step: 3,
            size,
        }
    }

    #[test]
    fn the_source_written_in_pieces_matches() {
        let source = content(100_000);
        let mut sink = CompareSink::new(Some(source));
        for piece in source.bytes().chunks(7_777) {
            sink.write_all(piece).expect("in memory");
        }
        assert_eq!(sink.first_difference(), None);
    }

    #[test]
    fn a_changed_byte_a_short_file_and_unexpected_bytes_are_found() {
        let source = content(1000);
        let mut bytes = source.bytes();
        bytes[600] ^= 4;
        let mut sink = CompareSink::new(Some(source));
        sink.write_all(&bytes).expect("in memory");
        assert_eq!(sink.first_difference(), Some(600));

        let mut short = CompareSink::new(Some(source));
        short.write_all(&source.bytes()[..10]).expect("in memory");
        assert_eq!(short.first_difference(), Some(10));

        let mut none = CompareSink::new(None);
        none.write_all(b"x").expect("in memory");
        assert_eq!(none.first_difference(), Some(0));
    }
}
