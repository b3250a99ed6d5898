//! `prepare_fork` and `after_fork_in_parent` without a fork: a parked worker stops touching
//! the store and resumes when released, a request in flight does not delay the park, and a
//! stuck worker is given up on.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use groupscope::{Client, TrackOptions};
use serde_json::{Value, json};
use support::{FLUSH, Reply, Server, config};

/// Counts the rows of the durable queue through a connection of its own.
fn stored_rows(data_dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(data_dir.join("groupscope.sqlite3")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM queue", [], |row| row.get(0))
        .unwrap()
}

/// Waits until `condition` holds, for at most `FLUSH`.
fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + FLUSH;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn parked_worker_stores_nothing_until_resumed() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server, Some(dir.path()));
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();

    assert!(client.prepare_fork());
    for number in 0..10 {
        client
            .track("parked", json!({"number": number}), TrackOptions::default())
            .unwrap();
    }
    // A worker that ignored the park would store the records within a few milliseconds.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stored_rows(dir.path()), 0);
    assert_eq!(client.stats().queued, 10);

    client.after_fork_in_parent();
    wait_until("the resumed worker stored the records", || {
        stored_rows(dir.path()) == 10
    });
    assert!(client.flush(FLUSH));
    assert_eq!(server.events().len(), 10);
    assert_eq!(stored_rows(dir.path()), 0);
}

#[test]
fn request_in_flight_does_not_delay_park() {
    let server = Server::start();
    // Longer than the 1 s that prepare_fork waits, so waiting for the response would make
    // it return false.
    server.script([Reply::ok().delayed(Duration::from_secs(3))]);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(&server, Some(dir.path()))).unwrap();

    client
        .track("in flight", Value::Null, TrackOptions::default())
        .unwrap();
    wait_until("the request reached the server", || {
        !server.received().is_empty()
    });

    assert!(
        client.prepare_fork(),
        "prepare_fork must not wait for the response to a request in flight"
    );
    client.after_fork_in_parent();
    assert!(client.flush(FLUSH));
    assert_eq!(server.events().len(), 1);
}

#[test]
fn park_gives_up_on_stuck_worker() {
    let server = Server::start();
    server.script([Reply::status(400, "bad")]);
    let (entered_sender, entered) = crossbeam_channel::bounded::<()>(1);
    let (release, released) = crossbeam_channel::bounded::<()>(1);
    let mut config = config(&server, None);
    config.on_drop = Some(Arc::new(move |_: &groupscope::DropReport| {
        entered_sender.send(()).unwrap();
        released.recv().unwrap();
    }));
    let client = Client::new(config).unwrap();

    client
        .track("rejected", Value::Null, TrackOptions::default())
        .unwrap();
    entered.recv_timeout(FLUSH).unwrap();

    assert!(
        !client.prepare_fork(),
        "a worker stuck in the drop callback cannot be parked"
    );
    release.send(()).unwrap();
    client.after_fork_in_parent();

    client
        .track("delivered", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));
    let names: Vec<Value> = server
        .accepted("/track")
        .iter()
        .map(|event| event["event"].clone())
        .collect();
    assert_eq!(names, [json!("delivered")]);
}

#[test]
fn park_of_memory_client_resumes_delivery() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();

    assert!(client.prepare_fork());
    client
        .track("while parked", Value::Null, TrackOptions::default())
        .unwrap();
    client.after_fork_in_parent();

    assert!(client.flush(FLUSH));
    assert_eq!(server.events().len(), 1);
}

#[test]
fn park_of_shut_down_client_succeeds() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(config(&server, Some(dir.path()))).unwrap();
    assert!(client.shutdown(FLUSH));

    assert!(client.prepare_fork());
    client.after_fork_in_parent();
    assert!(client.prepare_fork());
    client.after_fork_in_parent();
}
