//! Turning the command line's paths and names into a list of single-file transfers.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ferry_client::sync::Filter;
use ferry_client::{Client, ClientError, display_name};

/// One file to move.
#[derive(Debug, Clone)]
pub struct Job {
    /// The local file.
    pub local: PathBuf,
    /// Its name on the server.
    pub name: String,
}

/// A usage mistake: reported with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The uploads for `ferry put PATH... [--as NAME] [-r]`. With several paths, `--as` must
/// name a folder (`DIR/`): each file and folder goes into it under its own name.
pub fn uploads(
    paths: &[PathBuf],
    as_name: Option<&str>,
    recursive: bool,
    filter: &Filter,
) -> anyhow::Result<Vec<Job>> {
    let several = paths.len() > 1;
    if let Some(name) = as_name
        && several
        && !name.ends_with('/')
    {
        bail!(Usage(format!(
            "--as {name} names one upload; to put several PATHs into one server folder, end it \
             with a slash (--as {name}/)"
        )));
    }
    let mut jobs = Vec::new();
    for path in paths {
        let metadata =
            fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        let base = match as_name {
            // `--as folder/` puts a file into that folder under its own name, and so it does
            // with every file and folder when there are several.
            Some(name) if name.ends_with('/') && (several || !metadata.is_dir()) => {
                format!("{name}{}", base_name(path)?)
            }
            Some(name) => name.trim_end_matches('/').to_owned(),
            None => base_name(path)?,
        };
        if metadata.is_dir() {
            if !recursive {
                bail!(Usage(format!(
                    "{} is a folder; use -r to upload it with its contents",
                    path.display()
                )));
            }
            walk(path, &base, "", filter, &mut jobs)?;
        } else if filter.keeps(&base_name(path)?, false) {
            jobs.push(Job {
                local: path.clone(),
                name: base,
            });
        }
    }
    unique(
        &jobs,
        |job| job.name.clone(),
        |job| job.local.display().to_string(),
        "name on the server",
        "use --as or upload them separately",
    )?;
    Ok(jobs)
}

/// Refuses a plan in which two jobs share a key: they would overwrite each other.
/// `label` says which job is which in the message.
fn unique<K: Eq + std::hash::Hash + std::fmt::Debug>(
    jobs: &[Job],
    key: impl Fn(&Job) -> K,
    label: impl Fn(&Job) -> String,
    what: &str,
    fix: &str,
) -> anyhow::Result<()> {
    let mut seen = HashMap::new();
    for job in jobs {
        if let Some(other) = seen.insert(key(job), job) {
            bail!(Usage(format!(
                "{} and {} would have the same {what} ({:?}); {fix}",
                label(other),
                label(job),
                key(job)
            )));
        }
    }
    Ok(())
}

/// The last component of `path` as a name component (in NFC), resolving `.` and `..` first.
fn base_name(path: &Path) -> anyhow::Result<String> {
    let resolved;
    let path = if path.file_name().is_some() {
        path
    } else {
        resolved = path
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", path.display()))?;
        &resolved
    };
    match path.file_name().and_then(ferry_client::name_from_local) {
        Some(name) => Ok(name),
        None => bail!(Usage(format!(
            "cannot derive a name from {}; give one with --as",
            path.display()
        ))),
    }
}

/// Every regular file under `dir` that `filter` keeps, named `prefix/relative/path` (each
/// component in NFC), in sorted order. `relative` is `dir`'s path in the folder given, which
/// the filter's patterns see; excluded folders are not entered.
fn walk(
    dir: &Path,
    prefix: &str,
    relative: &str,
    filter: &Filter,
    jobs: &mut Vec<Job>,
) -> anyhow::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Some(file_name) = ferry_client::name_from_local(&entry.file_name()) else {
            bail!(Usage(format!(
                "{} is not valid UTF-8; rename it to upload it",
                path.display()
            )));
        };
        let name = format!("{prefix}/{file_name}");
        let inner = if relative.is_empty() {
            file_name.clone()
        } else {
            format!("{relative}/{file_name}")
        };
        let metadata =
            fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if metadata.is_dir() {
            if filter.keeps(&inner, true) {
                walk(&path, &name, &inner, filter, jobs)?;
            }
        } else if metadata.is_file() && filter.keeps(&inner, false) {
            jobs.push(Job { local: path, name });
        }
    }
    Ok(())
}

/// The downloads for `ferry get NAME... [-o DIR]`: each name goes to `DIR/<last component>`.
pub fn downloads(names: &[String], output: &Path) -> anyhow::Result<Vec<Job>> {
    let jobs = names
        .iter()
        .map(|name| {
            ferry_protocol::validate_name(name)
                .map_err(|e| Usage(format!("invalid name {name:?}: {e}")))?;
            let last = name.rsplit('/').next().unwrap_or(name);
            Ok(Job {
                local: output.join(last),
                name: name.clone(),
            })
        })
        .collect::<anyhow::Result<Vec<Job>>>()?;
    unique(
        &jobs,
        |job| job.local.clone(),
        |job| display_name(&job.name).into_owned(),
        "local path",
        "download them into different folders",
    )?;
    Ok(jobs)
}

/// The downloads for `ferry get -r NAME... [-o DIR]`: everything under `NAME/` that `filter`
/// keeps (seeing paths relative to `NAME/`) goes to `DIR/<its whole name>`.
pub fn folder_downloads(
    client: &mut Client,
    names: &[String],
    output: &Path,
    filter: &Filter,
) -> anyhow::Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for name in names {
        let folder = name.trim_end_matches('/');
        let prefix = if folder.is_empty() {
            String::new()
        } else {
            format!("{folder}/")
        };
        let entries = client.list(&prefix)?;
        if entries.is_empty() {
            return Err(ClientError::Refused {
                request: "download",
                code: ferry_client::ErrorCode::NotFound,
                message: format!("no files under {prefix:?}"),
            }
            .into());
        }
        for entry in entries {
            // The server's names become local paths: never outside DIR.
            if let Err(error) = ferry_protocol::validate_name(&entry.name) {
                bail!(
                    "the server listed an unsafe name {:?} ({error}); not downloading it",
                    entry.name
                );
            }
            let relative = entry.name.strip_prefix(&prefix).unwrap_or(&entry.name);
            if !filter.keeps_file(relative) {
                continue;
            }
            jobs.push(Job {
                local: output.join(&entry.name),
                name: entry.name,
            });
        }
    }
    Ok(jobs)
}
