//! Load: 50 concurrent clients send batches of 2000 events to `/import` for a bounded time
//! (10 s by default, 60 s with `GROUPSCOPE_LONG=1`). Every record the server acknowledged
//! must be stored; latency percentiles and the peak resident memory are measured and
//! reported, with only generous sanity bounds asserted.
//!
//! The server runs in the test process with a file store, so the memory figure is the peak
//! RSS of the whole test process: server, 50 client threads and their request bodies.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use groupscope_reliability::{Figures, TOKEN, TestServer, peak_rss_kib, rss_kib, scaled};
use groupscope_server::DbLocation;
use serde_json::{Value, json};

const CLIENTS: usize = 50;
const BATCH: usize = 2000;

/// A request slower than this fails the test: far above any plausible latency on loopback,
/// so only a stalled server trips it.
const SANITY_LATENCY: Duration = Duration::from_secs(55);

/// A peak RSS above this fails the test, in KiB.
const SANITY_PEAK_RSS_KIB: u64 = 2 * 1024 * 1024;

/// Outcome of one `/import` request.
struct Sample {
    latency: Duration,
    status: u16,
    imported: u64,
}

fn batch(client: usize, round: usize) -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let records: Vec<Value> = (0..BATCH)
        .map(|index| {
            json!({
                "event": "Load",
                "properties": {
                    "time": now_ms,
                    "distinct_id": format!("load-user-{client}"),
                    "$insert_id": format!("l{client}-{round}-{index}"),
                    "company_id": format!("company-{}", index % 20),
                    "index": index,
                }
            })
        })
        .collect();
    Value::Array(records).to_string()
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index]
}

#[test]
fn import_under_fifty_clients_keeps_records() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_db(DbLocation::File(dir.path().join("load.sqlite3")));
    let url = format!("{}/import?strict=1", server.url());
    let authorization = Arc::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN}:"))
    ));
    let duration = Duration::from_secs(scaled(10, 60));
    let rss_before_kib = rss_kib();

    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let agent = server.agent().clone();
            let url = url.clone();
            let authorization = Arc::clone(&authorization);
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                let mut round = 0;
                while started.elapsed() < duration {
                    let body = batch(client, round);
                    round += 1;
                    let sent = Instant::now();
                    let mut response = agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .header("Authorization", authorization.as_str())
                        .send(body)
                        .unwrap_or_else(|error| {
                            panic!("client {client}: POST {url} failed: {error}")
                        });
                    let latency = sent.elapsed();
                    let status = response.status().as_u16();
                    let answer: Value = response
                        .body_mut()
                        .read_to_string()
                        .ok()
                        .and_then(|text| serde_json::from_str(&text).ok())
                        .unwrap_or(Value::Null);
                    samples.push(Sample {
                        latency,
                        status,
                        imported: answer["num_records_imported"].as_u64().unwrap_or(0),
                    });
                }
                samples
            })
        })
        .collect();
    let samples: Vec<Sample> = clients
        .into_iter()
        .flat_map(|client| client.join().expect("no load client panicked"))
        .collect();
    let elapsed = started.elapsed();
    let peak_rss_kib = peak_rss_kib();

    let imported: u64 = samples.iter().map(|sample| sample.imported).sum();
    let stored = server.event_count();
    let failed: Vec<u16> = samples
        .iter()
        .filter(|sample| sample.status != 200)
        .map(|sample| sample.status)
        .collect();
    let mut latencies: Vec<Duration> = samples.iter().map(|sample| sample.latency).collect();
    latencies.sort();
    let ms = |duration: Duration| duration.as_millis();

    Figures {
        scenario: "load: 50 clients, /import batches of 2000".to_owned(),
        tracked: (samples.len() * BATCH) as u64,
        delivered: stored,
        lost: imported.saturating_sub(stored),
        ..Figures::default()
    }
    .with("seconds", format!("{:.1}", elapsed.as_secs_f64()))
    .with("requests", samples.len())
    .with("non_200", failed.len())
    .with(
        "records_per_s",
        format!("{:.0}", imported as f64 / elapsed.as_secs_f64()),
    )
    .with("p50_ms", ms(percentile(&latencies, 0.5)))
    .with("p95_ms", ms(percentile(&latencies, 0.95)))
    .with("p99_ms", ms(percentile(&latencies, 0.99)))
    .with("max_ms", ms(latencies.last().copied().unwrap_or_default()))
    .with("rss_before_mib", rss_before_kib / 1024)
    .with("peak_rss_mib", peak_rss_kib / 1024)
    .report();

    assert!(
        failed.is_empty(),
        "{} requests failed, statuses {:?}",
        failed.len(),
        &failed[..failed.len().min(10)]
    );
    assert_eq!(
        imported,
        (samples.len() * BATCH) as u64,
        "the server acknowledged fewer records than were sent"
    );
    assert_eq!(
        stored, imported,
        "the store holds {stored} events but the server acknowledged {imported}"
    );
    let max = latencies.last().copied().unwrap_or_default();
    assert!(max < SANITY_LATENCY, "the slowest request took {max:?}");
    assert!(
        peak_rss_kib < SANITY_PEAK_RSS_KIB,
        "the peak RSS was {} MiB",
        peak_rss_kib / 1024
    );
}
