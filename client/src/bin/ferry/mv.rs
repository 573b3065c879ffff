//! `ferry mv OLD NEW`: a stored file, or a folder with everything under it, gets a new name on
//! the server, atomically (nothing is downloaded or sent again).

use ferry_client::{Client, display_name};
use serde::Serialize;

/// What `--json` prints.
#[derive(Serialize)]
struct MoveJson<'a> {
    command: &'static str,
    ok: bool,
    from: &'a str,
    to: &'a str,
    overwrite: bool,
}

/// Moves `from` to `to` on the server and reports it.
pub fn run(
    client: &mut Client,
    from: &str,
    to: &str,
    overwrite: bool,
    json: bool,
    quiet: bool,
) -> anyhow::Result<i32> {
    client.move_file(from, to, overwrite)?;
    if json {
        let document = MoveJson {
            command: "mv",
            ok: true,
            from,
            to,
            overwrite,
        };
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else if !quiet {
        println!("{}", line(from, to));
    }
    Ok(0)
}

/// The plain-text report.
fn line(from: &str, to: &str) -> String {
    format!("moved {} -> {}", display_name(from), display_name(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_escapes_both_names() {
        assert_eq!(line("a\u{202E}b", "c"), r"moved a\u{202e}b -> c");
    }
}
