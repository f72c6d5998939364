//! The SQLite origin. (Being written.)

use super::{Applied, OriginError, Row, Write};

/// A SQLite origin (a connection pool).
#[derive(Debug)]
pub struct SqliteOrigin {}

impl SqliteOrigin {
    /// Connects to `url` and creates the table if missing.
    pub async fn open(url: &str) -> Result<Self, OriginError> {
        Err(OriginError::Task(format!("not yet built: {url}")))
    }
    /// The row `id`.
    pub async fn get(&self, _id: &str) -> Result<Option<Row>, OriginError> {
        Err(OriginError::Task("not yet built".into()))
    }
    /// Applies `writes` in one transaction.
    pub async fn apply(&self, _writes: &[Write]) -> Result<Vec<Applied>, OriginError> {
        Err(OriginError::Task("not yet built".into()))
    }
    /// Checks the server answers.
    pub async fn ping(&self) -> Result<(), OriginError> {
        Err(OriginError::Task("not yet built".into()))
    }
    /// Every row by id.
    pub async fn scan(&self) -> Result<Vec<Row>, OriginError> {
        Err(OriginError::Task("not yet built".into()))
    }
}
