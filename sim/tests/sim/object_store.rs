//! The socket mode over an object store: three nodes over one SeaweedFS bucket behind the
//! round-robin balancer, cuts and stalls included, several files large enough for multipart
//! uploads of more than one part, and every byte checked through the nodes afterwards.

use ferry_sim::plan::{Op, draw_plan};
use ferry_sim::sockets::{SocketConfig, run};
use ferry_sim::store::{SeaweedFs, StoreSpec};

/// S3's smallest part (but the last), and the nodes' part size here: files past it are
/// uploaded in several parts.
const PART: u64 = 5 * 1024 * 1024;

/// 40 clients, files mostly small but about one in twelve up to 12 MiB, links no slower than
/// 4 MiB/s (so the large files take seconds, not minutes).
fn large_files_run(seed: u64) -> SocketConfig {
    let mut config = SocketConfig::ci(40, seed);
    config.plan.max_size = 12 * 1024 * 1024;
    config.plan.large_chance = 0.08;
    config.slowest_link = 4 * 1024 * 1024;
    config
}

/// Uploads in the run's plans larger than one part.
fn multipart_uploads(config: &SocketConfig) -> usize {
    (0..config.clients)
        .flat_map(|id| {
            let hostile = config.hostile_every > 0 && id % config.hostile_every == config.hostile_every - 1;
            draw_plan(config.seed, id, hostile, &config.plan)
        })
        .filter(|op| matches!(op, Op::Put { content, .. } | Op::PutShared { content, .. } if content.size > PART))
        .count()
}

#[test]
fn three_nodes_over_seaweedfs_with_cuts_keep_every_promise() {
    let Some(seaweedfs) = SeaweedFs::for_tests() else {
        return;
    };
    let mut config = large_files_run(21);
    config.nodes = 3;
    config.s3_part_size = Some(PART);
    config.store = StoreSpec::Object(seaweedfs.config(&SeaweedFs::unique_prefix("sim-nodes")));
    let multipart = multipart_uploads(&config);
    assert!(multipart >= 4, "only {multipart} uploads past {PART} bytes");
    let summary = run(&config).expect("run starts");
    for breach in &summary.breaches {
        eprintln!("{breach}");
    }
    eprintln!("{}", summary.table());
    assert!(summary.passed(), "{} breaches", summary.breaches.len());
    assert_eq!(summary.unexpected_failures, 0);
    assert_eq!(summary.nodes, 3);
    assert!(
        summary.node_connections.iter().all(|&n| n > 5),
        "connections per node: {:?}",
        summary.node_connections
    );
    let fault = |kind: &str| summary.faults.get(kind).copied().unwrap_or(0);
    assert!(fault("cut") > 5, "cuts: {}", fault("cut"));
    assert!(summary.resumes > 0);
    // Cut connections were retried on other nodes and acknowledged there. (Whether one also
    // goes on from a part past the first depends on where the cuts fall; the table shows it.)
    assert!(
        summary.uploads_retried_on_other_node > 0,
        "no upload was retried on another node"
    );
    assert!(summary.files_listed > 0);
    assert_eq!(
        summary.files_checked, summary.files_listed,
        "a listed file went unchecked"
    );
}
