//! The simulated client's regular transfers: the client library's own [`UploadAttempt`] and
//! [`DownloadAttempt`] decide; this file moves their bytes over the simulated link and hands
//! their outcomes to the judge.

use std::io::Cursor;

use ferry_client::transfer::Finished;
use ferry_client::{ClientError, PutOutcome};
use ferry_protocol::{ClientEvent, ErrorCode};

use super::SimClient;
use crate::det::judge::Outcome;
use crate::det::link::Dir;
use crate::det::world::Ctx;
use crate::report::Breach;

impl SimClient {
    /// Sends the library's upload data while the link has room.
    pub(super) fn pump_upload(&mut self, ctx: &mut Ctx<'_>) {
        let (Some(cc), Some(task), Some(id)) = (&mut self.cc, &mut self.task, self.conn) else {
            return;
        };
        let (Some(upload), Some(attempt)) = (&mut task.upload, &mut task.attempt) else {
            return;
        };
        let now = ctx.now;
        let mut source = Cursor::new(&task.data[..]);
        loop {
            if !ctx.link(id).has_room(Dir::ToServer) {
                self.blocked_since.get_or_insert(now);
                return;
            }
            self.blocked_since = None;
            let mut out = Vec::new();
            let chunk = match attempt.next_chunk(upload, cc, &mut source) {
                Ok(chunk) => chunk,
                Err(error) => {
                    let step = self.step as u32;
                    ctx.breach(Breach::at(
                        ctx.seed,
                        self.id,
                        step,
                        format!("the client library failed to read its source: {error}"),
                    ));
                    task.attempt = None;
                    return;
                }
            };
            let Some(chunk) = chunk else {
                if attempt.is_finishing() {
                    task.maybe_done = true;
                }
                cc.poll_transmit(&mut out);
                if !out.is_empty() {
                    ctx.link(id).write(Dir::ToServer, now, &out);
                }
                return;
            };
            if let Err(error) = cc.send_file_data(chunk) {
                let step = self.step as u32;
                ctx.breach(Breach::at(
                    ctx.seed,
                    self.id,
                    step,
                    format!("client machine refused upload data: {error}"),
                ));
                task.attempt = None;
                return;
            }
            cc.poll_transmit(&mut out);
            out.extend_from_slice(chunk);
            ctx.link(id).write(Dir::ToServer, now, &out);
            ctx.summary.bytes_moved += chunk.len() as u64;
        }
    }

    /// File data of the download under way, to the client library; `false` if it ended the
    /// step.
    pub(super) fn on_file_data(&mut self, ctx: &mut Ctx<'_>, data: &[u8]) -> bool {
        let Some(task) = &mut self.task else {
            return true;
        };
        let (Some(fetching), Some(fetch)) = (&mut task.fetching, &mut task.fetch) else {
            task.download.extend_from_slice(data);
            return true;
        };
        if let Err(error) = fetch.on_data(fetching, &mut task.download, data) {
            let step = self.step_u32();
            ctx.breach(Breach::at(
                ctx.seed,
                self.id,
                step,
                format!("the client library rejected download data: {error}"),
            ));
            self.drop_connection(ctx);
            self.finish(ctx, None);
            return false;
        }
        true
    }

    /// An event of a download: the client library decides; its outcome is judged.
    pub(super) fn on_download_event(&mut self, ctx: &mut Ctx<'_>, event: ClientEvent) {
        if let ClientEvent::GetReady { offset, .. } = event
            && offset > 0
        {
            ctx.summary.resumed_mid_file += 1;
        }
        let Some(task) = &mut self.task else { return };
        let (Some(fetching), Some(fetch)) = (&mut task.fetching, &mut task.fetch) else {
            return;
        };
        match fetch.on_event(fetching, &mut task.download, event) {
            Ok(None) => {}
            Ok(Some(_digest)) => {
                let data = std::mem::take(&mut task.download);
                self.finish(ctx, Some(Outcome::Downloaded(data)));
            }
            Err(ClientError::Refused { code, message, .. }) => self.refused(ctx, code, &message),
            Err(error) => {
                self.give_up(
                    ctx,
                    format!("the client library failed a download: {error}"),
                );
            }
        }
    }

    /// An event of a listing or a removal: the client library decides; its outcome is judged.
    pub(super) fn on_request_event(&mut self, ctx: &mut Ctx<'_>, event: ClientEvent) {
        let Some(task) = &mut self.task else { return };
        let answered = match (&mut task.listing, &task.removal) {
            (Some(listing), _) => listing
                .on_event(event)
                .map(|done| done.map(Outcome::Listed)),
            (None, Some(removal)) => removal
                .on_event(event)
                .map(|done| done.map(|()| Outcome::Removed)),
            (None, None) => return,
        };
        match answered {
            Ok(None) => {}
            Ok(Some(outcome)) => self.finish(ctx, Some(outcome)),
            Err(ClientError::Refused { code, message, .. }) => self.refused(ctx, code, &message),
            Err(error) => {
                self.give_up(ctx, format!("the client library failed a request: {error}"));
            }
        }
    }

    /// The server refused the library's request: a shutdown or a busy server ends the
    /// connection (the step is tried again); any other refusal is the step's outcome.
    fn refused(&mut self, ctx: &mut Ctx<'_>, code: ErrorCode, message: &str) {
        if matches!(code, ErrorCode::ShuttingDown | ErrorCode::Busy) {
            self.fail(ctx, format!("server ended the exchange: {code}: {message}"));
        } else {
            self.finish(ctx, Some(Outcome::Refused(code)));
        }
    }

    /// An event of an upload: the client library decides; its outcome is judged.
    pub(super) fn on_upload_event(&mut self, ctx: &mut Ctx<'_>, event: ClientEvent) {
        if let ClientEvent::PutReady { offset } = event
            && offset > 0
        {
            ctx.summary.resumed_mid_file += 1;
        }
        let (Some(cc), Some(task)) = (&mut self.cc, &mut self.task) else {
            return;
        };
        let (Some(upload), Some(attempt)) = (&mut task.upload, &mut task.attempt) else {
            return;
        };
        let mut source = Cursor::new(&task.data[..]);
        match attempt.on_event(upload, cc, event, &mut source) {
            Ok(None) => {
                self.flush(ctx);
                self.pump(ctx);
            }
            Ok(Some(Finished { outcome, .. })) => {
                let outcome = match outcome {
                    PutOutcome::AlreadyStored => Outcome::AlreadyStored,
                    _ => Outcome::Stored,
                };
                self.finish(ctx, Some(outcome));
            }
            Err(ClientError::Refused { code, message, .. }) => self.refused(ctx, code, &message),
            Err(ClientError::ExistsUnconfirmed { .. }) => {
                self.finish(ctx, Some(Outcome::Refused(ErrorCode::AlreadyExists)));
            }
            Err(ClientError::Integrity { reason, .. }) => {
                self.give_up(
                    ctx,
                    format!("an upload's bytes did not match their digest: {reason}"),
                );
            }
            Err(error) => {
                self.give_up(ctx, format!("the client library failed an upload: {error}"));
            }
        }
    }
}
