//! Signed S3 requests to one instance's bucket: enough to see that it answers with its keys
//! (readiness), and for the harness's own tests to tell instances apart. ferryd's S3 client is
//! private to the server crate; this is deliberately much smaller (no retries, no streaming).

use std::fmt;
use std::io;
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

/// How long a signed URL stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(60);

/// How long connecting, and then waiting for the answer, may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an answer's body kept for an error message.
const BODY_LIMIT: u64 = 4096;

/// A bucket, its keys, and an HTTP agent that treats every status as an answer.
pub(super) struct Probe {
    agent: ureq::Agent,
    bucket: Bucket,
    credentials: Credentials,
}

/// Why a probe failed.
#[derive(Debug)]
pub(super) enum ProbeError {
    /// No answer: the connection failed or timed out.
    Transport(ureq::Error),
    /// An answer other than success.
    Status {
        /// Its HTTP status.
        status: u16,
        /// The start of its body (S3 puts the error code there).
        body: String,
    },
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Transport(e) => write!(f, "{e}"),
            ProbeError::Status { status, body } => write!(f, "HTTP {status}: {body}"),
        }
    }
}

impl Probe {
    /// Requests to `bucket` at `endpoint` (path style), signed with these keys.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `endpoint` is not an `http` URL.
    pub(super) fn new(
        endpoint: &str,
        region: &str,
        bucket: &str,
        access_key: &str,
        secret_key: &str,
    ) -> io::Result<Probe> {
        let invalid = |e: &dyn fmt::Display| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("endpoint {endpoint:?}: {e}"),
            )
        };
        let url = endpoint.parse().map_err(|e| invalid(&e))?;
        let bucket = Bucket::new(url, UrlStyle::Path, bucket.to_owned(), region.to_owned())
            .map_err(|e| invalid(&e))?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(TIMEOUT))
            .timeout_recv_response(Some(TIMEOUT))
            .max_redirects(0)
            .build()
            .new_agent();
        Ok(Probe {
            agent,
            bucket,
            credentials: Credentials::new(access_key, secret_key),
        })
    }

    /// Lists one key of the bucket: succeeds once the bucket exists and the keys may read it.
    pub(super) fn check_access(&self) -> Result<(), ProbeError> {
        let mut list = self.bucket.list_objects_v2(Some(&self.credentials));
        list.with_max_keys(1);
        let answer = self.agent.get(list.sign(SIGNED_FOR).as_str()).call();
        success(answer).map(drop)
    }

    /// Stores `body` under `key`.
    #[cfg(test)]
    pub(super) fn put(&self, key: &str, body: &[u8]) -> Result<(), ProbeError> {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        success(self.agent.put(url.as_str()).send(body)).map(drop)
    }

    /// Whether there is an object under `key`.
    #[cfg(test)]
    pub(super) fn exists(&self, key: &str) -> Result<bool, ProbeError> {
        let url = self
            .bucket
            .head_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        match success(self.agent.head(url.as_str()).call()) {
            Ok(_) => Ok(true),
            Err(ProbeError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The answer if it is a success; its status and the start of its body if not.
fn success(
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<ureq::http::Response<ureq::Body>, ProbeError> {
    let mut response = answer.map_err(ProbeError::Transport)?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(BODY_LIMIT)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    Err(ProbeError::Status { status, body })
}
