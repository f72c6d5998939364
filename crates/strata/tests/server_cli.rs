//! Black-box tests of `strata server`: the built binary on free loopback
//! ports, driven over TCP, stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Running {
    child: Child,
    resp: String,
    memcache: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only if the test did not stop it already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["server", "--port", "0", "--memcache-port", "0", "--admin-port", "0"])
        .args(extra)
        .env("STRATA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the strata binary runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints its addresses");
    let addr_after = |label: &str| {
        let rest = &line[line.find(label).unwrap_or_else(|| panic!("{label} in {line}")) + label.len()..];
        rest.split([',', ' ']).next().expect("an address").to_owned()
    };
    let (resp, memcache) = (addr_after("RESP on "), addr_after("memcached on "));
    Running { child, resp, memcache }
}

fn talk(addr: &str, request: &[u8], expect: usize) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    stream.write_all(request).expect("write");
    let mut got = vec![0u8; expect];
    stream.read_exact(&mut got).expect("reply");
    got
}

#[test]
fn serves_both_protocols_and_exits_cleanly_on_sigterm() {
    let mut server = start(&["--maxmemory", "16mb"]);
    assert_eq!(talk(&server.resp, b"SET k v\r\nGET k\r\n", 12), b"+OK\r\n$1\r\nv\r\n");
    assert_eq!(talk(&server.memcache, b"get k\r\n", 21), b"VALUE k 0 1\r\nv\r\nEND\r\n");
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exit status {exit:?}");
}

#[test]
fn bad_settings_fail_with_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["server", "--port", "0", "--maxmemory-policy", "noeviction"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("noeviction") && err.contains("not supported"), "{err}");
    let output = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["server", "--help"])
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--maxmemory") && help.contains("redis-cli"), "{help}");
}

/// `strata bench` against the real server binary, both protocols, JSON out.
#[test]
fn bench_drives_the_server_over_both_protocols() {
    let server = start(&["--maxmemory", "16mb"]);
    let pid = server.child.id().to_string();
    for (addr, protocol) in [(&server.resp, "resp"), (&server.memcache, "memcache")] {
        let output = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["bench", "--addr", addr, "--protocol", protocol, "--connections", "4"])
            .args([
                "--pipeline",
                "4",
                "--keys",
                "1000",
                "--requests",
                "5000",
                "--duration",
                "60s",
            ])
            .args(["--server-pid", &pid, "--format", "json"])
            .output()
            .expect("strata bench runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON report");
        assert_eq!(report["requests"], 5000, "{protocol}");
        assert_eq!(report["errors"], 0, "{protocol}");
        assert_eq!(report["misses"], 0, "{protocol}: prefilled");
        assert!(report["server"]["cpu_seconds"].as_f64().is_some());
    }
}

#[test]
fn bench_against_nothing_fails_with_one_line() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let output = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["bench", "--addr", &addr, "--requests", "10"])
        .output()
        .expect("strata bench runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
