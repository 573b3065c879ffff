//! The transfers panel: one row per transfer with its progress, rate, time left and state,
//! and buttons to cancel or retry it.

use std::time::Instant;

use eframe::egui;

use crate::format;
use crate::model::Model;
use crate::transfers::{Direction, TransferState};

/// Draws the transfers panel.
pub fn show(ui: &mut egui::Ui, model: &mut Model) {
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.heading("Transfers");
        if ui.button("Clear finished").clicked() {
            model.clear_finished();
        }
    });
    if model.transfers.is_empty() {
        ui.label("No transfers yet.");
        return;
    }
    let now = Instant::now();
    let mut cancel = None;
    let mut retry = None;
    egui::ScrollArea::vertical().show(ui, |ui| {
        egui::Grid::new("transfers")
            .striped(true)
            .num_columns(6)
            .show(ui, |ui| {
                for t in &model.transfers {
                    let arrow = match t.direction {
                        Direction::Upload { .. } => "put",
                        Direction::Download { .. } => "get",
                    };
                    ui.label(format!("{arrow} {}", format::name(t.name())));
                    if t.total == 0 && t.state != TransferState::Done {
                        // Nothing moved yet (queued, refused, cancelled early): no bar.
                        ui.label("");
                    } else {
                        ui.add(
                            egui::ProgressBar::new(t.fraction())
                                .desired_width(160.0)
                                .text(format!(
                                    "{} / {}",
                                    format::size(t.done),
                                    format::size(t.total)
                                )),
                        );
                    }
                    let moving = t.state.is_active() || t.state == TransferState::Done;
                    ui.label(
                        t.rate(now)
                            .filter(|_| moving)
                            .map(format::rate)
                            .unwrap_or_default(),
                    );
                    ui.label(
                        t.time_left(now)
                            .map(|left| format!("{} left", format::duration(left)))
                            .unwrap_or_default(),
                    );
                    let state = format::message(&t.state.describe());
                    match t.state {
                        TransferState::Failed(_) => {
                            ui.colored_label(ui.visuals().error_fg_color, state)
                        }
                        _ => ui.label(state),
                    };
                    ui.horizontal(|ui| {
                        if (t.state.is_active() || t.state == TransferState::Queued)
                            && ui.button("Cancel").clicked()
                        {
                            cancel = Some(t.id);
                        }
                        if matches!(t.state, TransferState::Failed(_) | TransferState::Cancelled)
                            && ui.button("Retry").clicked()
                        {
                            retry = Some(t.id);
                        }
                    });
                    ui.end_row();
                }
            });
    });
    if let Some(id) = cancel {
        model.cancel_transfer(id, now);
    }
    if let Some(id) = retry {
        model.retry_transfer(id);
    }
}
