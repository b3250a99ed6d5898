//! Rate limits and size limits: 429 with `Retry-After`, 413 above a body size, and `/import`
//! responding 400 with `failed_records` naming some records.

use std::time::Duration;

use groupscope::{Client, DropReason, TrackOptions};
use groupscope_reliability::{Ledger, TestServer, client_config};
use serde_json::json;

/// Properties nested five objects deep, which the server rejects (it accepts three levels).
fn too_deep() -> serde_json::Value {
    json!({"a": {"b": {"c": {"d": {"e": 1}}}}})
}

/// An object property with 255 keys: the reference server rejects it (Mixpanel documents
/// fewer than 255 keys per object), while the client, which checks only the rules it can
/// apply to every event, accepts it.
fn too_wide() -> serde_json::Value {
    let keys: serde_json::Map<String, serde_json::Value> =
        (0..255).map(|i| (format!("k{i}"), json!(i))).collect();
    serde_json::Value::Object(keys)
}

#[test]
fn rate_limit_honours_retry_after() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.max_retry_delay = Duration::from_millis(100);
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    server.script_faults(json!({"endpoint": "track", "responses": [{"status": 429, "retry_after": 1}, {"status": 429, "retry_after": 1}]}));
    for seq in 0..10 {
        ledger.acknowledge(
            client
                .track("Rate Limited", json!({"seq": seq}), TrackOptions::default())
                .unwrap(),
        );
    }
    assert!(
        client.flush(Duration::from_secs(10)),
        "the events were not delivered after two 429 answers"
    );
    let stats = client.stats();
    client.shutdown(Duration::from_secs(5));

    let track: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|entry| entry.endpoint == "track")
        .collect();
    assert_eq!(
        track.len(),
        3,
        "expected two 429 answers and one success, got {track:?}"
    );
    let waits: Vec<i64> = track
        .windows(2)
        .map(|pair| pair[1].received_at_ms - pair[0].received_at_ms)
        .collect();
    let settlement = ledger.settle(&server);
    settlement
        .figures("429 with Retry-After: 1", stats.retried)
        .with("waits_ms", format!("{waits:?}"))
        .report();

    for (index, wait) in waits.iter().enumerate() {
        assert!(
            *wait >= 1000,
            "retry {} came {wait} ms after a 429 with Retry-After: 1",
            index + 1
        );
        assert!(
            *wait < 3000,
            "retry {} came {wait} ms after a 429 with Retry-After: 1",
            index + 1
        );
    }
    settlement.assert_exactly_once();
    assert_eq!(settlement.delivered, 10);
    assert_eq!(stats.retried, 2);
}

#[test]
fn payload_too_large_splits_batches() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.flush_interval = Duration::from_secs(60);
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    server.script_faults(json!({"endpoint": "track", "max_body_bytes": 4000}));
    let padding = "x".repeat(200);
    for seq in 0..50 {
        ledger.acknowledge(
            client
                .track(
                    "Sized",
                    json!({"seq": seq, "padding": padding}),
                    TrackOptions::default(),
                )
                .unwrap(),
        );
    }
    let oversized = client
        .track(
            "Oversized",
            json!({"padding": "y".repeat(6000)}),
            TrackOptions::default(),
        )
        .unwrap();
    ledger.acknowledge(oversized.clone());
    assert!(
        client.flush(Duration::from_secs(20)),
        "flush did not settle every record: {:?}",
        client.stats()
    );
    let stats = client.stats();
    client.shutdown(Duration::from_secs(5));

    let statuses: Vec<Option<u16>> = server.requests().iter().map(|entry| entry.status).collect();
    let settlement = ledger.settle(&server);
    settlement
        .figures("413 above 4000 bytes", stats.retried)
        .with("requests", statuses.len())
        .with(
            "answered_413",
            statuses
                .iter()
                .filter(|status| **status == Some(413))
                .count(),
        )
        .report();

    settlement.assert_exactly_once();
    assert!(
        statuses.contains(&Some(413)),
        "the server never answered 413: {statuses:?}"
    );
    assert_eq!(
        settlement.delivered, 50,
        "every record below the limit is delivered after splitting"
    );
    let reports = ledger.reports();
    assert_eq!(
        reports.len(),
        1,
        "expected one drop report, for the oversized event: {reports:?}"
    );
    assert_eq!(reports[0].reason, DropReason::TooLarge);
    assert_eq!(reports[0].count, 1);
    assert_eq!(reports[0].insert_ids, vec![oversized]);
    assert_eq!(stats.dropped_too_large, 1);
}

#[test]
fn import_failed_records_dropped_once() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.flush_interval = Duration::from_secs(60);
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    let mut invalid = Vec::new();
    for seq in 0..30 {
        let properties = if seq % 10 == 3 {
            json!({"seq": seq, "wide": too_wide()})
        } else {
            json!({"seq": seq})
        };
        let insert_id = client
            .import("Imported", properties, TrackOptions::default())
            .unwrap();
        if seq % 10 == 3 {
            invalid.push(insert_id.clone());
        }
        ledger.acknowledge(insert_id);
    }
    assert!(
        client.flush(Duration::from_secs(20)),
        "flush did not settle every record: {:?}",
        client.stats()
    );
    let stats = client.stats();
    client.shutdown(Duration::from_secs(5));

    let settlement = ledger.settle(&server);
    settlement
        .figures("/import 400 with failed_records", stats.retried)
        .report();
    settlement.assert_exactly_once();
    assert_eq!(
        settlement.delivered, 27,
        "the valid records of the batch are delivered"
    );
    let mut dropped = settlement.dropped.clone();
    dropped.sort();
    invalid.sort();
    assert_eq!(
        dropped, invalid,
        "exactly the records the server named are reported dropped"
    );
    assert!(
        ledger
            .reports()
            .iter()
            .all(|report| matches!(report.reason, DropReason::Rejected { status: 400, .. })),
        "the drops are reported as rejected with HTTP 400: {:?}",
        ledger.reports()
    );
    assert_eq!(stats.dropped_rejected, 3);
}

#[test]
fn track_partial_rejection_is_reported() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.flush_interval = Duration::from_secs(60);
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    let mut accepted_by_api = Vec::new();
    for seq in 0..10 {
        let properties = if seq == 4 {
            json!({"seq": seq, "nested": too_deep()})
        } else {
            json!({"seq": seq})
        };
        match client.track("Partly Rejected", properties, TrackOptions::default()) {
            Ok(insert_id) => {
                accepted_by_api.push(seq);
                ledger.acknowledge(insert_id);
            }
            Err(error) => assert!(
                error.to_string().contains("nested"),
                "the rejection names the property: {error}"
            ),
        }
    }
    assert!(
        client.flush(Duration::from_secs(20)),
        "flush did not settle every record: {:?}",
        client.stats()
    );
    client.shutdown(Duration::from_secs(5));

    // Either `track` rejects the event the server cannot store, or the worker reports it
    // dropped; an acknowledged event must never vanish without a report.
    let settlement = ledger.settle(&server);
    settlement
        .figures("/track batch with one record the server rejects", 0)
        .report();
    settlement.assert_exactly_once();
    assert!(
        accepted_by_api.len() >= 9,
        "track rejected valid events: accepted {accepted_by_api:?}"
    );
}

#[test]
fn track_old_event_is_reported() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.flush_interval = Duration::from_secs(60);
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    let ten_days_ago_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 10.0 * 86_400.0;
    for seq in 0..10 {
        let options = if seq == 5 {
            TrackOptions::default().time(ten_days_ago_s)
        } else {
            TrackOptions::default()
        };
        match client.track("Maybe Old", json!({"seq": seq}), options) {
            Ok(insert_id) => ledger.acknowledge(insert_id),
            Err(error) => assert_eq!(seq, 5, "track rejected a current event: {error}"),
        }
    }
    assert!(
        client.flush(Duration::from_secs(20)),
        "flush did not settle every record: {:?}",
        client.stats()
    );
    client.shutdown(Duration::from_secs(5));

    // `/track` stores only events of the last 5 days. An older event must be rejected by
    // `track`, sent to `/import`, or reported dropped; it must not vanish.
    let settlement = ledger.settle(&server);
    settlement
        .figures("/track batch with one event older than 5 days", 0)
        .report();
    settlement.assert_exactly_once();
}

#[test]
fn import_unauthorized_reported_once() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.import_credentials = Some("not-a-service-account:wrong-secret".to_owned());
    config.project_id = Some("1".to_owned());
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    let mut imported = Vec::new();
    for seq in 0..20 {
        let insert_id = client
            .import("Unauthorized", json!({"seq": seq}), TrackOptions::default())
            .unwrap();
        imported.push(insert_id.clone());
        ledger.acknowledge(insert_id);
    }
    assert!(
        client.flush(Duration::from_secs(10)),
        "flush did not settle every record: {:?}",
        client.stats()
    );
    let stats = client.stats();
    client.shutdown(Duration::from_secs(5));

    let settlement = ledger.settle(&server);
    settlement
        .figures("/import with wrong credentials (401)", stats.retried)
        .report();
    settlement.assert_exactly_once();
    assert_eq!(settlement.delivered, 0);
    let mut dropped = settlement.dropped.clone();
    dropped.sort();
    imported.sort();
    assert_eq!(dropped, imported, "every import is reported dropped once");
    assert!(
        ledger
            .reports()
            .iter()
            .all(|report| report.reason == DropReason::Unauthorized { status: 401 }),
        "the drops are reported as Unauthorized with HTTP 401: {:?}",
        ledger.reports()
    );
    assert_eq!(stats.retried, 0, "a 401 is not retried");
}
