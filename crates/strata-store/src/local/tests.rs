//! Tests of the local cache: API, TTLs with a manual clock, and
//! single-flight under real threads and tasks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;

fn cache() -> LocalCache<u64, String> {
    LocalCache::builder().max_capacity(1_000).build()
}

#[test]
fn insert_get_invalidate() {
    let c = cache();
    assert_eq!(c.get(&1), None);
    c.insert(&1, &"a".to_string()).unwrap();
    c.insert(&2, &"b".to_string()).unwrap();
    assert_eq!(c.get(&1).as_deref(), Some("a"));
    assert!(c.contains_key(&2));
    assert!(c.invalidate(&1));
    assert!(!c.invalidate(&1));
    assert_eq!(c.remove(&2).as_deref(), Some("b"));
    c.insert(&3, &"c".to_string()).unwrap();
    c.invalidate_all();
    assert_eq!(c.entry_count(), 0);
    let s = c.stats();
    // get(1) hit, remove(2) read a live entry; get(1) before insert missed.
    assert_eq!((s.hits, s.misses), (2, 1));
}

#[test]
fn capacity_in_entries_and_bytes() {
    let c: LocalCache<u32, Vec<u8>> = LocalCache::builder().max_capacity(100).policy(PolicyKind::Lru).build();
    for i in 0..1_000 {
        c.insert(&i, &vec![0; 10]).unwrap();
    }
    assert!(c.entry_count() <= 100);
    let c: LocalCache<u32, Vec<u8>> = LocalCache::builder().max_bytes(50_000).build();
    for i in 0..1_000 {
        c.insert(&i, &vec![0; 1_000]).unwrap();
    }
    assert!(c.weighted_size() <= 50_000);
    assert!(c.entry_count() >= 40, "{}", c.entry_count());
    let err = c.insert(&5, &vec![0; 2_000_000]).unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }));
}

#[test]
fn default_and_per_entry_ttl() {
    let clock = ManualClock::new(1_000_000);
    let c: LocalCache<&str, String> = LocalCache::builder()
        .max_capacity(100)
        .time_to_live(Duration::from_secs(10))
        .clock(clock.clone())
        .build();
    c.insert(&"default", &"d".into()).unwrap();
    c.insert_with_ttl(&"short", &"s".into(), Some(Duration::from_secs(1)))
        .unwrap();
    c.insert_with_ttl(&"forever", &"f".into(), None).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(c.get(&"short"), None);
    assert!(c.get(&"default").is_some());
    clock.advance(Duration::from_secs(9));
    assert_eq!(c.get(&"default"), None);
    assert!(c.get(&"forever").is_some());
    assert_eq!(c.stats().expirations, 2);
}

#[test]
fn single_flight_runs_the_loader_once_for_concurrent_misses() {
    const THREADS: usize = 16;
    let c = Arc::new(cache());
    let loads = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Arc::new(parking_lot::Mutex::new(release_rx));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (c, loads, start, release_rx) = (c.clone(), loads.clone(), start.clone(), release_rx.clone());
            std::thread::spawn(move || {
                start.wait();
                c.get_or_load(&7, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    // Hold the load open until the test has seen every
                    // thread miss.
                    release_rx.lock().recv().unwrap();
                    Ok::<_, String>("seven".to_string())
                })
            })
        })
        .collect();
    while c.stats().misses < THREADS as u64 {
        std::thread::yield_now();
    }
    release_tx.send(()).unwrap();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), "seven");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(c.get(&7).as_deref(), Some("seven"));
    assert_eq!(c.stats().loads, 1);
}

#[test]
fn loader_errors_reach_every_waiter_and_are_not_cached() {
    let c = Arc::new(cache());
    let first: Result<String, Arc<String>> = c.get_or_load(&1, || Err("db down".to_string()));
    assert_eq!(first.unwrap_err().as_str(), "db down");
    assert!(!c.contains_key(&1));
    // A later call loads again.
    let second = c.get_or_load(&1, || Ok::<_, String>("up".into()));
    assert_eq!(second.unwrap(), "up");
    assert_eq!(c.stats().load_errors, 1);

    // Concurrent waiters share the leader's error.
    const THREADS: usize = 8;
    let start = Arc::new(Barrier::new(THREADS));
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Arc::new(parking_lot::Mutex::new(release_rx));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (c, start, release_rx) = (c.clone(), start.clone(), release_rx.clone());
            std::thread::spawn(move || {
                start.wait();
                c.get_or_load(&2, || {
                    release_rx.lock().recv().unwrap();
                    Err::<String, _>("boom".to_string())
                })
            })
        })
        .collect();
    while c.stats().misses < 2 + THREADS as u64 {
        std::thread::yield_now();
    }
    release_tx.send(()).unwrap();
    let errors: Vec<_> = handles.into_iter().map(|h| h.join().unwrap().unwrap_err()).collect();
    assert!(errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])), "one shared error");
    assert!(!c.contains_key(&2));
}

#[test]
fn a_panicking_loader_hands_over_to_a_waiter() {
    let c = Arc::new(cache());
    let c2 = c.clone();
    let panicked =
        std::thread::spawn(move || c2.get_or_load(&3, || -> Result<String, String> { panic!("loader bug") })).join();
    assert!(panicked.is_err());
    // The flight was abandoned, not left pending.
    assert_eq!(c.get_or_load(&3, || Ok::<_, String>("ok".into())).unwrap(), "ok");
}

#[test]
fn invalidation_during_a_load_prevents_caching_it() {
    let c = cache();
    let value = c
        .get_or_load(&9, || {
            // The key is invalidated while the (old) value is being loaded.
            c.invalidate(&9);
            Ok::<_, String>("stale".to_string())
        })
        .unwrap();
    assert_eq!(value, "stale", "the caller still gets its load");
    assert!(!c.contains_key(&9), "but it is not cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_single_flight_and_cancellation() {
    let c = Arc::new(cache());
    let loads = Arc::new(AtomicUsize::new(0));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (c, loads, mut release_rx) = (c.clone(), loads.clone(), release_rx.clone());
        tasks.push(tokio::spawn(async move {
            c.get_or_load_async(&5, || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                release_rx.wait_for(|&go| go).await.unwrap();
                Ok::<_, String>("five".to_string())
            })
            .await
        }));
    }
    while c.stats().misses < 50 {
        tokio::task::yield_now().await;
    }
    release_tx.send(true).unwrap();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "five");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);

    // A leader whose future is dropped mid-load: a waiter takes over.
    let (hold_tx, hold_rx) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let c = c.clone();
        tokio::spawn(async move {
            c.get_or_load_async(&6, || async move {
                let _ = hold_rx.await;
                Ok::<_, String>("never".to_string())
            })
            .await
        })
    };
    while c.stats().misses < 51 {
        tokio::task::yield_now().await;
    }
    let waiter = {
        let c = c.clone();
        tokio::spawn(async move {
            c.get_or_load_async(&6, || async { Ok::<_, String>("taken over".to_string()) })
                .await
        })
    };
    while c.stats().misses < 52 {
        tokio::task::yield_now().await;
    }
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    assert_eq!(waiter.await.unwrap().unwrap(), "taken over");
    drop(hold_tx);
}
