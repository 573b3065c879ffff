//! Placeholder: filled by its own issue.
#![forbid(unsafe_code)]
