//! The delivery-drop callback: a foreign trait the app implements, and the records it receives.
//!
//! The core calls the listener on its worker thread for every drop decision, and keeps running
//! whatever the app's implementation does. An exception thrown in Kotlin or an error thrown in
//! Swift arrives here as an `Err`, and a Rust panic on the way is caught. Both are logged and
//! counted, and neither reaches the core.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The reason records left the queue without being delivered.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DropReason {
    /// The queue exceeded its record or byte cap; the oldest records were evicted.
    QueueFull,
    /// One record alone is larger than the endpoint accepts.
    TooLarge,
    /// The server rejected the records as invalid.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server refused the credentials (HTTP 401 or 403).
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// The store was corrupt or unreadable and was replaced; its records are lost.
    StoreReset,
    /// The user opted out; queued records were cleared.
    OptedOut,
    /// The store could not be written and the in-memory overflow buffer was full.
    StorageUnavailable,
    /// The client shut down while the records were held only in memory.
    ShutDown,
    /// A reason of a newer core that this binding does not name yet.
    Other {
        /// The core's description of the reason.
        description: String,
    },
}

impl From<&groupscope::DropReason> for DropReason {
    fn from(reason: &groupscope::DropReason) -> Self {
        match reason {
            groupscope::DropReason::QueueFull => DropReason::QueueFull,
            groupscope::DropReason::TooLarge => DropReason::TooLarge,
            groupscope::DropReason::Rejected { status, message } => DropReason::Rejected {
                status: *status,
                message: message.clone(),
            },
            groupscope::DropReason::Unauthorized { status } => {
                DropReason::Unauthorized { status: *status }
            }
            groupscope::DropReason::StoreReset => DropReason::StoreReset,
            groupscope::DropReason::OptedOut => DropReason::OptedOut,
            groupscope::DropReason::StorageUnavailable => DropReason::StorageUnavailable,
            groupscope::DropReason::ShutDown => DropReason::ShutDown,
            // `groupscope::DropReason` is `#[non_exhaustive]`.
            other => DropReason::Other {
                description: format!("{other:?}"),
            },
        }
    }
}

/// Records dropped together for one reason.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DropReport {
    /// The reason they were dropped.
    pub reason: DropReason,
    /// How many records were dropped; may exceed the number of `insert_ids`.
    pub count: u64,
    /// The `$insert_id`s of the dropped records that carry one.
    pub insert_ids: Vec<String>,
}

impl From<&groupscope::DropReport> for DropReport {
    fn from(report: &groupscope::DropReport) -> Self {
        DropReport {
            reason: DropReason::from(&report.reason),
            count: report.count,
            insert_ids: report.insert_ids.clone(),
        }
    }
}

/// The error a listener may throw: `CallbackException` in Kotlin, `CallbackError` in Swift.
/// Any other exception or error the listener throws arrives as `Unexpected`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum CallbackError {
    /// The listener failed for the reason in the message.
    #[error("{0}")]
    Failed(String),
    /// The listener threw an exception or error other than `CallbackError`.
    #[error("{0}")]
    Unexpected(String),
}

impl From<uniffi::UnexpectedUniFFICallbackError> for CallbackError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CallbackError::Unexpected(error.reason)
    }
}

/// Receives a report for every record the client drops without delivering it.
///
/// Called on the client's worker thread; delivery waits while it runs, so hand long work to
/// another thread. A thrown exception or error is logged and otherwise ignored.
#[uniffi::export(with_foreign)]
pub trait DropListener: Send + Sync {
    /// Called once per drop decision.
    fn on_drop(&self, report: DropReport) -> Result<(), CallbackError>;
}

/// Adapts an app's [`DropListener`] to the core's [`groupscope::DropCallback`], containing its
/// failures.
pub(crate) struct ListenerAdapter {
    listener: Arc<dyn DropListener>,
    failures: AtomicU64,
}

impl ListenerAdapter {
    pub(crate) fn new(listener: Arc<dyn DropListener>) -> Self {
        ListenerAdapter {
            listener,
            failures: AtomicU64::new(0),
        }
    }

    /// Logs one listener failure. Only the first 10 are logged at `warn`, so a listener that
    /// throws on every report cannot flood the log.
    fn log_failure(&self, report: &groupscope::DropReport, failure: &str) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures <= 10 {
            log::warn!(
                "drop listener failed on a report of {} records dropped for {:?} (failure {failures}): {failure}",
                report.count,
                report.reason,
            );
        } else {
            log::debug!("drop listener failed again (failure {failures}): {failure}");
        }
    }
}

impl groupscope::DropCallback for ListenerAdapter {
    fn on_drop(&self, report: &groupscope::DropReport) {
        let converted = DropReport::from(report);
        let outcome = catch_unwind(AssertUnwindSafe(|| self.listener.on_drop(converted)));

        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => self.log_failure(report, &error.to_string()),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                self.log_failure(report, &format!("panicked: {message}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use groupscope::DropCallback;
    use std::sync::Mutex;

    struct Recording(Mutex<Vec<DropReport>>);

    impl DropListener for Recording {
        fn on_drop(&self, report: DropReport) -> Result<(), CallbackError> {
            self.0.lock().unwrap().push(report);
            Ok(())
        }
    }

    struct Throwing;

    impl DropListener for Throwing {
        fn on_drop(&self, _report: DropReport) -> Result<(), CallbackError> {
            Err(CallbackError::Failed("listener is broken".to_owned()))
        }
    }

    struct Panicking;

    impl DropListener for Panicking {
        fn on_drop(&self, _report: DropReport) -> Result<(), CallbackError> {
            panic!("listener panicked")
        }
    }

    fn core_report() -> groupscope::DropReport {
        groupscope::DropReport {
            reason: groupscope::DropReason::Rejected {
                status: 400,
                message: "bad record".to_owned(),
            },
            count: 2,
            insert_ids: vec!["a".to_owned(), "b".to_owned()],
        }
    }

    #[test]
    fn adapter_converts_report() {
        let recording = Arc::new(Recording(Mutex::new(Vec::new())));
        let adapter = ListenerAdapter::new(recording.clone());

        adapter.on_drop(&core_report());

        let reports = recording.0.lock().unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(
            reports[0].reason,
            DropReason::Rejected {
                status: 400,
                message: "bad record".to_owned()
            }
        );
        assert_eq!(reports[0].count, 2);
        assert_eq!(reports[0].insert_ids, ["a", "b"]);
    }

    #[test]
    fn adapter_contains_listener_error() {
        let adapter = ListenerAdapter::new(Arc::new(Throwing));

        adapter.on_drop(&core_report());
        adapter.on_drop(&core_report());

        assert_eq!(adapter.failures.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn adapter_contains_listener_panic() {
        let adapter = ListenerAdapter::new(Arc::new(Panicking));

        adapter.on_drop(&core_report());

        assert_eq!(adapter.failures.load(Ordering::Relaxed), 1);
    }
}
