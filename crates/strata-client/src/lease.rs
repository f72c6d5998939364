//! `get_or_fill`: read a key, and on a miss let exactly one caller — across
//! every process sharing the cluster — load it, using the meta protocol's
//! leases (the memcache paper's design in memcached 1.6's standard form).
//!
//! 1. `mg <key> v c t N<lease>`: a hit returns the value. On a miss the
//!    server creates an empty placeholder and answers `W` (won) to exactly
//!    one caller per lease period; later callers see `Z` (someone is
//!    filling). An item marked stale (`md <key> I`, an invalidation) answers
//!    its old value with `X`, and `W` to one caller.
//! 2. The winner calls the loader and fills with `ms … C<cas>`: the CAS is
//!    the placeholder's, so if the key was written or deleted meanwhile
//!    (the delete that follows a database write voids the lease) the fill
//!    is refused and the possibly-old value loaded never lands.
//! 3. A loser takes the stale value if there is one and that is allowed;
//!    otherwise it waits in short steps for the winner's fill, and past
//!    `max_wait` loads for itself without caching.
//!
//! A loader error reaches the caller as [`ClientError::Loader`], boxed but
//! not flattened to text (the caller may `downcast` it back); the winner's placeholder is deleted
//! so that the next caller may try at once instead of waiting out the
//! lease.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::meta::{self, SetMode};
use crate::ops::first;
use crate::route::Role;
use crate::server_pool::Batch;
use crate::{Client, ClientError, Stats};

/// CAS values at or above this are origin versions set by
/// [`Client::set_versioned`] and versioned fills (`E<VERSION_CAS_BASE +
/// version>`); the server's own CAS counter never gets near it, so a lease
/// placeholder's CAS can never be mistaken for a version (or equal one).
pub const VERSION_CAS_BASE: u64 = 1 << 62;

/// What a loader found for [`Client::get_or_fill_versioned`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fill {
    /// The bytes to cache and return.
    pub value: Vec<u8>,
    /// The origin's version of the value: the fill then stores it as the
    /// item's CAS, so a later [`Client::set_versioned`] can tell older from
    /// newer.
    pub version: u64,
}

impl Client {
    /// The value of `key`; on a miss, `loader`'s, stored with `ttl`, with
    /// at most one loader running per key across every client sharing the
    /// cluster (per lease period).
    pub async fn get_or_fill<F, Fut, E>(
        &self,
        key: &[u8],
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<Vec<u8>, ClientError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let found = self
            .lease_read(key, ttl, || async { loader().await.map(|value| Some((value, None))) })
            .await?;
        Ok(found.unwrap_or_default())
    }

    /// [`Self::get_or_fill`] for values that carry an origin version, and
    /// that may be absent: the loader answers `None` for a row that does
    /// not exist (nothing is cached; the lease is given back). A fill
    /// stores the version as the item's CAS (see [`VERSION_CAS_BASE`]).
    pub async fn get_or_fill_versioned<F, Fut, E>(
        &self,
        key: &[u8],
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<Option<Vec<u8>>, ClientError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Fill>, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.lease_read(key, ttl, || async {
            loader()
                .await
                .map(|found| found.map(|fill| (fill.value, Some(VERSION_CAS_BASE.saturating_add(fill.version)))))
        })
        .await
    }

    async fn lease_read<F, Fut, E>(
        &self,
        key: &[u8],
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<Option<Vec<u8>>, ClientError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<(Vec<u8>, Option<u64>)>, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        meta::check_key(key)?;
        let inner = &self.inner;
        let settings = inner.config.read().lease;
        let lease_secs = meta::ttl_secs(settings.lease_ttl);
        let deadline = Instant::now() + settings.max_wait;
        let mut loader = Some(loader);
        loop {
            Stats::bump(&inner.stats.gets);
            let route = inner.route(key)?;
            let build = |_: Role| {
                let mut batch = Batch::default();
                meta::lease_get(&mut batch, key, lease_secs);
                batch
            };
            let hit = match inner.exec_routed(key, route, build(Role::Owner), build).await {
                Ok((replies, route)) => meta::read_get(first(replies)?)?.map(|hit| (hit, route)),
                Err(ClientError::Unavailable(why)) => {
                    // No cache to coordinate through: load, uncached.
                    tracing::debug!(%why, "cache unavailable; loading without a lease");
                    return Ok(self.load(loader.take(), key).await?.map(|(value, _)| value));
                }
                Err(error) => return Err(error),
            };
            let Some((hit, route)) = hit else {
                // A server without leases (or a miss without `W`): plain
                // cache-aside, never overwriting what another wrote since.
                let Some((value, version)) = self.load(loader.take(), key).await? else {
                    return Ok(None);
                };
                let mode = version.map_or(SetMode::Add, SetMode::AddAs);
                let _ = inner.set(key, &value, 0, ttl, mode).await;
                return Ok(Some(value));
            };
            if hit.won {
                Stats::bump(&inner.stats.lease_wins);
                let found = match self.load(loader.take(), key).await {
                    Ok(found) => found,
                    Err(error) => {
                        let _ = inner.delete(key).await;
                        return Err(error);
                    }
                };
                let Some((value, version)) = found else {
                    // Nothing to cache: give the lease back so the next
                    // reader need not wait it out.
                    let _ = inner.delete(key).await;
                    return Ok(None);
                };
                let cas = hit.cas.unwrap_or(0);
                let mode = match version {
                    Some(new_cas) => SetMode::CasAs { cas, new_cas },
                    None => SetMode::Cas(cas),
                };
                let ttl = inner.effective_ttl(route.role, ttl);
                let mut batch = Batch::default();
                meta::set(&mut batch, key, &value, 0, ttl, mode);
                let _ = inner.call(&route.node, batch).await;
                if route.role == Role::Standby {
                    inner.note_diverted(&route.owner, key).await;
                }
                return Ok(Some(value));
            }
            if !hit.lease_taken && !hit.stale {
                Stats::bump(&inner.stats.hits);
                return Ok(Some(hit.value));
            }
            if hit.stale && settings.serve_stale {
                Stats::bump(&inner.stats.stale_served);
                return Ok(Some(hit.value));
            }
            if Instant::now() >= deadline {
                tracing::debug!("lease holder did not fill in time; loading without caching");
                return Ok(self.load(loader.take(), key).await?.map(|(value, _)| value));
            }
            Stats::bump(&inner.stats.lease_waits);
            tokio::time::sleep(settings.wait_step).await;
        }
    }

    /// Replaces the cached copy of `key` with origin version `version`,
    /// unless the cache holds that version or a newer one: the
    /// write-through set, which concurrent writers may send in any order
    /// and a slow reader's fill cannot undo. A compare-and-swap loop on
    /// the item's CAS, which holds [`VERSION_CAS_BASE`] + version for
    /// versioned items. Standard meta commands only, so it works against
    /// memcached 1.6 too.
    ///
    /// It never *creates* the key. Deletes carry no version (the cache-aside
    /// delete, the invalidator's), so a set that created the key could land
    /// after a newer version's delete and bring an older version back; a
    /// replace cannot, since whatever is cached after that delete was
    /// filled from the origin at a newer version. An item without a
    /// version — a lease placeholder, or a value stored by something else —
    /// is deleted instead, which voids the lease: its holder may have read
    /// the origin before this write.
    pub async fn set_versioned(
        &self,
        key: &[u8],
        value: &[u8],
        version: u64,
        ttl: Option<Duration>,
    ) -> Result<Versioned, ClientError> {
        meta::check_key(key)?;
        let inner = &self.inner;
        let new_cas = VERSION_CAS_BASE.saturating_add(version);
        for _ in 0..VERSIONED_SET_TRIES {
            let route = inner.route(key)?;
            let build = |_: Role| {
                let mut batch = Batch::default();
                meta::get_cas(&mut batch, key);
                batch
            };
            let (replies, _) = inner.exec_routed(key, route, build(Role::Owner), build).await?;
            let cas = match meta::read_get(first(replies)?)? {
                None => return Ok(Versioned::NotCached),
                Some(hit) => match hit.cas {
                    Some(cas) if cas >= new_cas => return Ok(Versioned::NewerCached),
                    Some(cas) if cas >= VERSION_CAS_BASE => cas,
                    Some(_) => {
                        inner.delete(key).await?;
                        return Ok(Versioned::Deleted);
                    }
                    None => return Err(ClientError::Server("mg c answered without a CAS".into())),
                },
            };
            if inner.set(key, value, 0, ttl, SetMode::CasAs { cas, new_cas }).await? {
                return Ok(Versioned::Stored);
            }
            // Another writer (or a fill) got in between: look again.
        }
        // Contended beyond reason: make sure no older version survives.
        inner.delete(key).await?;
        Ok(Versioned::Deleted)
    }
    async fn load<F, Fut, E, T>(&self, loader: Option<F>, key: &[u8]) -> Result<T, ClientError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some(loader) = loader else {
            unreachable!("the loader runs at most once: every path that calls it returns")
        };
        Stats::bump(&self.inner.stats.loads);
        loader().await.map_err(|error| {
            let error = error.into();
            tracing::debug!(key = %String::from_utf8_lossy(key), %error, "loader failed");
            ClientError::Loader(error)
        })
    }
}

/// Rounds of look-then-swap before [`Client::set_versioned`] gives up and
/// deletes instead.
const VERSIONED_SET_TRIES: usize = 8;

/// What [`Client::set_versioned`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versioned {
    /// The cached copy was replaced by this version.
    Stored,
    /// The key was not cached; nothing was stored (its next read fills it).
    NotCached,
    /// The cache already held this version or a newer one; left alone.
    NewerCached,
    /// The cached item had no version (a lease placeholder, or another
    /// program's value), or the swap was too contended: the key was
    /// deleted instead (the next read refills it).
    Deleted,
}
