//! The SQLite schema and its versioned migrations.
//!
//! Owns every `CREATE` statement. Migrations are applied in order at start, each in its own
//! transaction, and recorded in `PRAGMA user_version`; a released migration is never edited,
//! only followed by a new one.

use rusqlite::Connection;

/// Migration `n` (1-based) brings the schema from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    // 1: events, their bodies, the dedupe index, and facts about the store itself.
    r#"
    CREATE TABLE payloads (
        id    INTEGER PRIMARY KEY,
        hash  BLOB NOT NULL UNIQUE,      -- sha256 of body: one row per distinct body
        body  BLOB NOT NULL
    );
    CREATE TABLE events (
        seq         INTEGER PRIMARY KEY, -- commit order, for stable cursors
        id          BLOB NOT NULL UNIQUE, -- the 16 ULID bytes of `evt_<ULID>`
        source      TEXT NOT NULL,
        type        TEXT NOT NULL,
        subject     TEXT,
        headers     TEXT NOT NULL,       -- JSON [[name, value], …] in received order
        payload_id  INTEGER NOT NULL REFERENCES payloads(id),
        received_at INTEGER NOT NULL,    -- unix milliseconds
        dedupe_key  TEXT,
        metadata    TEXT                 -- JSON [[key, value], …] or NULL
    );
    CREATE INDEX events_by_received_at ON events(received_at);
    CREATE TABLE dedupe (
        source     TEXT NOT NULL,
        key        TEXT NOT NULL,
        event_id   BLOB NOT NULL,
        expires_at INTEGER NOT NULL,     -- unix milliseconds
        PRIMARY KEY (source, key)
    ) WITHOUT ROWID;
    CREATE INDEX dedupe_by_expiry ON dedupe(expires_at);
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: deliveries (the queue), their attempts, and endpoints disabled by a 410.
    r#"
    CREATE TABLE deliveries (
        id              INTEGER PRIMARY KEY,
        event_seq       INTEGER NOT NULL REFERENCES events(seq),
        endpoint        TEXT NOT NULL,
        payload_id      INTEGER NOT NULL REFERENCES payloads(id),
        state           INTEGER NOT NULL,  -- 0 pending, 1 delivered, 2 dead, 3 parked
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,  -- unix milliseconds, while pending
        last_error      TEXT
    );
    -- Delivered rows, the vast majority, stay out of this index.
    CREATE INDEX deliveries_open ON deliveries(state, endpoint) WHERE state <> 1;
    CREATE INDEX deliveries_by_event ON deliveries(event_seq);
    CREATE TABLE attempts (
        id           INTEGER PRIMARY KEY,
        delivery_id  INTEGER NOT NULL REFERENCES deliveries(id),
        attempted_at INTEGER NOT NULL,     -- unix milliseconds
        duration_us  INTEGER NOT NULL,
        status       INTEGER,              -- HTTP status, when there was an answer
        error        TEXT,
        response     BLOB                  -- the first 1 KiB of the answer
    );
    CREATE INDEX attempts_by_delivery ON attempts(delivery_id);
    CREATE TABLE endpoint_state (
        endpoint    TEXT PRIMARY KEY,
        disabled_at INTEGER,               -- unix milliseconds; NULL = enabled
        reason      TEXT
    ) WITHOUT ROWID;
    "#,
    // 3: what plugins and NATS endpoints need: a delivery's own content type (a transform may
    // change it) and NATS subject, and the event a split event came from; indexes that let
    // retention find unused bodies.
    r#"
    ALTER TABLE deliveries ADD COLUMN content_type TEXT;
    ALTER TABLE deliveries ADD COLUMN subject TEXT;
    -- Retention deletes bodies no event or delivery still uses.
    CREATE INDEX events_by_payload ON events(payload_id);
    CREATE INDEX deliveries_by_payload ON deliveries(payload_id);
    ALTER TABLE events ADD COLUMN parent_seq INTEGER REFERENCES events(seq);
    "#,
    // 4: dynamic endpoints and subscriptions, created through the admin API. Nothing here
    // touches `events` or `deliveries`: ingest does no more work than before.
    r#"
    CREATE TABLE endpoints (
        id         TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,          -- "endpoint" or "subscription"
        spec       TEXT NOT NULL,          -- JSON, owned by the admin API
        created_at INTEGER NOT NULL,       -- unix milliseconds
        updated_at INTEGER NOT NULL,       -- unix milliseconds
        deleted_at INTEGER                 -- unix ms; a deleted endpoint stays as a tombstone
    ) WITHOUT ROWID;
    "#,
    // 5: the audit log of admin actions. Never holds a secret (see `AuditEntry`).
    r#"
    CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY,    -- append order, for stable cursors
        at         INTEGER NOT NULL,       -- unix milliseconds
        role       TEXT NOT NULL,
        credential TEXT NOT NULL,
        remote     TEXT,
        action     TEXT NOT NULL,
        resource   TEXT NOT NULL,
        outcome    TEXT NOT NULL,
        status     INTEGER NOT NULL
    );
    CREATE INDEX audit_by_at ON audit(at);
    "#,
    // 6: a delivery's order key (its endpoint's `ordered_by`), set when it is created; NULL
    // for unordered deliveries and every delivery made before.
    r#"
    ALTER TABLE deliveries ADD COLUMN order_key TEXT;
    "#,
    // 7: attempts by time, so that figures over a window (the dashboard's endpoints list)
    // read only the attempts in it. One integer per attempt, appended at the index's end.
    r#"
    CREATE INDEX attempts_by_time ON attempts(attempted_at);
    "#,
    // 8: bodies are no longer shared across events by content, so `payloads` loses its
    // `hash` column and the UNIQUE index on it (~80 bytes and a SHA-256 per body). An event
    // and its deliveries (and the deliveries a replay adds) still share one row: a fan-out
    // stores each distinct body once, comparing it with the bodies it already stored. SQLite
    // cannot drop a UNIQUE column, so the table is rebuilt with its row ids kept (what
    // `events` and `deliveries` refer to).
    // Foreign keys are not enforced while migrations run (see `migrate_to`), so the old table
    // can go before the new one takes its name.
    r#"
    CREATE TABLE payloads_without_hash (
        id    INTEGER PRIMARY KEY,
        body  BLOB NOT NULL
    );
    INSERT INTO payloads_without_hash (id, body) SELECT id, body FROM payloads ORDER BY id;
    DROP TABLE payloads;
    ALTER TABLE payloads_without_hash RENAME TO payloads;
    "#,
    // 9: `deliveries_open` also orders each endpoint's open deliveries by due time. A
    // due-queue keeps only its next jobs in memory and reads the rest back in the order it
    // hands them out, a page at a time (see `due/spill.rs`); without the column, each page
    // sorted every open delivery of the endpoint. Delivered rows stay out of it as before.
    r#"
    DROP INDEX deliveries_open;
    CREATE INDEX deliveries_open ON deliveries(state, endpoint, next_attempt_at) WHERE state <> 1;
    "#,
    // 10: each body row counts the events and deliveries that use it (`sharing.rs`), and
    // retention deletes it when the count reaches zero. The two indexes from bodies back to
    // those rows, which retention asked before, go: every commit wrote the tails of both (one
    // entry per event and one per delivery). Counted once here, while they still answer; the
    // count rewrites every body row once. Retention also keeps an event that was split while
    // one of its splits is stored (deleting it first broke their reference and failed the
    // pass): it finds them by an index of split events only, which no other event enters.
    r#"
    CREATE INDEX events_by_parent ON events(parent_seq) WHERE parent_seq IS NOT NULL;
    ALTER TABLE payloads ADD COLUMN refs INTEGER NOT NULL DEFAULT 0;
    UPDATE payloads SET refs =
        (SELECT count(*) FROM events WHERE payload_id = payloads.id)
      + (SELECT count(*) FROM deliveries WHERE payload_id = payloads.id);
    DROP INDEX events_by_payload;
    DROP INDEX deliveries_by_payload;
    "#,
    // 11: `events` and `deliveries` lose their `REFERENCES payloads(id)`. With foreign keys
    // enforced, SQLite deleting a body row looks for rows that still refer to it, and without
    // an index on the referring column (10 dropped both) that is a scan of both tables for
    // every body retention deletes: a pass of 500 events on a store of 100,000 held the writer
    // for seconds. The body's count of its users (10) is what keeps it while it is used.
    // SQLite cannot drop a constraint, so both tables are rebuilt with their row ids kept and
    // their indexes made again; every other reference (a delivery's event, an attempt's
    // delivery, a split event's parent) stays enforced, each through an index on its column.
    r#"
    CREATE TABLE events_rebuilt (
        seq         INTEGER PRIMARY KEY, -- commit order, for stable cursors
        id          BLOB NOT NULL UNIQUE, -- the 16 ULID bytes of `evt_<ULID>`
        source      TEXT NOT NULL,
        type        TEXT NOT NULL,
        subject     TEXT,
        headers     TEXT NOT NULL,       -- JSON [[name, value], …] in received order
        payload_id  INTEGER NOT NULL,    -- the body's row in `payloads`
        received_at INTEGER NOT NULL,    -- unix milliseconds
        dedupe_key  TEXT,
        metadata    TEXT,                -- JSON [[key, value], …] or NULL
        parent_seq  INTEGER REFERENCES events(seq)
    );
    INSERT INTO events_rebuilt
        SELECT seq, id, source, type, subject, headers, payload_id, received_at, dedupe_key,
               metadata, parent_seq
        FROM events ORDER BY seq;
    DROP TABLE events;
    ALTER TABLE events_rebuilt RENAME TO events;
    CREATE INDEX events_by_received_at ON events(received_at);
    CREATE INDEX events_by_parent ON events(parent_seq) WHERE parent_seq IS NOT NULL;
    CREATE TABLE deliveries_rebuilt (
        id              INTEGER PRIMARY KEY,
        event_seq       INTEGER NOT NULL REFERENCES events(seq),
        endpoint        TEXT NOT NULL,
        payload_id      INTEGER NOT NULL,  -- the body's row in `payloads`
        state           INTEGER NOT NULL,  -- 0 pending, 1 delivered, 2 dead, 3 parked
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,  -- unix milliseconds, while pending
        last_error      TEXT,
        content_type    TEXT,
        subject         TEXT,
        order_key       TEXT
    );
    INSERT INTO deliveries_rebuilt
        SELECT id, event_seq, endpoint, payload_id, state, attempts, next_attempt_at,
               last_error, content_type, subject, order_key
        FROM deliveries ORDER BY id;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_rebuilt RENAME TO deliveries;
    CREATE INDEX deliveries_open ON deliveries(state, endpoint, next_attempt_at) WHERE state <> 1;
    CREATE INDEX deliveries_by_event ON deliveries(event_seq);
    "#,
];

/// The schema version this build writes.
pub const CURRENT_VERSION: usize = MIGRATIONS.len();

/// Brings the database up to [`CURRENT_VERSION`]; refuses a database from a newer build.
pub fn migrate(connection: &mut Connection) -> Result<(), MigrationError> {
    migrate_to(connection, CURRENT_VERSION)
}

/// Brings the database up to version `target` (a test builds older databases with it).
pub(super) fn migrate_to(connection: &mut Connection, target: usize) -> Result<(), MigrationError> {
    let version: usize =
        connection.pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))? as usize;
    if version > CURRENT_VERSION {
        return Err(MigrationError::TooNew { found: version, supported: CURRENT_VERSION });
    }
    // A migration that rebuilds a table drops the old one while rows still refer to it, so
    // foreign keys are not enforced while migrations run (SQLite ignores the pragma inside a
    // transaction). Such a rebuild keeps every row id: a reference that held still holds.
    let enforced: bool = connection.pragma_query_value(None, "foreign_keys", |row| row.get(0))?;
    connection.pragma_update(None, "foreign_keys", false)?;
    let applied = apply(connection, version, target);
    connection.pragma_update(None, "foreign_keys", enforced)?;
    applied
}

fn apply(connection: &mut Connection, version: usize, target: usize) -> Result<(), MigrationError> {
    for (index, sql) in MIGRATIONS.iter().enumerate().take(target).skip(version) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", (index + 1) as i64)?;
        transaction.commit()?;
    }
    // A migration that rewrites a table (8, 10, 11) passes all of it through the WAL, and SQLite
    // reuses a WAL file without shrinking it: without this, a large store would keep a WAL as
    // large as its bodies for good. Nothing else has the database open yet.
    if version < target {
        connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the database has schema version {found}, newer than this build supports \
         ({supported}); run a newer Switchyard"
    )]
    TooNew { found: usize, supported: usize },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}
