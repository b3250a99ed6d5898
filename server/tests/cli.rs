//! The `groupscope-server` binary: `serve` prints its URL first, and `check` reports
//! attribution offline.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::{TestServer, track_event};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_groupscope-server");

#[test]
fn serve_prints_url_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("project.toml");
    std::fs::write(&config, "token = \"t\"\n[[group_keys]]\nproperty = \"company_id\"\nset_up_at = \"2020-01-01T00:00:00Z\"\n").unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("db.sqlite"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
    let keys = agent.get(format!("{url}/api/group-keys")).call().unwrap().body_mut().read_to_string().unwrap();
    assert!(keys.contains("\"company_id\""), "{keys}");

    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn serve_reports_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("project.toml");
    std::fs::write(&config, "max_group_keys = 0\n").unwrap();
    let output = Command::new(BIN).args(["serve", "--listen", "127.0.0.1:0", "--config"]).arg(&config).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_group_keys must be at least 1"), "{stderr}");
    assert_eq!(stderr.matches("max_group_keys must be at least 1").count(), 1, "printed once: {stderr}");
}

#[test]
fn check_prints_summary_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("project.toml");
    std::fs::write(
        &config,
        "[[group_keys]]\nproperty = \"company_id\"\ndisplay_name = \"Company\"\nset_up_at = \"2026-01-01T00:00:00Z\"\n",
    )
    .unwrap();
    let events = dir.path().join("events.jsonl");
    let mut file = std::fs::File::create(&events).unwrap();
    writeln!(file, r#"{{"event":"a","properties":{{"company_id":"acme","distinct_id":"u1"}},"received_at":"2026-02-01T00:00:00Z"}}"#).unwrap();
    writeln!(file, r#"{{"event":"b","properties":{{"company_id":"acme","distinct_id":"u2"}},"received_at":"2025-12-01T00:00:00Z"}}"#).unwrap();
    writeln!(file, r#"{{"event":"c","properties":{{"company_id":5}},"received_at":"2026-02-01T00:00:00Z"}}"#).unwrap();
    writeln!(file, r#"{{"event":"d","properties":{{"company_id":false}},"received_at":"2026-02-01T00:00:00Z"}}"#).unwrap();
    drop(file);

    let output = Command::new(BIN).arg("check").arg(&events).arg("--config").arg(&config).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("Checked 4 events"), "{text}");
    assert!(text.contains("attributed:              2 events to 2 groups"), "{text}");
    assert!(text.contains("not attributed:          2 (before_set_up: 1, wrong_type: 1)"), "{text}");
    assert!(text.contains("line 2: \"b\" distinct_id \"u2\": company_id before_set_up"), "{text}");
    assert!(text.contains("line 3: \"c\""), "{text}");

    let output = Command::new(BIN).arg("check").arg(&events).args(["--format", "json", "--config"]).arg(&config).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["events"], 4);
    assert_eq!(report["keys"][0]["attributed_events"], 2);
    assert_eq!(report["keys"][0]["not_attributed"]["before_set_up"], 1);
    assert_eq!(report["warnings"][0]["code"], "integer_id");
    assert_eq!(report["not_attributed"].as_array().unwrap().len(), 2);
}

#[test]
fn check_reports_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("project.toml");
    std::fs::write(&config, "[[group_keys]]\nproperty = \"company_id\"\n").unwrap();
    let output = Command::new(BIN).args(["check", "/nonexistent/events.jsonl", "--config"]).arg(&config).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("failed to open /nonexistent/events.jsonl"));
}

#[test]
fn check_agrees_with_server_on_exported_events() {
    let toml = "token = \"test-token\"\n[[group_keys]]\nproperty = \"company_id\"\n";
    let mut server = TestServer::start(toml);
    let reply = server.post_form_base64("/track", &json!([track_event("a", "u1", "i1", json!({"company_id": "acme"}))]), "");
    assert_eq!(reply.body, "1");
    let events = server.events();
    assert_eq!(events[0]["attribution"]["groups"], json!([{"key": "company_id", "id": "acme"}]));
    server.stop();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("project.toml");
    std::fs::write(&config, toml).unwrap();
    let jsonl = dir.path().join("events.jsonl");
    std::fs::write(&jsonl, format!("{}\n", events[0])).unwrap();
    // A check running after the export must not count the key as set up at the check time.
    std::thread::sleep(std::time::Duration::from_millis(5));

    let output = Command::new(BIN).arg("check").arg(&jsonl).args(["--format", "json", "--config"]).arg(&config).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["keys"][0]["attributed_events"], 1, "{report}");
    assert_eq!(report["keys"][0]["set_up_at_source"], "before_every_event");
    assert_eq!(report["not_attributed"], json!([]));

    let output = Command::new(BIN).arg("check").arg(&jsonl).arg("--config").arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("counts as set up before every event"), "{text}");

    let db = server.dir.path().join("events.db");
    let output = Command::new(BIN).arg("check").arg(&jsonl).args(["--format", "json", "--db"]).arg(&db).arg("--config").arg(&config).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["keys"][0]["set_up_at_source"], "database");
    assert_eq!(report["keys"][0]["attributed_events"], 1, "{report}");
}
