//! The groupscope client against the server with scripted faults: retried batches are stored
//! once, and the request log shows each attempt.

mod common;

use std::time::Duration;

use common::{CONFIG, TOKEN, TestServer};
use groupscope::{Client, Config, TrackOptions};
use serde_json::json;

#[test]
fn client_retries_through_faults() {
    let server = TestServer::start_with(CONFIG, |config| groupscope_server::ServerConfig { fault_injection: true, ..config });
    let script = json!({"endpoint": "track", "responses": [{"status": 503}, {"status": 429, "retry_after": 1}, {"drop_connection": true}]});
    assert_eq!(server.post_json("/api/faults", &script).status, 200);

    let client = Client::new(Config {
        api_host: server.url(""),
        flush_interval: Duration::from_millis(20),
        initial_retry_delay: Duration::from_millis(20),
        max_retry_delay: Duration::from_millis(200),
        max_attempts_per_cycle: 10,
        ..Config::new(TOKEN)
    })
    .unwrap();
    for index in 0..3 {
        let options = TrackOptions::default().distinct_id("u1").group("company_id", "acme");
        client.track("Report Exported", json!({"index": index}), options).unwrap();
    }
    assert!(client.flush(Duration::from_secs(30)), "stats: {:?}", client.stats());
    client.shutdown(Duration::from_secs(5));

    let events = server.events();
    assert_eq!(events.len(), 3, "each event is stored once despite the retries");
    assert!(events.iter().all(|e| e["attribution"]["groups"] == json!([{"key": "company_id", "id": "acme"}])));

    let requests = server.get_json("/api/requests")["requests"].as_array().unwrap().clone();
    let track: Vec<Option<u64>> = requests.iter().filter(|r| r["endpoint"] == "track").map(|r| r["status"].as_u64()).collect();
    assert_eq!(&track[..3], &[Some(503), Some(429), None], "{requests:?}");
    assert_eq!(track.last(), Some(&Some(200)));
}
