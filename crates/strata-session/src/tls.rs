//! TLS, once for every port: a server certificate and key read from PEM
//! files, optionally a CA whose certificates clients must present
//! (Redis's `tls-auth-clients`), the handshake with a deadline, and the
//! stream the connection loop runs on either way ([`Stream`]).
//!
//! rustls with the *ring* provider: pure Rust plus a little C and
//! assembly that `cc` builds, no cmake (aws-lc-rs needs one). The provider
//! is passed to every config explicitly, so nothing depends on a
//! process-wide default being installed.
//!
//! The handshake runs on the connection's own task, never in the accept
//! loop, so a slow client delays nobody else; it must finish within
//! [`HANDSHAKE_TIMEOUT`], so a client that connects and never speaks
//! cannot hold a connection slot forever. A failed handshake (plain text
//! on a TLS port, an untrusted or missing client certificate, a scanner)
//! is an expected fault: logged at debug and counted
//! ([`TlsAcceptor::failed_handshakes`]), never a warning.
//!
//! [`TlsListener`] serves an axum router over TLS the same way (the
//! request node's HTTP API): handshakes on tasks of their own, finished
//! streams handed to axum in arrival order.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// rustls refused the certificates or key (a key that does not match
    /// the certificate, an unsupported algorithm, …).
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built from the CA file.
    #[error("TLS client verification: {0}")]
    Verifier(String),
}

/// Where a TLS port's certificates are: the files Redis names
/// `tls-cert-file`, `tls-key-file` and `tls-ca-cert-file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to; only
    /// used with `auth_clients`.
    pub ca_cert_file: Option<PathBuf>,
    /// Require a client certificate signed by `ca_cert_file` (Redis's
    /// `tls-auth-clients yes`); needs `ca_cert_file`.
    pub auth_clients: bool,
}

impl TlsFiles {
    /// A server certificate and key, no client certificates.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            ca_cert_file: None,
            auth_clients: false,
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &Path, error: impl fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

/// Every certificate in a PEM file; an error if it holds none.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| file_error(path, error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error(path, error))?;
    if certificates.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(certificates)
}

/// The CA certificates of a PEM file as a trust store.
fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in read_certificates(path)? {
        roots.add(certificate)?;
    }
    Ok(roots)
}

/// Accepts TLS connections: the server side of one port's TLS. Cheap to
/// clone (shared); clones count failures together.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
    failures: Arc<AtomicU64>,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("failed_handshakes", &self.failed_handshakes())
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Reads the certificate chain and key (and the client CA, if
    /// clients must present certificates). Fails on a missing or
    /// malformed file, a key that does not match, or `auth_clients`
    /// without a CA file.
    pub fn from_files(files: &TlsFiles) -> Result<Self, TlsError> {
        let chain = read_certificates(&files.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|error| file_error(&files.key_file, error))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
        let builder = match (&files.ca_cert_file, files.auth_clients) {
            (Some(ca), true) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(read_roots(ca)?), provider())
                    .build()
                    .map_err(|error| TlsError::Verifier(error.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            (None, true) => {
                return Err(TlsError::Verifier(
                    "client certificates are required but no CA certificate file is set".into(),
                ));
            }
            (_, false) => builder.with_no_client_auth(),
        };
        // No ALPN list: the protocol of each port is fixed, and a server
        // without one ignores what a client offers rather than refusing a
        // client whose list it does not share.
        let config = builder.with_single_cert(chain, key)?;
        Ok(Self {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            failures: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The same acceptor with another handshake deadline.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The same acceptor counting its failed handshakes into `counter`
    /// (a process's metric).
    pub fn counting_failures_in(mut self, counter: Arc<AtomicU64>) -> Self {
        self.failures = counter;
        self
    }

    /// Handshakes that failed or timed out so far.
    pub fn failed_handshakes(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Runs the server side of the handshake on `tcp`, within the
    /// deadline. `None` (logged at debug, counted) if it fails or times
    /// out.
    pub async fn accept(&self, tcp: TcpStream) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
        let peer = tcp.peer_addr().ok();
        match tokio::time::timeout(self.handshake_timeout, self.inner.accept(tcp)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(error)) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(?peer, %error, "TLS handshake failed");
                None
            }
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(?peer, "TLS handshake timed out");
                None
            }
        }
    }
}

/// The client side of TLS towards strata's TLS ports (the cluster
/// client to its servers, tests): trusts the CA certificates of one PEM
/// file, optionally presents a client certificate. Cheap to clone.
#[derive(Clone)]
pub struct TlsConnector {
    inner: tokio_rustls::TlsConnector,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// Trusts the CA certificates in `ca_cert_file`; presents the
    /// certificate and key of `client_identity`, if given.
    pub fn from_files(ca_cert_file: &Path, client_identity: Option<(&Path, &Path)>) -> Result<Self, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(read_roots(ca_cert_file)?);
        let config = match client_identity {
            Some((cert_file, key_file)) => {
                let chain = read_certificates(cert_file)?;
                let key = PrivateKeyDer::from_pem_file(key_file).map_err(|error| file_error(key_file, error))?;
                builder.with_client_auth_cert(chain, key)?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            inner: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// Runs the client side of the handshake on `tcp`, checking the
    /// server's certificate against the host of `addr` (`host:port`).
    pub async fn connect(&self, addr: &str, tcp: TcpStream) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = server_name(addr).map_err(io::Error::other)?;
        self.inner.connect(name, tcp).await
    }
}

/// The name a client checks the server's certificate against: the host
/// part of `addr` (`host:port`), an IP address or a DNS name.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, TlsError> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|error| TlsError::Verifier(format!("{host:?}: {error}")))
}

/// An accepted connection before it is served: its TCP stream and, on a
/// TLS port, the acceptor that turns it into a TLS stream. The handler
/// reads what it needs (the peer's address) and then [`Incoming::open`]s
/// it on the connection's own task.
#[derive(Debug)]
pub struct Incoming {
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
}

impl Incoming {
    pub(crate) fn new(tcp: TcpStream, tls: Option<TlsAcceptor>, shutdown: CancellationToken) -> Self {
        Self { tcp, tls, shutdown }
    }

    /// The client's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.peer_addr()
    }

    /// Whether this connection arrived on a TLS port.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The stream to serve: the TCP stream itself, or on a TLS port the
    /// TLS stream once the handshake is done. `None` if the handshake
    /// failed, timed out, or shutdown came first (the connection is then
    /// simply dropped: there is nobody to tell).
    pub async fn open(self) -> Option<Stream> {
        match self.tls {
            None => Some(Stream::Plain(self.tcp)),
            Some(acceptor) => tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => None,
                stream = acceptor.accept(self.tcp) => stream.map(|s| Stream::Tls(Box::new(s))),
            },
        }
    }
}

/// A connection's byte stream: plain TCP or TLS over it. The connection
/// loop is generic over the stream; this is the one type every port hands
/// it, so each session is compiled once for both.
#[derive(Debug)]
pub enum Stream {
    /// A plain TCP connection.
    Plain(TcpStream),
    /// A TLS connection (boxed: rustls's state is a few KiB).
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(tcp) => tcp.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Most finished handshakes waiting for axum to take them.
const READY_QUEUE: usize = 64;

/// A TCP listener whose connections axum receives as TLS streams
/// (`axum::serve(TlsListener::new(listener, acceptor), router)`): a task
/// accepts and runs each handshake on a task of its own, so one slow or
/// silent client holds up nobody; failed handshakes are dropped (logged at
/// debug and counted by the acceptor). The task ends with the listener.
#[derive(Debug)]
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener` (on the current runtime).
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (sender, ready) = tokio::sync::mpsc::channel(READY_QUEUE);
        let accepting = tokio::spawn(async move {
            let mut handshakes = tokio::task::JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    Some(_) = handshakes.join_next(), if !handshakes.is_empty() => continue,
                    () = sender.closed() => break,
                };
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(crate::listener::ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                handshakes.spawn(async move {
                    if let Some(stream) = acceptor.accept(tcp).await {
                        let _ = sender.send((stream, peer)).await;
                    }
                });
            }
        });
        Ok(Self {
            ready,
            local_addr,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended (it only does when this listener
            // is dropped, or its runtime stops): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// Throwaway certificates for tests, made at test time (never committed):
/// a CA, a server certificate for `localhost` and `127.0.0.1` signed by
/// it, and a client certificate signed by it, as PEM files in a
/// temporary directory; and TLS clients that trust them.
#[cfg(feature = "testing")]
pub mod testing {
    use std::path::{Path, PathBuf};

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use tokio::net::TcpStream;

    use super::{TlsAcceptor, TlsConnector, TlsFiles};

    /// PEM files of a test CA and the certificates it signed, in a
    /// directory removed on drop.
    #[derive(Debug)]
    pub struct TestCerts {
        dir: PathBuf,
        /// The CA certificate (what clients trust).
        pub ca_cert: PathBuf,
        /// The server's certificate (for `localhost` and `127.0.0.1`).
        pub server_cert: PathBuf,
        /// The server's key.
        pub server_key: PathBuf,
        /// A client certificate signed by the CA.
        pub client_cert: PathBuf,
        /// The client's key.
        pub client_key: PathBuf,
    }

    impl TestCerts {
        /// Makes the CA and certificates.
        pub fn new() -> Self {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("strata-tls-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temporary directory");
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca_params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "strata test CA");
            let ca_key = KeyPair::generate().expect("CA key");
            let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
            let issuer = Issuer::new(ca_params, ca_key);
            let leaf = |names: Vec<String>| {
                let key = KeyPair::generate().expect("key");
                let cert = CertificateParams::new(names)
                    .expect("params")
                    .signed_by(&key, &issuer)
                    .expect("certificate");
                (cert.pem(), key.serialize_pem())
            };
            let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
            let (client_cert, client_key) = leaf(vec!["strata-test-client".into()]);
            let write = |name: &str, pem: &str| {
                let path = dir.join(name);
                std::fs::write(&path, pem).expect("write PEM");
                path
            };
            Self {
                ca_cert: write("ca.pem", &ca_cert.pem()),
                server_cert: write("server.pem", &server_cert),
                server_key: write("server.key", &server_key),
                client_cert: write("client.pem", &client_cert),
                client_key: write("client.key", &client_key),
                dir,
            }
        }

        /// The server side's files, without client certificates.
        pub fn files(&self) -> TlsFiles {
            TlsFiles::new(&self.server_cert, &self.server_key)
        }

        /// An acceptor over [`Self::files`].
        pub fn acceptor(&self) -> TlsAcceptor {
            TlsAcceptor::from_files(&self.files()).expect("test acceptor")
        }

        /// The temporary directory.
        pub fn dir(&self) -> &Path {
            &self.dir
        }

        /// Connects to `addr` over TLS, trusting the test CA (and with the
        /// client certificate if `with_client_cert`).
        pub async fn connect(
            &self,
            addr: std::net::SocketAddr,
            with_client_cert: bool,
        ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
            let tcp = TcpStream::connect(addr).await?;
            self.connector(with_client_cert).connect(&addr.to_string(), tcp).await
        }

        /// A connector that trusts the test CA (and presents the client
        /// certificate if `with_client_cert`).
        pub fn connector(&self, with_client_cert: bool) -> TlsConnector {
            let identity = with_client_cert.then_some((self.client_cert.as_path(), self.client_key.as_path()));
            TlsConnector::from_files(&self.ca_cert, identity).expect("test connector")
        }
    }

    /// The environment variable that makes a missing external tool
    /// (`redis-cli`, `openssl`) fail a test instead of skipping it (CI
    /// sets it).
    pub const REQUIRE_TOOLS_ENV: &str = "STRATA_REQUIRE_TOOLS";

    /// The path of the external program `name` on `PATH`; `None` (with a
    /// loud `SKIPPED` line on stderr) if it is not installed, unless
    /// [`REQUIRE_TOOLS_ENV`]` = 1`, which makes that a panic.
    pub fn tool(name: &str) -> Option<PathBuf> {
        let found = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        });
        if found.is_none() {
            assert!(
                std::env::var(REQUIRE_TOOLS_ENV).as_deref() != Ok("1"),
                "{REQUIRE_TOOLS_ENV}=1 but {name} is not on PATH"
            );
            eprintln!("\n*** SKIPPED: {name} is not installed (set {REQUIRE_TOOLS_ENV}=1 to fail instead) ***\n");
        }
        found
    }

    impl Default for TestCerts {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Drop for TestCerts {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
