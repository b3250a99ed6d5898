//! Group attribution: which groups an event belongs to, and why it does not belong to the
//! groups of a key it carries.
//!
//! An event is attributed to the group `(K, g)` when its property `K` is the string `g` or a
//! list containing `g`. `K` must be a configured group key, set up no later than the moment
//! the event was received. Integers are read as their decimal string with a
//! warning. `null`, `""`, `[]`, booleans, floats and objects attribute nothing. Events
//! received before the key was set up are never attributed to it (no backfill), whatever
//! their own `time` says.
//!
//! [`attribute`] is a pure function so the server and the offline checker decide alike.

use serde::Serialize;
use serde_json::{Map, Value};

/// A configured group key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupKey {
    /// The event property that carries the group id, for example `company_id`.
    pub property: String,
    /// The name shown in reports.
    pub display_name: String,
    /// When the key was set up, in milliseconds since the epoch.
    pub set_up_at_ms: i64,
}

/// One group an event is attributed to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupRef {
    /// The group key.
    pub key: String,
    /// The group id.
    pub id: String,
}

/// The reason an event that carries a configured key is not attributed to any group of that key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The event was received before the key was set up; Mixpanel never backfills.
    BeforeSetUp,
    /// The value is `null`, `""` or `[]`.
    EmptyValue,
    /// The value is a boolean, a float, an object, or a list without a usable id.
    WrongType,
    /// The event was received while the key was deleted; adding the key again does not
    /// backfill it.
    KeyDeleted,
}

impl Reason {
    /// Returns the code used in storage and in JSON output, for example `before_set_up`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::BeforeSetUp => "before_set_up",
            Reason::EmptyValue => "empty_value",
            Reason::WrongType => "wrong_type",
            Reason::KeyDeleted => "key_deleted",
        }
    }

    /// Parses a code returned by [`Reason::code`].
    pub fn from_code(code: &str) -> Option<Reason> {
        [Reason::BeforeSetUp, Reason::EmptyValue, Reason::WrongType, Reason::KeyDeleted]
            .into_iter()
            .find(|reason| reason.code() == code)
    }
}

/// A configured key the event carries but is not attributed to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotAttributed {
    /// The group key.
    pub key: String,
    /// The reason no group of this key was attributed.
    pub reason: Reason,
    /// The value the event carries for the key.
    pub value: Value,
    /// A sentence for people that names the value and what to do.
    pub message: String,
}

/// Something accepted but worth fixing in the tracking code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// An integer id was read as its decimal string.
    IntegerId,
    /// A list element that is not a usable id was skipped while other elements were attributed.
    IgnoredListElement,
}

impl WarningKind {
    /// Returns the code used in storage and in JSON output, for example `integer_id`.
    pub fn code(self) -> &'static str {
        match self {
            WarningKind::IntegerId => "integer_id",
            WarningKind::IgnoredListElement => "ignored_list_element",
        }
    }

    /// Parses a code returned by [`WarningKind::code`].
    pub fn from_code(code: &str) -> Option<WarningKind> {
        [WarningKind::IntegerId, WarningKind::IgnoredListElement]
            .into_iter()
            .find(|kind| kind.code() == code)
    }
}

/// A warning about one key of one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionWarning {
    /// The group key.
    pub key: String,
    /// The kind of problem.
    pub kind: WarningKind,
    /// The value concerned: the integer id or the skipped list element.
    pub value: Value,
    /// A sentence for people that names the value and what to do.
    pub message: String,
}

/// The attribution of one event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attribution {
    /// The groups the event is attributed to, in key order, then id order of first appearance.
    pub groups: Vec<GroupRef>,
    /// The configured keys the event carries but is not attributed to.
    pub not_attributed: Vec<NotAttributed>,
    /// Warnings about keys that were attributed.
    pub warnings: Vec<AttributionWarning>,
}

/// Decides the attribution of an event from its properties, the configured keys and the time
/// the server received it (milliseconds since the epoch).
pub fn attribute(properties: &Map<String, Value>, keys: &[GroupKey], received_at_ms: i64) -> Attribution {
    let mut attribution = Attribution::default();

    for key in keys {
        let Some(value) = properties.get(&key.property) else {
            continue;
        };

        if received_at_ms < key.set_up_at_ms {
            attribution.not_attributed.push(NotAttributed {
                key: key.property.clone(),
                reason: Reason::BeforeSetUp,
                value: value.clone(),
                message: format!(
                    "received at {} but group key {:?} was set up at {}; events received before a key is set up are never attributed (no backfill)",
                    crate::time::format_rfc3339(received_at_ms),
                    key.property,
                    crate::time::format_rfc3339(key.set_up_at_ms)
                ),
            });
            continue;
        }

        attribute_key(&key.property, value, &mut attribution);
    }

    attribution
}

/// Decides the attribution of `key` for an event received while the key was deleted: no
/// group, with the reason `key_deleted`, or nothing when the event does not carry the key.
pub fn while_deleted(key: &str, properties: &Map<String, Value>, received_at_ms: i64, deleted_at_ms: i64) -> Attribution {
    let mut attribution = Attribution::default();
    if let Some(value) = properties.get(key) {
        attribution.not_attributed.push(NotAttributed {
            key: key.to_owned(),
            reason: Reason::KeyDeleted,
            value: value.clone(),
            message: format!(
                "received at {} while group key {key:?} was deleted (since {}); events received while a key is deleted are never attributed to it",
                crate::time::format_rfc3339(received_at_ms),
                crate::time::format_rfc3339(deleted_at_ms)
            ),
        });
    }
    attribution
}

/// The outcome of reading one value as a group id.
enum IdRead {
    Id(String),
    IntegerId(String),
    Empty(&'static str),
    WrongType(&'static str),
}

fn read_id(value: &Value) -> IdRead {
    match value {
        Value::String(s) if s.is_empty() => IdRead::Empty("an empty string"),
        Value::String(s) => IdRead::Id(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => IdRead::IntegerId(n.to_string()),
        Value::Number(n) if is_huge_integer(n) => IdRead::WrongType("an integer too large to be a group id"),
        Value::Number(_) => IdRead::WrongType("a float"),
        Value::Null => IdRead::Empty("null"),
        Value::Bool(_) => IdRead::WrongType("a boolean"),
        Value::Array(_) => IdRead::WrongType("a nested list"),
        Value::Object(_) => IdRead::WrongType("an object"),
    }
}

/// Returns whether `number` is an integer outside the 64-bit range. serde_json reads such
/// integers as floats, so a whole float beyond ±2^63 most likely was one.
pub fn is_huge_integer(number: &serde_json::Number) -> bool {
    number.as_f64().is_some_and(|float| float.is_finite() && float.fract() == 0.0 && float.abs() >= 9.223_372_036_854_776e18)
}

fn attribute_key(key: &str, value: &Value, attribution: &mut Attribution) {
    let not_attributed = |reason: Reason, what: &str| NotAttributed {
        key: key.to_owned(),
        reason,
        value: value.clone(),
        message: match reason {
            Reason::EmptyValue => format!(
                "{key} is {what}, so no group is attributed; send a non-empty string id or a list of them"
            ),
            _ => format!(
                "{key} is {what} ({value}), so no group is attributed; group ids must be strings (integers are read as strings)"
            ),
        },
    };

    let elements: Vec<&Value> = match value {
        Value::Array(items) if items.is_empty() => {
            attribution.not_attributed.push(not_attributed(Reason::EmptyValue, "an empty list"));
            return;
        }
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };

    let mut ids: Vec<String> = Vec::new();
    let mut first_failure: Option<(Reason, &'static str)> = None;
    let mut skipped: Vec<(&Value, &'static str)> = Vec::new();
    let mut integer_ids: Vec<(&Value, String)> = Vec::new();

    for element in &elements {
        let id = match read_id(element) {
            IdRead::Id(id) => id,
            IdRead::IntegerId(id) => {
                integer_ids.push((element, id.clone()));
                id
            }
            IdRead::Empty(what) => {
                first_failure.get_or_insert((Reason::EmptyValue, what));
                skipped.push((element, what));
                continue;
            }
            IdRead::WrongType(what) => {
                first_failure.get_or_insert((Reason::WrongType, what));
                skipped.push((element, what));
                continue;
            }
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    if ids.is_empty() {
        let (reason, what) = first_failure.unwrap_or((Reason::WrongType, "unusable"));
        let what = if elements.len() > 1 || value.is_array() {
            match reason {
                Reason::EmptyValue => "a list of empty values",
                _ => "a list without a string or integer id",
            }
        } else {
            what
        };
        attribution.not_attributed.push(not_attributed(reason, what));
        return;
    }

    for (element, id) in integer_ids {
        attribution.warnings.push(AttributionWarning {
            key: key.to_owned(),
            kind: WarningKind::IntegerId,
            value: (*element).clone(),
            message: format!(
                "{key} is the integer {element}, read as the string id \"{id}\"; send group ids as strings"
            ),
        });
    }
    for (element, what) in skipped {
        attribution.warnings.push(AttributionWarning {
            key: key.to_owned(),
            kind: WarningKind::IgnoredListElement,
            value: element.clone(),
            message: format!("{key} contains {what} ({element}), which was skipped; list only string ids"),
        });
    }
    for id in ids {
        attribution.groups.push(GroupRef { key: key.to_owned(), id });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn keys() -> Vec<GroupKey> {
        vec![
            GroupKey { property: "company_id".into(), display_name: "Company".into(), set_up_at_ms: 1_000 },
            GroupKey { property: "team_id".into(), display_name: "Team".into(), set_up_at_ms: 5_000 },
        ]
    }

    fn props(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn ids(attribution: &Attribution) -> Vec<(String, String)> {
        attribution.groups.iter().map(|g| (g.key.clone(), g.id.clone())).collect()
    }

    #[test]
    fn string_id_is_attributed() {
        let a = attribute(&props(json!({"company_id": "acme"})), &keys(), 2_000);
        assert_eq!(ids(&a), vec![("company_id".into(), "acme".into())]);
        assert!(a.not_attributed.is_empty());
        assert!(a.warnings.is_empty());
    }

    #[test]
    fn list_attributes_each_id_once() {
        let a = attribute(&props(json!({"company_id": ["a", "b", "a"]})), &keys(), 2_000);
        assert_eq!(ids(&a), vec![("company_id".into(), "a".into()), ("company_id".into(), "b".into())]);
    }

    #[test]
    fn integer_id_is_read_as_string_with_warning() {
        let a = attribute(&props(json!({"company_id": 5})), &keys(), 2_000);
        assert_eq!(ids(&a), vec![("company_id".into(), "5".into())]);
        assert_eq!(a.warnings.len(), 1);
        assert_eq!(a.warnings[0].kind, WarningKind::IntegerId);
    }

    #[test]
    fn integer_and_string_dedupe() {
        let a = attribute(&props(json!({"company_id": [5, "5"]})), &keys(), 2_000);
        assert_eq!(ids(&a), vec![("company_id".into(), "5".into())]);
    }

    #[test]
    fn before_set_up_is_not_attributed() {
        let a = attribute(&props(json!({"team_id": "t1", "company_id": "acme"})), &keys(), 2_000);
        assert_eq!(ids(&a), vec![("company_id".into(), "acme".into())]);
        assert_eq!(a.not_attributed.len(), 1);
        assert_eq!(a.not_attributed[0].key, "team_id");
        assert_eq!(a.not_attributed[0].reason, Reason::BeforeSetUp);
    }

    #[test]
    fn set_up_time_itself_counts() {
        let a = attribute(&props(json!({"team_id": "t1"})), &keys(), 5_000);
        assert_eq!(ids(&a), vec![("team_id".into(), "t1".into())]);
    }

    #[test]
    fn empty_values_have_empty_reason() {
        for value in [json!(null), json!(""), json!([]), json!([null, ""])] {
            let a = attribute(&props(json!({"company_id": value})), &keys(), 2_000);
            assert!(a.groups.is_empty(), "{value}");
            assert_eq!(a.not_attributed[0].reason, Reason::EmptyValue, "{value}");
        }
    }

    #[test]
    fn wrong_types_have_wrong_type_reason() {
        for value in [json!(true), json!(1.5), json!({"id": "a"}), json!([[1]])] {
            let a = attribute(&props(json!({"company_id": value})), &keys(), 2_000);
            assert!(a.groups.is_empty(), "{value}");
            assert_eq!(a.not_attributed[0].reason, Reason::WrongType, "{value}");
        }
    }

    #[test]
    fn mixed_list_skips_bad_elements_with_warning() {
        let a = attribute(&props(json!({"company_id": ["a", true, null]})), &keys(), 2_000);
        assert_eq!(ids(&a), vec![("company_id".into(), "a".into())]);
        assert_eq!(a.warnings.len(), 2);
        assert!(a.warnings.iter().all(|w| w.kind == WarningKind::IgnoredListElement));
    }

    #[test]
    fn unconfigured_and_absent_keys_are_ignored() {
        let a = attribute(&props(json!({"project_id": "p"})), &keys(), 9_000);
        assert_eq!(a, Attribution::default());
    }
}
