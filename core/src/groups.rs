//! Group ids, their normalisation, and the group super property set of a client.
//!
//! Group ids are strings. Integers are accepted and normalised to their decimal string, so `5`
//! and `"5"` are the same id. Every other JSON type is rejected with an error naming the value.

use serde_json::Value;

use crate::Error;

/// Event property names a group key must not use, because the client or Mixpanel sets them.
pub const RESERVED_GROUP_KEYS: &[&str] = &["token", "distinct_id", "time", "ip", "event", "bucket"];

/// The maximum length of a group key in bytes. Mixpanel truncates longer property names, and a
/// truncated name would no longer match the group key configured in the project.
pub const MAX_GROUP_KEY_BYTES: usize = 255;

/// Checks a group key: non-empty, at most [`MAX_GROUP_KEY_BYTES`] long, not reserved, and not
/// starting with `$` or `mp_` (the prefixes of Mixpanel's own properties).
///
/// # Errors
/// [`Error::InvalidGroupKey`] naming the key.
pub fn validate_group_key(key: &str) -> Result<(), Error> {
    let reject = |reason| Error::InvalidGroupKey {
        key: key.to_owned(),
        reason,
    };
    if key.trim().is_empty() {
        return Err(reject(
            "a group key must not be empty; use the property name configured in the project, such as \"company_id\"",
        ));
    }
    if key.len() > MAX_GROUP_KEY_BYTES {
        return Err(reject(
            "a group key has at most 255 bytes, because Mixpanel truncates longer property names; use the shorter property name configured in the project",
        ));
    }
    if key.starts_with('$') || key.starts_with("mp_") {
        return Err(reject(
            "names starting with '$' or 'mp_' are reserved for Mixpanel's own properties; choose another group key",
        ));
    }
    if RESERVED_GROUP_KEYS.contains(&key) {
        return Err(reject(
            "this event property is set by the client; choose another group key",
        ));
    }
    Ok(())
}

/// One normalised group id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(String);

impl GroupId {
    /// Normalises a JSON value into a group id for `key`.
    ///
    /// # Errors
    /// [`Error::InvalidGroupId`] for `null`, booleans, floats, arrays, objects and empty strings.
    pub fn from_json(key: &str, value: &Value) -> Result<Self, Error> {
        let reject = |reason| Error::InvalidGroupId {
            key: key.to_owned(),
            value: value.to_string(),
            reason,
        };
        match value {
            Value::String(s) if s.is_empty() => Err(reject("a group id must not be empty")),
            Value::String(s) => Ok(GroupId(s.clone())),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(GroupId(n.to_string())),
            Value::Number(_) => Err(reject(
                "a group id must be a string or an integer, not a float",
            )),
            Value::Null => Err(reject(
                "a group id must be a string or an integer, not null",
            )),
            Value::Bool(_) => Err(reject(
                "a group id must be a string or an integer, not a boolean",
            )),
            Value::Array(_) => Err(reject(
                "a group id must be a single string or integer, not a list",
            )),
            Value::Object(_) => Err(reject(
                "a group id must be a string or an integer, not an object",
            )),
        }
    }

    /// Returns the id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value that can name a group id: a string or an integer.
pub trait IntoGroupId {
    /// Converts the value into a normalised group id for `key`.
    ///
    /// # Errors
    /// [`Error::InvalidGroupId`] when the value is not a usable id.
    fn into_group_id(self, key: &str) -> Result<GroupId, Error>;
}

impl IntoGroupId for GroupId {
    fn into_group_id(self, _key: &str) -> Result<GroupId, Error> {
        Ok(self)
    }
}

impl IntoGroupId for &str {
    fn into_group_id(self, key: &str) -> Result<GroupId, Error> {
        GroupId::from_json(key, &Value::String(self.to_owned()))
    }
}

impl IntoGroupId for String {
    fn into_group_id(self, key: &str) -> Result<GroupId, Error> {
        GroupId::from_json(key, &Value::String(self))
    }
}

impl IntoGroupId for &String {
    fn into_group_id(self, key: &str) -> Result<GroupId, Error> {
        self.as_str().into_group_id(key)
    }
}

impl IntoGroupId for &Value {
    fn into_group_id(self, key: &str) -> Result<GroupId, Error> {
        GroupId::from_json(key, self)
    }
}

impl IntoGroupId for Value {
    fn into_group_id(self, key: &str) -> Result<GroupId, Error> {
        GroupId::from_json(key, &self)
    }
}

macro_rules! integer_group_ids {
    ($($t:ty),*) => {$(
        impl IntoGroupId for $t {
            fn into_group_id(self, _key: &str) -> Result<GroupId, Error> {
                Ok(GroupId(self.to_string()))
            }
        }
    )*};
}
integer_group_ids!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize
);

/// The ids of one group key, without duplicates, in the order they were first added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupIds(Vec<GroupId>);

impl GroupIds {
    /// Builds the id list for `key` from any iterable of ids, dropping duplicates.
    ///
    /// # Errors
    /// [`Error::InvalidGroupId`] for the first id that is not a string or an integer.
    pub fn collect<I, T>(key: &str, ids: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = T>,
        T: IntoGroupId,
    {
        let mut out = GroupIds::default();
        for id in ids {
            out.insert(id.into_group_id(key)?);
        }
        Ok(out)
    }

    /// Builds the id list for `key` from a JSON value: one id, or a list of ids.
    ///
    /// # Errors
    /// [`Error::InvalidGroupId`] naming the first value that is not a string or an integer.
    pub fn from_json(key: &str, value: &Value) -> Result<Self, Error> {
        match value {
            Value::Array(items) => GroupIds::collect(key, items),
            single => GroupIds::collect(key, [single]),
        }
    }

    /// Adds `id` unless it is present. Returns whether it was added.
    pub fn insert(&mut self, id: GroupId) -> bool {
        if self.0.contains(&id) {
            return false;
        }
        self.0.push(id);
        true
    }

    /// Removes `id` if present. Returns whether it was removed.
    pub fn remove(&mut self, id: &GroupId) -> bool {
        let before = self.0.len();
        self.0.retain(|existing| existing != id);
        self.0.len() != before
    }

    /// Returns whether no id is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns the number of ids.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Iterates over the ids in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &GroupId> {
        self.0.iter()
    }

    /// Returns the ids as a JSON list of strings, the form events carry.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|id| Value::String(id.0.clone()))
                .collect(),
        )
    }
}
