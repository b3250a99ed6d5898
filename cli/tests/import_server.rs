//! Runs the `groupscope` binary against a real groupscope-server on loopback: a 100,000-row
//! file with malformed rows, a server that refuses the token, and a server that is not there.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use groupscope_server::{ProjectConfig, RunningServer, Server, ServerConfig};
use serde_json::{Value, json};

const TOKEN: &str = "csv-import-token";
const ROWS: usize = 100_000;

fn start_server() -> RunningServer {
    let project = ProjectConfig::from_toml(&format!(
        "token = \"{TOKEN}\"\n[[group_keys]]\nproperty = \"company_id\"\ndisplay_name = \"Company\"\n"
    ))
    .expect("valid project config");
    Server::start(ServerConfig::new(project)).expect("groupscope-server failed to start")
}

fn import(file: &Path, server_url: &str, token: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_groupscope"))
        .arg("import-groups")
        .arg(file)
        .args(["--group-key", "company_id", "--token", token, "--api-host", server_url])
        .args(extra)
        .env_remove("GROUPSCOPE_TOKEN")
        .env_remove("GROUPSCOPE_API_HOST")
        .output()
        .expect("failed to run the groupscope binary")
}

/// Returns the JSON body and status of a GET on the server's API.
fn get(server_url: &str, path: &str) -> (u16, Value) {
    let mut response = ureq::get(&format!("{server_url}{path}"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap_or_else(|error| panic!("GET {path} failed: {error}"));
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_string()
        .unwrap_or_else(|error| panic!("reading GET {path} failed: {error}"));
    (status, serde_json::from_str(&body).unwrap_or_else(|error| panic!("GET {path} returned invalid JSON: {error}")))
}

fn group_properties(server_url: &str, id: &str) -> Value {
    let (status, body) = get(server_url, &format!("/api/groups/company_id/{id}"));
    assert_eq!(status, 200, "group {id}: {body}");
    body["profile"]["properties"].clone()
}

/// A malformed row written in place of the good row with the same index, and the reason the
/// import must give for it.
struct BadRow {
    index: usize,
    bytes: &'static [u8],
    reason: &'static str,
}

const BAD_ROWS: &[BadRow] = &[
    BadRow { index: 10, bytes: b"c000010,Extra Ltd,pro,5,1.5,true,,,,surplus\n", reason: "the row has 10 fields but the header has 9 columns" },
    BadRow { index: 20_000, bytes: b"c020000,Short Ltd\n", reason: "the row has 2 fields but the header has 9 columns" },
    BadRow { index: 30_000, bytes: b"c030000,Bad \"Quote\" Inc,pro,5,1.5,true,,,\n", reason: "bad quoting in field 2: a quote inside an unquoted field" },
    BadRow { index: 40_000, bytes: b"c040000,\"Bad \"Quote\",pro,5,1.5,true,,,\n", reason: "bad quoting in field 2: text after the closing quote" },
    BadRow { index: 50_000, bytes: b"c050000,Caf\xE9 Ltd,pro,5,1.5,true,,,\n", reason: "invalid UTF-8 in column \"$name\" at byte 3" },
    BadRow { index: 60_000, bytes: b",Nameless,pro,5,1.5,true,,,\n", reason: "the group id column \"company_id\" is empty" },
    BadRow { index: ROWS - 1, bytes: b"c099999,\"Unclosed,pro,5,1.5,true,,,\n", reason: "bad quoting in field 2: the quoted field is not closed before the end of the file" },
];

/// Writes the test file and returns, for each row index, the line it starts on.
fn write_file(path: &Path) -> Vec<u64> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(b"company_id,$name,plan,seats,arr,active,renewal,regions,notes\n").unwrap();

    let plans = ["free", "pro", "enterprise"];
    let mut lines = Vec::with_capacity(ROWS);
    let mut line = 2;
    for index in 0..ROWS {
        lines.push(line);
        if let Some(bad) = BAD_ROWS.iter().find(|bad| bad.index == index) {
            file.write_all(bad.bytes).unwrap();
            line += 1;
            continue;
        }

        let seats = if index % 7 == 0 { String::new() } else { (index % 500).to_string() };
        let notes = match index % 1000 {
            5 => "\"first line\nsecond line\"",
            999 => "\"Said \"\"hi\"\", then left\"",
            _ => "",
        };
        writeln!(
            file,
            "c{index:06},Company {index},{},{seats},{index}.5,{},2027-01-{:02}T12:00:00+02:00,\"[eu, {}]\",{notes}",
            plans[index % 3],
            index % 2 == 0,
            index % 28 + 1,
            index % 10,
        )
        .unwrap();
        line += 1 + u64::from(notes.contains('\n'));
    }
    file.flush().unwrap();
    lines
}

#[test]
fn import_100k_rows_with_malformed_rows() {
    let server = start_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("companies.csv");
    let lines = write_file(&path);

    // The reference server's ingest of new group profiles slows as profiles accumulate (about
    // 100 rows/s near 100,000 profiles, measured on a debug build on 2 busy cores), so the
    // flush timeout leaves room for that.
    let output = import(&path, &server.url(), TOKEN, &["--flush-timeout", "1200"]);

    let stderr = String::from_utf8_lossy(&output.stderr);
    let good_rows = ROWS - BAD_ROWS.len();
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("{ROWS} rows read, {good_rows} sent, {} rejected", BAD_ROWS.len())),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{good_rows} records acknowledged by the server, 0 dropped, 0 not delivered")),
        "stderr: {stderr}"
    );
    for bad in BAD_ROWS {
        let expected = format!("  line {}: {}", lines[bad.index], bad.reason);
        assert!(stderr.contains(&expected), "missing {expected:?} in stderr: {stderr}");
    }

    let (status, groups) = get(&server.url(), "/api/groups/company_id");
    assert_eq!(status, 200);
    let groups = groups["groups"].as_array().expect("groups list");
    assert_eq!(groups.len(), good_rows);
    assert!(groups.iter().all(|group| group["has_profile"] == json!(true)));

    assert_eq!(
        group_properties(&server.url(), "c000001"),
        json!({"$name": "Company 1", "plan": "pro", "seats": 1, "arr": 1.5, "active": false, "renewal": "2027-01-02T10:00:00", "regions": ["eu", 1]})
    );
    let first = group_properties(&server.url(), "c000000");
    assert_eq!(first.get("seats"), None, "an empty cell must leave the property absent: {first}");
    assert_eq!(first["active"], json!(true));
    assert_eq!(group_properties(&server.url(), "c000005")["notes"], json!("first line\nsecond line"));
    assert_eq!(group_properties(&server.url(), "c000999")["notes"], json!("Said \"hi\", then left"));
    assert_eq!(group_properties(&server.url(), "c099998")["$name"], json!("Company 99998"));

    let mut rejected_ids = BTreeMap::new();
    for bad in BAD_ROWS.iter().filter(|bad| bad.index != 60_000) {
        let id = format!("c{:06}", bad.index);
        let (status, _) = get(&server.url(), &format!("/api/groups/company_id/{id}"));
        rejected_ids.insert(id, status);
    }
    assert!(rejected_ids.values().all(|status| *status == 404), "rejected rows reached the server: {rejected_ids:?}");

    server.shutdown();
}

#[test]
fn import_with_refused_token_reports_drops() {
    let server = start_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("companies.csv");
    std::fs::write(&path, "company_id,plan\nacme,pro\nglobex,free\n").unwrap();

    let output = import(&path, &server.url(), "wrong-token", &["--flush-timeout", "20"]);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("2 rows read, 2 sent, 0 rejected"), "stderr: {stderr}");
    assert!(stderr.contains("0 records acknowledged by the server, 2 dropped"), "stderr: {stderr}");
    assert!(!stderr.contains("wrong-token"), "the token is printed in full: {stderr}");

    let (status, _) = get(&server.url(), "/api/groups/company_id/acme");
    assert_eq!(status, 404);
    server.shutdown();
}

#[test]
fn import_to_absent_server_reports_undelivered() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("companies.csv");
    std::fs::write(&path, "company_id,plan\nacme,pro\n").unwrap();

    let output = import(&path, &url, TOKEN, &["--flush-timeout", "2"]);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("0 records acknowledged by the server, 0 dropped, 1 not delivered"), "stderr: {stderr}");
    assert!(stderr.contains("longer --flush-timeout"), "stderr: {stderr}");
}
