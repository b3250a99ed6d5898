//! The errors a caller can see at the API boundary.

use std::path::PathBuf;

/// An error returned by a [`crate::Client`] call.
///
/// Every variant names the rejected value and the action that fixes it. A call that
/// returns an error has enqueued nothing and changed no stored state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot be used.
    #[error("invalid configuration: {field} {reason}")]
    InvalidConfig {
        /// The configuration field, for example `api_host`.
        field: &'static str,
        /// The problem, and the value to use instead.
        reason: String,
    },

    /// The event name is empty or too long.
    #[error("invalid event name {name:?}: {reason}")]
    InvalidEventName {
        /// The rejected name.
        name: String,
        /// The problem with the value.
        reason: &'static str,
    },

    /// A property cannot be sent, for example because its value is not a JSON object.
    #[error("invalid property {name:?}: {reason}")]
    InvalidProperty {
        /// The property name, or `properties` when the whole argument is wrong.
        name: String,
        /// The problem, and the value to send instead.
        reason: String,
    },

    /// A group key is empty or reserved.
    #[error("invalid group key {key:?}: {reason}")]
    InvalidGroupKey {
        /// The rejected key.
        key: String,
        /// The problem with the value.
        reason: &'static str,
    },

    /// A group id is neither a string nor an integer, or is empty.
    #[error("invalid group id {value} for group key {key:?}: {reason}")]
    InvalidGroupId {
        /// The group key the id was given for.
        key: String,
        /// The rejected value, rendered as JSON.
        value: String,
        /// The problem, and the value to send instead.
        reason: &'static str,
    },

    /// A distinct_id Mixpanel rejects: a placeholder, a value of the wrong type, or an empty
    /// id where a user is needed.
    #[error("invalid distinct_id {value}: {reason}")]
    InvalidDistinctId {
        /// The rejected value, rendered as JSON.
        value: String,
        /// The problem with the value.
        reason: &'static str,
    },

    /// A timestamp is outside the range Mixpanel accepts or is not finite.
    #[error("invalid time {value}: {reason}")]
    InvalidTime {
        /// The rejected value as given.
        value: String,
        /// The problem with the value.
        reason: &'static str,
    },

    /// The local store could not be opened or written, or another client holds the lock on the
    /// same `data_dir`, and the call could not be completed.
    #[error("storage failed at {path}: {message}")]
    Storage {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        message: String,
    },

    /// The client was shut down; create a new client to record more data.
    #[error("the client is shut down; create a new Client to record more data")]
    ShutDown,
}

impl Error {
    pub(crate) fn storage(path: impl Into<PathBuf>, error: impl std::fmt::Display) -> Self {
        Error::Storage {
            path: path.into(),
            message: error.to_string(),
        }
    }
}
