//! What the client says when it cannot work: wrong keys, a missing bucket, an endpoint where
//! nothing listens.

use std::time::Duration;

use ferry_testkit::SeaweedFs;

use crate::store::s3::{PutCondition, S3Client, S3Config, S3Error};

#[test]
fn wrong_secret_is_denied() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    S3Client::new(&S3Config::seaweedfs(weed, "/a b/ü/"))
        .unwrap()
        .check_access()
        .unwrap();
    let mut config = S3Config::seaweedfs(weed, "");
    config.secret_key.push('x');
    let s3 = S3Client::new(&config).unwrap();
    let error = s3.check_access().unwrap_err();
    assert!(matches!(error, S3Error::Denied { .. }), "{error:?}");
    assert!(
        error.to_string().contains("check the access key"),
        "{error}"
    );
    assert!(matches!(
        s3.put("k", b"x", PutCondition::Always),
        Err(S3Error::Denied { .. })
    ));
    config.access_key = "NOSUCHKEY".into();
    assert!(matches!(
        S3Client::new(&config).unwrap().check_access(),
        Err(S3Error::Denied { .. })
    ));
}

#[test]
fn missing_bucket_is_named() {
    let Some(weed) = SeaweedFs::for_tests() else {
        return;
    };
    let mut config = S3Config::seaweedfs(weed, "");
    config.bucket = "no-such-bucket-here".into();
    let error = S3Client::new(&config).unwrap().check_access().unwrap_err();
    assert!(matches!(error, S3Error::NoSuchBucket { .. }), "{error:?}");
}

#[test]
fn unreachable_endpoint() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = S3Config::from_url(
        "s3://bucket",
        format!("http://127.0.0.1:{port}"),
        "us-east-1",
        "a",
        "b",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let error = S3Client::new(&config).unwrap().check_access().unwrap_err();
    assert!(matches!(error, S3Error::Unreachable { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "retries took {:?}",
        started.elapsed()
    );
    assert!(matches!(
        S3Client::new(&S3Config {
            endpoint: "ftp://x".into(),
            ..config
        }),
        Err(S3Error::Config(_))
    ));
}
