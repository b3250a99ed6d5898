//! Delivery accounting: counters, drop reasons and the drop callback.

use std::sync::atomic::{AtomicU64, Ordering};

/// The reason records left the queue without being delivered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The queue exceeded `max_queue_records` or `max_queue_bytes`; the oldest were evicted.
    QueueFull,
    /// One record alone is larger than the endpoint's request limit, or the server answered
    /// 413 to a batch of one.
    TooLarge,
    /// The server rejected the records as invalid: HTTP 400 or another 4xx without a more
    /// specific reason, a 2xx with body `0` or verbose `status` 0, or the records named in a
    /// response's `failed_records`.
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
    /// The client shut down before the records were delivered, and they were held only in
    /// memory: in the in-memory queue, or in the buffer of a store that could not be written.
    ShutDown,
}

/// Records dropped together for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropReport {
    /// The reason they were dropped.
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

/// A snapshot of a client's counters since it was created, or, in a process forked from the
/// one that created it, since the fork.
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
    ///
    /// NOTE: the records of an unreadable file cannot be counted, so a reset adds 0 here;
    /// `store_resets` counts the resets themselves.
    pub dropped_store_reset: u64,
    /// Records cleared by `opt_out`, and events and profile updates made while opted out.
    pub dropped_opted_out: u64,
    /// Records dropped because the store could not be written and memory was full.
    pub dropped_storage_unavailable: u64,
    /// Records held only in memory that were not delivered when the client shut down.
    pub dropped_at_shutdown: u64,
    /// Times the store was found corrupt and replaced.
    pub store_resets: u64,
    /// Non-finite floats replaced by `null` in properties.
    pub non_finite_replaced: u64,
    /// Batches the server stored while returning an error without `failed_records`, so an
    /// unknown number of their records may have been rejected. Their records are counted in
    /// `delivered`.
    pub partially_rejected_batches: u64,
}

/// The live counters behind [`Stats`], shared by the client and the worker.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub enqueued: AtomicU64,
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    /// Records sent to the worker and not yet received by it.
    pub in_channel: AtomicU64,
    /// Records in the worker: stored, buffered, or received and not yet stored.
    pub in_worker: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_too_large: AtomicU64,
    pub dropped_rejected: AtomicU64,
    pub dropped_unauthorized: AtomicU64,
    pub dropped_store_reset: AtomicU64,
    pub dropped_opted_out: AtomicU64,
    pub dropped_storage_unavailable: AtomicU64,
    pub dropped_at_shutdown: AtomicU64,
    pub store_resets: AtomicU64,
    pub non_finite_replaced: AtomicU64,
    pub partially_rejected_batches: AtomicU64,
}

impl Counters {
    /// Adds `count` to the drop counter of `reason`.
    pub(crate) fn count_drop(&self, reason: &DropReason, count: u64) {
        let counter = match reason {
            DropReason::QueueFull => &self.dropped_queue_full,
            DropReason::TooLarge => &self.dropped_too_large,
            DropReason::Rejected { .. } => &self.dropped_rejected,
            DropReason::Unauthorized { .. } => &self.dropped_unauthorized,
            DropReason::StoreReset => &self.dropped_store_reset,
            DropReason::OptedOut => &self.dropped_opted_out,
            DropReason::StorageUnavailable => &self.dropped_storage_unavailable,
            DropReason::ShutDown => &self.dropped_at_shutdown,
        };
        counter.fetch_add(count, Ordering::Relaxed);
    }

    /// Sets every counter to zero. A forked child starts from zero because the parent's
    /// records and outcomes are the parent's to count.
    pub(crate) fn reset(&self) {
        // Destructured without `..`, so a new counter cannot be left out.
        let Counters {
            enqueued,
            delivered,
            retried,
            in_channel,
            in_worker,
            dropped_queue_full,
            dropped_too_large,
            dropped_rejected,
            dropped_unauthorized,
            dropped_store_reset,
            dropped_opted_out,
            dropped_storage_unavailable,
            dropped_at_shutdown,
            store_resets,
            non_finite_replaced,
            partially_rejected_batches,
        } = self;
        let counters = [
            enqueued,
            delivered,
            retried,
            in_channel,
            in_worker,
            dropped_queue_full,
            dropped_too_large,
            dropped_rejected,
            dropped_unauthorized,
            dropped_store_reset,
            dropped_opted_out,
            dropped_storage_unavailable,
            dropped_at_shutdown,
            store_resets,
            non_finite_replaced,
            partially_rejected_batches,
        ];
        for counter in counters {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// Returns a snapshot.
    pub(crate) fn snapshot(&self) -> Stats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            enqueued: load(&self.enqueued),
            delivered: load(&self.delivered),
            retried: load(&self.retried),
            queued: load(&self.in_channel) + load(&self.in_worker),
            dropped_queue_full: load(&self.dropped_queue_full),
            dropped_too_large: load(&self.dropped_too_large),
            dropped_rejected: load(&self.dropped_rejected),
            dropped_unauthorized: load(&self.dropped_unauthorized),
            dropped_store_reset: load(&self.dropped_store_reset),
            dropped_opted_out: load(&self.dropped_opted_out),
            dropped_storage_unavailable: load(&self.dropped_storage_unavailable),
            dropped_at_shutdown: load(&self.dropped_at_shutdown),
            store_resets: load(&self.store_resets),
            non_finite_replaced: load(&self.non_finite_replaced),
            partially_rejected_batches: load(&self.partially_rejected_batches),
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropReason::QueueFull => f.write_str("the queue was over its caps"),
            DropReason::TooLarge => f.write_str("a record is larger than the endpoint accepts"),
            DropReason::Rejected { status, message } => {
                write!(f, "the server rejected them with HTTP {status}: {message}")
            }
            DropReason::Unauthorized { status } => {
                write!(f, "the server refused the credentials with HTTP {status}")
            }
            DropReason::StoreReset => f.write_str("the store was corrupt and was replaced"),
            DropReason::OptedOut => f.write_str("the user opted out"),
            DropReason::StorageUnavailable => {
                f.write_str("the store could not be written and the memory buffer was full")
            }
            DropReason::ShutDown => {
                f.write_str("the client shut down while they were held only in memory")
            }
        }
    }
}
