//! Where a key goes now, and bringing a down node back.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::health::Admit;
use strata_proto::memcache::Response;

use crate::recovery::Replay;
use crate::server_pool::{Batch, PoolError, ServerPool};
use crate::{ClientError, Failover, Inner, Stats, meta};

/// What role the chosen node plays for the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The key's owner on the main ring.
    Owner,
    /// A stand-in while the owner is down: writes get the gutter TTL and
    /// are remembered for the owner's recovery.
    Standby,
}

/// A routing decision.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// Where to send the request.
    pub(crate) node: Arc<ServerPool>,
    /// Owner or stand-in.
    pub(crate) role: Role,
    /// The key's owner (the same node when `role` is `Owner`).
    pub(crate) owner: Arc<ServerPool>,
}

impl Inner {
    /// The node object for `addr`, made on first use.
    pub(crate) fn node(&self, addr: &str) -> Arc<ServerPool> {
        if let Some(node) = self.nodes.read().get(addr) {
            return Arc::clone(node);
        }
        let settings = self.config.read().node.clone();
        let mut nodes = self.nodes.write();
        Arc::clone(
            nodes
                .entry(addr.to_owned())
                .or_insert_with(|| Arc::new(ServerPool::new(addr.to_owned(), settings))),
        )
    }

    /// The key's owner on the main ring.
    pub(crate) fn owner(&self, key: &[u8]) -> Result<Arc<ServerPool>, ClientError> {
        let snapshot = self.main.snapshot();
        let (index, member) = snapshot
            .owner(key)
            .ok_or_else(|| ClientError::Unavailable("the main pool is empty".into()))?;
        {
            let cached = self.main_nodes.read();
            if cached.0 == snapshot.epoch() {
                if let Some(node) = cached.1.get(index) {
                    return Ok(Arc::clone(node));
                }
            }
        }
        let nodes: Vec<Arc<ServerPool>> = snapshot.members().iter().map(|m| self.node(&m.address())).collect();
        let node = nodes
            .get(index)
            .cloned()
            .unwrap_or_else(|| self.node(&member.address()));
        *self.main_nodes.write() = (snapshot.epoch(), nodes);
        Ok(node)
    }

    /// Where a request for `key` goes now.
    pub(crate) fn route(self: &Arc<Self>, key: &[u8]) -> Result<Route, ClientError> {
        let owner = self.owner(key)?;
        match owner.health.admit(Instant::now()) {
            Admit::Use => {
                return Ok(Route {
                    node: Arc::clone(&owner),
                    role: Role::Owner,
                    owner,
                });
            }
            Admit::Probe => self.spawn_probe(Arc::clone(&owner)),
            Admit::Skip => {}
        }
        self.standby(key, owner)
    }

    /// The stand-in for `key` while `owner` is unusable.
    pub(crate) fn standby(self: &Arc<Self>, key: &[u8], owner: Arc<ServerPool>) -> Result<Route, ClientError> {
        let node = self.stand_in(key, &owner)?;
        Stats::bump(&self.stats.failovers);
        Ok(Route {
            node,
            role: Role::Standby,
            owner,
        })
    }

    /// The node that stands in for `owner` for `key` (not counted).
    fn stand_in(self: &Arc<Self>, key: &[u8], owner: &ServerPool) -> Result<Arc<ServerPool>, ClientError> {
        let failover = self.config.read().failover;
        let node = match failover {
            Failover::Gutter => {
                let gutter = self.gutter.snapshot();
                let (_, member) = gutter.owner(key).ok_or_else(|| {
                    ClientError::Unavailable(format!("{} is down and there is no gutter pool", owner.addr()))
                })?;
                let node = self.node(&member.address());
                if node.health.is_down() {
                    return Err(ClientError::Unavailable(format!(
                        "{} is down and so is its gutter {}",
                        owner.addr(),
                        node.addr()
                    )));
                }
                node
            }
            Failover::NextOnRing => {
                let snapshot = self.main.snapshot();
                let mut order = Vec::new();
                snapshot.preference(key, snapshot.members().len(), &mut order);
                order
                    .into_iter()
                    .map(|index| self.node(&snapshot.members()[index].address()))
                    .find(|node| node.addr() != owner.addr() && !node.health.is_down())
                    .ok_or_else(|| {
                        ClientError::Unavailable(format!("{} is down and so is every other node", owner.addr()))
                    })?
            }
            Failover::None => {
                return Err(ClientError::Unavailable(format!("{} is down", owner.addr())));
            }
        };
        Ok(node)
    }

    /// Reports a request's outcome on `node` to its health.
    pub(crate) fn report(&self, node: &ServerPool, ok: bool) {
        if ok {
            node.health.success();
        } else {
            Stats::bump(&self.stats.node_errors);
            if node.health.failure(Instant::now()) {
                node.drop_connections();
                Stats::bump(&self.stats.marked_down);
                tracing::warn!(node = node.addr(), "node marked down; failing over");
            }
        }
    }

    /// Sends `batch` to `node` and reports the outcome to its health.
    pub(crate) async fn call(&self, node: &ServerPool, batch: Batch) -> Result<Vec<Response>, PoolError> {
        let outcome = node.exec(batch).await;
        self.report(node, outcome.is_ok());
        outcome
    }

    /// Sends `batch` to the route's node; on failure at the owner, fails
    /// over once with `rebuild(role)` for the stand-in. Returns the replies
    /// and the route that gave them.
    pub(crate) async fn exec_routed(
        self: &Arc<Self>,
        key: &[u8],
        route: Route,
        batch: Batch,
        rebuild: impl Fn(Role) -> Batch,
    ) -> Result<(Vec<Response>, Route), ClientError> {
        let error = match self.call(&route.node, batch).await {
            Ok(replies) => return Ok((replies, route)),
            Err(error) if route.role == Role::Standby => return Err(ClientError::Unavailable(error.to_string())),
            Err(error) => error,
        };
        tracing::debug!(%error, "request failed; retrying on the stand-in");
        let standby = self.standby(key, route.owner)?;
        match self.call(&standby.node, rebuild(Role::Standby)).await {
            Ok(replies) => Ok((replies, standby)),
            Err(error) => Err(ClientError::Unavailable(error.to_string())),
        }
    }

    /// Probes `node` in the background; see [`probe`].
    fn spawn_probe(self: &Arc<Self>, node: Arc<ServerPool>) {
        let inner = Arc::clone(self);
        tokio::spawn(async move { inner.probe(node).await });
    }

    /// Health-checks a down node; if it answers, deletes on it every key
    /// written elsewhere while it was down (or flushes it, past the log's
    /// limit), deletes those keys on their stand-ins too, and only then
    /// puts it back into service.
    ///
    /// The stand-ins' copies must go as well: once the owner serves again,
    /// writes change the key there only, and if the owner fails again
    /// within the gutter TTL its keys are read from the stand-in again —
    /// where a copy from the first outage would be served over newer
    /// acknowledged writes (found by `scripts/soak`; reproduced by
    /// `scripts/repro-standin-stale.py`). Best effort: a stand-in that
    /// cannot be reached keeps what it has, bounded by the gutter TTL, and
    /// after a flush (too many keys to list) so do the stand-ins.
    pub(crate) async fn probe(self: &Arc<Self>, node: Arc<ServerPool>) {
        let mut batch = Batch::default();
        meta::noop(&mut batch);
        if node.exec(batch).await.is_err() {
            node.health.failure(Instant::now());
            return;
        }
        loop {
            let replay = node.missed.lock().take();
            let mut batch = Batch::default();
            match &replay {
                Replay::Flush => meta::flush(&mut batch),
                Replay::Delete(keys) => {
                    for key in keys {
                        meta::delete(&mut batch, key);
                    }
                }
            }
            let replayed = match &replay {
                Replay::Delete(keys) if keys.is_empty() => true,
                _ => node.exec(batch).await.is_ok(),
            };
            if !replayed {
                node.missed.lock().restore(replay);
                node.health.failure(Instant::now());
                return;
            }
            if let Replay::Delete(keys) = &replay {
                self.delete_on_stand_ins(&node, keys).await;
            }
            match &replay {
                Replay::Flush => tracing::info!(
                    node = node.addr(),
                    "flushed a returning node: it missed too many writes"
                ),
                Replay::Delete(keys) if !keys.is_empty() => {
                    tracing::info!(
                        node = node.addr(),
                        keys = keys.len(),
                        "deleted on a returning node the keys written elsewhere while it was down"
                    )
                }
                Replay::Delete(_) => {}
            }
            // Writes diverted while the replay ran are replayed too; the
            // node comes back only once nothing is left, decided under the
            // log's lock so no diverted write slips between.
            let missed = node.missed.lock();
            if missed.is_empty() {
                node.health.probe_succeeded();
                drop(missed);
                Stats::bump(&self.stats.recovered);
                tracing::info!(node = node.addr(), "node is back");
                return;
            }
        }
    }

    /// Deletes `keys` on the stand-ins that serve them while `owner` is
    /// down (the owner is still marked down here), one batch per stand-in.
    async fn delete_on_stand_ins(self: &Arc<Self>, owner: &Arc<ServerPool>, keys: &[Vec<u8>]) {
        let mut batches: Vec<(Arc<ServerPool>, Batch, usize)> = Vec::new();
        for key in keys {
            let Ok(stand_in) = self.stand_in(key, owner) else {
                continue;
            };
            let at = match batches.iter().position(|(node, _, _)| Arc::ptr_eq(node, &stand_in)) {
                Some(at) => at,
                None => {
                    batches.push((stand_in, Batch::default(), 0));
                    batches.len() - 1
                }
            };
            meta::delete(&mut batches[at].1, key);
            batches[at].2 += 1;
        }
        for (stand_in, batch, count) in batches {
            match self.call(&stand_in, batch).await {
                Ok(_) => tracing::debug!(
                    node = stand_in.addr(),
                    keys = count,
                    "deleted a returning node's keys on its stand-in"
                ),
                Err(error) => tracing::debug!(
                    node = stand_in.addr(),
                    %error,
                    "could not delete a returning node's keys on its stand-in; the gutter TTL bounds them"
                ),
            }
        }
    }

    /// The TTL a write to `role` gets.
    pub(crate) fn effective_ttl(&self, role: Role, ttl: Option<Duration>) -> Option<Duration> {
        match role {
            Role::Owner => ttl,
            Role::Standby => {
                let cap = self.config.read().gutter_ttl;
                Some(ttl.map_or(cap, |ttl| ttl.min(cap)))
            }
        }
    }

    /// Records that `key` was changed on a stand-in instead of `owner`, so
    /// the owner's recovery deletes it there. If the owner is not (or no
    /// longer) down, also deletes it there now, best effort, and forgets it
    /// once that worked: an owner that never goes down is never probed.
    pub(crate) async fn note_diverted(&self, owner: &ServerPool, key: &[u8]) {
        owner.missed.lock().record(key);
        if owner.health.is_down() {
            return;
        }
        let mut batch = Batch::default();
        meta::delete(&mut batch, key);
        if owner.exec(batch).await.is_ok() {
            owner.missed.lock().forget(key);
        }
    }
}
