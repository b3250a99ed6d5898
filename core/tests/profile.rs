//! User-profile updates through `Client::engage`, delivered to a loopback server.

mod support;

use groupscope::{Client, Error, ProfileOperation};
use serde_json::{Value, json};
use support::{FLUSH, Server, config};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn engage_sends_each_operation_exactly() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    let cases: Vec<(ProfileOperation, Value, Value)> = vec![
        (
            ProfileOperation::Set,
            json!({"plan": "pro", "seats": 3}),
            json!({"plan": "pro", "seats": 3}),
        ),
        (
            ProfileOperation::SetOnce,
            json!({"first_seen": "2024-01-01"}),
            json!({"first_seen": "2024-01-01"}),
        ),
        (
            ProfileOperation::Add,
            json!({"visits": 1, "credit": -2.5}),
            json!({"visits": 1, "credit": -2.5}),
        ),
        (
            ProfileOperation::Append,
            json!({"pages": "/pricing"}),
            json!({"pages": "/pricing"}),
        ),
        (
            ProfileOperation::Union,
            json!({"tags": ["a", "b"]}),
            json!({"tags": ["a", "b"]}),
        ),
        (
            ProfileOperation::Remove,
            json!({"tags": "a"}),
            json!({"tags": "a"}),
        ),
        (
            ProfileOperation::Unset,
            json!(["plan", "seats"]),
            json!(["plan", "seats"]),
        ),
        (ProfileOperation::Delete, Value::Null, json!("")),
    ];

    let before = now_ms();
    for (operation, value, _) in &cases {
        client.engage("user-7", *operation, value.clone()).unwrap();
    }
    assert!(client.flush(FLUSH));
    let after = now_ms();

    let records = server.accepted("/engage");
    assert_eq!(records.len(), cases.len(), "one record per call: {records:?}");
    for (record, (operation, _, expected)) in records.iter().zip(&cases) {
        let object = record.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected_keys = vec!["$distinct_id", "$time", "$token", operation.key()];
        expected_keys.sort_unstable();
        assert_eq!(keys, expected_keys, "{record}");

        assert_eq!(record["$token"], "test-token-0123456789");
        assert_eq!(record["$distinct_id"], "user-7");
        assert_eq!(&record[operation.key()], expected, "{}", operation.key());
        let time = record["$time"].as_i64().expect("$time is an integer");
        assert!(
            (before..=after).contains(&time),
            "$time {time} is in ms between {before} and {after}"
        );
    }
    assert!(server.accepted("/track").is_empty());
    assert_eq!(client.stats().delivered, cases.len() as u64);
}

#[test]
fn engage_rejects_invalid_input_and_enqueues_nothing() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();

    let invalid: Vec<(&str, ProfileOperation, Value, &str)> = vec![
        ("", ProfileOperation::Set, json!({"a": 1}), "distinct_id"),
        ("undefined", ProfileOperation::Set, json!({"a": 1}), "undefined"),
        ("u", ProfileOperation::Set, json!(["a"]), "a list"),
        ("u", ProfileOperation::Add, json!({"visits": "1"}), "visits"),
        ("u", ProfileOperation::Union, json!({"tags": "a"}), "tags"),
        ("u", ProfileOperation::Unset, json!("plan"), "a string"),
        ("u", ProfileOperation::Delete, json!({"a": 1}), "$delete"),
    ];
    for (distinct_id, operation, value, named) in invalid {
        let error = client
            .engage(distinct_id, operation, value.clone())
            .expect_err(&format!("{} with {value} must fail", operation.key()));
        assert!(
            error.to_string().contains(named),
            "the error for {} with {value} names {named:?}: {error}",
            operation.key()
        );
    }
    assert_eq!(client.stats().enqueued, 0);

    assert!(client.flush(FLUSH));
    assert!(server.received().is_empty());
}

#[test]
fn engage_respects_opt_out_and_shutdown() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();

    client.opt_out().unwrap();
    client
        .engage("user-7", ProfileOperation::Set, json!({"plan": "pro"}))
        .unwrap();
    assert!(client.flush(FLUSH));
    assert!(server.accepted("/engage").is_empty());

    client.opt_in().unwrap();
    client
        .engage("user-7", ProfileOperation::Set, json!({"plan": "team"}))
        .unwrap();
    assert!(client.flush(FLUSH));
    let records = server.accepted("/engage");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["$set"], json!({"plan": "team"}));

    client.shutdown(FLUSH);
    let error = client
        .engage("user-7", ProfileOperation::Set, json!({"plan": "x"}))
        .unwrap_err();
    assert!(matches!(error, Error::ShutDown), "{error}");
}
