//! Where the files live, as flags: the storage root or an S3-compatible bucket and how to reach
//! it. Serving and `ferryd scrub` take the same flags, declared once here.

use std::path::PathBuf;

use ferry_server::S3Config;

/// The store flags shared by serving and `ferryd scrub`.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Storage root: files are stored under their names inside it (the server creates it if
    /// missing).
    #[arg(long, env = "FERRY_ROOT", default_value = "./ferry-data")]
    pub root: PathBuf,

    /// Keep files in an S3-compatible bucket instead of --root: `s3://BUCKET` or
    /// `s3://BUCKET/PREFIX`. Every ferryd given the same bucket and prefix serves one namespace
    /// (run several behind a TCP load balancer); --root then only keeps this node's TLS
    /// identity.
    #[arg(long, env = "FERRY_STORE", value_name = "s3://BUCKET/PREFIX")]
    pub store: Option<String>,

    /// The object store's URL [default: AWS S3 in --s3-region].
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL", requires = "store")]
    pub s3_endpoint: Option<String>,

    /// The region requests to the object store are signed for.
    #[arg(
        long,
        env = "AWS_REGION",
        default_value = "us-east-1",
        requires = "store"
    )]
    pub s3_region: String,

    /// The object store's access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", requires = "store")]
    pub s3_access_key: Option<String>,

    /// The object store's secret key (prefer the environment variable: arguments are visible
    /// to other users of the machine).
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        requires = "store"
    )]
    pub s3_secret_key: Option<String>,
}

impl StoreArgs {
    /// The object store named by `--store` and its flags, if any.
    pub fn object_store(&self) -> anyhow::Result<Option<S3Config>> {
        let Some(location) = &self.store else {
            return Ok(None);
        };
        let endpoint = self
            .s3_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.s3_region));
        let (Some(access_key), Some(secret_key)) = (&self.s3_access_key, &self.s3_secret_key)
        else {
            anyhow::bail!(
                "--store needs the object store's keys: set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (or --s3-access-key and --s3-secret-key)"
            );
        };
        Ok(Some(S3Config::from_url(
            location,
            endpoint,
            &self.s3_region,
            access_key,
            secret_key,
        )?))
    }
}
