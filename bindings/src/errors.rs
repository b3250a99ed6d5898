//! The one error type of the bindings, mapped from [`groupscope::Error`].
//!
//! It is a flat error: each variant carries the core's full message, which names the rejected
//! value and what to do instead. In Kotlin it is `GroupscopeException`, a sealed exception class
//! with one subclass per variant (`GroupscopeException.InvalidGroupId`, ...) and the text in
//! `message`. In Swift it is the `GroupscopeError` enum, whose cases carry `message`.

/// An error returned by a groupscope call. A call that fails has enqueued nothing.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum GroupscopeError {
    /// The configuration cannot be used.
    #[error("{0}")]
    InvalidConfig(String),

    /// The event name is empty or too long.
    #[error("{0}")]
    InvalidEventName(String),

    /// A property cannot be sent, or the properties are not a JSON object.
    #[error("{0}")]
    InvalidProperty(String),

    /// A group key is empty or reserved.
    #[error("{0}")]
    InvalidGroupKey(String),

    /// A group id is neither a string nor an integer, or is empty.
    #[error("{0}")]
    InvalidGroupId(String),

    /// A distinct_id Mixpanel rejects: a placeholder, a value of the wrong type, or an empty
    /// id where a user is needed.
    #[error("{0}")]
    InvalidDistinctId(String),

    /// A timestamp is outside the range Mixpanel accepts.
    #[error("{0}")]
    InvalidTime(String),

    /// The local store could not be opened or written.
    #[error("{0}")]
    Storage(String),

    /// The client was shut down; create a new client to record more data.
    #[error("{0}")]
    ShutDown(String),

    /// An error of a newer core that this binding does not name yet.
    #[error("{0}")]
    Other(String),
}

impl From<groupscope::Error> for GroupscopeError {
    fn from(error: groupscope::Error) -> Self {
        let message = error.to_string();
        match error {
            groupscope::Error::InvalidConfig { .. } => GroupscopeError::InvalidConfig(message),
            groupscope::Error::InvalidEventName { .. } => {
                GroupscopeError::InvalidEventName(message)
            }
            groupscope::Error::InvalidProperty { .. } => GroupscopeError::InvalidProperty(message),
            groupscope::Error::InvalidGroupKey { .. } => GroupscopeError::InvalidGroupKey(message),
            groupscope::Error::InvalidGroupId { .. } => GroupscopeError::InvalidGroupId(message),
            groupscope::Error::InvalidDistinctId { .. } => {
                GroupscopeError::InvalidDistinctId(message)
            }
            groupscope::Error::InvalidTime { .. } => GroupscopeError::InvalidTime(message),
            groupscope::Error::Storage { .. } => GroupscopeError::Storage(message),
            groupscope::Error::ShutDown => GroupscopeError::ShutDown(message),
            // `groupscope::Error` is `#[non_exhaustive]`; a variant added later still reaches
            // the caller with its message.
            _ => GroupscopeError::Other(message),
        }
    }
}

impl GroupscopeError {
    /// Builds an `InvalidConfig` error for `field` in the core's wording.
    pub(crate) fn invalid_config(field: &str, reason: impl std::fmt::Display) -> Self {
        GroupscopeError::InvalidConfig(format!("invalid configuration: {field} {reason}"))
    }

    /// Builds an `InvalidProperty` error for `name` in the core's wording.
    pub(crate) fn invalid_property(name: &str, reason: impl std::fmt::Display) -> Self {
        GroupscopeError::InvalidProperty(format!("invalid property {name:?}: {reason}"))
    }
}
