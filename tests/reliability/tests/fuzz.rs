//! Bad input at every boundary, with proptest: arbitrary properties through `Client::track`,
//! and arbitrary or damaged request bodies through the server's decoder and its HTTP
//! endpoints (form, base64, gzip, NDJSON, malformed JSON, huge numbers, deep nesting, invalid
//! UTF-8).
//!
//! The default run uses a few hundred cases per target; `GROUPSCOPE_LONG=1` runs thousands.

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use groupscope::protocol::Endpoint;
use groupscope::{Client, Error, TrackOptions};
use groupscope_reliability::{
    Figures, Ledger, TOKEN, TestServer, client_config, peak_rss_kib, rss_kib, scaled,
};
use groupscope_server::decode::{self, RawRequest};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Map, Number, Value, json};

/// The statuses the ingestion endpoints return for any request body: 200 (records stored or
/// rejected one by one), 400 (malformed body or `/import` validation), 401 (`/import`
/// credentials) and 413 (body too large). The server also documents 500 for a failed store,
/// which no request body should cause.
const DOCUMENTED_STATUSES: [u16; 4] = [200, 400, 401, 413];

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(1.7976931348623157e308)),
        ".{0,40}".prop_map(Value::from),
        "[\\u{0}-\\u{1f}\\u{7f}\\u{fffd}\\u{10ffff}\"\\\\]{0,8}".prop_map(Value::from),
    ]
}

/// JSON values within the shape the server accepts: at most three nested objects, fewer than
/// 255 keys and list elements.
fn shallow_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{1,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn properties() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(".{0,16}", shallow_value(), 0..12)
        .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>()))
}

fn nested(depth: usize) -> Value {
    let mut value = json!("bottom");
    for level in 0..depth {
        value = json!({ format!("level{level}"): value });
    }
    value
}

fn drain(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.flush(Duration::from_secs(10)) {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain: {:?}",
            client.stats()
        );
    }
}

#[test]
fn track_arbitrary_properties_settles() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    let rejected_by_api = std::cell::Cell::new(0u64);
    let cases = scaled(300, 5000);
    runner(cases)
        .run(&(".{0,20}", properties()), |(name, properties)| {
            match client.track(&name, properties.clone(), TrackOptions::default()) {
                Ok(insert_id) => ledger.acknowledge(insert_id),
                Err(error @ (Error::InvalidEventName { .. } | Error::InvalidProperty { .. })) => {
                    rejected_by_api.set(rejected_by_api.get() + 1);
                    prop_assert!(!error.to_string().is_empty());
                }
                Err(other) => {
                    prop_assert!(false, "track({name:?}, {properties}) failed with {other}")
                }
            }
            Ok(())
        })
        .unwrap();
    drain(&client);
    let stats = client.stats();
    client.shutdown(Duration::from_secs(5));

    let settlement = ledger.settle(&server);
    settlement
        .figures("arbitrary properties through track", stats.retried)
        .with("cases", cases)
        .with("rejected_by_track", rejected_by_api.get())
        .report();
    settlement.assert_exactly_once();
}

#[test]
fn track_deep_nesting_settles() {
    let server = TestServer::start();
    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), None);
    config.on_drop = Some(ledger.drop_callback());
    let client = Client::new(config).unwrap();

    let mut rejected_by_api = Vec::new();
    let mut accepted_depths = Vec::new();
    let mut plain_ids = Vec::new();
    for depth in [1, 2, 3, 4, 5, 10, 50, 127, 128, 129, 200, 1000] {
        let properties = json!({"depth": depth, "value": nested(depth)});
        match client.track("Nested", properties, TrackOptions::default()) {
            Ok(insert_id) => {
                accepted_depths.push((depth, insert_id.clone()));
                ledger.acknowledge(insert_id);
            }
            Err(error) => {
                assert!(
                    error.to_string().contains("value"),
                    "the rejection of depth {depth} names the property: {error}"
                );
                rejected_by_api.push(depth);
            }
        }
        let plain = client
            .track(
                "Plain",
                json!({"after_depth": depth}),
                TrackOptions::default(),
            )
            .unwrap();
        plain_ids.push(plain.clone());
        ledger.acknowledge(plain);
    }
    drain(&client);
    client.shutdown(Duration::from_secs(5));

    let settlement = ledger.settle(&server);
    let lost_depths: Vec<usize> = accepted_depths
        .iter()
        .filter(|(_, insert_id)| settlement.lost.contains(insert_id))
        .map(|(depth, _)| *depth)
        .collect();
    settlement
        .figures("deeply nested properties through track", 0)
        .with(
            "rejected_by_track_at_depths",
            format!("{rejected_by_api:?}"),
        )
        .with("lost_at_depths", format!("{lost_depths:?}"))
        .report();
    settlement.assert_exactly_once();

    // A record the server cannot accept must not take valid records of its batch with it.
    let stored = server.insert_id_counts();
    let plain_dropped = plain_ids
        .iter()
        .filter(|insert_id| !stored.contains_key(*insert_id))
        .count();
    assert_eq!(
        plain_dropped,
        0,
        "{plain_dropped} of {} valid events batched with deeply nested ones were not delivered: {:?}",
        plain_ids.len(),
        ledger.reports()
    );
}

/// How a generated body is wrapped.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    RawJson,
    FormBase64,
    FormUrlEncoded,
    Ndjson,
}

/// How the payload bytes are produced.
#[derive(Debug, Clone)]
enum Payload {
    /// Valid records serialized as JSON.
    Records(Vec<Value>),
    /// Arbitrary bytes.
    Bytes(Vec<u8>),
    /// Valid records with one byte changed and the tail cut.
    Damaged(Vec<Value>, usize, u8, usize),
    /// Hand-written hard cases.
    Special(&'static [u8]),
}

const SPECIAL_PAYLOADS: [&[u8]; 12] = [
    b"[{\"event\":\"Huge\",\"properties\":{\"token\":\"reliability-token\",\"distinct_id\":\"u\",\"n\":1e999999}}]",
    b"[{\"event\":\"Huge\",\"properties\":{\"token\":\"reliability-token\",\"distinct_id\":\"u\",\"n\":123456789012345678901234567890}}]",
    b"[{\"event\":\"Huge\",\"properties\":{\"token\":\"reliability-token\",\"distinct_id\":\"u\",\"time\":1e308}}]",
    b"[{\"event\":\"Neg\",\"properties\":{\"token\":\"reliability-token\",\"distinct_id\":\"u\",\"time\":-1}}]",
    b"[{\"event\":\"\xff\xfe\",\"properties\":{\"token\":\"reliability-token\",\"distinct_id\":\"\xc3\x28\"}}]",
    b"[{\"event\":\"Surrogate\",\"properties\":{\"token\":\"reliability-token\",\"distinct_id\":\"\\ud800\"}}]",
    b"{\"event\":",
    b"[]",
    b"null",
    b"\"\\ud800\"",
    b"[{\"$token\":\"reliability-token\",\"$group_key\":\"company_id\",\"$group_id\":\"a\",\"$set\":[1]}]",
    b"[{\"$token\":\"reliability-token\",\"$distinct_id\":\"u\",\"$union\":{\"x\":5}}]",
];

fn record() -> impl Strategy<Value = Value> {
    (".{0,10}", properties(), prop::option::of(any::<i64>())).prop_map(
        |(event, mut properties, time)| {
            properties["token"] = json!(TOKEN);
            properties["distinct_id"] = json!("fuzz-user");
            if let Some(time) = time {
                properties["time"] = json!(time);
            }
            json!({"event": event, "properties": properties})
        },
    )
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        prop::collection::vec(record(), 0..4).prop_map(Payload::Records),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(Payload::Bytes),
        (
            prop::collection::vec(record(), 1..3),
            any::<usize>(),
            any::<u8>(),
            any::<usize>()
        )
            .prop_map(|(records, at, byte, cut)| Payload::Damaged(records, at, byte, cut)),
        prop::sample::select(SPECIAL_PAYLOADS.to_vec()).prop_map(Payload::Special),
        (1usize..5000).prop_map(|depth| Payload::Bytes(
            format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
        )),
    ]
}

fn payload_bytes(payload: &Payload, ndjson: bool) -> Vec<u8> {
    let serialize = |records: &[Value]| -> Vec<u8> {
        if ndjson {
            records
                .iter()
                .map(|record| format!("{record}\n"))
                .collect::<String>()
                .into_bytes()
        } else {
            Value::Array(records.to_vec()).to_string().into_bytes()
        }
    };
    match payload {
        Payload::Records(records) => serialize(records),
        Payload::Bytes(bytes) => bytes.clone(),
        Payload::Damaged(records, at, byte, cut) => {
            let mut bytes = serialize(records);
            let at = at % bytes.len();
            bytes[at] = *byte;
            bytes.truncate(bytes.len() - cut % bytes.len());
            bytes
        }
        Payload::Special(bytes) => bytes.to_vec(),
    }
}

/// One generated ingestion request.
#[derive(Debug, Clone)]
struct FuzzRequest {
    endpoint: Endpoint,
    content_type: Option<&'static str>,
    gzip: Option<bool>,
    body: Vec<u8>,
}

fn request() -> impl Strategy<Value = FuzzRequest> {
    let endpoint = prop::sample::select(Endpoint::ALL.to_vec());
    let encoding = prop::sample::select(vec![
        Encoding::RawJson,
        Encoding::FormBase64,
        Encoding::FormUrlEncoded,
        Encoding::Ndjson,
    ]);
    // `Some(true)` gzips the body, `Some(false)` claims gzip without compressing.
    let gzip = prop::option::of(any::<bool>());
    (endpoint, encoding, gzip, payload()).prop_map(|(endpoint, encoding, gzip, payload)| {
        let ndjson = matches!(encoding, Encoding::Ndjson);
        let bytes = payload_bytes(&payload, ndjson);
        let (content_type, body) = match encoding {
            Encoding::RawJson => (Some("application/json"), bytes),
            Encoding::Ndjson => (Some("application/x-ndjson"), bytes),
            Encoding::FormBase64 => (
                Some("application/x-www-form-urlencoded"),
                format!(
                    "data={}",
                    base64::engine::general_purpose::STANDARD
                        .encode(&bytes)
                        .replace('+', "%2B")
                )
                .into_bytes(),
            ),
            Encoding::FormUrlEncoded => {
                let encoded: String = form_encode(&bytes);
                (
                    Some("application/x-www-form-urlencoded"),
                    format!("data={encoded}&verbose=1").into_bytes(),
                )
            }
        };
        let body = match gzip {
            Some(true) => {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
                encoder.write_all(&body).unwrap();
                encoder.finish().unwrap()
            }
            _ => body,
        };
        FuzzRequest {
            endpoint,
            content_type,
            gzip,
            body,
        }
    })
}

fn form_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (*byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[test]
fn decoder_never_panics() {
    let cases = scaled(2000, 50_000);
    runner(cases)
        .run(
            &(request(), prop::option::of(".{0,30}")),
            |(request, query)| {
                let raw = RawRequest {
                    endpoint: request.endpoint,
                    query: query.as_deref(),
                    content_type: request.content_type,
                    content_encoding: request.gzip.map(|_| "gzip"),
                    body: &request.body,
                };
                if let Err(error) = decode::decode(raw, 1_000_000) {
                    prop_assert!(
                        !error.to_string().is_empty(),
                        "a decode error has a message"
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn http_ingestion_answers_documented_status() {
    let server = TestServer::start();
    let agent = server.agent().clone();
    let base = server.url();
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN}:"))
    );
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u64>::new());
    let cases = scaled(300, 5000);

    runner(cases)
        .run(&request(), |request| {
            let url = format!("{base}{}", request.endpoint.path());
            let mut builder = agent.post(&url);
            if let Some(content_type) = request.content_type {
                builder = builder.header("Content-Type", content_type);
            }
            if request.gzip.is_some() {
                builder = builder.header("Content-Encoding", "gzip");
            }
            if request.endpoint == Endpoint::Import {
                builder = builder.header("Authorization", &authorization);
            }
            let mut response = builder
                .send(&request.body[..])
                .map_err(|error| TestCaseError::fail(format!("POST {url} failed: {error}")))?;
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_string().unwrap_or_default();
            *statuses.borrow_mut().entry(status).or_insert(0) += 1;
            prop_assert!(
                DOCUMENTED_STATUSES.contains(&status),
                "POST {url} answered {status} ({body}) to {request:?}"
            );
            prop_assert!(
                status == 200
                    || serde_json::from_str::<Value>(&body)
                        .is_ok_and(|json| json.get("error").is_some()),
                "the {status} answer names the error in JSON: {body}"
            );
            Ok(())
        })
        .unwrap();

    let health = server.get_json("/api/health");
    assert_eq!(
        health["status"], "ok",
        "the server is healthy after the fuzzing"
    );
    Figures::new("server request parsing over HTTP")
        .with("cases", cases)
        .with("statuses", format!("{:?}", statuses.borrow()))
        .report();
}

#[test]
fn gzip_bomb_answers_too_large() {
    let server = TestServer::start();
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![b' '; 1024 * 1024];
    for _ in 0..64 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN}:"))
    );
    let rss_before_kib = rss_kib();

    for endpoint in Endpoint::ALL {
        let url = format!("{}{}", server.url(), endpoint.path());
        let mut builder = server
            .agent()
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip");
        if endpoint == Endpoint::Import {
            builder = builder.header("Authorization", &authorization);
        }
        let mut response = builder
            .send(&bomb[..])
            .unwrap_or_else(|error| panic!("POST {url} failed: {error}"));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(
            status,
            413,
            "POST {url} with {} bytes that inflate to 64 MiB answered {status}: {body}",
            bomb.len()
        );
    }
    Figures::new("gzip bomb: 64 MiB of spaces in one request")
        .with("compressed_bytes", bomb.len())
        .with(
            "rss_growth_mib",
            peak_rss_kib().saturating_sub(rss_before_kib) / 1024,
        )
        .report();
}
