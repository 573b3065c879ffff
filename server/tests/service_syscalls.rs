//! The system-call filter of `dist/ferryd.service` allows every call ferryd makes: ferryd runs
//! under `strace` through a first start (self-signed certificate made), uploads, downloads, a
//! listing, a removal and a SIGTERM shutdown, and each call traced must pass the unit's
//! `SystemCallFilter=` lines as `systemd-analyze syscall-filter` expands their groups. A call
//! the filter refused would fail with EPERM (`SystemCallErrorNumber=`) only once installed.
//! Calls of paths not run here (the object store's HTTP client) are not covered.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use ferry_protocol::ClientEvent;

use crate::support::{Client, data};
use ferry_testkit::tools;

/// The unit's filter: calls allowed, then calls denied among them.
fn unit_filter() -> (BTreeSet<String>, BTreeSet<String>) {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/ferryd.service");
    let text = std::fs::read_to_string(unit).unwrap();
    let (mut allowed, mut denied) = (BTreeSet::new(), BTreeSet::new());
    for value in text
        .lines()
        .filter_map(|line| line.strip_prefix("SystemCallFilter="))
    {
        let (set, names) = match value.strip_prefix('~') {
            Some(names) => (&mut denied, names),
            None => (&mut allowed, value),
        };
        for name in names.split_whitespace() {
            expand(name, set);
        }
    }
    assert!(
        allowed.contains("read") && denied.contains("setuid"),
        "{allowed:?}"
    );
    (allowed, denied)
}

/// Adds the calls `name` stands for (a call, or a `@group` as systemd defines it) to `set`.
fn expand(name: &str, set: &mut BTreeSet<String>) {
    if !name.starts_with('@') {
        set.insert(name.to_owned());
        return;
    }
    let output = Command::new("systemd-analyze")
        .args(["syscall-filter", name])
        .output()
        .unwrap();
    assert!(output.status.success(), "no group {name}");
    let text = String::from_utf8(output.stdout).unwrap();
    for member in text
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
    {
        expand(member, set);
    }
}

/// Starts `ferryd ARGS` under strace, writing the trace to `trace`; returns it and its address.
fn traced_ferryd(trace: &Path, args: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(trace)
        .arg(env!("CARGO_BIN_EXE_ferryd"))
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
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
    (child, addr)
}

/// SIGTERM to ferryd (what systemd sends), then waits for strace to report a clean exit.
fn stop(mut child: Child) {
    // ferryd is strace's only child; a signal to strace itself would only detach it.
    let children = format!("/proc/{0}/task/{0}/children", child.id());
    let ferryd: i32 = std::fs::read_to_string(children)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pid = rustix::process::Pid::from_raw(ferryd).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    // strace exits with its tracee's status.
    assert!(child.wait().unwrap().success());
}

/// The names of the calls in an strace log (`PID name(args) = result` lines).
fn traced_calls(trace: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(trace)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let call = line.split_once(' ')?.1.trim_start();
            let name = &call[..call.find('(')?];
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                .then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn the_units_syscall_filter_allows_every_call_ferryd_makes_serving() {
    if !tools::have("strace", "the unit's system-call filter against ferryd")
        || !tools::have("systemd-analyze", "the unit's system-call filter")
    {
        return;
    }
    let (allowed, denied) = unit_filter();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let root = root.to_str().unwrap();

    // A first start with TLS: the self-signed certificate and key are made and synced.
    let tls_trace = dir.path().join("tls.trace");
    let (child, _) = traced_ferryd(&tls_trace, &["--root", root]);
    stop(child);

    // Transfers, over plaintext (TLS adds only computation on the same reads and writes).
    let serve_trace = dir.path().join("serve.trace");
    let (child, addr) = traced_ferryd(&serve_trace, &["--root", root, "--insecure"]);
    let body = data(3 << 20, 5);
    let mut client = Client::connect(addr);
    client.put_new("a/big", &body);
    assert_eq!(client.get("a/big").unwrap(), body);
    assert_eq!(client.names(), ["a/big"]);
    assert_eq!(client.remove("a/big"), ClientEvent::Removed);
    drop(client);
    stop(child);

    let mut calls = traced_calls(&tls_trace);
    calls.extend(traced_calls(&serve_trace));
    for expected in ["accept4", "fsync", "renameat2", "getrandom"] {
        assert!(
            calls.contains(expected),
            "the trace lacks {expected}: {calls:?}"
        );
    }
    let refused: Vec<&String> = calls
        .iter()
        .filter(|call| !allowed.contains(*call) || denied.contains(*call))
        .collect();
    assert!(
        refused.is_empty(),
        "ferryd.service's SystemCallFilter would refuse {refused:?}"
    );
}
