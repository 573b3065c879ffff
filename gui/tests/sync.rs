//! "Sync folder" and "sync down" against a real server: only what differs moves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{TestServer, Window};

#[test]
fn sync_folder_sends_only_what_changed_and_sync_down_brings_the_folder_back() {
    let server = TestServer::plaintext();
    let mut window = Window::new();
    window.connect(&server, true);
    let photos = window.scratch.path().join("photos");
    std::fs::create_dir_all(photos.join("2024")).unwrap();
    std::fs::write(photos.join("a.jpg"), b"jpg a").unwrap();
    std::fs::write(photos.join("2024/b.jpg"), b"jpg b").unwrap();

    window.model().upload_path = photos.display().to_string();
    window.click("Sync folder");
    let message = window.model().message.clone().unwrap_or_default();
    assert!(message.contains("2 sent, 0 skipped, 0 failed"), "{message}");
    assert_eq!(
        server.stored("photos/2024/b.jpg").as_deref(),
        Some(&b"jpg b"[..])
    );
    assert!(
        window.shows_text("photos/"),
        "the listing shows the synced folder"
    );

    std::fs::write(photos.join("a.jpg"), b"jpg A, longer").unwrap();
    window.click("Sync folder");
    let message = window.model().message.clone().unwrap_or_default();
    assert!(message.contains("1 sent, 1 skipped"), "{message}");
    assert_eq!(
        server.stored("photos/a.jpg").as_deref(),
        Some(&b"jpg A, longer"[..])
    );

    let back = window.scratch.path().join("back");
    window.model().download_folder = back.display().to_string();
    window.click("sync down");
    let message = window.model().message.clone().unwrap_or_default();
    assert!(message.contains("2 sent, 0 skipped"), "{message}");
    assert_eq!(
        std::fs::read(back.join("photos/a.jpg")).unwrap(),
        b"jpg A, longer"
    );
    assert_eq!(
        std::fs::read(back.join("photos/2024/b.jpg")).unwrap(),
        b"jpg b"
    );
}
