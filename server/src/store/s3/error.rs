//! Why an S3 request failed, in terms a caller can act on.

use std::io;

use super::xml;

/// A failed S3 request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3Error {
    /// The object (or multipart upload) does not exist.
    #[error("no such S3 object")]
    NotFound,
    /// A condition failed: the object exists already (`If-None-Match: *`) or its ETag is no
    /// longer the one given (`If-Match`).
    #[error("the S3 object exists already or changed meanwhile (a precondition failed)")]
    PreconditionFailed,
    /// The service refused the credentials or the request.
    #[error(
        "S3 denied access ({message}); check the access key, the secret key and the bucket name"
    )]
    Denied {
        /// The service's code and message.
        message: String,
    },
    /// The bucket does not exist.
    #[error("the S3 bucket {bucket:?} does not exist; create it or check its name")]
    NoSuchBucket {
        /// The bucket's name.
        bucket: String,
    },
    /// The service could not be reached (connection refused, timeout, TLS, cut connection).
    #[error("cannot reach the S3 service at {endpoint}: {source}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport's error.
        #[source]
        source: io::Error,
    },
    /// Any other error the service answered.
    #[error("S3 answered HTTP {status} {code}: {message}")]
    Service {
        /// The HTTP status (200 for an error inside a successful `CompleteMultipartUpload`).
        status: u16,
        /// The S3 error code, e.g. `EntityTooSmall` (empty when the answer had none).
        code: String,
        /// The service's message.
        message: String,
    },
    /// The service answered something this client cannot understand.
    #[error("unexpected answer from the S3 service: {0}")]
    BadResponse(String),
    /// The configuration cannot make requests (e.g. a malformed endpoint).
    #[error("bad S3 configuration: {0}")]
    Config(String),
}

impl S3Error {
    /// What went wrong in a few words, without the endpoint or the store's own message: what a
    /// client of the server may read.
    pub fn summary(&self) -> String {
        match self {
            S3Error::NotFound => "an object is missing".into(),
            S3Error::PreconditionFailed => "an object changed meanwhile".into(),
            S3Error::Denied { .. } => "it denied access".into(),
            S3Error::NoSuchBucket { .. } => "its bucket is missing".into(),
            S3Error::Unreachable { .. } => "it cannot be reached; try again later".into(),
            S3Error::Service { status, code, .. } => format!("it answered HTTP {status} {code}"),
            S3Error::BadResponse(_) => "its answer could not be read".into(),
            S3Error::Config(_) => "it is misconfigured".into(),
        }
    }

    /// The error an S3 error answer stands for: `status` and its XML `body` (possibly empty,
    /// as for `HEAD`).
    pub(crate) fn from_answer(status: u16, body: &str, bucket: &str) -> S3Error {
        let xml::ErrorAnswer { code, message } = xml::parse(body).unwrap_or_default();
        match (status, code.as_str()) {
            (_, "PreconditionFailed" | "ConditionalRequestConflict") | (412, _) => {
                S3Error::PreconditionFailed
            }
            (_, "NoSuchBucket") => S3Error::NoSuchBucket {
                bucket: bucket.to_owned(),
            },
            (_, "NoSuchKey" | "NoSuchUpload") | (404, "") => S3Error::NotFound,
            (401 | 403, _) => S3Error::Denied {
                message: match (code.is_empty(), message.is_empty()) {
                    (true, _) => format!("HTTP {status}"),
                    (false, true) => code,
                    (false, false) => format!("{code}: {message}"),
                },
            },
            _ => S3Error::Service {
                status,
                code,
                message,
            },
        }
    }

    /// Whether repeating the same idempotent request may succeed: transport errors and the
    /// service's 5xx and throttling answers.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            S3Error::Unreachable { .. } => true,
            S3Error::Service { status, code, .. } => {
                *status >= 500 || code == "SlowDown" || code == "RequestTimeout"
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str, message: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><Resource>/b/k</Resource></Error>"
        )
    }

    #[test]
    fn classifies_answers() {
        assert!(matches!(
            S3Error::from_answer(404, "", "b"),
            S3Error::NotFound
        ));
        assert!(matches!(
            S3Error::from_answer(404, &error("NoSuchKey", "x"), "b"),
            S3Error::NotFound
        ));
        assert!(matches!(
            S3Error::from_answer(404, &error("NoSuchBucket", "x"), "b"),
            S3Error::NoSuchBucket { .. }
        ));
        assert!(matches!(
            S3Error::from_answer(412, "", "b"),
            S3Error::PreconditionFailed
        ));
        assert!(matches!(
            S3Error::from_answer(409, &error("ConditionalRequestConflict", "x"), "b"),
            S3Error::PreconditionFailed
        ));
        assert!(matches!(
            S3Error::from_answer(200, &error("PreconditionFailed", "x"), "b"),
            S3Error::PreconditionFailed
        ));
        let denied =
            S3Error::from_answer(403, &error("SignatureDoesNotMatch", "bad &amp; sad"), "b");
        let message = denied.to_string();
        assert!(
            message.contains("SignatureDoesNotMatch: bad & sad"),
            "{message}"
        );
        assert!(message.contains("check the access key"), "{message}");
        match S3Error::from_answer(400, &error("EntityTooSmall", "small"), "b") {
            S3Error::Service {
                status: 400,
                code,
                message,
            } => {
                assert_eq!(
                    (code.as_str(), message.as_str()),
                    ("EntityTooSmall", "small")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(S3Error::from_answer(503, &error("SlowDown", ""), "b").is_transient());
        assert!(!S3Error::from_answer(400, &error("InvalidPart", ""), "b").is_transient());
    }
}
