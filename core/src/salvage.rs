//! Recovery of the readable rows of a store that SQLite reported as corrupt.
//!
//! A truncated or partly overwritten file often still contains readable pages: the state
//! table, and the oldest queue rows. Before the client starts on an empty store, this module copies
//! those rows into it and estimates how many queued records could not be read, so the loss is
//! reported with a count instead of silently.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

/// The outcome of recovering a corrupt store.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Salvage {
    /// Queue rows copied into the new store.
    pub recovered_records: u64,
    /// Queue rows that were in the corrupt store but could not be read, as an upper bound.
    /// It counts the ids between the last readable row and the highest id the store had
    /// allocated. When SQLite cannot read the file at all, it counts the distinct
    /// `$insert_id`s in the raw bytes, which may include delivered rows whose pages were not
    /// reused yet.
    pub lost_records: u64,
}

/// Copies the readable state, held profile updates and queue rows of the corrupt store at
/// `corrupt` into `target`, an empty store of the current schema.
///
/// Never fails: what cannot be read is counted or skipped, and logged.
pub(crate) fn recover(corrupt: &Path, target: &Connection) -> Salvage {
    let readable = readable_copy(corrupt);
    let source_path = readable.as_deref().unwrap_or(corrupt);
    let salvage = recover_from(corrupt, source_path, target);
    if let Some(copy) = readable {
        let _ = std::fs::remove_file(copy);
    }
    salvage
}

/// Writes a copy of a truncated store whose header SQLite accepts: the page count set to the
/// pages the file still has, and the rollback journal instead of a WAL it no longer has.
/// SQLite reports a file shorter than its header's page count as malformed before reading
/// any table, although the pages that remain are intact. Returns `None` when the file does
/// not start with an SQLite header.
fn readable_copy(corrupt: &Path) -> Option<std::path::PathBuf> {
    const MAGIC: &[u8] = b"SQLite format 3\0";

    let mut bytes = std::fs::read(corrupt).ok()?;
    if bytes.len() < 100 || !bytes.starts_with(MAGIC) {
        return None;
    }
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        size => usize::from(size),
    };
    if page_size < 512 {
        return None;
    }
    let pages = (bytes.len() / page_size) as u32;
    bytes[28..32].copy_from_slice(&pages.to_be_bytes());
    bytes[18] = 1;
    bytes[19] = 1;

    let copy = std::path::PathBuf::from(format!("{}.salvage", corrupt.display()));
    std::fs::write(&copy, &bytes).ok()?;
    Some(copy)
}

fn recover_from(corrupt: &Path, source_path: &Path, target: &Connection) -> Salvage {
    let source = match Connection::open_with_flags(source_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
    {
        Ok(source) => source,
        Err(error) => {
            log::warn!("Could not open {} to recover records: {error}", corrupt.display());
            return Salvage::default();
        }
    };

    copy_state(&source, target);
    copy_held_profile_updates(&source, target);

    let allocated: Option<i64> = source
        .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'queue'", [], |row| row.get(0))
        .ok();
    let (recovered_records, last_read_id, complete) = copy_queue(&source, target);

    let lost_records = match (allocated, complete) {
        (_, true) => 0,
        (Some(allocated), false) => allocated.saturating_sub(last_read_id).max(0) as u64,
        (None, false) => {
            let found = count_insert_ids_in_raw_file(corrupt);
            log::warn!(
                "Could not read the queue of {}; its raw bytes contain {found} `$insert_id`s, counted as lost",
                corrupt.display()
            );
            found.saturating_sub(recovered_records)
        }
    };
    Salvage {
        recovered_records,
        lost_records,
    }
}

/// Copies state rows one by one; a row that cannot be read is skipped.
fn copy_state(source: &Connection, target: &Connection) {
    let rows = read_rows(source, "SELECT name, value FROM state", |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    });
    for (name, value) in rows.0 {
        if let Err(error) = target.execute(
            "INSERT OR REPLACE INTO state (name, value) VALUES (?1, ?2)",
            params![name, value],
        ) {
            log::warn!("Could not recover the state value {name:?}: {error}");
        }
    }
}

/// Copies held user-profile updates in their original order.
fn copy_held_profile_updates(source: &Connection, target: &Connection) {
    let rows = read_rows(
        source,
        "SELECT operation, value, time_ms FROM held_profile_updates ORDER BY id",
        |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        },
    );
    for (operation, value, time_ms) in rows.0 {
        if let Err(error) = target.execute(
            "INSERT INTO held_profile_updates (operation, value, time_ms) VALUES (?1, ?2, ?3)",
            params![operation, value, time_ms],
        ) {
            log::warn!("Could not recover a held profile update: {error}");
        }
    }
}

/// Copies queue rows oldest first until the first unreadable page. Returns the number
/// copied, the highest id read, and whether every row was read.
fn copy_queue(source: &Connection, target: &Connection) -> (u64, i64, bool) {
    let (rows, complete) = read_rows(
        source,
        "SELECT id, endpoint, insert_id, body, bytes FROM queue ORDER BY id",
        |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
            ))
        },
    );

    let mut copied = 0;
    let mut last_read_id = 0;
    for (id, endpoint, insert_id, body, bytes) in rows {
        last_read_id = id;
        match target.execute(
            "INSERT INTO queue (endpoint, insert_id, body, bytes, owner) VALUES (?1, ?2, ?3, ?4, 0)",
            params![endpoint, insert_id, body, bytes],
        ) {
            Ok(_) => copied += 1,
            Err(error) => log::warn!("Could not recover queued record {id}: {error}"),
        }
    }
    (copied, last_read_id, complete)
}

/// Counts the distinct `$insert_id` values written in the raw bytes of the file and its WAL.
///
/// Queue rows keep their JSON body as text, and rows this small never span pages, so every
/// queued event's `"$insert_id":"…"` is in the file as written.
fn count_insert_ids_in_raw_file(path: &Path) -> u64 {
    const NEEDLE: &[u8] = b"\"$insert_id\":\"";

    let mut ids = std::collections::HashSet::new();
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    for file in [path.to_path_buf(), wal] {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let mut rest = &bytes[..];
        while let Some(start) = find(rest, NEEDLE) {
            rest = &rest[start + NEEDLE.len()..];
            let len = rest
                .iter()
                .take(crate::protocol::MAX_INSERT_ID_LEN + 1)
                .position(|&b| b == b'"')
                .unwrap_or(usize::MAX);
            if let Some(id) = rest.get(..len) {
                if std::str::from_utf8(id).is_ok_and(crate::protocol::is_valid_insert_id) {
                    ids.insert(id.to_vec());
                }
            }
        }
    }
    ids.len() as u64
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Runs `sql` and collects rows until the first error. Returns the rows and whether the
/// query ran to its end.
fn read_rows<T>(
    source: &Connection,
    sql: &str,
    map: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> (Vec<T>, bool) {
    let mut statement = match source.prepare(sql) {
        Ok(statement) => statement,
        Err(_) => return (Vec::new(), false),
    };
    let mut rows = match statement.query([]) {
        Ok(rows) => rows,
        Err(_) => return (Vec::new(), false),
    };

    let mut out = Vec::new();
    loop {
        match rows.next() {
            Ok(Some(row)) => match map(row) {
                Ok(value) => out.push(value),
                Err(_) => return (out, false),
            },
            Ok(None) => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage;

    /// Creates a store with `rows` queued events, checkpointed so every page is in the main
    /// file, and returns its path.
    fn store_with_queued_rows(dir: &Path, rows: usize) -> std::path::PathBuf {
        let opened = storage::open(dir).unwrap();
        drop(opened);
        let path = storage::store_path(dir);
        let conn = Connection::open(&path).unwrap();
        for seq in 0..rows {
            let insert_id = format!("{seq:032x}");
            let body = format!(
                r#"{{"event":"Queued","properties":{{"$insert_id":"{insert_id}","padding":"{}"}}}}"#,
                "x".repeat(250)
            );
            conn.execute(
                "INSERT INTO queue (endpoint, insert_id, body, bytes, owner) VALUES ('track', ?1, ?2, ?3, 1)",
                params![insert_id, body, body.len() as i64],
            )
            .unwrap();
        }
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        drop(conn);
        path
    }

    fn empty_target(dir: &Path) -> Connection {
        let opened = storage::open(dir).unwrap();
        drop(opened);
        Connection::open(storage::store_path(dir)).unwrap()
    }

    #[test]
    fn truncated_store_counts_lost_rows() {
        let source_dir = tempfile::tempdir().unwrap();
        let path = store_with_queued_rows(source_dir.path(), 400);
        let size = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(size / 2)
            .unwrap();

        let target_dir = tempfile::tempdir().unwrap();
        let target = empty_target(target_dir.path());
        let salvage = recover(&path, &target);

        assert!(salvage.recovered_records > 0, "{salvage:?}");
        assert!(salvage.recovered_records < 400, "{salvage:?}");
        assert_eq!(salvage.recovered_records + salvage.lost_records, 400);
        let copied: i64 = target
            .query_row("SELECT count(*) FROM queue", [], |row| row.get(0))
            .unwrap();
        assert_eq!(copied as u64, salvage.recovered_records);
    }

    #[test]
    fn intact_store_recovers_all_rows() {
        let source_dir = tempfile::tempdir().unwrap();
        let path = store_with_queued_rows(source_dir.path(), 50);

        let target_dir = tempfile::tempdir().unwrap();
        let target = empty_target(target_dir.path());
        let salvage = recover(&path, &target);

        assert_eq!(
            salvage,
            Salvage {
                recovered_records: 50,
                lost_records: 0
            }
        );
    }

    #[test]
    fn random_bytes_recover_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("random.sqlite3");
        std::fs::write(&path, (0..8192).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>()).unwrap();

        let target_dir = tempfile::tempdir().unwrap();
        let target = empty_target(target_dir.path());

        assert_eq!(recover(&path, &target), Salvage::default());
        assert!(!dir.path().join("random.sqlite3.salvage").exists());
    }
}
