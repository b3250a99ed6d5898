//! The outbound queue: records waiting for delivery, their order, and the caps.
//!
//! [`Queue`] is implemented by [`MemoryQueue`] (no `data_dir`) and by
//! [`crate::storage::SqliteQueue`] (durable). Both assign increasing ids in append order, so
//! "the oldest records" and "everything appended before a flush" are id comparisons.

use std::collections::{HashSet, VecDeque};

use crate::protocol::Endpoint;

/// One encoded record on its way to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The destination endpoint.
    pub endpoint: Endpoint,
    /// The event's `$insert_id`; `None` for profile records.
    pub insert_id: Option<String>,
    /// The record as compact JSON.
    pub body: String,
}

/// A record with the id the queue gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredRecord {
    /// Increasing in append order.
    pub id: i64,
    /// The record.
    pub record: Record,
}

/// A failed queue operation.
#[derive(Debug)]
pub(crate) enum QueueError {
    /// The operation failed but may succeed later (disk full, read-only directory, lock held).
    /// Stored records are kept.
    Transient(String),
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::Transient(message) => f.write_str(message),
        }
    }
}

/// Records waiting for delivery, oldest first.
pub(crate) trait Queue: Send {
    /// Appends records in one transaction: all of them or none.
    ///
    /// # Errors
    /// [`QueueError::Transient`] when the store cannot be written; nothing was appended.
    fn append(&mut self, records: &[Record]) -> Result<(), QueueError>;

    /// Returns up to `limit` of the oldest records for `endpoint`.
    ///
    /// # Errors
    /// [`QueueError::Transient`] when the store cannot be read.
    fn front(&mut self, endpoint: Endpoint, limit: usize) -> Result<Vec<StoredRecord>, QueueError>;

    /// Removes records by id; ids that are not queued are ignored.
    ///
    /// # Errors
    /// [`QueueError::Transient`] when the store cannot be written; nothing was removed.
    fn remove(&mut self, ids: &[i64]) -> Result<(), QueueError>;

    /// Removes the oldest records until at most `max_records` records and `max_bytes` bytes
    /// remain, and returns them.
    ///
    /// # Errors
    /// [`QueueError::Transient`] when the store cannot be written; nothing was removed.
    fn evict_to_fit(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, QueueError>;

    /// Removes every record and returns them.
    ///
    /// # Errors
    /// [`QueueError::Transient`] when the store cannot be written; nothing was removed.
    fn clear(&mut self) -> Result<Vec<StoredRecord>, QueueError>;

    /// Returns the number of queued records.
    fn len(&self) -> usize;

    /// Returns the number of queued records for `endpoint`.
    fn len_for(&self, endpoint: Endpoint) -> usize;

    /// Returns the id of the newest queued record.
    fn newest_id(&self) -> Option<i64>;

    /// Returns the id of the oldest queued record.
    fn oldest_id(&self) -> Option<i64>;
}

/// Index of an endpoint in per-endpoint arrays.
pub(crate) fn endpoint_index(endpoint: Endpoint) -> usize {
    match endpoint {
        Endpoint::Track => 0,
        Endpoint::Engage => 1,
        Endpoint::Groups => 2,
        Endpoint::Import => 3,
    }
}

/// An in-memory queue, lost when the process ends.
#[derive(Debug, Default)]
pub(crate) struct MemoryQueue {
    records: VecDeque<StoredRecord>,
    next_id: i64,
    bytes: usize,
    per_endpoint: [usize; 4],
}

impl MemoryQueue {
    /// Creates an empty queue.
    pub(crate) fn new() -> Self {
        MemoryQueue {
            next_id: 1,
            ..MemoryQueue::default()
        }
    }

    fn take_front(&mut self) -> Option<StoredRecord> {
        let stored = self.records.pop_front()?;
        self.forget(&stored);
        Some(stored)
    }

    fn forget(&mut self, stored: &StoredRecord) {
        self.bytes -= stored.record.body.len();
        self.per_endpoint[endpoint_index(stored.record.endpoint)] -= 1;
    }
}

impl Queue for MemoryQueue {
    fn append(&mut self, records: &[Record]) -> Result<(), QueueError> {
        for record in records {
            self.bytes += record.body.len();
            self.per_endpoint[endpoint_index(record.endpoint)] += 1;
            self.records.push_back(StoredRecord {
                id: self.next_id,
                record: record.clone(),
            });
            self.next_id += 1;
        }
        Ok(())
    }

    fn front(&mut self, endpoint: Endpoint, limit: usize) -> Result<Vec<StoredRecord>, QueueError> {
        Ok(self
            .records
            .iter()
            .filter(|stored| stored.record.endpoint == endpoint)
            .take(limit)
            .cloned()
            .collect())
    }

    fn remove(&mut self, ids: &[i64]) -> Result<(), QueueError> {
        let ids: HashSet<i64> = ids.iter().copied().collect();
        let mut removed = Vec::new();
        self.records.retain(|stored| {
            let hit = ids.contains(&stored.id);
            if hit {
                removed.push(stored.clone());
            }
            !hit
        });
        for stored in &removed {
            self.forget(stored);
        }
        Ok(())
    }

    fn evict_to_fit(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, QueueError> {
        let mut evicted = Vec::new();
        while self.records.len() > max_records || self.bytes > max_bytes {
            match self.take_front() {
                Some(stored) => evicted.push(stored),
                None => break,
            }
        }
        Ok(evicted)
    }

    fn clear(&mut self) -> Result<Vec<StoredRecord>, QueueError> {
        let all: Vec<StoredRecord> = self.records.drain(..).collect();
        self.bytes = 0;
        self.per_endpoint = [0; 4];
        Ok(all)
    }

    fn len(&self) -> usize {
        self.records.len()
    }

    fn len_for(&self, endpoint: Endpoint) -> usize {
        self.per_endpoint[endpoint_index(endpoint)]
    }

    fn newest_id(&self) -> Option<i64> {
        self.records.back().map(|stored| stored.id)
    }

    fn oldest_id(&self) -> Option<i64> {
        self.records.front().map(|stored| stored.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(endpoint: Endpoint, body: &str) -> Record {
        Record {
            endpoint,
            insert_id: None,
            body: body.to_owned(),
        }
    }

    #[test]
    fn memory_queue_keeps_order_per_endpoint() {
        let mut queue = MemoryQueue::new();
        queue
            .append(&[
                record(Endpoint::Track, "1"),
                record(Endpoint::Groups, "2"),
                record(Endpoint::Track, "3"),
            ])
            .unwrap();

        let track: Vec<String> = queue
            .front(Endpoint::Track, 10)
            .unwrap()
            .into_iter()
            .map(|s| s.record.body)
            .collect();
        assert_eq!(track, ["1", "3"]);
        assert_eq!(queue.len_for(Endpoint::Groups), 1);
    }

    #[test]
    fn memory_queue_evicts_oldest_over_caps() {
        let mut queue = MemoryQueue::new();
        queue
            .append(&[
                record(Endpoint::Track, "aaaa"),
                record(Endpoint::Track, "bb"),
                record(Endpoint::Track, "cc"),
            ])
            .unwrap();

        let evicted = queue.evict_to_fit(10, 4).unwrap();
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].record.body, "aaaa");
        assert_eq!(queue.len(), 2);

        let evicted = queue.evict_to_fit(1, 100).unwrap();
        assert_eq!(evicted[0].record.body, "bb");
        assert_eq!(queue.oldest_id(), queue.newest_id());
    }
}
