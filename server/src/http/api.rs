//! The JSON API under `/api`: events with their attribution, group keys, groups, users, raw
//! profile records, reports, warnings, the request log and fault scripts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use groupscope::GroupIds;
use groupscope::protocol::Endpoint;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::attribution::GroupKey;
use crate::config::{GroupKeySetting, validate_group_key_property};
use crate::faults::FaultScript;
use crate::reports::{self, TimeRange};
use crate::store::EventFilter;
use crate::time;

type Params = Query<HashMap<String, String>>;
type ApiResult = Result<Json<Value>, ApiError>;

/// Default and maximum number of items in a listing.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

fn limit(params: &HashMap<String, String>) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!("invalid limit {text:?}: use a number from 1 to {MAX_LIMIT}"))),
        },
    }
}

fn required<'a>(params: &'a HashMap<String, String>, name: &str, example: &str) -> Result<&'a str, ApiError> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("missing query parameter {name}: add ?{name}={example}")))
}

fn time_range(params: &HashMap<String, String>) -> Result<TimeRange, ApiError> {
    let mut range = TimeRange::default();
    if let Some(from) = params.get("from") {
        range.from = reports::parse_time_bound("from", from).map_err(ApiError::bad_request)?;
    }
    if let Some(to) = params.get("to") {
        range.to = reports::parse_time_bound("to", to).map_err(ApiError::bad_request)?;
    }
    if range.from > range.to {
        return Err(ApiError::bad_request(format!("invalid range: from {} is after to {}", range.from, range.to)));
    }
    Ok(range)
}

fn known_key(state: &AppState, key: &str) -> Result<(), ApiError> {
    if state.store().group_keys().iter().any(|k| k.property == key) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("group key {key:?} is not configured; add it with POST /api/group-keys")))
    }
}

/// `GET /api/health`.
pub async fn health(State(state): State<Arc<AppState>>) -> ApiResult {
    let events = state.store().event_count()?;
    Ok(Json(json!({"status": "ok", "events": events})))
}

/// `GET /api/events?event=&distinct_id=&group_key=&group_id=&limit=`: newest first.
pub async fn list_events(State(state): State<Arc<AppState>>, Query(params): Params) -> ApiResult {
    let group = match (params.get("group_key"), params.get("group_id")) {
        (Some(key), Some(id)) => Some((key.clone(), id.clone())),
        (None, None) => None,
        _ => return Err(ApiError::bad_request("group_key and group_id filter together: give both or neither")),
    };
    let filter = EventFilter {
        event: params.get("event").cloned(),
        distinct_id: params.get("distinct_id").cloned(),
        group,
        limit: limit(&params)?,
    };
    let events = state.store().list_events(&filter)?;
    Ok(Json(json!({ "events": events })))
}

/// `GET /api/events/{id}`.
pub async fn get_event(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult {
    let number: i64 = id.parse().map_err(|_| ApiError::bad_request(format!("invalid event id {id:?}: ids are integers")))?;
    match state.store().event(number)? {
        Some(event) => Ok(Json(serde_json::to_value(event).unwrap_or(Value::Null))),
        None => Err(ApiError::not_found(format!("event {number} not found"))),
    }
}

fn key_json(key: &GroupKey) -> Value {
    json!({
        "property": key.property,
        "display_name": key.display_name,
        "set_up_at": key.set_up_at_ms,
        "set_up_at_rfc3339": time::format_rfc3339(key.set_up_at_ms),
    })
}

/// `GET /api/group-keys`.
pub async fn list_group_keys(State(state): State<Arc<AppState>>) -> ApiResult {
    let keys: Vec<Value> = state.store().group_keys().iter().map(key_json).collect();
    Ok(Json(json!({"group_keys": keys, "max_group_keys": state.project.max_group_keys})))
}

/// `POST /api/group-keys` with `{"property", "display_name"?, "set_up_at"?}`: adds a key or
/// updates one. A new key without `set_up_at` is set up now; an updated key keeps its
/// display name and set-up time unless the body gives them. Adding a deleted key again
/// lets the config file add it at the next start again.
pub async fn add_group_key(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let setting: GroupKeySetting = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request(format!(
            "invalid group key: {error}; send {{\"property\": \"company_id\", \"display_name\": \"Company\", \"set_up_at\": \"now\"}}"
        ))
    })?;
    validate_group_key_property(&setting.property).map_err(ApiError::bad_request)?;

    let mut store = state.store();
    let existing = store.group_keys().iter().find(|k| k.property == setting.property).cloned();
    let set_up_at_ms = match (&setting.set_up_at, &existing) {
        (Some(set_up_at), _) => set_up_at.resolve(time::now_ms()).map_err(ApiError::bad_request)?,
        (None, Some(existing)) => existing.set_up_at_ms,
        (None, None) => time::now_ms(),
    };
    if existing.is_none() && store.group_keys().len() >= state.project.max_group_keys {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "cannot add group key {:?}: the project already has {} group keys (max_group_keys = {}); remove one first",
                setting.property,
                store.group_keys().len(),
                state.project.max_group_keys
            ),
        ));
    }
    // Omitted fields keep their stored values; a new key's display name defaults to the property.
    let display_name = match (&setting.display_name, &existing) {
        (Some(display_name), _) => display_name.clone(),
        (None, Some(existing)) => existing.display_name.clone(),
        (None, None) => setting.property.clone(),
    };
    let key = GroupKey { display_name, property: setting.property, set_up_at_ms };
    store.upsert_group_key(&key)?;
    log::info!("Group key {:?} set up at {}", key.property, time::format_rfc3339(key.set_up_at_ms));

    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(key_json(&key))).into_response())
}

/// `DELETE /api/group-keys/{property}`: later events are no longer attributed to it, and a
/// restart does not add it again from the config file.
pub async fn delete_group_key(State(state): State<Arc<AppState>>, Path(property): Path<String>) -> ApiResult {
    if state.store().delete_group_key(&property)? {
        log::info!("Group key {property:?} removed");
        Ok(Json(json!({"deleted": property})))
    } else {
        Err(ApiError::not_found(format!("group key {property:?} is not configured")))
    }
}

/// `GET /api/groups/{key}`: every group of the key with event counts.
pub async fn list_groups(State(state): State<Arc<AppState>>, Path(key): Path<String>) -> ApiResult {
    known_key(&state, &key)?;
    let groups = state.store().groups(&key)?;
    Ok(Json(json!({"key": key, "groups": groups})))
}

/// `GET /api/groups/{key}/{id}?limit=`: the group profile and its activity feed, newest first.
pub async fn get_group(State(state): State<Arc<AppState>>, Path((key, id)): Path<(String, String)>, Query(params): Params) -> ApiResult {
    let limit = limit(&params)?;
    let store = state.store();
    let profile = store.group_profile(&key, &id)?;
    let summary = store.groups(&key)?.into_iter().find(|group| group.id == id);
    if profile.is_none() && summary.is_none() {
        return Err(ApiError::not_found(format!("group {key}={id:?} has no profile and no attributed events")));
    }
    let activity = store.list_events(&EventFilter { group: Some((key.clone(), id.clone())), limit, ..EventFilter::default() })?;
    Ok(Json(json!({
        "key": key,
        "id": id,
        "profile": profile,
        "event_count": summary.as_ref().map_or(0, |s| s.event_count),
        "unique_users": summary.as_ref().map_or(0, |s| s.unique_users),
        "activity": activity,
    })))
}

/// `GET /api/users/{distinct_id}`: the user profile with its links to groups.
pub async fn get_user(State(state): State<Arc<AppState>>, Path(distinct_id): Path<String>) -> ApiResult {
    let store = state.store();
    let profile = store
        .user_profile(&distinct_id)?
        .ok_or_else(|| ApiError::not_found(format!("user {distinct_id:?} has no profile")))?;

    let mut groups = BTreeMap::new();
    for key in store.group_keys() {
        if let Some(value) = profile.properties.get(&key.property) {
            let ids = GroupIds::from_json(&key.property, value)
                .map(|ids| ids.to_json())
                .unwrap_or_else(|_| Value::Array(Vec::new()));
            groups.insert(key.property.clone(), ids);
        }
    }
    Ok(Json(json!({"distinct_id": distinct_id, "profile": profile, "groups": groups})))
}

/// `GET /api/engage?distinct_id=&limit=`: `/engage` records as received.
pub async fn list_engage_records(State(state): State<Arc<AppState>>, Query(params): Params) -> ApiResult {
    let records =
        state.store().profile_records(Endpoint::Engage, None, params.get("distinct_id").map(String::as_str), limit(&params)?)?;
    Ok(Json(json!({"records": records})))
}

/// `GET /api/groups-records?group_key=&group_id=&limit=`: `/groups` records as received.
pub async fn list_group_records(State(state): State<Arc<AppState>>, Query(params): Params) -> ApiResult {
    let records = state.store().profile_records(
        Endpoint::Groups,
        params.get("group_key").map(String::as_str),
        params.get("group_id").map(String::as_str),
        limit(&params)?,
    )?;
    Ok(Json(json!({"records": records})))
}

/// `GET /api/reports/uniques?event=&key=&from=&to=`.
pub async fn report_uniques(State(state): State<Arc<AppState>>, Query(params): Params) -> ApiResult {
    let event = required(&params, "event", "Signed%20Up")?;
    let key = required(&params, "key", "company_id")?;
    known_key(&state, key)?;
    let range = time_range(&params)?;
    let report = reports::uniques(&state.store(), event, key, range)?;
    Ok(Json(serde_json::to_value(report).unwrap_or(Value::Null)))
}

/// `GET /api/reports/most-engaged?key=&event=&from=&to=&limit=`.
pub async fn report_most_engaged(State(state): State<Arc<AppState>>, Query(params): Params) -> ApiResult {
    let key = required(&params, "key", "company_id")?;
    known_key(&state, key)?;
    let range = time_range(&params)?;
    let limit = limit(&params)?;
    let report = reports::most_engaged(&state.store(), key, params.get("event").map(String::as_str), range, limit)?;
    Ok(Json(serde_json::to_value(report).unwrap_or(Value::Null)))
}

/// `GET /api/reports/funnel?key=&steps=a,b,c&window=7d&from=&to=`.
pub async fn report_funnel(State(state): State<Arc<AppState>>, Query(params): Params) -> ApiResult {
    let key = required(&params, "key", "company_id")?;
    known_key(&state, key)?;
    let steps: Vec<String> = required(&params, "steps", "Signed%20Up,Invited%20Teammate")?
        .split(',')
        .map(|step| step.trim().to_owned())
        .collect();
    if steps.iter().any(String::is_empty) {
        return Err(ApiError::bad_request("invalid steps: event names separated by commas must not be empty"));
    }
    let window_ms = match params.get("window") {
        Some(window) => reports::parse_window(window).map_err(ApiError::bad_request)?,
        None => reports::DEFAULT_FUNNEL_WINDOW_MS,
    };
    let range = time_range(&params)?;
    let report = reports::funnel(&state.store(), key, &steps, window_ms, range)?;
    Ok(Json(serde_json::to_value(report).unwrap_or(Value::Null)))
}

/// `GET /api/warnings`: limit warnings and counts of attribution warnings and reasons.
pub async fn list_warnings(State(state): State<Arc<AppState>>) -> ApiResult {
    let store = state.store();
    Ok(Json(json!({
        "limits": store.limit_warnings()?,
        "attribution_warnings": store.note_counts("warning")?,
        "not_attributed": store.note_counts("not_attributed")?,
    })))
}

/// `GET /api/requests`: the most recent ingestion requests, oldest first.
pub async fn list_requests(State(state): State<Arc<AppState>>) -> ApiResult {
    let requests: Vec<_> = state.requests.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
    Ok(Json(json!({"requests": requests})))
}

/// `DELETE /api/requests`.
pub async fn clear_requests(State(state): State<Arc<AppState>>) -> ApiResult {
    state.requests.lock().unwrap_or_else(|p| p.into_inner()).clear();
    Ok(Json(json!({"cleared": true})))
}

fn faults_disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "fault injection is disabled: start the server with --fault-injection to script faults",
    )
}

/// `GET /api/faults`: the pending fault steps.
pub async fn list_faults(State(state): State<Arc<AppState>>) -> ApiResult {
    let faults = state.faults().ok_or_else(faults_disabled)?;
    Ok(Json(serde_json::to_value(faults.pending()).unwrap_or(Value::Null)))
}

/// `POST /api/faults` with a script: appends its steps to the endpoint's queue.
pub async fn add_faults(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> ApiResult {
    let mut faults = state.faults().ok_or_else(faults_disabled)?;
    let script: FaultScript = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request(format!(
            "invalid fault script: {error}; send {{\"endpoint\": \"track\", \"responses\": [{{\"status\": 503}}]}}"
        ))
    })?;
    let endpoint = script.endpoint.clone();
    let steps = script.responses.len();
    faults.add(script).map_err(ApiError::bad_request)?;
    log::info!("Scripted {steps} fault responses for {endpoint}");
    Ok(Json(serde_json::to_value(faults.pending()).unwrap_or(Value::Null)))
}

/// `DELETE /api/faults`: removes every pending fault.
pub async fn clear_faults(State(state): State<Arc<AppState>>) -> ApiResult {
    let mut faults = state.faults().ok_or_else(faults_disabled)?;
    faults.clear();
    Ok(Json(json!({"cleared": true})))
}

/// `DELETE /api/data`: deletes events, profiles, records, warnings and the request log.
/// Group keys stay.
pub async fn reset_data(State(state): State<Arc<AppState>>) -> ApiResult {
    state.store().reset()?;
    state.requests.lock().unwrap_or_else(|p| p.into_inner()).clear();
    log::info!("All events, profiles and records were deleted through DELETE /api/data");
    Ok(Json(json!({"reset": true})))
}

/// Any other route.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {}: ingestion is at /track, /engage, /groups and /import, the JSON API under /api",
        uri.path()
    ))
}
