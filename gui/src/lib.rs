//! # ferry-gui
//!
//! A desktop client for ferry, for people who would rather click than type. It adds no
//! protocol logic: every request goes through the client library (`ferry_client`), on worker
//! threads, so the window never waits for the network.
//!
//! ```text
//!   egui frame ──► panels ──commands──► Model ──poll_jobs──► worker threads
//!        ▲                                ▲                       │ ferry_client::Client
//!        └──────── request_repaint ───────┴──── Event channel ◄───┘
//! ```
//!
//! [`Model`] holds everything the window shows and is tested without egui; [`FerryApp`]
//! draws it and runs the jobs it asks for. Trust works as in the `ferry` command: the same
//! known-servers file, a new server's certificate fingerprint shown for the user to accept,
//! a changed certificate refused by the library.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod app;
mod connect_panel;
mod files_table;
pub mod format;
mod listing;
mod local;
mod model;
pub mod settings;
mod sync_job;
mod transfers;
mod transfers_panel;
mod trust;
mod worker;

pub use crate::app::FerryApp;
pub use crate::listing::{Column, Listing};
pub use crate::local::files_to_upload;
pub use crate::model::{Connection, Event, Job, MAX_RUNNING, Model, RenamePrompt, Session};
pub use crate::settings::ConnectSettings;
pub use crate::sync_job::SyncRequest;
pub use crate::transfers::{Direction, Transfer, TransferId, TransferState};
pub use crate::worker::{Reporter, Wake};
