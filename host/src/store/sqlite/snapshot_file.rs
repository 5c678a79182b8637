//! A projection's database as a file, for the cluster store's snapshots.
//!
//! Owns reading which log entry a database file reflects (without opening it as a store) and
//! copying a live database into a snapshot file: SQLite's `VACUUM INTO`, one consistent read
//! that reflects exactly the log entry recorded in it, with the only node-local row
//! (`meta.last_started_at`) removed from the copy.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::store::StoreError;

/// The log entry the database at `path` has applied; 0 when there is no file, or it has
/// applied none.
pub fn log_sequence_of(path: &Path) -> Result<u64, StoreError> {
    if !path.is_file() {
        return Ok(0);
    }
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| open_error(path, source))?;
    sequence_in(&connection).map_err(|source| open_error(path, source))
}

/// Copies the database at `database` into `work` (replacing it), drops the copy's node-local
/// rows, and answers the log entry the copy reflects.
pub fn copy_projection(database: &Path, work: &Path) -> Result<u64, StoreError> {
    match std::fs::remove_file(work) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(StoreError::Write(format!("snapshot file `{}`: {error}", work.display())));
        }
    }
    let opened = |source| open_error(database, source);
    let source =
        Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(opened)?;
    let target = work.to_str().ok_or_else(|| {
        StoreError::Write(format!("snapshot file `{}`: the path is not UTF-8", work.display()))
    })?;
    source.execute("VACUUM INTO ?1", [target]).map_err(opened)?;
    drop(source);
    let copied = |source| open_error(work, source);
    let copy = Connection::open(work).map_err(copied)?;
    // Only what applying the log made: the time this node last started is its own.
    copy.execute("DELETE FROM meta WHERE key <> 'log_sequence'", []).map_err(copied)?;
    let sequence = sequence_in(&copy).map_err(copied)?;
    copy.close().map_err(|(_, source)| copied(source))?;
    Ok(sequence)
}

fn sequence_in(connection: &Connection) -> rusqlite::Result<u64> {
    let value: Option<String> = match connection
        .query_row("SELECT value FROM meta WHERE key = 'log_sequence'", [], |row| row.get(0))
        .optional()
    {
        Ok(value) => value,
        // A database made before its first migration has no `meta` table.
        Err(rusqlite::Error::SqliteFailure(_, Some(message)))
            if message.contains("no such table") =>
        {
            None
        }
        Err(error) => return Err(error),
    };
    Ok(value.and_then(|value| value.parse().ok()).unwrap_or(0))
}

fn open_error(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Open { path: path.to_path_buf(), source: source.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::store::sqlite::{DATABASE_FILE, SqliteStore};
    use crate::telemetry::Metrics;

    #[test]
    fn a_copy_reflects_the_applied_entry_and_keeps_nothing_node_local() {
        let directory = tempfile::tempdir().unwrap();
        let database = directory.path().join(DATABASE_FILE);
        assert_eq!(log_sequence_of(&database).unwrap(), 0, "no file yet");
        let store = SqliteStore::open(directory.path(), Durability::Os, Metrics::new()).unwrap();
        let connection = Connection::open(&database).unwrap();
        connection
            .execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('log_sequence', '42')", [])
            .unwrap();
        let work = directory.path().join("copy");
        assert_eq!(copy_projection(&database, &work).unwrap(), 42);
        assert_eq!(log_sequence_of(&work).unwrap(), 42);
        let copy = Connection::open(&work).unwrap();
        let keys: Vec<String> = copy
            .prepare("SELECT key FROM meta ORDER BY key")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, ["log_sequence"], "`last_started_at` is this node's own");
        drop(store);
    }
}
