//! `ferryd --config FILE` and `ferryd check-config FILE`, run as the real binary: the file's
//! settings take effect, flags and environment variables override them, and a bad file stops
//! ferryd with its line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use ferry_protocol::{ClientEvent, ErrorCode};

use crate::support::{Client, data, tag};

/// A ferryd child started with exactly `args` and `env` (nothing inherited); killed on drop.
struct Started {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ferryd(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferryd"));
    command.env_clear().envs(env.iter().copied()).args(args);
    command
}

/// Starts ferryd and reads the address from its first line.
fn start(args: &[&str], env: &[(&str, &str)]) -> Started {
    let mut child = ferryd(args, env)
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
        .unwrap_or_else(|| panic!("ferryd did not start: first line {line:?}"))
        .parse()
        .unwrap();
    Started { child, addr }
}

/// Runs ferryd to its end (for runs expected to stop at once).
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    ferryd(args, env).stdin(Stdio::null()).output().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether the server at `addr` accepts an upload of 2 000 bytes (else it answered `TooLarge`).
fn accepts_2000_bytes(addr: SocketAddr) -> bool {
    let mut client = Client::connect(addr);
    match client.put_request("probe", 2000, true, false, tag(1)) {
        ClientEvent::PutReady { .. } => {
            client.send_data(&data(2000, 1));
            true
        }
        ClientEvent::Refused { code, .. } => {
            assert_eq!(code, ErrorCode::TooLarge);
            false
        }
        other => panic!("unexpected answer {other:?}"),
    }
}

#[test]
fn config_file_settings_apply_and_environment_then_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let config = write(
        dir.path(),
        "ferryd.toml",
        &format!(
            "# a test config\nroot = {:?}\nlisten = \"127.0.0.1:0\"\ninsecure = true\n\
             max-file-size = \"1000\"\nlog-level = \"warn\"\n",
            root.to_str().unwrap()
        ),
    );
    let config = config.to_str().unwrap();

    // The file alone: its listen, root, insecure and 1000-byte limit are in force.
    let server = start(&["--config", config], &[]);
    assert!(!accepts_2000_bytes(server.addr), "the file's limit applies");
    assert!(root.is_dir(), "the file's root is used");
    drop(server);

    // The environment beats the file.
    let server = start(&["--config", config], &[("FERRY_MAX_FILE_SIZE", "4K")]);
    assert!(
        accepts_2000_bytes(server.addr),
        "the environment overrides the file"
    );
    drop(server);

    // A flag beats the environment.
    let server = start(
        &["--config", config, "--max-file-size", "1000"],
        &[("FERRY_MAX_FILE_SIZE", "4K")],
    );
    assert!(
        !accepts_2000_bytes(server.addr),
        "a flag overrides the environment"
    );
    drop(server);

    // The config file itself may come from the environment.
    let server = start(&[], &[("FERRY_CONFIG", config)]);
    assert!(
        !accepts_2000_bytes(server.addr),
        "FERRY_CONFIG names the file"
    );
}

#[test]
fn unknown_key_stops_ferryd_naming_the_key_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "ferryd.toml",
        "listen = \"127.0.0.1:0\"\n\n# the colour of the logs\ncolour = \"red\"\n",
    );
    let output = run(&["--config", config.to_str().unwrap()], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:4: unknown key `colour`", config.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("max-file-size"),
        "the known keys are listed: {stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing was started");
}

#[test]
fn check_config_accepts_the_shipped_example_with_a_one_line_summary() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/ferryd.toml");
    let output = run(&["check-config", example.to_str().unwrap()], &[]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("ferryd.toml: ok, "), "{stdout}");
    assert!(stdout.contains("would listen on 0.0.0.0:7070"), "{stdout}");
}

#[test]
fn check_config_refuses_each_kind_of_bad_file_saying_where() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "root = \"/srv\"\nmax_file_size = \"1G\"\n",
            ":2: unknown key `max_file_size`: write it as the flag is spelt, `max-file-size`",
        ),
        (
            "\n\nmax-file-size = \"12 parsecs\"\n",
            ":3: bad value for `max-file-size`: unknown unit \"parsecs\"",
        ),
        ("listen = \"nowhere\"\n", ":1: bad value for `listen`"),
        (
            "insecure = \"yes\"\n",
            ":1: `insecure` takes true or false, not string",
        ),
        (
            "idle-timeout = true\n",
            ":1: `idle-timeout` takes a string or an integer, not boolean",
        ),
        (
            "log-format = \"xml\"\n",
            ":1: bad value for `log-format`: invalid value 'xml'",
        ),
        (
            "config = \"other.toml\"\n",
            ":1: unknown key `config`: a config file cannot name another",
        ),
        (
            "[server]\nlisten = \"0.0.0.0:7070\"\n",
            ":1: unknown key `server`",
        ),
        ("listen = \n", "is not valid TOML"),
        (
            "listen = \"127.0.0.1:1\"\nlisten = \"127.0.0.1:2\"\n",
            "is not valid TOML",
        ),
        (
            "insecure = true\ntls-cert = \"a.pem\"\ntls-key = \"a.key\"\n",
            "do not go together: the argument '--insecure' cannot be used with",
        ),
        ("s3-region = \"eu-west-1\"\n", "do not go together"),
    ];
    for (text, expected) in cases {
        let config = write(dir.path(), "bad.toml", text);
        let output = run(&["check-config", config.to_str().unwrap()], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "accepted {text:?}");
        assert!(output.stdout.is_empty(), "{text:?}: no summary on failure");
        assert!(
            stderr.contains(expected),
            "{text:?}: expected {expected:?} in {stderr}"
        );
    }
}

#[test]
fn check_config_checks_the_files_the_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "ferryd.toml",
        &format!(
            "tokens = {:?}\n",
            dir.path().join("missing-tokens").to_str().unwrap()
        ),
    );
    let output = run(&["check-config", config.to_str().unwrap()], &[]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("missing-tokens"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn check_config_of_a_missing_file_says_it_cannot_read_it() {
    let output = run(&["check-config", "/nonexistent/ferryd.toml"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read the config file /nonexistent/ferryd.toml")
            && stderr.contains("No such file"),
        "{stderr}"
    );
}

#[test]
fn help_states_the_precedence_of_flags_environment_and_config_file() {
    let output = run(&["--help"], &[]);
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("--config <FILE>"), "{help}");
    assert!(help.contains("[env: FERRY_CONFIG=]"), "{help}");
    assert!(
        help.contains("Settings come from, highest first: a flag on the command line, its environment variable"),
        "{help}"
    );
    assert!(
        help.contains("a key of the --config file, the default"),
        "{help}"
    );
}

#[test]
fn tools_run_with_ferry_config_set_for_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "ferryd.toml", "listen = \"127.0.0.1:0\"\n");
    let env = [("FERRY_CONFIG", config.to_str().unwrap())];
    let output = run(&["hash-token", "--generate"], &env);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("sha256:"));
    assert!(run(&["completions", "bash"], &env).status.success());
}
