//! The connect panel (server, token, TLS, remembered servers) and the trust prompt shown the
//! first time a server's certificate is met.

use eframe::egui;

use crate::format;
use crate::model::{Connection, Model};

/// Draws the connect panel.
pub fn show(ui: &mut egui::Ui, model: &mut Model) {
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        let editable = matches!(model.connection, Connection::Disconnected);
        let mut entered = false;
        ui.add_enabled_ui(editable, |ui| {
            let label = ui.label("Server");
            let server = ui
                .add(egui::TextEdit::singleline(&mut model.settings.addr).desired_width(180.0))
                .labelled_by(label.id);
            let label = ui.label("Token");
            let token = ui
                .add(
                    egui::TextEdit::singleline(&mut model.settings.token)
                        .password(true)
                        .desired_width(120.0),
                )
                .labelled_by(label.id);
            entered = (server.lost_focus() || token.lost_focus())
                && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.checkbox(&mut model.settings.insecure, "Plaintext (--insecure)");
            if !model.remembered.is_empty() {
                let mut picked = None;
                egui::ComboBox::from_id_salt("remembered")
                    .selected_text("Recent servers")
                    .show_ui(ui, |ui| {
                        for (i, known) in model.remembered.iter().enumerate() {
                            let mode = if known.insecure { " (plaintext)" } else { "" };
                            if ui.button(format!("{}{mode}", known.addr)).clicked() {
                                picked = Some(i);
                            }
                        }
                    });
                if let Some(i) = picked {
                    model.pick_remembered(i);
                }
            }
        });
        match &model.connection {
            Connection::Disconnected => {
                if ui.button("Connect").clicked() || entered {
                    model.connect();
                }
            }
            Connection::Connecting => {
                ui.spinner();
                ui.label("Connecting...");
            }
            Connection::Trust { .. } => {
                ui.label("Waiting for your decision about the certificate");
            }
            Connection::Connected { server } => {
                ui.label(format!("Connected to {server}"));
                if ui.button("Disconnect").clicked() {
                    model.disconnect(std::time::Instant::now());
                }
            }
        }
    });
    if let Some(message) = model.message.clone() {
        ui.horizontal(|ui| {
            ui.colored_label(ui.visuals().error_fg_color, format::message(&message));
            if ui.small_button("Dismiss").clicked() {
                model.message = None;
            }
        });
    }
    ui.add_space(4.0);
}

/// Draws the trust prompt while the model waits for the user's decision.
pub fn show_trust_prompt(ui: &mut egui::Ui, model: &mut Model) {
    let Connection::Trust {
        server,
        fingerprint,
    } = &model.connection
    else {
        return;
    };
    let (server, fingerprint) = (server.clone(), fingerprint.to_string());
    let file = model
        .known_servers()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    egui::Modal::new(egui::Id::unique("trust")).show(ui.ctx(), |ui| {
        ui.heading("First connection to this server");
        ui.label(format!(
            "{server} presents a certificate this computer has not seen before. Its SHA-256 \
             fingerprint is:"
        ));
        ui.monospace(&fingerprint);
        ui.label(
            "Compare it with the one ferryd printed at start (ask the server's operator). If \
             they match, trust it: it is recorded and a different certificate will be refused \
             from now on.",
        );
        ui.small(format!(
            "Recorded in {file}, shared with the ferry command."
        ));
        ui.horizontal(|ui| {
            if ui.button("Trust and connect").clicked() {
                model.accept_trust();
            }
            if ui.button("Do not trust").clicked() {
                model.reject_trust();
            }
        });
    });
}
