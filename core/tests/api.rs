//! Input validation at the API boundary, configuration checks, event fields, and use inside a
//! tokio runtime.

mod support;

use std::time::Duration;

use groupscope::{Client, Config, Error, ProfileOperation, PropertiesWriter, Region, TrackOptions};
use serde_json::{Value, json};
use support::{FLUSH, Server, config};

#[test]
fn invalid_events_are_rejected_and_not_enqueued() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();

    let cases: Vec<(&str, Value, TrackOptions)> = vec![
        ("", Value::Null, TrackOptions::default()),
        ("   ", Value::Null, TrackOptions::default()),
        (
            &*Box::leak("n".repeat(256).into_boxed_str()),
            Value::Null,
            TrackOptions::default(),
        ),
        ("e", json!([1, 2]), TrackOptions::default()),
        ("e", json!("text"), TrackOptions::default()),
        ("e", json!(5), TrackOptions::default()),
        ("e", json!({"": 1}), TrackOptions::default()),
        ("e", Value::Null, TrackOptions::default().time(f64::NAN)),
        ("e", Value::Null, TrackOptions::default().time(-1.0)),
        ("e", json!({"time": "yesterday"}), TrackOptions::default()),
        ("e", Value::Null, TrackOptions::default().distinct_id("   ")),
        (
            "e",
            Value::Null,
            TrackOptions::default().distinct_id("undefined"),
        ),
        (
            "e",
            json!({"$insert_id": "has spaces"}),
            TrackOptions::default(),
        ),
        ("e", Value::Null, TrackOptions::default().group("$bad", "A")),
    ];
    let expected = [
        "InvalidEventName",
        "InvalidEventName",
        "InvalidEventName",
        "InvalidProperty",
        "InvalidProperty",
        "InvalidProperty",
        "InvalidProperty",
        "InvalidTime",
        "InvalidTime",
        "InvalidTime",
        "InvalidDistinctId",
        "InvalidDistinctId",
        "InvalidProperty",
        "InvalidGroupKey",
    ];
    for ((name, properties, options), expected) in cases.into_iter().zip(expected) {
        let error = client.track(name, properties.clone(), options).unwrap_err();
        let variant = format!("{error:?}");
        assert!(
            variant.starts_with(expected),
            "track({name:?}, {properties}) gave {variant}, expected {expected}"
        );
    }

    assert!(client.flush(FLUSH));
    assert_eq!(client.stats().enqueued, 0);
    assert!(server.received().is_empty());
}

#[test]
fn error_messages_name_the_value() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();

    let error = client
        .track("e", json!([1]), TrackOptions::default())
        .unwrap_err();
    assert!(error.to_string().contains("a list"), "{error}");
    let error = client
        .track("e", json!({"time": "yesterday"}), TrackOptions::default())
        .unwrap_err();
    assert!(error.to_string().contains("yesterday"), "{error}");
    let error = client.identify("null").unwrap_err();
    assert!(error.to_string().contains("null"), "{error}");
}

#[test]
fn event_distinct_ids_sent_as_given() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    let anonymous_id = client.distinct_id();

    client
        .track(
            "no user option",
            Value::Null,
            TrackOptions::default().distinct_id(""),
        )
        .unwrap();
    client
        .track(
            "no user property",
            json!({"distinct_id": ""}),
            TrackOptions::default(),
        )
        .unwrap();
    client
        .track(
            "integer",
            json!({"distinct_id": 7}),
            TrackOptions::default(),
        )
        .unwrap();
    client
        .track(
            "null",
            json!({"distinct_id": null}),
            TrackOptions::default(),
        )
        .unwrap();
    client
        .track(
            "option wins",
            json!({"distinct_id": "property-user"}),
            TrackOptions::default().distinct_id("option-user"),
        )
        .unwrap();
    client
        .track("identity", Value::Null, TrackOptions::default())
        .unwrap();
    let old = TrackOptions::default().time(1_600_000_000.0);
    client
        .import("import no user", json!({"distinct_id": ""}), old.clone())
        .unwrap();
    client
        .import("import integer", json!({"distinct_id": 42}), old)
        .unwrap();
    assert!(client.flush(FLUSH));

    let sent: Vec<(Value, Value)> = server
        .accepted("/track")
        .into_iter()
        .chain(server.accepted("/import"))
        .map(|event| {
            (
                event["event"].clone(),
                event["properties"]["distinct_id"].clone(),
            )
        })
        .collect();
    let expected = vec![
        (json!("no user option"), json!("")),
        (json!("no user property"), json!("")),
        (json!("integer"), json!(7)),
        (json!("null"), Value::Null),
        (json!("option wins"), json!("option-user")),
        (json!("identity"), json!(anonymous_id)),
        (json!("import no user"), json!("")),
        (json!("import integer"), json!(42)),
    ];
    assert_eq!(sent, expected);
    assert!(
        server.accepted("/track")[3]["properties"]
            .as_object()
            .unwrap()
            .contains_key("distinct_id"),
        "a null distinct_id is sent, not left out"
    );
}

#[test]
fn invalid_event_distinct_ids_rejected() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();

    let cases = [
        (
            json!("Undefined"),
            "invalid distinct_id \"Undefined\": Mixpanel treats this placeholder as invalid",
        ),
        (
            json!(0),
            "invalid distinct_id 0: Mixpanel treats this placeholder as invalid",
        ),
        (
            json!(-1),
            "invalid distinct_id -1: Mixpanel treats this placeholder as invalid",
        ),
        (
            json!(" "),
            "invalid distinct_id \" \": a distinct_id must not be only whitespace",
        ),
        (
            json!(false),
            "invalid distinct_id false: a distinct_id must be a string or an integer, not a boolean",
        ),
        (
            json!(7.5),
            "invalid distinct_id 7.5: a distinct_id must be a string or an integer, not a floating-point number",
        ),
        (
            json!([7]),
            "invalid distinct_id [7]: a distinct_id must be a string or an integer, not a list",
        ),
        (
            json!({}),
            "invalid distinct_id {}: a distinct_id must be a string or an integer, not an object",
        ),
    ];
    for (distinct_id, expected) in cases {
        let error = client
            .track(
                "e",
                json!({ "distinct_id": distinct_id }),
                TrackOptions::default(),
            )
            .unwrap_err();
        assert!(
            matches!(error, Error::InvalidDistinctId { .. }),
            "{distinct_id}: {error:?}"
        );
        assert!(error.to_string().starts_with(expected), "{error}");
        assert!(
            error.to_string().contains("pass the user's"),
            "the message says what to pass: {error}"
        );
    }

    let error = client
        .import(
            "e",
            json!({"distinct_id": null}),
            TrackOptions::default().time(1_600_000_000.0),
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid distinct_id null: /import rejects a null distinct_id; pass \"\" for an event with no user, or the user's id"
    );

    assert!(client.flush(FLUSH));
    assert_eq!(client.stats().enqueued, 0);
    assert!(server.received().is_empty());
}

#[test]
fn profiles_need_a_user() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();

    let error = client.identify("").unwrap_err();
    assert!(
        matches!(error, Error::InvalidDistinctId { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("need a user"), "{error}");
    let error = client
        .engage("", ProfileOperation::Set, json!({"plan": "pro"}))
        .unwrap_err();
    assert!(
        matches!(error, Error::InvalidDistinctId { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("invalid distinct_id \"\""),
        "{error}"
    );

    assert!(client.flush(FLUSH));
    assert!(server.received().is_empty());
    assert_ne!(client.distinct_id(), "", "the identity is unchanged");
}

#[test]
fn invalid_api_host_error_names_value() {
    let mut config = Config::new("t");
    config.api_host = "http://127.0.0.1:99999".to_owned();
    let message = config.validate().unwrap_err().to_string();
    assert!(message.contains("http://127.0.0.1:99999"), "{message}");
    assert!(message.contains("1 to 65535"), "{message}");
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn event_limits_are_rejected_before_enqueue() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    let now = now_secs();
    let day = 86_400.0;

    let many_properties: serde_json::Map<String, Value> =
        (0..255).map(|i| (format!("p{i}"), json!(i))).collect();
    let deep = json!({"a": {"b": {"c": {"d": {"e": 1}}}}});
    let large = json!({"blob": "x".repeat(1024 * 1024)});

    type Case = (&'static str, Value, TrackOptions, &'static str);
    let cases: Vec<Case> = vec![
        (
            "6 days old",
            Value::Null,
            TrackOptions::default().time(now - 6.0 * day),
            "import method",
        ),
        (
            "2 hours ahead",
            Value::Null,
            TrackOptions::default().time(now + 7200.0),
            "future",
        ),
        (
            "255 properties",
            Value::Object(many_properties),
            TrackOptions::default(),
            "fewer than 255",
        ),
        (
            "long list",
            json!({"tags": vec![0; 255]}),
            TrackOptions::default(),
            "\"tags\"",
        ),
        (
            "long per-event group list",
            Value::Null,
            TrackOptions::default().group("company_id", json!((0..255).collect::<Vec<_>>())),
            "\"company_id\"",
        ),
        ("deep nesting", deep, TrackOptions::default(), "\"a\""),
        ("over 1 MB", large, TrackOptions::default(), "bytes"),
    ];
    for (case, properties, options, expected) in cases {
        let error = client.track("e", properties, options).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(expected), "{case}: {message}");
    }
    assert_eq!(client.stats().enqueued, 0, "nothing is enqueued");

    client
        .import(
            "old",
            Value::Null,
            TrackOptions::default().time(now - 30.0 * day),
        )
        .expect("/import accepts events older than 5 days");
    let before_1971 = client.import("e", Value::Null, TrackOptions::default().time(1000.0));
    assert!(
        matches!(before_1971, Err(Error::InvalidTime { .. })),
        "{before_1971:?}"
    );
    client
        .track(
            "recent",
            Value::Null,
            TrackOptions::default().time(now - 4.0 * day),
        )
        .expect("/track accepts 4 days old");
    client
        .track(
            "nested 3",
            json!({"a": {"b": {"c": {"d": 1}}}}),
            TrackOptions::default(),
        )
        .expect("3 levels of nesting are accepted");
    assert_eq!(client.stats().enqueued, 3);
}

#[test]
fn super_properties_count_toward_limit() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    let registered: serde_json::Map<String, Value> =
        (0..200).map(|i| (format!("super{i}"), json!(i))).collect();
    client.register(Value::Object(registered)).unwrap();

    let call_site: serde_json::Map<String, Value> =
        (0..60).map(|i| (format!("call{i}"), json!(i))).collect();
    let error = client
        .track("e", Value::Object(call_site), TrackOptions::default())
        .unwrap_err();
    assert!(matches!(error, Error::InvalidProperty { .. }), "{error}");
    assert_eq!(client.stats().enqueued, 0);
}

#[test]
fn group_id_count_is_capped() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server, Some(dir.path()));
    config.flush_interval = Duration::from_secs(60);
    {
        let client = Client::new(config.clone()).unwrap();
        let error = client.set_group("company_id", 0..255).unwrap_err();
        assert!(error.to_string().contains("company_id"), "{error}");
        assert!(client.groups().is_empty(), "nothing is stored");

        client.set_group("company_id", 0..254).unwrap();
        let error = client.add_group("company_id", 1000).unwrap_err();
        assert!(error.to_string().contains("remove_group"), "{error}");
        assert_eq!(client.groups()["company_id"].len(), 254);
        client.shutdown(Duration::from_millis(100));
    }

    let client = Client::new(config).unwrap();
    assert_eq!(
        client.groups()["company_id"].len(),
        254,
        "the rejected id was not persisted"
    );
}

#[test]
fn invalid_config_is_rejected() {
    let server = Server::start();
    let base = config(&server, None);

    type Change = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(&str, Change)> = vec![
        ("token", Box::new(|c| c.token = String::new())),
        ("token", Box::new(|c| c.token = "has space".to_owned())),
        (
            "api_host",
            Box::new(|c| c.api_host = "ftp://127.0.0.1".to_owned()),
        ),
        (
            "api_host",
            Box::new(|c| c.api_host = "127.0.0.1:8080".to_owned()),
        ),
        ("api_host", Box::new(|c| c.api_host = "http://".to_owned())),
        (
            "api_host",
            Box::new(|c| c.api_host = "http://127.0.0.1:99999".to_owned()),
        ),
        (
            "api_host",
            Box::new(|c| c.api_host = "http://127.0.0.1:abc".to_owned()),
        ),
        (
            "api_host",
            Box::new(|c| c.api_host = "http://127.0.0.1:/prefix".to_owned()),
        ),
        (
            "api_host",
            Box::new(|c| c.api_host = "http://user@127.0.0.1".to_owned()),
        ),
        (
            "api_host",
            Box::new(|c| c.api_host = "http://user:secret@127.0.0.1:8080".to_owned()),
        ),
        (
            "api_host",
            Box::new(|c| c.api_host = "http://127.0.0.1/?verbose=0".to_owned()),
        ),
        (
            "api_host",
            Box::new(|c| c.api_host = "http://127.0.0.1#fragment".to_owned()),
        ),
        (
            "api_host",
            Box::new(|c| c.api_host = "http://[::1".to_owned()),
        ),
        (
            "data_dir",
            Box::new(|c| c.data_dir = Some(std::path::PathBuf::new())),
        ),
        ("batch_size", Box::new(|c| c.batch_size = 0)),
        ("batch_size", Box::new(|c| c.batch_size = 51)),
        (
            "import_batch_size",
            Box::new(|c| c.import_batch_size = 2001),
        ),
        ("max_queue_records", Box::new(|c| c.max_queue_records = 0)),
        (
            "max_import_request_bytes",
            Box::new(|c| c.max_import_request_bytes = 20_000_000),
        ),
        (
            "request_timeout",
            Box::new(|c| c.request_timeout = Duration::ZERO),
        ),
        (
            "initial_retry_delay",
            Box::new(|c| c.initial_retry_delay = Duration::from_secs(120)),
        ),
        (
            "max_attempts_per_cycle",
            Box::new(|c| c.max_attempts_per_cycle = 0),
        ),
        (
            "import_credentials",
            Box::new(|c| c.import_credentials = Some("no-colon".to_owned())),
        ),
    ];
    for (field, change) in cases {
        let mut config = base.clone();
        change(&mut config);
        match Client::new(config) {
            Err(Error::InvalidConfig { field: got, .. }) => assert_eq!(got, field),
            Err(other) => panic!("{field}: expected InvalidConfig, got {other}"),
            Ok(_) => panic!("{field}: the configuration was accepted"),
        }
    }
}

#[test]
fn config_accepts_regions_and_http_hosts() {
    assert_eq!(
        Config::new("t").with_region(Region::Eu).api_host,
        "https://api-eu.mixpanel.com"
    );
    assert_eq!(
        Config::new("t").with_region(Region::India).api_host,
        "https://api-in.mixpanel.com"
    );
    for host in [
        "https://api.mixpanel.com",
        "http://127.0.0.1:8080",
        "http://localhost:1/prefix/",
        "http://[::1]:8080/prefix",
        "http://localhost:65535",
    ] {
        let mut config = Config::new("t");
        config.api_host = host.to_owned();
        assert!(config.validate().is_ok(), "{host} must be accepted");
    }
    let debug = format!("{:?}", Config::new("secret-token-value"));
    assert!(
        !debug.contains("secret-token-value"),
        "the token is never printed in full: {debug}"
    );
}

#[test]
fn events_carry_required_fields() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    client
        .register(json!({"app": "web", "plan": "free"}))
        .unwrap();
    client.unregister("app").unwrap();
    client.identify("user-9").unwrap();

    let insert_id = client
        .track(
            "Signed Up",
            json!({"plan": "pro", "token": "spoofed"}),
            TrackOptions::default(),
        )
        .unwrap();
    assert!(client.flush(FLUSH));

    let event = &server.accepted("/track")[0];
    assert_eq!(event["event"], "Signed Up");
    let properties = &event["properties"];
    assert_eq!(properties["$insert_id"], insert_id.as_str());
    assert_eq!(properties["distinct_id"], "user-9");
    assert_eq!(properties["token"], "test-token-0123456789");
    assert_eq!(properties["mp_lib"], "groupscope");
    assert_eq!(properties["$lib_version"], groupscope::LIB_VERSION);
    assert_eq!(
        properties["plan"], "pro",
        "call-site properties win over super properties"
    );
    assert!(
        properties.get("app").is_none(),
        "unregistered super properties are gone"
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let time = properties["time"].as_i64().unwrap();
    assert!((now_ms - time).abs() < 60_000, "time is in ms: {time}");
}

#[test]
fn non_finite_replacements_are_counted() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    let options = TrackOptions {
        non_finite_replaced: 2,
        ..TrackOptions::default()
    };
    client.track("e", json!({"ratio": null}), options).unwrap();
    assert_eq!(client.stats().non_finite_replaced, 2);
}

#[tokio::test]
async fn client_lives_and_dies_inside_tokio() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    client
        .track("async", Value::Null, TrackOptions::default())
        .unwrap();

    assert!(client.flush_async(FLUSH).await);
    assert_eq!(server.events().len(), 1);
    drop(client);
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_async_on_current_thread_runtime() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    client
        .track("async", Value::Null, TrackOptions::default())
        .unwrap();

    let shutdown = client.shutdown_async(FLUSH);
    let ticker = tokio::spawn(async { tokio::time::sleep(Duration::from_millis(1)).await });
    assert!(shutdown.await);
    ticker.await.unwrap();
    assert_eq!(server.events().len(), 1);
}

#[test]
fn encoded_properties_send_the_same_event_as_json() {
    let server = Server::start();
    let client = Client::new(config(&server, None)).unwrap();
    client.set_group("company_id", ["acme"]).unwrap();

    let mut writer = PropertiesWriter::new();
    writer.property("format").unwrap();
    writer.str("csv");
    writer.property("rows").unwrap();
    writer.u64(1200);
    writer.property("tags").unwrap();
    writer.begin_list();
    writer.str("a");
    writer.end_list().unwrap();
    let encoded = writer.finish();
    client
        .track_encoded("Exported", &encoded, TrackOptions::default().distinct_id("u-1"))
        .unwrap();
    client
        .track(
            "Exported",
            json!({"format": "csv", "rows": 1200, "tags": ["a"]}),
            TrackOptions::default().distinct_id("u-1"),
        )
        .unwrap();
    assert!(client.flush(FLUSH));

    let mut events = server.accepted("/track");
    assert_eq!(events.len(), 2);
    for event in &mut events {
        let properties = event["properties"].as_object_mut().unwrap();
        assert!(properties.remove("$insert_id").is_some());
        assert!(properties.remove("time").is_some());
    }
    assert_eq!(events[0], events[1]);
    assert_eq!(events[0]["event"], "Exported");
    assert_eq!(events[0]["properties"]["company_id"], json!(["acme"]));
    assert_eq!(events[0]["properties"]["rows"], 1200);
}
