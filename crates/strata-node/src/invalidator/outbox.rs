//! The SQLite change source: the `strata_outbox` table, which triggers on
//! `items` fill in the same transaction as each change (see
//! [`crate::origin::sqlite`]).
//!
//! Tailing: read the oldest rows, apply their deletes, then delete those
//! rows — never before the deletes are applied, so a crash in between
//! repeats them (at-least-once; a delete is idempotent). Sequence numbers
//! come from `AUTOINCREMENT` inside write transactions, which SQLite runs
//! one at a time, so sequence order is commit order.
//!
//! Keys are read as bytes, whatever another program stored: SQLite does
//! not enforce the column's type, so a key may be a BLOB or TEXT that is
//! not UTF-8. Reading it as a Rust `String` would fail the whole peek, and
//! the same peek would fail forever. A key no cache can hold is the
//! invalidator's to skip (see "Keys no cache can hold" in the parent).

use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::types::ValueRef;
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
                // A commit time that is not an integer (another program's
                // row) only loses that change's latency measurement.
                let committed_at_ms = row.get::<_, Option<i64>>(2).ok().flatten();
                Ok((row.get::<_, i64>(0)?, key_bytes(row.get_ref(1)?), committed_at_ms))
            })?;
            let mut changes = Vec::new();
            let mut last = None;
            for row in rows {
                let (seq, key, committed_at_ms) = row?;
                last = Some(seq);
                changes.push(Change { key, committed_at_ms });
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

/// The outbox's `key` column as bytes: text (UTF-8 or not) and blobs as
/// they are, numbers as SQLite would print them. `NULL` (which the schema
/// forbids, but an older or altered table may hold) becomes the empty key,
/// which the invalidator skips as invalid.
fn key_bytes(value: ValueRef<'_>) -> Vec<u8> {
    match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.to_vec(),
        ValueRef::Integer(number) => number.to_string().into_bytes(),
        ValueRef::Real(number) => number.to_string().into_bytes(),
        ValueRef::Null => Vec::new(),
    }
}
