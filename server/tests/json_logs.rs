//! `ferryd --log-format json`: every line on stderr is one JSON object, and each finished
//! transfer is one line carrying the same fields as the text log.

use std::io::Read as _;

use ferry_protocol::ClientEvent;
use serde_json::Value;

use crate::support::ferryd::Ferryd;
use crate::support::{Client, data, tag};

#[test]
fn json_logs_are_one_object_a_line_with_one_line_per_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Ferryd::start_piping_stderr(
        &dir.path().join("root"),
        &["--log-format", "json", "--log-level", "info"],
    );
    let body = data(300_000, 7);
    let mut client = Client::connect(server.addr);
    client.put_new("reports/q1.pdf", &body);
    assert_eq!(client.get("reports/q1.pdf").unwrap(), body);
    assert!(matches!(
        client.put_request("reports/q1.pdf", 5, false, true, tag(2)),
        ClientEvent::Refused { .. }
    ));
    drop(client);

    // SIGTERM: ferryd logs the signal, shuts down and closes stderr.
    let pid = rustix::process::Pid::from_raw(server.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let mut stderr = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(server.child.wait().unwrap().success());

    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    for line in &lines {
        assert!(line.is_object(), "{line}");
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
    assert!(
        lines.iter().any(|line| line["message"]
            .as_str()
            .unwrap()
            .starts_with("signal received")),
        "the shutdown is logged too: {stderr}"
    );

    let transfers: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "transfer finished")
        .collect();
    assert_eq!(
        transfers.len(),
        2,
        "one line per finished transfer: {stderr}"
    );
    for (line, op) in transfers.iter().zip(["put", "get"]) {
        assert_eq!(line["op"], op, "{line}");
        assert_eq!(line["name"], "reports/q1.pdf", "{line}");
        assert_eq!(line["bytes"], body.len() as u64, "{line}");
        assert_eq!(line["outcome"], "ok", "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
        assert!(
            line["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{line}"
        );
        assert!(line["duration_ms"].is_u64(), "{line}");
        assert!(line["rate"].is_string(), "{line}");
    }
}

#[test]
fn an_error_that_stops_ferryd_is_a_json_line_too() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .arg("--root")
        .arg(dir.path())
        .args(["--insecure", "--log-format", "json", "--listen", &addr])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let last: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert_eq!(last["message"], "ferryd stopped", "{stderr}");
    let error = last["error"].as_str().unwrap();
    assert!(error.contains(&format!("starting on {addr}")), "{error}");
    for line in stderr.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
    }
}
