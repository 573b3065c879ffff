//! Integration tests of ferry-client: the library against a minimal in-process server built
//! on the protocol machine, and the `ferry` binary end to end.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod cli;
mod generated_docs;
mod library;
mod names;
mod reupload;
mod security;
mod support;
