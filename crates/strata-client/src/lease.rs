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
//! A loader error reaches the caller; the winner's placeholder is deleted
//! so that the next caller may try at once instead of waiting out the
//! lease.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::meta::{self, SetMode};
use crate::node::Batch;
use crate::ops::first;
use crate::route::Role;
use crate::{Client, ClientError, Stats};

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
        E: std::fmt::Display,
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
                    return self.load(loader.take(), key).await;
                }
                Err(error) => return Err(error),
            };
            let Some((hit, route)) = hit else {
                // A server without leases (or a miss without `W`): plain
                // cache-aside.
                let value = self.load(loader.take(), key).await?;
                let _ = inner.set(key, &value, 0, ttl, SetMode::Add).await;
                return Ok(value);
            };
            if hit.won {
                Stats::bump(&inner.stats.lease_wins);
                let value = match self.load(loader.take(), key).await {
                    Ok(value) => value,
                    Err(error) => {
                        let _ = inner.delete(key).await;
                        return Err(error);
                    }
                };
                let cas = hit.cas.unwrap_or(0);
                let ttl = inner.effective_ttl(route.role, ttl);
                let mut batch = Batch::default();
                meta::set(&mut batch, key, &value, 0, ttl, SetMode::Cas(cas));
                let _ = inner.call(&route.node, batch).await;
                if route.role == Role::Standby {
                    inner.note_diverted(&route.owner, key).await;
                }
                return Ok(value);
            }
            if !hit.lease_taken && !hit.stale {
                Stats::bump(&inner.stats.hits);
                return Ok(hit.value);
            }
            if hit.stale && settings.serve_stale {
                Stats::bump(&inner.stats.stale_served);
                return Ok(hit.value);
            }
            if Instant::now() >= deadline {
                tracing::debug!("lease holder did not fill in time; loading without caching");
                return self.load(loader.take(), key).await;
            }
            Stats::bump(&inner.stats.lease_waits);
            tokio::time::sleep(settings.wait_step).await;
        }
    }

    async fn load<F, Fut, E>(&self, loader: Option<F>, key: &[u8]) -> Result<Vec<u8>, ClientError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
        E: std::fmt::Display,
    {
        let Some(loader) = loader else {
            unreachable!("the loader runs at most once: every path that calls it returns")
        };
        Stats::bump(&self.inner.stats.loads);
        loader().await.map_err(|error| {
            tracing::debug!(key = %String::from_utf8_lossy(key), %error, "loader failed");
            ClientError::Loader(error.to_string())
        })
    }
}
