//! The offline attribution checker: reads events from JSONL and reports, per group key, how
//! many events were attributed and why the others were not.
//!
//! Each line is one event, `{"event": …, "properties": {…}}`, optionally with a top-level
//! `received_at` (milliseconds or RFC 3339), the form `GET /api/events` returns. Attribution
//! depends on when an event was received, never on its own `time`. A line without
//! `received_at` is decided by its `time` property instead, and without both by the time of
//! the check. The summary counts the lines that needed each fallback.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::BufRead;

use groupscope::protocol;
use serde::Serialize;
use serde_json::Value;

use crate::attribution::{GroupKey, attribute};
use crate::time;

/// The summary of one group key.
#[derive(Debug, Clone, Serialize)]
pub struct KeySummary {
    /// The group key.
    pub key: String,
    /// Its display name.
    pub display_name: String,
    /// When it was set up, in milliseconds.
    pub set_up_at: i64,
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
    /// The sources of the received times.
    pub received_time_sources: ReceivedTimeSources,
}

/// Checks every line of `reader` against `keys`; `now_ms` is the received time of lines with
/// no time at all.
///
/// # Errors
/// The I/O error of the reader. Lines that are not events are reported, not errors.
pub fn check(reader: impl BufRead, keys: &[GroupKey], now_ms: i64) -> std::io::Result<CheckReport> {
    let mut report = CheckReport {
        events: 0,
        keys: keys
            .iter()
            .map(|key| KeySummary {
                key: key.property.clone(),
                display_name: key.display_name.clone(),
                set_up_at: key.set_up_at_ms,
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

        let received_at_ms = match received_at(&record) {
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

/// Renders a report for people.
pub fn render_text(report: &CheckReport, source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Checked {} events from {source}.", report.events);
    if !report.invalid_lines.is_empty() {
        let _ = writeln!(out, "{} lines are not events and were skipped.", report.invalid_lines.len());
    }
    let sources = &report.received_time_sources;
    let _ = writeln!(
        out,
        "Attribution is decided by when each event was received, not by its own time (no backfill)."
    );
    if sources.event_time + sources.check_time > 0 {
        let _ = writeln!(
            out,
            "{} events have no received_at, so their own time was used instead; {} have no time either and count as received now.",
            sources.event_time + sources.check_time,
            sources.check_time
        );
    }

    for key in &report.keys {
        let not_attributed: u64 = key.not_attributed.values().sum();
        let warnings: u64 = key.warnings.values().sum();
        let _ = writeln!(out);
        let _ = writeln!(out, "{} ({}), set up at {}", key.key, key.display_name, time::format_rfc3339(key.set_up_at));
        let _ = writeln!(out, "  events carrying the key: {}", key.events_with_key);
        let _ = writeln!(out, "  attributed:              {} events to {} groups", key.attributed_events, key.groups);
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
    fn text_names_reasons_and_lines() {
        let input = r#"{"event":"Signed Up","properties":{"company_id":true,"distinct_id":"u1"},"received_at":2000000}"#;
        let report = check(input.as_bytes(), &keys(), 0).unwrap();
        let text = render_text(&report, "events.jsonl");
        assert!(text.contains("not attributed:          1 (wrong_type: 1)"), "{text}");
        assert!(text.contains("line 1: \"Signed Up\" distinct_id \"u1\": company_id wrong_type"), "{text}");
    }
}
