//! Outage and recovery: the server responds with 503, resets connections and stalls past the
//! request timeout, then recovers. Time is compressed with millisecond retry delays; the long
//! variant (`GROUPSCOPE_LONG=1`) keeps the outage up for 10 minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use groupscope::{Client, DropReason, TrackOptions};
use groupscope_reliability::{Ledger, TestServer, client_config, scaled};
use groupscope_server::DbLocation;
use serde_json::{Value, json};

/// The mix of failures the outage cycles through: 503 and 502 responses, connection resets,
/// and responses that arrive after the request timeout.
///
/// NOTE: a stalled request is cancelled by the server when the client disconnects, so no
/// step here stores a batch whose response the client never receives. The resend after such a loss
/// is covered by the kill -9 loop instead.
fn outage_steps(request_timeout: Duration) -> Vec<Value> {
    let stall_ms = request_timeout.as_millis() as u64 + 300;
    let mut steps = Vec::new();
    for _ in 0..5 {
        steps.push(json!({"status": 503}));
        steps.push(json!({"drop_connection": true}));
        steps.push(json!({"delay_ms": stall_ms, "status": 503}));
        steps.push(json!({"status": 502}));
        steps.push(json!({"delay_ms": stall_ms}));
        steps.push(json!({"status": 503}));
    }
    steps
}

#[test]
fn outage_then_recovery_delivers_everything_once() {
    let server = Arc::new(TestServer::start());
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.request_timeout = Duration::from_millis(500);
    config.on_drop = Some(ledger.drop_callback());
    let request_timeout = config.request_timeout;
    let max_attempts = config.max_attempts_per_cycle;
    let client = Client::new(config).unwrap();

    let outage = Duration::from_secs(scaled(4, 600));
    let pause = Duration::from_millis(scaled(5, 20));
    let failing = Arc::new(AtomicBool::new(true));
    let scripted = Arc::new(AtomicUsize::new(0));
    let steps = outage_steps(request_timeout);
    scripted.fetch_add(steps.len(), Ordering::AcqRel);
    server.script_faults(json!({"endpoint": "*", "responses": steps}));
    let feeder = {
        let server = Arc::clone(&server);
        let failing = Arc::clone(&failing);
        let scripted = Arc::clone(&scripted);
        std::thread::spawn(move || {
            while failing.load(Ordering::Acquire) {
                if server.pending_faults() < 20 {
                    let steps = outage_steps(request_timeout);
                    scripted.fetch_add(steps.len(), Ordering::AcqRel);
                    server.script_faults(json!({"endpoint": "*", "responses": steps}));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let started = Instant::now();
    let mut seq = 0u64;
    while started.elapsed() < outage {
        let insert_id = client
            .track("Outage Tick", json!({"seq": seq}), TrackOptions::default())
            .unwrap();
        ledger.acknowledge(insert_id);
        seq += 1;
        std::thread::sleep(pause);
    }
    let delivered_during_outage = client.stats().delivered;
    failing.store(false, Ordering::Release);
    feeder.join().unwrap();
    let failed_attempts = scripted.load(Ordering::Acquire) - server.pending_faults();
    server.clear_faults();

    let recovery = Instant::now();
    let deadline = recovery + Duration::from_secs(60);
    while !client.flush(Duration::from_secs(10)) {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain within 60 s of recovery: {:?}",
            client.stats()
        );
    }
    let recovered_in = recovery.elapsed();
    let stats = client.stats();
    assert!(client.shutdown(Duration::from_secs(5)));

    let settlement = ledger.settle(&server);
    settlement
        .figures("outage and recovery", stats.retried)
        .with("outage_s", outage.as_secs())
        .with("failed_attempts", failed_attempts)
        .with("delivered_during_outage", delivered_during_outage)
        .with("recovery_ms", recovered_in.as_millis())
        .with("max_attempts_per_cycle", max_attempts)
        .report();

    settlement.assert_exactly_once();
    assert!(
        settlement.dropped.is_empty(),
        "records were dropped during a retryable outage: {:?}",
        ledger.reports()
    );
    assert_eq!(
        settlement.delivered, settlement.tracked,
        "not every tracked event reached the server"
    );
    assert!(failed_attempts > 0, "the outage produced no failed request");
    // Every request that met a scripted fault counts one retry. A request may still take a
    // step between reading the pending faults and clearing them, hence the margin of 2.
    assert!(
        (failed_attempts as u64..=failed_attempts as u64 + 2).contains(&stats.retried),
        "the client counted {} retries for {failed_attempts} failed requests",
        stats.retried
    );
}

#[test]
fn flush_cycle_attempts_are_bounded() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.flush_interval = Duration::from_secs(60);
    config.max_attempts_per_cycle = 3;
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    server.script_faults(
        json!({"endpoint": "track", "responses": vec![json!({"status": 503}); 100]}),
    );
    for seq in 0..5 {
        ledger.acknowledge(
            client
                .track("Cycle Tick", json!({"seq": seq}), TrackOptions::default())
                .unwrap(),
        );
    }

    let mut attempts_per_cycle = Vec::new();
    for cycle in 0..3 {
        server.clear_requests();
        assert!(
            !client.flush(Duration::from_secs(10)),
            "cycle {cycle}: flush returned true while every request fails"
        );
        attempts_per_cycle.push(
            server
                .requests()
                .iter()
                .filter(|entry| entry.endpoint == "track")
                .count(),
        );
    }
    for (cycle, attempts) in attempts_per_cycle.iter().enumerate() {
        assert!(*attempts >= 1, "cycle {cycle}: the flush sent no request");
        assert!(
            *attempts <= 3,
            "cycle {cycle}: {attempts} requests in one flush cycle, more than max_attempts_per_cycle = 3"
        );
    }

    server.clear_faults();
    assert!(
        client.flush(Duration::from_secs(10)),
        "flush after recovery did not deliver: {:?}",
        client.stats()
    );
    let stats = client.stats();
    client.shutdown(Duration::from_secs(5));
    let settlement = ledger.settle(&server);
    settlement
        .figures("retry attempts per flush cycle", stats.retried)
        .with("attempts_per_cycle", format!("{attempts_per_cycle:?}"))
        .report();
    settlement.assert_exactly_once();
    assert_eq!(settlement.delivered, 5);
}

#[test]
fn service_unavailable_honours_retry_after() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.max_retry_delay = Duration::from_millis(100);
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    server.script_faults(
        json!({"endpoint": "track", "responses": [{"status": 503, "retry_after": 2}]}),
    );
    ledger.acknowledge(
        client
            .track("Retry After", json!({}), TrackOptions::default())
            .unwrap(),
    );
    assert!(
        client.flush(Duration::from_secs(10)),
        "the event was not delivered after the Retry-After delay"
    );
    client.shutdown(Duration::from_secs(5));

    let track: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|entry| entry.endpoint == "track")
        .collect();
    assert_eq!(
        track.len(),
        2,
        "expected one 503 and one successful request, got {track:?}"
    );
    let waited_ms = track[1].received_at_ms - track[0].received_at_ms;
    ledger
        .settle(&server)
        .figures("503 with Retry-After: 2", 1)
        .with("waited_ms", waited_ms)
        .report();
    assert!(
        waited_ms >= 2000,
        "the client retried {waited_ms} ms after a 503 with Retry-After: 2"
    );
    assert!(
        waited_ms < 4000,
        "the client waited {waited_ms} ms after a 503 with Retry-After: 2"
    );
    ledger.settle(&server).assert_exactly_once();
}

#[test]
fn queue_cap_during_outage_reports_evictions() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.max_queue_records = 100;
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    server.script_faults(
        json!({"endpoint": "*", "responses": vec![json!({"status": 503}); 100_000]}),
    );
    let mut tracked = Vec::new();
    for seq in 0..250 {
        let insert_id = client
            .track("Capped", json!({"seq": seq}), TrackOptions::default())
            .unwrap();
        tracked.push(insert_id.clone());
        ledger.acknowledge(insert_id);
    }
    client.flush(Duration::from_secs(2));
    server.clear_faults();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.flush(Duration::from_secs(5)) {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain after the outage: {:?}",
            client.stats()
        );
    }
    let stats = client.stats();
    client.shutdown(Duration::from_secs(5));

    let settlement = ledger.settle(&server);
    settlement
        .figures(
            "queue capped at 100 records during an outage",
            stats.retried,
        )
        .with("dropped_queue_full", stats.dropped_queue_full)
        .report();
    settlement.assert_exactly_once();
    assert_eq!(
        settlement.delivered, 100,
        "the 100 newest records are delivered"
    );
    assert_eq!(stats.dropped_queue_full, 150);
    let stored = server.insert_id_counts();
    assert!(
        tracked[150..]
            .iter()
            .all(|insert_id| stored.contains_key(insert_id)),
        "the evicted records are the oldest ones"
    );
    assert!(
        ledger
            .reports()
            .iter()
            .all(|report| report.reason == DropReason::QueueFull),
        "every drop is reported as QueueFull: {:?}",
        ledger.reports()
    );
}

#[test]
fn server_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_with_db(DbLocation::File(dir.path().join("server.sqlite3")));
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), Some(&dir.path().join("client")));
    config.on_drop = Some(ledger.drop_callback());
    let client = Arc::new(Client::new(config).unwrap());

    let restarts = scaled(3, 20);
    let tracking = Arc::new(AtomicBool::new(true));
    let tracker = {
        let client = Arc::clone(&client);
        let ledger = Arc::clone(&ledger);
        let tracking = Arc::clone(&tracking);
        std::thread::spawn(move || {
            let mut seq = 0u64;
            while tracking.load(Ordering::Acquire) {
                let insert_id = client
                    .track(
                        "Across Restarts",
                        json!({"seq": seq}),
                        TrackOptions::default(),
                    )
                    .unwrap();
                ledger.acknowledge(insert_id);
                seq += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    for _ in 0..restarts {
        std::thread::sleep(Duration::from_millis(300));
        server.restart(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_millis(300));
    tracking.store(false, Ordering::Release);
    tracker.join().unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.flush(Duration::from_secs(10)) {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain after the last restart: {:?}",
            client.stats()
        );
    }
    let stats = client.stats();
    assert!(client.shutdown(Duration::from_secs(5)));

    // NOTE: `resent` counts only requests since the last restart, because a restart clears
    // the server's request log. Duplicates after deduplication are still checked in full.
    let settlement = ledger.settle(&server);
    settlement
        .figures("server restarted while the client sends", stats.retried)
        .with("restarts", restarts)
        .report();
    settlement.assert_exactly_once();
    assert!(
        settlement.dropped.is_empty(),
        "records were dropped across restarts: {:?}",
        ledger.reports()
    );
    assert_eq!(settlement.delivered, settlement.tracked);
}
