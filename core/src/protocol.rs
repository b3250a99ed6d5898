//! Facts of Mixpanel's ingestion protocol shared by the client and the reference server:
//! endpoints, limits, `$insert_id` and `distinct_id` rules, and time normalisation.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// An ingestion endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `/track`: recent events, authenticated by `properties.token`.
    Track,
    /// `/engage`: user-profile operations.
    Engage,
    /// `/groups`: group-profile operations.
    Groups,
    /// `/import`: events of any age, authenticated by HTTP Basic auth.
    Import,
}

impl Endpoint {
    /// All endpoints, in the order the worker delivers them.
    pub const ALL: [Endpoint; 4] = [
        Endpoint::Track,
        Endpoint::Engage,
        Endpoint::Groups,
        Endpoint::Import,
    ];

    /// Returns the path without a trailing slash, for example `/track`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Track => "/track",
            Endpoint::Engage => "/engage",
            Endpoint::Groups => "/groups",
            Endpoint::Import => "/import",
        }
    }

    /// Returns whether the endpoint receives events (`/track`, `/import`) rather than profile
    /// operations (`/engage`, `/groups`).
    pub fn is_event(self) -> bool {
        matches!(self, Endpoint::Track | Endpoint::Import)
    }

    /// Returns the name used in storage and logs, for example `track`.
    pub fn name(self) -> &'static str {
        &self.path()[1..]
    }

    /// Parses a name returned by [`Endpoint::name`].
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Returns the maximum records Mixpanel accepts in one request to this endpoint.
    pub fn max_records_per_request(self) -> usize {
        MAX_RECORDS_PER_REQUEST
    }
}

/// Maximum records in one request to any endpoint, as Mixpanel documents it. The official
/// SDKs send at most [`SDK_BATCH_SIZE`] to `/track`, `/engage` and `/groups`.
pub const MAX_RECORDS_PER_REQUEST: usize = 2000;

/// The batch size every official Mixpanel SDK uses for `/track`, `/engage` and `/groups`.
pub const SDK_BATCH_SIZE: usize = 50;

/// Maximum uncompressed bytes of one `/import` request.
pub const MAX_IMPORT_REQUEST_BYTES: usize = 10 * 1000 * 1000;

/// Maximum uncompressed bytes of one event.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// An event must have fewer properties than this.
pub const MAX_PROPERTIES: usize = 255;

/// A list property must have fewer elements than this.
pub const MAX_ARRAY_ELEMENTS: usize = 255;

/// Maximum nesting depth of object properties.
pub const MAX_NESTING_DEPTH: usize = 3;

/// Maximum length of an `$insert_id`.
pub const MAX_INSERT_ID_LEN: usize = 36;

/// Event `time` values below this are seconds since the epoch; others are milliseconds.
pub const SECONDS_THRESHOLD: f64 = 1e11;

/// `distinct_id` values Mixpanel treats as invalid, compared case-insensitively.
pub const FORBIDDEN_DISTINCT_IDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "undefined",
    "unknown",
    "<nil>",
    "0",
    "-1",
    "true",
    "false",
    "[]",
    "{}",
];

/// The group-profile operations `/groups` accepts.
pub const GROUP_OPERATIONS: &[&str] = &[
    "$set",
    "$set_once",
    "$unset",
    "$union",
    "$remove",
    "$delete",
];

/// Returns whether `id` is a valid `$insert_id`: 1 to 36 characters of `[A-Za-z0-9-]`.
pub fn is_valid_insert_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_INSERT_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Bumped in a child process after `fork()`, so every thread reseeds its `$insert_id`
/// generators instead of repeating the parent's sequence.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Per-thread `$insert_id` generators: two 64-bit generators, each seeded from the operating
/// system's random source when the thread first needs one and again after a fork.
struct InsertIdRng {
    generation: u64,
    high: fastrand::Rng,
    low: fastrand::Rng,
}

impl InsertIdRng {
    fn seeded(generation: u64) -> InsertIdRng {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        InsertIdRng {
            generation,
            high: fastrand::Rng::with_seed(high),
            low: fastrand::Rng::with_seed(low),
        }
    }
}

thread_local! {
    static INSERT_ID_RNG: RefCell<Option<InsertIdRng>> = const { RefCell::new(None) };
}

/// Makes every thread reseed its `$insert_id` generators; called in a child after `fork()`.
pub(crate) fn reseed_after_fork() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Returns a fresh `$insert_id`: 128 random bits as 32 lowercase hex digits.
///
/// The bits come from a per-thread generator seeded once from the operating system, so a call
/// makes no system call. After a fork, the child draws new seeds once it calls
/// `Client::reinit_after_fork`.
pub fn new_insert_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";

    let generation = FORK_GENERATION.load(Ordering::Relaxed);
    let random = INSERT_ID_RNG.with(|cell| {
        let mut slot = cell.borrow_mut();
        let rng = match slot.as_mut() {
            Some(rng) if rng.generation == generation => rng,
            _ => slot.insert(InsertIdRng::seeded(generation)),
        };
        (u128::from(rng.high.u64(..)) << 64) | u128::from(rng.low.u64(..))
    });

    let mut id = String::with_capacity(32);
    for shift in (0..128).step_by(4).rev() {
        id.push(char::from(HEX[((random >> shift) & 0xf) as usize]));
    }
    id
}

/// Returns whether Mixpanel rejects `distinct_id` as a placeholder value.
pub fn is_forbidden_distinct_id(distinct_id: &str) -> bool {
    let trimmed = distinct_id.trim();
    FORBIDDEN_DISTINCT_IDS
        .iter()
        .any(|forbidden| forbidden.eq_ignore_ascii_case(trimmed))
}

/// Normalises an event `time` to whole milliseconds since the epoch.
///
/// Values below [`SECONDS_THRESHOLD`] are seconds (fractions kept to the millisecond); others
/// are milliseconds. Returns `None` for non-finite or negative values.
pub fn normalize_time_ms(time: f64) -> Option<i64> {
    if !time.is_finite() || time < 0.0 {
        return None;
    }
    let ms = if time < SECONDS_THRESHOLD {
        time * 1000.0
    } else {
        time
    };
    Some(ms.round() as i64)
}

/// Returns the token with all but its first four characters masked, for logs.
pub fn redact_token(token: &str) -> String {
    let shown: String = token.chars().take(4).collect();
    format!("{shown}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_id_accepts_uuid_hex_and_dashes() {
        assert!(is_valid_insert_id(&new_insert_id()));
        assert!(is_valid_insert_id("0b5c1b9e-5f0a-4a5e-9d7e-1f2a3b4c5d6e"));
    }

    #[test]
    fn insert_id_rejects_bad_characters_and_length() {
        assert!(!is_valid_insert_id(""));
        assert!(!is_valid_insert_id("has space"));
        assert!(!is_valid_insert_id("under_score"));
        assert!(!is_valid_insert_id(&"a".repeat(37)));
    }

    #[test]
    fn forbidden_distinct_ids_match_case_insensitively() {
        assert!(is_forbidden_distinct_id("Anonymous"));
        assert!(is_forbidden_distinct_id("NULL"));
        assert!(!is_forbidden_distinct_id("user-1"));
    }

    #[test]
    fn time_below_threshold_is_seconds() {
        assert_eq!(normalize_time_ms(1_700_000_000.5), Some(1_700_000_000_500));
        assert_eq!(
            normalize_time_ms(1_700_000_000_123.0),
            Some(1_700_000_000_123)
        );
        assert_eq!(normalize_time_ms(f64::NAN), None);
        assert_eq!(normalize_time_ms(-1.0), None);
    }

    #[test]
    fn redacted_token_hides_the_rest() {
        assert_eq!(redact_token("abcdef123"), "abcd…");
    }
}
