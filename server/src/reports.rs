//! Reports by group: unique groups per event ("analyze uniques by" a group key), most
//! engaged groups, and a funnel counted by group.

use serde::Serialize;

use crate::store::{GroupEvent, Store, StoreError};
use crate::time;

/// The default funnel conversion window: 30 days.
pub const DEFAULT_FUNNEL_WINDOW_MS: i64 = 30 * time::DAY_MS;

/// A time range of event times, in milliseconds, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    /// The first millisecond.
    pub from: i64,
    /// The last millisecond.
    pub to: i64,
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange { from: 0, to: i64::MAX }
    }
}

/// Parses a range bound: milliseconds since the epoch, or an RFC 3339 timestamp or date.
///
/// # Errors
/// A message naming the parameter and the value.
pub fn parse_time_bound(name: &str, text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.trim().parse::<i64>() {
        return Ok(ms);
    }
    time::parse_rfc3339(text).ok_or_else(|| {
        format!("invalid {name} {text:?}: use milliseconds since the epoch or RFC 3339 such as 2026-01-01T00:00:00Z")
    })
}

/// Parses a conversion window: seconds, or a number with the unit `s`, `m`, `h` or `d`.
///
/// # Errors
/// A message naming the value.
pub fn parse_window(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let invalid = || format!("invalid window {text:?}: use seconds or a number with s, m, h or d, such as 7d");
    let (digits, unit_ms) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1000),
        Some((i, 'm')) => (&text[..i], 60_000),
        Some((i, 'h')) => (&text[..i], 3_600_000),
        Some((i, 'd')) => (&text[..i], time::DAY_MS),
        _ => (text, 1000),
    };
    let amount: i64 = digits.trim().parse().map_err(|_| invalid())?;
    if amount <= 0 {
        return Err(invalid());
    }
    amount.checked_mul(unit_ms).ok_or_else(invalid)
}

/// One group's count in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupCount {
    /// The group id.
    pub id: String,
    /// Attributed events.
    pub events: u64,
    /// Distinct non-empty `distinct_id`s among them.
    pub unique_users: u64,
}

/// Unique groups that did an event.
#[derive(Debug, Clone, Serialize)]
pub struct UniquesReport {
    /// The event name.
    pub event: String,
    /// The group key.
    pub key: String,
    /// The range of event times.
    pub range: TimeRange,
    /// Number of distinct groups with at least one attributed event.
    pub unique_groups: usize,
    /// The groups, most events first.
    pub groups: Vec<GroupCount>,
}

/// Counts the unique groups of `key` with `event` in `range`.
///
/// # Errors
/// [`StoreError`].
pub fn uniques(store: &Store, event: &str, key: &str, range: TimeRange) -> Result<UniquesReport, StoreError> {
    let groups = group_counts(store, key, Some(event), range)?;
    Ok(UniquesReport { event: event.to_owned(), key: key.to_owned(), range, unique_groups: groups.len(), groups })
}

/// The groups of a key with the most attributed events.
#[derive(Debug, Clone, Serialize)]
pub struct MostEngagedReport {
    /// The group key.
    pub key: String,
    /// Only this event, when set.
    pub event: Option<String>,
    /// The range of event times.
    pub range: TimeRange,
    /// The groups, most events first, then by id.
    pub groups: Vec<GroupCount>,
}

/// Ranks the groups of `key` by attributed events in `range`, keeping the first `limit`.
///
/// # Errors
/// [`StoreError`].
pub fn most_engaged(store: &Store, key: &str, event: Option<&str>, range: TimeRange, limit: usize) -> Result<MostEngagedReport, StoreError> {
    let mut groups = group_counts(store, key, event, range)?;
    groups.truncate(limit);
    Ok(MostEngagedReport { key: key.to_owned(), event: event.map(str::to_owned), range, groups })
}

fn group_counts(store: &Store, key: &str, event: Option<&str>, range: TimeRange) -> Result<Vec<GroupCount>, StoreError> {
    Ok(store
        .group_event_counts(key, event, range.from, range.to)?
        .into_iter()
        .map(|(id, events, unique_users)| GroupCount { id, events, unique_users })
        .collect())
}

/// One step of a funnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunnelStep {
    /// The event name.
    pub event: String,
    /// Groups that reached this step.
    pub groups: usize,
}

/// A funnel counted by group.
#[derive(Debug, Clone, Serialize)]
pub struct FunnelReport {
    /// The group key.
    pub key: String,
    /// The conversion window in milliseconds.
    pub window_ms: i64,
    /// The range of event times.
    pub range: TimeRange,
    /// The steps with the groups that reached each.
    pub steps: Vec<FunnelStep>,
    /// Ids of the groups that completed every step, sorted.
    pub converted: Vec<String>,
}

/// Counts a funnel by group: a group reaches step `k` when events attributed to it include
/// step 1 and then steps 2..k in order, all within `window_ms` of that step-1 event.
///
/// # Errors
/// [`StoreError`].
pub fn funnel(store: &Store, key: &str, steps: &[String], window_ms: i64, range: TimeRange) -> Result<FunnelReport, StoreError> {
    let events = store.group_events(key, steps, range.from, range.to)?;
    let (reached, converted) = count_funnel(&events, steps, window_ms);
    Ok(FunnelReport {
        key: key.to_owned(),
        window_ms,
        range,
        steps: steps.iter().zip(reached).map(|(event, groups)| FunnelStep { event: event.clone(), groups }).collect(),
        converted,
    })
}

/// Counts how many groups reached each step; `events` is ordered by group, then time.
/// Returns the count per step and the ids of the groups that completed every step.
pub fn count_funnel(events: &[GroupEvent], steps: &[String], window_ms: i64) -> (Vec<usize>, Vec<String>) {
    let mut reached = vec![0; steps.len()];
    let mut converted = Vec::new();
    if steps.is_empty() {
        return (reached, converted);
    }

    for group in events.chunk_by(|a, b| a.id == b.id) {
        let best = furthest_step(group, steps, window_ms);
        for count in reached.iter_mut().take(best) {
            *count += 1;
        }
        if best == steps.len() {
            converted.push(group[0].id.clone());
        }
    }
    converted.sort();
    (reached, converted)
}

/// Returns how many steps one group's time-ordered events complete, at best.
fn furthest_step(events: &[GroupEvent], steps: &[String], window_ms: i64) -> usize {
    let mut best = 0;
    for (start, first) in events.iter().enumerate() {
        if first.event != steps[0] {
            continue;
        }
        let deadline = first.time_ms.saturating_add(window_ms);
        let mut next = 1;
        for later in &events[start + 1..] {
            if next == steps.len() || later.time_ms > deadline {
                break;
            }
            if later.event == steps[next] {
                next += 1;
            }
        }
        best = best.max(next);
        if best == steps.len() {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, event: &str, time_ms: i64) -> GroupEvent {
        GroupEvent { id: id.into(), event: event.into(), time_ms }
    }

    fn steps() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    #[test]
    fn funnel_counts_groups_per_step() {
        let events = vec![
            ev("g1", "a", 0), ev("g1", "b", 10), ev("g1", "c", 20),
            ev("g2", "a", 0), ev("g2", "b", 10),
            ev("g3", "b", 0), ev("g3", "c", 10),
        ];
        let (reached, converted) = count_funnel(&events, &steps(), 100);
        assert_eq!(reached, vec![2, 2, 1]);
        assert_eq!(converted, vec!["g1".to_owned()]);
    }

    #[test]
    fn funnel_respects_order_and_window() {
        let out_of_order = vec![ev("g", "a", 0), ev("g", "c", 5), ev("g", "b", 10)];
        assert_eq!(count_funnel(&out_of_order, &steps(), 100).0, vec![1, 1, 0]);

        let too_slow = vec![ev("g", "a", 0), ev("g", "b", 10), ev("g", "c", 101)];
        assert_eq!(count_funnel(&too_slow, &steps(), 100).0, vec![1, 1, 0]);

        let later_start = vec![ev("g", "a", 0), ev("g", "a", 200), ev("g", "b", 210), ev("g", "c", 220)];
        assert_eq!(count_funnel(&later_start, &steps(), 100).0, vec![1, 1, 1]);
    }

    #[test]
    fn window_units() {
        assert_eq!(parse_window("7d"), Ok(7 * time::DAY_MS));
        assert_eq!(parse_window("90"), Ok(90_000));
        assert_eq!(parse_window("2h"), Ok(7_200_000));
        assert!(parse_window("0").is_err());
        assert!(parse_window("week").is_err());
    }

    #[test]
    fn time_bounds() {
        assert_eq!(parse_time_bound("from", "1000"), Ok(1000));
        assert_eq!(parse_time_bound("from", "1970-01-02"), Ok(time::DAY_MS));
        assert!(parse_time_bound("from", "soon").unwrap_err().contains("from"));
    }
}
