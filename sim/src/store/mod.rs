//! Where the servers of a run keep their files, as `--store` names it: a folder, an S3 bucket
//! (`s3://BUCKET/PREFIX`), or a private SeaweedFS started for the run. The simulator and the
//! benchmark share it, so both take the same flags ([`StoreArgs`]).
//!
//! A folder serves one node; an object store serves any number of nodes at once, each with
//! a local folder of its own (for its TLS identity and the like) and the files in the bucket.

mod args;

use std::io;
use std::path::{Path, PathBuf};

use ferry_server::ServerConfig;
pub use ferry_server::{S3Config, S3UrlError};
pub use ferry_testkit::SeaweedFs;

pub use self::args::StoreArgs;

/// Where the servers keep files, before anything is started.
#[derive(Clone, Debug, Default)]
pub enum StoreSpec {
    /// A fresh temporary folder, removed afterwards (the default).
    #[default]
    TempFolder,
    /// This folder (one node only).
    Folder(PathBuf),
    /// A bucket and prefix of an S3 service that is already running.
    Object(S3Config),
    /// A private SeaweedFS started for the run (and stopped after it), under a fresh prefix.
    SeaweedFs,
}

impl StoreSpec {
    /// Whether several nodes can share this store (an object store can; a folder cannot).
    pub fn is_object_store(&self) -> bool {
        matches!(self, StoreSpec::Object(_) | StoreSpec::SeaweedFs)
    }
}

/// Why a store could not be named or opened; each says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `--store s3://…` without `--s3-endpoint`.
    #[error("an s3:// store needs --s3-endpoint (for example --s3-endpoint http://127.0.0.1:8333)")]
    NoEndpoint,
    /// `--s3-endpoint` with a store that is not `s3://…`.
    #[error("--s3-endpoint is only for an s3:// store (--store s3://BUCKET/PREFIX)")]
    EndpointWithoutS3,
    /// An S3 key is missing from the environment.
    #[error("an s3:// store takes its keys from the environment, and {0} is not set")]
    NoKey(&'static str),
    /// The `s3://` location does not parse.
    #[error(transparent)]
    Url(#[from] S3UrlError),
    /// The private SeaweedFS did not start.
    #[error("cannot start SeaweedFS for the run: {0}")]
    SeaweedFs(#[source] io::Error),
    /// The temporary folder could not be made.
    #[error("cannot create a temporary folder: {0}")]
    TempDir(#[source] io::Error),
}

/// A store ready for servers. It holds its temporary folder, and the SeaweedFS it started, until
/// it is dropped.
#[derive(Debug)]
pub struct Store {
    /// Node roots of an object store; the files themselves for the default store.
    scratch: tempfile::TempDir,
    folder: Option<PathBuf>,
    object: Option<S3Config>,
    /// Dropped after the servers (declared last; the owner drops its servers first).
    _seaweedfs: Option<SeaweedFs>,
    label: String,
    kind: &'static str,
}

impl Store {
    /// Opens the store `spec` names: makes the temporary folder, or starts SeaweedFS.
    ///
    /// # Errors
    ///
    /// When the temporary folder cannot be made or SeaweedFS does not start (for instance
    /// when `weed` is not installed: the error says how to get it).
    pub fn open(spec: &StoreSpec) -> Result<Store, StoreError> {
        let scratch = tempfile::Builder::new()
            .prefix("ferry-store-")
            .tempdir()
            .map_err(StoreError::TempDir)?;
        let mut store = Store {
            scratch,
            folder: None,
            object: None,
            _seaweedfs: None,
            label: String::new(),
            kind: "folder",
        };
        match spec {
            StoreSpec::TempFolder => store.label = "temporary folder".into(),
            StoreSpec::Folder(path) => {
                store.label = format!("folder {}", path.display());
                store.folder = Some(path.clone());
            }
            StoreSpec::Object(config) => {
                store.label = format!("{} at {}", location(config), config.endpoint);
                store.kind = "S3";
                store.object = Some(config.clone());
            }
            StoreSpec::SeaweedFs => {
                let seaweedfs = SeaweedFs::start().map_err(StoreError::SeaweedFs)?;
                let config = seaweedfs.config(&SeaweedFs::unique_prefix("ferry-run"));
                store.label = format!("SeaweedFS (private, {})", location(&config));
                store.kind = "SeaweedFS";
                store.object = Some(config);
                store._seaweedfs = Some(seaweedfs);
            }
        }
        Ok(store)
    }

    /// What the store is, for reports: `temporary folder`, `folder PATH`,
    /// `s3://BUCKET/PREFIX at ENDPOINT` or `SeaweedFS (private, s3://BUCKET/PREFIX)`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// What kind of store it is, in a word for labels: `folder`, `S3` or `SeaweedFS`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The bucket, when the store is an object store.
    pub fn object_store(&self) -> Option<&S3Config> {
        self.object.as_ref()
    }

    /// A folder of the run's own that is no node's storage (for a TLS identity shared by
    /// every node, say); removed with the store.
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// A server configuration (with [`ServerConfig::new`]'s defaults otherwise) for node
    /// `node`: rooted on the folder, or on a local folder of its own with the files in the
    /// bucket. Only node 0 of a folder store makes sense.
    pub fn server_config(&self, node: usize) -> ServerConfig {
        match (&self.folder, &self.object) {
            (Some(folder), _) => ServerConfig::new(folder),
            (None, Some(object)) => {
                let mut config = ServerConfig::new(self.scratch().join(format!("node-{node}")));
                config.object_store = Some(object.clone());
                config
            }
            (None, None) => ServerConfig::new(self.scratch().join("root")),
        }
    }
}

/// `s3://BUCKET/PREFIX`, for reports.
fn location(config: &S3Config) -> String {
    format!("s3://{}/{}", config.bucket, config.prefix)
}
