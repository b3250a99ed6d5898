//! Group-profile and user-profile records: parsing `/groups` and `/engage` records and
//! applying their operation to a stored profile.
//!
//! | operation | value | effect |
//! |---|---|---|
//! | `$set` | object | create the profile if absent; overwrite the named properties |
//! | `$set_once` | object | create if absent; set only properties not yet present |
//! | `$unset` | list of names | delete those properties |
//! | `$union` | object of lists | add each value to a list property, each value kept once |
//! | `$remove` | object | remove that value from a list property; no-op if absent |
//! | `$delete` | `""`, `null` or `{}` | delete the whole profile |
//! | `$add` | object of numbers | `/engage` only: add to numeric properties |
//! | `$append` | object | `/engage` only: append one value to a list property |

use groupscope::GroupId;
use groupscope::protocol;
use serde_json::{Map, Value};

use crate::validation::type_name;

/// The operations `/engage` accepts; `/groups` accepts [`protocol::GROUP_OPERATIONS`].
pub const USER_OPERATIONS: &[&str] = &["$set", "$set_once", "$add", "$union", "$append", "$remove", "$unset", "$delete"];

/// One profile operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `$set`.
    Set(Map<String, Value>),
    /// `$set_once`.
    SetOnce(Map<String, Value>),
    /// `$unset`.
    Unset(Vec<String>),
    /// `$union`: each property maps to the values to add.
    Union(Map<String, Value>),
    /// `$remove`.
    Remove(Map<String, Value>),
    /// `$add` (`/engage` only).
    Add(Map<String, Value>),
    /// `$append` (`/engage` only).
    Append(Map<String, Value>),
    /// `$delete`.
    Delete,
}

impl Operation {
    /// Returns the operation name, for example `$set`.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Set(_) => "$set",
            Operation::SetOnce(_) => "$set_once",
            Operation::Unset(_) => "$unset",
            Operation::Union(_) => "$union",
            Operation::Remove(_) => "$remove",
            Operation::Add(_) => "$add",
            Operation::Append(_) => "$append",
            Operation::Delete => "$delete",
        }
    }

    /// Parses the value of operation `name`.
    ///
    /// # Errors
    /// A message naming the operation and what its value must be.
    pub fn parse(name: &str, value: &Value) -> Result<Operation, String> {
        let object = |value: &Value| match value {
            Value::Object(map) => Ok(map.clone()),
            other => Err(format!("{name} takes an object of properties, not {}", type_name(other))),
        };
        match name {
            "$set" => Ok(Operation::Set(object(value)?)),
            "$set_once" => Ok(Operation::SetOnce(object(value)?)),
            "$remove" => Ok(Operation::Remove(object(value)?)),
            "$append" => Ok(Operation::Append(object(value)?)),
            "$add" => {
                let map = object(value)?;
                if let Some((property, bad)) = map.iter().find(|(_, v)| !v.is_number()) {
                    return Err(format!("$add needs numbers, but {property:?} is {}", type_name(bad)));
                }
                Ok(Operation::Add(map))
            }
            "$union" => {
                let map = object(value)?;
                if let Some((property, bad)) = map.iter().find(|(_, v)| !v.is_array()) {
                    return Err(format!("$union needs a list for each property, but {property:?} is {}", type_name(bad)));
                }
                Ok(Operation::Union(map))
            }
            "$unset" => match value {
                Value::Array(names) if !names.is_empty() => names
                    .iter()
                    .map(|n| {
                        n.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("$unset takes a list of property names, but one is {}", type_name(n)))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Operation::Unset),
                Value::Array(_) => Err("$unset takes a non-empty list of property names".into()),
                other => Err(format!("$unset takes a list of property names, not {}", type_name(other))),
            },
            "$delete" => match value {
                Value::Null => Ok(Operation::Delete),
                Value::String(s) if s.is_empty() => Ok(Operation::Delete),
                Value::Object(map) if map.is_empty() => Ok(Operation::Delete),
                other => Err(format!("$delete takes \"\", null or {{}}, not {other}")),
            },
            other => Err(format!("unknown operation {other:?}")),
        }
    }

    /// Applies the operation to a profile; `None` is an absent or deleted profile.
    pub fn apply(&self, profile: &mut Option<Map<String, Value>>) {
        match self {
            Operation::Set(values) => {
                let properties = profile.get_or_insert_with(Map::new);
                for (name, value) in values {
                    properties.insert(name.clone(), value.clone());
                }
            }
            Operation::SetOnce(values) => {
                let properties = profile.get_or_insert_with(Map::new);
                for (name, value) in values {
                    properties.entry(name.clone()).or_insert_with(|| value.clone());
                }
            }
            Operation::Unset(names) => {
                if let Some(properties) = profile {
                    for name in names {
                        properties.remove(name);
                    }
                }
            }
            Operation::Union(values) => {
                let properties = profile.get_or_insert_with(Map::new);
                for (name, added) in values {
                    let list = list_property(properties, name);
                    for value in added.as_array().into_iter().flatten() {
                        if !list.contains(value) {
                            list.push(value.clone());
                        }
                    }
                }
            }
            Operation::Append(values) => {
                let properties = profile.get_or_insert_with(Map::new);
                for (name, value) in values {
                    list_property(properties, name).push(value.clone());
                }
            }
            Operation::Remove(values) => {
                if let Some(properties) = profile {
                    for (name, removed) in values {
                        if let Some(Value::Array(list)) = properties.get_mut(name) {
                            list.retain(|value| value != removed);
                        }
                    }
                }
            }
            Operation::Add(values) => {
                let properties = profile.get_or_insert_with(Map::new);
                for (name, increment) in values {
                    let current = properties.get(name).and_then(Value::as_f64).unwrap_or(0.0);
                    let sum = current + increment.as_f64().unwrap_or(0.0);
                    let both_integers = increment.is_i64() && properties.get(name).is_none_or(Value::is_i64);
                    let value = if both_integers { Value::from(sum as i64) } else { Value::from(sum) };
                    properties.insert(name.clone(), value);
                }
            }
            Operation::Delete => *profile = None,
        }
    }
}

/// Returns the list property `name`, turning an absent value into `[]` and a scalar into a
/// one-element list.
fn list_property<'a>(properties: &'a mut Map<String, Value>, name: &str) -> &'a mut Vec<Value> {
    let slot = properties.entry(name.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        let previous = slot.take();
        *slot = Value::Array(vec![previous]);
    }
    match slot {
        Value::Array(list) => list,
        _ => unreachable!("the slot was made a list above"),
    }
}

/// A valid `/groups` record.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupUpdate {
    /// The group key, `$group_key`.
    pub key: String,
    /// The normalised group id, `$group_id`.
    pub id: String,
    /// The operation.
    pub operation: Operation,
}

/// A valid `/engage` record.
#[derive(Debug, Clone, PartialEq)]
pub struct UserUpdate {
    /// The user's `$distinct_id`.
    pub distinct_id: String,
    /// The operation.
    pub operation: Operation,
}

/// Checks `$token` and finds the single operation of a profile record.
fn token_and_operation<'a>(
    record: &'a Map<String, Value>,
    allowed: &[&str],
    endpoint: &str,
    project_token: Option<&str>,
) -> Result<(&'a str, &'a Value), (String, String)> {
    match record.get("$token") {
        Some(Value::String(token)) if !token.is_empty() => {
            if project_token.is_some_and(|expected| token != expected) {
                return Err((
                    "$token".into(),
                    format!("token {} does not match this project; send the project token", protocol::redact_token(token)),
                ));
            }
        }
        _ => return Err(("$token".into(), format!("missing $token: every {endpoint} record carries the project token"))),
    }

    let operations: Vec<(&String, &Value)> = record.iter().filter(|(name, _)| allowed.contains(&name.as_str())).collect();
    let unsupported: Vec<&String> = record
        .keys()
        .filter(|name| !allowed.contains(&name.as_str()) && USER_OPERATIONS.contains(&name.as_str()))
        .collect();
    if let Some(name) = unsupported.first() {
        return Err((
            (*name).clone(),
            format!("{name} is not supported on {endpoint}; use one of {}", allowed.join(", ")),
        ));
    }
    match operations.as_slice() {
        [(name, value)] => Ok((name.as_str(), value)),
        [] => Err(("".into(), format!("no operation: a {endpoint} record needs exactly one of {}", allowed.join(", ")))),
        many => Err((
            "".into(),
            format!(
                "{} operations ({}) in one record: send exactly one per record",
                many.len(),
                many.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// Parses a `/groups` record.
///
/// # Errors
/// `(field, message)` naming what is missing or wrong.
pub fn parse_group_update(record: &Value, project_token: Option<&str>) -> Result<GroupUpdate, (String, String)> {
    let Value::Object(record) = record else {
        return Err(("".into(), format!("the record is {}, not a JSON object", type_name(record))));
    };
    let (name, value) = token_and_operation(record, protocol::GROUP_OPERATIONS, "/groups", project_token)?;

    let key = match record.get("$group_key") {
        Some(Value::String(key)) if !key.is_empty() => key.clone(),
        Some(other) if !other.is_string() => {
            return Err(("$group_key".into(), format!("$group_key is {}, not a string", type_name(other))));
        }
        _ => return Err(("$group_key".into(), "missing $group_key: name the group key, for example \"company_id\"".into())),
    };
    let id = match record.get("$group_id") {
        None => return Err(("$group_id".into(), "missing $group_id: name the group, for example \"acme\"".into())),
        Some(Value::Number(number)) if crate::attribution::is_huge_integer(number) => {
            return Err((
                "$group_id".into(),
                format!("$group_id {number} is an integer too large to be a group id (more than 64 bits); send the id as a string"),
            ));
        }
        Some(value) => GroupId::from_json(&key, value).map_err(|error| ("$group_id".into(), error.to_string()))?,
    };
    let operation = Operation::parse(name, value).map_err(|message| (name.to_owned(), message))?;
    Ok(GroupUpdate { key, id: id.as_str().to_owned(), operation })
}

/// Parses an `/engage` record.
///
/// # Errors
/// `(field, message)` naming what is missing or wrong.
pub fn parse_user_update(record: &Value, project_token: Option<&str>) -> Result<UserUpdate, (String, String)> {
    let Value::Object(record) = record else {
        return Err(("".into(), format!("the record is {}, not a JSON object", type_name(record))));
    };
    let (name, value) = token_and_operation(record, USER_OPERATIONS, "/engage", project_token)?;

    let distinct_id = match record.get("$distinct_id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(other) if !other.is_string() => {
            return Err(("$distinct_id".into(), format!("$distinct_id is {}, not a string", type_name(other))));
        }
        _ => return Err(("$distinct_id".into(), "missing $distinct_id: name the user the profile belongs to".into())),
    };
    if protocol::is_forbidden_distinct_id(&distinct_id) {
        return Err((
            "$distinct_id".into(),
            format!("invalid $distinct_id {distinct_id:?}: Mixpanel rejects this placeholder value"),
        ));
    }
    let operation = Operation::parse(name, value).map_err(|message| (name.to_owned(), message))?;
    Ok(UserUpdate { distinct_id, operation })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn apply(profile: Value, op: &str, value: Value) -> Option<Value> {
        let mut profile = profile.as_object().cloned();
        Operation::parse(op, &value).unwrap().apply(&mut profile);
        profile.map(Value::Object)
    }

    #[test]
    fn set_creates_and_overwrites() {
        assert_eq!(apply(Value::Null, "$set", json!({"a": 1})), Some(json!({"a": 1})));
        assert_eq!(apply(json!({"a": 1, "b": 2}), "$set", json!({"a": 3})), Some(json!({"a": 3, "b": 2})));
    }

    #[test]
    fn set_once_keeps_existing() {
        assert_eq!(apply(json!({"a": 1}), "$set_once", json!({"a": 2, "b": 3})), Some(json!({"a": 1, "b": 3})));
    }

    #[test]
    fn unset_removes_names() {
        assert_eq!(apply(json!({"a": 1, "b": 2}), "$unset", json!(["a"])), Some(json!({"b": 2})));
        assert_eq!(apply(Value::Null, "$unset", json!(["a"])), None);
    }

    #[test]
    fn union_keeps_each_value_once() {
        assert_eq!(apply(json!({"r": ["eu"]}), "$union", json!({"r": ["eu", "us", "us"]})), Some(json!({"r": ["eu", "us"]})));
    }

    #[test]
    fn remove_is_noop_when_absent() {
        assert_eq!(apply(json!({"r": ["eu", "us"]}), "$remove", json!({"r": "us"})), Some(json!({"r": ["eu"]})));
        assert_eq!(apply(json!({"r": ["eu"]}), "$remove", json!({"x": "us"})), Some(json!({"r": ["eu"]})));
    }

    #[test]
    fn delete_accepts_three_encodings() {
        for value in [json!(""), json!(null), json!({})] {
            assert_eq!(apply(json!({"a": 1}), "$delete", value), None);
        }
        assert!(Operation::parse("$delete", &json!("x")).is_err());
    }

    #[test]
    fn add_and_append_for_users() {
        assert_eq!(apply(json!({"n": 1}), "$add", json!({"n": 2})), Some(json!({"n": 3})));
        assert_eq!(apply(json!({}), "$append", json!({"l": "x"})), Some(json!({"l": ["x"]})));
    }

    #[test]
    fn group_record_needs_one_operation() {
        let base = json!({"$token": "t", "$group_key": "company_id", "$group_id": 7, "$set": {"a": 1}});
        let update = parse_group_update(&base, Some("t")).unwrap();
        assert_eq!(update.id, "7");

        let two = json!({"$token": "t", "$group_key": "k", "$group_id": "g", "$set": {}, "$unset": ["a"]});
        assert!(parse_group_update(&two, None).unwrap_err().1.contains("2 operations"));

        let add = json!({"$token": "t", "$group_key": "k", "$group_id": "g", "$add": {"n": 1}});
        assert_eq!(parse_group_update(&add, None).unwrap_err().0, "$add");

        let missing = json!({"$token": "t", "$group_id": "g", "$set": {}});
        assert_eq!(parse_group_update(&missing, None).unwrap_err().0, "$group_key");
    }

    #[test]
    fn user_record_rejects_placeholder_distinct_id() {
        let record = json!({"$token": "t", "$distinct_id": "null", "$set": {}});
        assert_eq!(parse_user_update(&record, None).unwrap_err().0, "$distinct_id");
    }
}
