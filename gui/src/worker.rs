//! Runs [`Job`]s on background threads through the client library and reports back as
//! [`Event`]s, so that the window never waits for the network. Each job opens its own
//! connection; the library retries and resumes by itself.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Instant;

use ferry_client::{Client, ClientError, PutOptions, Trust, file_tag, partial_path};

use crate::model::{Event, Job, Session};
use crate::settings::ConnectSettings;
use crate::transfers::{Direction, TransferId};
use crate::trust;

/// Called after every event, so the window redraws (egui's `request_repaint`).
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// Where workers report.
#[derive(Clone)]
pub struct Reporter {
    events: Sender<Event>,
    wake: Wake,
}

impl Reporter {
    /// Reports to `events`, waking the window with `wake`.
    pub fn new(events: Sender<Event>, wake: Wake) -> Reporter {
        Reporter { events, wake }
    }

    fn send(&self, event: Event) {
        // The window is gone: nobody is left to tell.
        let _ = self.events.send(event);
        (self.wake)();
    }
}

/// Starts `job` on a thread of its own.
pub fn spawn(job: Job, reporter: Reporter) {
    std::thread::spawn(move || run(job, &reporter));
}

/// Runs `job` to its end on this thread.
pub fn run(job: Job, reporter: &Reporter) {
    match job {
        Job::Connect { settings, known } => reporter.send(connect(&settings, known.as_deref())),
        Job::Trust {
            settings,
            known,
            fingerprint,
        } => {
            let key = trust::server_key(&settings);
            let event = match ferry_client::record_known_server(&known, &key, &fingerprint) {
                Ok(()) => open(&settings, Trust::KnownServers(known)),
                Err(error) => Event::ConnectFailed(format!(
                    "cannot record the server's certificate in {}: {error}",
                    known.display()
                )),
            };
            reporter.send(event);
        }
        Job::Scan { path, overwrite } => {
            let files = crate::local::files_to_upload(&path).map_err(|e| e.to_string());
            reporter.send(Event::Scanned {
                path,
                overwrite,
                files,
            });
        }
        Job::List(session) => {
            let listed = client(&session).and_then(|mut c| c.list(""));
            reporter.send(Event::Listed(listed.map_err(|e| e.to_string())));
        }
        Job::Transfer {
            session,
            id,
            run,
            direction,
            cancel,
        } => {
            let outcome = transfer(&session, (id, run), &direction, &cancel, reporter);
            reporter.send(Event::Finished {
                id,
                run,
                outcome: outcome.map_err(|e| describe(&e, &cancel)),
                at: Instant::now(),
            });
        }
        Job::Remove { session, names } => {
            let results = match client(&session) {
                Ok(mut client) => names
                    .into_iter()
                    .map(|name| {
                        let result = client.remove(&name).map_err(|e| e.to_string());
                        (name, result)
                    })
                    .collect(),
                Err(error) => names
                    .into_iter()
                    .map(|name| (name, Err(error.to_string())))
                    .collect(),
            };
            reporter.send(Event::Removed(results));
        }
        Job::Move {
            session,
            from,
            to,
            overwrite,
        } => {
            let outcome = client(&session)
                .and_then(|mut client| client.move_file(&from, &to, overwrite))
                .map_err(|e| e.to_string());
            reporter.send(crate::model::moved(from, to, outcome));
        }
        Job::Sync {
            session,
            request,
            cache,
        } => {
            let outcome = crate::sync_job::run(&session, &request, cache.as_deref());
            reporter.send(Event::Synced(outcome));
        }
    }
}

/// Plaintext, a server the known-servers file lists, or the fingerprint of a new one.
fn connect(settings: &ConnectSettings, known: Option<&Path>) -> Event {
    if settings.insecure {
        return open(settings, Trust::WebPki);
    }
    let Some(known) = known else {
        return Event::ConnectFailed(
            "no config folder for the known-servers file; set FERRY_CONFIG_DIR".to_owned(),
        );
    };
    let key = trust::server_key(settings);
    match trust::is_known(known, &key) {
        Ok(true) => open(settings, Trust::KnownServers(known.to_path_buf())),
        Ok(false) => match trust::probe(settings) {
            Ok(fingerprint) => Event::TrustNeeded {
                server: key,
                fingerprint,
            },
            Err(error) => Event::ConnectFailed(error.to_string()),
        },
        Err(error) => Event::ConnectFailed(format!(
            "cannot read the known-servers file {}: {error}",
            known.display()
        )),
    }
}

/// Connects with `trust` and lists the files.
fn open(settings: &ConnectSettings, trust: Trust) -> Event {
    let session = Session {
        addr: settings.addr.trim().to_owned(),
        options: settings.options(trust),
    };
    match client(&session).and_then(|mut c| c.list("")) {
        Ok(entries) => Event::Connected { session, entries },
        Err(error) => Event::ConnectFailed(error.to_string()),
    }
}

fn client(session: &Session) -> Result<Client, ClientError> {
    Client::connect(session.addr.as_str(), session.options.clone())
}

/// The reason in words; a cancelled transfer says so rather than "cannot read".
fn describe(error: &ClientError, cancel: &AtomicBool) -> String {
    if cancel.load(Ordering::Relaxed) {
        "cancelled".to_owned()
    } else {
        // The library's hint names the command line's flag; here it is a checkbox.
        error
            .to_string()
            .replace("use --overwrite", "tick Overwrite and press Retry")
    }
}

fn transfer(
    session: &Session,
    (id, run): (TransferId, u32),
    direction: &Direction,
    cancel: &Arc<AtomicBool>,
    reporter: &Reporter,
) -> Result<u64, ClientError> {
    let mut progress = |progress| {
        reporter.send(Event::Progress {
            id,
            run,
            progress,
            at: Instant::now(),
        });
    };
    let mut client = client(session)?;
    match direction {
        Direction::Upload {
            local,
            name,
            overwrite,
        } => {
            let read_error = |source| ClientError::Local {
                action: "cannot read",
                path: local.clone(),
                source,
            };
            let file = File::open(local).map_err(read_error)?;
            let metadata = file.metadata().map_err(read_error)?;
            let opts = PutOptions {
                overwrite: *overwrite,
                tag: Some(file_tag(local, &metadata)),
                ..PutOptions::default()
            };
            let mut source = Cancellable::new(file, cancel);
            let report =
                client.put_from(&mut source, metadata.len(), name, &opts, &mut progress)?;
            Ok(report.size)
        }
        Direction::Download { name, target } => {
            download(&mut client, name, target, cancel, &mut progress)
        }
    }
}

/// Downloads into a partial file beside `target`, renamed into place once verified (the
/// library checks every byte, and resumes within the download after a lost connection).
fn download(
    client: &mut Client,
    name: &str,
    target: &Path,
    cancel: &Arc<AtomicBool>,
    progress: &mut dyn FnMut(ferry_client::Progress),
) -> Result<u64, ClientError> {
    let partial = partial_path(target);
    let write_error = |source| ClientError::Local {
        action: "cannot write",
        path: partial.clone(),
        source,
    };
    if let Some(folder) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(folder).map_err(write_error)?;
    }
    let file = File::create(&partial).map_err(write_error)?;
    let mut sink = Cancellable::new(io::BufWriter::new(file), cancel);
    let result = client.get_to(name, &mut sink, progress).and_then(|report| {
        let file = sink
            .inner
            .into_inner()
            .map_err(|e| write_error(e.into_error()))?;
        file.sync_all().map_err(write_error)?;
        fs::rename(&partial, target).map_err(|source| ClientError::Local {
            action: "cannot rename the download to",
            path: target.to_path_buf(),
            source,
        })?;
        Ok(report.size)
    });
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// A reader or writer that fails once its cancel flag is set, which ends the library's
/// transfer with an error that is not retried.
struct Cancellable<T> {
    inner: T,
    cancel: Arc<AtomicBool>,
}

impl<T> Cancellable<T> {
    fn new(inner: T, cancel: &Arc<AtomicBool>) -> Self {
        Cancellable {
            inner,
            cancel: Arc::clone(cancel),
        }
    }

    fn check(&self) -> io::Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(io::Error::other("cancelled"))
        } else {
            Ok(())
        }
    }
}

impl<T: Read> Read for Cancellable<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.read(buf)
    }
}

impl<T: Seek> Seek for Cancellable<T> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<T: Write> Write for Cancellable<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
