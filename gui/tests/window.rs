//! The window against a real server: connect, upload (typed and dropped), see the table,
//! download, remove with confirmation, refusals in words, filtering, first-use trust.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use eframe::egui;
use egui_kittest::kittest::Queryable;
use ferry_gui::{Connection, TransferState};

use crate::relay::{Fault, Relay};
use crate::support::{Dropped, TestServer, Window, identity};

#[test]
fn an_uploaded_file_appears_downloads_intact_and_is_removed_after_confirmation() {
    let server = TestServer::plaintext();
    let mut window = Window::new();
    window.connect(&server, true);
    assert!(
        window.model().is_connected(),
        "{:?}",
        window.model().message
    );
    assert!(window.shows_text("0 files"));

    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let local = window.local_file("hello.bin", &bytes);
    window.model().upload_path = local.display().to_string();
    window.click("Upload");
    assert_eq!(window.model().transfers[0].state, TransferState::Done);
    assert!(window.shows("hello.bin"), "the upload is not in the table");
    assert_eq!(server.stored("hello.bin").as_deref(), Some(&bytes[..]));

    window.click("hello.bin");
    let folder = window.scratch.path().join("back");
    window.model().download_folder = folder.display().to_string();
    window.click("Download selected");
    assert_eq!(std::fs::read(folder.join("hello.bin")).unwrap(), bytes);

    window.click("Remove selected...");
    assert!(window.shows_text("Remove 1 file(s)"));
    window.click("Keep");
    assert!(window.shows("hello.bin"), "kept, yet gone");
    assert!(server.stored("hello.bin").is_some());

    window.click("Remove selected...");
    window.click("Remove");
    assert!(!window.shows("hello.bin"), "removed, yet still listed");
    assert!(server.stored("hello.bin").is_none());
}

#[test]
fn a_dropped_folder_is_uploaded_and_shown_in_its_folder() {
    let server = TestServer::plaintext();
    let mut window = Window::new();
    window.connect(&server, true);
    let photos = window.scratch.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::write(photos.join("a.jpg"), b"jpg a").unwrap();
    std::fs::write(photos.join("b.jpg"), b"jpg b").unwrap();
    window
        .harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped(photos)));
    window.settle();
    let states: Vec<_> = window
        .model()
        .transfers
        .iter()
        .map(|t| t.state.clone())
        .collect();
    assert_eq!(states, [TransferState::Done, TransferState::Done]);
    assert_eq!(
        server.stored("photos/a.jpg").as_deref(),
        Some(&b"jpg a"[..])
    );
    assert!(window.shows_text("photos/"));
    // Inside the folder's rows, the file is shown by the rest of its name.
    assert!(window.shows("    a.jpg"));

    // The folder's box selects all it holds, and they download with their folder.
    window.click("all");
    assert_eq!(window.model().listing.selected.len(), 2);
    let back = window.scratch.path().join("back");
    window.model().download_folder = back.display().to_string();
    window.click("Download selected");
    assert_eq!(std::fs::read(back.join("photos/b.jpg")).unwrap(), b"jpg b");

    window.click("[-] photos/");
    assert!(
        !window.shows("    a.jpg"),
        "a folded folder still shows its files"
    );
}

#[test]
fn a_refused_upload_says_why_in_words() {
    let server = TestServer::plaintext();
    let mut window = Window::new();
    window.connect(&server, true);
    let local = window.local_file("notes.txt", b"first");
    window.model().upload_path = local.display().to_string();
    window.click("Upload");
    window.local_file("notes.txt", b"second");
    window.click("Upload");
    let TransferState::Failed(reason) = &window.model().transfers[1].state else {
        panic!("not refused: {:?}", window.model().transfers[1].state);
    };
    assert!(reason.contains("name already exists"), "{reason}");
    assert!(window.shows_text("failed: server refused upload: name already exists"));
    assert_eq!(server.stored("notes.txt").as_deref(), Some(&b"first"[..]));

    assert!(window.shows_text("tick Overwrite and press Retry"));

    // Retry with Overwrite ticked replaces it.
    window.click("Overwrite");
    window.click("Retry");
    assert_eq!(window.model().transfers[1].state, TransferState::Done);
    assert_eq!(server.stored("notes.txt").as_deref(), Some(&b"second"[..]));
}

#[test]
fn the_filter_box_narrows_the_table() {
    let server = TestServer::plaintext();
    let mut window = Window::new();
    window.connect(&server, true);
    // Typed into the path field, then Enter.
    for name in ["report.pdf", "notes.txt"] {
        let local = window.local_file(name, name.as_bytes());
        window.model().upload_path.clear();
        window.type_into("Upload path", &local.display().to_string());
        window.harness.key_press(egui::Key::Enter);
        window.settle();
    }
    assert!(window.shows("report.pdf") && window.shows("notes.txt"));
    window.type_into("Filter", "TXT");
    window.settle();
    assert!(window.shows("notes.txt"));
    assert!(
        !window.shows("report.pdf"),
        "the filter did not narrow the table"
    );
}

#[test]
fn a_new_server_is_trusted_only_after_the_user_accepts_its_fingerprint() {
    let identity = identity();
    let fingerprint = identity.fingerprint().to_string();
    let server = TestServer::tls(identity);
    let mut window = Window::new();
    let known = window.config.path().join("known_servers");

    window.connect(&server, false);
    assert!(matches!(
        window.model().connection,
        Connection::Trust { .. }
    ));
    assert!(
        window.shows(&fingerprint),
        "the prompt does not show {fingerprint}"
    );
    window.click("Do not trust");
    assert_eq!(window.model().connection, Connection::Disconnected);
    assert!(!known.exists(), "a refused certificate was recorded");

    window.click("Connect");
    window.click("Trust and connect");
    assert!(
        window.model().is_connected(),
        "{:?}",
        window.model().message
    );
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(recorded.contains(&fingerprint), "{recorded}");

    // Known now: the next connection asks nothing.
    window.click("Disconnect");
    window.click("Connect");
    assert!(
        window.model().is_connected(),
        "{:?}",
        window.model().message
    );
    assert_eq!(window.model().remembered.len(), 1);
}

#[test]
fn a_cut_connection_shows_resuming_and_then_done() {
    let server = TestServer::plaintext();
    let relay = Relay::start(server.addr(), 700 * 1024, Fault::Cut);
    let mut window = Window::new();
    window.model().settings.addr = relay.addr.to_string();
    window.model().settings.insecure = true;
    window.click("Connect");
    assert!(
        window.model().is_connected(),
        "{:?}",
        window.model().message
    );

    let bytes: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    let local = window.local_file("big.bin", &bytes);
    window.model().upload_path = local.display().to_string();
    window.hold_events();
    window.harness.get_by_label("Upload").click();
    window.harness.run_steps(2);

    // Take the worker's reports one at a time, drawing after each, and note what is shown.
    let mut saw_resuming = false;
    while window.next_event() {
        window.harness.run_steps(1);
        saw_resuming |= window.shows_text("resuming (connection 2)");
    }
    window.settle();
    assert!(saw_resuming, "the cut never showed as resuming");
    assert_eq!(window.model().transfers[0].state, TransferState::Done);
    assert!(window.shows("done"));
    assert_eq!(server.stored("big.bin").as_deref(), Some(&bytes[..]));
}

#[test]
fn a_stalled_upload_is_cancelled_at_once_and_stores_nothing() {
    let server = TestServer::plaintext();
    let relay = Relay::start(server.addr(), 300 * 1024, Fault::Stall);
    let mut window = Window::new();
    window.model().settings.addr = relay.addr.to_string();
    window.model().settings.insecure = true;
    window.click("Connect");
    assert!(
        window.model().is_connected(),
        "{:?}",
        window.model().message
    );

    let bytes = vec![7u8; 2_000_000];
    let local = window.local_file("stuck.bin", &bytes);
    window.model().upload_path = local.display().to_string();
    window.hold_events();
    window.harness.get_by_label("Upload").click();
    window.harness.run_steps(2);
    // Until the first chunk went out: the upload is under way (and will stall at the relay).
    while window.model().transfers.first().is_none_or(|t| t.done == 0) {
        assert!(window.next_event(), "the upload ended before it stalled");
    }
    window.harness.run_steps(1);
    assert!(window.shows("Cancel"));

    // The window does not wait for the stalled worker: the row says so at once.
    window.click_without_waiting("Cancel");
    assert_eq!(window.model().transfers[0].state, TransferState::Cancelled);
    assert!(window.shows("cancelled"));
    assert!(window.shows("Retry"));
    assert!(server.stored("stuck.bin").is_none());
}

#[test]
fn a_changed_certificate_is_refused_with_a_warning() {
    let identity = identity();
    let seen = identity.fingerprint().to_string();
    let server = TestServer::tls(identity);
    let mut window = Window::new();
    let known = window.config.path().join("known_servers");
    let recorded = ferry_client::Fingerprint::of(b"the certificate seen before");
    std::fs::write(&known, format!("{} {recorded}\n", server.addr())).unwrap();

    window.connect(&server, false);
    assert_eq!(window.model().connection, Connection::Disconnected);
    let message = window.model().message.clone().unwrap_or_default();
    assert!(message.contains("has CHANGED"), "{message}");
    assert!(message.contains(&seen) && message.contains(&recorded.to_string()));
    assert!(window.shows_text("has CHANGED"));
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        format!("{} {recorded}\n", server.addr()),
        "the known-servers file was changed"
    );
}

#[test]
fn a_wrong_token_is_refused_in_words_and_the_right_one_is_never_saved() {
    let server = TestServer::with_token("s3cret-token");
    let mut window = Window::new();
    window.type_into("Token", "wrong");
    window.connect(&server, true);
    assert_eq!(window.model().connection, Connection::Disconnected);
    let message = window.model().message.clone().unwrap_or_default();
    assert!(message.contains("not authorised"), "{message}");
    assert!(window.shows_text("check the access token"));

    window.model().settings.token.clear();
    window.type_into("Token", "s3cret-token");
    window.click("Connect");
    assert!(
        window.model().is_connected(),
        "{:?}",
        window.model().message
    );
    let remembered = std::fs::read_to_string(window.config.path().join("gui_servers")).unwrap();
    assert!(remembered.contains(&server.addr().to_string()));
    assert!(
        !remembered.contains("s3cret"),
        "the token was saved: {remembered}"
    );
}

#[test]
fn the_table_shows_hostile_names_escaped() {
    let server = TestServer::plaintext();
    let mut window = Window::new();
    window.connect(&server, true);
    // A listing as a server that ignores the name policy could send it (ferryd itself never
    // lists such names).
    window
        .model()
        .listing
        .handle_entries(vec![ferry_client::ListEntry {
            name: "a\u{202E}gpj.exe".to_owned(),
            size: 1,
            modified_ms: 0,
        }]);
    window.harness.run_steps(4);
    assert!(
        window.shows(r"a\u{202e}gpj.exe"),
        "the escaped name is shown"
    );
    assert!(
        !window.shows_text("\u{202E}"),
        "no label holds the raw right-to-left override"
    );
}
