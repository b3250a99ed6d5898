//! Client-side checks of Mixpanel's documented limits and rules on events, event distinct_ids
//! and group ids.
//!
//! The server drops an event that breaks one of these limits, or rejects its whole batch, long
//! after `track` returned. Checking them on the caller's thread turns that silent loss into an
//! [`Error`] that names the value and the fix.

use serde_json::Value;

use crate::Error;
use crate::protocol::{self, Endpoint, MAX_ARRAY_ELEMENTS, MAX_EVENT_BYTES, MAX_PROPERTIES};

/// Maximum time, in ms, by which an event `time` may be ahead of now on `/track` and `/import`.
pub(crate) const MAX_FUTURE_MS: i64 = 3_600 * 1000;

/// Maximum age of an event `time` on `/track`, in ms: 5 days.
pub(crate) const MAX_TRACK_AGE_MS: i64 = 5 * 86_400 * 1000;

/// The earliest event `time` `/import` accepts: 1971-01-01T00:00:00Z, in ms since the epoch.
pub(crate) const MIN_IMPORT_TIME_MS: i64 = 31_536_000 * 1000;

/// Checks an event's `time` (ms since the epoch) against the window of `endpoint`.
///
/// # Errors
/// [`Error::InvalidTime`] when `time_ms` is more than 1 hour after `now_ms`, more than 5 days
/// before it on `/track`, or before 1971-01-01 on `/import`.
pub(crate) fn check_event_time(endpoint: Endpoint, time_ms: i64, now_ms: i64) -> Result<(), Error> {
    let invalid = |reason| {
        Err(Error::InvalidTime {
            value: format!("{time_ms} ms since the epoch"),
            reason,
        })
    };

    if time_ms > now_ms.saturating_add(MAX_FUTURE_MS) {
        return invalid(
            "the time is more than 1 hour in the future, which Mixpanel rejects; check the clock or the unit (seconds below 1e11, milliseconds otherwise)",
        );
    }
    match endpoint {
        Endpoint::Import if time_ms < MIN_IMPORT_TIME_MS => invalid(
            "the time is before 1971-01-01, which /import rejects; check the unit (seconds below 1e11, milliseconds otherwise)",
        ),
        Endpoint::Track if time_ms < now_ms.saturating_sub(MAX_TRACK_AGE_MS) => invalid(
            "the time is more than 5 days old, which /track rejects; send older events with the client's import method, which uses /import",
        ),
        _ => Ok(()),
    }
}

/// The reason an event `distinct_id` that is one of Mixpanel's placeholders is rejected.
const PLACEHOLDER_REASON: &str = "Mixpanel treats this placeholder as invalid; pass the user's real id, or \"\" for an event with no user";

/// Resolves the `distinct_id` value an event is sent with: `option` (from
/// `TrackOptions::distinct_id`) when given, else the `distinct_id` property, else `identity`,
/// the client's identified or anonymous id.
///
/// `""` is an event with no user. The property may also be an integer, sent as given, or
/// `null` on `/track`, sent as `null` (also no user). An integer is checked as its decimal
/// string, so `0` and `-1` are rejected like the placeholders `"0"` and `"-1"`.
///
/// # Errors
/// [`Error::InvalidDistinctId`] for a placeholder Mixpanel rejects (see
/// [`protocol::FORBIDDEN_DISTINCT_IDS`]), a non-empty string of only whitespace, `null` on
/// `/import`, and a boolean, a floating-point number, a list or an object.
pub(crate) fn event_distinct_id(
    endpoint: Endpoint,
    option: Option<&str>,
    property: Option<&Value>,
    identity: &str,
) -> Result<Value, Error> {
    let invalid = |value: &Value, reason| {
        Err(Error::InvalidDistinctId {
            value: value.to_string(),
            reason,
        })
    };

    let text = match (option, property) {
        (Some(text), _) => text,
        (None, Some(Value::String(text))) => text.as_str(),
        (None, None) => return Ok(Value::String(identity.to_owned())),
        (None, Some(Value::Null)) => {
            if endpoint == Endpoint::Import {
                return invalid(
                    &Value::Null,
                    "/import rejects a null distinct_id; pass \"\" for an event with no user, or the user's id",
                );
            }
            return Ok(Value::Null);
        }
        (None, Some(integer @ Value::Number(number))) if number.is_i64() || number.is_u64() => {
            if protocol::is_forbidden_distinct_id(&number.to_string()) {
                return invalid(integer, PLACEHOLDER_REASON);
            }
            return Ok(integer.clone());
        }
        (None, Some(other)) => return invalid(other, unsupported_type_reason(other)),
    };

    if !text.is_empty() && text.trim().is_empty() {
        return invalid(
            &Value::from(text),
            "a distinct_id must not be only whitespace; pass the user's id, or \"\" for an event with no user",
        );
    }
    if protocol::is_forbidden_distinct_id(text) {
        return invalid(&Value::from(text), PLACEHOLDER_REASON);
    }
    Ok(Value::String(text.to_owned()))
}

/// Returns the reason an event `distinct_id` of an unsupported JSON type is rejected.
fn unsupported_type_reason(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => {
            "a distinct_id must be a string or an integer, not a boolean; pass the user's id as a string, or \"\" for an event with no user"
        }
        Value::Number(_) => {
            "a distinct_id must be a string or an integer, not a floating-point number; pass the user's id as a string, or \"\" for an event with no user"
        }
        Value::Array(_) => {
            "a distinct_id must be a string or an integer, not a list; pass the user's id as a string, or \"\" for an event with no user"
        }
        _ => {
            "a distinct_id must be a string or an integer, not an object; pass the user's id as a string, or \"\" for an event with no user"
        }
    }
}

/// Checks the number of properties of an event, including super properties, group super
/// properties and the ones the client writes itself. The per-value limits (list length and
/// object nesting) are checked as values are encoded, in [`crate::encode`].
///
/// # Errors
/// [`Error::InvalidProperty`] when there are 255 or more.
pub(crate) fn check_property_count(count: usize) -> Result<(), Error> {
    if count >= MAX_PROPERTIES {
        return Err(Error::InvalidProperty {
            name: "properties".to_owned(),
            reason: format!(
                "the event has {count} properties including super properties, group super properties and the library's own; Mixpanel accepts fewer than {MAX_PROPERTIES}, so send fewer properties or unregister super properties"
            ),
        });
    }
    Ok(())
}

/// Checks that a record of `len` bytes fits in one request to `endpoint` of at most
/// `max_request_bytes` (the value of the `setting` option), whose body is a JSON array of
/// records, and in Mixpanel's limit of [`MAX_EVENT_BYTES`] per record.
///
/// # Errors
/// [`Error::InvalidProperty`] with the record named by `describe`, when it does not fit.
pub(crate) fn check_record_size(
    endpoint: Endpoint,
    len: usize,
    max_request_bytes: usize,
    setting: &str,
    describe: impl FnOnce() -> String,
) -> Result<(), Error> {
    // Two bytes for the brackets of the array.
    let max_record_bytes = max_request_bytes.saturating_sub(2).min(MAX_EVENT_BYTES);
    if len <= max_record_bytes {
        return Ok(());
    }
    let limit = if max_record_bytes == MAX_EVENT_BYTES {
        format!("Mixpanel accepts at most {MAX_EVENT_BYTES} bytes per record")
    } else {
        format!(
            "at most {max_record_bytes} bytes fit in one request to {} ({setting} is {max_request_bytes})",
            endpoint.path()
        )
    };
    Err(Error::InvalidProperty {
        name: "properties".to_owned(),
        reason: format!(
            "{} is {len} bytes as JSON, and {limit}. Send smaller property values",
            describe()
        ),
    })
}

/// Checks the number of ids a group super property would hold. Every event carries the list
/// as a property, so a list the server rejects would make it reject every later event.
///
/// # Errors
/// [`Error::InvalidProperty`] naming `key` when `count` is [`MAX_ARRAY_ELEMENTS`] or more.
pub(crate) fn check_group_id_count(key: &str, count: usize) -> Result<(), Error> {
    if count >= MAX_ARRAY_ELEMENTS {
        return Err(Error::InvalidProperty {
            name: key.to_owned(),
            reason: format!(
                "the group key would hold {count} ids; events carry the ids as a list and Mixpanel accepts fewer than {MAX_ARRAY_ELEMENTS} elements, so keep at most {} ids per key (remove some with Client::remove_group)",
                MAX_ARRAY_ELEMENTS - 1
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::encode::EncodedProperties;

    const NOW: i64 = 1_700_000_000_000;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn event_id(endpoint: Endpoint, property: Value) -> Result<Value, Error> {
        event_distinct_id(endpoint, None, Some(&property), "user-1")
    }

    #[test]
    fn event_distinct_id_accepted_as_given() {
        let cases = [
            (Endpoint::Track, json!("")),
            (Endpoint::Import, json!("")),
            (Endpoint::Track, json!("user-2")),
            (Endpoint::Track, json!(7)),
            (Endpoint::Import, json!(7)),
            (Endpoint::Track, json!(-7)),
            (Endpoint::Track, json!(u64::MAX)),
            (Endpoint::Track, Value::Null),
        ];
        for (endpoint, property) in cases {
            let sent = event_id(endpoint, property.clone());
            assert_eq!(sent.ok(), Some(property), "{endpoint:?}");
        }
    }

    #[test]
    fn event_distinct_id_option_wins() {
        let sent = event_distinct_id(Endpoint::Track, Some(""), Some(&json!("user-2")), "user-1");
        assert_eq!(sent.unwrap(), json!(""));

        let sent = event_distinct_id(
            Endpoint::Import,
            Some("user-3"),
            Some(&Value::Null),
            "user-1",
        );
        assert_eq!(sent.unwrap(), json!("user-3"));
    }

    #[test]
    fn event_distinct_id_falls_back_to_identity() {
        let sent = event_distinct_id(Endpoint::Track, None, None, "$device:abc");
        assert_eq!(sent.unwrap(), json!("$device:abc"));

        let sent = event_distinct_id(Endpoint::Import, None, None, "user-1");
        assert_eq!(sent.unwrap(), json!("user-1"));
    }

    #[test]
    fn event_distinct_id_rejections_name_value() {
        let cases = [
            (json!("undefined"), "\"undefined\"", "placeholder"),
            (json!("NULL"), "\"NULL\"", "placeholder"),
            (json!(0), "distinct_id 0:", "placeholder"),
            (json!(-1), "distinct_id -1:", "placeholder"),
            (json!("  "), "\"  \"", "only whitespace"),
            (json!(true), "distinct_id true:", "not a boolean"),
            (
                json!(1.5),
                "distinct_id 1.5:",
                "not a floating-point number",
            ),
            (json!(["u"]), "distinct_id [\"u\"]:", "not a list"),
            (
                json!({"id": "u"}),
                "distinct_id {\"id\":\"u\"}:",
                "not an object",
            ),
        ];
        for (property, value, reason) in cases {
            let error = event_id(Endpoint::Track, property.clone()).unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(error, Error::InvalidDistinctId { .. }),
                "{property}: {message}"
            );
            assert!(message.contains(value), "{property}: {message}");
            assert!(message.contains(reason), "{property}: {message}");
            assert!(message.contains("pass "), "{property}: {message}");
        }
    }

    #[test]
    fn event_distinct_id_option_placeholder_rejected() {
        let error = event_distinct_id(Endpoint::Track, Some("anonymous"), None, "user-1");
        let message = error.unwrap_err().to_string();
        assert!(message.contains("\"anonymous\""), "{message}");
        assert!(message.contains("placeholder"), "{message}");
    }

    #[test]
    fn import_null_distinct_id_rejected() {
        let error = event_id(Endpoint::Import, Value::Null).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, Error::InvalidDistinctId { .. }),
            "{message}"
        );
        assert!(message.contains("distinct_id null:"), "{message}");
        assert!(
            message.contains("/import rejects a null distinct_id"),
            "{message}"
        );
        assert!(
            message.contains("pass \"\" for an event with no user"),
            "{message}"
        );
    }

    #[test]
    fn track_time_window() {
        assert!(check_event_time(Endpoint::Track, NOW, NOW).is_ok());
        assert!(check_event_time(Endpoint::Track, NOW + MAX_FUTURE_MS, NOW).is_ok());
        assert!(check_event_time(Endpoint::Track, NOW - MAX_TRACK_AGE_MS, NOW).is_ok());

        let future = check_event_time(Endpoint::Track, NOW + MAX_FUTURE_MS + 1, NOW);
        assert!(
            matches!(future, Err(Error::InvalidTime { .. })),
            "{future:?}"
        );

        let old = check_event_time(Endpoint::Track, NOW - MAX_TRACK_AGE_MS - 1, NOW);
        let message = old.unwrap_err().to_string();
        assert!(message.contains("import method"), "{message}");
    }

    #[test]
    fn import_time_window() {
        assert!(check_event_time(Endpoint::Import, MIN_IMPORT_TIME_MS, NOW).is_ok());
        assert!(check_event_time(Endpoint::Import, NOW - 10 * MAX_TRACK_AGE_MS, NOW).is_ok());
        assert!(check_event_time(Endpoint::Import, MIN_IMPORT_TIME_MS - 1, NOW).is_err());
        assert!(check_event_time(Endpoint::Import, NOW + MAX_FUTURE_MS + 1, NOW).is_err());
    }

    #[test]
    fn property_count_limit() {
        assert!(check_property_count(MAX_PROPERTIES - 1).is_ok());
        let error = check_property_count(MAX_PROPERTIES).unwrap_err();
        assert!(error.to_string().contains("255 properties"), "{error}");
    }

    fn encode(value: Value) -> Result<EncodedProperties, Error> {
        EncodedProperties::from_map(&object(value))
    }

    #[test]
    fn list_length_limit() {
        assert!(encode(json!({"tags": vec![1; MAX_ARRAY_ELEMENTS - 1]})).is_ok());

        let error = encode(json!({"tags": vec![1; MAX_ARRAY_ELEMENTS]})).unwrap_err();
        assert!(error.to_string().contains("\"tags\""), "{error}");

        assert!(encode(json!({"outer": {"tags": vec![1; MAX_ARRAY_ELEMENTS]}})).is_err());
    }

    #[test]
    fn nesting_depth_limit() {
        assert!(encode(json!({"a": {"b": {"c": {"d": 1}}}})).is_ok());

        let error = encode(json!({"a": {"b": {"c": {"d": {"e": 1}}}}})).unwrap_err();
        assert!(error.to_string().contains("\"a\""), "{error}");

        assert!(encode(json!({"a": [{"b": {"c": {"d": {}}}}]})).is_err());
    }

    #[test]
    fn record_size_limit() {
        let describe = || "event \"e\"".to_owned();
        let import = |len| {
            check_record_size(Endpoint::Import, len, 10_000_000, "max_import_request_bytes", describe)
        };
        assert!(import(MAX_EVENT_BYTES).is_ok());
        let message = import(MAX_EVENT_BYTES + 1).unwrap_err().to_string();
        assert!(message.contains("at most 1048576 bytes per record"), "{message}");

        let track = |len| check_record_size(Endpoint::Track, len, 4096, "max_request_bytes", describe);
        assert!(track(4094).is_ok());
        let message = track(4095).unwrap_err().to_string();
        assert!(message.contains("event \"e\" is 4095 bytes"), "{message}");
        assert!(message.contains("max_request_bytes is 4096"), "{message}");
    }

    #[test]
    fn group_id_count_limit() {
        assert!(check_group_id_count("company_id", MAX_ARRAY_ELEMENTS - 1).is_ok());
        let error = check_group_id_count("company_id", MAX_ARRAY_ELEMENTS).unwrap_err();
        assert!(error.to_string().contains("company_id"), "{error}");
    }
}
