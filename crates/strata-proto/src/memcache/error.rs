//! Errors of the memcached codec.
//!
//! A [`RequestError`] is *recoverable*: memcached answers it with one line and
//! keeps the connection, so each variant's `Display` is exactly that line
//! (without `\r\n`), taken from memcached's source. A [`FatalError`] closes
//! the connection. A [`ResponseError`] is the client side's: the server sent
//! something that is not memcached's protocol, so the connection is out of
//! step and must be dropped.

/// A request the server refuses with a reply line, keeping the connection.
///
/// The message of each variant is the reply line memcached sends
/// (`proto_text.c`, `proto_parser.c`); [`RequestError::reply_line`] gives
/// it as a `&'static str`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RequestError {
    /// An unknown command name or an empty line.
    #[error("ERROR")]
    UnknownCommand,
    /// Wrong number of arguments, a malformed number, a key that is too long
    /// or contains control characters.
    #[error("CLIENT_ERROR bad command line format")]
    BadFormat,
    /// A storage command's data block was not followed by `\r\n`.
    #[error("CLIENT_ERROR bad data chunk")]
    BadDataChunk,
    /// A storage command announced a value larger than the limit.
    #[error("SERVER_ERROR object too large for cache")]
    TooLarge,
    /// `touch`, `gat`, `gats` or `flush_all` with a malformed time.
    #[error("CLIENT_ERROR invalid exptime argument")]
    InvalidExptime,
    /// `incr` or `decr` with a delta that is not a 64-bit unsigned number.
    #[error("CLIENT_ERROR invalid numeric delta argument")]
    InvalidDelta,
    /// `delete` with arguments other than a legacy `0` and `noreply`.
    #[error("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]")]
    DeleteUsage,
    /// A meta flag given twice.
    #[error("CLIENT_ERROR duplicate flag")]
    DuplicateFlag,
    /// A meta flag memcached does not know.
    #[error("CLIENT_ERROR invalid flag")]
    InvalidFlag,
    /// A meta flag's numeric token (`N`, `T`, `R`, `C`, `E`) is malformed.
    #[error("CLIENT_ERROR bad token in command line format")]
    BadToken,
    /// The `b` flag was given but the key is not valid base64.
    #[error("CLIENT_ERROR error decoding key")]
    KeyDecode,
    /// An `O` (opaque) token longer than 32 bytes.
    #[error("CLIENT_ERROR opaque token too long")]
    OpaqueTooLong,
    /// More meta flags than memcached accepts on one line.
    #[error("CLIENT_ERROR options flags are too long")]
    TooManyFlags,
    /// An `M` (mode) flag whose token is not exactly one character.
    #[error("CLIENT_ERROR incorrect length for M token")]
    ModeLength,
    /// An `ms` mode other than `E`, `A`, `P`, `R` or `S`.
    #[error("CLIENT_ERROR invalid mode for ms M token")]
    InvalidSetMode,
    /// An `ma` mode other than `I`, `+`, `D` or `-`.
    #[error("CLIENT_ERROR invalid mode for ma M token")]
    InvalidArithmeticMode,
    /// An `ma` `J` (initial value) token that is not a 64-bit unsigned number.
    #[error("CLIENT_ERROR invalid numeric initial value")]
    InvalidInitial,
    /// An `ma` `D` (delta) token that is not a 64-bit unsigned number.
    #[error("CLIENT_ERROR invalid numeric delta value")]
    InvalidMetaDelta,
    /// Any flag error on `ma`: memcached reports them all with this line.
    #[error("CLIENT_ERROR invalid or duplicate flag")]
    ArithmeticFlags,
}

impl RequestError {
    /// The reply line memcached sends for this error, without `\r\n`.
    pub const fn reply_line(self) -> &'static str {
        match self {
            RequestError::UnknownCommand => "ERROR",
            RequestError::BadFormat => "CLIENT_ERROR bad command line format",
            RequestError::BadDataChunk => "CLIENT_ERROR bad data chunk",
            RequestError::TooLarge => "SERVER_ERROR object too large for cache",
            RequestError::InvalidExptime => "CLIENT_ERROR invalid exptime argument",
            RequestError::InvalidDelta => "CLIENT_ERROR invalid numeric delta argument",
            RequestError::DeleteUsage => "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
            RequestError::DuplicateFlag => "CLIENT_ERROR duplicate flag",
            RequestError::InvalidFlag => "CLIENT_ERROR invalid flag",
            RequestError::BadToken => "CLIENT_ERROR bad token in command line format",
            RequestError::KeyDecode => "CLIENT_ERROR error decoding key",
            RequestError::OpaqueTooLong => "CLIENT_ERROR opaque token too long",
            RequestError::TooManyFlags => "CLIENT_ERROR options flags are too long",
            RequestError::ModeLength => "CLIENT_ERROR incorrect length for M token",
            RequestError::InvalidSetMode => "CLIENT_ERROR invalid mode for ms M token",
            RequestError::InvalidArithmeticMode => "CLIENT_ERROR invalid mode for ma M token",
            RequestError::InvalidInitial => "CLIENT_ERROR invalid numeric initial value",
            RequestError::InvalidMetaDelta => "CLIENT_ERROR invalid numeric delta value",
            RequestError::ArithmeticFlags => "CLIENT_ERROR invalid or duplicate flag",
        }
    }
}

/// Input after which the server closes the connection without a reply, as
/// memcached does (`try_read_command_ascii`, `process_command_ascii`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FatalError {
    /// No newline within [`Limits::max_line_bytes`], on a line that is not
    /// a retrieval (those are streamed: [`GetStream`]). memcached closes a
    /// connection that sends 2048 bytes without a newline unless the line
    /// starts with `get `/`gets ` (which it lets grow without bound); strata
    /// applies one configurable limit to every other line.
    ///
    /// [`GetStream`]: crate::memcache::GetStream
    ///
    /// [`Limits::max_line_bytes`]: crate::memcache::Limits::max_line_bytes
    #[error("request line longer than {limit} bytes")]
    LineTooLong {
        /// The limit, in bytes including the line terminator.
        limit: usize,
    },
    /// A request that starts with the binary protocol's magic byte `0x80`.
    /// memcached would switch the connection to the binary protocol, which
    /// strata does not speak.
    #[error("memcached binary protocol is not supported")]
    BinaryProtocol,
    /// An unknown command whose last token starts with `HTTP/`: someone is
    /// speaking HTTP to the memcached port, and memcached hangs up.
    #[error("HTTP request on the memcached port")]
    Http,
}

impl FatalError {
    /// The line to send before closing: `CLIENT_ERROR <why>`, or nothing
    /// for HTTP — memcached hangs up on a web page without a word, so a
    /// cross-protocol request gets no answer it could read.
    pub fn reply_line(&self) -> Option<String> {
        match self {
            FatalError::Http => None,
            other => Some(format!("CLIENT_ERROR {other}\r\n")),
        }
    }
}

/// A server response the client cannot make sense of; the connection is out
/// of step and must be closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// No newline within [`ResponseLimits::max_line_bytes`].
    ///
    /// [`ResponseLimits::max_line_bytes`]: crate::memcache::ResponseLimits::max_line_bytes
    #[error("response line longer than {limit} bytes")]
    LineTooLong {
        /// The limit, in bytes including the line terminator.
        limit: usize,
    },
    /// A value larger than [`ResponseLimits::max_value_bytes`], refused as
    /// soon as its header line arrived.
    ///
    /// [`ResponseLimits::max_value_bytes`]: crate::memcache::ResponseLimits::max_value_bytes
    #[error("value of {size} bytes is larger than the limit of {limit} bytes")]
    ValueTooLarge {
        /// The size the server announced.
        size: u64,
        /// The limit it exceeds.
        limit: usize,
    },
    /// More `VALUE` or `STAT` lines than [`ResponseLimits::max_items`].
    ///
    /// [`ResponseLimits::max_items`]: crate::memcache::ResponseLimits::max_items
    #[error("more than {limit} items in one response")]
    TooManyItems {
        /// The limit.
        limit: usize,
    },
    /// A data block not followed by `\r\n`.
    #[error("data block not terminated by CRLF")]
    BadDataChunk,
    /// A line that is not a valid reply to the request that was sent.
    #[error("unexpected response line: {line:?}")]
    Unexpected {
        /// The line, lossily decoded and cut to 64 bytes.
        line: String,
    },
}

impl ResponseError {
    /// An [`ResponseError::Unexpected`] quoting the start of `line`.
    pub(crate) fn unexpected(line: &[u8]) -> Self {
        let shown = &line[..line.len().min(64)];
        ResponseError::Unexpected {
            line: String::from_utf8_lossy(shown).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_reply_line() {
        let all = [
            RequestError::UnknownCommand,
            RequestError::BadFormat,
            RequestError::BadDataChunk,
            RequestError::TooLarge,
            RequestError::InvalidExptime,
            RequestError::InvalidDelta,
            RequestError::DeleteUsage,
            RequestError::DuplicateFlag,
            RequestError::InvalidFlag,
            RequestError::BadToken,
            RequestError::KeyDecode,
            RequestError::OpaqueTooLong,
            RequestError::TooManyFlags,
            RequestError::ModeLength,
            RequestError::InvalidSetMode,
            RequestError::InvalidArithmeticMode,
            RequestError::InvalidInitial,
            RequestError::InvalidMetaDelta,
            RequestError::ArithmeticFlags,
        ];
        for error in all {
            assert_eq!(error.to_string(), error.reply_line());
        }
    }

    #[test]
    fn unexpected_quotes_a_bounded_prefix() {
        let error = ResponseError::unexpected(&[b'x'; 1000]);
        let ResponseError::Unexpected { line } = error else {
            panic!("wrong variant")
        };
        assert_eq!(line.len(), 64);
    }
}
