//! Ingestion of decoded records: validation, attribution and storage of events, and
//! application of `/groups` and `/engage` records to profiles.

use groupscope::protocol::Endpoint;
use serde_json::Value;

use crate::attribution::attribute;
use crate::profiles::{parse_group_update, parse_user_update};
use crate::store::{NewEvent, Store, StoreError};
use crate::validation::{RecordError, validate_event};

/// The outcome of the records of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Records stored or applied.
    pub accepted: usize,
    /// Events that replaced a stored duplicate (also counted in `accepted`).
    pub replaced: usize,
    /// Records rejected, with the reason.
    pub failed: Vec<RecordError>,
}

/// Validates, attributes and stores the events of one `/track` or `/import` request in one
/// transaction. Invalid events are reported in [`Outcome::failed`]; the valid ones are stored.
///
/// # Errors
/// [`StoreError`]; nothing of the request is stored then.
pub fn ingest_events(
    store: &mut Store,
    endpoint: Endpoint,
    records: &[Value],
    project_token: Option<&str>,
    received_at_ms: i64,
) -> Result<Outcome, StoreError> {
    store.in_transaction(|store| {
        let mut outcome = Outcome::default();
        for (index, record) in records.iter().enumerate() {
            let event = match validate_event(index, record, endpoint, project_token, received_at_ms) {
                Ok(event) => event,
                Err(error) => {
                    log::debug!("Rejected {} {error}", endpoint.path());
                    outcome.failed.push(error);
                    continue;
                }
            };
            let attribution = attribute(&event.properties, store.group_keys(), received_at_ms);
            let inserted = store.insert_event(&NewEvent {
                endpoint,
                event: event.event,
                distinct_id: event.distinct_id,
                time_ms: event.time_ms,
                insert_id: event.insert_id,
                received_at_ms,
                properties: event.properties,
                attribution,
            })?;
            outcome.accepted += 1;
            outcome.replaced += usize::from(inserted.replaced);
        }
        Ok(outcome)
    })
}

/// Applies the records of one `/groups` request to group profiles in one transaction, and
/// stores every record as received, rejected ones with their error.
///
/// # Errors
/// [`StoreError`]; nothing of the request is stored then.
pub fn ingest_group_records(
    store: &mut Store,
    records: &[Value],
    project_token: Option<&str>,
    received_at_ms: i64,
) -> Result<Outcome, StoreError> {
    store.in_transaction(|store| {
        let mut outcome = Outcome::default();
        for (index, record) in records.iter().enumerate() {
            match parse_group_update(record, project_token) {
                Ok(update) => {
                    store.apply_group_operation(&update.key, &update.id, &update.operation, received_at_ms)?;
                    store.insert_profile_record(Endpoint::Groups, received_at_ms, Some((Some(&update.key), &update.id)), record, None)?;
                    outcome.accepted += 1;
                }
                Err((field, message)) => {
                    let error = record_error(index, record, field, message);
                    store.insert_profile_record(Endpoint::Groups, received_at_ms, None, record, Some(&error.to_string()))?;
                    outcome.failed.push(error);
                }
            }
        }
        Ok(outcome)
    })
}

/// Applies the records of one `/engage` request to user profiles in one transaction, and
/// stores every record as received, rejected ones with their error.
///
/// # Errors
/// [`StoreError`]; nothing of the request is stored then.
pub fn ingest_user_records(
    store: &mut Store,
    records: &[Value],
    project_token: Option<&str>,
    received_at_ms: i64,
) -> Result<Outcome, StoreError> {
    store.in_transaction(|store| {
        let mut outcome = Outcome::default();
        for (index, record) in records.iter().enumerate() {
            match parse_user_update(record, project_token) {
                Ok(update) => {
                    store.apply_user_operation(&update.distinct_id, &update.operation, received_at_ms)?;
                    store.insert_profile_record(Endpoint::Engage, received_at_ms, Some((None, &update.distinct_id)), record, None)?;
                    outcome.accepted += 1;
                }
                Err((field, message)) => {
                    let error = record_error(index, record, field, message);
                    store.insert_profile_record(Endpoint::Engage, received_at_ms, None, record, Some(&error.to_string()))?;
                    outcome.failed.push(error);
                }
            }
        }
        Ok(outcome)
    })
}

fn record_error(index: usize, record: &Value, field: String, message: String) -> RecordError {
    let insert_id = record.get("$insert_id").and_then(Value::as_str).unwrap_or("").to_owned();
    RecordError { index, insert_id, field, message }
}
