//! S3-compatible object storage: where the bucket is ([`S3Config`]).

mod config;

pub use config::{S3Config, S3UrlError};
