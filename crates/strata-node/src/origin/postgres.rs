//! The PostgreSQL origin. (Being written.)

use super::{Applied, OriginError, Row, Write};

/// A PostgreSQL origin (a connection pool).
#[derive(Debug)]
pub struct PostgresOrigin {}

impl PostgresOrigin {
    /// Connects to `url` and creates the table if missing.
    pub async fn connect(url: &str) -> Result<Self, OriginError> {
        Err(OriginError::Postgres(format!("not yet built: {url}")))
    }
    /// The row `id`.
    pub async fn get(&self, _id: &str) -> Result<Option<Row>, OriginError> {
        Err(OriginError::Postgres("not yet built".into()))
    }
    /// Applies `writes` in one transaction.
    pub async fn apply(&self, _writes: &[Write]) -> Result<Vec<Applied>, OriginError> {
        Err(OriginError::Postgres("not yet built".into()))
    }
    /// Checks the server answers.
    pub async fn ping(&self) -> Result<(), OriginError> {
        Err(OriginError::Postgres("not yet built".into()))
    }
    /// Every row by id.
    pub async fn scan(&self) -> Result<Vec<Row>, OriginError> {
        Err(OriginError::Postgres("not yet built".into()))
    }
}
