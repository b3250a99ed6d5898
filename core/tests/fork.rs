//! `reinit_after_fork` in a real forked child: the child delivers only what it queued itself,
//! and the parent's queued records are sent once, by the parent.
//!
//! This file contains one test so the process has as few threads as possible when it forks.

#![cfg(target_os = "linux")]

mod support;

use std::time::Duration;

use groupscope::{Client, TrackOptions};
use serde_json::{Value, json};
use support::{FLUSH, Server, config};

unsafe extern "C" {
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(status: i32) -> !;
}

#[test]
fn forked_child_sends_only_its_own_records() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server, Some(dir.path()));
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();

    client
        .track(
            "from parent",
            json!({"who": "parent"}),
            TrackOptions::default(),
        )
        .unwrap();
    // The record must be in the durable queue before the fork, so the child could see it.
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.received().is_empty());

    // SAFETY: the child only uses the client (which reinitialises its threads and SQLite
    // connections) and then leaves with `_exit`, without running destructors or test code.
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        client.reinit_after_fork();
        // The parent's record is counted by the parent only.
        let counted_from_zero = client.stats() == groupscope::Stats::default();
        let tracked = client.track(
            "from child",
            json!({"who": "child"}),
            TrackOptions::default(),
        );
        let delivered = tracked.is_ok() && client.flush(FLUSH);
        let stopped = client.shutdown(FLUSH);
        let code = match (counted_from_zero, delivered && stopped) {
            (false, _) => 2,
            (true, false) => 1,
            (true, true) => 0,
        };
        unsafe { _exit(code) };
    }

    let mut status = 0;
    // SAFETY: `pid` is this process's child and `status` is a valid out pointer.
    let waited = unsafe { waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    // The exit code is the second byte of the wait status.
    assert_ne!(
        status,
        2 << 8,
        "the child's stats did not start from zero after the fork"
    );
    assert_eq!(
        status, 0,
        "the child failed to deliver its event (wait status {status})"
    );

    let after_child: Vec<Value> = server.events();
    assert_eq!(after_child.len(), 1);
    assert_eq!(
        after_child[0]["who"], "child",
        "the child must not send the parent's record"
    );

    // fork() copied this thread's `$insert_id` generator into the child, and
    // reinit_after_fork reseeds it there, so the next id here must differ from the child's.
    let child_insert_id = after_child[0]["$insert_id"].as_str().unwrap().to_owned();
    let parent_insert_id = client
        .track(
            "from parent after fork",
            json!({"who": "parent"}),
            TrackOptions::default(),
        )
        .unwrap();
    assert_ne!(
        parent_insert_id, child_insert_id,
        "the child repeated the parent's $insert_id sequence"
    );

    assert!(client.flush(FLUSH));
    let whos: Vec<Value> = server.events().iter().map(|p| p["who"].clone()).collect();
    assert_eq!(whos, [json!("child"), json!("parent"), json!("parent")]);
}
