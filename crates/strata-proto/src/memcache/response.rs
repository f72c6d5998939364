//! The client side: server replies parsed into owned values.
//!
//! A reply can only be read knowing what was asked (`END` ends a `get` and a
//! `stats` alike; a bare number answers only `incr`/`decr`), so the decoder
//! is told the [`ReplyKind`] of the request it waits for. It is incremental:
//! [`ResponseDecoder::decode`] takes the read buffer, consumes every complete
//! item it finds (each `VALUE` with its data, each `STAT`), keeps them, and
//! says how many bytes to drop; the response is handed over once complete.
//! A long multi-get is therefore parsed once, not again on every read.
//! Limits are checked on header lines, before their data is buffered.
//!
//! [`encode_response`] writes a [`Response`] back with the server-side
//! encoders, so a proxy can relay what it parsed.

use super::encode::{self, MetaCode, MetaReply, Status};
use super::error::ResponseError;
use super::line::{LineScan, Tokens, parse_u32, parse_u64, scan_line, trim_spaces};
use super::request::Request;

/// Limits the response decoder enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Longest reply line, including `\r\n`.
    pub max_line_bytes: usize,
    /// Largest value block (`VALUE`, `VA`).
    pub max_value_bytes: usize,
    /// Most `VALUE` or `STAT` lines in one reply.
    pub max_items: usize,
}

impl Default for ResponseLimits {
    /// 64 KiB lines, 1 MiB values (memcached's default item size limit),
    /// 4096 items.
    fn default() -> Self {
        ResponseLimits {
            max_line_bytes: 64 * 1024,
            max_value_bytes: 1024 * 1024,
            max_items: 4096,
        }
    }
}

/// What kind of reply a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    /// `get`/`gets`/`gat`/`gats`: `VALUE`s then `END`.
    Retrieval,
    /// `set` … `cas`: `STORED`, `NOT_STORED`, `EXISTS` or `NOT_FOUND`.
    Storage,
    /// `delete`: `DELETED` or `NOT_FOUND`.
    Delete,
    /// `incr`/`decr`: the new value or `NOT_FOUND`.
    Arithmetic,
    /// `touch`: `TOUCHED` or `NOT_FOUND`.
    Touch,
    /// `flush_all`, `verbosity`: `OK`.
    Ok,
    /// `version`: `VERSION <version>`.
    Version,
    /// `stats`: `STAT`s then `END`, or `RESET`/`OK` for some arguments.
    Stats,
    /// `mg`, `ms`, `md`, `ma`, `mn`, `me`: one meta reply (`VA`, `HD`, `EN`,
    /// `NF`, `NS`, `EX`, `MN`, `ME`).
    Meta,
}

impl ReplyKind {
    /// The reply `request` gets, or `None` if it gets none: `quit`, and
    /// classic commands sent with `noreply`. Meta commands with `q` may or
    /// may not be answered (only the nominal reply is suppressed); follow
    /// them with `mn`.
    pub fn of(request: &Request<'_>) -> Option<ReplyKind> {
        let (kind, noreply) = match request {
            Request::Get(_) => (ReplyKind::Retrieval, false),
            Request::Store(store) => (ReplyKind::Storage, store.noreply),
            Request::Delete { noreply, .. } => (ReplyKind::Delete, *noreply),
            Request::Arithmetic { noreply, .. } => (ReplyKind::Arithmetic, *noreply),
            Request::Touch { noreply, .. } => (ReplyKind::Touch, *noreply),
            Request::FlushAll { noreply, .. } | Request::Verbosity { noreply, .. } => (ReplyKind::Ok, *noreply),
            Request::Version => (ReplyKind::Version, false),
            Request::Stats { .. } => (ReplyKind::Stats, false),
            Request::Quit => return None,
            Request::MetaGet(_)
            | Request::MetaSet(_)
            | Request::MetaDelete(_)
            | Request::MetaArithmetic(_)
            | Request::MetaNoop
            | Request::MetaDebug { .. } => (ReplyKind::Meta, false),
        };
        (!noreply).then_some(kind)
    }
}

/// One item of a retrieval reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Value {
    /// The key.
    pub key: Vec<u8>,
    /// The client flags stored with it.
    pub flags: u32,
    /// The CAS unique (`gets`, `gats`).
    pub cas: Option<u64>,
    /// The data.
    pub data: Vec<u8>,
}

/// One `STAT <name> <value>` line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stat {
    /// The name.
    pub name: Vec<u8>,
    /// Everything after the name.
    pub value: Vec<u8>,
}

/// A flag returned in a meta reply: its letter and token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReturnedFlag {
    /// The letter, e.g. `b'c'`.
    pub flag: u8,
    /// The token after it, e.g. `b"123"`; empty for `W`, `X`, `Z`, `b`.
    pub token: Vec<u8>,
}

/// A meta reply (`VA`, `HD`, `EN`, `NF`, `NS`, `EX`, `MN`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetaResponse {
    /// The code.
    pub code: MetaCode,
    /// The returned flags, in the order sent.
    pub flags: Vec<ReturnedFlag>,
    /// The value block: `Some` exactly for `VA`.
    pub data: Option<Vec<u8>>,
}

impl MetaResponse {
    /// The token of the first returned `flag`, if any.
    pub fn flag(&self, flag: u8) -> Option<&[u8]> {
        self.flags
            .iter()
            .find(|returned| returned.flag == flag)
            .map(|returned| returned.token.as_slice())
    }

    /// Whether `flag` was returned.
    pub fn has(&self, flag: u8) -> bool {
        self.flag(flag).is_some()
    }
}

/// A `ME <key> <name>=<value>*` reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetaDebug {
    /// The key as sent (base64 for binary keys).
    pub key: Vec<u8>,
    /// The `name=value` fields, in order.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A complete server reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Response {
    /// The items of a retrieval, possibly none.
    Values(Vec<Value>),
    /// A fixed status line; never [`Status::End`] or [`Status::Error`],
    /// which arrive as [`Response::Values`]/[`Response::Stats`] and
    /// [`Response::Error`].
    Status(Status),
    /// The new value after `incr`/`decr`.
    Number(u64),
    /// A `stats` reply.
    Stats(Vec<Stat>),
    /// The server's version string.
    Version(Vec<u8>),
    /// A meta reply.
    Meta(MetaResponse),
    /// A `me` hit.
    MetaDebug(MetaDebug),
    /// `ERROR [<message>]`.
    Error(Vec<u8>),
    /// `CLIENT_ERROR <message>`.
    ClientError(Vec<u8>),
    /// `SERVER_ERROR <message>`.
    ServerError(Vec<u8>),
}

/// What one call to [`ResponseDecoder::decode`] achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the buffer used; drop them whether or not the response is
    /// complete.
    pub consumed: usize,
    /// The response, once complete.
    pub response: Option<Response>,
}

/// An incremental decoder for the reply to one request.
#[derive(Clone, Debug)]
pub struct ResponseDecoder {
    kind: ReplyKind,
    limits: ResponseLimits,
    values: Vec<Value>,
    stats: Vec<Stat>,
}

impl ResponseDecoder {
    /// A decoder waiting for a reply of `kind`.
    pub fn new(kind: ReplyKind, limits: ResponseLimits) -> Self {
        ResponseDecoder {
            kind,
            limits,
            values: Vec::new(),
            stats: Vec::new(),
        }
    }

    /// The kind of reply it waits for.
    pub fn kind(&self) -> ReplyKind {
        self.kind
    }

    /// Waits for a reply of `kind` next, forgetting any partial reply.
    pub fn expect(&mut self, kind: ReplyKind) {
        self.kind = kind;
        self.values.clear();
        self.stats.clear();
    }

    /// Reads what it can from `buf`. Drop `consumed` bytes afterwards; if the
    /// response is not complete, call again with more bytes.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Progress, ResponseError> {
        let mut position = 0;
        loop {
            let rest = &buf[position..];
            let (line, line_len) = match scan_line(rest, self.limits.max_line_bytes) {
                LineScan::Complete { line, consumed } => (line, consumed),
                LineScan::Incomplete => {
                    return Ok(Progress {
                        consumed: position,
                        response: None,
                    });
                }
                LineScan::TooLong => {
                    return Err(ResponseError::LineTooLong {
                        limit: self.limits.max_line_bytes,
                    });
                }
            };
            let step = match error_line(line) {
                Some(error) => Step::Done(error, line_len),
                None => self.step(line, line_len, rest)?,
            };
            match step {
                Step::Item(used) => position += used,
                Step::NeedMore => {
                    return Ok(Progress {
                        consumed: position,
                        response: None,
                    });
                }
                Step::Done(response, used) => {
                    self.values.clear();
                    self.stats.clear();
                    return Ok(Progress {
                        consumed: position + used,
                        response: Some(response),
                    });
                }
            }
        }
    }

    /// Handles one line that is not an error.
    fn step(&mut self, line: &[u8], line_len: usize, rest: &[u8]) -> Result<Step, ResponseError> {
        let status = |status| Ok(Step::Done(Response::Status(status), line_len));
        let unexpected = || Err(ResponseError::unexpected(line));
        match (self.kind, line) {
            (ReplyKind::Retrieval, b"END") => {
                Ok(Step::Done(Response::Values(std::mem::take(&mut self.values)), line_len))
            }
            (ReplyKind::Retrieval, _) => self.value(line, line_len, rest),
            (ReplyKind::Stats, b"END") => Ok(Step::Done(Response::Stats(std::mem::take(&mut self.stats)), line_len)),
            (ReplyKind::Stats, b"RESET") if self.stats.is_empty() => status(Status::Reset),
            (ReplyKind::Stats, b"OK") if self.stats.is_empty() => status(Status::Ok),
            (ReplyKind::Stats, _) => self.stat(line, line_len),
            (ReplyKind::Storage, b"STORED") => status(Status::Stored),
            (ReplyKind::Storage, b"NOT_STORED") => status(Status::NotStored),
            (ReplyKind::Storage, b"EXISTS") => status(Status::Exists),
            (ReplyKind::Storage | ReplyKind::Delete | ReplyKind::Touch | ReplyKind::Arithmetic, b"NOT_FOUND") => {
                status(Status::NotFound)
            }
            (ReplyKind::Delete, b"DELETED") => status(Status::Deleted),
            (ReplyKind::Touch, b"TOUCHED") => status(Status::Touched),
            (ReplyKind::Ok, b"OK") => status(Status::Ok),
            // Old memcached pads a shrunk number with spaces.
            (ReplyKind::Arithmetic, _) => match parse_u64(trim_spaces(line)) {
                Some(number) => Ok(Step::Done(Response::Number(number), line_len)),
                None => unexpected(),
            },
            (ReplyKind::Version, _) => match line.strip_prefix(b"VERSION ") {
                Some(version) => Ok(Step::Done(Response::Version(version.to_vec()), line_len)),
                None => unexpected(),
            },
            (ReplyKind::Meta, _) => self.meta(line, line_len, rest),
            _ => unexpected(),
        }
    }

    /// `VALUE <key> <flags> <bytes> [<cas>]` and its data block.
    fn value(&mut self, line: &[u8], line_len: usize, rest: &[u8]) -> Result<Step, ResponseError> {
        let mut tokens = Tokens::new(line);
        let (Some(b"VALUE"), Some(key), Some(flags), Some(bytes)) = (
            tokens.next(),
            tokens.next(),
            tokens.next().and_then(parse_u32),
            tokens.next().and_then(parse_u64),
        ) else {
            return Err(ResponseError::unexpected(line));
        };
        let cas = match tokens.next() {
            None => None,
            Some(token) => Some(parse_u64(token).ok_or_else(|| ResponseError::unexpected(line))?),
        };
        if tokens.next().is_some() {
            return Err(ResponseError::unexpected(line));
        }
        if self.values.len() >= self.limits.max_items {
            return Err(ResponseError::TooManyItems {
                limit: self.limits.max_items,
            });
        }
        let Some(data) = self.data_block(bytes, line_len, rest)? else {
            return Ok(Step::NeedMore);
        };
        self.values.push(Value {
            key: key.to_vec(),
            flags,
            cas,
            data: data.to_vec(),
        });
        Ok(Step::Item(line_len + data.len() + 2))
    }

    /// The `len`-byte block after a header line, checked against the limit
    /// before it is waited for; `None` until it and its `\r\n` are there.
    fn data_block<'b>(&self, len: u64, line_len: usize, rest: &'b [u8]) -> Result<Option<&'b [u8]>, ResponseError> {
        let too_large = ResponseError::ValueTooLarge {
            size: len,
            limit: self.limits.max_value_bytes,
        };
        let len = usize::try_from(len).map_err(|_| too_large.clone())?;
        if len > self.limits.max_value_bytes {
            return Err(too_large);
        }
        let Some(block) = rest.get(line_len..line_len + len + 2) else {
            return Ok(None);
        };
        let (data, terminator) = block.split_at(len);
        if terminator != b"\r\n" {
            return Err(ResponseError::BadDataChunk);
        }
        Ok(Some(data))
    }

    /// `STAT <name> <value>`.
    fn stat(&mut self, line: &[u8], line_len: usize) -> Result<Step, ResponseError> {
        let Some(stat) = line.strip_prefix(b"STAT ") else {
            return Err(ResponseError::unexpected(line));
        };
        let (name, value) = match memchr::memchr(b' ', stat) {
            Some(space) => (&stat[..space], &stat[space + 1..]),
            None => (stat, &b""[..]),
        };
        if name.is_empty() {
            return Err(ResponseError::unexpected(line));
        }
        if self.stats.len() >= self.limits.max_items {
            return Err(ResponseError::TooManyItems {
                limit: self.limits.max_items,
            });
        }
        self.stats.push(Stat {
            name: name.to_vec(),
            value: value.to_vec(),
        });
        Ok(Step::Item(line_len))
    }

    /// A meta reply: `<code> [<size>] <flag>*` (and a block for `VA`), or
    /// `ME <key> <name>=<value>*`.
    fn meta(&self, line: &[u8], line_len: usize, rest: &[u8]) -> Result<Step, ResponseError> {
        let mut tokens = Tokens::new(line);
        let code_token = tokens.next().unwrap_or_default();
        if code_token == b"ME" {
            let key = tokens.next().ok_or_else(|| ResponseError::unexpected(line))?;
            let fields = tokens
                .map(|field| {
                    let equals = memchr::memchr(b'=', field).ok_or_else(|| ResponseError::unexpected(line))?;
                    Ok((field[..equals].to_vec(), field[equals + 1..].to_vec()))
                })
                .collect::<Result<Vec<_>, ResponseError>>()?;
            let debug = MetaDebug {
                key: key.to_vec(),
                fields,
            };
            return Ok(Step::Done(Response::MetaDebug(debug), line_len));
        }
        let code = MetaCode::from_bytes(code_token).ok_or_else(|| ResponseError::unexpected(line))?;
        let size = if code == MetaCode::Va {
            Some(
                tokens
                    .next()
                    .and_then(parse_u64)
                    .ok_or_else(|| ResponseError::unexpected(line))?,
            )
        } else {
            None
        };
        let flags = tokens
            .filter_map(|token| token.split_first())
            .map(|(&flag, token)| ReturnedFlag {
                flag,
                token: token.to_vec(),
            })
            .collect();
        let Some(size) = size else {
            return Ok(Step::Done(
                Response::Meta(MetaResponse {
                    code,
                    flags,
                    data: None,
                }),
                line_len,
            ));
        };
        let Some(data) = self.data_block(size, line_len, rest)? else {
            return Ok(Step::NeedMore);
        };
        let used = line_len + data.len() + 2;
        Ok(Step::Done(
            Response::Meta(MetaResponse {
                code,
                flags,
                data: Some(data.to_vec()),
            }),
            used,
        ))
    }
}

/// What one line did.
enum Step {
    /// An item was kept; this many bytes were used.
    Item(usize),
    /// A header's data block has not all arrived.
    NeedMore,
    /// The response is complete after this many bytes.
    Done(Response, usize),
}

/// `ERROR`, `CLIENT_ERROR …` and `SERVER_ERROR …`, valid after any request.
fn error_line(line: &[u8]) -> Option<Response> {
    if line == b"ERROR" {
        return Some(Response::Error(Vec::new()));
    }
    if let Some(message) = line.strip_prefix(b"ERROR ") {
        return Some(Response::Error(message.to_vec()));
    }
    if let Some(message) = line.strip_prefix(b"CLIENT_ERROR") {
        return Some(Response::ClientError(
            message.strip_prefix(b" ").unwrap_or(message).to_vec(),
        ));
    }
    if let Some(message) = line.strip_prefix(b"SERVER_ERROR") {
        return Some(Response::ServerError(
            message.strip_prefix(b" ").unwrap_or(message).to_vec(),
        ));
    }
    None
}

/// Parses a whole reply of `kind` from the start of `buf`: the response and
/// the bytes it used, or `None` if incomplete. Simpler than a
/// [`ResponseDecoder`] but re-reads a partial reply on every call.
pub fn parse_response(
    buf: &[u8],
    kind: ReplyKind,
    limits: &ResponseLimits,
) -> Result<Option<(Response, usize)>, ResponseError> {
    let mut decoder = ResponseDecoder::new(kind, *limits);
    let progress = decoder.decode(buf)?;
    Ok(progress.response.map(|response| (response, progress.consumed)))
}

/// Writes `response` as a server would. A [`MetaResponse`] with data is
/// written as `VA` whatever its code says, and a `VA` without data gets an
/// empty block, so that what is written always decodes.
pub fn encode_response(out: &mut Vec<u8>, response: &Response) {
    match response {
        Response::Values(values) => {
            for value in values {
                encode::encode_value(out, &value.key, value.flags, &value.data, value.cas);
            }
            encode::encode_end(out);
        }
        Response::Status(status) => encode::encode_status(out, *status),
        Response::Number(number) => encode::encode_number(out, *number),
        Response::Stats(stats) => {
            for stat in stats {
                encode::encode_stat(out, &stat.name, stat.value.as_slice());
            }
            encode::encode_end(out);
        }
        Response::Version(version) => encode::encode_version(out, version),
        Response::Meta(meta) => {
            // A value makes the line `VA`; a `VA` without one gets an empty block.
            let data = match (&meta.data, meta.code) {
                (Some(data), _) => Some(data.as_slice()),
                (None, MetaCode::Va) => Some(&b""[..]),
                (None, _) => None,
            };
            let mut line = match data {
                Some(data) => MetaReply::value(out, data.len()),
                None => MetaReply::status(out, meta.code),
            };
            for flag in &meta.flags {
                line.token(flag.flag, &flag.token);
            }
            match data {
                Some(data) => line.finish_with_data(data),
                None => line.finish(),
            }
        }
        Response::MetaDebug(debug) => {
            out.extend_from_slice(b"ME ");
            out.extend_from_slice(&debug.key);
            for (name, value) in &debug.fields {
                out.push(b' ');
                out.extend_from_slice(name);
                out.push(b'=');
                out.extend_from_slice(value);
            }
            out.extend_from_slice(b"\r\n");
        }
        Response::Error(message) => {
            out.extend_from_slice(b"ERROR");
            if !message.is_empty() {
                out.push(b' ');
                out.extend_from_slice(message);
            }
            out.extend_from_slice(b"\r\n");
        }
        Response::ClientError(message) => encode::encode_client_error(out, message),
        Response::ServerError(message) => encode::encode_server_error(out, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8], kind: ReplyKind) -> Result<Option<(Response, usize)>, ResponseError> {
        parse_response(buf, kind, &ResponseLimits::default())
    }

    fn complete(buf: &[u8], kind: ReplyKind) -> Response {
        match parse(buf, kind) {
            Ok(Some((response, consumed))) => {
                assert_eq!(consumed, buf.len(), "{:?}", String::from_utf8_lossy(buf));
                response
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn retrieval_replies() {
        let response = complete(
            b"VALUE a 1 3\r\nabc\r\nVALUE b 0 0 7\r\n\r\nEND\r\n",
            ReplyKind::Retrieval,
        );
        assert_eq!(
            response,
            Response::Values(vec![
                Value {
                    key: b"a".to_vec(),
                    flags: 1,
                    cas: None,
                    data: b"abc".to_vec()
                },
                Value {
                    key: b"b".to_vec(),
                    flags: 0,
                    cas: Some(7),
                    data: Vec::new()
                },
            ])
        );
        assert_eq!(complete(b"END\r\n", ReplyKind::Retrieval), Response::Values(Vec::new()));
        assert_eq!(parse(b"VALUE a 1 3\r\nab", ReplyKind::Retrieval), Ok(None));
        assert_eq!(
            parse(b"VALUE a 1 3\r\nabcd\r\n", ReplyKind::Retrieval),
            Err(ResponseError::BadDataChunk)
        );
    }

    #[test]
    fn decoder_consumes_complete_items_only() {
        let mut decoder = ResponseDecoder::new(ReplyKind::Retrieval, ResponseLimits::default());
        let progress = decoder.decode(b"VALUE a 0 1\r\nx\r\nVALUE b 0 2\r\ny").expect("valid");
        assert_eq!(
            progress,
            Progress {
                consumed: 16,
                response: None
            }
        );
        let progress = decoder
            .decode(b"VALUE b 0 2\r\nyz\r\nEND\r\nSTORED\r\n")
            .expect("valid");
        assert_eq!(progress.consumed, 22);
        let Some(Response::Values(values)) = progress.response else {
            panic!("not values")
        };
        assert_eq!(values.len(), 2);
    }

    #[test]
    fn status_and_number_replies() {
        assert_eq!(
            complete(b"STORED\r\n", ReplyKind::Storage),
            Response::Status(Status::Stored)
        );
        assert_eq!(
            complete(b"NOT_FOUND\r\n", ReplyKind::Delete),
            Response::Status(Status::NotFound)
        );
        assert_eq!(
            complete(b"TOUCHED\r\n", ReplyKind::Touch),
            Response::Status(Status::Touched)
        );
        assert_eq!(complete(b"42  \r\n", ReplyKind::Arithmetic), Response::Number(42));
        assert_eq!(complete(b"OK\r\n", ReplyKind::Ok), Response::Status(Status::Ok));
        assert_eq!(
            complete(b"VERSION 1.6.45\r\n", ReplyKind::Version),
            Response::Version(b"1.6.45".to_vec())
        );
        assert!(matches!(
            parse(b"DELETED\r\n", ReplyKind::Storage),
            Err(ResponseError::Unexpected { .. })
        ));
    }

    #[test]
    fn error_replies_end_any_request() {
        assert_eq!(
            complete(b"ERROR\r\n", ReplyKind::Retrieval),
            Response::Error(Vec::new())
        );
        assert_eq!(
            complete(b"CLIENT_ERROR bad data chunk\r\n", ReplyKind::Storage),
            Response::ClientError(b"bad data chunk".to_vec())
        );
        assert_eq!(
            complete(b"SERVER_ERROR object too large for cache\r\n", ReplyKind::Meta),
            Response::ServerError(b"object too large for cache".to_vec())
        );
    }

    #[test]
    fn stats_replies() {
        let response = complete(b"STAT pid 1\r\nSTAT version 1.6 x\r\nEND\r\n", ReplyKind::Stats);
        assert_eq!(
            response,
            Response::Stats(vec![
                Stat {
                    name: b"pid".to_vec(),
                    value: b"1".to_vec()
                },
                Stat {
                    name: b"version".to_vec(),
                    value: b"1.6 x".to_vec()
                },
            ])
        );
        assert_eq!(
            complete(b"RESET\r\n", ReplyKind::Stats),
            Response::Status(Status::Reset)
        );
    }

    #[test]
    fn meta_replies() {
        let response = complete(b"VA 2 f30 t-1 Oop\r\nhi\r\n", ReplyKind::Meta);
        let Response::Meta(meta) = response else {
            panic!("not meta")
        };
        assert_eq!(meta.code, MetaCode::Va);
        assert_eq!(meta.data.as_deref(), Some(&b"hi"[..]));
        assert_eq!(meta.flag(b't'), Some(&b"-1"[..]));
        assert_eq!(meta.flag(b'O'), Some(&b"op"[..]));
        assert!(!meta.has(b'k'));
        let Response::Meta(meta) = complete(b"EN\r\n", ReplyKind::Meta) else {
            panic!()
        };
        assert_eq!((meta.code, meta.flags.len(), meta.data), (MetaCode::En, 0, None));
        let Response::MetaDebug(debug) = complete(b"ME foo exp=-1 la=2 fetch=no\r\n", ReplyKind::Meta) else {
            panic!()
        };
        assert_eq!(debug.key, b"foo");
        assert_eq!(debug.fields[2], (b"fetch".to_vec(), b"no".to_vec()));
        assert!(matches!(
            parse(b"XX\r\n", ReplyKind::Meta),
            Err(ResponseError::Unexpected { .. })
        ));
        assert!(matches!(
            parse(b"VA x\r\n", ReplyKind::Meta),
            Err(ResponseError::Unexpected { .. })
        ));
    }

    #[test]
    fn limits_apply_to_headers() {
        let limits = ResponseLimits {
            max_line_bytes: 32,
            max_value_bytes: 4,
            max_items: 1,
        };
        assert_eq!(
            parse_response(b"VALUE a 0 5\r\n", ReplyKind::Retrieval, &limits),
            Err(ResponseError::ValueTooLarge { size: 5, limit: 4 })
        );
        assert_eq!(
            parse_response(b"VA 99999999999999999999\r\n", ReplyKind::Meta, &limits),
            Err(ResponseError::Unexpected {
                line: "VA 99999999999999999999".into()
            })
        );
        assert_eq!(
            parse_response(b"VALUE a 0 1\r\na\r\nVALUE b 0 1\r\n", ReplyKind::Retrieval, &limits),
            Err(ResponseError::TooManyItems { limit: 1 })
        );
        assert_eq!(
            parse_response(&[b'S'; 32], ReplyKind::Storage, &limits),
            Err(ResponseError::LineTooLong { limit: 32 })
        );
    }

    #[test]
    fn reply_kinds_follow_noreply() {
        assert_eq!(ReplyKind::of(&Request::Quit), None);
        assert_eq!(
            ReplyKind::of(&Request::Delete {
                key: b"k",
                noreply: true
            }),
            None
        );
        assert_eq!(
            ReplyKind::of(&Request::Delete {
                key: b"k",
                noreply: false
            }),
            Some(ReplyKind::Delete)
        );
        assert_eq!(ReplyKind::of(&Request::MetaNoop), Some(ReplyKind::Meta));
    }

    #[test]
    fn encode_response_writes_server_form() {
        let mut out = Vec::new();
        encode_response(&mut out, &Response::Error(Vec::new()));
        encode_response(&mut out, &Response::Number(5));
        let meta = MetaResponse {
            code: MetaCode::Hd,
            flags: vec![
                ReturnedFlag {
                    flag: b'c',
                    token: b"1".to_vec(),
                },
                ReturnedFlag {
                    flag: b'W',
                    token: vec![],
                },
            ],
            data: None,
        };
        encode_response(&mut out, &Response::Meta(meta));
        assert_eq!(out, b"ERROR\r\n5\r\nHD c1 W\r\n");
    }
}
