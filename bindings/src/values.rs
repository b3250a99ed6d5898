//! Decoding of the JSON strings that carry properties, per-event groups and group ids across
//! the boundary.
//!
//! The Swift and Kotlin layers encode native values into JSON with one rule, the same as the
//! Python binding's:
//! - dates with a time (`Date`, `Instant`) become UTC ISO-8601 strings
//!   `YYYY-MM-DDTHH:MM:SS.mmmZ`, and calendar dates (`LocalDate`) become `YYYY-MM-DD`;
//! - decimals (`Decimal`, `BigDecimal`) become JSON numbers written with their own digits;
//! - NaN and infinite floats become `null`, and the encoder passes how many it replaced so
//!   the client counts them in `Stats.non_finite_replaced`.
//!
//! This module checks the shape of what arrives and turns a malformed string into an error
//! that names the argument, so a bug in an encoder is never mistaken for user data.

use serde_json::Value;

use crate::errors::GroupscopeError;

/// Decodes the properties of an event or a profile operation: a JSON object, or `null` or an
/// empty string for none.
///
/// # Errors
/// [`GroupscopeError::InvalidProperty`] naming `argument` when the text is not JSON or not an
/// object.
pub fn decode_object(argument: &str, json: &str) -> Result<Value, GroupscopeError> {
    if json.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }

    match parse(argument, json)? {
        Value::Null => Ok(Value::Object(Default::default())),
        object @ Value::Object(_) => Ok(object),
        other => Err(not_an_object(argument, &other)),
    }
}

fn not_an_object(argument: &str, value: &Value) -> GroupscopeError {
    GroupscopeError::invalid_property(
        argument,
        format!(
            "must be a JSON object, got {}; pass a map of property names to values",
            kind(value)
        ),
    )
}

/// One `track` call as the Swift and Kotlin layers encode it: a JSON object with `event`,
/// `properties`, `groups` and `distinct_id`. Only `event` is required.
#[derive(Debug, PartialEq)]
pub struct TrackCall {
    /// The event name.
    pub event: String,
    /// The properties, always a JSON object.
    pub properties: Value,
    /// Per-event groups: each group key with one id or a list of ids, or `None` to leave that
    /// key off the event.
    pub groups: Vec<(String, Option<Value>)>,
    /// The `distinct_id` of this event instead of the client's identity.
    pub distinct_id: Option<String>,
}

/// Decodes one encoded `track` call.
///
/// # Errors
/// [`GroupscopeError::InvalidEventName`] when `event` is missing or not a string, and
/// [`GroupscopeError::InvalidProperty`] naming the member when the text is not a JSON object or
/// `properties`, `groups` or `distinct_id` has the wrong type. The core checks the values.
pub fn decode_track_call(json: &str) -> Result<TrackCall, GroupscopeError> {
    let Value::Object(mut call) = parse("call", json)? else {
        return Err(GroupscopeError::invalid_property(
            "call",
            "must be a JSON object with \"event\", \"properties\", \"groups\" and \"distinct_id\"",
        ));
    };

    let event = match call.remove("event") {
        Some(Value::String(event)) => event,
        other => {
            return Err(GroupscopeError::InvalidEventName(format!(
                "invalid event name {}: the event name must be a string",
                other.map_or("(missing)".to_owned(), |value| value.to_string())
            )));
        }
    };

    let properties = match call.remove("properties") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(object @ Value::Object(_)) => object,
        Some(other) => return Err(not_an_object("properties", &other)),
    };

    let groups = match call.remove("groups") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(key, ids)| match ids {
                Value::Null => (key, None),
                ids => (key, Some(ids)),
            })
            .collect(),
        Some(other) => return Err(not_an_object("groups", &other)),
    };

    let distinct_id = match call.remove("distinct_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(distinct_id)) => Some(distinct_id),
        Some(other) => {
            return Err(GroupscopeError::InvalidDistinctId(format!(
                "invalid distinct_id {other}: a distinct_id must be a string"
            )));
        }
    };

    Ok(TrackCall {
        event,
        properties,
        groups,
        distinct_id,
    })
}

/// Decodes one group id of `key`: a JSON string or integer.
///
/// # Errors
/// [`GroupscopeError::InvalidGroupId`] naming `key` when the text is not JSON. Other types are
/// rejected by the core with its own message.
pub fn decode_group_id(key: &str, json: &str) -> Result<Value, GroupscopeError> {
    serde_json::from_str(json).map_err(|error| {
        GroupscopeError::InvalidGroupId(format!(
            "invalid group id for group key {key:?}: {json:?} is not JSON ({error}); pass a string or an integer"
        ))
    })
}

/// Decodes the ids of `key`: a JSON list of strings and integers, or one id.
///
/// # Errors
/// As [`decode_group_id`].
pub fn decode_group_ids(key: &str, json: &str) -> Result<Vec<Value>, GroupscopeError> {
    match decode_group_id(key, json)? {
        Value::Array(ids) => Ok(ids),
        single => Ok(vec![single]),
    }
}

fn parse(argument: &str, json: &str) -> Result<Value, GroupscopeError> {
    serde_json::from_str(json).map_err(|error| {
        GroupscopeError::invalid_property(
            argument,
            format!("is not valid JSON ({error}); encode the values as a JSON object"),
        )
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_decoded() {
        let value = decode_object("properties", r#"{"plan":"pro","seats":5}"#).unwrap();

        assert_eq!(value, json!({"plan": "pro", "seats": 5}));
    }

    #[test]
    fn object_empty_and_null() {
        assert_eq!(decode_object("properties", "").unwrap(), json!({}));
        assert_eq!(decode_object("properties", "null").unwrap(), json!({}));
    }

    #[test]
    fn object_list_rejected() {
        let error = decode_object("properties", "[1]").unwrap_err();

        assert!(matches!(error, GroupscopeError::InvalidProperty(_)));
        assert_eq!(
            error.to_string(),
            r#"invalid property "properties": must be a JSON object, got a list; pass a map of property names to values"#
        );
    }

    #[test]
    fn object_malformed_rejected() {
        let error = decode_object("properties", "{\"plan\":").unwrap_err();

        assert!(
            error
                .to_string()
                .starts_with(r#"invalid property "properties": is not valid JSON"#),
            "{error}"
        );
    }

    #[test]
    fn track_call_decoded() {
        let call = decode_track_call(
            r#"{"event":"Signup","properties":{"plan":"pro"},"groups":{"company_id":["acme",5],"team_id":null},"distinct_id":"u1"}"#,
        )
        .unwrap();

        assert_eq!(call.event, "Signup");
        assert_eq!(call.properties, json!({"plan": "pro"}));
        assert_eq!(
            call.groups,
            vec![
                ("company_id".to_owned(), Some(json!(["acme", 5]))),
                ("team_id".to_owned(), None),
            ]
        );
        assert_eq!(call.distinct_id.as_deref(), Some("u1"));
    }

    #[test]
    fn track_call_event_only() {
        let call = decode_track_call(r#"{"event":"Opened"}"#).unwrap();

        assert_eq!(call.properties, json!({}));
        assert!(call.groups.is_empty());
        assert_eq!(call.distinct_id, None);
    }

    #[test]
    fn track_call_missing_event_rejected() {
        let error = decode_track_call(r#"{"properties":{}}"#).unwrap_err();

        assert!(matches!(error, GroupscopeError::InvalidEventName(_)));
        assert!(error.to_string().contains("(missing)"), "{error}");
    }

    #[test]
    fn track_call_list_properties_rejected() {
        let error = decode_track_call(r#"{"event":"E","properties":[1]}"#).unwrap_err();

        assert!(matches!(error, GroupscopeError::InvalidProperty(_)));
        assert!(
            error
                .to_string()
                .contains("must be a JSON object, got a list"),
            "{error}"
        );
    }

    #[test]
    fn track_call_numeric_distinct_id_rejected() {
        let error = decode_track_call(r#"{"event":"E","distinct_id":5}"#).unwrap_err();

        assert!(matches!(error, GroupscopeError::InvalidDistinctId(_)));
    }

    #[test]
    fn group_ids_single_and_list() {
        assert_eq!(
            decode_group_ids("company_id", "\"acme\"").unwrap(),
            vec![json!("acme")]
        );
        assert_eq!(
            decode_group_ids("company_id", "[\"a\",7]").unwrap(),
            vec![json!("a"), json!(7)]
        );
    }

    #[test]
    fn group_id_malformed_rejected() {
        let error = decode_group_id("company_id", "acme").unwrap_err();

        assert!(matches!(error, GroupscopeError::InvalidGroupId(_)));
        assert!(error.to_string().contains("\"company_id\""), "{error}");
    }
}
