//! The outbound queue: records waiting for delivery, their order, and the caps.
//!
//! [`Queue`] is implemented by [`MemoryQueue`] (no `data_dir`) and by
//! [`crate::storage::SqliteQueue`] (durable). Both assign increasing ids in append order, so
//! "the oldest records" and "everything appended before a flush" are id comparisons.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::protocol::Endpoint;

/// One encoded record on its way to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The destination endpoint.
    pub endpoint: Endpoint,
    /// The event's `$insert_id`; `None` for profile records.
    pub insert_id: Option<String>,
    /// The record as compact JSON, shared rather than copied when the queue hands out a batch.
    pub body: Arc<str>,
}

/// A record with the id the queue gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Increasing in append order.
    pub id: i64,
    /// The record.
    pub record: Record,
}

/// A failed queue operation.
#[derive(Debug)]
pub enum QueueError {
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
pub trait Queue: Send {
    /// Appends records in one transaction: all of them or none.
    ///
    /// # Errors
    /// [`QueueError::Transient`] when the store cannot be written; nothing was appended.
    fn append(&mut self, records: &[Record]) -> Result<(), QueueError>;

    /// Appends records the caller gives up, so a queue that keeps them in memory moves them
    /// instead of copying. On error nothing was appended and the records come back.
    ///
    /// # Errors
    /// As [`Queue::append`], with the records.
    fn append_owned(&mut self, records: Vec<Record>) -> Result<(), (QueueError, Vec<Record>)> {
        match self.append(&records) {
            Ok(()) => Ok(()),
            Err(error) => Err((error, records)),
        }
    }

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

    /// Returns whether no record is queued.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the number of queued records for `endpoint`.
    fn len_for(&self, endpoint: Endpoint) -> usize;

    /// Returns the id of the newest queued record.
    fn newest_id(&self) -> Option<i64>;

    /// Returns the id of the oldest queued record.
    fn oldest_id(&self) -> Option<i64>;

    /// Returns whether the records outlive the process, so that a shutdown loses none.
    fn is_durable(&self) -> bool {
        false
    }
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
///
/// Records are kept in one deque per endpoint, each sorted by id, so reading the front batch
/// of an endpoint costs O(batch) and removing an acknowledged front batch costs O(batch) no
/// matter how many records are queued. The oldest record overall is the smallest of the four
/// front ids.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    lanes: [VecDeque<StoredRecord>; 4],
    next_id: i64,
    bytes: usize,
    /// Records looked at by `remove`, for tests that check its cost.
    #[cfg(test)]
    visited: usize,
}

impl MemoryQueue {
    /// Creates an empty queue.
    pub fn new() -> Self {
        MemoryQueue {
            next_id: 1,
            ..MemoryQueue::default()
        }
    }

    /// Returns the index of the lane whose front record is the oldest.
    fn oldest_lane(&self) -> Option<usize> {
        (0..self.lanes.len())
            .filter_map(|index| self.lanes[index].front().map(|stored| (stored.id, index)))
            .min()
            .map(|(_, index)| index)
    }

    fn take_front(&mut self) -> Option<StoredRecord> {
        let lane = self.oldest_lane()?;
        let stored = self.lanes[lane].pop_front()?;
        self.bytes -= stored.record.body.len();
        Some(stored)
    }

    #[cfg(test)]
    fn count_visits(&mut self, records: usize) {
        self.visited += records;
    }

    #[cfg(not(test))]
    fn count_visits(&mut self, _records: usize) {}

    /// Removes the records of one lane whose ids are in `ids`.
    ///
    /// Each id is looked up by binary search, so ids of other lanes cost O(log n). Acknowledged
    /// records are normally the lane's front and are popped. Otherwise only the part of the
    /// lane up to the last removed record is rebuilt, which still costs O(batch) when the ids
    /// come from a front batch with holes (a partly rejected batch).
    fn remove_from_lane(&mut self, lane: usize, ids: &[i64]) {
        let mut positions: Vec<usize> = ids
            .iter()
            .filter_map(|id| {
                self.lanes[lane]
                    .binary_search_by_key(id, |stored| stored.id)
                    .ok()
            })
            .collect();
        if positions.is_empty() {
            return;
        }
        positions.sort_unstable();
        positions.dedup();

        let end = positions[positions.len() - 1] + 1;
        self.count_visits(end);
        if end == positions.len() {
            for stored in self.lanes[lane].drain(..end) {
                self.bytes -= stored.record.body.len();
            }
            return;
        }

        let prefix: Vec<StoredRecord> = self.lanes[lane].drain(..end).collect();
        for (position, stored) in prefix.into_iter().enumerate().rev() {
            if positions.binary_search(&position).is_ok() {
                self.bytes -= stored.record.body.len();
            } else {
                self.lanes[lane].push_front(stored);
            }
        }
    }
}

impl Queue for MemoryQueue {
    fn append(&mut self, records: &[Record]) -> Result<(), QueueError> {
        self.append_owned(records.to_vec()).map_err(|(error, _)| error)
    }

    fn append_owned(&mut self, records: Vec<Record>) -> Result<(), (QueueError, Vec<Record>)> {
        for record in records {
            self.bytes += record.body.len();
            self.lanes[endpoint_index(record.endpoint)].push_back(StoredRecord {
                id: self.next_id,
                record,
            });
            self.next_id += 1;
        }
        Ok(())
    }

    fn front(&mut self, endpoint: Endpoint, limit: usize) -> Result<Vec<StoredRecord>, QueueError> {
        Ok(self.lanes[endpoint_index(endpoint)]
            .iter()
            .take(limit)
            .cloned()
            .collect())
    }

    fn remove(&mut self, ids: &[i64]) -> Result<(), QueueError> {
        for lane in 0..self.lanes.len() {
            if !self.lanes[lane].is_empty() {
                self.remove_from_lane(lane, ids);
            }
        }
        Ok(())
    }

    fn evict_to_fit(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, QueueError> {
        let mut evicted = Vec::new();
        while self.len() > max_records || self.bytes > max_bytes {
            match self.take_front() {
                Some(stored) => evicted.push(stored),
                None => break,
            }
        }
        Ok(evicted)
    }

    fn clear(&mut self) -> Result<Vec<StoredRecord>, QueueError> {
        let mut all: Vec<StoredRecord> = self.lanes.iter_mut().flat_map(|lane| lane.drain(..)).collect();
        all.sort_unstable_by_key(|stored| stored.id);
        self.bytes = 0;
        Ok(all)
    }

    fn len(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    fn len_for(&self, endpoint: Endpoint) -> usize {
        self.lanes[endpoint_index(endpoint)].len()
    }

    fn newest_id(&self) -> Option<i64> {
        self.lanes
            .iter()
            .filter_map(|lane| lane.back().map(|stored| stored.id))
            .max()
    }

    fn oldest_id(&self) -> Option<i64> {
        self.lanes
            .iter()
            .filter_map(|lane| lane.front().map(|stored| stored.id))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(endpoint: Endpoint, body: &str) -> Record {
        Record {
            endpoint,
            insert_id: None,
            body: body.into(),
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
            .map(|s| s.record.body.to_string())
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
        assert_eq!(&*evicted[0].record.body, "aaaa");
        assert_eq!(queue.len(), 2);

        let evicted = queue.evict_to_fit(1, 100).unwrap();
        assert_eq!(&*evicted[0].record.body, "bb");
        assert_eq!(queue.oldest_id(), queue.newest_id());
    }

    fn track_records(count: usize) -> Vec<Record> {
        (0..count)
            .map(|i| record(Endpoint::Track, &format!("{i}")))
            .collect()
    }

    #[test]
    fn memory_queue_removes_front_batch_in_batch_steps() {
        let mut queue = MemoryQueue::new();
        queue.append(&track_records(100_000)).unwrap();

        for _ in 0..100 {
            let ids: Vec<i64> = queue
                .front(Endpoint::Track, 50)
                .unwrap()
                .iter()
                .map(|stored| stored.id)
                .collect();
            queue.remove(&ids).unwrap();
        }

        assert_eq!(queue.len(), 100_000 - 100 * 50);
        assert_eq!(queue.oldest_id(), Some(100 * 50 + 1));
        assert_eq!(
            queue.visited,
            100 * 50,
            "removing a front batch must look at that batch only, not the whole queue"
        );
    }

    #[test]
    fn memory_queue_removes_holes_within_front_batch() {
        let mut queue = MemoryQueue::new();
        queue.append(&track_records(100_000)).unwrap();

        let accepted: Vec<i64> = (1..=50).filter(|id| id % 7 != 0).collect();
        queue.remove(&accepted).unwrap();

        let left: Vec<i64> = queue
            .front(Endpoint::Track, 10)
            .unwrap()
            .iter()
            .map(|stored| stored.id)
            .collect();
        assert_eq!(left, [7, 14, 21, 28, 35, 42, 49, 51, 52, 53]);
        assert_eq!(queue.len(), 100_000 - accepted.len());
        assert!(
            queue.visited <= 50,
            "visited {} records to remove ids within the first 50",
            queue.visited
        );
    }

    #[test]
    fn memory_queue_remove_skips_other_endpoints() {
        let mut queue = MemoryQueue::new();
        queue.append(&track_records(100_000)).unwrap();
        queue
            .append(&[record(Endpoint::Engage, "a"), record(Endpoint::Engage, "b")])
            .unwrap();

        queue.remove(&[100_001, 100_002]).unwrap();

        assert_eq!(queue.len_for(Endpoint::Engage), 0);
        assert_eq!(queue.len_for(Endpoint::Track), 100_000);
        assert_eq!(
            queue.visited, 2,
            "removing /engage records must not rebuild the /track records queued before them"
        );
    }

    #[test]
    fn memory_queue_clear_returns_records_in_id_order() {
        let mut queue = MemoryQueue::new();
        queue
            .append(&[
                record(Endpoint::Groups, "1"),
                record(Endpoint::Track, "2"),
                record(Endpoint::Engage, "3"),
            ])
            .unwrap();

        let ids: Vec<i64> = queue.clear().unwrap().iter().map(|s| s.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.oldest_id(), None);
    }

    /// One step of the model-based test: append records, remove the ids picked by a mask over
    /// one endpoint's front, or evict down to caps.
    #[derive(Debug, Clone)]
    enum Step {
        Append(Vec<(usize, usize)>),
        Remove { endpoint: usize, mask: Vec<bool> },
        Evict { max_records: usize, max_bytes: usize },
    }

    fn step_strategy() -> impl Strategy<Value = Step> {
        prop_oneof![
            proptest::collection::vec((0usize..4, 1usize..20), 0..30).prop_map(Step::Append),
            (0usize..4, proptest::collection::vec(any::<bool>(), 0..40))
                .prop_map(|(endpoint, mask)| Step::Remove { endpoint, mask }),
            (0usize..100, 0usize..1000)
                .prop_map(|(max_records, max_bytes)| Step::Evict { max_records, max_bytes }),
        ]
    }

    proptest! {
        #[test]
        fn memory_queue_matches_model(steps in proptest::collection::vec(step_strategy(), 1..40)) {
            let mut queue = MemoryQueue::new();
            let mut model: Vec<StoredRecord> = Vec::new();
            let mut next_id = 1;

            for step in steps {
                match step {
                    Step::Append(specs) => {
                        let records: Vec<Record> = specs
                            .iter()
                            .map(|&(endpoint, len)| record(Endpoint::ALL[endpoint], &"x".repeat(len)))
                            .collect();
                        queue.append(&records).unwrap();
                        for record in records {
                            model.push(StoredRecord { id: next_id, record });
                            next_id += 1;
                        }
                    }
                    Step::Remove { endpoint, mask } => {
                        let endpoint = Endpoint::ALL[endpoint];
                        let front = queue.front(endpoint, mask.len()).unwrap();
                        let ids: Vec<i64> = front
                            .iter()
                            .zip(&mask)
                            .filter(|(_, remove)| **remove)
                            .map(|(stored, _)| stored.id)
                            .collect();
                        queue.remove(&ids).unwrap();
                        model.retain(|stored| !ids.contains(&stored.id));
                    }
                    Step::Evict { max_records, max_bytes } => {
                        let evicted: Vec<i64> = queue
                            .evict_to_fit(max_records, max_bytes)
                            .unwrap()
                            .iter()
                            .map(|stored| stored.id)
                            .collect();
                        let mut expected = Vec::new();
                        let mut bytes: usize = model.iter().map(|s| s.record.body.len()).sum();
                        while model.len() > max_records || bytes > max_bytes {
                            let oldest = model.remove(0);
                            bytes -= oldest.record.body.len();
                            expected.push(oldest.id);
                        }
                        prop_assert_eq!(evicted, expected);
                    }
                }

                prop_assert_eq!(queue.len(), model.len());
                prop_assert_eq!(queue.oldest_id(), model.first().map(|s| s.id));
                prop_assert_eq!(queue.newest_id(), model.last().map(|s| s.id));
                for endpoint in Endpoint::ALL {
                    let expected: Vec<i64> = model
                        .iter()
                        .filter(|s| s.record.endpoint == endpoint)
                        .map(|s| s.id)
                        .collect();
                    let actual: Vec<i64> = queue
                        .front(endpoint, usize::MAX)
                        .unwrap()
                        .iter()
                        .map(|s| s.id)
                        .collect();
                    prop_assert_eq!(queue.len_for(endpoint), expected.len());
                    prop_assert_eq!(actual, expected);
                }
            }
        }
    }
}
