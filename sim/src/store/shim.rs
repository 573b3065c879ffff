//! TEMPORARY: the shapes of `ferry_server::S3Config` and `ferry_server::seaweedfs::SeaweedFs`
//! until the server's object store lands on this branch; deleted when it does.
#![allow(missing_docs, dead_code)]

use std::io;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub prefix: String,
    pub access_key: String,
    pub secret_key: String,
}

#[derive(Debug, thiserror::Error)]
#[error("bad S3 location {url:?}: {reason}")]
pub struct S3UrlError {
    pub url: String,
    pub reason: &'static str,
}

impl S3Config {
    pub fn from_url(
        url: &str,
        endpoint: impl Into<String>,
        region: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Result<S3Config, S3UrlError> {
        let rest = url.strip_prefix("s3://").ok_or(S3UrlError {
            url: url.to_owned(),
            reason: "it does not start with s3://",
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        Ok(S3Config {
            endpoint: endpoint.into(),
            region: region.into(),
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        })
    }
}

#[derive(Debug)]
pub struct SeaweedFs;

impl SeaweedFs {
    pub fn start() -> io::Result<SeaweedFs> {
        Err(io::Error::other(
            "the server's SeaweedFS harness is not on this branch yet",
        ))
    }

    pub fn for_tests() -> Option<&'static SeaweedFs> {
        eprintln!("skipped: the server's SeaweedFS harness is not on this branch yet");
        None
    }

    pub fn endpoint(&self) -> &str {
        unreachable!("never started")
    }
    pub fn bucket(&self) -> &str {
        unreachable!("never started")
    }
    pub fn access_key(&self) -> &str {
        unreachable!("never started")
    }
    pub fn secret_key(&self) -> &str {
        unreachable!("never started")
    }

    pub fn config(&self, _prefix: &str) -> S3Config {
        unreachable!("never started")
    }

    pub fn unique_prefix(tag: &str) -> String {
        tag.to_owned()
    }
}

pub fn not_landed() -> Result<(), super::StoreError> {
    Err(super::StoreError::SeaweedFs(io::Error::other(
        "the server's object store is not on this branch yet",
    )))
}

pub fn set_object_store(
    config: ferry_server::ServerConfig,
    _object: &S3Config,
) -> ferry_server::ServerConfig {
    config
}

pub fn set_part_size(_config: &mut ferry_server::ServerConfig, _part: u64) {}
