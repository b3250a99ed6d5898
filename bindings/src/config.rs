//! The client configuration of mobile and desktop apps, and its defaults.
//!
//! Apps get a durable store (a data directory is required, so group state and the outbound
//! queue survive a restart) and a 60 s flush interval, which keeps the radio idle between
//! batches. The app flushes the rest from its background lifecycle hook with
//! `Client::flush_on_background`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::callback::{DropListener, ListenerAdapter};
use crate::errors::GroupscopeError;

/// A Mixpanel data residency region, which selects the default ingestion host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Region {
    /// `https://api.mixpanel.com`.
    Us,
    /// `https://api-eu.mixpanel.com`.
    Eu,
    /// `https://api-in.mixpanel.com`.
    India,
}

impl From<Region> for groupscope::Region {
    fn from(region: Region) -> Self {
        match region {
            Region::Us => groupscope::Region::Us,
            Region::Eu => groupscope::Region::Eu,
            Region::India => groupscope::Region::India,
        }
    }
}

/// The settings of a client. Only `data_dir` has no default.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ClientConfig {
    /// The folder of the durable store, for example the app's `Application Support` folder on
    /// iOS or `Context.getNoBackupFilesDir()` on Android. Created if absent.
    pub data_dir: String,

    /// The ingestion host, scheme included, for example `http://127.0.0.1:8080` for a local
    /// groupscope-server. Overrides `region` when set.
    #[uniffi(default = None)]
    pub api_host: Option<String>,

    /// The region whose host receives the data when `api_host` is not set. `None` means the US
    /// host.
    #[uniffi(default = None)]
    pub region: Option<Region>,

    /// Seconds the worker waits for a batch to fill before it sends what it has. Zero sends
    /// every record as soon as the worker dequeues it.
    #[uniffi(default = 60.0)]
    pub flush_interval_seconds: f64,

    /// Maximum records per request, 1 to 50.
    #[uniffi(default = 50)]
    pub batch_size: u32,

    /// Maximum records waiting for delivery; past it the oldest are evicted and counted.
    #[uniffi(default = 100000)]
    pub max_queue_records: u64,

    /// Maximum encoded bytes waiting for delivery; past it the oldest are evicted and counted.
    #[uniffi(default = 104857600)]
    pub max_queue_bytes: u64,

    /// Seconds one HTTP request may take, connection included.
    #[uniffi(default = 10.0)]
    pub request_timeout_seconds: f64,

    /// Whether request bodies are gzip-compressed when that makes them smaller.
    #[uniffi(default = true)]
    pub gzip: bool,
}

impl ClientConfig {
    /// Builds the core configuration for `token`, with `on_drop` as its drop callback.
    ///
    /// # Errors
    /// [`GroupscopeError::InvalidConfig`] naming the field when `data_dir` is empty or a
    /// number of seconds is negative, not finite or too large. The core checks the rest.
    pub(crate) fn to_core(
        &self,
        token: &str,
        on_drop: Option<Arc<dyn DropListener>>,
    ) -> Result<groupscope::Config, GroupscopeError> {
        if self.data_dir.trim().is_empty() {
            return Err(GroupscopeError::invalid_config(
                "data_dir",
                "is empty; pass the app's private data folder, for example Application Support on iOS",
            ));
        }

        let mut config = groupscope::Config::mobile(token, PathBuf::from(&self.data_dir));
        if let Some(region) = self.region {
            config = config.with_region(region.into());
        }
        if let Some(api_host) = &self.api_host {
            config.api_host = api_host.clone();
        }

        config.flush_interval = seconds("flush_interval_seconds", self.flush_interval_seconds)?;
        config.request_timeout = seconds("request_timeout_seconds", self.request_timeout_seconds)?;
        config.batch_size = self.batch_size as usize;
        config.max_queue_records = usize_field("max_queue_records", self.max_queue_records)?;
        config.max_queue_bytes = usize_field("max_queue_bytes", self.max_queue_bytes)?;
        config.gzip = self.gzip;
        config.on_drop = on_drop.map(|listener| Arc::new(ListenerAdapter::new(listener)) as _);

        Ok(config)
    }
}

/// Converts a number of seconds given by the app into a [`Duration`].
fn seconds(field: &str, value: f64) -> Result<Duration, GroupscopeError> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        GroupscopeError::invalid_config(
            field,
            format!("is {value}; use a finite number of seconds of 0 or more"),
        )
    })
}

/// Converts a count given by the app into a `usize`, which is 32 bits on some devices.
fn usize_field(field: &str, value: u64) -> Result<usize, GroupscopeError> {
    usize::try_from(value).map_err(|_| {
        GroupscopeError::invalid_config(
            field,
            format!(
                "is {value}, more than this device can address; use at most {}",
                usize::MAX
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(data_dir: &str) -> ClientConfig {
        ClientConfig {
            data_dir: data_dir.to_owned(),
            api_host: Some("http://127.0.0.1:9".to_owned()),
            region: None,
            flush_interval_seconds: 60.0,
            batch_size: 50,
            max_queue_records: 100_000,
            max_queue_bytes: 104_857_600,
            request_timeout_seconds: 10.0,
            gzip: true,
        }
    }

    #[test]
    fn config_mobile_defaults() {
        let core = config("/tmp/groupscope-config-test")
            .to_core("token", None)
            .unwrap();

        assert_eq!(
            core.data_dir,
            Some(PathBuf::from("/tmp/groupscope-config-test"))
        );
        assert_eq!(core.flush_interval, Duration::from_secs(60));
        assert_eq!(core.api_host, "http://127.0.0.1:9");
    }

    #[test]
    fn config_region_without_host() {
        let mut eu = config("/tmp/groupscope-config-test");
        eu.api_host = None;
        eu.region = Some(Region::Eu);

        let core = eu.to_core("token", None).unwrap();

        assert_eq!(core.api_host, "https://api-eu.mixpanel.com");
    }

    #[test]
    fn config_empty_data_dir_rejected() {
        let error = config(" ").to_core("token", None).unwrap_err();

        assert!(matches!(error, GroupscopeError::InvalidConfig(_)));
        assert!(error.to_string().contains("data_dir"), "{error}");
    }

    #[test]
    fn config_negative_interval_rejected() {
        let mut negative = config("/tmp/groupscope-config-test");
        negative.flush_interval_seconds = -1.0;

        let error = negative.to_core("token", None).unwrap_err();

        assert!(
            error.to_string().contains("flush_interval_seconds is -1"),
            "{error}"
        );
    }

    #[test]
    fn config_nan_timeout_rejected() {
        let mut nan = config("/tmp/groupscope-config-test");
        nan.request_timeout_seconds = f64::NAN;

        let error = nan.to_core("token", None).unwrap_err();

        assert!(
            error.to_string().contains("request_timeout_seconds is NaN"),
            "{error}"
        );
    }
}
