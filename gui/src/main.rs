//! `ferry-gui`: the ferry desktop client.
//!
//! `ferry-gui [--insecure] [HOST:PORT [PATH...]]` opens the window; with an address it
//! connects at once and uploads the files and folders given after it. `FERRY_TOKEN` fills in
//! the access token, as for the `ferry` command.

use anyhow::{anyhow, bail};
use eframe::egui;
use ferry_client::config_dir;
use ferry_gui::{FerryApp, Model};

const USAGE: &str = "usage: ferry-gui [--insecure] [HOST:PORT [PATH...]]";

fn main() -> anyhow::Result<()> {
    let mut model = Model::new(config_dir());
    let mut connect = false;
    let mut uploads = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--insecure" => model.settings.insecure = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            flag if flag.starts_with('-') => bail!("unknown option {flag}\n{USAGE}"),
            path if connect => uploads.push(std::path::PathBuf::from(path)),
            addr => {
                model.settings.addr = addr.to_owned();
                connect = true;
            }
        }
    }
    if let Ok(token) = std::env::var("FERRY_TOKEN") {
        model.settings.token = token;
    }
    if connect {
        model.connect();
    }
    // Queued now, started once connected.
    for path in uploads {
        model.upload(&path);
    }
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
        Box::new(move |cc| Ok(Box::new(FerryApp::with_context(model, &cc.egui_ctx)))),
    )
    .map_err(|e| anyhow!("cannot open the window: {e}"))
}
