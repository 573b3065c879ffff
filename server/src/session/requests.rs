//! The session's decisions: what each event of the protocol machine asks of the store, and the
//! answer the client gets.

use ferry_protocol::{
    CommandError, Digest, ErrorCode, ProtocolError, PutRequest, ServerEvent, SourceTag, Timestamp,
};

use super::outgoing::{Download, Listing, Outgoing};
use super::{Origin, Phase, Session};
use crate::auth::{Grant, Refusal};
use crate::metrics::Refusal as Refused;
use crate::store::error::StorageError;
use crate::transfer_log::Ending;

impl Session {
    /// Acts on one event of the machine.
    pub(super) fn handle_event(&mut self, now: Timestamp, event: ServerEvent) {
        let result = match event {
            ServerEvent::ClientHello { token, .. } => self.on_hello(now, &token),
            ServerEvent::PutRequested(mut request) => {
                if !self.grant.may_write() {
                    self.forbid(&request.name, "upload")
                } else {
                    request.name = self.grant.name(&request.name);
                    if request.streamed {
                        request.tag = self.stream_tag();
                    }
                    self.on_put(&request)
                }
            }
            ServerEvent::GetRequested { name, offset } => {
                let name = self.grant.name(&name);
                self.on_get(now, &name, offset)
            }
            ServerEvent::ListRequested { prefix } => {
                let prefix = self.grant.name(&prefix);
                self.on_list(&prefix)
            }
            ServerEvent::RemoveRequested { name } => {
                if !self.grant.may_write() {
                    self.forbid(&name, "removal")
                } else {
                    let name = self.grant.name(&name);
                    self.on_remove(&name)
                }
            }
            ServerEvent::MoveRequested {
                from,
                to,
                overwrite,
            } => {
                if !self.grant.may_write() {
                    self.forbid(&from, "move")
                } else {
                    let (from, to) = (self.grant.name(&from), self.grant.name(&to));
                    self.on_move(&from, &to, overwrite)
                }
            }
            ServerEvent::QueryRequested { name, tag } => {
                let name = self.grant.name(&name);
                self.on_query(&name, &tag)
            }
            ServerEvent::UploadVerified { digest, .. } => self.on_verified(&digest),
            ServerEvent::UploadRejected { error } => {
                self.on_rejected(&error);
                Ok(())
            }
            ServerEvent::UploadCancelled { .. } => {
                self.interrupt_upload("cancelled by the client");
                Ok(())
            }
            ServerEvent::RequestRefused { code, message } => {
                tracing::warn!(peer = %self.peer, %code, "refused a request: {message}");
                Ok(())
            }
            other => {
                tracing::debug!(peer = %self.peer, ?other, "ignored an event");
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::error!(peer = %self.peer, "connection state error (a server bug): {error}");
            self.abort(ErrorCode::StorageError, "internal error in the server");
        }
    }

    fn on_hello(&mut self, now: Timestamp, token: &[u8]) -> Result<(), CommandError> {
        let metrics = &self.context.metrics;
        if self.phase != Phase::Serving {
            metrics.handle_refused(Refused::ShuttingDown);
            return self
                .conn
                .refuse_connection(ErrorCode::ShuttingDown, "the server is shutting down");
        }
        match self.authorise(now, token) {
            Ok(grant) => {
                self.grant = grant;
                self.conn.accept_client()
            }
            Err(refusal) => {
                metrics.handle_refused(match refusal {
                    Refusal::WrongToken { .. } => Refused::WrongToken,
                    Refusal::TooManyGuesses(_) => Refused::TooManyGuesses,
                });
                self.conn
                    .refuse_connection(refusal.code(), &refusal.to_string())
            }
        }
    }

    /// The grant for `token`, or why it is refused (logged): a wrong token, or too many
    /// attempts, in which case the token was not looked at.
    fn authorise(&self, now: Timestamp, token: &[u8]) -> Result<Grant, Refusal> {
        let Some(tokens) = self.context.config.tokens.as_ref() else {
            return Ok(Grant::full());
        };
        if self.origin == Origin::Original {
            // The seed-compat listener is open to anyone by its configuration.
            return Ok(Grant::full());
        }
        let refusal = match tokens.check(self.peer.ip(), token, self.context.instant(now)) {
            Ok(grant) => return Ok(grant),
            Err(refusal) => refusal,
        };
        match &refusal {
            Refusal::WrongToken { guesses_left } => tracing::warn!(
                peer = %self.peer, guesses_left, token_given = !token.is_empty(),
                "refused a connection: wrong or missing access token"
            ),
            // Not a warning: these are as many as an attacker sends, while the wrong tokens
            // above (which are warned of) are bounded by the caps.
            Refusal::TooManyGuesses(cap) => {
                tracing::debug!(peer = %self.peer, "refused a connection unchecked: {cap}")
            }
        }
        Err(refusal)
    }

    /// Refuses a write with a read-only token.
    fn forbid(&mut self, name: &str, what: &str) -> Result<(), CommandError> {
        self.flush_commits();
        tracing::warn!(peer = %self.peer, name, "refused a {what}: the token is read-only");
        let message = format!("this token is read-only; {what}s are not allowed");
        self.conn.refuse(ErrorCode::Forbidden, &message)
    }

    /// Refuses the request with `error`. Its message reaches the client through
    /// [`Grant::message`], like every storage error's, so names in it are the client's own.
    fn refuse(&mut self, name: &str, error: &StorageError) -> Result<(), CommandError> {
        // Its answer comes after those of the uploads verified before it.
        self.flush_commits();
        tracing::warn!(peer = %self.peer, name, code = %error.code(), "refused: {error}");
        self.conn.refuse(error.code(), &self.grant.message(error))
    }

    /// Refuses a request that needs the server to be serving, while it shuts down.
    fn refuse_if_stopping(&mut self, name: &str) -> Option<Result<(), CommandError>> {
        (self.phase != Phase::Serving).then(|| self.refuse(name, &StorageError::ShuttingDown))
    }

    fn on_put(&mut self, request: &PutRequest) -> Result<(), CommandError> {
        if let Some(refused) = self.refuse_if_stopping(&request.name) {
            return refused;
        }
        let mut begun = self.begin_upload(request);
        // An upload of the same group may hold the name until it commits: commit, then ask
        // again, so the answer is about the stored file (exists) and not a passing lock.
        if begun.is_err() && !self.verified.is_empty() {
            self.flush_commits();
            begun = self.begin_upload(request);
        }
        match begun {
            Ok((upload, checkpoint)) => {
                let upload = match self.origin {
                    Origin::Native => upload,
                    Origin::Original => upload.without_resume(),
                };
                if let Some(waker) = &self.waker {
                    upload.when_superseded(std::sync::Arc::clone(waker));
                }
                tracing::debug!(
                    peer = %self.peer, name = request.name, size = request.size,
                    offset = checkpoint.offset(), "upload accepted"
                );
                self.upload = Some(upload);
                self.conn.accept_put(&checkpoint)
            }
            Err(error) => self.refuse(&request.name, &error),
        }
    }

    /// Queues the upload for its group's commit (see `commits`).
    fn begin_upload(
        &self,
        request: &PutRequest,
    ) -> Result<(crate::store::Upload, ferry_protocol::HashCheckpoint), StorageError> {
        self.context
            .store
            .begin_upload(&self.context.config, request)
    }

    fn on_verified(&mut self, digest: &Digest) -> Result<(), CommandError> {
        let Some(upload) = self.upload.take() else {
            return self
                .conn
                .refuse(ErrorCode::StorageError, "no upload under way");
        };
        self.verified.push(super::Verified::new(upload, *digest));
        Ok(())
    }

    fn on_rejected(&mut self, error: &ProtocolError) {
        let Some(upload) = self.upload.take() else {
            return;
        };
        let transfer = upload.transfer();
        if self.context.config.skips_digest_check()
            && let ProtocolError::DigestMismatch { actual, .. } = error
        {
            tracing::error!(
                name = transfer.name,
                "FAULT INJECTED: storing an upload whose digest did not match"
            );
            let _ = upload.commit(actual);
        } else {
            upload.discard();
        }
        transfer.finished(
            &self.context.metrics,
            self.peer,
            &format!("rejected: {error}"),
            Ending::Failed(error.code()),
        );
    }

    fn on_get(&mut self, now: Timestamp, name: &str, offset: u64) -> Result<(), CommandError> {
        if let Some(refused) = self.refuse_if_stopping(name) {
            return refused;
        }
        let started = self.context.instant(now);
        match Download::open(self.context.store.as_ref(), name, offset, started) {
            Ok(download) => {
                let size = download.size();
                self.outgoing = Some(Outgoing::Download(Box::new(download)));
                self.conn.accept_get(size)
            }
            Err(error) => self.refuse(name, &error),
        }
    }

    fn on_list(&mut self, prefix: &str) -> Result<(), CommandError> {
        match Listing::collect(self.context.store.as_ref(), &self.grant, prefix) {
            Ok(listing) => {
                self.outgoing = Some(Outgoing::Listing(listing));
                Ok(())
            }
            Err(error) => self.refuse(prefix, &error),
        }
    }

    fn on_remove(&mut self, name: &str) -> Result<(), CommandError> {
        match self.context.store.remove(name) {
            Ok(size) => {
                tracing::info!(peer = %self.peer, name, size, "removed");
                self.conn.confirm()
            }
            Err(error) => self.refuse(name, &error),
        }
    }

    fn on_move(&mut self, from: &str, to: &str, overwrite: bool) -> Result<(), CommandError> {
        if let Some(refused) = self.refuse_if_stopping(from) {
            return refused;
        }
        match self.context.store.rename(from, to, overwrite) {
            Ok(()) => {
                tracing::info!(peer = %self.peer, from, to, overwrite, "moved");
                self.conn.confirm()
            }
            Err(error) => self.refuse(from, &error),
        }
    }

    fn on_query(&mut self, name: &str, tag: &SourceTag) -> Result<(), CommandError> {
        match self.context.store.query(name, tag) {
            Ok(held) => {
                self.conn
                    .reply_query(held.stored_size, held.stored_digest, held.partial_offset)
            }
            Err(error) => self.refuse(name, &error),
        }
    }
}
