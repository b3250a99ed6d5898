//! Forks while the delivery worker is busy writing a durable queue. With `prepare_fork` before
//! each fork, every child reopens the store, records and delivers its own event.
//!
//! This file contains one test so the process has as few threads as possible when it forks.

#![cfg(target_os = "linux")]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use groupscope::{Client, TrackOptions};
use serde_json::json;
use support::{FLUSH, Server, config};

unsafe extern "C" {
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, signal: i32) -> i32;
    fn _exit(status: i32) -> !;
}

const WNOHANG: i32 = 1;
const SIGKILL: i32 = 9;

/// Forks made by the test. Without `prepare_fork`, a child blocked within the first 41 forks
/// in each of three runs on a 2-core Linux machine.
const FORKS: u64 = 150;

/// Records tracked right before each fork, so the worker is storing them when it happens.
const RECORDS_PER_FORK: u64 = 200;

/// How long a child may take to reinitialise, record and flush before it counts as blocked.
const CHILD_TIMEOUT: Duration = Duration::from_secs(20);

/// Returns the wait status of child `pid`, or kills it and returns `None` after `timeout`.
fn wait_for_child(pid: i32, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: `pid` is this process's child and `status` is a valid out pointer.
        let waited = unsafe { waitpid(pid, &mut status, WNOHANG) };
        assert!(waited >= 0, "waitpid failed for child {pid}");
        if waited == pid {
            return Some(status);
        }
        if Instant::now() >= deadline {
            // SAFETY: `pid` is this process's child, which has not been reaped yet.
            unsafe {
                kill(pid, SIGKILL);
                waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn children_deliver_after_fork_during_storage() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(&server, Some(dir.path()))).unwrap();

    for fork_number in 0..FORKS {
        for number in 0..RECORDS_PER_FORK {
            client
                .track(
                    "parent",
                    json!({"fork": fork_number, "number": number}),
                    TrackOptions::default(),
                )
                .unwrap();
        }

        assert!(
            client.prepare_fork(),
            "the worker did not park before fork {fork_number}"
        );
        // SAFETY: the child only uses the client, which rebuilds its worker and connections,
        // and then leaves with `_exit`, without running destructors or test code.
        let pid = unsafe { fork() };
        if pid == 0 {
            client.reinit_after_fork();
            let tracked = client.track(
                "child",
                json!({"fork": fork_number}),
                TrackOptions::default(),
            );
            let delivered = tracked.is_ok() && client.flush(FLUSH);
            let stopped = client.shutdown(FLUSH);
            unsafe { _exit(if delivered && stopped { 0 } else { 1 }) };
        }
        client.after_fork_in_parent();
        assert!(pid > 0, "fork {fork_number} failed");

        let status = wait_for_child(pid, CHILD_TIMEOUT);
        assert!(
            status.is_some(),
            "child of fork {fork_number} blocked for {CHILD_TIMEOUT:?} and was killed"
        );
        assert_eq!(
            status,
            Some(0),
            "child of fork {fork_number} failed to deliver its event"
        );
    }

    assert!(client.flush(FLUSH));
    let events = server.accepted("/track");
    let child_forks: BTreeSet<u64> = events
        .iter()
        .filter(|event| event["event"] == "child")
        .map(|event| event["properties"]["fork"].as_u64().unwrap())
        .collect();
    let child_events = events
        .iter()
        .filter(|event| event["event"] == "child")
        .count() as u64;
    assert_eq!(child_forks, (0..FORKS).collect::<BTreeSet<u64>>());
    assert_eq!(child_events, FORKS, "a child event was delivered twice");
    let parent_events = events
        .iter()
        .filter(|event| event["event"] == "parent")
        .count() as u64;
    assert_eq!(parent_events, FORKS * RECORDS_PER_FORK);
}
