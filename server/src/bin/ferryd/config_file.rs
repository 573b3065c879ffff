//! The `--config` file: TOML whose keys are ferryd's long flags without their dashes
//! (`max-file-size = "500G"`, `insecure = true`).
//!
//! The keys accepted are read off the clap [`Command`] itself, so the file takes exactly the
//! flags and no second list can drift from them. Every value goes through its flag's own value
//! parser, so it is checked as the flag would be, and an error names the file and line. A value
//! is used only when neither the command line nor the flag's environment variable set one
//! (flag > environment > file > default): the file's values are added to the command line as
//! flags, and the whole is parsed again, so clap's `requires` and `conflicts_with` rules hold
//! for the file too.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use toml::Spanned;

/// The one flag that cannot be set in the file it names.
const CONFIG_KEY: &str = "config";

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not TOML (the message gives the line and column).
    #[error("{} is not valid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message.
        message: String,
    },
    /// A key that is not a flag of ferryd.
    #[error(
        "{}:{line}: unknown key `{key}`: {hint}",
        path.display()
    )]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key's line (from 1).
        line: usize,
        /// The key as written.
        key: String,
        /// What to write instead.
        hint: String,
    },
    /// A value of the wrong TOML type, e.g. a number for `insecure`.
    #[error("{}:{line}: `{key}` takes {expected}, not {found}", path.display())]
    WrongType {
        /// The file.
        path: PathBuf,
        /// The value's line (from 1).
        line: usize,
        /// The key.
        key: String,
        /// What the flag takes.
        expected: &'static str,
        /// The TOML type found.
        found: &'static str,
    },
    /// A value the flag itself refuses, e.g. `max-file-size = "12 parsecs"`.
    #[error("{}:{line}: bad value for `{key}`: {message}", path.display())]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The value's line (from 1).
        line: usize,
        /// The key.
        key: String,
        /// The flag's own message.
        message: String,
    },
    /// Settings that do not go together, e.g. `insecure = true` with `tls-cert`.
    #[error(
        "the settings of {} with the command line and environment do not go together: {message}",
        path.display()
    )]
    Combination {
        /// The file.
        path: PathBuf,
        /// clap's message, naming the flags.
        message: String,
    },
}

/// One key of the file, where it was written.
#[derive(Debug)]
struct Entry {
    key: String,
    /// Line of the key (from 1).
    key_line: usize,
    /// Line of the value (from 1).
    value_line: usize,
    value: toml::Value,
}

/// A config file, read and checked against the flags of a [`Command`].
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    /// Each key and the flag arguments it stands for, in the file's order.
    settings: Vec<(String, Vec<OsString>)>,
}

impl ConfigFile {
    /// Reads `path` and checks every key and value against the long flags of `command`.
    pub fn read(path: &Path, command: &Command) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text, command)
    }

    /// Checks `text`, the contents of the file `path`, against the long flags of `command`.
    pub fn parse(path: &Path, text: &str, command: &Command) -> Result<ConfigFile, ConfigError> {
        let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
            toml::from_str(text).map_err(|error| ConfigError::Syntax {
                path: path.to_owned(),
                message: error.to_string().trim_end().to_owned(),
            })?;
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let mut entries: Vec<Entry> = table
            .into_iter()
            .map(|(key, value)| Entry {
                key_line: line_of(key.span().start),
                value_line: line_of(value.span().start),
                key: key.into_inner(),
                value: value.into_inner(),
            })
            .collect();
        entries.sort_by_key(|entry| entry.key_line);

        let keys = file_keys(command);
        let mut settings = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some(arg) = keys.get(entry.key.as_str()) else {
                return Err(ConfigError::UnknownKey {
                    path: path.to_owned(),
                    line: entry.key_line,
                    hint: unknown_key_hint(&entry.key, &keys),
                    key: entry.key,
                });
            };
            let flags = flag_args(path, &entry, arg)?;
            check_value(path, &entry, arg, &flags)?;
            settings.push((entry.key, flags));
        }
        Ok(ConfigFile {
            path: path.to_owned(),
            settings,
        })
    }

    /// The keys the file sets, in its order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.settings.iter().map(|(key, _)| key.as_str())
    }

    /// Parses `argv` with `command`, taking the file's value for every flag that neither
    /// `argv` nor the flag's environment variable sets.
    pub fn merge(&self, command: Command, argv: &[OsString]) -> Result<ArgMatches, ConfigError> {
        let combination = |error: clap::Error| ConfigError::Combination {
            path: self.path.clone(),
            message: clap_message(&error),
        };
        let first = command
            .clone()
            .try_get_matches_from(argv)
            .map_err(combination)?;
        let mut merged = argv.to_vec();
        for (key, flags) in &self.settings {
            let set_elsewhere = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(key.as_str()))
                .and_then(|arg| first.value_source(arg.get_id().as_str()))
                .is_some_and(|source| {
                    matches!(source, ValueSource::CommandLine | ValueSource::EnvVariable)
                });
            if !set_elsewhere {
                merged.extend(flags.iter().cloned());
            }
        }
        command.try_get_matches_from(merged).map_err(combination)
    }
}

/// The flags a file may set, by long name: every flag that takes a value or is a switch, but
/// not `--help`, `--version` or `--config` itself.
fn file_keys(command: &Command) -> BTreeMap<&str, &Arg> {
    command
        .get_arguments()
        .filter(|arg| {
            matches!(
                arg.get_action(),
                ArgAction::Set | ArgAction::Append | ArgAction::SetTrue | ArgAction::SetFalse
            )
        })
        .filter_map(|arg| Some((arg.get_long()?, arg)))
        .filter(|(long, _)| *long != CONFIG_KEY)
        .collect()
}

/// What to say about an unknown key.
fn unknown_key_hint(key: &str, keys: &BTreeMap<&str, &Arg>) -> String {
    let kebab = key.trim_start_matches('-').replace('_', "-");
    if key == CONFIG_KEY {
        "a config file cannot name another; pass --config on the command line".to_owned()
    } else if keys.contains_key(kebab.as_str()) {
        format!("write it as the flag is spelt, `{kebab}`")
    } else {
        format!(
            "the keys are the long flags of `ferryd --help` without their dashes: {}",
            keys.keys().copied().collect::<Vec<_>>().join(", ")
        )
    }
}

/// The command-line arguments standing for `entry`, checking its TOML type.
fn flag_args(path: &Path, entry: &Entry, arg: &Arg) -> Result<Vec<OsString>, ConfigError> {
    let long = arg.get_long().unwrap_or(entry.key.as_str());
    let wrong_type = |expected| ConfigError::WrongType {
        path: path.to_owned(),
        line: entry.value_line,
        key: entry.key.clone(),
        expected,
        found: entry.value.type_str(),
    };
    let one = |value: &toml::Value| match value {
        toml::Value::String(text) => Some(format!("--{long}={text}").into()),
        toml::Value::Integer(number) => Some(format!("--{long}={number}").into()),
        _ => None,
    };
    match (arg.get_action(), &entry.value) {
        (ArgAction::SetTrue, toml::Value::Boolean(on))
        | (ArgAction::SetFalse, toml::Value::Boolean(on)) => {
            let wants_flag = *on == matches!(arg.get_action(), ArgAction::SetTrue);
            Ok(if wants_flag {
                vec![format!("--{long}").into()]
            } else {
                Vec::new()
            })
        }
        (ArgAction::SetTrue | ArgAction::SetFalse, _) => Err(wrong_type("true or false")),
        (ArgAction::Append, toml::Value::Array(values)) => values
            .iter()
            .map(|value| one(value).ok_or_else(|| wrong_type("a list of strings or integers")))
            .collect(),
        (_, value) => one(value)
            .map(|flag| vec![flag])
            .ok_or_else(|| wrong_type("a string or an integer")),
    }
}

/// Runs `flags` through `arg`'s own value parser, alone, so that a bad value is reported at
/// its line (relations between flags are checked later, by [`ConfigFile::merge`]).
fn check_value(
    path: &Path,
    entry: &Entry,
    arg: &Arg,
    flags: &[OsString],
) -> Result<(), ConfigError> {
    let Some(long) = arg.get_long() else {
        return Ok(());
    };
    let alone = Command::new("ferryd").arg(
        Arg::new(long.to_owned())
            .long(long.to_owned())
            .action(arg.get_action().clone())
            .value_parser(arg.get_value_parser().clone()),
    );
    let argv = std::iter::once(OsString::from("ferryd")).chain(flags.iter().cloned());
    alone
        .try_get_matches_from(argv)
        .map(drop)
        .map_err(|error| ConfigError::BadValue {
            path: path.to_owned(),
            line: entry.value_line,
            key: entry.key.clone(),
            message: clap_message(&error),
        })
}

/// The gist of a clap error: the value parser's own message if there is one, else clap's
/// message up to its usage lines, without its `error: ` prefix.
fn clap_message(error: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(error) {
        return source.to_string();
    }
    let rendered = error.render().to_string();
    let gist: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more"))
        .filter(|line| !line.is_empty())
        .collect();
    let gist = gist.join(" ");
    gist.strip_prefix("error: ").unwrap_or(&gist).to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a failure is the test failing
mod tests {
    use clap::CommandFactory as _;

    use super::*;
    use crate::args::Args;

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("ferryd.toml"), text, &Args::command())
    }

    #[test]
    fn every_long_flag_of_ferryd_but_config_help_and_version_is_a_key() {
        let command = Args::command();
        let keys = file_keys(&command);
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let expected = !matches!(long, "config" | "help" | "version");
            assert_eq!(keys.contains_key(long), expected, "--{long}");
        }
    }

    #[test]
    fn a_key_is_the_flag_it_names() {
        let file = parse("max-file-size = \"2G\"\ninsecure = true\nquota = 1000\n").unwrap();
        assert_eq!(
            file.keys().collect::<Vec<_>>(),
            ["max-file-size", "insecure", "quota"]
        );
        assert_eq!(
            file.settings
                .iter()
                .flat_map(|(_, flags)| flags)
                .collect::<Vec<_>>(),
            ["--max-file-size=2G", "--insecure", "--quota=1000"]
        );
    }

    #[test]
    fn a_switch_set_to_false_adds_no_flag() {
        let file = parse("insecure = false\n").unwrap();
        assert_eq!(file.settings, [("insecure".to_owned(), Vec::new())]);
    }

    #[test]
    fn errors_name_the_line_of_the_key_or_value() {
        let error = parse("listen = \"127.0.0.1:1\"\n\n\nbogus = 1\n").unwrap_err();
        assert!(
            matches!(error, ConfigError::UnknownKey { line: 4, .. }),
            "{error}"
        );
        let error = parse("# x\nquota = \"lots\"\n").unwrap_err();
        assert!(
            matches!(error, ConfigError::BadValue { line: 2, .. }),
            "{error}"
        );
        let error = parse("quota = [1]\n").unwrap_err();
        assert!(
            matches!(error, ConfigError::WrongType { line: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn flags_win_over_the_file_whose_values_arrive_as_flags() {
        let file = parse("max-connections = 5\nquota = \"1K\"\n").unwrap();
        let argv: Vec<OsString> = ["ferryd", "--max-connections", "7"]
            .map(OsString::from)
            .to_vec();
        let matches = file.merge(Args::command(), &argv).unwrap();
        assert_eq!(matches.get_one::<usize>("max_connections"), Some(&7));
        assert_eq!(matches.get_one::<u64>("quota"), Some(&1024));
        assert_eq!(
            matches.value_source("quota"),
            Some(ValueSource::CommandLine),
            "the file's values are passed as flags"
        );
    }
}
