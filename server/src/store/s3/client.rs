//! A small blocking S3 client: requests are presigned by `rusty-s3` (signature in the query)
//! and sent by one shared `ureq` agent, whose connection pool all clones use; the server's
//! connection threads each call it directly.
//!
//! Keys are full object keys (the store adds its prefix). Conditions travel as `If-Match` /
//! `If-None-Match` headers, which are signed along with the request. Idempotent requests are
//! retried on transport errors and 5xx answers; conditional writes and completions are not.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use ureq::http::{self, Response};

use super::error::S3Error;
use super::types::{ListPage, ObjectInfo, PendingUpload, PutCondition, parse_time_ms, quoted_etag};
use super::{S3Config, xml};

/// How long a signed URL stays valid: only long enough to send it.
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the service may take to start answering once the request is sent.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one read or write of the connection may stall (bodies have no overall limit).
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The pauses before each retry of an idempotent request.
const RETRY_PAUSES: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1500),
];

/// The most of an error answer's body read to find its code and message.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// The most of a listing's or a multipart answer's body read.
const XML_BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// A blocking client of one bucket. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
}

/// What the clones share.
struct Inner {
    agent: ureq::Agent,
    bucket: Bucket,
    credentials: Credentials,
    endpoint: String,
    /// The configuration's key prefix (`PREFIX/` or empty), for [`S3Client::check_access`].
    key_prefix: String,
}

/// Whether a request may be sent again after a transient failure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Idempotent: retried on transport errors and 5xx.
    Yes,
    /// Conditional or otherwise unsafe to repeat blindly.
    No,
}

impl S3Client {
    /// A client of `config`'s bucket. Makes no request (see [`S3Client::check_access`]).
    ///
    /// # Errors
    ///
    /// [`S3Error::Config`] when the endpoint is not an `http` or `https` URL.
    pub fn new(config: &S3Config) -> Result<S3Client, S3Error> {
        let endpoint = config
            .endpoint
            .parse()
            .map_err(|e| S3Error::Config(format!("endpoint {:?}: {e}", config.endpoint)))?;
        let bucket = Bucket::new(
            endpoint,
            UrlStyle::Path,
            config.bucket.clone(),
            config.region.clone(),
        )
        .map_err(|e| S3Error::Config(format!("endpoint {:?}: {e}", config.endpoint)))?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(ANSWER_TIMEOUT))
            .timeout_per_read(Some(STALL_TIMEOUT))
            .timeout_per_write(Some(STALL_TIMEOUT))
            .max_redirects(0)
            .user_agent(concat!("ferryd/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(S3Client {
            inner: Arc::new(Inner {
                agent,
                bucket,
                credentials: Credentials::new(&config.access_key, &config.secret_key),
                endpoint: config.endpoint.clone(),
                key_prefix: config.key_prefix(),
            }),
        })
    }

    /// Checks that the bucket exists and the keys may list it, by listing one key under the
    /// configuration's prefix (keys allowed only that prefix pass too).
    ///
    /// # Errors
    ///
    /// [`S3Error::Denied`] for wrong keys, [`S3Error::NoSuchBucket`], [`S3Error::Unreachable`].
    pub fn check_access(&self) -> Result<(), S3Error> {
        self.list_page(&self.inner.key_prefix, None, 1).map(drop)
    }

    /// The object's size, ETag and date, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// Any failure but absence.
    pub fn head(&self, key: &str) -> Result<Option<ObjectInfo>, S3Error> {
        let i = &self.inner;
        let answer = self.send(Retry::Yes, http::Method::HEAD, &[], None, |h| {
            sign(i.bucket.head_object(Some(&i.credentials), key), h)
        });
        match answer {
            Ok(response) => self.object_info(key, &response).map(Some),
            Err(S3Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A whole small object and its record, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`S3Error::BadResponse`] when the object is larger than `limit` bytes; any failure but
    /// absence.
    pub fn get_small(
        &self,
        key: &str,
        limit: usize,
    ) -> Result<Option<(ObjectInfo, Vec<u8>)>, S3Error> {
        let i = &self.inner;
        let answer = self.send(Retry::Yes, http::Method::GET, &[], None, |h| {
            sign(i.bucket.get_object(Some(&i.credentials), key), h)
        });
        let mut response = match answer {
            Ok(response) => response,
            Err(S3Error::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let info = self.object_info(key, &response)?;
        if info.size > limit as u64 {
            return Err(S3Error::BadResponse(format!(
                "object {key:?} has {} bytes, more than the {limit} expected",
                info.size
            )));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(limit as u64)
            .read_to_vec()
            .map_err(|e| self.transport(e))?;
        Ok(Some((info, body)))
    }

    /// The object's bytes from `offset` to its end, streamed (the caller reads at its pace,
    /// with bounded memory). With `if_match`, only while the object still has that ETag.
    /// `offset` must be below the object's size.
    ///
    /// # Errors
    ///
    /// [`S3Error::NotFound`]; [`S3Error::PreconditionFailed`] when the ETag differs;
    /// [`S3Error::Service`] with status 416 when `offset` is at or past the end.
    pub fn get_range(
        &self,
        key: &str,
        offset: u64,
        if_match: Option<&str>,
    ) -> Result<Box<dyn Read + Send>, S3Error> {
        let i = &self.inner;
        let range = format!("bytes={offset}-");
        let mut headers = vec![("range", range.as_str())];
        if let Some(etag) = if_match {
            headers.push(("if-match", etag));
        }
        let response = self.send(Retry::Yes, http::Method::GET, &headers, None, |h| {
            sign(i.bucket.get_object(Some(&i.credentials), key), h)
        })?;
        let status = response.status().as_u16();
        if status != 206 && !(status == 200 && offset == 0) {
            return Err(S3Error::BadResponse(format!(
                "a ranged GET of {key:?} from {offset} answered HTTP {status}"
            )));
        }
        Ok(Box::new(
            response
                .into_body()
                .into_with_config()
                .limit(u64::MAX)
                .reader(),
        ))
    }

    /// Writes the object whole if `condition` holds; returns its new ETag.
    ///
    /// # Errors
    ///
    /// [`S3Error::PreconditionFailed`] when the condition does not hold.
    pub fn put(&self, key: &str, body: &[u8], condition: PutCondition) -> Result<String, S3Error> {
        let i = &self.inner;
        let headers: Vec<_> = condition.header().into_iter().collect();
        let retry = if condition == PutCondition::Always {
            Retry::Yes
        } else {
            Retry::No
        };
        let response = self.send(retry, http::Method::PUT, &headers, Some(body), |h| {
            sign(i.bucket.put_object(Some(&i.credentials), key), h)
        })?;
        etag_of(&response)
    }

    /// Copies the object `from`, only while it still has the ETag `from_etag`, to `to` if
    /// `condition` holds there (CopyObject: the new object appears whole, or not at all);
    /// returns the copy's ETag.
    ///
    /// # Errors
    ///
    /// [`S3Error::PreconditionFailed`] when either condition does not hold;
    /// [`S3Error::Service`] for a refusal, including one S3 sends inside a 200 answer.
    pub fn copy(
        &self,
        from: &str,
        from_etag: &str,
        to: &str,
        condition: PutCondition,
    ) -> Result<String, S3Error> {
        let i = &self.inner;
        let source = format!("/{}/{}", i.bucket.name(), percent_encode_key(from));
        let mut headers = vec![
            ("x-amz-copy-source", source.as_str()),
            ("x-amz-copy-source-if-match", from_etag),
        ];
        headers.extend(condition.header());
        let response = self.send(Retry::No, http::Method::PUT, &headers, Some(&[]), |h| {
            sign(i.bucket.put_object(Some(&i.credentials), to), h)
        })?;
        self.etag_answer(response, i.bucket.name())
    }

    /// Deletes the object; an absent one is no error.
    ///
    /// # Errors
    ///
    /// Any failure but absence.
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        let i = &self.inner;
        match self.send(Retry::Yes, http::Method::DELETE, &[], None, |h| {
            sign(i.bucket.delete_object(Some(&i.credentials), key), h)
        }) {
            Ok(_) | Err(S3Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One page of at most `max_keys` objects whose keys start with `prefix`, from the start
    /// or from a previous page's [`ListPage::next`].
    ///
    /// # Errors
    ///
    /// Any failure of the request; [`S3Error::BadResponse`] for an unreadable listing.
    pub fn list_page(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u16,
    ) -> Result<ListPage, S3Error> {
        let i = &self.inner;
        let response = self.send(Retry::Yes, http::Method::GET, &[], None, |h| {
            let mut action = i.bucket.list_objects_v2(Some(&i.credentials));
            if !prefix.is_empty() {
                action.with_prefix(prefix);
            }
            if let Some(token) = continuation {
                action.with_continuation_token(token);
            }
            action.with_max_keys(usize::from(max_keys));
            sign(action, h)
        })?;
        let text = self.read_xml(response)?;
        let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&text)
            .map_err(|e| S3Error::BadResponse(format!("a listing that does not parse: {e}")))?;
        let objects = parsed
            .contents
            .into_iter()
            .map(|o| ObjectInfo {
                etag: o.etag.as_deref().map(quoted_etag).unwrap_or_default(),
                size: o.size.unwrap_or(0),
                modified_ms: o.last_modified.as_deref().map_or(0, parse_time_ms),
                key: o.key,
            })
            .collect();
        Ok(ListPage {
            objects,
            next: parsed.next_continuation_token,
        })
    }

    /// Starts a multipart upload to `key`; returns its upload id.
    ///
    /// # Errors
    ///
    /// Any failure of the request.
    pub fn create_multipart(&self, key: &str) -> Result<String, S3Error> {
        let i = &self.inner;
        let response = self.send(Retry::No, http::Method::POST, &[], Some(&[]), |h| {
            sign(
                i.bucket.create_multipart_upload(Some(&i.credentials), key),
                h,
            )
        })?;
        let text = self.read_xml(response)?;
        let answer = rusty_s3::actions::CreateMultipartUpload::parse_response(&text)
            .map_err(|error| S3Error::BadResponse(format!("{error} in {text:?}")))?;
        Some(answer.upload_id().to_owned())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| S3Error::BadResponse(format!("no upload id in {text:?}")))
    }

    /// Uploads part `part_number` (from 1) of a multipart upload; returns its ETag. Every
    /// part but the last must have at least 5 MiB.
    ///
    /// # Errors
    ///
    /// [`S3Error::NotFound`] when the upload is gone; any failure of the request.
    pub fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u16,
        body: &[u8],
    ) -> Result<String, S3Error> {
        let i = &self.inner;
        let response = self.send(Retry::Yes, http::Method::PUT, &[], Some(body), |h| {
            sign(
                i.bucket
                    .upload_part(Some(&i.credentials), key, part_number, upload_id),
                h,
            )
        })?;
        etag_of(&response)
    }

    /// Completes a multipart upload from its `(part number, ETag)` pairs, in order, if
    /// `condition` holds for `key`; returns the object's ETag.
    ///
    /// # Errors
    ///
    /// [`S3Error::PreconditionFailed`]; [`S3Error::Service`] for refused parts (e.g.
    /// `EntityTooSmall`, `InvalidPart`), including errors S3 sends inside a 200 answer.
    pub fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u16, String)],
        condition: PutCondition,
    ) -> Result<String, S3Error> {
        let i = &self.inner;
        // rusty-s3 numbers the parts 1, 2, … in the order given: they must be that.
        if parts
            .iter()
            .enumerate()
            .any(|(i, (n, _))| usize::from(*n) != i + 1)
        {
            return Err(S3Error::Config(
                "parts must be numbered 1, 2, … in order".into(),
            ));
        }
        let body = i
            .bucket
            .complete_multipart_upload(
                Some(&i.credentials),
                key,
                upload_id,
                parts.iter().map(|(_, etag)| etag.as_str()),
            )
            .body();
        let headers: Vec<_> = condition.header().into_iter().collect();
        let response = self.send(
            Retry::No,
            http::Method::POST,
            &headers,
            Some(body.as_bytes()),
            |h| {
                sign(
                    i.bucket.complete_multipart_upload(
                        Some(&i.credentials),
                        key,
                        upload_id,
                        std::iter::empty::<&str>(), // the body is already made
                    ),
                    h,
                )
            },
        )?;
        self.etag_answer(response, i.bucket.name())
    }

    /// Abandons a multipart upload and its parts; one that is gone already is no error.
    ///
    /// # Errors
    ///
    /// Any failure but absence.
    pub fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        let i = &self.inner;
        match self.send(Retry::Yes, http::Method::DELETE, &[], None, |h| {
            sign(
                i.bucket
                    .abort_multipart_upload(Some(&i.credentials), key, upload_id),
                h,
            )
        }) {
            Ok(_) | Err(S3Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every multipart upload under `prefix` that is neither completed nor aborted (e.g. to
    /// abort the ones a crash left behind).
    ///
    /// # Errors
    ///
    /// Any failure of the requests; [`S3Error::BadResponse`] for an unreadable listing.
    pub fn list_multipart_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, S3Error> {
        let i = &self.inner;
        let mut uploads = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let response = self.send(Retry::Yes, http::Method::GET, &[], None, |h| {
                // `ListMultipartUploads` is not among rusty-s3's actions: sign it with its
                // generic signer (query names sorted, as it requires).
                let mut query = rusty_s3::Map::new();
                query.insert("prefix", prefix.to_owned());
                query.insert("uploads", "");
                if let Some((key, id)) = &markers {
                    query.insert("key-marker", key.clone());
                    query.insert("upload-id-marker", id.clone());
                }
                let mut signed_headers = rusty_s3::Map::new();
                for (name, value) in h {
                    signed_headers.insert(*name, (*value).to_owned());
                }
                rusty_s3::signing::sign(
                    &jiff::Timestamp::now(),
                    rusty_s3::Method::Get,
                    i.bucket.base_url().clone(),
                    i.credentials.key(),
                    i.credentials.secret(),
                    None,
                    i.bucket.region(),
                    SIGNED_FOR.as_secs(),
                    query.iter(),
                    signed_headers.iter(),
                )
                .to_string()
            })?;
            let text = self.read_xml(response)?;
            let page: xml::UploadsPage = xml::parse(&text)?;
            uploads.extend(page.uploads.into_iter().map(|upload| PendingUpload {
                initiated_ms: parse_time_ms(&upload.initiated),
                key: upload.key,
                upload_id: upload.upload_id,
            }));
            if !page.is_truncated {
                return Ok(uploads);
            }
            let next = (page.next_key_marker, page.next_upload_id_marker);
            if next.0.is_empty() || markers.as_ref() == Some(&next) {
                return Err(S3Error::BadResponse(
                    "a truncated upload listing without a new marker".into(),
                ));
            }
            markers = Some(next);
        }
    }

    /// Sends a request signed by `sign` (given the headers to sign), retrying `Retry::Yes`
    /// requests on transient failures; returns a successful (2xx) answer.
    fn send(
        &self,
        retry: Retry,
        method: http::Method,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        sign: impl Fn(&[(&str, &str)]) -> String,
    ) -> Result<Response<ureq::Body>, S3Error> {
        let mut attempt = 0;
        loop {
            let result = self.send_once(&method, headers, body, &sign);
            match result {
                Err(e)
                    if retry == Retry::Yes && e.is_transient() && attempt < RETRY_PAUSES.len() =>
                {
                    tracing::debug!(error = %e, attempt, "S3 request failed; retrying");
                    std::thread::sleep(RETRY_PAUSES[attempt]);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One try of [`S3Client::send`].
    fn send_once(
        &self,
        method: &http::Method,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        sign: &impl Fn(&[(&str, &str)]) -> String,
    ) -> Result<Response<ureq::Body>, S3Error> {
        let url = sign(headers);
        let mut request = http::Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let sent = match body {
            Some(body) => request.body(body).map(|r| self.inner.agent.run(r)),
            None => request.body(()).map(|r| self.inner.agent.run(r)),
        };
        let mut response = sent
            .map_err(|e| S3Error::Config(format!("cannot build the request: {e}")))?
            .map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(ERROR_BODY_LIMIT)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_default();
        Err(S3Error::from_answer(
            status,
            &text,
            self.inner.bucket.name(),
        ))
    }

    /// The ETag of an answer that holds one (a copy's, a completed upload's): an error in a
    /// 200 answer is an error too.
    fn etag_answer(&self, response: Response<ureq::Body>, bucket: &str) -> Result<String, S3Error> {
        let text = self.read_xml(response)?;
        let answer: xml::CompleteAnswer = xml::parse(&text)?;
        if answer.code.is_some() {
            return Err(S3Error::from_answer(200, &text, bucket));
        }
        answer
            .etag
            .map(|etag| quoted_etag(&etag))
            .ok_or_else(|| S3Error::BadResponse(format!("no ETag in {text:?}")))
    }

    /// Reads an XML answer's body.
    fn read_xml(&self, mut response: Response<ureq::Body>) -> Result<String, S3Error> {
        response
            .body_mut()
            .with_config()
            .limit(XML_BODY_LIMIT)
            .read_to_string()
            .map_err(|e| self.transport(e))
    }

    /// A transport error as [`S3Error::Unreachable`].
    fn transport(&self, error: ureq::Error) -> S3Error {
        S3Error::Unreachable {
            endpoint: self.inner.endpoint.clone(),
            source: error.into_io(),
        }
    }

    /// The record of `key` from a HEAD or GET answer's headers.
    fn object_info(
        &self,
        key: &str,
        response: &Response<ureq::Body>,
    ) -> Result<ObjectInfo, S3Error> {
        let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok());
        let size = header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| S3Error::BadResponse(format!("no Content-Length for {key:?}")))?;
        Ok(ObjectInfo {
            key: key.to_owned(),
            size,
            etag: etag_of(response)?,
            modified_ms: header("last-modified").map_or(0, parse_time_ms),
        })
    }
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("endpoint", &self.inner.endpoint)
            .field("bucket", &self.inner.bucket.name())
            .finish_non_exhaustive()
    }
}

/// Signs `action` with `headers` (lowercase names) among its signed headers.
fn sign<'a>(mut action: impl S3Action<'a>, headers: &[(&str, &str)]) -> String {
    for (name, value) in headers {
        action
            .headers_mut()
            .insert((*name).to_owned(), (*value).to_owned());
    }
    action.sign(SIGNED_FOR).to_string()
}

/// `key` as the path of an `x-amz-copy-source` header: every byte but the unreserved ones and
/// `/` percent-encoded.
fn percent_encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The answer's `ETag` header, quoted.
fn etag_of(response: &Response<ureq::Body>) -> Result<String, S3Error> {
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .map(quoted_etag)
        .ok_or_else(|| S3Error::BadResponse("an answer without an ETag".into()))
}

#[cfg(test)]
mod tests;
