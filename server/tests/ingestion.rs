//! `/track`, `/engage` and `/groups` over real HTTP: every encoding, the response shapes,
//! validation, deduplication and malformed input.

mod common;

use common::{CONFIG, TOKEN, TestServer, gzip, track_event, urlencode};
use serde_json::{Value, json};

fn names(server: &TestServer) -> Vec<String> {
    let mut names: Vec<String> = server.events().iter().map(|e| e["event"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

#[test]
fn track_form_base64_verbose() {
    let server = TestServer::start(CONFIG);
    let reply = server.post_form_base64("/track", &json!([track_event("a", "u1", "i1", json!({}))]), "&verbose=1");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"status": 1, "error": null}));
    assert_eq!(names(&server), vec!["a"]);
}

#[test]
fn track_form_raw_json_non_verbose() {
    let server = TestServer::start(CONFIG);
    let body = format!("data={}", urlencode(&track_event("a", "u1", "i1", json!({})).to_string()));
    let reply = server.request("POST", "/track", &[("Content-Type", "application/x-www-form-urlencoded")], Some(body.as_bytes()));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "1");
    assert_eq!(names(&server), vec!["a"]);
}

#[test]
fn track_raw_json_body_with_trailing_slash() {
    let server = TestServer::start(CONFIG);
    let records = json!([track_event("a", "u1", "i1", json!({})), track_event("b", "u1", "i2", json!({}))]);
    let reply = server.request("POST", "/track/?ip=1", &[("Content-Type", "application/json")], Some(records.to_string().as_bytes()));
    assert_eq!(reply.body, "1");
    assert_eq!(names(&server), vec!["a", "b"]);
}

#[test]
fn track_get_query_data() {
    let server = TestServer::start(CONFIG);
    let data = base64_of(&track_event("a", "u1", "i1", json!({})));
    let reply = server.get(&format!("/track?data={}&verbose=1", urlencode(&data)));
    assert_eq!(reply.json()["status"], 1);
    assert_eq!(names(&server), vec!["a"]);
}

#[test]
fn track_gzip_form_and_json() {
    let server = TestServer::start(CONFIG);
    let form = format!("data={}", urlencode(&base64_of(&json!([track_event("a", "u1", "i1", json!({}))]))));
    let reply = server.request(
        "POST",
        "/track",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Content-Encoding", "gzip")],
        Some(&gzip(form.as_bytes())),
    );
    assert_eq!(reply.body, "1");
    let raw = json!([track_event("b", "u1", "i2", json!({}))]).to_string();
    let reply = server.request(
        "POST",
        "/track/",
        &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
        Some(&gzip(raw.as_bytes())),
    );
    assert_eq!(reply.body, "1");
    assert_eq!(names(&server), vec!["a", "b"]);
}

#[test]
fn verbose_and_ip_in_form_body() {
    let server = TestServer::start(CONFIG);
    let body = format!("data={}&verbose=1&ip=0", urlencode(&track_event("a", "u1", "i1", json!({})).to_string()));
    let reply = server.request("POST", "/track", &[("Content-Type", "application/x-www-form-urlencoded")], Some(body.as_bytes()));
    assert_eq!(reply.json(), json!({"status": 1, "error": null}));
}

#[test]
fn invalid_records_are_reported_and_valid_ones_kept() {
    let server = TestServer::start(CONFIG);
    let records = json!([
        track_event("good", "u1", "i1", json!({})),
        track_event("bad", "undefined", "i2", json!({})),
        {"properties": {"token": TOKEN}},
    ]);
    let reply = server.post_form_base64("/track", &records, "&verbose=1");
    let body = reply.json();
    assert_eq!(body["status"], 1);
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("2 of 3 records were rejected"), "{error}");
    assert!(error.contains("\"undefined\""), "{error}");
    assert!(error.contains("record 2: event"), "{error}");
    assert_eq!(names(&server), vec!["good"]);
}

#[test]
fn all_invalid_answers_zero() {
    let server = TestServer::start(CONFIG);
    let mut wrong_token = track_event("a", "u1", "i1", json!({}));
    wrong_token["properties"]["token"] = json!("someone-else");
    assert_eq!(server.post_form_base64("/track", &json!([wrong_token.clone()]), "").body, "0");
    let reply = server.post_form_base64("/track", &json!([wrong_token]), "&verbose=1");
    assert_eq!(reply.json()["status"], 0);
    assert!(reply.json()["error"].as_str().unwrap().contains("properties.token"));
    assert!(server.events().is_empty());
}

#[test]
fn malformed_bodies_get_400_and_keep_stored_data() {
    let server = TestServer::start(CONFIG);
    server.post_form_base64("/track", &json!([track_event("kept", "u1", "i1", json!({}))]), "");

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("application/x-www-form-urlencoded", b"data=%%%%not-base64!!".to_vec(), "neither JSON nor base64"),
        ("application/json", b"[{\"event\":".to_vec(), "not valid JSON"),
        ("application/json", b"\"just a string\"".to_vec(), "one JSON object or a list"),
        ("application/x-www-form-urlencoded", b"verbose=1".to_vec(), "missing data"),
        ("text/plain", vec![0xff, 0xfe, 0x00, 0x13], "neither JSON nor a form"),
    ];
    for (content_type, body, expected) in cases {
        for path in ["/track", "/engage", "/groups/"] {
            let reply = server.request("POST", path, &[("Content-Type", content_type)], Some(&body));
            assert_eq!(reply.status, 400, "{path} {content_type}: {}", reply.body);
            let message = reply.json()["error"].as_str().unwrap().to_owned();
            assert!(message.contains(expected), "{path}: {message}");
        }
    }
    let reply = server.request("POST", "/track", &[("Content-Encoding", "gzip")], Some(b"not gzip"));
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("gzip"));

    assert_eq!(names(&server), vec!["kept"]);
}

#[test]
fn too_many_records_get_413() {
    let server = TestServer::start(CONFIG);
    let records = Value::Array((0..2001).map(|i| track_event("a", "u1", &format!("i{i}"), json!({}))).collect());
    let reply = server.request("POST", "/track", &[("Content-Type", "application/json")], Some(records.to_string().as_bytes()));
    assert_eq!(reply.status, 413);
    assert!(reply.json()["error"].as_str().unwrap().contains("at most 2000"));
    assert!(server.events().is_empty());
}

#[test]
fn body_over_limit_gets_413() {
    let server = TestServer::start_with(CONFIG, |config| groupscope_server::ServerConfig { max_request_bytes: 1000, ..config });
    let records = Value::Array((0..30).map(|i| track_event("a", "u1", &format!("i{i}"), json!({}))).collect());
    let reply = server.request("POST", "/track", &[("Content-Type", "application/json")], Some(records.to_string().as_bytes()));
    assert_eq!(reply.status, 413, "{}", reply.body);
    let compressed = gzip(records.to_string().as_bytes());
    assert!(compressed.len() < 1000);
    let reply = server.request(
        "POST",
        "/track",
        &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
        Some(&compressed),
    );
    assert_eq!(reply.status, 413, "uncompressed size counts: {}", reply.body);
    assert!(server.events().is_empty());
}

#[test]
fn dedup_on_event_time_distinct_id_insert_id() {
    let server = TestServer::start(CONFIG);
    let event = track_event("a", "u1", "same-id", json!({"attempt": 1}));
    server.post_form_base64("/track", &json!([event.clone()]), "");
    let mut retry = event.clone();
    retry["properties"]["attempt"] = json!(2);
    server.post_form_base64("/track", &json!([retry]), "");

    let events = server.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["properties"]["attempt"], 2, "the latest duplicate wins");

    let mut other_time = event.clone();
    other_time["properties"]["time"] = json!(event["properties"]["time"].as_i64().unwrap() - 1);
    let mut other_user = event.clone();
    other_user["properties"]["distinct_id"] = json!("u2");
    let mut other_name = event.clone();
    other_name["event"] = json!("b");
    let mut no_insert_id = event.clone();
    no_insert_id["properties"].as_object_mut().unwrap().remove("$insert_id");
    server.post_form_base64("/track", &json!([other_time, other_user, other_name, no_insert_id.clone(), no_insert_id]), "");
    assert_eq!(server.events().len(), 6);
}

#[test]
fn time_in_seconds_is_normalised() {
    let server = TestServer::start(CONFIG);
    let seconds = (common::now_ms() / 1000) as f64 + 0.25;
    let event = track_event("a", "u1", "i1", json!({"time": seconds}));
    server.post_form_base64("/track", &json!([event]), "");
    assert_eq!(server.events()[0]["time"].as_i64().unwrap(), (seconds * 1000.0) as i64);
}

#[test]
fn group_operations_apply_to_profile() {
    let server = TestServer::start(CONFIG);
    let record = |op: &str, value: Value| json!({"$token": TOKEN, "$group_key": "company_id", "$group_id": "acme", op: value});
    let records = json!([
        record("$set", json!({"$name": "Acme", "plan": "pro", "legacy": true})),
        record("$set_once", json!({"plan": "free", "founded": 1999})),
        record("$unset", json!(["legacy"])),
        record("$union", json!({"regions": ["eu", "us"]})),
        record("$union", json!({"regions": ["us", "apac"]})),
        record("$remove", json!({"regions": "us"})),
    ]);
    let reply = server.post_form_base64("/groups", &records, "&verbose=1");
    assert_eq!(reply.json(), json!({"status": 1, "error": null}));

    let group = server.get_json("/api/groups/company_id/acme");
    assert_eq!(
        group["profile"]["properties"],
        json!({"$name": "Acme", "plan": "pro", "founded": 1999, "regions": ["eu", "apac"]})
    );
    let raw = server.get_json("/api/groups-records?group_key=company_id&group_id=acme");
    assert_eq!(raw["records"].as_array().unwrap().len(), 6);
    assert_eq!(raw["records"][3]["record"]["$union"], json!({"regions": ["eu", "us"]}));
}

#[test]
fn group_delete_accepts_all_encodings() {
    let server = TestServer::start(CONFIG);
    for (id, delete) in [("a", json!("")), ("b", json!(null)), ("c", json!({}))] {
        let set = json!({"$token": TOKEN, "$group_key": "company_id", "$group_id": id, "$set": {"x": 1}});
        server.post_form_base64("/groups", &json!([set]), "");
        assert_eq!(server.get(&format!("/api/groups/company_id/{id}")).status, 200);
        let delete = json!({"$token": TOKEN, "$group_key": "company_id", "$group_id": id, "$delete": delete});
        assert_eq!(server.post_form_base64("/groups/", &json!([delete]), "").body, "1");
        assert_eq!(server.get(&format!("/api/groups/company_id/{id}")).status, 404, "{id} should be deleted");
    }
}

#[test]
fn group_records_are_validated() {
    let server = TestServer::start(CONFIG);
    let records = json!([
        {"$token": TOKEN, "$group_key": "company_id", "$group_id": "acme", "$add": {"n": 1}},
        {"$token": TOKEN, "$group_key": "company_id", "$group_id": 12.5, "$set": {}},
        {"$token": TOKEN, "$group_id": "acme", "$set": {}},
        {"$token": TOKEN, "$group_key": "company_id", "$group_id": "acme", "$set": {}, "$unset": ["a"]},
        {"$group_key": "company_id", "$group_id": "acme", "$set": {}},
        {"$token": TOKEN, "$group_key": "company_id", "$group_id": 7, "$set": {"n": 1}},
    ]);
    let reply = server.post_form_base64("/groups", &records, "&verbose=1");
    let error = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(error.contains("5 of 6 records were rejected"), "{error}");
    for expected in ["$add is not supported", "not a float", "missing $group_key", "2 operations", "missing $token"] {
        assert!(error.contains(expected), "{expected} in {error}");
    }
    let integer_id = server.get_json("/api/groups/company_id/7");
    assert_eq!(integer_id["profile"]["properties"], json!({"n": 1}));
    let rejected = server.get_json("/api/groups-records")["records"].as_array().unwrap().clone();
    assert_eq!(rejected.iter().filter(|r| !r["error"].is_null()).count(), 5);
}

#[test]
fn engage_stores_user_profile_and_group_links() {
    let server = TestServer::start(CONFIG);
    let records = json!([
        {"$token": TOKEN, "$distinct_id": "u1", "$set": {"$email": "u1@example.com", "company_id": ["acme", "globex"]}},
        {"$token": TOKEN, "$distinct_id": "u1", "$union": {"company_id": ["initech"]}},
        {"$token": TOKEN, "$distinct_id": "u1", "$remove": {"company_id": "globex"}},
        {"$token": TOKEN, "$distinct_id": "u1", "$add": {"logins": 2}},
        {"$token": TOKEN, "$distinct_id": "u2", "$set": {"a": 1}},
        {"$token": TOKEN, "$distinct_id": "u2", "$delete": null},
    ]);
    assert_eq!(server.post_form_base64("/engage", &records, "&verbose=1").json()["status"], 1);

    let user = server.get_json("/api/users/u1");
    assert_eq!(user["groups"], json!({"company_id": ["acme", "initech"]}));
    assert_eq!(user["profile"]["properties"]["logins"], 2);
    assert_eq!(server.get("/api/users/u2").status, 404);
    let raw = server.get_json("/api/engage?distinct_id=u1");
    assert_eq!(raw["records"].as_array().unwrap().len(), 4);
}

#[test]
fn user_link_does_not_attribute_events() {
    let server = TestServer::start(CONFIG);
    let link = json!({"$token": TOKEN, "$distinct_id": "u1", "$set": {"company_id": ["acme"]}});
    server.post_form_base64("/engage", &json!([link]), "");
    server.post_form_base64("/track", &json!([track_event("no key", "u1", "i1", json!({}))]), "");
    let event = &server.events()[0];
    assert_eq!(event["attribution"]["groups"], json!([]));
    assert_eq!(server.get_json("/api/groups/company_id")["groups"], json!([]));
}

#[test]
fn stored_data_survives_restart() {
    let mut server = TestServer::start(CONFIG);
    server.post_form_base64("/track", &json!([track_event("a", "u1", "i1", json!({"company_id": "acme"}))]), "");
    let key = json!({"property": "project_id", "set_up_at": "2021-05-05T00:00:00Z"});
    assert_eq!(server.post_json("/api/group-keys", &key).status, 201);
    server.stop();

    let path = server.dir.path().join("events.db");
    let project = groupscope_server::ProjectConfig::from_toml(CONFIG).unwrap();
    let config = groupscope_server::ServerConfig {
        db: groupscope_server::DbLocation::File(path),
        ..groupscope_server::ServerConfig::new(project)
    };
    server.server = Some(groupscope_server::Server::start(config).unwrap());
    let events = server.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["attribution"]["groups"], json!([{"key": "company_id", "id": "acme"}]));
    let keys = server.get_json("/api/group-keys");
    let names: Vec<&str> = keys["group_keys"].as_array().unwrap().iter().map(|k| k["property"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["company_id", "team_id", "project_id"]);
}

#[test]
fn unknown_route_is_404_with_message() {
    let server = TestServer::start(CONFIG);
    let reply = server.get("/trackk");
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"].as_str().unwrap().contains("/trackk"));
}

fn base64_of(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

#[test]
fn garbage_bodies_never_break_the_server() {
    let server = TestServer::start(CONFIG);
    server.post_form_base64("/track", &json!([track_event("kept", "u1", "i1", json!({}))]), "");

    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let fragments: [&[u8]; 8] = [b"data=", b"{", b"[", b"\"event\"", b"%", b"\x1f\x8b", b"\n", b"\xff"];
    for round in 0..200 {
        let mut body = Vec::new();
        for _ in 0..(next() % 12) {
            if next() % 2 == 0 {
                body.extend_from_slice(fragments[(next() % fragments.len() as u64) as usize]);
            } else {
                body.push((next() % 256) as u8);
            }
        }
        let path = ["/track", "/engage", "/groups", "/import"][round % 4];
        let encoding = if round % 5 == 0 { "gzip" } else { "identity" };
        let auth = common::basic("test-token", "");
        let reply = server.request("POST", path, &[("Content-Encoding", encoding), ("Authorization", &auth)], Some(&body));
        assert!(reply.status < 500, "{path} {body:?}: {} {}", reply.status, reply.body);
    }
    assert_eq!(server.get_json("/api/health")["status"], "ok");
    assert_eq!(names(&server), vec!["kept"]);
}

#[test]
fn web_page_is_served_at_root() {
    let server = TestServer::start(CONFIG);
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>groupscope</title>"), "{}", page.body);
    assert_eq!(server.get("/app.js").status, 200);
}

#[test]
fn verbose_lists_failed_records() {
    let server = TestServer::start(CONFIG);
    let records = json!([
        track_event("good", "u1", "i1", json!({})),
        track_event("bad", "undefined", "i2", json!({})),
        {"properties": {"token": TOKEN}},
    ]);
    let body = server.post_form_base64("/track", &records, "&verbose=1").json();
    assert_eq!(body["status"], 1);
    assert!(body["error"].as_str().unwrap().contains("2 of 3 records were rejected"), "{body}");
    let failed = body["failed_records"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{body}");
    assert_eq!(failed[0]["index"], 1);
    assert_eq!(failed[0]["$insert_id"], "i2");
    assert_eq!(failed[0]["field"], "properties.distinct_id");
    assert!(failed[0]["message"].as_str().unwrap().contains("\"undefined\""));
    assert_eq!(failed[1]["index"], 2);
    assert!(failed[1].get("$insert_id").is_none(), "a record without $insert_id has none: {body}");
    assert_eq!(failed[1]["field"], "event");

    let groups = json!([
        {"$token": TOKEN, "$group_key": "company_id", "$group_id": "acme", "$set": {"n": 1}},
        {"$token": TOKEN, "$group_key": "company_id", "$set": {}},
    ]);
    let body = server.post_form_base64("/groups", &groups, "&verbose=1").json();
    assert_eq!(body["status"], 1);
    assert_eq!(body["failed_records"], json!([{"index": 1, "field": "$group_id", "message": "missing $group_id: name the group, for example \"acme\""}]));

    let engage = json!([{"$token": TOKEN, "$distinct_id": "u1"}]);
    let body = server.post_form_base64("/engage", &engage, "&verbose=1").json();
    assert_eq!(body["status"], 0);
    assert_eq!(body["failed_records"][0]["index"], 0);

    let body = server.post_form_base64("/track", &json!([track_event("ok", "u1", "i3", json!({}))]), "&verbose=1").json();
    assert_eq!(body, json!({"status": 1, "error": null}), "no failed_records when all are stored");
}

#[test]
fn record_errors_have_no_empty_field_slot() {
    let server = TestServer::start(CONFIG);
    let records = json!([
        {"$token": TOKEN, "$group_key": "company_id", "$group_id": "acme", "$set": {}, "$unset": ["a"]},
        {"$token": TOKEN, "$group_key": "company_id", "$group_id": "acme"},
        "not a record",
    ]);
    let body = server.post_form_base64("/groups", &records, "&verbose=1").json();
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("record 0: 2 operations ($set, $unset) in one record"), "{error}");
    assert!(error.contains("record 1: no operation"), "{error}");
    assert!(error.contains("record 2: the record is a string"), "{error}");
    assert!(!error.contains(": :"), "{error}");
}

#[test]
fn ndjson_is_accepted_on_track() {
    let server = TestServer::start(CONFIG);
    let body = format!(
        "{}\n{}\n",
        track_event("a", "u1", "i1", json!({})),
        track_event("b", "u1", "i2", json!({}))
    );
    let reply = server.request("POST", "/track?verbose=1", &[("Content-Type", "application/json")], Some(body.as_bytes()));
    assert_eq!(reply.json(), json!({"status": 1, "error": null}), "{}", reply.body);
    assert_eq!(names(&server), vec!["a", "b"]);

    let reply = server.request("POST", "/track", &[("Content-Type", "application/json")], Some(b"{\"event\":\n"));
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("not valid JSON"), "{}", reply.body);
}

#[test]
fn deflate_is_decoded_and_brotli_gets_415() {
    use std::io::Write;

    let server = TestServer::start(CONFIG);
    let json = json!([track_event("a", "u1", "i1", json!({}))]).to_string();
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(json.as_bytes()).unwrap();
    let deflated = encoder.finish().unwrap();
    let headers = [("Content-Type", "application/json"), ("Content-Encoding", "deflate")];
    let reply = server.request("POST", "/track?verbose=1", &headers, Some(&deflated));
    assert_eq!(reply.json(), json!({"status": 1, "error": null}), "{}", reply.body);

    let headers = [("Content-Type", "application/json"), ("Content-Encoding", "br")];
    let reply = server.request("POST", "/track", &headers, Some(b"\x1b\x00\x00"));
    assert_eq!(reply.status, 415);
    let error = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(error.contains("\"br\""), "{error}");
    assert!(error.contains("gzip"), "{error}");
    assert_eq!(names(&server), vec!["a"]);
}

#[test]
fn api_errors_are_json() {
    let server = TestServer::start(CONFIG);
    let (status, head, body) = server.raw_request("PUT", "/api/group-keys/company_id", &[], b"");
    assert_eq!(status, 405);
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let body: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(body["error"].as_str().unwrap().contains("method PUT is not allowed on /api/group-keys/company_id"), "{body}");

    let (status, head, body) = server.raw_request("GET", "/api/groups/company_id/%FF", &[], b"");
    assert_eq!(status, 400);
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let body: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(body["error"].is_string(), "{body}");
}

#[test]
fn cors_on_ingestion_only() {
    let server = TestServer::start(CONFIG);
    let preflight = [
        ("Origin", "https://app.example.com"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type"),
    ];
    for path in ["/track", "/engage/", "/groups", "/import"] {
        let (status, head, _) = server.raw_request("OPTIONS", path, &preflight, b"");
        let head = head.to_ascii_lowercase();
        assert_eq!(status, 204, "{path}: {head}");
        assert!(head.contains("access-control-allow-origin: *"), "{path}: {head}");
        assert!(head.contains("access-control-allow-methods: get, post, options"), "{path}: {head}");
        assert!(head.contains("access-control-allow-headers: content-type"), "{path}: {head}");
    }

    let data = urlencode(&json!([track_event("a", "u1", "i1", json!({}))]).to_string());
    let headers = [("Origin", "https://app.example.com"), ("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, body) = server.raw_request("POST", "/track", &headers, format!("data={data}").as_bytes());
    assert_eq!((status, body.as_str()), (200, "1"));
    assert!(head.to_ascii_lowercase().contains("access-control-allow-origin: *"), "{head}");
    assert!(server.get_json("/api/requests")["requests"].as_array().unwrap().len() == 1, "a preflight is not an ingestion request");

    let (_, head, _) = server.raw_request("GET", "/api/health", &[("Origin", "https://app.example.com")], b"");
    assert!(!head.to_ascii_lowercase().contains("access-control-allow-origin"), "{head}");
}
