//! Measures end-to-end delivery: events per second from `track` until a loopback sink
//! acknowledged them, and the sink's own capacity for comparison.
//!
//! Run with `cargo run --release -p groupscope --example throughput -- [EVENTS] [durable]`.
//! EVENTS defaults to 200000; `durable` puts the queue in a temporary `data_dir`. The sink is
//! a tiny_http server on 127.0.0.1 with two handler threads that reads each body and responds
//! with `{"status":1,"error":null}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use groupscope::{Client, Config, TrackOptions};
use serde_json::json;

/// Requests the sink responded to, and the body bytes it read.
#[derive(Default)]
struct SinkCounters {
    requests: AtomicU64,
    bytes: AtomicU64,
}

fn start_sink() -> (String, Arc<SinkCounters>) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
    let port = server.server_addr().to_ip().expect("an IP address").port();
    let counters = Arc::new(SinkCounters::default());
    for _ in 0..2 {
        let server = server.clone();
        let counters = counters.clone();
        std::thread::spawn(move || {
            let mut body = Vec::with_capacity(64 * 1024);
            for mut request in server.incoming_requests() {
                body.clear();
                let _ = request.as_reader().read_to_end(&mut body);
                counters.requests.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                let _ = request.respond(tiny_http::Response::from_string(
                    r#"{"status":1,"error":null}"#,
                ));
            }
        });
    }
    (format!("http://127.0.0.1:{port}"), counters)
}

/// Posts one prepared batch body `requests` times over one keep-alive connection and returns
/// the requests per second the sink responded to.
fn sink_capacity(url: &str, body: &[u8], requests: u32) -> f64 {
    let agent = ureq::Agent::new_with_defaults();
    let start = Instant::now();
    for _ in 0..requests {
        let mut response = agent
            .post(&format!("{url}/track?verbose=1"))
            .header("Content-Encoding", "gzip")
            .send(body)
            .expect("the sink responds");
        let _ = response.body_mut().read_to_vec();
    }
    f64::from(requests) / start.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .map(|value| value.parse().expect("EVENTS must be a whole number"))
        .unwrap_or(200_000);
    let durable = args.next().as_deref() == Some("durable");

    let (url, counters) = start_sink();
    let data_dir = tempfile::tempdir().expect("a temporary folder");

    let mut config = Config::new("benchmark-token");
    config.api_host = url.clone();
    config.data_dir = durable.then(|| data_dir.path().to_path_buf());
    let client = Client::new(config).expect("a valid configuration");
    client.set_group("company_id", ["acme"]).unwrap();
    client.identify("user-1").unwrap();

    let properties = json!({"plan": "pro", "seats": 12, "price": 9.99, "tags": ["a", "b"]});
    let start = Instant::now();
    for _ in 0..events {
        client
            .track("Bench Event", properties.clone(), TrackOptions::default())
            .unwrap();
    }
    let tracked = start.elapsed();
    let delivered_while_tracking = client.stats().delivered;
    let flushed = client.flush(Duration::from_secs(600));
    let delivered_in = start.elapsed();
    let stats = client.stats();
    client.shutdown(Duration::from_secs(10));

    let requests = counters.requests.load(Ordering::Relaxed);
    let bytes = counters.bytes.load(Ordering::Relaxed);
    println!(
        "queue: {}",
        if durable { "durable (SQLite)" } else { "in-memory" }
    );
    println!(
        "tracked {events} events in {tracked:?} ({:.2} µs per track)",
        tracked.as_secs_f64() * 1e6 / events as f64
    );
    println!(
        "delivered {} in {delivered_in:?} ({:.0} events/s), flush returned {flushed}, dropped for a full queue {}",
        stats.delivered,
        stats.delivered as f64 / delivered_in.as_secs_f64(),
        stats.dropped_queue_full
    );
    let drained = stats.delivered - delivered_while_tracking;
    println!(
        "after the last track: {drained} delivered in {:?} ({:.0} events/s with the caller idle)",
        delivered_in - tracked,
        drained as f64 / (delivered_in - tracked).as_secs_f64()
    );
    println!(
        "sink: {requests} requests, {:.0} bytes per request on the wire",
        bytes as f64 / requests.max(1) as f64
    );

    // The same kind of body, posted by one thread without the client, shows what the sink
    // and the loopback connection can take.
    let record = r#"{"event":"Bench Event","properties":{"plan":"pro","seats":12}}"#;
    let plain = groupscope::batch::encode_body(std::iter::repeat_n(record, 50));
    let body = groupscope::batch::gzip_if_smaller(&plain).unwrap_or(plain);
    let rate = sink_capacity(&url, &body, 5_000);
    println!(
        "sink capacity: {rate:.0} requests/s = {:.0} events/s at 50 events per request",
        rate * 50.0
    );
}
