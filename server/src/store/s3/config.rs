//! Where the S3 store lives: endpoint, region, bucket, key prefix and credentials.

use std::fmt;

/// An S3-compatible bucket (and a prefix in it) to store files in. Requests use path-style
/// addressing (`ENDPOINT/BUCKET/KEY`), which SeaweedFS needs and AWS accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// The service's URL, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:8333`.
    pub endpoint: String,
    /// The region requests are signed for, e.g. `us-east-1`.
    pub region: String,
    /// The bucket's name.
    pub bucket: String,
    /// The prefix of every key, without leading or trailing `/` (empty: the bucket's root).
    /// Use [`S3Config::key`] to build keys.
    pub prefix: String,
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
}

/// A bucket location that is not of the form `s3://BUCKET[/PREFIX]`.
#[derive(Debug, thiserror::Error)]
#[error("bad S3 location {url:?}: {reason} (expected s3://BUCKET or s3://BUCKET/PREFIX)")]
pub struct S3UrlError {
    /// The location given.
    pub url: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl S3Config {
    /// A configuration from a location `s3://BUCKET[/PREFIX]` and the service's endpoint,
    /// region and keys. The prefix may be empty or have any number of slashes around it.
    ///
    /// # Errors
    ///
    /// When `url` does not start with `s3://` or its bucket name is not 3 to 63 lowercase
    /// letters, digits, `.` and `-`.
    pub fn from_url(
        url: &str,
        endpoint: impl Into<String>,
        region: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Result<S3Config, S3UrlError> {
        let error = |reason| S3UrlError {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| error("it does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if !(3..=63).contains(&bucket.len()) {
            return Err(error("a bucket name has 3 to 63 characters"));
        }
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return Err(error(
                "a bucket name has only lowercase letters, digits, '.' and '-'",
            ));
        }
        Ok(S3Config {
            endpoint: endpoint.into(),
            region: region.into(),
            bucket: bucket.to_owned(),
            prefix: Self::normalise_prefix(prefix),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        })
    }

    /// `prefix` without leading, trailing or doubled `/`.
    pub fn normalise_prefix(prefix: &str) -> String {
        prefix
            .split('/')
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The full object key of `name` (a ferry name, or any key relative to the prefix):
    /// `PREFIX/name`, or `name` when the prefix is empty.
    pub fn key(&self, name: &str) -> String {
        let name = name.trim_start_matches('/');
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// The prefix every key of this configuration starts with: `PREFIX/`, or empty.
    pub fn key_prefix(&self) -> String {
        self.key("")
    }
}

/// For this crate's own tests: `ferry_testkit::SeaweedFs::config` gives the `S3Config` of the
/// `ferry_server` other crates link, a different type from the one these tests compile.
#[cfg(test)]
impl S3Config {
    /// The bucket of a private SeaweedFS, with keys under `prefix`.
    pub(crate) fn seaweedfs(weed: &ferry_testkit::SeaweedFs, prefix: &str) -> S3Config {
        S3Config {
            endpoint: weed.endpoint().to_owned(),
            region: weed.region().to_owned(),
            bucket: weed.bucket().to_owned(),
            prefix: Self::normalise_prefix(prefix),
            access_key: weed.access_key().to_owned(),
            secret_key: weed.secret_key().to_owned(),
        }
    }
}

/// Shows everything but the secret key.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<hidden>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> Result<S3Config, S3UrlError> {
        S3Config::from_url(url, "http://127.0.0.1:1", "us-east-1", "AK", "SK")
    }

    #[test]
    fn parses_bucket_and_prefix() {
        let c = config("s3://ferry-data").unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("ferry-data", ""));
        assert_eq!(c.key("a/b.txt"), "a/b.txt");
        assert_eq!(c.key_prefix(), "");
        for url in [
            "s3://ferry-data/team/x",
            "s3://ferry-data//team/x/",
            "s3://ferry-data/team//x//",
        ] {
            let c = config(url).unwrap();
            assert_eq!(c.prefix, "team/x", "{url}");
            assert_eq!(c.key("f"), "team/x/f");
            assert_eq!(c.key_prefix(), "team/x/");
        }
        assert_eq!(config("s3://ferry-data/").unwrap().prefix, "");
    }

    #[test]
    fn refuses_bad_locations() {
        for url in [
            "ferry-data",
            "http://ferry-data",
            "s3://a",
            "s3://Upper",
            "s3:///x",
            "s3://a_b_c",
        ] {
            assert!(config(url).is_err(), "{url}");
        }
        let message = config("s3://a").unwrap_err().to_string();
        assert!(message.contains("3 to 63"), "{message}");
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", config("s3://ferry-data").unwrap());
        assert!(!shown.contains("SK\""), "{shown}");
        assert!(shown.contains("<hidden>"));
    }
}
