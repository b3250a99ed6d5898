//! Client configuration and its defaults.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::protocol::{
    MAX_EVENT_BYTES, MAX_IMPORT_REQUEST_BYTES, MAX_RECORDS_PER_REQUEST, SDK_BATCH_SIZE,
    redact_token,
};
use crate::stats::DropCallback;

/// A Mixpanel data residency region, which selects the default ingestion host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Region {
    /// `https://api.mixpanel.com`.
    #[default]
    Us,
    /// `https://api-eu.mixpanel.com`.
    Eu,
    /// `https://api-in.mixpanel.com`.
    India,
}

impl Region {
    /// Returns the ingestion host of this region.
    pub fn api_host(self) -> &'static str {
        match self {
            Region::Us => "https://api.mixpanel.com",
            Region::Eu => "https://api-eu.mixpanel.com",
            Region::India => "https://api-in.mixpanel.com",
        }
    }
}

/// Everything a [`crate::Client`] needs to know before it starts.
///
/// Build one with [`Config::new`] and change the fields that differ from the defaults.
#[derive(Clone)]
pub struct Config {
    /// The Mixpanel project token, sent as `token` on events and `$token` on profile records.
    pub token: String,

    /// The ingestion host, scheme included: `https://` for Mixpanel, `http://` allowed for a
    /// local groupscope-server. Defaults to [`Region::Us`]'s host.
    pub api_host: String,

    /// The folder for the durable store. With `None`, group state and the outbound queue live
    /// in memory and are lost when the process ends.
    pub data_dir: Option<PathBuf>,

    /// Maximum records per `/track`, `/engage` or `/groups` request, 1 to 50.
    pub batch_size: usize,

    /// Maximum records per `/import` request, 1 to 2000.
    pub import_batch_size: usize,

    /// How long the worker waits for a batch to fill before it sends what it has. Zero sends
    /// every record as soon as the worker sees it.
    pub flush_interval: Duration,

    /// Maximum records waiting for delivery; past it the oldest are evicted and counted in
    /// [`crate::Stats::dropped_queue_full`].
    ///
    /// The default, 1,000,000, fits the backlog of a burst of a million events while the
    /// worker catches up. An in-memory queue stores each record's encoded bytes plus, by
    /// estimate, 150 bytes for its `$insert_id`, its header and allocator overhead. A million
    /// 300-byte events therefore take about 450 MB, and `max_queue_bytes` bounds the encoded
    /// part. A durable queue keeps its records in the SQLite file, not in memory.
    pub max_queue_records: usize,

    /// Maximum encoded bytes (compact JSON, before gzip) waiting for delivery; past it the
    /// oldest are evicted and counted in [`crate::Stats::dropped_queue_full`]. Defaults to
    /// 512 MiB for a server and 100 MiB for [`Config::mobile`].
    pub max_queue_bytes: usize,

    /// Maximum encoded bytes of one `/track`, `/engage` or `/groups` request body, before gzip.
    pub max_request_bytes: usize,

    /// Maximum encoded bytes of one `/import` request body, before gzip.
    pub max_import_request_bytes: usize,

    /// How long each step of an HTTP request may take: connecting, sending the request,
    /// waiting for the response and reading it. Name resolution is not bounded.
    pub request_timeout: Duration,

    /// The first retry delay; each further failure doubles it up to `max_retry_delay`.
    pub initial_retry_delay: Duration,

    /// The cap of the retry delay, `Retry-After` excepted.
    pub max_retry_delay: Duration,

    /// Maximum attempts of one batch within one flush cycle before the worker waits for the
    /// next cycle. Records stay queued.
    pub max_attempts_per_cycle: u32,

    /// Whether request bodies are gzip-compressed when that makes them smaller.
    pub gzip: bool,

    /// The project secret or service-account credentials for `/import`, as `user:password`
    /// for HTTP Basic auth. `None` sends the token as the user with an empty password.
    pub import_credentials: Option<String>,

    /// The `project_id` query parameter of `/import`, required with service-account credentials.
    pub project_id: Option<String>,

    /// Called on the worker thread for every record dropped without delivery.
    pub on_drop: Option<Arc<dyn DropCallback>>,
}

impl Config {
    /// Creates a configuration with the defaults of a server-side client: in-memory state,
    /// batches of 50, a 1 s flush interval and Mixpanel's US host.
    pub fn new(token: impl Into<String>) -> Self {
        Config {
            token: token.into(),
            api_host: Region::Us.api_host().to_owned(),
            data_dir: None,
            batch_size: 50,
            import_batch_size: 2000,
            flush_interval: Duration::from_secs(1),
            max_queue_records: 1_000_000,
            max_queue_bytes: 512 * 1024 * 1024,
            max_request_bytes: 1024 * 1024,
            max_import_request_bytes: 10 * 1000 * 1000,
            request_timeout: Duration::from_secs(10),
            initial_retry_delay: Duration::from_secs(2),
            max_retry_delay: Duration::from_secs(60),
            max_attempts_per_cycle: 3,
            gzip: true,
            import_credentials: None,
            project_id: None,
            on_drop: None,
        }
    }

    /// Creates a configuration with the defaults of a mobile app: a durable store in
    /// `data_dir`, a 60 s flush interval and queue caps of 100,000 records and 100 MiB. The
    /// app calls [`crate::Client::flush`] from its background lifecycle hook.
    pub fn mobile(token: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: Some(data_dir.into()),
            flush_interval: Duration::from_secs(60),
            max_queue_records: 100_000,
            max_queue_bytes: 100 * 1024 * 1024,
            ..Config::new(token)
        }
    }

    /// Sets the ingestion host to the host of `region`.
    pub fn with_region(mut self, region: Region) -> Self {
        self.api_host = region.api_host().to_owned();
        self
    }
}

impl Config {
    /// Checks every field and returns the first problem.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field and its value, and saying what to use instead.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid =
            |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });

        if self.token.trim().is_empty() {
            return invalid(
                "token",
                "must not be empty; pass the project token from the Mixpanel project settings"
                    .to_owned(),
            );
        }
        if self.token.chars().any(char::is_whitespace) {
            return invalid(
                "token",
                format!(
                    "{:?} contains whitespace; copy the token without spaces or newlines",
                    redact_token(&self.token)
                ),
            );
        }
        validate_api_host(&self.api_host)?;
        if let Some(data_dir) = &self.data_dir {
            if data_dir.as_os_str().is_empty() {
                return invalid(
                    "data_dir",
                    "must not be empty; pass a folder path such as the app's support directory, or None for an in-memory queue".to_owned(),
                );
            }
        }

        if !(1..=SDK_BATCH_SIZE).contains(&self.batch_size) {
            return invalid(
                "batch_size",
                format!("{} is outside 1..={SDK_BATCH_SIZE}", self.batch_size),
            );
        }
        if !(1..=MAX_RECORDS_PER_REQUEST).contains(&self.import_batch_size) {
            return invalid(
                "import_batch_size",
                format!(
                    "{} is outside 1..={MAX_RECORDS_PER_REQUEST}",
                    self.import_batch_size
                ),
            );
        }
        if self.max_queue_records == 0 {
            return invalid(
                "max_queue_records",
                "0 would drop every record; use at least 1".to_owned(),
            );
        }
        if self.max_queue_bytes < MIN_REQUEST_BYTES {
            return invalid(
                "max_queue_bytes",
                format!(
                    "{} is below the minimum of {MIN_REQUEST_BYTES} bytes",
                    self.max_queue_bytes
                ),
            );
        }
        if !(MIN_REQUEST_BYTES..=MAX_EVENT_BYTES * 10).contains(&self.max_request_bytes) {
            return invalid(
                "max_request_bytes",
                format!(
                    "{} is outside {MIN_REQUEST_BYTES}..={} bytes",
                    self.max_request_bytes,
                    MAX_EVENT_BYTES * 10
                ),
            );
        }
        if !(MIN_REQUEST_BYTES..=MAX_IMPORT_REQUEST_BYTES).contains(&self.max_import_request_bytes)
        {
            return invalid(
                "max_import_request_bytes",
                format!(
                    "{} is outside {MIN_REQUEST_BYTES}..={MAX_IMPORT_REQUEST_BYTES} bytes, the /import limit",
                    self.max_import_request_bytes
                ),
            );
        }
        if self.request_timeout.is_zero() {
            return invalid(
                "request_timeout",
                "0 s would fail every request; use a few seconds".to_owned(),
            );
        }
        if self.initial_retry_delay > self.max_retry_delay {
            return invalid(
                "initial_retry_delay",
                format!(
                    "{:?} is above max_retry_delay {:?}; make it smaller or equal",
                    self.initial_retry_delay, self.max_retry_delay
                ),
            );
        }
        if self.max_attempts_per_cycle == 0 {
            return invalid(
                "max_attempts_per_cycle",
                "0 would never send; use at least 1".to_owned(),
            );
        }
        if let Some(credentials) = &self.import_credentials {
            if !credentials.contains(':') {
                return invalid("import_credentials", "must be \"user:password\" (a service account) or \"secret:\" (a project secret)".to_owned());
            }
        }
        if let Some(project_id) = &self.project_id {
            if project_id.trim().is_empty() {
                return invalid(
                    "project_id",
                    "must not be empty; pass the numeric project id or None".to_owned(),
                );
            }
        }
        Ok(())
    }
}

/// The smallest request or queue size accepted, in bytes.
const MIN_REQUEST_BYTES: usize = 1024;

fn validate_api_host(api_host: &str) -> Result<(), Error> {
    let invalid = |reason: String| {
        Err(Error::InvalidConfig {
            field: "api_host",
            reason,
        })
    };
    let rest = if let Some(rest) = api_host.strip_prefix("https://") {
        rest
    } else if let Some(rest) = api_host.strip_prefix("http://") {
        rest
    } else {
        return invalid(format!(
            "{api_host:?} must start with https:// (or http:// for a local server), for example \"https://api.mixpanel.com\""
        ));
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() {
        return invalid(format!("{api_host:?} has no host name"));
    }
    if authority
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '?' | '#'))
    {
        return invalid(format!(
            "{api_host:?} must be a scheme and host (with an optional port and path prefix), without spaces, query or fragment"
        ));
    }
    let host_and_port = authority.split('/').next().unwrap_or_default();
    if host_and_port.contains('@') {
        return invalid(format!(
            "{api_host:?} contains user information before '@'; use the form \"https://host[:port][/path]\" and pass credentials in import_credentials"
        ));
    }
    validate_host_and_port(api_host, host_and_port)
}

/// Checks the `host[:port]` part of `api_host`; an IPv6 host is written in brackets.
fn validate_host_and_port(api_host: &str, host_and_port: &str) -> Result<(), Error> {
    let invalid = |reason: String| {
        Err(Error::InvalidConfig {
            field: "api_host",
            reason,
        })
    };
    let (host, port) = match host_and_port.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, rest)) => match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => {
                    return invalid(format!(
                        "{api_host:?} has text after the IPv6 address; use the form \"http://[::1]:8080\""
                    ));
                }
            },
            None => {
                return invalid(format!(
                    "{api_host:?} has an IPv6 address without a closing ']'"
                ));
            }
        },
        None => match host_and_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_and_port, None),
        },
    };
    if host.is_empty() {
        return invalid(format!("{api_host:?} has no host name"));
    }
    if let Some(port) = port {
        let valid = port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|port| port > 0);
        if !valid {
            return invalid(format!(
                "{api_host:?} has the invalid port {port:?}; a port is a number from 1 to 65535, as in \"http://127.0.0.1:8080\""
            ));
        }
    }
    Ok(())
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("token", &crate::protocol::redact_token(&self.token))
            .field("api_host", &self.api_host)
            .field("data_dir", &self.data_dir)
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("max_queue_records", &self.max_queue_records)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}
