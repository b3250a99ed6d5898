//! The HTTP layer: the ingestion endpoints Mixpanel's SDKs call and the JSON API under
//! `/api` that reads what arrived.

mod api;
mod ingestion;

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get};
use groupscope::protocol::Endpoint;
use serde::Serialize;
use serde_json::json;

use crate::config::ProjectConfig;
use crate::faults::Faults;
use crate::store::{Store, StoreError};

/// Maximum ingestion requests kept for `GET /api/requests`; older ones are dropped first.
pub const MAX_LOGGED_REQUESTS: usize = 10_000;

/// The state shared by all handlers.
pub struct AppState {
    /// The store, locked only for synchronous work.
    pub store: Mutex<Store>,
    /// The project settings; the group keys live in the store.
    pub project: ProjectConfig,
    /// Pending faults, when fault injection is enabled.
    pub faults: Option<Mutex<Faults>>,
    /// The most recent ingestion requests.
    pub requests: Mutex<VecDeque<RequestLog>>,
    /// Maximum body bytes after decompression of `/track`, `/engage` and `/groups`.
    pub max_request_bytes: usize,
    /// Maximum body bytes after decompression of `/import`.
    pub max_import_request_bytes: usize,
}

/// One ingestion request as `GET /api/requests` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestLog {
    /// Position in arrival order, from 1.
    pub seq: u64,
    /// `track`, `engage`, `groups` or `import`.
    pub endpoint: String,
    /// The HTTP method.
    pub method: String,
    /// The path as requested.
    pub path: String,
    /// The body size as received, before decompression.
    pub body_bytes: usize,
    /// The `Content-Encoding` header.
    pub content_encoding: Option<String>,
    /// The response status; `null` for a dropped connection.
    pub status: Option<u16>,
    /// Records in the request, when it could be decoded.
    pub records: Option<usize>,
    /// Records stored or applied.
    pub accepted: usize,
    /// The injected fault, if any.
    pub fault: Option<String>,
    /// When the request arrived, in milliseconds.
    pub received_at: i64,
}

impl AppState {
    /// Locks the store. A panic while it was held does not make it unusable: SQLite rolled
    /// back the unfinished transaction, so the data is consistent.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn faults(&self) -> Option<MutexGuard<'_, Faults>> {
        self.faults.as_ref().map(|faults| faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn log_request(&self, mut entry: RequestLog) {
        let mut requests = self.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entry.seq = requests.back().map_or(1, |last| last.seq + 1);
        if requests.len() >= MAX_LOGGED_REQUESTS {
            requests.pop_front();
        }
        requests.push_back(entry);
    }

    fn body_limit(&self, endpoint: Endpoint) -> usize {
        let configured = match endpoint {
            Endpoint::Import => self.max_import_request_bytes,
            _ => self.max_request_bytes,
        };
        self.faults().and_then(|faults| faults.max_body_bytes(endpoint)).unwrap_or(configured)
    }
}

/// Builds the router of every route.
pub fn router(state: std::sync::Arc<AppState>) -> Router {
    let mut router = Router::new();
    for endpoint in Endpoint::ALL {
        let handler = move |state: axum::extract::State<std::sync::Arc<AppState>>,
                            method: axum::http::Method,
                            uri: axum::http::Uri,
                            headers: axum::http::HeaderMap,
                            body: axum::body::Body| ingestion::handle(endpoint, state, method, uri, headers, body);
        router = router.route(endpoint.path(), any(handler)).route(&format!("{}/", endpoint.path()), any(handler));
    }
    router
        .route("/api/health", get(api::health))
        .route("/api/events", get(api::list_events))
        .route("/api/events/{id}", get(api::get_event))
        .route("/api/group-keys", get(api::list_group_keys).post(api::add_group_key))
        .route("/api/group-keys/{property}", delete(api::delete_group_key))
        .route("/api/groups/{key}", get(api::list_groups))
        .route("/api/groups/{key}/{id}", get(api::get_group))
        .route("/api/users/{distinct_id}", get(api::get_user))
        .route("/api/engage", get(api::list_engage_records))
        .route("/api/groups-records", get(api::list_group_records))
        .route("/api/reports/uniques", get(api::report_uniques))
        .route("/api/reports/most-engaged", get(api::report_most_engaged))
        .route("/api/reports/funnel", get(api::report_funnel))
        .route("/api/warnings", get(api::list_warnings))
        .route("/api/requests", get(api::list_requests).delete(api::clear_requests))
        .route("/api/faults", get(api::list_faults).post(api::add_faults).delete(api::clear_faults))
        .route("/api/data", delete(api::reset_data))
        .merge(crate::web::router())
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(errors_as_json))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Maximum bytes of a plain-text error body that [`errors_as_json`] reads.
const MAX_PLAIN_ERROR_BYTES: usize = 64 * 1024;

/// Rewrites the plain-text error responses axum produces itself, such as 405 for a method a
/// route does not serve or 400 for a path that is not valid percent-encoded UTF-8, as
/// `{"error": …}`, so that every route returns errors as JSON.
async fn errors_as_json(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;

    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }

    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_PLAIN_ERROR_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = match parts.headers.get(axum::http::header::ALLOW).and_then(|allow| allow.to_str().ok()) {
        _ if status != StatusCode::METHOD_NOT_ALLOWED => {
            if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { format!("{text} (path {path})") }
        }
        Some(allow) if !allow.is_empty() => format!("method {method} is not allowed on {path}; use {allow}"),
        // The method router adds `Allow` after this middleware runs, so it is usually absent here.
        _ => format!("method {method} is not allowed on {path}; the Allow header lists the methods it accepts"),
    };
    let mut json = ApiError::new(status, message).into_response();
    if let Some(allow) = parts.headers.get(axum::http::header::ALLOW) {
        json.headers_mut().insert(axum::http::header::ALLOW, allow.clone());
    }
    json
}

/// An error of the JSON API: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// Creates a 400 for a request the caller must fix.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// Creates a 404 naming what was not found.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    /// Creates an error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        log::error!("{error}");
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: error.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}
