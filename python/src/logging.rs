//! Forwarding of the core's `log` records to Python's `logging` module.
//!
//! The core logs from its worker thread, which never attaches to the interpreter. So the
//! [`BufferedLogger`] installed here only pushes each record into a bounded lock-free queue.
//! [`forward_pending`] moves the queued records into the `groupscope` Python logger on a
//! thread that already holds the interpreter. Every `Client` method calls it on entry, and the
//! package's `atexit` hook calls it last. A lock-free queue also means a `fork()` can never
//! leave the child waiting on a lock held by a thread that no longer exists.
//!
//! Records whose target is `groupscope` or `groupscope::x` go to the loggers `groupscope` and
//! `groupscope.x`. Records of other crates (the HTTP stack) go to `groupscope.deps.<crate>` and
//! only at warning level and above. When the queue is full, new records are counted and
//! dropped, and the count is logged as a warning at the next forward.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;
use pyo3::prelude::*;

/// Maximum records waiting to be forwarded.
const QUEUE_CAPACITY: usize = 4096;

/// One record waiting to be forwarded to Python.
struct PendingRecord {
    level: log::Level,
    logger_name: String,
    message: String,
}

/// A `log::Log` that queues records for [`forward_pending`].
struct BufferedLogger {
    queue: ArrayQueue<PendingRecord>,
    overflowed: AtomicU64,
    pending: AtomicBool,
}

static LOGGER: OnceLock<BufferedLogger> = OnceLock::new();

fn logger() -> &'static BufferedLogger {
    LOGGER.get_or_init(|| BufferedLogger {
        queue: ArrayQueue::new(QUEUE_CAPACITY),
        overflowed: AtomicU64::new(0),
        pending: AtomicBool::new(false),
    })
}

impl log::Log for BufferedLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("groupscope") || metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let pending = PendingRecord {
            level: record.level(),
            logger_name: python_logger_name(record.target()),
            message: record.args().to_string(),
        };
        if self.queue.push(pending).is_err() {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
        }
        self.pending.store(true, Ordering::Release);
    }

    fn flush(&self) {}
}

/// Maps a `log` target to a Python logger name.
fn python_logger_name(target: &str) -> String {
    if target == "groupscope" || target.starts_with("groupscope::") || target.starts_with("groupscope_") {
        return target.replace("::", ".").replacen("groupscope_", "groupscope.", 1);
    }
    let crate_name = target.split("::").next().unwrap_or(target);
    format!("groupscope.deps.{crate_name}")
}

/// Installs the forwarding logger as the process-wide `log` logger, unless another one is
/// already installed (for example by an embedding Rust program).
pub fn install() {
    if log::set_logger(logger()).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Sets the `log` level filter from the effective level of the `groupscope` Python logger, so
/// the core does not format records that Python would discard.
pub fn sync_level(py: Python<'_>) -> PyResult<()> {
    let level: i64 = py
        .import("logging")?
        .call_method1("getLogger", ("groupscope",))?
        .call_method0("getEffectiveLevel")?
        .extract()?;
    let filter = match level {
        ..=5 => log::LevelFilter::Trace,
        6..=10 => log::LevelFilter::Debug,
        11..=20 => log::LevelFilter::Info,
        21..=30 => log::LevelFilter::Warn,
        31..=40 => log::LevelFilter::Error,
        _ => log::LevelFilter::Off,
    };
    log::set_max_level(filter);
    Ok(())
}

/// Returns the Python `logging` level number of a `log` level.
fn python_level(level: log::Level) -> i32 {
    match level {
        log::Level::Error => 40,
        log::Level::Warn => 30,
        log::Level::Info => 20,
        log::Level::Debug => 10,
        log::Level::Trace => 5,
    }
}

/// Removes every queued record without emitting it. A child process calls it after `fork()`,
/// because the records queued before the fork are the parent's to emit.
pub fn discard_pending() {
    let logger = logger();
    while logger.queue.pop().is_some() {}
    logger.overflowed.store(0, Ordering::Relaxed);
    logger.pending.store(false, Ordering::Release);
}

/// Emits every queued record to its Python logger. Cheap when nothing is queued.
pub fn forward_pending(py: Python<'_>) {
    let logger = logger();
    if !logger.pending.swap(false, Ordering::Acquire) {
        return;
    }
    if let Err(error) = forward_queue(py, logger) {
        // Logging must never make an analytics call fail.
        error.write_unraisable(py, None);
    }
}

fn forward_queue(py: Python<'_>, logger: &BufferedLogger) -> PyResult<()> {
    let logging = py.import("logging")?;
    while let Some(record) = logger.queue.pop() {
        let python_logger = logging.call_method1("getLogger", (record.logger_name.as_str(),))?;
        python_logger.call_method1("log", (python_level(record.level), "%s", record.message))?;
    }

    let overflowed = logger.overflowed.swap(0, Ordering::Relaxed);
    if overflowed > 0 {
        let python_logger = logging.call_method1("getLogger", ("groupscope",))?;
        python_logger.call_method1(
            "warning",
            ("%d log records of the groupscope core were dropped because the forwarding queue was full", overflowed),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::python_logger_name;

    #[test]
    fn logger_name_of_core_targets() {
        assert_eq!(python_logger_name("groupscope"), "groupscope");
        assert_eq!(python_logger_name("groupscope::worker"), "groupscope.worker");
        assert_eq!(python_logger_name("groupscope_python::client"), "groupscope.python.client");
    }

    #[test]
    fn logger_name_of_dependency_targets() {
        assert_eq!(python_logger_name("ureq::unversioned::transport"), "groupscope.deps.ureq");
        assert_eq!(python_logger_name("rustls"), "groupscope.deps.rustls");
    }
}
