//! The request-node cache: a typed, in-process cache on the strata engine.
//!
//! ```
//! use std::time::Duration;
//! use strata_store::local::LocalCache;
//!
//! let cache: LocalCache<u64, String> = LocalCache::builder()
//!     .max_capacity(10_000)
//!     .time_to_live(Duration::from_secs(30))
//!     .build();
//! cache.insert(&1, &"one".to_string()).unwrap();
//! assert_eq!(cache.get(&1).as_deref(), Some("one"));
//!
//! // Concurrent misses on one key run the loader once.
//! let v = cache.get_or_load(&2, || Ok::<_, std::io::Error>("two".to_string())).unwrap();
//! assert_eq!(v, "two");
//! ```
//!
//! Keys and values go through [`CacheKey`] / [`CacheValue`] into the byte
//! engine ([`crate::Store`]), which brings its hard limit (in bytes or
//! entries), TTLs, every eviction policy and its statistics. On top of it,
//! [`LocalCache::get_or_load`] (blocking) and
//! [`LocalCache::get_or_load_async`] (any async runtime) coalesce concurrent
//! misses on one key into one load; see `flight.rs` for the protocol.
//!
//! # Layout
//!
//! - `codec.rs`: typed keys and values ⇄ bytes.
//! - `flight.rs`: the single-flight registry.

mod codec;
mod flight;

use std::borrow::Borrow;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use codec::{CacheKey, CacheValue};
use flight::{Flights, Role};

use crate::clock::Clock;
use crate::error::StoreError;
use crate::policy::PolicyKind;
use crate::store::{Capacity, Expiry, SetOptions, Store, StoreBuilder};

/// Builds a [`LocalCache`].
#[derive(Debug)]
pub struct LocalCacheBuilder<K, V> {
    capacity: Capacity,
    time_to_live: Option<Duration>,
    policy: PolicyKind,
    clock: Option<Arc<dyn Clock>>,
    shards: Option<usize>,
    max_item_bytes: Option<u64>,
    _types: PhantomData<fn(K, V)>,
}

impl<K, V> LocalCacheBuilder<K, V> {
    /// At most `entries` items, whatever their size (the default is 10,000).
    pub fn max_capacity(mut self, entries: u64) -> Self {
        self.capacity = Capacity::Entries(entries);
        self
    }

    /// At most `bytes` of keys, values and per-item overhead.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.capacity = Capacity::Bytes(bytes);
        self
    }

    /// Default time to live of every entry (none by default).
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.time_to_live = Some(ttl);
        self
    }

    /// The eviction policy ([`PolicyKind::DEFAULT`] by default).
    pub fn policy(mut self, policy: PolicyKind) -> Self {
        self.policy = policy;
        self
    }

    /// The clock TTLs read (the system clock by default); tests inject a
    /// [`crate::ManualClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Number of shards (see [`StoreBuilder::shards`]).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Largest encoded entry accepted (1 MiB by default).
    pub fn max_item_bytes(mut self, bytes: u64) -> Self {
        self.max_item_bytes = Some(bytes);
        self
    }

    /// Builds the cache.
    pub fn build(self) -> LocalCache<K, V> {
        let mut builder: StoreBuilder = Store::builder(self.capacity).policy(self.policy);
        if let Some(clock) = self.clock {
            builder = builder.clock(clock);
        }
        if let Some(shards) = self.shards {
            builder = builder.shards(shards);
        }
        if let Some(bytes) = self.max_item_bytes {
            builder = builder.max_item_bytes(bytes);
        }
        LocalCache {
            store: builder.build(),
            time_to_live: self.time_to_live,
            flights: Flights::default(),
            loads: AtomicU64::new(0),
            load_errors: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            _types: PhantomData,
        }
    }
}

/// Counters of a [`LocalCache`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads that found a live entry.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Loader runs.
    pub loads: u64,
    /// Loader runs that failed.
    pub load_errors: u64,
    /// Callers served by another caller's load.
    pub coalesced: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
    /// Entries removed because their TTL passed.
    pub expirations: u64,
    /// Entries now.
    pub entries: u64,
    /// Capacity units in use (entries or bytes).
    pub weighted_size: u64,
}

impl CacheStats {
    /// Hits over reads (0 when nothing was read).
    pub fn hit_ratio(&self) -> f64 {
        let reads = self.hits + self.misses;
        if reads == 0 {
            0.0
        } else {
            self.hits as f64 / reads as f64
        }
    }
}

/// A typed, bounded, concurrent in-process cache with single-flight loading.
/// Cheap to share: wrap it in an `Arc`.
#[derive(Debug)]
pub struct LocalCache<K, V> {
    store: Store,
    time_to_live: Option<Duration>,
    flights: Flights,
    loads: AtomicU64,
    load_errors: AtomicU64,
    coalesced: AtomicU64,
    _types: PhantomData<fn(K, V)>,
}

impl<K, V> LocalCache<K, V> {
    /// Starts building a cache (10,000 entries, no TTL, default policy).
    pub fn builder() -> LocalCacheBuilder<K, V> {
        LocalCacheBuilder {
            capacity: Capacity::Entries(10_000),
            time_to_live: None,
            policy: PolicyKind::DEFAULT,
            clock: None,
            shards: None,
            max_item_bytes: None,
            _types: PhantomData,
        }
    }
}

/// Methods take keys by reference as any borrowed form `Q` of `K` (e.g.
/// `&str` for a `String` key) whose bytes are the same as `K`'s.
impl<K: CacheKey, V: CacheValue + Clone + Send + Sync + 'static> LocalCache<K, V> {
    /// The value for `key`, if cached and live.
    pub fn get<Q: CacheKey + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        key.with_bytes(|k| self.get_bytes(k))
    }

    fn get_bytes(&self, key: &[u8]) -> Option<V> {
        match self.store.get(key, |item| V::decode(item.value()))? {
            Some(value) => Some(value),
            None => {
                // Not a valid encoding of V: treat as absent.
                self.store.delete(key);
                None
            }
        }
    }

    fn peek_bytes(&self, key: &[u8]) -> Option<V> {
        self.store.peek(key, |item| V::decode(item.value())).flatten()
    }

    /// True if `key` is cached (does not count as an access).
    pub fn contains_key<Q: CacheKey + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        key.with_bytes(|k| self.store.contains(k))
    }

    fn options(&self, ttl: Option<Duration>) -> SetOptions {
        SetOptions {
            expiry: ttl.map_or(Expiry::Never, Expiry::after),
            ..SetOptions::default()
        }
    }

    /// Caches `value` under `key` with the default TTL. Fails only if the
    /// entry is larger than the cache allows.
    pub fn insert<Q: CacheKey + ?Sized>(&self, key: &Q, value: &V) -> Result<(), StoreError>
    where
        K: Borrow<Q>,
    {
        self.insert_with_ttl(key, value, self.time_to_live)
    }

    /// Caches `value` under `key` with its own TTL (`None`: never expires).
    pub fn insert_with_ttl<Q: CacheKey + ?Sized>(
        &self,
        key: &Q,
        value: &V,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError>
    where
        K: Borrow<Q>,
    {
        let options = self.options(ttl);
        key.with_bytes(|k| value.with_bytes(|v| self.store.set(k, v, options)))
            .map(|_| ())
    }

    /// Removes `key`; a load of it in progress will not be cached. Returns
    /// true if it was cached.
    pub fn invalidate<Q: CacheKey + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        key.with_bytes(|k| {
            self.flights.invalidate(k);
            self.store.delete(k)
        })
    }

    /// Removes every entry; loads in progress will not be cached.
    pub fn invalidate_all(&self) {
        self.flights.invalidate_all();
        self.store.flush();
    }

    /// Removes `key` and returns its value.
    pub fn remove<Q: CacheKey + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        key.with_bytes(|k| {
            self.flights.invalidate(k);
            self.store.take(k).and_then(|bytes| V::decode(&bytes))
        })
    }

    /// The cached value for `key`, or the result of `loader`, which runs at
    /// most once however many threads miss on `key` at the same time: the
    /// others block until it finishes and get a clone of its value. A loader
    /// error is returned (shared) to every waiter and nothing is cached. If
    /// the loader panics, one of the waiters runs its own loader instead.
    pub fn get_or_load<Q, E, F>(&self, key: &Q, loader: F) -> Result<V, Arc<E>>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
        E: Send + Sync + 'static,
        F: FnOnce() -> Result<V, E>,
    {
        key.with_bytes(|k| {
            let mut loader = Some(loader);
            loop {
                if let Some(value) = self.get_bytes(k) {
                    return Ok(value);
                }
                match self.flights.join::<V, E>(k) {
                    Role::Leader(guard) => {
                        // A previous leader may have cached the value and
                        // left between our miss and our joining.
                        if let Some(value) = self.peek_bytes(k) {
                            guard.finish(Ok(value.clone()));
                            return Ok(value);
                        }
                        let loader = loader.take().expect("a caller leads at most one flight");
                        return self.lead(k, guard, loader());
                    }
                    Role::Waiter(flight) => {
                        if let Some(result) = flight.wait() {
                            self.coalesced.fetch_add(1, Ordering::Relaxed);
                            return result;
                        }
                        // The leader gave up; start over.
                    }
                    Role::Alone => {
                        let loader = loader.take().expect("a caller loads at most once");
                        return self.load_alone(k, loader());
                    }
                }
            }
        })
    }

    /// The async form of [`Self::get_or_load`], for any runtime: waiters
    /// await the leader's result. If the leader's future is dropped before it
    /// completes, a waiter takes over with its own loader.
    pub async fn get_or_load_async<Q, E, F, Fut>(&self, key: &Q, loader: F) -> Result<V, Arc<E>>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let key: Vec<u8> = key.with_bytes(<[u8]>::to_vec);
        let mut loader = Some(loader);
        loop {
            if let Some(value) = self.get_bytes(&key) {
                return Ok(value);
            }
            match self.flights.join::<V, E>(&key) {
                Role::Leader(guard) => {
                    if let Some(value) = self.peek_bytes(&key) {
                        guard.finish(Ok(value.clone()));
                        return Ok(value);
                    }
                    let loader = loader.take().expect("a caller leads at most one flight");
                    let result = loader().await;
                    return self.lead(&key, guard, result);
                }
                Role::Waiter(flight) => {
                    if let Some(result) = flight.wait_async().await {
                        self.coalesced.fetch_add(1, Ordering::Relaxed);
                        return result;
                    }
                }
                Role::Alone => {
                    let loader = loader.take().expect("a caller loads at most once");
                    let result = loader().await;
                    return self.load_alone(&key, result);
                }
            }
        }
    }

    fn lead<E>(&self, key: &[u8], guard: flight::LeaderGuard<'_, V, E>, result: Result<V, E>) -> Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let result = result.map_err(Arc::new);
        match &result {
            Ok(value) if !guard.invalidated() => {
                // An entry too large to cache is still returned to everyone.
                let options = self.options(self.time_to_live);
                let _ = value.with_bytes(|v| self.store.set(key, v, options));
            }
            Ok(_) => {}
            Err(_) => {
                self.load_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        guard.finish(result.clone());
        result
    }

    fn load_alone<E>(&self, key: &[u8], result: Result<V, E>) -> Result<V, Arc<E>> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(value) => {
                let options = self.options(self.time_to_live);
                let _ = value.with_bytes(|v| self.store.set(key, v, options));
                Ok(value)
            }
            Err(err) => {
                self.load_errors.fetch_add(1, Ordering::Relaxed);
                Err(Arc::new(err))
            }
        }
    }

    /// Reclaims expired entries now (the cache also does a little of this
    /// on every write).
    pub fn run_pending_tasks(&self) {
        while self.store.run_pending_expiry(1024) > 0 {}
    }

    /// Number of entries (expired ones not yet reclaimed included).
    pub fn entry_count(&self) -> u64 {
        self.store.len() as u64
    }

    /// Capacity units in use.
    pub fn weighted_size(&self) -> u64 {
        self.store.used()
    }

    /// Counters.
    pub fn stats(&self) -> CacheStats {
        let s = self.store.stats();
        CacheStats {
            hits: s.hits,
            misses: s.misses,
            loads: self.loads.load(Ordering::Relaxed),
            load_errors: self.load_errors.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            evictions: s.evictions,
            expirations: s.expirations(),
            entries: s.items,
            weighted_size: s.used,
        }
    }

    /// The engine underneath, for its full statistics.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

#[cfg(test)]
mod tests;
