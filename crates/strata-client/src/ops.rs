//! The plain operations and their multi-key forms; the conditional
//! stores, incr/decr and get-and-touch; and `meta`, a meta request sent as
//! it came.
//!
//! Every single-key write goes the same way (`Inner::write_one`): to the
//! node serving the key now, failing over once; a write that lands on a
//! stand-in gets the gutter TTL and is remembered for the owner's return;
//! and during warm-up the key is deleted on its previous owner. So a
//! `cas` or an `incr` is as safe through a failover as a `set`. A
//! conditional write whose key has just moved to a new owner (warm-up) sees
//! the new owner's miss and fails (`NOT_STORED`, `NOT_FOUND`): warm-up
//! copies values only for reads.
//!
//! A multi-key call groups its keys by the node that serves each (owner or
//! stand-in), sends one batch per node concurrently, and puts the answers
//! back in the caller's order. A group whose node fails is retried key by
//! key through the single-key path, which fails over.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use strata_proto::memcache::{MetaCode, Request, Response};

use crate::meta::{self, Forwarded, SetMode};
use crate::route::{Role, Route};
use crate::server_pool::Batch;
use crate::{Client, ClientError, Fetched, Inner, Stats};

/// What a conditional store did: memcached's `STORED`, `NOT_STORED`,
/// `EXISTS` and `NOT_FOUND`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored.
    Stored,
    /// Its condition failed: `add` of a present key, `replace`, `append`
    /// or `prepend` of a missing one.
    NotStored,
    /// `cas`: the item changed since its CAS unique was read.
    Exists,
    /// `cas`: the item is gone.
    NotFound,
}

impl Client {
    /// The value of `key`, or `None`.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(self.inner.get(key).await?.map(|item| item.value))
    }

    /// The value of `key` with its client flags, or `None`.
    pub async fn get_item(&self, key: &[u8]) -> Result<Option<Fetched>, ClientError> {
        self.inner.get(key).await
    }

    /// Stores `value` under `key`, expiring after `ttl` (`None`: never).
    pub async fn set(&self, key: &[u8], value: &[u8], ttl: Option<Duration>) -> Result<(), ClientError> {
        self.inner.set(key, value, 0, ttl, SetMode::Set).await.map(|_| ())
    }

    /// Stores `value` with client `flags` under `key`.
    pub async fn set_item(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        ttl: Option<Duration>,
    ) -> Result<(), ClientError> {
        self.inner.set(key, value, flags, ttl, SetMode::Set).await.map(|_| ())
    }

    /// Stores `value` only if `key` is absent; true if stored.
    pub async fn add(&self, key: &[u8], value: &[u8], ttl: Option<Duration>) -> Result<bool, ClientError> {
        self.inner.set(key, value, 0, ttl, SetMode::Add).await
    }

    /// [`Self::add`] with client flags.
    pub async fn add_item(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        ttl: Option<Duration>,
    ) -> Result<bool, ClientError> {
        self.inner.set(key, value, flags, ttl, SetMode::Add).await
    }

    /// Empties every server of every pool (`flush_all`). A server that is
    /// down now is flushed before it serves again (its missed-write log
    /// records the flush). For when what the cache holds can no longer be
    /// trusted, e.g. the invalidator lost its replication slot.
    pub async fn flush_all(&self) -> Result<(), ClientError> {
        let inner = &self.inner;
        let addresses: Vec<String> = {
            let config = inner.config.read();
            config
                .cluster
                .pools
                .values()
                .flatten()
                .map(|member| member.address())
                .collect()
        };
        for address in addresses {
            let node = inner.node(&address);
            let mut batch = Batch::default();
            meta::flush(&mut batch);
            if inner.call(&node, batch).await.is_err() {
                tracing::warn!(node = %address, "flush_all: node unreachable; it is flushed when it returns");
                node.missed.lock().record_flush();
            }
        }
        Ok(())
    }

    /// Deletes `key`; true if it was there.
    pub async fn delete(&self, key: &[u8]) -> Result<bool, ClientError> {
        self.inner.delete(key).await
    }

    /// Sets `key`'s TTL (zero: never expires); true if it was there.
    pub async fn touch(&self, key: &[u8], ttl: Duration) -> Result<bool, ClientError> {
        meta::check_key(key)?;
        let inner = &self.inner;
        let route = inner.route(key)?;
        let build = |role: Role| {
            let mut batch = Batch::default();
            meta::touch(&mut batch, key, inner.touch_ttl(role, ttl));
            batch
        };
        let (replies, _) = inner.exec_routed(key, route.clone(), build(route.role), build).await?;
        meta::read_set(first(replies)?)
    }

    /// Stores `value` only if `key` is present (memcached's `replace`);
    /// true if stored.
    pub async fn replace_item(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        ttl: Option<Duration>,
    ) -> Result<bool, ClientError> {
        self.inner.set(key, value, flags, ttl, SetMode::Replace).await
    }

    /// Stores `value` only if `key` still has the CAS unique `cas` (read by
    /// [`Self::get_item`] or [`Self::get_many_items`]): memcached's `cas`.
    pub async fn cas_item(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        ttl: Option<Duration>,
        cas: u64,
    ) -> Result<StoreOutcome, ClientError> {
        self.inner.store(key, value, flags, ttl, SetMode::Cas(cas)).await
    }

    /// Adds `data` after `key`'s value, keeping its flags and TTL
    /// (memcached's `append`); false if `key` is missing.
    pub async fn append(&self, key: &[u8], data: &[u8]) -> Result<bool, ClientError> {
        self.inner.set(key, data, 0, None, SetMode::Append).await
    }

    /// Adds `data` before `key`'s value (memcached's `prepend`); false if
    /// `key` is missing.
    pub async fn prepend(&self, key: &[u8], data: &[u8]) -> Result<bool, ClientError> {
        self.inner.set(key, data, 0, None, SetMode::Prepend).await
    }

    /// Adds `delta` to the decimal number stored under `key`, wrapping at
    /// 2^64 (memcached's `incr`): the new value, or `None` if `key` is
    /// missing. A value that is not a number is [`ClientError::Refused`].
    pub async fn incr(&self, key: &[u8], delta: u64) -> Result<Option<u64>, ClientError> {
        self.inner.arithmetic(key, false, delta).await
    }

    /// Subtracts `delta`, stopping at 0 (memcached's `decr`); see
    /// [`Self::incr`].
    pub async fn decr(&self, key: &[u8], delta: u64) -> Result<Option<u64>, ClientError> {
        self.inner.arithmetic(key, true, delta).await
    }

    /// The item under `key`, its TTL set to `ttl` (zero: never expires) in
    /// the same request (memcached's `gat`); the TTL returned is the new
    /// one. `None` if missing (nothing is touched).
    pub async fn get_and_touch(&self, key: &[u8], ttl: Duration) -> Result<Option<Fetched>, ClientError> {
        meta::check_key(key)?;
        let inner = &self.inner;
        Stats::bump(&inner.stats.gets);
        let route = inner.route(key)?;
        let build = |role: Role| {
            let mut batch = Batch::default();
            meta::get_and_touch(&mut batch, key, inner.touch_ttl(role, ttl));
            batch
        };
        let (replies, route) = inner.exec_routed(key, route.clone(), build(route.role), build).await?;
        inner.read_get(key, &route, first(replies)?).await
    }

    /// Sends a meta request about one key (`mg`, `ms`, `md`, `ma`, `me`) to
    /// the node serving the key now, and returns that node's reply as it
    /// came: for a proxy, which relays it. Routing and failover are those of
    /// every other call: a write (`ms`, `md`, `ma`) that lands on a
    /// stand-in has its TTLs cut to the gutter TTL (an `ms` without `T`
    /// gets one) and is remembered for the owner's return, and during
    /// warm-up deletes the key on its previous owner. What the client adds
    /// for its own reads is not done (a miss does not warm up).
    ///
    /// The request's `q` flag is not sent (each request on a pooled
    /// connection must be answered), so the reply is always returned and the
    /// caller applies quiet mode. Any other request is
    /// [`ClientError::Refused`].
    pub async fn meta(&self, request: &Request<'_>) -> Result<Response, ClientError> {
        let Some((key, kind)) = meta::forwardable(request) else {
            return Err(ClientError::Refused(
                "only mg, ms, md, ma and me are sent by key".into(),
            ));
        };
        meta::check_key(key)?;
        let inner = &self.inner;
        match request {
            Request::MetaGet(_) => Stats::bump(&inner.stats.gets),
            Request::MetaSet(_) => Stats::bump(&inner.stats.sets),
            Request::MetaDelete(_) => Stats::bump(&inner.stats.deletes),
            _ => {}
        }
        let build = |role: Role| {
            let mut batch = Batch::default();
            let cap = (role == Role::Standby).then(|| inner.config.read().gutter_ttl);
            meta::forward(&mut batch, request, cap);
            batch
        };
        match kind {
            Forwarded::Write => inner.write_one(key, build).await,
            Forwarded::Read => {
                let route = inner.route(key)?;
                let (replies, _) = inner.exec_routed(key, route.clone(), build(route.role), build).await?;
                let reply = first(replies)?;
                let hit = matches!(&reply, Response::Meta(meta) if matches!(meta.code, MetaCode::Va | MetaCode::Hd));
                if hit && matches!(request, Request::MetaGet(_)) {
                    Stats::bump(&inner.stats.hits);
                }
                Ok(reply)
            }
        }
    }

    /// The values of `keys`, in order, each `None` if missing. One batch per
    /// node, sent concurrently.
    pub async fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>, ClientError> {
        Ok(self
            .get_many_items(keys)
            .await?
            .into_iter()
            .map(|item| item.map(|item| item.value))
            .collect())
    }

    /// [`Self::get_many`] with client flags.
    pub async fn get_many_items<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Fetched>>, ClientError> {
        let inner = &self.inner;
        let groups = inner.group_by_route(keys.iter().map(AsRef::as_ref))?;
        let mut results: Vec<Option<Fetched>> = vec![None; keys.len()];
        let calls = groups.into_iter().map(|(route, positions)| async move {
            let mut batch = Batch::default();
            for &position in &positions {
                meta::get(&mut batch, keys[position].as_ref());
            }
            let outcome = inner.call(&route.node, batch).await;
            (route, positions, outcome)
        });
        for (route, positions, outcome) in join_all(calls).await {
            match outcome {
                Ok(replies) if replies.len() == positions.len() => {
                    for (&position, reply) in positions.iter().zip(replies) {
                        Stats::bump(&inner.stats.gets);
                        results[position] = inner.read_get(keys[position].as_ref(), &route, reply).await?;
                    }
                }
                _ => {
                    for &position in &positions {
                        results[position] = inner.get(keys[position].as_ref()).await?;
                    }
                }
            }
        }
        Ok(results)
    }

    /// Stores every (key, value), one batch per node.
    pub async fn set_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        items: &[(K, V)],
        ttl: Option<Duration>,
    ) -> Result<(), ClientError> {
        let inner = &self.inner;
        let groups = inner.group_by_route(items.iter().map(|(key, _)| key.as_ref()))?;
        let calls = groups.into_iter().map(|(route, positions)| async move {
            let ttl = inner.effective_ttl(route.role, ttl);
            let mut batch = Batch::default();
            for &position in &positions {
                let (key, value) = &items[position];
                meta::set(&mut batch, key.as_ref(), value.as_ref(), 0, ttl, SetMode::Set);
            }
            if route.role == Role::Standby {
                for &position in &positions {
                    inner.note_diverted(&route.owner, items[position].0.as_ref()).await;
                }
            }
            let outcome = inner.call(&route.node, batch).await;
            (route, positions, outcome)
        });
        for (route, positions, outcome) in join_all(calls).await {
            let stored = match outcome {
                Ok(replies) if replies.len() == positions.len() => replies
                    .into_iter()
                    .map(meta::read_set)
                    .collect::<Result<Vec<_>, _>>()
                    .is_ok(),
                _ => false,
            };
            for &position in &positions {
                let (key, value) = &items[position];
                if stored {
                    Stats::bump(&inner.stats.sets);
                    inner.forget_previous(key.as_ref(), &route.owner).await;
                } else {
                    inner.set(key.as_ref(), value.as_ref(), 0, ttl, SetMode::Set).await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes every key; how many were there.
    pub async fn delete_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<usize, ClientError> {
        let found = join_all(keys.iter().map(|key| self.inner.delete(key.as_ref()))).await;
        let mut count = 0;
        for result in found {
            count += usize::from(result?);
        }
        Ok(count)
    }

    /// [`Self::delete_many`] for a caller that forgets a delete once it is
    /// done, and so must know that it reached each key's *owner*: the
    /// invalidator, which advances its log past the change. A delete that
    /// went to a stand-in because the owner is down is owed to the owner
    /// (the owner's return replays it there), but only this process
    /// remembers that; were the caller to count it done and then restart,
    /// an owner that was cut off rather than restarted would serve its old
    /// value for good. So any delete still owed is an
    /// [`ClientError::Unavailable`] — after every delete was sent, stand-ins
    /// included — and the caller tries the batch again later.
    pub async fn delete_many_at_owners<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<usize, ClientError> {
        let found = join_all(keys.iter().map(|key| self.inner.delete_routed(key.as_ref()))).await;
        let (mut count, mut owed) = (0, 0);
        for result in found {
            let (was_there, still_owed) = result?;
            count += usize::from(was_there);
            owed += usize::from(still_owed);
        }
        if owed > 0 {
            return Err(ClientError::Unavailable(format!(
                "{owed} of {} deletes reached only a stand-in: their owner is down",
                keys.len()
            )));
        }
        Ok(count)
    }
}

/// The one reply of a one-command batch.
pub(crate) fn first(replies: Vec<Response>) -> Result<Response, ClientError> {
    replies
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Server("no reply".into()))
}

impl Inner {
    pub(crate) async fn get(self: &Arc<Self>, key: &[u8]) -> Result<Option<Fetched>, ClientError> {
        meta::check_key(key)?;
        Stats::bump(&self.stats.gets);
        let route = self.route(key)?;
        let build = |_: Role| {
            let mut batch = Batch::default();
            meta::get(&mut batch, key);
            batch
        };
        let (replies, route) = self.exec_routed(key, route, build(Role::Owner), build).await?;
        self.read_get(key, &route, first(replies)?).await
    }

    /// The item in an `mg` reply for `key` from `route`; a miss at the
    /// owner tries warm-up. Counts the hit.
    async fn read_get(&self, key: &[u8], route: &Route, reply: Response) -> Result<Option<Fetched>, ClientError> {
        let item = match meta::read_get(reply)? {
            Some(hit) => Some(Fetched::from(hit)),
            None if route.role == Role::Owner => self.warm(key, &route.node).await,
            None => None,
        };
        if item.is_some() {
            Stats::bump(&self.stats.hits);
        }
        Ok(item)
    }

    /// Groups key positions by the node that serves each now, checking
    /// every key first.
    fn group_by_route<'k>(
        self: &Arc<Self>,
        keys: impl Iterator<Item = &'k [u8]>,
    ) -> Result<Vec<(Route, Vec<usize>)>, ClientError> {
        let mut groups: Vec<(Route, Vec<usize>)> = Vec::new();
        for (position, key) in keys.enumerate() {
            meta::check_key(key)?;
            let route = self.route(key)?;
            match groups.iter_mut().find(|(r, _)| Arc::ptr_eq(&r.node, &route.node)) {
                Some((_, positions)) => positions.push(position),
                None => groups.push((route, vec![position])),
            }
        }
        Ok(groups)
    }

    pub(crate) async fn set(
        self: &Arc<Self>,
        key: &[u8],
        value: &[u8],
        flags: u32,
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> Result<bool, ClientError> {
        Ok(self.store(key, value, flags, ttl, mode).await? == StoreOutcome::Stored)
    }

    /// An `ms` of `mode`, and what it did.
    pub(crate) async fn store(
        self: &Arc<Self>,
        key: &[u8],
        value: &[u8],
        flags: u32,
        ttl: Option<Duration>,
        mode: SetMode,
    ) -> Result<StoreOutcome, ClientError> {
        meta::check_key(key)?;
        let build = |role: Role| {
            let mut batch = Batch::default();
            meta::set(&mut batch, key, value, flags, self.effective_ttl(role, ttl), mode);
            batch
        };
        let outcome = meta::read_store(self.write_one(key, build).await?)?;
        Stats::bump(&self.stats.sets);
        Ok(outcome)
    }

    /// `incr`/`decr` as an `ma`.
    async fn arithmetic(self: &Arc<Self>, key: &[u8], decrement: bool, delta: u64) -> Result<Option<u64>, ClientError> {
        meta::check_key(key)?;
        let build = |_: Role| {
            let mut batch = Batch::default();
            meta::arithmetic(&mut batch, key, decrement, delta);
            batch
        };
        meta::read_arithmetic(self.write_one(key, build).await?)
    }

    /// Sends the one-command write `build(role)` about `key` to the node
    /// serving it now (failing over once), remembers it for the owner if it
    /// landed on a stand-in, and during warm-up deletes the key on its
    /// previous owner. The node's reply.
    pub(crate) async fn write_one(
        self: &Arc<Self>,
        key: &[u8],
        build: impl Fn(Role) -> Batch,
    ) -> Result<Response, ClientError> {
        let route = self.route(key)?;
        let (replies, route) = self.exec_routed(key, route.clone(), build(route.role), build).await?;
        if route.role == Role::Standby {
            self.note_diverted(&route.owner, key).await;
        }
        self.forget_previous(key, &route.owner).await;
        first(replies)
    }

    /// The TTL a touch of `ttl` (zero: never expires) sends to `role`: on a
    /// stand-in, at most the gutter TTL, as every write there.
    fn touch_ttl(&self, role: Role, ttl: Duration) -> Duration {
        let ttl = (!ttl.is_zero()).then_some(ttl);
        self.effective_ttl(role, ttl).unwrap_or(Duration::ZERO)
    }

    pub(crate) async fn delete(self: &Arc<Self>, key: &[u8]) -> Result<bool, ClientError> {
        Ok(self.delete_routed(key).await?.0)
    }

    /// Deletes `key`; whether it was there, and whether the delete is still
    /// owed to the key's owner (it went to a stand-in while the owner was
    /// down, and only this process remembers to replay it there).
    pub(crate) async fn delete_routed(self: &Arc<Self>, key: &[u8]) -> Result<(bool, bool), ClientError> {
        meta::check_key(key)?;
        let route = self.route(key)?;
        let build = |_: Role| {
            let mut batch = Batch::default();
            meta::delete(&mut batch, key);
            batch
        };
        let (replies, route) = self.exec_routed(key, route, build(Role::Owner), build).await?;
        if route.role == Role::Standby {
            self.note_diverted(&route.owner, key).await;
        }
        Stats::bump(&self.stats.deletes);
        self.forget_previous(key, &route.owner).await;
        let found = meta::read_set(first(replies)?)?;
        let owed = route.role == Role::Standby && route.owner.missed.lock().owes(key);
        Ok((found, owed))
    }
}
