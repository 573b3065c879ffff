//! The one log line written per finished transfer. Names and sizes only, never file contents.

use std::net::SocketAddr;
use std::time::Instant;

use crate::metrics::Metrics;

/// Which way a transfer went.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Put,
    Get,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
        }
    }
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
    /// Logs it as finished with `outcome` (see [`finished`]).
    pub(crate) fn finished(&self, metrics: &Metrics, peer: SocketAddr, outcome: &str) {
        finished(
            metrics,
            peer,
            self.op,
            &self.name,
            self.bytes,
            self.started,
            outcome,
        );
    }
}

/// Logs a finished transfer: peer, operation, name, bytes moved in this session, duration,
/// rate and outcome. Successes are `info`, everything else `warn`. Counts it in `metrics`.
pub(crate) fn finished(
    metrics: &Metrics,
    peer: SocketAddr,
    op: Op,
    name: &str,
    bytes: u64,
    started: Instant,
    outcome: &str,
) {
    let elapsed = started.elapsed();
    metrics.handle_transfer(op.as_str(), outcome, bytes, elapsed);
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        format!("{:.1} MiB/s", bytes as f64 / secs / (1024.0 * 1024.0))
    } else {
        "-".to_owned()
    };
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    if outcome == "ok" {
        tracing::info!(%peer, op = op.as_str(), name, bytes, duration_ms, rate, outcome, "transfer finished");
    } else {
        tracing::warn!(%peer, op = op.as_str(), name, bytes, duration_ms, rate, outcome, "transfer finished");
    }
}
