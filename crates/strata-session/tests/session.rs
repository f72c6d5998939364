//! The accept and connection loops against a toy line protocol: each
//! complete line `x\n` is answered `+x\n`; `quit\n` closes.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strata_session::tls::testing::TestCerts;
use strata_session::{Gate, Incoming, Limits, NoInbox, Outcome, Session, TlsAcceptor, TlsFiles, accept_loop, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Lines {
    batches: Arc<AtomicUsize>,
}

impl Session for Lines {
    type Inbox = NoInbox;

    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> impl Future<Output = Outcome> + Send {
        let mut consumed = 0;
        let mut close = false;
        while let Some(end) = input[consumed..].iter().position(|&b| b == b'\n') {
            let line = &input[consumed..consumed + end];
            consumed += end + 1;
            if line == b"quit" {
                close = true;
                break;
            }
            out.push(b'+');
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        std::future::ready(Outcome { consumed, close })
    }

    fn batch_done(&mut self) {
        self.batches.fetch_add(1, Ordering::Relaxed);
    }
}

fn limits(idle_timeout: Option<Duration>, max_buffer: usize) -> Limits {
    Limits {
        idle_timeout,
        max_buffer,
        client_memory: strata_session::ClientMemory::default(),
    }
}

/// A session served over an in-memory pipe; the other end for the test.
fn pipe(limits: Limits) -> (DuplexStream, tokio::task::JoinHandle<()>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(serve(server, Lines::default(), limits, CancellationToken::new()));
    (client, task)
}

async fn read_to_end(stream: &mut DuplexStream) -> Vec<u8> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await.unwrap();
    all
}

#[tokio::test]
async fn a_request_split_across_reads_is_answered_once_complete() {
    let (mut client, task) = pipe(limits(None, 1024));
    client.write_all(b"he").await.unwrap();
    tokio::task::yield_now().await;
    client.write_all(b"llo\nwor").await.unwrap();
    let mut reply = [0u8; 7];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"+hello\n");
    client.write_all(b"ld\nquit\nignored\n").await.unwrap();
    assert_eq!(read_to_end(&mut client).await, b"+world\n");
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_closed_after_the_timeout() {
    let started = tokio::time::Instant::now();
    let (mut client, task) = pipe(limits(Some(Duration::from_secs(30)), 1024));
    client.write_all(b"a\n").await.unwrap();
    // Paused time: the runtime jumps the clock once everything waits.
    assert_eq!(read_to_end(&mut client).await, b"+a\n");
    let idle = started.elapsed();
    assert!(idle >= Duration::from_secs(30), "closed after {idle:?}");
    assert!(idle < Duration::from_secs(31), "closed after {idle:?}");
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_a_timeout_an_idle_connection_stays_open() {
    let (mut client, task) = pipe(limits(None, 1024));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    client.write_all(b"still here\n").await.unwrap();
    let mut reply = [0u8; 12];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"+still here\n");
    drop(client);
    task.await.unwrap();
}

#[tokio::test]
async fn an_input_past_the_buffer_limit_closes_the_connection() {
    let (mut client, task) = pipe(limits(None, 64));
    client.write_all(b"ok\n").await.unwrap();
    client.write_all(&[b'x'; 200]).await.unwrap();
    // The complete request before the oversized one is still answered.
    assert_eq!(read_to_end(&mut client).await, b"+ok\n");
    task.await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_a_connection() {
    let (client, server) = tokio::io::duplex(1024);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(server, Lines::default(), limits(None, 1024), shutdown.clone()));
    shutdown.cancel();
    task.await.unwrap();
    drop(client);
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_with_the_message() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let refused = Arc::new(AtomicUsize::new(0));
    let gate = Gate::plain(Arc::new(Semaphore::new(1)), b"-ERR max number of clients reached\r\n");
    let on_refused = {
        let refused = Arc::clone(&refused);
        move || {
            refused.fetch_add(1, Ordering::Relaxed);
        }
    };
    let handle = {
        let shutdown = shutdown.clone();
        move |incoming: Incoming| serve_lines(incoming, shutdown.clone())
    };
    let acceptor = tokio::spawn(accept_loop(listener, gate, shutdown.clone(), on_refused, handle));

    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(b"one\n").await.unwrap();
    let mut reply = [0u8; 5];
    first.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"+one\n");

    let mut second = TcpStream::connect(addr).await.unwrap();
    let mut refusal = Vec::new();
    second.read_to_end(&mut refusal).await.unwrap();
    assert_eq!(refusal, b"-ERR max number of clients reached\r\n");
    assert_eq!(refused.load(Ordering::Relaxed), 1);

    // The first client leaves; its permit frees a place.
    first.write_all(b"quit\n").await.unwrap();
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    let mut third = loop {
        let mut third = TcpStream::connect(addr).await.unwrap();
        third.write_all(b"three\n").await.unwrap();
        let mut reply = [0u8; 7];
        match third.read_exact(&mut reply).await {
            Ok(_) if &reply == b"+three\n" => break third,
            // The permit is released just after the close is seen.
            _ => tokio::task::yield_now().await,
        }
    };

    // Shutdown stops accepting and waits for open connections to end.
    shutdown.cancel();
    let mut end = Vec::new();
    third.read_to_end(&mut end).await.unwrap();
    acceptor.await.unwrap();
}

#[tokio::test]
async fn batch_done_runs_after_every_batch_and_at_the_end() {
    let (mut client, server) = tokio::io::duplex(1024);
    let session = Lines::default();
    let batches = Arc::clone(&session.batches);
    let task = tokio::spawn(serve(server, session, limits(None, 1024), CancellationToken::new()));
    client.write_all(b"a\nb\n").await.unwrap();
    let mut reply = [0u8; 6];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"+a\n+b\n");
    drop(client);
    task.await.unwrap();
    assert!(batches.load(Ordering::Relaxed) >= 2);
}

/// A protocol whose every request (`g\n`) is answered with 256 KiB, and
/// which stops at a full chunk of replies as the crate asks sessions to.
struct Big {
    processed: Arc<AtomicUsize>,
}

impl Session for Big {
    type Inbox = NoInbox;

    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> impl Future<Output = Outcome> + Send {
        let mut consumed = 0;
        while let Some(end) = input[consumed..].iter().position(|&b| b == b'\n') {
            if out.len() >= strata_session::OUTPUT_CHUNK {
                break;
            }
            consumed += end + 1;
            let n = self.processed.fetch_add(1, Ordering::SeqCst);
            out.extend(std::iter::repeat_n((n % 251) as u8, 256 * 1024));
        }
        std::future::ready(Outcome { consumed, close: false })
    }
}

/// A client that pipelines requests for large replies and does not read
/// them holds about one reply of the server's memory, not one per request:
/// the loop writes each chunk before taking more, and the write waits for
/// the client. Once it reads, every reply arrives, in order.
#[tokio::test(flavor = "current_thread")]
async fn a_client_that_does_not_read_holds_one_reply_not_all_of_them() {
    let processed = Arc::new(AtomicUsize::new(0));
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let session = Big {
        processed: Arc::clone(&processed),
    };
    let task = tokio::spawn(serve(server, session, limits(None, 1 << 20), CancellationToken::new()));
    let requests = 200;
    client.write_all(&b"g\n".repeat(requests)).await.unwrap();
    // Let the server run until it blocks on the unread pipe.
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    let before_reading = processed.load(Ordering::SeqCst);
    assert!(
        before_reading <= 2,
        "{before_reading} replies of 256 KiB built for a client that reads nothing"
    );
    let mut replies = vec![0u8; requests * 256 * 1024];
    client.read_exact(&mut replies).await.unwrap();
    for (i, reply) in replies.chunks(256 * 1024).enumerate() {
        assert!(reply.iter().all(|&b| b == (i % 251) as u8), "reply {i} out of order");
    }
    assert_eq!(processed.load(Ordering::SeqCst), requests);
    drop(client);
    task.await.unwrap();
}

/// Serves the line protocol on an accepted connection (after its TLS
/// handshake, on a TLS port).
async fn serve_lines(incoming: Incoming, shutdown: CancellationToken) {
    if let Some(stream) = incoming.open().await {
        serve(stream, Lines::default(), limits(None, 1024), shutdown).await;
    }
}

/// An accept loop over `gate` on a free port: its address, shutdown and
/// task.
async fn lines_port(gate: Gate) -> (std::net::SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let handle = {
        let shutdown = shutdown.clone();
        move |incoming: Incoming| serve_lines(incoming, shutdown.clone())
    };
    let task = tokio::spawn(accept_loop(listener, gate, shutdown.clone(), || {}, handle));
    (addr, shutdown, task)
}

fn tls_gate(acceptor: TlsAcceptor, connections: usize) -> Gate {
    Gate {
        connections: Arc::new(Semaphore::new(connections)),
        refusal: b"-ERR max number of clients reached\r\n",
        tls: Some(acceptor),
    }
}

#[tokio::test]
async fn a_tls_port_serves_tls_clients_and_drops_plain_text_ones() {
    let certs = TestCerts::new();
    let acceptor = certs.acceptor();
    let (addr, shutdown, task) = lines_port(tls_gate(acceptor.clone(), 10)).await;

    let mut tls = certs.connect(addr, false).await.unwrap();
    tls.write_all(b"hello\n").await.unwrap();
    let mut reply = [0u8; 7];
    tls.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"+hello\n");

    // Plain text on the TLS port: the handshake fails, the connection is
    // closed without a line of the protocol, and it is counted.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"hello\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!answer.windows(6).any(|w| w == b"+hello"), "{answer:?}");
    assert_eq!(acceptor.failed_handshakes(), 1);

    // The TLS client never noticed.
    tls.write_all(b"again\n").await.unwrap();
    tls.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"+again\n");
    tls.write_all(b"quit\n").await.unwrap();
    let mut rest = Vec::new();
    let _ = tls.read_to_end(&mut rest).await;
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_refusal_past_the_limit_is_sent_inside_tls() {
    let certs = TestCerts::new();
    let (addr, shutdown, task) = lines_port(tls_gate(certs.acceptor(), 1)).await;
    let mut first = certs.connect(addr, false).await.unwrap();
    first.write_all(b"one\n").await.unwrap();
    let mut reply = [0u8; 5];
    first.read_exact(&mut reply).await.unwrap();
    let mut second = certs.connect(addr, false).await.unwrap();
    let mut refusal = Vec::new();
    let _ = second.read_to_end(&mut refusal).await;
    assert_eq!(refusal, b"-ERR max number of clients reached\r\n");
    drop(first);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_the_handshake_is_dropped_at_the_deadline() {
    let certs = TestCerts::new();
    let acceptor = certs.acceptor().with_handshake_timeout(Duration::from_secs(10));
    let (addr, shutdown, task) = lines_port(tls_gate(acceptor.clone(), 1)).await;
    // Connects, holds the only slot, says nothing: paused time runs to
    // the deadline as soon as everything is idle.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut nothing = Vec::new();
    silent.read_to_end(&mut nothing).await.unwrap();
    assert!(nothing.is_empty());
    assert_eq!(acceptor.failed_handshakes(), 1);
    // Its slot is free again.
    let mut next = loop {
        let mut next = certs.connect(addr, false).await.unwrap();
        let mut reply = [0u8; 4];
        next.write_all(b"ok\n").await.unwrap();
        match next.read_exact(&mut reply).await {
            Ok(_) if &reply == b"+ok\n" => break next,
            // The permit is released just after the close is seen.
            _ => tokio::task::yield_now().await,
        }
    };
    next.write_all(b"quit\n").await.unwrap();
    let _ = next.read_to_end(&mut nothing).await;
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn client_certificates_are_required_when_asked() {
    let certs = TestCerts::new();
    let files = TlsFiles {
        ca_cert_file: Some(certs.ca_cert.clone()),
        auth_clients: true,
        ..certs.files()
    };
    let acceptor = TlsAcceptor::from_files(&files).unwrap();
    let (addr, shutdown, task) = lines_port(tls_gate(acceptor.clone(), 10)).await;

    // Without a certificate: in TLS 1.3 the client learns when it reads.
    let refused = async {
        let mut stream = certs.connect(addr, false).await?;
        stream.write_all(b"hi\n").await?;
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).await.map(|_| reply)
    };
    assert!(refused.await.is_err());

    let mut with_cert = certs.connect(addr, true).await.unwrap();
    with_cert.write_all(b"hi\n").await.unwrap();
    let mut reply = [0u8; 4];
    with_cert.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"+hi\n");
    assert!(acceptor.failed_handshakes() >= 1);

    // Asking for client certificates without a CA is refused up front.
    let no_ca = TlsFiles {
        auth_clients: true,
        ..certs.files()
    };
    assert!(TlsAcceptor::from_files(&no_ca).is_err());
    drop(with_cert);
    shutdown.cancel();
    task.await.unwrap();
}

#[test]
fn bad_certificate_files_are_refused_with_the_path() {
    let certs = TestCerts::new();
    let missing = TlsFiles::new(certs.dir().join("nope.pem"), &certs.server_key);
    let error = TlsAcceptor::from_files(&missing).unwrap_err().to_string();
    assert!(error.contains("nope.pem"), "{error}");
    // A key that is not the certificate's.
    let mismatched = TlsFiles::new(&certs.server_cert, &certs.client_key);
    assert!(TlsAcceptor::from_files(&mismatched).is_err());
    let ok = TlsAcceptor::from_files(&certs.files()).unwrap();
    assert_eq!(ok.failed_handshakes(), 0);
    assert!(!format!("{ok:?}").is_empty());
}
