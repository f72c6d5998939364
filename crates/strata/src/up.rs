//! `strata up`: a whole local stack on loopback in one command — N cache
//! servers and a gutter server (each its own `strata server` process), a
//! proxy in front, and a request node (HTTP over an origin database, with
//! L1 in front of the cluster) with the invalidator tailing the origin's
//! log — with a live one-line status, stopped cleanly on Ctrl-C.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use strata_client::Client;
use strata_proxy::{self as proxy, ProxyConfig};
use strata_ring::{ClusterConfig, Member, Scheme};
use strata_session::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Flags of `strata up`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Ports, from --base-port B (default 7500):
  proxy           RESP B, memcached B+1
  request node    HTTP B+2 (origin: --origin, a SQLite file by default; or --postgres URL)

With --postgres the invalidator creates the logical replication slot strata_up (test_decoding)
and resumes from it next time. A slot keeps WAL until it is read: when you stop using strata up
on that database, drop it: SELECT pg_drop_replication_slot('strata_up');
  server i        memcached B+10+i, RESP B+30+i, metrics B+50+i   (i = 0..nodes-1)
  gutter          the next i after the servers

Try it:
  strata up
  curl -X PUT localhost:7502/items/42 -d '{\"value\":\"hello\"}'
  curl localhost:7502/items/42                             # \"source\":\"origin\", then \"l1\"
  curl -s localhost:7502/metrics | grep -E 'l1_hits|l2_hits|origin_loads'
  redis-cli -p 7500 set greeting hello && redis-cli -p 7500 get greeting
  strata bench --addr 127.0.0.1:7500 --duration 10s       # load through the proxy
  kill -9 <a server's pid>                                 # its keys move to the gutter

With --requirepass (or STRATA_REQUIREPASS) the whole stack is password-protected: every server
requires it, the proxy's doors require it, and the proxy, request node and invalidator send it
to the servers. Then: redis-cli -p 7500 --pass <password> ...")]
pub struct UpArgs {
    /// Cache servers in the main pool.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=18), value_name = "N")]
    nodes: u16,
    /// First port of the block the cluster uses.
    #[arg(long, default_value_t = 7500, value_name = "PORT")]
    base_port: u16,
    /// Memory limit of each server.
    #[arg(long, default_value = "64mb", value_name = "SIZE")]
    maxmemory: String,
    /// The request node's origin: a SQLite file (created if absent).
    #[arg(long, default_value = "strata-up.db", value_name = "PATH")]
    origin: String,
    /// Use this PostgreSQL database as the origin instead (needs
    /// wal_level=logical for the invalidator's replication slot).
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// The request node's write strategy.
    #[arg(long, default_value = "cache-aside", value_name = "STRATEGY")]
    strategy: strata_node::Strategy,
    /// Seconds between status lines when stdout is not a terminal.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    status_every: u64,
    /// Protect the stack with this password: the servers and the proxy's
    /// doors require it; the proxy, node and invalidator send it to the
    /// servers (or set STRATA_REQUIREPASS).
    #[arg(long, value_name = "PASSWORD")]
    requirepass: Option<String>,
}

/// The child processes, stopped with SIGTERM when dropped.
struct Children(Vec<(String, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (name, child) in &mut self.0 {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        eprintln!("strata up: {name} did not stop after SIGTERM; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

/// One cache server of the local stack.
struct CacheServer {
    name: String,
    memcache: SocketAddr,
    resp: SocketAddr,
}

fn port(base: u16, offset: u16) -> anyhow::Result<u16> {
    base.checked_add(offset)
        .filter(|&p| p > 0)
        .with_context(|| format!("--base-port {base} leaves no room for port offset {offset}"))
}

/// Waits up to 10 s until `addr` accepts connections.
async fn wait_ready(addr: SocketAddr, child: &mut Child, name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            anyhow::bail!("{name} exited ({status}) before listening on {addr}: is the port taken? (try --base-port)");
        }
        if Instant::now() > deadline {
            anyhow::bail!("{name} is not listening on {addr} after 10 s");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// memcached `stats` of one server, or `None` if it does not answer.
async fn stats(addr: SocketAddr, password: Option<&Secret>) -> Option<HashMap<String, u64>> {
    let fetch = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        if let Some(password) = password {
            // memcached's ASCII auth, answered STORED before the stats.
            let data = format!("strata {}", password.expose());
            let login = format!("set auth 0 0 {}\r\n{data}\r\n", data.len());
            stream.write_all(login.as_bytes()).await.ok()?;
        }
        stream.write_all(b"stats\r\n").await.ok()?;
        let mut text = Vec::new();
        let mut chunk = [0u8; 4096];
        while !text.ends_with(b"END\r\n") {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 || text.len() > 1 << 20 {
                return None;
            }
            text.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        Some(
            text.lines()
                .filter_map(|line| {
                    let mut parts = line.strip_prefix("STAT ")?.split(' ');
                    Some((parts.next()?.to_owned(), parts.next()?.parse().ok()?))
                })
                .collect(),
        )
    };
    tokio::time::timeout(Duration::from_millis(500), fetch)
        .await
        .ok()
        .flatten()
}

/// Starts the cluster and shows its status until Ctrl-C or SIGTERM.
pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the strata binary")?;
    let password = args
        .requirepass
        .clone()
        .or_else(|| std::env::var("STRATA_REQUIREPASS").ok())
        .filter(|password| !password.is_empty())
        .map(Secret::from);
    let base = args.base_port;
    let localhost = std::net::Ipv4Addr::LOCALHOST;
    let mut nodes = Vec::new();
    for i in 0..=args.nodes {
        let name = if i == args.nodes {
            "gutter".to_owned()
        } else {
            format!("server {i}")
        };
        nodes.push((
            CacheServer {
                name,
                memcache: SocketAddr::from((localhost, port(base, 10 + i)?)),
                resp: SocketAddr::from((localhost, port(base, 30 + i)?)),
            },
            port(base, 50 + i)?,
        ));
    }
    let proxy_resp = SocketAddr::from((localhost, port(base, 0)?));
    let proxy_memcache = SocketAddr::from((localhost, port(base, 1)?));
    let node_http = SocketAddr::from((localhost, port(base, 2)?));

    let mut children = Children(Vec::new());
    for (node, admin_port) in &nodes {
        let mut command = Command::new(&exe);
        match &password {
            // Through the environment: out of the process list.
            Some(password) => command.env("STRATA_REQUIREPASS", password.expose()),
            None => command.env_remove("STRATA_REQUIREPASS"),
        };
        let child = command
            .args(["server", "--threads", "1", "--maxmemory", &args.maxmemory])
            .args(["--port", &node.resp.port().to_string()])
            .args(["--memcache-port", &node.memcache.port().to_string()])
            .args(["--admin-port", &admin_port.to_string()])
            .env("STRATA_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", node.name))?;
        children.0.push((node.name.clone(), child));
    }
    let member = |addr: SocketAddr| Member::new(addr.ip().to_string(), addr.port());
    let (main, gutter) = nodes.split_at(usize::from(args.nodes));
    let mut pools = std::collections::BTreeMap::new();
    pools.insert(
        "main".to_owned(),
        main.iter().map(|(n, _)| member(n.memcache)).collect(),
    );
    pools.insert(
        "gutter".to_owned(),
        gutter.iter().map(|(n, _)| member(n.memcache)).collect(),
    );
    let cluster = ClusterConfig {
        scheme: Scheme::Ketama,
        pools,
    };
    let mut config = crate::proxy::client_config(
        cluster.clone(),
        Duration::from_secs(60),
        Duration::from_secs(60),
        Duration::from_millis(500),
    );
    config.node.password = password.clone();

    let runtime = crate::runtime(None)?;
    runtime.block_on(async {
        let stop = crate::signals::stop();
        for ((node, _), (_, child)) in nodes.iter().zip(children.0.iter_mut()) {
            wait_ready(node.memcache, child, &node.name).await?;
        }
        let client = Client::new(config)?;
        let running = proxy::start(
            client.clone(),
            ProxyConfig {
                resp: proxy_resp,
                memcache: proxy_memcache,
                max_connections: 10_000,
                max_value_bytes: 1024 * 1024,
                idle_timeout: None,
                requirepass: password.clone(),
                ..ProxyConfig::default()
            },
        )
        .await
        .with_context(|| format!("binding the proxy on {proxy_resp} and {proxy_memcache} (try --base-port)"))?;

        let origin = args.postgres.clone().unwrap_or_else(|| args.origin.clone());
        let request_node = start_request_node(&args, &origin, node_http, main, password.clone()).await?;
        let invalidator = start_invalidator(&origin, &client).await?;

        println!("strata up: a {}-node cluster on loopback (Ctrl-C to stop)", args.nodes);
        println!(
            "  node       HTTP http://{node_http}/items/{{id}}   {} over {}   metrics http://{node_http}/metrics",
            args.strategy,
            crate::node::redact(&origin)
        );
        println!(
            "  proxy      RESP {}   memcached {}",
            running.resp_addr, running.memcache_addr
        );
        for ((node, admin), (_, child)) in nodes.iter().zip(children.0.iter()) {
            println!(
                "  {:<10} memcached {}   RESP {}   metrics http://127.0.0.1:{admin}/metrics   pid {}",
                node.name,
                node.memcache,
                node.resp,
                child.id()
            );
        }
        println!(
            "  try: redis-cli -p {} set k v; strata bench --addr {}",
            proxy_resp.port(),
            proxy_resp
        );
        let _ = std::io::stdout().flush();

        status_loop(
            &nodes,
            &client,
            &request_node.0,
            args.status_every,
            password.as_ref(),
            stop,
        )
        .await;
        println!();
        println!("strata up: stopping");
        request_node.1.cancel();
        request_node.0.shutdown().await;
        invalidator.cancel();
        running.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), running.wait()).await;
        Ok::<_, anyhow::Error>(())
    })?;
    drop(children);
    println!("strata up: stopped");
    Ok(())
}

/// The request node on `addr` over `origin`, using the main pool as L2
/// (tracking on the servers' RESP ports). Returns it and the token that
/// stops its HTTP server.
async fn start_request_node(
    args: &UpArgs,
    origin: &str,
    addr: SocketAddr,
    main: &[(CacheServer, u16)],
    l2_password: Option<Secret>,
) -> anyhow::Result<(strata_node::Node, tokio_util::sync::CancellationToken)> {
    let mut config = strata_node::NodeConfig {
        listen: addr,
        origin: origin.to_owned(),
        strategy: args.strategy,
        l2: main.iter().map(|(node, _)| node.memcache.to_string()).collect(),
        tracking: main.iter().map(|(node, _)| node.resp.to_string()).collect(),
        l2_password,
        ..strata_node::NodeConfig::default()
    };
    config.write_behind.dir = std::path::PathBuf::from("strata-up-journal");
    let node = strata_node::Node::start(config)
        .await
        .with_context(|| format!("starting the request node over {}", crate::node::redact(origin)))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the request node on {addr} (try --base-port)"))?;
    let stop = tokio_util::sync::CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(strata_node::http::serve(node.clone(), listener, async move {
        token.cancelled().await;
    }));
    Ok((node, stop))
}

/// The invalidator tailing `origin` (PostgreSQL's slot, or SQLite's
/// outbox, which would otherwise only grow) into the cluster.
async fn start_invalidator(origin: &str, client: &Client) -> anyhow::Result<tokio_util::sync::CancellationToken> {
    use strata_node::invalidator::{Invalidator, InvalidatorConfig, Source};
    let source = Source::open(origin, "strata_up")
        .await
        .with_context(|| format!("opening the change log of {}", crate::node::redact(origin)))?;
    let invalidator = Invalidator::new(source, client.clone(), InvalidatorConfig::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move { invalidator.run(token).await });
    Ok(stop)
}

async fn status_loop(
    nodes: &[(CacheServer, u16)],
    client: &Client,
    request_node: &strata_node::Node,
    every: u64,
    password: Option<&Secret>,
    stop: impl std::future::Future<Output = ()>,
) {
    let terminal = std::io::stdout().is_terminal();
    tokio::pin!(stop);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut last: Option<(Instant, u64, u64, u64)> = None;
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticker.tick() => {}
        }
        ticks += 1;
        let mut keys = Vec::new();
        let (mut ops, mut gets, mut hits) = (0, 0, 0);
        for (node, _) in nodes {
            match stats(node.memcache, password).await {
                Some(stats) => {
                    let value = |name: &str| stats.get(name).copied().unwrap_or(0);
                    ops += value("cmd_get") + value("cmd_set") + value("cmd_touch");
                    gets += value("cmd_get");
                    hits += value("get_hits");
                    keys.push(value("curr_items").to_string());
                }
                None => keys.push("down".to_owned()),
            }
        }
        let now = Instant::now();
        let (rate, ratio) = match last {
            Some((at, ops0, gets0, hits0)) => {
                let seconds = now.duration_since(at).as_secs_f64().max(1e-3);
                let gets = gets.saturating_sub(gets0);
                (
                    ops.saturating_sub(ops0) as f64 / seconds,
                    if gets == 0 {
                        None
                    } else {
                        Some(100.0 * hits.saturating_sub(hits0) as f64 / gets as f64)
                    },
                )
            }
            None => (0.0, None),
        };
        last = Some((now, ops, gets, hits));
        let down = client.down_nodes();
        let metrics = request_node.metrics();
        let line = format!(
            "{:>10.0} ops/s   hit ratio {}   keys [{}] (last is the gutter)   epoch {}   down: {}   node: L1 {} L2 {} origin {}",
            rate,
            ratio.map_or("   -  ".to_owned(), |r| format!("{r:5.1}%")),
            keys.join(" "),
            client.epoch(),
            if down.is_empty() {
                "none".to_owned()
            } else {
                down.join(", ")
            },
            metrics.l1_hits.get(),
            metrics.l2_hits.get(),
            metrics.origin_loads.get(),
        );
        if terminal {
            print!("\r\x1b[2K{line}");
            let _ = std::io::stdout().flush();
        } else if ticks % every.max(1) == 0 {
            println!("{line}");
        }
    }
}
