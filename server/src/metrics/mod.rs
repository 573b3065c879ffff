//! What the server counts for Prometheus: connections, bytes, finished transfers, staging and
//! store calls, kept in a `prometheus-client` registry and encoded by it in the text format
//! (see `scrape` for the listener that serves the page).
//!
//! Every server has its own [`Metrics`], served or not: counting costs a few atomic additions
//! per event. Labels come from fixed lists (a refusal's reason, a transfer's operation and
//! outcome, a store call's name), never from a file name or an address, so the number of
//! series stays bounded whatever clients do.

use std::fmt;
use std::time::Duration;

use ferry_protocol::ErrorCode;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::transfer_log::Ending;

pub(crate) mod scrape;

/// A metric's labels: names and values from fixed lists.
type Labels = Vec<(&'static str, &'static str)>;

/// A family of histograms sharing one set of buckets.
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Why a connection was refused before it was served.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    /// The server was at its connection limit.
    Busy,
    /// A plaintext ferry client reached a server that requires TLS.
    PlaintextOnTls,
    /// The client's access token matched no line.
    WrongToken,
    /// The client's address (or all clients) made too many wrong guesses: not checked.
    TooManyGuesses,
    /// The server was shutting down.
    ShuttingDown,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::Busy => "busy",
            Refusal::PlaintextOnTls => "plaintext-on-tls",
            Refusal::WrongToken => "wrong-token",
            Refusal::TooManyGuesses => "too-many-guesses",
            Refusal::ShuttingDown => "shutting-down",
        }
    }
}

/// One server's counters, gauges and histograms, and the registry that encodes them.
pub(crate) struct Metrics {
    registry: Registry,
    connections_accepted: Counter,
    connections_open: Gauge,
    connections_refused: Family<Labels, Counter>,
    received: Counter,
    sent: Counter,
    transfers: Family<Labels, Counter>,
    transfer_duration: Histograms,
    transfer_size: Histograms,
    staging: Gauge,
    store_duration: Histograms,
    store_errors: Family<Labels, Counter>,
    tls_failed: Counter,
}

/// Transfer durations: 10 ms to about 3 h, in steps of 4×.
fn duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 4.0, 10))
}

/// Transfer sizes: 1 KiB to 1 TiB, in steps of 4× (the largest bucket is the default file limit).
fn size_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1024.0, 4.0, 16))
}

/// Store calls: 100 µs to about 26 s, in steps of 4×.
fn store_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

impl Default for Metrics {
    fn default() -> Metrics {
        let metrics = Metrics {
            registry: Registry::with_prefix("ferry"),
            connections_accepted: Counter::default(),
            connections_open: Gauge::default(),
            connections_refused: Family::default(),
            received: Counter::default(),
            sent: Counter::default(),
            transfers: Family::default(),
            transfer_duration: Family::new_with_constructor(duration_buckets),
            transfer_size: Family::new_with_constructor(size_buckets),
            staging: Gauge::default(),
            store_duration: Family::new_with_constructor(store_buckets),
            store_errors: Family::default(),
            tls_failed: Counter::default(),
        };
        metrics.registered()
    }
}

impl Metrics {
    /// Registers every metric (the registry keeps handles sharing the same values).
    fn registered(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "connections_accepted",
            "Connections taken under the connection limit and served",
            self.connections_accepted.clone(),
        );
        r.register(
            "connections_open",
            "Connections being served now",
            self.connections_open.clone(),
        );
        r.register(
            "connections_refused",
            "Connections refused before being served or at their HELLO, by reason",
            self.connections_refused.clone(),
        );
        r.register_with_unit(
            "received",
            "Bytes read from clients' connections (protocol frames, after TLS)",
            Unit::Bytes,
            self.received.clone(),
        );
        r.register_with_unit(
            "sent",
            "Bytes written to clients' connections (protocol frames, before TLS)",
            Unit::Bytes,
            self.sent.clone(),
        );
        r.register(
            "transfers",
            "Transfers finished, by operation and outcome",
            self.transfers.clone(),
        );
        r.register_with_unit(
            "transfer_duration",
            "Duration of finished transfers, by operation",
            Unit::Seconds,
            self.transfer_duration.clone(),
        );
        r.register_with_unit(
            "transfer_size",
            "File bytes moved by finished transfers in their session, by operation",
            Unit::Bytes,
            self.transfer_size.clone(),
        );
        r.register_with_unit(
            "staging",
            "Bytes written to staging by the uploads under way (not counting partial uploads \
             left to resume)",
            Unit::Bytes,
            self.staging.clone(),
        );
        r.register_with_unit(
            "store_call_duration",
            "Duration of calls to the store (folder or S3), by call",
            Unit::Seconds,
            self.store_duration.clone(),
        );
        r.register(
            "store_errors",
            "Store calls that failed, by call",
            self.store_errors.clone(),
        );
        r.register(
            "tls_handshakes_failed",
            "TLS connections that ended before their handshake completed",
            self.tls_failed.clone(),
        );
        self
    }

    /// A connection was taken under the limit; [`Metrics::handle_connection_closed`] follows.
    pub(crate) fn handle_connection_opened(&self) {
        self.connections_accepted.inc();
        self.connections_open.inc();
    }

    /// A connection taken under the limit ended.
    pub(crate) fn handle_connection_closed(&self) {
        self.connections_open.dec();
    }

    /// A connection was refused before being served, or at its `HELLO`.
    pub(crate) fn handle_refused(&self, why: Refusal) {
        self.connections_refused
            .get_or_create(&vec![("reason", why.label())])
            .inc();
    }

    /// `bytes` came in from a client.
    pub(crate) fn handle_received(&self, bytes: usize) {
        self.received.inc_by(bytes as u64);
    }

    /// `bytes` went out to a client.
    pub(crate) fn handle_sent(&self, bytes: usize) {
        self.sent.inc_by(bytes as u64);
    }

    /// A transfer finished: `op` is `put` or `get`.
    pub(crate) fn handle_transfer(
        &self,
        op: &'static str,
        ending: Ending,
        bytes: u64,
        took: Duration,
    ) {
        let outcome = outcome_label(ending);
        self.transfers
            .get_or_create(&vec![("op", op), ("outcome", outcome)])
            .inc();
        let op = vec![("op", op)];
        self.transfer_duration
            .get_or_create(&op)
            .observe(took.as_secs_f64());
        self.transfer_size.get_or_create(&op).observe(bytes as f64);
    }

    /// An upload under way wrote `bytes` to staging.
    pub(crate) fn handle_staged(&self, bytes: u64) {
        self.staging
            .inc_by(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// An upload left staging (committed, suspended or discarded) with `bytes` written.
    pub(crate) fn handle_unstaged(&self, bytes: u64) {
        self.staging
            .dec_by(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// A store call named `call` took `took`, and failed if `failed`.
    pub(crate) fn handle_store_call(&self, call: &'static str, took: Duration, failed: bool) {
        let call = vec![("call", call)];
        self.store_duration
            .get_or_create(&call)
            .observe(took.as_secs_f64());
        if failed {
            self.store_errors.get_or_create(&call).inc();
        }
    }

    /// A TLS connection ended before its handshake completed.
    pub(crate) fn handle_tls_failed(&self) {
        self.tls_failed.inc();
    }

    /// The page: every metric in the OpenMetrics text format.
    pub(crate) fn poll_page(&self) -> String {
        let mut page = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut page, &self.registry);
        page
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The `outcome` label of a transfer's ending: `ok`, `interrupted`, or the error code's name
/// in snake case (`other` for a code this server does not know by name).
fn outcome_label(ending: Ending) -> &'static str {
    let code = match ending {
        Ending::Ok => return "ok",
        Ending::Interrupted => return "interrupted",
        Ending::Failed(code) => code,
    };
    match code {
        ErrorCode::BadName => "bad_name",
        ErrorCode::AlreadyExists => "already_exists",
        ErrorCode::TooLarge => "too_large",
        ErrorCode::OverQuota => "over_quota",
        ErrorCode::DiskFull => "disk_full",
        ErrorCode::Busy => "busy",
        ErrorCode::NotAuthorised => "not_authorised",
        ErrorCode::UnsupportedVersion => "unsupported_version",
        ErrorCode::NotFound => "not_found",
        ErrorCode::InProgress => "in_progress",
        ErrorCode::DigestMismatch => "digest_mismatch",
        ErrorCode::SizeMismatch => "size_mismatch",
        ErrorCode::MalformedFrame => "malformed_frame",
        ErrorCode::UnexpectedFrame => "unexpected_frame",
        ErrorCode::Timeout => "timeout",
        ErrorCode::StorageError => "storage_error",
        ErrorCode::ShuttingDown => "shutting_down",
        ErrorCode::Forbidden => "forbidden",
        ErrorCode::NotFerry => "not_ferry",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_labels_name_the_error_code() {
        assert_eq!(outcome_label(Ending::Ok), "ok");
        assert_eq!(outcome_label(Ending::Interrupted), "interrupted");
        let failed = |code| outcome_label(Ending::Failed(code));
        assert_eq!(failed(ErrorCode::DiskFull), "disk_full");
        assert_eq!(failed(ErrorCode::DigestMismatch), "digest_mismatch");
        assert_eq!(failed(ErrorCode::Other(4242)), "other");
    }

    #[test]
    fn page_names_carry_units_and_total_suffixes() {
        let metrics = Metrics::default();
        metrics.handle_refused(Refusal::Busy);
        metrics.handle_received(10);
        metrics.handle_transfer("put", Ending::Ok, 10, Duration::from_millis(5));
        let page = metrics.poll_page();
        assert!(page.contains("ferry_connections_refused_total{reason=\"busy\"} 1"));
        assert!(page.contains("ferry_received_bytes_total 10"));
        assert!(page.contains("ferry_transfers_total{op=\"put\",outcome=\"ok\"} 1"));
        assert!(page.contains("ferry_transfer_size_bytes_sum{op=\"put\"} 10.0"));
    }
}
