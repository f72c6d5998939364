//! The invalidator's change source on PostgreSQL: a logical replication
//! slot with the built-in `test_decoding` plugin, polled over SQL.
//!
//! A slot keeps every committed change from the moment it is created
//! until it is told the changes have been applied, across restarts of the
//! reader and of the database, so no committed write is missed:
//!
//! 1. [`SlotSource::peek`] reads (without consuming) whole committed
//!    transactions, oldest first, and turns each change to `items` into a
//!    [`Change`] for the cache key `item:<id>`;
//! 2. the caller deletes those keys in the cache;
//! 3. [`SlotSource::advance`] moves the slot past them.
//!
//! A crash between 1 and 3 delivers the batch again (at least once).
//!
//! # Where to advance to
//!
//! Each row `pg_logical_slot_peek_changes` returns carries an LSN; the
//! `COMMIT` row's is the end of the commit record. The slot skips a
//! transaction whose commit record starts before its `confirmed_flush_lsn`,
//! so advancing to the `COMMIT` row's LSN is exactly "everything up to and
//! including this transaction": the next peek starts with the next
//! transaction (checked by the tests). A non-transactional message's row
//! carries the end of its record and is skipped the same way. A batch's
//! [`SlotBatch::upto_lsn`] is therefore the LSN of its last `COMMIT` (or
//! trailing non-transactional message), never inside a transaction.
//!
//! `pg_replication_slot_advance` is made durable by the next checkpoint:
//! if the database crashes before one, the slot comes back at its previous
//! position and delivers those transactions again, which is harmless for
//! invalidation (a second delete).
//!
//! # What is decoded
//!
//! - `table <schema>.items: INSERT|UPDATE|DELETE: id[text]:'…' …` gives
//!   `item:<id>` (both ids when an `UPDATE` changes the id). Tables of other
//!   names are ignored; `items` in any schema counts, since an extra
//!   invalidation is harmless and a missed one is not.
//! - `message: transactional: 1 prefix: strata.invalidate, sz: N content:…`
//!   (from `pg_logical_emit_message(true, 'strata.invalidate',
//!   E'item:x\nitem:y')`) gives one change per line: applications name
//!   extra cache keys inside their transaction. Non-transactional messages
//!   are taken too, with no commit time.
//! - `COMMIT <xid> (at <timestamp>)` sets the commit time of that
//!   transaction's changes (`include-timestamp`).
//! - A `TRUNCATE` of `items`, or a `DELETE` without key columns (`REPLICA
//!   IDENTITY NOTHING`), names no key: the batch then asks for the whole
//!   cluster to be flushed ([`SlotBatch::flush_all`]), logged as a warning.
//! - A `strata.flush` message (any content, transactional or not) asks for
//!   the whole cluster to be flushed; an application may send one too.
//!   Every slot strata creates starts with one (see "A new slot starts with
//!   a flush").
//!
//! Peeks run with `skip-empty-xacts` off. With it on, `test_decoding`
//! prints `BEGIN` only at a transaction's first row change and drops the
//! `COMMIT` of one that changed no row, so a transaction holding only
//! messages (`SELECT pg_logical_emit_message(true, 'strata.invalidate', …)`
//! alone, or a new slot's flush) came out as bare message lines: the batch
//! ended at the message, before its commit, advancing there did not take
//! the slot past the transaction, and the same message came back in every
//! peek until some later transaction committed (at the log's tail the
//! invalidator never went idle). Off, every decoded transaction is framed;
//! the cost is a `BEGIN`/`COMMIT` pair for transactions with no row
//! changes (DDL), which the server decodes anyway.
//!
//! A line about `items` that does not parse fails the peek rather than
//! being skipped, so a parser gap shows at once instead of as stale reads;
//! the slot keeps the change until it is fixed.
//!
//! # A new slot starts with a flush
//!
//! A slot sees only what commits after it is created; whatever the cache
//! holds from before was never checked against the changes before it. So
//! [`SlotSource::connect`], when it creates the slot, writes a
//! `strata.flush` message in the same statement, right after the creation
//! returns: the message lies behind the slot's starting point, the slot
//! delivers it like any change, and the invalidator flushes the cluster
//! when it reads it. That orders things the only safe way — slot first,
//! flush after — and puts the owed flush in the database rather than in
//! the invalidator's memory, so a restart of the invalidator between the
//! two still flushes. It is what makes a lost slot safe to recreate (see
//! the parent module), and it makes the very first start of an invalidator
//! flush the cluster once, which is right for the same reason.
//!
//! The message is transactional (its transaction gets its ID only after
//! the slot exists, so the slot decodes it), so that the statement's commit
//! flushes it to the WAL on disk before it returns — the session runs with
//! `synchronous_commit = local` — and the slot can read it at once. (One
//! gap is left: a database crash during that one statement, after the slot
//! was saved and before the commit, keeps the slot and loses the message.)
//!
//! # A transaction too large to decode in time
//!
//! The server decodes whole transactions: `upto_nchanges` is checked only
//! at commits, and a peek cannot stop inside a transaction (nor can the
//! slot be advanced into one: the next peek would decode it from its start
//! again). So one transaction with millions of rows is decoded by a single
//! peek, however long that takes. With a fixed `statement_timeout` such a
//! peek would be cancelled every time and the invalidator would retry the
//! same batch forever, every later change waiting behind it.
//!
//! Instead, peeks and advances run with their own *decode timeout*: it
//! starts at [`STATEMENT_TIMEOUT`], doubles each time the server cancels one
//! of them for taking too long (SQLSTATE 57014), up to
//! [`MAX_DECODE_TIMEOUT`], and halves (not below where it started) with
//! each advance that succeeds. (Not straight back: the next peeks start at
//! the slot's restart point, which can lag behind a big transaction, and
//! may have to read it again, though they output none of it.) The
//! time lost to cancelled attempts is less than the one that succeeds, so
//! a big transaction costs at most about three times its decoding time
//! instead of forever; only a transaction needing more than a day to
//! decode would still stall. The client-side bound grows with it. What is
//! not bounded: the peek's rows are held in memory at once, and
//! `test_decoding` prints every column, so a transaction that rewrote
//! gigabytes of rows needs that much memory here (PostgreSQL's own side
//! spills to disk past `logical_decoding_work_mem`).
//!
//! The line parser is the child module `test_decoding`
//! (`postgres/test_decoding.rs`).

mod test_decoding;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::origin::OriginError;
use crate::origin::postgres::{describe, session_config, target_of};
use test_decoding::{Line, parse_line};

/// One cache key to invalidate (shared with the other sources).
pub use super::Change;

/// The output plugin (built into PostgreSQL, no extension to install).
const PLUGIN: &str = "test_decoding";

/// The prefix of logical messages that name cache keys.
pub const MESSAGE_PREFIX: &str = "strata.invalidate";

/// The prefix of logical messages that ask for a cluster flush.
pub const FLUSH_PREFIX: &str = "strata.flush";

/// The server-side `statement_timeout` of the slot's session: decoding a
/// large backlog takes longer than a point query. Also where the decode
/// timeout of peeks and advances starts.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most the decode timeout grows to (see "A transaction too large to
/// decode in time").
pub const MAX_DECODE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The client-side bound on one call.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(35);

/// What the client-side bound adds to a server-side timeout: the server's
/// cancellation should arrive first.
const CLIENT_MARGIN: Duration = Duration::from_secs(5);

/// A change source reading one logical replication slot over its own
/// connection.
#[derive(Debug)]
pub struct SlotSource {
    client: tokio_postgres::Client,
    /// The URL it connected to (to reconnect).
    url: String,
    slot: String,
    /// `host:port` for error messages.
    target: String,
    /// Where the decode timeout starts and returns to.
    base_decode_timeout: Duration,
    /// The decode timeout of the next peek or advance, in ms.
    decode_timeout_ms: AtomicU64,
    /// The session's `statement_timeout`, in ms, as last set.
    session_timeout_ms: AtomicU64,
}

/// The changes of one peek: whole transactions, in commit order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotBatch {
    /// The keys, transaction by transaction in commit order, each key once
    /// per transaction. May be empty when the transactions read touched
    /// nothing cached; advance anyway.
    pub changes: Vec<Change>,
    /// A committed change named no key (a `TRUNCATE`, a keyless `DELETE`):
    /// only flushing the whole cluster makes the cache safe again.
    pub flush_all: bool,
    /// The LSN to [`advance`](SlotSource::advance) to once `changes` are
    /// applied (the end of the batch's last commit).
    pub upto_lsn: String,
}

impl SlotSource {
    /// Connects to `url` and creates the logical replication slot `slot`
    /// with `test_decoding` if it does not exist (idempotent). Fails with a
    /// clear message if the server's `wal_level` is not `logical`, or if a
    /// slot of that name exists with another plugin or database.
    ///
    /// Creating the slot also queues a cluster flush in it (see "A new slot
    /// starts with a flush").
    pub async fn connect(url: &str, slot: &str) -> Result<SlotSource, OriginError> {
        Self::connect_with_decode_timeout(url, slot, STATEMENT_TIMEOUT).await
    }

    /// [`connect`](Self::connect) with the decode timeout starting at
    /// `decode_timeout` rather than [`STATEMENT_TIMEOUT`] (tests use a
    /// short one).
    pub async fn connect_with_decode_timeout(
        url: &str,
        slot: &str,
        decode_timeout: Duration,
    ) -> Result<SlotSource, OriginError> {
        check_slot_name(slot)?;
        let decode_timeout = decode_timeout.clamp(Duration::from_millis(1), MAX_DECODE_TIMEOUT);
        // Commit times are printed in the session's time zone. Its one
        // write, the flush message of a new slot, must be on disk when the
        // statement returns.
        let config = session_config(url, STATEMENT_TIMEOUT, "-c TimeZone=UTC -c synchronous_commit=local")?;
        let target = target_of(&config);
        let connect = tokio::time::timeout(OPERATION_TIMEOUT, config.connect(NoTls));
        let (client, connection) = match connect.await {
            Ok(Ok(pair)) => pair,
            Ok(Err(error)) => {
                return Err(OriginError::Postgres(format!(
                    "cannot connect to {target}: {}",
                    describe(&error)
                )));
            }
            Err(_) => {
                return Err(OriginError::Postgres(format!(
                    "cannot connect to {target}: no answer within {} s",
                    OPERATION_TIMEOUT.as_secs()
                )));
            }
        };
        let connection_target = target.clone();
        // The connection task ends when the client is dropped or the
        // server goes away; calls on the client fail after that.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(target = %connection_target, error = %describe(&error), "slot connection closed");
            }
        });
        let source = SlotSource {
            client,
            url: url.to_owned(),
            slot: slot.to_owned(),
            target,
            base_decode_timeout: decode_timeout,
            decode_timeout_ms: AtomicU64::new(millis(decode_timeout)),
            session_timeout_ms: AtomicU64::new(millis(STATEMENT_TIMEOUT)),
        };
        source.check_wal_level().await?;
        source.ensure_slot().await?;
        Ok(source)
    }

    /// The URL it connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The slot's name.
    pub fn slot(&self) -> &str {
        &self.slot
    }

    /// Reads the committed transactions the slot holds past its confirmed
    /// position, without consuming them: at least `max_changes` rows of
    /// decoder output when there are that many, but always whole
    /// transactions (so a big transaction can exceed it). `None` when there
    /// is nothing to read.
    ///
    /// Runs with the decode timeout, which doubles each time the server
    /// cancels a peek for taking too long (see "A transaction too large to
    /// decode in time").
    pub async fn peek(&self, max_changes: i32) -> Result<Option<SlotBatch>, OriginError> {
        let rows = self
            .decoding("peek", async {
                let rows = self
                    .client
                    .query(
                        "SELECT lsn::text, textsend(data)
                         FROM pg_logical_slot_peek_changes($1, NULL, $2,
                              'include-timestamp', 'on', 'skip-empty-xacts', 'off')",
                        &[&self.slot, &max_changes.max(1)],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        let lsn: String = row.try_get(0)?;
                        let data: Vec<u8> = row.try_get(1)?;
                        Ok((lsn, String::from_utf8_lossy(&data).into_owned()))
                    })
                    .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            })
            .await?;
        decode_rows(&rows).map_err(|why| OriginError::Postgres(format!("slot {} on {}: {why}", self.slot, self.target)))
    }

    /// Moves the slot's confirmed position to `upto_lsn` (a batch's
    /// [`SlotBatch::upto_lsn`]), so the next peek starts after it. Moving
    /// to a position the slot is already past does nothing.
    pub async fn advance(&self, upto_lsn: &str) -> Result<(), OriginError> {
        let lsn = parse_lsn(upto_lsn)
            .ok_or_else(|| OriginError::Postgres(format!("advance slot {}: bad LSN {upto_lsn:?}", self.slot)))?;
        let lsn = format_lsn(lsn);
        // Advancing a logical slot reads the WAL it skips (without
        // decoding rows), which past a huge transaction takes time too.
        let moved = self
            .decoding("advance", async {
                // The server refuses to move a slot backwards; a batch
                // delivered twice must not turn into an error.
                self.client
                    .query(
                        "SELECT pg_replication_slot_advance(slot_name, $2::text::pg_lsn)::text
                         FROM pg_replication_slots
                         WHERE slot_name = $1 AND confirmed_flush_lsn < $2::text::pg_lsn",
                        &[&self.slot, &lsn],
                    )
                    .await
            })
            .await?;
        // Past the batch: the timeout decays towards the usual one, halving
        // per batch rather than dropping at once, since the next peeks may
        // have to read the same big transaction again (they start at the
        // slot's restart point, which can lag behind).
        let halved = (self.decode_timeout() / 2).max(self.base_decode_timeout);
        self.decode_timeout_ms.store(millis(halved), Ordering::Relaxed);
        if moved.is_empty() {
            self.bounded("advance", self.slot_row()).await?;
        }
        Ok(())
    }

    /// The decode timeout the next peek or advance runs with.
    pub fn decode_timeout(&self) -> Duration {
        Duration::from_millis(self.decode_timeout_ms.load(Ordering::Relaxed))
    }

    /// Runs a peek or an advance under the decode timeout: sets the
    /// session's `statement_timeout` to it if it differs, bounds the call
    /// on the client side a little longer, and doubles it when the server
    /// cancelled the statement for running too long.
    async fn decoding<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, OriginError> {
        let timeout_ms = self.decode_timeout_ms.load(Ordering::Relaxed);
        let timeout = Duration::from_millis(timeout_ms);
        let client_bound = timeout.saturating_add(CLIENT_MARGIN);
        let outcome = tokio::time::timeout(client_bound, async {
            if self.session_timeout_ms.load(Ordering::Relaxed) != timeout_ms {
                self.client
                    .query(
                        "SELECT set_config('statement_timeout', $1, false)",
                        &[&timeout_ms.to_string()],
                    )
                    .await
                    .map_err(|e| self.failed(&format!("{what}: set statement_timeout"), &e))?;
                self.session_timeout_ms.store(timeout_ms, Ordering::Relaxed);
            }
            call.await.map_err(|error| {
                if error.code() == Some(&SqlState::QUERY_CANCELED) {
                    let grown = timeout.saturating_mul(2).min(MAX_DECODE_TIMEOUT);
                    self.decode_timeout_ms.store(millis(grown), Ordering::Relaxed);
                    tracing::warn!(
                        slot = %self.slot, target = %self.target, timeout = ?timeout, next = ?grown,
                        "{what} of the replication slot was cancelled after its timeout (a large \
                         transaction?); retrying with a longer one"
                    );
                }
                self.failed(what, &error)
            })
        })
        .await;
        outcome.unwrap_or_else(|_| {
            Err(OriginError::Postgres(format!(
                "{what} (slot {}) on {}: no answer within {} s",
                self.slot,
                self.target,
                client_bound.as_secs()
            )))
        })
    }

    /// How far the slot is behind: `pg_current_wal_lsn()` minus its
    /// `confirmed_flush_lsn`, in bytes of WAL (all of the server's WAL,
    /// not only `items`).
    pub async fn lag_bytes(&self) -> Result<i64, OriginError> {
        self.bounded("lag", async {
            let row = self
                .client
                .query_opt(
                    "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint
                     FROM pg_replication_slots WHERE slot_name = $1",
                    &[&self.slot],
                )
                .await
                .map_err(|e| self.failed("lag", &e))?
                .ok_or_else(|| self.missing())?;
            let lag: Option<i64> = row.try_get(0).map_err(|e| self.failed("lag", &e))?;
            Ok(lag.unwrap_or(0).max(0))
        })
        .await
    }

    /// Whether the slot still exists and still has its WAL: `false` when it
    /// was dropped, or invalidated by `max_slot_wal_keep_size` (its
    /// `wal_status` is `lost`) — changes were then missed.
    pub async fn is_intact(&self) -> Result<bool, OriginError> {
        self.bounded("slot status", async {
            let row = self
                .client
                .query_opt(
                    "SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1",
                    &[&self.slot],
                )
                .await
                .map_err(|e| self.failed("slot status", &e))?;
            Ok(match row {
                Some(row) => {
                    row.try_get::<_, String>(0)
                        .map_err(|e| self.failed("slot status", &e))?
                        != "lost"
                }
                None => false,
            })
        })
        .await
    }

    /// Whether the connection is gone (the server restarted or went away).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Drops the slot (the server then frees the WAL it kept).
    pub async fn drop_slot(&self) -> Result<(), OriginError> {
        self.bounded("drop slot", async {
            self.client
                .execute("SELECT pg_drop_replication_slot($1)", &[&self.slot])
                .await
                .map_err(|e| self.failed("drop slot", &e))?;
            Ok(())
        })
        .await
    }

    async fn check_wal_level(&self) -> Result<(), OriginError> {
        let wal_level = self
            .bounded("SHOW wal_level", async {
                let rows = self
                    .client
                    .simple_query("SHOW wal_level")
                    .await
                    .map_err(|e| self.failed("SHOW wal_level", &e))?;
                Ok(rows.iter().find_map(|message| match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                    _ => None,
                }))
            })
            .await?
            .unwrap_or_default();
        if wal_level == "logical" {
            return Ok(());
        }
        Err(OriginError::Postgres(format!(
            "{} has wal_level = {wal_level}: the invalidator reads a logical replication slot, \
             which needs wal_level = logical (set it in postgresql.conf, or ALTER SYSTEM SET \
             wal_level = logical, and restart the server)",
            self.target
        )))
    }

    /// Creates the slot unless it exists; checks an existing one fits.
    async fn ensure_slot(&self) -> Result<(), OriginError> {
        self.bounded("create slot", async {
            if let Some(existing) = self.slot_row_opt().await? {
                return self.check_existing(&existing);
            }
            // The slot, then a flush message behind its starting point, in
            // one statement: the CTE is scanned, so the slot exists, before
            // the message is written (module docs: "A new slot starts with
            // a flush").
            let created = self
                .client
                .execute(
                    "WITH created AS (SELECT pg_create_logical_replication_slot($1, $2))
                     SELECT pg_logical_emit_message(true, $3, 'slot created') FROM created",
                    &[&self.slot, &PLUGIN, &FLUSH_PREFIX],
                )
                .await;
            match created {
                Ok(_) => {
                    tracing::info!(
                        slot = %self.slot, target = %self.target,
                        "created logical replication slot; the cluster will be flushed once, as it \
                         cannot know what changed before the slot existed"
                    );
                    Ok(())
                }
                // Created by another process a moment ago.
                Err(error) if error.code().is_some_and(|code| code.code() == "42710") => {
                    let existing = self.slot_row().await?;
                    self.check_existing(&existing)
                }
                Err(error) => Err(self.failed("create logical replication slot", &error)),
            }
        })
        .await
    }

    fn check_existing(&self, existing: &SlotRow) -> Result<(), OriginError> {
        if existing.slot_type != "logical" || existing.plugin != PLUGIN {
            return Err(OriginError::Postgres(format!(
                "slot {} on {} exists as a {} slot with plugin {:?}, not a logical slot with {PLUGIN}; \
                 drop it or choose another slot name",
                self.slot, self.target, existing.slot_type, existing.plugin
            )));
        }
        if !existing.same_database {
            return Err(OriginError::Postgres(format!(
                "slot {} on {} belongs to database {:?}, not the one in the URL",
                self.slot, self.target, existing.database
            )));
        }
        Ok(())
    }

    async fn slot_row_opt(&self) -> Result<Option<SlotRow>, OriginError> {
        let row = self
            .client
            .query_opt(
                "SELECT slot_type, coalesce(plugin::text, ''), coalesce(database::text, ''),
                        coalesce(database = current_database(), false)
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.slot],
            )
            .await
            .map_err(|e| self.failed("look up slot", &e))?;
        row.map(|row| {
            let get = |e| self.failed("look up slot", &e);
            Ok(SlotRow {
                slot_type: row.try_get(0).map_err(get)?,
                plugin: row.try_get(1).map_err(get)?,
                database: row.try_get(2).map_err(get)?,
                same_database: row.try_get(3).map_err(get)?,
            })
        })
        .transpose()
    }

    async fn slot_row(&self) -> Result<SlotRow, OriginError> {
        self.slot_row_opt().await?.ok_or_else(|| self.missing())
    }

    fn missing(&self) -> OriginError {
        OriginError::Postgres(format!(
            "slot {} on {} does not exist (dropped?)",
            self.slot, self.target
        ))
    }

    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, OriginError>>,
    ) -> Result<T, OriginError> {
        match tokio::time::timeout(OPERATION_TIMEOUT, call).await {
            Ok(result) => result,
            Err(_) => Err(OriginError::Postgres(format!(
                "{what} (slot {}) on {}: no answer within {} s",
                self.slot,
                self.target,
                OPERATION_TIMEOUT.as_secs()
            ))),
        }
    }

    fn failed(&self, what: &str, error: &tokio_postgres::Error) -> OriginError {
        OriginError::Postgres(format!(
            "{what} (slot {}) on {}: {}",
            self.slot,
            self.target,
            describe(error)
        ))
    }
}

/// A row of `pg_replication_slots`.
struct SlotRow {
    slot_type: String,
    plugin: String,
    database: String,
    same_database: bool,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Slot names are 1 to 63 of `a-z`, `0-9`, `_` (the server's rule, checked
/// here for a clearer message).
fn check_slot_name(slot: &str) -> Result<(), OriginError> {
    let valid = !slot.is_empty()
        && slot.len() <= 63
        && slot
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(OriginError::Postgres(format!(
            "bad replication slot name {slot:?}: use 1 to 63 of a-z, 0-9 and _"
        )))
    }
}

/// Turns peeked `(lsn, data)` rows into a batch of whole transactions.
/// Rows after the last `COMMIT` (an incomplete transaction, which the
/// server does not send) are left for the next peek. `Err` names a line
/// about `items` that did not parse.
pub(crate) fn decode_rows(rows: &[(String, String)]) -> Result<Option<SlotBatch>, String> {
    let mut changes = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut in_transaction = false;
    let mut pending_flush = false;
    let mut flush_all = false;
    let mut upto: Option<u64> = None;
    for (lsn_text, data) in rows {
        let lsn = parse_lsn(lsn_text).ok_or_else(|| format!("bad LSN {lsn_text:?} from the server"))?;
        match parse_line(data) {
            Line::Begin => {
                pending.clear();
                pending_flush = false;
                in_transaction = true;
            }
            Line::Commit { committed_at_ms } => {
                changes.extend(pending.drain(..).map(|key| Change {
                    key: key.into_bytes(),
                    committed_at_ms,
                }));
                flush_all |= std::mem::take(&mut pending_flush);
                in_transaction = false;
                upto = upto.max(Some(lsn));
            }
            Line::Keys { keys, transactional } => {
                if in_transaction && transactional {
                    for key in keys {
                        if !pending.contains(&key) {
                            pending.push(key);
                        }
                    }
                } else {
                    changes.extend(keys.into_iter().map(|key| Change {
                        key: key.into_bytes(),
                        committed_at_ms: None,
                    }));
                    if !in_transaction {
                        upto = upto.max(Some(lsn));
                    }
                }
            }
            Line::Unkeyed(why) => {
                tracing::warn!(lsn = %lsn_text, "{why}: names no key; the cluster will be flushed");
                if in_transaction {
                    pending_flush = true;
                } else {
                    flush_all = true;
                }
            }
            Line::Flush { transactional } => {
                tracing::info!(lsn = %lsn_text, "a strata.flush message: the cluster will be flushed");
                if in_transaction && transactional {
                    pending_flush = true;
                } else {
                    flush_all = true;
                    if !in_transaction {
                        upto = upto.max(Some(lsn));
                    }
                }
            }
            Line::Other => {}
            Line::Malformed(why) => {
                return Err(format!(
                    "cannot parse test_decoding output at LSN {lsn_text} ({why}): {data:?}"
                ));
            }
        }
    }
    Ok(upto.map(|upto| SlotBatch {
        changes,
        flush_all,
        upto_lsn: format_lsn(upto),
    }))
}

/// `X/Y` (two hex halves) as one number.
pub(crate) fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let high = u32::from_str_radix(high, 16).ok()?;
    let low = u32::from_str_radix(low, 16).ok()?;
    Some((u64::from(high) << 32) | u64::from(low))
}

/// The server's spelling of an LSN (`16/B374D848`).
pub(crate) fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_round_trip() {
        assert_eq!(parse_lsn("0/15271E8"), Some(0x15271E8));
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("nope"), None);
    }

    fn rows(lines: &[(&str, &str)]) -> Vec<(String, String)> {
        lines.iter().map(|(l, d)| ((*l).to_owned(), (*d).to_owned())).collect()
    }

    #[test]
    fn batches_hold_whole_transactions_in_commit_order() {
        let peeked = rows(&[
            ("0/10", "BEGIN 725"),
            ("0/10", "table public.items: INSERT: id[text]:'a' value[text]:'x'"),
            ("0/20", "COMMIT 725 (at 1970-01-01 00:00:01+00)"),
            ("0/20", "BEGIN 726"),
            ("0/20", "table public.items: UPDATE: id[text]:'b' value[text]:'y'"),
            (
                "0/28",
                "message: transactional: 1 prefix: strata.invalidate, sz: 13 content:item:x\nitem:b",
            ),
            ("0/30", "table public.orders: INSERT: id[integer]:7"),
            ("0/38", "COMMIT 726 (at 1970-01-01 00:00:02+00)"),
            (
                "0/40",
                "message: transactional: 0 prefix: strata.invalidate, sz: 6 content:item:n",
            ),
            ("0/40", "BEGIN 727"),
            ("0/40", "table public.items: DELETE: id[text]:'cut'"),
        ]);
        let batch = decode_rows(&peeked).unwrap().unwrap();
        let got: Vec<(&str, Option<i64>)> = batch
            .changes
            .iter()
            .map(|c| (std::str::from_utf8(&c.key).unwrap(), c.committed_at_ms))
            .collect();
        assert_eq!(
            got,
            [
                ("item:a", Some(1000)),
                ("item:b", Some(2000)),
                ("item:x", Some(2000)),
                ("item:n", None),
            ]
        );
        // After the non-transactional message, before the cut transaction.
        assert_eq!(batch.upto_lsn, "0/40");
        assert_eq!(decode_rows(&[]).unwrap(), None);
        assert!(
            decode_rows(&rows(&[
                ("0/1", "BEGIN"),
                ("0/1", "table public.items: INSERT: id[text]:'x")
            ]))
            .is_err()
        );
    }

    #[test]
    fn a_flush_message_is_a_batch_of_its_own_or_joins_one() {
        // Alone in the slot (the message a new slot starts with): a batch,
        // so that the slot moves past it once the flush is done.
        let alone = rows(&[(
            "0/10",
            "message: transactional: 0 prefix: strata.flush, sz: 12 content:slot created",
        )]);
        let batch = decode_rows(&alone).unwrap().unwrap();
        assert!(batch.flush_all && batch.changes.is_empty());
        assert_eq!(batch.upto_lsn, "0/10");
        let inside = rows(&[
            ("0/10", "BEGIN 900"),
            ("0/18", "message: transactional: 1 prefix: strata.flush, sz: 0 content:"),
            ("0/20", "COMMIT 900 (at 1970-01-01 00:00:01+00)"),
        ]);
        assert!(decode_rows(&inside).unwrap().unwrap().flush_all);
        let cut = rows(&[
            ("0/10", "BEGIN 901"),
            ("0/18", "message: transactional: 1 prefix: strata.flush, sz: 0 content:"),
        ]);
        assert_eq!(decode_rows(&cut).unwrap(), None);
    }

    #[test]
    fn a_committed_truncate_asks_for_a_flush_and_an_aborted_one_cannot_appear() {
        let truncated = rows(&[
            ("0/10", "BEGIN 800"),
            ("0/18", "table public.items: TRUNCATE: (no-flags)"),
            ("0/20", "COMMIT 800 (at 1970-01-01 00:00:01+00)"),
        ]);
        let batch = decode_rows(&truncated).unwrap().unwrap();
        assert!(batch.flush_all && batch.changes.is_empty());
        let plain = rows(&[
            ("0/10", "BEGIN 801"),
            ("0/18", "table public.items: INSERT: id[text]:'a' value[text]:'x'"),
            ("0/20", "COMMIT 801 (at 1970-01-01 00:00:01+00)"),
        ]);
        assert!(!decode_rows(&plain).unwrap().unwrap().flush_all);
        // A transaction cut at the end of the peek is not in the batch.
        let cut = rows(&[
            ("0/10", "BEGIN 802"),
            ("0/18", "table public.items: TRUNCATE: (no-flags)"),
        ]);
        assert_eq!(decode_rows(&cut).unwrap(), None);
    }
}
