//! Child process of the kill -9 loop: tracks events into a durable queue until it is killed.
//!
//! Usage: `reliability-tracker API_HOST DATA_DIR LOG_FILE RUN`
//!
//! The log file is the record of what the API acknowledged. Each line is appended with one
//! `write` call on a file opened for appending, so a line is either whole or absent after
//! `SIGKILL`:
//! - `R <run> <pid>` when the run starts,
//! - `g <group id>` before `set_group("company_id", [id])` and `G <group id>` after it returned `Ok`,
//! - `T <insert_id> <unix ms>` after `track` returned `Ok(insert_id)`,
//! - `F` after a `flush` returned `true`, so every event logged before it was acknowledged
//!   by the server.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use groupscope::{Client, TrackOptions};
use groupscope_reliability::client_config;
use serde_json::json;

/// Events between two `flush` calls.
const EVENTS_PER_FLUSH: u64 = 100;

/// Events between two group changes.
const EVENTS_PER_GROUP_CHANGE: u64 = 25;

fn append(log: &mut File, line: &str) {
    if let Err(error) = log.write_all(line.as_bytes()) {
        eprintln!("reliability-tracker: could not append to the log: {error}");
        std::process::exit(3);
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [api_host, data_dir, log_path, run] = args.as_slice() else {
        eprintln!("usage: reliability-tracker API_HOST DATA_DIR LOG_FILE RUN");
        return ExitCode::from(2);
    };
    let mut log = match OpenOptions::new().create(true).append(true).open(log_path) {
        Ok(log) => log,
        Err(error) => {
            eprintln!("reliability-tracker: could not open the log {log_path}: {error}");
            return ExitCode::from(2);
        }
    };

    let mut config = client_config(api_host, Some(&PathBuf::from(data_dir)));
    config.flush_interval = Duration::from_millis(100);
    let client = match Client::new(config) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("reliability-tracker: could not start the client: {error}");
            return ExitCode::from(1);
        }
    };
    append(&mut log, &format!("R {run} {}\n", std::process::id()));

    for seq in 0u64.. {
        if seq % EVENTS_PER_GROUP_CHANGE == 0 {
            let group_id = format!("c-{run}-{seq}");
            append(&mut log, &format!("g {group_id}\n"));
            match client.set_group("company_id", [group_id.as_str()]) {
                Ok(()) => append(&mut log, &format!("G {group_id}\n")),
                Err(error) => eprintln!("reliability-tracker: set_group failed: {error}"),
            }
        }

        match client.track(
            "Tick",
            json!({"run": run, "seq": seq}),
            TrackOptions::default(),
        ) {
            Ok(insert_id) => append(&mut log, &format!("T {insert_id} {}\n", now_ms())),
            Err(error) => eprintln!("reliability-tracker: track failed: {error}"),
        }

        if seq % EVENTS_PER_FLUSH == EVENTS_PER_FLUSH - 1 && client.flush(Duration::from_secs(5)) {
            append(&mut log, "F\n");
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    ExitCode::SUCCESS
}
