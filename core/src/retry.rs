//! Delivery decisions as a pure function of one request's outcome.
//!
//! [`decide`] maps what the server (or the network) returned for one batch to what the worker
//! does with the batch. It reads no clock and no random source of its own: the caller passes
//! the attempt number, the current time (for `Retry-After` dates) and a jitter value, so the
//! whole policy is tested from a table without sockets.
//!
//! | outcome | decision |
//! |---|---|
//! | 2xx, body `1`, or verbose `{"status":1}`, or `/import` `{"code":200}` | acknowledge |
//! | 2xx with `failed_records` | drop the named records, acknowledge the rest |
//! | 2xx verbose `{"status":1,"error":…}` without `failed_records` | acknowledge, log and count as partly rejected |
//! | 2xx with body `0` or verbose `{"status":0,"error":…}` | drop as `Rejected` |
//! | network error, timeout, 408, 429, 5xx | retry after a backoff or `Retry-After` |
//! | 404, 405 | retry like 5xx, and log at error level that `api_host` looks wrong |
//! | 413 with more than one record | split the batch in halves |
//! | 413 with one record | drop as `TooLarge` |
//! | `/import` 400 with `failed_records` | drop the named records, acknowledge the rest |
//! | other 400 and other 4xx | drop as `Rejected` |
//! | 401, 403 | drop as `Unauthorized` |
//!
//! 401 and 403 drop the batch instead of keeping it: a wrong token does not fix itself, and
//! keeping the records would let one misconfiguration fill the queue until the caps evict
//! newer, valid records. The drop is logged at error level so the user sees the cause.
//! 404 and 405 keep the records instead: they mean the host or the path prefix in `api_host`
//! is wrong, not the data, and the records can be delivered once `api_host` is fixed.

use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::protocol::Endpoint;

/// Share of the backoff delay that jitter may remove: delays fall in `[0.75, 1.0] × base`.
const JITTER_FRACTION: f64 = 0.25;

/// The longest `Retry-After` the worker honours; longer values are clamped to it so one odd
/// header cannot stall delivery for days.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The result of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The server responded with an HTTP status.
    Response {
        /// The HTTP status code.
        status: u16,
        /// The raw `Retry-After` header, if any.
        retry_after: Option<String>,
        /// The response body, decoded as UTF-8 (lossy).
        body: String,
    },
    /// The connection failed or broke before a response arrived.
    NetworkError(String),
    /// The request did not finish within the request timeout.
    Timeout,
}

/// The backoff settings taken from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Cap of the exponential delay.
    pub max: Duration,
}

impl Backoff {
    /// Returns the delay before attempt `failures + 1`, after `failures` (≥ 1) consecutive
    /// failures. `jitter` in `[0, 1)` removes up to a quarter of the exponential delay, so for
    /// one jitter value the delay never decreases as `failures` grows.
    pub(crate) fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        let base = self
            .initial
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max)
            .min(self.max);
        let jitter = jitter.clamp(0.0, 1.0);
        // `mul_f64` panics when the product does not fit a `Duration`, which happens for
        // delays near `Duration::MAX` because the factor is converted through `f64`.
        Duration::try_from_secs_f64(base.as_secs_f64() * (1.0 - JITTER_FRACTION * jitter))
            .unwrap_or(base)
    }
}

/// How far ahead [`instant_after`] places a deadline whose delay does not fit an `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Returns `start + delay`, or an instant about 100 years after `start` when the sum
/// overflows, so settings such as `Duration::MAX` mean "never" instead of a panic.
pub(crate) fn instant_after(start: Instant, delay: Duration) -> Instant {
    start
        .checked_add(delay)
        .or_else(|| start.checked_add(FAR_FUTURE))
        .or_else(|| start.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(start)
}

/// One record of a batch that the server named in `failed_records`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FailedRecord {
    /// The record's position in the batch, if the server gave it.
    pub index: Option<usize>,
    /// The record's `$insert_id`, if the server gave it.
    pub insert_id: Option<String>,
}

/// The worker's action on a batch after one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// The server accepted every record: remove them from the queue.
    Acknowledge,
    /// Keep the batch and send it again after `delay`.
    Retry {
        /// How long to wait before the next attempt.
        delay: Duration,
        /// A short description of the failure, for the log.
        cause: String,
        /// Whether the status (404 or 405) means the URL is wrong rather than the server busy.
        wrong_url: bool,
    },
    /// The server stored the batch but reported an error without naming the failed records,
    /// so some records may be lost: acknowledge the batch, and log and count it.
    AcknowledgePartial {
        /// The server's error message.
        message: String,
    },
    /// The body was too large: send the first half of the batch on its own.
    Split,
    /// A single record is too large for the endpoint.
    DropTooLarge,
    /// The server rejected the batch as invalid.
    DropRejected {
        /// The HTTP status.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// The server refused the credentials.
    DropUnauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// The server ingested the batch except the records named in `failed_records`.
    DropFailedRecords {
        /// The HTTP status of the response.
        status: u16,
        /// The records the server named.
        failed: Vec<FailedRecord>,
        /// The server's error message.
        message: String,
    },
}

/// Decides what to do with a batch of `batch_len` records sent to `endpoint`.
///
/// `failures` counts consecutive failed attempts including this one (used only when the
/// outcome is retryable), `jitter` is a value in `[0, 1)`, and `now` converts an HTTP-date
/// `Retry-After` into a delay.
pub(crate) fn decide(
    endpoint: Endpoint,
    outcome: &Outcome,
    batch_len: usize,
    failures: u32,
    backoff: Backoff,
    jitter: f64,
    now: SystemTime,
) -> Decision {
    let retry_with = |retry_after: Option<&str>, cause: String, wrong_url: bool| {
        let delay = retry_after
            .and_then(|value| parse_retry_after(value, now))
            .map(|delay| delay.min(MAX_RETRY_AFTER))
            .unwrap_or_else(|| backoff.delay(failures.max(1), jitter));
        Decision::Retry {
            delay,
            cause,
            wrong_url,
        }
    };
    let retry = |retry_after: Option<&str>, cause: String| retry_with(retry_after, cause, false);

    let (status, retry_after, body) = match outcome {
        Outcome::NetworkError(message) => return retry(None, format!("network error: {message}")),
        Outcome::Timeout => return retry(None, "request timed out".to_owned()),
        Outcome::Response {
            status,
            retry_after,
            body,
        } => (*status, retry_after.as_deref(), body.as_str()),
    };

    match status {
        200..=299 => decide_success(endpoint, status, body),
        408 | 429 | 500..=599 => retry(retry_after, format!("HTTP {status}")),
        404 | 405 => retry_with(retry_after, format!("HTTP {status}"), true),
        413 if batch_len > 1 => Decision::Split,
        413 => Decision::DropTooLarge,
        401 | 403 => Decision::DropUnauthorized { status },
        400 if endpoint == Endpoint::Import => match parse_failed_records(body) {
            Some(failed) if !failed.is_empty() => Decision::DropFailedRecords {
                status,
                failed,
                message: error_message(body),
            },
            _ => Decision::DropRejected {
                status,
                message: error_message(body),
            },
        },
        _ => Decision::DropRejected {
            status,
            message: error_message(body),
        },
    }
}

/// Reads a 2xx body: `1`, `0`, verbose JSON `{"status":1|0,"error":…}` or the `/import` JSON,
/// either of them with `failed_records` when the server rejected some records.
fn decide_success(endpoint: Endpoint, status: u16, body: &str) -> Decision {
    let trimmed = body.trim();
    if trimmed == "0" {
        return Decision::DropRejected {
            status,
            message: "the server accepted none of the records (body 0)".to_owned(),
        };
    }
    let json = match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(json)) => Some(json),
        _ => None,
    };

    // Verbose `status` 0 means the server stored none of the records, so the whole batch is
    // dropped even when `failed_records` names only some of them. `/import` bodies carry
    // `"status":"OK"` and `code` instead.
    let rejected = endpoint != Endpoint::Import
        && json.as_ref().is_some_and(|json| match json.get("status") {
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s == "0" || s.eq_ignore_ascii_case("error"),
            _ => false,
        });
    if rejected {
        return Decision::DropRejected {
            status,
            message: error_message(body),
        };
    }
    if let Some(failed) = parse_failed_records(trimmed).filter(|failed| !failed.is_empty()) {
        return Decision::DropFailedRecords {
            status,
            failed,
            message: error_message(trimmed),
        };
    }

    let Some(json) = json.filter(|_| endpoint != Endpoint::Import) else {
        return Decision::Acknowledge;
    };
    match json.get("error") {
        Some(Value::Null) | None => Decision::Acknowledge,
        Some(_) => Decision::AcknowledgePartial {
            message: error_message(body),
        },
    }
}

/// Parses `Retry-After` as delay seconds or an HTTP date. A date in the past means no delay.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Some(Duration::from_secs_f64(
                seconds.min(MAX_RETRY_AFTER.as_secs_f64()),
            ));
        }
        return None;
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Reads `failed_records` from a response body: an `/import` 400 or a verbose 200 of any
/// endpoint.
fn parse_failed_records(body: &str) -> Option<Vec<FailedRecord>> {
    let json: Value = serde_json::from_str(body).ok()?;
    let records = json.get("failed_records")?.as_array()?;
    let failed = records
        .iter()
        .map(|record| FailedRecord {
            index: record
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok()),
            insert_id: record
                .get("$insert_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
        .filter(|record| record.index.is_some() || record.insert_id.is_some())
        .collect();
    Some(failed)
}

/// Returns the `error` field of a JSON body, or the body itself cut to 200 characters.
fn error_message(body: &str) -> String {
    if let Ok(json) = serde_json::from_str::<Value>(body) {
        if let Some(message) = json.get("error").and_then(Value::as_str) {
            return message.to_owned();
        }
    }
    body.trim().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BACKOFF: Backoff = Backoff {
        initial: Duration::from_secs(2),
        max: Duration::from_secs(60),
    };

    fn response(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
        Outcome::Response {
            status,
            retry_after: retry_after.map(str::to_owned),
            body: body.to_owned(),
        }
    }

    fn decide_now(
        endpoint: Endpoint,
        outcome: &Outcome,
        batch_len: usize,
        failures: u32,
    ) -> Decision {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        decide(endpoint, outcome, batch_len, failures, BACKOFF, 0.0, now)
    }

    fn retry_delay(delay_secs: u64) -> impl Fn(&Decision) -> bool {
        move |decision| matches!(decision, Decision::Retry { delay, wrong_url: false, .. } if *delay == Duration::from_secs(delay_secs))
    }

    fn wrong_url_retry(delay_secs: u64) -> impl Fn(&Decision) -> bool {
        move |decision| matches!(decision, Decision::Retry { delay, wrong_url: true, .. } if *delay == Duration::from_secs(delay_secs))
    }

    #[test]
    fn decision_table() {
        use Endpoint::*;
        let http_date =
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_030));
        let import_400 = r#"{"code":400,"error":"some data points in the request failed validation","failed_records":[{"index":1,"$insert_id":"b","field":"properties.time","message":"bad"}],"num_records_imported":1,"status":"Bad Request"}"#;
        let verbose_partial = r#"{"status":1,"error":"1 of 3 records were rejected","failed_records":[{"index":2,"$insert_id":"c","field":"properties.distinct_id","message":"invalid"}]}"#;
        let named_c = || {
            vec![FailedRecord {
                index: Some(2),
                insert_id: Some("c".into()),
            }]
        };

        type Check = Box<dyn Fn(&Decision) -> bool>;
        let table: Vec<(&str, Endpoint, Outcome, usize, u32, Check)> = vec![
            (
                "200 body 1",
                Track,
                response(200, None, "1"),
                3,
                1,
                Box::new(|d| *d == Decision::Acknowledge),
            ),
            (
                "200 verbose ok",
                Track,
                response(200, None, r#"{"status":1,"error":null}"#),
                3,
                1,
                Box::new(|d| *d == Decision::Acknowledge),
            ),
            (
                "200 verbose status 0",
                Engage,
                response(200, None, r#"{"status":0,"error":"bad token"}"#),
                3,
                1,
                Box::new(|d| {
                    *d == Decision::DropRejected {
                        status: 200,
                        message: "bad token".into(),
                    }
                }),
            ),
            (
                "200 verbose failed records track",
                Track,
                response(200, None, verbose_partial),
                3,
                1,
                Box::new(move |d| {
                    *d == Decision::DropFailedRecords {
                        status: 200,
                        failed: named_c(),
                        message: "1 of 3 records were rejected".into(),
                    }
                }),
            ),
            (
                "200 verbose failed records engage",
                Engage,
                response(200, None, verbose_partial),
                3,
                1,
                Box::new(move |d| matches!(d, Decision::DropFailedRecords { status: 200, .. })),
            ),
            (
                "200 verbose failed records groups",
                Groups,
                response(200, None, verbose_partial),
                3,
                1,
                Box::new(move |d| matches!(d, Decision::DropFailedRecords { status: 200, .. })),
            ),
            (
                "200 import failed records",
                Import,
                response(200, None, verbose_partial),
                3,
                1,
                Box::new(move |d| matches!(d, Decision::DropFailedRecords { status: 200, .. })),
            ),
            (
                "200 verbose error without failed records",
                Track,
                response(
                    200,
                    None,
                    r#"{"status":1,"error":"1 of 3 records were rejected"}"#,
                ),
                3,
                1,
                Box::new(|d| {
                    *d == Decision::AcknowledgePartial {
                        message: "1 of 3 records were rejected".into(),
                    }
                }),
            ),
            (
                "200 verbose status 0 with failed records",
                Track,
                response(
                    200,
                    None,
                    r#"{"status":0,"error":"all rejected","failed_records":[{"index":0}]}"#,
                ),
                3,
                1,
                Box::new(|d| matches!(d, Decision::DropRejected { status: 200, .. })),
            ),
            (
                "200 verbose empty failed records",
                Track,
                response(
                    200,
                    None,
                    r#"{"status":1,"error":null,"failed_records":[]}"#,
                ),
                3,
                1,
                Box::new(|d| *d == Decision::Acknowledge),
            ),
            (
                "200 body 0",
                Groups,
                response(200, None, "0"),
                3,
                1,
                Box::new(|d| matches!(d, Decision::DropRejected { status: 200, .. })),
            ),
            (
                "import 200 json",
                Import,
                response(
                    200,
                    None,
                    r#"{"code":200,"num_records_imported":3,"status":"OK"}"#,
                ),
                3,
                1,
                Box::new(|d| *d == Decision::Acknowledge),
            ),
            (
                "network error, first failure",
                Track,
                Outcome::NetworkError("refused".into()),
                3,
                1,
                Box::new(retry_delay(2)),
            ),
            (
                "timeout, third failure",
                Track,
                Outcome::Timeout,
                3,
                3,
                Box::new(retry_delay(8)),
            ),
            (
                "503 capped",
                Track,
                response(503, None, ""),
                3,
                10,
                Box::new(retry_delay(60)),
            ),
            (
                "500",
                Groups,
                response(500, None, ""),
                3,
                2,
                Box::new(retry_delay(4)),
            ),
            (
                "429 retry-after seconds",
                Track,
                response(429, Some("7"), ""),
                3,
                1,
                Box::new(retry_delay(7)),
            ),
            (
                "429 retry-after date",
                Track,
                response(429, Some(&http_date), ""),
                3,
                1,
                Box::new(retry_delay(30)),
            ),
            (
                "503 retry-after above cap",
                Track,
                response(503, Some("120"), ""),
                3,
                1,
                Box::new(retry_delay(120)),
            ),
            (
                "429 bad retry-after uses backoff",
                Track,
                response(429, Some("soon"), ""),
                3,
                1,
                Box::new(retry_delay(2)),
            ),
            (
                "413 many",
                Track,
                response(413, None, ""),
                4,
                1,
                Box::new(|d| *d == Decision::Split),
            ),
            (
                "413 one",
                Import,
                response(413, None, ""),
                1,
                1,
                Box::new(|d| *d == Decision::DropTooLarge),
            ),
            (
                "400 track",
                Track,
                response(400, None, r#"{"error":"invalid json","status":0}"#),
                3,
                1,
                Box::new(|d| {
                    *d == Decision::DropRejected {
                        status: 400,
                        message: "invalid json".into(),
                    }
                }),
            ),
            (
                "400 import failed records",
                Import,
                response(400, None, import_400),
                3,
                1,
                Box::new(|d| {
                    *d == Decision::DropFailedRecords {
                        status: 400,
                        failed: vec![FailedRecord {
                            index: Some(1),
                            insert_id: Some("b".into()),
                        }],
                        message: "some data points in the request failed validation".into(),
                    }
                }),
            ),
            (
                "400 import without failed records",
                Import,
                response(400, None, r#"{"error":"x"}"#),
                3,
                1,
                Box::new(|d| matches!(d, Decision::DropRejected { status: 400, .. })),
            ),
            (
                "401",
                Import,
                response(401, None, ""),
                3,
                1,
                Box::new(|d| *d == Decision::DropUnauthorized { status: 401 }),
            ),
            (
                "403",
                Track,
                response(403, None, ""),
                3,
                1,
                Box::new(|d| *d == Decision::DropUnauthorized { status: 403 }),
            ),
            (
                "404 retried as wrong url",
                Track,
                response(404, None, "not found"),
                3,
                1,
                Box::new(wrong_url_retry(2)),
            ),
            (
                "405 retried as wrong url",
                Import,
                response(405, None, ""),
                3,
                2,
                Box::new(wrong_url_retry(4)),
            ),
            (
                "404 honours retry-after",
                Groups,
                response(404, Some("7"), ""),
                3,
                1,
                Box::new(wrong_url_retry(7)),
            ),
            (
                "410 other 4xx",
                Track,
                response(410, None, "gone"),
                3,
                1,
                Box::new(|d| matches!(d, Decision::DropRejected { status: 410, .. })),
            ),
        ];

        for (name, endpoint, outcome, batch_len, failures, check) in table {
            let decision = decide_now(endpoint, &outcome, batch_len, failures);
            assert!(check(&decision), "case {name:?} gave {decision:?}");
        }
    }

    #[test]
    fn backoff_with_maximum_durations() {
        let backoff = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
        };
        for failures in [1, 2, 31, u32::MAX] {
            for jitter in [0.0, 0.5, 0.999] {
                let delay = backoff.delay(failures, jitter);
                assert!(delay > Duration::from_secs(u64::MAX / 2), "delay {delay:?}");
            }
        }
    }

    #[test]
    fn instant_after_saturates() {
        let now = Instant::now();
        assert_eq!(
            instant_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        assert!(instant_after(now, Duration::MAX) > now + Duration::from_secs(86_400));
    }

    #[test]
    fn retry_after_past_date_is_zero() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let past = httpdate::fmt_http_date(now - Duration::from_secs(10));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
    }

    proptest! {
        #[test]
        fn backoff_delay_within_bounds(failures in 1u32..100, jitter in 0.0f64..1.0) {
            let delay = BACKOFF.delay(failures, jitter);
            prop_assert!(delay <= BACKOFF.max);
            prop_assert!(delay >= BACKOFF.initial.mul_f64(1.0 - JITTER_FRACTION));
        }

        #[test]
        fn backoff_delay_monotone_until_cap(failures in 1u32..100, jitter in 0.0f64..1.0) {
            let this = BACKOFF.delay(failures, jitter);
            let next = BACKOFF.delay(failures + 1, jitter);
            prop_assert!(next >= this);
        }

        #[test]
        fn retry_decisions_stay_within_bounds(status in prop_oneof![Just(429u16), 500u16..600], failures in 1u32..40, jitter in 0.0f64..1.0) {
            let now = SystemTime::UNIX_EPOCH;
            let decision = decide(Endpoint::Track, &response(status, None, ""), 5, failures, BACKOFF, jitter, now);
            match decision {
                Decision::Retry { delay, .. } => prop_assert!(delay <= BACKOFF.max),
                other => prop_assert!(false, "expected a retry, got {other:?}"),
            }
        }
    }
}
