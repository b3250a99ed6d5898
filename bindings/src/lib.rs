//! Swift and Kotlin bindings of groupscope, exported through uniffi proc-macros.
//!
//! The exported surface is deliberately thin: every call validates its arguments, converts them
//! into the core's types and delegates to [`groupscope::Client`]. Properties and group ids cross
//! the boundary as JSON text, which the hand-written Swift and Kotlin layers encode from native
//! values (`[String: Any]`, `Map<String, Any?>`). A `track` call is one JSON string, because in
//! Kotlin each string or map argument costs one more JNA call to allocate its buffer. The
//! `track_encoded` and `*_json` methods are that low-level form, and app code calls the
//! idiomatic overloads of the hand-written layers.
//!
//! Modules, one concept each:
//! - [`client`]: the exported `Client` and `GroupHandle` objects.
//! - [`config`]: the `ClientConfig` record with the mobile defaults.
//! - [`errors`]: `GroupscopeError`, mapped from [`groupscope::Error`].
//! - [`values`]: decoding of the JSON-encoded properties, groups and group ids.
//! - [`callback`]: the `DropListener` foreign trait and the drop report records.
//! - [`stats`]: the `Stats` record.
//! - `property_value`: a typed alternative to JSON text, built only with the
//!   `representation-benchmark` feature to measure it.

uniffi::setup_scaffolding!();

pub mod callback;
pub mod client;
pub mod config;
pub mod errors;
#[cfg(feature = "representation-benchmark")]
pub mod property_value;
pub mod stats;
pub mod values;

pub use callback::{CallbackError, DropListener, DropReason, DropReport};
pub use client::{Client, GroupHandle};
pub use config::{ClientConfig, Region};
pub use errors::GroupscopeError;
pub use stats::Stats;

/// Returns the version of the groupscope core inside this library, the `$lib_version` of
/// every event.
#[uniffi::export]
pub fn library_version() -> String {
    groupscope::LIB_VERSION.to_owned()
}
