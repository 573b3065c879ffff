//! Multipart uploads: completion with and without conditions, parts too small, abort.

use super::{MIB, data, read_all, setup};
use crate::store::s3::{PutCondition, S3Error};

#[test]
fn multipart_upload_complete_and_conditions() {
    let Some((s3, p)) = setup("multipart") else {
        return;
    };
    let key = format!("{p}parts.bin");
    let parts = [data(5 * MIB, 1), data(5 * MIB, 2), data(1234, 3)];
    let id = s3.create_multipart(&key).unwrap();
    let mut etags = Vec::new();
    for (n, part) in parts.iter().enumerate() {
        let number = n as u16 + 1;
        etags.push((number, s3.upload_part(&key, &id, number, part).unwrap()));
    }
    assert!(
        s3.list_multipart_uploads(&p)
            .unwrap()
            .iter()
            .any(|u| u.key == key && u.upload_id == id)
    );
    let etag = s3
        .complete_multipart(&key, &id, &etags, PutCondition::IfAbsent)
        .unwrap();
    let whole = parts.concat();
    assert_eq!(
        read_all(&key, &s3, 0, Some(&etag)).unwrap().len(),
        whole.len()
    );
    assert!(read_all(&key, &s3, 0, None).unwrap() == whole);
    assert!(read_all(&key, &s3, 6 * MIB as u64, None).unwrap() == whole[6 * MIB..]);
    assert_eq!(s3.head(&key).unwrap().unwrap().etag, etag);

    // A second upload to the same key may not complete over it with IfAbsent, and the
    // object keeps its content.
    let id2 = s3.create_multipart(&key).unwrap();
    let e1 = s3.upload_part(&key, &id2, 1, b"small last part").unwrap();
    assert!(matches!(
        s3.complete_multipart(&key, &id2, &[(1, e1.clone())], PutCondition::IfAbsent),
        Err(S3Error::PreconditionFailed)
    ));
    assert!(matches!(
        s3.complete_multipart(
            &key,
            &id2,
            &[(1, e1.clone())],
            PutCondition::IfMatch("\"0123\"".into())
        ),
        Err(S3Error::PreconditionFailed)
    ));
    assert!(read_all(&key, &s3, 0, Some(&etag)).unwrap() == whole);
    // With the right ETag it replaces the object.
    let etag2 = s3
        .complete_multipart(&key, &id2, &[(1, e1)], PutCondition::IfMatch(etag))
        .unwrap();
    assert_eq!(
        s3.get_small(&key, 100).unwrap().unwrap(),
        (s3.head(&key).unwrap().unwrap(), b"small last part".to_vec())
    );
    assert_eq!(s3.head(&key).unwrap().unwrap().etag, etag2);
}

#[test]
fn multipart_small_parts_and_abort() {
    let Some((s3, p)) = setup("abort") else {
        return;
    };
    let key = format!("{p}aborted");
    let id = s3.create_multipart(&key).unwrap();
    let e1 = s3.upload_part(&key, &id, 1, b"too small").unwrap();
    let e2 = s3.upload_part(&key, &id, 2, b"last").unwrap();
    match s3.complete_multipart(&key, &id, &[(1, e1), (2, e2)], PutCondition::Always) {
        Err(S3Error::Service { code, .. }) => assert_eq!(code, "EntityTooSmall"),
        other => panic!("{other:?}"),
    }
    s3.abort_multipart(&key, &id).unwrap();
    s3.abort_multipart(&key, &id).unwrap();
    assert!(
        !s3.list_multipart_uploads(&p)
            .unwrap()
            .iter()
            .any(|u| u.upload_id == id)
    );
    assert_eq!(s3.head(&key).unwrap(), None);
    assert!(matches!(
        s3.upload_part(&key, &id, 1, b"x"),
        Err(S3Error::NotFound)
    ));
}
