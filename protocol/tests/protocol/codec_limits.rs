//! The codec at its limits: every length check met exactly (accepted) and passed by one
//! (refused), and frames written after other bytes.

use ferry_protocol::limits::{
    FRAME_HEADER_LEN, MAX_CONTROL_PAYLOAD, MAX_DATA_CHUNK, MAX_MESSAGE_LEN, MAX_TOKEN_LEN,
    MAX_WIRE_NAME_LEN,
};
use ferry_protocol::{DecodeError, ErrorCode, Frame, SourceTag, decode_frame};

use crate::raw::frames;

/// A header of frame type `ty` declaring `len` payload bytes.
fn header(ty: u8, len: usize) -> Vec<u8> {
    let mut out = vec![ty];
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out
}

const PING: u8 = 0x40;
const DATA: u8 = 0x30;

#[test]
fn a_control_frame_declaring_exactly_the_limit_waits_for_its_payload() {
    assert_eq!(decode_frame(&header(PING, MAX_CONTROL_PAYLOAD)), Ok(None));
    assert_eq!(
        decode_frame(&header(PING, MAX_CONTROL_PAYLOAD + 1)),
        Err(DecodeError::TooLarge {
            ty: PING,
            len: MAX_CONTROL_PAYLOAD as u32 + 1,
            max: MAX_CONTROL_PAYLOAD
        })
    );
}

#[test]
fn a_data_frame_of_exactly_the_chunk_limit_is_accepted() {
    assert_eq!(
        decode_frame(&header(DATA, MAX_DATA_CHUNK)),
        Ok(Some((
            Frame::Data {
                len: MAX_DATA_CHUNK as u32
            },
            FRAME_HEADER_LEN
        )))
    );
    assert_eq!(
        decode_frame(&header(DATA, MAX_DATA_CHUNK + 1)),
        Err(DecodeError::TooLarge {
            ty: DATA,
            len: MAX_DATA_CHUNK as u32 + 1,
            max: MAX_DATA_CHUNK
        })
    );
}

#[test]
fn fields_exactly_at_their_limits_decode_and_one_byte_more_is_refused() {
    let token = vec![b't'; MAX_TOKEN_LEN];
    let name = "n".repeat(MAX_WIRE_NAME_LEN);
    let message = "m".repeat(MAX_MESSAGE_LEN);
    let at_limits = [
        Frame::Hello {
            min_version: 1,
            max_version: 1,
            token: &token,
        },
        Frame::Put {
            name: &name,
            size: 1,
            overwrite: true,
            resume: false,
            eager: false,
            streamed: false,
            tag: SourceTag([3; 16]),
        },
        Frame::List { prefix: &name },
        Frame::Error {
            code: ErrorCode::Busy,
            message: &message,
        },
    ];
    for frame in at_limits {
        let bytes = frames(std::slice::from_ref(&frame));
        assert_eq!(
            decode_frame(&bytes),
            Ok(Some((frame.clone(), bytes.len()))),
            "{}",
            frame.name()
        );
    }

    let token = vec![b't'; MAX_TOKEN_LEN + 1];
    let bytes = frames(&[Frame::Hello {
        min_version: 1,
        max_version: 1,
        token: &token,
    }]);
    assert_eq!(
        decode_frame(&bytes),
        Err(DecodeError::FieldTooLong {
            field: "token",
            len: MAX_TOKEN_LEN + 1,
            max: MAX_TOKEN_LEN
        })
    );
}

#[test]
fn a_frame_written_after_other_bytes_declares_only_its_own_payload() {
    let mut out = vec![0xaa; 3];
    Frame::Ping { nonce: 7 }.encode(&mut out);
    Frame::Remove { name: "ab" }.encode(&mut out);
    assert_eq!(
        out,
        [
            &[0xaa, 0xaa, 0xaa][..],
            &[0x40, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7],
            &[0x13, 0, 0, 0, 4, 0, 2, b'a', b'b'],
        ]
        .concat()
    );
}

#[test]
fn put_flags_decode_one_by_one() {
    for (overwrite, resume) in [(false, false), (true, false), (false, true), (true, true)] {
        let frame = Frame::Put {
            name: "f",
            size: 1,
            overwrite,
            resume,
            eager: false,
            streamed: false,
            tag: SourceTag::default(),
        };
        let bytes = frames(std::slice::from_ref(&frame));
        let flags = u8::from(overwrite) | u8::from(resume) << 1;
        assert_eq!(bytes[13], flags);
        assert_eq!(decode_frame(&bytes), Ok(Some((frame, bytes.len()))));
    }
}
