//! A scripted ingestion server on loopback for client tests.
//!
//! It responds to each request with the next scripted [`Reply`] (or a success when the script
//! is empty), responds 413 to bodies above a byte threshold, and records every request with its
//! decompressed body and the time it arrived.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flate2::read::GzDecoder;
use groupscope::Config;
use serde_json::Value;

/// One scripted response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
    pub delay: Duration,
}

impl Reply {
    /// Returns a verbose `/track` success.
    pub fn ok() -> Reply {
        Reply::status(200, r#"{"status":1,"error":null}"#)
    }

    /// Any status with a body.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, value: &str) -> Reply {
        self.retry_after = Some(value.to_owned());
        self
    }

    /// Waits `delay` before responding.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One received request.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query, for example `/track?verbose=1`.
    pub url: String,
    /// Bytes of the decompressed body.
    pub body_len: usize,
    /// The decompressed body parsed as a JSON array.
    pub records: Vec<Value>,
    /// Whether the body arrived gzip-compressed.
    pub gzip: bool,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// When the request arrived.
    pub at: Instant,
    /// The status the server responded with.
    pub status: u16,
}

impl Received {
    /// Returns the path without the query.
    pub fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or_default()
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    default_reply: Option<Reply>,
    reject_above: Option<usize>,
    received: Vec<Received>,
}

/// The running server; stopped when dropped.
pub struct Server {
    pub url: String,
    script: Arc<Mutex<Script>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server on an ephemeral loopback port.
    pub fn start() -> Server {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let script = Arc::new(Mutex::new(Script::default()));
        let stop = Arc::new(AtomicBool::new(false));

        let thread = {
            let script = script.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(20)) {
                        respond(&script, request);
                    }
                }
            })
        };

        Server {
            url: format!("http://127.0.0.1:{port}"),
            script,
            stop,
            thread: Some(thread),
        }
    }

    /// Queues replies for the next requests.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().replies.extend(replies);
    }

    /// Sets the reply used once the script is empty.
    pub fn default_reply(&self, reply: Reply) {
        self.script.lock().unwrap().default_reply = Some(reply);
    }

    /// Responds 413 to bodies larger than `bytes` after decompression.
    pub fn reject_above(&self, bytes: usize) {
        self.script.lock().unwrap().reject_above = Some(bytes);
    }

    /// Returns every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// Returns the records of every request to `path` that received a 200 response.
    pub fn accepted(&self, path: &str) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|r| r.path() == path && r.status == 200)
            .flat_map(|r| r.records)
            .collect()
    }

    /// Returns the properties of every accepted `/track` event.
    pub fn events(&self) -> Vec<Value> {
        self.accepted("/track")
            .into_iter()
            .map(|event| event["properties"].clone())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn respond(script: &Mutex<Script>, mut request: tiny_http::Request) {
    let mut raw = Vec::new();
    let _ = request.as_reader().read_to_end(&mut raw);
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_owned())
    };
    let gzip = header("Content-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = if gzip {
        let mut plain = Vec::new();
        GzDecoder::new(&raw[..])
            .read_to_end(&mut plain)
            .expect("a valid gzip body");
        plain
    } else {
        raw
    };
    let records = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(records)) => records,
        other => panic!("the body must be a JSON array, got {other:?}"),
    };
    let url = request.url().to_owned();

    let reply = {
        let mut script = script.lock().unwrap();
        let too_large = script.reject_above.is_some_and(|limit| body.len() > limit);
        let reply = if too_large {
            Reply::status(
                413,
                r#"{"code":413,"error":"request exceeds max limit","status":"Request Entity Too Large"}"#,
            )
        } else {
            script
                .replies
                .pop_front()
                .or_else(|| script.default_reply.clone())
                .unwrap_or_else(|| {
                    if url.starts_with("/import") {
                        Reply::status(
                            200,
                            &format!(
                                r#"{{"code":200,"num_records_imported":{},"status":"OK"}}"#,
                                records.len()
                            ),
                        )
                    } else {
                        Reply::ok()
                    }
                })
        };
        script.received.push(Received {
            url,
            body_len: body.len(),
            records,
            gzip,
            authorization: header("Authorization"),
            at: Instant::now(),
            status: reply.status,
        });
        reply
    };

    std::thread::sleep(reply.delay);
    let mut response = tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
    if let Some(value) = reply.retry_after {
        response =
            response.with_header(tiny_http::Header::from_bytes("Retry-After", value).unwrap());
    }
    let _ = request.respond(response);
}

/// Returns a configuration pointed at `server` with small delays, so tests run fast.
pub fn config(server: &Server, data_dir: Option<&Path>) -> Config {
    let mut config = Config::new("test-token-0123456789");
    config.api_host = server.url.clone();
    config.data_dir = data_dir.map(Path::to_path_buf);
    config.flush_interval = Duration::from_millis(20);
    config.request_timeout = Duration::from_secs(5);
    config.initial_retry_delay = Duration::from_millis(20);
    config.max_retry_delay = Duration::from_millis(200);
    config.max_attempts_per_cycle = 3;
    config
}

/// Collects drop reports.
#[derive(Clone, Default)]
pub struct Drops(pub Arc<Mutex<Vec<groupscope::DropReport>>>);

impl Drops {
    /// Returns a callback that records into this collector.
    pub fn callback(&self) -> Arc<dyn groupscope::DropCallback> {
        let reports = self.0.clone();
        Arc::new(move |report: &groupscope::DropReport| {
            reports.lock().unwrap().push(report.clone())
        })
    }

    /// Returns the reports so far.
    pub fn reports(&self) -> Vec<groupscope::DropReport> {
        self.0.lock().unwrap().clone()
    }
}

/// The default flush timeout of tests.
pub const FLUSH: Duration = Duration::from_secs(10);
