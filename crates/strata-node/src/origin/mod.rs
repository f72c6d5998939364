//! The origin: the database the cache stands in front of.
//!
//! One table, the same on both engines:
//!
//! ```sql
//! items(id TEXT PRIMARY KEY, value TEXT NOT NULL,
//!       version BIGINT NOT NULL,      -- 1 on insert, +1 on every write
//!       updated_at <timestamp>)
//! ```
//!
//! [`Origin`] is an enum rather than a trait object: there are exactly two
//! engines, and async methods stay plain `async fn`s.
//!
//! Every write goes through [`Origin::apply`], a list of writes applied in
//! order in one transaction, so write-behind's batched flush and the single
//! writes of the other strategies share one code path.

pub mod postgres;
pub mod sqlite;

pub use postgres::PostgresOrigin;
pub use sqlite::SqliteOrigin;

/// One row of the origin table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// The primary key.
    pub id: String,
    /// The stored value.
    pub value: String,
    /// 1 when the row is inserted, incremented by every write.
    pub version: i64,
    /// When the row was last written, in milliseconds since the Unix epoch.
    pub updated_at_ms: i64,
}

/// One write to the origin.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Write {
    /// Insert the row or replace its value (and bump its version).
    Put {
        /// The row's id.
        id: String,
        /// The new value.
        value: String,
    },
    /// Remove the row.
    Delete {
        /// The row's id.
        id: String,
    },
}

impl Write {
    /// A put of `value` into row `id`.
    pub fn put(id: impl Into<String>, value: impl Into<String>) -> Write {
        Write::Put {
            id: id.into(),
            value: value.into(),
        }
    }

    /// A delete of row `id`.
    pub fn delete(id: impl Into<String>) -> Write {
        Write::Delete { id: id.into() }
    }

    /// The id of the row written.
    pub fn id(&self) -> &str {
        match self {
            Write::Put { id, .. } | Write::Delete { id } => id,
        }
    }
}

/// What one write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The row as it is now.
    Put(Row),
    /// The row was removed (`existed`: whether there was one).
    Deleted {
        /// The row's id.
        id: String,
        /// Whether a row was there to remove.
        existed: bool,
    },
}

/// Why the origin could not answer.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// The origin's address is not one this node understands.
    #[error("bad origin address {0:?}: expected a SQLite file path (or sqlite:PATH) or a postgres:// URL")]
    BadAddress(String),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (including: could not connect).
    #[error("postgres: {0}")]
    Postgres(String),
    /// A blocking database task panicked or was cancelled.
    #[error("origin task failed: {0}")]
    Task(String),
}

/// The origin database.
#[derive(Debug)]
pub enum Origin {
    /// An embedded SQLite file.
    Sqlite(SqliteOrigin),
    /// A PostgreSQL server.
    Postgres(PostgresOrigin),
}

impl Origin {
    /// Opens the origin at `address` and creates its table if missing:
    /// `postgres://…` or `postgresql://…` is PostgreSQL; `sqlite:PATH` or
    /// a plain path is a SQLite file (created if absent).
    pub async fn open(address: &str) -> Result<Origin, OriginError> {
        if address.starts_with("postgres://") || address.starts_with("postgresql://") {
            Ok(Origin::Postgres(PostgresOrigin::connect(address).await?))
        } else {
            let path = address.strip_prefix("sqlite:").unwrap_or(address);
            if path.is_empty() {
                return Err(OriginError::BadAddress(address.to_owned()));
            }
            Ok(Origin::Sqlite(SqliteOrigin::open(path).await?))
        }
    }

    /// The row `id`, if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<Row>, OriginError> {
        match self {
            Origin::Sqlite(origin) => origin.get(id).await,
            Origin::Postgres(origin) => origin.get(id).await,
        }
    }

    /// Applies `writes` in order in one transaction: all or none.
    pub async fn apply(&self, writes: &[Write]) -> Result<Vec<Applied>, OriginError> {
        match self {
            Origin::Sqlite(origin) => origin.apply(writes).await,
            Origin::Postgres(origin) => origin.apply(writes).await,
        }
    }

    /// Inserts or replaces row `id`; returns it with its new version.
    pub async fn put(&self, id: &str, value: &str) -> Result<Row, OriginError> {
        let write = Write::Put {
            id: id.to_owned(),
            value: value.to_owned(),
        };
        match self.apply(std::slice::from_ref(&write)).await?.pop() {
            Some(Applied::Put(row)) => Ok(row),
            other => Err(OriginError::Task(format!("put answered {other:?}"))),
        }
    }

    /// Removes row `id`; whether there was one.
    pub async fn delete(&self, id: &str) -> Result<bool, OriginError> {
        let write = Write::Delete { id: id.to_owned() };
        match self.apply(std::slice::from_ref(&write)).await?.pop() {
            Some(Applied::Deleted { existed, .. }) => Ok(existed),
            other => Err(OriginError::Task(format!("delete answered {other:?}"))),
        }
    }

    /// Checks that the origin answers.
    pub async fn ping(&self) -> Result<(), OriginError> {
        match self {
            Origin::Sqlite(origin) => origin.ping().await,
            Origin::Postgres(origin) => origin.ping().await,
        }
    }

    /// Every row, ordered by id (for the consistency checker's final
    /// comparison; not for serving).
    pub async fn scan(&self) -> Result<Vec<Row>, OriginError> {
        match self {
            Origin::Sqlite(origin) => origin.scan().await,
            Origin::Postgres(origin) => origin.scan().await,
        }
    }

    /// A short name for logs and metrics: `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self {
            Origin::Sqlite(_) => "sqlite",
            Origin::Postgres(_) => "postgres",
        }
    }
}
