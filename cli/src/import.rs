//! The `import-groups` command: reads a CSV file and sends one group profile `$set` per valid
//! row through a groupscope [`Client`], so delivery, retries and drop accounting are the core's.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use groupscope::{Client, Config, DropReason, DropReport};
use serde_json::{Value, json};

use crate::progress::{Counts, Progress};
use crate::rows::{CsvRows, GroupRow, Rejection, RowOutcome};
use crate::summary::Summary;

/// Records waiting in the client's queue above which reading pauses until the worker catches
/// up. It keeps a large file from filling the queue, whose oldest records would be evicted.
const MAX_QUEUED_RECORDS: u64 = 10_000;

/// Rows between two checks of the client's queue against [`MAX_QUEUED_RECORDS`].
const QUEUE_CHECK_ROWS: u64 = 1000;

/// Rows between two reads of the client's delivery counter for the progress display.
const PROGRESS_ROWS: u64 = 250;

/// How long the client waits for a batch to fill before it sends a partial one. Zero sends as
/// soon as records are queued.
///
/// NOTE: with 200 ms, imports into a debug build of groupscope-server on 2 cores measured about
/// 260 rows/s, and about 2,600 rows/s with zero. The cause in the worker is not known.
const FLUSH_INTERVAL: Duration = Duration::ZERO;

/// Settings of one import, from the command line.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The CSV file.
    pub path: PathBuf,
    /// The group key of every profile, for example `company_id`.
    pub group_key: String,
    /// The column holding the group id; defaults to the column named like the group key.
    pub id_column: Option<String>,
    /// The project token.
    pub token: String,
    /// The ingestion host, scheme included.
    pub api_host: String,
    /// Records per `/groups` request, 1 to 50.
    pub batch_size: usize,
    /// How long to wait at the end for the server to acknowledge every record.
    pub flush_timeout: Duration,
}

/// An error that stops the import: the file cannot be read, its header is unusable, or the
/// client cannot start.
#[derive(Debug)]
pub struct ImportError(pub String);

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImportError {}

/// Reads the whole file. The file is held in memory so each record's raw bytes can be checked
/// for quoting.
///
/// NOTE: the whole file is read at once, so the import needs about as much memory as the file
/// is large.
pub fn read_file(path: &PathBuf) -> Result<Vec<u8>, ImportError> {
    std::fs::read(path).map_err(|error| {
        ImportError(format!("failed to read {}: {error}; check the path and its permissions", path.display()))
    })
}

/// Builds the `/groups` record for one row, as the client sends it, with the token redacted.
pub fn dry_run_record(group_key: &str, row: &GroupRow, token: &str) -> Value {
    json!({
        "$token": groupscope::protocol::redact_token(token),
        "$group_key": group_key,
        "$group_id": row.group_id,
        "$set": row.properties,
    })
}

/// Prints the record of every valid row to `out` as one JSON line, and returns the summary.
/// Sends nothing.
///
/// # Errors
/// An [`ImportError`] when the file or its header cannot be read, or `out` cannot be written.
pub fn dry_run(options: &ImportOptions, out: &mut dyn Write) -> Result<Summary, ImportError> {
    let data = read_file(&options.path)?;
    let rows = open_rows(&data, options)?;
    let mut summary = Summary::default();

    for outcome in rows {
        summary.rows_read += 1;
        match outcome {
            RowOutcome::Row(row) => {
                let record = dry_run_record(&options.group_key, &row, &options.token);
                writeln!(out, "{record}").map_err(|error| ImportError(format!("failed to write the output: {error}")))?;
                summary.rows_valid += 1;
            }
            RowOutcome::Rejected(rejection) => summary.rejected.push(rejection),
        }
    }

    Ok(summary)
}

/// Sends a `$set` for every valid row, waits up to `flush_timeout` for delivery and returns the
/// summary.
///
/// # Errors
/// An [`ImportError`] when the file or its header cannot be read, or the client rejects its
/// configuration (for example an `api_host` without a scheme).
pub fn import(options: &ImportOptions) -> Result<Summary, ImportError> {
    let data = read_file(&options.path)?;
    let rows = open_rows(&data, options)?;

    let drops: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let client = start_client(options, Arc::clone(&drops))?;

    let started = Instant::now();
    let mut progress = Progress::start(rows.total_bytes());
    let mut summary = Summary::default();

    let mut acknowledged = 0;
    let mut rows = rows;
    while let Some(outcome) = rows.next() {
        summary.rows_read += 1;
        match outcome {
            RowOutcome::Row(row) => match send_row(&client, &options.group_key, &row) {
                Ok(()) => summary.rows_valid += 1,
                Err(rejection) => reject(&progress, &mut summary, rejection),
            },
            RowOutcome::Rejected(rejection) => reject(&progress, &mut summary, rejection),
        }

        if summary.rows_read % QUEUE_CHECK_ROWS == 0 && !wait_for_queue(&client, options.flush_timeout) {
            summary.stopped_at_line = Some(rows.next_line());
            progress.println(&format!(
                "stopping: the server at {} acknowledged no record for {} s",
                options.api_host,
                options.flush_timeout.as_secs()
            ));
            break;
        }
        if summary.rows_read % PROGRESS_ROWS == 0 {
            acknowledged = client.stats().delivered;
        }
        progress.update(Counts {
            bytes_read: rows.bytes_read(),
            rows_read: summary.rows_read,
            rows_rejected: summary.rejected.len() as u64,
            acknowledged,
        });
    }
    progress.finish();
    summary.read_time = started.elapsed();

    let queued = client.stats().queued;
    if queued > 0 {
        eprintln!(
            "waiting up to {} s for the server to acknowledge {queued} queued records",
            options.flush_timeout.as_secs()
        );
    }
    summary.flushed = client.shutdown(options.flush_timeout);
    summary.total_time = started.elapsed();

    let stats = client.stats();
    summary.delivered = stats.delivered;
    summary.undelivered = stats.queued + stats.dropped_at_shutdown;
    summary.drops = drops.lock().map(|drops| drops.clone()).unwrap_or_default();

    Ok(summary)
}

fn open_rows<'a>(data: &'a [u8], options: &ImportOptions) -> Result<CsvRows<'a>, ImportError> {
    CsvRows::new(data, &options.group_key, options.id_column.as_deref())
        .map_err(|error| ImportError(format!("cannot import {}: {error}", options.path.display())))
}

/// Starts a client that counts every drop by its reason into `drops`.
fn start_client(options: &ImportOptions, drops: Arc<Mutex<BTreeMap<String, u64>>>) -> Result<Client, ImportError> {
    let mut config = Config::new(options.token.clone());
    config.api_host = options.api_host.clone();
    config.batch_size = options.batch_size;
    config.flush_interval = FLUSH_INTERVAL;
    config.on_drop = Some(Arc::new(move |report: &DropReport| {
        // Records still in memory when the import stops are counted as not delivered, from
        // `Stats::dropped_at_shutdown`, because a longer --flush-timeout would deliver them.
        if report.reason == DropReason::ShutDown {
            return;
        }
        log::warn!("{} group profile records were dropped: {}", report.count, describe_drop(&report.reason));
        if let Ok(mut drops) = drops.lock() {
            *drops.entry(describe_drop(&report.reason)).or_default() += report.count;
        }
    }));

    Client::new(config).map_err(|error| ImportError(format!("cannot start the groupscope client: {error}")))
}

/// Enqueues the `$set` of one row. The core validates the group id and the properties; a value
/// it rejects turns the row into a rejection with the core's message.
fn send_row(client: &Client, group_key: &str, row: &GroupRow) -> Result<(), Rejection> {
    let to_rejection = |error: groupscope::Error| Rejection {
        line: row.line,
        reason: error.to_string(),
    };

    let group = client.group(group_key, row.group_id.as_str()).map_err(to_rejection)?;
    group.set(Value::Object(row.properties.clone())).map_err(to_rejection)
}

fn reject(progress: &Progress, summary: &mut Summary, rejection: Rejection) {
    progress.println(&format!("line {}: rejected: {}", rejection.line, rejection.reason));
    summary.rejected.push(rejection);
}

/// Pauses reading while the client's queue is above [`MAX_QUEUED_RECORDS`]. Returns `false`
/// when the queue did not shrink for `stall_timeout`, because the server is unreachable or
/// keeps failing.
fn wait_for_queue(client: &Client, stall_timeout: Duration) -> bool {
    let mut queued = client.stats().queued;
    let mut last_change = Instant::now();

    while queued > MAX_QUEUED_RECORDS {
        if last_change.elapsed() > stall_timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));

        let now_queued = client.stats().queued;
        if now_queued < queued {
            last_change = Instant::now();
        }
        queued = now_queued;
    }
    true
}

/// Describes a drop reason in the words of the summary, with what to do about it.
pub fn describe_drop(reason: &DropReason) -> String {
    match reason {
        DropReason::QueueFull => "the client's queue was full".to_owned(),
        DropReason::TooLarge => "a record was larger than the server accepts; remove long values from that row".to_owned(),
        DropReason::Rejected { status, message } => format!("the server rejected them (HTTP {status}: {message})"),
        DropReason::Unauthorized { status } => {
            format!("the server refused the credentials (HTTP {status}); check --token")
        }
        DropReason::StoreReset => "the client's store was reset".to_owned(),
        DropReason::OptedOut => "the client was opted out".to_owned(),
        DropReason::StorageUnavailable => "the client's store was unavailable".to_owned(),
        DropReason::ShutDown => "the import stopped before the server acknowledged them; use a longer --flush-timeout".to_owned(),
        other => format!("{other:?}"),
    }
}
