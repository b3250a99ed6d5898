//! Drop reports: the core's worker thread queues them, and a thread attached to the
//! interpreter delivers them to the Python `on_drop` callback.
//!
//! The core calls [`groupscope::DropCallback`] on its worker thread, which never attaches to
//! Python. [`QueuedDrops`] stores each report in a bounded lock-free queue, and
//! [`QueuedDrops::deliver`] calls the Python callback from the next `Client` method call on any
//! thread (including `flush`, `shutdown` and `stats`). Reports past the queue capacity are
//! counted and delivered as one report with reason `"unreported"` and no `$insert_id`s.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;
use groupscope::{DropReason, DropReport as CoreDropReport};
use pyo3::prelude::*;

/// Maximum drop reports waiting for the Python callback.
const QUEUE_CAPACITY: usize = 10_000;

/// Records dropped together for one reason, as passed to the `on_drop` callback.
#[pyclass(module = "groupscope._native", name = "DropReport", frozen, get_all)]
pub struct DropReport {
    /// Why the records were dropped: `"queue_full"`, `"too_large"`, `"rejected"`,
    /// `"unauthorized"`, `"store_reset"`, `"opted_out"`, `"storage_unavailable"`,
    /// `"shut_down"`, or `"unreported"` for reports that overflowed the binding's queue.
    reason: String,
    /// How many records were dropped.
    count: u64,
    /// The `$insert_id`s of the dropped records that carry one.
    insert_ids: Vec<String>,
    /// The HTTP status for `"rejected"` and `"unauthorized"`.
    status: Option<u16>,
    /// The server's message for `"rejected"`.
    message: Option<String>,
}

#[pymethods]
impl DropReport {
    fn __repr__(&self) -> String {
        format!(
            "DropReport(reason={:?}, count={}, insert_ids=<{} ids>, status={:?})",
            self.reason,
            self.count,
            self.insert_ids.len(),
            self.status
        )
    }
}

impl DropReport {
    fn from_core(report: CoreDropReport) -> Self {
        let (reason, status, message) = match report.reason {
            DropReason::QueueFull => ("queue_full", None, None),
            DropReason::TooLarge => ("too_large", None, None),
            DropReason::Rejected { status, message } => ("rejected", Some(status), Some(message)),
            DropReason::Unauthorized { status } => ("unauthorized", Some(status), None),
            DropReason::StoreReset => ("store_reset", None, None),
            DropReason::OptedOut => ("opted_out", None, None),
            DropReason::StorageUnavailable => ("storage_unavailable", None, None),
            DropReason::ShutDown => ("shut_down", None, None),
            // `DropReason` is `#[non_exhaustive]`; a reason added later keeps its debug name.
            other => return DropReport::unnamed(format!("{other:?}"), report.count, report.insert_ids),
        };
        DropReport {
            reason: reason.to_owned(),
            count: report.count,
            insert_ids: report.insert_ids,
            status,
            message,
        }
    }

    fn unnamed(reason: String, count: u64, insert_ids: Vec<String>) -> Self {
        DropReport {
            reason,
            count,
            insert_ids,
            status: None,
            message: None,
        }
    }
}

/// The core's drop callback: queues reports for the Python callback.
pub struct QueuedDrops {
    queue: ArrayQueue<CoreDropReport>,
    overflowed_records: AtomicU64,
    pending: AtomicBool,
}

impl QueuedDrops {
    /// Creates an empty queue.
    pub fn new() -> Self {
        QueuedDrops {
            queue: ArrayQueue::new(QUEUE_CAPACITY),
            overflowed_records: AtomicU64::new(0),
            pending: AtomicBool::new(false),
        }
    }

    /// Removes every queued report without delivering it.
    pub fn discard(&self) {
        while self.queue.pop().is_some() {}
        self.overflowed_records.store(0, Ordering::Relaxed);
        self.pending.store(false, Ordering::Release);
    }

    /// Calls `callback` once per queued report. Cheap when nothing is queued.
    ///
    /// An exception raised by the callback is logged to the `groupscope` logger and does not
    /// reach the caller of the `Client` method that delivered the report.
    pub fn deliver(&self, py: Python<'_>, callback: &Py<PyAny>) {
        if !self.pending.swap(false, Ordering::Acquire) {
            return;
        }

        let mut reports = Vec::new();
        while let Some(report) = self.queue.pop() {
            reports.push(DropReport::from_core(report));
        }
        let overflowed = self.overflowed_records.swap(0, Ordering::Relaxed);
        if overflowed > 0 {
            reports.push(DropReport::unnamed("unreported".to_owned(), overflowed, Vec::new()));
        }

        for report in reports {
            if let Err(error) = callback.call1(py, (report,)) {
                log_callback_error(py, error);
            }
        }
    }
}

fn log_callback_error(py: Python<'_>, error: PyErr) {
    let logged = py.import("logging").and_then(|logging| {
        let logger = logging.call_method1("getLogger", ("groupscope",))?;
        let keywords = pyo3::types::PyDict::new(py);
        keywords.set_item("exc_info", error.value(py))?;
        logger.call_method("error", ("the on_drop callback raised an exception",), Some(&keywords))
    });
    if let Err(logging_error) = logged {
        logging_error.write_unraisable(py, None);
    }
}

impl groupscope::DropCallback for QueuedDrops {
    fn on_drop(&self, report: &CoreDropReport) {
        if self.queue.push(report.clone()).is_err() {
            self.overflowed_records.fetch_add(report.count, Ordering::Relaxed);
        }
        self.pending.store(true, Ordering::Release);
    }
}
