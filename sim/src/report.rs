//! What a run found: breaches of ferry's promises, and the summary table.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// A broken promise: the run fails if it finds any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Breach {
    /// Seed of the run (rerun it with this seed to reproduce the breach).
    pub seed: u64,
    /// Client concerned, if one is.
    pub client: Option<u32>,
    /// Step of that client's plan, if one is.
    pub step: Option<u32>,
    /// What went wrong.
    pub what: String,
    /// First byte at which stored or downloaded data differs from its source, if that is the
    /// breach.
    pub first_difference: Option<u64>,
}

impl Breach {
    /// A breach not tied to a client.
    pub fn global(seed: u64, what: impl Into<String>) -> Self {
        Breach {
            seed,
            client: None,
            step: None,
            what: what.into(),
            first_difference: None,
        }
    }

    /// A breach found while `client` was at `step`.
    pub fn at(seed: u64, client: u32, step: u32, what: impl Into<String>) -> Self {
        Breach {
            seed,
            client: Some(client),
            step: Some(step),
            what: what.into(),
            first_difference: None,
        }
    }

    /// The same breach, with the first differing byte.
    pub fn differing_at(mut self, offset: u64) -> Self {
        self.first_difference = Some(offset);
        self
    }
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BREACH seed={}", self.seed)?;
        if let Some(client) = self.client {
            write!(f, " client={client}")?;
        }
        if let Some(step) = self.step {
            write!(f, " step={step}")?;
        }
        if let Some(offset) = self.first_difference {
            write!(f, " first_differing_byte={offset}")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// Counters and measurements of one run (or of many deterministic seeds added together).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// `"deterministic"` or `"sockets"`.
    pub mode: String,
    /// Seed of the run (the first seed, for many).
    pub seed: u64,
    /// Seeds run.
    pub seeds: u64,
    /// Clients, hostile ones included.
    pub clients: u64,
    /// Hostile clients among them.
    pub hostile_clients: u64,
    /// Operations completed (each plan step once, whatever it took).
    pub operations: u64,
    /// File bytes moved over the network, both directions, resends included.
    pub bytes_moved: u64,
    /// Faults injected, by kind (network faults and hostile behaviours).
    pub faults: BTreeMap<String, u64>,
    /// Operations that ended in the error the plan expected (refusals, hostile answers).
    pub expected_failures: u64,
    /// Operations that ended in an error nobody expected: each is also a breach.
    pub unexpected_failures: u64,
    /// Times a client reconnected and resumed or retried a step after a fault.
    pub resumes: u64,
    /// Transfers that continued from a byte past 0 after an interruption (not from scratch).
    pub resumed_mid_file: u64,
    /// Deterministic mode: windows of pipelined uploads (the client library's `EagerWindow`,
    /// one per connection of an upload batch) that got at least one answer.
    pub windows: u64,
    /// Of those, windows that had sent two uploads or more before their first answer came
    /// back: more than one operation in one round trip.
    pub windows_pipelined: u64,
    /// Uploads the windows had sent before their first answer, all windows together (divided
    /// by `windows`: the operations per round trip at the start of a window).
    pub window_requests_before_answer: u64,
    /// Most uploads one window had in flight at once (sent, not yet answered).
    pub requests_in_flight_max: u64,
    /// Windows whose connection was lost (a cut, a stall, a server crash) with uploads in
    /// flight, each then settled one by one.
    pub windows_interrupted: u64,
    /// Answers inside windows that were refusals (a name that exists, a server restarting):
    /// the file settled one by one, or its outcome.
    pub window_refusals: u64,
    /// Socket mode: where the servers kept files (`temporary folder`, `folder PATH`, an
    /// `s3://` location, or a private SeaweedFS); empty in the deterministic mode.
    pub store: String,
    /// Socket mode: servers (nodes) behind the balancer, over the one store; 0 in the
    /// deterministic mode.
    pub nodes: u64,
    /// Socket mode: connections the balancer gave each node, in node order.
    pub node_connections: Vec<u64>,
    /// Socket mode: uploads acknowledged by another node than the one they began on, after
    /// the client library retried them on a new connection.
    pub uploads_retried_on_other_node: u64,
    /// Socket mode: of those, uploads that went on from a byte past 0 on the other node (a
    /// partial upload shared through the store).
    pub uploads_resumed_on_other_node: u64,
    /// Socket mode: the run's files the nodes listed after the run.
    pub files_listed: u64,
    /// Socket mode: files downloaded after the run and compared byte for byte with what
    /// was uploaded.
    pub files_checked: u64,
    /// Run time in seconds (virtual time in the deterministic mode).
    pub elapsed_secs: f64,
    /// File bytes moved per second of run time, in MiB/s.
    pub throughput_mib_s: f64,
    /// Median time of a transfer (upload or download step), in milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile of the same, in milliseconds.
    pub latency_p99_ms: f64,
    /// Every breach found; empty on a passing run.
    pub breaches: Vec<Breach>,
    /// Transfer times in microseconds, for the percentiles; not reported.
    #[serde(skip)]
    pub transfer_micros: Vec<u64>,
}

impl Summary {
    /// Counts one fault of `kind`.
    pub fn count_fault(&mut self, kind: &str) {
        *self.faults.entry(kind.to_owned()).or_default() += 1;
    }

    /// Adds another run's counters to this one.
    pub fn absorb(&mut self, other: Summary) {
        self.seeds += other.seeds;
        self.clients += other.clients;
        self.hostile_clients += other.hostile_clients;
        self.operations += other.operations;
        self.bytes_moved += other.bytes_moved;
        for (kind, n) in other.faults {
            *self.faults.entry(kind).or_default() += n;
        }
        self.expected_failures += other.expected_failures;
        self.unexpected_failures += other.unexpected_failures;
        self.resumes += other.resumes;
        self.resumed_mid_file += other.resumed_mid_file;
        self.windows += other.windows;
        self.windows_pipelined += other.windows_pipelined;
        self.window_requests_before_answer += other.window_requests_before_answer;
        self.requests_in_flight_max = self
            .requests_in_flight_max
            .max(other.requests_in_flight_max);
        self.windows_interrupted += other.windows_interrupted;
        self.window_refusals += other.window_refusals;
        self.uploads_retried_on_other_node += other.uploads_retried_on_other_node;
        self.uploads_resumed_on_other_node += other.uploads_resumed_on_other_node;
        self.files_listed += other.files_listed;
        self.files_checked += other.files_checked;
        self.elapsed_secs += other.elapsed_secs;
        self.breaches.extend(other.breaches);
        self.transfer_micros.extend(other.transfer_micros);
    }

    /// Computes throughput and latency percentiles from the raw counters.
    pub fn finish(&mut self) {
        if self.elapsed_secs > 0.0 {
            self.throughput_mib_s = self.bytes_moved as f64 / (1024.0 * 1024.0) / self.elapsed_secs;
        }
        self.transfer_micros.sort_unstable();
        self.latency_p50_ms = percentile(&self.transfer_micros, 50.0) / 1000.0;
        self.latency_p99_ms = percentile(&self.transfer_micros, 99.0) / 1000.0;
    }

    /// Whether the run kept every promise.
    pub fn passed(&self) -> bool {
        self.breaches.is_empty() && self.unexpected_failures == 0
    }

    /// The socket mode's rows about the servers: store, nodes and each node's connections.
    fn store_rows(&self) -> Vec<(String, String)> {
        let per_node: Vec<String> = self.node_connections.iter().map(u64::to_string).collect();
        vec![
            ("store".into(), self.store.clone()),
            ("nodes".into(), self.nodes.to_string()),
            (
                "connections per node".into(),
                format!("{} (round robin)", per_node.join(", ")),
            ),
        ]
    }

    /// Uploads out per window before its first answer, on average.
    pub fn requests_per_round_trip(&self) -> f64 {
        if self.windows == 0 {
            return 0.0;
        }
        self.window_requests_before_answer as f64 / self.windows as f64
    }

    /// The deterministic mode's rows about pipelined windows.
    fn window_rows(&self) -> Vec<(String, String)> {
        vec![
            (
                "pipelined windows".into(),
                format!(
                    "{} ({} with 2+ uploads out before the first answer)",
                    self.windows, self.windows_pipelined
                ),
            ),
            (
                "  uploads per round trip".into(),
                format!(
                    "{:.2} before the first answer (most in flight: {})",
                    self.requests_per_round_trip(),
                    self.requests_in_flight_max
                ),
            ),
            (
                "  interrupted, refusals".into(),
                format!(
                    "{} windows lost their connection, {} answers were refusals",
                    self.windows_interrupted, self.window_refusals
                ),
            ),
        ]
    }

    /// The summary as a table for people.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            ("mode".into(), self.mode.clone()),
            ("seed".into(), self.seed.to_string()),
        ];
        if self.seeds > 1 {
            rows.push(("seeds".into(), self.seeds.to_string()));
        }
        if self.nodes > 0 {
            rows.extend(self.store_rows());
        }
        rows.extend([
            (
                "clients".into(),
                format!("{} ({} hostile)", self.clients, self.hostile_clients),
            ),
            ("operations".into(), self.operations.to_string()),
            ("bytes moved".into(), format_bytes(self.bytes_moved)),
        ]);
        let total: u64 = self.faults.values().sum();
        rows.push(("faults injected".into(), total.to_string()));
        for (kind, n) in &self.faults {
            rows.push((format!("  {kind}"), n.to_string()));
        }
        rows.extend([
            ("retries after faults".into(), self.resumes.to_string()),
            (
                "transfers resumed mid-file".into(),
                self.resumed_mid_file.to_string(),
            ),
        ]);
        if self.windows > 0 {
            rows.extend(self.window_rows());
        }
        if self.nodes > 1 {
            rows.push((
                "uploads retried on another node".into(),
                format!(
                    "{} ({} resumed mid-file there)",
                    self.uploads_retried_on_other_node, self.uploads_resumed_on_other_node
                ),
            ));
        }
        if self.nodes > 0 {
            rows.push((
                "files checked after the run".into(),
                format!(
                    "{} of {} listed (every byte)",
                    self.files_checked, self.files_listed
                ),
            ));
        }
        rows.extend([
            (
                "expected failures".into(),
                self.expected_failures.to_string(),
            ),
            (
                "unexpected failures".into(),
                self.unexpected_failures.to_string(),
            ),
            (
                "elapsed".into(),
                format!(
                    "{:.2} s{}",
                    self.elapsed_secs,
                    if self.mode == "deterministic" {
                        " (virtual)"
                    } else {
                        ""
                    }
                ),
            ),
            (
                "throughput".into(),
                format!("{:.2} MiB/s", self.throughput_mib_s),
            ),
            (
                "transfer latency p50".into(),
                format!("{:.1} ms", self.latency_p50_ms),
            ),
            (
                "transfer latency p99".into(),
                format!("{:.1} ms", self.latency_p99_ms),
            ),
            ("breaches".into(), self.breaches.len().to_string()),
            (
                "result".into(),
                if self.passed() { "PASS" } else { "FAIL" }.into(),
            ),
        ]);
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (key, value) in rows {
            out.push_str(&format!("{key:<width$}  {value}\n"));
        }
        out
    }
}

/// The `p`th percentile of sorted values (nearest rank), 0 for none.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

fn format_bytes(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MiB ({n} B)", n as f64 / (1024.0 * 1024.0))
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }

    #[test]
    fn a_breach_fails_the_summary_and_shows_where() {
        let mut summary = Summary::default();
        assert!(summary.passed());
        summary
            .breaches
            .push(Breach::at(9, 2, 3, "stored bytes differ").differing_at(65536));
        assert!(!summary.passed());
        let shown = summary.breaches[0].to_string();
        assert!(shown.contains("seed=9 client=2 step=3 first_differing_byte=65536"));
        assert!(summary.table().contains("FAIL"));
    }
}
