//! Keeping a returning node from serving stale values.
//!
//! While a node is down its keys' writes and deletes go elsewhere (the
//! gutter pool, or the next node on the ring). If the node was only cut
//! off, not restarted, it still holds the old values of those keys; were it
//! put straight back into service it would serve them. So for each down
//! node the client remembers which keys it changed elsewhere, and before
//! the node is used again the probe deletes each of them on it. If more
//! keys changed than the log holds, the probe flushes the node instead:
//! correctness first, the node refills from the database.
//!
//! Each client keeps its own log, so each client cleans up after its own
//! writes; a client that never saw the node down never diverted a write.
//! And the values written elsewhere carry a short TTL (the gutter TTL), so
//! none of them outlives the outage by long.

use std::collections::HashSet;

/// The invalidations a down node missed.
#[derive(Debug)]
pub struct MissedWrites {
    keys: HashSet<Vec<u8>>,
    limit: usize,
    overflowed: bool,
}

/// What the probe must do before the node serves again.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay {
    /// Delete these keys on it.
    Delete(Vec<Vec<u8>>),
    /// Too many to list: flush it.
    Flush,
}

impl MissedWrites {
    /// A log of at most `limit` keys.
    pub fn new(limit: usize) -> Self {
        MissedWrites {
            keys: HashSet::new(),
            limit,
            overflowed: false,
        }
    }

    /// `key` was written or deleted elsewhere while the node was down.
    pub fn record(&mut self, key: &[u8]) {
        if self.overflowed || self.keys.contains(key) {
            return;
        }
        if self.keys.len() >= self.limit {
            self.overflowed = true;
            self.keys = HashSet::new();
            return;
        }
        self.keys.insert(key.to_vec());
    }

    /// `key` no longer needs replaying (it was deleted on the node).
    /// Records that the node missed a flush: it is flushed when it returns.
    pub fn record_flush(&mut self) {
        self.overflowed = true;
        self.keys.clear();
    }

    /// Forgets `key` (a later write reached the node).
    pub fn forget(&mut self, key: &[u8]) {
        self.keys.remove(key);
    }

    /// Whether the node still owes `key`'s change (it is logged, or the
    /// log overflowed and the node will be flushed).
    pub fn owes(&self, key: &[u8]) -> bool {
        self.overflowed || self.keys.contains(key)
    }

    /// Whether anything was missed.
    pub fn is_empty(&self) -> bool {
        !self.overflowed && self.keys.is_empty()
    }

    /// Takes what must be replayed, leaving the log empty.
    pub fn take(&mut self) -> Replay {
        if std::mem::take(&mut self.overflowed) {
            self.keys.clear();
            Replay::Flush
        } else {
            Replay::Delete(std::mem::take(&mut self.keys).into_iter().collect())
        }
    }

    /// Puts back what could not be replayed.
    pub fn restore(&mut self, replay: Replay) {
        match replay {
            Replay::Flush => self.overflowed = true,
            Replay::Delete(keys) => {
                for key in keys {
                    self.record(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_until_the_limit_then_a_flush_is_owed() {
        let mut log = MissedWrites::new(2);
        assert!(log.is_empty());
        log.record(b"a");
        log.record(b"a");
        log.record(b"b");
        let Replay::Delete(mut keys) = log.take() else {
            panic!("a short log lists its keys")
        };
        keys.sort();
        assert_eq!(keys, [b"a".to_vec(), b"b".to_vec()]);
        assert!(log.is_empty());
        for key in [b"a", b"b", b"c"] {
            log.record(key);
        }
        assert_eq!(log.take(), Replay::Flush);
        log.restore(Replay::Flush);
        assert_eq!(log.take(), Replay::Flush, "a failed replay is owed again");
        assert!(log.is_empty());
    }
}
