//! Test support: a server on loopback with a SQLite file in a temporary folder, and a plain
//! HTTP client for it.

#![allow(dead_code)]

use std::io::Write;

use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use groupscope_server::{DbLocation, ProjectConfig, RunningServer, Server, ServerConfig};
use serde_json::Value;

/// The project token of the test config.
pub const TOKEN: &str = "test-token";

/// A config with `company_id` set up in 2020 and `team_id` set up far in the future.
pub const CONFIG: &str = r#"
token = "test-token"
secret = "test-secret"
project_id = "42"

[[service_accounts]]
username = "sa.ingest"
secret = "sa-password"

[[group_keys]]
property = "company_id"
display_name = "Company"
set_up_at = "2020-01-01T00:00:00Z"

[[group_keys]]
property = "team_id"
display_name = "Team"
set_up_at = "2999-01-01T00:00:00Z"
"#;

/// A running server and a client for it.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    agent: ureq::Agent,
}

/// A response: status and body text.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(std::time::Duration::from_secs(20)))
        .build()
        .into()
}

impl TestServer {
    /// Starts a server with `toml` and a database file in a fresh temporary folder.
    pub fn start(toml: &str) -> TestServer {
        Self::start_with(toml, |config| config)
    }

    /// Starts a server after `adjust` changed its config.
    pub fn start_with(toml: &str, adjust: impl FnOnce(ServerConfig) -> ServerConfig) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let project = ProjectConfig::from_toml(toml).unwrap();
        let config = adjust(ServerConfig { db: DbLocation::File(dir.path().join("events.db")), ..ServerConfig::new(project) });
        let server = Server::start(config).unwrap();
        TestServer { server: Some(server), dir, agent: agent() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.as_ref().unwrap().url())
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        let url = self.url(path);
        let result = match (method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(&url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => {
                let mut request = self.agent.post(&url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.send(body.unwrap_or(b""))
            }
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path} failed: {e}"));
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        Reply { status: response.status().as_u16(), body: response.body_mut().read_to_string().unwrap(), retry_after }
    }

    /// Sends `method path` with `headers` and `body` over a plain TCP connection, so tests can
    /// use any method and path bytes. Returns the status, the header block and the body.
    pub fn raw_request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, String) {
        use std::io::Read;

        let addr = self.server.as_ref().unwrap().addr();
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(body) } else { body.to_owned() };
        (status, head.to_owned(), body)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    pub fn get_json(&self, path: &str) -> Value {
        let reply = self.get(path);
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
        reply.json()
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.request("POST", path, &[("Content-Type", "application/json")], Some(body.to_string().as_bytes()))
    }

    /// Posts `records` as a form field `data=<base64 JSON>`, the way most SDKs do.
    pub fn post_form_base64(&self, path: &str, records: &Value, extra: &str) -> Reply {
        let data = base64::engine::general_purpose::STANDARD.encode(records.to_string());
        let body = format!("data={}{extra}", urlencode(&data));
        self.request("POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], Some(body.as_bytes()))
    }

    pub fn events(&self) -> Vec<Value> {
        self.get_json("/api/events?limit=10000")["events"].as_array().unwrap().clone()
    }

    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}

pub fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

pub fn now_ms() -> i64 {
    groupscope_server::time::now_ms()
}

/// Builds a valid `/track` event.
pub fn track_event(name: &str, distinct_id: &str, insert_id: &str, extra: Value) -> Value {
    let mut properties = serde_json::json!({
        "token": TOKEN,
        "distinct_id": distinct_id,
        "time": now_ms(),
        "$insert_id": insert_id,
    });
    for (key, value) in extra.as_object().unwrap() {
        properties[key] = value.clone();
    }
    serde_json::json!({"event": name, "properties": properties})
}

/// Decodes a chunked HTTP/1.1 body.
fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&after[..size.min(after.len())]);
        rest = after.get(size + 2..).unwrap_or("");
    }
    out
}
