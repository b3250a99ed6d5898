//! Validation of event records as Mixpanel documents it: required fields, `$insert_id`
//! format, forbidden `distinct_id` values, property count, nesting depth, list length, event
//! size and the accepted time window.

use groupscope::protocol::{
    self, Endpoint, MAX_ARRAY_ELEMENTS, MAX_EVENT_BYTES, MAX_NESTING_DEPTH, MAX_PROPERTIES,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::time::{self, DAY_MS};

/// `/track` accepts events at most this old; older ones must go through `/import`.
pub const TRACK_MAX_AGE_MS: i64 = 5 * DAY_MS;

/// `/import` rejects events earlier than 1971-01-01T00:00:00Z.
pub const IMPORT_EARLIEST_MS: i64 = 31_536_000_000;

/// Events may be at most this far in the future of the moment they are received.
pub const MAX_FUTURE_MS: i64 = 60 * 60 * 1000;

/// Maximum length of an event name, in bytes.
pub const MAX_EVENT_NAME_BYTES: usize = 255;

/// A valid event, ready to be attributed and stored.
#[derive(Debug, Clone)]
pub struct ValidEvent {
    /// The event name.
    pub event: String,
    /// The `distinct_id`, `""` when the event has no user.
    pub distinct_id: String,
    /// The event time in milliseconds; the received time when the event has none.
    pub time_ms: i64,
    /// The `$insert_id`, when the event has one.
    pub insert_id: Option<String>,
    /// The properties as sent.
    pub properties: Map<String, Value>,
}

/// The rejection of one record of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordError {
    /// The position of the record in the request, from 0.
    pub index: usize,
    /// The record's `$insert_id`, or `""` when it has none. JSON output omits an empty one.
    #[serde(rename = "$insert_id", skip_serializing_if = "String::is_empty")]
    pub insert_id: String,
    /// The offending field, for example `properties.time`, or `""` when the problem is the
    /// whole record.
    pub field: String,
    /// The problem and what to send instead.
    pub message: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "record {}: {}", self.index, self.message)
        } else {
            write!(f, "record {}: {}: {}", self.index, self.field, self.message)
        }
    }
}

/// Names a JSON value's type in messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Validates one event record of a `/track` or `/import` request.
///
/// `project_token`, when set, must equal `properties.token` on `/track`. `/import` is
/// authenticated by HTTP Basic auth instead, and requires `time`, `distinct_id` and
/// `$insert_id`.
///
/// # Errors
/// A [`RecordError`] naming the field and the value.
pub fn validate_event(
    index: usize,
    record: &Value,
    endpoint: Endpoint,
    project_token: Option<&str>,
    received_at_ms: i64,
) -> Result<ValidEvent, RecordError> {
    let insert_id_text = record
        .get("properties")
        .and_then(|p| p.get("$insert_id"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let fail = |field: &str, message: String| RecordError {
        index,
        insert_id: insert_id_text.clone(),
        field: field.to_owned(),
        message,
    };

    let Value::Object(object) = record else {
        return Err(fail("", format!("the record is {}, not a JSON object with `event` and `properties`", type_name(record))));
    };

    let event = match object.get("event") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
        Some(Value::String(_)) => return Err(fail("event", "the event name is empty; name the event, for example \"Signed Up\"".into())),
        Some(other) => return Err(fail("event", format!("the event name is {}, not a string", type_name(other)))),
        None => return Err(fail("event", "missing event name: every record needs an `event` string".into())),
    };
    if event.len() > MAX_EVENT_NAME_BYTES {
        return Err(fail("event", format!("the event name is {} bytes; use at most {MAX_EVENT_NAME_BYTES}", event.len())));
    }

    let properties = match object.get("properties") {
        Some(Value::Object(properties)) => properties.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(other) => return Err(fail("properties", format!("`properties` is {}, not a JSON object", type_name(other)))),
    };

    check_shape(&properties).map_err(|(field, message)| fail(&field, message))?;
    let size = serde_json::to_vec(record).map(|bytes| bytes.len()).unwrap_or(0);
    if size >= MAX_EVENT_BYTES {
        return Err(fail("", format!("the event is {size} bytes of JSON; events must be smaller than {MAX_EVENT_BYTES} bytes")));
    }

    if endpoint == Endpoint::Track {
        match properties.get("token") {
            Some(Value::String(token)) if !token.is_empty() => {
                if project_token.is_some_and(|expected| token != expected) {
                    return Err(fail(
                        "properties.token",
                        format!(
                            "token {} does not match this project; send the project token",
                            protocol::redact_token(token)
                        ),
                    ));
                }
            }
            Some(other) if !other.is_string() => {
                return Err(fail("properties.token", format!("the token is {}, not a string", type_name(other))));
            }
            _ => return Err(fail("properties.token", "missing token: /track events carry the project token in `properties.token`".into())),
        }
    }

    let time_ms = read_time(&properties, endpoint, received_at_ms).map_err(|message| fail("properties.time", message))?;
    let distinct_id = read_distinct_id(&properties, endpoint).map_err(|message| fail("properties.distinct_id", message))?;
    let insert_id = read_insert_id(&properties, endpoint).map_err(|message| fail("properties.$insert_id", message))?;

    Ok(ValidEvent { event, distinct_id, time_ms, insert_id, properties })
}

/// Checks the property count, nesting depth and list lengths.
fn check_shape(properties: &Map<String, Value>) -> Result<(), (String, String)> {
    if properties.len() >= MAX_PROPERTIES {
        return Err((
            "properties".into(),
            format!("the event has {} properties; send fewer than {MAX_PROPERTIES}", properties.len()),
        ));
    }
    for (name, value) in properties {
        check_value(&format!("properties.{name}"), value, 0)?;
    }
    Ok(())
}

fn check_value(path: &str, value: &Value, depth: usize) -> Result<(), (String, String)> {
    match value {
        Value::Object(fields) => {
            let depth = depth + 1;
            if depth > MAX_NESTING_DEPTH {
                return Err((path.into(), format!("objects are nested {depth} levels deep; the maximum is {MAX_NESTING_DEPTH}")));
            }
            if fields.len() >= MAX_PROPERTIES {
                return Err((path.into(), format!("the object has {} keys; send fewer than {MAX_PROPERTIES}", fields.len())));
            }
            for (name, inner) in fields {
                check_value(&format!("{path}.{name}"), inner, depth)?;
            }
        }
        Value::Array(items) => {
            if items.len() >= MAX_ARRAY_ELEMENTS {
                return Err((path.into(), format!("the list has {} elements; send fewer than {MAX_ARRAY_ELEMENTS}", items.len())));
            }
            for item in items {
                check_value(path, item, depth)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn read_time(properties: &Map<String, Value>, endpoint: Endpoint, received_at_ms: i64) -> Result<i64, String> {
    let raw = properties.get("time").or_else(|| properties.get("$time"));
    let time_ms = match raw {
        None | Some(Value::Null) if endpoint == Endpoint::Import => {
            return Err("missing time: /import events need `time` in seconds or milliseconds since the epoch".into());
        }
        None | Some(Value::Null) => return Ok(received_at_ms),
        Some(Value::Number(number)) => number
            .as_f64()
            .and_then(protocol::normalize_time_ms)
            .ok_or_else(|| format!("invalid time {number}: use seconds or milliseconds since the epoch"))?,
        Some(Value::String(text)) => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(protocol::normalize_time_ms)
            .ok_or_else(|| format!("invalid time {text:?}: use a number of seconds or milliseconds since the epoch"))?,
        Some(other) => return Err(format!("the time is {}, not a number", type_name(other))),
    };

    if time_ms > received_at_ms + MAX_FUTURE_MS {
        return Err(format!(
            "time {} is more than 1 hour in the future of the received time {}",
            time::format_rfc3339(time_ms),
            time::format_rfc3339(received_at_ms)
        ));
    }
    match endpoint {
        Endpoint::Import if time_ms < IMPORT_EARLIEST_MS => Err(format!(
            "time {} is before 1971-01-01; check the unit (seconds or milliseconds)",
            time::format_rfc3339(time_ms)
        )),
        Endpoint::Track if time_ms < received_at_ms - TRACK_MAX_AGE_MS => Err(format!(
            "time {} is more than 5 days old; send events older than 5 days to /import",
            time::format_rfc3339(time_ms)
        )),
        _ => Ok(time_ms),
    }
}

fn read_distinct_id(properties: &Map<String, Value>, endpoint: Endpoint) -> Result<String, String> {
    let raw = properties.get("distinct_id").or_else(|| properties.get("$distinct_id"));
    let distinct_id = match raw {
        None | Some(Value::Null) if endpoint == Endpoint::Import => {
            return Err("missing distinct_id: /import events need `distinct_id` (\"\" for events without a user)".into());
        }
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(other) => return Err(format!("the distinct_id is {}, not a string", type_name(other))),
    };
    if !distinct_id.is_empty() && protocol::is_forbidden_distinct_id(&distinct_id) {
        return Err(format!(
            "invalid distinct_id {distinct_id:?}: Mixpanel rejects this placeholder value; send the user's real id or \"\""
        ));
    }
    Ok(distinct_id)
}

fn read_insert_id(properties: &Map<String, Value>, endpoint: Endpoint) -> Result<Option<String>, String> {
    match properties.get("$insert_id") {
        None | Some(Value::Null) if endpoint == Endpoint::Import => {
            Err("missing $insert_id: /import events need an `$insert_id` of 1 to 36 characters [A-Za-z0-9-]".into())
        }
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if protocol::is_valid_insert_id(id) && !protocol::is_forbidden_distinct_id(id) => {
            Ok(Some(id.clone()))
        }
        Some(Value::String(id)) => Err(format!(
            "invalid $insert_id {id:?}: use 1 to 36 characters of [A-Za-z0-9-], for example a UUID"
        )),
        Some(other) => Err(format!("the $insert_id is {}, not a string", type_name(other))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn track(record: Value) -> Result<ValidEvent, RecordError> {
        validate_event(0, &record, Endpoint::Track, Some("tok"), NOW)
    }

    fn import(record: Value) -> Result<ValidEvent, RecordError> {
        validate_event(0, &record, Endpoint::Import, None, NOW)
    }

    #[test]
    fn track_event_with_seconds_time() {
        let event = track(json!({"event": "e", "properties": {"token": "tok", "time": 1_799_999_999.5, "distinct_id": "u"}})).unwrap();
        assert_eq!(event.time_ms, 1_799_999_999_500);
        assert_eq!(event.distinct_id, "u");
        assert_eq!(event.insert_id, None);
    }

    #[test]
    fn track_without_time_uses_received_time() {
        let event = track(json!({"event": "e", "properties": {"token": "tok"}})).unwrap();
        assert_eq!(event.time_ms, NOW);
    }

    #[test]
    fn track_rejects_wrong_token() {
        let error = track(json!({"event": "e", "properties": {"token": "other"}})).unwrap_err();
        assert_eq!(error.field, "properties.token");
    }

    #[test]
    fn track_rejects_old_events() {
        let error = track(json!({"event": "e", "properties": {"token": "tok", "time": NOW - 6 * DAY_MS}})).unwrap_err();
        assert_eq!(error.field, "properties.time");
        assert!(error.message.contains("/import"), "{}", error.message);
    }

    #[test]
    fn import_requires_fields() {
        let base = json!({"event": "e", "properties": {"time": NOW, "distinct_id": "u", "$insert_id": "abc"}});
        assert!(import(base.clone()).is_ok());
        for (field, expected) in [("time", "properties.time"), ("distinct_id", "properties.distinct_id"), ("$insert_id", "properties.$insert_id")] {
            let mut record = base.clone();
            record["properties"].as_object_mut().unwrap().remove(field);
            assert_eq!(import(record).unwrap_err().field, expected);
        }
    }

    #[test]
    fn rejects_forbidden_distinct_id_and_bad_insert_id() {
        let error = import(json!({"event": "e", "properties": {"time": NOW, "distinct_id": "undefined", "$insert_id": "a"}})).unwrap_err();
        assert_eq!(error.field, "properties.distinct_id");
        let error = import(json!({"event": "e", "properties": {"time": NOW, "distinct_id": "u", "$insert_id": "a_b"}})).unwrap_err();
        assert_eq!(error.field, "properties.$insert_id");
    }

    #[test]
    fn rejects_shape_limits() {
        let mut many = Map::new();
        many.insert("token".into(), json!("tok"));
        for i in 0..254 {
            many.insert(format!("p{i}"), json!(i));
        }
        assert_eq!(track(json!({"event": "e", "properties": many})).unwrap_err().field, "properties");

        let deep = json!({"event": "e", "properties": {"token": "tok", "a": {"b": {"c": {"d": {"e": 1}}}}}});
        assert_eq!(track(deep).unwrap_err().field, "properties.a.b.c.d");
        let ok_depth = json!({"event": "e", "properties": {"token": "tok", "a": {"b": {"c": {"d": 1}}}}});
        assert!(track(ok_depth).is_ok());

        let long = json!({"event": "e", "properties": {"token": "tok", "list": vec![1; 255]}});
        assert_eq!(track(long).unwrap_err().field, "properties.list");
    }

    #[test]
    fn rejects_non_object_and_missing_event() {
        assert_eq!(track(json!([1])).unwrap_err().field, "");
        assert_eq!(track(json!({"properties": {}})).unwrap_err().field, "event");
    }
}
