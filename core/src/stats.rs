//! Delivery accounting: counters, drop reasons and the drop callback.

/// Why records left the queue without being delivered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The queue exceeded `max_queue_records` or `max_queue_bytes`; the oldest were evicted.
    QueueFull,
    /// One record alone is larger than the endpoint's request limit, or the server answered
    /// 413 to a batch of one.
    TooLarge,
    /// The server rejected the records as invalid (HTTP 400, or `/import` `failed_records`).
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
    /// The store was corrupt or unreadable and was moved aside; its records are lost.
    StoreReset,
    /// The user opted out; queued records were cleared.
    OptedOut,
    /// The store could not be written and the in-memory overflow buffer was full.
    StorageUnavailable,
}

/// Records dropped together for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropReport {
    /// Why they were dropped.
    pub reason: DropReason,
    /// How many records were dropped. May exceed `insert_ids.len()` when the ids are unknown,
    /// for example after a store reset.
    pub count: u64,
    /// The `$insert_id`s of the dropped records that carry one.
    pub insert_ids: Vec<String>,
}

/// Receives drop reports on the worker thread.
///
/// The callback must not block for long: delivery waits for it. A panic inside it is caught
/// and logged.
pub trait DropCallback: Send + Sync {
    /// Called once per drop decision.
    fn on_drop(&self, report: &DropReport);
}

impl<F> DropCallback for F
where
    F: Fn(&DropReport) + Send + Sync,
{
    fn on_drop(&self, report: &DropReport) {
        self(report)
    }
}

/// A snapshot of a client's counters since it was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records accepted by `track`, `identify`, group calls and profile operations.
    pub enqueued: u64,
    /// Records the server acknowledged.
    pub delivered: u64,
    /// Retry attempts of batches (one per failed request that will be sent again).
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
    /// Records cleared by `opt_out`.
    pub dropped_opted_out: u64,
    /// Records dropped because the store could not be written and memory was full.
    pub dropped_storage_unavailable: u64,
    /// Times the store was found corrupt and replaced.
    pub store_resets: u64,
    /// Non-finite floats replaced by `null` in properties.
    pub non_finite_replaced: u64,
}
