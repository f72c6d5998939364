//! The client's conditional stores, incr/decr, get-and-touch and `meta`
//! against real strata servers on loopback, and what happens to each when
//! the key's owner is down: it lands on the gutter with the gutter's short
//! TTL, and is replayed as a delete when the owner returns.

mod support;

use std::time::Duration;

use strata_client::StoreOutcome;
use strata_proto::memcache::{Limits, MetaCode, Parsed, Response, parse_request};
use support::{Cluster, Mode};

const TTL: Option<Duration> = Some(Duration::from_secs(600));

/// The first request in `line`, parsed as the proxy parses it.
fn request(line: &[u8]) -> strata_proto::memcache::Request<'_> {
    match parse_request(line, &Limits::default()) {
        Ok(Parsed::Request { request, .. }) => request,
        other => panic!("{line:?}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_stores_arithmetic_and_get_and_touch() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client(3);
    client.set_item(b"k", b"v1", 7, TTL).await.unwrap();
    let item = client.get_item(b"k").await.unwrap().expect("stored");
    assert_eq!((item.flags, item.value.as_slice()), (7, &b"v1"[..]));
    assert!(item.ttl.is_some_and(|ttl| ttl > Duration::from_secs(590)), "{item:?}");
    assert_eq!(
        client.cas_item(b"k", b"v2", 7, TTL, item.cas).await.unwrap(),
        StoreOutcome::Stored
    );
    assert_eq!(
        client.cas_item(b"k", b"v3", 7, TTL, item.cas).await.unwrap(),
        StoreOutcome::Exists,
        "the unique is spent"
    );
    assert_eq!(
        client.cas_item(b"gone", b"v", 0, None, item.cas).await.unwrap(),
        StoreOutcome::NotFound
    );

    assert!(!client.replace_item(b"gone", b"x", 0, None).await.unwrap());
    assert!(client.replace_item(b"k", b"mid", 1, None).await.unwrap());
    assert!(client.append(b"k", b">").await.unwrap());
    assert!(client.prepend(b"k", b"<").await.unwrap());
    assert!(!client.append(b"gone", b">").await.unwrap());
    let item = client.get_item(b"k").await.unwrap().expect("present");
    assert_eq!((item.value.as_slice(), item.flags, item.ttl), (&b"<mid>"[..], 1, None));

    client.set(b"n", b"41", None).await.unwrap();
    assert_eq!(client.incr(b"n", 1).await.unwrap(), Some(42));
    assert_eq!(client.decr(b"n", 50).await.unwrap(), Some(0), "decr stops at 0");
    assert_eq!(client.incr(b"gone", 1).await.unwrap(), None);
    let refused = client.incr(b"k", 1).await.unwrap_err();
    assert!(
        matches!(&refused, strata_client::ClientError::Refused(m) if m.contains("non-numeric")),
        "{refused}"
    );

    let item = client
        .get_and_touch(b"k", Duration::from_secs(100))
        .await
        .unwrap()
        .expect("present");
    assert_eq!(item.value, b"<mid>");
    assert!(item.ttl.is_some_and(|ttl| ttl <= Duration::from_secs(100)), "{item:?}");
    let item = client
        .get_and_touch(b"k", Duration::ZERO)
        .await
        .unwrap()
        .expect("present");
    assert_eq!(item.ttl, None, "touched to never expire");
    assert_eq!(
        client.get_and_touch(b"gone", Duration::from_secs(1)).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_requests_go_to_the_keys_owner_as_they_came() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client(3);
    let reply = client.meta(&request(b"ms k 2 F9 T0 q\r\nhi\r\n")).await.unwrap();
    // `q` is not sent: the reply comes back for the caller to hide.
    assert!(
        matches!(&reply, Response::Meta(meta) if meta.code == MetaCode::Hd),
        "{reply:?}"
    );
    let owner = cluster.index_of(&client.ring().owner(b"k").unwrap().1.address());
    assert!(cluster.servers[owner].store().contains(b"k"));
    let reply = client.meta(&request(b"mg k v f Oop k\r\n")).await.unwrap();
    let mut encoded = Vec::new();
    strata_proto::memcache::encode_response(&mut encoded, &reply);
    assert_eq!(String::from_utf8_lossy(&encoded), "VA 2 f9 Oop kk\r\nhi\r\n");
    let reply = client.meta(&request(b"md nokey q\r\n")).await.unwrap();
    assert!(matches!(&reply, Response::Meta(meta) if meta.code == MetaCode::Nf));
    assert!(matches!(
        client.meta(&request(b"get k\r\n")).await,
        Err(strata_client::ClientError::Refused(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_a_stand_in_get_the_gutter_ttl_and_are_replayed() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client(3);
    let ring = client.ring();
    let owner_of = |key: &[u8]| cluster.index_of(&ring.owner(key).unwrap().1.address());
    let down = owner_of(b"k0");
    let keys: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("k{i}").into_bytes())
        .filter(|key| owner_of(key) == down)
        .take(4)
        .collect();
    assert_eq!(keys.len(), 4);
    for key in &keys {
        client.set(key, b"7", TTL).await.unwrap();
    }
    // Cut off, not restarted: the owner keeps its old values.
    cluster.relays[down].set(Mode::Stall);
    let (by_meta, by_incr, by_touch, by_cas) = (&keys[0], &keys[1], &keys[2], &keys[3]);
    let line = [b"ms ".as_slice(), by_meta, b" 3 T0\r\nnew\r\n"].concat();
    let reply = client.meta(&request(&line)).await.unwrap();
    assert!(
        matches!(&reply, Response::Meta(meta) if meta.code == MetaCode::Hd),
        "{reply:?}"
    );
    client.set(by_incr, b"1", TTL).await.unwrap();
    assert_eq!(client.incr(by_incr, 1).await.unwrap(), Some(2));
    client.set(by_touch, b"t", TTL).await.unwrap();
    assert!(client.touch(by_touch, Duration::ZERO).await.unwrap());
    let cas = client.get_item(by_cas).await.unwrap();
    assert_eq!(cas, None, "the gutter starts without it");
    client.set(by_cas, b"c", TTL).await.unwrap();
    let cas = client.get_item(by_cas).await.unwrap().expect("on the gutter").cas;
    assert_eq!(
        client.cas_item(by_cas, b"d", 0, None, cas).await.unwrap(),
        StoreOutcome::Stored
    );
    assert_eq!(client.down_nodes().len(), 1, "the owner is down");
    // Everything on the gutter lives at most the gutter TTL (60 s), however
    // long the request asked for: never expiring included.
    let gutter = cluster.gutter.store();
    let now = gutter.clock().now_ms();
    for key in &keys {
        let expire = gutter
            .peek(key, |item| item.expire_at_ms())
            .flatten()
            .unwrap_or_else(|| panic!("{} on the gutter with a TTL", String::from_utf8_lossy(key)));
        assert!(expire - now <= 60_000, "gutter TTL {} ms", expire - now);
    }
    // The owner returns: every key written elsewhere is deleted on it
    // before it serves again, so none of its old values comes back.
    cluster.relays[down].set(Mode::Pass);
    assert_eq!(client.probe_down_nodes().await.len(), 1);
    for key in &[by_meta, by_incr, by_cas] {
        assert!(!cluster.servers[down].store().contains(key), "replayed on the owner");
    }
}
