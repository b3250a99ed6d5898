//! User-profile operations of `/engage` and the checks of their values.
//!
//! Each operation sends one record `{"$token", "$distinct_id", "$time", "<operation>": value}`.
//! The value shapes follow Mixpanel's engage API: an object of property names for `$set`,
//! `$set_once`, `$add`, `$append`, `$union` and `$remove`, a list of names for `$unset`, and an
//! empty string for `$delete`.

use serde_json::Value;

use crate::Error;
use crate::event::{json_type, validate_object_operation, validate_union, validate_unset};

/// A user-profile operation, named after its `/engage` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileOperation {
    /// `$set`: sets properties, replacing existing values. Value: an object.
    Set,
    /// `$set_once`: sets properties that have no value yet. Value: an object.
    SetOnce,
    /// `$add`: adds numbers to numeric properties. Value: an object of numbers.
    Add,
    /// `$append`: appends one value to each list property. Value: an object.
    Append,
    /// `$union`: merges lists into list properties without duplicates. Value: an object of
    /// lists.
    Union,
    /// `$remove`: removes one value from each list property. Value: an object.
    Remove,
    /// `$unset`: deletes properties. Value: a list of property names.
    Unset,
    /// `$delete`: deletes the whole profile. Value: `null` or `""`.
    Delete,
}

impl ProfileOperation {
    /// Every operation, in the order of the enum.
    pub const ALL: [ProfileOperation; 8] = [
        ProfileOperation::Set,
        ProfileOperation::SetOnce,
        ProfileOperation::Add,
        ProfileOperation::Append,
        ProfileOperation::Union,
        ProfileOperation::Remove,
        ProfileOperation::Unset,
        ProfileOperation::Delete,
    ];

    /// Returns the `/engage` key of the operation, for example `$set_once`.
    pub fn key(self) -> &'static str {
        match self {
            ProfileOperation::Set => "$set",
            ProfileOperation::SetOnce => "$set_once",
            ProfileOperation::Add => "$add",
            ProfileOperation::Append => "$append",
            ProfileOperation::Union => "$union",
            ProfileOperation::Remove => "$remove",
            ProfileOperation::Unset => "$unset",
            ProfileOperation::Delete => "$delete",
        }
    }

    /// Returns the operation whose `/engage` key is `key`, for example `$add`.
    pub fn from_key(key: &str) -> Option<ProfileOperation> {
        ProfileOperation::ALL
            .into_iter()
            .find(|operation| operation.key() == key)
    }
}

/// Checks `value` against the shape `operation` expects and returns the value to send.
///
/// # Errors
/// [`Error::InvalidProperty`] naming the property (or `properties`/`names`/`value`) whose
/// value has the wrong type, with the expected shape.
pub(crate) fn validate(operation: ProfileOperation, value: Value) -> Result<Value, Error> {
    let key = operation.key();
    match operation {
        ProfileOperation::Set
        | ProfileOperation::SetOnce
        | ProfileOperation::Append
        | ProfileOperation::Remove => validate_object_operation(key, value),
        ProfileOperation::Union => validate_union(value),
        ProfileOperation::Add => validate_add(value),
        ProfileOperation::Unset => validate_unset_names(value),
        ProfileOperation::Delete => match value {
            Value::Null => Ok(Value::String(String::new())),
            Value::String(text) if text.is_empty() => Ok(Value::String(text)),
            other => Err(Error::InvalidProperty {
                name: "value".to_owned(),
                reason: format!(
                    "$delete takes no value, got {}; pass null",
                    json_type(&other)
                ),
            }),
        },
    }
}

/// Checks an `$add` value: an object whose values are finite numbers.
fn validate_add(value: Value) -> Result<Value, Error> {
    let value = validate_object_operation("$add", value)?;
    if let Value::Object(map) = &value {
        if let Some((name, other)) = map.iter().find(|(_, v)| !v.is_number()) {
            return Err(Error::InvalidProperty {
                name: name.clone(),
                reason: format!(
                    "$add expects a number for each property, got {}; pass the amount to add, such as 1 or -2.5",
                    json_type(other)
                ),
            });
        }
    }
    Ok(value)
}

/// Checks an `$unset` value: a non-empty list of non-empty property names.
fn validate_unset_names(value: Value) -> Result<Value, Error> {
    let Value::Array(items) = value else {
        return Err(Error::InvalidProperty {
            name: "names".to_owned(),
            reason: format!(
                "$unset expects a list of property names, got {}; pass a list such as [\"plan\"]",
                json_type(&value)
            ),
        });
    };
    let mut names = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(name) => names.push(name),
            other => {
                return Err(Error::InvalidProperty {
                    name: "names".to_owned(),
                    reason: format!(
                        "$unset expects property names as strings, got {}",
                        json_type(&other)
                    ),
                });
            }
        }
    }
    validate_unset(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_round_trip() {
        for operation in ProfileOperation::ALL {
            assert_eq!(ProfileOperation::from_key(operation.key()), Some(operation));
        }
        assert_eq!(ProfileOperation::from_key("$increment"), None);
    }

    #[test]
    fn add_rejects_non_numbers() {
        let error = validate(ProfileOperation::Add, json!({"visits": "1"})).unwrap_err();
        assert!(error.to_string().contains("visits"), "{error}");
        assert!(error.to_string().contains("a string"), "{error}");
    }

    #[test]
    fn unset_requires_string_names() {
        assert!(validate(ProfileOperation::Unset, json!("plan")).is_err());
        assert!(validate(ProfileOperation::Unset, json!([1])).is_err());
        assert!(validate(ProfileOperation::Unset, json!([])).is_err());
        assert_eq!(
            validate(ProfileOperation::Unset, json!(["plan"])).unwrap(),
            json!(["plan"])
        );
    }

    #[test]
    fn delete_takes_no_value() {
        assert_eq!(
            validate(ProfileOperation::Delete, Value::Null).unwrap(),
            json!("")
        );
        assert!(validate(ProfileOperation::Delete, json!({"a": 1})).is_err());
    }

    #[test]
    fn object_operations_reject_other_types() {
        for operation in [
            ProfileOperation::Set,
            ProfileOperation::SetOnce,
            ProfileOperation::Add,
            ProfileOperation::Append,
            ProfileOperation::Union,
            ProfileOperation::Remove,
        ] {
            assert!(
                validate(operation, json!(["x"])).is_err(),
                "{} must reject a list",
                operation.key()
            );
            assert!(
                validate(operation, json!({"": 1})).is_err(),
                "{} must reject an empty name",
                operation.key()
            );
        }
    }
}
