//! Kill -9 loop: a child process tracks into a durable queue and is killed with `SIGKILL` at
//! random moments, then restarted on the same data directory.
//!
//! The durability points checked are the ones the core documents:
//! - a group change is on disk when `set_group` returns;
//! - an event is on disk when the worker's append transaction commits, a few milliseconds
//!   after `track` returns, and at the latest when a `flush` covering it returns.
//!
//! The test asserts that every event logged before a successful `flush` of its run, and every
//! event tracked more than [`DURABILITY_WINDOW_MS`] before its kill, is at the server exactly
//! once after a final client drained the queue. Events tracked inside the window may be lost;
//! their number is reported.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use groupscope::Client;
use groupscope_reliability::{Figures, Ledger, TestServer, client_config, scaled};
use serde_json::json;

/// How long after `track` returns an event may still be lost to `SIGKILL`, in milliseconds.
/// The worker appends received records before it sends its next request, and loopback
/// requests take a few milliseconds, so one second is a generous bound.
const DURABILITY_WINDOW_MS: u128 = 1000;

/// One run of the child, as read back from the log.
#[derive(Debug, Default)]
struct Run {
    /// `(insert_id, unix ms)` of every acknowledged event.
    tracked: Vec<(String, u128)>,
    /// How many of `tracked` were logged before the last successful flush.
    flushed: usize,
    /// When the parent sent `SIGKILL`, in unix ms.
    killed_at_ms: u128,
}

/// Group changes read back from the log, in order: `(group id, acknowledged)`.
type GroupChanges = Vec<(String, bool)>;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn read_log(path: &Path, kill_times: &[u128]) -> (Vec<Run>, GroupChanges) {
    let text = std::fs::read_to_string(path).expect("the child's log can be read");
    let mut runs: Vec<Run> = Vec::new();
    let mut groups: GroupChanges = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["R", run, _pid] => {
                let index: usize = run.parse().expect("run numbers are integers");
                while runs.len() <= index {
                    runs.push(Run::default());
                }
                runs[index].killed_at_ms = kill_times[index];
            }
            ["T", insert_id, at] => {
                let run = runs.last_mut().expect("a T line follows an R line");
                run.tracked.push((
                    (*insert_id).to_owned(),
                    at.parse().expect("T times are integers"),
                ));
            }
            ["F"] => {
                let run = runs.last_mut().expect("an F line follows an R line");
                run.flushed = run.tracked.len();
            }
            ["g", id] => groups.push(((*id).to_owned(), false)),
            ["G", id] => {
                let last = groups.last_mut().expect("a G line follows its g line");
                assert_eq!(
                    last.0, *id,
                    "the G line names the group of the g line before it"
                );
                last.1 = true;
            }
            _ => panic!("unexpected line in the child's log: {line:?}"),
        }
    }
    (runs, groups)
}

#[test]
fn kill_loop_loses_nothing_durable() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let log_path = dir.path().join("acknowledged.log");
    let kills = scaled(20, 100);
    let mut rng = fastrand::Rng::new();

    let mut kill_times = Vec::new();
    for run in 0..kills {
        // Every third run meets a short outage, so the queue contains records when it is killed.
        if run % 3 == 1 {
            server.script_faults(
                json!({"endpoint": "track", "responses": vec![json!({"status": 503}); 20]}),
            );
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_reliability-tracker"))
            .args([
                &server.url(),
                data_dir.to_str().unwrap(),
                log_path.to_str().unwrap(),
                &run.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the tracker child starts");
        std::thread::sleep(Duration::from_millis(rng.u64(100..600)));
        kill_times.push(now_ms());
        child.kill().expect("SIGKILL reaches the child");
        let status = child.wait().expect("the killed child can be reaped");
        assert!(
            !status.success(),
            "run {run}: the child exited by itself with {status}"
        );
    }
    server.clear_faults();

    let (runs, groups) = read_log(&log_path, &kill_times);
    assert!(
        runs.len() >= kills * 9 / 10,
        "only {} of {kills} runs started before their kill",
        runs.len()
    );

    let ledger = Ledger::new();
    let mut config = client_config(&server.url(), Some(&data_dir));
    config.on_drop = Some(ledger.drop_callback());
    let client =
        Client::new(config).expect("a client opens the data directory the children were killed on");
    let persisted_groups = client.groups();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !client.flush(Duration::from_secs(10)) {
        assert!(
            Instant::now() < deadline,
            "the final client could not drain the queue in 120 s: {:?}",
            client.stats()
        );
    }
    let stats = client.stats();
    assert!(
        client.shutdown(Duration::from_secs(10)),
        "the final client shut down with records left"
    );

    assert_eq!(
        stats.store_resets, 0,
        "the store was found corrupt after a kill"
    );
    assert!(
        ledger.reports().is_empty(),
        "records were dropped: {:?}",
        ledger.reports()
    );

    let stored = server.insert_id_counts();
    let mut figures = Figures::new("kill -9 loop");
    let mut lost_durable = Vec::new();
    let mut lost_flushed = Vec::new();
    let mut lost_in_window = 0u64;
    let mut oldest_lost_age_ms = 0u128;
    let mut duplicated = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        for (position, (insert_id, tracked_at)) in run.tracked.iter().enumerate() {
            figures.tracked += 1;
            match stored.get(insert_id).copied().unwrap_or(0) {
                0 if position < run.flushed => lost_flushed.push((index, insert_id.clone())),
                0 if *tracked_at + DURABILITY_WINDOW_MS < run.killed_at_ms => {
                    lost_durable.push((index, insert_id.clone()))
                }
                0 => {
                    lost_in_window += 1;
                    oldest_lost_age_ms =
                        oldest_lost_age_ms.max(run.killed_at_ms.saturating_sub(*tracked_at));
                }
                1 => figures.delivered += 1,
                _ => {
                    figures.delivered += 1;
                    duplicated.push(insert_id.clone());
                }
            }
        }
    }
    figures.lost = (lost_flushed.len() + lost_durable.len()) as u64;
    figures.duplicated = duplicated.len() as u64;
    figures.resent = server
        .accepted_event_records()
        .saturating_sub(server.event_count());
    figures.retries = stats.retried;
    figures = figures
        .with("kills", kills)
        .with("lost_within_durability_window", lost_in_window)
        .with("oldest_lost_age_ms", oldest_lost_age_ms)
        .with("durability_window_ms", DURABILITY_WINDOW_MS);
    figures.report();

    assert!(
        lost_flushed.is_empty(),
        "{} events logged before a successful flush are not at the server, for example {:?}",
        lost_flushed.len(),
        &lost_flushed[..lost_flushed.len().min(5)]
    );
    assert!(
        lost_durable.is_empty(),
        "{} events tracked more than {DURABILITY_WINDOW_MS} ms before their kill are not at the server, for example {:?}",
        lost_durable.len(),
        &lost_durable[..lost_durable.len().min(5)]
    );
    assert!(
        duplicated.is_empty(),
        "{} events are stored twice after deduplication: {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(5)]
    );
    assert!(
        figures.tracked > 0,
        "the children tracked nothing before their kills"
    );

    let last_acknowledged = groups
        .iter()
        .rposition(|(_, acknowledged)| *acknowledged)
        .expect("at least one set_group returned");
    let allowed: Vec<&str> = groups[last_acknowledged..]
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    let persisted: Vec<String> = persisted_groups
        .get("company_id")
        .map(|ids| ids.iter().map(|id| id.as_str().to_owned()).collect())
        .unwrap_or_default();
    assert_eq!(
        persisted.len(),
        1,
        "the persisted company_id holds {persisted:?}, expected one id of {allowed:?}"
    );
    assert!(
        allowed.contains(&persisted[0].as_str()),
        "the persisted company_id is {persisted:?}; the last acknowledged set_group set {:?} (later attempts: {:?})",
        allowed[0],
        &allowed[1..]
    );
}
