//! Pub/sub: channels and patterns → subscribed RESP connections.
//!
//! Redis's SUBSCRIBE/PSUBSCRIBE/PUBLISH, delivered through each
//! connection's push queue (`push.rs`). Every connection also keeps the set
//! of what it subscribed to (for its counts and for `UNSUBSCRIBE` with no
//! arguments); this registry is the reverse index a publisher reads.
//! Client tracking uses it only indirectly: a RESP2 connection in pub/sub
//! mode receives the invalidations redirected to it as messages on
//! `__redis__:invalidate`, whether or not that channel is in this index, as
//! in Redis.

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::glob;
use crate::push::{Clients, Push};

/// The channel Redis sends redirected invalidations on (RESP2).
pub(crate) const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// Subscribers by channel, and pattern subscriptions.
#[derive(Debug, Default)]
pub(crate) struct PubSub {
    channels: RwLock<HashMap<Bytes, Vec<u64>>>,
    patterns: RwLock<Vec<(Bytes, u64)>>,
}

impl PubSub {
    /// Subscribes client `id` to `channel` (the caller knows it was not).
    pub(crate) fn subscribe(&self, id: u64, channel: Bytes) {
        self.channels.write().entry(channel).or_default().push(id);
    }

    /// Removes client `id` from `channel`.
    pub(crate) fn unsubscribe(&self, id: u64, channel: &[u8]) {
        let mut channels = self.channels.write();
        if let Some(ids) = channels.get_mut(channel) {
            ids.retain(|&client| client != id);
            if ids.is_empty() {
                channels.remove(channel);
            }
        }
    }

    /// Subscribes client `id` to `pattern` (the caller knows it was not).
    pub(crate) fn psubscribe(&self, id: u64, pattern: Bytes) {
        self.patterns.write().push((pattern, id));
    }

    /// Removes client `id`'s subscription to `pattern`.
    pub(crate) fn punsubscribe(&self, id: u64, pattern: &[u8]) {
        self.patterns
            .write()
            .retain(|(p, client)| !(*client == id && p.as_ref() == pattern));
    }

    /// Sends `payload` to every subscriber of `channel` and every matching
    /// pattern; returns how many messages were queued (Redis's reply).
    pub(crate) fn publish(&self, clients: &Clients, channel: &[u8], payload: &[u8]) -> usize {
        let (channel_bytes, payload) = (Bytes::copy_from_slice(channel), Bytes::copy_from_slice(payload));
        let mut receivers = 0;
        if let Some(ids) = self.channels.read().get(channel) {
            for &id in ids {
                let push = Push::Message {
                    channel: channel_bytes.clone(),
                    payload: payload.clone(),
                };
                receivers += usize::from(clients.send(id, push));
            }
        }
        for (pattern, id) in self.patterns.read().iter() {
            if glob::matches(pattern, channel, false) {
                let push = Push::PatternMessage {
                    pattern: pattern.clone(),
                    channel: channel_bytes.clone(),
                    payload: payload.clone(),
                };
                receivers += usize::from(clients.send(*id, push));
            }
        }
        receivers
    }

    /// Channels with at least one subscriber, matching `pattern` if given.
    pub(crate) fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.channels
            .read()
            .keys()
            .filter(|channel| pattern.is_none_or(|p| glob::matches(p, channel, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` (patterns not counted, as in Redis).
    pub(crate) fn subscribers(&self, channel: &[u8]) -> usize {
        self.channels.read().get(channel).map_or(0, Vec::len)
    }

    /// Pattern subscriptions, all clients.
    pub(crate) fn pattern_count(&self) -> usize {
        self.patterns.read().len()
    }

    /// Channels with subscribers.
    pub(crate) fn channel_count(&self) -> usize {
        self.channels.read().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_reach_channel_and_pattern_subscribers() {
        let clients = Clients::default();
        let pubsub = PubSub::default();
        let (mut a, mut b) = (clients.register(1, 1 << 20), clients.register(2, 1 << 20));
        pubsub.subscribe(1, Bytes::from_static(b"news"));
        pubsub.psubscribe(2, Bytes::from_static(b"n*"));
        assert_eq!(pubsub.publish(&clients, b"news", b"hi"), 2);
        assert_eq!(pubsub.publish(&clients, b"other", b"hi"), 0);
        assert!(matches!(a.try_recv(), Some(Push::Message { .. })));
        assert!(matches!(b.try_recv(), Some(Push::PatternMessage { .. })));
        assert_eq!((pubsub.subscribers(b"news"), pubsub.pattern_count()), (1, 1));
        assert_eq!(pubsub.channels(Some(b"ne*")), vec![Bytes::from_static(b"news")]);
        pubsub.unsubscribe(1, b"news");
        pubsub.punsubscribe(2, b"n*");
        assert_eq!(pubsub.publish(&clients, b"news", b"hi"), 0);
        assert_eq!(pubsub.channel_count(), 0);
    }
}
