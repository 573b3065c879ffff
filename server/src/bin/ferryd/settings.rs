//! From settings to a server: the [`ServerConfig`] the flags describe, and `ferryd
//! check-config`, which checks a config file as far as can be done without starting.

use std::ffi::OsString;
use std::path::Path;

use ferry_server::{SeedCompatConfig, ServerConfig, TlsIdentity, Tokens};

use crate::args::Args;

/// The server configuration `args` describe. Makes the self-signed certificate on first start.
pub fn server_config(args: &Args) -> anyhow::Result<ServerConfig> {
    let mut config = ServerConfig::new(&args.storage.root);
    config.listen = args.listen;
    config.max_connections = args.max_connections;
    config.max_connections_per_ip = Some(args.max_connections_per_ip);
    config.engine = args.engine.parse().map_err(anyhow::Error::msg)?;
    config.max_file_size = args.max_file_size;
    config.quota = args.quota;
    config.idle_timeout = args.idle_timeout;
    config.handshake_timeout = args.handshake_timeout;
    config.staging_max_age = args.staging_max_age;
    config.shutdown_grace = args.shutdown_grace;
    config.checkpoint_interval = args.checkpoint_interval;
    config.object_store = args.storage.object_store()?;
    config.s3_part_size = args.s3_part_size;
    config.tls = tls_identity(args)?;
    config.tokens = match &args.tokens {
        Some(path) => Some(Tokens::from_file(path)?),
        None => None,
    };
    config.metrics = args.metrics;
    config.limit_rate = args.limit_rate;
    config.limit_rate_per_connection = args.limit_rate_per_connection;
    config.seed_compat = args.seed_compat.map(|listen| SeedCompatConfig {
        overwrite: args.seed_compat_overwrite,
        name_pause: args.seed_compat_pause,
        ..SeedCompatConfig::new(listen)
    });
    if config.tokens.is_some() && config.seed_compat.is_some() {
        tracing::warn!(
            "--tokens does not protect the --seed-compat listener: the original protocol has no \
             authentication, so anyone who reaches it can upload"
        );
    }
    Ok(config)
}

/// `ferryd check-config FILE`: resolves the settings exactly as `ferryd --config FILE` would
/// (environment included), then checks what can be checked without starting: the log filter,
/// the object store's location and keys, the tokens file and a given certificate and key.
/// Prints one line saying what the file sets.
pub fn check_config(file: &Path) -> anyhow::Result<()> {
    let argv = [OsString::from("ferryd"), "--config".into(), file.into()];
    let (args, config_file) = Args::parse_from_with_config(argv)?;
    tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .map_err(|error| anyhow::anyhow!("bad log-level {:?}: {error}", args.log_level))?;
    args.storage.object_store()?;
    if let Some(path) = &args.tokens {
        Tokens::from_file(path)?;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        TlsIdentity::from_pem_files(cert, key)?;
    }
    let keys: Vec<&str> = config_file.iter().flat_map(|file| file.keys()).collect();
    println!(
        "{}: ok, {} setting{} ({}); would listen on {}",
        file.display(),
        keys.len(),
        if keys.len() == 1 { "" } else { "s" },
        if keys.is_empty() {
            "none".to_owned()
        } else {
            keys.join(", ")
        },
        args.listen
    );
    Ok(())
}

/// The TLS identity the flags ask for, or `None` for `--insecure`.
fn tls_identity(args: &Args) -> anyhow::Result<Option<TlsIdentity>> {
    if args.insecure {
        tracing::warn!(
            "--insecure: serving PLAINTEXT; anyone on the network can read and change transfers and tokens"
        );
        return Ok(None);
    }
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => TlsIdentity::from_pem_files(cert, key)?,
        _ => {
            let dir = args
                .state_dir
                .clone()
                .unwrap_or_else(|| args.storage.root.join(ferry_server::DEFAULT_STATE_DIR));
            let identity = TlsIdentity::load_or_create(&dir)?;
            if identity.is_new() {
                tracing::info!(dir = %dir.display(), "made a self-signed TLS certificate");
            }
            identity
        }
    };
    Ok(Some(identity))
}
