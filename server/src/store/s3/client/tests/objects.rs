//! Single objects: put, get, head and delete, conditional puts, ranged streaming reads, and
//! one client shared by several threads.

use std::io::Read;

use super::{MIB, data, read_all, setup};
use crate::store::s3::{PutCondition, S3Client, S3Error};

#[test]
fn put_get_head_delete() {
    let Some((s3, p)) = setup("basic") else {
        return;
    };
    let key = format!("{p}file.txt");
    assert_eq!(s3.head(&key).unwrap(), None);
    assert!(s3.get_small(&key, 100).unwrap().is_none());
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let etag = s3.put(&key, b"hello", PutCondition::Always).unwrap();
    assert!(etag.starts_with('"'), "{etag}");
    let info = s3.head(&key).unwrap().unwrap();
    assert_eq!(
        (info.key.as_str(), info.size, info.etag.as_str()),
        (key.as_str(), 5, etag.as_str())
    );
    assert!(
        info.modified_ms + 2000 >= before && info.modified_ms <= before + 60_000,
        "{info:?} vs {before}"
    );
    let (got, body) = s3.get_small(&key, 100).unwrap().unwrap();
    assert_eq!((got, body.as_slice()), (info.clone(), &b"hello"[..]));
    assert!(matches!(
        s3.get_small(&key, 4),
        Err(S3Error::BadResponse(_))
    ));
    // Empty objects too.
    let empty = format!("{p}empty");
    s3.put(&empty, b"", PutCondition::Always).unwrap();
    assert_eq!(s3.get_small(&empty, 10).unwrap().unwrap().1, b"");
    assert_eq!(s3.head(&empty).unwrap().unwrap().size, 0);
    s3.delete(&key).unwrap();
    s3.delete(&key).unwrap();
    assert_eq!(s3.head(&key).unwrap(), None);
    assert!(matches!(
        s3.get_range(&key, 0, None),
        Err(S3Error::NotFound)
    ));
}

#[test]
fn conditional_puts() {
    let Some((s3, p)) = setup("cond") else { return };
    let key = format!("{p}record");
    let first = s3.put(&key, b"one", PutCondition::IfAbsent).unwrap();
    assert!(matches!(
        s3.put(&key, b"two", PutCondition::IfAbsent),
        Err(S3Error::PreconditionFailed)
    ));
    let second = s3
        .put(&key, b"three", PutCondition::IfMatch(first.clone()))
        .unwrap();
    assert_ne!(first, second);
    assert!(matches!(
        s3.put(&key, b"four", PutCondition::IfMatch(first)),
        Err(S3Error::PreconditionFailed)
    ));
    assert_eq!(s3.get_small(&key, 100).unwrap().unwrap().1, b"three");
    assert!(matches!(
        s3.put(&format!("{p}absent"), b"x", PutCondition::IfMatch(second)),
        Err(S3Error::PreconditionFailed | S3Error::NotFound)
    ));
}

#[test]
fn ranged_streaming_get() {
    let Some((s3, p)) = setup("range") else {
        return;
    };
    let key = format!("{p}big.bin");
    let body = data(3 * MIB + 12345, 7);
    let etag = s3.put(&key, &body, PutCondition::Always).unwrap();
    for offset in [0, 1, MIB as u64 + 17, body.len() as u64 - 1] {
        let got = read_all(&key, &s3, offset, Some(&etag)).unwrap();
        assert!(
            got == body[offset as usize..],
            "offset {offset}: {} bytes",
            got.len()
        );
    }
    // Read a little, then the object changes: a new ranged GET with the old ETag fails,
    // while the open stream still reads consistent bytes or fails (never mixes silently
    // with a wrong length).
    let mut stream = s3.get_range(&key, 10, Some(&etag)).unwrap();
    let mut start = [0u8; 100];
    stream.read_exact(&mut start).unwrap();
    assert_eq!(start[..], body[10..110]);
    s3.put(&key, b"replaced", PutCondition::Always).unwrap();
    assert!(matches!(
        read_all(&key, &s3, 10, Some(&etag)),
        Err(S3Error::PreconditionFailed)
    ));
    assert_eq!(read_all(&key, &s3, 2, None).unwrap(), b"placed");
    match s3.get_range(&key, 8, None) {
        Err(S3Error::Service { status: 416, .. }) => {}
        other => panic!("range at the end: {:?}", other.map(|_| ())),
    }
    drop(stream);
}

#[test]
fn clients_are_shareable() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<S3Client>();
    let Some((s3, p)) = setup("threads") else {
        return;
    };
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let s3 = s3.clone();
            let p = p.clone();
            std::thread::spawn(move || {
                for n in 0..10 {
                    let key = format!("{p}{t}-{n}");
                    s3.put(&key, key.as_bytes(), PutCondition::IfAbsent)
                        .unwrap();
                    assert_eq!(s3.get_small(&key, 100).unwrap().unwrap().1, key.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s3.list_page(&p, None, 100).unwrap().objects.len(), 40);
}
