//! S3-compatible object storage: where the bucket is ([`S3Config`]) and a small blocking
//! client of it ([`S3Client`]), on which the S3 store is built.

mod client;
mod config;
mod error;
mod types;
mod xml;

pub(crate) use client::S3Client;
pub use config::{S3Config, S3UrlError};
pub(crate) use error::S3Error;
pub(crate) use types::{ListPage, ObjectInfo, PendingUpload, PutCondition};
