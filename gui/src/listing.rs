//! The server's files as the table shows them: filtered, sorted, selected.

use std::collections::BTreeSet;

use ferry_client::ListEntry;

/// A column the table can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// The file's name.
    Name,
    /// Its size.
    Size,
    /// Its modification time.
    Modified,
}

/// The files of the server and how the user looks at them.
#[derive(Debug)]
pub struct Listing {
    /// Every file, in the server's order.
    pub entries: Vec<ListEntry>,
    /// Only names containing this text (case-insensitive) are shown.
    pub filter: String,
    /// The sort column.
    pub sort: Column,
    /// Ascending (true) or descending.
    pub ascending: bool,
    /// Names of the selected files.
    pub selected: BTreeSet<String>,
    /// Top-level folders shown folded.
    pub collapsed: BTreeSet<String>,
}

impl Default for Listing {
    fn default() -> Self {
        Listing {
            entries: Vec::new(),
            filter: String::new(),
            sort: Column::Name,
            ascending: true,
            selected: BTreeSet::new(),
            collapsed: BTreeSet::new(),
        }
    }
}

impl Listing {
    /// Replaces the files, keeping the selection of those still there.
    pub fn handle_entries(&mut self, entries: Vec<ListEntry>) {
        self.selected
            .retain(|name| entries.iter().any(|e| &e.name == name));
        self.entries = entries;
    }

    /// Sorts by `column`; the same column again flips the order.
    pub fn sort_by(&mut self, column: Column) {
        if self.sort == column {
            self.ascending = !self.ascending;
        } else {
            self.sort = column;
            self.ascending = true;
        }
    }

    /// Selects or deselects `name`.
    pub fn toggle(&mut self, name: &str) {
        if !self.selected.remove(name) {
            self.selected.insert(name.to_owned());
        }
    }

    /// Selects (or deselects) every one of `names`.
    pub fn select_all(&mut self, names: &[String], selected: bool) {
        for name in names {
            if selected {
                self.selected.insert(name.clone());
            } else {
                self.selected.remove(name);
            }
        }
    }

    /// Folds or unfolds the top-level folder `folder`.
    pub fn fold(&mut self, folder: &str) {
        if !self.collapsed.remove(folder) {
            self.collapsed.insert(folder.to_owned());
        }
    }

    /// The rows to show: matching the filter, in the chosen order.
    pub fn visible(&self) -> Vec<&ListEntry> {
        let needle = self.filter.trim().to_lowercase();
        let mut rows: Vec<&ListEntry> = self
            .entries
            .iter()
            .filter(|e| needle.is_empty() || e.name.to_lowercase().contains(&needle))
            .collect();
        rows.sort_by(|a, b| {
            let order = match self.sort {
                Column::Name => a.name.cmp(&b.name),
                Column::Size => a.size.cmp(&b.size).then_with(|| a.name.cmp(&b.name)),
                Column::Modified => a
                    .modified_ms
                    .cmp(&b.modified_ms)
                    .then_with(|| a.name.cmp(&b.name)),
            };
            if self.ascending {
                order
            } else {
                order.reverse()
            }
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, size: u64, modified_ms: u64) -> ListEntry {
        ListEntry {
            name: name.to_owned(),
            size,
            modified_ms,
        }
    }

    fn names(listing: &Listing) -> Vec<&str> {
        listing.visible().iter().map(|e| e.name.as_str()).collect()
    }

    fn listing() -> Listing {
        let mut listing = Listing::default();
        listing.handle_entries(vec![
            entry("photos/b.jpg", 30, 1),
            entry("notes.txt", 10, 3),
            entry("photos/a.JPG", 20, 2),
        ]);
        listing
    }

    #[test]
    fn the_filter_narrows_by_name_ignoring_case() {
        let mut listing = listing();
        listing.filter = "jpg".into();
        assert_eq!(names(&listing), ["photos/a.JPG", "photos/b.jpg"]);
        listing.filter = "nothing".into();
        assert!(names(&listing).is_empty());
    }

    #[test]
    fn sorting_by_a_column_twice_reverses_it() {
        let mut listing = listing();
        assert_eq!(
            names(&listing),
            ["notes.txt", "photos/a.JPG", "photos/b.jpg"]
        );
        listing.sort_by(Column::Size);
        assert_eq!(
            names(&listing),
            ["notes.txt", "photos/a.JPG", "photos/b.jpg"]
        );
        listing.sort_by(Column::Size);
        assert_eq!(
            names(&listing),
            ["photos/b.jpg", "photos/a.JPG", "notes.txt"]
        );
        listing.sort_by(Column::Modified);
        assert_eq!(
            names(&listing),
            ["photos/b.jpg", "photos/a.JPG", "notes.txt"]
        );
    }

    #[test]
    fn a_folder_is_selected_and_deselected_as_a_whole() {
        let mut listing = listing();
        let photos = ["photos/a.JPG".to_owned(), "photos/b.jpg".to_owned()];
        listing.toggle("photos/b.jpg");
        listing.select_all(&photos, true);
        assert_eq!(listing.selected.len(), 2);
        listing.select_all(&photos, false);
        assert!(listing.selected.is_empty());
    }

    #[test]
    fn a_refresh_drops_the_selection_of_removed_files() {
        let mut listing = listing();
        listing.toggle("notes.txt");
        listing.toggle("photos/b.jpg");
        listing.handle_entries(vec![entry("notes.txt", 10, 3)]);
        assert_eq!(listing.selected.iter().collect::<Vec<_>>(), ["notes.txt"]);
    }
}
