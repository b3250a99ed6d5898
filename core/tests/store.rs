//! The durable store: corruption recovery, opt-out persistence, queue caps and delivery of
//! records left by an earlier process.

mod support;

use std::time::Duration;

use groupscope::{Client, DropReason, TrackOptions};
use serde_json::{Value, json};
use support::{Drops, FLUSH, Reply, Server, config};

#[test]
fn corrupt_store_is_replaced_and_reported() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    {
        let client = Client::new(config(&server, Some(dir.path()))).unwrap();
        client.set_group("company_id", ["A"]).unwrap();
        assert!(client.shutdown(FLUSH));
    }
    let path = dir.path().join("groupscope.sqlite3");
    let noise: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, noise).unwrap();
    for side in ["groupscope.sqlite3-wal", "groupscope.sqlite3-shm"] {
        let _ = std::fs::remove_file(dir.path().join(side));
    }

    let drops = Drops::default();
    let mut config = config(&server, Some(dir.path()));
    config.on_drop = Some(drops.callback());
    let client = Client::new(config).unwrap();
    client
        .track("after reset", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));

    assert_eq!(client.stats().store_resets, 1);
    assert_eq!(drops.reports()[0].reason, DropReason::StoreReset);
    assert_eq!(server.events().len(), 1);
    assert!(client.groups().is_empty(), "the lost state starts empty");
    let moved_aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|entry| entry.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(
        moved_aside,
        "the corrupt file is kept next to the new store"
    );
}

#[test]
fn queued_records_survive_restart() {
    let server = Server::start();
    server.default_reply(Reply::status(503, ""));
    let dir = tempfile::tempdir().unwrap();
    let mut config_first = config(&server, Some(dir.path()));
    config_first.max_attempts_per_cycle = 1;
    config_first.flush_interval = Duration::from_secs(60);
    let tracked = {
        let client = Client::new(config_first).unwrap();
        let id = client
            .track("kept", Value::Null, TrackOptions::default())
            .unwrap();
        assert!(!client.shutdown(Duration::from_secs(2)));
        id
    };

    server.default_reply(Reply::ok());
    let client = Client::new(config(&server, Some(dir.path()))).unwrap();
    assert!(client.flush(FLUSH));
    let events = server.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["$insert_id"], tracked.as_str());
}

#[test]
fn opt_out_clears_queue_and_persists() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let drops = Drops::default();
    let mut first = config(&server, Some(dir.path()));
    first.flush_interval = Duration::from_secs(60);
    first.on_drop = Some(drops.callback());
    {
        let client = Client::new(first).unwrap();
        client.identify("user-1").unwrap();
        for _ in 0..3 {
            client
                .track("before", Value::Null, TrackOptions::default())
                .unwrap();
        }
        client.opt_out().unwrap();
        client
            .track("after", Value::Null, TrackOptions::default())
            .unwrap();
        client.set_group("company_id", ["A"]).unwrap();
        client
            .group("company_id", "A")
            .unwrap()
            .set(json!({"x": 1}))
            .unwrap();
        assert!(client.flush(FLUSH));
        assert!(client.shutdown(FLUSH));
    }
    assert!(server.received().is_empty());
    let cleared: u64 = drops
        .reports()
        .iter()
        .filter(|r| r.reason == DropReason::OptedOut)
        .map(|r| r.count)
        .sum();
    assert_eq!(cleared, 3, "the three queued events are cleared");

    let client = Client::new(config(&server, Some(dir.path()))).unwrap();
    assert!(client.is_opted_out());
    assert_eq!(
        client.groups()["company_id"].len(),
        1,
        "changes made while opted out are stored"
    );
    client
        .track("still out", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));
    assert!(server.received().is_empty());

    client.opt_in().unwrap();
    client
        .track("back", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));
    assert_eq!(server.events().len(), 1);
}

#[test]
fn queue_caps_evict_oldest() {
    let server = Server::start();
    let drops = Drops::default();
    let mut config = config(&server, None);
    config.max_queue_records = 5;
    config.flush_interval = Duration::from_secs(60);
    config.on_drop = Some(drops.callback());
    let client = Client::new(config).unwrap();

    let ids: Vec<String> = (0..8)
        .map(|i| {
            client
                .track("e", json!({ "i": i }), TrackOptions::default())
                .unwrap()
        })
        .collect();
    assert!(client.flush(FLUSH));

    let delivered: Vec<i64> = server
        .events()
        .iter()
        .map(|p| p["i"].as_i64().unwrap())
        .collect();
    assert_eq!(delivered, vec![3, 4, 5, 6, 7]);
    let evicted: Vec<String> = drops
        .reports()
        .into_iter()
        .filter(|r| r.reason == DropReason::QueueFull)
        .flat_map(|r| r.insert_ids)
        .collect();
    assert_eq!(evicted, ids[0..3]);
    assert_eq!(client.stats().dropped_queue_full, 3);
}

#[test]
fn durable_queue_caps_evict_oldest() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server, Some(dir.path()));
    config.max_queue_bytes = 4_096;
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();

    for i in 0..10 {
        client
            .track(
                "e",
                json!({ "i": i, "pad": "p".repeat(900) }),
                TrackOptions::default(),
            )
            .unwrap();
    }
    assert!(client.flush(FLUSH));

    let delivered: Vec<i64> = server
        .events()
        .iter()
        .map(|p| p["i"].as_i64().unwrap())
        .collect();
    assert!(!delivered.is_empty());
    assert_eq!(*delivered.last().unwrap(), 9, "the newest records are kept");
    assert_eq!(
        client.stats().dropped_queue_full as usize + delivered.len(),
        10
    );
}

#[test]
fn unusable_data_dir_is_a_storage_error() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();

    let error = Client::new(config(&server, Some(&file.join("store"))))
        .err()
        .expect("a folder under a file cannot be created");
    assert!(
        matches!(error, groupscope::Error::Storage { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("not-a-folder"),
        "the error names the path: {error}"
    );
}

#[test]
fn data_dir_that_is_a_file_is_rejected() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.db");
    std::fs::write(&file, b"x").unwrap();

    let error = Client::new(config(&server, Some(&file)))
        .err()
        .expect("a file is not a data_dir");
    let message = error.to_string();
    assert!(
        matches!(error, groupscope::Error::Storage { .. }),
        "{message}"
    );
    assert!(message.contains("events.db is not a folder"), "{message}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x", "the file is left alone");
}

#[test]
fn stats_count_stored_records_at_start() {
    let server = Server::start();
    server.default_reply(Reply::status(503, ""));
    let dir = tempfile::tempdir().unwrap();
    let mut first = config(&server, Some(dir.path()));
    first.flush_interval = Duration::from_secs(60);
    {
        let client = Client::new(first.clone()).unwrap();
        for _ in 0..3 {
            client
                .track("e", Value::Null, TrackOptions::default())
                .unwrap();
        }
        assert!(!client.shutdown(FLUSH), "the server is unavailable");
    }

    let client = Client::new(first).unwrap();
    assert_eq!(client.stats().queued, 3, "right after Client::new");
}

#[test]
fn opt_out_updates_stats_on_return() {
    let server = Server::start();
    let mut config = config(&server, None);
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();
    for _ in 0..3 {
        client
            .track("e", Value::Null, TrackOptions::default())
            .unwrap();
    }

    client.opt_out().unwrap();

    let stats = client.stats();
    assert_eq!(stats.queued, 0);
    assert_eq!(stats.dropped_opted_out, 3);
}

#[test]
fn second_client_on_same_data_dir_is_rejected() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let first = Client::new(config(&server, Some(dir.path()))).unwrap();

    let error = Client::new(config(&server, Some(dir.path())))
        .err()
        .expect("the folder is locked by the first client");
    assert!(
        matches!(error, groupscope::Error::Storage { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "the error names the folder: {message}"
    );
    assert!(message.contains("own data_dir"), "{message}");

    assert!(first.shutdown(FLUSH));
    let second = Client::new(config(&server, Some(dir.path())));
    assert!(second.is_ok(), "shutdown releases the lock");

    drop(second);
    let third = Client::new(config(&server, Some(dir.path())));
    assert!(third.is_ok(), "dropping releases the lock");
}

/// Set in a child test process to the folder whose lock it must find taken.
const LOCKED_DIR_VAR: &str = "GROUPSCOPE_TEST_LOCKED_DIR";

#[test]
fn data_dir_lock_spans_processes() {
    if let Some(dir) = std::env::var_os(LOCKED_DIR_VAR) {
        // Child process: the parent holds the lock on `dir`.
        let server = Server::start();
        let opened = Client::new(config(&server, Some(std::path::Path::new(&dir))));
        let error = opened.err().expect("the parent process holds the lock");
        assert!(
            matches!(error, groupscope::Error::Storage { .. }),
            "{error}"
        );
        return;
    }

    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(&server, Some(dir.path()))).unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "data_dir_lock_spans_processes",
            "--test-threads=1",
        ])
        .env(LOCKED_DIR_VAR, dir.path())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the child process opened the locked folder"
    );
    assert!(client.shutdown(FLUSH));
}
