//! The server's files: the upload and download bar, the filter box, the sortable table with
//! folders that fold, and the confirmation before a removal.

use eframe::egui;
use ferry_client::ListEntry;

use crate::format;
use crate::listing::Column;
use crate::model::Model;

/// Draws the files panel.
pub fn show(ui: &mut egui::Ui, model: &mut Model) {
    if !model.is_connected() {
        ui.centered_and_justified(|ui| {
            ui.label("Connect to a server to see its files.");
        });
        return;
    }
    ui.horizontal(|ui| {
        let label = ui.label("Upload path");
        let path = ui
            .add(egui::TextEdit::singleline(&mut model.upload_path).desired_width(260.0))
            .labelled_by(label.id);
        let entered = path.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.checkbox(&mut model.overwrite, "Overwrite");
        if ui.button("Upload").clicked() || entered {
            model.upload_typed_path();
        }
        let idle = model.syncing.is_none();
        if ui
            .add_enabled(idle, egui::Button::new("Sync folder"))
            .on_hover_text(
                "Make the server folder of this folder's name match it: only files whose size \
                 or BLAKE3 digest differ are sent",
            )
            .clicked()
        {
            model.sync_typed_folder();
        }
        if let Some(request) = &model.syncing {
            ui.spinner();
            ui.label(format!("Syncing {}", format::message(&request.describe())));
        }
        ui.label("(or drop files and folders on the window)");
    });
    ui.horizontal(|ui| {
        let label = ui.label("Download to");
        ui.add(egui::TextEdit::singleline(&mut model.download_folder).desired_width(260.0))
            .labelled_by(label.id);
        let any = !model.listing.selected.is_empty();
        if ui
            .add_enabled(any, egui::Button::new("Download selected"))
            .clicked()
        {
            model.download_selected();
        }
        if ui
            .add_enabled(any, egui::Button::new("Remove selected..."))
            .clicked()
        {
            model.ask_remove();
        }
        let one = model.listing.selected.len() == 1;
        if ui
            .add_enabled(one, egui::Button::new("Rename..."))
            .on_disabled_hover_text("Select one file to rename it")
            .clicked()
        {
            model.ask_rename();
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label("Filter");
        ui.add(egui::TextEdit::singleline(&mut model.listing.filter).desired_width(200.0))
            .labelled_by(label.id);
        if ui.button("Refresh").clicked() {
            model.refresh();
        }
        ui.label(format!(
            "{} files, {} selected",
            model.listing.entries.len(),
            model.listing.selected.len()
        ));
    });
    ui.separator();
    table(ui, model);
}

/// A run of rows: a top-level file, or a folder and the files under it.
enum Group<'a> {
    File(&'a ListEntry),
    Folder(String, Vec<&'a ListEntry>),
}

fn groups<'a>(rows: Vec<&'a ListEntry>) -> Vec<Group<'a>> {
    let mut groups: Vec<Group<'a>> = Vec::new();
    for entry in rows {
        match entry.name.split_once('/') {
            None => groups.push(Group::File(entry)),
            Some((folder, _)) => {
                let existing = groups.iter_mut().find_map(|g| match g {
                    Group::Folder(name, files) if name == folder => Some(files),
                    _ => None,
                });
                match existing {
                    Some(files) => files.push(entry),
                    None => groups.push(Group::Folder(folder.to_owned(), vec![entry])),
                }
            }
        }
    }
    groups
}

fn table(ui: &mut egui::Ui, model: &mut Model) {
    let mut sort = None;
    let mut toggle = None;
    let mut fold = None;
    let mut select_folder = None;
    let mut sync_down = None;
    let idle = model.syncing.is_none();
    let listing = &model.listing;
    egui::ScrollArea::vertical().show(ui, |ui| {
        egui::Grid::new("files")
            .striped(true)
            .num_columns(3)
            .min_col_width(80.0)
            .show(ui, |ui| {
                for (column, title) in [
                    (Column::Name, "Name"),
                    (Column::Size, "Size"),
                    (Column::Modified, "Modified (UTC)"),
                ] {
                    let arrow = match (listing.sort == column, listing.ascending) {
                        (false, _) => "",
                        (true, true) => " ^",
                        (true, false) => " v",
                    };
                    if ui.button(format!("{title}{arrow}")).clicked() {
                        sort = Some(column);
                    }
                }
                ui.end_row();
                let mut row = |ui: &mut egui::Ui, entry: &ListEntry, shown: &str| {
                    let mut selected = listing.selected.contains(&entry.name);
                    if ui.checkbox(&mut selected, shown).changed() {
                        toggle = Some(entry.name.clone());
                    }
                    ui.label(format::size(entry.size));
                    ui.label(format::utc_time(entry.modified_ms));
                    ui.end_row();
                };
                for group in groups(listing.visible()) {
                    match group {
                        Group::File(entry) => row(ui, entry, &format::name(&entry.name)),
                        Group::Folder(folder, files) => {
                            let open = !listing.collapsed.contains(&folder);
                            let sign = if open { "[-]" } else { "[+]" };
                            let size: u64 = files.iter().map(|e| e.size).sum();
                            ui.horizontal(|ui| {
                                let names: Vec<String> =
                                    files.iter().map(|e| e.name.clone()).collect();
                                let mut all = names.iter().all(|n| listing.selected.contains(n));
                                if ui
                                    .checkbox(&mut all, "all")
                                    .on_hover_text(format!(
                                        "Select every file in {}/",
                                        format::name(&folder)
                                    ))
                                    .changed()
                                {
                                    select_folder = Some((names, all));
                                }
                                if ui
                                    .button(format!("{sign} {}/", format::name(&folder)))
                                    .clicked()
                                {
                                    fold = Some(folder.clone());
                                }
                                if ui
                                    .add_enabled(idle, egui::Button::new("sync down"))
                                    .on_hover_text(format!(
                                        "Make {}/ in the download folder match this folder: \
                                         only files that differ are downloaded",
                                        format::name(&folder)
                                    ))
                                    .clicked()
                                {
                                    sync_down = Some(folder.clone());
                                }
                            });
                            ui.label(format::size(size));
                            ui.label(format!("{} files", files.len()));
                            ui.end_row();
                            if open {
                                for entry in files {
                                    let rest = entry.name.split_once('/').map_or("", |(_, r)| r);
                                    row(ui, entry, &format!("    {}", format::name(rest)));
                                }
                            }
                        }
                    }
                }
            });
    });
    if let Some(column) = sort {
        model.listing.sort_by(column);
    }
    if let Some(name) = toggle {
        model.listing.toggle(&name);
    }
    if let Some(folder) = fold {
        model.listing.fold(&folder);
    }
    if let Some((names, selected)) = select_folder {
        model.listing.select_all(&names, selected);
    }
    if let Some(folder) = sync_down {
        model.sync_down(&folder);
    }
}

/// Draws the confirmation before a removal, while one is asked.
pub fn show_remove_prompt(ui: &mut egui::Ui, model: &mut Model) {
    let Some(names) = &model.confirm_remove else {
        return;
    };
    let names = names.clone();
    egui::Modal::new(egui::Id::unique("remove")).show(ui.ctx(), |ui| {
        ui.heading(format!("Remove {} file(s) from the server?", names.len()));
        for name in names.iter().take(10) {
            ui.monospace(format::name(name));
        }
        if names.len() > 10 {
            ui.label(format!("... and {} more", names.len() - 10));
        }
        ui.label("This cannot be undone.");
        ui.horizontal(|ui| {
            if ui.button("Remove").clicked() {
                model.confirm_remove();
            }
            if ui.button("Keep").clicked() {
                model.cancel_remove();
            }
        });
    });
}

/// Draws the rename prompt, while one is open: the new name (a path moves the file into
/// that folder), whether to replace a file of that name, and the buttons.
pub fn show_rename_prompt(ui: &mut egui::Ui, model: &mut Model) {
    if model.renaming.is_none() {
        return;
    }
    let problem = model.rename_problem();
    egui::Modal::new(egui::Id::unique("rename")).show(ui.ctx(), |ui| {
        let Some(prompt) = model.renaming.as_mut() else {
            return;
        };
        ui.heading(format!("Rename {}", format::name(&prompt.from)));
        let label = ui.label("New name");
        let field = ui
            .add(egui::TextEdit::singleline(&mut prompt.to).desired_width(320.0))
            .labelled_by(label.id);
        ui.checkbox(&mut prompt.overwrite, "Replace a file that has this name");
        if let Some(problem) = &problem {
            ui.label(format::message(problem));
        }
        let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.horizontal(|ui| {
            let rename = ui.add_enabled(problem.is_none(), egui::Button::new("Rename"));
            if rename.clicked() || (enter && problem.is_none()) {
                model.confirm_rename();
            } else if ui.button("Cancel").clicked() {
                model.cancel_rename();
            }
        });
    });
}
