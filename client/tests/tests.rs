//! Integration tests of ferry-client: the library and the `ferry` binary against ferryd itself,
//! in-process (over a folder or the in-memory store), and against a scripted hostile server.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod attempts;
mod cli;
mod filters;
mod generated_docs;
mod library;
mod moves;
mod names;
mod pipelining;
mod progress;
mod put_into_folder;
mod rate_limit;
mod reupload;
mod security;
mod stat;
mod stdin;
mod support;
mod sync;
mod to_stdout;
