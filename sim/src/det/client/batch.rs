//! The simulated client's batches ([`Op::PutMany`]): several small files pipelined on one
//! connection by the client library's own [`EagerWindow`], as `ferry put` of a folder sends
//! them. The window decides what each answer means; this file moves its bytes over the
//! simulated link, counts how many requests were out before the first answer came back, and
//! hands each file's outcome to the judge.
//!
//! Files the window leaves open (refused as existing, or in flight when the connection was
//! lost) are settled one by one afterwards, each with the library's [`Upload`] as a regular
//! upload step does (the same retry loop), as `Client::put_files` does with `put_file`.
//!
//! [`Op::PutMany`]: crate::plan::Op::PutMany

use ferry_client::ClientError;
use ferry_client::transfer::{Answer, EagerWindow, Upload};
use ferry_protocol::Digest;
use rand::RngExt;

use super::{Phase, SimClient, Task};
use crate::content::ContentId;
use crate::det::judge::{Outcome, Verdict, judge_put};
use crate::det::link::Dir;
use crate::det::world::Ctx;

/// One file of a batch.
#[derive(Debug)]
pub(crate) struct BatchFile {
    name: String,
    content: ContentId,
    data: Vec<u8>,
    /// It was in flight (its `DONE` sent) on a connection that was lost before its answer.
    maybe_done: bool,
}

/// A batch under way, across connections.
#[derive(Debug)]
pub(crate) struct Batch {
    files: Vec<BatchFile>,
    /// The next file a window sends.
    next: usize,
    /// The window on the current connection: the client library's.
    window: Option<EagerWindow>,
    /// Requests the current window sent before its first answer came back; `None` once one
    /// came.
    unanswered: Option<u64>,
    /// Files to settle one by one once every file was sent.
    one_by_one: Vec<usize>,
    /// The file being settled one by one.
    current: Option<usize>,
}

impl Batch {
    pub(crate) fn new(files: &[(String, ContentId)]) -> Self {
        Batch {
            files: files
                .iter()
                .map(|(name, content)| BatchFile {
                    name: name.clone(),
                    content: *content,
                    data: content.bytes(),
                    maybe_done: false,
                })
                .collect(),
            next: 0,
            window: None,
            unanswered: None,
            one_by_one: Vec::new(),
            current: None,
        }
    }

    /// Bytes of all its files (where a fault of its connections may fall).
    pub(crate) fn size(&self) -> u64 {
        self.files.iter().map(|f| f.content.size).sum()
    }

    /// Whether a window is open on the current connection.
    pub(crate) fn is_windowing(&self) -> bool {
        self.window.is_some()
    }

    /// Whether one of its files is being settled one by one.
    pub(crate) fn is_settling(&self) -> bool {
        self.current.is_some()
    }

    /// The connection was lost: what was in flight is settled one by one.
    pub(crate) fn interrupted(&mut self, ctx: &mut Ctx<'_>) {
        let Some(mut window) = self.window.take() else {
            return;
        };
        self.unanswered = None;
        let left = window.interrupted();
        if !left.is_empty() {
            ctx.summary.windows_interrupted += 1;
        }
        self.one_by_one.extend(left);
    }
}

impl SimClient {
    /// Goes on with the batch on a connected connection: a window while files are left to
    /// send, then the next file to settle one by one, then the end of the step.
    pub(super) fn issue_batch(&mut self, ctx: &mut Ctx<'_>) {
        let chunk = self.chunk;
        let (Some(cc), Some(task)) = (&mut self.cc, &mut self.task) else {
            return;
        };
        let Some(batch) = &mut task.batch else { return };
        if batch.next < batch.files.len() {
            match EagerWindow::begin(cc, chunk, false) {
                Some(window) => {
                    batch.window = Some(window);
                    batch.unanswered = Some(0);
                    self.pump(ctx);
                    return;
                }
                // A version-1 server: every file goes one by one.
                None => {
                    batch.one_by_one.extend(batch.next..batch.files.len());
                    batch.next = batch.files.len();
                }
            }
        }
        batch.one_by_one.sort_unstable();
        if batch.one_by_one.is_empty() {
            // Every file was judged as its answer came.
            self.finish(ctx, None);
            return;
        }
        let index = batch.one_by_one.remove(0);
        batch.current = Some(index);
        let file = &batch.files[index];
        let chunk = self
            .rng
            .random_range(1..=ferry_protocol::limits::DEFAULT_DATA_CHUNK);
        let upload = Upload::new(
            &file.name,
            file.content.size,
            file.content.tag(),
            false,
            chunk,
        );
        let (data, maybe_done) = (file.data.clone(), file.maybe_done);
        start_file(task, upload, data, maybe_done);
        self.issue(ctx);
    }

    /// Sends the batch's files while the window and the link have room; once every file was
    /// sent and answered, goes on one by one.
    pub(super) fn pump_window(&mut self, ctx: &mut Ctx<'_>) {
        let (Some(cc), Some(task), Some(id)) = (&mut self.cc, &mut self.task, self.conn) else {
            return;
        };
        let Some(batch) = &mut task.batch else { return };
        let Some(window) = &mut batch.window else {
            return;
        };
        let now = ctx.now;
        while batch.next < batch.files.len() && window.has_room() {
            if !ctx.link(id).has_room(Dir::ToServer) {
                self.blocked_since.get_or_insert(now);
                return;
            }
            self.blocked_since = None;
            let index = batch.next;
            batch.next += 1;
            let file = &mut batch.files[index];
            if !EagerWindow::is_eager(file.content.size) {
                batch.one_by_one.push(index);
                continue;
            }
            let mut out = Vec::new();
            let tag = file.content.tag();
            if let Err(error) = window.send(cc, index, &file.name, &file.data, tag, &mut out) {
                let what = format!("the client library refused its own pipelined upload: {error}");
                self.give_up(ctx, what);
                return;
            }
            file.maybe_done = true;
            ctx.link(id).write(Dir::ToServer, now, &out);
            ctx.summary.bytes_moved += file.content.size;
            if let Some(sent) = &mut batch.unanswered {
                *sent += 1;
            }
            let in_flight = window.in_flight() as u64;
            let most = &mut ctx.summary.requests_in_flight_max;
            *most = (*most).max(in_flight);
        }
        if window.is_empty() && batch.next == batch.files.len() {
            batch.window = None;
            self.issue(ctx);
        }
    }

    /// An answer to the window: the client library says what it means for its file.
    pub(super) fn on_window_event(
        &mut self,
        ctx: &mut Ctx<'_>,
        event: ferry_protocol::ClientEvent,
    ) {
        let Some(task) = &mut self.task else { return };
        let Some(batch) = &mut task.batch else { return };
        let Some(window) = &mut batch.window else {
            return;
        };
        if let Some(sent) = batch.unanswered.take() {
            let summary = &mut *ctx.summary;
            summary.windows += 1;
            summary.window_requests_before_answer += sent;
            summary.windows_pipelined += u64::from(sent >= 2);
        }
        let (index, outcome) = match window.on_event(event) {
            Ok(Answer::Stored { index, .. }) => (index, Outcome::Stored),
            Ok(Answer::OneByOne { index }) => {
                ctx.summary.window_refusals += 1;
                batch.one_by_one.push(index);
                self.pump(ctx);
                return;
            }
            Ok(Answer::Failed {
                index,
                error: ClientError::Refused { code, .. },
            }) => {
                ctx.summary.window_refusals += 1;
                (index, Outcome::Refused(code))
            }
            Ok(Answer::Failed { error, .. }) | Err(error) => {
                let what = format!("the client library failed a pipelined upload: {error}");
                self.give_up(ctx, what);
                return;
            }
        };
        let file = &batch.files[index];
        let (name, content, maybe_done) = (file.name.clone(), file.content, file.maybe_done);
        self.judge_file(ctx, &name, content, maybe_done, false, outcome);
        self.pump(ctx);
    }

    /// Judges the outcome of one file of the batch as an upload without overwrite.
    pub(super) fn judge_file(
        &mut self,
        ctx: &mut Ctx<'_>,
        name: &str,
        content: ContentId,
        maybe_done: bool,
        retried: bool,
        outcome: Outcome,
    ) -> Verdict {
        let step = self.step_u32();
        let verdict = judge_put(
            ctx,
            (self.id, step),
            &mut self.model,
            (name, content, false),
            (maybe_done, retried),
            outcome,
        );
        match &verdict {
            Verdict::Ok | Verdict::Retry => {}
            Verdict::Expected => ctx.summary.expected_failures += 1,
            Verdict::Breach(breach) => {
                ctx.summary.unexpected_failures += 1;
                ctx.breach(breach.clone());
            }
        }
        verdict
    }

    /// The file settled one by one ended with `outcome`: judged, then the batch goes on (or
    /// the file is tried again, if the judge says so).
    pub(super) fn finish_file(&mut self, ctx: &mut Ctx<'_>, outcome: Outcome) {
        let Some(task) = &mut self.task else { return };
        let Some(batch) = &mut task.batch else { return };
        let Some(index) = batch.current else { return };
        let file = &batch.files[index];
        let (name, content) = (file.name.clone(), file.content);
        // An earlier attempt — this one's, or the window's — may have stored it or may still
        // hold the name.
        let retried = task.attempts > 0 || file.maybe_done;
        let maybe_done = task.maybe_done;
        let verdict = self.judge_file(ctx, &name, content, maybe_done, retried, outcome);
        let Some(task) = &mut self.task else { return };
        task.attempt = None;
        task.sending = None;
        if matches!(verdict, Verdict::Retry) {
            task.attempts += 1;
            let attempts = task.attempts;
            let backoff = self.backoff(attempts);
            self.phase = Phase::Wait(ctx.now + backoff);
            return;
        }
        task.upload = None;
        if let Some(batch) = &mut task.batch {
            batch.current = None;
        }
        ctx.recover_faults(self.id);
        // The next file, on the same connection if it still stands.
        self.phase = Phase::Wait(ctx.now);
    }
}

/// Makes the task's regular upload the one-by-one upload of a file of its batch.
fn start_file(task: &mut Task, upload: Upload, data: Vec<u8>, maybe_done: bool) {
    task.upload = Some(upload);
    task.attempt = None;
    task.attempts = 0;
    task.digest = Digest::of(&data);
    task.data = data;
    task.maybe_done = maybe_done;
}
