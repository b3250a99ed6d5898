//! The reference server on a loopback port, with fault injection and direct store access.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use groupscope_server::store::{EventFilter, StoredEvent};
use groupscope_server::{DbLocation, ProjectConfig, RunningServer, Server, ServerConfig};
use serde_json::Value;

use crate::config::TOKEN;

/// Upper bound of events read back from the store in one listing.
const MAX_LISTED_EVENTS: usize = 10_000_000;

/// One ingestion request from `GET /api/requests`.
#[derive(Debug, Clone)]
pub struct RequestEntry {
    /// `track`, `engage`, `groups` or `import`.
    pub endpoint: String,
    /// The response status; `None` for a dropped connection.
    pub status: Option<u16>,
    /// Records stored or applied, duplicates included.
    pub accepted: u64,
    /// When the request arrived, in milliseconds since the epoch.
    pub received_at_ms: i64,
    /// The injected fault, if any.
    pub fault: Option<String>,
}

fn start_server(listen: SocketAddr, db: DbLocation) -> RunningServer {
    let project = ProjectConfig::from_toml(&format!(
        "token = \"{TOKEN}\"\n[[group_keys]]\nproperty = \"company_id\"\nset_up_at = \"2000-01-01T00:00:00Z\"\n"
    ))
    .expect("the test project configuration is valid");
    let server = Server::start(ServerConfig {
        listen,
        db,
        fault_injection: true,
        ..ServerConfig::new(project)
    })
    .unwrap_or_else(|error| panic!("the test server failed to start on {listen}: {error}"));
    assert!(
        server.addr().ip().is_loopback(),
        "the test server must listen on loopback, got {}",
        server.addr()
    );
    server
}

/// A `groupscope-server` listening on `127.0.0.1` with fault injection enabled and the
/// group key `company_id` configured. Stops when dropped.
pub struct TestServer {
    server: Option<RunningServer>,
    db: DbLocation,
    agent: ureq::Agent,
}

impl TestServer {
    /// Starts a server with an in-memory store.
    pub fn start() -> TestServer {
        TestServer::start_with_db(DbLocation::Memory)
    }

    /// Starts a server with the store at `db`.
    pub fn start_with_db(db: DbLocation) -> TestServer {
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let server = start_server(listen, db.clone());
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build(),
        );
        TestServer {
            server: Some(server),
            db,
            agent,
        }
    }

    /// Stops the server, waits `downtime`, and starts it again on the same address and store.
    /// Pending faults and the request log start empty again.
    pub fn restart(&mut self, downtime: Duration) {
        let addr = self.running().addr();
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
        std::thread::sleep(downtime);
        self.server = Some(start_server(addr, self.db.clone()));
    }

    fn running(&self) -> &RunningServer {
        self.server
            .as_ref()
            .expect("the server runs until the TestServer is dropped")
    }

    /// Returns the base URL, for example `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.running().url()
    }

    /// Returns an HTTP agent that reports every status as a response instead of an error.
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// Posts a fault script to `POST /api/faults` and panics unless the server accepted it.
    pub fn script_faults(&self, script: Value) {
        let url = format!("{}/api/faults", self.url());
        let mut response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(script.to_string())
            .unwrap_or_else(|error| panic!("POST {url} failed: {error}"));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        assert!(
            (200..300).contains(&status),
            "POST {url} with {script} answered {status}: {body}"
        );
    }

    /// Removes every pending fault with `DELETE /api/faults`.
    pub fn clear_faults(&self) {
        let url = format!("{}/api/faults", self.url());
        let response = self
            .agent
            .delete(&url)
            .call()
            .unwrap_or_else(|error| panic!("DELETE {url} failed: {error}"));
        assert!(
            response.status().is_success(),
            "DELETE {url} answered {}",
            response.status()
        );
    }

    /// Returns the number of fault steps not yet used, over all endpoints.
    pub fn pending_faults(&self) -> usize {
        let pending = self.get_json("/api/faults");
        pending["responses"].as_object().map_or(0, |steps| {
            steps
                .values()
                .map(|list| list.as_array().map_or(0, Vec::len))
                .sum()
        })
    }

    /// Returns the ingestion requests the server logged, oldest first.
    pub fn requests(&self) -> Vec<RequestEntry> {
        let log = self.get_json("/api/requests");
        log["requests"]
            .as_array()
            .expect("GET /api/requests returns a requests list")
            .iter()
            .map(|entry| RequestEntry {
                endpoint: entry["endpoint"].as_str().unwrap_or_default().to_owned(),
                status: entry["status"].as_u64().map(|status| status as u16),
                accepted: entry["accepted"].as_u64().unwrap_or(0),
                received_at_ms: entry["received_at"].as_i64().unwrap_or(0),
                fault: entry["fault"].as_str().map(str::to_owned),
            })
            .collect()
    }

    /// Clears the request log with `DELETE /api/requests`.
    pub fn clear_requests(&self) {
        let url = format!("{}/api/requests", self.url());
        let response = self
            .agent
            .delete(&url)
            .call()
            .unwrap_or_else(|error| panic!("DELETE {url} failed: {error}"));
        assert!(
            response.status().is_success(),
            "DELETE {url} answered {}",
            response.status()
        );
    }

    /// Sends `GET path` and returns the JSON body; panics on a non-2xx status.
    pub fn get_json(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.url());
        let mut response = self
            .agent
            .get(&url)
            .call()
            .unwrap_or_else(|error| panic!("GET {url} failed: {error}"));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        assert!(
            (200..300).contains(&status),
            "GET {url} answered {status}: {body}"
        );
        serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("GET {url} returned invalid JSON ({error}): {body}"))
    }

    /// Returns every stored event, read from the store directly.
    pub fn events(&self) -> Vec<StoredEvent> {
        let filter = EventFilter {
            limit: MAX_LISTED_EVENTS,
            ..EventFilter::default()
        };
        self.running()
            .state()
            .store()
            .list_events(&filter)
            .expect("the test server's store can be read")
    }

    /// Returns how many stored events carry each `$insert_id`.
    pub fn insert_id_counts(&self) -> HashMap<String, u64> {
        let mut counts = HashMap::new();
        for event in self.events() {
            if let Some(insert_id) = event.insert_id {
                *counts.entry(insert_id).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Returns the number of stored events.
    pub fn event_count(&self) -> u64 {
        self.running()
            .state()
            .store()
            .event_count()
            .expect("the test server's store can be read")
    }

    /// Returns the stored user profile properties of `distinct_id`, if any.
    pub fn user_properties(&self, distinct_id: &str) -> Option<Value> {
        self.running()
            .state()
            .store()
            .user_profile(distinct_id)
            .expect("the test server's store can be read")
            .map(|profile| profile.properties)
    }

    /// Returns the records stored or applied by `/track` and `/import` requests, duplicates
    /// included, according to the request log.
    pub fn accepted_event_records(&self) -> u64 {
        self.requests()
            .iter()
            .filter(|entry| entry.endpoint == "track" || entry.endpoint == "import")
            .map(|entry| entry.accepted)
            .sum()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}
