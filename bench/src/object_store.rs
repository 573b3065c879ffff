//! The large put and get, and many clients, against an object store (`--store seaweedfs` or
//! `--store s3://…`): the same transfers as the tmpfs rows, through one in-process node whose
//! files live in the bucket. Verified without reading the bucket directly: the digest the node
//! acknowledged, the size it lists, and the digest of the download.

use std::path::Path;

use anyhow::ensure;
use ferry_client::GetOptions;
use ferry_protocol::Digest;
use ferry_server::{Server, ServerHandle};
use ferry_sim::store::Store;

use crate::scenarios::{self, ManyResult};
use crate::stats::{Stopwatch, Timing};

/// The name the large file is stored under.
const BIG: &str = "ferry-bench/big.bin";

/// One plaintext node over `store`.
fn start_node(store: &Store) -> anyhow::Result<ServerHandle> {
    let mut config = store.server_config(0);
    config.max_connections = 4096;
    config.engine = scenarios::engine();
    Ok(Server::start(config)?)
}

/// A large put of `source` into the store, then a get of it into `dest`, each timed; both
/// verified; the stored file is removed afterwards.
pub fn large_put_get(
    store: &Store,
    source: &Path,
    digest: Digest,
    dest: &Path,
) -> anyhow::Result<(Timing, Timing)> {
    let node = start_node(store)?;
    let mut client = scenarios::connect(node.local_addr())?;
    let watch = Stopwatch::start();
    let report = client.put_file(source, BIG, &scenarios::put_options(), &mut |_| {})?;
    let put = watch.stop();
    ensure!(
        report.digest == digest,
        "the store acknowledged a different digest"
    );
    let listed = client.list("ferry-bench/")?;
    ensure!(
        listed
            .iter()
            .any(|e| e.name == BIG && e.size == report.size),
        "the node does not list {BIG} with its {} bytes: {listed:?}",
        report.size
    );
    if dest.exists() {
        std::fs::remove_file(dest)?;
    }
    let watch = Stopwatch::start();
    let got = client.get_file(BIG, dest, &GetOptions::default(), &mut |_| {})?;
    let get = watch.stop();
    ensure!(got.digest == digest, "downloaded a different digest");
    ensure!(
        std::fs::metadata(dest)?.len() == got.size,
        "downloaded size differs"
    );
    std::fs::remove_file(dest)?;
    client.remove(BIG)?;
    drop(client);
    node.shutdown();
    Ok((put, get))
}

/// `clients` clients each put `size` bytes at once into the store through one node.
pub fn many_clients(store: &Store, clients: usize, size: usize) -> anyhow::Result<ManyResult> {
    let node = start_node(store)?;
    let result = scenarios::many_clients_on(node.local_addr(), clients, size);
    node.shutdown();
    result
}
