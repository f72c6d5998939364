//! A private PostgreSQL for tests. (Being written.)
