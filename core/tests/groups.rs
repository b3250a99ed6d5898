//! Group super properties, their persistence, user-profile records and group-profile records,
//! checked against a real loopback server and a real SQLite file.

mod support;

use groupscope::{Client, Error, TrackOptions};
use serde_json::{Value, json};
use support::{FLUSH, Server, config};

fn company_ids(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .map(|properties| properties["company_id"].clone())
        .collect()
}

#[test]
fn add_group_is_idempotent_across_restart() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();

    let client = Client::new(config(&server, Some(dir.path()))).unwrap();
    for _ in 0..3 {
        client.add_group("company_id", "A").unwrap();
        client
            .track("first run", Value::Null, TrackOptions::default())
            .unwrap();
    }
    assert!(client.shutdown(FLUSH));
    drop(client);

    let client = Client::new(config(&server, Some(dir.path()))).unwrap();
    client
        .track("after restart", Value::Null, TrackOptions::default())
        .unwrap();
    client.add_group("company_id", "A").unwrap();
    client
        .track("after add", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));

    let events = server.events();
    assert_eq!(events.len(), 5);
    for company_id in company_ids(&events) {
        assert_eq!(company_id, json!(["A"]));
    }
}

#[test]
fn remove_group_keeps_other_ids_and_persists_removal() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();

    let client = Client::new(config(&server, Some(dir.path()))).unwrap();
    client.set_group("company_id", ["B"]).unwrap();
    client.remove_group("company_id", "A").unwrap();
    client
        .track("still B", Value::Null, TrackOptions::default())
        .unwrap();

    client.set_group("company_id", ["A"]).unwrap();
    client.remove_group("company_id", "A").unwrap();
    assert!(client.groups().is_empty());
    assert!(client.shutdown(FLUSH));
    drop(client);

    let client = Client::new(config(&server, Some(dir.path()))).unwrap();
    client
        .track("after restart", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));

    let events = server.events();
    assert_eq!(events[0]["company_id"], json!(["B"]));
    assert!(
        events[1].get("company_id").is_none(),
        "the removed key came back: {}",
        events[1]
    );
}

#[test]
fn integer_and_string_ids_are_the_same() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();

    client.add_group("company_id", 5).unwrap();
    client.add_group("company_id", "5").unwrap();
    client.add_group("company_id", json!(5)).unwrap();
    assert_eq!(client.groups()["company_id"].len(), 1);

    client.remove_group("company_id", "5").unwrap();
    assert!(client.groups().is_empty());
}

#[test]
fn per_event_groups_override_one_key() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();

    client.set_group("project_id", ["P1"]).unwrap();
    client.set_group("company_id", ["C"]).unwrap();
    client
        .track(
            "x",
            Value::Null,
            TrackOptions::default().group("project_id", "P2"),
        )
        .unwrap();
    client
        .track(
            "y",
            Value::Null,
            TrackOptions::default().without_group("project_id"),
        )
        .unwrap();
    client
        .track("z", Value::Null, TrackOptions::default())
        .unwrap();
    assert!(client.flush(FLUSH));

    let events = server.events();
    assert_eq!(events[0]["project_id"], json!(["P2"]));
    assert!(events[1].get("project_id").is_none());
    assert_eq!(events[2]["project_id"], json!(["P1"]));
    for event in &events {
        assert_eq!(
            event["company_id"],
            json!(["C"]),
            "other keys keep their value"
        );
    }
}

#[test]
fn group_changes_send_engage_records() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    client.identify("user-1").unwrap();

    client.set_group("company_id", ["A", "B"]).unwrap();
    client.add_group("company_id", "C").unwrap();
    client.add_group("company_id", "C").unwrap();
    client.remove_group("company_id", "A").unwrap();
    client.remove_group("company_id", "absent").unwrap();
    client.set_group("team_id", ["T"]).unwrap();
    client.remove_group("team_id", "T").unwrap();
    assert!(client.flush(FLUSH));

    let records = server.accepted("/engage");
    let operations: Vec<Value> = records
        .iter()
        .map(|record| {
            let mut record = record.as_object().unwrap().clone();
            assert_eq!(record.remove("$token").unwrap(), "test-token-0123456789");
            assert_eq!(record.remove("$distinct_id").unwrap(), "user-1");
            let time = record.remove("$time").unwrap();
            assert!(
                time.as_i64().unwrap() > 1_000_000_000_000,
                "$time must be in ms: {time}"
            );
            Value::Object(record)
        })
        .collect();
    assert_eq!(
        operations,
        vec![
            json!({"$set": {"company_id": ["A", "B"]}}),
            json!({"$union": {"company_id": ["C"]}}),
            json!({"$remove": {"company_id": "A"}}),
            json!({"$set": {"team_id": ["T"]}}),
            json!({"$unset": ["team_id"]}),
        ]
    );
}

#[test]
fn anonymous_profile_updates_wait_for_identify() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();

    let client = Client::new(config(&server, Some(dir.path()))).unwrap();
    assert!(client.distinct_id().starts_with("$device:"));
    client.add_group("company_id", "A").unwrap();
    assert!(client.shutdown(FLUSH));
    drop(client);
    assert!(
        server.accepted("/engage").is_empty(),
        "nothing is sent while anonymous"
    );

    let client = Client::new(config(&server, Some(dir.path()))).unwrap();
    client.identify("user-7").unwrap();
    assert!(client.flush(FLUSH));

    let records = server.accepted("/engage");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["$distinct_id"], "user-7");
    assert_eq!(records[0]["$union"], json!({"company_id": ["A"]}));
}

#[test]
fn anonymous_id_persists_across_restart() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let first = Client::new(config(&server, Some(dir.path())))
        .unwrap()
        .distinct_id();
    let second = Client::new(config(&server, Some(dir.path())))
        .unwrap()
        .distinct_id();
    assert_eq!(first, second);
}

#[test]
fn group_profile_operations_send_exact_records() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    let acme = client.group("company_id", "acme").unwrap();
    let other = client.group("company_id", 42).unwrap();

    acme.set(json!({"plan": "enterprise"})).unwrap();
    acme.set_once(json!({"created": "2024-01-01"})).unwrap();
    acme.unset(["legacy"]).unwrap();
    acme.union(json!({"tags": ["b2b"]})).unwrap();
    acme.remove(json!({"tags": "trial"})).unwrap();
    acme.delete().unwrap();
    other.set(json!({"plan": "free"})).unwrap();
    assert!(client.flush(FLUSH));

    let records = server.accepted("/groups");
    assert_eq!(records.len(), 7);
    let expected = [
        ("acme", json!({"$set": {"plan": "enterprise"}})),
        ("acme", json!({"$set_once": {"created": "2024-01-01"}})),
        ("acme", json!({"$unset": ["legacy"]})),
        ("acme", json!({"$union": {"tags": ["b2b"]}})),
        ("acme", json!({"$remove": {"tags": "trial"}})),
        ("acme", json!({"$delete": ""})),
        ("42", json!({"$set": {"plan": "free"}})),
    ];
    for (record, (group_id, operation)) in records.iter().zip(expected) {
        let mut record = record.as_object().unwrap().clone();
        assert_eq!(record.remove("$token").unwrap(), "test-token-0123456789");
        assert_eq!(record.remove("$group_key").unwrap(), "company_id");
        assert_eq!(record.remove("$group_id").unwrap(), group_id);
        assert!(record.remove("$time").unwrap().as_i64().unwrap() > 1_000_000_000_000);
        assert_eq!(Value::Object(record), operation);
    }
}

#[test]
fn group_profile_operations_reject_bad_values() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    let acme = client.group("company_id", "acme").unwrap();

    assert!(matches!(
        acme.set(json!(["plan"])),
        Err(Error::InvalidProperty { .. })
    ));
    assert!(matches!(
        acme.set_once(json!("x")),
        Err(Error::InvalidProperty { .. })
    ));
    assert!(matches!(
        acme.unset(Vec::<String>::new()),
        Err(Error::InvalidProperty { .. })
    ));
    assert!(
        matches!(acme.union(json!({"tags": "b2b"})), Err(Error::InvalidProperty { name, .. }) if name == "tags")
    );
    assert!(matches!(
        acme.remove(json!(null)),
        Err(Error::InvalidProperty { .. })
    ));
    assert!(client.flush(FLUSH));

    assert!(server.received().is_empty());
    assert_eq!(client.stats().enqueued, 0);
}

#[test]
fn bad_group_ids_and_keys_are_rejected() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();

    for bad in [
        json!(null),
        json!(true),
        json!(1.5),
        json!({"id": 1}),
        json!(""),
        json!([["nested"]]),
    ] {
        let error = client.set_group("company_id", [bad.clone()]).unwrap_err();
        assert!(
            matches!(error, Error::InvalidGroupId { .. }),
            "{bad} gave {error}"
        );
    }
    let error = client.add_group("company_id", json!(false)).unwrap_err();
    assert!(
        error.to_string().contains("false"),
        "the error names the value: {error}"
    );

    let too_long = "k".repeat(256);
    for key in ["", "$company", "mp_team", "token", "distinct_id", "time", &too_long] {
        let error = client.add_group(key, "A").unwrap_err();
        assert!(
            matches!(error, Error::InvalidGroupKey { .. }),
            "{key:?} gave {error}"
        );
    }
    let longest = "k".repeat(255);
    client.add_group(&longest, "A").unwrap();
    client.remove_group(&longest, "A").unwrap();
    let error = client
        .track(
            "x",
            Value::Null,
            TrackOptions::default().group(too_long.clone(), json!("A")),
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("at most 255 bytes"),
        "{error}"
    );
    let error = client
        .track(
            "x",
            Value::Null,
            TrackOptions::default().group("company_id", json!(2.5)),
        )
        .unwrap_err();
    assert!(matches!(error, Error::InvalidGroupId { .. }));

    assert!(client.groups().is_empty());
    assert_eq!(client.stats().enqueued, 0);
}
