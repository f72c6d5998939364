//! Injected time.
//!
//! Every expiry decision in the engine reads a [`Clock`] instead of the
//! system time, so tests move time forward instead of sleeping. Times are
//! milliseconds since the Unix epoch, because protocols speak absolute Unix
//! times (Redis `PXAT`, memcached's absolute exptime) and relative ones alike.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    /// A clock stopped at `now_ms`.
    pub fn new(now_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            now_ms: AtomicU64::new(now_ms),
        })
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves time forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the time (may move backwards, as a wall clock can).
    pub fn set_ms(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// The current time, read from the clock at most once and only if asked:
/// most operations touch no item with a TTL and need no time at all.
#[derive(Debug)]
pub(crate) struct Now<'a> {
    clock: &'a dyn Clock,
    /// 0 until read.
    ms: std::cell::Cell<u64>,
}

impl<'a> Now<'a> {
    pub(crate) fn new(clock: &'a dyn Clock) -> Self {
        Self {
            clock,
            ms: std::cell::Cell::new(0),
        }
    }

    /// Now, in ms since the Unix epoch (at least 1).
    pub(crate) fn get(&self) -> u64 {
        match self.ms.get() {
            0 => {
                let now = self.clock.now_ms().max(1);
                self.ms.set(now);
                now
            }
            now => now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_secs(2));
        clock.advance_ms(5);
        assert_eq!(clock.now_ms(), 3_005);
        assert!(SystemClock.now_ms() > 1_600_000_000_000);
    }
}
