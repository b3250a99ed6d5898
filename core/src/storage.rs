//! The SQLite store: persisted client state, held profile updates, and the durable queue.
//!
//! One file, `<data_dir>/groupscope.sqlite3`, in WAL mode with a busy timeout, is opened
//! through two connections. The [`StateStore`] connection is used on the caller's thread and
//! writes with `synchronous=FULL`, so a state change is on disk when the call returns. The
//! [`SqliteQueue`] connection belongs to the worker thread and writes with
//! `synchronous=NORMAL`. A queued record therefore survives a process crash as soon as its
//! transaction commits, and survives power loss after the next WAL checkpoint.
//!
//! The schema version is kept in `PRAGMA user_version`; [`upgrade`] runs one step per version.
//! A file that SQLite cannot read as a database is moved aside to
//! `groupscope.sqlite3.corrupt-<unix ms>` and replaced by a new store, into which
//! [`crate::salvage`] copies the rows that are still readable.
//!
//! Queue rows carry the owner id of the [`SqliteQueue`] that appended them, a random number
//! drawn when the queue is opened. A worker only reads and deletes its own rows, so a child
//! created by `fork()` (which opens a new queue) never sends what its parent queued. A client
//! that starts fresh claims every row, including rows left over by processes that ended. No
//! live client can lose its rows to that claim, because a client holds an exclusive lock on
//! its `data_dir` for its whole life (`dir_lock.rs`), and a forked child shares its parent's
//! lock instead of starting fresh.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde_json::{Map, Value};

use crate::Error;
use crate::salvage::{self, Salvage};
use crate::groups::GroupIds;
use crate::protocol::Endpoint;
use crate::queue::{Queue, QueueError, Record, StoredRecord, endpoint_index};

/// The store's file name inside `data_dir`.
pub(crate) const FILE_NAME: &str = "groupscope.sqlite3";

/// The schema version this build writes.
const SCHEMA_VERSION: i32 = 1;

/// How long a connection waits for a lock held by the other connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Durability of a connection's commits.
#[derive(Debug, Clone, Copy)]
enum Synchronous {
    /// fsync on every commit.
    Full,
    /// fsync at WAL checkpoints.
    Normal,
}

/// Client state that survives restarts.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PersistedState {
    /// `$device:<uuid>`, created on first start.
    pub anonymous_id: Option<String>,
    /// The identity set by `identify`.
    pub distinct_id: Option<String>,
    /// Group super properties.
    pub groups: BTreeMap<String, GroupIds>,
    /// Registered super properties.
    pub super_properties: Map<String, Value>,
    /// Whether the user opted out.
    pub opted_out: bool,
}

/// A user-profile update made while anonymous, sent once `identify` gives it a `$distinct_id`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeldUpdate {
    /// The operation, for example `$union`.
    pub operation: String,
    /// The operation's value.
    pub value: Value,
    /// When the update was made, in ms since the epoch.
    pub time_ms: i64,
}

/// One state change, written in one transaction.
#[derive(Debug, Default)]
pub(crate) struct StateChange {
    /// State values to write; `None` deletes the value.
    pub values: Vec<(&'static str, Option<String>)>,
    /// Updates to hold until `identify`.
    pub hold: Vec<HeldUpdate>,
    /// Whether to remove and return every held update.
    pub release_held: bool,
}

/// State names in the `state` table.
pub(crate) mod keys {
    /// The anonymous `$device:` id.
    pub const ANONYMOUS_ID: &str = "anonymous_id";
    /// The identified distinct_id.
    pub const DISTINCT_ID: &str = "distinct_id";
    /// Group super properties as a JSON object of lists.
    pub const GROUPS: &str = "groups";
    /// Registered super properties as a JSON object.
    pub const SUPER_PROPERTIES: &str = "super_properties";
    /// `1` when opted out.
    pub const OPTED_OUT: &str = "opted_out";
}

/// The caller-thread connection for state.
pub(crate) struct StateStore {
    conn: Connection,
    path: PathBuf,
}

/// A freshly opened store.
pub(crate) struct OpenedStore {
    /// The state connection.
    pub state: StateStore,
    /// Whether a corrupt file was moved aside and replaced.
    pub reset_from: Option<PathBuf>,
    /// The rows recovered from the corrupt file, when there was one.
    pub salvage: Salvage,
}

/// Returns the store path inside `data_dir`.
pub(crate) fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Creates `data_dir` and its parents if needed.
///
/// # Errors
/// [`Error::Storage`] naming `file`, the file the caller was about to open there, when
/// `data_dir` is not a folder or cannot be created.
pub(crate) fn create_data_dir(data_dir: &Path, file: &Path) -> Result<(), Error> {
    if data_dir.exists() && !data_dir.is_dir() {
        return Err(Error::storage(
            file,
            format!(
                "data_dir {} is not a folder; pass the path of a folder, which the client creates if it is missing",
                data_dir.display()
            ),
        ));
    }
    std::fs::create_dir_all(data_dir).map_err(|e| {
        Error::storage(
            file,
            format!(
                "cannot create the data_dir folder {}: {e}; check its permissions",
                data_dir.display()
            ),
        )
    })
}

/// Opens or creates the store in `data_dir`, replacing a corrupt file.
///
/// # Errors
/// [`Error::Storage`] when the folder or the file cannot be created or opened for another
/// reason than corruption, for example a read-only folder.
pub(crate) fn open(data_dir: &Path) -> Result<OpenedStore, Error> {
    let path = store_path(data_dir);
    create_data_dir(data_dir, &path)?;

    match open_connection(&path, Synchronous::Full) {
        Ok(conn) => Ok(OpenedStore {
            state: StateStore { conn, path },
            reset_from: None,
            salvage: Salvage::default(),
        }),
        Err(error) if is_corrupt(&error) => {
            let moved_to = move_aside(&path)?;
            log::error!(
                "The store {} is not a readable database ({error}); moved it to {} and started a new store with what could be recovered.",
                path.display(),
                moved_to.display()
            );
            let conn =
                open_connection(&path, Synchronous::Full).map_err(|e| Error::storage(&path, e))?;
            let salvage = salvage::recover(&moved_to, &conn);
            log::error!(
                "Recovered {} queued records from {}; about {} could not be read and are lost.",
                salvage.recovered_records,
                moved_to.display(),
                salvage.lost_records
            );
            Ok(OpenedStore {
                state: StateStore { conn, path },
                reset_from: Some(moved_to),
                salvage,
            })
        }
        Err(error) => Err(Error::storage(&path, error)),
    }
}

fn open_connection(path: &Path, synchronous: Synchronous) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;

    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!(
            "SQLite kept journal_mode {mode} for {}; continuing without WAL",
            path.display()
        );
    }
    let level = match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", level)?;

    upgrade_to_current(&mut conn)?;
    Ok(conn)
}

/// Brings the schema up to [`SCHEMA_VERSION`], one step per version, in one transaction.
fn upgrade_to_current(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "the store has schema version {version} but this groupscope build reads up to version {SCHEMA_VERSION}; upgrade groupscope or use another data_dir"
            )),
        ));
    }
    for from in version..SCHEMA_VERSION {
        upgrade(&tx, from)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

/// Upgrades the schema from version `from` to `from + 1`.
fn upgrade(conn: &Connection, from: i32) -> rusqlite::Result<()> {
    match from {
        0 => conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS state (
                 name  TEXT PRIMARY KEY,
                 value TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS held_profile_updates (
                 id        INTEGER PRIMARY KEY AUTOINCREMENT,
                 operation TEXT NOT NULL,
                 value     TEXT NOT NULL,
                 time_ms   INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS queue (
                 id        INTEGER PRIMARY KEY AUTOINCREMENT,
                 endpoint  TEXT NOT NULL,
                 insert_id TEXT,
                 body      TEXT NOT NULL,
                 bytes     INTEGER NOT NULL,
                 owner     INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS queue_owner_endpoint ON queue (owner, endpoint, id);
             CREATE INDEX IF NOT EXISTS queue_owner_id ON queue (owner, id);",
        ),
        _ => Ok(()),
    }
}

/// Returns whether SQLite reports the file as not a database or as corrupt.
fn is_corrupt(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt)
    )
}

/// Renames the store and its WAL files with a `.corrupt-<unix ms>` suffix.
fn move_aside(path: &Path) -> Result<PathBuf, Error> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let target = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    std::fs::rename(path, &target).map_err(|e| {
        Error::storage(
            path,
            format!("the store is corrupt and could not be moved aside: {e}; delete it by hand"),
        )
    })?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            let moved = PathBuf::from(format!("{}{suffix}", target.display()));
            if let Err(e) = std::fs::rename(&side, &moved) {
                log::warn!("Could not move {} aside: {e}", side.display());
            }
        }
    }
    Ok(target)
}

impl StateStore {
    /// Reopens the state connection, for a child process after `fork()`.
    ///
    /// # Errors
    /// [`Error::Storage`] when the file cannot be opened.
    pub(crate) fn reopen(&self) -> Result<StateStore, Error> {
        let conn = open_connection(&self.path, Synchronous::Full)
            .map_err(|e| Error::storage(&self.path, e))?;
        Ok(StateStore {
            conn,
            path: self.path.clone(),
        })
    }

    /// Loads the persisted state. A value that cannot be parsed is logged and read as absent,
    /// and stays in the file until it is overwritten.
    ///
    /// # Errors
    /// [`Error::Storage`] when the file cannot be read.
    pub(crate) fn load(&self) -> Result<PersistedState, Error> {
        let mut statement = self
            .conn
            .prepare("SELECT name, value FROM state")
            .map_err(|e| Error::storage(&self.path, e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| Error::storage(&self.path, e))?;

        let mut state = PersistedState::default();
        for (name, value) in rows {
            match name.as_str() {
                keys::ANONYMOUS_ID => state.anonymous_id = Some(value),
                keys::DISTINCT_ID => state.distinct_id = Some(value),
                keys::OPTED_OUT => state.opted_out = value == "1",
                keys::GROUPS => match decode_groups(&value) {
                    Some(groups) => state.groups = groups,
                    None => log::error!(
                        "The stored group super properties in {} cannot be parsed; starting without them",
                        self.path.display()
                    ),
                },
                keys::SUPER_PROPERTIES => match serde_json::from_str(&value) {
                    Ok(Value::Object(map)) => state.super_properties = map,
                    _ => log::error!(
                        "The stored super properties in {} cannot be parsed; starting without them",
                        self.path.display()
                    ),
                },
                other => log::debug!("Ignoring unknown state entry {other:?}"),
            }
        }
        Ok(state)
    }

    /// Writes one change in one transaction and returns the released held updates.
    ///
    /// # Errors
    /// [`Error::Storage`] when the transaction failed; nothing was written then.
    pub(crate) fn apply(&mut self, change: &StateChange) -> Result<Vec<HeldUpdate>, Error> {
        let path = self.path.clone();
        let storage = |e: rusqlite::Error| Error::storage(&path, e);

        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(storage)?;
        for (name, value) in &change.values {
            match value {
                Some(value) => tx.execute(
                    "INSERT INTO state (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![name, value],
                ),
                None => tx.execute("DELETE FROM state WHERE name = ?1", params![name]),
            }
            .map_err(storage)?;
        }
        for held in &change.hold {
            tx.execute(
                "INSERT INTO held_profile_updates (operation, value, time_ms) VALUES (?1, ?2, ?3)",
                params![held.operation, held.value.to_string(), held.time_ms],
            )
            .map_err(storage)?;
        }

        let mut released = Vec::new();
        if change.release_held {
            let mut statement = tx
                .prepare("SELECT operation, value, time_ms FROM held_profile_updates ORDER BY id")
                .map_err(storage)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(storage)?;
            drop(statement);
            for (operation, value, time_ms) in rows {
                match serde_json::from_str(&value) {
                    Ok(value) => released.push(HeldUpdate {
                        operation,
                        value,
                        time_ms,
                    }),
                    Err(e) => log::warn!(
                        "Dropping a held profile update {operation} that cannot be parsed: {e}"
                    ),
                }
            }
            tx.execute("DELETE FROM held_profile_updates", [])
                .map_err(storage)?;
        }

        tx.commit().map_err(storage)?;
        Ok(released)
    }

    /// Returns the number of held profile updates.
    #[cfg(test)]
    pub(crate) fn held_count(&self) -> usize {
        self.conn
            .query_row("SELECT COUNT(*) FROM held_profile_updates", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as usize)
            .unwrap_or(0)
    }
}

/// Encodes group super properties as a JSON object of string lists.
pub(crate) fn encode_groups(groups: &BTreeMap<String, GroupIds>) -> String {
    let map: Map<String, Value> = groups
        .iter()
        .map(|(key, ids)| (key.clone(), ids.to_json()))
        .collect();
    Value::Object(map).to_string()
}

fn decode_groups(value: &str) -> Option<BTreeMap<String, GroupIds>> {
    let Value::Object(map) = serde_json::from_str(value).ok()? else {
        return None;
    };
    let mut groups = BTreeMap::new();
    for (key, ids) in map {
        let ids = GroupIds::from_json(&key, &ids).ok()?;
        if !ids.is_empty() {
            groups.insert(key, ids);
        }
    }
    Some(groups)
}

/// The durable queue, owned by the worker thread.
pub struct SqliteQueue {
    conn: Connection,
    path: PathBuf,
    owner: i64,
    /// Queued records per endpoint, kept in step with every write.
    len: [usize; 4],
    /// Total `bytes` of the queued records, kept in step with every write.
    bytes: usize,
}

impl SqliteQueue {
    /// Opens the queue in `data_dir` for this process. With `claim_all`, rows left by other
    /// processes are taken over first.
    ///
    /// # Errors
    /// [`Error::Storage`] when the file cannot be opened.
    pub fn open(data_dir: &Path, claim_all: bool) -> Result<SqliteQueue, Error> {
        let path = store_path(data_dir);
        let conn =
            open_connection(&path, Synchronous::Normal).map_err(|e| Error::storage(&path, e))?;
        let owner = new_owner_id();
        if claim_all {
            conn.execute(
                "UPDATE queue SET owner = ?1 WHERE owner != ?1",
                params![owner],
            )
            .map_err(|e| Error::storage(&path, e))?;
        }

        let mut queue = SqliteQueue {
            conn,
            path,
            owner,
            len: [0; 4],
            bytes: 0,
        };
        queue
            .recount()
            .map_err(|e| Error::storage(&queue.path, e))?;
        Ok(queue)
    }

    fn recount(&mut self) -> rusqlite::Result<()> {
        self.len = [0; 4];
        self.bytes = 0;
        let mut statement = self.conn.prepare(
            "SELECT endpoint, COUNT(*), COALESCE(SUM(bytes), 0) FROM queue WHERE owner = ?1 GROUP BY endpoint",
        )?;
        let rows = statement.query_map(params![self.owner], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (endpoint, count, bytes) = row?;
            if let Some(endpoint) = Endpoint::from_name(&endpoint) {
                self.len[endpoint_index(endpoint)] = count as usize;
                self.bytes += bytes as usize;
            }
        }
        Ok(())
    }

    fn transient(&self, error: rusqlite::Error) -> QueueError {
        QueueError::Transient(format!("{}: {error}", self.path.display()))
    }

    fn select(
        &self,
        sql: &str,
        bind: impl rusqlite::Params,
    ) -> rusqlite::Result<Vec<StoredRecord>> {
        let mut statement = self.conn.prepare_cached(sql)?;
        let rows = statement.query_map(bind, |row| {
            let endpoint: String = row.get(1)?;
            Ok((
                row.get::<_, i64>(0)?,
                endpoint,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, endpoint, insert_id, body) = row?;
            let Some(endpoint) = Endpoint::from_name(&endpoint) else {
                log::warn!(
                    "Queue row {id} names an unknown endpoint {endpoint:?}; leaving it in place"
                );
                continue;
            };
            out.push(StoredRecord {
                id,
                record: Record {
                    endpoint,
                    insert_id,
                    body: body.into(),
                },
            });
        }
        Ok(out)
    }

    /// Deletes the rows with the given ids in one transaction and returns the endpoint and
    /// size of each deleted row.
    ///
    /// Ids that form a run of consecutive integers are deleted with one range statement over
    /// the primary key, so an acknowledged batch costs one statement, not one per record.
    fn delete(&mut self, ids: &[i64]) -> rusqlite::Result<Vec<(String, i64)>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();

        let mut deleted = Vec::with_capacity(ids.len());
        let tx = self.conn.transaction()?;
        {
            let mut statement = tx.prepare_cached(
                "DELETE FROM queue WHERE owner = ?1 AND id BETWEEN ?2 AND ?3 RETURNING endpoint, bytes",
            )?;
            for (first, last) in consecutive_runs(&ids) {
                let rows = statement.query_map(params![self.owner, first, last], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })?;
                for row in rows {
                    deleted.push(row?);
                }
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// Subtracts deleted rows from the in-memory counts.
    fn forget(&mut self, deleted: &[(String, i64)]) {
        for (endpoint, bytes) in deleted {
            if let Some(endpoint) = Endpoint::from_name(endpoint) {
                let len = &mut self.len[endpoint_index(endpoint)];
                *len = len.saturating_sub(1);
            }
            self.bytes = self.bytes.saturating_sub(*bytes as usize);
        }
    }
}

/// Splits sorted, deduplicated ids into runs of consecutive integers, as `(first, last)`.
fn consecutive_runs(ids: &[i64]) -> Vec<(i64, i64)> {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &id in ids {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => runs.push((id, id)),
        }
    }
    runs
}

/// Returns a random positive owner id. It comes from the operating system's random source,
/// which, unlike a seeded generator, does not repeat in a forked child.
fn new_owner_id() -> i64 {
    let (high, _) = uuid::Uuid::new_v4().as_u64_pair();
    (high >> 1) as i64
}

impl Queue for SqliteQueue {
    fn append(&mut self, records: &[Record]) -> Result<(), QueueError> {
        let result = (|| {
            let tx = self.conn.transaction()?;
            {
                let mut statement = tx.prepare_cached(
                    "INSERT INTO queue (endpoint, insert_id, body, bytes, owner) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for record in records {
                    statement.execute(params![
                        record.endpoint.name(),
                        record.insert_id,
                        record.body,
                        record.body.len() as i64,
                        self.owner
                    ])?;
                }
            }
            tx.commit()
        })();
        result.map_err(|e| self.transient(e))?;
        for record in records {
            self.len[endpoint_index(record.endpoint)] += 1;
            self.bytes += record.body.len();
        }
        Ok(())
    }

    fn front(&mut self, endpoint: Endpoint, limit: usize) -> Result<Vec<StoredRecord>, QueueError> {
        self.select(
            "SELECT id, endpoint, insert_id, body FROM queue WHERE owner = ?1 AND endpoint = ?2 ORDER BY id LIMIT ?3",
            params![self.owner, endpoint.name(), limit as i64],
        )
        .map_err(|e| self.transient(e))
    }

    fn remove(&mut self, ids: &[i64]) -> Result<(), QueueError> {
        let deleted = self.delete(ids).map_err(|e| self.transient(e))?;
        self.forget(&deleted);
        Ok(())
    }

    fn evict_to_fit(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, QueueError> {
        let count = self.len();
        let bytes = self.bytes;
        if count <= max_records && bytes <= max_bytes {
            return Ok(Vec::new());
        }

        let mut evicted = Vec::new();
        let mut remaining_count = count;
        let mut remaining_bytes = bytes;
        let mut after = 0i64;
        while remaining_count > max_records || remaining_bytes > max_bytes {
            let chunk = self
                .select(
                    "SELECT id, endpoint, insert_id, body FROM queue WHERE owner = ?1 AND id > ?2 ORDER BY id LIMIT 500",
                    params![self.owner, after],
                )
                .map_err(|e| self.transient(e))?;
            if chunk.is_empty() {
                break;
            }
            for stored in chunk {
                if remaining_count <= max_records && remaining_bytes <= max_bytes {
                    break;
                }
                remaining_count -= 1;
                remaining_bytes = remaining_bytes.saturating_sub(stored.record.body.len());
                after = stored.id;
                evicted.push(stored);
            }
        }

        let ids: Vec<i64> = evicted.iter().map(|stored| stored.id).collect();
        self.remove(&ids)?;
        Ok(evicted)
    }

    fn clear(&mut self) -> Result<Vec<StoredRecord>, QueueError> {
        let all = self
            .select(
                "SELECT id, endpoint, insert_id, '' FROM queue WHERE owner = ?1 ORDER BY id",
                params![self.owner],
            )
            .map_err(|e| self.transient(e))?;
        self.conn
            .execute("DELETE FROM queue WHERE owner = ?1", params![self.owner])
            .map_err(|e| self.transient(e))?;
        self.len = [0; 4];
        self.bytes = 0;
        Ok(all)
    }

    fn len(&self) -> usize {
        self.len.iter().sum()
    }

    fn len_for(&self, endpoint: Endpoint) -> usize {
        self.len[endpoint_index(endpoint)]
    }

    fn newest_id(&self) -> Option<i64> {
        self.conn
            .query_row(
                "SELECT MAX(id) FROM queue WHERE owner = ?1",
                params![self.owner],
                |row| row.get::<_, Option<i64>>(0),
            )
            .optional()
            .ok()
            .flatten()
            .flatten()
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn oldest_id(&self) -> Option<i64> {
        self.conn
            .query_row(
                "SELECT MIN(id) FROM queue WHERE owner = ?1",
                params![self.owner],
                |row| row.get::<_, Option<i64>>(0),
            )
            .optional()
            .ok()
            .flatten()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: &str) -> Record {
        Record {
            endpoint: Endpoint::Track,
            insert_id: Some(body.to_owned()),
            body: body.into(),
        }
    }

    #[test]
    fn state_round_trips_through_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut opened = open(dir.path()).unwrap();
        let mut groups = BTreeMap::new();
        groups.insert(
            "company_id".to_owned(),
            GroupIds::collect("company_id", ["A", "B"]).unwrap(),
        );
        opened
            .state
            .apply(&StateChange {
                values: vec![
                    (keys::GROUPS, Some(encode_groups(&groups))),
                    (keys::OPTED_OUT, Some("1".into())),
                ],
                ..StateChange::default()
            })
            .unwrap();
        drop(opened);

        let state = open(dir.path()).unwrap().state.load().unwrap();
        assert_eq!(state.groups, groups);
        assert!(state.opted_out);
    }

    #[test]
    fn held_updates_are_released_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path()).unwrap().state;
        let held = HeldUpdate {
            operation: "$union".into(),
            value: serde_json::json!({"company_id": ["A"]}),
            time_ms: 5,
        };
        store
            .apply(&StateChange {
                hold: vec![held.clone()],
                ..StateChange::default()
            })
            .unwrap();
        assert_eq!(store.held_count(), 1);

        let released = store
            .apply(&StateChange {
                release_held: true,
                ..StateChange::default()
            })
            .unwrap();
        assert_eq!(released, vec![held]);
        assert_eq!(store.held_count(), 0);
    }

    #[test]
    fn queue_hides_rows_of_other_owners() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path()).unwrap();
        let mut first = SqliteQueue::open(dir.path(), true).unwrap();
        first.append(&[record("a"), record("b")]).unwrap();

        let mut unclaimed = SqliteQueue::open(dir.path(), false).unwrap();
        assert_eq!(unclaimed.len(), 0);
        assert!(unclaimed.front(Endpoint::Track, 10).unwrap().is_empty());

        let mut claimed = SqliteQueue::open(dir.path(), true).unwrap();
        assert_eq!(claimed.len(), 2);
        assert_eq!(
            &*claimed.front(Endpoint::Track, 10).unwrap()[0].record.body,
            "a"
        );
        assert!(
            first.front(Endpoint::Track, 10).unwrap().is_empty(),
            "claimed rows leave the first owner"
        );
    }

    #[test]
    fn sqlite_queue_evicts_oldest() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path()).unwrap();
        let mut queue = SqliteQueue::open(dir.path(), true).unwrap();
        queue
            .append(&[record("a"), record("b"), record("c")])
            .unwrap();

        let evicted = queue.evict_to_fit(2, usize::MAX).unwrap();
        assert_eq!(evicted.len(), 1);
        assert_eq!(&*evicted[0].record.body, "a");
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn newer_schema_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(store_path(dir.path())).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let error = open(dir.path())
            .err()
            .expect("a newer schema must be rejected");
        assert!(error.to_string().contains("schema version 99"), "{error}");
    }

    #[test]
    fn sqlite_queue_removes_batch_with_holes() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path()).unwrap();
        let mut queue = SqliteQueue::open(dir.path(), true).unwrap();
        let records: Vec<Record> = (0..200).map(|i| record(&format!("r{i}"))).collect();
        queue.append(&records).unwrap();

        let front = queue.front(Endpoint::Track, 50).unwrap();
        let accepted: Vec<i64> = front
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 7 != 3)
            .map(|(_, stored)| stored.id)
            .collect();
        queue.remove(&accepted).unwrap();

        let left: Vec<String> = queue
            .front(Endpoint::Track, 10)
            .unwrap()
            .into_iter()
            .map(|stored| stored.record.body.to_string())
            .collect();
        assert_eq!(
            left,
            ["r3", "r10", "r17", "r24", "r31", "r38", "r45", "r50", "r51", "r52"]
        );
        assert_eq!(queue.len(), 200 - accepted.len());
        assert_eq!(queue.len_for(Endpoint::Track), 200 - accepted.len());

        let reopened = SqliteQueue::open(dir.path(), true).unwrap();
        assert_eq!(reopened.len(), queue.len(), "in-memory counts match the file");
        assert_eq!(reopened.bytes, queue.bytes, "in-memory byte total matches the file");
    }

    #[test]
    fn consecutive_runs_split_at_gaps() {
        assert_eq!(consecutive_runs(&[]), []);
        assert_eq!(consecutive_runs(&[4]), [(4, 4)]);
        assert_eq!(
            consecutive_runs(&[1, 2, 3, 5, 6, 9]),
            [(1, 3), (5, 6), (9, 9)]
        );
    }

    #[test]
    fn queue_statements_use_indexes() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path()).unwrap();
        let queue = SqliteQueue::open(dir.path(), true).unwrap();
        let plan = |sql: &str| -> String {
            let mut statement = queue
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let details: Vec<String> = statement
                .query_map([], |row| row.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            details.join("; ")
        };

        let delete = plan("DELETE FROM queue WHERE owner = 1 AND id BETWEEN 1 AND 50");
        assert!(delete.starts_with("SEARCH"), "{delete}");
        assert!(delete.contains("id>? AND id<?"), "{delete}");
        let front = plan(
            "SELECT id, endpoint, insert_id, body FROM queue WHERE owner = 1 AND endpoint = 'track' ORDER BY id LIMIT 50",
        );
        assert!(front.contains("queue_owner_endpoint"), "{front}");
        assert!(!front.contains("TEMP B-TREE"), "{front}");
        let oldest = plan("SELECT MIN(id) FROM queue WHERE owner = 1");
        assert!(oldest.contains("queue_owner_id"), "{oldest}");
    }
}
