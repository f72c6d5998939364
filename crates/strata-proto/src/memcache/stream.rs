//! Retrieval lines of any length, parsed as their keys arrive.
//!
//! memcached lets a `get`/`gets` line grow without bound: clients send
//! multigets of tens of thousands of keys (18,000 keys make a 128 KiB line)
//! and expect every key answered. Buffering such a line whole would let any
//! client make the server hold any amount of memory, and a line limit that
//! refuses it breaks those clients. So a retrieval line is never held whole
//! once it outgrows [`Limits::max_line_bytes`]: [`parse_request`] returns
//! its command alone ([`Parsed::LongGet`]), and from then on a
//! [`GetStream`] hands out the keys that have fully arrived — a key is
//! complete once the space after it, or the line's end, is buffered. The
//! server answers them and drops their bytes; only the last, incomplete key
//! stays buffered, and it is refused as too long once it passes
//! [`Limits::max_key_bytes`]. Memory per connection stays bounded by the
//! line limit, however long the line. When the newline arrives the reply is
//! closed with `END`.
//!
//! Lines within the limit are parsed whole as before, so everything short
//! behaves as it always has; a stream starts only where the old parser gave
//! up (and closed the connection). The limit stays in force for every other
//! command, whose lines are never legitimately long.
//!
//! Where a streamed line differs from one parsed whole:
//!
//! - A bad key (too long, or with control characters) refuses a line parsed
//!   whole with `CLIENT_ERROR bad command line format` and nothing else. A
//!   stream may already have answered the keys before it, which cannot be
//!   taken back: it answers the error in place of `END` — the one line that
//!   ends the reply either way — and discards the rest of the line, up to
//!   its newline, as it arrives, so the connection stays in step.
//! - A `gat`/`gats` line streams only if its exptime is a number; a long
//!   line with a bad one is closed like any other over-long line.
//!
//! [`parse_request`]: super::parse_request
//! [`Parsed::LongGet`]: super::Parsed::LongGet

use super::error::RequestError;
use super::line::{is_valid_key, parse_i64};
use super::request::{Keys, Limits};

/// A retrieval line longer than [`Limits::max_line_bytes`], parsed as it
/// arrives. [`Parsed::LongGet`](super::Parsed::LongGet) starts one; the
/// caller keeps it with the connection and, instead of
/// [`parse_request`](super::parse_request), calls [`parse`](Self::parse)
/// with what it has buffered after the bytes already dropped, until
/// [`is_done`](Self::is_done).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetStream {
    cas: bool,
    touch: Option<i64>,
    max_key_bytes: usize,
    /// Keys handed out so far.
    keys: usize,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Handing out keys.
    Keys,
    /// Refused: dropping the rest of the line up to its newline.
    Discarding,
    /// The newline has been consumed.
    Done,
}

/// What one [`GetStream::parse`] found: keys to answer now, bytes to drop,
/// and whether the reply ends here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetChunk<'a> {
    /// The keys that have fully arrived since the last call, each valid, in
    /// request order; possibly none. Answer them (one `VALUE` per hit)
    /// before `end`.
    pub keys: Keys<'a>,
    /// Bytes to drop from the front of the buffer. What is left is at most
    /// an incomplete key (no more than [`Limits::max_key_bytes`] plus one),
    /// or, once the stream is done, the requests after the line.
    pub consumed: usize,
    /// The line that closes the reply, if it closes here.
    pub end: Option<GetEnd>,
}

/// How a streamed retrieval's reply ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GetEnd {
    /// The line ended: send `END`.
    End,
    /// The line was refused after the keys answered so far: send
    /// [`RequestError::reply_line`] instead of `END`. A bad key does this,
    /// as does a line of no keys at all. The rest of the line is discarded
    /// by later calls.
    Refused(RequestError),
}

impl GetStream {
    /// A stream of keys for `get` (`cas` false, no `touch`), `gets`, `gat`
    /// or `gats`.
    pub(crate) fn new(cas: bool, touch: Option<i64>, max_key_bytes: usize) -> Self {
        GetStream {
            cas,
            touch,
            max_key_bytes,
            keys: 0,
            state: State::Keys,
        }
    }

    /// Whether CAS uniques are wanted (`gets`, `gats`).
    pub fn cas(&self) -> bool {
        self.cas
    }

    /// The exptime to touch the items with (`gat`, `gats`), raw (see
    /// [`Expiration`](super::Expiration)).
    pub fn touch(&self) -> Option<i64> {
        self.touch
    }

    /// The command's name: `get`, `gets`, `gat` or `gats`.
    pub fn command_name(&self) -> &'static str {
        super::request::retrieval_name(self.touch.is_some(), self.cas)
    }

    /// How many keys have been handed out so far.
    pub fn keys_so_far(&self) -> usize {
        self.keys
    }

    /// Whether the line's newline has been consumed: the next bytes are a
    /// new request, for [`parse_request`](super::parse_request).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Answers no more keys: the rest of the line is discarded by later
    /// calls, up to and including its newline. For a caller that has ended
    /// the reply itself (with an error of its own: not authenticated, the
    /// command unsupported, a backend failure). Does nothing once done.
    pub fn abandon(&mut self) {
        if self.state == State::Keys {
            self.state = State::Discarding;
        }
    }

    /// Parses the continuation of the line at the start of `buf`: what was
    /// buffered after the bytes earlier calls (and the
    /// [`Parsed::LongGet`](super::Parsed::LongGet) that started the stream)
    /// said to drop. Never fails and never waits for more than one key: what
    /// it cannot use yet it leaves in `buf` for the next call.
    pub fn parse<'a>(&mut self, buf: &'a [u8]) -> GetChunk<'a> {
        let newline = memchr::memchr(b'\n', buf);
        match self.state {
            State::Done => return GetChunk::nothing(0, None),
            State::Discarding => {
                let consumed = match newline {
                    Some(at) => {
                        self.state = State::Done;
                        at + 1
                    }
                    None => buf.len(),
                };
                return GetChunk::nothing(consumed, None);
            }
            State::Keys => {}
        }
        // Keys end at a space, or at the line's end once it has come; the
        // bytes after the last space may be the start of one more key.
        let (complete, tail) = match newline {
            Some(at) => {
                let line = &buf[..at];
                (line.strip_suffix(b"\r").unwrap_or(line), &[][..])
            }
            None => buf.split_at(memchr::memrchr(b' ', buf).map_or(0, |space| space + 1)),
        };
        let (valid_len, count, bad_key) = self.scan_keys(complete);
        // The incomplete last key cannot become valid past this length (the
        // one byte more is a `\r` that may turn out to end the line).
        let bad_tail = tail.len() > self.max_key_bytes + 1;
        self.keys += count;
        let keys = Keys::new(&complete[..valid_len], count);
        if bad_key || bad_tail {
            return match newline {
                Some(at) => {
                    self.state = State::Done;
                    GetChunk::refused(keys, at + 1)
                }
                None => {
                    self.state = State::Discarding;
                    GetChunk::refused(keys, buf.len())
                }
            };
        }
        match newline {
            Some(at) => {
                self.state = State::Done;
                let end = if self.keys == 0 {
                    // memcached refuses a get without keys.
                    GetEnd::Refused(RequestError::BadFormat)
                } else {
                    GetEnd::End
                };
                GetChunk {
                    keys,
                    consumed: at + 1,
                    end: Some(end),
                }
            }
            None => GetChunk {
                keys,
                consumed: complete.len(),
                end: None,
            },
        }
    }

    /// The valid keys at the start of `complete` (space-separated, each
    /// known to be whole): the length of the part they fill, how many there
    /// are, and whether a bad key stopped the scan.
    fn scan_keys(&self, complete: &[u8]) -> (usize, usize, bool) {
        let (mut at, mut valid_len, mut count) = (0, 0, 0);
        while let Some(start) = complete[at..]
            .iter()
            .position(|&byte| byte != b' ')
            .map(|skip| at + skip)
        {
            let end = memchr::memchr(b' ', &complete[start..]).map_or(complete.len(), |len| start + len);
            if !is_valid_key(&complete[start..end], self.max_key_bytes) {
                return (valid_len, count, true);
            }
            count += 1;
            valid_len = end;
            at = end;
        }
        (valid_len, count, false)
    }
}

impl<'a> GetChunk<'a> {
    fn nothing(consumed: usize, end: Option<GetEnd>) -> Self {
        GetChunk {
            keys: Keys::new(&[], 0),
            consumed,
            end,
        }
    }

    fn refused(keys: Keys<'a>, consumed: usize) -> Self {
        GetChunk {
            keys,
            consumed,
            end: Some(GetEnd::Refused(RequestError::BadFormat)),
        }
    }
}

/// The stream for a buffer that holds [`Limits::max_line_bytes`] bytes
/// without a newline, if its line is a retrieval whose command (and, for
/// `gat`/`gats`, exptime) is whole within that window, with the bytes the
/// command takes; `None` for any other line, which is too long.
pub(crate) fn start(buf: &[u8], limits: &Limits) -> Option<(GetStream, usize)> {
    let window = &buf[..buf.len().min(limits.max_line_bytes)];
    let (start, end) = whole_token(window, 0)?;
    let (cas, touch) = match &window[start..end] {
        b"get" => (false, false),
        b"gets" => (true, false),
        b"gat" => (false, true),
        b"gats" => (true, true),
        _ => return None,
    };
    if !touch {
        return Some((GetStream::new(cas, None, limits.max_key_bytes), end));
    }
    let (exptime_start, exptime_end) = whole_token(window, end)?;
    let exptime = parse_i64(&window[exptime_start..exptime_end])?;
    Some((GetStream::new(cas, Some(exptime), limits.max_key_bytes), exptime_end))
}

/// The bounds of the first token at or after `from`, if a space follows it
/// within `window` (otherwise it may not have fully arrived).
fn whole_token(window: &[u8], from: usize) -> Option<(usize, usize)> {
    let start = from + window.get(from..)?.iter().position(|&byte| byte != b' ')?;
    let end = start + memchr::memchr(b' ', &window[start..])?;
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_key_bytes: 8,
        max_value_bytes: 100,
        max_line_bytes: 32,
    };

    fn keys(chunk: &GetChunk<'_>) -> Vec<String> {
        chunk
            .keys
            .iter()
            .map(|key| String::from_utf8_lossy(key).into_owned())
            .collect()
    }

    #[test]
    fn start_needs_a_whole_retrieval_command() {
        let long = |line: &str| format!("{line:<40}").into_bytes();
        assert_eq!(
            start(&long("get a b"), &LIMITS),
            Some((GetStream::new(false, None, 8), 3))
        );
        assert_eq!(
            start(&long("  gets a"), &LIMITS),
            Some((GetStream::new(true, None, 8), 6))
        );
        assert_eq!(
            start(&long("gat -5 a"), &LIMITS),
            Some((GetStream::new(false, Some(-5), 8), 6))
        );
        assert_eq!(
            start(&long("gats 10 a"), &LIMITS),
            Some((GetStream::new(true, Some(10), 8), 7))
        );
        // Not a retrieval, a bad or unfinished exptime, a command still
        // arriving at the window's edge.
        assert_eq!(start(&long("set a b"), &LIMITS), None);
        assert_eq!(start(&long("gat x a"), &LIMITS), None);
        assert_eq!(start(format!("gat {}", "1".repeat(40)).as_bytes(), &LIMITS), None);
        assert_eq!(start(format!("{}get", " ".repeat(29)).as_bytes(), &LIMITS), None);
        assert_eq!(start(&long(""), &LIMITS), None);
    }

    #[test]
    fn hands_out_keys_once_a_space_follows() {
        let mut stream = GetStream::new(false, None, 8);
        let chunk = stream.parse(b" a bb cc");
        assert_eq!(keys(&chunk), ["a", "bb"]);
        assert_eq!((chunk.consumed, chunk.end), (6, None));
        // The caller dropped 6 bytes; "cc" is still buffered.
        let chunk = stream.parse(b"cc");
        assert_eq!((keys(&chunk).len(), chunk.consumed, chunk.end), (0, 0, None));
        let chunk = stream.parse(b"ccc d\r");
        assert_eq!(keys(&chunk), ["ccc"]);
        assert_eq!(chunk.consumed, 4);
        let chunk = stream.parse(b"d\r\nget x\r\n");
        assert_eq!(keys(&chunk), ["d"]);
        assert_eq!((chunk.consumed, chunk.end), (3, Some(GetEnd::End)));
        assert!(stream.is_done());
        assert_eq!(stream.keys_so_far(), 4);
        // Done: nothing more is taken.
        assert_eq!(stream.parse(b"get x\r\n").consumed, 0);
    }

    #[test]
    fn a_bare_newline_ends_the_line_too() {
        let mut stream = GetStream::new(true, None, 8);
        let chunk = stream.parse(b" k  \n");
        assert_eq!(keys(&chunk), ["k"]);
        assert_eq!((chunk.consumed, chunk.end), (5, Some(GetEnd::End)));
        assert_eq!(stream.command_name(), "gets");
    }

    #[test]
    fn a_bad_key_ends_the_reply_and_the_rest_of_the_line_is_dropped() {
        let mut stream = GetStream::new(false, None, 8);
        let chunk = stream.parse(b" a b\x01 c ");
        assert_eq!(keys(&chunk), ["a"]);
        assert_eq!(
            (chunk.consumed, chunk.end),
            (8, Some(GetEnd::Refused(RequestError::BadFormat)))
        );
        assert!(!stream.is_done());
        let chunk = stream.parse(b"more keys");
        assert_eq!((keys(&chunk).len(), chunk.consumed, chunk.end), (0, 9, None));
        let chunk = stream.parse(b"x\r\nmn\r\n");
        assert_eq!((keys(&chunk).len(), chunk.consumed, chunk.end), (0, 3, None));
        assert!(stream.is_done());
    }

    #[test]
    fn a_key_too_long_is_refused_before_it_ends() {
        let mut stream = GetStream::new(false, None, 8);
        // Nine bytes may be eight and a `\r` that ends the line.
        let chunk = stream.parse(b" a 12345678\r");
        assert_eq!(keys(&chunk), ["a"]);
        assert_eq!((chunk.consumed, chunk.end), (3, None));
        let chunk = stream.parse(b"12345678\r\n");
        assert_eq!(keys(&chunk), ["12345678"]);
        assert_eq!(chunk.end, Some(GetEnd::End));

        let mut stream = GetStream::new(false, None, 8);
        let chunk = stream.parse(b" a 1234567890");
        assert_eq!(keys(&chunk), ["a"]);
        assert_eq!(
            (chunk.consumed, chunk.end),
            (13, Some(GetEnd::Refused(RequestError::BadFormat)))
        );
        // A whole key one byte too long, in a line that ends here.
        let mut stream = GetStream::new(false, None, 8);
        let chunk = stream.parse(b"123456789\r\nmn\r\n");
        assert_eq!(
            (keys(&chunk).len(), chunk.consumed, chunk.end),
            (0, 11, Some(GetEnd::Refused(RequestError::BadFormat)))
        );
        assert!(stream.is_done());
    }

    #[test]
    fn a_line_of_no_keys_is_refused() {
        let mut stream = GetStream::new(false, None, 8);
        assert_eq!(stream.parse(b"      ").consumed, 6);
        let chunk = stream.parse(b" \r\n");
        assert_eq!(
            (chunk.consumed, chunk.end),
            (3, Some(GetEnd::Refused(RequestError::BadFormat)))
        );
        assert!(stream.is_done());
    }

    #[test]
    fn abandon_discards_to_the_newline() {
        let mut stream = GetStream::new(false, Some(0), 8);
        stream.abandon();
        let chunk = stream.parse(b"a b c");
        assert_eq!((keys(&chunk).len(), chunk.consumed, chunk.end), (0, 5, None));
        assert_eq!(stream.parse(b"d\r\nmn").consumed, 3);
        assert!(stream.is_done());
        stream.abandon();
        assert!(stream.is_done());
    }
}
