//! Project settings: the token and credentials `/import` checks, the group keys, and the
//! limits reported as warnings. Read from a TOML file such as:
//!
//! ```toml
//! token = "PROJECT_TOKEN"
//! secret = "PROJECT_SECRET"
//! project_id = "12345"
//! max_group_keys = 6
//! max_group_profiles_per_key = 1000000
//! max_events_per_group_per_day = 1000000
//!
//! [[service_accounts]]
//! username = "ingest.sa"
//! secret = "sa-secret"
//!
//! [[group_keys]]
//! property = "company_id"
//! display_name = "Company"
//! set_up_at = "2026-01-01T00:00:00Z"   # or "now"
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::time;

/// The default maximum number of group keys of a project.
pub const DEFAULT_MAX_GROUP_KEYS: usize = 6;

/// The default number of group profiles per key above which a warning is recorded.
pub const DEFAULT_MAX_GROUP_PROFILES_PER_KEY: u64 = 1_000_000;

/// The default number of events per group id per UTC day above which a warning is recorded.
pub const DEFAULT_MAX_EVENTS_PER_GROUP_PER_DAY: u64 = 1_000_000;

/// The settings of the one project a server instance serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// The project token. When set, `/track`, `/engage` and `/groups` records must carry it,
    /// and it authenticates `/import` as the Basic-auth user with an empty password. When
    /// unset, any token is accepted.
    #[serde(default)]
    pub token: Option<String>,

    /// The legacy project secret, accepted by `/import` as the Basic-auth user with an empty
    /// password.
    #[serde(default)]
    pub secret: Option<String>,

    /// The project id that service-account requests to `/import` must name in `?project_id=`.
    #[serde(default)]
    pub project_id: Option<String>,

    /// Service accounts accepted by `/import` with HTTP Basic auth and `?project_id=`.
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccount>,

    /// Group keys configured at start-up.
    #[serde(default)]
    pub group_keys: Vec<GroupKeySetting>,

    /// Maximum number of group keys; more are rejected.
    #[serde(default = "default_max_group_keys")]
    pub max_group_keys: usize,

    /// Group profiles per key above which a warning is recorded.
    #[serde(default = "default_max_group_profiles_per_key")]
    pub max_group_profiles_per_key: u64,

    /// Events per group id per UTC day above which a warning is recorded.
    #[serde(default = "default_max_events_per_group_per_day")]
    pub max_events_per_group_per_day: u64,
}

fn default_max_group_keys() -> usize {
    DEFAULT_MAX_GROUP_KEYS
}

fn default_max_group_profiles_per_key() -> u64 {
    DEFAULT_MAX_GROUP_PROFILES_PER_KEY
}

fn default_max_events_per_group_per_day() -> u64 {
    DEFAULT_MAX_EVENTS_PER_GROUP_PER_DAY
}

impl Default for ProjectConfig {
    fn default() -> Self {
        ProjectConfig {
            token: None,
            secret: None,
            project_id: None,
            service_accounts: Vec::new(),
            group_keys: Vec::new(),
            max_group_keys: DEFAULT_MAX_GROUP_KEYS,
            max_group_profiles_per_key: DEFAULT_MAX_GROUP_PROFILES_PER_KEY,
            max_events_per_group_per_day: DEFAULT_MAX_EVENTS_PER_GROUP_PER_DAY,
        }
    }
}

/// A service account accepted by `/import`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccount {
    /// The Basic-auth user name.
    pub username: String,
    /// The Basic-auth password.
    pub secret: String,
}

/// A group key as written in the config file or sent to `POST /api/group-keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupKeySetting {
    /// The event property that carries the group id, for example `company_id`.
    pub property: String,
    /// The name shown in reports; defaults to the property.
    #[serde(default)]
    pub display_name: Option<String>,
    /// When the key was set up: an RFC 3339 timestamp, `"now"`, or milliseconds since the
    /// epoch. Defaults to now.
    #[serde(default)]
    pub set_up_at: Option<SetUpAt>,
}

/// The set-up time of a group key as written by a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SetUpAt {
    /// Milliseconds since the epoch.
    Millis(i64),
    /// `"now"` or an RFC 3339 timestamp.
    Text(String),
}

impl SetUpAt {
    /// Resolves the set-up time to milliseconds since the epoch, with `now_ms` for `"now"`.
    ///
    /// # Errors
    /// A message naming the value when it is neither `"now"`, RFC 3339 nor a non-negative number.
    pub fn resolve(&self, now_ms: i64) -> Result<i64, String> {
        match self {
            SetUpAt::Millis(ms) if *ms >= 0 => Ok(*ms),
            SetUpAt::Millis(ms) => Err(format!(
                "invalid set_up_at {ms}: milliseconds since the epoch must not be negative"
            )),
            SetUpAt::Text(text) if text.eq_ignore_ascii_case("now") => Ok(now_ms),
            SetUpAt::Text(text) => time::parse_rfc3339(text).ok_or_else(|| {
                format!(
                    "invalid set_up_at {text:?}: use \"now\" or an RFC 3339 timestamp with a time zone, \
                     such as \"2026-01-01T00:00:00Z\""
                )
            }),
        }
    }
}

/// A problem with the project configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a project.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The TOML parser's message.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl ProjectConfig {
    /// Reads and validates a TOML config file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the value that is wrong.
    pub fn from_file(path: &Path) -> Result<ProjectConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        ProjectConfig::from_toml(&text).map_err(|error| match error {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn from_toml(text: &str) -> Result<ProjectConfig, ConfigError> {
        let config: ProjectConfig = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: "<text>".to_owned(),
            message: error.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the limits and the group keys.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first value that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_group_keys == 0 {
            return Err(ConfigError::Invalid("max_group_keys must be at least 1".to_owned()));
        }
        if self.group_keys.len() > self.max_group_keys {
            return Err(ConfigError::Invalid(format!(
                "{} group keys are configured but max_group_keys is {}: remove keys or raise max_group_keys",
                self.group_keys.len(),
                self.max_group_keys
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for key in &self.group_keys {
            validate_group_key_property(&key.property).map_err(ConfigError::Invalid)?;
            if !seen.insert(key.property.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "group key {:?} is configured twice: keep one [[group_keys]] entry per property",
                    key.property
                )));
            }
            if let Some(set_up_at) = &key.set_up_at {
                set_up_at.resolve(0).map_err(ConfigError::Invalid)?;
            }
        }
        Ok(())
    }
}

/// Checks that a group key names a usable event property, with the rules the client applies
/// ([`groupscope::groups::validate_group_key`]) and a length limit.
///
/// # Errors
/// A message naming the property when it is empty, starts with `$` or `mp_`, is a reserved
/// event property such as `token` or `distinct_id`, or is longer than 255 bytes.
pub fn validate_group_key_property(property: &str) -> Result<(), String> {
    if property.len() > 255 {
        return Err(format!(
            "invalid group key {:?}…: property names are at most 255 bytes",
            property.chars().take(32).collect::<String>()
        ));
    }
    groupscope::groups::validate_group_key(property).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_full_example() {
        let config = ProjectConfig::from_toml(
            r#"
            token = "tok"
            secret = "sec"
            project_id = "7"
            max_group_keys = 3
            max_events_per_group_per_day = 10
            [[service_accounts]]
            username = "sa"
            secret = "pw"
            [[group_keys]]
            property = "company_id"
            display_name = "Company"
            set_up_at = "2026-01-01T00:00:00Z"
            [[group_keys]]
            property = "team_id"
            set_up_at = "now"
            "#,
        )
        .unwrap();
        assert_eq!(config.token.as_deref(), Some("tok"));
        assert_eq!(config.group_keys.len(), 2);
        assert_eq!(config.max_group_keys, 3);
        assert_eq!(config.max_events_per_group_per_day, 10);
        assert_eq!(config.max_group_profiles_per_key, DEFAULT_MAX_GROUP_PROFILES_PER_KEY);
        assert_eq!(config.service_accounts[0].username, "sa");
    }

    #[test]
    fn config_rejects_too_many_keys() {
        let error = ProjectConfig::from_toml(
            "max_group_keys = 1\n[[group_keys]]\nproperty = \"a\"\n[[group_keys]]\nproperty = \"b\"\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("max_group_keys is 1"), "{error}");
    }

    #[test]
    fn config_rejects_bad_set_up_at() {
        let error =
            ProjectConfig::from_toml("[[group_keys]]\nproperty = \"a\"\nset_up_at = \"yesterday\"\n").unwrap_err();
        assert!(error.to_string().contains("\"yesterday\""), "{error}");
    }

    #[test]
    fn config_rejects_keys_the_client_rejects() {
        for property in ["", "$group", "$insert_id", "mp_lib", "token", "distinct_id", "time"] {
            let toml = format!("[[group_keys]]\nproperty = {property:?}\n");
            let error = ProjectConfig::from_toml(&toml).unwrap_err();
            assert!(error.to_string().contains("invalid group key"), "{property}: {error}");
        }
    }

    #[test]
    fn config_rejects_unknown_field() {
        let error = ProjectConfig::from_toml("tokn = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("tokn"), "{error}");
    }
}
