//! Renaming a file on the server: the prompt's state, and what the model does when the user
//! confirms it or the worker reports it (`ferry_client::Client::move_file` under the hood).

use super::{Event, Job, Model};

/// The rename prompt while it is open: the file's name now and the name the user types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenamePrompt {
    /// The name it has now.
    pub from: String,
    /// The new name, as typed (a path: `docs/a.txt` moves it into `docs/`).
    pub to: String,
    /// Replace a file that has the new name already.
    pub overwrite: bool,
}

impl Model {
    /// Opens the rename prompt for the one selected file.
    pub fn ask_rename(&mut self) {
        let mut selected = self.listing.selected.iter();
        if let (Some(name), None) = (selected.next(), selected.next()) {
            self.renaming = Some(RenamePrompt {
                from: name.clone(),
                to: name.clone(),
                overwrite: false,
            });
        }
    }

    /// Why the typed name cannot be used, if it cannot (checked before anything is sent).
    pub fn rename_problem(&self) -> Option<String> {
        let prompt = self.renaming.as_ref()?;
        if prompt.to == prompt.from {
            return Some("Type the new name.".to_owned());
        }
        ferry_client::validate_name(&prompt.to)
            .err()
            .map(|error| format!("Not a valid name: {error}"))
    }

    /// The user confirmed: ask the server to rename the file.
    pub fn confirm_rename(&mut self) {
        if self.rename_problem().is_some() {
            return;
        }
        if let (Some(prompt), Some(session)) = (self.renaming.take(), &self.session) {
            self.jobs.push(Job::Move {
                session: session.clone(),
                from: prompt.from,
                to: prompt.to,
                overwrite: prompt.overwrite,
            });
        }
    }

    /// The user changed their mind: nothing is renamed.
    pub fn cancel_rename(&mut self) {
        self.renaming = None;
    }

    /// The worker's report of a rename.
    pub(super) fn handle_moved(&mut self, from: &str, to: &str, outcome: Result<(), String>) {
        let (from, to) = (
            ferry_client::display_name(from),
            ferry_client::display_name(to),
        );
        self.message = Some(match outcome {
            Ok(()) => format!("Renamed {from} to {to}."),
            Err(error) => format!("Could not rename {from} to {to}: {error}"),
        });
        self.refresh();
    }
}

/// The event a worker sends once a rename ended.
pub(crate) fn moved(from: String, to: String, outcome: Result<(), String>) -> Event {
    Event::Moved { from, to, outcome }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::model::tests::connected;

    #[test]
    fn a_rename_is_asked_for_one_file_checked_then_sent_as_a_move() {
        let mut model = connected();
        model.ask_rename();
        assert_eq!(model.renaming, None, "nothing selected");
        model.listing.toggle("a.txt");
        model.listing.toggle("b.txt");
        model.ask_rename();
        assert_eq!(model.renaming, None, "two selected");
        model.listing.toggle("b.txt");
        model.ask_rename();
        assert_eq!(
            model.rename_problem().as_deref(),
            Some("Type the new name.")
        );
        model.renaming.as_mut().unwrap().to = "../a.txt".into();
        assert!(
            model
                .rename_problem()
                .unwrap()
                .starts_with("Not a valid name")
        );
        model.confirm_rename();
        assert!(
            model.poll_jobs(Instant::now()).is_empty(),
            "a bad name is not sent"
        );

        let prompt = model.renaming.as_mut().unwrap();
        prompt.to = "docs/a.txt".into();
        prompt.overwrite = true;
        model.confirm_rename();
        assert_eq!(model.renaming, None);
        let jobs = model.poll_jobs(Instant::now());
        assert!(
            matches!(jobs.as_slice(), [Job::Move { from, to, overwrite: true, .. }]
                if from == "a.txt" && to == "docs/a.txt"),
            "{jobs:?}"
        );
    }

    #[test]
    fn the_outcome_of_a_rename_is_shown_and_the_listing_refreshed() {
        let mut model = connected();
        model.handle_event(moved("a".into(), "b".into(), Ok(())));
        assert_eq!(model.message.as_deref(), Some("Renamed a to b."));
        let jobs = model.poll_jobs(Instant::now());
        assert!(matches!(jobs.as_slice(), [Job::List(_)]), "{jobs:?}");
        model.handle_event(moved(
            "a".into(),
            "b".into(),
            Err("server refused move".into()),
        ));
        assert!(
            model
                .message
                .as_deref()
                .unwrap()
                .contains("Could not rename a to b")
        );
    }
}
