//! Listings in pages, and keys with every kind of awkward (but valid) character, up to S3's
//! length limit.

use super::{read_all, setup};
use crate::store::s3::{PutCondition, S3Error};

#[test]
fn listing_in_pages() {
    let Some((s3, p)) = setup("list") else { return };
    let mut keys: Vec<String> = (0..25)
        .map(|n| {
            format!(
                "{p}k{:02}{}",
                24 - n,
                if n % 3 == 0 { "/deep/x" } else { "" }
            )
        })
        .collect();
    for key in &keys {
        s3.put(key, key.as_bytes(), PutCondition::Always).unwrap();
    }
    keys.sort();
    let mut listed = Vec::new();
    let mut pages = 0;
    let mut next = None;
    loop {
        let page = s3.list_page(&p, next.as_deref(), 10).unwrap();
        pages += 1;
        assert!(page.objects.len() <= 10);
        listed.extend(page.objects);
        next = page.next;
        if next.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        listed.iter().map(|o| o.key.clone()).collect::<Vec<_>>(),
        keys
    );
    let head = s3.head(&keys[0]).unwrap().unwrap();
    assert_eq!(listed[0].size, keys[0].len() as u64);
    assert_eq!(listed[0].etag, head.etag);
    assert!(listed[0].modified_ms > 0);
    assert!(
        s3.list_page(&format!("{p}nothing-here"), None, 10)
            .unwrap()
            .objects
            .is_empty()
    );
}

#[test]
fn hostile_but_valid_names() {
    let Some((s3, p)) = setup("names") else {
        return;
    };
    let names = [
        "with space.txt",
        "ünïcödé/日本語 ファイル",
        "plus+sign",
        "percent%20not-a-space%",
        "hash#tag",
        "question?mark",
        "amp&er=sand;semi",
        "a/b/c/deep.txt",
        "quote'\"s and (parens) [brackets] {braces} ~tilde! @at $dollar, comma",
        "emoji 🚢",
        " leading and trailing spaces ",
        ".dotfile",
        "star*colon:pipe|lt<gt>",
    ];
    // Long names: 255-byte components (ferry's limit) up to a 1024-byte key (S3's limit,
    // which a ferry name of 1024 bytes plus the store's prefix can exceed).
    let long_component = "é".repeat(127) + "x";
    let long_name = format!(
        "{0}/{0}/{0}/{1}",
        "d".repeat(255),
        "f".repeat(1024 - p.len() - 3 * 256)
    );
    match s3.put(&format!("{p}{long_name}x"), b"", PutCondition::Always) {
        Err(S3Error::Service {
            status: 400, code, ..
        }) => assert_eq!(code, "KeyTooLongError"),
        other => panic!("a 1025-byte key: {other:?}"),
    }
    let names: Vec<&str> = names
        .iter()
        .copied()
        .chain([long_component.as_str(), long_name.as_str()])
        .collect();
    for (n, name) in names.iter().enumerate() {
        let key = format!("{p}{name}");
        let etag = s3
            .put(&key, name.as_bytes(), PutCondition::IfAbsent)
            .unwrap();
        assert_eq!(
            s3.head(&key).unwrap().map(|i| i.etag),
            Some(etag.clone()),
            "{name}"
        );
        assert_eq!(
            s3.get_small(&key, 2000).unwrap().unwrap().1,
            name.as_bytes(),
            "{name}"
        );
        assert_eq!(
            read_all(&key, &s3, 1, Some(&etag)).unwrap(),
            &name.as_bytes()[1..],
            "{name}"
        );
        if n % 2 == 0 {
            let id = s3.create_multipart(&key).unwrap();
            let part = s3.upload_part(&key, &id, 1, b"mp").unwrap();
            s3.complete_multipart(&key, &id, &[(1, part)], PutCondition::IfMatch(etag))
                .unwrap();
            assert_eq!(
                s3.get_small(&key, 2000).unwrap().unwrap().1,
                b"mp",
                "{name}"
            );
        }
    }
    let mut expected: Vec<String> = names.iter().map(|n| format!("{p}{n}")).collect();
    expected.sort();
    let listed: Vec<String> = s3
        .list_page(&p, None, 1000)
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(listed, expected);
    // Any of them works as a listing prefix too.
    for key in &expected {
        let page = s3.list_page(key, None, 1000).unwrap();
        assert!(page.objects.iter().any(|o| &o.key == key), "{key}");
        assert!(
            page.objects.iter().all(|o| o.key.starts_with(key.as_str())),
            "{key}"
        );
    }
    for key in &expected {
        s3.delete(key).unwrap();
        assert_eq!(s3.head(key).unwrap(), None, "{key}");
    }
}
