//! What the load generator sends and how it reads the answers.
//!
//! Requests are encoded with `strata-proto`'s client encoders, so the bytes
//! are exactly what a Redis or memcached client library sends. Replies are
//! *scanned*, not decoded: the generator only needs to know where each
//! reply ends and whether it was a hit, a miss, a success or an error, and
//! it must stay cheaper than the server it measures (the generator runs on
//! one core and usually saturates first). So the scanners below skip value
//! bytes without copying them and allocate nothing.

use std::fmt;

use strata_proto::memcache::client as mc;
use strata_proto::resp::encode_command;

/// Which protocol the generator speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Wire {
    /// The Redis protocol (RESP2): `GET` and `SET`.
    Resp,
    /// memcached's text protocol: `get` and `set`.
    Memcache,
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Wire::Resp => "resp",
            Wire::Memcache => "memcache",
        })
    }
}

/// How one reply turned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A read that found its key.
    Hit,
    /// A read that did not.
    Miss,
    /// A write that was stored.
    Stored,
    /// An error reply (`-ERR …`, `SERVER_ERROR …`, `NOT_STORED`, …).
    Error,
}

/// A reply that is not one the generator's requests can get.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unexpected reply from the server: {0:?}")]
pub struct UnexpectedReply(pub String);

impl UnexpectedReply {
    fn from_bytes(bytes: &[u8]) -> Self {
        let shown = &bytes[..bytes.len().min(80)];
        Self(String::from_utf8_lossy(shown).into_owned())
    }
}

/// Appends a read of `key`.
pub fn encode_get(wire: Wire, out: &mut Vec<u8>, key: &[u8]) {
    match wire {
        Wire::Resp => encode_command(out, &[&b"GET"[..], key]),
        Wire::Memcache => mc::encode_get(out, &[key]),
    }
}

/// Appends a write of `value` under `key`, with no expiry.
pub fn encode_set(wire: Wire, out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    match wire {
        Wire::Resp => encode_command(out, &[&b"SET"[..], key, value]),
        Wire::Memcache => mc::encode_set(out, key, 0, 0, value),
    }
}

/// Finds the end of the first complete reply in `buf`: `Ok(None)` if it is
/// not complete yet, else its length and outcome.
pub fn scan_reply(wire: Wire, buf: &[u8]) -> Result<Option<(usize, Outcome)>, UnexpectedReply> {
    match wire {
        Wire::Resp => scan_resp(buf),
        Wire::Memcache => scan_memcache(buf),
    }
}

/// The index just past the first `\r\n` at or after `from`.
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', buf.get(from..)?).map(|i| from + i + 1)
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &digit| {
        digit.is_ascii_digit().then(|| value * 10 + u64::from(digit - b'0'))
    })
}

fn scan_resp(buf: &[u8]) -> Result<Option<(usize, Outcome)>, UnexpectedReply> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let Some(header_end) = line_end(buf, 0) else {
        return Ok(None);
    };
    let header = &buf[1..header_end.saturating_sub(2).max(1)];
    let outcome = match kind {
        b'+' => Outcome::Stored,
        b'-' => Outcome::Error,
        b'_' => Outcome::Miss,
        b'$' => {
            if header == b"-1" {
                Outcome::Miss
            } else {
                let len = parse_decimal(header).ok_or_else(|| UnexpectedReply::from_bytes(&buf[..header_end]))?;
                let end = header_end + len as usize + 2;
                if buf.len() < end {
                    return Ok(None);
                }
                return Ok(Some((end, Outcome::Hit)));
            }
        }
        _ => return Err(UnexpectedReply::from_bytes(&buf[..header_end])),
    };
    Ok(Some((header_end, outcome)))
}

fn scan_memcache(buf: &[u8]) -> Result<Option<(usize, Outcome)>, UnexpectedReply> {
    let Some(first_end) = line_end(buf, 0) else {
        return Ok(None);
    };
    let line = &buf[..first_end];
    if line == b"END\r\n" {
        return Ok(Some((first_end, Outcome::Miss)));
    }
    if line == b"STORED\r\n" {
        return Ok(Some((first_end, Outcome::Stored)));
    }
    if let Some(rest) = line.strip_prefix(b"VALUE ") {
        // VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\nEND\r\n
        let fields = rest[..rest.len().saturating_sub(2)]
            .split(|&b| b == b' ')
            .filter(|field| !field.is_empty());
        let len = fields
            .clone()
            .nth(2)
            .and_then(parse_decimal)
            .ok_or_else(|| UnexpectedReply::from_bytes(line))?;
        let data_end = first_end + len as usize + 2;
        let end = data_end + b"END\r\n".len();
        if buf.len() < end {
            return Ok(None);
        }
        if &buf[data_end..end] != b"END\r\n" {
            return Err(UnexpectedReply::from_bytes(&buf[data_end..]));
        }
        return Ok(Some((end, Outcome::Hit)));
    }
    let is_error = [&b"SERVER_ERROR"[..], b"CLIENT_ERROR", b"ERROR", b"NOT_STORED"]
        .iter()
        .any(|prefix| line.starts_with(prefix));
    if is_error {
        return Ok(Some((first_end, Outcome::Error)));
    }
    Err(UnexpectedReply::from_bytes(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(wire: Wire, bytes: &[u8]) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        let mut at = 0;
        while let Some((len, outcome)) = scan_reply(wire, &bytes[at..]).unwrap() {
            outcomes.push(outcome);
            at += len;
        }
        assert_eq!(at, bytes.len(), "every byte belongs to a reply");
        outcomes
    }

    #[test]
    fn resp_replies_are_classified() {
        let bytes = b"+OK\r\n$-1\r\n$5\r\nhe\r\no\r\n_\r\n-OOM no\r\n$0\r\n\r\n";
        assert_eq!(
            scan_all(Wire::Resp, bytes),
            [
                Outcome::Stored,
                Outcome::Miss,
                Outcome::Hit,
                Outcome::Miss,
                Outcome::Error,
                Outcome::Hit
            ]
        );
    }

    #[test]
    fn memcache_replies_are_classified() {
        let bytes = b"STORED\r\nEND\r\nVALUE k 0 5\r\nEND\r\n\r\nEND\r\nSERVER_ERROR out of memory\r\nVALUE k 3 1 99\r\nx\r\nEND\r\n";
        assert_eq!(
            scan_all(Wire::Memcache, bytes),
            [
                Outcome::Stored,
                Outcome::Miss,
                Outcome::Hit,
                Outcome::Error,
                Outcome::Hit
            ]
        );
    }

    #[test]
    fn incomplete_replies_wait_at_every_split() {
        for (wire, bytes) in [
            (Wire::Resp, &b"$11\r\nhello world\r\n"[..]),
            (Wire::Memcache, &b"VALUE key 0 11\r\nhello world\r\nEND\r\n"[..]),
        ] {
            for split in 0..bytes.len() {
                assert_eq!(scan_reply(wire, &bytes[..split]), Ok(None), "{wire} split at {split}");
            }
            assert_eq!(scan_reply(wire, bytes), Ok(Some((bytes.len(), Outcome::Hit))));
        }
    }

    #[test]
    fn foreign_replies_are_errors_not_hangs() {
        assert!(scan_reply(Wire::Resp, b"*2\r\n").is_err());
        assert!(scan_reply(Wire::Resp, b"$x\r\n").is_err());
        assert!(scan_reply(Wire::Memcache, b"DELETED\r\n").is_err());
        assert!(scan_reply(Wire::Memcache, b"VALUE k 0 2\r\nab\r\nXXXX\r\n").is_err());
    }

    #[test]
    fn encoded_requests_are_what_clients_send() {
        let mut out = Vec::new();
        encode_get(Wire::Resp, &mut out, b"k");
        encode_set(Wire::Resp, &mut out, b"k", b"v");
        assert_eq!(
            out,
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
        );
        out.clear();
        encode_get(Wire::Memcache, &mut out, b"k");
        encode_set(Wire::Memcache, &mut out, b"k", b"v");
        assert_eq!(out, b"get k\r\nset k 0 0 1\r\nv\r\n");
    }
}
