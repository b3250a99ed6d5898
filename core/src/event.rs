//! Building and validating the records a client enqueues: events, user-profile (`/engage`)
//! records and group-profile (`/groups`) records.
//!
//! Only what cannot be sent is rejected: an empty or over-long event name, properties that are
//! not an object, empty property names, unusable times, group ids and distinct_ids, and the
//! event limits the server drops events for, checked in [`crate::validate`]. Strings longer
//! than 255 characters are left to the server, which truncates them.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::groups::GroupIds;
use crate::protocol::{self, Endpoint};
use crate::queue::Record;
use crate::{Error, TrackOptions};

/// Maximum length of an event name, in characters.
pub(crate) const MAX_EVENT_NAME_CHARS: usize = 255;

/// Property names the client always writes itself; call-site values for them are ignored.
const OWNED_EVENT_PROPERTIES: &[&str] = &["token", "mp_lib", "$lib_version"];

/// The client state an event is built from.
pub(crate) struct EventContext<'a> {
    /// The project token.
    pub token: &'a str,
    /// The current distinct_id.
    pub distinct_id: &'a str,
    /// Registered super properties.
    pub super_properties: &'a Map<String, Value>,
    /// Group super properties.
    pub groups: &'a BTreeMap<String, GroupIds>,
}

/// Returns the current time in ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Checks an event name.
///
/// # Errors
/// [`Error::InvalidEventName`] when it is empty, blank or longer than 255 characters.
pub(crate) fn validate_event_name(name: &str) -> Result<(), Error> {
    let reject = |reason| Error::InvalidEventName {
        name: name.chars().take(300).collect(),
        reason,
    };
    if name.trim().is_empty() {
        return Err(reject(
            "an event name must not be empty or blank; pass a name such as \"Signed Up\"",
        ));
    }
    if name.chars().count() > MAX_EVENT_NAME_CHARS {
        return Err(reject(
            "an event name must be at most 255 characters; shorten it",
        ));
    }
    Ok(())
}

/// Checks a distinct_id.
///
/// # Errors
/// [`Error::InvalidDistinctId`] when it is empty or a placeholder Mixpanel rejects.
pub(crate) fn validate_distinct_id(distinct_id: &str) -> Result<(), Error> {
    if distinct_id.trim().is_empty() {
        return Err(Error::InvalidDistinctId {
            value: distinct_id.to_owned(),
            reason: "a distinct_id must not be empty; pass the user's stable id",
        });
    }
    if protocol::is_forbidden_distinct_id(distinct_id) {
        return Err(Error::InvalidDistinctId {
            value: distinct_id.to_owned(),
            reason: "Mixpanel treats this placeholder as invalid; pass the user's real id",
        });
    }
    Ok(())
}

/// Converts `properties` (an object or `null`) into a map with non-empty names.
///
/// # Errors
/// [`Error::InvalidProperty`] when `properties` is another JSON type or a name is empty.
pub(crate) fn properties_object(properties: Value) -> Result<Map<String, Value>, Error> {
    let map = match properties {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        other => {
            return Err(Error::InvalidProperty {
                name: "properties".to_owned(),
                reason: format!(
                    "expected a JSON object or null, got {}; wrap values in an object such as {{\"plan\": \"pro\"}}",
                    json_type(&other)
                ),
            });
        }
    };
    if map.keys().any(|name| name.is_empty()) {
        return Err(Error::InvalidProperty {
            name: String::new(),
            reason: "property names must not be empty; rename the property".to_owned(),
        });
    }
    Ok(map)
}

/// Returns the JSON type name of a value, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Normalises a caller-supplied time to ms.
///
/// # Errors
/// [`Error::InvalidTime`] for negative or non-finite numbers and for non-numbers.
pub(crate) fn time_ms(value: &Value) -> Result<i64, Error> {
    let reject = |reason| Error::InvalidTime {
        value: value.to_string(),
        reason,
    };
    let Some(number) = value.as_f64() else {
        return Err(reject(
            "time must be a number of seconds (below 1e11) or milliseconds since the epoch",
        ));
    };
    protocol::normalize_time_ms(number).ok_or_else(|| {
        reject(
            "time must be a finite, non-negative number of seconds or milliseconds since the epoch",
        )
    })
}

fn time_from_f64(time: f64) -> Result<i64, Error> {
    protocol::normalize_time_ms(time).ok_or_else(|| Error::InvalidTime {
        value: time.to_string(),
        reason: "time must be a finite, non-negative number of seconds (below 1e11) or milliseconds since the epoch",
    })
}

/// Builds an event record for `/track` or `/import`. Returns the record and its `$insert_id`.
///
/// Precedence, lowest first: registered super properties, group super properties, call-site
/// properties, per-event groups; then the client's own `token`, `mp_lib` and `$lib_version`.
/// `time`, `distinct_id` and `$insert_id` come from the call site when given there.
///
/// # Errors
/// The validation errors of [`validate_event_name`], [`properties_object`], [`time_ms`],
/// [`validate_distinct_id`], plus [`Error::InvalidGroupKey`]/[`Error::InvalidGroupId`] for
/// per-event groups and [`Error::InvalidProperty`] for a malformed `$insert_id`. The limit
/// checks of [`crate::validate`] add [`Error::InvalidTime`] outside the endpoint's time window
/// and [`Error::InvalidProperty`] for too many properties, a long list, deep nesting or an
/// event over 1 MB.
pub(crate) fn build_event(
    endpoint: Endpoint,
    context: &EventContext<'_>,
    event: &str,
    properties: Value,
    options: &TrackOptions,
) -> Result<(Record, String), Error> {
    validate_event_name(event)?;
    let call_site = properties_object(properties)?;

    let mut merged = context.super_properties.clone();
    for (key, ids) in context.groups {
        merged.insert(key.clone(), ids.to_json());
    }
    for (name, value) in call_site {
        merged.insert(name, value);
    }
    for (key, ids) in &options.groups {
        crate::groups::validate_group_key(key)?;
        match ids {
            Some(ids) => {
                let ids = GroupIds::from_json(key, ids)?;
                merged.insert(key.clone(), ids.to_json());
            }
            None => {
                merged.remove(key);
            }
        }
    }

    let time = match (options.time, merged.get("time")) {
        (Some(time), _) => time_from_f64(time)?,
        (None, Some(value)) => time_ms(value)?,
        (None, None) => now_ms(),
    };
    crate::validate::check_event_time(endpoint, time, now_ms())?;
    merged.insert("time".to_owned(), Value::from(time));

    let distinct_id = match (&options.distinct_id, merged.get("distinct_id")) {
        (Some(distinct_id), _) => distinct_id.clone(),
        (None, Some(Value::String(distinct_id))) => distinct_id.clone(),
        (None, Some(other)) => {
            return Err(Error::InvalidDistinctId {
                value: other.to_string(),
                reason: "distinct_id must be a string",
            });
        }
        (None, None) => context.distinct_id.to_owned(),
    };
    validate_distinct_id(&distinct_id)?;
    merged.insert("distinct_id".to_owned(), Value::String(distinct_id));

    let insert_id = match merged.get("$insert_id") {
        Some(Value::String(id)) if protocol::is_valid_insert_id(id) => id.clone(),
        Some(other) => {
            return Err(Error::InvalidProperty {
                name: "$insert_id".to_owned(),
                reason: format!(
                    "{other} is not 1 to 36 characters of A-Z, a-z, 0-9 and '-'; omit it to get a generated one"
                ),
            });
        }
        None => protocol::new_insert_id(),
    };
    merged.insert("$insert_id".to_owned(), Value::String(insert_id.clone()));

    for name in OWNED_EVENT_PROPERTIES {
        merged.remove(*name);
    }
    merged.insert("token".to_owned(), Value::String(context.token.to_owned()));
    merged.insert(
        "mp_lib".to_owned(),
        Value::String(crate::LIB_NAME.to_owned()),
    );
    merged.insert(
        "$lib_version".to_owned(),
        Value::String(crate::LIB_VERSION.to_owned()),
    );

    crate::validate::check_event_properties(&merged)?;

    let mut body = Map::with_capacity(2);
    body.insert("event".to_owned(), Value::String(event.to_owned()));
    body.insert("properties".to_owned(), Value::Object(merged));

    let record = Record {
        endpoint,
        insert_id: Some(insert_id.clone()),
        body: encode_json(&Value::Object(body)),
    };
    crate::validate::check_event_size(event, record.body.len())?;
    Ok((record, insert_id))
}

/// Encodes `value` as compact JSON. Writing into a byte buffer is faster than `Display`, which
/// goes through `fmt::Write` for every token.
fn encode_json(value: &Value) -> String {
    serde_json::to_string(value).expect("a JSON value with string keys always serializes")
}

/// Builds a user-profile record for `/engage`.
pub(crate) fn build_engage(
    token: &str,
    distinct_id: &str,
    operation: &str,
    value: Value,
    time_ms: i64,
) -> Record {
    let mut body = Map::with_capacity(4);
    body.insert("$token".to_owned(), Value::String(token.to_owned()));
    body.insert(
        "$distinct_id".to_owned(),
        Value::String(distinct_id.to_owned()),
    );
    body.insert("$time".to_owned(), Value::from(time_ms));
    body.insert(operation.to_owned(), value);
    Record {
        endpoint: Endpoint::Engage,
        insert_id: None,
        body: encode_json(&Value::Object(body)),
    }
}

/// Builds a group-profile record for `/groups`.
pub(crate) fn build_group_update(
    token: &str,
    group_key: &str,
    group_id: &str,
    operation: &str,
    value: Value,
) -> Record {
    let mut body = Map::with_capacity(5);
    body.insert("$token".to_owned(), Value::String(token.to_owned()));
    body.insert("$group_key".to_owned(), Value::String(group_key.to_owned()));
    body.insert("$group_id".to_owned(), Value::String(group_id.to_owned()));
    body.insert("$time".to_owned(), Value::from(now_ms()));
    body.insert(operation.to_owned(), value);
    Record {
        endpoint: Endpoint::Groups,
        insert_id: None,
        body: encode_json(&Value::Object(body)),
    }
}

/// Checks a `$set`/`$set_once`/`$remove` value: a non-empty-named object.
///
/// # Errors
/// [`Error::InvalidProperty`] unless `value` is an object with non-empty names.
pub(crate) fn validate_object_operation(operation: &str, value: Value) -> Result<Value, Error> {
    match value {
        Value::Object(map) => {
            if map.keys().any(|name| name.is_empty()) {
                return Err(Error::InvalidProperty {
                    name: String::new(),
                    reason: format!(
                        "{operation} property names must not be empty; rename the property"
                    ),
                });
            }
            Ok(Value::Object(map))
        }
        other => Err(Error::InvalidProperty {
            name: "properties".to_owned(),
            reason: format!(
                "{operation} expects a JSON object of property names to values, got {}",
                json_type(&other)
            ),
        }),
    }
}

/// Checks a `$union` value: an object whose values are lists.
///
/// # Errors
/// [`Error::InvalidProperty`] naming the first property whose value is not a list.
pub(crate) fn validate_union(value: Value) -> Result<Value, Error> {
    let value = validate_object_operation("$union", value)?;
    if let Value::Object(map) = &value {
        if let Some((name, other)) = map.iter().find(|(_, v)| !v.is_array()) {
            return Err(Error::InvalidProperty {
                name: name.clone(),
                reason: format!(
                    "$union expects a list of values for each property, got {}; wrap it in a list",
                    json_type(other)
                ),
            });
        }
    }
    Ok(value)
}

/// Checks a `$unset` list of names.
///
/// # Errors
/// [`Error::InvalidProperty`] when the list is empty or contains an empty name.
pub(crate) fn validate_unset(names: Vec<String>) -> Result<Value, Error> {
    if names.is_empty() {
        return Err(Error::InvalidProperty {
            name: "names".to_owned(),
            reason: "$unset expects at least one property name".to_owned(),
        });
    }
    if names.iter().any(String::is_empty) {
        return Err(Error::InvalidProperty {
            name: String::new(),
            reason: "$unset property names must not be empty".to_owned(),
        });
    }
    Ok(Value::Array(names.into_iter().map(Value::String).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context<'a>(
        super_properties: &'a Map<String, Value>,
        groups: &'a BTreeMap<String, GroupIds>,
    ) -> EventContext<'a> {
        EventContext {
            token: "tok",
            distinct_id: "user-1",
            super_properties,
            groups,
        }
    }

    fn properties_of(record: &Record) -> Map<String, Value> {
        let body: Value = serde_json::from_str(&record.body).unwrap();
        body["properties"].as_object().unwrap().clone()
    }

    #[test]
    fn call_site_wins_over_super_properties() {
        let supers = json!({"plan": "free", "region": "eu"})
            .as_object()
            .unwrap()
            .clone();
        let groups = BTreeMap::new();
        let (record, _) = build_event(
            Endpoint::Track,
            &context(&supers, &groups),
            "x",
            json!({"plan": "pro"}),
            &TrackOptions::default(),
        )
        .unwrap();

        let properties = properties_of(&record);
        assert_eq!(properties["plan"], "pro");
        assert_eq!(properties["region"], "eu");
        assert_eq!(properties["token"], "tok");
        assert_eq!(properties["mp_lib"], "groupscope");
        assert_eq!(properties["distinct_id"], "user-1");
    }

    #[test]
    fn seconds_time_becomes_milliseconds() {
        let supers = Map::new();
        let groups = BTreeMap::new();
        // /import, because /track rejects times more than 5 days old.
        let options = TrackOptions::default().time(1_700_000_000.25);
        let (record, _) = build_event(
            Endpoint::Import,
            &context(&supers, &groups),
            "x",
            Value::Null,
            &options,
        )
        .unwrap();
        assert_eq!(properties_of(&record)["time"], 1_700_000_000_250i64);

        let (record, _) = build_event(
            Endpoint::Import,
            &context(&supers, &groups),
            "x",
            json!({"time": 1_700_000_000_123i64}),
            &TrackOptions::default(),
        )
        .unwrap();
        assert_eq!(properties_of(&record)["time"], 1_700_000_000_123i64);
    }

    #[test]
    fn insert_id_is_32_hex() {
        let supers = Map::new();
        let groups = BTreeMap::new();
        let (record, insert_id) = build_event(
            Endpoint::Track,
            &context(&supers, &groups),
            "x",
            Value::Null,
            &TrackOptions::default(),
        )
        .unwrap();
        assert_eq!(insert_id.len(), 32);
        assert!(insert_id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(properties_of(&record)["$insert_id"], insert_id.as_str());
    }

    #[test]
    fn union_rejects_non_list_value() {
        let error = validate_union(json!({"tags": "a"})).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidProperty { name, .. } if name == "tags"),
            "{error}"
        );
    }
}
