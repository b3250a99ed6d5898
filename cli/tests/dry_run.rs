//! Runs the `groupscope` binary in `--dry-run` mode and on files it cannot import; nothing here
//! needs a server.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn groupscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_groupscope"))
        .args(args)
        .env_remove("GROUPSCOPE_TOKEN")
        .env_remove("GROUPSCOPE_API_HOST")
        .output()
        .expect("failed to run the groupscope binary")
}

fn write_csv(dir: &Path, bytes: &[u8]) -> String {
    let path = dir.join("groups.csv");
    std::fs::write(&path, bytes).expect("failed to write the CSV file");
    path.to_str().expect("UTF-8 temp path").to_owned()
}

#[test]
fn dry_run_prints_records_and_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(
        dir.path(),
        b"company_id,$name,seats,active,renewal,tags\n\
          acme,Acme Corp,120,true,2027-01-31T12:00:00+01:00,\"[eu, us]\"\n\
          globex,Globex,,FALSE,,\n\
          initech,Initech,40\n\
          umbrella,Umbrella \"Corp\",5,true,,\n",
    );

    let output = groupscope(&["import-groups", &file, "--group-key", "company_id", "--token", "secret-project-token", "--dry-run"]);

    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let records: Vec<Value> = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(records.len(), 2, "stdout: {stdout}");
    assert_eq!(records[0]["$group_key"], json!("company_id"));
    assert_eq!(records[0]["$group_id"], json!("acme"));
    assert_eq!(
        records[0]["$set"],
        json!({"$name": "Acme Corp", "seats": 120, "active": true, "renewal": "2027-01-31T11:00:00", "tags": ["eu", "us"]})
    );
    assert_eq!(records[1]["$set"], json!({"$name": "Globex", "active": false}));
    assert!(!stdout.contains("secret-project-token"), "the token is printed in full: {stdout}");

    assert!(stderr.contains("dry run: 4 rows read, 2 would be sent, 2 rejected"), "stderr: {stderr}");
    assert!(stderr.contains("line 4: the row has 3 fields but the header has 6 columns"), "stderr: {stderr}");
    assert!(stderr.contains("line 5: bad quoting in field 2"), "stderr: {stderr}");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn dry_run_clean_file_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), b"account,plan\nacme,pro\n");

    let output = groupscope(&["import-groups", &file, "--group-key", "company_id", "--id-column", "account", "--dry-run"]);

    assert_eq!(output.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let record: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(record["$group_id"], json!("acme"));
    assert_eq!(record["$set"], json!({"plan": "pro"}));
}

#[test]
fn missing_id_column_exits_two() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), b"account,plan\nacme,pro\n");

    let output = groupscope(&["import-groups", &file, "--group-key", "company_id", "--dry-run"]);

    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("the group id column \"company_id\" is not in the header (columns: account, plan)"), "stderr: {stderr}");
    assert!(stderr.contains("--id-column"), "stderr: {stderr}");
}

#[test]
fn missing_file_exits_two() {
    let output = groupscope(&["import-groups", "/nonexistent/groups.csv", "--group-key", "company_id", "--dry-run"]);

    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("failed to read /nonexistent/groups.csv"), "stderr: {stderr}");
}

#[test]
fn import_requires_token_and_api_host() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), b"company_id,plan\nacme,pro\n");

    let output = groupscope(&["import-groups", &file, "--group-key", "company_id"]);

    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("--token"), "stderr: {stderr}");
    assert!(stderr.contains("--api-host"), "stderr: {stderr}");
}

#[test]
fn api_host_without_scheme_exits_two() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), b"company_id,plan\nacme,pro\n");

    let output = groupscope(&["import-groups", &file, "--group-key", "company_id", "--token", "t", "--api-host", "127.0.0.1:9"]);

    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("cannot start the groupscope client: invalid configuration: api_host \"127.0.0.1:9\""), "stderr: {stderr}");
}
