//! Reading access traces.
//!
//! A trace is a text file, plain or gzip-compressed (detected by its magic
//! bytes, not its name), with one request per line: `key` in count mode, or
//! `key size` in byte mode. Keys are opaque tokens; each is reduced to a
//! 64-bit hash with a fixed seed, so runs are reproducible and the policies
//! see the same hashes the store would give them.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use std::hash::BuildHasher;

use hashbrown::HashSet;

/// One request: the key's hash and the object's size in bytes (1 when the
/// trace gives no size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Hash of the key token.
    pub key: u64,
    /// Object size; 1 in count mode.
    pub size: u32,
}

/// A trace loaded into memory.
#[derive(Clone, Debug)]
pub struct Trace {
    /// A short name: the file name without `.txt`/`.gz` suffixes.
    pub name: String,
    /// The requests in order.
    pub requests: Vec<Request>,
}

impl Trace {
    /// Number of distinct keys.
    pub fn unique_keys(&self) -> usize {
        let mut keys: Vec<u64> = self.requests.iter().map(|r| r.key).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.len()
    }

    /// How much a cache would need to hold every object at once: the
    /// distinct keys, and the sum of their sizes (each key counted once, at
    /// the size of its first request, as a cache admits it).
    pub fn footprint(&self) -> Footprint {
        let mut seen: HashSet<u64, foldhash::fast::FixedState> =
            HashSet::with_capacity_and_hasher(self.requests.len() / 4, foldhash::fast::FixedState::with_seed(0x6670));
        let mut footprint = Footprint::default();
        for request in &self.requests {
            if seen.insert(request.key) {
                footprint.keys += 1;
                footprint.bytes += u64::from(request.size);
            }
        }
        footprint
    }

    /// The sum of all requests' sizes.
    pub fn requested_bytes(&self) -> u64 {
        self.requests.iter().map(|r| u64::from(r.size)).sum()
    }
}

/// A workload's distinct keys and the bytes they occupy together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Distinct keys.
    pub keys: u64,
    /// Sum of the distinct objects' sizes (equal to `keys` in count mode).
    pub bytes: u64,
}

impl Footprint {
    /// The footprint in the units capacities are given in for `mode`.
    pub fn units(&self, mode: SizeMode) -> u64 {
        match mode {
            SizeMode::Count => self.keys,
            SizeMode::Bytes => self.bytes,
        }
    }
}

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The trace file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line is not `key` or `key size`.
    #[error("{path}:{line}: {reason}")]
    Malformed {
        /// The trace file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The file has no requests.
    #[error("{path}: the trace is empty")]
    Empty {
        /// The trace file.
        path: PathBuf,
    },
}

/// Whether sizes on each line are read or ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeMode {
    /// Every object has size 1; a second column, if any, is ignored.
    Count,
    /// Each line must be `key size` with a size of at least 1 byte.
    Bytes,
}

/// The hasher every trace key goes through.
pub fn key_hash(token: &[u8]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x7374_7261_7461).hash_one(token)
}

/// Reads a whole trace file.
pub fn load(path: &Path, mode: SizeMode) -> Result<Trace, TraceError> {
    let io = |source| TraceError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(io)?;
    let file = File::open(path).map_err(io)?;
    let reader: Box<dyn BufRead> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(file),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let requests = parse(reader, mode).map_err(|e| match e {
        ParseError::Io(source) => io(source),
        ParseError::Malformed { line, reason } => TraceError::Malformed {
            path: path.to_owned(),
            line,
            reason,
        },
    })?;
    if requests.is_empty() {
        return Err(TraceError::Empty { path: path.to_owned() });
    }
    Ok(Trace {
        name: trace_name(path),
        requests,
    })
}

enum ParseError {
    Io(std::io::Error),
    Malformed { line: usize, reason: String },
}

fn parse(mut reader: impl BufRead, mode: SizeMode) -> Result<Vec<Request>, ParseError> {
    let mut requests = Vec::new();
    let mut buf = Vec::with_capacity(64);
    let mut line_no = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(ParseError::Io)? == 0 {
            break;
        }
        line_no += 1;
        let line = buf.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let mut fields = line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty());
        let key = fields.next().expect("non-empty line has a field");
        let size = match mode {
            SizeMode::Count => 1,
            SizeMode::Bytes => {
                let field = fields.next().ok_or_else(|| ParseError::Malformed {
                    line: line_no,
                    reason: "expected `key size`, found no size".into(),
                })?;
                let size = std::str::from_utf8(field)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok())
                    .filter(|&s| s > 0)
                    .ok_or_else(|| ParseError::Malformed {
                        line: line_no,
                        reason: format!(
                            "size {:?} is not a whole number of bytes in 1..=4294967295",
                            String::from_utf8_lossy(field)
                        ),
                    })?;
                if fields.next().is_some() {
                    return Err(ParseError::Malformed {
                        line: line_no,
                        reason: "expected `key size`, found more fields".into(),
                    });
                }
                size
            }
        };
        requests.push(Request {
            key: key_hash(key),
            size,
        });
    }
    Ok(requests)
}

fn trace_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let name = name.strip_suffix(".txt").unwrap_or(name);
    name.to_owned()
}

/// Environment variable naming the directory of the public traces.
pub const TRACES_ENV: &str = "STRATA_TRACES";

/// Environment variable that, when set to `1`, turns a missing trace
/// directory into a test failure instead of a skip (CI sets it).
pub const REQUIRE_TRACES_ENV: &str = "STRATA_REQUIRE_TRACES";

/// The directory of the public traces: `$STRATA_TRACES`, else `../shared/traces`
/// beside the repository root.
pub fn traces_dir() -> PathBuf {
    match std::env::var_os(TRACES_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces"),
    }
}

/// For tests: the path of the trace `file` in [`traces_dir`], or `None`
/// (after saying so loudly on stderr) when it is absent. Panics instead when
/// `STRATA_REQUIRE_TRACES=1`, so CI can never skip silently.
pub fn trace_for_test(file: &str) -> Option<PathBuf> {
    let path = traces_dir().join(file);
    if path.is_file() {
        return Some(path);
    }
    let required = std::env::var(REQUIRE_TRACES_ENV).is_ok_and(|v| v == "1");
    assert!(
        !required,
        "trace {} is missing and {REQUIRE_TRACES_ENV}=1: set {TRACES_ENV} to the directory of the public traces",
        path.display()
    );
    // Straight to the stderr handle, not `eprintln!`: the test harness
    // captures the macros' output of passing tests, which would make the
    // skip silent.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: trace {} not found; set {TRACES_ENV} to the directory of the public traces ***\n",
        path.display()
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_modes_and_reports_bad_lines() {
        let text = b"a 10\nb 20\n\n# comment\na 10\n";
        let reqs = parse(&text[..], SizeMode::Bytes).ok().unwrap();
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0], reqs[2]);
        assert_eq!(reqs[1].size, 20);
        let counted = parse(&text[..], SizeMode::Count).ok().unwrap();
        assert!(counted.iter().all(|r| r.size == 1));
        match parse(&b"a 10\nb x\n"[..], SizeMode::Bytes) {
            Err(ParseError::Malformed { line, .. }) => assert_eq!(line, 2),
            _ => panic!("malformed size accepted"),
        }
        match parse(&b"a\n"[..], SizeMode::Bytes) {
            Err(ParseError::Malformed { line, .. }) => assert_eq!(line, 1),
            _ => panic!("missing size accepted"),
        }
    }

    #[test]
    fn names_strip_suffixes() {
        assert_eq!(trace_name(Path::new("/x/lirs_cs.txt.gz")), "lirs_cs");
        assert_eq!(trace_name(Path::new("t.sizes.txt")), "t.sizes");
    }
}
