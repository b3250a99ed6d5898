//! Delivery accounting: which acknowledged records reached the server, which were reported
//! dropped, and which vanished.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use groupscope::{DropCallback, DropReport};

use crate::figures::Figures;
use crate::server::TestServer;

/// Collects the `$insert_id`s the API acknowledged and the drop reports of one client.
#[derive(Default)]
pub struct Ledger {
    acknowledged: Mutex<Vec<String>>,
    reports: Mutex<Vec<DropReport>>,
}

/// The outcome of every acknowledged record, after the client flushed.
#[derive(Debug, Clone, Default)]
pub struct Settlement {
    /// Records the API acknowledged.
    pub tracked: u64,
    /// Acknowledged records stored at the server.
    pub delivered: u64,
    /// Acknowledged `$insert_id`s stored more than once after deduplication.
    pub duplicated: Vec<String>,
    /// Acknowledged `$insert_id`s neither stored nor reported dropped.
    pub lost: Vec<String>,
    /// `$insert_id`s reported dropped, each as often as it was reported.
    pub dropped: Vec<String>,
    /// `$insert_id`s reported dropped more than once.
    pub dropped_twice: Vec<String>,
    /// `$insert_id`s both stored and reported dropped.
    pub dropped_and_delivered: Vec<String>,
    /// Records the server received again and deduplicated, counted from its request log,
    /// which keeps the last 10,000 requests and starts empty after a restart.
    pub resent: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ledger {
    /// Creates an empty ledger.
    pub fn new() -> Arc<Ledger> {
        Arc::new(Ledger::default())
    }

    /// Records that a call returned `Ok(insert_id)`.
    pub fn acknowledge(&self, insert_id: String) {
        lock(&self.acknowledged).push(insert_id);
    }

    /// Returns the acknowledged `$insert_id`s in call order.
    pub fn acknowledged(&self) -> Vec<String> {
        lock(&self.acknowledged).clone()
    }

    /// Returns the drop reports received so far.
    pub fn reports(&self) -> Vec<DropReport> {
        lock(&self.reports).clone()
    }

    /// Returns a drop callback that stores every report in this ledger.
    pub fn drop_callback(self: &Arc<Self>) -> Arc<dyn DropCallback> {
        let ledger = Arc::clone(self);
        Arc::new(move |report: &DropReport| lock(&ledger.reports).push(report.clone()))
    }

    /// Compares the acknowledged records with the server's store and the drop reports.
    pub fn settle(&self, server: &TestServer) -> Settlement {
        settle(&self.acknowledged(), &self.reports(), server)
    }
}

/// Compares `acknowledged` with the server's store and `reports`.
pub fn settle(acknowledged: &[String], reports: &[DropReport], server: &TestServer) -> Settlement {
    let stored = server.insert_id_counts();
    let mut dropped_counts: HashMap<&str, u64> = HashMap::new();
    for report in reports {
        for insert_id in &report.insert_ids {
            *dropped_counts.entry(insert_id.as_str()).or_insert(0) += 1;
        }
    }

    let mut settlement = Settlement {
        tracked: acknowledged.len() as u64,
        ..Settlement::default()
    };
    let mut seen = HashSet::new();
    for insert_id in acknowledged {
        if !seen.insert(insert_id.as_str()) {
            continue;
        }
        let stored_count = stored.get(insert_id).copied().unwrap_or(0);
        let dropped_count = dropped_counts.get(insert_id.as_str()).copied().unwrap_or(0);
        if stored_count > 0 {
            settlement.delivered += 1;
        }
        if stored_count > 1 {
            settlement.duplicated.push(insert_id.clone());
        }
        if dropped_count > 0 && stored_count > 0 {
            settlement.dropped_and_delivered.push(insert_id.clone());
        }
        if dropped_count > 1 {
            settlement.dropped_twice.push(insert_id.clone());
        }
        if stored_count == 0 && dropped_count == 0 {
            settlement.lost.push(insert_id.clone());
        }
    }
    settlement.dropped = reports
        .iter()
        .flat_map(|report| report.insert_ids.iter().cloned())
        .collect();
    settlement.resent = server
        .accepted_event_records()
        .saturating_sub(server.event_count());
    settlement
}

impl Settlement {
    /// Returns the figures of this settlement for `scenario`, with `retries` from the client.
    pub fn figures(&self, scenario: &str, retries: u64) -> Figures {
        Figures {
            scenario: scenario.to_owned(),
            tracked: self.tracked,
            delivered: self.delivered,
            duplicated: self.duplicated.len() as u64,
            resent: self.resent,
            lost: self.lost.len() as u64,
            reported_dropped: self.dropped.len() as u64,
            retries,
            extra: Vec::new(),
        }
    }

    /// Panics with the first offending ids unless every acknowledged record was stored exactly
    /// once or reported dropped exactly once, and never both.
    #[track_caller]
    pub fn assert_exactly_once(&self) {
        let first = |ids: &[String]| ids.iter().take(5).cloned().collect::<Vec<_>>();
        assert!(
            self.lost.is_empty(),
            "{} acknowledged records were neither delivered nor reported dropped, for example {:?}",
            self.lost.len(),
            first(&self.lost)
        );
        assert!(
            self.duplicated.is_empty(),
            "{} records are stored more than once after deduplication, for example {:?}",
            self.duplicated.len(),
            first(&self.duplicated)
        );
        assert!(
            self.dropped_twice.is_empty(),
            "{} records were reported dropped more than once, for example {:?}",
            self.dropped_twice.len(),
            first(&self.dropped_twice)
        );
        assert!(
            self.dropped_and_delivered.is_empty(),
            "{} records were both delivered and reported dropped, for example {:?}",
            self.dropped_and_delivered.len(),
            first(&self.dropped_and_delivered)
        );
    }
}
