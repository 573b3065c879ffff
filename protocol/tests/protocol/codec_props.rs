//! Property tests of the codec: every frame round-trips, arbitrary bytes never panic or make
//! the decoder wait past a limit, and a stream split anywhere decodes to the same frames.

use ferry_protocol::limits::{FRAME_HEADER_LEN, MAX_CONTROL_PAYLOAD, MAX_DATA_CHUNK};
use ferry_protocol::{DecodeError, Digest, ErrorCode, Frame, SourceTag, decode_frame};
use proptest::prelude::*;

/// An owned description of a frame, so that proptest can generate and shrink it.
#[derive(Clone, Debug)]
enum Spec {
    Hello(u16, u16, Vec<u8>),
    Welcome(u16),
    /// Name, size, overwrite, mode (0 plain, 1 resume, 2 eager, 3 streamed), tag.
    Put(String, u64, bool, u8, [u8; 16]),
    Get(String, u64),
    List(String),
    Remove(String),
    Query(String, [u8; 16]),
    Move(String, String, bool),
    PutReady(u64),
    GetReady(u64, u64),
    Entry(String, u64, u64),
    ListEnd,
    Ack,
    QueryReply(Option<u64>, Option<u64>, Option<[u8; 32]>),
    Data(u32),
    Done([u8; 32]),
    DoneSized(u64, [u8; 32]),
    Cancel,
    Ping(u64),
    Pong(u64),
    Error(u16, String),
}

impl Spec {
    fn frame(&self) -> Frame<'_> {
        match self {
            Spec::Hello(a, b, token) => Frame::Hello {
                min_version: *a,
                max_version: *b,
                token,
            },
            Spec::Welcome(v) => Frame::Welcome { version: *v },
            Spec::Put(name, size, overwrite, mode, tag) => Frame::Put {
                name,
                // A streamed PUT's size field is always 0 (PROTOCOL.md §4).
                size: if *mode == 3 { 0 } else { *size },
                overwrite: *overwrite,
                resume: *mode == 1,
                eager: *mode == 2,
                streamed: *mode == 3,
                tag: SourceTag(*tag),
            },
            Spec::Get(name, offset) => Frame::Get {
                name,
                offset: *offset,
            },
            Spec::List(prefix) => Frame::List { prefix },
            Spec::Remove(name) => Frame::Remove { name },
            Spec::Query(name, tag) => Frame::Query {
                name,
                tag: SourceTag(*tag),
            },
            Spec::Move(from, to, overwrite) => Frame::Move {
                from,
                to,
                overwrite: *overwrite,
            },
            Spec::PutReady(offset) => Frame::PutReady { offset: *offset },
            Spec::GetReady(size, offset) => Frame::GetReady {
                size: *size,
                offset: *offset,
            },
            Spec::Entry(name, size, ms) => Frame::Entry {
                name,
                size: *size,
                modified_ms: *ms,
            },
            Spec::ListEnd => Frame::ListEnd,
            Spec::Ack => Frame::Ack,
            Spec::QueryReply(a, b, d) => Frame::QueryReply {
                stored_size: *a,
                partial_offset: *b,
                stored_digest: d.map(Digest),
            },
            Spec::Data(len) => Frame::Data { len: *len },
            Spec::Done(d) => Frame::Done { digest: Digest(*d) },
            Spec::DoneSized(size, d) => Frame::DoneSized {
                size: *size,
                digest: Digest(*d),
            },
            Spec::Cancel => Frame::Cancel,
            Spec::Ping(n) => Frame::Ping { nonce: *n },
            Spec::Pong(n) => Frame::Pong { nonce: *n },
            Spec::Error(code, message) => Frame::Error {
                code: ErrorCode::from_u16(*code),
                message,
            },
        }
    }
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(|chars| {
        let mut s: String = chars.into_iter().collect();
        while s.len() > 1024 {
            s.pop();
        }
        s
    })
}

/// Sizes that are never the "absent" sentinel of QUERY_REPLY.
fn size() -> impl Strategy<Value = Option<u64>> {
    proptest::option::of(0..u64::MAX)
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (
            any::<u16>(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..512)
        )
            .prop_map(|(a, b, t)| Spec::Hello(a, b, t)),
        any::<u16>().prop_map(Spec::Welcome),
        (
            text(300),
            any::<u64>(),
            any::<bool>(),
            0..4u8,
            any::<[u8; 16]>()
        )
            .prop_map(|(n, s, o, m, t)| Spec::Put(n, s, o, m, t)),
        (text(300), any::<u64>()).prop_map(|(n, o)| Spec::Get(n, o)),
        text(300).prop_map(Spec::List),
        text(300).prop_map(Spec::Remove),
        (text(300), any::<[u8; 16]>()).prop_map(|(n, t)| Spec::Query(n, t)),
        (text(300), text(300), any::<bool>()).prop_map(|(f, t, o)| Spec::Move(f, t, o)),
        any::<u64>().prop_map(Spec::PutReady),
        (any::<u64>(), any::<u64>()).prop_map(|(s, o)| Spec::GetReady(s, o)),
        (text(300), any::<u64>(), any::<u64>()).prop_map(|(n, s, m)| Spec::Entry(n, s, m)),
        Just(Spec::ListEnd),
        Just(Spec::Ack),
        (size(), size(), proptest::option::of(any::<[u8; 32]>()))
            .prop_map(|(a, b, d)| Spec::QueryReply(a, b, d)),
        (1..=MAX_DATA_CHUNK as u32).prop_map(Spec::Data),
        any::<[u8; 32]>().prop_map(Spec::Done),
        (any::<u64>(), any::<[u8; 32]>()).prop_map(|(s, d)| Spec::DoneSized(s, d)),
        Just(Spec::Cancel),
        any::<u64>().prop_map(Spec::Ping),
        any::<u64>().prop_map(Spec::Pong),
        (1..=19u16, text(300)).prop_map(|(c, m)| Spec::Error(c, m)),
    ]
}

proptest! {
    #[test]
    fn every_frame_round_trips(spec in spec()) {
        let frame = spec.frame();
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let (decoded, used) = decode_frame(&bytes).expect("valid frame decodes").expect("complete");
        prop_assert_eq!(&decoded, &frame);
        prop_assert_eq!(used, bytes.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_reencode_exactly(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(Some((frame, used))) = decode_frame(&bytes) {
            prop_assert!(used <= bytes.len());
            prop_assert!(used <= FRAME_HEADER_LEN + MAX_CONTROL_PAYLOAD);
            let mut again = Vec::new();
            frame.encode(&mut again);
            prop_assert_eq!(&again[..], &bytes[..used]);
        }
    }

    #[test]
    fn a_length_above_the_limit_is_refused_from_the_header_alone(
        ty in prop_oneof![Just(0x01u8), Just(0x10), Just(0x22), Just(0x7f), Just(0x30)],
        excess in 1u32..1_000_000,
    ) {
        let limit = if ty == 0x30 { MAX_DATA_CHUNK } else { MAX_CONTROL_PAYLOAD } as u32;
        let len = limit.saturating_add(excess);
        let mut header = vec![ty];
        header.extend_from_slice(&len.to_be_bytes());
        let is_too_large = matches!(decode_frame(&header), Err(DecodeError::TooLarge { .. }));
        prop_assert!(is_too_large);
    }

    #[test]
    fn a_stream_split_anywhere_decodes_to_the_same_frames(
        specs in proptest::collection::vec(spec(), 1..12),
        cuts in proptest::collection::vec(1usize..64, 1..200),
    ) {
        let mut stream = Vec::new();
        let mut data_lens = Vec::new();
        for spec in &specs {
            spec.frame().encode(&mut stream);
            if let Spec::Data(len) = spec {
                // a DATA payload is raw bytes after the header: keep them small here
                data_lens.push(*len);
            }
        }
        // DATA frames are only headers in this stream; decode them as headers.
        let mut whole = Vec::new();
        let mut pos = 0;
        while let Ok(Some((frame, used))) = decode_frame(&stream[pos..]) {
            whole.push(format!("{frame:?}"));
            pos += used;
        }
        prop_assert_eq!(pos, stream.len());

        let mut pieces = Vec::new();
        let mut buffer: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut cut = cuts.iter().cycle();
        while fed < stream.len() {
            let n = (*cut.next().unwrap_or(&1)).min(stream.len() - fed);
            buffer.extend_from_slice(&stream[fed..fed + n]);
            fed += n;
            let mut start = 0;
            while let Ok(Some((frame, used))) = decode_frame(&buffer[start..]) {
                pieces.push(format!("{frame:?}"));
                start += used;
            }
            buffer.drain(..start);
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(pieces, whole);
    }
}
