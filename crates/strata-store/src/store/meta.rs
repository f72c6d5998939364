//! Reads that decide who refills: memcached's meta protocol and strata's
//! leases, on the per-item state bits of `record.rs`.
//!
//! The memcache paper's leases exist today in memcached's meta protocol,
//! and this module implements them the same way, so both protocols of the
//! server and strata's own client share one mechanism:
//!
//! - **Vivify on miss** (`mg … N<ttl>`, `LGET`): a miss creates an empty
//!   *placeholder* item with a short TTL and tells this one caller it *won*
//!   (`W`); everyone else finds the placeholder and is told a win was already
//!   handed out (`Z`), so they wait or retry instead of hitting the
//!   database. The winner's token is the placeholder's CAS version: its fill
//!   (`ms … C<cas>`, `LSET key <token>`) succeeds only if nothing touched the
//!   key since — a delete or a newer write changes or removes the version,
//!   so a slow reader can never put an old value back.
//! - **Stale while revalidate** (`md … I`, `LINVALIDATE`): instead of
//!   deleting, mark the item stale and give it a new version. Readers get
//!   the stale value with `X`; the first of them also wins (`W`) and
//!   refreshes it.
//! - **Early recache** (`mg … R<secs>`): a hit whose remaining TTL is below
//!   the threshold wins a refresh before the item expires, once.
//!
//! A win is sent at most once per item version: the `WIN_SENT` bit. A
//! placeholder expires after its TTL (the lease period), so a winner that
//! dies only delays the next winner by that much.

use std::time::Duration;

use super::record::{Meta, State};
use super::{Expiry, Item, RemovalCause, Store};
use crate::clock::Now;
use crate::error::StoreError;

/// Options of [`Store::meta_get`]: the flags of memcached's `mg` that can
/// change the item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaGet {
    /// `N`: on a miss, create an empty placeholder with this expiry and make
    /// the caller the winner.
    pub vivify: Option<Expiry>,
    /// `R`: on a hit whose remaining TTL is below this many ms, make the
    /// caller the winner (once per version).
    pub recache_below_ms: Option<u64>,
    /// `T`: set a new expiry on a hit.
    pub touch: Option<Expiry>,
    /// `E`: the CAS version to give an item this call creates.
    pub new_cas: Option<u64>,
    /// `u`: do not bump the item in the policy or mark it fetched.
    pub no_bump: bool,
    /// When a stale item's refresh is handed out, let the stale item live at
    /// most this many ms more (strata's leases: a refresher that dies must
    /// not pin the stale value). The version does not change.
    pub stale_win_ttl_ms: Option<u64>,
}

impl MetaGet {
    fn modifies(&self) -> bool {
        self.vivify.is_some() || self.recache_below_ms.is_some() || self.touch.is_some()
    }
}

/// What [`Store::meta_get`] found, with the state as it was *before* this
/// request (memcached reports `h`, `l` and `Z` that way).
#[derive(Clone, Copy, Debug)]
pub struct MetaHit<'a> {
    /// The item, after this request's changes (TTL, state).
    pub item: Item<'a>,
    /// This caller won the right to refill (`W`).
    pub won: bool,
    /// The item is stale (`X`).
    pub stale: bool,
    /// A win had already been sent to someone else (`Z`).
    pub win_sent_before: bool,
    /// The item had been read before this request (`h`).
    pub fetched_before: bool,
    /// Estimated last access before this request, ms since the Unix epoch
    /// (`l`).
    pub last_access_ms: u64,
    /// This request created the item (vivified on a miss).
    pub created: bool,
}

/// Options of [`Store::meta_delete`] (memcached's `md` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaDelete {
    /// `C`: only if the item's version is this one.
    pub cas: Option<u64>,
    /// `I`: mark stale (and give a new version) instead of deleting.
    pub stale: bool,
    /// `T` (with `I`): new expiry for the stale item.
    pub expiry: Option<Expiry>,
    /// `E`: the version to give the stale item.
    pub new_cas: Option<u64>,
    /// `x`: replace the value with an empty one but keep the item.
    pub drop_value: bool,
}

/// The answer to a lease read ([`Store::lease_get`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseGrant {
    /// A fresh value.
    Hit(Vec<u8>),
    /// No value: this caller holds the lease and should fill the key with
    /// [`Store::lease_set`] and this token within the lease period.
    Won {
        /// The lease token.
        token: u64,
    },
    /// No value, and another caller holds the lease: wait briefly and ask
    /// again.
    Wait,
    /// A stale value. With a token, this caller should refresh it; without,
    /// someone else is.
    Stale {
        /// The stale value.
        value: Vec<u8>,
        /// The lease token, if this caller won the refresh.
        token: Option<u64>,
    },
}

impl Store {
    /// memcached's `mg`: reads `key`, applying vivify (`N`), early recache
    /// (`R`), touch (`T`) and the stale-while-revalidate rules, and calls `f`
    /// with what it found (`None` on a miss that did not vivify). Reads that
    /// change nothing take only the shard's shared lock.
    pub fn meta_get<R>(&self, key: &[u8], options: &MetaGet, f: impl FnOnce(Option<MetaHit<'_>>) -> R) -> R {
        let mut f = Some(f);
        if !options.modifies() {
            // Fast path: a plain read, unless the item turns out stale (a
            // stale item hands out a win, which is a change).
            let done = self.read_with(key, !options.no_bump, |item| {
                if item.is_stale() {
                    return None;
                }
                let call = f.take().expect("called once");
                Some(call(Some(MetaHit {
                    item,
                    won: false,
                    stale: false,
                    win_sent_before: item.win_sent(),
                    fetched_before: item.fetched(),
                    last_access_ms: item.last_access_ms(),
                    created: false,
                })))
            });
            match done {
                Ok(Some(result)) => return result,
                Ok(None) => {}
                Err(()) => return (f.take().expect("called once"))(None),
            }
        }
        let f = f.take().expect("called once");
        let hash = self.hash(key);
        let now = Now::new(self.clock.as_ref());
        let mut shard = self.shard_for(hash).write();
        let (slot, created) = match shard.find_live(hash, key, &now) {
            Some(slot) => (slot, false),
            None => {
                shard.count_miss(hash);
                let Some(vivify) = options.vivify else {
                    return f(None);
                };
                let meta = Meta {
                    cas: options.new_cas.unwrap_or_else(|| shard.next_cas()),
                    expire_at: vivify.resolve(&now, None),
                    flags: 0,
                };
                if self.check_size(&shard, key.len(), 0, &meta).is_err() {
                    return f(None);
                }
                let state = State(State::PLACEHOLDER | State::WIN_SENT);
                let slot = shard.insert(hash, key, 0, &meta, state, &now, |_| {});
                let last_access_ms = now.get();
                return f(Some(MetaHit {
                    item: shard.item(slot),
                    won: true,
                    stale: false,
                    win_sent_before: false,
                    fetched_before: false,
                    last_access_ms,
                    created: true,
                }));
            }
        };
        let before = shard.item(slot);
        let state = before.record.state();
        let (fetched_before, last_access_ms) = (before.fetched(), before.last_access_ms());
        let (stale, win_sent_before) = (state.has(State::STALE), state.has(State::WIN_SENT));
        let remaining_ms = before.expire_at_ms().map(|at| at.saturating_sub(now.get()));
        shard.count_hit(slot, hash, !options.no_bump);
        if let Some(touch) = options.touch {
            let old = shard.items.record(slot).meta();
            let meta = Meta {
                expire_at: touch.resolve(&now, old.expire_at),
                ..old
            };
            shard.set_meta(slot, hash, &meta, None);
        }
        let recache = options
            .recache_below_ms
            .is_some_and(|below| remaining_ms.is_some_and(|left| left < below));
        let won = !win_sent_before && (recache || stale);
        if won {
            let state = shard.items.record(slot).state();
            shard.set_state(slot, State(state.0 | State::WIN_SENT));
            if let (true, Some(ttl)) = (stale, options.stale_win_ttl_ms) {
                let old = shard.items.record(slot).meta();
                let deadline = now.get().saturating_add(ttl);
                if old.expire_at.is_none_or(|at| at > deadline) {
                    let meta = Meta {
                        expire_at: Some(deadline),
                        ..old
                    };
                    shard.set_meta(slot, hash, &meta, None);
                }
            }
        }
        f(Some(MetaHit {
            item: shard.item(slot),
            won,
            stale,
            win_sent_before,
            fetched_before,
            last_access_ms,
            created,
        }))
    }

    /// Reads `key` under the shared lock; `Err(())` on a miss. `f` may
    /// decline (`None`), which counts the access but changes nothing.
    fn read_with<R>(&self, key: &[u8], counted: bool, f: impl FnOnce(Item<'_>) -> Option<R>) -> Result<Option<R>, ()> {
        self.read(key, counted, f).ok_or(())
    }

    /// memcached's `md`: deletes `key`, or with [`MetaDelete::stale`] marks
    /// it stale with a new version (and clears any win sent, so the next
    /// reader refreshes it), or with [`MetaDelete::drop_value`] empties its
    /// value. Returns the item's new version when it stays.
    pub fn meta_delete(&self, key: &[u8], options: &MetaDelete) -> Result<Option<u64>, StoreError> {
        let hash = self.hash(key);
        let now = Now::new(self.clock.as_ref());
        let mut shard = self.shard_for(hash).write();
        let slot = shard.find_live(hash, key, &now).ok_or(StoreError::NotFound)?;
        let current = shard.items.record(slot);
        if options.cas.is_some_and(|cas| cas != current.cas()) {
            return Err(StoreError::Exists);
        }
        if !options.stale && !options.drop_value {
            shard.remove(slot, hash, RemovalCause::Deleted);
            return Ok(None);
        }
        let old = current.meta();
        let mut state = current.state();
        let mut meta = Meta {
            cas: options.new_cas.unwrap_or_else(|| shard.next_cas()),
            ..old
        };
        if options.stale {
            state = State((state.0 | State::STALE) & !State::WIN_SENT);
            if let Some(expiry) = options.expiry {
                meta.expire_at = expiry.resolve(&now, old.expire_at);
            }
        }
        if options.drop_value {
            shard.rewrite(slot, hash, key, 0, &meta, state, |_| {});
        } else {
            shard.set_meta(slot, hash, &meta, Some(state));
        }
        Ok(Some(meta.cas))
    }

    /// A lease read (strata's `LGET`): a fresh value; or, on a miss, a lease
    /// token for exactly one caller per lease period, [`LeaseGrant::Wait`]
    /// for the others; or a stale value, with a token for the first reader.
    /// A stale item whose refresh was handed out lives at most one more
    /// lease period, so a refresher that dies does not pin the stale value.
    pub fn lease_get(&self, key: &[u8], lease: Duration) -> LeaseGrant {
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let options = MetaGet {
            vivify: Some(Expiry::AfterMs(lease_ms)),
            stale_win_ttl_ms: Some(lease_ms),
            ..MetaGet::default()
        };
        self.meta_get(key, &options, |hit| {
            let hit = hit.expect("a vivifying read always finds or creates the item");
            if hit.item.is_placeholder() {
                if hit.won {
                    LeaseGrant::Won { token: hit.item.cas() }
                } else {
                    LeaseGrant::Wait
                }
            } else if hit.stale {
                LeaseGrant::Stale {
                    value: hit.item.value().to_vec(),
                    token: hit.won.then(|| hit.item.cas()),
                }
            } else {
                LeaseGrant::Hit(hit.item.value().to_vec())
            }
        })
    }

    /// Fills `key` with `value` if `token` (from [`Store::lease_get`]) is
    /// still valid: the item is still the version the lease was granted on.
    /// Any write or delete of the key since voids the token:
    /// [`StoreError::LeaseInvalid`].
    pub fn lease_set(&self, key: &[u8], token: u64, value: &[u8], expiry: Expiry) -> Result<u64, StoreError> {
        let hash = self.hash(key);
        let now = Now::new(self.clock.as_ref());
        let mut shard = self.shard_for(hash).write();
        let slot = shard.find_live(hash, key, &now).ok_or(StoreError::LeaseInvalid)?;
        let current = shard.items.record(slot);
        if current.cas() != token || !current.state().has(State::WIN_SENT) {
            return Err(StoreError::LeaseInvalid);
        }
        let flags = current.meta().flags;
        let meta = Meta {
            cas: shard.next_cas(),
            expire_at: expiry.resolve(&now, None),
            flags,
        };
        self.check_size(&shard, key.len(), value.len(), &meta)?;
        shard.rewrite(slot, hash, key, value.len(), &meta, State::default(), |out| {
            out.copy_from_slice(value)
        });
        Ok(meta.cas)
    }
}
