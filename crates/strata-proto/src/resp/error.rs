//! [`ParseError`]: why a request or reply could not be parsed.
//!
//! The request-side variants print exactly the text Redis sends for the same
//! fault (from `processMultibulkBuffer` and `processInlineBuffer` in Redis's
//! `networking.c`), so a server can answer `-ERR {error}` and close the
//! connection as Redis does. The reply-side variants are strata's own.

use std::fmt;

/// A protocol violation: the connection cannot continue in sync.
///
/// Every variant is final for its connection: after an error the parser's
/// position in the stream is unknown, so the caller reports it and closes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A `*` count that is not an integer, above the argument limit, or whose
    /// line is not ended by CRLF.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// A `$` length that is not an integer, negative, above the bulk limit, or
    /// whose data is not followed by CRLF.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A multibulk argument that does not start with `$`; holds the byte found.
    #[error("Protocol error: expected '$', got '{}'", DisplayByte(*.0))]
    ExpectedBulk(u8),
    /// An inline request line longer than the inline limit.
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// A `*` count line longer than the inline limit.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `$` length line longer than the inline limit.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// An inline request with an unterminated quote, or a closing quote not
    /// followed by a space.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A request whose announced size exceeds the request limit. Redis has no
    /// exact counterpart: it closes such a client (`client-query-buffer-limit`)
    /// without a reply.
    #[error("Protocol error: too big request")]
    TooBigRequest,

    /// A reply starting with a byte that is no RESP2 or RESP3 type.
    #[error("Protocol error: invalid reply type byte '{}'", DisplayByte(*.0))]
    InvalidReplyType(u8),
    /// A reply's length or count that is not a valid number for its type.
    #[error("Protocol error: invalid length in reply")]
    InvalidReplyLength,
    /// A reply line or data not followed by CRLF.
    #[error("Protocol error: expected CRLF in reply")]
    ExpectedCrlf,
    /// A reply's integer, double, boolean, big number, null or verbatim string
    /// that is not well formed.
    #[error("Protocol error: malformed {0} in reply")]
    MalformedReply(&'static str),
    /// A reply line, bulk or aggregate larger than the reply limits allow.
    #[error("Protocol error: reply {0} over the limit")]
    ReplyTooBig(&'static str),
    /// A reply nested deeper than the depth limit.
    #[error("Protocol error: reply nested deeper than {0} levels")]
    ReplyTooDeep(usize),
}

/// Shows a byte as Redis's `%c` would in an error line: printable ASCII as
/// itself, CR and LF as spaces (Redis maps them so the reply stays one line).
/// Other bytes, which Redis would send raw, are shown as `\xHH` so the
/// message stays valid UTF-8 on one line.
struct DisplayByte(u8);

impl fmt::Display for DisplayByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b'\r' | b'\n' => f.write_str(" "),
            byte @ 0x20..=0x7e => write!(f, "{}", char::from(byte)),
            byte => write!(f, "\\x{byte:02x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_redis() {
        assert_eq!(
            ParseError::InvalidMultibulkLength.to_string(),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            ParseError::InvalidBulkLength.to_string(),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            ParseError::ExpectedBulk(b'f').to_string(),
            "Protocol error: expected '$', got 'f'"
        );
        assert_eq!(
            ParseError::ExpectedBulk(b'\n').to_string(),
            "Protocol error: expected '$', got ' '"
        );
        assert_eq!(
            ParseError::ExpectedBulk(0).to_string(),
            "Protocol error: expected '$', got '\\x00'"
        );
        assert_eq!(
            ParseError::TooBigInlineRequest.to_string(),
            "Protocol error: too big inline request"
        );
        assert_eq!(
            ParseError::TooBigMultibulkCount.to_string(),
            "Protocol error: too big mbulk count string"
        );
        assert_eq!(
            ParseError::TooBigBulkCount.to_string(),
            "Protocol error: too big bulk count string"
        );
        assert_eq!(
            ParseError::UnbalancedQuotes.to_string(),
            "Protocol error: unbalanced quotes in request"
        );
    }
}
