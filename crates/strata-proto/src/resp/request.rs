//! Server side: parsing client requests, multibulk and inline, under limits.
//!
//! [`parse_request`] reads one request from the front of a buffer and
//! records its arguments in an [`Args`] as ranges of that buffer, so a
//! connection that reuses one `Args` allocates nothing per request (a quoted
//! inline request is the exception in kind, not in count: it is unescaped
//! into a scratch buffer the `Args` keeps).
//!
//! The rules are Redis 7's (`processInputBuffer` and friends in
//! `networking.c`):
//!
//! - A request starting with `*` is multibulk: `*<count>\r\n` then `count`
//!   times `$<len>\r\n<len bytes>\r\n`. Counts and lengths use Redis's strict
//!   integer syntax. A count of zero or less (`*0`, `*-1`) is an empty
//!   request that is skipped.
//! - Anything else is an inline request: one line ended by `\n` (a `\r`
//!   before it is dropped), split as Redis's `sdssplitargs` splits it (see
//!   `inline.rs`: quotes, escapes, NUL).
//!   A blank line is an empty request that is skipped.
//!
//! Limits are checked as soon as the bytes that prove them exceeded are
//! present, not when the request is complete: a `$` length above
//! [`Limits::max_bulk_bytes`] fails on its header line, before its data.
//!
//! Three deliberate differences from Redis, all about malformed input:
//!
//! - The CRLF after bulk data and after `*`/`$` lines is checked; Redis skips
//!   two bytes unseen. A mismatch is reported as an invalid length (the
//!   length did not match the data), so a desynchronised client is stopped
//!   at once rather than later.
//! - An inline line longer than the limit fails even if its newline is
//!   already buffered (Redis only checks while the newline is missing, so
//!   its outcome depends on how the bytes were split into reads).
//! - A multibulk argument not starting with `$` fails as soon as its first
//!   byte arrives, not once its line is complete.
//!
//! A large request arriving in many reads is not re-parsed from the start
//! each time: the [`Args`] remembers how far it got (see [`parse_request`]).

use super::error::ParseError;
use super::inline::{self, Span, Split};
use super::number::parse_strict_i64;

/// Size limits for requests. The server passes its own; [`Limits::default`]
/// gives Redis's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most arguments one multibulk request may announce. Larger counts fail
    /// with [`ParseError::InvalidMultibulkLength`]. Default 1 048 576 (the
    /// limit Redis had before 7.0; 7.0 allows up to `INT_MAX`, which is also
    /// the ceiling here whatever this says).
    pub max_args: usize,
    /// Largest bulk argument, in bytes. Larger lengths fail with
    /// [`ParseError::InvalidBulkLength`]. Default 512 MiB (Redis's
    /// `proto-max-bulk-len`).
    pub max_bulk_bytes: usize,
    /// Longest inline request line, and longest `*`/`$` header line, in bytes
    /// excluding the line ending. Default 64 KiB (Redis's
    /// `PROTO_INLINE_MAX_SIZE`).
    pub max_inline_bytes: usize,
    /// Largest whole multibulk request, headers included, in bytes. Larger
    /// requests fail with [`ParseError::TooBigRequest`] as soon as a header
    /// announces them. Default 1 GiB (Redis's `client-query-buffer-limit`);
    /// values above `u32::MAX` act as `u32::MAX`.
    pub max_request_bytes: usize,
    /// Largest bulk argument that is buffered. A longer one (still within
    /// [`Limits::max_bulk_bytes`]) is not: [`parse_request`] stops at its
    /// header and reports it in [`Args::oversized`], so a server can refuse
    /// a value larger than it stores with an error reply and discard the
    /// bytes as they arrive ([`Swallow`]) instead of buffering up to
    /// `max_bulk_bytes` per client. Default: no such bulk (`usize::MAX`).
    pub max_buffered_bulk: usize,
}

/// A bulk argument longer than [`Limits::max_buffered_bulk`]: the request
/// it belongs to was parsed up to its data, which the caller must discard
/// together with the arguments after it (see [`Swallow`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oversized {
    /// Its position among the arguments (0 is the command name); the
    /// arguments before it are in the [`Args`].
    pub index: usize,
    /// Its length in bytes (its data and CRLF follow the bytes consumed).
    pub len: usize,
    /// Arguments announced after it.
    pub remaining: usize,
}

/// Discards the rest of a request with an [`Oversized`] argument as its
/// bytes arrive, never buffering a long argument: that argument's data,
/// then each argument after it, keeping copies of those up to
/// `keep_max` bytes (the caller may need them: a key of `MSET`).
#[derive(Clone, Debug)]
pub struct Swallow {
    /// Bytes still to discard of the current long argument, CRLF included.
    skip: usize,
    /// Arguments still to read after it.
    remaining: usize,
    /// Longest argument kept.
    keep_max: usize,
    /// Arguments after the oversized one, in order: `None` for one not
    /// kept (too long).
    kept: Vec<Option<Vec<u8>>>,
}

impl Swallow {
    /// Starts discarding after `oversized`'s header was consumed.
    pub fn new(oversized: Oversized, keep_max: usize) -> Self {
        Swallow {
            skip: oversized.len.saturating_add(2),
            remaining: oversized.remaining,
            keep_max,
            kept: Vec::new(),
        }
    }

    /// Consumes what it can of `buf` (the bytes that follow what was
    /// consumed before): returns how many bytes it used. Check
    /// [`Swallow::is_done`] after. A malformed argument header is a
    /// protocol error, as in [`parse_request`].
    pub fn feed(&mut self, buf: &[u8], limits: &Limits) -> Result<usize, ParseError> {
        let mut pos = 0;
        loop {
            if self.skip > 0 {
                let take = self.skip.min(buf.len() - pos);
                // The CRLF after data is not checked here: the data is
                // never looked at, so neither is its terminator (as Redis
                // skips two bytes unseen).
                self.skip -= take;
                pos += take;
                if self.skip > 0 {
                    return Ok(pos);
                }
            }
            if self.remaining == 0 {
                return Ok(pos);
            }
            let Some(&first) = buf.get(pos) else {
                return Ok(pos);
            };
            let Some((len, data_start)) = bulk_header(buf, pos, first, limits)? else {
                return Ok(pos);
            };
            if len <= self.keep_max {
                // Kept whole: wait until it and its CRLF are here.
                let Some(data) = buf.get(data_start..data_start + len + 2) else {
                    return Ok(pos);
                };
                if &data[len..] != b"\r\n" {
                    return Err(ParseError::InvalidBulkLength);
                }
                self.kept.push(Some(data[..len].to_vec()));
                pos = data_start + len + 2;
            } else {
                self.kept.push(None);
                self.skip = len + 2;
                pos = data_start;
            }
            self.remaining -= 1;
        }
    }

    /// Whether the whole request has been consumed.
    pub fn is_done(&self) -> bool {
        self.skip == 0 && self.remaining == 0
    }

    /// The arguments after the oversized one (`None`: too long to keep).
    pub fn into_kept(self) -> Vec<Option<Vec<u8>>> {
        self.kept
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_args: 1 << 20,
            max_bulk_bytes: 512 << 20,
            max_inline_bytes: 64 << 10,
            max_request_bytes: 1 << 30,
            max_buffered_bulk: usize::MAX,
        }
    }
}

/// Span capacity an [`Args`] keeps between requests; after a request with
/// more arguments the excess is released.
const KEEP_SPANS: usize = 1024;
/// Scratch bytes an [`Args`] keeps between quoted inline requests.
const KEEP_SCRATCH: usize = 64 << 10;

/// Where a multibulk request that was incomplete left off.
#[derive(Clone, Copy, Debug)]
struct Resume {
    /// Arguments the request announced.
    expected: usize,
    /// Offset of the first byte not yet parsed (just after a CRLF).
    pos: usize,
}

/// The arguments of the last request [`parse_request`] returned, as ranges
/// of the buffer it was given. Reuse one per connection: it keeps its
/// capacity, so steady-state parsing allocates nothing.
///
/// Read the arguments with the same buffer that was parsed:
/// `args.get(&buf, 0)` is the command name.
#[derive(Clone, Debug, Default)]
pub struct Args {
    /// Argument ranges, relative to `base` (or to `scratch`).
    spans: Vec<Span>,
    /// Unescaped arguments of a quoted inline request.
    scratch: Vec<u8>,
    /// Whether `spans` index `scratch` rather than the buffer.
    in_scratch: bool,
    /// Offset in the buffer of the request's first byte.
    base: usize,
    /// Progress through an incomplete multibulk request.
    resume: Option<Resume>,
    /// The request stopped at an argument too long to buffer.
    oversized: Option<Oversized>,
}

impl Args {
    /// An empty argument list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of arguments, command name included. Zero after an empty
    /// request (see [`parse_request`]).
    #[inline]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no arguments.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i` (0 is the command name), read from `buf`, which must be
    /// the buffer given to the [`parse_request`] call that filled `self`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`, or `buf` is shorter than the parsed request.
    #[inline]
    pub fn get<'a>(&'a self, buf: &'a [u8], i: usize) -> &'a [u8] {
        let span = self.spans[i];
        let (start, end) = (span.start as usize, span.end as usize);
        if self.in_scratch {
            &self.scratch[start..end]
        } else {
            &buf[self.base + start..self.base + end]
        }
    }

    /// Argument `i` as a slice of `buf` itself, borrowing nothing of `self`
    /// (so a caller may keep it past the next parse), or `None` for an
    /// argument unescaped from a quoted inline request, which is not in
    /// `buf` verbatim: read that one with [`Args::get`].
    #[inline]
    pub fn get_in_buffer<'b>(&self, buf: &'b [u8], i: usize) -> Option<&'b [u8]> {
        let span = self.spans[i];
        (!self.in_scratch).then(|| &buf[self.base + span.start as usize..self.base + span.end as usize])
    }

    /// The arguments in order, read from `buf` (as for [`Args::get`]).
    pub fn iter<'a>(&'a self, buf: &'a [u8]) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        (0..self.len()).map(move |i| self.get(buf, i))
    }

    /// The command name (argument 0), if there is one.
    #[inline]
    pub fn command<'a>(&'a self, buf: &'a [u8]) -> Option<&'a [u8]> {
        if self.is_empty() { None } else { Some(self.get(buf, 0)) }
    }

    /// Whether argument `i` exists and equals `name` ignoring ASCII case,
    /// e.g. `args.arg_is(&buf, 2, b"EX")`.
    #[inline]
    pub fn arg_is(&self, buf: &[u8], i: usize, name: &[u8]) -> bool {
        i < self.len() && self.get(buf, i).eq_ignore_ascii_case(name)
    }

    /// Whether the command name equals `name` ignoring ASCII case,
    /// e.g. `args.command_is(&buf, b"GET")`.
    #[inline]
    pub fn command_is(&self, buf: &[u8], name: &[u8]) -> bool {
        self.arg_is(buf, 0, name)
    }

    /// After `parse_request` returned `Ok(Some(n))`: the request's
    /// argument at `index` is longer than [`Limits::max_buffered_bulk`];
    /// `n` bytes were consumed up to its data, and only the arguments
    /// before it are here. Discard the rest with a [`Swallow`].
    pub fn oversized(&self) -> Option<Oversized> {
        self.oversized
    }

    /// Whether the last request is HTTP, not RESP — a web page made to post
    /// to this port (cross-protocol scripting): Redis's rule (`POST` or
    /// `Host:` as the command name), plus a request line of any method whose
    /// third word is `HTTP/…` (`GET / HTTP/1.1`), which would otherwise get
    /// an arity error and leave the connection open for the page's next
    /// lines. A server hangs up on it without a word, as Redis does.
    pub fn looks_like_http(&self, buf: &[u8]) -> bool {
        const METHODS: &[&[u8]] = &[
            b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE",
        ];
        let Some(name) = self.command(buf) else {
            return false;
        };
        name.eq_ignore_ascii_case(b"post")
            || name.eq_ignore_ascii_case(b"host:")
            || (self.len() == 3 && METHODS.contains(&name) && self.get(buf, 2).starts_with(b"HTTP/"))
    }

    /// Forgets the last request and any partial progress. Call this before
    /// using the same `Args` on a different stream while a request is still
    /// incomplete.
    pub fn clear(&mut self) {
        self.spans.clear();
        if self.spans.capacity() > KEEP_SPANS {
            self.spans.shrink_to(KEEP_SPANS);
        }
        if self.in_scratch && self.scratch.capacity() > KEEP_SCRATCH {
            self.scratch = Vec::new();
        }
        self.in_scratch = false;
        self.base = 0;
        self.resume = None;
        self.oversized = None;
    }
}

/// Longest command name [`uppercase_command`] handles. Redis's longest is 20
/// bytes (`GEORADIUSBYMEMBER_RO`).
pub const MAX_COMMAND_NAME_LEN: usize = 32;

/// Copies `name` upper-cased into `scratch` and returns it, for a `match` on
/// byte-string literals without allocating:
///
/// ```
/// use strata_proto::resp::{uppercase_command, MAX_COMMAND_NAME_LEN};
/// let mut scratch = [0u8; MAX_COMMAND_NAME_LEN];
/// let kind = match uppercase_command(b"get", &mut scratch) {
///     Some(b"GET") => "read",
///     Some(b"SET") => "write",
///     _ => "unknown",
/// };
/// assert_eq!(kind, "read");
/// ```
///
/// `None` if `name` is longer than [`MAX_COMMAND_NAME_LEN`] (no command is).
#[inline]
pub fn uppercase_command<'s>(name: &[u8], scratch: &'s mut [u8; MAX_COMMAND_NAME_LEN]) -> Option<&'s [u8]> {
    let dest = scratch.get_mut(..name.len())?;
    for (d, s) in dest.iter_mut().zip(name) {
        *d = s.to_ascii_uppercase();
    }
    Some(dest)
}

/// Parses one request from the front of `buf` into `args`.
///
/// - `Ok(Some(n))`: `buf[..n]` held one request; `args` describes it. If
///   `args` is empty, `buf[..n]` held only empty requests (blank lines,
///   `*0`, `*-1`), which Redis skips: consume them and execute nothing.
/// - `Ok(None)`: the request is incomplete; read more and call again.
/// - `Err(e)`: a protocol error. Reply `-ERR {e}` and close the connection;
///   the stream cannot be resynchronised.
///
/// After `Ok(None)`, call again with the same bytes at the front of `buf`
/// (more appended is the point); `args` remembers how far it got through a
/// multibulk request, so a large request arriving in many reads is parsed
/// once, not once per read. To parse an unrelated buffer instead, call
/// [`Args::clear`] first. (A violated contract is detected in most cases and
/// answered by parsing from the start; it never causes a panic.)
pub fn parse_request(buf: &[u8], limits: &Limits, args: &mut Args) -> Result<Option<usize>, ParseError> {
    let result = parse(buf, limits, args);
    if result.is_err() {
        args.clear();
    }
    result
}

/// How far one request got.
enum Outcome {
    /// A request with arguments ends at this offset.
    Request(usize),
    /// An empty request ends at this offset.
    Empty(usize),
    /// More bytes are needed.
    Incomplete,
}

fn parse(buf: &[u8], limits: &Limits, args: &mut Args) -> Result<Option<usize>, ParseError> {
    if let Some(resume) = args.resume.take() {
        let consistent = args.base == 0
            && !args.in_scratch
            && args.spans.len() < resume.expected
            && buf.first() == Some(&b'*')
            && resume.pos >= 2
            && buf.get(resume.pos - 2..resume.pos) == Some(b"\r\n");
        if consistent {
            return Ok(match multibulk_args(buf, limits, args, resume.expected, resume.pos)? {
                Outcome::Request(end) => Some(end),
                _ => None,
            });
        }
    }
    args.clear();
    let mut start = 0;
    while let Some(&first) = buf.get(start) {
        let outcome = if first == b'*' {
            multibulk(buf, limits, args, start)?
        } else {
            inline_request(buf, limits, args, start)?
        };
        match outcome {
            Outcome::Request(end) => return Ok(Some(end)),
            Outcome::Empty(end) => start = end,
            Outcome::Incomplete if start == 0 => return Ok(None),
            Outcome::Incomplete => {
                // Hand back the skipped empty requests; the incomplete one
                // starts afresh at the front of the caller's next buffer.
                args.clear();
                return Ok(Some(start));
            }
        }
    }
    args.clear();
    Ok(if start == 0 { None } else { Some(start) })
}

/// A `*` or `$` header line starting at some offset.
enum Line {
    /// The line's `\r` is at `cr`; the next line starts at `cr + 2`.
    Complete { cr: usize },
    /// No `\r\n` yet, and not too long yet.
    Incomplete,
    /// Longer than the limit.
    TooLong,
    /// A `\r` not followed by `\n`.
    BadEnding,
}

/// Finds the end of the header line starting at `start` (its type byte),
/// whose content, type byte included, may be at most `max_len` bytes.
#[inline]
fn header_line(buf: &[u8], start: usize, max_len: usize) -> Line {
    let window_end = buf.len().min(start.saturating_add(max_len).saturating_add(1));
    let window = buf.get(start + 1..window_end).unwrap_or_default();
    match window.iter().position(|&b| b == b'\r') {
        Some(i) => {
            let cr = start + 1 + i;
            match buf.get(cr + 1) {
                None => Line::Incomplete,
                Some(b'\n') => Line::Complete { cr },
                Some(_) => Line::BadEnding,
            }
        }
        None if buf.len() - start > max_len => Line::TooLong,
        None => Line::Incomplete,
    }
}

/// The `$<len>\r\n` header of a bulk argument at `pos`, whose first byte
/// is `first`: its length and where its data starts, or `None` until the
/// line is complete.
fn bulk_header(buf: &[u8], pos: usize, first: u8, limits: &Limits) -> Result<Option<(usize, usize)>, ParseError> {
    if first != b'$' {
        return Err(ParseError::ExpectedBulk(first));
    }
    let cr = match header_line(buf, pos, limits.max_inline_bytes) {
        Line::Complete { cr } => cr,
        Line::Incomplete => return Ok(None),
        Line::TooLong => return Err(ParseError::TooBigBulkCount),
        Line::BadEnding => return Err(ParseError::InvalidBulkLength),
    };
    let len = parse_strict_i64(&buf[pos + 1..cr])
        .and_then(|len| usize::try_from(len).ok())
        .filter(|&len| len <= limits.max_bulk_bytes)
        .ok_or(ParseError::InvalidBulkLength)?;
    Ok(Some((len, cr + 2)))
}

/// A multibulk request starting at `start` (a `*`).
fn multibulk(buf: &[u8], limits: &Limits, args: &mut Args, start: usize) -> Result<Outcome, ParseError> {
    let cr = match header_line(buf, start, limits.max_inline_bytes) {
        Line::Complete { cr } => cr,
        Line::Incomplete => return Ok(Outcome::Incomplete),
        Line::TooLong => return Err(ParseError::TooBigMultibulkCount),
        Line::BadEnding => return Err(ParseError::InvalidMultibulkLength),
    };
    let count = parse_strict_i64(&buf[start + 1..cr]).ok_or(ParseError::InvalidMultibulkLength)?;
    if count <= 0 {
        return Ok(Outcome::Empty(cr + 2));
    }
    let max_args = limits.max_args.min(i32::MAX as usize);
    let count = usize::try_from(count).map_err(|_| ParseError::InvalidMultibulkLength)?;
    if count > max_args {
        return Err(ParseError::InvalidMultibulkLength);
    }
    args.base = start;
    multibulk_args(buf, limits, args, count, cr + 2)
}

/// The bulk arguments of the multibulk request at `args.base`, from `pos`
/// on, until `args` holds `expected` of them.
fn multibulk_args(
    buf: &[u8],
    limits: &Limits,
    args: &mut Args,
    expected: usize,
    mut pos: usize,
) -> Result<Outcome, ParseError> {
    let base = args.base;
    let max_request = limits.max_request_bytes.min(u32::MAX as usize);
    while args.spans.len() < expected {
        let Some(&first) = buf.get(pos) else {
            args.resume = Some(Resume { expected, pos });
            return Ok(Outcome::Incomplete);
        };
        let Some((len, data_start)) = bulk_header(buf, pos, first, limits)? else {
            args.resume = Some(Resume { expected, pos });
            return Ok(Outcome::Incomplete);
        };
        if len > limits.max_buffered_bulk {
            // Not buffered: hand back what came before it.
            args.oversized = Some(Oversized {
                index: args.spans.len(),
                len,
                remaining: expected - args.spans.len() - 1,
            });
            return Ok(Outcome::Request(data_start));
        }
        let data_end = data_start.checked_add(len).ok_or(ParseError::TooBigRequest)?;
        let next = data_end.checked_add(2).ok_or(ParseError::TooBigRequest)?;
        if next - base > max_request {
            return Err(ParseError::TooBigRequest);
        }
        let Some(crlf) = buf.get(data_end..next) else {
            args.resume = Some(Resume { expected, pos });
            return Ok(Outcome::Incomplete);
        };
        if crlf != b"\r\n" {
            return Err(ParseError::InvalidBulkLength);
        }
        // Both fit in u32: they are at most max_request from base.
        args.spans.push(Span {
            start: (data_start - base) as u32,
            end: (data_end - base) as u32,
        });
        pos = next;
    }
    Ok(Outcome::Request(pos))
}

/// An inline request starting at `start` (not a `*`).
fn inline_request(buf: &[u8], limits: &Limits, args: &mut Args, start: usize) -> Result<Outcome, ParseError> {
    let max = limits.max_inline_bytes.min(u32::MAX as usize - 2);
    // The content may be `max` bytes, then `\r\n`.
    let window_end = buf.len().min(start + max + 2);
    let Some(offset) = buf[start..window_end].iter().position(|&b| b == b'\n') else {
        let mut content = buf.len() - start;
        if buf.last() == Some(&b'\r') {
            content -= 1;
        }
        return if content > max {
            Err(ParseError::TooBigInlineRequest)
        } else {
            Ok(Outcome::Incomplete)
        };
    };
    let newline = start + offset;
    let content_end = if newline > start && buf[newline - 1] == b'\r' {
        newline - 1
    } else {
        newline
    };
    if content_end - start > max {
        return Err(ParseError::TooBigInlineRequest);
    }
    args.spans.clear();
    args.base = start;
    let split = inline::split(&buf[start..content_end], &mut args.spans, &mut args.scratch)?;
    args.in_scratch = split == Split::Scratch;
    Ok(if args.spans.is_empty() {
        Outcome::Empty(newline + 1)
    } else {
        Outcome::Request(newline + 1)
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod http_tests {
    use super::*;

    #[test]
    fn http_request_lines_and_headers_are_recognised() {
        let http = |line: &[u8]| {
            let mut args = Args::new();
            parse_request(line, &Limits::default(), &mut args).expect("parses");
            args.looks_like_http(line)
        };
        assert!(http(b"POST / HTTP/1.1\r\n"));
        assert!(http(b"GET / HTTP/1.1\r\n"));
        assert!(http(b"Host: localhost\r\n"));
        assert!(!http(b"GET key\r\n"));
        assert!(!http(b"SET / HTTP/1.1\r\n"));
        assert!(!http(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"));
    }
}
