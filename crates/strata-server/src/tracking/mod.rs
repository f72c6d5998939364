//! Client-side caching: Redis's client tracking (`CLIENT TRACKING`), on
//! every write of either protocol.
//!
//! A RESP connection that turns tracking on is told, by a push, when a key
//! it may have cached changes, so a near cache can keep values until then.
//!
//! - **Default mode**: the server remembers which keys the client read
//!   (every read command of the keyspace, and `GETEX`/`LGET`, which return
//!   values) in a bounded table ([`table`]); a change of a key tells each of
//!   its readers once, then forgets them until they read it again.
//!   `OPTIN`/`OPTOUT` with `CLIENT CACHING` choose which reads count.
//! - **Broadcast** (`BCAST [PREFIX p …]`): no table; every change of a key
//!   with one of the client's prefixes (none: every key) is sent.
//! - `NOLOOP`: changes made by the client itself are not sent to it.
//! - `REDIRECT id`: messages go to another connection instead — a RESP3
//!   one as pushes, a RESP2 one in pub/sub mode as messages on
//!   `__redis__:invalidate`. When that connection closes, the tracking
//!   client is told (`tracking-redir-broken`, RESP3) at once and again at
//!   each message that cannot be delivered, as Redis does.
//!
//! A change is anything that can alter what a read returns: every RESP
//! write command and every memcached write (text and meta, including an
//! `mg` that vivifies a placeholder or touches a TTL, and a delayed
//! `flush_all` when it runs), reported by the command that made it through
//! `Shared::key_modified`, or `Shared::flushed` for a flush (one message
//! with no keys: drop everything). Items the engine removes on its own —
//! expiry and eviction — send nothing: the engine reports no removals, so a
//! near cache bounds each entry by its TTL itself.
//!
//! **Ordering.** A read is recorded *before* it reads the engine, and a
//! write looks for readers *after* it wrote the engine; the table's lock
//! orders the two, so either the reader sees the new value or the writer
//! sees the reader. A push produced during a connection's own batch is
//! written after that batch's replies (`conn.rs`), so an invalidation never
//! overtakes the reply carrying the value it invalidates.
//!
//! **Cost when unused.** A write with no tracking client anywhere costs one
//! relaxed atomic load (`on`); a connection that never turned tracking on
//! pays one branch per command.

pub(crate) mod table;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;

use crate::push::{Clients, Push};
use table::KeyTable;

/// The writer id of a change no RESP client made (memcached, background).
pub(crate) const NO_CLIENT: u64 = 0;

/// The options of `CLIENT TRACKING ON`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) bcast: bool,
    pub(crate) optin: bool,
    pub(crate) optout: bool,
    pub(crate) noloop: bool,
    /// The client id messages go to; 0: the tracking connection itself.
    pub(crate) redirect: u64,
}

/// A tracking client as `CLIENT TRACKINGINFO` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrackerInfo {
    pub(crate) options: Options,
    pub(crate) prefixes: Vec<Bytes>,
    /// Its redirect target has closed.
    pub(crate) broken: bool,
}

#[derive(Debug, Default)]
struct Registry {
    trackers: HashMap<u64, TrackerInfo>,
    /// (prefix, client) for every broadcasting client: what a write scans.
    prefixes: Vec<(Bytes, u64)>,
}

/// Every connection's tracking state, and the default-mode key table.
#[derive(Debug)]
pub(crate) struct Tracking {
    /// Clients with tracking on, in any mode: zero means a write has
    /// nothing to do.
    on: AtomicUsize,
    /// Of which in default mode (the key table is consulted) …
    default_mode: AtomicUsize,
    /// … and broadcasting (the prefixes are scanned).
    bcast_mode: AtomicUsize,
    registry: RwLock<Registry>,
    table: KeyTable,
}

impl Tracking {
    /// No client tracking, a table of at most `max_keys` keys.
    pub(crate) fn new(max_keys: usize) -> Self {
        Self {
            on: AtomicUsize::new(0),
            default_mode: AtomicUsize::new(0),
            bcast_mode: AtomicUsize::new(0),
            registry: RwLock::new(Registry::default()),
            table: KeyTable::new(max_keys),
        }
    }

    /// Clients with tracking on (INFO's `tracking_clients`).
    pub(crate) fn clients(&self) -> usize {
        self.on.load(Ordering::Relaxed)
    }

    /// Keys in the table (`tracking_total_keys`).
    pub(crate) fn total_keys(&self) -> usize {
        self.table.len()
    }

    /// (key, client) pairs in the table (`tracking_total_items`).
    pub(crate) fn total_items(&self) -> usize {
        self.table.items()
    }

    /// Distinct broadcast prefixes (`tracking_total_prefixes`).
    pub(crate) fn total_prefixes(&self) -> usize {
        let registry = self.registry.read();
        let mut prefixes: Vec<&Bytes> = registry.prefixes.iter().map(|(prefix, _)| prefix).collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        prefixes.len()
    }

    /// The table's bound (`tracking-table-max-keys`).
    pub(crate) fn max_keys(&self) -> usize {
        self.table.max_keys()
    }

    /// Changes the table's bound.
    pub(crate) fn set_max_keys(&self, max_keys: usize) {
        self.table.set_max_keys(max_keys);
    }

    /// Client `id`'s tracking state, if tracking is on for it.
    pub(crate) fn info(&self, id: u64) -> Option<TrackerInfo> {
        self.registry.read().trackers.get(&id).cloned()
    }

    /// Turns tracking on (or changes its options) for client `id`; the
    /// caller has checked the options as Redis does. Broadcast prefixes add
    /// to those the client has; broadcasting with none means every key.
    pub(crate) fn enable(&self, id: u64, options: Options, prefixes: Vec<Bytes>) {
        let mut registry = self.registry.write();
        let previous = registry.trackers.get(&id).map(|t| t.options);
        let tracker = registry.trackers.entry(id).or_default();
        tracker.options = options;
        tracker.broken = false;
        let mut added = Vec::new();
        if options.bcast {
            let wanted = if prefixes.is_empty() {
                vec![Bytes::new()]
            } else {
                prefixes
            };
            for prefix in wanted {
                if !tracker.prefixes.contains(&prefix) {
                    tracker.prefixes.push(prefix.clone());
                    added.push((prefix, id));
                }
            }
        }
        registry.prefixes.extend(added);
        // Counts change under the registry lock (see `disable`).
        match previous {
            None => {
                self.on.fetch_add(1, Ordering::Relaxed);
                if options.bcast {
                    self.bcast_mode.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.default_mode.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Redis refuses switching modes while on, so the counts stand.
            Some(previous) => debug_assert_eq!(previous.bcast, options.bcast),
        }
    }

    /// Turns tracking off for client `id`. True if it was on.
    pub(crate) fn disable(&self, id: u64) -> bool {
        let mut registry = self.registry.write();
        let Some(tracker) = registry.trackers.remove(&id) else {
            return false;
        };
        if tracker.options.bcast {
            registry.prefixes.retain(|&(_, client)| client != id);
            self.bcast_mode.fetch_sub(1, Ordering::Relaxed);
        } else if self.default_mode.fetch_sub(1, Ordering::Relaxed) == 1 {
            // The last reader the table served is gone: drop what it
            // remembered. Under the registry lock, so a client turning
            // tracking on now cannot record a key that this then wipes.
            self.table.clear();
        }
        self.on.fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Client `id` closed: tracking off, and the clients that redirect to
    /// it told so.
    pub(crate) fn client_gone(&self, clients: &Clients, id: u64) {
        if self.on.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.disable(id);
        let mut orphans = Vec::new();
        for (&tracker_id, tracker) in self.registry.write().trackers.iter_mut() {
            if tracker.options.redirect == id && !tracker.broken {
                tracker.broken = true;
                orphans.push(tracker_id);
            }
        }
        for tracker_id in orphans {
            clients.send(tracker_id, Push::RedirectBroken(id));
        }
    }

    /// Remembers that default-mode client `id` reads `key` (call before
    /// reading it). A full table evicts a key, whose readers are told.
    pub(crate) fn record_read(&self, clients: &Clients, id: u64, key: &[u8]) {
        for (key, readers) in self.table.record(key, id) {
            let key = Bytes::copy_from_slice(&key);
            let registry = self.registry.read();
            let mut broken = Vec::new();
            for reader in readers {
                if let Some(tracker) = registry.trackers.get(&reader).filter(|t| !t.options.bcast) {
                    deliver(
                        clients,
                        reader,
                        tracker,
                        NO_CLIENT,
                        Push::Invalidate(key.clone()),
                        &mut broken,
                    );
                }
            }
            drop(registry);
            self.mark_broken(clients, broken);
        }
    }

    /// `key` changed, by client `writer` ([`NO_CLIENT`] for memcached and
    /// background work): tell whoever tracks it. Call after the change.
    #[inline]
    pub(crate) fn key_modified(&self, clients: &Clients, key: &[u8], writer: u64) {
        if self.on.load(Ordering::Relaxed) != 0 {
            self.tell_trackers(clients, key, writer);
        }
    }

    fn tell_trackers(&self, clients: &Clients, key: &[u8], writer: u64) {
        let readers = if self.default_mode.load(Ordering::Relaxed) != 0 {
            self.table.take(key)
        } else {
            None
        };
        let broadcast = self.bcast_mode.load(Ordering::Relaxed) != 0;
        if readers.is_none() && !broadcast {
            return;
        }
        let mut shared_key = None;
        let mut key_push = || Push::Invalidate(shared_key.get_or_insert_with(|| Bytes::copy_from_slice(key)).clone());
        let mut broken = Vec::new();
        let registry = self.registry.read();
        for reader in readers.into_iter().flatten() {
            if let Some(tracker) = registry.trackers.get(&reader).filter(|t| !t.options.bcast) {
                deliver(clients, reader, tracker, writer, key_push(), &mut broken);
            }
        }
        if broadcast {
            // Overlapping prefixes are refused, but `BCAST` without any
            // adds the empty one beside a client's others, as in Redis:
            // tell each client once.
            let mut told: Vec<u64> = Vec::new();
            for (prefix, id) in &registry.prefixes {
                if key.starts_with(prefix) && !told.contains(id) {
                    told.push(*id);
                    if let Some(tracker) = registry.trackers.get(id) {
                        deliver(clients, *id, tracker, writer, key_push(), &mut broken);
                    }
                }
            }
        }
        drop(registry);
        self.mark_broken(clients, broken);
    }

    /// The whole keyspace was flushed: every tracking client is told to drop
    /// everything (Redis sends this even to the flushing client, NOLOOP or
    /// not), and the table starts over.
    pub(crate) fn flushed(&self, clients: &Clients) {
        if self.on.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.table.clear();
        let mut broken = Vec::new();
        let registry = self.registry.read();
        for (&id, tracker) in &registry.trackers {
            deliver(clients, id, tracker, NO_CLIENT, Push::InvalidateAll, &mut broken);
        }
        drop(registry);
        self.mark_broken(clients, broken);
    }

    /// Flags trackers whose redirect target is gone.
    fn mark_broken(&self, clients: &Clients, broken: Vec<(u64, u64)>) {
        if broken.is_empty() {
            return;
        }
        let mut registry = self.registry.write();
        for (id, target) in broken {
            if let Some(tracker) = registry.trackers.get_mut(&id)
                && tracker.options.redirect == target
            {
                tracker.broken = true;
                clients.send(id, Push::RedirectBroken(target));
            }
        }
    }
}

/// Sends `push` for tracking client `id` to wherever its messages go.
/// Notes in `broken` a redirect target that no longer exists.
fn deliver(clients: &Clients, id: u64, tracker: &TrackerInfo, writer: u64, push: Push, broken: &mut Vec<(u64, u64)>) {
    let options = &tracker.options;
    if options.noloop && id == writer && push != Push::InvalidateAll {
        return;
    }
    if options.redirect == 0 {
        clients.send(id, push);
    } else if !clients.send(options.redirect, push) && !clients.exists(options.redirect) {
        broken.push((id, options.redirect));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(inbox: &mut crate::push::Inbox) -> Vec<Push> {
        std::iter::from_fn(|| inbox.try_recv()).collect()
    }

    fn key(text: &str) -> Push {
        Push::Invalidate(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[tokio::test]
    async fn default_mode_tells_each_reader_once_and_noloop_spares_the_writer() {
        let clients = Clients::default();
        let tracking = Tracking::new(100);
        let (mut a, mut b) = (clients.register(1, 1 << 20), clients.register(2, 1 << 20));
        tracking.enable(1, Options::default(), Vec::new());
        tracking.enable(
            2,
            Options {
                noloop: true,
                ..Options::default()
            },
            Vec::new(),
        );
        tracking.record_read(&clients, 1, b"k");
        tracking.record_read(&clients, 2, b"k");
        tracking.key_modified(&clients, b"k", 2);
        assert_eq!(drain(&mut a), vec![key("k")]);
        assert_eq!(drain(&mut b), vec![], "NOLOOP: its own write");
        tracking.key_modified(&clients, b"k", NO_CLIENT);
        assert_eq!(drain(&mut a), vec![], "forgotten after one message");
        assert_eq!((tracking.clients(), tracking.total_keys()), (2, 0));
        assert!(tracking.disable(1) && tracking.disable(2));
        assert!(!tracking.disable(2));
        assert_eq!(tracking.clients(), 0);
    }

    #[tokio::test]
    async fn broadcast_matches_prefixes_and_flush_reaches_everyone() {
        let clients = Clients::default();
        let tracking = Tracking::new(100);
        let (mut a, mut b) = (clients.register(1, 1 << 20), clients.register(2, 1 << 20));
        let bcast = Options {
            bcast: true,
            ..Options::default()
        };
        tracking.enable(
            1,
            bcast,
            vec![Bytes::from_static(b"user:"), Bytes::from_static(b"job:")],
        );
        tracking.enable(2, bcast, Vec::new());
        assert_eq!(tracking.total_prefixes(), 3);
        tracking.key_modified(&clients, b"user:1", NO_CLIENT);
        tracking.key_modified(&clients, b"other", NO_CLIENT);
        assert_eq!(drain(&mut a), vec![key("user:1")]);
        assert_eq!(drain(&mut b), vec![key("user:1"), key("other")]);
        tracking.flushed(&clients);
        assert_eq!(drain(&mut a), vec![Push::InvalidateAll]);
        assert_eq!(drain(&mut b), vec![Push::InvalidateAll]);
        let info = tracking.info(1).unwrap();
        assert_eq!(info.prefixes.len(), 2);
    }

    #[tokio::test]
    async fn a_closed_redirect_target_is_reported() {
        let clients = Clients::default();
        let tracking = Tracking::new(100);
        let mut tracker = clients.register(1, 1 << 20);
        let mut target = clients.register(2, 1 << 20);
        let options = Options {
            redirect: 2,
            ..Options::default()
        };
        tracking.enable(1, options, Vec::new());
        tracking.record_read(&clients, 1, b"k");
        tracking.key_modified(&clients, b"k", NO_CLIENT);
        assert_eq!(drain(&mut target), vec![key("k")]);
        assert_eq!(drain(&mut tracker), vec![]);
        clients.remove(2);
        tracking.client_gone(&clients, 2);
        assert_eq!(drain(&mut tracker), vec![Push::RedirectBroken(2)]);
        assert!(tracking.info(1).unwrap().broken);
        tracking.record_read(&clients, 1, b"k");
        tracking.key_modified(&clients, b"k", NO_CLIENT);
        assert_eq!(
            drain(&mut tracker),
            vec![Push::RedirectBroken(2)],
            "again, as Redis does"
        );
    }

    #[tokio::test]
    async fn a_table_overflow_invalidates_the_evicted_key() {
        let clients = Clients::default();
        let tracking = Tracking::new(1);
        let mut inbox = clients.register(1, 1 << 20);
        tracking.enable(1, Options::default(), Vec::new());
        tracking.record_read(&clients, 1, b"a");
        tracking.record_read(&clients, 1, b"b");
        assert_eq!(drain(&mut inbox), vec![key("a")]);
        assert_eq!(tracking.total_keys(), 1);
    }
}
