//! The one log line written per finished transfer, and its count in the metrics. Names and
//! sizes only, never file contents.

use std::net::SocketAddr;
use std::time::Instant;

use ferry_protocol::ErrorCode;

use crate::metrics::Metrics;

/// Which way a transfer went.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Put,
    Get,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
        }
    }
}

/// How a transfer ended, in a word from a fixed list (the metrics' `outcome` label); the log
/// line says it in full.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending {
    /// All of it arrived (an upload is stored, a download was sent whole).
    Ok,
    /// It failed with this code (the one the client was sent, or the store's error).
    Failed(ErrorCode),
    /// The connection ended or the server shut down first (an upload stays resumable).
    Interrupted,
}

/// A transfer to log once its outcome is known: what it moved, taken while it was under way.
#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    /// Which way it went.
    pub(crate) op: Op,
    /// The file's name.
    pub(crate) name: String,
    /// Bytes moved in this session.
    pub(crate) bytes: u64,
    /// When this session began.
    pub(crate) started: Instant,
}

impl Transfer {
    /// Logs it as finished with `outcome` (its ending, in full): peer, operation, name, bytes
    /// moved in this session, duration, rate and outcome; successes are `info`, everything else
    /// `warn`. Counts it in `metrics` under `ending`.
    pub(crate) fn finished(
        &self,
        metrics: &Metrics,
        peer: SocketAddr,
        outcome: &str,
        ending: Ending,
    ) {
        let elapsed = self.started.elapsed();
        metrics.handle_transfer(self.op.as_str(), ending, self.bytes, elapsed);
        let secs = elapsed.as_secs_f64();
        let bytes = self.bytes;
        let rate = if secs > 0.0 {
            format!("{:.1} MiB/s", bytes as f64 / secs / (1024.0 * 1024.0))
        } else {
            "-".to_owned()
        };
        let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let (op, name) = (self.op.as_str(), self.name.as_str());
        if outcome == "ok" {
            tracing::info!(%peer, op, name, bytes, duration_ms, rate, outcome, "transfer finished");
        } else {
            tracing::warn!(%peer, op, name, bytes, duration_ms, rate, outcome, "transfer finished");
        }
    }
}
