//! `--exclude` and `--include` rules with rsync's meaning: the rules are tried in the order
//! given, the first that matches a path decides, and a path no rule matches is included. A
//! folder that is excluded hides everything under it (rules are tried on each folder on the
//! way down, then on the file), so `--include '*.txt' --exclude '*'` keeps only the top
//! folder's text files, as in rsync.
//!
//! Patterns are globs ([`globset`]), matched against paths relative to the folder being
//! transferred, with `/` between components:
//!
//! - `*` and `?` never match `/`; `**` matches across folders; `[abc]` and `{a,b}` work too.
//! - A pattern without `/` matches a file or folder name at any depth (`*.tmp`, `target`).
//! - A pattern with `/` matches the end of a path at a folder boundary (`build/*.o` matches
//!   `build/x.o` and `src/build/x.o`); a leading `/` anchors it to the transfer's top
//!   (`/build` matches only the top folder's `build`).
//! - A trailing `/` matches folders only (`cache/`).

use globset::{Glob, GlobBuilder, GlobMatcher};

/// Whether a rule keeps or drops what it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// `--include`: keep what matches.
    Include,
    /// `--exclude`: drop what matches.
    Exclude,
}

/// A pattern that is not a valid glob.
#[derive(Debug, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {source}; see --help for the glob syntax")]
pub struct FilterError {
    /// The pattern as given.
    pub pattern: String,
    /// What globset said.
    #[source]
    pub source: globset::Error,
}

/// One `--exclude` or `--include` rule.
#[derive(Clone, Debug)]
struct Rule {
    kind: RuleKind,
    /// Matchers tried on the relative path; any match counts.
    matchers: Vec<GlobMatcher>,
    /// Whether the pattern is tried on the last component only (no `/` in it).
    name_only: bool,
    /// Whether the pattern ended in `/`: it matches folders only.
    folders_only: bool,
}

/// Ordered include and exclude rules. The default has none and keeps everything.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    rules: Vec<Rule>,
}

impl Filter {
    /// A filter that keeps everything.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Adds a rule after the ones already there.
    pub fn push(&mut self, kind: RuleKind, pattern: &str) -> Result<(), FilterError> {
        let folders_only = pattern.len() > 1 && pattern.ends_with('/');
        let body = if folders_only {
            &pattern[..pattern.len() - 1]
        } else {
            pattern
        };
        let anchored = body.starts_with('/');
        let body = body.trim_start_matches('/');
        let name_only = !anchored && !body.contains('/') && !body.contains("**");
        let mut globs = vec![body.to_owned()];
        if !anchored && !name_only {
            globs.push(format!("**/{body}"));
        }
        let matchers = globs
            .iter()
            .map(|glob| compile(glob).map(|g| g.compile_matcher()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| FilterError {
                pattern: pattern.to_owned(),
                source,
            })?;
        self.rules.push(Rule {
            kind,
            matchers,
            name_only,
            folders_only,
        });
        Ok(())
    }

    /// Whether there are no rules (everything is kept).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What the first matching rule says about the path `relative` (a folder if `is_folder`),
    /// or `None` if no rule matches.
    pub fn decide(&self, relative: &str, is_folder: bool) -> Option<RuleKind> {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        self.rules
            .iter()
            .find(|rule| {
                (is_folder || !rule.folders_only) && {
                    let subject = if rule.name_only { name } else { relative };
                    rule.matchers.iter().any(|m| m.is_match(subject))
                }
            })
            .map(|rule| rule.kind)
    }

    /// Whether the path itself is kept, its folders aside.
    pub fn keeps(&self, relative: &str, is_folder: bool) -> bool {
        self.decide(relative, is_folder) != Some(RuleKind::Exclude)
    }

    /// Whether the file `relative` is kept: each folder on its way is kept, and so is it.
    /// Use it where the folders are not walked one by one (a server's listing).
    pub fn keeps_file(&self, relative: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        let folders = relative
            .match_indices('/')
            .map(|(at, _)| &relative[..at])
            .filter(|folder| !folder.is_empty());
        folders.into_iter().all(|folder| self.keeps(folder, true)) && self.keeps(relative, false)
    }
}

/// A glob in which `*` and `?` stop at `/`, as rsync's do.
fn compile(glob: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(rules: &[(RuleKind, &str)]) -> Filter {
        let mut filter = Filter::new();
        for (kind, pattern) in rules {
            filter.push(*kind, pattern).unwrap();
        }
        filter
    }

    use RuleKind::{Exclude, Include};

    #[test]
    fn no_rules_keep_everything() {
        let f = Filter::new();
        assert!(f.keeps_file("a/b/c.txt"));
        assert_eq!(f.decide("x", false), None);
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let keep_first = filter(&[(Include, "keep.log"), (Exclude, "*.log")]);
        assert!(keep_first.keeps_file("keep.log"));
        assert!(keep_first.keeps_file("sub/keep.log"));
        assert!(!keep_first.keeps_file("other.log"));
        let exclude_first = filter(&[(Exclude, "*.log"), (Include, "keep.log")]);
        assert!(!exclude_first.keeps_file("keep.log"));
    }

    #[test]
    fn a_pattern_without_a_slash_matches_a_name_at_any_depth_and_star_stops_at_slashes() {
        let f = filter(&[(Exclude, "*.tmp")]);
        assert!(!f.keeps_file("a.tmp"));
        assert!(!f.keeps_file("deep/down/b.tmp"));
        assert!(f.keeps_file("a.tmp.keep"));
        let g = filter(&[(Exclude, "a*b")]);
        assert!(
            g.keeps_file("a/b"),
            "a pattern of one name never spans a slash"
        );
        assert!(!g.keeps_file("axb"));
    }

    #[test]
    fn a_pattern_with_a_slash_matches_a_path_end_and_a_leading_slash_anchors_it() {
        let f = filter(&[(Exclude, "build/*.o")]);
        assert!(!f.keeps_file("build/x.o"));
        assert!(!f.keeps_file("src/build/x.o"));
        assert!(f.keeps_file("build/sub/x.o"));
        assert!(f.keeps_file("mybuild/x.o"));
        let anchored = filter(&[(Exclude, "/build")]);
        assert!(!anchored.keeps_file("build/x.o"));
        assert!(anchored.keeps_file("src/build/x.o"));
    }

    #[test]
    fn an_excluded_folder_hides_everything_under_it() {
        let f = filter(&[(Exclude, "target")]);
        assert!(!f.keeps_file("target/debug/app"));
        assert!(!f.keeps_file("crate/target/x"));
        assert!(f.keeps_file("targets.txt"));
        // rsync's classic: include the text files, exclude the rest, folders too.
        let only_top_text = filter(&[(Include, "*.txt"), (Exclude, "*")]);
        assert!(only_top_text.keeps_file("a.txt"));
        assert!(!only_top_text.keeps_file("sub/b.txt"));
        assert!(!only_top_text.keeps_file("c.bin"));
        // ... and its fix: let every folder through first.
        let all_text = filter(&[(Include, "*/"), (Include, "*.txt"), (Exclude, "*")]);
        assert!(all_text.keeps_file("sub/deeper/b.txt"));
        assert!(!all_text.keeps_file("sub/c.bin"));
    }

    #[test]
    fn a_trailing_slash_matches_folders_only_and_double_star_spans_folders() {
        let f = filter(&[(Exclude, "cache/")]);
        assert!(!f.keeps_file("cache/x"));
        assert!(f.keeps_file("cache"), "a file named cache is not a folder");
        let g = filter(&[(Exclude, "docs/**/*.pdf")]);
        assert!(!g.keeps_file("docs/a/b/c.pdf"));
        assert!(!g.keeps_file("docs/c.pdf"));
        assert!(g.keeps_file("docs/c.txt"));
    }

    #[test]
    fn an_invalid_glob_is_an_error_naming_the_pattern() {
        let error = Filter::new().push(Exclude, "a[").unwrap_err();
        assert!(error.to_string().contains("\"a[\""), "{error}");
    }
}
