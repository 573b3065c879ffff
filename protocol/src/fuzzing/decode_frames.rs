//! Target 1, [`decode_frames`]: the frame decoder is incremental (a prefix of a frame is "need
//! more bytes" or the same error) and decode→encode gives back exactly the bytes consumed.

use crate::limits::{FRAME_HEADER_LEN, MAX_CONTROL_PAYLOAD, MAX_DATA_CHUNK};
use crate::{Frame, decode_frame};

/// Prefixes of frames up to this length are all checked; longer frames are sampled.
const ALL_PREFIXES_UP_TO: usize = 64;

/// Decodes `data` as a stream of frames (skipping `DATA` payloads) and checks each result.
pub fn decode_frames(data: &[u8]) {
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let result = decode_frame(rest);
        match &result {
            Ok(None) => {
                // "Need more bytes" must be stable: no prefix is an error either.
                check_prefixes(rest, rest.len(), &result);
                break;
            }
            Err(_) => {
                // The error is decided by the bytes up to some point; every prefix either
                // needs more bytes or already gives that same error.
                check_prefixes(rest, rest.len(), &result);
                break;
            }
            Ok(Some((frame, consumed))) => {
                let consumed = *consumed;
                assert!(
                    consumed >= FRAME_HEADER_LEN && consumed <= rest.len(),
                    "consumed {consumed} of {}",
                    rest.len()
                );
                let mut encoded = Vec::new();
                frame.encode(&mut encoded);
                assert_eq!(
                    encoded,
                    rest[..consumed],
                    "decode→encode changed the bytes of {frame:?}"
                );
                check_prefixes(rest, consumed, &Ok(None));
                // The frame is decided by its own bytes: nothing after it changes the result.
                assert_eq!(
                    decode_frame(&rest[..consumed]),
                    result,
                    "frame depends on bytes after it"
                );
                let step = match frame {
                    Frame::Data { len } => {
                        let len = *len as usize;
                        assert!(
                            (1..=MAX_DATA_CHUNK).contains(&len),
                            "DATA length {len} out of range"
                        );
                        consumed + len
                    }
                    _ => {
                        assert!(consumed - FRAME_HEADER_LEN <= MAX_CONTROL_PAYLOAD);
                        consumed
                    }
                };
                pos += step.min(rest.len());
            }
        }
    }
}

/// Every prefix of `bytes[..end]` (sampled for long frames) decodes to `Ok(None)` or to
/// `full`, if `full` is an error.
fn check_prefixes(
    bytes: &[u8],
    end: usize,
    full: &Result<Option<(Frame<'_>, usize)>, crate::DecodeError>,
) {
    let check = |cut: usize| {
        let got = decode_frame(&bytes[..cut]);
        let ok = match (&got, full) {
            (Ok(None), _) => true,
            (Err(a), Err(b)) => a == b,
            _ => false,
        };
        assert!(
            ok,
            "prefix of {cut} bytes decodes to {got:?}, the whole to {full:?}"
        );
    };
    if end <= ALL_PREFIXES_UP_TO {
        (0..end).for_each(check);
    } else {
        (0..FRAME_HEADER_LEN + 2)
            .chain((1..16).map(|i| end * i / 16))
            .chain([end - 1])
            .for_each(check);
    }
}
