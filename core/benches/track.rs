//! Benchmarks of the calling thread's cost of `track` and of encoding one batch.
//!
//! The client under test sends to a sink on 127.0.0.1 that responds `1` to everything, so the
//! worker delivers in the background as it would in production. Run with
//! `cargo bench -p groupscope --bench track -- --warm-up-time 1 --measurement-time 3`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use groupscope::{Client, Config, TrackOptions};
use serde_json::{Value, json};

/// A loopback server that accepts every request.
struct Sink {
    url: String,
    stop: Arc<AtomicBool>,
}

impl Sink {
    fn start() -> Sink {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let running = stop.clone();
        std::thread::spawn(move || {
            while !running.load(Ordering::Relaxed) {
                if let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(50)) {
                    let _ = request.as_reader().read_to_end(&mut Vec::new());
                    let _ = request.respond(tiny_http::Response::from_string("1"));
                }
            }
        });
        Sink {
            url: format!("http://127.0.0.1:{port}"),
            stop,
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

unsafe extern "C" {
    fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
}

/// `CLOCK_THREAD_CPUTIME_ID` on Linux.
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

/// Returns the CPU time the calling thread has used. Unlike wall time, it does not grow when
/// other processes take the CPU, so it measures the caller's own cost on a busy machine.
fn thread_cpu_time() -> Duration {
    let mut time = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec and the clock id is a Linux constant.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

fn properties() -> Value {
    json!({
        "plan": "enterprise",
        "seats": 42,
        "trial": false,
        "ratio": 0.75,
        "source": "benchmark",
        "tags": ["a", "b", "c"],
        "nested": {"depth": 1, "name": "x"},
        "country": "NZ",
        "referrer": "https://example.com/pricing",
        "version": "1.2.3"
    })
}

fn client(sink: &Sink, data_dir: Option<&std::path::Path>) -> Client {
    let mut config = Config::new("benchmark-token");
    config.api_host = sink.url.clone();
    config.data_dir = data_dir.map(Into::into);
    config.max_queue_records = 10_000_000;
    config.max_queue_bytes = 1 << 32;
    config.initial_retry_delay = Duration::from_secs(60);
    config.max_retry_delay = Duration::from_secs(60);
    let client = Client::new(config).expect("a valid configuration");
    client.set_group("company_id", ["acme"]).unwrap();
    client.set_group("project_id", ["p1", "p2"]).unwrap();
    client
}

fn bench_track(c: &mut Criterion) {
    let sink = Sink::start();

    let memory = client(&sink, None);
    c.bench_function("track, 10 properties, 2 group keys, in-memory queue", |b| {
        b.iter(|| {
            memory
                .track("Report Exported", properties(), TrackOptions::default())
                .unwrap()
        })
    });
    c.bench_function(
        "track, 10 properties, 2 group keys, in-memory queue, caller CPU time",
        |b| {
            b.iter_custom(|iterations| {
                let start = thread_cpu_time();
                for _ in 0..iterations {
                    memory
                        .track("Report Exported", properties(), TrackOptions::default())
                        .unwrap();
                }
                thread_cpu_time() - start
            })
        },
    );
    memory.shutdown(Duration::from_secs(30));

    // A closed loopback port: every request fails at once and the worker backs off for a
    // minute, so this measures the calling thread with the worker mostly idle.
    let closed = Sink {
        url: "http://127.0.0.1:9".to_owned(),
        stop: Arc::new(AtomicBool::new(true)),
    };
    let idle = client(&closed, None);
    c.bench_function(
        "track, 10 properties, 2 group keys, in-memory queue, worker backing off",
        |b| {
            b.iter(|| {
                idle.track("Report Exported", properties(), TrackOptions::default())
                    .unwrap()
            })
        },
    );
    idle.shutdown(Duration::ZERO);

    let dir = tempfile::tempdir().unwrap();
    let durable = client(&sink, Some(dir.path()));
    c.bench_function("track, 10 properties, 2 group keys, durable queue", |b| {
        b.iter(|| {
            durable
                .track("Report Exported", properties(), TrackOptions::default())
                .unwrap()
        })
    });
    c.bench_function(
        "track, 10 properties, 2 group keys, durable queue, caller CPU time",
        |b| {
            b.iter_custom(|iterations| {
                let start = thread_cpu_time();
                for _ in 0..iterations {
                    durable
                        .track("Report Exported", properties(), TrackOptions::default())
                        .unwrap();
                }
                thread_cpu_time() - start
            })
        },
    );
    durable.shutdown(Duration::from_secs(30));
}

fn bench_properties(c: &mut Criterion) {
    c.bench_function(
        "build the 10 properties of one call (part of every track figure)",
        |b| b.iter(properties),
    );
}

fn bench_batch(c: &mut Criterion) {
    let records: Vec<String> = (0..50)
        .map(|i| {
            json!({
                "event": "Report Exported",
                "properties": {
                    "token": "benchmark-token",
                    "time": 1_700_000_000_000i64 + i,
                    "distinct_id": format!("user-{i}"),
                    "$insert_id": format!("{i:032x}"),
                    "company_id": ["acme"],
                    "project_id": ["p1", "p2"],
                    "plan": "enterprise",
                    "seats": 42,
                    "tags": ["a", "b", "c"],
                }
            })
            .to_string()
        })
        .collect();
    let lens: Vec<usize> = records.iter().map(String::len).collect();

    c.bench_function("pack and encode a batch of 50 events", |b| {
        b.iter(|| {
            let packing = groupscope::batch::pack_first(&lens, 50, 1 << 20);
            assert_eq!(packing, groupscope::batch::Packing::Batch { count: 50 });
            groupscope::batch::encode_body(records.iter().map(String::as_str))
        })
    });
    c.bench_function("pack, encode and gzip a batch of 50 events", |b| {
        b.iter(|| {
            let body = groupscope::batch::encode_body(records.iter().map(String::as_str));
            groupscope::batch::gzip_if_smaller(&body)
        })
    });
}

criterion_group!(benches, bench_track, bench_properties, bench_batch);
criterion_main!(benches);
