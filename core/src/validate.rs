//! Client-side checks of Mixpanel's documented limits on events and group ids.
//!
//! The server drops an event that breaks one of these limits, or rejects its whole batch, long
//! after `track` returned. Checking them on the caller's thread turns that silent loss into an
//! [`Error`] that names the value and the fix.

use crate::Error;
use crate::protocol::{
    Endpoint, MAX_ARRAY_ELEMENTS, MAX_EVENT_BYTES, MAX_PROPERTIES,
};

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
            "the time is more than 5 days old, which /track rejects; use Client::import for events older than 5 days",
        ),
        _ => Ok(()),
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

/// Checks the encoded size of one event.
///
/// # Errors
/// [`Error::InvalidProperty`] when `encoded_len` is above [`MAX_EVENT_BYTES`].
pub(crate) fn check_event_size(event: &str, encoded_len: usize) -> Result<(), Error> {
    if encoded_len > MAX_EVENT_BYTES {
        return Err(Error::InvalidProperty {
            name: "properties".to_owned(),
            reason: format!(
                "event {event:?} is {encoded_len} bytes as JSON; Mixpanel accepts at most {MAX_EVENT_BYTES} bytes per event, so send smaller property values"
            ),
        });
    }
    Ok(())
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
        assert!(message.contains("Client::import"), "{message}");
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
    fn event_size_limit() {
        assert!(check_event_size("e", MAX_EVENT_BYTES).is_ok());
        assert!(check_event_size("e", MAX_EVENT_BYTES + 1).is_err());
    }

    #[test]
    fn group_id_count_limit() {
        assert!(check_group_id_count("company_id", MAX_ARRAY_ELEMENTS - 1).is_ok());
        let error = check_group_id_count("company_id", MAX_ARRAY_ELEMENTS).unwrap_err();
        assert!(error.to_string().contains("company_id"), "{error}");
    }
}
