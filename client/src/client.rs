//! [`Client`]: requests to one server, each retried on a new connection when the connection is
//! lost or stalls, transfers resuming where they stopped.

use std::io::{Read, Seek, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Instant;

use ferry_protocol::{ClientEvent, HashCheckpoint, ListEntry, SourceTag, validate_name};
use ferry_transport::RateLimit;

use crate::download::Download;
use crate::error::ClientError;
use crate::link::{Link, no_data};
use crate::options::{ClientOptions, GetReport, Progress, PutOptions, PutReport};
use crate::requests::{Held, Listing, Move, Query, Removal};
use crate::retry::RetryPolicy;
use crate::tag::name_tag;
use crate::upload::Upload;

/// A client of one ferry server.
///
/// Each request runs on the current connection; if that connection is lost, stalls (nothing
/// moves for [`ClientOptions::io_timeout`]) or the server is briefly unable to serve, the
/// client waits (with exponential backoff), reconnects to the same address and tries again, up
/// to [`ClientOptions::retries`] times. Uploads resume from the offset the server holds,
/// downloads from the bytes already received. Requests run one at a time; use one `Client` per
/// thread for parallel transfers.
pub struct Client {
    addrs: Vec<SocketAddr>,
    options: ClientOptions,
    epoch: Instant,
    /// [`ClientOptions::limit_rate`], shared by this client's connections one after another.
    rate_limit: Option<RateLimit>,
    link: Option<Link>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.addrs.first())
            .field("connected", &self.link.is_some())
            .finish()
    }
}

impl Client {
    /// Connects to the server at `addr` and completes the handshake. Fails at once (no retry)
    /// if the server cannot be reached, so that a wrong address is reported quickly; a server
    /// that is reachable but busy or restarting is retried with backoff.
    pub fn connect(
        addr: impl ToSocketAddrs,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| ClientError::Connect {
                addr: "the server address".to_owned(),
                source,
            })?
            .collect();
        let epoch = Instant::now();
        let rate_limit = options.limit_rate.map(RateLimit::new);
        let mut attempt = 1;
        let link = loop {
            match Link::open(&addrs, &options, epoch, rate_limit.as_ref()) {
                Ok(link) => break link,
                Err(error @ ClientError::Refused { .. }) if error.is_transient() => {
                    let Some(pause) = RetryPolicy::of(&options).pause(attempt, rand::random())
                    else {
                        return Err(error);
                    };
                    tracing::info!(%error, attempt, ?pause, "server busy; retrying");
                    std::thread::sleep(pause);
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        };
        Ok(Client {
            addrs,
            options,
            epoch,
            rate_limit,
            link: Some(link),
        })
    }

    /// The options this client was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The current connection, or a new one; give it back with [`Client::keep_link`] if it is
    /// still usable.
    pub(crate) fn take_link(&mut self) -> Result<Link, ClientError> {
        match self.link.take() {
            Some(link) => Ok(link),
            None => Link::open(
                &self.addrs,
                &self.options,
                self.epoch,
                self.rate_limit.as_ref(),
            ),
        }
    }

    /// Keeps `link` for the next request, unless the connection is over.
    pub(crate) fn keep_link(&mut self, link: Link) {
        if !link.conn.is_closed() {
            self.link = Some(link);
        }
    }

    /// Runs `op` on a connection, retrying transient failures on a new one. Returns the value
    /// and the number of attempts made.
    pub(crate) fn retrying<T>(
        &mut self,
        mut op: impl FnMut(&mut Link, u32) -> Result<T, ClientError>,
    ) -> Result<(T, u32), ClientError> {
        let mut attempt = 1;
        loop {
            let result = match self.link.take() {
                Some(link) => Ok(link),
                None => Link::open(
                    &self.addrs,
                    &self.options,
                    self.epoch,
                    self.rate_limit.as_ref(),
                ),
            }
            .and_then(|mut link| {
                let result = op(&mut link, attempt);
                // A refusal leaves the connection usable; anything else may have broken it.
                if result
                    .as_ref()
                    .map_or_else(ClientError::leaves_connection_usable, |_| true)
                    && !link.conn.is_closed()
                {
                    self.link = Some(link);
                }
                result
            });
            match result {
                Ok(value) => return Ok((value, attempt)),
                Err(error) if error.is_transient() => {
                    let policy = RetryPolicy::of(&self.options);
                    let Some(pause) = policy.pause(attempt, rand::random()) else {
                        return Err(error);
                    };
                    tracing::info!(%error, attempt, ?pause, "retrying on a new connection");
                    std::thread::sleep(pause);
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Uploads `size` bytes read from `source` (from its start) as `name`. On a retry the
    /// source is read again from the offset the server answers; the bytes before it are only
    /// hashed (read locally), never sent again. Returns once the file is durable on the server.
    ///
    /// Without `opts.overwrite`, a name that exists is refused unless it holds exactly these
    /// bytes: then the report says [`PutOutcome::AlreadyStored`] and nothing is sent. To find
    /// out, the client asks the server for the stored file's size and digest (after the
    /// refusal, or with the resume query of a large upload) and reads `source` once to hash
    /// it, only if the sizes match. A stored file of the same size whose digest the server
    /// does not know is refused as [`ClientError::ExistsUnconfirmed`].
    ///
    /// [`PutOutcome::AlreadyStored`]: crate::PutOutcome::AlreadyStored
    pub fn put_from<R: Read + Seek>(
        &mut self,
        source: &mut R,
        size: u64,
        name: &str,
        opts: &PutOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PutReport, ClientError> {
        check_name(name)?;
        let tag = opts.tag.unwrap_or_else(|| name_tag(name, size));
        let mut upload = Upload::new(name, size, tag, opts.overwrite, self.options.chunk_size);
        upload.resume_first = opts.resume && self.options.resume;
        upload.resume_retries = self.options.resume;
        let (finished, attempts) =
            self.retrying(|link, attempt| upload.attempt(link, source, attempt, progress))?;
        Ok(PutReport {
            name: name.to_owned(),
            size,
            digest: finished.digest,
            outcome: finished.outcome,
            resumed_from: upload.resumed_from,
            attempts,
            bytes_sent: upload.bytes_sent,
        })
    }

    /// Downloads `name` into `sink`, checking every byte against the server's digest before
    /// returning `Ok`. On failure the sink may hold part of the file.
    pub fn get_to<W: Write>(
        &mut self,
        name: &str,
        sink: &mut W,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<GetReport, ClientError> {
        self.get_from(
            name,
            PathBuf::from(name),
            sink,
            HashCheckpoint::start(),
            progress,
        )
    }

    /// Downloads into a sink that already holds the file's first `checkpoint.offset()` bytes.
    pub(crate) fn get_from<W: Write>(
        &mut self,
        name: &str,
        path: PathBuf,
        sink: &mut W,
        checkpoint: HashCheckpoint,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<GetReport, ClientError> {
        check_name(name)?;
        let mut download = Download::new(name, path, checkpoint);
        let (digest, attempts) =
            self.retrying(|link, attempt| download.attempt(link, sink, attempt, progress))?;
        Ok(GetReport {
            name: name.to_owned(),
            size: download.size(),
            digest,
            resumed_from: download.resumed_from,
            attempts,
            bytes_received: download.bytes_received,
        })
    }

    /// The files whose names start with `prefix` (empty for all), in the server's order.
    pub fn list(&mut self, prefix: &str) -> Result<Vec<ListEntry>, ClientError> {
        let (entries, _) = self.retrying(|link, _| {
            let mut listing = Listing::begin(&mut link.conn, prefix)?;
            link.flush("sending a listing request")?;
            ask(link, Listing::DURING, |event| listing.on_event(event))
        })?;
        Ok(entries)
    }

    /// Removes `name` from the server.
    pub fn remove(&mut self, name: &str) -> Result<(), ClientError> {
        check_name(name)?;
        self.retrying(|link, attempt| {
            let removal = Removal::begin(&mut link.conn, name, attempt)?;
            link.flush("sending a removal request")?;
            ask(link, Removal::DURING, |event| removal.on_event(event))
        })?;
        Ok(())
    }

    /// Gives the file `from` on the server the name `to`, or the folder `from` with everything
    /// under it, atomically: a download of `to` gets the old file or the moved one, whole.
    /// With `overwrite`, a file stored under `to` is replaced (a folder never is). Needs a
    /// server speaking protocol version 3 ([`ClientError::ServerTooOld`] otherwise, with
    /// nothing sent). A retry after a lost connection that finds `from` gone counts as done:
    /// the first attempt moved it.
    pub fn move_file(&mut self, from: &str, to: &str, overwrite: bool) -> Result<(), ClientError> {
        self.retrying(|link, attempt| {
            let moving = Move::begin(&mut link.conn, from, to, overwrite, attempt)?;
            link.flush("sending a move request")?;
            ask(link, Move::DURING, |event| moving.on_event(event))
        })?;
        Ok(())
    }

    /// What the server holds under `name`: the size of the stored file, and the resumable
    /// bytes of a partial upload with `tag`.
    pub fn query(
        &mut self,
        name: &str,
        tag: SourceTag,
    ) -> Result<(Option<u64>, Option<u64>), ClientError> {
        let held = self.held(name, tag)?;
        Ok((held.stored_size, held.partial_offset))
    }

    /// What the server holds under `name` (and of a partial upload with `tag`).
    pub(crate) fn held(&mut self, name: &str, tag: SourceTag) -> Result<Held, ClientError> {
        check_name(name)?;
        let (held, _) = self.retrying(|link, _| {
            let query = Query::begin(&mut link.conn, name, tag)?;
            link.flush("sending a query")?;
            ask(link, Query::DURING, |event| query.on_event(event))
        })?;
        Ok(held)
    }
}

/// Waits for the events of a request sent on `link` until `answer` has its result.
fn ask<T>(
    link: &mut Link,
    during: &'static str,
    mut answer: impl FnMut(ClientEvent) -> Result<Option<T>, ClientError>,
) -> Result<T, ClientError> {
    loop {
        if let Some(value) = answer(link.next_event(during, &mut no_data)?)? {
            return Ok(value);
        }
    }
}

/// Checks a name before anything is sent, so that a bad name is a usage error.
pub(crate) fn check_name(name: &str) -> Result<(), ClientError> {
    validate_name(name).map_err(|source| ClientError::InvalidName {
        name: name.to_owned(),
        source,
    })
}

pub(crate) fn name_error(name: &str, error: ferry_protocol::CommandError) -> ClientError {
    match error {
        ferry_protocol::CommandError::BadName(source) => ClientError::InvalidName {
            name: name.to_owned(),
            source,
        },
        other => ClientError::Internal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulator and the command line move clients into worker threads.
    #[test]
    fn client_and_errors_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<Client>();
        send::<ClientError>();
    }
}
