//! The offline attribution checker: reads events from JSONL and reports, per group key, how
//! many events were attributed and why the others were not.
//!
//! Each line is one event, `{"event": …, "properties": {…}}`, optionally with a top-level
//! `received_at` (milliseconds or RFC 3339), the form `GET /api/events` returns. Attribution
//! depends on when an event was received, never on its own `time`. A line without
//! `received_at` is decided by its `time` property instead, and without both by the time of
//! the check. The summary counts the lines that needed each fallback, and names the lines
//! whose `received_at` is invalid.
//!
//! A key whose config gives no set-up time (or `"now"`) has the set-up time the server
//! stored when it first added the key. [`resolve_keys`] reads that time from the server's
//! database when one is given. Without a database, such a key counts as set up before every
//! event, so every event the server attributed is attributed by the check too.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::BufRead;

use groupscope::protocol;
use serde::Serialize;
use serde_json::Value;

use crate::attribution::{GroupKey, attribute};
use crate::config::{ProjectConfig, SetUpAt};
use crate::time;

/// The set-up time of a key that counts as set up before every event.
pub const BEFORE_EVERY_EVENT: i64 = i64::MIN;

/// The source of a key's set-up time in a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetUpSource {
    /// `set_up_at` in the config file.
    Config,
    /// The set-up time stored in the server's database.
    Database,
    /// Neither: the key counts as set up before every event.
    BeforeEveryEvent,
}

/// A group key with the source of its set-up time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckKey {
    /// The key; `set_up_at_ms` is [`BEFORE_EVERY_EVENT`] for [`SetUpSource::BeforeEveryEvent`].
    pub key: GroupKey,
    /// The source of the set-up time.
    pub source: SetUpSource,
}

/// Decides the set-up time of each configured key for a check, with the rule the server
/// applies at start: an explicit `set_up_at` in the config wins. Otherwise the time stored
/// in the server's database (`stored`) is used, and a key not in `stored` counts as set up
/// before every event.
///
/// # Errors
/// A message naming an invalid `set_up_at`.
pub fn resolve_keys(project: &ProjectConfig, stored: &[GroupKey], now_ms: i64) -> Result<Vec<CheckKey>, String> {
    project
        .group_keys
        .iter()
        .map(|setting| {
            let stored = stored.iter().find(|key| key.property == setting.property);
            let explicit = match &setting.set_up_at {
                Some(SetUpAt::Text(text)) if text.eq_ignore_ascii_case("now") => None,
                other => other.as_ref(),
            };
            let (set_up_at_ms, source) = match (explicit, stored) {
                (Some(set_up_at), _) => (set_up_at.resolve(now_ms)?, SetUpSource::Config),
                (None, Some(stored)) => (stored.set_up_at_ms, SetUpSource::Database),
                (None, None) => (BEFORE_EVERY_EVENT, SetUpSource::BeforeEveryEvent),
            };
            let display_name = setting
                .display_name
                .clone()
                .or_else(|| stored.map(|key| key.display_name.clone()))
                .unwrap_or_else(|| setting.property.clone());
            Ok(CheckKey { key: GroupKey { property: setting.property.clone(), display_name, set_up_at_ms }, source })
        })
        .collect()
}

/// The summary of one group key.
#[derive(Debug, Clone, Serialize)]
pub struct KeySummary {
    /// The group key.
    pub key: String,
    /// Its display name.
    pub display_name: String,
    /// When it was set up, in milliseconds; `null` when it counts as set up before every
    /// event.
    pub set_up_at: Option<i64>,
    /// The source of the set-up time: `config`, `database` or `before_every_event`.
    pub set_up_at_source: SetUpSource,
    /// Events that carry the key.
    pub events_with_key: u64,
    /// Events attributed to at least one group of the key.
    pub attributed_events: u64,
    /// Distinct groups attributed.
    pub groups: usize,
    /// Events carrying the key but not attributed, per reason.
    pub not_attributed: BTreeMap<String, u64>,
    /// Warnings per kind.
    pub warnings: BTreeMap<String, u64>,
}

/// One non-attributed key or warning of one event.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The line number, from 1.
    pub line: usize,
    /// The event name.
    pub event: String,
    /// The `distinct_id`, `""` when absent.
    pub distinct_id: String,
    /// The `$insert_id`, when present.
    pub insert_id: Option<String>,
    /// The group key.
    pub key: String,
    /// The reason or warning code.
    pub code: String,
    /// The value the event carries.
    pub value: Value,
    /// A sentence for people.
    pub message: String,
}

/// A line that is not an event.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidLine {
    /// The line number, from 1.
    pub line: usize,
    /// The problem with the line.
    pub message: String,
}

/// Counts of the sources of the events' received times.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReceivedTimeSources {
    /// Lines with a `received_at`.
    pub received_at: u64,
    /// Lines decided by their `time` property.
    pub event_time: u64,
    /// Lines decided by the time of the check.
    pub check_time: u64,
}

/// The result of a check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Events read.
    pub events: u64,
    /// Per-key summaries, in configuration order.
    pub keys: Vec<KeySummary>,
    /// Keys carried but not attributed, in line order.
    pub not_attributed: Vec<Finding>,
    /// Warnings, in line order.
    pub warnings: Vec<Finding>,
    /// Lines that are not events.
    pub invalid_lines: Vec<InvalidLine>,
    /// Events whose `received_at` is neither milliseconds nor RFC 3339; they count as having
    /// no `received_at`.
    pub invalid_received_at: Vec<InvalidLine>,
    /// The sources of the received times.
    pub received_time_sources: ReceivedTimeSources,
}

/// Checks every line of `reader` against `keys`, whose set-up times come from the config.
/// `now_ms` is the received time of lines with no time at all.
///
/// # Errors
/// The I/O error of the reader. Lines that are not events are reported, not errors.
pub fn check(reader: impl BufRead, keys: &[GroupKey], now_ms: i64) -> std::io::Result<CheckReport> {
    let keys: Vec<CheckKey> = keys
        .iter()
        .map(|key| CheckKey {
            key: key.clone(),
            source: if key.set_up_at_ms == BEFORE_EVERY_EVENT { SetUpSource::BeforeEveryEvent } else { SetUpSource::Config },
        })
        .collect();
    check_keys(reader, &keys, now_ms)
}

/// Checks every line of `reader` against `keys` from [`resolve_keys`]. `now_ms` is the
/// received time of lines with no time at all.
///
/// # Errors
/// The I/O error of the reader. Lines that are not events are reported, not errors.
pub fn check_keys(reader: impl BufRead, check_keys: &[CheckKey], now_ms: i64) -> std::io::Result<CheckReport> {
    let keys: Vec<GroupKey> = check_keys.iter().map(|k| k.key.clone()).collect();
    let keys = keys.as_slice();
    let mut report = CheckReport {
        events: 0,
        keys: check_keys
            .iter()
            .map(|CheckKey { key, source }| KeySummary {
                key: key.property.clone(),
                display_name: key.display_name.clone(),
                set_up_at: (*source != SetUpSource::BeforeEveryEvent).then_some(key.set_up_at_ms),
                set_up_at_source: *source,
                events_with_key: 0,
                attributed_events: 0,
                groups: 0,
                not_attributed: BTreeMap::new(),
                warnings: BTreeMap::new(),
            })
            .collect(),
        not_attributed: Vec::new(),
        warnings: Vec::new(),
        invalid_lines: Vec::new(),
        invalid_received_at: Vec::new(),
        received_time_sources: ReceivedTimeSources::default(),
    };
    let mut groups: Vec<HashSet<String>> = vec![HashSet::new(); keys.len()];

    for (index, line) in reader.lines().enumerate() {
        let line = line?;
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }

        let record: Value = match serde_json::from_str(&line) {
            Ok(record) => record,
            Err(error) => {
                report.invalid_lines.push(InvalidLine { line: number, message: format!("not valid JSON: {error}") });
                continue;
            }
        };
        let (Some(event), Some(properties)) =
            (record.get("event").and_then(Value::as_str), record.get("properties").and_then(Value::as_object))
        else {
            report.invalid_lines.push(InvalidLine {
                line: number,
                message: "not an event: expected {\"event\": \"…\", \"properties\": {…}}".to_owned(),
            });
            continue;
        };
        report.events += 1;

        let received_at_value = record.get("received_at").filter(|value| !value.is_null());
        let parsed = received_at(&record);
        if let (Some(value), None) = (received_at_value, parsed) {
            report.invalid_received_at.push(InvalidLine {
                line: number,
                message: format!("received_at {value} is neither milliseconds nor RFC 3339, so the line counts as having no received_at"),
            });
        }
        let received_at_ms = match parsed {
            Some(ms) => {
                report.received_time_sources.received_at += 1;
                ms
            }
            None => match properties.get("time").and_then(Value::as_f64).and_then(protocol::normalize_time_ms) {
                Some(ms) => {
                    report.received_time_sources.event_time += 1;
                    ms
                }
                None => {
                    report.received_time_sources.check_time += 1;
                    now_ms
                }
            },
        };

        let attribution = attribute(properties, keys, received_at_ms);
        let finding = |key: &str, code: &str, value: &Value, message: &str| Finding {
            line: number,
            event: event.to_owned(),
            distinct_id: properties.get("distinct_id").and_then(Value::as_str).unwrap_or("").to_owned(),
            insert_id: properties.get("$insert_id").and_then(Value::as_str).map(str::to_owned),
            key: key.to_owned(),
            code: code.to_owned(),
            value: value.clone(),
            message: message.to_owned(),
        };

        for (position, key) in keys.iter().enumerate() {
            if properties.contains_key(&key.property) {
                report.keys[position].events_with_key += 1;
            }
            let mut attributed = false;
            for group in attribution.groups.iter().filter(|g| g.key == key.property) {
                attributed = true;
                groups[position].insert(group.id.clone());
            }
            report.keys[position].attributed_events += u64::from(attributed);
        }
        for reason in &attribution.not_attributed {
            if let Some(summary) = report.keys.iter_mut().find(|k| k.key == reason.key) {
                *summary.not_attributed.entry(reason.reason.code().to_owned()).or_default() += 1;
            }
            report.not_attributed.push(finding(&reason.key, reason.reason.code(), &reason.value, &reason.message));
        }
        for warning in &attribution.warnings {
            if let Some(summary) = report.keys.iter_mut().find(|k| k.key == warning.key) {
                *summary.warnings.entry(warning.kind.code().to_owned()).or_default() += 1;
            }
            report.warnings.push(finding(&warning.key, warning.kind.code(), &warning.value, &warning.message));
        }
    }

    for (summary, ids) in report.keys.iter_mut().zip(groups) {
        summary.groups = ids.len();
    }
    Ok(report)
}

fn received_at(record: &Value) -> Option<i64> {
    match record.get("received_at")? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => time::parse_rfc3339(text),
        _ => None,
    }
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    map.iter().map(|(code, n)| format!("{code}: {n}")).collect::<Vec<_>>().join(", ")
}

/// Returns `"1 event"` or `"2 events"`.
fn plural(count: impl Into<u64>, singular: &str, plural: &str) -> String {
    let count = count.into();
    format!("{count} {}", if count == 1 { singular } else { plural })
}

/// Renders a report for people.
pub fn render_text(report: &CheckReport, source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Checked {} from {source}.", plural(report.events, "event", "events"));
    if !report.invalid_lines.is_empty() {
        let count = report.invalid_lines.len() as u64;
        let verb = if count == 1 { "is not an event and was" } else { "are not events and were" };
        let _ = writeln!(out, "{} {verb} skipped.", plural(count, "line", "lines"));
    }
    let sources = &report.received_time_sources;
    let _ = writeln!(
        out,
        "Attribution is decided by when each event was received, not by its own time (no backfill)."
    );
    if !report.invalid_received_at.is_empty() {
        let count = report.invalid_received_at.len() as u64;
        let _ = writeln!(
            out,
            "{} an invalid received_at, which was ignored (listed below).",
            plural(count, "event has", "events have")
        );
    }
    let without_received_at = sources.event_time + sources.check_time;
    if without_received_at > 0 {
        let _ = write!(
            out,
            "{} no received_at, so the event's own time was used instead",
            plural(without_received_at, "event has", "events have")
        );
        if sources.check_time > 0 {
            let verb = if sources.check_time == 1 { "has no time either and counts" } else { "have no time either and count" };
            let _ = write!(out, "; {} of them {verb} as received now", sources.check_time);
        }
        let _ = writeln!(out, ".");
    }

    for key in &report.keys {
        let not_attributed: u64 = key.not_attributed.values().sum();
        let warnings: u64 = key.warnings.values().sum();
        let _ = writeln!(out);
        match (key.set_up_at_source, key.set_up_at) {
            (SetUpSource::Config, Some(at)) => {
                let _ = writeln!(out, "{} ({}), set up at {}", key.key, key.display_name, time::format_rfc3339(at));
            }
            (SetUpSource::Database, Some(at)) => {
                let _ = writeln!(out, "{} ({}), set up at {} (stored in the database)", key.key, key.display_name, time::format_rfc3339(at));
            }
            _ => {
                let _ = writeln!(
                    out,
                    "{} ({}), no set_up_at in the config: counts as set up before every event (pass --db to use the server's stored set-up time)",
                    key.key, key.display_name
                );
            }
        }
        let _ = writeln!(out, "  events carrying the key: {}", key.events_with_key);
        let _ = writeln!(
            out,
            "  attributed:              {} to {}",
            plural(key.attributed_events, "event", "events"),
            plural(key.groups as u64, "group", "groups")
        );
        let _ = write!(out, "  not attributed:          {not_attributed}");
        if not_attributed > 0 {
            let _ = write!(out, " ({})", counts(&key.not_attributed));
        }
        let _ = writeln!(out);
        let _ = write!(out, "  warnings:                {warnings}");
        if warnings > 0 {
            let _ = write!(out, " ({})", counts(&key.warnings));
        }
        let _ = writeln!(out);
    }

    let sections = [("Events not attributed", &report.not_attributed), ("Warnings", &report.warnings)];
    for (title, findings) in sections {
        if findings.is_empty() {
            continue;
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{title}:");
        for finding in findings {
            let _ = writeln!(
                out,
                "  line {}: {:?} distinct_id {:?}: {} {}: {}",
                finding.line, finding.event, finding.distinct_id, finding.key, finding.code, finding.message
            );
        }
    }
    if !report.invalid_received_at.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Invalid received_at:");
        for invalid in &report.invalid_received_at {
            let _ = writeln!(out, "  line {}: {}", invalid.line, invalid.message);
        }
    }
    if !report.invalid_lines.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Lines skipped:");
        for invalid in &report.invalid_lines {
            let _ = writeln!(out, "  line {}: {}", invalid.line, invalid.message);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<GroupKey> {
        vec![GroupKey { property: "company_id".into(), display_name: "Company".into(), set_up_at_ms: 1_000_000 }]
    }

    #[test]
    fn check_counts_per_key_and_reason() {
        let input = [
            r#"{"event":"a","properties":{"company_id":"acme"},"received_at":2000000}"#,
            r#"{"event":"a","properties":{"company_id":["acme","globex"]},"received_at":2000000}"#,
            r#"{"event":"a","properties":{"company_id":"acme"},"received_at":500000}"#,
            r#"{"event":"a","properties":{"company_id":""},"received_at":2000000}"#,
            r#"{"event":"a","properties":{"company_id":7,"time":3000}}"#,
            r#"{"event":"b","properties":{}}"#,
            "not json",
            "",
        ]
        .join("\n");
        let report = check(input.as_bytes(), &keys(), 9_000_000).unwrap();
        assert_eq!(report.events, 6);
        assert_eq!(report.invalid_lines.len(), 1);
        let key = &report.keys[0];
        assert_eq!(key.events_with_key, 5);
        assert_eq!(key.attributed_events, 3);
        assert_eq!(key.groups, 3);
        assert_eq!(key.not_attributed.get("before_set_up"), Some(&1));
        assert_eq!(key.not_attributed.get("empty_value"), Some(&1));
        assert_eq!(key.warnings.get("integer_id"), Some(&1));
        assert_eq!(report.received_time_sources.received_at, 4);
        assert_eq!(report.received_time_sources.event_time, 1);
        assert_eq!(report.received_time_sources.check_time, 1);
        assert_eq!(report.not_attributed[0].line, 3);
    }

    #[test]
    fn invalid_received_at_is_named() {
        let input = r#"{"event":"a","properties":{"company_id":"acme","time":2000},"received_at":"garbage"}"#;
        let report = check(input.as_bytes(), &keys(), 0).unwrap();
        assert_eq!(report.invalid_received_at.len(), 1);
        assert_eq!(report.invalid_received_at[0].line, 1);
        assert!(report.invalid_received_at[0].message.contains("\"garbage\""), "{}", report.invalid_received_at[0].message);
        let text = render_text(&report, "events.jsonl");
        assert!(text.contains("1 event has an invalid received_at"), "{text}");
        assert!(text.contains("line 1: received_at \"garbage\""), "{text}");
    }

    #[test]
    fn text_uses_singular_for_one() {
        let input = r#"{"event":"a","properties":{"company_id":"acme"},"received_at":2000000}"#;
        let report = check(input.as_bytes(), &keys(), 0).unwrap();
        let text = render_text(&report, "events.jsonl");
        assert!(text.contains("Checked 1 event from"), "{text}");
        assert!(text.contains("attributed:              1 event to 1 group\n"), "{text}");
    }

    #[test]
    fn resolve_keys_without_set_up_at() {
        let project = ProjectConfig::from_toml(
            "[[group_keys]]\nproperty = \"company_id\"\n[[group_keys]]\nproperty = \"team_id\"\nset_up_at = \"now\"\n[[group_keys]]\nproperty = \"org_id\"\nset_up_at = 5\n",
        )
        .unwrap();
        let stored = [GroupKey { property: "team_id".into(), display_name: "Team".into(), set_up_at_ms: 77 }];
        let keys = resolve_keys(&project, &stored, 1_000).unwrap();
        assert_eq!(keys[0].source, SetUpSource::BeforeEveryEvent);
        assert_eq!(keys[0].key.set_up_at_ms, BEFORE_EVERY_EVENT);
        assert_eq!(keys[1].source, SetUpSource::Database);
        assert_eq!(keys[1].key.set_up_at_ms, 77);
        assert_eq!(keys[1].key.display_name, "Team");
        assert_eq!(keys[2].source, SetUpSource::Config);
        assert_eq!(keys[2].key.set_up_at_ms, 5);
    }

    #[test]
    fn text_names_reasons_and_lines() {
        let input = r#"{"event":"Signed Up","properties":{"company_id":true,"distinct_id":"u1"},"received_at":2000000}"#;
        let report = check(input.as_bytes(), &keys(), 0).unwrap();
        let text = render_text(&report, "events.jsonl");
        assert!(text.contains("not attributed:          1 (wrong_type: 1)"), "{text}");
        assert!(text.contains("line 1: \"Signed Up\" distinct_id \"u1\": company_id wrong_type"), "{text}");
    }
}
