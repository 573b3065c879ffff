//! The original protocol's only header: the file size as 8 bytes big-endian, then the file name
//! in UTF-8 with neither a length nor a terminator.
//!
//! The name is "whatever the client sent before it started waiting for `go ahead`", so the
//! parser cannot tell by itself when the header is complete: the driver feeds it bytes as they
//! arrive and calls [`HeaderParser::finish`] once the client has gone quiet for the configured
//! pause. Bytes may arrive in any pieces (a UTF-8 character split across reads included); a
//! name longer than [`MAX_NAME_LEN`] bytes is refused as soon as its extra byte arrives.

use ferry_protocol::limits::MAX_NAME_LEN;

/// Bytes of the size field.
pub(crate) const SIZE_LEN: usize = 8;

/// The most header bytes ever buffered: the size and a name of the longest acceptable length.
const MAX_HEADER_LEN: usize = SIZE_LEN + MAX_NAME_LEN;

/// A complete header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// Declared file size in bytes.
    pub(crate) size: u64,
    /// File name as sent (not yet checked against the name rules).
    pub(crate) name: String,
}

/// Why a header is refused. The original protocol has no way to say so: the server closes the
/// connection without `go ahead` and logs this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum HeaderError {
    /// The client went quiet (or closed) before sending the 8-byte size.
    #[error("the client sent only {got} of the 8 size bytes")]
    ShortSize {
        /// Bytes received.
        got: usize,
    },
    /// The client went quiet right after the size: no name.
    #[error("the client sent no file name")]
    EmptyName,
    /// The name runs past [`MAX_NAME_LEN`] bytes.
    #[error("the file name is longer than {MAX_NAME_LEN} bytes")]
    NameTooLong,
    /// The name is not UTF-8.
    #[error("the file name is not valid UTF-8")]
    NotUtf8,
}

/// Collects header bytes until the driver decides the client is waiting.
#[derive(Debug, Default)]
pub(crate) struct HeaderParser {
    bytes: Vec<u8>,
}

impl HeaderParser {
    /// Takes the next bytes from the client. Fails once the name is too long (the connection
    /// should then be closed; nothing more need be read).
    pub(crate) fn handle_input(&mut self, data: &[u8]) -> Result<(), HeaderError> {
        if self.bytes.len() + data.len() > MAX_HEADER_LEN {
            return Err(HeaderError::NameTooLong);
        }
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    /// Whether the 8 size bytes are in: from then on, a pause of the client ends the name.
    pub(crate) fn has_size(&self) -> bool {
        self.bytes.len() >= SIZE_LEN
    }

    /// The header, now that the client is waiting (quiet for the pause) or has closed.
    pub(crate) fn finish(&self) -> Result<Header, HeaderError> {
        let Some((size, name)) = self.bytes.split_first_chunk::<SIZE_LEN>() else {
            return Err(HeaderError::ShortSize {
                got: self.bytes.len(),
            });
        };
        if name.is_empty() {
            return Err(HeaderError::EmptyName);
        }
        let name = std::str::from_utf8(name).map_err(|_| HeaderError::NotUtf8)?;
        Ok(Header {
            size: u64::from_be_bytes(*size),
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn header_bytes(size: u64, name: &str) -> Vec<u8> {
        let mut bytes = size.to_be_bytes().to_vec();
        bytes.extend_from_slice(name.as_bytes());
        bytes
    }

    #[test]
    fn header_split_at_every_point_parses_the_same() {
        let bytes = header_bytes(0x0102_0304_0506_0708, "dossier/été.txt");
        for cut in 0..=bytes.len() {
            let mut parser = HeaderParser::default();
            parser.handle_input(&bytes[..cut]).unwrap();
            assert_eq!(parser.has_size(), cut >= SIZE_LEN);
            parser.handle_input(&bytes[cut..]).unwrap();
            let header = parser.finish().unwrap();
            assert_eq!(header.size, 0x0102_0304_0506_0708);
            assert_eq!(header.name, "dossier/été.txt");
        }
    }

    #[test]
    fn a_name_of_the_longest_length_is_accepted_and_one_byte_more_refused() {
        let longest = "n".repeat(MAX_NAME_LEN);
        let mut parser = HeaderParser::default();
        parser.handle_input(&header_bytes(5, &longest)).unwrap();
        assert_eq!(parser.finish().unwrap().name, longest);
        assert_eq!(parser.handle_input(b"n"), Err(HeaderError::NameTooLong));
    }

    #[test]
    fn short_empty_and_non_utf8_headers_are_refused() {
        let mut parser = HeaderParser::default();
        parser.handle_input(&[0, 0, 0]).unwrap();
        assert_eq!(parser.finish(), Err(HeaderError::ShortSize { got: 3 }));
        parser.handle_input(&[0, 0, 0, 0, 9]).unwrap();
        assert_eq!(parser.finish(), Err(HeaderError::EmptyName));
        parser.handle_input(&[0xff, 0xfe]).unwrap();
        assert_eq!(parser.finish(), Err(HeaderError::NotUtf8));
    }
}
