//! The PostgreSQL origin: a pool of connections (deadpool-postgres) over
//! the `items` table.
//!
//! ```sql
//! items(id TEXT PRIMARY KEY, value TEXT NOT NULL, version BIGINT NOT NULL,
//!       updated_at TIMESTAMPTZ NOT NULL DEFAULT now())
//! ```
//!
//! A put is one `INSERT … ON CONFLICT DO UPDATE` that bumps the version in
//! the same statement, so concurrent writers of one row serialise on its
//! row lock and every write gets its own version. [`PostgresOrigin::apply`]
//! runs a list of writes in one transaction.
//!
//! # Bounded waits
//!
//! A dead or hung database gives an error, never a hang: connecting is
//! bounded by [`CONNECT_TIMEOUT`] (unless the URL sets `connect_timeout`),
//! every statement by the server-side `statement_timeout`
//! ([`STATEMENT_TIMEOUT`]), and every whole operation (waiting for a pooled
//! connection, connecting, the statements) by [`OPERATION_TIMEOUT`] on the
//! client side, which also covers a server that stops answering without
//! closing the socket.
//!
//! # Durable commits
//!
//! A write the node has answered (`200`, or write-behind's flusher about to
//! let its journal forget a batch) must survive a crash of the database
//! server. PostgreSQL's commit is durable unless `synchronous_commit` is
//! `off`, which a server, database or role default (`ALTER ROLE … SET`), or
//! the URL's `options`, can set; then a server crash can lose the last
//! commits after the client was told they succeeded. So every pooled
//! connection, when it is opened, raises `off` to `local` (wait for the
//! local WAL flush, not for standbys: the least that is durable) and leaves
//! any other value — `local`, `on`, `remote_write`, `remote_apply` — as the
//! operator chose it. Nothing in strata lowers it afterwards
//! ([`PostgresOrigin::synchronous_commit`] reports it). The server's own
//! `fsync = off` cannot be overridden from a session; that is the
//! operator's promise to keep.
//!
//! The helpers at the bottom (URL parsing with those settings, error
//! descriptions) are shared with the invalidator's replication-slot source.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::{Applied, OriginError, Row, Write};

/// Connections in the pool.
pub const POOL_SIZE: usize = 8;

/// How long opening one connection may take (when the URL does not say).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The server-side `statement_timeout` of the origin's sessions.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The client-side bound on one whole operation.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now())";

/// Run on every new pooled connection: commits are durable even if a
/// default or the URL turned `synchronous_commit` off (see "Durable
/// commits").
const DURABLE_COMMITS: &str = "SELECT set_config('synchronous_commit', 'local', false)
     WHERE current_setting('synchronous_commit') = 'off'";

/// `updated_at` as whole milliseconds since the Unix epoch.
const UPDATED_AT_MS: &str = "floor(extract(epoch FROM updated_at) * 1000)::bigint";

/// A PostgreSQL origin (a connection pool).
pub struct PostgresOrigin {
    pool: Pool,
    /// `host:port` for error messages.
    target: String,
}

impl fmt::Debug for PostgresOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresOrigin")
            .field("target", &self.target)
            .field("connections", &status.size)
            .field("idle", &status.available)
            .finish()
    }
}

impl PostgresOrigin {
    /// Connects to `url` (`postgres://user@host:port/db`) and creates the
    /// table if missing. Fails if the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, OriginError> {
        let config = session_config(url, STATEMENT_TIMEOUT, "")?;
        let target = target_of(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(OPERATION_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(STATEMENT_TIMEOUT))
            .post_create(deadpool_postgres::Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .simple_query(DURABLE_COMMITS)
                        .await
                        .map(drop)
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|error| OriginError::Postgres(format!("connection pool for {target}: {error}")))?;
        let origin = PostgresOrigin { pool, target };
        origin.create_table().await?;
        Ok(origin)
    }

    /// The row `id`, if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<Row>, OriginError> {
        self.bounded("get", async {
            let client = self.client().await?;
            let sql = format!("SELECT id, value, version, {UPDATED_AT_MS} FROM items WHERE id = $1");
            let statement = client.prepare_cached(&sql).await.map_err(|e| self.failed("get", &e))?;
            let row = client
                .query_opt(&statement, &[&id])
                .await
                .map_err(|e| self.failed("get", &e))?;
            row.map(|row| self.row_of(&row)).transpose()
        })
        .await
    }

    /// Applies `writes` in order in one transaction: all or none.
    pub async fn apply(&self, writes: &[Write]) -> Result<Vec<Applied>, OriginError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        self.bounded("apply", async {
            let mut client = self.client().await?;
            let transaction = client
                .transaction()
                .await
                .map_err(|e| self.failed("apply: begin", &e))?;
            let put = transaction
                .prepare_cached(&format!(
                    "INSERT INTO items (id, value, version, updated_at) VALUES ($1, $2, 1, now())
                     ON CONFLICT (id) DO UPDATE
                     SET value = EXCLUDED.value, version = items.version + 1, updated_at = now()
                     RETURNING version, {UPDATED_AT_MS}"
                ))
                .await
                .map_err(|e| self.failed("apply: prepare put", &e))?;
            let delete = transaction
                .prepare_cached("DELETE FROM items WHERE id = $1 RETURNING id")
                .await
                .map_err(|e| self.failed("apply: prepare delete", &e))?;
            let mut applied = Vec::with_capacity(writes.len());
            // On any error the transaction is dropped unfinished, which
            // rolls it back: none of the writes stays.
            for (index, write) in writes.iter().enumerate() {
                let what = || format!("apply: write {} of {} ({write:?})", index + 1, writes.len());
                match write {
                    Write::Put { id, value } => {
                        let row = transaction
                            .query_one(&put, &[id, value])
                            .await
                            .map_err(|e| self.failed(&what(), &e))?;
                        applied.push(Applied::Put(Row {
                            id: id.clone(),
                            value: value.clone(),
                            version: row.try_get(0).map_err(|e| self.failed(&what(), &e))?,
                            updated_at_ms: row.try_get(1).map_err(|e| self.failed(&what(), &e))?,
                        }));
                    }
                    Write::Delete { id } => {
                        let gone = transaction
                            .query_opt(&delete, &[id])
                            .await
                            .map_err(|e| self.failed(&what(), &e))?;
                        applied.push(Applied::Deleted {
                            id: id.clone(),
                            existed: gone.is_some(),
                        });
                    }
                }
            }
            transaction
                .commit()
                .await
                .map_err(|e| self.failed("apply: commit", &e))?;
            Ok(applied)
        })
        .await
    }

    /// The `synchronous_commit` the origin's connections commit with
    /// (never `off`: see "Durable commits" in the module docs).
    pub async fn synchronous_commit(&self) -> Result<String, OriginError> {
        self.bounded("SHOW synchronous_commit", async {
            let client = self.client().await?;
            let row = client
                .query_one("SELECT current_setting('synchronous_commit')", &[])
                .await
                .map_err(|e| self.failed("SHOW synchronous_commit", &e))?;
            row.try_get(0).map_err(|e| self.failed("SHOW synchronous_commit", &e))
        })
        .await
    }

    /// Checks that the server answers (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), OriginError> {
        self.bounded("ping", async {
            let client = self.client().await?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| self.failed("ping", &e))?;
            Ok(())
        })
        .await
    }

    /// Every row, ordered by id byte-wise (`COLLATE "C"`, as SQLite
    /// orders), whatever the database's collation.
    pub async fn scan(&self) -> Result<Vec<Row>, OriginError> {
        self.bounded("scan", async {
            let client = self.client().await?;
            let sql = format!("SELECT id, value, version, {UPDATED_AT_MS} FROM items ORDER BY id COLLATE \"C\"");
            let rows = client.query(&sql, &[]).await.map_err(|e| self.failed("scan", &e))?;
            rows.iter().map(|row| self.row_of(row)).collect()
        })
        .await
    }

    async fn create_table(&self) -> Result<(), OriginError> {
        self.bounded("create table", async {
            let client = self.client().await?;
            match client.batch_execute(CREATE_TABLE).await {
                Ok(()) => Ok(()),
                // Two nodes creating the table at once: one of them loses
                // the race on the catalog (unique_violation on pg_type, or
                // duplicate_table) even with IF NOT EXISTS. The table is
                // there then.
                Err(error)
                    if error
                        .code()
                        .is_some_and(|code| matches!(code.code(), "23505" | "42P07")) =>
                {
                    Ok(())
                }
                Err(error) => Err(self.failed("create table items", &error)),
            }
        })
        .await
    }

    /// A pooled connection; a failure to open one says where it tried.
    async fn client(&self) -> Result<deadpool_postgres::Client, OriginError> {
        self.pool.get().await.map_err(|error| {
            let why = match error {
                PoolError::Backend(error) => describe(&error),
                PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => format!(
                    "all {POOL_SIZE} pooled connections stayed busy for {} s",
                    OPERATION_TIMEOUT.as_secs()
                ),
                PoolError::Timeout(deadpool_postgres::TimeoutType::Create) => {
                    format!("no connection within {} s", CONNECT_TIMEOUT.as_secs())
                }
                other => other.to_string(),
            };
            OriginError::Postgres(format!("cannot connect to {}: {why}", self.target))
        })
    }

    /// Runs `operation`, failing it after [`OPERATION_TIMEOUT`].
    async fn bounded<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, OriginError>>,
    ) -> Result<T, OriginError> {
        match tokio::time::timeout(OPERATION_TIMEOUT, operation).await {
            Ok(result) => result,
            Err(_) => Err(OriginError::Postgres(format!(
                "{what} on {}: no answer within {} s",
                self.target,
                OPERATION_TIMEOUT.as_secs()
            ))),
        }
    }

    fn failed(&self, what: &str, error: &tokio_postgres::Error) -> OriginError {
        OriginError::Postgres(format!("{what} on {}: {}", self.target, describe(error)))
    }

    fn row_of(&self, row: &tokio_postgres::Row) -> Result<Row, OriginError> {
        let column = |error: tokio_postgres::Error| self.failed("read row", &error);
        Ok(Row {
            id: row.try_get(0).map_err(column)?,
            value: row.try_get(1).map_err(column)?,
            version: row.try_get(2).map_err(column)?,
            updated_at_ms: row.try_get(3).map_err(column)?,
        })
    }
}

/// Parses `url` and adds the bounds every strata session has: a connect
/// timeout (unless the URL sets one), `statement_timeout` and
/// `extra_options` (`-c name=value …`) after any `options` the URL gives,
/// TCP keepalives, and an application name.
pub(crate) fn session_config(
    url: &str,
    statement_timeout: Duration,
    extra_options: &str,
) -> Result<tokio_postgres::Config, OriginError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|error| OriginError::Postgres(format!("bad URL {url:?}: {}", describe(&error))))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let mut options = config.get_options().unwrap_or_default().to_owned();
    options.push_str(&format!(
        " -c statement_timeout={} {extra_options}",
        statement_timeout.as_millis()
    ));
    config.options(options.trim());
    if config.get_application_name().is_none() {
        config.application_name("strata-node");
    }
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3);
    Ok(config)
}

/// `host:port` of the first host in `config`, for error messages.
pub(crate) fn target_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// A one-line description of a tokio-postgres error with its causes: the
/// server's severity, SQLSTATE, message, detail and hint for a database
/// error; the chain of sources otherwise (tokio-postgres's own `Display`
/// says only "db error" or "error connecting to server").
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
