//! Input validation at the API boundary, configuration checks, event fields, and use inside a
//! tokio runtime.

mod support;

use std::time::Duration;

use groupscope::{Client, Config, Error, Region, TrackOptions};
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
        ("e", Value::Null, TrackOptions::default().distinct_id("")),
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
