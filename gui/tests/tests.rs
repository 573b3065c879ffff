//! ferry-gui's integration tests, in one binary: the window driven headless by egui_kittest
//! against a real in-process ferryd on loopback.

mod relay;
mod support;
mod sync;
mod window;
