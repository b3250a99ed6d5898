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

use crate::encode::{EncodedProperties, write_json};
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
    /// The current distinct_id.
    pub distinct_id: &'a str,
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

/// Checks the distinct_id of an identity or a user profile, which needs a user. Events follow
/// the rule of [`crate::validate::event_distinct_id`] instead.
///
/// # Errors
/// [`Error::InvalidDistinctId`] when it is empty or a placeholder Mixpanel rejects.
pub(crate) fn validate_distinct_id(distinct_id: &str) -> Result<(), Error> {
    if distinct_id.trim().is_empty() {
        return Err(Error::InvalidDistinctId {
            value: Value::from(distinct_id).to_string(),
            reason: "identify and user-profile updates need a user, so the distinct_id must not be empty; pass the user's stable id (\"\" is allowed on events only)",
        });
    }
    if protocol::is_forbidden_distinct_id(distinct_id) {
        return Err(Error::InvalidDistinctId {
            value: Value::from(distinct_id).to_string(),
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
/// The validation errors of [`validate_event_name`], [`time_ms`] and
/// [`crate::validate::event_distinct_id`], plus [`Error::InvalidGroupKey`]/[`Error::InvalidGroupId`] for
/// per-event groups and [`Error::InvalidProperty`] for a malformed `$insert_id` or a super
/// property over a per-value limit. The limit checks of [`crate::validate`] add
/// [`Error::InvalidTime`] outside the endpoint's time window and [`Error::InvalidProperty`]
/// for too many properties or an event over 1 MB. List length and nesting of call-site
/// properties were checked when `properties` was encoded.
pub(crate) fn build_event(
    endpoint: Endpoint,
    context: &EventContext<'_>,
    encoded_context: &EncodedContext,
    event: &str,
    properties: &EncodedProperties,
    options: &TrackOptions,
) -> Result<(Record, String), Error> {
    validate_event_name(event)?;
    encoded_context.check()?;

    // Per-event groups, validated and encoded; a later entry for the same key wins.
    let mut event_groups: Vec<(&str, Option<Vec<u8>>)> = Vec::with_capacity(options.groups.len());
    for (key, ids) in &options.groups {
        crate::groups::validate_group_key(key)?;
        let encoded = match ids {
            Some(ids) => {
                let ids = GroupIds::from_json(key, ids)?;
                crate::validate::check_group_id_count(key, ids.len())?;
                Some(encode_entry(key, &ids.to_json()))
            }
            None => None,
        };
        event_groups.retain(|(earlier, _)| *earlier != key);
        event_groups.push((key, encoded));
    }
    let set_per_event = |name: &str| event_groups.iter().any(|(key, _)| *key == name);

    // The call site's `time`, `distinct_id` and `$insert_id` win over super properties.
    let special = |name: &str| {
        properties
            .value(name)
            .or_else(|| encoded_context.special(name).cloned())
    };
    let now = now_ms();
    let time = match (options.time, special("time")) {
        (Some(time), _) => time_from_f64(time)?,
        (None, Some(value)) => time_ms(&value)?,
        (None, None) => now,
    };
    crate::validate::check_event_time(endpoint, time, now)?;

    let distinct_id = crate::validate::event_distinct_id(
        endpoint,
        options.distinct_id.as_deref(),
        special("distinct_id").as_ref(),
        context.distinct_id,
    )?;

    let insert_id = match special("$insert_id") {
        Some(Value::String(id)) if protocol::is_valid_insert_id(&id) => id,
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

    // Precedence, lowest first: super properties and group super properties (already merged
    // in `encoded_context`), call-site properties, per-event groups, then the client's own.
    let mut body = Vec::with_capacity(
        96 + event.len() + encoded_context.text_len() + properties.text_len() + 64,
    );
    body.extend_from_slice(b"{\"event\":");
    write_json(&mut body, event);
    body.extend_from_slice(b",\"properties\":{");
    let mut count = 0;
    let mut push = |body: &mut Vec<u8>, entry: &[u8]| {
        if count > 0 {
            body.push(b',');
        }
        body.extend_from_slice(entry);
        count += 1;
    };
    for (name, entry) in encoded_context.entries() {
        if !properties.contains(name) && !set_per_event(name) {
            push(&mut body, entry);
        }
    }
    for (name, entry) in properties.entries() {
        if !is_written_by_client(name) && !set_per_event(name) {
            push(&mut body, entry);
        }
    }
    for (_, entry) in &event_groups {
        if let Some(entry) = entry {
            push(&mut body, entry);
        }
    }
    if count > 0 {
        body.push(b',');
    }
    body.extend_from_slice(b"\"time\":");
    write_json(&mut body, &time);
    body.extend_from_slice(b",\"distinct_id\":");
    write_json(&mut body, &distinct_id);
    body.extend_from_slice(b",\"$insert_id\":");
    write_json(&mut body, &insert_id);
    body.push(b',');
    body.extend_from_slice(&encoded_context.client_properties);
    body.extend_from_slice(b"}}");

    crate::validate::check_property_count(count + 3 + CLIENT_PROPERTIES)?;
    let body = String::from_utf8(body).expect("the writer emits UTF-8 JSON");
    let record = Record {
        endpoint,
        insert_id: Some(insert_id.clone()),
        body: body.into(),
    };
    Ok((record, insert_id))
}

/// Whether the client writes property `name` itself, so a call-site value is not copied.
fn is_written_by_client(name: &str) -> bool {
    matches!(name, "time" | "distinct_id" | "$insert_id") || OWNED_EVENT_PROPERTIES.contains(&name)
}

/// Encodes `"name":value`.
fn encode_entry<T: serde::Serialize + ?Sized>(name: &str, value: &T) -> Vec<u8> {
    let mut entry = Vec::with_capacity(name.len() + 40);
    write_json(&mut entry, name);
    entry.push(b':');
    write_json(&mut entry, value);
    entry
}

/// How many properties [`EncodedContext::client_properties`] holds.
const CLIENT_PROPERTIES: usize = 3;

/// The super properties and group super properties of a client, merged and encoded once per
/// change instead of once per event, and the properties the client writes on every event.
#[derive(Debug, Default)]
pub(crate) struct EncodedContext {
    /// Each property's name and `"name":value` text, without the ones the client writes itself.
    entries: Vec<(String, Vec<u8>)>,
    /// `"token":…,"mp_lib":…,"$lib_version":…`.
    client_properties: Vec<u8>,
    /// Super properties named `time`, `distinct_id` or `$insert_id`.
    special: Vec<(&'static str, Value)>,
    /// The first per-value limit a super property breaks: its name and the reason.
    invalid: Option<(String, String)>,
}

impl EncodedContext {
    /// Merges `super_properties` with `groups` (groups win) and encodes the result.
    pub(crate) fn new(
        token: &str,
        super_properties: &Map<String, Value>,
        groups: &BTreeMap<String, GroupIds>,
    ) -> Self {
        let mut merged = super_properties.clone();
        for (key, ids) in groups {
            merged.insert(key.clone(), ids.to_json());
        }

        let mut context = EncodedContext::default();
        for (index, (name, value)) in [
            ("token", token),
            ("mp_lib", crate::LIB_NAME),
            ("$lib_version", crate::LIB_VERSION),
        ]
        .into_iter()
        .enumerate()
        {
            if index > 0 {
                context.client_properties.push(b',');
            }
            context.client_properties.extend(encode_entry(name, value));
        }
        debug_assert_eq!(CLIENT_PROPERTIES, 3);
        if let Err(Error::InvalidProperty { name, reason }) = EncodedProperties::from_map(&merged) {
            context.invalid = Some((name, reason));
        }
        for (name, value) in merged {
            match name.as_str() {
                "time" => context.special.push(("time", value)),
                "distinct_id" => context.special.push(("distinct_id", value)),
                "$insert_id" => context.special.push(("$insert_id", value)),
                other if is_written_by_client(other) => {}
                _ => {
                    let entry = encode_entry(&name, &value);
                    context.entries.push((name, entry));
                }
            }
        }
        context
    }

    /// Fails when a super property breaks a per-value limit, as every event would.
    fn check(&self) -> Result<(), Error> {
        match &self.invalid {
            Some((name, reason)) => Err(Error::InvalidProperty {
                name: name.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn special(&self, name: &str) -> Option<&Value> {
        self.special
            .iter()
            .find(|(special, _)| *special == name)
            .map(|(_, value)| value)
    }

    fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries
            .iter()
            .map(|(name, entry)| (name.as_str(), entry.as_slice()))
    }

    fn text_len(&self) -> usize {
        self.entries.iter().map(|(_, entry)| entry.len() + 1).sum()
    }
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
        body: encode_json(&Value::Object(body)).into(),
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
        body: encode_json(&Value::Object(body)).into(),
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

    /// Builds an event the way the client does, from super properties, group super
    /// properties and call-site properties.
    fn build(
        endpoint: Endpoint,
        super_properties: &Map<String, Value>,
        groups: &BTreeMap<String, GroupIds>,
        event: &str,
        properties: Value,
        options: &TrackOptions,
    ) -> Result<(Record, String), Error> {
        let context = EventContext {
            distinct_id: "user-1",
        };
        let encoded_context = EncodedContext::new("tok", super_properties, groups);
        let properties = EncodedProperties::from_value(properties)?;
        build_event(
            endpoint,
            &context,
            &encoded_context,
            event,
            &properties,
            options,
        )
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
        let (record, _) = build(
            Endpoint::Track,
            &supers,
            &groups,
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
        let (record, _) = build(
            Endpoint::Import,
            &supers,
            &groups,
            "x",
            Value::Null,
            &options,
        )
        .unwrap();
        assert_eq!(properties_of(&record)["time"], 1_700_000_000_250i64);

        let (record, _) = build(
            Endpoint::Import,
            &supers,
            &groups,
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
        let (record, insert_id) = build(
            Endpoint::Track,
            &supers,
            &groups,
            "x",
            Value::Null,
            &TrackOptions::default(),
        )
        .unwrap();
        assert_eq!(insert_id.len(), 32);
        assert!(insert_id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(properties_of(&record)["$insert_id"], insert_id.as_str());
    }

    /// Builds a `/track` event named "x" with default options.
    fn track_plain(
        super_properties: &Map<String, Value>,
        groups: &BTreeMap<String, GroupIds>,
        properties: Value,
    ) -> Result<(Record, String), Error> {
        build(
            Endpoint::Track,
            super_properties,
            groups,
            "x",
            properties,
            &TrackOptions::default(),
        )
    }

    #[test]
    fn precedence_from_super_properties_to_per_event_groups() {
        let supers =
            json!({"plan": "free", "region": "eu", "company_id": "from-supers", "token": "x"})
                .as_object()
                .unwrap()
                .clone();
        let mut groups = BTreeMap::new();
        groups.insert(
            "company_id".to_owned(),
            GroupIds::collect("company_id", ["acme"]).unwrap(),
        );
        groups.insert(
            "project_id".to_owned(),
            GroupIds::collect("project_id", ["p1"]).unwrap(),
        );
        let options = TrackOptions::default()
            .group("company_id", "globex")
            .without_group("project_id")
            .without_group("team_id");
        let call_site =
            json!({"plan": "pro", "team_id": "t1", "mp_lib": "other", "$lib_version": "0"});

        let (record, _) =
            build(Endpoint::Track, &supers, &groups, "x", call_site, &options).unwrap();

        let properties = properties_of(&record);
        assert_eq!(properties["plan"], "pro");
        assert_eq!(properties["region"], "eu");
        assert_eq!(properties["company_id"], json!(["globex"]));
        assert!(!properties.contains_key("project_id"), "{properties:?}");
        assert!(!properties.contains_key("team_id"), "{properties:?}");
        assert_eq!(properties["token"], "tok");
        assert_eq!(properties["mp_lib"], "groupscope");
        assert_eq!(properties["$lib_version"], crate::LIB_VERSION);
        // Every name appears once in the text, not only in the decoded map.
        assert_eq!(
            record.body.matches("\"plan\"").count(),
            1,
            "{}",
            record.body
        );
        assert_eq!(
            record.body.matches("\"company_id\"").count(),
            1,
            "{}",
            record.body
        );
        assert_eq!(
            record.body.matches("\"token\"").count(),
            1,
            "{}",
            record.body
        );
    }

    #[test]
    fn special_super_properties_apply_unless_the_call_site_sets_them() {
        let supers = json!({"distinct_id": "from-supers", "$insert_id": "abc-123"})
            .as_object()
            .unwrap()
            .clone();
        let groups = BTreeMap::new();
        let (record, insert_id) = track_plain(&supers, &groups, Value::Null).unwrap();
        assert_eq!(insert_id, "abc-123");
        assert_eq!(properties_of(&record)["distinct_id"], "from-supers");

        let call_site = json!({"distinct_id": "from-call", "$insert_id": "def-456"});
        let (record, insert_id) = track_plain(&supers, &groups, call_site).unwrap();
        assert_eq!(insert_id, "def-456");
        assert_eq!(properties_of(&record)["distinct_id"], "from-call");
        assert_eq!(
            record.body.matches("\"distinct_id\"").count(),
            1,
            "{}",
            record.body
        );
    }

    #[test]
    fn property_count_includes_super_properties_and_the_clients_own() {
        let groups = BTreeMap::new();
        let mut supers = Map::new();
        // With the 6 properties the client writes, 248 + 6 = 254 is the most Mixpanel accepts.
        for i in 0..248 {
            supers.insert(format!("s{i}"), json!(i));
        }
        assert!(track_plain(&supers, &groups, Value::Null).is_ok());

        // A call-site property that overrides a super property adds nothing.
        let same_name = json!({"s0": "again"});
        assert!(track_plain(&supers, &groups, same_name).is_ok());

        let one_more = json!({"new": 1});
        let error = track_plain(&supers, &groups, one_more).unwrap_err();
        assert!(error.to_string().contains("255 properties"), "{error}");
    }

    #[test]
    fn a_super_property_over_a_limit_fails_every_event() {
        let supers = json!({"tags": vec![1; crate::protocol::MAX_ARRAY_ELEMENTS]})
            .as_object()
            .unwrap()
            .clone();
        let groups = BTreeMap::new();
        let error = track_plain(&supers, &groups, Value::Null).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidProperty { name, .. } if name == "tags"),
            "{error}"
        );
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
