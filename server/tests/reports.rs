//! Reports over real HTTP on a small dataset with known results.

mod common;

use common::{CONFIG, TOKEN, TestServer, now_ms};
use serde_json::{Value, json};

const MINUTE: i64 = 60_000;

/// acme: u1 signs up, invites, upgrades within minutes; u2 signs up.
/// globex: signs up, then upgrades without inviting.
/// initech: signs up; invites 3 days later (outside a 1-day window), upgrades.
/// "both" events belong to acme and globex at once.
fn load(server: &TestServer) -> i64 {
    let base = now_ms() - 4 * 86_400_000;
    let event = |name: &str, user: &str, company: Value, offset: i64, id: &str| {
        json!({"event": name, "properties": {"token": TOKEN, "distinct_id": user, "time": base + offset, "$insert_id": id, "company_id": company}})
    };
    let events = json!([
        event("Signed Up", "u1", json!("acme"), 0, "e1"),
        event("Signed Up", "u2", json!("acme"), MINUTE, "e2"),
        event("Invited", "u1", json!("acme"), 2 * MINUTE, "e3"),
        event("Upgraded", "u1", json!("acme"), 3 * MINUTE, "e4"),
        event("Signed Up", "u3", json!("globex"), 0, "e5"),
        event("Upgraded", "u3", json!("globex"), 5 * MINUTE, "e6"),
        event("Signed Up", "u4", json!("initech"), 0, "e7"),
        event("Invited", "u4", json!("initech"), 3 * 86_400_000, "e8"),
        event("Upgraded", "u4", json!("initech"), 3 * 86_400_000 + MINUTE, "e9"),
        event("Shared", "u5", json!(["acme", "globex"]), 10 * MINUTE, "e10"),
    ]);
    let reply = server.post_form_base64("/track", &events, "&verbose=1");
    assert_eq!(reply.json(), json!({"status": 1, "error": null}));
    let profile = json!([{"$token": TOKEN, "$group_key": "company_id", "$group_id": "umbrella", "$set": {"$name": "Umbrella"}}]);
    server.post_form_base64("/groups", &profile, "");
    base
}

#[test]
fn groups_list_counts_events_and_users() {
    let server = TestServer::start(CONFIG);
    load(&server);
    let groups = server.get_json("/api/groups/company_id")["groups"].as_array().unwrap().clone();
    let summary: Vec<(String, u64, u64, bool)> = groups
        .iter()
        .map(|g| (g["id"].as_str().unwrap().to_owned(), g["event_count"].as_u64().unwrap(), g["unique_users"].as_u64().unwrap(), g["has_profile"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("acme".to_owned(), 5, 3, false),
            ("globex".to_owned(), 3, 2, false),
            ("initech".to_owned(), 3, 1, false),
            ("umbrella".to_owned(), 0, 0, true),
        ]
    );
    assert_eq!(server.get("/api/groups/nope").status, 404);
}

#[test]
fn activity_feed_is_newest_first() {
    let server = TestServer::start(CONFIG);
    load(&server);
    let group = server.get_json("/api/groups/company_id/acme");
    let feed: Vec<&str> = group["activity"].as_array().unwrap().iter().map(|e| e["insert_id"].as_str().unwrap()).collect();
    assert_eq!(feed, vec!["e10", "e4", "e3", "e2", "e1"]);
    assert_eq!(group["event_count"], 5);
    assert_eq!(group["profile"], Value::Null);
    let limited = server.get_json("/api/groups/company_id/acme?limit=2");
    assert_eq!(limited["activity"].as_array().unwrap().len(), 2);
    assert_eq!(server.get("/api/groups/company_id/nobody").status, 404);
}

#[test]
fn uniques_by_group() {
    let server = TestServer::start(CONFIG);
    let base = load(&server);
    let report = server.get_json("/api/reports/uniques?event=Signed%20Up&key=company_id");
    assert_eq!(report["unique_groups"], 3);
    assert_eq!(report["groups"][0], json!({"id": "acme", "events": 2, "unique_users": 2}));

    let report = server.get_json(&format!("/api/reports/uniques?event=Upgraded&key=company_id&from={}&to={}", base, base + 86_400_000));
    assert_eq!(report["unique_groups"], 2, "initech upgraded outside the range");

    let reply = server.get("/api/reports/uniques?key=company_id");
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("missing query parameter event"));
    assert_eq!(server.get("/api/reports/uniques?event=a&key=company_id&from=later").status, 400);
    assert_eq!(server.get("/api/reports/uniques?event=a&key=nokey").status, 404);
}

#[test]
fn most_engaged_groups() {
    let server = TestServer::start(CONFIG);
    load(&server);
    let report = server.get_json("/api/reports/most-engaged?key=company_id");
    let ranking: Vec<(&str, u64)> = report["groups"].as_array().unwrap().iter().map(|g| (g["id"].as_str().unwrap(), g["events"].as_u64().unwrap())).collect();
    assert_eq!(ranking, vec![("acme", 5), ("globex", 3), ("initech", 3)]);
    let top = server.get_json("/api/reports/most-engaged?key=company_id&limit=1&event=Signed%20Up");
    assert_eq!(top["groups"], json!([{"id": "acme", "events": 2, "unique_users": 2}]));
}

#[test]
fn funnel_by_group() {
    let server = TestServer::start(CONFIG);
    load(&server);
    let report = server.get_json("/api/reports/funnel?key=company_id&steps=Signed%20Up,Invited,Upgraded&window=1d");
    assert_eq!(
        report["steps"],
        json!([{"event": "Signed Up", "groups": 3}, {"event": "Invited", "groups": 1}, {"event": "Upgraded", "groups": 1}])
    );
    assert_eq!(report["converted"], json!(["acme"]));

    let wide = server.get_json("/api/reports/funnel?key=company_id&steps=Signed%20Up,Invited,Upgraded&window=7d");
    assert_eq!(wide["converted"], json!(["acme", "initech"]));

    let two = server.get_json("/api/reports/funnel?key=company_id&steps=Signed%20Up,Upgraded");
    assert_eq!(two["steps"][1]["groups"], 3);

    let reply = server.get("/api/reports/funnel?key=company_id&steps=a,,b");
    assert_eq!(reply.status, 400);
    let reply = server.get("/api/reports/funnel?key=company_id&steps=a&window=soon");
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("\"soon\""));
}

#[test]
fn events_api_filters() {
    let server = TestServer::start(CONFIG);
    load(&server);
    assert_eq!(server.get_json("/api/events?event=Signed%20Up")["events"].as_array().unwrap().len(), 4);
    assert_eq!(server.get_json("/api/events?distinct_id=u1")["events"].as_array().unwrap().len(), 3);
    assert_eq!(server.get_json("/api/events?group_key=company_id&group_id=globex")["events"].as_array().unwrap().len(), 3);
    assert_eq!(server.get_json("/api/events?limit=2")["events"].as_array().unwrap().len(), 2);
    assert_eq!(server.get("/api/events?limit=0").status, 400);
    assert_eq!(server.get("/api/events?group_key=company_id").status, 400);

    let first = server.get_json("/api/events?limit=1")["events"][0].clone();
    let by_id = server.get_json(&format!("/api/events/{}", first["id"]));
    assert_eq!(by_id["insert_id"], first["insert_id"]);
    assert_eq!(server.get("/api/events/999999").status, 404);
    assert_eq!(server.get("/api/events/abc").status, 400);
}

#[test]
fn reset_deletes_data_but_keeps_keys() {
    let server = TestServer::start(CONFIG);
    load(&server);
    assert_eq!(server.request("DELETE", "/api/data", &[], None).status, 200);
    assert!(server.events().is_empty());
    assert_eq!(server.get_json("/api/groups/company_id")["groups"], json!([]));
    assert_eq!(server.get_json("/api/group-keys")["group_keys"].as_array().unwrap().len(), 2);
}
