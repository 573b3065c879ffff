//! `ferryd` as a child process, for tests that kill it or read its command line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Instant;

use ferry_server::S3Config;

use super::PATIENCE;

/// The environment that gives a child `ferryd` the keys of `store`.
pub fn s3_env(store: &S3Config) -> [(&'static str, &str); 3] {
    [
        ("AWS_ACCESS_KEY_ID", store.access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", store.secret_key.as_str()),
        ("AWS_REGION", store.region.as_str()),
    ]
}

/// A `ferryd` child process; killed when dropped.
pub struct Ferryd {
    pub child: Child,
    pub addr: SocketAddr,
    /// The node's own folder when the test did not give one.
    _dir: Option<tempfile::TempDir>,
}

impl Ferryd {
    pub fn start(root: &Path, extra: &[&str]) -> Ferryd {
        Self::start_with(root, extra, &[])
    }

    /// Starts one over the bucket prefix of `store`, its keys in the environment.
    pub fn over(store: &S3Config, extra: &[&str]) -> Ferryd {
        let dir = tempfile::tempdir().unwrap();
        let location = format!("s3://{}/{}", store.bucket, store.prefix);
        let mut args = vec!["--store", &location, "--s3-endpoint", &store.endpoint];
        args.extend_from_slice(extra);
        let mut node = Self::start_with(dir.path(), &args, &s3_env(store));
        node._dir = Some(dir);
        node
    }

    /// Starts one whose stderr (its logs) the test reads from `child.stderr`.
    pub fn start_piping_stderr(root: &Path, extra: &[&str]) -> Ferryd {
        Self::spawn(root, extra, &[], Stdio::piped())
    }

    pub fn start_with(root: &Path, extra: &[&str], env: &[(&str, &str)]) -> Ferryd {
        Self::spawn(root, extra, env, Stdio::inherit())
    }

    fn spawn(root: &Path, extra: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Ferryd {
        // Quiet unless the test asks for its own level.
        let level: &[&str] = if extra.contains(&"--log-level") {
            &[]
        } else {
            &["--log-level", "warn"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferryd"))
            .envs(env.iter().copied())
            .arg("--root")
            .arg(root)
            .args(["--listen", "127.0.0.1:0", "--insecure"])
            .args(level)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("ferryd listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Ferryd {
            child,
            addr,
            _dir: None,
        }
    }

    /// SIGKILL: no chance to checkpoint, flush or clean up.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Ferryd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ferryd {
    /// Waits for the process to end by itself (a crash point), failing the test after
    /// [`PATIENCE`]; returns how it ended.
    pub fn wait_for_exit(mut self) -> ExitStatus {
        let end = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < end, "ferryd did not exit");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
