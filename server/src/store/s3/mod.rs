//! S3-compatible object storage: where the bucket is ([`S3Config`]), a small blocking client of
//! it ([`S3Client`]), and the store backend built on it ([`S3Store`]).

mod client;
mod config;
mod error;
mod record;
mod rename;
mod store;
mod types;
mod upload;
mod xml;

pub(crate) use client::S3Client;
pub use config::{S3Config, S3UrlError};
pub use error::S3Error;
pub(crate) use store::S3Store;
pub(crate) use types::{ObjectInfo, PutCondition};
