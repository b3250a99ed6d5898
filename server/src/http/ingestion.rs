//! The ingestion endpoints `/track`, `/engage`, `/groups` and `/import`, with Mixpanel's
//! response shapes.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::header::{
    AUTHORIZATION, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use groupscope::protocol::Endpoint;
use serde_json::{Value, json};

use super::{AppState, RequestLog};
use crate::decode::{self, DecodeError, Decoded, RawRequest};
use crate::faults::FaultStep;
use crate::ingest::{self, Outcome};
use crate::time;

/// Handles one ingestion request.
pub async fn handle(
    endpoint: Endpoint,
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method == Method::OPTIONS {
        return with_cors(StatusCode::NO_CONTENT.into_response(), &headers);
    }

    let received_at_ms = time::now_ms();
    let mut log = RequestLog {
        seq: 0,
        endpoint: endpoint.name().to_owned(),
        method: method.to_string(),
        path: uri.path().to_owned(),
        body_bytes: 0,
        content_encoding: header(&headers, CONTENT_ENCODING.as_str()).map(str::to_owned),
        status: None,
        records: None,
        accepted: 0,
        fault: None,
        received_at: received_at_ms,
    };

    let step = state.faults().and_then(|mut faults| faults.next(endpoint));
    if let Some(step) = &step {
        log.fault = Some(step.describe());
        if let Some(delay) = step.delay_ms {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
    }

    let limit = state.body_limit(endpoint);
    let declared = header(&headers, CONTENT_LENGTH.as_str()).and_then(|length| length.parse::<usize>().ok());
    let body = match declared {
        Some(length) if length > limit => None,
        _ => axum::body::to_bytes(body, limit).await.ok(),
    };

    log.body_bytes = body.as_ref().map_or(declared.unwrap_or(0), Bytes::len);

    let response = match (body, &step) {
        (_, Some(step)) if step.replaces_response() => fault_response(endpoint, step),
        (None, _) => too_large(endpoint, &DecodeError::TooLarge { limit }),
        (Some(body), _) => process(endpoint, &state, &uri, &headers, body, limit, received_at_ms, &mut log).await,
    };

    log.status = if step.as_ref().is_some_and(|s| s.drop_connection) { None } else { Some(response.status().as_u16()) };
    state.log_request(log);
    with_cors(response, &headers)
}

/// Adds the CORS headers that let browser SDKs on any origin send records, as Mixpanel's
/// ingestion API does. A preflight gets back the headers it requests.
fn with_cors(mut response: Response, request_headers: &HeaderMap) -> Response {
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    let allowed = request_headers
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("Content-Type, Content-Encoding, Authorization"));
    headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed);
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    response
}

#[allow(clippy::too_many_arguments)]
async fn process(
    endpoint: Endpoint,
    state: &Arc<AppState>,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
    received_at_ms: i64,
    log: &mut RequestLog,
) -> Response {
    let state = Arc::clone(state);
    let query = uri.query().map(str::to_owned);
    let content_type = header(headers, CONTENT_TYPE.as_str()).map(str::to_owned);
    let content_encoding = header(headers, CONTENT_ENCODING.as_str()).map(str::to_owned);
    let authorization = header(headers, AUTHORIZATION.as_str()).map(str::to_owned);

    let work = tokio::task::spawn_blocking(move || {
        let raw = RawRequest {
            endpoint,
            query: query.as_deref(),
            content_type: content_type.as_deref(),
            content_encoding: content_encoding.as_deref(),
            body: &body,
        };
        let decoded = decode::decode(raw, limit);
        if endpoint == Endpoint::Import {
            // `project_id` may be in the form body, so credentials are checked after decoding.
            // A body that cannot be decoded is checked with the query string alone, so a
            // request without valid credentials gets 401 whatever its body.
            let project_id = match &decoded {
                Ok(decoded) => decoded.params.project_id.clone(),
                Err(_) => query_param(query.as_deref(), "project_id"),
            };
            authenticate_import(&state, authorization.as_deref(), project_id.as_deref()).map_err(Rejection::Unauthorized)?;
        }
        let decoded = decoded.map_err(Rejection::Decode)?;

        let token = state.project.token.as_deref();
        let mut store = state.store();
        let outcome = match endpoint {
            Endpoint::Track | Endpoint::Import => ingest::ingest_events(&mut store, endpoint, &decoded.records, token, received_at_ms),
            Endpoint::Groups => ingest::ingest_group_records(&mut store, &decoded.records, token, received_at_ms),
            Endpoint::Engage => ingest::ingest_user_records(&mut store, &decoded.records, token, received_at_ms),
        };
        Ok::<_, Rejection>((decoded, outcome))
    });

    let (decoded, outcome) = match work.await {
        Ok(Ok(done)) => done,
        Ok(Err(Rejection::Unauthorized(message))) => {
            log::info!("Rejected an /import request: {message}");
            return import_response(StatusCode::UNAUTHORIZED, json!({"code": 401, "error": message, "status": "Unauthorized"}));
        }
        Ok(Err(Rejection::Decode(error @ (DecodeError::TooLarge { .. } | DecodeError::TooManyRecords { .. })))) => {
            return too_large(endpoint, &error);
        }
        Ok(Err(Rejection::Decode(error @ DecodeError::UnsupportedEncoding(_)))) => return unsupported_encoding(endpoint, &error),
        Ok(Err(Rejection::Decode(DecodeError::Malformed(message)))) => return malformed(endpoint, &message),
        Err(panic) => {
            log::error!("Handling a {} request panicked: {panic}", endpoint.path());
            return server_error(endpoint, "the server failed while handling the request; nothing of it was stored");
        }
    };
    log.records = Some(decoded.records.len());

    match outcome {
        Ok(outcome) => {
            log.accepted = outcome.accepted;
            if !outcome.failed.is_empty() {
                log::info!(
                    "{} of {} records sent to {} were rejected; first: {}",
                    outcome.failed.len(),
                    decoded.records.len(),
                    endpoint.path(),
                    outcome.failed[0]
                );
            }
            // Legacy `/import` clients such as mixpanel-python send `verbose=1` and parse the
            // `/track` style response.
            match endpoint {
                Endpoint::Import if !decoded.params.verbose => import_outcome(&decoded, &outcome),
                _ => ingestion_outcome(&decoded, &outcome),
            }
        }
        Err(error) => {
            log::error!("Storing a {} request failed: {error}", endpoint.path());
            server_error(endpoint, &format!("{error}; nothing of the request was stored, retry it"))
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The reason a request was not handled.
enum Rejection {
    /// `/import` without valid credentials.
    Unauthorized(String),
    /// A body that cannot be decoded.
    Decode(DecodeError),
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query.and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(n, _)| n == name).map(|(_, v)| v.into_owned()))
}

/// Checks the HTTP Basic credentials of an `/import` request: a service account with
/// `project_id` (from the query string or the form body), or the project secret or token as
/// the user with an empty password. Every message starts with Mixpanel's "Invalid
/// credentials".
fn authenticate_import(state: &AppState, authorization: Option<&str>, project_id: Option<&str>) -> Result<(), String> {
    let authorization = authorization.ok_or_else(|| {
        "Invalid credentials: the request has no Authorization header; /import needs HTTP Basic auth with a service account and project_id, or the project secret or token as the user".to_owned()
    })?;
    let encoded = authorization
        .strip_prefix("Basic ")
        .or_else(|| authorization.strip_prefix("basic "))
        .ok_or_else(|| "Invalid credentials: the Authorization header must use the Basic scheme".to_owned())?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| "Invalid credentials: the Basic credentials are not base64 of user:password".to_owned())?;
    let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));

    let project = &state.project;
    if let Some(account) = project.service_accounts.iter().find(|account| account.username == user) {
        if account.secret != password {
            return Err(format!("Invalid credentials: wrong secret for service account {user:?}"));
        }
        return match (project_id, &project.project_id) {
            (None, _) => Err("Invalid credentials: service-account requests need project_id in the query string or the form body".to_owned()),
            (Some(given), Some(expected)) if given != expected => {
                Err(format!("Invalid credentials: project_id {given:?} is not this project's"))
            }
            _ => Ok(()),
        };
    }

    if !password.is_empty() {
        return Err(format!("Invalid credentials: {:?} is not a service account of this project", user));
    }
    let is_secret = project.secret.as_deref().is_some_and(|secret| secret == user);
    let is_token = match project.token.as_deref() {
        Some(token) => token == user,
        None => !user.is_empty(),
    };
    if is_secret || is_token {
        Ok(())
    } else {
        Err("Invalid credentials: the user is neither this project's secret nor its token".to_owned())
    }
}

fn import_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn import_outcome(decoded: &Decoded, outcome: &Outcome) -> Response {
    let strict = decoded.params.strict.unwrap_or(true);
    if strict && !outcome.failed.is_empty() {
        return import_response(
            StatusCode::BAD_REQUEST,
            json!({
                "code": 400,
                "error": "some data points in the request failed validation",
                "failed_records": outcome.failed,
                "num_records_imported": outcome.accepted,
                "status": "Bad Request",
            }),
        );
    }
    import_response(StatusCode::OK, json!({"code": 200, "num_records_imported": outcome.accepted, "status": "OK"}))
}

fn ingestion_outcome(decoded: &Decoded, outcome: &Outcome) -> Response {
    let status = u8::from(outcome.accepted > 0);
    if !decoded.params.verbose {
        return (StatusCode::OK, status.to_string()).into_response();
    }
    let error = match outcome.failed.as_slice() {
        [] if outcome.accepted == 0 => Value::from("the request contains no records"),
        [] => Value::Null,
        failed => {
            let details: Vec<String> = failed.iter().take(5).map(ToString::to_string).collect();
            Value::from(format!("{} of {} records were rejected: {}", failed.len(), decoded.records.len(), details.join("; ")))
        }
    };
    // `failed_records` is groupscope's extension of Mixpanel's verbose shape, in the shape
    // `/import` uses, so a client can tell which records to fix.
    let body = if outcome.failed.is_empty() {
        json!({"status": status, "error": error})
    } else {
        json!({"status": status, "error": error, "failed_records": outcome.failed})
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn too_large(endpoint: Endpoint, error: &DecodeError) -> Response {
    log::info!("Rejected a {} request with 413: {error}", endpoint.path());
    let status = StatusCode::PAYLOAD_TOO_LARGE;
    match endpoint {
        Endpoint::Import => {
            import_response(status, json!({"code": 413, "error": error.to_string(), "status": "Request Entity Too Large"}))
        }
        _ => (status, axum::Json(json!({"status": 0, "error": error.to_string()}))).into_response(),
    }
}

fn unsupported_encoding(endpoint: Endpoint, error: &DecodeError) -> Response {
    log::info!("Rejected a {} request with 415: {error}", endpoint.path());
    let status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    match endpoint {
        Endpoint::Import => {
            import_response(status, json!({"code": 415, "error": error.to_string(), "status": "Unsupported Media Type"}))
        }
        _ => (status, axum::Json(json!({"status": 0, "error": error.to_string()}))).into_response(),
    }
}

fn malformed(endpoint: Endpoint, message: &str) -> Response {
    log::info!("Rejected a malformed {} request: {message}", endpoint.path());
    let status = StatusCode::BAD_REQUEST;
    match endpoint {
        Endpoint::Import => import_response(status, json!({"code": 400, "error": message, "status": "Bad Request"})),
        _ => (status, axum::Json(json!({"status": 0, "error": message}))).into_response(),
    }
}

fn server_error(endpoint: Endpoint, message: &str) -> Response {
    let status = StatusCode::INTERNAL_SERVER_ERROR;
    match endpoint {
        Endpoint::Import => import_response(status, json!({"code": 500, "error": message, "status": "Internal Server Error"})),
        _ => (status, axum::Json(json!({"status": 0, "error": message}))).into_response(),
    }
}

/// Builds the response of a scripted fault.
fn fault_response(endpoint: Endpoint, step: &FaultStep) -> Response {
    if step.drop_connection {
        log::debug!("Dropping the connection of a {} request as scripted", endpoint.path());
        return Response::new(Body::new(DroppedBody));
    }

    let status = step.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let body = step.body.clone().unwrap_or_else(|| {
        let error = match status.as_u16() {
            429 => "Project exceeded rate limits. Please retry the request with exponential backoff.".to_owned(),
            413 => "request exceeds max limit of bytes (injected fault)".to_owned(),
            _ => format!("injected fault: status {}", status.as_u16()),
        };
        json!({"code": status.as_u16(), "error": error, "status": status.canonical_reason().unwrap_or("Error")}).to_string()
    });
    let mut response = (status, [(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
    if let Some(seconds) = step.retry_after {
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A response body that fails on its first read, so the server closes the connection without
/// completing the response.
struct DroppedBody;

impl HttpBody for DroppedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection dropped by fault injection"))))
    }
}
