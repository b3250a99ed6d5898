//! Storage faults: a database overwritten with random bytes or truncated while the client is
//! stopped, a data directory that turns read-only while the client runs, and a full file
//! system. The client must not crash, must not delete good records, and must report losses.
//!
//! The read-only case sets the immutable attribute with `chattr +i`, because permission bits
//! do not stop root and a read-only remount fails while the store is open for writing. The
//! full-disk case mounts a small tmpfs of its own. Both need root (or the matching
//! capability); without it they print `skipped:` and return.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use groupscope::{Client, DropReason, Error, TrackOptions};
use groupscope_reliability::{Ledger, TestServer, client_config};
use serde_json::json;

const STORE_FILE: &str = "groupscope.sqlite3";

/// A tmpfs mounted for one test and unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_kib` KiB at `path`, or returns `None` when mounting is not
    /// permitted here.
    fn mount(path: &Path, size_kib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(path)
            .output()
            .ok()?;
        if !output.status.success() {
            eprintln!(
                "skipped: mounting a tmpfs at {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs {
            path: path.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let status = Command::new("umount").arg("-l").arg(&self.path).status();
        if !status.is_ok_and(|status| status.success()) {
            eprintln!(
                "could not unmount the test tmpfs at {}",
                self.path.display()
            );
        }
    }
}

/// The immutable attribute (`chattr +i`) on a folder and its files, removed when dropped.
/// Unlike permission bits it stops root too, and it fails writes through descriptors that
/// are already open.
struct Immutable {
    paths: Vec<PathBuf>,
}

impl Immutable {
    /// Sets the attribute on `dir` and every file in it, or returns `None` when `chattr` is
    /// missing or the file system does not support it.
    fn set(dir: &Path) -> Option<Immutable> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        paths.push(dir.to_owned());
        let mut guard = Immutable { paths: Vec::new() };
        for path in paths {
            let status = Command::new("chattr").arg("+i").arg(&path).status();
            if !status.is_ok_and(|status| status.success()) {
                eprintln!("skipped: chattr +i {} failed", path.display());
                return None;
            }
            guard.paths.push(path);
        }
        Some(guard)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for path in &self.paths {
            let status = Command::new("chattr").arg("-i").arg(path).status();
            if !status.is_ok_and(|status| status.success()) {
                eprintln!(
                    "could not remove the immutable attribute of {}; run chattr -i on it",
                    path.display()
                );
            }
        }
    }
}

/// Fills the file system of `dir` with a file until writing fails; returns the file.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
    path
}

/// Starts a client on `data_dir` whose events stay queued (the server responds with 503), tracks
/// `count` events, and stops it. Returns their `$insert_id`s.
fn queue_undelivered(server: &TestServer, data_dir: &Path, count: usize) -> Vec<String> {
    server.script_faults(json!({"endpoint": "*", "responses": vec![json!({"status": 503}); 1000]}));
    let client = Client::new(client_config(&server.url(), Some(data_dir))).unwrap();
    client.set_group("company_id", ["acme"]).unwrap();
    let ids: Vec<String> = (0..count)
        .map(|seq| {
            client
                .track("Queued", json!({"seq": seq}), TrackOptions::default())
                .unwrap()
        })
        .collect();
    client.flush(Duration::from_secs(2));
    assert!(
        !client.shutdown(Duration::from_millis(200)),
        "the events were delivered although the server answers 503"
    );
    drop(client);
    server.clear_faults();
    ids
}

fn drain(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.flush(Duration::from_secs(5)) {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain in 30 s: {:?}",
            client.stats()
        );
    }
}

#[test]
fn random_bytes_database_is_moved_aside() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let queued = queue_undelivered(&server, dir.path(), 20);

    let store = dir.path().join(STORE_FILE);
    let size = std::fs::metadata(&store).unwrap().len() as usize;
    let garbage: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..))
        .take(size.max(4096))
        .collect();
    std::fs::write(&store, &garbage).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("{STORE_FILE}{suffix}")));
    }

    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), Some(dir.path()));
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).expect("a corrupt store is replaced, not an error");
    let fresh = client
        .track("After Reset", json!({}), TrackOptions::default())
        .unwrap();
    ledger.acknowledge(fresh.clone());
    drain(&client);
    let stats = client.stats();
    client.shutdown(Duration::from_secs(5));

    let moved: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{STORE_FILE}.corrupt-"))
        })
        .collect();
    let reset_reports: Vec<_> = ledger
        .reports()
        .into_iter()
        .filter(|report| report.reason == DropReason::StoreReset)
        .collect();
    let settlement = ledger.settle(&server);
    settlement
        .figures("database overwritten with random bytes", stats.retried)
        .with("queued_before", queued.len())
        .with("store_resets", stats.store_resets)
        .with(
            "reported_lost_count",
            reset_reports.iter().map(|report| report.count).sum::<u64>(),
        )
        .report();

    assert_eq!(stats.store_resets, 1, "the corrupt store was not detected");
    assert_eq!(
        reset_reports.len(),
        1,
        "expected one StoreReset report: {:?}",
        ledger.reports()
    );
    assert_eq!(
        moved.len(),
        1,
        "the corrupt file is kept next to the new store: {moved:?}"
    );
    assert_eq!(
        std::fs::read(&moved[0]).unwrap(),
        garbage,
        "the corrupt file is moved aside unchanged"
    );
    settlement.assert_exactly_once();
    assert_eq!(settlement.delivered, 1, "the client works after the reset");
}

#[test]
fn truncated_database_keeps_delivering() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let queued = queue_undelivered(&server, dir.path(), 400);

    let store = dir.path().join(STORE_FILE);
    let size = std::fs::metadata(&store).unwrap().len();
    assert!(
        std::fs::metadata(dir.path().join(format!("{STORE_FILE}-wal")))
            .map_or(true, |wal| wal.len() == 0),
        "the WAL was checkpointed at shutdown"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(&store)
        .unwrap()
        .set_len(size / 2)
        .unwrap();

    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), Some(dir.path()));
    config.on_drop = Some(ledger.drop_callback());
    let client =
        Client::new(config).expect("a truncated store is opened or replaced, not an error");
    let mut fresh = Vec::new();
    for seq in 0..10 {
        let insert_id = client
            .track(
                "After Truncation",
                json!({"seq": seq}),
                TrackOptions::default(),
            )
            .unwrap();
        ledger.acknowledge(insert_id.clone());
        fresh.push(insert_id);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut drained = false;
    while Instant::now() < deadline {
        if client.flush(Duration::from_secs(5)) {
            drained = true;
            break;
        }
    }
    let stats = client.stats();
    client.shutdown(Duration::from_secs(2));

    let stored = server.insert_id_counts();
    let old_delivered = queued.iter().filter(|id| stored.contains_key(*id)).count();
    let reported: u64 = ledger.reports().iter().map(|report| report.count).sum();
    let settlement = ledger.settle(&server);
    settlement
        .figures("database truncated to half", stats.retried)
        .with("queued_before", queued.len())
        .with("old_delivered", old_delivered)
        .with("reported_lost_count", reported)
        .with("store_resets", stats.store_resets)
        .report();

    assert!(
        drained,
        "the queue never drained after the truncation: {stats:?}"
    );
    settlement.assert_exactly_once();
    assert_eq!(
        settlement.delivered, 10,
        "events tracked after the truncation are delivered"
    );
    // A reset is allowed, but the records it loses must be counted in its report: the
    // truncated file still contains the first half of its pages.
    assert!(
        old_delivered as u64 + reported >= queued.len() as u64,
        "{} of {} queued records were neither delivered nor counted in a drop report (store resets: {}, reports: {:?})",
        queued.len() - old_delivered,
        queued.len(),
        stats.store_resets,
        ledger.reports()
    );
}

#[test]
fn read_only_directory_while_running() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");

    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), Some(&data_dir));
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();
    client.identify("reader").unwrap();
    for seq in 0..10 {
        ledger.acknowledge(
            client
                .track(
                    "Before Read Only",
                    json!({"seq": seq}),
                    TrackOptions::default(),
                )
                .unwrap(),
        );
    }
    assert!(client.flush(Duration::from_secs(10)));

    let Some(read_only) = Immutable::set(&data_dir) else {
        client.shutdown(Duration::from_secs(2));
        return;
    };
    for seq in 0..50 {
        ledger.acknowledge(
            client
                .track(
                    "While Read Only",
                    json!({"seq": seq}),
                    TrackOptions::default(),
                )
                .unwrap(),
        );
    }
    let group_error = client.set_group("company_id", ["read-only-co"]);
    let flushed_while_read_only = client.flush(Duration::from_millis(1500));
    let stats_while_read_only = client.stats();
    drop(read_only);

    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.flush(Duration::from_secs(5)) {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain after the folder became writable: {:?}",
            client.stats()
        );
    }
    let stats = client.stats();
    client.shutdown(Duration::from_secs(5));

    let settlement = ledger.settle(&server);
    settlement
        .figures("data directory read-only while running", stats.retried)
        .with("queued_while_read_only", stats_while_read_only.queued)
        .with("flushed_while_read_only", flushed_while_read_only)
        .report();

    match group_error {
        Err(Error::Storage { path, message }) => {
            assert!(
                path.starts_with(&data_dir),
                "the storage error names the store path, got {}",
                path.display()
            );
            assert!(!message.is_empty());
        }
        other => {
            panic!("set_group on a read-only store returned {other:?}, expected Error::Storage")
        }
    }
    assert!(
        !client_groups_contain(&data_dir, &server, "read-only-co"),
        "a failed set_group changed the persisted groups"
    );
    settlement.assert_exactly_once();
    assert!(
        settlement.dropped.is_empty(),
        "records were dropped while the folder was read-only: {:?}",
        ledger.reports()
    );
    assert_eq!(settlement.delivered, 60);
}

#[test]
fn read_only_directory_at_start() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let Some(read_only) = Immutable::set(&data_dir) else {
        return;
    };

    let result = Client::new(client_config(&server.url(), Some(&data_dir)));
    drop(read_only);

    match result {
        Err(Error::Storage { path, message }) => {
            assert!(
                path.starts_with(&data_dir),
                "the storage error names the store path, got {}",
                path.display()
            );
            assert!(!message.is_empty(), "the storage error says what failed");
            println!("Client::new on a read-only folder: {message}");
        }
        Err(other) => {
            panic!("Client::new on a read-only folder failed with {other}, expected Error::Storage")
        }
        Ok(client) => {
            client.shutdown(Duration::from_secs(1));
            panic!("Client::new succeeded on a read-only folder, expected Error::Storage");
        }
    }
}

fn client_groups_contain(data_dir: &Path, server: &TestServer, id: &str) -> bool {
    let client = Client::new(client_config(&server.url(), Some(data_dir))).unwrap();
    let found = client
        .groups()
        .get("company_id")
        .is_some_and(|ids| ids.iter().any(|group_id| group_id.as_str() == id));
    client.shutdown(Duration::from_secs(2));
    found
}

#[test]
fn full_filesystem_reports_losses() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Tmpfs::mount(&dir.path().join("mnt"), 2048) else {
        return;
    };
    let data_dir = mount.path.join("data");

    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), Some(&data_dir));
    config.max_queue_records = 100;
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    server.script_faults(
        json!({"endpoint": "*", "responses": vec![json!({"status": 503}); 100_000]}),
    );
    for seq in 0..20 {
        ledger.acknowledge(
            client
                .track("Before Full", json!({"seq": seq}), TrackOptions::default())
                .unwrap(),
        );
    }
    client.flush(Duration::from_secs(1));
    let filler = fill(&mount.path);

    for seq in 0..60 {
        ledger.acknowledge(
            client
                .track(
                    "While Full",
                    json!({"seq": seq, "padding": "p".repeat(100)}),
                    TrackOptions::default(),
                )
                .unwrap(),
        );
    }
    let group_error = client.set_group("company_id", ["full-co"]);
    std::thread::sleep(Duration::from_millis(300));
    let dropped_before_overflow = ledger.reports().len();
    for seq in 60..200 {
        ledger.acknowledge(
            client
                .track(
                    "While Full",
                    json!({"seq": seq, "padding": "p".repeat(100)}),
                    TrackOptions::default(),
                )
                .unwrap(),
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    let stats_while_full = client.stats();

    std::fs::remove_file(&filler).unwrap();
    server.clear_faults();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.flush(Duration::from_secs(5)) {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain after space was freed: {:?}",
            client.stats()
        );
    }
    let stats = client.stats();
    client.shutdown(Duration::from_secs(5));

    let settlement = ledger.settle(&server);
    settlement
        .figures("full file system (2 MiB tmpfs)", stats.retried)
        .with(
            "dropped_storage_unavailable",
            stats.dropped_storage_unavailable,
        )
        .with("dropped_queue_full", stats.dropped_queue_full)
        .with("store_resets", stats.store_resets)
        .report();

    assert!(
        matches!(group_error, Err(Error::Storage { .. })),
        "set_group on a full disk returned {group_error:?}, expected Error::Storage"
    );
    assert_eq!(
        dropped_before_overflow,
        0,
        "records were dropped before the in-memory buffer was full: {:?}",
        ledger.reports()
    );
    assert_eq!(stats.store_resets, 0, "the store was reset on a full disk");
    assert!(
        stats_while_full.dropped_storage_unavailable + stats_while_full.dropped_queue_full > 0,
        "220 records against a cap of 100 on a full disk dropped nothing: {stats_while_full:?}"
    );
    settlement.assert_exactly_once();
    let reported: u64 = ledger.reports().iter().map(|report| report.count).sum();
    assert_eq!(
        settlement.delivered + reported,
        220,
        "every record is delivered or counted in a drop report"
    );
}
