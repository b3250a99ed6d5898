//! Ingest throughput of groupscope-server over loopback HTTP, and of the offline checker.
//!
//! Run with `cargo bench -p groupscope-server --bench ingest`. It prints events per second
//! for `/import` (JSON array) and `/track` (form `data=` base64, as the SDKs send it) with
//! batches of 50 and 2000. One client connection sends the batches one after another to a
//! server with a SQLite file in a temporary folder. It also prints records per second of
//! 100,000 `/groups` `$set` records in batches of 50, each creating a new group profile, and
//! events per second of `check` over JSONL on one thread. Pass `groups` after `--` to run
//! only the `/groups` measurement.

use std::time::{Duration, Instant};

use base64::Engine;
use groupscope_server::attribution::GroupKey;
use groupscope_server::{DbLocation, ProjectConfig, Server, ServerConfig, check, time};
use serde_json::{Value, json};

const TOKEN: &str = "bench-token";
const EVENTS_PER_RUN: usize = 20_000;
const CHECK_EVENTS: usize = 200_000;
const GROUP_RECORDS: usize = 100_000;
const GROUP_BATCH: usize = 50;

fn event(index: usize, now: i64) -> Value {
    let name = ["Dashboard Viewed", "Report Exported", "Invited Teammate"][index % 3];
    json!({
        "event": name,
        "properties": {
            "token": TOKEN,
            "distinct_id": format!("user-{}", index % 5_000),
            "time": now - (index as i64 % 3_600_000),
            "$insert_id": format!("bench-{index}"),
            "company_id": [format!("company-{}", index % 500), format!("company-{}", (index + 1) % 500)],
            "team_id": format!("team-{}", index % 50),
            "mp_lib": "groupscope",
            "$lib_version": "0.1.0",
            "plan": "enterprise",
            "duration_ms": index % 1000,
        }
    })
}

fn start() -> (groupscope_server::RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let project = ProjectConfig::from_toml(&format!(
        "token = \"{TOKEN}\"\n[[group_keys]]\nproperty = \"company_id\"\nset_up_at = \"2020-01-01T00:00:00Z\"\n[[group_keys]]\nproperty = \"team_id\"\nset_up_at = \"2020-01-01T00:00:00Z\"\n"
    ))
    .unwrap();
    let server = Server::start(ServerConfig { db: DbLocation::File(dir.path().join("bench.db")), ..ServerConfig::new(project) }).unwrap();
    (server, dir)
}

fn run_ingest(endpoint: &str, batch: usize) -> f64 {
    let (server, _dir) = start();
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).http_status_as_error(false).build().into();
    let now = time::now_ms();
    let events: Vec<Value> = (0..EVENTS_PER_RUN).map(|i| event(i, now)).collect();
    let bodies: Vec<(Vec<u8>, &str)> = events
        .chunks(batch)
        .map(|chunk| {
            let json = Value::Array(chunk.to_vec()).to_string();
            if endpoint == "track" {
                let data = base64::engine::general_purpose::STANDARD.encode(json);
                let form = format!("data={}", form_urlencoded::byte_serialize(data.as_bytes()).collect::<String>());
                (form.into_bytes(), "application/x-www-form-urlencoded")
            } else {
                (json.into_bytes(), "application/json")
            }
        })
        .collect();
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN}:")));

    let started = Instant::now();
    for (body, content_type) in &bodies {
        let mut response = agent
            .post(format!("{}/{endpoint}", server.url()))
            .header("Content-Type", *content_type)
            .header("Authorization", &auth)
            .send(&body[..])
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        assert_eq!(status, 200, "{text}");
    }
    let elapsed = started.elapsed();
    server.shutdown();
    EVENTS_PER_RUN as f64 / elapsed.as_secs_f64()
}

/// Sends `$set` records for new group profiles and returns records per second, overall and
/// for the last 10,000 records (where a per-record scan of the profiles is slowest).
fn run_groups() -> (f64, f64) {
    let (server, _dir) = start();
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).http_status_as_error(false).build().into();
    let records: Vec<Value> = (0..GROUP_RECORDS)
        .map(|index| {
            json!({
                "$token": TOKEN,
                "$group_key": "company_id",
                "$group_id": format!("company-{index}"),
                "$set": {"name": format!("Company {index}"), "plan": "enterprise", "seats": index % 500},
            })
        })
        .collect();
    let bodies: Vec<String> = records.chunks(GROUP_BATCH).map(|chunk| Value::Array(chunk.to_vec()).to_string()).collect();

    let tail_start = bodies.len() - 10_000 / GROUP_BATCH;
    let started = Instant::now();
    let mut tail_started = started;
    for (position, body) in bodies.iter().enumerate() {
        if position == tail_start {
            tail_started = Instant::now();
        }
        let mut response = agent
            .post(format!("{}/groups", server.url()))
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        assert_eq!((status, text.as_str()), (200, "1"));
    }
    let tail = tail_started.elapsed();
    let elapsed = started.elapsed();
    server.shutdown();
    (GROUP_RECORDS as f64 / elapsed.as_secs_f64(), 10_000.0 / tail.as_secs_f64())
}

fn run_check() -> (f64, Duration) {
    let now = time::now_ms();
    let mut jsonl = String::new();
    for index in 0..CHECK_EVENTS {
        jsonl.push_str(&event(index, now).to_string());
        jsonl.push('\n');
    }
    let keys = vec![
        GroupKey { property: "company_id".into(), display_name: "Company".into(), set_up_at_ms: 0 },
        GroupKey { property: "team_id".into(), display_name: "Team".into(), set_up_at_ms: now },
    ];
    let started = Instant::now();
    let report = check::check(jsonl.as_bytes(), &keys, now).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.events, CHECK_EVENTS as u64);
    (CHECK_EVENTS as f64 / elapsed.as_secs_f64(), elapsed)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    if std::env::args().any(|arg| arg == "groups") {
        print_groups();
        return;
    }
    println!("groupscope-server ingest benchmark: {EVENTS_PER_RUN} events per run, SQLite file, one connection");
    for endpoint in ["import", "track"] {
        for batch in [50, 2000] {
            let rate = run_ingest(endpoint, batch);
            println!("/{endpoint:<6} batch {batch:>4}: {rate:>9.0} events/s");
        }
    }
    print_groups();
    let (rate, elapsed) = run_check();
    println!("check (JSONL, 1 thread): {rate:>9.0} events/s ({CHECK_EVENTS} events in {:.2} s)", elapsed.as_secs_f64());
}

fn print_groups() {
    let (rate, tail_rate) = run_groups();
    println!(
        "/groups batch {GROUP_BATCH:>4}: {rate:>9.0} records/s over {GROUP_RECORDS} new profiles, {tail_rate:.0} records/s for the last 10,000"
    );
}
