//! groupscope: product analytics with first-class group analytics.
//!
//! A [`Client`] records events and group changes on the caller's thread, persists the group
//! super properties and identity before the call returns, and hands every outbound record to
//! one background worker that batches, compresses and delivers them in Mixpanel's ingestion
//! protocol. A record leaves the queue only when the server acknowledged it or a reported drop
//! decided it.
//!
//! ```no_run
//! use groupscope::{Client, Config, TrackOptions};
//! use serde_json::json;
//!
//! let client = Client::new(Config::new("PROJECT_TOKEN"))?;
//! client.identify("user-42")?;
//! client.set_group("company_id", ["acme"])?;
//! client.track("Report Exported", json!({"format": "csv"}), TrackOptions::default())?;
//! client.group("company_id", "acme")?.set(json!({"plan": "enterprise"}))?;
//! client.shutdown(std::time::Duration::from_secs(5));
//! # Ok::<(), groupscope::Error>(())
//! ```
//!
//! The layers and their rules are described in `ARCHITECTURE.md` at the repository root.

#![deny(missing_docs)]

pub mod batch;
mod client;
mod completion;
mod config;
mod dir_lock;
mod encode;
mod error;
mod event;
mod fork;
pub mod groups;
pub mod protocol;
mod profile;
mod queue;
mod retry;
mod salvage;
mod stats;
mod storage;
mod transport;
mod validate;
mod worker;

/// The outbound queues, for the benchmarks in `benches/queue.rs`. Not a stable API: it exists
/// only with the `bench-internals` feature.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals {
    pub use crate::queue::{MemoryQueue, Queue, QueueError, Record, StoredRecord};
    pub use crate::storage::SqliteQueue;
}

pub use client::{Client, GroupHandle, TrackOptions};
pub use config::{Config, Region};
pub use encode::{EncodedProperties, PropertiesWriter};
pub use error::Error;
pub use groups::{GroupId, GroupIds};
pub use profile::ProfileOperation;
pub use stats::{DropCallback, DropReason, DropReport, Stats};

/// The value of `mp_lib` on every event this library sends.
pub const LIB_NAME: &str = "groupscope";

/// The value of `$lib_version` on every event this library sends.
pub const LIB_VERSION: &str = env!("CARGO_PKG_VERSION");
