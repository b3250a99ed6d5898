//! The SQLite store: events with their attribution, group and user profiles, the raw
//! profile records, group keys and limit warnings.
//!
//! One connection serves every request, so writes are serialized. Callers hold the store's
//! lock only for synchronous work and never across an `.await`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use groupscope::protocol::Endpoint;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::attribution::{Attribution, GroupKey};
use crate::profiles::Operation;
use crate::time;

/// The location of the store's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// An in-memory database, lost when the server stops.
    Memory,
    /// A database file, created if absent.
    File(PathBuf),
}

impl DbLocation {
    /// Parses a `--db` value: `:memory:` or a file path.
    pub fn parse(text: &str) -> DbLocation {
        if text == ":memory:" { DbLocation::Memory } else { DbLocation::File(PathBuf::from(text)) }
    }
}

impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbLocation::Memory => f.write_str(":memory:"),
            DbLocation::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
#[error("storage failed ({location}) while trying to {action}: {source}")]
pub struct StoreError {
    location: String,
    action: &'static str,
    #[source]
    source: rusqlite::Error,
}

/// The result type of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS group_keys (
    property TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    set_up_at_ms INTEGER NOT NULL,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS group_key_deletions (
    property TEXT NOT NULL,
    deleted_at_ms INTEGER NOT NULL,
    restored_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS group_key_deletions_by_property ON group_key_deletions(property);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    endpoint TEXT NOT NULL,
    event TEXT NOT NULL,
    distinct_id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    insert_id TEXT,
    received_at_ms INTEGER NOT NULL,
    properties TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_dedup ON events(event, time_ms, distinct_id, insert_id)
    WHERE insert_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_name ON events(event, time_ms);
CREATE INDEX IF NOT EXISTS events_by_user ON events(distinct_id, time_ms);
CREATE TABLE IF NOT EXISTS event_groups (
    event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    group_key TEXT NOT NULL,
    group_id TEXT NOT NULL,
    event TEXT NOT NULL,
    distinct_id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    PRIMARY KEY (event_id, group_key, group_id)
);
CREATE INDEX IF NOT EXISTS event_groups_by_group ON event_groups(group_key, group_id, time_ms);
CREATE INDEX IF NOT EXISTS event_groups_by_event ON event_groups(group_key, event, time_ms);
CREATE TABLE IF NOT EXISTS event_notes (
    event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    group_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    value TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS event_notes_by_event ON event_notes(event_id);
CREATE INDEX IF NOT EXISTS event_notes_by_key ON event_notes(group_key, kind, code);
CREATE TABLE IF NOT EXISTS group_day_counts (
    group_key TEXT NOT NULL,
    group_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (group_key, group_id, day)
);
CREATE TABLE IF NOT EXISTS group_profiles (
    group_key TEXT NOT NULL,
    group_id TEXT NOT NULL,
    properties TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (group_key, group_id)
);
CREATE TABLE IF NOT EXISTS user_profiles (
    distinct_id TEXT PRIMARY KEY,
    properties TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS profile_records (
    id INTEGER PRIMARY KEY,
    endpoint TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    subject_key TEXT,
    subject_id TEXT,
    record TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS profile_records_by_subject ON profile_records(endpoint, subject_key, subject_id);
CREATE TABLE IF NOT EXISTS limit_warnings (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    group_key TEXT NOT NULL,
    group_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    count INTEGER NOT NULL,
    limit_value INTEGER NOT NULL,
    message TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (kind, group_key, group_id, day)
);
";

/// Limits above which warnings are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Group profiles per key.
    pub max_group_profiles_per_key: u64,
    /// Events per group id per UTC day.
    pub max_events_per_group_per_day: u64,
}

/// An event about to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The endpoint that received it.
    pub endpoint: Endpoint,
    /// The event name.
    pub event: String,
    /// The `distinct_id`.
    pub distinct_id: String,
    /// The event time in milliseconds.
    pub time_ms: i64,
    /// The `$insert_id`.
    pub insert_id: Option<String>,
    /// When the server received it, in milliseconds.
    pub received_at_ms: i64,
    /// The properties as sent.
    pub properties: Map<String, Value>,
    /// The attribution decided at receipt.
    pub attribution: Attribution,
}

/// The outcome of [`Store::insert_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    /// The event's id.
    pub id: i64,
    /// Whether an event with the same `(event, time, distinct_id, $insert_id)` was replaced.
    pub replaced: bool,
}

/// A stored event with its attribution, as the JSON API returns it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    /// The event's id.
    pub id: i64,
    /// The endpoint that received it: `track` or `import`.
    pub endpoint: String,
    /// The event name.
    pub event: String,
    /// The `distinct_id`.
    pub distinct_id: String,
    /// The event time in milliseconds.
    pub time: i64,
    /// The `$insert_id`.
    pub insert_id: Option<String>,
    /// When the server received it, in milliseconds.
    pub received_at: i64,
    /// The properties as sent.
    pub properties: Value,
    /// Groups, non-attributed keys with reasons, and warnings.
    pub attribution: StoredAttribution,
}

/// The attribution of a stored event.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoredAttribution {
    /// The groups the event is attributed to.
    pub groups: Vec<GroupPair>,
    /// Configured keys the event carries but is not attributed to.
    pub not_attributed: Vec<Note>,
    /// Warnings about attributed keys.
    pub warnings: Vec<Note>,
}

/// A `(key, id)` pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupPair {
    /// The group key.
    pub key: String,
    /// The group id.
    pub id: String,
}

/// A reason or warning about one key of one event.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    /// The group key.
    pub key: String,
    /// A reason such as `before_set_up`, or a warning such as `integer_id`.
    pub code: String,
    /// The value the event carries.
    pub value: Value,
    /// A sentence for people.
    pub message: String,
}

/// Filters of [`Store::list_events`].
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events with this name.
    pub event: Option<String>,
    /// Only events of this user.
    pub distinct_id: Option<String>,
    /// Only events attributed to this `(key, id)`.
    pub group: Option<(String, String)>,
    /// Maximum events returned.
    pub limit: usize,
}

/// A group profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// The properties.
    pub properties: Value,
    /// When the profile was created, in milliseconds.
    pub created_at: i64,
    /// When the profile was last changed, in milliseconds.
    pub updated_at: i64,
}

/// One group of a key with its activity totals.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    /// The group id.
    pub id: String,
    /// Attributed events.
    pub event_count: u64,
    /// Distinct non-empty `distinct_id`s among the attributed events.
    pub unique_users: u64,
    /// Time of the newest attributed event, in milliseconds, if any.
    pub last_seen: Option<i64>,
    /// Whether a group profile exists.
    pub has_profile: bool,
}

/// A stored `/engage` or `/groups` record.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileRecord {
    /// The record's id, in arrival order.
    pub id: i64,
    /// `engage` or `groups`.
    pub endpoint: String,
    /// When it was received, in milliseconds.
    pub received_at: i64,
    /// The record as sent.
    pub record: Value,
    /// The rejection reason of a rejected record.
    pub error: Option<String>,
}

/// A limit warning.
#[derive(Debug, Clone, Serialize)]
pub struct LimitWarning {
    /// `group_profiles_per_key` or `events_per_group_per_day`.
    pub kind: String,
    /// The group key.
    pub key: String,
    /// The group id, for `events_per_group_per_day`.
    pub id: Option<String>,
    /// The UTC day as `YYYY-MM-DD`, for `events_per_group_per_day`.
    pub day: Option<String>,
    /// The count that crossed the limit.
    pub count: u64,
    /// The limit.
    pub limit: u64,
    /// A sentence for people.
    pub message: String,
    /// When the limit was crossed, in milliseconds.
    pub created_at: i64,
}

/// Counts of attribution warnings per key and code.
#[derive(Debug, Clone, Serialize)]
pub struct NoteCount {
    /// The group key.
    pub key: String,
    /// The reason or warning code.
    pub code: String,
    /// Number of events.
    pub events: u64,
}

/// One attributed event of a group, the input of the funnel report.
#[derive(Debug, Clone)]
pub struct GroupEvent {
    /// The group id.
    pub id: String,
    /// The event name.
    pub event: String,
    /// The event time in milliseconds.
    pub time_ms: i64,
}

/// The SQLite store.
pub struct Store {
    conn: Connection,
    location: DbLocation,
    keys: Vec<GroupKey>,
    limits: Limits,
    /// Group profiles per key, kept exact through every write so that creating a profile
    /// does not count the table. Reloaded from the database when a transaction rolls back.
    profile_counts: HashMap<String, u64>,
}

impl Store {
    /// Opens or creates the store and loads its group keys.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be opened or its schema is newer than this server.
    pub fn open(location: &DbLocation, limits: Limits) -> Result<Store> {
        let wrap = |action| {
            let location = location.to_string();
            move |source| StoreError { location, action, source }
        };
        let conn = match location {
            DbLocation::Memory => Connection::open_in_memory(),
            DbLocation::File(path) => Connection::open(path),
        }
        .map_err(wrap("open the database"))?;

        // A 32 MB page cache keeps a 2000-event transaction in memory. With SQLite's 2 MB
        // default, benches/ingest.rs measured batches of 2000 slower than batches of 50.
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32000;")
            .map_err(wrap("set pragmas"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(wrap("set the busy timeout"))?;

        let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(wrap("read the schema version"))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError {
                location: location.to_string(),
                action: "check the schema version",
                source: rusqlite::Error::InvalidParameterName(format!(
                    "schema version {version} is newer than {SCHEMA_VERSION}; use a newer groupscope-server or another --db file"
                )),
            });
        }
        conn.execute_batch(SCHEMA).map_err(wrap("create the schema"))?;
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")).map_err(wrap("write the schema version"))?;

        let mut store = Store { conn, location: location.clone(), keys: Vec::new(), limits, profile_counts: HashMap::new() };
        store.keys = store.load_group_keys()?;
        store.profile_counts = store.load_profile_counts()?;
        Ok(store)
    }

    /// Reads the group keys of an existing database file without changing it, as `check
    /// --db` does while a server may be running on the same file.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be opened read-only or has no group keys table.
    pub fn read_group_keys(path: &Path) -> Result<Vec<GroupKey>> {
        let fail = |action| {
            let location = path.display().to_string();
            move |source| StoreError { location, action, source }
        };
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(fail("open the database read-only"))?;
        let mut statement = conn
            .prepare("SELECT property, display_name, set_up_at_ms FROM group_keys ORDER BY position, property")
            .map_err(fail("read group keys"))?;
        let rows = statement
            .query_map([], |row| Ok(GroupKey { property: row.get(0)?, display_name: row.get(1)?, set_up_at_ms: row.get(2)? }))
            .map_err(fail("read group keys"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail("read group keys"))
    }

    fn fail(&self, action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError { location: self.location.to_string(), action, source }
    }

    /// Returns the database location.
    pub fn location(&self) -> &DbLocation {
        &self.location
    }

    /// Returns the limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `work` in one transaction; it is rolled back when `work` fails.
    ///
    /// # Errors
    /// The error of `work`, or a [`StoreError`] when the transaction cannot begin or commit.
    pub fn in_transaction<T, E: From<StoreError>>(&mut self, work: impl FnOnce(&mut Store) -> std::result::Result<T, E>) -> std::result::Result<T, E> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(self.fail("begin a transaction"))?;
        match work(self) {
            Ok(value) => {
                self.conn.execute_batch("COMMIT").map_err(self.fail("commit a transaction"))?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback) = self.conn.execute_batch("ROLLBACK") {
                    log::error!("Rolling back a failed transaction on {} failed too: {rollback}", self.location);
                }
                self.reload_after_rollback();
                Err(error)
            }
        }
    }

    /// Reloads the in-memory copies of stored state, which a rolled-back transaction may have
    /// changed without changing the database.
    fn reload_after_rollback(&mut self) {
        match self.load_group_keys() {
            Ok(keys) => self.keys = keys,
            Err(error) => log::error!("Reloading group keys after a rollback failed: {error}"),
        }
        match self.load_profile_counts() {
            Ok(counts) => self.profile_counts = counts,
            Err(error) => log::error!("Reloading group profile counts after a rollback failed: {error}"),
        }
    }

    fn load_profile_counts(&self) -> Result<HashMap<String, u64>> {
        let mut statement = self
            .conn
            .prepare("SELECT group_key, COUNT(*) FROM group_profiles GROUP BY group_key")
            .map_err(self.fail("count group profiles"))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))
            .map_err(self.fail("count group profiles"))?;
        rows.collect::<rusqlite::Result<HashMap<_, _>>>().map_err(self.fail("count group profiles"))
    }

    fn load_group_keys(&self) -> Result<Vec<GroupKey>> {
        let mut statement = self
            .conn
            .prepare("SELECT property, display_name, set_up_at_ms FROM group_keys ORDER BY position, property")
            .map_err(self.fail("read group keys"))?;
        let rows = statement
            .query_map([], |row| Ok(GroupKey { property: row.get(0)?, display_name: row.get(1)?, set_up_at_ms: row.get(2)? }))
            .map_err(self.fail("read group keys"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.fail("read group keys"))
    }

    /// Returns the configured group keys in set-up order.
    pub fn group_keys(&self) -> &[GroupKey] {
        &self.keys
    }

    /// Adds a group key or replaces the display name and set-up time of an existing one.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn upsert_group_key(&mut self, key: &GroupKey) -> Result<()> {
        let unchanged = self.keys.iter().any(|k| k.property == key.property && k.set_up_at_ms == key.set_up_at_ms);
        self.in_transaction(|store| {
            store.write_group_key(key)?;
            if !unchanged {
                store.reattribute_key(key)?;
            }
            Ok(())
        })
    }

    fn write_group_key(&mut self, key: &GroupKey) -> Result<()> {
        let position = self.keys.iter().position(|k| k.property == key.property).unwrap_or(self.keys.len());
        self.conn
            .execute(
                "INSERT INTO group_keys (property, display_name, set_up_at_ms, position) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(property) DO UPDATE SET display_name = excluded.display_name, set_up_at_ms = excluded.set_up_at_ms",
                params![key.property, key.display_name, key.set_up_at_ms, position as i64],
            )
            .map_err(self.fail("store a group key"))?;
        self.conn
            .execute(
                "UPDATE group_key_deletions SET restored_at_ms = ?2 WHERE property = ?1 AND restored_at_ms IS NULL",
                params![key.property, time::now_ms()],
            )
            .map_err(self.fail("record that a group key was added again"))?;
        self.keys = self.load_group_keys()?;
        Ok(())
    }

    /// Removes a group key and records when, so that a restart does not add it again from
    /// the config file and events received until it is added again are never attributed to
    /// it. Returns whether it existed. Attribution already stored is kept.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn delete_group_key(&mut self, property: &str) -> Result<bool> {
        let changed = self.in_transaction(|store| {
            let changed = store
                .conn
                .execute("DELETE FROM group_keys WHERE property = ?1", [property])
                .map_err(store.fail("delete a group key"))?;
            if changed > 0 {
                store
                    .conn
                    .execute(
                        "INSERT INTO group_key_deletions (property, deleted_at_ms, restored_at_ms) VALUES (?1, ?2, NULL)",
                        params![property, time::now_ms()],
                    )
                    .map_err(store.fail("record a group key deletion"))?;
            }
            Ok::<_, StoreError>(changed)
        })?;
        self.keys = self.load_group_keys()?;
        Ok(changed > 0)
    }

    /// Returns whether `property` was deleted through the API and not added again.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn is_deleted_group_key(&self, property: &str) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM group_key_deletions WHERE property = ?1 AND restored_at_ms IS NULL)")
            .and_then(|mut s| s.query_row([property], |row| row.get(0)))
            .map_err(self.fail("read group key deletions"))
    }

    /// Returns the periods `[deleted_at, restored_at)` in which `property` was deleted, in
    /// milliseconds; `restored_at` is `i64::MAX` while it is still deleted.
    fn deletion_periods(&self, property: &str) -> Result<Vec<(i64, i64)>> {
        self.conn
            .prepare_cached("SELECT deleted_at_ms, COALESCE(restored_at_ms, ?2) FROM group_key_deletions WHERE property = ?1")
            .and_then(|mut s| s.query_map(params![property, i64::MAX], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
            .map_err(self.fail("read group key deletions"))
    }

    /// Stores an event and its attribution. An event with the same
    /// `(event, time, distinct_id, $insert_id)` is replaced: the latest wins.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn insert_event(&mut self, new: &NewEvent) -> Result<Inserted> {
        let properties = Value::Object(new.properties.clone()).to_string();

        let existing: Option<i64> = match &new.insert_id {
            Some(insert_id) => self
                .conn
                .prepare_cached("SELECT id FROM events WHERE event = ?1 AND time_ms = ?2 AND distinct_id = ?3 AND insert_id = ?4")
                .and_then(|mut s| s.query_row(params![new.event, new.time_ms, new.distinct_id, insert_id], |row| row.get(0)).optional())
                .map_err(self.fail("look up a duplicate event"))?,
            None => None,
        };

        let id = match existing {
            Some(id) => {
                self.remove_event_attribution(id, None)?;
                self.conn
                    .prepare_cached("UPDATE events SET endpoint = ?2, received_at_ms = ?3, properties = ?4 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![id, new.endpoint.name(), new.received_at_ms, properties]))
                    .map_err(self.fail("replace a duplicate event"))?;
                id
            }
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO events (endpoint, event, distinct_id, time_ms, insert_id, received_at_ms, properties)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            new.endpoint.name(),
                            new.event,
                            new.distinct_id,
                            new.time_ms,
                            new.insert_id,
                            new.received_at_ms,
                            properties
                        ])
                    })
                    .map_err(self.fail("insert an event"))?;
                self.conn.last_insert_rowid()
            }
        };

        self.insert_event_attribution(id, &new.event, &new.distinct_id, new.time_ms, &new.attribution)?;
        Ok(Inserted { id, replaced: existing.is_some() })
    }

    /// Decides the attribution of `key` again for every stored event that carries it, from
    /// each event's received time and the key's set-up time, as at receipt. Events received
    /// before the set-up time get the reason `before_set_up`; they are never backfilled.
    fn reattribute_key(&mut self, key: &GroupKey) -> Result<()> {
        // A cheap prefilter on the stored JSON text; each candidate is checked exactly below.
        let quoted = Value::String(key.property.clone()).to_string();
        let pattern = format!("%{}%", quoted.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let candidates: Vec<(i64, String, String, i64, i64, String)> = self
            .conn
            .prepare("SELECT id, event, distinct_id, time_ms, received_at_ms, properties FROM events WHERE properties LIKE ?1 ESCAPE '\\'")
            .and_then(|mut s| {
                s.query_map([pattern], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?)))?
                    .collect()
            })
            .map_err(self.fail("find events carrying a group key"))?;

        let deletions = self.deletion_periods(&key.property)?;
        let mut changed = 0;
        for (id, event, distinct_id, time_ms, received_at_ms, properties) in candidates {
            let Ok(Value::Object(properties)) = serde_json::from_str::<Value>(&properties) else {
                continue;
            };
            if !properties.contains_key(&key.property) {
                continue;
            }
            let deleted = deletions.iter().find(|(from, to)| (*from..*to).contains(&received_at_ms));
            let attribution = match deleted {
                Some(&(deleted_at_ms, _)) => crate::attribution::while_deleted(&key.property, &properties, received_at_ms, deleted_at_ms),
                None => crate::attribution::attribute(&properties, std::slice::from_ref(key), received_at_ms),
            };
            self.remove_event_attribution(id, Some(&key.property))?;
            self.insert_event_attribution(id, &event, &distinct_id, time_ms, &attribution)?;
            changed += 1;
        }
        if changed > 0 {
            log::info!("Decided the attribution of group key {:?} again for {changed} stored events", key.property);
        }
        Ok(())
    }

    /// Removes the stored attribution of an event, for one key or for all keys.
    fn remove_event_attribution(&mut self, id: i64, key: Option<&str>) -> Result<()> {
        let pairs: Vec<(String, String, i64)> = self
            .conn
            .prepare_cached("SELECT group_key, group_id, time_ms FROM event_groups WHERE event_id = ?1 AND (?2 IS NULL OR group_key = ?2)")
            .and_then(|mut s| s.query_map(params![id, key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?.collect())
            .map_err(self.fail("read an event's groups"))?;
        for (group_key, group, time_ms) in pairs {
            self.conn
                .prepare_cached("UPDATE group_day_counts SET events = events - 1 WHERE group_key = ?1 AND group_id = ?2 AND day = ?3")
                .and_then(|mut s| s.execute(params![group_key, group, time::day_of(time_ms)]))
                .map_err(self.fail("update a group's daily count"))?;
        }
        self.conn
            .execute("DELETE FROM event_groups WHERE event_id = ?1 AND (?2 IS NULL OR group_key = ?2)", params![id, key])
            .and_then(|_| self.conn.execute("DELETE FROM event_notes WHERE event_id = ?1 AND (?2 IS NULL OR group_key = ?2)", params![id, key]))
            .map_err(self.fail("remove an event's attribution"))?;
        Ok(())
    }

    fn insert_event_attribution(&mut self, id: i64, event: &str, distinct_id: &str, time_ms: i64, attribution: &Attribution) -> Result<()> {
        let day = time::day_of(time_ms);
        for group in &attribution.groups {
            self.conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO event_groups (event_id, group_key, group_id, event, distinct_id, time_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| s.execute(params![id, group.key, group.id, event, distinct_id, time_ms]))
                .map_err(self.fail("store an event's group"))?;

            let count: i64 = self
                .conn
                .prepare_cached(
                    "INSERT INTO group_day_counts (group_key, group_id, day, events) VALUES (?1, ?2, ?3, 1)
                     ON CONFLICT DO UPDATE SET events = events + 1 RETURNING events",
                )
                .and_then(|mut s| s.query_row(params![group.key, group.id, day], |row| row.get(0)))
                .map_err(self.fail("count a group's daily events"))?;

            let limit = self.limits.max_events_per_group_per_day;
            if count as u64 > limit {
                let message = format!(
                    "group {}={:?} has {count} events on {}, over the limit of {limit} events per group per day; queries on this group slow down",
                    group.key,
                    group.id,
                    &time::format_rfc3339(day * time::DAY_MS)[..10]
                );
                self.record_limit_warning("events_per_group_per_day", &group.key, &group.id, day, count as u64, limit, &message)?;
            }
        }

        let notes = attribution
            .not_attributed
            .iter()
            .map(|n| (&n.key, "not_attributed", n.reason.code(), &n.value, &n.message))
            .chain(attribution.warnings.iter().map(|w| (&w.key, "warning", w.kind.code(), &w.value, &w.message)));
        for (key, kind, code, value, message) in notes {
            self.conn
                .prepare_cached("INSERT INTO event_notes (event_id, group_key, kind, code, value, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .and_then(|mut s| s.execute(params![id, key, kind, code, value.to_string(), message]))
                .map_err(self.fail("store an attribution reason"))?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn record_limit_warning(&mut self, kind: &str, key: &str, id: &str, day: i64, count: u64, limit: u64, message: &str) -> Result<()> {
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO limit_warnings (kind, group_key, group_id, day, count, limit_value, message, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| s.execute(params![kind, key, id, day, count as i64, limit as i64, message, time::now_ms()]))
            .map_err(self.fail("record a limit warning"))?;
        if inserted > 0 {
            log::warn!("{message}");
        }
        Ok(())
    }

    /// Stores a raw `/engage` or `/groups` record; `subject` is `(key, id)` for groups and
    /// `(None, distinct_id)` for users.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn insert_profile_record(
        &mut self,
        endpoint: Endpoint,
        received_at_ms: i64,
        subject: Option<(Option<&str>, &str)>,
        record: &Value,
        error: Option<&str>,
    ) -> Result<()> {
        let (key, id) = match subject {
            Some((key, id)) => (key, Some(id)),
            None => (None, None),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO profile_records (endpoint, received_at_ms, subject_key, subject_id, record, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| s.execute(params![endpoint.name(), received_at_ms, key, id, record.to_string(), error]))
            .map_err(self.fail("store a profile record"))?;
        Ok(())
    }

    /// Applies an operation to the group profile `(key, id)`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn apply_group_operation(&mut self, key: &str, id: &str, operation: &Operation, now_ms: i64) -> Result<()> {
        let current = self.group_profile(key, id)?;
        let existed = current.is_some();
        let mut properties = current.map(|p| match p.properties {
            Value::Object(map) => map,
            _ => Map::new(),
        });
        operation.apply(&mut properties);

        match properties {
            None => {
                let deleted = self
                    .conn
                    .execute("DELETE FROM group_profiles WHERE group_key = ?1 AND group_id = ?2", params![key, id])
                    .map_err(self.fail("delete a group profile"))?;
                if deleted > 0 {
                    if let Some(count) = self.profile_counts.get_mut(key) {
                        *count = count.saturating_sub(1);
                    }
                }
            }
            Some(properties) => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO group_profiles (group_key, group_id, properties, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?4)
                         ON CONFLICT DO UPDATE SET properties = excluded.properties, updated_at_ms = excluded.updated_at_ms",
                    )
                    .and_then(|mut s| s.execute(params![key, id, Value::Object(properties).to_string(), now_ms]))
                    .map_err(self.fail("store a group profile"))?;
                if !existed {
                    self.check_profile_limit(key)?;
                }
            }
        }
        Ok(())
    }

    /// Counts a new profile of `key` and records a warning when the count passes the limit.
    fn check_profile_limit(&mut self, key: &str) -> Result<()> {
        let count = self.profile_counts.entry(key.to_owned()).or_insert(0);
        *count += 1;
        let count = *count;
        let limit = self.limits.max_group_profiles_per_key;
        if count > limit {
            let message = format!("group key {key:?} has {count} group profiles, over the limit of {limit} group profiles per key");
            self.record_limit_warning("group_profiles_per_key", key, "", 0, count, limit, &message)?;
        }
        Ok(())
    }

    /// Applies an operation to the user profile `distinct_id`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn apply_user_operation(&mut self, distinct_id: &str, operation: &Operation, now_ms: i64) -> Result<()> {
        let mut properties = self.user_profile(distinct_id)?.map(|p| match p.properties {
            Value::Object(map) => map,
            _ => Map::new(),
        });
        operation.apply(&mut properties);
        match properties {
            None => self.conn.execute("DELETE FROM user_profiles WHERE distinct_id = ?1", [distinct_id]).map(drop),
            Some(properties) => self
                .conn
                .prepare_cached(
                    "INSERT INTO user_profiles (distinct_id, properties, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT DO UPDATE SET properties = excluded.properties, updated_at_ms = excluded.updated_at_ms",
                )
                .and_then(|mut s| s.execute(params![distinct_id, Value::Object(properties).to_string(), now_ms]))
                .map(drop),
        }
        .map_err(self.fail("store a user profile"))
    }

    fn read_profile(&self, sql: &str, args: &[&dyn rusqlite::ToSql], action: &'static str) -> Result<Option<Profile>> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row(args, |row| {
                    let text: String = row.get(0)?;
                    Ok(Profile {
                        properties: serde_json::from_str(&text).unwrap_or(Value::Null),
                        created_at: row.get(1)?,
                        updated_at: row.get(2)?,
                    })
                })
                .optional()
            })
            .map_err(self.fail(action))
    }

    /// Returns the group profile `(key, id)`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn group_profile(&self, key: &str, id: &str) -> Result<Option<Profile>> {
        self.read_profile(
            "SELECT properties, created_at_ms, updated_at_ms FROM group_profiles WHERE group_key = ?1 AND group_id = ?2",
            &[&key, &id],
            "read a group profile",
        )
    }

    /// Returns the user profile of `distinct_id`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn user_profile(&self, distinct_id: &str) -> Result<Option<Profile>> {
        self.read_profile(
            "SELECT properties, created_at_ms, updated_at_ms FROM user_profiles WHERE distinct_id = ?1",
            &[&distinct_id],
            "read a user profile",
        )
    }

    /// Lists events, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>> {
        let mut sql = String::from(
            "SELECT e.id, e.endpoint, e.event, e.distinct_id, e.time_ms, e.insert_id, e.received_at_ms, e.properties FROM events e",
        );
        let mut conditions: Vec<&str> = Vec::new();
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::new();
        if let Some((key, id)) = &filter.group {
            sql.push_str(" JOIN event_groups g ON g.event_id = e.id");
            conditions.push("g.group_key = ? AND g.group_id = ?");
            args.push(key);
            args.push(id);
        }
        if let Some(event) = &filter.event {
            conditions.push("e.event = ?");
            args.push(event);
        }
        if let Some(distinct_id) = &filter.distinct_id {
            conditions.push("e.distinct_id = ?");
            args.push(distinct_id);
        }
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        let limit = filter.limit as i64;
        sql.push_str(" ORDER BY e.time_ms DESC, e.id DESC LIMIT ?");
        args.push(&limit);

        let rows: Vec<StoredEvent> = self
            .conn
            .prepare(&sql)
            .and_then(|mut s| s.query_map(args.as_slice(), read_event_row)?.collect())
            .map_err(self.fail("list events"))?;
        rows.into_iter().map(|event| self.with_attribution(event)).collect()
    }

    /// Returns one event.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn event(&self, id: i64) -> Result<Option<StoredEvent>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT id, endpoint, event, distinct_id, time_ms, insert_id, received_at_ms, properties FROM events WHERE id = ?1",
            )
            .and_then(|mut s| s.query_row([id], read_event_row).optional())
            .map_err(self.fail("read an event"))?;
        row.map(|event| self.with_attribution(event)).transpose()
    }

    fn with_attribution(&self, mut event: StoredEvent) -> Result<StoredEvent> {
        event.attribution.groups = self
            .conn
            .prepare_cached("SELECT group_key, group_id FROM event_groups WHERE event_id = ?1 ORDER BY rowid")
            .and_then(|mut s| s.query_map([event.id], |row| Ok(GroupPair { key: row.get(0)?, id: row.get(1)? }))?.collect())
            .map_err(self.fail("read an event's groups"))?;
        let notes: Vec<(String, Note)> = self
            .conn
            .prepare_cached("SELECT kind, group_key, code, value, message FROM event_notes WHERE event_id = ?1 ORDER BY rowid")
            .and_then(|mut s| {
                s.query_map([event.id], |row| {
                    let value: String = row.get(3)?;
                    Ok((
                        row.get(0)?,
                        Note { key: row.get(1)?, code: row.get(2)?, value: serde_json::from_str(&value).unwrap_or(Value::Null), message: row.get(4)? },
                    ))
                })?
                .collect()
            })
            .map_err(self.fail("read an event's attribution reasons"))?;
        for (kind, note) in notes {
            if kind == "warning" {
                event.attribution.warnings.push(note);
            } else {
                event.attribution.not_attributed.push(note);
            }
        }
        Ok(event)
    }

    /// Counts events.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn event_count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM events", [], |row| row.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.fail("count events"))
    }

    /// Lists the groups of `key`: every group with attributed events or a profile.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn groups(&self, key: &str) -> Result<Vec<GroupSummary>> {
        self.conn
            .prepare_cached(
                "SELECT ids.group_id,
                        (SELECT COUNT(*) FROM event_groups g WHERE g.group_key = ?1 AND g.group_id = ids.group_id),
                        (SELECT COUNT(DISTINCT distinct_id) FROM event_groups g WHERE g.group_key = ?1 AND g.group_id = ids.group_id AND distinct_id != ''),
                        (SELECT MAX(time_ms) FROM event_groups g WHERE g.group_key = ?1 AND g.group_id = ids.group_id),
                        EXISTS (SELECT 1 FROM group_profiles p WHERE p.group_key = ?1 AND p.group_id = ids.group_id)
                 FROM (SELECT group_id FROM event_groups WHERE group_key = ?1
                       UNION SELECT group_id FROM group_profiles WHERE group_key = ?1) ids
                 ORDER BY ids.group_id",
            )
            .and_then(|mut s| {
                s.query_map([key], |row| {
                    Ok(GroupSummary {
                        id: row.get(0)?,
                        event_count: row.get::<_, i64>(1)? as u64,
                        unique_users: row.get::<_, i64>(2)? as u64,
                        last_seen: row.get(3)?,
                        has_profile: row.get(4)?,
                    })
                })?
                .collect()
            })
            .map_err(self.fail("list groups"))
    }

    /// Counts attributed events per group of `key` for `event` (any event when `None`) with
    /// event time in `[from_ms, to_ms]`: `(id, events, unique users)`, most events first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn group_event_counts(&self, key: &str, event: Option<&str>, from_ms: i64, to_ms: i64) -> Result<Vec<(String, u64, u64)>> {
        self.conn
            .prepare_cached(
                "SELECT group_id, COUNT(*) AS events, COUNT(DISTINCT CASE WHEN distinct_id != '' THEN distinct_id END)
                 FROM event_groups
                 WHERE group_key = ?1 AND (?2 IS NULL OR event = ?2) AND time_ms BETWEEN ?3 AND ?4
                 GROUP BY group_id ORDER BY events DESC, group_id",
            )
            .and_then(|mut s| {
                s.query_map(params![key, event, from_ms, to_ms], |row| {
                    Ok((row.get(0)?, row.get::<_, i64>(1)? as u64, row.get::<_, i64>(2)? as u64))
                })?
                .collect()
            })
            .map_err(self.fail("count events per group"))
    }

    /// Returns the attributed events of `key` named in `events` within `[from_ms, to_ms]`,
    /// ordered by group, then time.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn group_events(&self, key: &str, events: &[String], from_ms: i64, to_ms: i64) -> Result<Vec<GroupEvent>> {
        let names = Value::from(events.to_vec()).to_string();
        self.conn
            .prepare_cached(
                "SELECT group_id, event, time_ms FROM event_groups
                 WHERE group_key = ?1 AND event IN (SELECT value FROM json_each(?2)) AND time_ms BETWEEN ?3 AND ?4
                 ORDER BY group_id, time_ms, event_id",
            )
            .and_then(|mut s| {
                s.query_map(params![key, names, from_ms, to_ms], |row| {
                    Ok(GroupEvent { id: row.get(0)?, event: row.get(1)?, time_ms: row.get(2)? })
                })?
                .collect()
            })
            .map_err(self.fail("read group events"))
    }

    /// Lists raw `/engage` or `/groups` records in arrival order, optionally for one subject.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn profile_records(&self, endpoint: Endpoint, key: Option<&str>, id: Option<&str>, limit: usize) -> Result<Vec<ProfileRecord>> {
        self.conn
            .prepare_cached(
                "SELECT id, endpoint, received_at_ms, record, error FROM profile_records
                 WHERE endpoint = ?1 AND (?2 IS NULL OR subject_key = ?2) AND (?3 IS NULL OR subject_id = ?3)
                 ORDER BY id LIMIT ?4",
            )
            .and_then(|mut s| {
                s.query_map(params![endpoint.name(), key, id, limit as i64], |row| {
                    let record: String = row.get(3)?;
                    Ok(ProfileRecord {
                        id: row.get(0)?,
                        endpoint: row.get(1)?,
                        received_at: row.get(2)?,
                        record: serde_json::from_str(&record).unwrap_or(Value::Null),
                        error: row.get(4)?,
                    })
                })?
                .collect()
            })
            .map_err(self.fail("list profile records"))
    }

    /// Lists limit warnings in the order they were recorded.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn limit_warnings(&self) -> Result<Vec<LimitWarning>> {
        self.conn
            .prepare_cached("SELECT kind, group_key, group_id, day, count, limit_value, message, created_at_ms FROM limit_warnings ORDER BY id")
            .and_then(|mut s| {
                s.query_map([], |row| {
                    let kind: String = row.get(0)?;
                    let per_day = kind == "events_per_group_per_day";
                    let day: i64 = row.get(3)?;
                    Ok(LimitWarning {
                        id: if per_day { Some(row.get(2)?) } else { None },
                        day: per_day.then(|| time::format_rfc3339(day * time::DAY_MS)[..10].to_owned()),
                        kind,
                        key: row.get(1)?,
                        count: row.get::<_, i64>(4)? as u64,
                        limit: row.get::<_, i64>(5)? as u64,
                        message: row.get(6)?,
                        created_at: row.get(7)?,
                    })
                })?
                .collect()
            })
            .map_err(self.fail("list limit warnings"))
    }

    /// Counts events per key and reason or warning code.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn note_counts(&self, kind: &str) -> Result<Vec<NoteCount>> {
        self.conn
            .prepare_cached(
                "SELECT group_key, code, COUNT(DISTINCT event_id) FROM event_notes WHERE kind = ?1 GROUP BY group_key, code ORDER BY group_key, code",
            )
            .and_then(|mut s| {
                s.query_map([kind], |row| Ok(NoteCount { key: row.get(0)?, code: row.get(1)?, events: row.get::<_, i64>(2)? as u64 }))?
                    .collect()
            })
            .map_err(self.fail("count attribution reasons"))
    }

    /// Deletes all events, profiles, records and warnings. Group keys are kept.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn reset(&mut self) -> Result<()> {
        self.conn
            .execute_batch(
                "DELETE FROM event_notes; DELETE FROM event_groups; DELETE FROM events; DELETE FROM group_day_counts;
                 DELETE FROM group_profiles; DELETE FROM user_profiles; DELETE FROM profile_records; DELETE FROM limit_warnings;",
            )
            .map_err(self.fail("delete all data"))?;
        self.profile_counts.clear();
        Ok(())
    }

    /// Returns the path of the database file, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            DbLocation::File(path) => Some(path),
            DbLocation::Memory => None,
        }
    }
}

fn read_event_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let properties: String = row.get(7)?;
    Ok(StoredEvent {
        id: row.get(0)?,
        endpoint: row.get(1)?,
        event: row.get(2)?,
        distinct_id: row.get(3)?,
        time: row.get(4)?,
        insert_id: row.get(5)?,
        received_at: row.get(6)?,
        properties: serde_json::from_str(&properties).unwrap_or(Value::Null),
        attribution: StoredAttribution::default(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set() -> Operation {
        Operation::parse("$set", &json!({"name": "x"})).unwrap()
    }

    fn delete() -> Operation {
        Operation::parse("$delete", &json!("")).unwrap()
    }

    fn profile_warnings(store: &Store) -> Vec<u64> {
        store.limit_warnings().unwrap().iter().filter(|w| w.kind == "group_profiles_per_key").map(|w| w.count).collect()
    }

    #[test]
    fn profile_count_follows_set_and_delete() {
        let limits = Limits { max_group_profiles_per_key: 2, max_events_per_group_per_day: 100 };
        let dir = tempfile::tempdir().unwrap();
        let location = DbLocation::File(dir.path().join("store.db"));
        let mut store = Store::open(&location, limits).unwrap();
        store.apply_group_operation("company_id", "a", &set(), 1).unwrap();
        store.apply_group_operation("company_id", "b", &set(), 1).unwrap();
        store.apply_group_operation("company_id", "b", &set(), 2).unwrap();
        store.apply_group_operation("company_id", "b", &delete(), 3).unwrap();
        store.apply_group_operation("company_id", "missing", &delete(), 3).unwrap();
        store.apply_group_operation("company_id", "c", &set(), 4).unwrap();
        store.apply_group_operation("team_id", "t", &set(), 4).unwrap();
        assert!(profile_warnings(&store).is_empty(), "2 profiles of company_id, at the limit");

        // A rolled-back transaction leaves the count as stored.
        let failed: std::result::Result<(), StoreError> = store.in_transaction(|store| {
            store.apply_group_operation("company_id", "d", &set(), 5)?;
            Err(StoreError { location: String::new(), action: "fail on purpose", source: rusqlite::Error::InvalidQuery })
        });
        assert!(failed.is_err());
        drop(store);

        // Reopening loads the count from the database.
        let mut store = Store::open(&location, limits).unwrap();
        store.apply_group_operation("company_id", "e", &set(), 6).unwrap();
        assert_eq!(profile_warnings(&store), vec![3]);
    }
}
