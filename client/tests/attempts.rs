//! The client's transfer logic (`ferry_client::transfer`: [`Upload`], [`UploadAttempt`],
//! [`Download`], [`DownloadAttempt`]) driven without sockets against the protocol crate's own
//! server machine, which each test scripts: what the client asks, what it sends, and what it
//! makes of every answer, one step at a time.

use std::collections::VecDeque;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use ferry_client::transfer::{Download, DownloadAttempt, Upload, UploadAttempt};
use ferry_client::{ClientError, PutOutcome};
use ferry_protocol::{
    ClientConnection, ClientEvent, Config, Digest, ErrorCode, FileHasher, HashCheckpoint,
    PutRequest, ServerConnection, ServerEvent, SourceTag, Timestamp,
};

const UNIT: usize = ferry_protocol::HASH_UNIT_LEN as usize;

/// The size from which a first attempt asks for the resumable offset before `PUT` (the
/// library's `PREHASH_MIN`).
const PREHASH_MIN: u64 = 64 * 1024 * 1024;

const TAG: SourceTag = SourceTag([7; 16]);

/// `len` bytes that differ from one offset to the next.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8) ^ usize::from(seed)) as u8)
        .collect()
}

/// The hash state of `prefix`'s whole units (the last one only if a byte follows it).
fn checkpoint_of(prefix: &[u8]) -> HashCheckpoint {
    let mut hasher = FileHasher::new();
    hasher.update(prefix);
    hasher.checkpoint()
}

/// A client machine and a server machine wired back to back; the test plays the server.
struct Wire {
    client: ClientConnection,
    server: ServerConnection,
    /// Client bytes the server has not read yet.
    to_server: Vec<u8>,
    /// What the server machine reported, oldest first.
    server_events: VecDeque<ServerEvent>,
    /// Upload data the server machine took.
    uploaded: Vec<u8>,
    /// What the client machine reported, oldest first.
    client_events: VecDeque<ClientEvent>,
    /// Download data the client machine took.
    downloaded: Vec<u8>,
}

impl Wire {
    fn connected() -> Wire {
        let now = Timestamp::ZERO;
        let mut wire = Wire {
            client: ClientConnection::new(Config::default(), now, b"").unwrap(),
            server: ServerConnection::new(Config::default(), now),
            to_server: Vec::new(),
            server_events: VecDeque::new(),
            uploaded: Vec::new(),
            client_events: VecDeque::new(),
            downloaded: Vec::new(),
        };
        wire.deliver_to_server();
        assert!(matches!(
            wire.server_events.pop_front(),
            Some(ServerEvent::ClientHello { .. })
        ));
        wire.server.accept_client().unwrap();
        wire.deliver_to_client(&[]);
        assert!(matches!(
            wire.client_events.pop_front(),
            Some(ClientEvent::Connected { .. })
        ));
        wire
    }

    /// Delivers what the client queued to the server machine.
    fn deliver_to_server(&mut self) {
        self.client.poll_transmit(&mut self.to_server);
        let mut start = 0;
        loop {
            let received = self
                .server
                .handle_input(Timestamp::ZERO, &self.to_server[start..])
                .unwrap();
            start += received.consumed;
            self.uploaded.extend_from_slice(received.file_data);
            let mut any = false;
            while let Some(event) = self.server.poll_event() {
                self.server_events.push_back(event);
                any = true;
            }
            if received.consumed == 0 && !any {
                break;
            }
        }
        self.to_server.drain(..start);
    }

    /// Delivers what the server queued (and then `extra`, raw) to the client machine.
    fn deliver_to_client(&mut self, extra: &[u8]) {
        let mut bytes = Vec::new();
        self.server.poll_transmit(&mut bytes);
        bytes.extend_from_slice(extra);
        let mut start = 0;
        loop {
            let received = self
                .client
                .handle_input(Timestamp::ZERO, &bytes[start..])
                .unwrap();
            start += received.consumed;
            self.downloaded.extend_from_slice(received.file_data);
            let mut any = false;
            while let Some(event) = self.client.poll_event() {
                self.client_events.push_back(event);
                any = true;
            }
            if received.consumed == 0 && !any {
                break;
            }
        }
        assert_eq!(start, bytes.len(), "the client left bytes unread");
    }

    /// The server's next event.
    fn server_event(&mut self) -> ServerEvent {
        self.deliver_to_server();
        self.server_events
            .pop_front()
            .expect("the server machine saw no request")
    }

    /// The request the client sent, as the server machine read it.
    fn put_request(&mut self) -> PutRequest {
        match self.server_event() {
            ServerEvent::PutRequested(request) => request,
            other => panic!("expected a PUT, got {other:?}"),
        }
    }

    /// The client's next event, after the server's answer was delivered.
    fn client_event(&mut self) -> ClientEvent {
        self.deliver_to_client(&[]);
        self.client_events
            .pop_front()
            .expect("the client machine saw no answer")
    }
}

/// A source that counts the bytes read from it.
struct Counted<'a> {
    inner: Cursor<&'a [u8]>,
    read: u64,
}

impl<'a> Counted<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Counted {
            inner: Cursor::new(bytes),
            read: 0,
        }
    }
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Seek for Counted<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Sends every chunk the attempt gives (up to `DONE`); returns the chunks' lengths.
fn send_all<R: Read + Seek>(
    wire: &mut Wire,
    upload: &mut Upload,
    attempt: &mut UploadAttempt,
    source: &mut R,
) -> Vec<usize> {
    let mut lengths = Vec::new();
    while let Some(chunk) = attempt
        .next_chunk(upload, &mut wire.client, source)
        .unwrap()
    {
        lengths.push(chunk.len());
        wire.client.send_file_data(chunk).unwrap();
        wire.client.poll_transmit(&mut wire.to_server);
        wire.to_server.extend_from_slice(chunk);
    }
    lengths
}

/// The server's verdict on an upload whose every byte it read.
fn verified_digest(wire: &mut Wire) -> Digest {
    match wire.server_event() {
        ServerEvent::UploadVerified { digest, .. } => digest,
        other => panic!("expected the upload verified, got {other:?}"),
    }
}

/// Hands the client's next event to the attempt.
fn answer<R: Read + Seek>(
    wire: &mut Wire,
    upload: &mut Upload,
    attempt: &mut UploadAttempt,
    source: &mut R,
) -> Result<Option<ferry_client::transfer::Finished>, ClientError> {
    let event = wire.client_event();
    attempt.on_event(upload, &mut wire.client, event, source)
}

// ---------------------------------------------------------------------------------------------
// Uploads

#[test]
fn an_upload_is_sent_in_chunks_then_done_and_its_stages_show_in_progress_and_messages() {
    let body = data(2500, 1);
    let mut wire = Wire::connected();
    let mut upload = Upload::new("a.txt", body.len() as u64, TAG, false, 1000);
    let mut source = Cursor::new(&body[..]);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
    assert_eq!(
        attempt.during(),
        "waiting for the server to accept the upload"
    );
    assert_eq!(attempt.progress(&upload).done, 0);
    assert_eq!(attempt.progress(&upload).total, 2500);
    assert_eq!(attempt.progress(&upload).attempt, 1);
    let request = wire.put_request();
    assert_eq!(
        (request.name.as_str(), request.size, request.overwrite),
        ("a.txt", 2500, false)
    );
    assert!(request.resume, "a first attempt resumes by default");
    assert_eq!(request.tag, TAG);

    wire.server.accept_put(&HashCheckpoint::start()).unwrap();
    assert!(
        answer(&mut wire, &mut upload, &mut attempt, &mut source)
            .unwrap()
            .is_none()
    );
    assert_eq!(attempt.during(), "sending upload data");
    assert!(!attempt.is_finishing());

    // The first chunk, then the progress counts it.
    let first = attempt
        .next_chunk(&mut upload, &mut wire.client, &mut source)
        .unwrap()
        .unwrap()
        .to_vec();
    assert!(first == body[..1000]);
    assert_eq!(attempt.progress(&upload).done, 1000);
    wire.client.send_file_data(&first).unwrap();
    wire.client.poll_transmit(&mut wire.to_server);
    wire.to_server.extend_from_slice(&first);
    assert_eq!(
        send_all(&mut wire, &mut upload, &mut attempt, &mut source),
        [1000, 500]
    );
    assert!(attempt.is_finishing());
    assert_eq!(
        attempt.during(),
        "waiting for the server to store the upload"
    );
    assert_eq!(attempt.progress(&upload).done, 2500);
    assert_eq!(upload.bytes_sent, 2500);
    assert_eq!(upload.resumed_from, 0);
    // Nothing more to send once `DONE` is out.
    assert!(
        attempt
            .next_chunk(&mut upload, &mut wire.client, &mut source)
            .unwrap()
            .is_none()
    );

    assert_eq!(verified_digest(&mut wire), Digest::of(&body));
    assert!(wire.uploaded == body);
    wire.server.confirm().unwrap();
    let finished = answer(&mut wire, &mut upload, &mut attempt, &mut source)
        .unwrap()
        .unwrap();
    assert_eq!(finished.digest, Digest::of(&body));
    assert_eq!(finished.outcome, PutOutcome::Uploaded);
}

#[test]
fn an_upload_the_server_resumes_sends_only_the_rest_and_hashes_the_prefix() {
    let body = data(5 * UNIT + 17, 2);
    let mut wire = Wire::connected();
    let mut upload = Upload::new("r.bin", body.len() as u64, TAG, false, 4096);
    let mut source = Counted::new(&body);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
    wire.put_request();
    let checkpoint = checkpoint_of(&body[..3 * UNIT + 1]);
    let offset = checkpoint.offset();
    assert_eq!(offset, 3 * UNIT as u64);
    wire.server.accept_put(&checkpoint).unwrap();
    answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
    assert_eq!(upload.resumed_from, offset);
    assert_eq!(attempt.progress(&upload).done, offset);
    // Nothing was sent before: the prefix is hashed from the source.
    assert_eq!(source.read, offset);

    send_all(&mut wire, &mut upload, &mut attempt, &mut source);
    assert_eq!(upload.bytes_sent, body.len() as u64 - offset);
    // The server machine checks the digest of the whole file, prefix included.
    assert_eq!(verified_digest(&mut wire), Digest::of(&body));
    assert!(wire.uploaded == body[offset as usize..]);
}

#[test]
fn a_retry_resumes_from_a_checkpoint_it_kept_without_reading_the_prefix_again() {
    let body = data(12 * UNIT + 5, 3);
    let mut upload = Upload::new("k.bin", body.len() as u64, TAG, false, UNIT);
    {
        // The first attempt sends ten units, then its connection is lost.
        let mut wire = Wire::connected();
        let mut source = Cursor::new(&body[..]);
        let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
        wire.put_request();
        wire.server.accept_put(&HashCheckpoint::start()).unwrap();
        answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
        for _ in 0..10 {
            attempt
                .next_chunk(&mut upload, &mut wire.client, &mut source)
                .unwrap()
                .unwrap();
        }
    }
    // The second goes on from the server's checkpoint at eight units.
    let mut wire = Wire::connected();
    let mut source = Counted::new(&body);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 2).unwrap();
    assert!(wire.put_request().resume);
    let checkpoint = checkpoint_of(&body[..8 * UNIT + 1]);
    wire.server.accept_put(&checkpoint).unwrap();
    answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
    assert_eq!(
        source.read, 0,
        "the kept checkpoint at eight units was used"
    );
    assert_eq!(attempt.progress(&upload).attempt, 2);
    send_all(&mut wire, &mut upload, &mut attempt, &mut source);
    assert_eq!(verified_digest(&mut wire), Digest::of(&body));
    assert_eq!(
        upload.bytes_sent,
        10 * UNIT as u64 + (body.len() - 8 * UNIT) as u64
    );
}

#[test]
fn each_attempt_asks_to_resume_as_the_upload_says() {
    for (resume_first, resume_retries) in [(false, true), (true, false)] {
        let mut upload = Upload::new("f", 10, TAG, true, 1024);
        upload.resume_first = resume_first;
        upload.resume_retries = resume_retries;
        for (number, expected) in [(1, resume_first), (2, resume_retries), (3, resume_retries)] {
            let mut wire = Wire::connected();
            UploadAttempt::begin(&mut upload, &mut wire.client, number).unwrap();
            let request = wire.put_request();
            assert_eq!(request.resume, expected, "attempt {number}");
            assert!(request.overwrite);
        }
    }
}

#[test]
fn only_the_first_resumable_attempt_of_a_large_upload_asks_for_its_offset_before_put() {
    let asks_first = |size: u64, number: u32, resume: bool| {
        let mut upload = Upload::new("big", size, TAG, false, 1024);
        upload.resume_first = resume;
        let mut wire = Wire::connected();
        let attempt = UploadAttempt::begin(&mut upload, &mut wire.client, number).unwrap();
        match wire.server_event() {
            ServerEvent::QueryRequested { name, tag } => {
                assert_eq!((name.as_str(), tag), ("big", TAG));
                assert_eq!(attempt.during(), "asking for a resumable offset");
                assert_eq!(attempt.progress(&upload).done, 0);
                true
            }
            ServerEvent::PutRequested(_) => false,
            other => panic!("{other:?}"),
        }
    };
    assert!(asks_first(PREHASH_MIN, 1, true));
    assert!(!asks_first(PREHASH_MIN - 1, 1, true));
    assert!(!asks_first(PREHASH_MIN, 2, true));
    assert!(!asks_first(PREHASH_MIN, 1, false));
}

#[test]
fn a_large_upload_hashes_the_servers_resumable_prefix_before_its_put() {
    let body = data(PREHASH_MIN as usize, 4);
    let mut upload = Upload::new("big", body.len() as u64, TAG, false, 1 << 20);
    let mut wire = Wire::connected();
    let mut source = Counted::new(&body);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
    assert!(matches!(
        wire.server_event(),
        ServerEvent::QueryRequested { .. }
    ));
    let checkpoint = checkpoint_of(&body[..5 * UNIT + 1]);
    wire.server
        .reply_query(None, None, Some(checkpoint.offset()))
        .unwrap();
    assert!(
        answer(&mut wire, &mut upload, &mut attempt, &mut source)
            .unwrap()
            .is_none()
    );
    // Hashed before the PUT went out, not after.
    assert_eq!(source.read, 5 * UNIT as u64);
    assert_eq!(
        attempt.during(),
        "waiting for the server to accept the upload"
    );
    assert!(wire.put_request().resume);
    wire.server.accept_put(&checkpoint).unwrap();
    answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
    assert_eq!(source.read, 5 * UNIT as u64, "the prefix is not read twice");
    assert_eq!(upload.resumed_from, 5 * UNIT as u64);
}

#[test]
fn a_resumable_offset_at_the_end_of_the_file_is_hashed_whole_and_beyond_it_ignored() {
    for (offset, read) in [(PREHASH_MIN, PREHASH_MIN), (PREHASH_MIN + 1, 0), (0, 0)] {
        let body = data(PREHASH_MIN as usize, 5);
        let mut upload = Upload::new("big", body.len() as u64, TAG, false, 1 << 20);
        let mut wire = Wire::connected();
        let mut source = Counted::new(&body);
        let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
        wire.server_event();
        wire.server.reply_query(None, None, Some(offset)).unwrap();
        answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
        assert_eq!(source.read, read, "offset {offset}");
        wire.put_request();
    }
}

#[test]
fn a_large_upload_whose_bytes_are_stored_already_ends_without_a_put() {
    let body = data(PREHASH_MIN as usize, 6);
    let mut upload = Upload::new("big", body.len() as u64, TAG, false, 1 << 20);
    let mut wire = Wire::connected();
    let mut source = Cursor::new(&body[..]);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
    wire.server_event();
    wire.server
        .reply_query(Some(body.len() as u64), Some(Digest::of(&body)), None)
        .unwrap();
    let finished = answer(&mut wire, &mut upload, &mut attempt, &mut source)
        .unwrap()
        .unwrap();
    assert_eq!(finished.outcome, PutOutcome::AlreadyStored);
    assert_eq!(finished.digest, Digest::of(&body));
    wire.deliver_to_server();
    assert!(wire.server_events.is_empty(), "no PUT was sent");
}

#[test]
fn a_large_overwriting_upload_puts_even_when_the_same_bytes_are_stored() {
    let body = data(PREHASH_MIN as usize, 6);
    let mut upload = Upload::new("big", body.len() as u64, TAG, true, 1 << 20);
    let mut wire = Wire::connected();
    let mut source = Cursor::new(&body[..]);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
    wire.server_event();
    wire.server
        .reply_query(Some(body.len() as u64), Some(Digest::of(&body)), None)
        .unwrap();
    assert!(
        answer(&mut wire, &mut upload, &mut attempt, &mut source)
            .unwrap()
            .is_none()
    );
    assert!(wire.put_request().overwrite);
}

#[test]
fn a_large_upload_whose_offset_question_is_refused_puts_anyway() {
    let mut upload = Upload::new("big", PREHASH_MIN, TAG, false, 1 << 20);
    let mut wire = Wire::connected();
    let mut source = Cursor::new(&[][..]);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
    wire.server_event();
    wire.server.refuse(ErrorCode::Busy, "later").unwrap();
    assert!(
        answer(&mut wire, &mut upload, &mut attempt, &mut source)
            .unwrap()
            .is_none()
    );
    wire.put_request();
}

/// An upload of `body` whose `PUT` was refused with `code`, and the attempt after the refusal.
fn refused_upload(
    body: &[u8],
    overwrite: bool,
    code: ErrorCode,
) -> (
    Wire,
    Upload,
    UploadAttempt,
    Result<Option<ferry_client::transfer::Finished>, ClientError>,
) {
    let mut wire = Wire::connected();
    let mut upload = Upload::new("e.txt", body.len() as u64, TAG, overwrite, 1024);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
    wire.put_request();
    wire.server.refuse(code, "the name is taken").unwrap();
    let result = answer(&mut wire, &mut upload, &mut attempt, &mut Cursor::new(body));
    (wire, upload, attempt, result)
}

fn assert_refused(result: Result<impl std::fmt::Debug, ClientError>, expected: ErrorCode) {
    match result {
        Err(ClientError::Refused {
            request,
            code,
            message,
        }) => {
            assert_eq!(request, "upload");
            assert_eq!(code, expected);
            assert_eq!(message, "the name is taken");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refusal_other_than_exists_or_of_an_overwrite_ends_the_upload_without_a_question() {
    let body = data(100, 7);
    for (overwrite, code) in [(false, ErrorCode::Busy), (true, ErrorCode::AlreadyExists)] {
        let (mut wire, _, _, result) = refused_upload(&body, overwrite, code);
        assert_refused(result, code);
        wire.deliver_to_server();
        assert!(wire.server_events.is_empty(), "no QUERY");
    }
}

#[test]
fn an_upload_refused_as_existing_asks_what_is_stored_and_an_identical_file_is_already_stored() {
    let body = data(100, 8);
    let (mut wire, mut upload, mut attempt, result) =
        refused_upload(&body, false, ErrorCode::AlreadyExists);
    assert!(result.unwrap().is_none());
    assert_eq!(attempt.during(), "asking what is stored under the name");
    assert!(matches!(
        wire.server_event(),
        ServerEvent::QueryRequested { .. }
    ));
    wire.server
        .reply_query(Some(100), Some(Digest::of(&body)), None)
        .unwrap();
    let finished = answer(
        &mut wire,
        &mut upload,
        &mut attempt,
        &mut Cursor::new(&body[..]),
    )
    .unwrap()
    .unwrap();
    assert_eq!(finished.outcome, PutOutcome::AlreadyStored);
    assert_eq!(finished.digest, Digest::of(&body));
}

#[test]
fn an_upload_refused_as_existing_over_other_bytes_or_no_file_keeps_the_refusal() {
    let body = data(100, 9);
    let other = data(100, 10);
    for reply in [
        Some((Some(100), Some(Digest::of(&other)))),
        Some((Some(99), Some(Digest::of(&body)))),
        Some((None, None)),
        None,
    ] {
        let (mut wire, mut upload, mut attempt, _) =
            refused_upload(&body, false, ErrorCode::AlreadyExists);
        wire.server_event();
        match reply {
            Some((size, digest)) => wire.server.reply_query(size, digest, None).unwrap(),
            None => wire.server.refuse(ErrorCode::Busy, "no").unwrap(),
        }
        let result = answer(
            &mut wire,
            &mut upload,
            &mut attempt,
            &mut Cursor::new(&body[..]),
        );
        assert_refused(result, ErrorCode::AlreadyExists);
    }
}

#[test]
fn an_upload_refused_as_existing_over_a_file_of_unknown_digest_is_unconfirmed() {
    let body = data(100, 11);
    let (mut wire, mut upload, mut attempt, _) =
        refused_upload(&body, false, ErrorCode::AlreadyExists);
    wire.server_event();
    wire.server.reply_query(Some(100), None, None).unwrap();
    match answer(
        &mut wire,
        &mut upload,
        &mut attempt,
        &mut Cursor::new(&body[..]),
    ) {
        Err(ClientError::ExistsUnconfirmed { name, size }) => {
            assert_eq!((name.as_str(), size), ("e.txt", 100));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_upload_whose_ack_was_lost_counts_as_uploaded_on_the_retry() {
    let body = data(3000, 12);
    let mut upload = Upload::new("lost.txt", body.len() as u64, TAG, false, 1024);
    {
        let mut wire = Wire::connected();
        let mut source = Cursor::new(&body[..]);
        let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
        wire.put_request();
        wire.server.accept_put(&HashCheckpoint::start()).unwrap();
        answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
        send_all(&mut wire, &mut upload, &mut attempt, &mut source);
        assert!(attempt.is_finishing());
        // The connection is lost before the ACK.
    }
    let mut wire = Wire::connected();
    // Never read: the digest sent in DONE is known.
    let mut source = Cursor::new(&[][..]);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 2).unwrap();
    wire.put_request();
    wire.server
        .refuse(ErrorCode::AlreadyExists, "exists")
        .unwrap();
    answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
    wire.server_event();
    wire.server
        .reply_query(Some(3000), Some(Digest::of(&body)), None)
        .unwrap();
    let finished = answer(&mut wire, &mut upload, &mut attempt, &mut source)
        .unwrap()
        .unwrap();
    assert_eq!(finished.outcome, PutOutcome::Uploaded);
}

#[test]
fn a_digest_mismatch_at_the_end_is_an_integrity_error_saying_nothing_was_stored() {
    let body = data(500, 13);
    let mut wire = Wire::connected();
    let mut upload = Upload::new("m.txt", 500, TAG, false, 1024);
    let mut source = Cursor::new(&body[..]);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
    wire.put_request();
    wire.server.accept_put(&HashCheckpoint::start()).unwrap();
    answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
    send_all(&mut wire, &mut upload, &mut attempt, &mut source);
    verified_digest(&mut wire);
    wire.server
        .refuse(ErrorCode::DigestMismatch, "bytes changed")
        .unwrap();
    match answer(&mut wire, &mut upload, &mut attempt, &mut source) {
        Err(ClientError::Integrity { name, reason }) => {
            assert_eq!(name, "m.txt");
            assert!(reason.contains("bytes changed"), "{reason}");
            assert!(reason.contains("nothing was stored"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_source_shorter_than_its_declared_size_is_a_changed_source() {
    let body = data(1500, 14);
    let mut wire = Wire::connected();
    let mut upload = Upload::new("s.txt", 2000, TAG, false, 1000);
    let mut source = Cursor::new(&body[..]);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
    wire.put_request();
    wire.server.accept_put(&HashCheckpoint::start()).unwrap();
    answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
    attempt
        .next_chunk(&mut upload, &mut wire.client, &mut source)
        .unwrap();
    match attempt.next_chunk(&mut upload, &mut wire.client, &mut source) {
        Err(ClientError::SourceChanged { name, reason }) => {
            assert_eq!(name, "s.txt");
            assert!(reason.contains("2000 bytes"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_answer_out_of_turn_ends_the_upload_attempt() {
    let mut wire = Wire::connected();
    let mut upload = Upload::new("u.txt", 10, TAG, false, 1024);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
    wire.put_request();
    let result = attempt.on_event(
        &mut upload,
        &mut wire.client,
        ClientEvent::PutStored,
        &mut Cursor::new(&[][..]),
    );
    match result {
        Err(ClientError::Protocol(error)) => {
            let text = error.to_string();
            assert!(
                text.contains("waiting for the server to accept the upload"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Downloads

/// A sink that records what is written and flushed.
#[derive(Default)]
struct Sink {
    bytes: Vec<u8>,
    flushed: usize,
    fail: bool,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.fail {
            return Err(io::Error::other("disk on fire"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flushed = self.bytes.len();
        Ok(())
    }
}

/// Serves `body` from `from` (the server's side of a `GET` it accepts), `piece` bytes a
/// `DATA`, handing what arrives to the attempt; returns the attempt's outcome.
fn serve(
    wire: &mut Wire,
    download: &mut Download,
    attempt: &mut DownloadAttempt,
    sink: &mut Sink,
    body: &[u8],
    piece: usize,
) -> Result<Option<Digest>, ClientError> {
    let ServerEvent::GetRequested { offset, .. } = wire.server_event() else {
        panic!("no GET");
    };
    wire.server.accept_get(body.len() as u64).unwrap();
    let event = wire.client_event();
    attempt.on_event(download, sink, event)?;
    for chunk in body[offset as usize..].chunks(piece) {
        wire.server.send_file_data(chunk).unwrap();
        wire.deliver_to_client(chunk);
        let data = std::mem::take(&mut wire.downloaded);
        attempt.on_data(download, sink, &data)?;
    }
    wire.server.finish_download(Digest::of(body)).unwrap();
    let event = wire.client_event();
    attempt.on_event(download, sink, event)
}

#[test]
fn a_download_writes_each_byte_once_flushes_and_returns_the_verified_digest() {
    let body = data(3 * UNIT + 10, 20);
    let mut wire = Wire::connected();
    let mut download = Download::new("d.bin", PathBuf::from("d.bin"), HashCheckpoint::start());
    let mut sink = Sink::default();
    let mut attempt = DownloadAttempt::begin(&mut download, &mut wire.client, 1).unwrap();
    assert_eq!(
        attempt.during(),
        "waiting for the server to start the download"
    );
    let digest = serve(
        &mut wire,
        &mut download,
        &mut attempt,
        &mut sink,
        &body,
        5000,
    )
    .unwrap()
    .unwrap();
    assert_eq!(digest, Digest::of(&body));
    assert!(sink.bytes == body);
    assert_eq!(sink.flushed, body.len());
    assert_eq!(attempt.during(), "receiving a download");
    let progress = attempt.progress(&download);
    assert_eq!(
        (progress.done, progress.total, progress.attempt),
        (body.len() as u64, body.len() as u64, 1)
    );
    assert_eq!(download.size(), body.len() as u64);
    assert_eq!(download.bytes_received, body.len() as u64);
}

#[test]
fn a_refused_download_is_a_refusal_of_a_download() {
    let mut wire = Wire::connected();
    let mut download = Download::new("x", PathBuf::from("x"), HashCheckpoint::start());
    let mut attempt = DownloadAttempt::begin(&mut download, &mut wire.client, 1).unwrap();
    wire.server_event();
    wire.server
        .refuse(ErrorCode::NotFound, "no such file")
        .unwrap();
    let event = wire.client_event();
    match attempt.on_event(&mut download, &mut Sink::default(), event) {
        Err(ClientError::Refused {
            request,
            code,
            message,
        }) => {
            assert_eq!(request, "download");
            assert_eq!(code, ErrorCode::NotFound);
            assert_eq!(message, "no such file");
        }
        other => panic!("{other:?}"),
    }
}

/// A download of `body` cut after `cut` bytes, the attempt told its connection failed.
fn cut_download(body: &[u8], cut: usize) -> (Download, Sink) {
    let mut wire = Wire::connected();
    let mut download = Download::new("c.bin", PathBuf::from("c.bin"), HashCheckpoint::start());
    let mut sink = Sink::default();
    let mut attempt = DownloadAttempt::begin(&mut download, &mut wire.client, 1).unwrap();
    wire.server_event();
    wire.server.accept_get(body.len() as u64).unwrap();
    let event = wire.client_event();
    attempt.on_event(&mut download, &mut sink, event).unwrap();
    for chunk in body[..cut].chunks(1000) {
        wire.server.send_file_data(chunk).unwrap();
        wire.deliver_to_client(chunk);
        let data = std::mem::take(&mut wire.downloaded);
        attempt.on_data(&mut download, &mut sink, &data).unwrap();
    }
    attempt.interrupted(&mut download, &wire.client);
    (download, sink)
}

#[test]
fn a_retried_download_resumes_at_its_checkpoint_and_checks_the_bytes_sent_again() {
    let body = data(5 * UNIT + 10, 21);
    let cut = 3 * UNIT + 500;
    let (mut download, mut sink) = cut_download(&body, cut);
    let mut wire = Wire::connected();
    let mut attempt = DownloadAttempt::begin(&mut download, &mut wire.client, 2).unwrap();
    let ServerEvent::GetRequested { offset, .. } = wire.server_event() else {
        panic!()
    };
    // The machine's checkpoint lies before the bytes written: they come again.
    assert!(offset > 0 && (offset as usize) < cut, "{offset}");
    let mut wire2 = wire;
    wire2.server.accept_get(body.len() as u64).unwrap();
    let event = wire2.client_event();
    attempt.on_event(&mut download, &mut sink, event).unwrap();
    assert_eq!(download.resumed_from, offset);
    for chunk in body[offset as usize..].chunks(777) {
        wire2.server.send_file_data(chunk).unwrap();
        wire2.deliver_to_client(chunk);
        let data = std::mem::take(&mut wire2.downloaded);
        attempt.on_data(&mut download, &mut sink, &data).unwrap();
    }
    wire2.server.finish_download(Digest::of(&body)).unwrap();
    let event = wire2.client_event();
    assert_eq!(
        attempt.on_event(&mut download, &mut sink, event).unwrap(),
        Some(Digest::of(&body))
    );
    assert!(sink.bytes == body, "each byte written once");
    assert_eq!(
        download.bytes_received,
        (cut + body.len() - offset as usize) as u64
    );
}

#[test]
fn bytes_sent_again_that_differ_from_the_sinks_mean_the_file_changed() {
    let body = data(5 * UNIT + 10, 22);
    let cut = 3 * UNIT + 500;
    let (mut download, mut sink) = cut_download(&body, cut);
    let mut changed = body.clone();
    changed[cut - 10] ^= 0xff;
    let mut wire = Wire::connected();
    let mut attempt = DownloadAttempt::begin(&mut download, &mut wire.client, 2).unwrap();
    let ServerEvent::GetRequested { offset, .. } = wire.server_event() else {
        panic!()
    };
    wire.server.accept_get(body.len() as u64).unwrap();
    let event = wire.client_event();
    attempt.on_event(&mut download, &mut sink, event).unwrap();
    let again = &changed[offset as usize..cut];
    wire.server.send_file_data(again).unwrap();
    wire.deliver_to_client(again);
    let data = std::mem::take(&mut wire.downloaded);
    match attempt.on_data(&mut download, &mut sink, &data) {
        Err(ClientError::Integrity { name, reason }) => {
            assert_eq!(name, "c.bin");
            assert!(reason.contains("changed on the server"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(sink.bytes == body[..cut], "nothing written over");
}

#[test]
fn a_retried_download_whose_file_changed_size_is_refused_as_changed() {
    let body = data(5 * UNIT + 10, 23);
    let cut = 3 * UNIT + 500;
    for new_size in [body.len() as u64 + 1, (cut - 1) as u64] {
        let (mut download, mut sink) = cut_download(&body, cut);
        let mut wire = Wire::connected();
        let mut attempt = DownloadAttempt::begin(&mut download, &mut wire.client, 2).unwrap();
        wire.server_event();
        wire.server.accept_get(new_size).unwrap();
        let event = wire.client_event();
        match attempt.on_event(&mut download, &mut sink, event) {
            Err(ClientError::Integrity { reason, .. }) => {
                assert!(reason.contains("changed"), "{reason}");
            }
            other => panic!("size {new_size}: {other:?}"),
        }
    }
}

#[test]
fn a_download_cut_before_its_answer_keeps_its_starting_point() {
    let mut wire = Wire::connected();
    let start = checkpoint_of(&data(2 * UNIT + 1, 24));
    let mut download = Download::new("n", PathBuf::from("n"), start.clone());
    let attempt = DownloadAttempt::begin(&mut download, &mut wire.client, 1).unwrap();
    attempt.interrupted(&mut download, &wire.client);
    let mut wire = Wire::connected();
    DownloadAttempt::begin(&mut download, &mut wire.client, 2).unwrap();
    let ServerEvent::GetRequested { offset, .. } = wire.server_event() else {
        panic!()
    };
    assert_eq!(offset, start.offset());
}

#[test]
fn a_download_that_cannot_write_its_sink_is_a_local_error() {
    let body = data(1000, 25);
    let mut wire = Wire::connected();
    let mut download = Download::new("w", PathBuf::from("out/w"), HashCheckpoint::start());
    let mut sink = Sink {
        fail: true,
        ..Sink::default()
    };
    let mut attempt = DownloadAttempt::begin(&mut download, &mut wire.client, 1).unwrap();
    match serve(
        &mut wire,
        &mut download,
        &mut attempt,
        &mut sink,
        &body,
        1000,
    ) {
        Err(ClientError::Local { path, .. }) => assert_eq!(path, PathBuf::from("out/w")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_answer_out_of_turn_ends_the_download_attempt() {
    let mut wire = Wire::connected();
    let mut download = Download::new("o", PathBuf::from("o"), HashCheckpoint::start());
    let mut attempt = DownloadAttempt::begin(&mut download, &mut wire.client, 1).unwrap();
    let result = attempt.on_event(
        &mut download,
        &mut Sink::default(),
        ClientEvent::GetVerified {
            digest: Digest::of(b""),
        },
    );
    match result {
        Err(ClientError::Protocol(error)) => {
            let text = error.to_string();
            assert!(
                text.contains("waiting for the server to start the download"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn transfers_printed_for_debugging_name_the_file_and_how_far_they_are() {
    let mut upload = Upload::new("up.txt", 2500, TAG, false, 1000);
    upload.bytes_sent = 1000;
    let printed = format!("{upload:?}");
    assert!(printed.starts_with("Upload"), "{printed}");
    for part in ["up.txt", "2500", "bytes_sent: 1000", "resumed_from: 0"] {
        assert!(printed.contains(part), "{part} in {printed}");
    }
    let download = Download::new(
        "down.txt",
        PathBuf::from("d"),
        checkpoint_of(&[0; 2 * UNIT + 1]),
    );
    let printed = format!("{download:?}");
    assert!(printed.starts_with("Download"), "{printed}");
    for part in ["down.txt", &format!("written: {}", 2 * UNIT), "size: None"] {
        assert!(printed.contains(part), "{part} in {printed}");
    }
}

/// Runs a retry of `download` on a new wire: the server resumes where the `GET` asks, sends
/// the rest of `body` in pieces of `piece` bytes and its digest; returns the `GET`'s offset.
fn retry(download: &mut Download, sink: &mut Sink, body: &[u8], piece: usize) -> u64 {
    let mut wire = Wire::connected();
    let mut attempt = DownloadAttempt::begin(download, &mut wire.client, 2).unwrap();
    let ServerEvent::GetRequested { offset, .. } = wire.server_event() else {
        panic!("no GET")
    };
    wire.server.accept_get(body.len() as u64).unwrap();
    let event = wire.client_event();
    attempt.on_event(download, sink, event).unwrap();
    for chunk in body[offset as usize..].chunks(piece) {
        wire.server.send_file_data(chunk).unwrap();
        wire.deliver_to_client(chunk);
        let data = std::mem::take(&mut wire.downloaded);
        attempt.on_data(download, sink, &data).unwrap();
    }
    wire.server.finish_download(Digest::of(body)).unwrap();
    let event = wire.client_event();
    assert_eq!(
        attempt.on_event(download, sink, event).unwrap(),
        Some(Digest::of(body))
    );
    offset
}

#[test]
fn bytes_sent_again_in_small_pieces_are_checked_piece_by_piece() {
    let body = data(5 * UNIT + 10, 26);
    // Cut at a unit's end: the checkpoint lies a whole unit back, which comes again.
    let (mut download, mut sink) = cut_download(&body, 4 * UNIT);
    let offset = retry(&mut download, &mut sink, &body, 100);
    assert_eq!(offset, 3 * UNIT as u64);
    assert!(sink.bytes == body, "each byte written once");
}

#[test]
fn a_download_cut_after_its_last_byte_but_before_its_digest_resumes_and_verifies() {
    let body = data(5 * UNIT + 10, 27);
    let (mut download, mut sink) = cut_download(&body, body.len());
    let offset = retry(&mut download, &mut sink, &body, 5000);
    assert_eq!(offset, 5 * UNIT as u64);
    assert!(sink.bytes == body);
    assert_eq!(sink.flushed, body.len());
}

#[test]
fn a_download_from_a_local_partial_cut_right_after_its_answer_keeps_its_starting_point() {
    let body = data(5 * UNIT + 10, 28);
    let start = checkpoint_of(&body[..2 * UNIT + 1]);
    let mut download = Download::new("p.bin", PathBuf::from("p.bin"), start.clone());
    let mut sink = Sink::default();
    {
        let mut wire = Wire::connected();
        let mut attempt = DownloadAttempt::begin(&mut download, &mut wire.client, 1).unwrap();
        wire.server_event();
        wire.server.accept_get(body.len() as u64).unwrap();
        let event = wire.client_event();
        attempt.on_event(&mut download, &mut sink, event).unwrap();
        attempt.interrupted(&mut download, &wire.client);
    }
    let offset = retry(&mut download, &mut sink, &body, 5000);
    assert_eq!(offset, start.offset());
    assert!(sink.bytes == body[2 * UNIT..]);
}

#[test]
fn a_retry_resuming_between_kept_checkpoints_reads_only_the_bytes_between() {
    let body = data(14 * UNIT + 5, 29);
    let mut upload = Upload::new("between.bin", body.len() as u64, TAG, false, 4 * UNIT);
    {
        // The first attempt sends twelve units in chunks of four, then is lost: it keeps
        // checkpoints at 3, 7 and 11 units (each chunk's last unit waits for a byte after it).
        let mut wire = Wire::connected();
        let mut source = Cursor::new(&body[..]);
        let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
        wire.put_request();
        wire.server.accept_put(&HashCheckpoint::start()).unwrap();
        answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
        for _ in 0..3 {
            attempt
                .next_chunk(&mut upload, &mut wire.client, &mut source)
                .unwrap()
                .unwrap();
        }
    }
    let mut wire = Wire::connected();
    let mut source = Counted::new(&body);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 2).unwrap();
    wire.put_request();
    wire.server
        .accept_put(&checkpoint_of(&body[..9 * UNIT + 1]))
        .unwrap();
    answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
    assert_eq!(
        source.read,
        2 * UNIT as u64,
        "from the checkpoint at 7 units to 9"
    );
    assert_eq!(attempt.progress(&upload).done, 9 * UNIT as u64);
    send_all(&mut wire, &mut upload, &mut attempt, &mut source);
    assert_eq!(verified_digest(&mut wire), Digest::of(&body));
}

#[test]
fn a_large_upload_the_server_resumes_before_the_offset_it_announced_hashes_from_there() {
    // The answer to QUERY said 5 units; by the PUT the server holds only 3 (a crash lost the
    // rest): the hasher prepared at 5 units does not fit, and the upload goes on from 3.
    let body = data(PREHASH_MIN as usize, 30);
    let mut upload = Upload::new("big", body.len() as u64, TAG, false, 1 << 20);
    let mut wire = Wire::connected();
    let mut source = Counted::new(&body);
    let mut attempt = UploadAttempt::begin(&mut upload, &mut wire.client, 1).unwrap();
    wire.server_event();
    wire.server
        .reply_query(None, None, Some(5 * UNIT as u64))
        .unwrap();
    answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
    wire.put_request();
    wire.server
        .accept_put(&checkpoint_of(&body[..3 * UNIT + 1]))
        .unwrap();
    answer(&mut wire, &mut upload, &mut attempt, &mut source).unwrap();
    assert_eq!(upload.resumed_from, 3 * UNIT as u64);
    send_all(&mut wire, &mut upload, &mut attempt, &mut source);
    assert_eq!(verified_digest(&mut wire), Digest::of(&body));
}
