//! A real server on loopback and the window under test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ferry_gui::{FerryApp, Model};
use ferry_server::{Rights, Server, ServerConfig, ServerHandle, TlsIdentity, Tokens, token_line};
use tempfile::TempDir;

/// Longest wait for the workers of one step: generous, only reached if something hangs.
const WORKER_LIMIT: Duration = Duration::from_secs(30);

/// Frames run around each step: enough for a click to land and its result to be drawn.
const FRAMES: usize = 4;

/// A running ferryd on a fresh storage root, stopped when dropped.
pub struct TestServer {
    handle: Option<ServerHandle>,
    root: TempDir,
}

impl TestServer {
    /// A plaintext server (the client connects with "Plaintext").
    pub fn plaintext() -> TestServer {
        TestServer::start(None)
    }

    /// A TLS server with a self-signed certificate.
    pub fn tls(identity: TlsIdentity) -> TestServer {
        TestServer::start(Some(identity))
    }

    /// A plaintext server that lets in only `token`, with full rights.
    pub fn with_token(token: &str) -> TestServer {
        let line = token_line(token, Rights::ReadWrite, None).unwrap();
        TestServer::start_with(None, Some(Tokens::parse(&line).unwrap()))
    }

    fn start(tls: Option<TlsIdentity>) -> TestServer {
        TestServer::start_with(tls, None)
    }

    fn start_with(tls: Option<TlsIdentity>, tokens: Option<Tokens>) -> TestServer {
        let root = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(root.path());
        config.shutdown_grace = Duration::from_millis(100);
        config.tls = tls;
        config.tokens = tokens;
        let handle = Server::start(config).unwrap();
        TestServer {
            handle: Some(handle),
            root,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.handle.as_ref().unwrap().local_addr()
    }

    /// The stored file `name`, if any, read straight from the storage root.
    pub fn stored(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root.path().join(name)).ok()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
    }
}

/// A self-signed server identity made in a temporary folder.
pub fn identity() -> TlsIdentity {
    let state = tempfile::tempdir().unwrap();
    TlsIdentity::load_or_create(&state.path().join("tls")).unwrap()
}

/// The window with its own config folder and a scratch folder for local files.
pub struct Window {
    /// The headless egui harness around the app.
    pub harness: Harness<'static, FerryApp>,
    /// The config folder (known servers, remembered servers).
    pub config: TempDir,
    /// Local files to upload and downloads.
    pub scratch: TempDir,
}

impl Window {
    /// A fresh window, not connected.
    pub fn new() -> Window {
        let config = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let mut model = Model::new(Some(config.path().to_path_buf()));
        // Syncs cache digests here, never in the user's cache folder.
        model.sync_cache = Some(config.path().join("cache"));
        let app = FerryApp::new(model, Arc::new(|| {}));
        let harness = Harness::builder()
            .with_size(egui::vec2(1000.0, 700.0))
            .build_ui_state(|ui, app: &mut FerryApp| app.show(ui), app);
        Window {
            harness,
            config,
            scratch,
        }
    }

    /// The model behind the window.
    pub fn model(&mut self) -> &mut Model {
        &mut self.harness.state_mut().model
    }

    /// Runs frames, lets every worker finish, and runs frames again to show the results.
    pub fn settle(&mut self) {
        // Fixed frame counts: a spinner or a running transfer keeps asking for frames.
        self.harness.run_steps(FRAMES);
        assert!(
            self.harness.state_mut().wait_for_workers(WORKER_LIMIT),
            "workers did not finish"
        );
        self.harness.run_steps(FRAMES);
    }

    /// From now on, frames leave worker reports for [`Window::next_event`].
    pub fn hold_events(&mut self) {
        self.harness.state_mut().hold_events(true);
    }

    /// Waits for one report of a worker and takes it in; false once no job is left.
    pub fn next_event(&mut self) -> bool {
        self.harness.state_mut().next_event(WORKER_LIMIT)
    }

    /// Clicks the widget labelled `label` and settles.
    pub fn click(&mut self, label: &str) {
        self.harness.get_by_label(label).click();
        self.settle();
    }

    /// Clicks the widget labelled `label` and draws the result, leaving workers running.
    pub fn click_without_waiting(&mut self, label: &str) {
        self.harness.get_by_label(label).click();
        self.harness.run_steps(FRAMES);
    }

    /// Types `text` into the field labelled `label`, as a user would.
    pub fn type_into(&mut self, label: &str, text: &str) {
        self.harness.get_by_label(label).focus();
        self.harness.run_steps(2);
        self.harness.get_by_label(label).type_text(text);
        self.harness.run_steps(2);
    }

    /// Types `server`'s address in the connect panel (plaintext or TLS) and presses Enter.
    pub fn connect(&mut self, server: &TestServer, plaintext: bool) {
        self.model().settings.addr.clear();
        self.model().settings.insecure = plaintext;
        self.type_into("Server", &server.addr().to_string());
        self.harness.key_press(egui::Key::Enter);
        self.settle();
    }

    /// Writes a local file in the scratch folder.
    pub fn local_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.scratch.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Whether a widget labelled exactly `label` is shown.
    pub fn shows(&self, label: &str) -> bool {
        self.harness.query_by_label(label).is_some()
    }

    /// Whether a widget whose label contains `text` is shown.
    pub fn shows_text(&self, text: &str) -> bool {
        self.harness
            .query_all_by_label_contains(text)
            .next()
            .is_some()
    }
}

/// A file dropped on the window, as the windowing system hands it over.
#[derive(Debug)]
pub struct Dropped(pub PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}
