//! The root as the restarted server shows it: its listing must name exactly the visible files,
//! with their sizes, and a download of each must give exactly the bytes found in the root
//! (checked by the client library against the server's digest too).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use ferry_client::{Client, ClientError, ClientOptions};

use super::rules::{Match, Rule, Violation};
use super::scan::{Identity, RootState};
use crate::sockets::CompareSink;

/// Checks the server at `addr` against the root read in `state`, whose files hold `found`.
/// Files whose identity is in `verified` were downloaded before and are skipped unless `all`;
/// files downloaded intact are added to it.
pub fn check_served(
    addr: SocketAddr,
    options: &ClientOptions,
    state: &RootState,
    found: &BTreeMap<String, Match>,
    verified: &mut HashMap<String, Identity>,
    all: bool,
    when: &str,
) -> Result<Vec<Violation>, ClientError> {
    let mut violations = Vec::new();
    let mut violation = |rule, name: &str, detail: String| {
        violations.push(Violation {
            rule,
            name: name.to_owned(),
            detail,
            when: when.to_owned(),
        });
    };
    let mut client = Client::connect(addr, options.clone())?;
    let listed: BTreeMap<String, u64> = client
        .list("")?
        .into_iter()
        .map(|entry| (entry.name, entry.size))
        .collect();
    for (name, size) in &listed {
        match state.visible.get(name) {
            None => violation(
                Rule::ListingDiffers,
                name,
                format!("listed ({size} bytes) but not in the root"),
            ),
            Some(file) if file.identity.size != *size => violation(
                Rule::ListingDiffers,
                name,
                format!("listed as {size} bytes, {} in the root", file.identity.size),
            ),
            Some(_) => {}
        }
    }
    for (name, file) in &state.visible {
        if !listed.contains_key(name) {
            violation(
                Rule::ListingDiffers,
                name,
                format!("in the root ({} bytes) but not listed", file.identity.size),
            );
            continue;
        }
        let Some(Match::Versions(versions)) = found.get(name) else {
            continue; // Already a violation of its own; nothing to compare with.
        };
        if !all && verified.get(name) == Some(&file.identity) {
            continue;
        }
        let expected = versions.iter().next().copied();
        let mut sink = CompareSink::new(expected);
        match client.get_to(name, &mut sink, &mut |_| {}) {
            Ok(_) => match sink.first_difference() {
                None => {
                    verified.insert(name.clone(), file.identity);
                }
                Some(at) => violation(
                    Rule::ServedDiffers,
                    name,
                    format!("the download differs from the file in the root at byte {at}"),
                ),
            },
            Err(error) if !error.is_transient() => violation(
                Rule::ServedDiffers,
                name,
                format!("the download failed: {error}"),
            ),
            Err(error) => return Err(error),
        }
    }
    Ok(violations)
}
