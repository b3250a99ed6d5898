//! Fault injection and the request log over real HTTP.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{CONFIG, TestServer, track_event};
use serde_json::json;

fn start() -> TestServer {
    TestServer::start_with(CONFIG, |config| groupscope_server::ServerConfig { fault_injection: true, ..config })
}

fn send(server: &TestServer, insert_id: &str) -> common::Reply {
    server.post_form_base64("/track", &json!([track_event("a", "u1", insert_id, json!({}))]), "")
}

#[test]
fn scripted_statuses_then_normal() {
    let server = start();
    let script = json!({"endpoint": "track", "responses": [{"status": 503}, {"status": 429, "retry_after": 2}, {"status": 413}]});
    assert_eq!(server.post_json("/api/faults", &script).status, 200);

    let first = send(&server, "i1");
    assert_eq!(first.status, 503);
    let second = send(&server, "i1");
    assert_eq!(second.status, 429);
    assert_eq!(second.retry_after.as_deref(), Some("2"));
    assert!(second.json()["error"].as_str().unwrap().contains("rate limits"));
    assert_eq!(send(&server, "i1").status, 413);
    assert!(server.events().is_empty(), "faulted requests store nothing");

    let fourth = send(&server, "i1");
    assert_eq!((fourth.status, fourth.body.as_str()), (200, "1"));
    assert_eq!(server.events().len(), 1);

    let requests = server.get_json("/api/requests")["requests"].as_array().unwrap().clone();
    let statuses: Vec<u64> = requests.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![503, 429, 413, 200]);
    assert_eq!(requests[1]["fault"], "status 429, Retry-After 2");
    assert_eq!(requests[3]["records"], 1);
    assert_eq!(requests[3]["accepted"], 1);
    assert!(requests[0]["body_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn other_endpoints_are_unaffected() {
    let server = start();
    server.post_json("/api/faults", &json!({"endpoint": "groups", "responses": [{"status": 500}]}));
    assert_eq!(send(&server, "i1").status, 200);
    let pending = server.get_json("/api/faults");
    assert_eq!(pending["responses"]["groups"], json!([{"status": 500, "retry_after": null, "delay_ms": null, "drop_connection": false, "body": null}]));
    assert_eq!(server.request("DELETE", "/api/faults", &[], None).status, 200);
    assert_eq!(server.get_json("/api/faults")["responses"], json!({}));
}

#[test]
fn delay_then_normal_response() {
    let server = start();
    server.post_json("/api/faults", &json!({"endpoint": "*", "responses": [{"delay_ms": 300}]}));
    let started = Instant::now();
    let reply = send(&server, "i1");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.body, "1");
    assert_eq!(server.events().len(), 1);
}

#[test]
fn dropped_connection_has_no_complete_response() {
    let server = start();
    server.post_json("/api/faults", &json!({"endpoint": "track", "responses": [{"drop_connection": true}]}));

    let address = server.server.as_ref().unwrap().addr();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = "data=%7B%7D";
    write!(stream, "POST /track HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains("\r\n\r\n1"), "a complete response arrived: {text:?}");
    assert!(!text.ends_with("0\r\n\r\n"), "a complete chunked response arrived: {text:?}");

    assert_eq!(send(&server, "i1").body, "1", "the next request is handled normally");
    let requests = server.get_json("/api/requests")["requests"].as_array().unwrap().clone();
    assert_eq!(requests[0]["status"], serde_json::Value::Null);
    assert_eq!(requests[0]["fault"], "dropped connection");
}

#[test]
fn max_body_bytes_gives_413() {
    let server = start();
    server.post_json("/api/faults", &json!({"endpoint": "track", "max_body_bytes": 100}));
    assert_eq!(send(&server, "i1").status, 413);
    assert_eq!(server.request("DELETE", "/api/faults", &[], None).status, 200);
    assert_eq!(send(&server, "i1").status, 200);
}

#[test]
fn invalid_scripts_are_rejected() {
    let server = start();
    let reply = server.post_json("/api/faults", &json!({"endpoint": "trak", "responses": []}));
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("\"trak\""));
    let reply = server.post_json("/api/faults", &json!({"endpoint": "track", "responses": [{"stauts": 500}]}));
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("stauts"));
}

#[test]
fn faults_need_the_flag() {
    let server = TestServer::start(CONFIG);
    let reply = server.post_json("/api/faults", &json!({"endpoint": "track", "responses": [{"status": 503}]}));
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"].as_str().unwrap().contains("--fault-injection"));
    assert_eq!(send(&server, "i1").status, 200);
}
