//! Black-box tests of the PostgreSQL origin and the replication-slot change
//! source against a real, private PostgreSQL (`pgtest`), one server per
//! test. Without PostgreSQL installed they skip loudly; with
//! `STRATA_REQUIRE_POSTGRES=1` (CI) they fail instead.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use strata_node::invalidator::postgres::{SlotBatch, SlotSource};
use strata_node::origin::{Applied, Origin, OriginError, PostgresOrigin, Write};
use strata_node::pgtest::{self, PgServer};

/// The longest an operation on a dead database may take before erroring.
const DEAD_BOUND: Duration = Duration::from_secs(12);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn keys(batch: &SlotBatch) -> Vec<&str> {
    batch
        .changes
        .iter()
        .map(|change| std::str::from_utf8(&change.key).expect("UTF-8 key"))
        .collect()
}

/// A new slot, moved past the cluster flush its creation queued (checked
/// here: a slot starts with one).
async fn new_slot(pg: &PgServer, name: &str) -> SlotSource {
    let source = SlotSource::connect(&pg.url(), name).await.expect("slot");
    let first = source
        .peek(100)
        .await
        .unwrap()
        .expect("a new slot starts with a flush message");
    assert!(first.flush_all && first.changes.is_empty(), "{first:?}");
    source.advance(&first.upto_lsn).await.unwrap();
    assert_eq!(source.peek(100).await.unwrap(), None);
    source
}

/// A plain client for writes the origin does not make (messages, other
/// tables, aborted transactions).
async fn raw_client(pg: &PgServer) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn origin_crud_and_versions() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let origin = Origin::open(&pg.url()).await.expect("open");
    assert_eq!(origin.engine(), "postgres");
    origin.ping().await.expect("ping");
    assert_eq!(origin.get("a").await.unwrap(), None);

    let before = now_ms();
    let first = origin.put("a", "one").await.unwrap();
    assert_eq!(
        (first.id.as_str(), first.value.as_str(), first.version),
        ("a", "one", 1)
    );
    assert!((before - 1000..=now_ms() + 1000).contains(&first.updated_at_ms));
    let second = origin.put("a", "two").await.unwrap();
    assert_eq!(second.version, 2);
    assert!(second.updated_at_ms >= first.updated_at_ms);
    assert_eq!(origin.get("a").await.unwrap(), Some(second.clone()));

    // Quotes, unicode, empty strings and a long value survive.
    let odd_id = "it's \"odd\" é 🦀";
    let long = "x".repeat(100_000);
    origin.put(odd_id, &long).await.unwrap();
    origin.put("", "").await.unwrap();
    assert_eq!(origin.get(odd_id).await.unwrap().unwrap().value, long);
    assert_eq!(origin.get("").await.unwrap().unwrap().value, "");

    // Byte order, whatever the collation: "B" < "a" < "b".
    origin.put("b", "1").await.unwrap();
    origin.put("B", "1").await.unwrap();
    let ids: Vec<String> = origin.scan().await.unwrap().into_iter().map(|row| row.id).collect();
    assert_eq!(ids, ["", "B", "a", "b", odd_id]);

    assert!(origin.delete("a").await.unwrap());
    assert!(!origin.delete("a").await.unwrap());
    assert_eq!(origin.get("a").await.unwrap(), None);
    // A re-inserted row starts again at version 1.
    assert_eq!(origin.put("a", "again").await.unwrap().version, 1);

    // A second origin on the same database finds the table there.
    let again = PostgresOrigin::connect(&pg.url()).await.expect("second connect");
    assert_eq!(again.get("a").await.unwrap().unwrap().value, "again");
}

#[tokio::test]
async fn commits_stay_durable_when_a_default_or_the_url_turns_synchronous_commit_off() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let origin = PostgresOrigin::connect(&pg.url()).await.expect("connect");
    assert_eq!(origin.synchronous_commit().await.unwrap(), "on", "left as it was");

    // A role default turns it off for every new session...
    let raw = raw_client(&pg).await;
    raw.batch_execute(&format!(
        "ALTER ROLE {} SET synchronous_commit = off",
        pgtest::SUPERUSER
    ))
    .await
    .unwrap();
    let plain = raw_client(&pg).await;
    let row = plain.query_one("SHOW synchronous_commit", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "off");
    // ...but not for the origin's.
    let origin = PostgresOrigin::connect(&pg.url()).await.expect("connect");
    assert_eq!(origin.synchronous_commit().await.unwrap(), "local");
    origin.apply(&[Write::put("a", "durable")]).await.expect("apply");

    // Nor can the URL's options.
    raw.batch_execute(&format!("ALTER ROLE {} RESET synchronous_commit", pgtest::SUPERUSER))
        .await
        .unwrap();
    let url = format!("{}?options=-c%20synchronous_commit%3Doff", pg.url());
    let origin = PostgresOrigin::connect(&url).await.expect("connect");
    assert_eq!(origin.synchronous_commit().await.unwrap(), "local");
}

#[tokio::test]
async fn concurrent_writes_get_distinct_versions() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let origin = std::sync::Arc::new(Origin::open(&pg.url()).await.expect("open"));
    let writers: Vec<_> = (0..40)
        .map(|n| {
            let origin = std::sync::Arc::clone(&origin);
            tokio::spawn(async move { origin.put("hot", &n.to_string()).await.unwrap().version })
        })
        .collect();
    let mut versions = Vec::new();
    for writer in writers {
        versions.push(writer.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=40).collect::<Vec<i64>>());
    assert_eq!(origin.get("hot").await.unwrap().unwrap().version, 40);
}

#[tokio::test]
async fn apply_is_one_transaction() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let origin = Origin::open(&pg.url()).await.expect("open");
    origin.put("x", "1").await.unwrap();

    let applied = origin
        .apply(&[
            Write::put("y", "1"),
            Write::put("x", "2"),
            Write::delete("y"),
            Write::delete("nope"),
            Write::put("y", "3"),
        ])
        .await
        .unwrap();
    let summary: Vec<String> = applied
        .iter()
        .map(|applied| match applied {
            Applied::Put(row) => format!("put {} v{}", row.id, row.version),
            Applied::Deleted { id, existed } => format!("delete {id} {existed}"),
        })
        .collect();
    assert_eq!(
        summary,
        ["put y v1", "put x v2", "delete y true", "delete nope false", "put y v1"]
    );
    assert_eq!(origin.apply(&[]).await.unwrap(), []);

    // PostgreSQL refuses NUL in text: the third write fails, so the whole
    // batch rolls back.
    let error = origin
        .apply(&[
            Write::put("x", "3"),
            Write::delete("y"),
            Write::put("z", "bad\0value"),
            Write::put("w", "1"),
        ])
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("write 3 of 4"), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{}", pg.port())), "{message}");
    assert_eq!(origin.get("x").await.unwrap().unwrap().version, 2);
    assert_eq!(origin.get("y").await.unwrap().unwrap().value, "3");
    assert_eq!(origin.get("z").await.unwrap(), None);
    assert_eq!(origin.get("w").await.unwrap(), None);
    // The connection that failed is usable again.
    for _ in 0..10 {
        origin.put("x", "after").await.unwrap();
    }
}

#[tokio::test]
async fn dead_database_gives_errors_in_bounded_time_then_recovers() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let origin = Origin::open(&pg.url()).await.expect("open");
    origin.put("a", "1").await.unwrap();

    pg.stop();
    let target = format!("127.0.0.1:{}", pg.port());
    for round in 0..3 {
        let started = Instant::now();
        let errors = [
            origin.get("a").await.map(drop),
            origin.put("a", "2").await.map(drop),
            origin.ping().await,
            origin.scan().await.map(drop),
        ];
        for error in errors {
            let message = error.expect_err("a stopped database answered").to_string();
            assert!(message.contains(&target), "round {round}: {message}");
        }
        assert!(started.elapsed() < DEAD_BOUND, "took {:?}", started.elapsed());
    }
    let error = PostgresOrigin::connect(&pg.url()).await.unwrap_err().to_string();
    assert!(error.contains(&format!("cannot connect to {target}")), "{error}");

    pg.restart().expect("restart");
    // The pool drops its dead connections and opens new ones.
    assert_eq!(origin.get("a").await.unwrap().unwrap().value, "1");
    assert_eq!(origin.put("a", "3").await.unwrap().version, 2);
}

/// A server that accepts TCP connections and never answers: connecting
/// must time out (tokio's paused clock jumps the wait).
#[tokio::test(start_paused = true)]
async fn silent_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("postgres://strata@127.0.0.1:{port}/postgres");
    let error = PostgresOrigin::connect(&url).await.unwrap_err();
    assert!(matches!(error, OriginError::Postgres(_)));
    assert!(
        error
            .to_string()
            .contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{error}"
    );
    let error = SlotSource::connect(&url, "s").await.unwrap_err().to_string();
    assert!(
        error.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{error}"
    );
    drop(listener);
}

#[tokio::test]
async fn slot_delivers_commits_in_order_and_advance_consumes_them() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let origin = Origin::open(&pg.url()).await.expect("open");
    let source = new_slot(&pg, "strata_test").await;
    assert_eq!(source.slot(), "strata_test");

    let before = now_ms();
    origin.put("a", "1").await.unwrap();
    origin.put("b", "1").await.unwrap();
    origin
        .apply(&[Write::put("c", "1"), Write::delete("a"), Write::put("c", "2")])
        .await
        .unwrap();
    origin.delete("b").await.unwrap();
    origin.delete("never-there").await.unwrap();
    // A failed batch commits nothing, so the slot shows nothing of it.
    origin
        .apply(&[Write::put("rolled", "back"), Write::put("z", "\0")])
        .await
        .unwrap_err();

    let batch = source.peek(1000).await.unwrap().expect("changes");
    // One change per key per transaction, transactions in commit order.
    assert_eq!(keys(&batch), ["item:a", "item:b", "item:c", "item:a", "item:b"]);
    let times: Vec<i64> = batch
        .changes
        .iter()
        .map(|c| c.committed_at_ms.expect("commit time"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(
        times[0] >= before - 1000 && times[4] <= now_ms() + 1000,
        "{times:?} vs {before}"
    );
    assert_eq!(times[2], times[3], "one transaction, one commit time");

    // Peeking does not consume.
    assert_eq!(source.peek(1000).await.unwrap().as_ref(), Some(&batch));

    // A small limit still returns whole transactions; advancing past one
    // makes the next peek start at the next.
    let lag_before = source.lag_bytes().await.unwrap();
    assert!(lag_before > 0);
    let first = source.peek(1).await.unwrap().unwrap();
    assert_eq!(keys(&first), ["item:a"]);
    source.advance(&first.upto_lsn).await.unwrap();
    let second = source.peek(1).await.unwrap().unwrap();
    assert_eq!(keys(&second), ["item:b"]);
    source.advance(&second.upto_lsn).await.unwrap();
    let third = source.peek(1).await.unwrap().unwrap();
    assert_eq!(keys(&third), ["item:c", "item:a"]);
    // Advancing again to an older position is harmless.
    source.advance(&first.upto_lsn).await.unwrap();

    source.advance(&batch.upto_lsn).await.unwrap();
    assert_eq!(source.peek(1000).await.unwrap(), None);
    assert!(source.lag_bytes().await.unwrap() < lag_before);

    origin.put("d", "1").await.unwrap();
    assert_eq!(keys(&source.peek(1000).await.unwrap().unwrap()), ["item:d"]);

    assert!(source.advance("not an lsn").await.is_err());
    source.drop_slot().await.unwrap();
    let error = source.peek(10).await.unwrap_err().to_string();
    assert!(error.contains("strata_test"), "{error}");
    assert!(source.lag_bytes().await.is_err());
}

#[tokio::test]
async fn reconnected_source_redelivers_what_was_not_advanced() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let origin = Origin::open(&pg.url()).await.expect("open");
    let source = new_slot(&pg, "resume").await;
    origin.put("x", "1").await.unwrap();
    let peeked = source.peek(100).await.unwrap().unwrap();
    assert_eq!(keys(&peeked), ["item:x"]);
    // Crash between peek and advance.
    drop(source);

    let source = SlotSource::connect(&pg.url(), "resume").await.expect("reconnect");
    let again = source.peek(100).await.unwrap().unwrap();
    assert_eq!(again, peeked, "at least once: the batch comes again");
    source.advance(&again.upto_lsn).await.unwrap();
    origin.put("y", "1").await.unwrap();
    drop(source);

    // Writes while no source is connected are kept by the slot.
    origin.put("z", "1").await.unwrap();
    let source = SlotSource::connect(&pg.url(), "resume").await.expect("reconnect");
    let batch = source.peek(100).await.unwrap().unwrap();
    assert_eq!(keys(&batch), ["item:y", "item:z"]);
}

#[tokio::test]
async fn database_crash_loses_no_committed_change() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let origin = Origin::open(&pg.url()).await.expect("open");
    let source = new_slot(&pg, "crashy").await;
    origin.put("a", "1").await.unwrap();
    let batch = source.peek(100).await.unwrap().unwrap();
    source.advance(&batch.upto_lsn).await.unwrap();
    origin.put("b", "1").await.unwrap();

    pg.crash();
    let started = Instant::now();
    let error = source.peek(100).await.unwrap_err().to_string();
    assert!(started.elapsed() < DEAD_BOUND);
    assert!(error.contains(&format!("127.0.0.1:{}", pg.port())), "{error}");
    pg.restart().expect("restart after crash");

    let source = SlotSource::connect(&pg.url(), "crashy").await.expect("reconnect");
    let batch = source.peek(100).await.unwrap().unwrap();
    let got = keys(&batch);
    // The advance may not have reached a checkpoint before the crash, so
    // `item:a` may come again; `item:b` must come.
    assert!(got == ["item:b"] || got == ["item:a", "item:b"], "{got:?}");
    source.advance(&batch.upto_lsn).await.unwrap();
    assert_eq!(source.peek(100).await.unwrap(), None);
    assert_eq!(origin.get("b").await.unwrap().unwrap().version, 1);
}

#[tokio::test]
async fn messages_name_extra_keys_and_other_tables_are_ignored() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let _origin = Origin::open(&pg.url()).await.expect("open");
    let source = new_slot(&pg, "messages").await;
    let client = raw_client(&pg).await;
    client
        .batch_execute(
            "CREATE TABLE orders (id INT PRIMARY KEY);
             BEGIN;
             INSERT INTO items VALUES ('z', 'v', 1, now());
             SELECT pg_logical_emit_message(true, 'strata.invalidate', E'item:x\\nitem:y');
             SELECT pg_logical_emit_message(true, 'someone.else', 'item:not-this');
             INSERT INTO orders VALUES (1);
             COMMIT;
             BEGIN;
             SELECT pg_logical_emit_message(true, 'strata.invalidate', 'item:aborted');
             INSERT INTO items VALUES ('aborted', 'v', 1, now());
             ROLLBACK;
             INSERT INTO orders VALUES (2);
             UPDATE items SET id = 'z2' WHERE id = 'z';",
        )
        .await
        .expect("writes");
    let batch = source.peek(100).await.unwrap().unwrap();
    // Changing the id invalidates the old key and the new.
    assert_eq!(keys(&batch), ["item:z", "item:x", "item:y", "item:z", "item:z2"]);
    let times: Vec<Option<i64>> = batch.changes.iter().map(|c| c.committed_at_ms).collect();
    assert!(times.iter().all(Option::is_some));
    assert_eq!(times[0], times[2]);
    // The orders-only transaction is in the batch too (nothing to delete),
    // so advancing skips it.
    source.advance(&batch.upto_lsn).await.unwrap();
    assert_eq!(source.peek(100).await.unwrap(), None);

    client.batch_execute("INSERT INTO orders VALUES (3)").await.unwrap();
    let only_orders = source.peek(100).await.unwrap().expect("a batch to advance past");
    assert!(only_orders.changes.is_empty());
    source.advance(&only_orders.upto_lsn).await.unwrap();
    assert_eq!(source.peek(100).await.unwrap(), None);

    // A transaction holding only a message, last in the log: advancing
    // past its batch consumes it (it once came back in every peek).
    client
        .batch_execute("BEGIN; SELECT pg_logical_emit_message(true, 'strata.invalidate', 'item:m'); COMMIT;")
        .await
        .unwrap();
    let only_message = source.peek(100).await.unwrap().expect("the message");
    assert_eq!(keys(&only_message), ["item:m"]);
    assert!(
        only_message.changes[0].committed_at_ms.is_some(),
        "framed by its commit"
    );
    source.advance(&only_message.upto_lsn).await.unwrap();
    assert_eq!(source.peek(100).await.unwrap(), None);
}

#[tokio::test]
async fn the_flush_a_new_slot_owes_survives_a_reconnect_and_comes_before_later_changes() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let origin = Origin::open(&pg.url()).await.expect("open");
    let source = SlotSource::connect(&pg.url(), "owed").await.expect("slot");
    // The invalidator dies before reading anything.
    drop(source);
    origin.put("a", "1").await.unwrap();
    let source = SlotSource::connect(&pg.url(), "owed").await.expect("reconnect");
    let batch = source.peek(100).await.unwrap().expect("changes");
    assert!(batch.flush_all, "the flush is still owed: {batch:?}");
    assert_eq!(keys(&batch), ["item:a"]);
    // Only the first connect created the slot, so only one flush.
    source.advance(&batch.upto_lsn).await.unwrap();
    origin.put("b", "1").await.unwrap();
    let batch = source.peek(100).await.unwrap().expect("changes");
    assert!(!batch.flush_all);
    assert_eq!(keys(&batch), ["item:b"]);
    // An application may ask for a flush too.
    let raw = raw_client(&pg).await;
    raw.batch_execute("SELECT pg_logical_emit_message(false, 'strata.flush', '')")
        .await
        .unwrap();
    source.advance(&batch.upto_lsn).await.unwrap();
    origin.put("c", "1").await.unwrap();
    let batch = source.peek(100).await.unwrap().expect("changes");
    assert!(batch.flush_all);
    assert_eq!(keys(&batch), ["item:c"]);
}

#[tokio::test]
async fn a_transaction_too_large_to_decode_in_time_is_retried_with_a_longer_timeout() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let _origin = Origin::open(&pg.url()).await.expect("open");
    // Far less than decoding the big transaction below takes.
    let base = Duration::from_millis(20);
    let source = SlotSource::connect_with_decode_timeout(&pg.url(), "big", base)
        .await
        .expect("slot");
    assert_eq!(source.decode_timeout(), base);
    let raw = raw_client(&pg).await;
    raw.batch_execute(
        "INSERT INTO items (id, value, version, updated_at)
         SELECT 'big' || n, 'v', 1, now() FROM generate_series(1, 30000) AS n",
    )
    .await
    .unwrap();
    raw.batch_execute("INSERT INTO items VALUES ('after', 'v', 1, now())")
        .await
        .unwrap();

    // Each cancelled peek doubles the timeout; a fixed one would be
    // cancelled forever.
    let mut cancelled = 0;
    let batch = loop {
        match source.peek(1000).await {
            Ok(batch) => break batch.expect("changes"),
            Err(error) => {
                let error = error.to_string();
                assert!(error.contains("57014"), "not a statement timeout: {error}");
                cancelled += 1;
                assert!(cancelled < 20, "still cancelled after {cancelled} peeks: {error}");
            }
        }
    };
    eprintln!(
        "{cancelled} peeks cancelled; decoded with a timeout of {:?}",
        source.decode_timeout()
    );
    assert!(cancelled >= 1, "the first peek should have been cancelled at {base:?}");
    assert!(source.decode_timeout() >= base * 2);
    // The slot's own flush, then the whole big transaction, in one batch
    // (whole transactions: `upto_nchanges` is checked at commits).
    assert!(batch.flush_all);
    assert_eq!(batch.changes.len(), 30_000);
    assert!(keys(&batch).iter().all(|key| key.starts_with("item:big")));

    // Advancing past it (itself bounded by the grown timeout) lets the
    // timeout decay towards the usual one.
    let grown = source.decode_timeout();
    let mut tries = 0;
    while let Err(error) = source.advance(&batch.upto_lsn).await {
        tries += 1;
        assert!(tries < 20, "advance still failing: {error}");
    }
    if tries == 0 {
        assert_eq!(source.decode_timeout(), (grown / 2).max(base));
    }
    let mut tries = 0;
    let after = loop {
        match source.peek(1000).await {
            Ok(batch) => break batch.expect("the later change"),
            Err(error) => {
                tries += 1;
                assert!(tries < 20, "peek still failing: {error}");
            }
        }
    };
    assert_eq!(keys(&after), ["item:after"]);
}

#[tokio::test]
async fn slot_connect_is_idempotent_and_checks_names() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let one = SlotSource::connect(&pg.url(), "twice").await.expect("first");
    let two = SlotSource::connect(&pg.url(), "twice").await.expect("second");
    assert_eq!(one.lag_bytes().await.unwrap(), two.lag_bytes().await.unwrap());
    let error = SlotSource::connect(&pg.url(), "Bad-Name")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("bad replication slot name"), "{error}");

    let client = raw_client(&pg).await;
    client
        .batch_execute("SELECT pg_create_physical_replication_slot('physical')")
        .await
        .unwrap();
    let error = SlotSource::connect(&pg.url(), "physical")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a logical slot with test_decoding"), "{error}");
}

#[tokio::test]
async fn wal_level_replica_is_refused_clearly() {
    let server = match PgServer::start_with(&[("wal_level", "replica")]) {
        Ok(server) => server,
        Err(error) => return pgtest::skip_or_fail(&error.to_string()),
    };
    let error = SlotSource::connect(&server.url(), "nope")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("wal_level = replica"), "{error}");
    assert!(error.contains("wal_level = logical"), "{error}");
    // The origin itself works on such a server.
    let origin = Origin::open(&server.url()).await.expect("open");
    origin.put("a", "1").await.unwrap();
}
