//! The client against a real S3 service, the shared SeaweedFS of `ferry-testkit` (skipped,
//! saying so, when it is not installed and not required): one file per kind of request.

use std::io::Read;

use ferry_testkit::SeaweedFs;

use crate::store::s3::{S3Client, S3Config, S3Error};

mod errors;
mod listing;
mod multipart;
mod objects;

pub(super) const MIB: usize = 1024 * 1024;

/// A client of the shared SeaweedFS and a key prefix of this test's own, or `None` when
/// SeaweedFS is not installed (and not required).
pub(super) fn setup(tag: &str) -> Option<(S3Client, String)> {
    let weed = SeaweedFs::for_tests()?;
    let client = S3Client::new(&S3Config::seaweedfs(weed, "")).unwrap();
    Some((client, format!("{}/", SeaweedFs::unique_prefix(tag))))
}

/// `len` bytes that differ with `seed` and position.
pub(super) fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(2654435761)
                .wrapping_add(u64::from(seed)) as u8
                >> 1
                ^ seed
        })
        .collect()
}

pub(super) fn read_all(
    key: &str,
    client: &S3Client,
    offset: u64,
    if_match: Option<&str>,
) -> Result<Vec<u8>, S3Error> {
    let mut out = Vec::new();
    client
        .get_range(key, offset, if_match)?
        .read_to_end(&mut out)
        .unwrap();
    Ok(out)
}
