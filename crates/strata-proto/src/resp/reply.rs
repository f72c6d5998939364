//! Client side: parsing replies into owned [`Reply`] trees.
//!
//! [`parse_reply`] reads one reply of any RESP2 or RESP3 type from the front
//! of a buffer; the types are self-describing, so it needs no protocol
//! version. It also reads RESP3's streamed forms (`$?` strings sent in `;`
//! chunks, and `*?`, `~?`, `%?` aggregates ended by `.`), which Redis does
//! not send but the RESP3 specification allows; they parse into the same
//! variants as their fixed-length forms.
//!
//! Parsing is two passes: one that only checks that a whole, valid reply is
//! present (allocating nothing), then one that builds it. An incomplete
//! reply therefore costs a scan per read, never a half-built tree; the
//! caller should read in large chunks when replies are large.
//!
//! Nesting is limited by [`ReplyLimits::max_depth`], so a hostile or broken
//! peer cannot overflow the stack, and no allocation is sized by a length
//! the peer announced before the bytes it announced have arrived.

use super::error::ParseError;
use super::number::parse_lenient_i64;

/// One reply, owned.
///
/// RESP2 replies use the variants `Simple`, `Error`, `Integer`, `Bulk`,
/// `Null` (from `$-1`), `NullArray` (from `*-1`) and `Array`; RESP3 adds the
/// rest, and sends `_` (parsed as `Null`) for both nulls.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// A simple string, `+OK`.
    Simple(Vec<u8>),
    /// An error: a simple error `-ERR ...` or a RESP3 blob error `!len`. The
    /// text starts with the error code (`ERR`, `WRONGTYPE`, ...).
    Error(Vec<u8>),
    /// An integer, `:42`.
    Integer(i64),
    /// A bulk string, `$3` `foo`.
    Bulk(Vec<u8>),
    /// Null: RESP3 `_` or RESP2's null bulk string `$-1`.
    Null,
    /// RESP2's null array, `*-1`.
    NullArray,
    /// An array, `*n`.
    Array(Vec<Reply>),
    /// A RESP3 map, `%n`, in wire order.
    Map(Vec<(Reply, Reply)>),
    /// A RESP3 set, `~n`, in wire order.
    Set(Vec<Reply>),
    /// A RESP3 push (out-of-band data, e.g. an invalidation), `>n`.
    Push(Vec<Reply>),
    /// A RESP3 double, `,1.5` (also `inf`, `-inf`, `nan`).
    Double(f64),
    /// A RESP3 boolean, `#t` or `#f`.
    Boolean(bool),
    /// A RESP3 verbatim string, `=n` then `fmt:text`.
    Verbatim {
        /// The three-byte format, such as `txt` or `mkd`.
        format: [u8; 3],
        /// The text after `fmt:`.
        text: Vec<u8>,
    },
    /// A RESP3 big number, `(digits`: its decimal digits, with an optional
    /// leading sign.
    BigNumber(Vec<u8>),
    /// A RESP3 attribute, `|n`, and the reply it annotates.
    Attribute {
        /// The attribute map, in wire order.
        attributes: Vec<(Reply, Reply)>,
        /// The reply that followed the attribute map.
        reply: Box<Reply>,
    },
}

/// Limits for [`parse_reply`]. Anything over a limit is a
/// [`ParseError::ReplyTooBig`] or [`ParseError::ReplyTooDeep`] as soon as
/// its header is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Deepest nesting of aggregates (arrays, maps, sets, pushes,
    /// attributes). Default 128.
    pub max_depth: usize,
    /// Largest bulk, blob error or verbatim string, in bytes (for a streamed
    /// string, the sum of its chunks). Default 512 MiB, Redis's
    /// `proto-max-bulk-len`.
    pub max_bulk_bytes: usize,
    /// Most elements of one aggregate (pairs, for maps and attributes).
    /// Default 2^32.
    pub max_elements: usize,
    /// Longest line (simple string, simple error, number), in bytes. Default
    /// 1 MiB.
    pub max_line_bytes: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        Self {
            max_depth: 128,
            max_bulk_bytes: 512 << 20,
            max_elements: 1 << 32,
            max_line_bytes: 1 << 20,
        }
    }
}

/// Parses one reply from the front of `buf`.
///
/// `Ok(Some((reply, n)))`: `buf[..n]` held `reply`. `Ok(None)`: incomplete,
/// read more. `Err`: the stream is broken; close the connection.
pub fn parse_reply(buf: &[u8], limits: &ReplyLimits) -> Result<Option<(Reply, usize)>, ParseError> {
    let mut check = Parser { buf, pos: 0, limits };
    match check.value::<false>(0) {
        Ok(_) => {}
        Err(Fail::Incomplete) => return Ok(None),
        Err(Fail::Invalid(error)) => return Err(error),
    }
    let end = check.pos;
    let mut build = Parser { buf, pos: 0, limits };
    match build.value::<true>(0) {
        Ok(reply) if build.pos == end => Ok(Some((reply, end))),
        // The checking pass accepted these bytes, so this cannot happen; if
        // it did, refusing is safer than guessing.
        Ok(_) | Err(Fail::Incomplete) => Err(ParseError::MalformedReply("reply")),
        Err(Fail::Invalid(error)) => Err(error),
    }
}

/// Why a parse step stopped.
enum Fail {
    Incomplete,
    Invalid(ParseError),
}

impl From<ParseError> for Fail {
    fn from(error: ParseError) -> Self {
        Fail::Invalid(error)
    }
}

type Step<T> = Result<T, Fail>;

/// What a length line said.
enum Length {
    /// `-1`.
    Null,
    /// `?`: a streamed string or aggregate.
    Streamed,
    /// A length or count.
    Known(usize),
}

struct Parser<'b, 'l> {
    buf: &'b [u8],
    pos: usize,
    limits: &'l ReplyLimits,
}

impl<'b> Parser<'b, '_> {
    /// The line from `pos` to the next CRLF; moves past it.
    fn line(&mut self) -> Step<&'b [u8]> {
        let max = self.limits.max_line_bytes;
        let rest = &self.buf[self.pos..];
        let window = &rest[..rest.len().min(max.saturating_add(1))];
        let Some(cr) = window.iter().position(|&b| b == b'\r') else {
            return Err(if rest.len() > max {
                ParseError::ReplyTooBig("line").into()
            } else {
                Fail::Incomplete
            });
        };
        match rest.get(cr + 1) {
            None => Err(Fail::Incomplete),
            Some(b'\n') => {
                self.pos += cr + 2;
                Ok(&rest[..cr])
            }
            Some(_) => Err(ParseError::ExpectedCrlf.into()),
        }
    }

    /// A length line: digits, `-1` or `?`.
    fn length(&mut self) -> Step<Length> {
        let line = self.line()?;
        if line == b"?" {
            return Ok(Length::Streamed);
        }
        match parse_lenient_i64(line) {
            Some(-1) => Ok(Length::Null),
            Some(len) => usize::try_from(len)
                .map(Length::Known)
                .map_err(|_| ParseError::InvalidReplyLength.into()),
            None => Err(ParseError::InvalidReplyLength.into()),
        }
    }

    /// `len` bytes of data and their CRLF.
    fn data(&mut self, len: usize) -> Step<&'b [u8]> {
        if len > self.limits.max_bulk_bytes {
            return Err(ParseError::ReplyTooBig("bulk").into());
        }
        let start = self.pos;
        let end = start.checked_add(len).ok_or(ParseError::ReplyTooBig("bulk"))?;
        match self.buf.get(end..end + 2) {
            None => Err(Fail::Incomplete),
            Some(b"\r\n") => {
                self.pos = end + 2;
                Ok(&self.buf[start..end])
            }
            Some(_) => Err(ParseError::ExpectedCrlf.into()),
        }
    }

    /// A length and its data, for types that have no null or streamed form.
    fn known_blob(&mut self) -> Step<&'b [u8]> {
        match self.length()? {
            Length::Known(len) => self.data(len),
            _ => Err(ParseError::InvalidReplyLength.into()),
        }
    }

    /// A bulk-like payload after its type byte: `len` then data, or a
    /// streamed string. `Ok(None)` for `-1`.
    fn blob<const BUILD: bool>(&mut self) -> Step<Option<Vec<u8>>> {
        match self.length()? {
            Length::Null => Ok(None),
            Length::Known(len) => {
                let data = self.data(len)?;
                Ok(Some(if BUILD { data.to_vec() } else { Vec::new() }))
            }
            Length::Streamed => {
                let mut joined = Vec::new();
                let mut total = 0usize;
                loop {
                    match self.buf.get(self.pos) {
                        None => return Err(Fail::Incomplete),
                        Some(b';') => self.pos += 1,
                        Some(_) => return Err(ParseError::MalformedReply("streamed string").into()),
                    }
                    let Length::Known(len) = self.length()? else {
                        return Err(ParseError::InvalidReplyLength.into());
                    };
                    if len == 0 {
                        return Ok(Some(joined));
                    }
                    total = total.saturating_add(len);
                    let chunk = self.data(len)?;
                    if total > self.limits.max_bulk_bytes {
                        return Err(ParseError::ReplyTooBig("bulk").into());
                    }
                    if BUILD {
                        joined.extend_from_slice(chunk);
                    }
                }
            }
        }
    }

    /// The element count of an aggregate, read and checked against the
    /// limits. `None` for a streamed aggregate.
    fn count(&mut self, depth: usize) -> Step<Option<usize>> {
        let length = self.length()?;
        self.checked_count(length, depth)
    }

    /// Checks an aggregate's length against the limits; `-1` is refused.
    fn checked_count(&self, length: Length, depth: usize) -> Step<Option<usize>> {
        if depth >= self.limits.max_depth {
            return Err(ParseError::ReplyTooDeep(self.limits.max_depth).into());
        }
        match length {
            Length::Known(count) if count > self.limits.max_elements => {
                Err(ParseError::ReplyTooBig("aggregate").into())
            }
            Length::Known(count) => Ok(Some(count)),
            Length::Streamed => Ok(None),
            Length::Null => Err(ParseError::InvalidReplyLength.into()),
        }
    }

    /// Whether a streamed aggregate ends here (`.\r\n`); moves past the end.
    fn at_stream_end(&mut self) -> Step<bool> {
        match self.buf.get(self.pos) {
            None => Err(Fail::Incomplete),
            Some(b'.') => {
                self.pos += 1;
                if !self.line()?.is_empty() {
                    return Err(ParseError::MalformedReply("stream end").into());
                }
                Ok(true)
            }
            Some(_) => Ok(false),
        }
    }

    /// Capacity to reserve for `count` elements: never more than the bytes
    /// present could hold (each element takes at least three).
    fn capacity(&self, count: usize, bytes_each: usize) -> usize {
        count.min((self.buf.len() - self.pos) / bytes_each)
    }

    /// The elements of an array, set or push.
    fn elements<const BUILD: bool>(&mut self, count: Option<usize>, depth: usize) -> Step<Vec<Reply>> {
        let mut items = Vec::new();
        match count {
            Some(count) => {
                if BUILD {
                    items.reserve_exact(self.capacity(count, 3));
                }
                for _ in 0..count {
                    let item = self.value::<BUILD>(depth + 1)?;
                    if BUILD {
                        items.push(item);
                    }
                }
            }
            None => {
                let mut seen = 0usize;
                while !self.at_stream_end()? {
                    seen += 1;
                    if seen > self.limits.max_elements {
                        return Err(ParseError::ReplyTooBig("aggregate").into());
                    }
                    let item = self.value::<BUILD>(depth + 1)?;
                    if BUILD {
                        items.push(item);
                    }
                }
            }
        }
        Ok(items)
    }

    /// The pairs of a map or attribute.
    fn pairs<const BUILD: bool>(&mut self, count: Option<usize>, depth: usize) -> Step<Vec<(Reply, Reply)>> {
        let mut pairs = Vec::new();
        match count {
            Some(count) => {
                if BUILD {
                    pairs.reserve_exact(self.capacity(count, 6));
                }
                for _ in 0..count {
                    let key = self.value::<BUILD>(depth + 1)?;
                    let value = self.value::<BUILD>(depth + 1)?;
                    if BUILD {
                        pairs.push((key, value));
                    }
                }
            }
            None => {
                let mut seen = 0usize;
                while !self.at_stream_end()? {
                    seen += 1;
                    if seen > self.limits.max_elements {
                        return Err(ParseError::ReplyTooBig("aggregate").into());
                    }
                    let key = self.value::<BUILD>(depth + 1)?;
                    let value = self.value::<BUILD>(depth + 1)?;
                    if BUILD {
                        pairs.push((key, value));
                    }
                }
            }
        }
        Ok(pairs)
    }

    /// One reply at nesting `depth`. With `BUILD` false, only checks it and
    /// returns a placeholder.
    fn value<const BUILD: bool>(&mut self, depth: usize) -> Step<Reply> {
        let Some(&kind) = self.buf.get(self.pos) else {
            return Err(Fail::Incomplete);
        };
        self.pos += 1;
        let owned = |bytes: &[u8]| if BUILD { bytes.to_vec() } else { Vec::new() };
        Ok(match kind {
            b'+' => Reply::Simple(owned(self.line()?)),
            b'-' => Reply::Error(owned(self.line()?)),
            b':' => Reply::Integer(parse_lenient_i64(self.line()?).ok_or(ParseError::MalformedReply("integer"))?),
            b'$' => match self.blob::<BUILD>()? {
                Some(data) => Reply::Bulk(data),
                None => Reply::Null,
            },
            b'!' => Reply::Error(owned(self.known_blob()?)),
            b'=' => match self.known_blob()? {
                [a, b, c, b':', text @ ..] => Reply::Verbatim {
                    format: [*a, *b, *c],
                    text: owned(text),
                },
                _ => return Err(ParseError::MalformedReply("verbatim string").into()),
            },
            b'*' => match self.length()? {
                Length::Null => Reply::NullArray,
                length => {
                    let count = self.checked_count(length, depth)?;
                    Reply::Array(self.elements::<BUILD>(count, depth)?)
                }
            },
            b'~' => {
                let count = self.count(depth)?;
                Reply::Set(self.elements::<BUILD>(count, depth)?)
            }
            b'>' => {
                let count = self.count(depth)?;
                Reply::Push(self.elements::<BUILD>(count, depth)?)
            }
            b'%' => {
                let count = self.count(depth)?;
                Reply::Map(self.pairs::<BUILD>(count, depth)?)
            }
            b'|' => {
                let count = self.count(depth)?.ok_or(ParseError::InvalidReplyLength)?;
                let attributes = self.pairs::<BUILD>(Some(count), depth)?;
                let reply = self.value::<BUILD>(depth + 1)?;
                Reply::Attribute {
                    attributes,
                    reply: Box::new(reply),
                }
            }
            b'_' => {
                if !self.line()?.is_empty() {
                    return Err(ParseError::MalformedReply("null").into());
                }
                Reply::Null
            }
            b',' => {
                let line = self.line()?;
                let value = std::str::from_utf8(line)
                    .ok()
                    .and_then(|text| text.parse::<f64>().ok())
                    .ok_or(ParseError::MalformedReply("double"))?;
                Reply::Double(value)
            }
            b'#' => match self.line()? {
                b"t" => Reply::Boolean(true),
                b"f" => Reply::Boolean(false),
                _ => return Err(ParseError::MalformedReply("boolean").into()),
            },
            b'(' => {
                let line = self.line()?;
                let digits = line
                    .strip_prefix(b"-")
                    .or_else(|| line.strip_prefix(b"+"))
                    .unwrap_or(line);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return Err(ParseError::MalformedReply("big number").into());
                }
                Reply::BigNumber(owned(line))
            }
            other => return Err(ParseError::InvalidReplyType(other).into()),
        })
    }
}
#[cfg(test)]
mod tests;
