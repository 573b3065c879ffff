//! Running the `ferry` binary against an in-process `ferry_server`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use ferry_server::{Server, ServerConfig, ServerHandle, TlsIdentity};
use tempfile::TempDir;

/// One certificate for every test server, made once: ports are reused between tests, and a
/// client trusting on first use would rightly refuse a new certificate on an old port.
pub fn identity() -> TlsIdentity {
    static IDENTITY: OnceLock<TlsIdentity> = OnceLock::new();
    IDENTITY
        .get_or_init(|| {
            let state = tempfile::tempdir().unwrap();
            TlsIdentity::load_or_create(&state.path().join("tls")).unwrap()
        })
        .clone()
}

/// The fingerprint of [`identity`], as `ferry --fingerprint` takes it.
pub fn fingerprint() -> String {
    identity().fingerprint().to_string()
}

/// A real server on a fresh storage root, stopped when dropped.
pub struct TestServer {
    /// The running server.
    pub handle: ServerHandle,
    /// Its storage root (kept alive with the server).
    pub root: TempDir,
}

impl TestServer {
    /// Starts a server on a free loopback port.
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    /// Starts a TLS server ([`identity`]) on a free loopback port, its configuration
    /// adjusted by `adjust`.
    pub fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let root = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(root.path());
        config.shutdown_grace = Duration::from_millis(100);
        config.tls = Some(identity());
        adjust(&mut config);
        let handle = Server::start(config).unwrap();
        TestServer { handle, root }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// The stored file `name`, read straight from the storage root.
    pub fn stored(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.root.path().join(name)).unwrap()
    }
}

/// What one run of `ferry` did.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard output as it came (`get -o -` writes a file there).
    pub stdout_bytes: Vec<u8>,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Panics with the output unless the run succeeded.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "ferry failed: stdout {} stderr {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `ferry --server <addr> --fingerprint <the test certificate> <args>` in `dir`.
pub fn ferry(addr: SocketAddr, dir: &Path, args: &[&str]) -> Run {
    ferry_with(addr, dir, &["--fingerprint", &fingerprint()], args)
}

/// Runs `ferry --server <addr> <security> <args>` in `dir`, with no ferry variables from the
/// environment and no config or cache folder but ones inside `dir` (`.ferry-config`,
/// `.ferry-cache`: the user's are never touched).
pub fn ferry_with(addr: SocketAddr, dir: &Path, security: &[&str], args: &[&str]) -> Run {
    let output: Output = ferry_command(addr, dir, security, args).output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stdout_bytes: output.stdout.clone(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The command [`ferry_with`] runs, for a test that spawns it itself (to feed its standard
/// input, or read its standard output as it comes).
pub fn ferry_command(addr: SocketAddr, dir: &Path, security: &[&str], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FERRY_") {
            command.env_remove(name);
        }
    }
    command
        .current_dir(dir)
        .env("FERRY_CONFIG_DIR", dir.join(".ferry-config"))
        .env("FERRY_CACHE_DIR", dir.join(".ferry-cache"))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("HOME")
        .arg("--server")
        .arg(addr.to_string())
        .args(security)
        .args(args);
    command
}

/// Writes `files` (relative path, contents) under `root`.
pub fn write_tree(root: &Path, files: &[(String, Vec<u8>)]) {
    for (path, data) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

/// Every regular file under `root`, as (relative path with `/`, contents), sorted.
pub fn read_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&relative)).unwrap() {
            let entry = entry.unwrap();
            let rel = relative.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                stack.push(rel);
            } else {
                out.push((
                    rel.to_string_lossy().replace('\\', "/"),
                    std::fs::read(entry.path()).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}
