//! The window: draws the [`Model`] with egui, hands the user's commands to it, and runs the
//! jobs it asks for on worker threads, taking in their events at every frame.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use eframe::egui;

use crate::model::{Event, Model};
use crate::worker::{self, Reporter, Wake};
use crate::{connect_panel, files_table, transfers_panel};

/// The ferry desktop client.
pub struct FerryApp {
    /// What the window shows.
    pub model: Model,
    events: Receiver<Event>,
    reporter: Reporter,
    /// Jobs started whose final event has not arrived yet.
    outstanding: usize,
    /// Frames leave worker reports waiting (see [`FerryApp::hold_events`]).
    held: bool,
}

impl FerryApp {
    /// A window over `model`; `wake` asks for a redraw when a worker reports.
    pub fn new(model: Model, wake: Wake) -> FerryApp {
        let (sender, events) = mpsc::channel();
        FerryApp {
            model,
            events,
            reporter: Reporter::new(sender, wake),
            outstanding: 0,
            held: false,
        }
    }

    /// A window that repaints `ctx` when a worker reports.
    pub fn with_context(model: Model, ctx: &egui::Context) -> FerryApp {
        let ctx = ctx.clone();
        FerryApp::new(model, Arc::new(move || ctx.request_repaint()))
    }

    /// Whether jobs are still running on worker threads.
    pub fn is_busy(&self) -> bool {
        self.outstanding > 0
    }

    /// Takes in every event that arrived (unless held) and starts the jobs the model asks
    /// for. Never blocks.
    pub fn pump(&mut self) {
        while !self.held
            && let Ok(event) = self.events.try_recv()
        {
            self.handle_event(event);
        }
        self.start_jobs();
    }

    /// While `held`, frames leave the workers' reports waiting, to be taken one at a time by
    /// [`FerryApp::next_event`]: for tests that watch every state a transfer goes through.
    pub fn hold_events(&mut self, held: bool) {
        self.held = held;
    }

    /// Blocks until every job (and the jobs they lead to) has ended, or `limit` passed.
    /// Returns whether all ended. For tests and scripts; the window itself never waits.
    pub fn wait_for_workers(&mut self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        loop {
            self.start_jobs();
            if self.outstanding == 0 {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => self.handle_event(event),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Blocks until one event arrives (at most `limit`) and takes it in; returns false at
    /// once when no job is running. For tests that watch a transfer step by step.
    pub fn next_event(&mut self, limit: Duration) -> bool {
        self.start_jobs();
        if self.outstanding == 0 {
            return false;
        }
        match self.events.recv_timeout(limit) {
            Ok(event) => {
                self.handle_event(event);
                self.start_jobs();
                true
            }
            Err(_) => false,
        }
    }

    fn handle_event(&mut self, event: Event) {
        if !matches!(event, Event::Progress { .. }) {
            self.outstanding = self.outstanding.saturating_sub(1);
        }
        self.model.handle_event(event);
    }

    fn start_jobs(&mut self) {
        for job in self.model.poll_jobs(Instant::now()) {
            self.outstanding += 1;
            worker::spawn(job, self.reporter.clone());
        }
    }

    /// Draws the window into `ui`.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.pump();
        let dropped: Vec<_> = ui.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if !dropped.is_empty() && !self.model.is_connected() {
            self.model.message = Some("Connect to a server, then drop files to upload.".into());
        } else {
            for path in dropped {
                self.model.upload(&path);
            }
        }
        egui::Panel::top("connect").show(ui, |ui| connect_panel::show(ui, &mut self.model));
        egui::Panel::bottom("transfers")
            .resizable(true)
            .min_size(180.0)
            .show(ui, |ui| transfers_panel::show(ui, &mut self.model));
        egui::CentralPanel::default().show(ui, |ui| files_table::show(ui, &mut self.model));
        connect_panel::show_trust_prompt(ui, &mut self.model);
        files_table::show_remove_prompt(ui, &mut self.model);
        files_table::show_rename_prompt(ui, &mut self.model);
        self.pump();
        if self.model.transfers.iter().any(|t| t.state.is_active()) {
            // Rates and times left move even between progress reports.
            ui.ctx().request_repaint_after(Duration::from_millis(250));
        }
    }
}

impl eframe::App for FerryApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}
