//! Encoding: replies (server side) for either protocol version, and commands
//! (client side).
//!
//! [`Encoder`] appends replies to a `Vec<u8>` in the version the connection
//! speaks, choosing the wire form per type as Redis 7 does:
//!
//! | call | RESP3 | RESP2 |
//! |---|---|---|
//! | [`simple`](Encoder::simple) | `+OK` | same |
//! | [`error`](Encoder::error) | `-ERR ...` | same |
//! | [`integer`](Encoder::integer) | `:42` | same |
//! | [`bulk`](Encoder::bulk) | `$3` `foo` | same |
//! | [`null`](Encoder::null) | `_` | `$-1` |
//! | [`null_array`](Encoder::null_array) | `_` | `*-1` |
//! | [`array`](Encoder::array) | `*n` | same |
//! | [`map`](Encoder::map) | `%n` | `*2n` (keys and values alternate) |
//! | [`set`](Encoder::set) | `~n` | `*n` |
//! | [`push`](Encoder::push) | `>n` | `*n` (as Redis sends pub/sub messages) |
//! | [`attribute`](Encoder::attribute) | `\|n` | nothing: RESP2 has no attributes |
//! | [`double`](Encoder::double) | `,1.5` / `,inf` / `,nan` | bulk `1.5` |
//! | [`boolean`](Encoder::boolean) | `#t` / `#f` | `:1` / `:0` |
//! | [`verbatim`](Encoder::verbatim) | `=n` `txt:...` | bulk of the text |
//! | [`big_number`](Encoder::big_number) | `(123...` | bulk of the digits |
//!
//! Aggregate headers only announce a length: the caller then encodes exactly
//! that many elements (twice that many, keys and values, for maps and
//! attributes). Nothing allocates except `out` growing; numbers are
//! formatted on the stack.

use super::Protocol;
use super::number::{MAX_DOUBLE_CHARS, format_double, write_header, write_i64};
use super::reply::Reply;

/// Appends replies to a buffer in one protocol version.
///
/// ```
/// use strata_proto::resp::{Encoder, Protocol};
/// let mut out = Vec::new();
/// let mut reply = Encoder::new(&mut out, Protocol::Resp3);
/// reply.map(1).bulk(b"hits").double(0.5);
/// assert_eq!(out, b"%1\r\n$4\r\nhits\r\n,0.5\r\n");
/// ```
#[derive(Debug)]
pub struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    protocol: Protocol,
}

impl<'a> Encoder<'a> {
    /// An encoder appending to `out` in `protocol`.
    #[inline]
    pub fn new(out: &'a mut Vec<u8>, protocol: Protocol) -> Self {
        Self { out, protocol }
    }

    /// Bytes in the output buffer (everything appended so far, by this
    /// encoder and before it).
    #[inline]
    pub fn buffered(&self) -> usize {
        self.out.len()
    }

    /// The protocol version this encoder writes.
    #[inline]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Switches the version for the replies that follow (`HELLO 3` answers
    /// in the version it selects).
    #[inline]
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// Appends a line of `text` after `prefix`, with CR and LF in `text`
    /// replaced by spaces so the reply stays one line (Redis does the same
    /// for formatted errors).
    #[inline]
    fn line(&mut self, prefix: u8, text: &[u8]) {
        self.out.reserve(text.len() + 3);
        self.out.push(prefix);
        let start = self.out.len();
        self.out.extend_from_slice(text);
        if text.iter().any(|&b| b == b'\r' || b == b'\n') {
            for byte in &mut self.out[start..] {
                if *byte == b'\r' || *byte == b'\n' {
                    *byte = b' ';
                }
            }
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// A simple string, `+text`. CR and LF in `text` become spaces.
    #[inline]
    pub fn simple(&mut self, text: &[u8]) -> &mut Self {
        self.line(b'+', text);
        self
    }

    /// `+OK`, the commonest reply.
    #[inline]
    pub fn ok(&mut self) -> &mut Self {
        self.out.extend_from_slice(b"+OK\r\n");
        self
    }

    /// An error, `-text`. `text` is the whole message, code first:
    /// `ERR unknown command 'x'`, `WRONGTYPE Operation against a key ...`. A
    /// leading `-` is accepted and not doubled. CR and LF become spaces.
    #[inline]
    pub fn error(&mut self, text: &[u8]) -> &mut Self {
        let text = text.strip_prefix(b"-").unwrap_or(text);
        self.line(b'-', text);
        self
    }

    /// An integer, `:value`.
    #[inline]
    pub fn integer(&mut self, value: i64) -> &mut Self {
        if value >= 0 {
            write_header(self.out, b':', value as u64);
        } else {
            self.out.push(b':');
            write_i64(self.out, value);
            self.out.extend_from_slice(b"\r\n");
        }
        self
    }

    /// A bulk string, `$len` then the bytes.
    #[inline]
    pub fn bulk(&mut self, data: &[u8]) -> &mut Self {
        self.out.reserve(data.len() + 16);
        write_header(self.out, b'$', data.len() as u64);
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// Null: RESP3 `_`, RESP2 the null bulk string `$-1` (what `GET` of a
    /// missing key answers).
    #[inline]
    pub fn null(&mut self) -> &mut Self {
        self.out.extend_from_slice(match self.protocol {
            Protocol::Resp2 => b"$-1\r\n",
            Protocol::Resp3 => b"_\r\n",
        });
        self
    }

    /// Null where RESP2 uses the null array `*-1` (e.g. `BLPOP` timing out);
    /// RESP3 `_`.
    #[inline]
    pub fn null_array(&mut self) -> &mut Self {
        self.out.extend_from_slice(match self.protocol {
            Protocol::Resp2 => b"*-1\r\n",
            Protocol::Resp3 => b"_\r\n",
        });
        self
    }

    /// An array header, `*len`; `len` elements follow.
    #[inline]
    pub fn array(&mut self, len: usize) -> &mut Self {
        write_header(self.out, b'*', len as u64);
        self
    }

    /// A map header for `pairs` key-value pairs, which follow key, value, key,
    /// value. RESP3 `%pairs`, RESP2 an array of `2 * pairs`.
    #[inline]
    pub fn map(&mut self, pairs: usize) -> &mut Self {
        match self.protocol {
            Protocol::Resp2 => write_header(self.out, b'*', 2 * pairs as u64),
            Protocol::Resp3 => write_header(self.out, b'%', pairs as u64),
        }
        self
    }

    /// A set header, `len` elements follow. RESP3 `~len`, RESP2 an array.
    #[inline]
    pub fn set(&mut self, len: usize) -> &mut Self {
        let prefix = match self.protocol {
            Protocol::Resp2 => b'*',
            Protocol::Resp3 => b'~',
        };
        write_header(self.out, prefix, len as u64);
        self
    }

    /// A push header (out-of-band data such as a client-side-caching
    /// invalidation), `len` elements follow. RESP3 `>len`; RESP2 an array, as
    /// Redis sends pub/sub messages to RESP2 clients.
    #[inline]
    pub fn push(&mut self, len: usize) -> &mut Self {
        let prefix = match self.protocol {
            Protocol::Resp2 => b'*',
            Protocol::Resp3 => b'>',
        };
        write_header(self.out, prefix, len as u64);
        self
    }

    /// An attribute header, `|pairs` (RESP3 only): `pairs` key-value pairs
    /// follow, then the reply they describe. Returns `false` and writes
    /// nothing in RESP2, which has no attributes; the caller must then skip
    /// the pairs and write only the reply.
    #[must_use = "in RESP2 nothing is written and the attribute pairs must be skipped"]
    #[inline]
    pub fn attribute(&mut self, pairs: usize) -> bool {
        match self.protocol {
            Protocol::Resp2 => false,
            Protocol::Resp3 => {
                write_header(self.out, b'|', pairs as u64);
                true
            }
        }
    }

    /// A double, formatted as Redis formats it (`1.5`, `1e+20`, `inf`,
    /// `-inf`, `nan`). RESP3 `,text`, RESP2 a bulk string of the text.
    pub fn double(&mut self, value: f64) -> &mut Self {
        let mut text = [0u8; MAX_DOUBLE_CHARS];
        let len = format_double(value, &mut text);
        match self.protocol {
            Protocol::Resp2 => {
                self.bulk(&text[..len]);
            }
            Protocol::Resp3 => {
                self.out.reserve(len + 3);
                self.out.push(b',');
                self.out.extend_from_slice(&text[..len]);
                self.out.extend_from_slice(b"\r\n");
            }
        }
        self
    }

    /// A boolean: RESP3 `#t`/`#f`, RESP2 the integer 1 or 0.
    #[inline]
    pub fn boolean(&mut self, value: bool) -> &mut Self {
        self.out.extend_from_slice(match (self.protocol, value) {
            (Protocol::Resp2, true) => b":1\r\n",
            (Protocol::Resp2, false) => b":0\r\n",
            (Protocol::Resp3, true) => b"#t\r\n",
            (Protocol::Resp3, false) => b"#f\r\n",
        });
        self
    }

    /// A verbatim string with a three-byte format such as `b"txt"` or
    /// `b"mkd"`: RESP3 `=len` then `fmt:text`, RESP2 a bulk string of `text`.
    pub fn verbatim(&mut self, format: &[u8; 3], text: &[u8]) -> &mut Self {
        match self.protocol {
            Protocol::Resp2 => {
                self.bulk(text);
            }
            Protocol::Resp3 => {
                self.out.reserve(text.len() + 24);
                write_header(self.out, b'=', text.len() as u64 + 4);
                self.out.extend_from_slice(format);
                self.out.push(b':');
                self.out.extend_from_slice(text);
                self.out.extend_from_slice(b"\r\n");
            }
        }
        self
    }

    /// A big number, given as its decimal digits with an optional leading
    /// `-` (the caller guarantees the form): RESP3 `(digits`, RESP2 a bulk
    /// string of the digits.
    pub fn big_number(&mut self, digits: &[u8]) -> &mut Self {
        match self.protocol {
            Protocol::Resp2 => self.bulk(digits),
            Protocol::Resp3 => {
                self.line(b'(', digits);
                self
            }
        }
    }

    /// A whole [`Reply`] tree, each node in its wire form for this version
    /// (so in RESP2 a map becomes a flat array, a double a bulk string, and
    /// attributes are dropped, leaving the reply they annotate).
    pub fn reply(&mut self, reply: &Reply) -> &mut Self {
        match reply {
            Reply::Simple(text) => self.simple(text),
            Reply::Error(text) => {
                // Not `error()`: a parsed error never had its '-' stripped
                // twice, and one that starts with '-' must keep it.
                self.line(b'-', text);
                self
            }
            Reply::Integer(value) => self.integer(*value),
            Reply::Bulk(data) => self.bulk(data),
            Reply::Null => self.null(),
            Reply::NullArray => self.null_array(),
            Reply::Array(items) => {
                self.array(items.len());
                items.iter().for_each(|item| {
                    self.reply(item);
                });
                self
            }
            Reply::Set(items) => {
                self.set(items.len());
                items.iter().for_each(|item| {
                    self.reply(item);
                });
                self
            }
            Reply::Push(items) => {
                self.push(items.len());
                items.iter().for_each(|item| {
                    self.reply(item);
                });
                self
            }
            Reply::Map(pairs) => {
                self.map(pairs.len());
                self.pairs(pairs)
            }
            Reply::Double(value) => self.double(*value),
            Reply::Boolean(value) => self.boolean(*value),
            Reply::Verbatim { format, text } => self.verbatim(format, text),
            Reply::BigNumber(digits) => self.big_number(digits),
            Reply::Attribute { attributes, reply } => {
                if self.attribute(attributes.len()) {
                    self.pairs(attributes);
                }
                self.reply(reply)
            }
        }
    }

    fn pairs(&mut self, pairs: &[(Reply, Reply)]) -> &mut Self {
        for (key, value) in pairs {
            self.reply(key);
            self.reply(value);
        }
        self
    }
}

/// Appends a command in multibulk form, `*n` then one bulk string per
/// argument: what a client sends. Works in either protocol version.
///
/// ```
/// let mut out = Vec::new();
/// strata_proto::resp::encode_command(&mut out, &[&b"GET"[..], b"key"]);
/// assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
/// ```
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    let payload: usize = args.iter().map(|arg| arg.as_ref().len() + 16).sum();
    out.reserve(payload + 16);
    write_header(out, b'*', args.len() as u64);
    for arg in args {
        let arg = arg.as_ref();
        write_header(out, b'$', arg.len() as u64);
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests;
