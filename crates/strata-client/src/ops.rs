//! The plain operations and their multi-key forms.
//!
//! A multi-key call groups its keys by the node that serves each (owner or
//! stand-in), sends one batch per node concurrently, and puts the answers
//! back in the caller's order. A group whose node fails is retried key by
//! key through the single-key path, which fails over.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use strata_proto::memcache::Response;

use crate::meta::{self, SetMode};
use crate::route::{Role, Route};
use crate::server_pool::Batch;
use crate::{Client, ClientError, Fetched, Inner, Stats};

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
        let build = |_: Role| {
            let mut batch = Batch::default();
            meta::touch(&mut batch, key, ttl);
            batch
        };
        let (replies, _) = inner.exec_routed(key, route, build(Role::Owner), build).await?;
        meta::read_set(first(replies)?)
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
        meta::check_key(key)?;
        let route = self.route(key)?;
        let build = |role: Role| {
            let mut batch = Batch::default();
            meta::set(&mut batch, key, value, flags, self.effective_ttl(role, ttl), mode);
            batch
        };
        let (replies, route) = self.exec_routed(key, route.clone(), build(route.role), build).await?;
        if route.role == Role::Standby {
            self.note_diverted(&route.owner, key).await;
        }
        let stored = meta::read_set(first(replies)?)?;
        Stats::bump(&self.stats.sets);
        self.forget_previous(key, &route.owner).await;
        Ok(stored)
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
