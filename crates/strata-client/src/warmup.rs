//! Warm-up after a topology change (mcrouter's WarmUpRoute).
//!
//! When a node joins, about 1/N of the keys get a new owner that has none
//! of them: without help every one of those reads misses and goes to the
//! database at once. For a grace period after the change, a miss on a
//! key's new owner therefore reads the key's owner in the previous epoch;
//! on a hit the value is answered and copied to the new owner with an
//! *add* (so it never overwrites a value written since), keeping its
//! remaining TTL.
//!
//! The previous owner must not resurrect old data: during the grace period
//! every write and delete of a key also deletes it on its previous owner,
//! so what warm-up can copy is never older than the last write.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::health::Admit;
use crate::meta::{self, SetMode};
use crate::ops::first;
use crate::server_pool::{Batch, ServerPool};
use crate::{Fetched, Inner, Stats};

impl Inner {
    /// The key's owner in the previous epoch, if the grace period runs and
    /// it differs from `current` and is usable.
    fn previous_owner(&self, key: &[u8], current: &str) -> Option<Arc<ServerPool>> {
        let previous = {
            let mut guard = self.previous.lock();
            match &*guard {
                Some(previous) if Instant::now() < previous.until => Arc::clone(&previous.snapshot),
                Some(_) => {
                    *guard = None;
                    return None;
                }
                None => return None,
            }
        };
        let (_, member) = previous.owner(key)?;
        let address = member.address();
        if address == current {
            return None;
        }
        let node = self.node(&address);
        (node.health.admit(Instant::now()) == Admit::Use).then_some(node)
    }

    /// On a miss at `owner`: the value from the previous owner, copied to
    /// `owner`, or `None`.
    pub(crate) async fn warm(&self, key: &[u8], owner: &ServerPool) -> Option<Fetched> {
        let source = self.previous_owner(key, owner.addr())?;
        let mut batch = Batch::default();
        meta::get(&mut batch, key);
        let replies = self.call(&source, batch).await.ok()?;
        let hit = meta::read_get(first(replies).ok()?).ok()??;
        if hit.won || hit.lease_taken {
            // A lease placeholder, not a value.
            return None;
        }
        let ttl = (hit.ttl_secs > 0).then(|| Duration::from_secs(hit.ttl_secs as u64));
        let mut batch = Batch::default();
        meta::set(&mut batch, key, &hit.value, hit.flags, ttl, SetMode::Add);
        let _ = self.call(owner, batch).await;
        Stats::bump(&self.stats.warmup_hits);
        Some(Fetched::from(hit))
    }

    /// After a write or delete of `key` (owned by `owner`) during the grace
    /// period: deletes it on its previous owner, best effort, so warm-up
    /// cannot copy it back. Outside the grace period this costs one lock.
    pub(crate) async fn forget_previous(&self, key: &[u8], owner: &ServerPool) {
        let Some(previous) = self.previous_owner(key, owner.addr()) else {
            return;
        };
        let mut batch = Batch::default();
        meta::delete(&mut batch, key);
        let _ = self.call(&previous, batch).await;
    }
}
