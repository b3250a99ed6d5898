//! Batching, retries, drops and shutdown, checked against a scripted loopback server.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use groupscope::{Client, DropReason, ProfileOperation, TrackOptions};
use serde_json::{Value, json};
use support::{Drops, FLUSH, Reply, Server, config};

fn insert_ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|record| {
            record["properties"]["$insert_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn failed_batch_is_resent_with_same_insert_ids() {
    let server = Server::start();
    server.script([
        Reply::ok(),
        Reply::status(500, ""),
        Reply::ok(),
        Reply::ok(),
    ]);
    let mut config = config(&server, None);
    config.batch_size = 2;
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();

    let tracked: Vec<String> = (0..4)
        .map(|i| {
            client
                .track("e", json!({"i": i}), TrackOptions::default())
                .unwrap()
        })
        .collect();
    assert!(client.flush(FLUSH));

    // The two batches can be in flight together, so either may be the second to arrive and
    // get the 500.
    let requests = server.received();
    assert_eq!(requests.len(), 3, "two batches and one retry");
    let mut first_two = [insert_ids(&requests[0].records), insert_ids(&requests[1].records)];
    first_two.sort();
    let mut batches = [tracked[0..2].to_vec(), tracked[2..4].to_vec()];
    batches.sort();
    assert_eq!(first_two, batches);
    assert_eq!(
        insert_ids(&requests[2].records),
        insert_ids(&requests[1].records),
        "the retry carries the same $insert_ids"
    );

    let mut acknowledged: HashMap<String, usize> = HashMap::new();
    for id in insert_ids(&server.accepted("/track")) {
        *acknowledged.entry(id).or_default() += 1;
    }
    for id in &tracked {
        assert_eq!(
            acknowledged.get(id),
            Some(&1),
            "{id} must be acknowledged exactly once"
        );
    }
    let stats = client.stats();
    assert_eq!(stats.delivered, 4);
    assert_eq!(stats.retried, 1);
    assert_eq!(stats.queued, 0);
}

#[test]
fn large_events_stay_under_byte_limit() {
    let server = Server::start();
    server.reject_above(1_000_000);
    let mut config = config(&server, None);
    config.max_request_bytes = 1_000_000;
    let client = Client::new(config).unwrap();

    let emoji: String = "😀".repeat(3_000);
    let mut properties = serde_json::Map::new();
    for i in 0..10 {
        properties.insert(format!("text_{i}"), Value::String(emoji.clone()));
    }
    for _ in 0..200 {
        client
            .track(
                "big",
                Value::Object(properties.clone()),
                TrackOptions::default(),
            )
            .unwrap();
    }
    assert!(client.flush(FLUSH));

    let requests = server.received();
    for request in &requests {
        assert!(
            request.body_len <= 1_000_000,
            "a {} byte request was sent",
            request.body_len
        );
        assert_eq!(request.status, 200);
        assert!(request.gzip, "a repetitive body is smaller compressed");
    }
    assert_eq!(server.events().len(), 200);
    assert_eq!(server.events()[0]["text_0"].as_str().unwrap(), emoji);
}

#[test]
fn status_413_splits_batches() {
    let server = Server::start();
    server.reject_above(300_000);
    let mut config = config(&server, None);
    config.max_request_bytes = 2_000_000;
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();

    let text = "x".repeat(50_000);
    for _ in 0..20 {
        client
            .track("big", json!({ "text": text }), TrackOptions::default())
            .unwrap();
    }
    assert!(client.flush(FLUSH));

    let requests = server.received();
    assert_eq!(requests[0].status, 413);
    assert_eq!(requests[0].records.len(), 20);
    assert_eq!(server.events().len(), 20);
    assert_eq!(client.stats().dropped_too_large, 0);
}

#[test]
fn oversized_record_is_dropped_and_reported() {
    let server = Server::start();
    server.reject_above(2_000);
    let drops = Drops::default();
    let mut config = config(&server, None);
    config.on_drop = Some(drops.callback());
    let client = Client::new(config).unwrap();

    let small = client
        .track("small", Value::Null, TrackOptions::default())
        .unwrap();
    let big = client
        .track(
            "big",
            json!({"text": "y".repeat(5_000)}),
            TrackOptions::default(),
        )
        .unwrap();
    assert!(client.flush(FLUSH));

    assert_eq!(insert_ids(&server.accepted("/track")), vec![small]);
    let reports = drops.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].reason, DropReason::TooLarge);
    assert_eq!(reports[0].insert_ids, vec![big]);
    assert_eq!(client.stats().dropped_too_large, 1);
}

#[test]
fn stored_record_over_request_limit_is_dropped() {
    // Recorded with the default limit, the event stays in the data directory while the
    // server fails, and a client with a lower limit then finds it too large to send.
    let dir = tempfile::tempdir().unwrap();
    let failing = Server::start();
    failing.default_reply(Reply::status(503, "0"));
    let client = Client::new(config(&failing, Some(dir.path()))).unwrap();
    let big = client
        .track(
            "big",
            json!({"text": "z".repeat(10_000)}),
            TrackOptions::default(),
        )
        .unwrap();
    assert!(!client.flush(Duration::from_millis(300)));
    client.shutdown(Duration::ZERO);
    drop(client);

    let server = Server::start();
    let drops = Drops::default();
    let mut config = config(&server, Some(dir.path()));
    config.max_request_bytes = 4_096;
    config.on_drop = Some(drops.callback());
    let client = Client::new(config).unwrap();
    assert!(client.flush(FLUSH));

    assert!(server.received().is_empty());
    assert_eq!(drops.reports()[0].reason, DropReason::TooLarge);
    assert_eq!(drops.reports()[0].insert_ids, vec![big]);
}

#[test]
fn slow_server_delivers_before_shutdown_returns() {
    let server = Server::start();
    server.default_reply(Reply::ok().delayed(Duration::from_millis(500)));
    let mut config = config(&server, None);
    config.batch_size = 1;
    config.flush_interval = Duration::ZERO;
    let client = Client::new(config).unwrap();

    for i in 0..3 {
        client
            .track("slow", json!({ "i": i }), TrackOptions::default())
            .unwrap();
    }
    assert!(client.shutdown(Duration::from_secs(5)));
    assert_eq!(server.events().len(), 3);
}

#[test]
fn unavailable_server_gets_bounded_attempts_with_growing_gaps() {
    let server = Server::start();
    server.default_reply(Reply::status(503, ""));
    let mut config = config(&server, None);
    config.initial_retry_delay = Duration::from_millis(100);
    config.max_retry_delay = Duration::from_secs(2);
    config.max_attempts_per_cycle = 4;
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();

    client
        .track("e", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(
        !client.flush(FLUSH),
        "flush reports that the record is still queued"
    );
    std::thread::sleep(Duration::from_millis(300));

    let requests = server.received();
    assert_eq!(
        requests.len(),
        4,
        "one cycle makes max_attempts_per_cycle attempts"
    );
    let gaps: Vec<Duration> = requests
        .windows(2)
        .map(|pair| pair[1].at - pair[0].at)
        .collect();
    assert!(
        gaps[0] >= Duration::from_millis(75),
        "first gap {:?}",
        gaps[0]
    );
    for pair in gaps.windows(2) {
        assert!(pair[1] > pair[0], "gaps must grow: {gaps:?}");
    }
    let stats = client.stats();
    assert_eq!(stats.queued, 1);
    assert_eq!(stats.delivered, 0);
    assert_eq!(stats.retried, 4);
}

#[test]
fn retry_after_is_honoured() {
    let server = Server::start();
    server.script([Reply::status(429, "").retry_after("1")]);
    let client = Client::new(config(&server, None)).unwrap();

    client
        .track("e", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));

    let requests = server.received();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at - requests[0].at >= Duration::from_secs(1));
    assert_eq!(server.events().len(), 1);
}

#[test]
fn import_failed_records_drop_only_named_records() {
    let server = Server::start();
    let ids = ["import-0", "import-1", "import-2"];
    let body = format!(
        r#"{{"code":400,"error":"some data points in the request failed validation","failed_records":[{{"index":1,"$insert_id":"{}","field":"properties.time","message":"bad"}}],"num_records_imported":2,"status":"Bad Request"}}"#,
        ids[1]
    );
    server.script([Reply::status(400, &body)]);
    let drops = Drops::default();
    let mut config = config(&server, None);
    config.on_drop = Some(drops.callback());
    config.project_id = Some("123".to_owned());
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();

    for id in ids {
        let returned = client
            .import(
                "old event",
                json!({ "$insert_id": id }),
                TrackOptions::default().time(1_600_000_000.0),
            )
            .unwrap();
        assert_eq!(returned, id, "a valid call-site $insert_id is kept");
    }
    assert!(client.flush(FLUSH));

    let requests = server.received();
    assert_eq!(requests.len(), 1, "a 400 is not retried");
    assert_eq!(requests[0].url, "/import?strict=1&project_id=123");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Basic dGVzdC10b2tlbi0wMTIzNDU2Nzg5Og==")
    );
    assert_eq!(
        requests[0].records[0]["properties"]["time"],
        1_600_000_000_000i64
    );

    let reports = drops.reports();
    assert_eq!(reports.len(), 1);
    assert!(matches!(
        &reports[0].reason,
        DropReason::Rejected { status: 400, .. }
    ));
    assert_eq!(reports[0].insert_ids, vec![ids[1].to_owned()]);
    let stats = client.stats();
    assert_eq!(stats.delivered, 2);
    assert_eq!(stats.dropped_rejected, 1);
}

#[test]
fn verbose_status_zero_is_rejected() {
    let server = Server::start();
    server.script([Reply::status(200, r#"{"status":0,"error":"bad token"}"#)]);
    let drops = Drops::default();
    let mut config = config(&server, None);
    config.on_drop = Some(drops.callback());
    let client = Client::new(config).unwrap();

    client
        .track("e", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));

    assert_eq!(
        drops.reports()[0].reason,
        DropReason::Rejected {
            status: 200,
            message: "bad token".to_owned()
        }
    );
    assert_eq!(client.stats().delivered, 0);
}

#[test]
fn unauthorized_batch_is_dropped() {
    let server = Server::start();
    server.script([Reply::status(
        401,
        r#"{"error":"Invalid credentials","status":"error"}"#,
    )]);
    let client = Client::new(config(&server, None)).unwrap();

    client
        .track("e", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));

    assert_eq!(server.received().len(), 1);
    assert_eq!(client.stats().dropped_unauthorized, 1);
}

#[test]
fn panicking_drop_callback_keeps_worker_alive() {
    let server = Server::start();
    server.script([Reply::status(400, "bad")]);
    let mut config = config(&server, None);
    config.on_drop = Some(Arc::new(|_: &groupscope::DropReport| {
        panic!("callback failure")
    }));
    let client = Client::new(config).unwrap();

    client
        .track("dropped", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));
    client
        .track("delivered", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));

    assert_eq!(server.accepted("/track").len(), 1);
    assert_eq!(client.stats().dropped_rejected, 1);
}

#[test]
fn shutdown_inside_drop_callback_does_not_deadlock() {
    let server = Server::start();
    server.script([Reply::status(400, "bad")]);
    let slot: Arc<OnceLock<Arc<Client>>> = Arc::new(OnceLock::new());
    let results = Arc::new(Mutex::new(Vec::new()));

    let mut config = config(&server, None);
    {
        let slot = slot.clone();
        let results = results.clone();
        config.on_drop = Some(Arc::new(move |_: &groupscope::DropReport| {
            let client = slot.get().expect("the client is set before any drop");
            let started = Instant::now();
            let result = client.shutdown(Duration::from_secs(5));
            results.lock().unwrap().push((result, started.elapsed()));
        }));
    }
    let client = Arc::new(Client::new(config).unwrap());
    assert!(slot.set(client.clone()).is_ok());

    client
        .track("e", Value::Null, TrackOptions::default())
        .unwrap();
    let started = Instant::now();
    assert!(client.shutdown(Duration::from_secs(5)));
    assert!(started.elapsed() < Duration::from_secs(5));

    let results = results.lock().unwrap();
    assert_eq!(results.len(), 1);
    assert!(
        results[0].1 < Duration::from_secs(1),
        "shutdown on the worker thread must not wait"
    );
}

#[test]
fn shutdown_twice_is_harmless() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    client
        .track("e", Value::Null, TrackOptions::default())
        .unwrap();

    assert!(client.shutdown(FLUSH));
    assert!(client.shutdown(FLUSH));
    assert!(matches!(
        client.track("late", Value::Null, TrackOptions::default()),
        Err(groupscope::Error::ShutDown)
    ));
    assert_eq!(server.events().len(), 1);
}

#[test]
fn engage_and_groups_go_to_their_endpoints() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    client.identify("user-1").unwrap();
    client.add_group("company_id", "A").unwrap();
    client
        .group("company_id", "A")
        .unwrap()
        .set(json!({"plan": "pro"}))
        .unwrap();
    client
        .track("e", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));

    let mut paths: Vec<String> = server.received().iter().map(|r| r.url.clone()).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/engage?verbose=1", "/groups?verbose=1", "/track?verbose=1"]
    );
}

#[test]
fn shutdown_against_failing_server_is_bounded() {
    let server = Server::start();
    server.default_reply(Reply::status(503, ""));
    let mut config = config(&server, None);
    config.max_attempts_per_cycle = 2;
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();
    client
        .track("e", Value::Null, TrackOptions::default())
        .unwrap();

    let started = Instant::now();
    assert!(!client.shutdown(Duration::from_secs(5)));
    assert!(started.elapsed() < Duration::from_secs(5));
    let requests = server.received().len();
    assert!(
        (1..=2).contains(&requests),
        "{requests} requests during shutdown"
    );
}

#[test]
fn flush_inside_drop_callback_returns_at_once() {
    let server = Server::start();
    server.script([Reply::status(400, "bad")]);
    let slot: Arc<OnceLock<Arc<Client>>> = Arc::new(OnceLock::new());
    let waits = Arc::new(Mutex::new(Vec::new()));

    let mut config = config(&server, None);
    {
        let slot = slot.clone();
        let waits = waits.clone();
        config.on_drop = Some(Arc::new(move |_: &groupscope::DropReport| {
            let started = Instant::now();
            let flushed = slot.get().unwrap().flush(Duration::from_secs(5));
            waits.lock().unwrap().push((flushed, started.elapsed()));
        }));
    }
    let client = Arc::new(Client::new(config).unwrap());
    assert!(slot.set(client.clone()).is_ok());

    client
        .track("e", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));

    let waits = waits.lock().unwrap();
    assert_eq!(waits.len(), 1);
    assert!(
        !waits[0].0,
        "a flush on the worker thread cannot wait for itself"
    );
    assert!(waits[0].1 < Duration::from_secs(1));
}

#[test]
fn verbose_failed_records_drop_named_records() {
    let server = Server::start();
    server.script([
        Reply::status(
            200,
            r#"{"status":1,"error":"1 of 3 records were rejected","failed_records":[{"index":1,"$insert_id":"track-1","field":"properties.distinct_id","message":"invalid"}]}"#,
        ),
        Reply::status(
            200,
            r#"{"status":1,"error":"1 of 2 records were rejected","failed_records":[{"index":0,"field":"$set","message":"invalid"}]}"#,
        ),
    ]);
    let drops = Drops::default();
    let mut config = config(&server, None);
    config.on_drop = Some(drops.callback());
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();

    for i in 0..3 {
        client
            .track(
                "e",
                json!({ "$insert_id": format!("track-{i}") }),
                TrackOptions::default(),
            )
            .unwrap();
    }
    let group = client.group("company_id", "acme").unwrap();
    group.set(json!({"plan": "free"})).unwrap();
    group.set(json!({"plan": "paid"})).unwrap();
    assert!(client.flush(FLUSH));

    let paths: Vec<String> = server
        .received()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(paths, ["/track", "/groups"], "nothing is resent");

    let reports = drops.reports();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(
        reports[0].reason,
        DropReason::Rejected {
            status: 200,
            message: "1 of 3 records were rejected".to_owned()
        }
    );
    assert_eq!(reports[0].insert_ids, ["track-1"]);
    assert_eq!(reports[1].count, 1);

    let stats = client.stats();
    assert_eq!(stats.delivered, 3, "two events and one group update");
    assert_eq!(stats.dropped_rejected, 2);
    assert_eq!(stats.partially_rejected_batches, 0);
    assert_eq!(stats.queued, 0);
}

#[test]
fn verbose_error_without_failed_records_is_counted() {
    let server = Server::start();
    server.script([Reply::status(
        200,
        r#"{"status":1,"error":"1 of 2 records were rejected"}"#,
    )]);
    let drops = Drops::default();
    let mut config = config(&server, None);
    config.on_drop = Some(drops.callback());
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();

    for _ in 0..2 {
        client
            .track("e", Value::Null, TrackOptions::default())
            .unwrap();
    }
    assert!(client.flush(FLUSH));

    let stats = client.stats();
    assert_eq!(stats.partially_rejected_batches, 1);
    assert_eq!(
        stats.delivered, 2,
        "the server does not say which were lost"
    );
    assert_eq!(stats.queued, 0);
    assert!(drops.reports().is_empty());
    assert_eq!(server.received().len(), 1, "the batch is not resent");
}

#[test]
fn wrong_path_status_is_retried() {
    let server = Server::start();
    server.script([
        Reply::status(404, "not found"),
        Reply::status(405, "method not allowed"),
        Reply::ok(),
    ]);
    let drops = Drops::default();
    let mut config = config(&server, None);
    config.on_drop = Some(drops.callback());
    config.flush_interval = Duration::from_secs(60);
    let client = Client::new(config).unwrap();

    let id = client
        .track("e", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));

    assert!(drops.reports().is_empty(), "404 and 405 drop nothing");
    let requests = server.received();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(insert_ids(&request.records), std::slice::from_ref(&id));
    }
    let stats = client.stats();
    assert_eq!(stats.retried, 2);
    assert_eq!(stats.delivered, 1);
    assert_eq!(stats.dropped_rejected, 0);
}

#[test]
fn maximum_durations_do_not_panic() {
    type Change = fn(&mut groupscope::Config);
    let settings: [(&str, Change); 5] = [
        ("flush_interval", |c| c.flush_interval = Duration::MAX),
        ("request_timeout", |c| c.request_timeout = Duration::MAX),
        ("initial_retry_delay", |c| {
            c.initial_retry_delay = Duration::MAX;
            c.max_retry_delay = Duration::MAX;
        }),
        ("max_retry_delay", |c| c.max_retry_delay = Duration::MAX),
        ("all", |c| {
            c.flush_interval = Duration::MAX;
            c.request_timeout = Duration::MAX;
            c.initial_retry_delay = Duration::MAX;
            c.max_retry_delay = Duration::MAX;
        }),
    ];
    for (name, change) in settings {
        let server = Server::start();
        server.script([Reply::status(500, ""), Reply::ok()]);
        let mut config = config(&server, None);
        config.max_attempts_per_cycle = 1;
        change(&mut config);
        let retry_waits_forever = config.initial_retry_delay == Duration::MAX;
        let client = Client::new(config).unwrap();

        client
            .track("e", Value::Null, TrackOptions::default())
            .unwrap();
        assert!(!client.flush(FLUSH), "{name}: the first attempt fails");
        if retry_waits_forever {
            assert_eq!(client.stats().queued, 1, "{name}: the retry waits");
            assert!(!client.shutdown(Duration::from_millis(100)), "{name}");
        } else {
            assert!(client.flush(Duration::MAX), "{name}: the retry delivers");
            assert_eq!(client.stats().delivered, 1, "{name}");
            assert!(client.shutdown(Duration::MAX), "{name}");
        }
        assert_eq!(client.stats().retried, 1, "{name}");
    }
}

#[test]
fn shutdown_reports_undelivered_memory_records() {
    let server = Server::start();
    server.default_reply(Reply::status(503, ""));
    let drops = Drops::default();
    let mut config = config(&server, None);
    config.on_drop = Some(drops.callback());
    let client = Client::new(config).unwrap();

    let mut tracked = Vec::new();
    for seq in 0..3 {
        tracked.push(
            client
                .track("Undelivered", json!({"seq": seq}), TrackOptions::default())
                .unwrap(),
        );
    }
    assert!(!client.shutdown(Duration::from_millis(300)));

    let lost: Vec<_> = drops
        .reports()
        .into_iter()
        .filter(|report| report.reason == DropReason::ShutDown)
        .collect();
    assert_eq!(lost.len(), 1, "{:?}", drops.reports());
    assert_eq!(lost[0].count, 3);
    assert_eq!(lost[0].insert_ids, tracked);
    assert_eq!(client.stats().dropped_at_shutdown, 3);
    assert_eq!(client.stats().queued, 0);
}

#[test]
fn shutdown_keeps_durable_records_unreported() {
    let server = Server::start();
    server.default_reply(Reply::status(503, ""));
    let dir = tempfile::tempdir().unwrap();
    let drops = Drops::default();
    let mut config = config(&server, Some(dir.path()));
    config.on_drop = Some(drops.callback());
    let client = Client::new(config).unwrap();

    client
        .track("Kept", json!({}), TrackOptions::default())
        .unwrap();
    assert!(!client.shutdown(Duration::from_millis(300)));

    assert!(
        drops
            .reports()
            .iter()
            .all(|report| report.reason != DropReason::ShutDown),
        "{:?}",
        drops.reports()
    );
    assert_eq!(client.stats().dropped_at_shutdown, 0);
}

#[test]
fn track_while_opted_out_is_counted() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    client.opt_out().unwrap();

    client
        .track("Ignored", json!({}), TrackOptions::default())
        .unwrap();

    assert_eq!(client.stats().dropped_opted_out, 1);
    assert_eq!(client.stats().enqueued, 0);
}

#[test]
fn profile_updates_while_opted_out_are_counted() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    client.opt_out().unwrap();

    let group = client.group("company_id", "acme").unwrap();
    group.set(json!({ "plan": "pro" })).unwrap();
    client
        .engage("user-1", ProfileOperation::Set, json!({ "plan": "pro" }))
        .unwrap();

    assert_eq!(client.stats().dropped_opted_out, 2);
    assert_eq!(client.stats().enqueued, 0);
}

#[test]
fn accepted_events_fit_one_request() {
    let server = Server::start();
    let mut config = config(&server, None);
    config.max_request_bytes = 4096;
    let client = Client::new(config).unwrap();

    let too_large = "x".repeat(5000);
    let error = client
        .track("Big", json!({ "s": too_large }), TrackOptions::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"Big\""), "{error}");
    assert!(error.contains("max_request_bytes is 4096"), "{error}");
    assert_eq!(client.stats().enqueued, 0);

    // The largest accepted value, found by bisection, must still be delivered.
    let (mut accepted, mut rejected) = (0, 5000);
    while rejected - accepted > 1 {
        let middle = (accepted + rejected) / 2;
        let value = "x".repeat(middle);
        match client.track("Big", json!({ "s": value }), TrackOptions::default()) {
            Ok(_) => accepted = middle,
            Err(_) => rejected = middle,
        }
    }
    assert!(accepted > 3000, "accepted only {accepted} bytes");
    assert!(client.flush(FLUSH));

    let stats = client.stats();
    assert_eq!(stats.dropped_too_large, 0);
    assert_eq!(stats.delivered, stats.enqueued);
    let largest = server
        .events()
        .iter()
        .map(|properties| properties["s"].as_str().unwrap().len())
        .max();
    assert_eq!(largest, Some(accepted));
}

#[test]
fn oversized_profile_updates_are_rejected() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    let too_large = "x".repeat(1_100_000);

    let group = client.group("company_id", "acme").unwrap();
    let error = group
        .set(json!({ "s": too_large }))
        .unwrap_err()
        .to_string();
    assert!(error.contains("group (\"company_id\", \"acme\")"), "{error}");
    assert!(error.contains("1048576"), "{error}");

    let error = client
        .engage("user-1", ProfileOperation::Set, json!({ "s": too_large }))
        .unwrap_err()
        .to_string();
    assert!(error.contains("user \"user-1\""), "{error}");
    assert_eq!(client.stats().enqueued, 0);
}

/// Reads one HTTP request with a `Content-Length` body from `stream` and returns its body.
fn read_request(stream: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;

    let mut received = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map(|value| value.trim().parse().unwrap())
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return received[end + 4..end + 4 + length].to_vec();
            }
        }
        let read = stream.read(&mut chunk).expect("the client sends a whole request");
        assert!(read > 0, "the connection closed before a whole request arrived");
        received.extend_from_slice(&chunk[..read]);
    }
}

/// Starts a server that leaves each request without a response until a second one arrives,
/// and returns the largest number of requests pending at once. It stops at two, or once
/// `requests` requests were received, or after 10 s. A lone request gets its response after
/// 500 ms, because the worker may send the first full batch before the rest of a burst
/// reached its queue.
fn serve_counting_pending(requests: usize) -> (String, std::thread::JoinHandle<usize>) {
    use std::io::Write;
    use std::net::TcpListener;

    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1";
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut pending: Vec<(std::net::TcpStream, Instant)> = Vec::new();
        let mut received = 0;
        let mut max_pending = 0;
        while max_pending < 2 && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    read_request(&mut stream);
                    received += 1;
                    pending.push((stream, Instant::now()));
                    max_pending = max_pending.max(pending.len());
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(error) => panic!("accept failed: {error}"),
            }

            let lone_request_waited =
                pending.len() == 1 && pending[0].1.elapsed() > Duration::from_millis(500);
            if lone_request_waited {
                let (mut stream, _) = pending.remove(0);
                stream.write_all(RESPONSE).unwrap();
                if received == requests {
                    break;
                }
            }
        }
        for (stream, _) in &mut pending {
            stream.write_all(RESPONSE).unwrap();
        }
        max_pending
    });
    (url, server)
}

#[test]
fn backlog_is_sent_with_two_requests_in_flight() {
    let (url, server) = serve_counting_pending(4);
    let mut config = groupscope::Config::new("test-token");
    config.api_host = url;
    config.flush_interval = Duration::from_secs(60);
    config.gzip = false;
    let client = Client::new(config).unwrap();
    // Four full batches of 50, so at least three are queued once a lone first request gets
    // its response.
    for i in 0..200 {
        client
            .track("e", json!({ "i": i }), TrackOptions::default())
            .unwrap();
    }
    client.flush(Duration::from_millis(1));

    assert_eq!(
        server.join().unwrap(),
        2,
        "a second request arrived while an earlier one was unanswered"
    );
    client.shutdown(Duration::ZERO);
}

#[test]
fn profile_backlog_is_sent_one_request_at_a_time() {
    let (url, server) = serve_counting_pending(4);
    let mut config = groupscope::Config::new("test-token");
    config.api_host = url;
    config.flush_interval = Duration::from_secs(60);
    config.gzip = false;
    let client = Client::new(config).unwrap();
    let group = client.group("company_id", "acme").unwrap();
    // Four full batches of 50 operations whose result depends on their order.
    for i in 0..100 {
        group.union(json!({ "tags": [format!("t{i}")] })).unwrap();
        group.remove(json!({ "tags": format!("t{i}") })).unwrap();
    }
    client.flush(Duration::from_millis(1));

    assert_eq!(
        server.join().unwrap(),
        1,
        "a second /groups request arrived while an earlier one was unanswered"
    );
    client.shutdown(Duration::ZERO);
}
