//! Where the simulated client's upload data comes from: a batch's window (`batch`) and a
//! regular upload (`transfers`) are the client library's; a hostile step's is its own
//! misbehaviour (the hostile kinds of `crate::plan`): a size lie either way, a wrong digest,
//! garbage before the handshake.

use ferry_protocol::Frame;
use rand::RngExt;

use super::SimClient;
use crate::det::link::Dir;
use crate::det::world::Ctx;
use crate::plan::{HostileKind, Op};
use crate::report::Breach;

impl SimClient {
    /// A fresh connection for misbehaving before the handshake.
    pub(super) fn hostile_raw_start(&mut self, ctx: &mut Ctx<'_>) {
        let Some(id) = self.conn else { return };
        if let Some(Op::Hostile {
            kind: HostileKind::GarbageMagic,
            ..
        }) = self.task.as_ref().map(|t| &t.op)
        {
            let len = self.rng.random_range(1..=64);
            let mut garbage: Vec<u8> = (0..len).map(|_| self.rng.random::<u8>()).collect();
            garbage[0] = self.rng.random_range(0..0x89u8);
            ctx.send(id, &garbage);
        }
    }

    /// Sends upload data while the window has room; ends the upload (honestly or not).
    pub(crate) fn pump(&mut self, ctx: &mut Ctx<'_>) {
        let (Some(cc), Some(task), Some(id)) = (&mut self.cc, &mut self.task, self.conn) else {
            return;
        };
        if task
            .batch
            .as_ref()
            .is_some_and(super::batch::Batch::is_windowing)
        {
            self.pump_window(ctx);
            return;
        }
        if task.upload.is_some() {
            self.pump_upload(ctx);
            return;
        }
        let Some(mut pos) = task.sending else {
            return;
        };
        let kind = match &task.op {
            Op::Hostile { kind, .. } => Some(*kind),
            _ => None,
        };
        let size = task.data.len();
        let stop_at = if kind == Some(HostileKind::SizeLieUnder) {
            size - 1
        } else {
            size
        };
        let now = ctx.now;
        loop {
            if !ctx.link(id).has_room(Dir::ToServer) {
                self.blocked_since.get_or_insert(now);
                break;
            }
            self.blocked_since = None;
            if pos >= stop_at {
                task.sending = None;
                let mut out = Vec::new();
                match kind {
                    Some(HostileKind::SizeLieOver) => {
                        Frame::Data { len: 2 }.encode(&mut out);
                        out.extend_from_slice(b"!!");
                    }
                    Some(HostileKind::SizeLieUnder) => {
                        Frame::Done {
                            digest: task.digest,
                        }
                        .encode(&mut out);
                    }
                    Some(HostileKind::WrongDigest) => {
                        let mut digest = task.digest;
                        digest.0[0] ^= 0x80;
                        let _ = cc.finish_upload(digest);
                    }
                    _ => {
                        task.maybe_done = true;
                        let _ = cc.finish_upload(task.digest);
                    }
                }
                cc.poll_transmit(&mut out);
                ctx.link(id).write(Dir::ToServer, now, &out);
                break;
            }
            let end = stop_at.min(pos + self.chunk);
            if let Err(error) = cc.send_file_data(&task.data[pos..end]) {
                let step = self.step as u32;
                ctx.breach(Breach::at(
                    ctx.seed,
                    self.id,
                    step,
                    format!("client machine refused upload data: {error}"),
                ));
                task.sending = None;
                break;
            }
            let mut out = Vec::new();
            cc.poll_transmit(&mut out);
            out.extend_from_slice(&task.data[pos..end]);
            ctx.link(id).write(Dir::ToServer, now, &out);
            ctx.summary.bytes_moved += (end - pos) as u64;
            pos = end;
            task.sending = Some(pos);
        }
    }
}
