//! Server-side reply encoders: values and status lines into a `Vec<u8>`.
//!
//! Each function appends one complete reply (or one part of a multi-line
//! reply, such as one `VALUE` of a `get`) to `out`. Numbers are written
//! digit by digit into `out`; nothing else is allocated.
//!
//! A meta reply is built with [`MetaReply`], which writes the code and then
//! each returned flag in the order the caller gives them — the request's
//! order, as memcached returns them (`process_mget_cmd` walks the request's
//! flags and appends a token for each that asks for one, then `Z`, `X`, `W`).

use base64::Engine as _;

use super::error::RequestError;
use super::line::{push_i64, push_u64, push_usize};

const CRLF: &[u8] = b"\r\n";

/// A fixed reply line of the classic protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `STORED`: a storage command succeeded.
    Stored,
    /// `NOT_STORED`: `add`/`replace`/`append`/`prepend`'s condition failed.
    NotStored,
    /// `EXISTS`: a `cas` found a newer item.
    Exists,
    /// `NOT_FOUND`: no such item.
    NotFound,
    /// `DELETED`: `delete` succeeded.
    Deleted,
    /// `TOUCHED`: `touch` succeeded.
    Touched,
    /// `OK`: `flush_all`, `verbosity` and some `stats` arguments.
    Ok,
    /// `END`: the end of a `get` or `stats` reply.
    End,
    /// `RESET`: `stats reset` succeeded.
    Reset,
    /// `ERROR`: an unknown command.
    Error,
}

impl Status {
    /// The line, without `\r\n`.
    pub fn line(self) -> &'static str {
        match self {
            Status::Stored => "STORED",
            Status::NotStored => "NOT_STORED",
            Status::Exists => "EXISTS",
            Status::NotFound => "NOT_FOUND",
            Status::Deleted => "DELETED",
            Status::Touched => "TOUCHED",
            Status::Ok => "OK",
            Status::End => "END",
            Status::Reset => "RESET",
            Status::Error => "ERROR",
        }
    }
}

/// A meta reply's two-letter code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaCode {
    /// `VA <size>`: success with a value block.
    Va,
    /// `HD`: success without a value (`mg` hit, `ms` stored, `md` deleted,
    /// `ma` applied).
    Hd,
    /// `EN`: `mg`/`me` miss.
    En,
    /// `NF`: not found (`md`, `ma`, `ms` with CAS).
    Nf,
    /// `NS`: not stored.
    Ns,
    /// `EX`: CAS mismatch.
    Ex,
    /// `MN`: the reply to `mn`.
    Mn,
}

impl MetaCode {
    /// The code's two letters.
    pub fn as_bytes(self) -> &'static [u8; 2] {
        match self {
            MetaCode::Va => b"VA",
            MetaCode::Hd => b"HD",
            MetaCode::En => b"EN",
            MetaCode::Nf => b"NF",
            MetaCode::Ns => b"NS",
            MetaCode::Ex => b"EX",
            MetaCode::Mn => b"MN",
        }
    }

    /// The code named by `letters`, if any.
    pub fn from_bytes(letters: &[u8]) -> Option<Self> {
        match letters {
            b"VA" => Some(MetaCode::Va),
            b"HD" => Some(MetaCode::Hd),
            b"EN" => Some(MetaCode::En),
            b"NF" => Some(MetaCode::Nf),
            b"NS" => Some(MetaCode::Ns),
            b"EX" => Some(MetaCode::Ex),
            b"MN" => Some(MetaCode::Mn),
            _ => None,
        }
    }
}

/// A value written into a reply line: a stat's value, a debug field, a meta
/// flag's token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field<'a> {
    /// An unsigned number.
    Uint(u64),
    /// A signed number (`t-1`).
    Int(i64),
    /// Bytes as they are.
    Bytes(&'a [u8]),
}

impl Field<'_> {
    fn write(self, out: &mut Vec<u8>) {
        match self {
            Field::Uint(value) => push_u64(out, value),
            Field::Int(value) => push_i64(out, value),
            Field::Bytes(bytes) => out.extend_from_slice(bytes),
        }
    }
}

impl From<u64> for Field<'_> {
    fn from(value: u64) -> Self {
        Field::Uint(value)
    }
}

impl From<u32> for Field<'_> {
    fn from(value: u32) -> Self {
        Field::Uint(u64::from(value))
    }
}

impl From<i64> for Field<'_> {
    fn from(value: i64) -> Self {
        Field::Int(value)
    }
}

impl<'a> From<&'a [u8]> for Field<'a> {
    fn from(value: &'a [u8]) -> Self {
        Field::Bytes(value)
    }
}

impl<'a> From<&'a str> for Field<'a> {
    fn from(value: &'a str) -> Self {
        Field::Bytes(value.as_bytes())
    }
}

/// `VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n`: one item of a
/// `get`-family reply. Finish the reply with [`encode_end`].
pub fn encode_value(out: &mut Vec<u8>, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    encode_value_header(out, key, flags, data.len(), cas);
    out.extend_from_slice(data);
    out.extend_from_slice(CRLF);
}

/// Only the `VALUE` line of [`encode_value`], for writers that send the data
/// block (then `\r\n`) from elsewhere without copying it.
pub fn encode_value_header(out: &mut Vec<u8>, key: &[u8], flags: u32, len: usize, cas: Option<u64>) {
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    push_u64(out, u64::from(flags));
    out.push(b' ');
    push_usize(out, len);
    if let Some(cas) = cas {
        out.push(b' ');
        push_u64(out, cas);
    }
    out.extend_from_slice(CRLF);
}

/// `END\r\n`.
pub fn encode_end(out: &mut Vec<u8>) {
    encode_status(out, Status::End);
}

/// A fixed status line.
pub fn encode_status(out: &mut Vec<u8>, status: Status) {
    out.extend_from_slice(status.line().as_bytes());
    out.extend_from_slice(CRLF);
}

/// `<value>\r\n`: the reply to `incr`/`decr`.
pub fn encode_number(out: &mut Vec<u8>, value: u64) {
    push_u64(out, value);
    out.extend_from_slice(CRLF);
}

/// `STAT <name> <value>\r\n`: one line of a `stats` reply; finish with
/// [`encode_end`].
pub fn encode_stat<'v>(out: &mut Vec<u8>, name: &[u8], value: impl Into<Field<'v>>) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name);
    out.push(b' ');
    value.into().write(out);
    out.extend_from_slice(CRLF);
}

/// `VERSION <version>\r\n`.
pub fn encode_version(out: &mut Vec<u8>, version: &[u8]) {
    out.extend_from_slice(b"VERSION ");
    out.extend_from_slice(version);
    out.extend_from_slice(CRLF);
}

/// `CLIENT_ERROR <message>\r\n`.
pub fn encode_client_error(out: &mut Vec<u8>, message: &[u8]) {
    out.extend_from_slice(b"CLIENT_ERROR ");
    out.extend_from_slice(message);
    out.extend_from_slice(CRLF);
}

/// `SERVER_ERROR <message>\r\n`.
pub fn encode_server_error(out: &mut Vec<u8>, message: &[u8]) {
    out.extend_from_slice(b"SERVER_ERROR ");
    out.extend_from_slice(message);
    out.extend_from_slice(CRLF);
}

/// The reply line for a refused request.
pub fn encode_request_error(out: &mut Vec<u8>, error: RequestError) {
    out.extend_from_slice(error.reply_line().as_bytes());
    out.extend_from_slice(CRLF);
}

/// Appends `key`, base64-encoded with padding, to `out`.
pub(crate) fn push_base64(out: &mut Vec<u8>, key: &[u8]) {
    let start = out.len();
    let encoded_len = key.len().div_ceil(3) * 4;
    out.resize(start + encoded_len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(key, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

/// A meta reply line being written: the code, then returned flags in the
/// order the caller adds them, then [`finish`](Self::finish).
///
/// ```
/// use strata_proto::memcache::{MetaCode, MetaReply};
///
/// let mut out = Vec::new();
/// let mut reply = MetaReply::value(&mut out, 5);
/// reply.uint(b'f', 30).int(b't', -1).key(b"foo", false).token(b'O', b"opaque").flag(b'W');
/// reply.finish_with_data(b"hello");
/// assert_eq!(out, b"VA 5 f30 t-1 kfoo Oopaque W\r\nhello\r\n");
/// ```
#[derive(Debug)]
pub struct MetaReply<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> MetaReply<'o> {
    /// Starts a reply with `code`. For [`MetaCode::Va`] use
    /// [`value`](Self::value), which writes the size; given `Va` here,
    /// this writes `VA 0`.
    pub fn status(out: &'o mut Vec<u8>, code: MetaCode) -> Self {
        if code == MetaCode::Va {
            return Self::value(out, 0);
        }
        out.extend_from_slice(code.as_bytes());
        MetaReply { out }
    }

    /// Starts `VA <size>`; finish with
    /// [`finish_with_data`](Self::finish_with_data), or with
    /// [`finish`](Self::finish) and then write the data and `\r\n` yourself.
    pub fn value(out: &'o mut Vec<u8>, size: usize) -> Self {
        out.extend_from_slice(b"VA ");
        push_usize(out, size);
        MetaReply { out }
    }

    /// A flag without a token: ` W`, ` X`, ` Z`, ` b`.
    pub fn flag(&mut self, flag: u8) -> &mut Self {
        self.out.extend_from_slice(&[b' ', flag]);
        self
    }

    /// A flag with a number: ` c123`, ` s5`, ` f30`.
    pub fn uint(&mut self, flag: u8, value: u64) -> &mut Self {
        self.flag(flag);
        push_u64(self.out, value);
        self
    }

    /// A flag with a signed number: ` t-1`.
    pub fn int(&mut self, flag: u8, value: i64) -> &mut Self {
        self.flag(flag);
        push_i64(self.out, value);
        self
    }

    /// A flag with a token copied as it is: ` O<opaque>`.
    pub fn token(&mut self, flag: u8, token: &[u8]) -> &mut Self {
        self.flag(flag);
        self.out.extend_from_slice(token);
        self
    }

    /// A flag with any [`Field`].
    pub fn field(&mut self, flag: u8, value: Field<'_>) -> &mut Self {
        self.flag(flag);
        value.write(self.out);
        self
    }

    /// The key (`k`): ` k<key>`, or for a binary key (one that came with
    /// `b`) ` k<base64> b`, as memcached's `META_KEY`.
    pub fn key(&mut self, key: &[u8], binary: bool) -> &mut Self {
        self.flag(b'k');
        if binary {
            push_base64(self.out, key);
            self.flag(b'b');
        } else {
            self.out.extend_from_slice(key);
        }
        self
    }

    /// Ends the line.
    pub fn finish(self) {
        self.out.extend_from_slice(CRLF);
    }

    /// Ends the line and writes the data block of a `VA` reply.
    pub fn finish_with_data(self, data: &[u8]) {
        self.out.extend_from_slice(CRLF);
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(CRLF);
    }
}

/// `ME <key> <name>=<value>*\r\n`: the reply to `me` on a hit (a miss is
/// `EN`). A binary key is base64-encoded, as memcached re-encodes it.
pub fn encode_meta_debug(out: &mut Vec<u8>, key: &[u8], binary: bool, fields: &[(&[u8], Field<'_>)]) {
    out.extend_from_slice(b"ME ");
    if binary {
        push_base64(out, key);
    } else {
        out.extend_from_slice(key);
    }
    for (name, value) in fields {
        out.push(b' ');
        out.extend_from_slice(name);
        out.push(b'=');
        value.write(out);
    }
    out.extend_from_slice(CRLF);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn classic_replies() {
        assert_eq!(
            written(|out| encode_value(out, b"k", 7, b"data", None)),
            "VALUE k 7 4\r\ndata\r\n"
        );
        assert_eq!(
            written(|out| encode_value(out, b"k", 0, b"", Some(99))),
            "VALUE k 0 0 99\r\n\r\n"
        );
        assert_eq!(written(encode_end), "END\r\n");
        assert_eq!(written(|out| encode_status(out, Status::NotStored)), "NOT_STORED\r\n");
        assert_eq!(written(|out| encode_number(out, u64::MAX)), "18446744073709551615\r\n");
        assert_eq!(written(|out| encode_stat(out, b"pid", 42u64)), "STAT pid 42\r\n");
        assert_eq!(
            written(|out| encode_stat(out, b"version", "1.6.0")),
            "STAT version 1.6.0\r\n"
        );
        assert_eq!(written(|out| encode_version(out, b"1.6.45")), "VERSION 1.6.45\r\n");
        assert_eq!(
            written(|out| encode_client_error(out, b"oops")),
            "CLIENT_ERROR oops\r\n"
        );
        assert_eq!(
            written(|out| encode_server_error(out, b"out of memory")),
            "SERVER_ERROR out of memory\r\n"
        );
        assert_eq!(
            written(|out| encode_request_error(out, RequestError::TooLarge)),
            "SERVER_ERROR object too large for cache\r\n"
        );
    }

    #[test]
    fn meta_replies_keep_the_given_order() {
        let line = written(|out| {
            let mut reply = MetaReply::status(out, MetaCode::Hd);
            reply
                .uint(b'f', 30)
                .uint(b'c', 123)
                .int(b't', -1)
                .key(b"key", false)
                .token(b'O', b"op");
            reply.flag(b'W').flag(b'X').flag(b'Z').uint(b's', 5);
            reply.finish();
        });
        assert_eq!(line, "HD f30 c123 t-1 kkey Oop W X Z s5\r\n");
        assert_eq!(written(|out| MetaReply::status(out, MetaCode::En).finish()), "EN\r\n");
        assert_eq!(
            written(|out| MetaReply::status(out, MetaCode::Va).finish_with_data(b"")),
            "VA 0\r\n\r\n"
        );
    }

    #[test]
    fn binary_keys_are_base64_with_b() {
        let line = written(|out| {
            let mut reply = MetaReply::status(out, MetaCode::Hd);
            reply.key(&[0, 255, 32], true);
            reply.finish();
        });
        assert_eq!(line, "HD kAP8g b\r\n");
        assert_eq!(
            written(|out| encode_meta_debug(out, b"foo", true, &[(b"exp", Field::Int(-1)), (b"fetch", "no".into())])),
            "ME Zm9v exp=-1 fetch=no\r\n"
        );
    }

    #[test]
    fn meta_codes_round_trip() {
        for code in [
            MetaCode::Va,
            MetaCode::Hd,
            MetaCode::En,
            MetaCode::Nf,
            MetaCode::Ns,
            MetaCode::Ex,
            MetaCode::Mn,
        ] {
            assert_eq!(MetaCode::from_bytes(code.as_bytes()), Some(code));
        }
        assert_eq!(MetaCode::from_bytes(b"ME"), None);
    }
}
