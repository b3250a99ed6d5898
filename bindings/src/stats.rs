//! The `Stats` record: a snapshot of a client's delivery counters.

/// A snapshot of a client's counters since it was created.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Stats {
    /// Records accepted by `track`, `identify`, group calls and profile operations.
    pub enqueued: u64,
    /// Records the server acknowledged.
    pub delivered: u64,
    /// Retry attempts of batches.
    pub retried: u64,
    /// Records waiting for delivery now.
    pub queued: u64,
    /// Records dropped because the queue was over its caps.
    pub dropped_queue_full: u64,
    /// Records dropped because they were too large for the endpoint.
    pub dropped_too_large: u64,
    /// Records the server rejected as invalid.
    pub dropped_rejected: u64,
    /// Records dropped because the server refused the credentials.
    pub dropped_unauthorized: u64,
    /// Records lost when a corrupt store was replaced.
    pub dropped_store_reset: u64,
    /// Records cleared by `optOut`.
    pub dropped_opted_out: u64,
    /// Records dropped because the store could not be written and memory was full.
    pub dropped_storage_unavailable: u64,
    /// Records held only in memory that were not delivered when the client shut down.
    pub dropped_at_shutdown: u64,
    /// Times the store was found corrupt and replaced.
    pub store_resets: u64,
    /// Non-finite floats replaced by `null` in properties.
    pub non_finite_replaced: u64,
    /// Batches the server acknowledged while reporting an error without naming the
    /// rejected records.
    pub partially_rejected_batches: u64,
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
