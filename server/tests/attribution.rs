//! Attribution over real HTTP: every reason, warnings, keys configured at runtime, and limit
//! warnings.

mod common;

use common::{CONFIG, TOKEN, TestServer, track_event};
use serde_json::{Value, json};

fn send(server: &TestServer, events: Vec<Value>) {
    let reply = server.post_form_base64("/track", &Value::Array(events), "&verbose=1");
    assert_eq!(reply.json()["error"], Value::Null, "{}", reply.body);
}

fn event_by_insert_id(server: &TestServer, insert_id: &str) -> Value {
    server.events().into_iter().find(|e| e["insert_id"] == insert_id).unwrap()
}

#[test]
fn event_records_groups_and_reasons() {
    let server = TestServer::start(CONFIG);
    send(
        &server,
        vec![
            track_event("a", "u1", "string", json!({"company_id": "acme"})),
            track_event("a", "u1", "list", json!({"company_id": ["acme", "globex", "acme"]})),
            track_event("a", "u1", "integer", json!({"company_id": 42})),
            track_event("a", "u1", "empty", json!({"company_id": ""})),
            track_event("a", "u1", "nullvalue", json!({"company_id": null})),
            track_event("a", "u1", "emptylist", json!({"company_id": []})),
            track_event("a", "u1", "bool", json!({"company_id": true})),
            track_event("a", "u1", "float", json!({"company_id": 1.5})),
            track_event("a", "u1", "object", json!({"company_id": {"id": "acme"}})),
            track_event("a", "u1", "future", json!({"team_id": "t1"})),
        ],
    );

    let groups = |id: &str| event_by_insert_id(&server, id)["attribution"]["groups"].clone();
    let reason = |id: &str| event_by_insert_id(&server, id)["attribution"]["not_attributed"][0]["code"].clone();

    assert_eq!(groups("string"), json!([{"key": "company_id", "id": "acme"}]));
    assert_eq!(groups("list"), json!([{"key": "company_id", "id": "acme"}, {"key": "company_id", "id": "globex"}]));
    assert_eq!(groups("integer"), json!([{"key": "company_id", "id": "42"}]));
    let warning = &event_by_insert_id(&server, "integer")["attribution"]["warnings"][0];
    assert_eq!(warning["code"], "integer_id");
    assert!(warning["message"].as_str().unwrap().contains("read as the string id \"42\""));

    for id in ["empty", "nullvalue", "emptylist"] {
        assert_eq!(groups(id), json!([]), "{id}");
        assert_eq!(reason(id), "empty_value", "{id}");
    }
    for id in ["bool", "float", "object"] {
        assert_eq!(groups(id), json!([]), "{id}");
        assert_eq!(reason(id), "wrong_type", "{id}");
    }
    assert_eq!(reason("future"), "before_set_up");
    let message = event_by_insert_id(&server, "future")["attribution"]["not_attributed"][0]["message"].clone();
    assert!(message.as_str().unwrap().contains("no backfill"), "{message}");

    let warnings = server.get_json("/api/warnings");
    assert!(warnings["not_attributed"].as_array().unwrap().contains(&json!({"key": "company_id", "code": "wrong_type", "events": 3})));
    assert!(warnings["attribution_warnings"].as_array().unwrap().contains(&json!({"key": "company_id", "code": "integer_id", "events": 1})));
}

#[test]
fn key_added_later_does_not_backfill() {
    let server = TestServer::start(CONFIG);
    send(&server, vec![track_event("a", "u1", "before", json!({"project_id": "p1"}))]);
    let reply = server.post_json("/api/group-keys", &json!({"property": "project_id", "display_name": "Project"}));
    assert_eq!(reply.status, 201, "{}", reply.body);
    std::thread::sleep(std::time::Duration::from_millis(5));
    send(&server, vec![track_event("a", "u1", "after", json!({"project_id": "p1"}))]);

    let before = event_by_insert_id(&server, "before");
    assert_eq!(before["attribution"]["groups"], json!([]));
    assert_eq!(before["attribution"]["not_attributed"][0]["code"], "before_set_up");
    assert_eq!(event_by_insert_id(&server, "after")["attribution"]["groups"], json!([{"key": "project_id", "id": "p1"}]));
    let groups = server.get_json("/api/groups/project_id");
    assert_eq!(groups["groups"][0]["event_count"], 1);
}

#[test]
fn event_time_does_not_decide_attribution() {
    let server = TestServer::start(CONFIG);
    let key = json!({"property": "org_id", "set_up_at": groupscope_server::time::format_rfc3339(common::now_ms() - 60_000)});
    assert_eq!(server.post_json("/api/group-keys", &key).status, 201);
    let old_time = common::now_ms() - 3 * 86_400_000;
    send(&server, vec![track_event("a", "u1", "old-time", json!({"org_id": "o1", "time": old_time}))]);
    let event = event_by_insert_id(&server, "old-time");
    assert_eq!(event["attribution"]["groups"], json!([{"key": "org_id", "id": "o1"}]));
}

#[test]
fn group_keys_api_validates_and_limits() {
    let server = TestServer::start(&format!("max_group_keys = 3\n{CONFIG}"));
    assert_eq!(server.post_json("/api/group-keys", &json!({"property": "a"})).status, 201);
    let reply = server.post_json("/api/group-keys", &json!({"property": "b"}));
    assert_eq!(reply.status, 409);
    assert!(reply.json()["error"].as_str().unwrap().contains("max_group_keys = 3"));

    let reply = server.post_json("/api/group-keys", &json!({"property": "a", "display_name": "A"}));
    assert_eq!(reply.status, 200, "updating an existing key is allowed");
    let reply = server.post_json("/api/group-keys", &json!({"property": "a", "set_up_at": "yesterday"}));
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("\"yesterday\""));
    let reply = server.post_json("/api/group-keys", &json!({"property": "distinct_id"}));
    assert_eq!(reply.status, 400);
    let reply = server.request("POST", "/api/group-keys", &[], Some(b"not json"));
    assert_eq!(reply.status, 400);

    assert_eq!(server.request("DELETE", "/api/group-keys/a", &[], None).status, 200);
    assert_eq!(server.post_json("/api/group-keys", &json!({"property": "b"})).status, 201);
    let keys = server.get_json("/api/group-keys");
    assert_eq!(keys["max_group_keys"], 3);
    assert_eq!(keys["group_keys"].as_array().unwrap().len(), 3);
}

#[test]
fn limits_are_reported_as_warnings() {
    let config = format!("max_events_per_group_per_day = 2\nmax_group_profiles_per_key = 1\n{CONFIG}");
    let server = TestServer::start(&config);
    send(&server, (0..3).map(|i| track_event("a", "u1", &format!("i{i}"), json!({"company_id": "hot"}))).collect());
    let profiles = json!([
        {"$token": TOKEN, "$group_key": "company_id", "$group_id": "one", "$set": {"a": 1}},
        {"$token": TOKEN, "$group_key": "company_id", "$group_id": "two", "$set": {"a": 1}},
    ]);
    server.post_form_base64("/groups", &profiles, "");

    let warnings = server.get_json("/api/warnings")["limits"].as_array().unwrap().clone();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let hot = warnings.iter().find(|w| w["kind"] == "events_per_group_per_day").unwrap();
    assert_eq!(hot["key"], "company_id");
    assert_eq!(hot["id"], "hot");
    assert_eq!(hot["count"], 3);
    assert_eq!(hot["limit"], 2);
    let profiles = warnings.iter().find(|w| w["kind"] == "group_profiles_per_key").unwrap();
    assert_eq!(profiles["count"], 2);
    assert_eq!(server.events().len(), 3, "events over the limit are stored, not dropped");
}
