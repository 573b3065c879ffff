use super::*;

fn encoded(frame: &Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    frame.encode(&mut out);
    out
}

#[test]
fn put_encodes_to_exact_bytes() {
    let frame = Frame::Put {
        name: "a/b",
        size: 258,
        overwrite: true,
        resume: true,
        eager: false,
        streamed: false,
        tag: SourceTag([7; 16]),
    };
    let mut expected = vec![0x10, 0, 0, 0, 30, 0, 0, 0, 0, 0, 0, 1, 2, 0b11];
    expected.extend_from_slice(&[7; 16]);
    expected.extend_from_slice(&[0, 3, b'a', b'/', b'b']);
    assert_eq!(encoded(&frame), expected);
}

#[test]
fn error_and_data_encode_to_exact_bytes() {
    let error = Frame::Error {
        code: ErrorCode::Busy,
        message: "busy",
    };
    assert_eq!(
        encoded(&error),
        [0x7f, 0, 0, 0, 8, 0, 6, 0, 4, b'b', b'u', b's', b'y']
    );
    assert_eq!(encoded(&Frame::Data { len: 0x0102 }), [0x30, 0, 0, 1, 2]);
    assert_eq!(encoded(&Frame::Ack), [0x24, 0, 0, 0, 0]);
}

#[test]
fn partial_header_and_payload_need_more_bytes() {
    let bytes = encoded(&Frame::Remove { name: "file" });
    for cut in 0..bytes.len() {
        assert_eq!(decode_frame(&bytes[..cut]), Ok(None), "cut at {cut}");
    }
    assert_eq!(
        decode_frame(&bytes),
        Ok(Some((Frame::Remove { name: "file" }, bytes.len())))
    );
}

#[test]
fn unknown_type_is_rejected_from_its_first_byte() {
    assert_eq!(decode_frame(&[0xee]), Err(DecodeError::UnknownType(0xee)));
}

#[test]
fn oversized_control_frame_is_rejected_from_its_header() {
    assert_eq!(
        decode_frame(&[0x10, 0xff, 0xff, 0xff, 0xff]),
        Err(DecodeError::TooLarge {
            ty: 0x10,
            len: u32::MAX,
            max: MAX_CONTROL_PAYLOAD
        })
    );
}

#[test]
fn oversized_and_empty_data_are_rejected() {
    let len = (MAX_DATA_CHUNK as u32 + 1).to_be_bytes();
    assert!(matches!(
        decode_frame(&[0x30, len[0], len[1], len[2], len[3]]),
        Err(DecodeError::TooLarge { .. })
    ));
    assert_eq!(
        decode_frame(&[0x30, 0, 0, 0, 0]),
        Err(DecodeError::EmptyData)
    );
}

#[test]
fn truncated_payload_is_rejected() {
    assert_eq!(
        decode_frame(&[0x20, 0, 0, 0, 3, 1, 2, 3]),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn trailing_bytes_are_rejected() {
    assert_eq!(
        decode_frame(&[0x24, 0, 0, 0, 1, 9]),
        Err(DecodeError::TrailingBytes { extra: 1 })
    );
}

#[test]
fn over_long_field_is_rejected() {
    let mut bytes = vec![0x13, 0, 0, 0x10, 0x03, 0x10, 0x01];
    bytes.extend(std::iter::repeat_n(b'a', 0x1001));
    assert_eq!(
        decode_frame(&bytes),
        Err(DecodeError::FieldTooLong {
            field: "name",
            len: 0x1001,
            max: MAX_WIRE_NAME_LEN
        })
    );
}

#[test]
fn invalid_utf8_is_rejected() {
    assert_eq!(
        decode_frame(&[0x12, 0, 0, 0, 3, 0, 1, 0xff]),
        Err(DecodeError::InvalidUtf8 { field: "prefix" })
    );
}

#[test]
fn move_encodes_to_exact_bytes_and_back() {
    let frame = Frame::Move {
        from: "a",
        to: "b/c",
        overwrite: true,
    };
    let bytes = encoded(&frame);
    assert_eq!(
        bytes,
        [0x15, 0, 0, 0, 9, 1, 0, 1, b'a', 0, 3, b'b', b'/', b'c']
    );
    assert_eq!(decode_frame(&bytes), Ok(Some((frame, bytes.len()))));
}

#[test]
fn unknown_move_flags_are_rejected() {
    for flags in [0b10, 0x80, 0xff] {
        let mut bytes = encoded(&Frame::Move {
            from: "a",
            to: "b",
            overwrite: false,
        });
        bytes[5] = flags;
        assert_eq!(decode_frame(&bytes), Err(DecodeError::UnknownFlags(flags)));
    }
}

#[test]
fn move_names_are_bounded_and_complete() {
    let long = "a".repeat(MAX_WIRE_NAME_LEN + 1);
    let bytes = encoded(&Frame::Move {
        from: "a",
        to: &long,
        overwrite: false,
    });
    assert_eq!(
        decode_frame(&bytes),
        Err(DecodeError::FieldTooLong {
            field: "new name",
            len: MAX_WIRE_NAME_LEN + 1,
            max: MAX_WIRE_NAME_LEN
        })
    );
    // The header says 4 payload bytes: flags and the old name, but no new name.
    assert_eq!(
        decode_frame(&[0x15, 0, 0, 0, 4, 0, 0, 1, b'a']),
        Err(DecodeError::Truncated)
    );
    let both_longest = "n".repeat(MAX_WIRE_NAME_LEN);
    let frame = Frame::Move {
        from: &both_longest,
        to: &both_longest,
        overwrite: false,
    };
    let bytes = encoded(&frame);
    assert!(bytes.len() - FRAME_HEADER_LEN <= MAX_CONTROL_PAYLOAD);
    assert_eq!(decode_frame(&bytes), Ok(Some((frame, bytes.len()))));
}

#[test]
fn unknown_put_flags_are_rejected() {
    let mut bytes = encoded(&Frame::Put {
        name: "x",
        size: 1,
        overwrite: false,
        resume: false,
        eager: false,
        streamed: false,
        tag: SourceTag::default(),
    });
    bytes[13] = 0x80;
    assert_eq!(decode_frame(&bytes), Err(DecodeError::UnknownFlags(0x80)));
}

fn streamed_put(size: u64) -> Vec<u8> {
    let mut bytes = encoded(&Frame::Put {
        name: "s",
        size: 0,
        overwrite: true,
        resume: false,
        eager: false,
        streamed: true,
        tag: SourceTag([1; 16]),
    });
    bytes[5..13].copy_from_slice(&size.to_be_bytes());
    bytes
}

#[test]
fn streamed_put_and_done_sized_encode_to_exact_bytes() {
    let mut expected = vec![0x10, 0, 0, 0, 28, 0, 0, 0, 0, 0, 0, 0, 0, 0b1001];
    expected.extend_from_slice(&[1; 16]);
    expected.extend_from_slice(&[0, 1, b's']);
    assert_eq!(streamed_put(0), expected);
    let done = Frame::DoneSized {
        size: 0x0102,
        digest: Digest([9; 32]),
    };
    let mut expected = vec![0x33, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0, 1, 2];
    expected.extend_from_slice(&[9; 32]);
    assert_eq!(encoded(&done), expected);
    assert_eq!(decode_frame(&expected), Ok(Some((done, expected.len()))));
}

#[test]
fn a_streamed_put_that_declares_a_size_is_rejected() {
    assert_eq!(
        decode_frame(&streamed_put(7)),
        Err(DecodeError::StreamedSize(7))
    );
}

#[test]
fn streamed_with_resume_or_eager_is_rejected() {
    for other in [PUT_RESUME, PUT_EAGER] {
        let mut bytes = streamed_put(0);
        bytes[13] |= other;
        assert_eq!(
            decode_frame(&bytes),
            Err(DecodeError::UnknownFlags(bytes[13]))
        );
    }
}

#[test]
fn a_short_done_sized_is_truncated() {
    let mut bytes = vec![0x33, 0, 0, 0, 32];
    bytes.extend_from_slice(&[0; 32]);
    assert_eq!(decode_frame(&bytes), Err(DecodeError::Truncated));
}
