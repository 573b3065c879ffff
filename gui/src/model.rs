//! The state of the window, apart from drawing: commands from the user go in as method calls,
//! results from the worker threads as [`Event`]s, and the work to do comes out as [`Job`]s
//! from [`Model::poll_jobs`]. No egui, no network: it is tested on its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use ferry_client::{ClientOptions, Fingerprint, ListEntry, Progress};

use crate::listing::Listing;

mod rename;

use crate::settings::{self, ConnectSettings, KNOWN_SERVERS, REMEMBERED_SERVERS};
use crate::sync_job::SyncRequest;
use crate::transfers::{Direction, Transfer, TransferId, TransferState};
use ferry_client::sync::SyncDirection;
pub use rename::RenamePrompt;
pub(crate) use rename::moved;

/// Transfers that run at the same time; the others wait, queued.
pub const MAX_RUNNING: usize = 3;

/// A server the user connected to: what every worker needs to open its own connection.
#[derive(Clone, Debug)]
pub struct Session {
    /// `HOST:PORT`.
    pub addr: String,
    /// Token, security and trust, as accepted at connect time.
    pub options: ClientOptions,
}

/// Where the connection stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// Not connected.
    Disconnected,
    /// A worker is connecting.
    Connecting,
    /// The server is met for the first time: the user must accept its certificate.
    Trust {
        /// `HOST:PORT`.
        server: String,
        /// The certificate's SHA-256 fingerprint.
        fingerprint: Fingerprint,
    },
    /// Connected.
    Connected {
        /// `HOST:PORT`.
        server: String,
    },
}

/// Work for a worker thread.
#[derive(Debug)]
pub enum Job {
    /// Connect: plaintext, a known server, or probe an unknown one's certificate.
    Connect {
        /// What the user typed.
        settings: ConnectSettings,
        /// The known-servers file (`None` when there is no config folder).
        known: Option<PathBuf>,
    },
    /// The user accepted `fingerprint`: record it, then connect.
    Trust {
        /// What the user typed.
        settings: ConnectSettings,
        /// The known-servers file.
        known: PathBuf,
        /// The accepted fingerprint.
        fingerprint: Fingerprint,
    },
    /// List the server's files.
    List(Session),
    /// Find the files under a path to upload (a folder may be large: not on the window's
    /// thread).
    Scan {
        /// The file or folder typed or dropped.
        path: PathBuf,
        /// Whether its uploads replace existing files.
        overwrite: bool,
    },
    /// Move one file.
    Transfer {
        /// The server.
        session: Session,
        /// Which transfer.
        id: TransferId,
        /// Which run of it.
        run: u32,
        /// What moves where.
        direction: Direction,
        /// Set when the user cancels.
        cancel: Arc<AtomicBool>,
    },
    /// Remove files.
    Remove {
        /// The server.
        session: Session,
        /// Their names.
        names: Vec<String>,
    },
    /// Rename a file on the server.
    Move {
        /// The server.
        session: Session,
        /// Its name now.
        from: String,
        /// The name it gets.
        to: String,
        /// Replace a file that has that name.
        overwrite: bool,
    },
    /// Sync a folder: send only the files that differ.
    Sync {
        /// The server.
        session: Session,
        /// Which folders, which way.
        request: SyncRequest,
        /// The folder of the digest caches, if any.
        cache: Option<PathBuf>,
    },
}

/// What a worker reports.
#[derive(Debug)]
pub enum Event {
    /// The server is unknown: ask the user about its certificate.
    TrustNeeded {
        /// `HOST:PORT`.
        server: String,
        /// Its certificate's fingerprint.
        fingerprint: Fingerprint,
    },
    /// Connected, with the server's files.
    Connected {
        /// How to reach it again.
        session: Session,
        /// Its files.
        entries: Vec<ListEntry>,
    },
    /// Connecting failed, in words.
    ConnectFailed(String),
    /// A listing arrived, or why not.
    Listed(Result<Vec<ListEntry>, String>),
    /// The files under a path to upload, each with its name on the server, or why not.
    Scanned {
        /// The file or folder typed or dropped.
        path: PathBuf,
        /// Whether its uploads replace existing files.
        overwrite: bool,
        /// What was found.
        files: Result<Vec<(PathBuf, String)>, String>,
    },
    /// A transfer moved.
    Progress {
        /// Which one.
        id: TransferId,
        /// Which run of it.
        run: u32,
        /// How far.
        progress: Progress,
        /// When.
        at: Instant,
    },
    /// A transfer ended: its size, or why not.
    Finished {
        /// Which one.
        id: TransferId,
        /// Which run of it.
        run: u32,
        /// Size moved, or the reason it failed.
        outcome: Result<u64, String>,
        /// When.
        at: Instant,
    },
    /// Removals ended: each name with its outcome.
    Removed(Vec<(String, Result<(), String>)>),
    /// A rename ended.
    Moved {
        /// The name it had.
        from: String,
        /// The name asked for.
        to: String,
        /// Whether it was renamed, or why not.
        outcome: Result<(), String>,
    },
    /// A sync ended: its summary in words, or why it failed.
    Synced(Result<String, String>),
}

/// Everything the window shows.
#[derive(Debug)]
pub struct Model {
    /// The connect panel's fields.
    pub settings: ConnectSettings,
    /// Servers connected to before, newest first.
    pub remembered: Vec<ConnectSettings>,
    /// The ferry config folder (known servers, remembered servers), if there is one.
    pub config_dir: Option<PathBuf>,
    /// Where the connection stands.
    pub connection: Connection,
    /// The server's files.
    pub listing: Listing,
    /// Every transfer of this run, oldest first.
    pub transfers: Vec<Transfer>,
    /// The upload path field.
    pub upload_path: String,
    /// Replace files that exist on the server.
    pub overwrite: bool,
    /// The download folder field.
    pub download_folder: String,
    /// Names waiting for the user to confirm their removal.
    pub confirm_remove: Option<Vec<String>>,
    /// The rename prompt, while it is open.
    pub renaming: Option<RenamePrompt>,
    /// The last thing that went wrong (or a notice), in words.
    pub message: Option<String>,
    /// Where syncs cache local digests (the `ferry` command's cache folder by default).
    pub sync_cache: Option<PathBuf>,
    /// The sync under way, if any (one at a time).
    pub syncing: Option<SyncRequest>,
    session: Option<Session>,
    next_id: u64,
    jobs: Vec<Job>,
}

impl Model {
    /// A disconnected model using `config_dir` for known and remembered servers.
    pub fn new(config_dir: Option<PathBuf>) -> Model {
        let remembered = config_dir
            .as_ref()
            .and_then(|dir| settings::load_remembered(&dir.join(REMEMBERED_SERVERS)).ok())
            .unwrap_or_default();
        let settings = remembered.first().cloned().unwrap_or_default();
        Model {
            settings,
            remembered,
            config_dir,
            connection: Connection::Disconnected,
            listing: Listing::default(),
            transfers: Vec::new(),
            upload_path: String::new(),
            overwrite: false,
            download_folder: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            confirm_remove: None,
            renaming: None,
            message: None,
            sync_cache: ferry_client::sync::cache_dir(),
            syncing: None,
            session: None,
            next_id: 1,
            jobs: Vec::new(),
        }
    }

    /// Whether the model is connected to a server.
    pub fn is_connected(&self) -> bool {
        matches!(self.connection, Connection::Connected { .. })
    }

    /// The known-servers file, shared with the `ferry` command.
    pub fn known_servers(&self) -> Option<PathBuf> {
        self.config_dir.as_ref().map(|dir| dir.join(KNOWN_SERVERS))
    }

    /// The work to start now: jobs asked for since the last call, and queued transfers that
    /// fit in the free slots (marked running at `now`).
    #[must_use]
    pub fn poll_jobs(&mut self, now: Instant) -> Vec<Job> {
        let mut running = self
            .transfers
            .iter()
            .filter(|t| t.state.is_active())
            .count();
        if let Some(session) = &self.session {
            for transfer in &mut self.transfers {
                if running >= MAX_RUNNING {
                    break;
                }
                if transfer.state == TransferState::Queued {
                    transfer.handle_start(now);
                    running += 1;
                    self.jobs.push(Job::Transfer {
                        session: session.clone(),
                        id: transfer.id,
                        run: transfer.run,
                        direction: transfer.direction.clone(),
                        cancel: Arc::clone(&transfer.cancel),
                    });
                }
            }
        }
        std::mem::take(&mut self.jobs)
    }

    /// Connects with the connect panel's settings.
    pub fn connect(&mut self) {
        self.message = None;
        self.connection = Connection::Connecting;
        self.jobs.push(Job::Connect {
            settings: self.settings.clone(),
            known: self.known_servers(),
        });
    }

    /// Fills the connect panel with a remembered server.
    pub fn pick_remembered(&mut self, index: usize) {
        if let Some(known) = self.remembered.get(index) {
            self.settings.addr = known.addr.clone();
            self.settings.insecure = known.insecure;
        }
    }

    /// The user trusts the certificate shown: record it and connect.
    pub fn accept_trust(&mut self) {
        let (Connection::Trust { fingerprint, .. }, Some(known)) =
            (&self.connection, self.known_servers())
        else {
            return;
        };
        self.jobs.push(Job::Trust {
            settings: self.settings.clone(),
            known,
            fingerprint: *fingerprint,
        });
        self.connection = Connection::Connecting;
    }

    /// The user does not trust the certificate shown: nothing is recorded or sent.
    pub fn reject_trust(&mut self) {
        self.connection = Connection::Disconnected;
        self.message = Some("Not connected: the certificate was not trusted.".to_owned());
    }

    /// Forgets the server at `now`. Transfers under way finish on their own connections;
    /// queued ones are cancelled, so that they never go to the next server instead.
    pub fn disconnect(&mut self, now: Instant) {
        for transfer in &mut self.transfers {
            if transfer.state == TransferState::Queued {
                transfer.cancel(now);
            }
        }
        self.connection = Connection::Disconnected;
        self.session = None;
        self.listing.handle_entries(Vec::new());
        self.confirm_remove = None;
    }

    /// Lists the server's files again.
    pub fn refresh(&mut self) {
        if let Some(session) = &self.session {
            self.jobs.push(Job::List(session.clone()));
        }
    }

    /// Uploads the file or folder at `path` (typed or dropped): a worker finds its files,
    /// then each is queued.
    pub fn upload(&mut self, path: &Path) {
        self.jobs.push(Job::Scan {
            path: path.to_path_buf(),
            overwrite: self.overwrite,
        });
    }

    /// Queues the upload of the path typed in the upload field.
    pub fn upload_typed_path(&mut self) {
        let path = PathBuf::from(self.upload_path.trim());
        self.upload(&path);
    }

    /// Queues the download of every selected file into the download folder.
    pub fn download_selected(&mut self) {
        let folder = PathBuf::from(self.download_folder.trim());
        let names: Vec<String> = self.listing.selected.iter().cloned().collect();
        for name in names {
            let target = folder.join(&name);
            self.queue(Direction::Download { name, target });
        }
    }

    /// Syncs the local folder typed in the upload field to the server folder of its name:
    /// files the server already holds with the same size and digest are not sent again.
    pub fn sync_typed_folder(&mut self) {
        let local = PathBuf::from(self.upload_path.trim());
        let name = local.file_name().and_then(ferry_client::name_from_local);
        match name {
            Some(remote) if local.is_dir() => self.sync(SyncRequest {
                direction: SyncDirection::Upload,
                local,
                remote,
            }),
            _ => {
                self.message = Some(format!(
                    "{} is not a folder: type a folder's path to sync it",
                    local.display()
                ));
            }
        }
    }

    /// Syncs the server folder `folder` into the folder of its name in the download folder.
    pub fn sync_down(&mut self, folder: &str) {
        let local = PathBuf::from(self.download_folder.trim()).join(folder);
        self.sync(SyncRequest {
            direction: SyncDirection::Download,
            local,
            remote: folder.to_owned(),
        });
    }

    fn sync(&mut self, request: SyncRequest) {
        let Some(session) = &self.session else {
            return;
        };
        if let Some(running) = &self.syncing {
            self.message = Some(format!(
                "A sync is under way ({}); wait for it to end.",
                running.describe()
            ));
            return;
        }
        self.message = None;
        self.jobs.push(Job::Sync {
            session: session.clone(),
            request: request.clone(),
            cache: self.sync_cache.clone(),
        });
        self.syncing = Some(request);
    }

    /// Asks the user to confirm the removal of the selected files.
    pub fn ask_remove(&mut self) {
        if !self.listing.selected.is_empty() {
            self.confirm_remove = Some(self.listing.selected.iter().cloned().collect());
        }
    }

    /// The user confirmed: remove them.
    pub fn confirm_remove(&mut self) {
        if let (Some(names), Some(session)) = (self.confirm_remove.take(), &self.session) {
            self.jobs.push(Job::Remove {
                session: session.clone(),
                names,
            });
        }
    }

    /// The user changed their mind: nothing is removed.
    pub fn cancel_remove(&mut self) {
        self.confirm_remove = None;
    }

    /// Cancels a transfer at `now`.
    pub fn cancel_transfer(&mut self, id: TransferId, now: Instant) {
        if let Some(transfer) = self.transfers.iter_mut().find(|t| t.id == id) {
            transfer.cancel(now);
        }
    }

    /// Queues a failed or cancelled transfer again; an upload takes the Overwrite box as it
    /// is now, so a refusal for an existing name can be retried as a replacement.
    pub fn retry_transfer(&mut self, id: TransferId) {
        if let Some(transfer) = self.transfers.iter_mut().find(|t| t.id == id)
            && matches!(
                transfer.state,
                TransferState::Failed(_) | TransferState::Cancelled
            )
        {
            if let Direction::Upload { overwrite, .. } = &mut transfer.direction {
                *overwrite = self.overwrite;
            }
            transfer.state = TransferState::Queued;
        }
    }

    /// Removes finished transfers from the panel.
    pub fn clear_finished(&mut self) {
        self.transfers.retain(|t| !t.state.is_finished());
    }

    fn queue(&mut self, direction: Direction) {
        let id = TransferId(self.next_id);
        self.next_id += 1;
        self.transfers.push(Transfer::new(id, direction));
    }

    /// Takes in what a worker reports.
    pub fn handle_event(&mut self, event: Event) {
        match event {
            Event::TrustNeeded {
                server,
                fingerprint,
            } => {
                if self.connection == Connection::Connecting {
                    self.connection = Connection::Trust {
                        server,
                        fingerprint,
                    };
                }
            }
            Event::Connected { session, entries } => {
                self.connection = Connection::Connected {
                    server: session.addr.clone(),
                };
                self.session = Some(session);
                self.listing.handle_entries(entries);
                settings::remember(&mut self.remembered, &self.settings);
                if let Some(dir) = &self.config_dir {
                    let file = dir.join(REMEMBERED_SERVERS);
                    if let Err(error) = settings::save_remembered(&file, &self.remembered) {
                        self.message = Some(format!(
                            "cannot remember the server in {}: {error}",
                            file.display()
                        ));
                    }
                }
            }
            Event::ConnectFailed(reason) => {
                self.connection = Connection::Disconnected;
                self.message = Some(reason);
            }
            // A listing that arrives after a disconnect belongs to no one.
            Event::Listed(Ok(entries)) if self.is_connected() => {
                self.listing.handle_entries(entries)
            }
            Event::Listed(Ok(_)) => {}
            Event::Scanned {
                path,
                overwrite,
                files,
            } => match files {
                Ok(files) if files.is_empty() => {
                    self.message = Some(format!("{} holds no files to upload", path.display()));
                }
                Ok(files) => {
                    for (local, name) in files {
                        self.queue(Direction::Upload {
                            local,
                            name,
                            overwrite,
                        });
                    }
                }
                Err(error) => {
                    self.message = Some(format!("cannot read {}: {error}", path.display()));
                }
            },
            Event::Listed(Err(reason)) => self.message = Some(reason),
            Event::Progress {
                id,
                run,
                progress,
                at,
            } => {
                if let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) {
                    t.handle_progress(run, progress, at);
                }
            }
            Event::Finished {
                id,
                run,
                outcome,
                at,
            } => {
                let uploaded = outcome.is_ok();
                if let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) {
                    let upload = matches!(t.direction, Direction::Upload { .. });
                    t.handle_finish(run, outcome, at);
                    if upload && uploaded {
                        self.refresh();
                    }
                }
            }
            Event::Synced(outcome) => {
                self.syncing = None;
                self.message = Some(outcome.unwrap_or_else(|e| format!("Sync failed: {e}")));
                self.refresh();
            }
            Event::Moved { from, to, outcome } => self.handle_moved(&from, &to, outcome),
            Event::Removed(results) => {
                let failed: Vec<String> = results
                    .into_iter()
                    .filter_map(|(name, result)| {
                        result
                            .err()
                            .map(|e| format!("{}: {e}", ferry_client::display_name(&name)))
                    })
                    .collect();
                if !failed.is_empty() {
                    self.message = Some(failed.join("\n"));
                }
                self.refresh();
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
