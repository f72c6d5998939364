//! A private PostgreSQL for tests and for the consistency checker.
//!
//! [`PgServer::start`] runs `initdb` into a fresh temporary directory and
//! starts a server there with `pg_ctl`, listening only on 127.0.0.1 on a
//! free port, with trust authentication, `wal_level=logical` (so the
//! invalidator's replication slot works) and durability switched off
//! (`fsync=off`: the data is thrown away anyway). `synchronous_commit` stays
//! on: logical decoding reads only flushed WAL, so with it off a commit
//! would reach the slot up to `wal_writer_delay` later. Dropping the server
//! stops it and removes the directory.
//!
//! PostgreSQL refuses to run as root. When this process is root, `initdb`
//! and `pg_ctl` run as the `postgres` system user through `runuser` (the
//! user is created with `useradd` if missing) and the temporary directory is
//! made under `/tmp` and handed to that user.
//!
//! Tests call [`start_or_skip`] (or [`binaries`] and [`skip_or_fail`]): on
//! a machine without PostgreSQL they skip loudly, unless
//! `STRATA_REQUIRE_POSTGRES=1` (CI), where a missing PostgreSQL fails.
//!
//! A process killed without unwinding (SIGKILL) leaves its server running;
//! its directory is named `strata-pg-<pid>-…` so it can be found.

use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Environment variable that, when set to `1`, turns a missing or
/// unstartable PostgreSQL into a test failure instead of a skip.
pub const REQUIRE_POSTGRES_ENV: &str = "STRATA_REQUIRE_POSTGRES";

/// Environment variable naming the directory of PostgreSQL's binaries
/// (`initdb`, `pg_ctl`), overriding the search in [`binaries`].
pub const POSTGRES_BIN_ENV: &str = "STRATA_PG_BIN";

/// The database superuser `initdb` creates (trust authentication).
pub const SUPERUSER: &str = "strata";

/// The OS user the server runs as when this process is root.
const SYSTEM_USER: &str = "postgres";

/// How long `pg_ctl` may wait for the server to start or stop.
const PG_CTL_WAIT_SECS: &str = "30";

/// How many free ports to try when another process takes the one picked.
const PORT_ATTEMPTS: usize = 5;

/// Why a private PostgreSQL could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No PostgreSQL binaries were found.
    #[error(
        "PostgreSQL binaries not found: no /usr/lib/postgresql/*/bin/initdb, no `pg_config --bindir`, no initdb on PATH (set {POSTGRES_BIN_ENV}, or apt-get install postgresql)"
    )]
    NotInstalled,
    /// A file-system operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("{what} failed ({status}): {output}")]
    Command {
        /// The command.
        what: String,
        /// Its exit status.
        status: String,
        /// Its stdout and stderr, and the tail of the server log if any.
        output: String,
    },
}

/// A private PostgreSQL server in a temporary directory.
#[derive(Debug)]
pub struct PgServer {
    /// The temporary directory: `data/`, the log and the Unix socket.
    dir: PathBuf,
    /// The directory of `initdb`, `pg_ctl` and friends.
    bin: PathBuf,
    /// The loopback TCP port.
    port: u16,
    /// `Some("postgres")` when commands must run as that user (we are root).
    run_as: Option<&'static str>,
}

impl PgServer {
    /// Creates a fresh cluster in a new temporary directory and starts it
    /// on a free loopback port; returns once it accepts connections.
    pub fn start() -> Result<PgServer, PgError> {
        PgServer::start_with(&[])
    }

    /// Like [`start`](Self::start), with `extra` settings appended to
    /// `postgresql.conf` after the defaults (so they win), e.g.
    /// `[("wal_level", "replica")]`.
    pub fn start_with(extra: &[(&str, &str)]) -> Result<PgServer, PgError> {
        let bin = binaries().ok_or(PgError::NotInstalled)?;
        let run_as = if is_root() {
            ensure_system_user()?;
            Some(SYSTEM_USER)
        } else {
            None
        };
        let dir = make_temp_dir(run_as.is_some())?;
        // From here on, dropping `server` cleans the directory up.
        let mut server = PgServer {
            dir,
            bin,
            port: 0,
            run_as,
        };
        if let Some(user) = run_as {
            run(
                Command::new("chown").arg("-R").arg(user).arg(&server.dir),
                "chown the temporary directory",
            )?;
        }
        server.initdb(extra)?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            match server.pg_ctl_start() {
                Ok(()) => return Ok(server),
                Err(error) => {
                    let taken =
                        server.log_tail().contains("could not bind") || server.log_tail().contains("already in use");
                    last_error = Some(error);
                    if !taken {
                        break;
                    }
                    // Another process took the port between our probe and
                    // the server's bind: try another one.
                    let _ = std::fs::remove_file(server.log_path());
                }
            }
        }
        Err(last_error.unwrap_or(PgError::NotInstalled))
    }

    /// `postgres://strata@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    /// The loopback TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (for tests that look at the files).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// Stops the server (if running) and starts it again on the same port
    /// and data; returns once it accepts connections.
    pub fn restart(&self) -> Result<(), PgError> {
        self.stop();
        self.pg_ctl_start()
    }

    /// Stops the server now (`pg_ctl stop -m fast`: sessions are ended,
    /// then a clean shutdown). Connections are refused until
    /// [`restart`](Self::restart). Does nothing if it is not running.
    pub fn stop(&self) {
        let _ = self.pg_ctl_stop("fast");
    }

    /// Kills the server as a crash would (`pg_ctl stop -m immediate`: no
    /// shutdown checkpoint; the next start runs crash recovery). Start it
    /// again with [`restart`](Self::restart).
    pub fn crash(&self) {
        let _ = self.pg_ctl_stop("immediate");
    }

    /// The last lines of the server log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn initdb(&self, extra: &[(&str, &str)]) -> Result<(), PgError> {
        let data = self.data_dir();
        let mut initdb = self.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["--auth=trust", "-U", SUPERUSER])
            .args(["--encoding=UTF8", "--locale=C", "--no-sync"]);
        run(&mut initdb, "initdb")?;
        let socket_dir = self.dir.display().to_string().replace('\'', "''");
        let mut settings = format!(
            "\n# strata pgtest\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{socket_dir}'\n\
             wal_level = logical\n\
             max_replication_slots = 10\n\
             max_wal_senders = 10\n\
             max_connections = 100\n\
             shared_buffers = 32MB\n\
             fsync = off\n\
             full_page_writes = off\n\
             logging_collector = off\n"
        );
        for (name, value) in extra {
            settings.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
        }
        // Appending keeps the file's owner (the server's user).
        let conf = data.join("postgresql.conf");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut file| file.write_all(settings.as_bytes()))
            .map_err(|source| PgError::Io {
                what: format!("append to {}", conf.display()),
                source,
            })
    }

    fn pg_ctl_start(&self) -> Result<(), PgError> {
        let mut start = self.command("pg_ctl");
        start
            .arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", PG_CTL_WAIT_SECS])
            .arg("-o")
            .arg(format!("-p {}", self.port));
        run(&mut start, &format!("pg_ctl start on port {}", self.port)).map_err(|error| match error {
            PgError::Command { what, status, output } => PgError::Command {
                what,
                status,
                output: format!("{output}\nserver log:\n{}", self.log_tail()),
            },
            other => other,
        })
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), PgError> {
        let mut stop = self.command("pg_ctl");
        stop.arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", PG_CTL_WAIT_SECS]);
        run(&mut stop, "pg_ctl stop")
    }

    /// `program` from the binaries directory, run as the server's user,
    /// from the temporary directory (which that user can read).
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        };
        command.current_dir(&self.dir);
        command
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() && self.pg_ctl_stop("fast").is_err() {
            let _ = self.pg_ctl_stop("immediate");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory of PostgreSQL's binaries: `$STRATA_PG_BIN`, else the
/// highest version under `/usr/lib/postgresql/*/bin` (Debian's layout),
/// else `pg_config --bindir`, else the directory of `initdb` on `PATH`.
pub fn binaries() -> Option<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(POSTGRES_BIN_ENV).map(PathBuf::from) {
        return has_initdb(&dir).then_some(dir);
    }
    let mut debian: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version: Option<Vec<u32>> = name.split('.').map(|part| part.parse().ok()).collect();
            let bin = entry.path().join("bin");
            Some((version?, bin)).filter(|(_, bin)| has_initdb(bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_initdb(&dir) {
            return Some(dir);
        }
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|dir| has_initdb(dir))
}

/// For tests that need PostgreSQL and cannot have it: panics when
/// `STRATA_REQUIRE_POSTGRES=1`, else prints a loud `SKIPPED` line to stderr
/// (straight to the handle, which the test harness does not capture).
pub fn skip_or_fail(why: &str) {
    let required = std::env::var(REQUIRE_POSTGRES_ENV).is_ok_and(|v| v == "1");
    assert!(
        !required,
        "PostgreSQL is required ({REQUIRE_POSTGRES_ENV}=1) but: {why}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: PostgreSQL test: {why} (set {REQUIRE_POSTGRES_ENV}=1 to fail instead) ***\n"
    );
}

/// For tests: a started [`PgServer`], or `None` after [`skip_or_fail`]
/// when PostgreSQL is absent or will not start.
pub fn start_or_skip() -> Option<PgServer> {
    match PgServer::start() {
        Ok(server) => Some(server),
        Err(error) => {
            skip_or_fail(&error.to_string());
            None
        }
    }
}

/// Whether this process runs as root (the owner of `/proc/self` is the
/// effective user), else asks `id -u`.
fn is_root() -> bool {
    match std::fs::metadata("/proc/self") {
        Ok(meta) => meta.uid() == 0,
        Err(_) => Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0"),
    }
}

/// Creates the `postgres` system user if it does not exist.
fn ensure_system_user() -> Result<(), PgError> {
    let exists = Command::new("id")
        .arg("-u")
        .arg(SYSTEM_USER)
        .output()
        .is_ok_and(|out| out.status.success());
    if exists {
        return Ok(());
    }
    let result = run(
        Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--home-dir", "/var/lib/postgresql", "--shell", "/bin/false"])
            .arg(SYSTEM_USER),
        "useradd postgres",
    );
    // Another test may have created it at the same moment.
    let exists_now = Command::new("id")
        .arg("-u")
        .arg(SYSTEM_USER)
        .output()
        .is_ok_and(|out| out.status.success());
    if exists_now { Ok(()) } else { result }
}

/// A new, empty directory `strata-pg-<pid>-<n>-<nanos>` under the system's
/// temporary directory (under `/tmp` when the server runs as another user,
/// which must be able to reach it).
fn make_temp_dir(for_other_user: bool) -> Result<PathBuf, PgError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = if for_other_user {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .subsec_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("strata-pg-{}-{n}-{nanos:08x}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(PgError::Io {
                    what: format!("create {}", dir.display()),
                    source,
                });
            }
        }
    }
}

/// A loopback port that was free a moment ago (bound to port 0, released).
fn free_port() -> Result<u16, PgError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|source| PgError::Io {
            what: "find a free loopback port".into(),
            source,
        })
}

/// Runs `command` to completion; an error carries its output.
fn run(command: &mut Command, what: &str) -> Result<(), PgError> {
    let output: Output = command.output().map_err(|source| PgError::Io {
        what: format!("run {what} ({:?})", command.get_program()),
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(PgError::Command {
        what: what.to_owned(),
        status: output.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .trim()
        .to_owned(),
    })
}
