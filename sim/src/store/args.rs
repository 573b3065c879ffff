//! The `--store`, `--s3-endpoint` and `--s3-region` flags, as the simulator and the benchmark
//! both take them.

use std::path::PathBuf;

use super::{S3Config, StoreError, StoreSpec};

/// The environment variable holding the S3 access key id.
pub const ACCESS_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";

/// The environment variable holding the S3 secret access key.
pub const SECRET_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";

/// Where the servers keep files; flatten it into a command line with `#[command(flatten)]`.
#[derive(Clone, Debug, clap::Args)]
pub struct StoreArgs {
    /// Where the servers keep files: a folder; `s3://BUCKET/PREFIX` (an S3 service at
    /// --s3-endpoint, keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); or `seaweedfs`
    /// (a private SeaweedFS started for the run, from FERRY_WEED or `weed` on PATH).
    /// Default: a fresh temporary folder.
    #[arg(long, value_name = "PATH|s3://BUCKET/PREFIX|seaweedfs")]
    pub store: Option<String>,
    /// The S3 service of an `s3://` store, e.g. http://127.0.0.1:8333.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The region S3 requests are signed for.
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    pub s3_region: String,
}

impl StoreArgs {
    /// The store the flags name, with the keys of an `s3://` store read from the environment.
    ///
    /// # Errors
    ///
    /// An `s3://` store without `--s3-endpoint`, or without its keys in the environment, or
    /// whose location does not parse; `--s3-endpoint` with any other store.
    pub fn spec(&self) -> Result<StoreSpec, StoreError> {
        self.spec_with(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`StoreArgs::spec`], reading variables through `env`.
    fn spec_with(&self, env: impl Fn(&str) -> Option<String>) -> Result<StoreSpec, StoreError> {
        let store = self.store.as_deref().unwrap_or("");
        if !store.starts_with("s3://") && self.s3_endpoint.is_some() {
            return Err(StoreError::EndpointWithoutS3);
        }
        Ok(match store {
            "" => StoreSpec::TempFolder,
            "seaweedfs" => StoreSpec::SeaweedFs,
            url if url.starts_with("s3://") => {
                let endpoint = self.s3_endpoint.clone().ok_or(StoreError::NoEndpoint)?;
                let access_key = env(ACCESS_KEY_ENV).ok_or(StoreError::NoKey(ACCESS_KEY_ENV))?;
                let secret_key = env(SECRET_KEY_ENV).ok_or(StoreError::NoKey(SECRET_KEY_ENV))?;
                StoreSpec::Object(S3Config::from_url(
                    url,
                    endpoint,
                    self.s3_region.clone(),
                    access_key,
                    secret_key,
                )?)
            }
            path => StoreSpec::Folder(PathBuf::from(path)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(store: Option<&str>, endpoint: Option<&str>) -> StoreArgs {
        StoreArgs {
            store: store.map(str::to_owned),
            s3_endpoint: endpoint.map(str::to_owned),
            s3_region: "eu-west-3".into(),
        }
    }

    fn keys(name: &str) -> Option<String> {
        Some(format!("{name}-value"))
    }

    #[test]
    fn each_form_of_store_is_recognised() {
        assert!(matches!(
            args(None, None).spec_with(keys),
            Ok(StoreSpec::TempFolder)
        ));
        assert!(matches!(
            args(Some("seaweedfs"), None).spec_with(keys),
            Ok(StoreSpec::SeaweedFs)
        ));
        match args(Some("/srv/ferry"), None).spec_with(keys) {
            Ok(StoreSpec::Folder(path)) => assert_eq!(path, PathBuf::from("/srv/ferry")),
            other => panic!("{other:?}"),
        }
        let s3 = args(Some("s3://my-bucket/runs/a"), Some("http://127.0.0.1:9000"));
        match s3.spec_with(keys) {
            Ok(StoreSpec::Object(config)) => {
                assert_eq!(config.bucket, "my-bucket");
                assert_eq!(config.prefix, "runs/a");
                assert_eq!(config.endpoint, "http://127.0.0.1:9000");
                assert_eq!(config.region, "eu-west-3");
                assert_eq!(config.access_key, "AWS_ACCESS_KEY_ID-value");
                assert_eq!(config.secret_key, "AWS_SECRET_ACCESS_KEY-value");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_incomplete_s3_store_says_what_is_missing() {
        let no_endpoint = args(Some("s3://my-bucket"), None).spec_with(keys);
        assert!(matches!(no_endpoint, Err(StoreError::NoEndpoint)));
        let no_secret = args(Some("s3://my-bucket"), Some("http://h:1"))
            .spec_with(|name| (name == ACCESS_KEY_ENV).then(|| "id".to_owned()));
        assert!(matches!(no_secret, Err(StoreError::NoKey(SECRET_KEY_ENV))));
        let stray = args(Some("/srv/ferry"), Some("http://h:1")).spec_with(keys);
        assert!(matches!(stray, Err(StoreError::EndpointWithoutS3)));
    }
}
