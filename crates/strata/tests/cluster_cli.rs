//! Black-box tests of `strata proxy` and `strata up`: real `strata server`
//! processes on free loopback ports, the proxy binary in front, real client
//! crates (redis, memcache) talking to it; a server killed with SIGKILL
//! mid-load; a reload on SIGHUP; clean exits on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits (at most 15 s) for the exit code.
    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the process did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts the binary with `args` and returns it with its first stdout line.
fn spawn(args: &[&str]) -> (Process, String, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env("STRATA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the strata binary runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a first line");
    (Process(child), line, stdout)
}

fn addr_after(line: &str, label: &str) -> String {
    let rest = &line[line.find(label).unwrap_or_else(|| panic!("{label} in {line}")) + label.len()..];
    rest.split([',', ' ']).next().expect("an address").trim().to_owned()
}

/// A `strata server` on free ports: (process, RESP address, memcached address).
fn server() -> (Process, String, String) {
    let (process, line, _) = spawn(&[
        "server",
        "--port",
        "0",
        "--memcache-port",
        "0",
        "--admin-port",
        "0",
        "--threads",
        "1",
    ]);
    let (resp, memcache) = (addr_after(&line, "RESP on "), addr_after(&line, "memcached on "));
    (process, resp, memcache)
}

fn cluster_file(dir: &std::path::Path, main: &[&String], gutter: &String) -> std::path::PathBuf {
    let quoted = |nodes: &[&String]| nodes.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
    let path = dir.join("cluster.toml");
    std::fs::write(
        &path,
        format!(
            "[pools.main]\nnodes = [{}]\n[pools.gutter]\nnodes = [{}]\n",
            quoted(main),
            quoted(&[gutter])
        ),
    )
    .expect("write the cluster file");
    path
}

fn connect_redis(addr: &str) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("url");
    let connection = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect");
    connection
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    connection
}

fn dbsize(addr: &str) -> i64 {
    redis::cmd("DBSIZE").query(&mut connect_redis(addr)).expect("DBSIZE")
}

/// A password-protected cluster behind the proxy (the finding: the proxy
/// could neither ask its clients for a password nor give one to its
/// servers, so such a cluster could not be proxied at all).
#[test]
fn the_proxy_authenticates_its_clients_and_to_its_servers() {
    let (server, _, memcache) = {
        let (process, line, _) = spawn(&[
            "server",
            "--port",
            "0",
            "--memcache-port",
            "0",
            "--admin-port",
            "0",
            "--threads",
            "1",
            "--requirepass",
            "server-s3cret",
        ]);
        let (resp, memcache) = (addr_after(&line, "RESP on "), addr_after(&line, "memcached on "));
        (process, resp, memcache)
    };
    let dir = std::env::temp_dir().join(format!("strata-proxy-auth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cluster.toml");
    std::fs::write(&path, format!("[pools.main]\nnodes = [\"{memcache}\"]\n")).unwrap();
    let (proxy, line, _) = spawn(&[
        "proxy",
        "--config",
        path.to_str().unwrap(),
        "--port",
        "0",
        "--memcache-port",
        "0",
        "--requirepass",
        "proxy-s3cret",
        "--server-password",
        "server-s3cret",
    ]);
    let proxy_resp = addr_after(&line, "RESP on ");

    let mut stranger = connect_redis(&proxy_resp);
    let refused: redis::RedisResult<Option<String>> = redis::cmd("GET").arg("k").query(&mut stranger);
    let error = refused.expect_err("no password, no data");
    assert!(error.to_string().contains("NOAUTH"), "{error}");

    let client = redis::Client::open(format!("redis://:proxy-s3cret@{proxy_resp}/")).expect("url");
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("AUTH");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .expect("SET through the proxy");
    let value: String = redis::cmd("GET")
        .arg("k")
        .query(&mut conn)
        .expect("GET through the proxy");
    assert_eq!(value, "v");
    drop((proxy, server));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_proxy_routes_fails_over_reloads_and_exits_cleanly() {
    let mut servers: Vec<_> = (0..3).map(|_| server()).collect();
    let gutter = server();
    let dir = std::env::temp_dir().join(format!("strata-proxy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let main: Vec<String> = servers.iter().map(|(_, _, mc)| mc.clone()).collect();
    let main: Vec<&String> = main.iter().collect();
    let path = cluster_file(&dir, &main, &gutter.2);
    let (mut proxy, line, _) = spawn(&[
        "proxy",
        "--config",
        path.to_str().unwrap(),
        "--port",
        "0",
        "--memcache-port",
        "0",
        "--timeout-ms",
        "300",
    ]);
    let (proxy_resp, proxy_mc) = (addr_after(&line, "RESP on "), addr_after(&line, "memcached on "));

    // RESP through the proxy, keys spread over the three servers.
    let mut conn = connect_redis(&proxy_resp);
    for i in 0..300 {
        let _: () = redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg(i)
            .query(&mut conn)
            .unwrap();
    }
    let value: String = redis::cmd("GET").arg("key:42").query(&mut conn).unwrap();
    assert_eq!(value, "42");
    let values: Vec<Option<String>> = redis::cmd("MGET")
        .arg("key:1")
        .arg("nope")
        .arg("key:2")
        .query(&mut conn)
        .unwrap();
    assert_eq!(values, [Some("1".into()), None, Some("2".into())]);
    let sizes: Vec<i64> = servers[..3].iter().map(|(_, resp, _)| dbsize(resp)).collect();
    assert_eq!(sizes.iter().sum::<i64>(), 300, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n > 50), "ketama spreads the keys: {sizes:?}");
    let unknown: redis::RedisResult<()> = redis::cmd("HSET").arg("h").arg("f").arg("v").query(&mut conn);
    assert!(unknown.unwrap_err().to_string().contains("unknown command"));
    // SET's options are read by strata-proto's parser: an EXAT whose
    // milliseconds overflow is refused (not a panic or a wrapped TTL), and a
    // repeated expiry is a syntax error, as in Redis.
    let overflow: redis::RedisResult<()> = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EXAT")
        .arg("9223372036854775807")
        .query(&mut conn);
    assert!(
        overflow
            .unwrap_err()
            .to_string()
            .contains("invalid expire time in 'set' command"),
        "EXAT overflow"
    );
    let twice: redis::RedisResult<()> = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg("1")
        .arg("EX")
        .arg("2")
        .query(&mut conn);
    assert!(twice.unwrap_err().to_string().contains("syntax error"));
    let value: String = redis::cmd("GET").arg("key:42").query(&mut conn).unwrap();
    assert_eq!(value, "42", "the connection survives refused SETs");

    // A raw pipeline, inline commands, in one write: runs of SETs and GETs
    // are batched, answers stay in order; an unknown command in the middle
    // is refused without closing the connection.
    {
        use std::io::{Read, Write};
        let mut raw = std::net::TcpStream::connect(&proxy_resp).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        raw.write_all(b"SET p1 a\r\nSET p2 bb\r\nGET p1\r\nGET p2\r\nGET p3\r\nNOPE x\r\nDEL p1 p2 p3\r\nGET p1\r\n")
            .unwrap();
        let expected: &[u8] = b"+OK\r\n+OK\r\n$1\r\na\r\n$2\r\nbb\r\n$-1\r\n-ERR unknown command 'NOPE', with args beginning with: 'x' \r\n:2\r\n$-1\r\n";
        let mut got = vec![0u8; expected.len()];
        raw.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expected));
    }

    // memcached through the proxy: flags survive, gets returns CAS uniques.
    let mc = memcache::connect(format!("memcache://{proxy_mc}?timeout=5&protocol=ascii").as_str()).expect("connect");
    mc.set("greeting", "hello", 0).unwrap();
    assert_eq!(mc.get::<String>("greeting").unwrap().as_deref(), Some("hello"));
    mc.set("n", 7u64, 0).unwrap();
    assert_eq!(mc.get::<u64>("n").unwrap(), Some(7));
    let both: std::collections::HashMap<String, String> = mc.gets(&["greeting", "key:5", "missing"]).unwrap();
    assert_eq!(both.len(), 2);
    assert!(mc.delete("greeting").unwrap());

    // SIGKILL a server mid-load: no request fails; its keys move to the gutter.
    let (victim_index, _) = servers[..3]
        .iter()
        .enumerate()
        .max_by_key(|(_, (_, resp, _))| dbsize(resp))
        .unwrap();
    let victim = &mut servers[victim_index].0;
    victim.0.kill().expect("SIGKILL");
    victim.0.wait().expect("reaped");
    for i in 0..300 {
        let _: Option<String> = redis::cmd("GET")
            .arg(format!("key:{i}"))
            .query(&mut conn)
            .expect("a failed-over read");
        let _: () = redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg("again")
            .query(&mut conn)
            .expect("a failed-over write");
    }
    assert!(dbsize(&gutter.1) > 50, "the gutter took the dead node's keys");
    let info: String = redis::cmd("INFO").query(&mut conn).unwrap();
    assert!(info.contains("nodes_down:1"), "{info}");

    // SIGHUP after rewriting the file: a new epoch.
    let survivors: Vec<&String> = main
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim_index)
        .map(|(_, m)| *m)
        .collect();
    cluster_file(&dir, &survivors, &gutter.2);
    proxy.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("INFO").query(&mut conn).unwrap();
        if info.contains("ring_epoch:2") {
            break;
        }
        assert!(Instant::now() < deadline, "no reload: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let value: String = redis::cmd("GET").arg("key:7").query(&mut conn).unwrap_or_default();
    assert!(value.is_empty() || value == "again", "never an old value: {value:?}");

    proxy.signal("TERM");
    assert_eq!(proxy.exit_code(), Some(0));
    std::fs::remove_dir_all(&dir).ok();
}

/// One HTTP/1.1 request (connection: close); the whole response.
fn http(addr: &str, method: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A base port with the whole block `strata up` uses free (bound and
/// released just before use).
fn free_block() -> u16 {
    // Tests of this file run at once: each call starts at another attempt,
    // so two of them do not pick the same block before either binds it.
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let first = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 7;
    for attempt in first..first + 50 {
        // In u32: attempt * 7_919 overflows u16 from the ninth attempt.
        let base = (20_000 + (std::process::id() % 200) * 100 + u32::from(attempt) * 7_919 % 20_000) as u16;
        let offsets = [0u16, 1, 2]
            .into_iter()
            .chain((0..4).flat_map(|i| [10 + i, 30 + i, 50 + i]));
        let held: Vec<_> = offsets
            .map(|o| std::net::TcpListener::bind(("127.0.0.1", base + o)))
            .collect();
        if held.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no free block of ports");
}

#[test]
fn up_starts_a_cluster_and_stops_it_on_sigterm() {
    let base = free_block();
    let dir = std::env::temp_dir().join(format!("strata-up-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let origin = dir.join("origin.db").display().to_string();
    let (mut up, first, mut stdout) = spawn(&[
        "up",
        "--base-port",
        &base.to_string(),
        "--status-every",
        "1",
        "--origin",
        &origin,
    ]);
    assert!(first.contains("3-node cluster"), "{first}");
    let mut pids = Vec::new();
    let mut lines = Vec::new();
    // node, proxy, three servers, the gutter, the "try" line.
    for _ in 0..7 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        if let Some(pid) = line.split("pid ").nth(1) {
            pids.push(pid.trim().to_owned());
        }
        lines.push(line);
    }
    assert_eq!(pids.len(), 4, "three servers and a gutter: {lines:?}");
    let mut conn = connect_redis(&format!("127.0.0.1:{base}"));
    let _: () = redis::cmd("SET").arg("greeting").arg("hello").query(&mut conn).unwrap();
    let value: String = redis::cmd("GET").arg("greeting").query(&mut conn).unwrap();
    assert_eq!(value, "hello");
    // The request node answers over HTTP on B+2, over the SQLite origin.
    let node = format!("127.0.0.1:{}", base + 2);
    let put = http(&node, "PUT", "/items/42", r#"{"value":"hello"}"#);
    assert!(put.starts_with("HTTP/1.1 200"), "{put}");
    let get = http(&node, "GET", "/items/42", "");
    assert!(
        get.contains(r#""value":"hello""#) && get.contains(r#""source":"origin""#),
        "{get}"
    );
    // A status line follows within a few seconds.
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("ops/s") && line.contains("keys ["), "{line}");
    assert!(line.contains("node: L1"), "{line}");
    up.signal("TERM");
    assert_eq!(up.exit_code(), Some(0));
    std::fs::remove_dir_all(&dir).ok();
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "server {pid} was stopped"
        );
    }
}

/// `strata up --requirepass`: every server requires the password, the
/// proxy asks its clients for it, and the proxy, request node and status
/// line reach the servers with it.
#[test]
fn up_with_a_password_protects_the_whole_stack() {
    let base = free_block();
    let dir = std::env::temp_dir().join(format!("strata-up-auth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let origin = dir.join("origin.db").display().to_string();
    let (mut up, first, mut stdout) = spawn(&[
        "up",
        "--nodes",
        "1",
        "--base-port",
        &base.to_string(),
        "--status-every",
        "1",
        "--origin",
        &origin,
        "--requirepass",
        "up-s3cret",
    ]);
    assert!(first.contains("1-node cluster"), "{first}");
    // node, proxy, one server, the gutter, the "try" line.
    let mut lines = Vec::new();
    for _ in 0..5 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        lines.push(line);
    }
    let server_resp = lines
        .iter()
        .find(|line| line.trim_start().starts_with("server 0"))
        .map(|line| addr_after(line, "RESP "))
        .unwrap_or_else(|| panic!("a server line in {lines:?}"));

    for addr in [format!("127.0.0.1:{base}"), server_resp] {
        let mut stranger = connect_redis(&addr);
        let refused: redis::RedisResult<Option<String>> = redis::cmd("GET").arg("k").query(&mut stranger);
        assert!(refused.is_err_and(|e| e.to_string().contains("NOAUTH")), "{addr}");
    }
    let client = redis::Client::open(format!("redis://:up-s3cret@127.0.0.1:{base}/")).expect("url");
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("AUTH");
    let _: () = redis::cmd("SET").arg("greeting").arg("hello").query(&mut conn).unwrap();
    let value: String = redis::cmd("GET").arg("greeting").query(&mut conn).unwrap();
    assert_eq!(value, "hello");
    // The request node reaches its L2 with the password.
    let node = format!("127.0.0.1:{}", base + 2);
    let put = http(&node, "PUT", "/items/42", r#"{"value":"hello"}"#);
    assert!(put.starts_with("HTTP/1.1 200"), "{put}");
    let get = http(&node, "GET", "/items/42", "");
    assert!(get.contains(r#""value":"hello""#), "{get}");
    // The status line reads the servers' stats with it too.
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let keys = line.split("keys [").nth(1).and_then(|rest| rest.split(']').next());
    assert!(keys.is_some_and(|keys| !keys.contains("down")), "{line}");
    up.signal("TERM");
    assert_eq!(up.exit_code(), Some(0));
    std::fs::remove_dir_all(&dir).ok();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the binary with `args`, without reading its output.
fn start(args: &[&str]) -> Process {
    Process(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .env("STRATA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the strata binary runs"),
    )
}

/// Polls (bounded) until `addr` accepts connections.
fn wait_listening(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn node_and_invalidator_processes_serve_and_stop_cleanly() {
    let (mut server, resp, memcache) = server();
    let dir = std::env::temp_dir().join(format!("strata-node-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let origin = dir.join("origin.db").display().to_string();
    let http_addr = format!("127.0.0.1:{}", free_port());
    let mut node = start(&[
        "node",
        "--listen",
        &http_addr,
        "--origin",
        &origin,
        "--strategy",
        "write-through",
        "--l2",
        &memcache,
        "--tracking",
        &resp,
    ]);
    wait_listening(&http_addr);
    let metrics_port = free_port();
    let mut invalidator = start(&[
        "invalidator",
        "--origin",
        &origin,
        "--l2",
        &memcache,
        "--metrics-port",
        &metrics_port.to_string(),
    ]);
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    wait_listening(&metrics_addr);

    let put = http(&http_addr, "PUT", "/items/a", r#"{"value":"one"}"#);
    assert!(
        put.starts_with("HTTP/1.1 200") && put.contains(r#""version":1"#),
        "{put}"
    );
    let get = http(&http_addr, "GET", "/items/a", "");
    assert!(get.contains(r#""value":"one""#), "{get}");
    let bad = http(&http_addr, "PUT", "/items/a", "{");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    // The write's outbox row reaches the invalidator.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = http(&metrics_addr, "GET", "/metrics", "");
        if metrics.contains("strata_invalidator_applied_total 1") {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let metrics = http(&http_addr, "GET", "/metrics", "");
    assert!(
        metrics.contains("strata_node_writes_total 1\n"),
        "the bad request changed nothing: {metrics}"
    );

    for process in [&mut node, &mut invalidator, &mut server] {
        process.signal("TERM");
        assert_eq!(process.exit_code(), Some(0));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The value of `"field":"…"` in a JSON body, crudely (tests only).
fn json_field(response: &str, field: &str) -> Option<String> {
    let start = response.find(&format!("\"{field}\":\""))? + field.len() + 4;
    let end = start + response[start..].find('"')?;
    Some(response[start..end].to_owned())
}

#[test]
fn write_behind_loses_no_acknowledged_write_to_kill_9() {
    let (mut server, resp, memcache) = server();
    let dir = std::env::temp_dir().join(format!("strata-wb-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let origin = dir.join("origin.db").display().to_string();
    let journal = dir.join("journal").display().to_string();
    let http_addr = format!("127.0.0.1:{}", free_port());
    let args = [
        "node",
        "--listen",
        &http_addr,
        "--origin",
        &origin,
        "--strategy",
        "write-behind",
        "--journal-dir",
        &journal,
        "--l2",
        &memcache,
        "--tracking",
        &resp,
    ];
    let mut acked: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut seq = 0u64;
    for round in 0..3 {
        let mut node = start(&args);
        wait_listening(&http_addr);
        // Write until a random-ish count, then SIGKILL with writes in flight
        // from another thread.
        let stop_at = 150 + round * 97;
        let writer_addr = http_addr.clone();
        // One keep-alive connection, requests pipelined and replies never
        // read: bounded in count, and no storm of short connections (whose
        // TIME_WAIT sockets would starve other tests of ports). It blocks
        // once the buffers fill, and ends when the node is killed.
        let background = std::thread::spawn(move || {
            use std::io::Write;
            let Ok(mut stream) = std::net::TcpStream::connect(&writer_addr) else {
                return;
            };
            for i in 0..10_000u64 {
                let body = format!(r#"{{"value":"bg{i}"}}"#);
                let request = format!(
                    "PUT /items/bg HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(request.as_bytes()).is_err() {
                    return;
                }
            }
        });
        for _ in 0..stop_at {
            seq += 1;
            let key = format!("k{}", seq % 37);
            let response = http(
                &http_addr,
                "PUT",
                &format!("/items/{key}"),
                &format!(r#"{{"value":"{seq}"}}"#),
            );
            assert!(response.starts_with("HTTP/1.1 202"), "{response}");
            acked.insert(key, seq);
        }
        node.0.kill().unwrap();
        node.0.wait().unwrap();
        let _ = background.join();
    }
    // Restart once more: the journal replays; once flushed, every key reads
    // its last acknowledged value from the origin (through the caches).
    let mut node = start(&args);
    wait_listening(&http_addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = http(&http_addr, "GET", "/metrics", "");
        if metrics.contains("strata_node_pending_writes 0\n") {
            break;
        }
        assert!(Instant::now() < deadline, "journal not flushed: {metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
    for (key, seq) in &acked {
        let response = http(&http_addr, "GET", &format!("/items/{key}"), "");
        assert_eq!(
            json_field(&response, "value"),
            Some(seq.to_string()),
            "{key}: {response}"
        );
        assert_ne!(
            json_field(&response, "source").as_deref(),
            Some("journal"),
            "{response}"
        );
    }
    node.signal("TERM");
    assert_eq!(node.exit_code(), Some(0));
    server.signal("TERM");
    assert_eq!(server.exit_code(), Some(0));
    std::fs::remove_dir_all(&dir).ok();
}

/// The Python of a venv holding redis and pymemcache from PyPI
/// (`STRATA_PYTHON`). Unset, the Python client tests skip, saying so —
/// unless `STRATA_REQUIRE_PYCLIENTS=1` (as CI sets it) makes that a
/// failure.
fn python_clients() -> Option<String> {
    match std::env::var("STRATA_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            assert!(
                std::env::var("STRATA_REQUIRE_PYCLIENTS").as_deref() != Ok("1"),
                "STRATA_REQUIRE_PYCLIENTS=1 but STRATA_PYTHON is unset: point it at a venv's python \
                 with redis and pymemcache installed"
            );
            // Straight to the handle, which the test harness does not capture.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: Python client test: STRATA_PYTHON is unset (python3 -m venv DIR && \
                 DIR/bin/pip install redis pymemcache, then STRATA_PYTHON=DIR/bin/python; \
                 STRATA_REQUIRE_PYCLIENTS=1 to fail instead) ***\n"
            );
            None
        }
    }
}

/// Runs one of the scripts in `tests/py` against `addr`; fails the test
/// with its output unless it exits 0.
fn run_python(python: &str, script: &str, addr: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let output = Command::new(python)
        .arg(&path)
        .arg(addr)
        .output()
        .unwrap_or_else(|error| panic!("running {python}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    print!("{stdout}");
}

/// What a new user does first: the default redis-py (RESP3 since 8.x) and
/// pymemcache clients from PyPI, through the proxy to real servers.
#[test]
fn python_clients_with_default_settings_work_through_the_proxy() {
    let Some(python) = python_clients() else {
        return;
    };
    let servers: Vec<_> = (0..3).map(|_| server()).collect();
    let gutter = server();
    let dir = std::env::temp_dir().join(format!("strata-pyclients-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let main: Vec<&String> = servers.iter().map(|(_, _, mc)| mc).collect();
    let path = cluster_file(&dir, &main, &gutter.2);
    let (mut proxy, line, _) = spawn(&[
        "proxy",
        "--config",
        path.to_str().unwrap(),
        "--port",
        "0",
        "--memcache-port",
        "0",
    ]);
    let (proxy_resp, proxy_mc) = (addr_after(&line, "RESP on "), addr_after(&line, "memcached on "));
    run_python(&python, "redis_py_proxy.py", &proxy_resp);
    run_python(&python, "pymemcache_proxy.py", &proxy_mc);
    // The keys were spread over the servers, not kept by the proxy.
    let total: i64 = servers.iter().map(|(_, resp, _)| dbsize(resp)).sum();
    assert!(total > 50, "{total} keys on the servers");
    proxy.signal("TERM");
    assert_eq!(proxy.exit_code(), Some(0));
    std::fs::remove_dir_all(&dir).ok();
}
