//! `/import` over real HTTP: Basic auth, `strict`, `failed_records`, NDJSON and size limits.

mod common;

use common::{CONFIG, TestServer, basic, gzip, now_ms};
use serde_json::{Value, json};

fn import_event(name: &str, insert_id: &str) -> Value {
    json!({"event": name, "properties": {"time": now_ms() - 30 * 86_400_000, "distinct_id": "u1", "$insert_id": insert_id}})
}

fn import(server: &TestServer, query: &str, auth: Option<&str>, content_type: &str, body: &[u8]) -> common::Reply {
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(auth) = auth {
        headers.push(("Authorization", auth));
    }
    server.request("POST", &format!("/import{query}"), &headers, Some(body))
}

#[test]
fn import_accepts_each_credential_kind() {
    let server = TestServer::start(CONFIG);
    let body = json!([import_event("a", "i1")]).to_string();
    let cases = [
        ("", basic("test-token", "")),
        ("", basic("test-secret", "")),
        ("?project_id=42", basic("sa.ingest", "sa-password")),
    ];
    for (query, auth) in cases {
        let reply = import(&server, query, Some(&auth), "application/json", body.as_bytes());
        assert_eq!(reply.status, 200, "{auth}: {}", reply.body);
        assert_eq!(reply.json(), json!({"code": 200, "num_records_imported": 1, "status": "OK"}));
    }
    assert_eq!(server.events().len(), 1, "the same event three times is stored once");
}

#[test]
fn import_rejects_bad_credentials() {
    let server = TestServer::start(CONFIG);
    let body = json!([import_event("a", "i1")]).to_string();
    let cases = [
        ("", None, "no Authorization header"),
        ("", Some("Bearer abc".to_owned()), "Basic scheme"),
        ("", Some(basic("wrong-token", "")), "neither this project's secret nor its token"),
        ("?project_id=42", Some(basic("sa.ingest", "bad")), "wrong secret"),
        ("", Some(basic("sa.ingest", "sa-password")), "need project_id"),
        ("?project_id=7", Some(basic("sa.ingest", "sa-password")), "project_id \"7\""),
        ("", Some(basic("test-token", "password")), "not a service account"),
    ];
    for (query, auth, expected) in cases {
        let reply = import(&server, query, auth.as_deref(), "application/json", body.as_bytes());
        assert_eq!(reply.status, 401, "{auth:?}");
        let body = reply.json();
        assert_eq!(body["code"], 401);
        assert_eq!(body["status"], "Unauthorized");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(expected), "{expected}: {error}");
        assert!(error.starts_with("Invalid credentials: "), "Mixpanel's wording: {error}");
    }
    assert!(server.events().is_empty());
}

#[test]
fn import_strict_reports_failed_records_and_keeps_valid() {
    let server = TestServer::start(CONFIG);
    let mut no_time = import_event("b", "i2");
    no_time["properties"].as_object_mut().unwrap().remove("time");
    let mut bad_insert_id = import_event("c", "not valid!");
    bad_insert_id["properties"]["$insert_id"] = json!("not valid!");
    let body = json!([import_event("a", "i1"), no_time, bad_insert_id, import_event("d", "i4")]).to_string();

    let reply = import(&server, "?strict=1", Some(&basic("test-token", "")), "application/json", body.as_bytes());
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert_eq!(body["code"], 400);
    assert_eq!(body["status"], "Bad Request");
    assert_eq!(body["num_records_imported"], 2);
    let failed = body["failed_records"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["index"], 1);
    assert_eq!(failed[0]["$insert_id"], "i2");
    assert_eq!(failed[0]["field"], "properties.time");
    assert_eq!(failed[1]["index"], 2);
    assert_eq!(failed[1]["field"], "properties.$insert_id");
    assert!(failed[1]["message"].as_str().unwrap().contains("[A-Za-z0-9-]"));

    let mut names: Vec<String> = server.events().iter().map(|e| e["event"].as_str().unwrap().to_owned()).collect();
    names.sort();
    assert_eq!(names, vec!["a", "d"]);
}

#[test]
fn import_strict_zero_skips_invalid() {
    let server = TestServer::start(CONFIG);
    let mut invalid = import_event("b", "i2");
    invalid["properties"]["distinct_id"] = json!("null");
    let body = json!([import_event("a", "i1"), invalid]).to_string();
    let reply = import(&server, "?strict=0", Some(&basic("test-token", "")), "application/json", body.as_bytes());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["num_records_imported"], 1);
}

#[test]
fn import_ndjson_and_gzip() {
    let server = TestServer::start(CONFIG);
    let body = format!("{}\n{}\n", import_event("a", "i1"), import_event("b", "i2"));
    let auth = basic("test-token", "");
    let reply = server.request(
        "POST",
        "/import",
        &[("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip"), ("Authorization", &auth)],
        Some(&gzip(body.as_bytes())),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["num_records_imported"], 2);
}

#[test]
fn import_rejects_old_and_future_times() {
    let server = TestServer::start(CONFIG);
    let mut too_old = import_event("a", "i1");
    too_old["properties"]["time"] = json!(100);
    let mut future = import_event("b", "i2");
    future["properties"]["time"] = json!(now_ms() + 2 * 3_600_000);
    let body = json!([too_old, future]).to_string();
    let reply = import(&server, "", Some(&basic("test-token", "")), "application/json", body.as_bytes());
    assert_eq!(reply.status, 400);
    let failed = reply.json()["failed_records"].as_array().unwrap().clone();
    assert!(failed[0]["message"].as_str().unwrap().contains("before 1971"));
    assert!(failed[1]["message"].as_str().unwrap().contains("future"));
}

#[test]
fn import_over_limits_gets_413() {
    let server = TestServer::start_with(CONFIG, |config| groupscope_server::ServerConfig { max_import_request_bytes: 2000, ..config });
    let auth = basic("test-token", "");
    let big = Value::Array((0..40).map(|i| import_event("a", &format!("i{i}"))).collect()).to_string();
    let reply = import(&server, "", Some(&auth), "application/json", big.as_bytes());
    assert_eq!(reply.status, 413);
    let body = reply.json();
    assert_eq!(body["code"], 413);
    assert_eq!(body["status"], "Request Entity Too Large");
    assert!(body["error"].as_str().unwrap().contains("2000 bytes"));
    assert!(server.events().is_empty());

    let server = TestServer::start(CONFIG);
    let many = Value::Array((0..2001).map(|i| import_event("a", &format!("i{i}"))).collect()).to_string();
    let reply = import(&server, "", Some(&auth), "application/json", many.as_bytes());
    assert_eq!(reply.status, 413);
    assert!(reply.json()["error"].as_str().unwrap().contains("2001 records"));

    let exactly = Value::Array((0..2000).map(|i| import_event("a", &format!("i{i}"))).collect()).to_string();
    let reply = import(&server, "", Some(&auth), "application/json", exactly.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["num_records_imported"], 2000);
}

#[test]
fn import_malformed_body_is_400() {
    let server = TestServer::start(CONFIG);
    let reply = import(&server, "", Some(&basic("test-token", "")), "application/x-ndjson", b"{\"event\":\"a\"}\n{oops\n");
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert_eq!(body["code"], 400);
    assert!(body["error"].as_str().unwrap().contains("NDJSON line 2"), "{}", body["error"]);
}

#[test]
fn import_verbose_form_answers_like_track() {
    let server = TestServer::start(CONFIG);
    let body = format!("data={}&verbose=1&ip=0", common::urlencode(&import_event("a", "i1").to_string()));
    let reply = import(&server, "", Some(&basic("test-secret", "")), "application/x-www-form-urlencoded", body.as_bytes());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"status": 1, "error": null}));
    assert_eq!(server.events()[0]["endpoint"], "import");
}

#[test]
fn import_reads_project_id_from_form_body() {
    let server = TestServer::start(CONFIG);
    let data = common::urlencode(&json!([import_event("a", "i1")]).to_string());
    let auth = basic("sa.ingest", "sa-password");

    let body = format!("data={data}&project_id=42");
    let reply = import(&server, "", Some(&auth), "application/x-www-form-urlencoded", body.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.body);

    let body = format!("data={data}&project_id=7");
    let reply = import(&server, "", Some(&auth), "application/x-www-form-urlencoded", body.as_bytes());
    assert_eq!(reply.status, 401);
    assert!(reply.json()["error"].as_str().unwrap().contains("project_id \"7\""), "{}", reply.body);
    assert_eq!(server.events().len(), 1);
}

#[test]
fn import_ndjson_with_curl_default_content_type() {
    let server = TestServer::start(CONFIG);
    let body = format!("{}\n{}\n", import_event("a", "i1"), import_event("b", "i2"));
    let reply = import(&server, "", Some(&basic("test-secret", "")), "application/x-www-form-urlencoded", body.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["num_records_imported"], 2);
}
