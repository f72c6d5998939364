//! Entry points for the session fuzz targets (`crates/strata-server/fuzz`):
//! arbitrary bytes run through a real RESP or memcached session over a real
//! engine, fed in reads of arbitrary sizes, exactly as a connection feeds
//! them. The parser fuzzers (`strata-proto`'s) check the codecs; these check
//! everything behind them — command execution, the store's layout and
//! accounting — against hostile input. Not part of the API.
//!
//! One engine is shared by every run in a process (small, 8 MiB in one
//! shard, so eviction, overwrites, size classes and the shard's real-memory
//! budget with its compaction are all exercised), the way one server's
//! engine serves every connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use strata_store::{Capacity, Store};

use crate::config::Config;
use crate::conn::Session;
use crate::metrics::Metrics;
use crate::{Shared, memcache, resp};

fn shared() -> Arc<Shared> {
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
    Arc::clone(SHARED.get_or_init(|| {
        let config = Config {
            maxmemory: crate::ByteSize(8 << 20),
            ..Config::default()
        };
        let store = Arc::new(
            Store::builder(Capacity::Bytes(config.maxmemory.0))
                .max_item_bytes(config.max_item_size.0)
                .shards(1)
                .build(),
        );
        let metrics = Arc::new(Metrics::new(
            &resp::COMMAND_NAMES,
            memcache::COMMAND_NAMES,
            Arc::clone(&store),
        ));
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        // Sessions register their push queues here as real connections
        // do; nothing reads them, and each queue's byte limit cuts its
        // session off (drops further pushes) rather than let it grow.
        Arc::new(Shared::new(store, config, metrics, loopback, loopback))
    }))
}

/// Feeds `data` to `session` as a connection would: the first byte picks
/// the read size, replies are produced and dropped, and the run ends where
/// the session would close the connection.
fn drive(mut session: impl Session, shared: &Shared, protocol: crate::metrics::Protocol, data: &[u8]) {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let read_size = usize::from(first % 64) + 1;
    let mut stats = shared.metrics.local(protocol);
    let mut input = Vec::new();
    let mut out = Vec::new();
    for chunk in stream.chunks(read_size) {
        input.extend_from_slice(chunk);
        let outcome = session.process(&input, &mut out, &mut stats);
        assert!(
            outcome.consumed <= input.len(),
            "a session consumed more than it was given"
        );
        input.drain(..outcome.consumed);
        out.clear();
        if outcome.close {
            return;
        }
    }
    shared.metrics.flush(&mut stats);
    // CONFIG SET maxmemory may have changed the limit; it evicts down to
    // the new one at once, so the limit holds whatever it is now.
    if let Capacity::Bytes(limit) = shared.store.capacity() {
        assert!(shared.store.used() <= limit, "the engine went over its byte limit");
        // What it really holds (pages, large records, structures) too,
        // give or take the index's growth after its last check.
        let stats = shared.store.stats();
        let held = stats.record_bytes + stats.overhead_bytes;
        assert!(
            held <= limit + limit / 8,
            "the engine holds {held} bytes over its limit of {limit}"
        );
    }
}

/// Runs `data` through a RESP session.
pub fn resp_session(data: &[u8]) {
    let shared = shared();
    drive(
        resp::RespSession::new(Arc::clone(&shared)),
        &shared,
        crate::metrics::Protocol::Resp,
        data,
    );
}

/// Runs `data` through a memcached session whose lines stream past 16
/// bytes: nearly every retrieval line is answered key by key as it arrives
/// (the path long multigets take), split at arbitrary points by the reads.
pub fn memcache_stream_session(data: &[u8]) {
    let shared = shared();
    drive(
        memcache::McSession::with_line_limit(Arc::clone(&shared), 16),
        &shared,
        crate::metrics::Protocol::Memcache,
        data,
    );
}

/// Runs `data` through a memcached session.
pub fn memcache_session(data: &[u8]) {
    let shared = shared();
    drive(
        memcache::McSession::new(Arc::clone(&shared)),
        &shared,
        crate::metrics::Protocol::Memcache,
        data,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_streams_run_through_both_sessions() {
        let streams: [&[u8]; 6] = [
            b"\x07SET a 1\r\nGET a\r\nAPPEND a xyz\r\nSETRANGE a 100000 z\r\nGETRANGE a -5 -1\r\n",
            b"\x01*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$999999999\r\n",
            b"\x02*-1\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\nLCS a b\r\nSCAN 0 COUNT 1000000\r\n",
            b"\x03set k 0 0 5\r\nhello\r\nappend k 0 0 3\r\nabc\r\nmg k v t c N30\r\nms k 2 I\r\nxy\r\nmd k I\r\nmg k v\r\n",
            b"\x05set k 0 0 99999999\r\nget k\r\nincr k 1\r\ngat 10 k\r\nmn\r\nme k\r\n",
            b"\x3fGET\r\n\r\n\r\nSET x\r\nHELLO 3\r\nHELLO 9\r\nCLIENT SETNAME a b\r\nQUIT\r\nGET x\r\n",
        ];
        for stream in streams {
            resp_session(stream);
            memcache_session(stream);
            memcache_stream_session(stream);
        }
        let long =
            b"\x05set a 0 0 1\r\nA\r\nget a b a c a\r\ngets a  a\r\ngat 10 a a a a a a\r\nget a \x01 a\r\nget a\r\n";
        memcache_stream_session(long);
        // Large, growing and shrinking values across the size classes.
        let mut stream = vec![0x10];
        for len in [10usize, 3_000, 13_700, 13_707, 40_000, 13_701, 1] {
            stream.extend_from_slice(format!("SET big {}\r\n", "v".repeat(len)).as_bytes());
        }
        resp_session(&stream);
    }
}
