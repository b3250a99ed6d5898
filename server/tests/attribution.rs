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

#[test]
fn huge_integer_id_is_named_as_integer() {
    let server = TestServer::start(CONFIG);
    let mut event = track_event("a", "u1", "i1", json!({})).to_string();
    event = event.replacen("{\"$insert_id\"", "{\"company_id\":123456789012345678901234567890,\"$insert_id\"", 1);
    assert!(event.contains("123456789012345678901234567890"), "{event}");
    let reply = server.request("POST", "/track?verbose=1", &[("Content-Type", "application/json")], Some(event.as_bytes()));
    assert_eq!(reply.json()["status"], 1, "{}", reply.body);
    let stored = event_by_insert_id(&server, "i1");
    let reason = &stored["attribution"]["not_attributed"][0];
    assert_eq!(reason["code"], "wrong_type");
    let message = reason["message"].as_str().unwrap();
    assert!(message.contains("an integer too large to be a group id"), "{message}");
    assert!(!message.contains("float"), "{message}");

    let record = format!("[{{\"$token\":\"{TOKEN}\",\"$group_key\":\"company_id\",\"$group_id\":123456789012345678901234567890,\"$set\":{{}}}}]");
    let reply = server.request("POST", "/groups?verbose=1", &[("Content-Type", "application/json")], Some(record.as_bytes()));
    let error = reply.json()["error"].as_str().unwrap().to_owned();
    assert!(error.contains("integer too large to be a group id"), "{error}");
}

#[test]
fn group_key_update_keeps_display_name() {
    let server = TestServer::start(CONFIG);
    let reply = server.post_json("/api/group-keys", &json!({"property": "company_id", "set_up_at": "2021-01-01T00:00:00Z"}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["display_name"], "Company");
    let keys = server.get_json("/api/group-keys");
    assert_eq!(keys["group_keys"][0]["display_name"], "Company");

    let reply = server.post_json("/api/group-keys", &json!({"property": "company_id", "display_name": "Account"}));
    assert_eq!(reply.json()["display_name"], "Account");
    assert_eq!(reply.json()["set_up_at_rfc3339"], "2021-01-01T00:00:00.000Z");
}

#[test]
fn group_keys_reject_client_reserved_names() {
    let server = TestServer::start(CONFIG);
    for property in ["$group", "$insert_id", "mp_lib", "token", "time", ""] {
        let reply = server.post_json("/api/group-keys", &json!({"property": property}));
        assert_eq!(reply.status, 400, "{property}: {}", reply.body);
        assert!(reply.json()["error"].as_str().unwrap().contains("invalid group key"), "{property}: {}", reply.body);
    }
}

fn restart(server: &mut TestServer) {
    server.stop();
    let project = groupscope_server::ProjectConfig::from_toml(CONFIG).unwrap();
    let config = groupscope_server::ServerConfig {
        db: groupscope_server::DbLocation::File(server.dir.path().join("events.db")),
        ..groupscope_server::ServerConfig::new(project)
    };
    server.server = Some(groupscope_server::Server::start(config).unwrap());
}

fn key_names(server: &TestServer) -> Vec<String> {
    let keys = server.get_json("/api/group-keys");
    keys["group_keys"].as_array().unwrap().iter().map(|k| k["property"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn deleted_key_stays_deleted_after_restart() {
    let mut server = TestServer::start(CONFIG);
    send(&server, vec![track_event("before", "u1", "i1", json!({"company_id": "acme"}))]);
    assert_eq!(server.request("DELETE", "/api/group-keys/company_id", &[], None).status, 200);
    send(&server, vec![track_event("during", "u1", "i2", json!({"company_id": "acme"}))]);

    restart(&mut server);
    assert_eq!(key_names(&server), vec!["team_id"], "the config file does not add a deleted key again");
    send(&server, vec![track_event("after restart", "u1", "i3", json!({"company_id": "acme"}))]);
    assert_eq!(event_by_insert_id(&server, "i3")["attribution"]["groups"], json!([]));

    let key = json!({"property": "company_id", "set_up_at": "2020-01-01T00:00:00Z"});
    assert_eq!(server.post_json("/api/group-keys", &key).status, 201);
    assert_eq!(event_by_insert_id(&server, "i1")["attribution"]["groups"], json!([{"key": "company_id", "id": "acme"}]));
    for insert_id in ["i2", "i3"] {
        let event = event_by_insert_id(&server, insert_id);
        assert_eq!(event["attribution"]["groups"], json!([]), "{insert_id} was received while the key was deleted");
        assert_eq!(event["attribution"]["not_attributed"][0]["code"], "key_deleted", "{insert_id}");
    }

    restart(&mut server);
    assert_eq!(key_names(&server), vec!["company_id", "team_id"], "a key added again is configured again");
    send(&server, vec![track_event("later", "u1", "i4", json!({"company_id": "acme"}))]);
    assert_eq!(event_by_insert_id(&server, "i4")["attribution"]["groups"], json!([{"key": "company_id", "id": "acme"}]));
}
