//! A minimal ferry server for driving the client library in tests: the protocol's
//! `ServerConnection` on real loopback sockets, files kept in memory, and switches for the
//! misbehaviour a real server never shows (a wrong digest, a stall).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferry_protocol::{
    Config, Digest, ErrorCode, FileHasher, HashCheckpoint, ServerConnection, ServerEvent,
    SourceTag, Timestamp,
};

/// Partial uploads by name and tag: the bytes covered by the checkpoint, and the checkpoint.
pub type Partials = HashMap<(String, SourceTag), (Vec<u8>, HashCheckpoint)>;

/// Shared state of the mini server.
#[derive(Default)]
pub struct State {
    /// Stored files.
    pub files: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Partial uploads by name and tag: the bytes covered by the checkpoint, and the checkpoint.
    pub partials: Mutex<Partials>,
    /// Names with an upload under way on some connection.
    pub active: Mutex<std::collections::HashSet<String>>,
    /// Offsets of every `PUT_READY` sent, in order.
    pub put_offsets: Mutex<Vec<u64>>,
    /// Requests seen, in order, by kind ("put", "query", ...).
    pub requests: Mutex<Vec<&'static str>>,
    /// Send downloads with a wrong digest.
    pub lie_about_digest: AtomicBool,
    /// After `PUT_READY`, read nothing more and never answer (a stalled server).
    pub stall_uploads: AtomicBool,
}

/// A running mini server; it lives until the test process ends.
pub struct MiniServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state, for setting up and checking.
    pub state: Arc<State>,
}

impl MiniServer {
    /// Starts listening on a free loopback port.
    pub fn start() -> MiniServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        MiniServer { addr, state }
    }
}

struct Upload {
    name: String,
    tag: SourceTag,
    data: Vec<u8>,
}

fn serve(mut stream: TcpStream, state: &State) {
    let epoch = Instant::now();
    let now = || Timestamp::from_micros(epoch.elapsed().as_micros() as u64);
    let mut conn = ServerConnection::new(Config::default(), now());
    let mut upload: Option<Upload> = None;
    let mut input = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    'connection: loop {
        conn.poll_transmit(&mut out);
        if stream.write_all(&out).is_err() {
            break;
        }
        out.clear();
        if conn.is_closed() {
            break;
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let _ = conn.handle_eof(now());
                break;
            }
            Ok(n) => n,
        };
        input.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        loop {
            let Ok(received) = conn.handle_input(now(), &input[start..]) else {
                break 'connection;
            };
            start += received.consumed;
            if let Some(upload) = &mut upload {
                upload.data.extend_from_slice(received.file_data);
            }
            while let Some(event) = conn.poll_event() {
                if !on_event(&mut conn, &mut stream, state, &mut upload, event) {
                    // Stalled: hold the connection open, reading and saying nothing, until the
                    // test process ends.
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                    return;
                }
            }
            if received.consumed == 0 {
                break;
            }
        }
        input.drain(..start);
    }
    // An unfinished upload stays resumable from the machine's checkpoint.
    if let Some(upload) = upload {
        if let Some(checkpoint) = conn.upload_checkpoint() {
            let mut data = upload.data;
            data.truncate(checkpoint.offset() as usize);
            let key = (upload.name.clone(), upload.tag);
            state
                .partials
                .lock()
                .unwrap()
                .insert(key, (data, checkpoint));
        }
        state.active.lock().unwrap().remove(&upload.name);
    }
}

/// Acts on one event; false means "stall from now on".
fn on_event(
    conn: &mut ServerConnection,
    stream: &mut TcpStream,
    state: &State,
    upload: &mut Option<Upload>,
    event: ServerEvent,
) -> bool {
    match event {
        ServerEvent::ClientHello { .. } => conn.accept_client().unwrap(),
        ServerEvent::PutRequested(request) => {
            state.requests.lock().unwrap().push("put");
            if state.files.lock().unwrap().contains_key(&request.name) && !request.overwrite {
                conn.refuse(ErrorCode::AlreadyExists, "a file with this name exists")
                    .unwrap();
                return true;
            }
            if !state.active.lock().unwrap().insert(request.name.clone()) {
                conn.refuse(ErrorCode::InProgress, "an upload to this name is under way")
                    .unwrap();
                return true;
            }
            let key = (request.name.clone(), request.tag);
            let partial = state.partials.lock().unwrap().remove(&key);
            let (data, checkpoint) = match partial {
                Some(partial) if request.resume => partial,
                _ => (Vec::new(), HashCheckpoint::start()),
            };
            conn.accept_put(&checkpoint).unwrap();
            state.put_offsets.lock().unwrap().push(checkpoint.offset());
            *upload = Some(Upload {
                name: request.name,
                tag: request.tag,
                data,
            });
            if state.stall_uploads.load(Ordering::SeqCst) {
                // The stalled connection gives the name up, so a retry can start.
                state.active.lock().unwrap().clear();
                let mut out = Vec::new();
                conn.poll_transmit(&mut out);
                stream.write_all(&out).unwrap();
                return false;
            }
        }
        ServerEvent::UploadVerified { .. } => {
            if let Some(done) = upload.take() {
                state.active.lock().unwrap().remove(&done.name);
                state.files.lock().unwrap().insert(done.name, done.data);
            }
            conn.confirm().unwrap();
        }
        ServerEvent::UploadRejected { .. } | ServerEvent::UploadCancelled { .. } => {
            if let Some(gone) = upload.take() {
                state.active.lock().unwrap().remove(&gone.name);
            }
        }
        ServerEvent::GetRequested { name, offset } => {
            let Some(data) = state.files.lock().unwrap().get(&name).cloned() else {
                conn.refuse(ErrorCode::NotFound, "no such file").unwrap();
                return true;
            };
            if offset > data.len() as u64 {
                conn.refuse(ErrorCode::SizeMismatch, "offset past the end")
                    .unwrap();
                return true;
            }
            conn.accept_get(data.len() as u64).unwrap();
            let mut out = Vec::new();
            for piece in data[offset as usize..].chunks(100_000) {
                conn.send_file_data(piece).unwrap();
                conn.poll_transmit(&mut out);
                out.extend_from_slice(piece);
                if stream.write_all(&out).is_err() {
                    return true;
                }
                out.clear();
            }
            let mut digest = Digest::of(&data);
            if state.lie_about_digest.load(Ordering::SeqCst) {
                digest.0[0] ^= 1;
            }
            conn.finish_download(digest).unwrap();
        }
        ServerEvent::ListRequested { prefix } => {
            let files = state.files.lock().unwrap();
            for (name, data) in files
                .range(prefix.clone()..)
                .take_while(|(n, _)| n.starts_with(&prefix))
            {
                conn.send_list_entry(name, data.len() as u64, 0).unwrap();
            }
            conn.finish_list().unwrap();
        }
        ServerEvent::RemoveRequested { name } => match state.files.lock().unwrap().remove(&name) {
            Some(_) => conn.confirm().unwrap(),
            None => conn.refuse(ErrorCode::NotFound, "no such file").unwrap(),
        },
        ServerEvent::QueryRequested { name, tag } => {
            state.requests.lock().unwrap().push("query");
            let (stored, digest) = state
                .files
                .lock()
                .unwrap()
                .get(&name)
                .map(|d| (d.len() as u64, Digest::of(d)))
                .unzip();
            let partial = state
                .partials
                .lock()
                .unwrap()
                .get(&(name, tag))
                .map(|(_, c)| c.offset());
            conn.reply_query(stored, digest, partial).unwrap();
        }
        _ => {}
    }
    true
}

/// Checkpoint of the first `len` bytes of `data`, as a server would have saved it.
pub fn checkpoint_of(data: &[u8], len: usize) -> (Vec<u8>, HashCheckpoint) {
    let mut hasher = FileHasher::new();
    hasher.update(&data[..len]);
    let checkpoint = hasher.checkpoint();
    (data[..checkpoint.offset() as usize].to_vec(), checkpoint)
}
