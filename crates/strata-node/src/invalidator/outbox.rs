//! The SQLite change source: the `strata_outbox` table, which triggers on
//! `items` fill in the same transaction as each change (see
//! [`crate::origin::sqlite`]).
//!
//! Tailing: read the oldest rows, apply their deletes, then delete those
//! rows — never before the deletes are applied, so a crash in between
//! repeats them (at-least-once; a delete is idempotent). Sequence numbers
//! come from `AUTOINCREMENT` inside write transactions, which SQLite runs
//! one at a time, so sequence order is commit order.

use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, params};

use super::{Change, ChangeBatch, Position};
use crate::origin::OriginError;
use crate::origin::sqlite::{SCHEMA, blocking, connect};

/// The outbox of one SQLite origin file.
#[derive(Clone)]
pub struct OutboxSource {
    connection: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for OutboxSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxSource").finish_non_exhaustive()
    }
}

impl OutboxSource {
    /// Opens the outbox in the database file at `path` (creating the schema
    /// if the file is new).
    pub async fn open(path: &str) -> Result<Self, OriginError> {
        let path = path.to_owned();
        blocking(move || {
            let connection = connect(&path, OpenFlags::default())?;
            connection.execute_batch(SCHEMA)?;
            Ok(OutboxSource {
                connection: Arc::new(Mutex::new(connection)),
            })
        })
        .await
    }

    /// Up to `max` of the oldest changes not yet applied.
    pub async fn peek(&self, max: usize) -> Result<Option<ChangeBatch>, OriginError> {
        let connection = Arc::clone(&self.connection);
        blocking(move || {
            let connection = connection.lock();
            let mut statement = connection
                .prepare_cached("SELECT seq, key, committed_at_ms FROM strata_outbox ORDER BY seq LIMIT ?1")?;
            let rows = statement.query_map(params![max as i64], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
            })?;
            let mut changes = Vec::new();
            let mut last = None;
            for row in rows {
                let (seq, key, committed_at_ms) = row?;
                last = Some(seq);
                changes.push(Change {
                    key,
                    committed_at_ms: Some(committed_at_ms),
                });
            }
            Ok(last.map(|seq| ChangeBatch {
                changes,
                flush_all: false,
                position: Position::Outbox(seq),
            }))
        })
        .await
    }

    /// Forgets every change up to and including `seq` (applied).
    pub async fn advance(&self, seq: i64) -> Result<(), OriginError> {
        let connection = Arc::clone(&self.connection);
        blocking(move || {
            let connection = connection.lock();
            connection
                .prepare_cached("DELETE FROM strata_outbox WHERE seq <= ?1")?
                .execute(params![seq])?;
            Ok(())
        })
        .await
    }

    /// Changes waiting.
    pub async fn backlog(&self) -> Result<i64, OriginError> {
        let connection = Arc::clone(&self.connection);
        blocking(move || {
            let connection = connection.lock();
            Ok(connection.query_row("SELECT count(*) FROM strata_outbox", [], |row| row.get(0))?)
        })
        .await
    }
}
