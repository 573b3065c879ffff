//! `ferry stat NAME`: a stored file's size, modification time and BLAKE3 digest, without
//! downloading it.

use ferry_client::{Client, RemoteFile, display_name, utc_time};
use serde::Serialize;

/// What `--json` prints.
#[derive(Serialize)]
struct StatJson<'a> {
    name: &'a str,
    size: u64,
    modified_ms: u64,
    /// `null` when the server does not know it.
    digest: Option<String>,
}

/// Prints what the server knows of `name`.
pub fn run(client: &mut Client, name: &str, json: bool, quiet: bool) -> anyhow::Result<i32> {
    let file = client.stat(name)?;
    if json {
        let document = StatJson {
            name: &file.name,
            size: file.size,
            modified_ms: file.modified_ms,
            digest: file.digest.map(|d| d.to_hex()),
        };
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else if !quiet {
        print!("{}", lines(&file));
    }
    Ok(0)
}

/// The plain-text report, one `field: value` line each.
fn lines(file: &RemoteFile) -> String {
    let digest = file.digest.map_or_else(
        || "unknown to the server (it keeps no digest for this file)".to_owned(),
        |d| d.to_hex(),
    );
    format!(
        "name:     {}\nsize:     {} bytes\nmodified: {}\nblake3:   {digest}\n",
        display_name(&file.name),
        file.size,
        utc_time(file.modified_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_escapes_the_name_and_says_when_the_digest_is_unknown() {
        let file = RemoteFile {
            name: "a\u{202E}b".into(),
            size: 3,
            modified_ms: 0,
            digest: None,
        };
        let text = lines(&file);
        assert!(text.contains(r"a\u{202e}b"), "{text}");
        assert!(text.contains("size:     3 bytes"), "{text}");
        assert!(text.contains("unknown to the server"), "{text}");
    }
}
