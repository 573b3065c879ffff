//! `ferry-gui`: the ferry desktop client.

use anyhow::anyhow;
use eframe::egui;
use ferry_gui::{FerryApp, Model, config_dir};

fn main() -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("ferry")
            .with_inner_size([960.0, 640.0])
            .with_drag_and_drop(true),
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "ferry",
        options,
        Box::new(|cc| {
            Ok(Box::new(FerryApp::with_context(
                Model::new(config_dir()),
                &cc.egui_ctx,
            )))
        }),
    )
    .map_err(|e| anyhow!("cannot open the window: {e}"))
}
