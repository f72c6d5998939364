//! The SQLite origin: an embedded database file, nothing to install.
//!
//! WAL journal mode, so readers never wait for the writer. One connection
//! writes (SQLite runs one write transaction at a time anyway; a single
//! writer connection turns lock contention into a queue instead of
//! `SQLITE_BUSY` retries) and a few read. Every call runs on tokio's
//! blocking pool: SQLite's calls block.
//!
//! The outbox: triggers on `items` append the changed row's cache key to
//! `strata_outbox` in the same transaction as the change itself, so the
//! invalidator (which tails the outbox) sees every committed write, made by
//! strata or by anything else that writes the file. An application can
//! name extra keys to invalidate by inserting into `strata_outbox` inside
//! its own transaction.
//!
//! # Durability
//!
//! Every connection runs `PRAGMA synchronous = FULL`: in WAL mode SQLite
//! then fsyncs the WAL at every commit, so a commit that returned survives
//! a power loss. (SQLite's own recommendation for WAL, `NORMAL`, syncs only
//! at checkpoints: a commit survives a process crash but the last ones can
//! vanish with the power — the database stays consistent, just older.)
//!
//! `NORMAL` would break write-behind's promise. Its flusher commits a batch
//! here and then tells the journal to forget it (checkpoint, segment
//! deletion, both fsynced); a power loss after that could take the batch
//! from the database too, and a write answered `202` would be gone from
//! both. It would also make `200` of the synchronous strategies mean less
//! than it says. FULL costs one WAL fsync per write transaction, which the
//! flusher's batching and the single writer connection amortise; it is the
//! setting for every strategy because one origin file serves them all, and
//! a database whose durability depends on which strategy wrote last is
//! harder to trust than a slightly slower one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{Applied, OriginError, Row, Write};

/// How many connections answer reads.
const READERS: usize = 4;

/// How long a statement waits for a lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema: the table, the outbox and the triggers that fill it.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    id         TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS strata_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    key             TEXT NOT NULL,
    committed_at_ms INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS items_outbox_insert AFTER INSERT ON items BEGIN
    INSERT INTO strata_outbox (key, committed_at_ms) VALUES ('item:' || NEW.id, NEW.updated_at);
END;
CREATE TRIGGER IF NOT EXISTS items_outbox_update AFTER UPDATE ON items BEGIN
    INSERT INTO strata_outbox (key, committed_at_ms) VALUES ('item:' || NEW.id, NEW.updated_at);
END;
CREATE TRIGGER IF NOT EXISTS items_outbox_delete AFTER DELETE ON items BEGIN
    INSERT INTO strata_outbox (key, committed_at_ms)
        VALUES ('item:' || OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
";

/// A SQLite origin.
#[derive(Clone)]
pub struct SqliteOrigin {
    inner: Arc<Connections>,
}

struct Connections {
    path: String,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl std::fmt::Debug for SqliteOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteOrigin").field("path", &self.inner.path).finish()
    }
}

/// Opens a connection with the settings every connection shares.
pub(crate) fn connect(path: &str, flags: OpenFlags) -> Result<Connection, rusqlite::Error> {
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers and the writer do not block each other. FULL: every
    // commit is durable when it returns (see "Durability" above).
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    Ok(connection)
}

impl SqliteOrigin {
    /// Opens (creating) the database file at `path` and its schema.
    pub async fn open(path: &str) -> Result<Self, OriginError> {
        let path = path.to_owned();
        blocking(move || {
            let writer = connect(&path, OpenFlags::default())?;
            writer.execute_batch(SCHEMA)?;
            let readers = (0..READERS)
                .map(|_| {
                    connect(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map(Mutex::new)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SqliteOrigin {
                inner: Arc::new(Connections {
                    path,
                    writer: Mutex::new(writer),
                    readers,
                    next_reader: AtomicUsize::new(0),
                }),
            })
        })
        .await
    }

    /// The file's path.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// Runs `read` on a reader connection: a free one if any, else the next
    /// in turn.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, OriginError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let guard = inner
                .readers
                .iter()
                .find_map(|reader| reader.try_lock())
                .unwrap_or_else(|| {
                    let turn = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
                    inner.readers[turn].lock()
                });
            Ok(read(&guard)?)
        })
        .await
    }

    /// The row `id`, if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<Row>, OriginError> {
        let id = id.to_owned();
        self.read(move |connection| {
            connection
                .prepare_cached("SELECT id, value, version, updated_at FROM items WHERE id = ?1")?
                .query_row(params![id], row_of)
                .optional()
        })
        .await
    }

    /// Applies `writes` in order in one transaction.
    pub async fn apply(&self, writes: &[Write]) -> Result<Vec<Applied>, OriginError> {
        let writes = writes.to_vec();
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut connection = inner.writer.lock();
            let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut applied = Vec::with_capacity(writes.len());
            for write in writes {
                applied.push(match write {
                    Write::Put { id, value } => {
                        let (version, updated_at_ms) = transaction
                            .prepare_cached(
                                "INSERT INTO items (id, value, version, updated_at) VALUES (?1, ?2, 1, ?3)
                                 ON CONFLICT (id) DO UPDATE SET value = excluded.value,
                                     version = items.version + 1, updated_at = excluded.updated_at
                                 RETURNING version, updated_at",
                            )?
                            .query_row(params![id, value, crate::now_ms()], |row| {
                                Ok((row.get(0)?, row.get(1)?))
                            })?;
                        Applied::Put(Row {
                            id,
                            value,
                            version,
                            updated_at_ms,
                        })
                    }
                    Write::Delete { id } => {
                        let removed = transaction
                            .prepare_cached("DELETE FROM items WHERE id = ?1")?
                            .execute(params![id])?;
                        Applied::Deleted {
                            id,
                            existed: removed > 0,
                        }
                    }
                });
            }
            transaction.commit()?;
            Ok(applied)
        })
        .await
    }

    /// Checks that the file answers.
    pub async fn ping(&self) -> Result<(), OriginError> {
        self.read(|connection| connection.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    /// Every row, ordered by id.
    pub async fn scan(&self) -> Result<Vec<Row>, OriginError> {
        self.read(|connection| {
            let mut statement = connection.prepare("SELECT id, value, version, updated_at FROM items ORDER BY id")?;
            let rows = statement.query_map([], row_of)?;
            rows.collect()
        })
        .await
    }
}

fn row_of(row: &rusqlite::Row<'_>) -> Result<Row, rusqlite::Error> {
    Ok(Row {
        id: row.get(0)?,
        value: row.get(1)?,
        version: row.get(2)?,
        updated_at_ms: row.get(3)?,
    })
}

/// Runs blocking SQLite work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, OriginError> + Send + 'static,
) -> Result<T, OriginError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| OriginError::Task(error.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_commits_durably() {
        let dir = std::env::temp_dir().join(format!("strata-sqlite-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("origin.db").display().to_string();
        let connection = connect(&path, OpenFlags::default()).unwrap();
        let journal_mode: String = connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        // 2 is FULL: the WAL is fsynced at every commit.
        let synchronous: i64 = connection
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap();
        assert_eq!((journal_mode.as_str(), synchronous), ("wal", 2));
        drop(connection);
        let _ = std::fs::remove_dir_all(dir);
    }
}
