//! Many files on one connection, pipelined (protocol version 2, PROTOCOL.md §5 "Pipelining"):
//! a window of requests is in flight at once and the server answers them in order, so a folder
//! of small files costs a few round trips instead of two per file.
//!
//! Only the simple first attempt is pipelined: an upload of a small file the server holds no
//! partial of goes eagerly (its data right behind its `PUT`), a download of a file with no
//! partial beside its target goes from byte 0. Everything else — a large file, a partial to
//! resume, a name that exists (which may hold the same bytes), a connection lost with files in
//! flight, a version-1 server — goes to the one-file-at-a-time path afterwards
//! ([`Client::put_file`], [`Client::get_file`]), which resumes and retries as it always has.
//! So a file's outcome never depends on whether it was pipelined.
//!
//! What an upload window sends and what each answer means is the sans-IO [`EagerWindow`]'s
//! (the deterministic simulator drives the same one); this file reads the local files and
//! moves the bytes.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ferry_protocol::{ClientEvent, Digest, HashCheckpoint};

use crate::client::{Client, check_name};
use crate::eager_window::{Answer, EagerWindow, WINDOW_REQUESTS};
use crate::error::ClientError;
use crate::files::{partial_path, sync_folder};
use crate::link::{Link, no_data, unexpected};
use crate::options::{GetOptions, GetReport, PutOptions, PutReport};
use crate::tag::file_tag;

/// What becomes of each file: its index in the caller's list and its outcome.
pub type Done<'a, R> = dyn FnMut(usize, Result<R, ClientError>) + 'a;

/// One window of a pipeline on one connection: sends from the file index it is given, and adds
/// to the list the files it leaves to be settled one by one.
type Window<'a> =
    dyn FnMut(&mut Client, &mut Link, &mut usize, &mut Vec<usize>) -> Result<(), ClientError> + 'a;

impl Client {
    /// Uploads each `(local file, name)`, pipelining the small ones on this client's connection
    /// (see the module docs), and tells `done` each file's outcome as it is known (not in
    /// order). `opts.tag` is ignored: each file's tag comes from the file itself.
    pub fn put_files(
        &mut self,
        files: &[(PathBuf, String)],
        opts: &PutOptions,
        done: &mut Done<'_, PutReport>,
    ) {
        let one_by_one = self.pipeline(
            files.len(),
            "uploads",
            &mut |client, link, next, one_by_one| {
                let chunk = client.options().chunk_size;
                // Always `Some`: a pipelining link speaks version 2.
                let Some(mut window) = EagerWindow::begin(&link.conn, chunk, opts.overwrite) else {
                    return Ok(());
                };
                let result = put_window(link, files, &mut window, next, one_by_one, done);
                // Whatever was in flight when the connection failed is settled one by one: it may
                // be stored (its answer lost), partial, or absent.
                one_by_one.extend(window.interrupted());
                result
            },
        );
        for index in one_by_one {
            let (local, name) = &files[index];
            let mut opts = opts.clone();
            opts.tag = None;
            done(index, self.put_file(local, name, &opts, &mut |_| {}));
        }
    }

    /// Runs `window` on pipelining connections until every one of `count` files was sent, a
    /// new connection after each that failed (as many as the retries allow). `window` sends
    /// from `next` on and adds to `one_by_one` the files it leaves (those in flight when its
    /// connection failed among them). Returns every file to settle one by one, in order.
    pub(crate) fn pipeline(
        &mut self,
        count: usize,
        what: &str,
        window: &mut Window<'_>,
    ) -> Vec<usize> {
        let mut one_by_one = Vec::new();
        let mut next = 0;
        let mut failures = 0;
        while next < count {
            let Some(mut link) = self.pipelining_link() else {
                break;
            };
            match window(self, &mut link, &mut next, &mut one_by_one) {
                Ok(()) => self.keep_link(link),
                Err(error) => {
                    tracing::info!(%error, "pipelined {what} interrupted; going on one by one");
                    failures += 1;
                    if !error.is_transient() || failures > self.options().retries {
                        break;
                    }
                }
            }
        }
        one_by_one.extend(next..count);
        one_by_one.sort_unstable();
        one_by_one
    }

    /// The connection for a pipeline, if it speaks version 2 (`None` sends every file one by
    /// one, which also reports a server that cannot be reached).
    fn pipelining_link(&mut self) -> Option<Link> {
        let link = self.take_link().ok()?;
        if link.conn.version() >= 2 {
            Some(link)
        } else {
            self.keep_link(link);
            None
        }
    }

    /// Downloads each `(name, local file)`, pipelining those with no partial file to resume
    /// on this client's connection (see the module docs), and tells `done` each file's outcome
    /// as it is known (not in order). Each file is written beside its target, synced and
    /// renamed into place only once its digest matched, as [`Client::get_file`] does.
    pub fn get_files(
        &mut self,
        files: &[(String, PathBuf)],
        opts: &GetOptions,
        done: &mut Done<'_, GetReport>,
    ) {
        let one_by_one = self.pipeline(
            files.len(),
            "downloads",
            &mut |_, link, next, one_by_one| {
                let mut in_flight = VecDeque::new();
                let result = get_window(link, files, next, &mut in_flight, one_by_one, done);
                one_by_one.extend(in_flight.iter().copied());
                result
            },
        );
        for index in one_by_one {
            let (name, local) = &files[index];
            done(index, self.get_file(name, local, opts, &mut |_| {}));
        }
    }
}

/// Keeps the window full until every file from `next` on is sent and answered. Every rule is
/// [`EagerWindow`]'s; this reads the files and moves the bytes.
fn put_window(
    link: &mut Link,
    files: &[(PathBuf, String)],
    window: &mut EagerWindow,
    next: &mut usize,
    one_by_one: &mut Vec<usize>,
    done: &mut Done<'_, PutReport>,
) -> Result<(), ClientError> {
    let mut data = Vec::new();
    let mut out = Vec::new();
    loop {
        while *next < files.len() && window.has_room() {
            let index = *next;
            *next += 1;
            let (local, name) = &files[index];
            let tag = match read_small(local, name, &mut data) {
                Ok(Some(tag)) => tag,
                Ok(None) => {
                    one_by_one.push(index);
                    continue;
                }
                Err(error) => {
                    done(index, Err(error));
                    continue;
                }
            };
            out.clear();
            window.send(&mut link.conn, index, name, &data, tag, &mut out)?;
            link.send_bytes(&out, "sending pipelined uploads")?;
        }
        link.flush("sending pipelined uploads")?;
        if window.is_empty() {
            return Ok(());
        }
        let event = link.next_event(EagerWindow::DURING, &mut no_data)?;
        match window.on_event(event)? {
            Answer::Stored { index, report } => done(index, Ok(report)),
            Answer::OneByOne { index } => one_by_one.push(index),
            Answer::Failed { index, error } => done(index, Err(error)),
        }
    }
}

/// Reads `local` whole into `data` if it is a regular file small enough to send eagerly, and
/// returns its tag; `None` if it goes one by one (large, or not a regular file: the one-by-one
/// path reports that).
fn read_small(
    local: &Path,
    name: &str,
    data: &mut Vec<u8>,
) -> Result<Option<ferry_protocol::SourceTag>, ClientError> {
    check_name(name)?;
    let read_error = |source| ClientError::Local {
        action: "cannot read",
        path: local.to_path_buf(),
        source,
    };
    let mut file = File::open(local).map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() || !EagerWindow::is_eager(metadata.len()) {
        return Ok(None);
    }
    data.clear();
    file.read_to_end(data).map_err(read_error)?;
    if data.len() as u64 != metadata.len() {
        // Changed while read: the one-by-one path reads it again and notices changes.
        return Ok(None);
    }
    Ok(Some(file_tag(local, &metadata)))
}

/// A download whose answer has begun: where its bytes go.
struct Receiving {
    partial: PathBuf,
    file: BufWriter<File>,
    size: u64,
}

/// Keeps the window of downloads full until every file from `next` on is requested and
/// received; `in_flight` holds the indices requested and not yet finished.
fn get_window(
    link: &mut Link,
    files: &[(String, PathBuf)],
    next: &mut usize,
    in_flight: &mut VecDeque<usize>,
    one_by_one: &mut Vec<usize>,
    done: &mut Done<'_, GetReport>,
) -> Result<(), ClientError> {
    let mut verified = Vec::new();
    let result = receive_window(
        link,
        files,
        next,
        in_flight,
        one_by_one,
        done,
        &mut verified,
    );
    finish_together(files, verified, done);
    result
}

/// Downloads received and verified, waiting to be synced and named together.
type Verified = Vec<(usize, Receiving, Digest)>;

/// Downloads finished at once: enough that their syncs overlap, few enough that a failure
/// later in the window leaves most of them in place.
const FINISH_BATCH: usize = 256;

/// Threads that sync verified downloads at the same time (the file system's journal joins
/// their flushes).
const FINISH_THREADS: usize = 16;

fn receive_window(
    link: &mut Link,
    files: &[(String, PathBuf)],
    next: &mut usize,
    in_flight: &mut VecDeque<usize>,
    one_by_one: &mut Vec<usize>,
    done: &mut Done<'_, GetReport>,
    verified: &mut Verified,
) -> Result<(), ClientError> {
    loop {
        if verified.len() >= FINISH_BATCH {
            finish_together(files, std::mem::take(verified), done);
        }
        while *next < files.len() && in_flight.len() < WINDOW_REQUESTS && link.conn.can_pipeline() {
            let index = *next;
            *next += 1;
            let (name, local) = &files[index];
            if let Err(error) = check_name(name) {
                done(index, Err(error));
                continue;
            }
            if partial_path(local).exists() {
                one_by_one.push(index);
                continue;
            }
            in_flight.push_back(index);
            link.conn.get(name, HashCheckpoint::start())?;
        }
        link.flush("sending pipelined downloads")?;
        let Some(&index) = in_flight.front() else {
            return Ok(());
        };
        let local = &files[index].1;
        match link.next_event("waiting for pipelined downloads", &mut no_data)? {
            ClientEvent::GetReady { size, .. } => {
                let mut receiving = open_partial(local, size)?;
                let received = receive(link, &mut receiving);
                in_flight.pop_front();
                match received {
                    Ok(digest) => verified.push((index, receiving, digest)),
                    Err(error) => {
                        // The connection is no longer usable; the one-by-one path tries this
                        // file again and reports its own outcome.
                        drop(receiving.file);
                        let _ = fs::remove_file(&receiving.partial);
                        one_by_one.push(index);
                        return Err(error);
                    }
                }
            }
            ClientEvent::Refused { code, message } => {
                in_flight.pop_front();
                if ClientError::refusal_is_transient(code) {
                    one_by_one.push(index);
                } else {
                    done(
                        index,
                        Err(ClientError::Refused {
                            request: "download",
                            code,
                            message,
                        }),
                    );
                }
            }
            other => return Err(unexpected(&other, "waiting for pipelined downloads").into()),
        }
    }
}

fn open_partial(local: &Path, size: u64) -> Result<Receiving, ClientError> {
    let partial = partial_path(local);
    let write_error = |source| ClientError::Local {
        action: "cannot write",
        path: partial.clone(),
        source,
    };
    if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(write_error)?;
    }
    let file = File::create(&partial).map_err(write_error)?;
    Ok(Receiving {
        partial: partial.clone(),
        file: BufWriter::with_capacity(64 * 1024, file),
        size,
    })
}

/// Receives one download's bytes into its partial file; returns the verified digest.
fn receive(link: &mut Link, receiving: &mut Receiving) -> Result<Digest, ClientError> {
    let partial = receiving.partial.clone();
    let file = &mut receiving.file;
    let mut write = |data: &[u8]| {
        file.write_all(data).map_err(|source| ClientError::Local {
            action: "cannot write",
            path: partial.clone(),
            source,
        })
    };
    match link.next_event("receiving a pipelined download", &mut write)? {
        ClientEvent::GetVerified { digest } => Ok(digest),
        other => Err(unexpected(&other, "receiving a pipelined download").into()),
    }
}

/// Makes verified downloads durable and gives them their names, several at a time; tells
/// `done` each one's outcome.
fn finish_together(
    files: &[(String, PathBuf)],
    verified: Verified,
    done: &mut Done<'_, GetReport>,
) {
    if verified.is_empty() {
        return;
    }
    let per_thread = verified.len().div_ceil(FINISH_THREADS);
    let mut pieces: Vec<Vec<(usize, Receiving, Digest)>> = Vec::new();
    let mut rest = verified.into_iter();
    loop {
        let piece: Vec<_> = rest.by_ref().take(per_thread).collect();
        if piece.is_empty() {
            break;
        }
        pieces.push(piece);
    }
    let indices: Vec<Vec<usize>> = pieces
        .iter()
        .map(|piece| piece.iter().map(|(index, ..)| *index).collect())
        .collect();
    let outcomes: Vec<Vec<(usize, Result<GetReport, ClientError>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = pieces
            .into_iter()
            .map(|piece| {
                scope.spawn(move || {
                    piece
                        .into_iter()
                        .map(|(index, receiving, digest)| {
                            let (name, local) = &files[index];
                            (index, finish(receiving, name, local, digest))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(&indices)
            .map(|(handle, indices)| {
                // A worker that panicked (a bug) still leaves each of its files an outcome.
                handle.join().unwrap_or_else(|_| {
                    indices
                        .iter()
                        .map(|&index| {
                            let source = io::Error::other("the thread finishing it panicked");
                            let error = ClientError::Local {
                                action: "cannot finish the download to",
                                path: files[index].1.clone(),
                                source,
                            };
                            (index, Err(error))
                        })
                        .collect()
                })
            })
            .collect()
    });
    // Each folder the renames went into is synced once for the batch, before any of its files
    // is reported done.
    let outcomes: Vec<_> = outcomes.into_iter().flatten().collect();
    let folders: std::collections::BTreeSet<&Path> = outcomes
        .iter()
        .filter(|(_, outcome)| outcome.is_ok())
        .filter_map(|(index, _)| files[*index].1.parent())
        .collect();
    for folder in folders {
        sync_folder(folder);
    }
    for (index, outcome) in outcomes {
        done(index, outcome);
    }
}

/// Makes a verified download durable and gives it its name.
fn finish(
    receiving: Receiving,
    name: &str,
    local: &Path,
    digest: Digest,
) -> Result<GetReport, ClientError> {
    let Receiving {
        partial,
        file,
        size,
    } = receiving;
    let write_error = |source: io::Error| ClientError::Local {
        action: "cannot write",
        path: partial.clone(),
        source,
    };
    let file = file.into_inner().map_err(|e| write_error(e.into_error()))?;
    file.sync_all().map_err(write_error)?;
    drop(file);
    fs::rename(&partial, local).map_err(|source| ClientError::Local {
        action: "cannot rename the download to",
        path: local.to_path_buf(),
        source,
    })?;
    // The rename is made durable with the others of its batch (`finish_together`).
    Ok(GetReport {
        name: name.to_owned(),
        size,
        digest,
        resumed_from: 0,
        attempts: 1,
        bytes_received: size,
    })
}
