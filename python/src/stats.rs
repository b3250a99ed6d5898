//! The `Stats` class: a snapshot of a client's delivery counters.

use pyo3::prelude::*;

/// A snapshot of a client's counters since it was created.
#[pyclass(module = "groupscope._native", name = "Stats", frozen, get_all, eq)]
#[derive(PartialEq, Eq)]
pub struct Stats {
    /// Records accepted by `track`, `identify`, group calls and profile operations.
    enqueued: u64,
    /// Records the server acknowledged.
    delivered: u64,
    /// Retry attempts of batches.
    retried: u64,
    /// Records waiting for delivery now.
    queued: u64,
    /// Records dropped because the queue was over its caps.
    dropped_queue_full: u64,
    /// Records dropped because they were too large for the endpoint.
    dropped_too_large: u64,
    /// Records the server rejected as invalid.
    dropped_rejected: u64,
    /// Records dropped because the server refused the credentials.
    dropped_unauthorized: u64,
    /// Records lost when a corrupt store was replaced.
    dropped_store_reset: u64,
    /// Records cleared by `opt_out()`.
    dropped_opted_out: u64,
    /// Records dropped because the store could not be written and memory was full.
    dropped_storage_unavailable: u64,
    /// Records held only in memory that were not delivered when the client shut down.
    dropped_at_shutdown: u64,
    /// Times the store was found corrupt and replaced.
    store_resets: u64,
    /// NaN and infinite floats replaced by `null` in properties.
    non_finite_replaced: u64,
    /// Batches the server acknowledged while reporting an error without naming the
    /// rejected records.
    partially_rejected_batches: u64,
}

impl From<groupscope::Stats> for Stats {
    fn from(stats: groupscope::Stats) -> Self {
        Stats {
            enqueued: stats.enqueued,
            delivered: stats.delivered,
            retried: stats.retried,
            queued: stats.queued,
            dropped_queue_full: stats.dropped_queue_full,
            dropped_too_large: stats.dropped_too_large,
            dropped_rejected: stats.dropped_rejected,
            dropped_unauthorized: stats.dropped_unauthorized,
            dropped_store_reset: stats.dropped_store_reset,
            dropped_opted_out: stats.dropped_opted_out,
            dropped_storage_unavailable: stats.dropped_storage_unavailable,
            dropped_at_shutdown: stats.dropped_at_shutdown,
            store_resets: stats.store_resets,
            non_finite_replaced: stats.non_finite_replaced,
            partially_rejected_batches: stats.partially_rejected_batches,
        }
    }
}

#[pymethods]
impl Stats {
    /// Returns the total of records dropped for any reason.
    #[getter]
    fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_too_large
            + self.dropped_rejected
            + self.dropped_unauthorized
            + self.dropped_store_reset
            + self.dropped_opted_out
            + self.dropped_storage_unavailable
            + self.dropped_at_shutdown
    }

    /// Returns the counters as a `dict`.
    fn as_dict(&self) -> std::collections::BTreeMap<&'static str, u64> {
        [
            ("enqueued", self.enqueued),
            ("delivered", self.delivered),
            ("retried", self.retried),
            ("queued", self.queued),
            ("dropped_queue_full", self.dropped_queue_full),
            ("dropped_too_large", self.dropped_too_large),
            ("dropped_rejected", self.dropped_rejected),
            ("dropped_unauthorized", self.dropped_unauthorized),
            ("dropped_store_reset", self.dropped_store_reset),
            ("dropped_opted_out", self.dropped_opted_out),
            ("dropped_storage_unavailable", self.dropped_storage_unavailable),
            ("dropped_at_shutdown", self.dropped_at_shutdown),
            ("store_resets", self.store_resets),
            ("non_finite_replaced", self.non_finite_replaced),
            ("partially_rejected_batches", self.partially_rejected_batches),
        ]
        .into_iter()
        .collect()
    }

    fn __repr__(&self) -> String {
        let fields: Vec<String> = self.as_dict().iter().map(|(name, value)| format!("{name}={value}")).collect();
        format!("Stats({})", fields.join(", "))
    }
}
