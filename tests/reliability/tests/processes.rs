//! Process scenarios: shutdown from inside the drop callback, shutdown twice and from several
//! threads at once, and 16 threads tracking and changing groups concurrently.
//!
//! Forking a process that runs a client is covered by the Python binding's tests, which
//! call `os.fork()`.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use groupscope::{Client, DropReport, Error, TrackOptions};
use groupscope_reliability::{Figures, Ledger, TestServer, client_config};
use serde_json::json;

/// How long a call may block before the test calls it a deadlock.
const DEADLOCK_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn shutdown_inside_drop_callback() {
    let server = TestServer::start();
    let slot: Arc<OnceLock<Client>> = Arc::new(OnceLock::new());
    let (sender, receiver) = mpsc::channel::<(DropReport, bool)>();
    let sender = Mutex::new(sender);

    let mut config = client_config(&server.url(), None);
    let callback_slot = Arc::clone(&slot);
    config.on_drop = Some(Arc::new(move |report: &DropReport| {
        let delivered = callback_slot
            .get()
            .map(|client| client.shutdown(Duration::from_secs(5)));
        let _ = sender
            .lock()
            .unwrap()
            .send((report.clone(), delivered.unwrap_or(true)));
    }));
    assert!(slot.set(Client::new(config).unwrap()).is_ok());
    let client = slot.get().unwrap();

    server.script_faults(json!({"endpoint": "track", "responses": [{"status": 400, "body": "{\"status\":0,\"error\":\"rejected by the test\"}"}]}));
    let rejected = client
        .track("Rejected", json!({}), TrackOptions::default())
        .unwrap();
    let (report, callback_result) = receiver
        .recv_timeout(DEADLOCK_TIMEOUT)
        .expect("the drop callback ran and its shutdown call returned");
    assert_eq!(report.insert_ids, vec![rejected]);
    assert!(
        !callback_result,
        "shutdown inside the callback cannot wait for delivery and returns false"
    );

    let started = Instant::now();
    let (done_sender, done_receiver) = mpsc::channel();
    let waiter_slot = Arc::clone(&slot);
    std::thread::spawn(move || {
        let result = waiter_slot.get().unwrap().shutdown(Duration::from_secs(5));
        let _ = done_sender.send(result);
    });
    let outer = done_receiver
        .recv_timeout(DEADLOCK_TIMEOUT)
        .expect("shutdown after a shutdown from the callback returns");
    Figures::new("shutdown inside the drop callback")
        .with("second_shutdown_ms", started.elapsed().as_millis())
        .report();
    assert!(
        outer,
        "the queue was empty when the worker stopped, so shutdown reports everything settled"
    );
    assert!(matches!(
        client.track("After", json!({}), TrackOptions::default()),
        Err(Error::ShutDown)
    ));
}

#[test]
fn shutdown_twice_returns_same_result() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();
    for seq in 0..20 {
        ledger.acknowledge(
            client
                .track("Twice", json!({"seq": seq}), TrackOptions::default())
                .unwrap(),
        );
    }

    assert!(
        client.shutdown(Duration::from_secs(10)),
        "the first shutdown delivers everything"
    );
    assert!(
        client.shutdown(Duration::from_secs(10)),
        "a second shutdown returns the first one's result"
    );
    assert!(
        client.flush(Duration::from_secs(1)),
        "flush after shutdown returns the shutdown's result"
    );
    match client.track("After Shutdown", json!({}), TrackOptions::default()) {
        Err(Error::ShutDown) => {}
        other => panic!("track after shutdown returned {other:?}, expected Error::ShutDown"),
    }
    assert!(matches!(
        client.set_group("company_id", ["late"]),
        Err(Error::ShutDown)
    ));
    drop(client);

    let settlement = ledger.settle(&server);
    settlement.figures("shutdown twice", 0).report();
    settlement.assert_exactly_once();
    assert_eq!(settlement.delivered, 20);
}

#[test]
fn concurrent_shutdowns_agree() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.on_drop = Some(ledger.drop_callback());
    let client = Arc::new(Client::new(config).unwrap());
    for seq in 0..200 {
        ledger.acknowledge(
            client
                .track(
                    "Concurrent Shutdown",
                    json!({"seq": seq}),
                    TrackOptions::default(),
                )
                .unwrap(),
        );
    }

    let (sender, receiver) = mpsc::channel();
    for _ in 0..4 {
        let client = Arc::clone(&client);
        let sender = sender.clone();
        std::thread::spawn(move || {
            let _ = sender.send(client.shutdown(Duration::from_secs(10)));
        });
    }
    let results: Vec<bool> = (0..4)
        .map(|_| {
            receiver
                .recv_timeout(DEADLOCK_TIMEOUT)
                .expect("every concurrent shutdown returns")
        })
        .collect();
    assert_eq!(
        results,
        vec![true; 4],
        "every shutdown reports the delivery of all 200 events"
    );

    let settlement = ledger.settle(&server);
    settlement
        .figures("shutdown from 4 threads at once", 0)
        .report();
    settlement.assert_exactly_once();
    assert_eq!(settlement.delivered, 200);
}

#[test]
fn sixteen_threads_keep_groups_consistent() {
    const THREADS: usize = 16;
    const STEPS: usize = 40;

    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), Some(dir.path()));
    config.on_drop = Some(ledger.drop_callback());
    let client = Arc::new(Client::new(config).unwrap());
    client.identify("concurrent-user").unwrap();

    let expectations = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let client = Arc::clone(&client);
            let ledger = Arc::clone(&ledger);
            let expectations = Arc::clone(&expectations);
            std::thread::spawn(move || {
                for step in 0..STEPS {
                    let id = format!("t{thread}-{step}");
                    client.add_group("company_id", id.as_str()).unwrap();
                    let insert_id = client
                        .track(
                            "Concurrent",
                            json!({"thread": thread, "step": step}),
                            TrackOptions::default(),
                        )
                        .unwrap();
                    expectations
                        .lock()
                        .unwrap()
                        .push((insert_id.clone(), id.clone()));
                    ledger.acknowledge(insert_id);
                    if step > 0 {
                        client
                            .remove_group("company_id", format!("t{thread}-{}", step - 1).as_str())
                            .unwrap();
                    }
                }
                client
                    .add_group("company_id", format!("t{thread}-final").as_str())
                    .unwrap();
                client
                    .remove_group("company_id", format!("t{thread}-{}", STEPS - 1).as_str())
                    .unwrap();
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("no tracking thread panicked");
    }

    let expected: BTreeSet<String> = (0..THREADS)
        .map(|thread| format!("t{thread}-final"))
        .collect();
    let in_memory: BTreeSet<String> = client.groups()["company_id"]
        .iter()
        .map(|id| id.as_str().to_owned())
        .collect();
    assert_eq!(
        in_memory, expected,
        "the client's group super property after all threads finished"
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.flush(Duration::from_secs(10)) {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain: {:?}",
            client.stats()
        );
    }
    let stats = client.stats();
    assert!(client.shutdown(Duration::from_secs(5)));
    drop(client);

    let reopened = Client::new(client_config(&server.url(), Some(dir.path()))).unwrap();
    let persisted: BTreeSet<String> = reopened.groups()["company_id"]
        .iter()
        .map(|id| id.as_str().to_owned())
        .collect();
    reopened.shutdown(Duration::from_secs(2));
    assert_eq!(
        persisted, expected,
        "the persisted group super property after a restart"
    );

    let profile = server
        .user_properties("concurrent-user")
        .expect("the user profile reached the server");
    let on_server: BTreeSet<String> = profile["company_id"]
        .as_array()
        .unwrap_or_else(|| panic!("the user profile has no company_id list: {profile}"))
        .iter()
        .map(|id| id.as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        on_server, expected,
        "the user profile's company_id after every $union and $remove was applied in order"
    );

    let events = server.events();
    let mut missing_own_group = Vec::new();
    for (insert_id, own_group) in expectations.lock().unwrap().iter() {
        let Some(event) = events
            .iter()
            .find(|event| event.insert_id.as_deref() == Some(insert_id.as_str()))
        else {
            continue;
        };
        let carries = event.properties["company_id"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(own_group.as_str())));
        if !carries {
            missing_own_group.push((
                insert_id.clone(),
                own_group.clone(),
                event.properties["company_id"].clone(),
            ));
        }
    }

    let settlement = ledger.settle(&server);
    settlement
        .figures("16 threads tracking and changing groups", stats.retried)
        .with("group_changes", THREADS * (STEPS * 2 + 1))
        .report();
    settlement.assert_exactly_once();
    assert_eq!(settlement.delivered as usize, THREADS * STEPS);
    assert!(
        missing_own_group.is_empty(),
        "{} events lack the group their thread added before tracking them, for example {:?}",
        missing_own_group.len(),
        missing_own_group.first()
    );
}
