//! The meta commands (`mg`, `ms`, `md`, `ma`, `mn`, `me`) and their flags.
//!
//! A meta command is `<cm> <key> [<datalen>] <flag>*`, where each flag is one
//! letter optionally followed by a token (`v`, `T30`, `Oabc`). Flags are kept
//! as the validated slice of the line they came in ([`MetaFlags`]), so
//! parsing allocates nothing and iteration yields them in request order —
//! the order in which a reply must return them.
//!
//! Validation follows memcached's `_meta_flag_preparse` (`proto_parser.c`):
//! every flag memcached knows is accepted on every meta command (a flag that
//! means nothing to a command is ignored, as memcached ignores it), a flag
//! may appear once, numeric tokens must parse, and the `b` flag makes the key
//! base64.

use std::borrow::Cow;

use base64::Engine as _;

use super::error::RequestError;
use super::line::{Tokens, is_valid_key, parse_i64, parse_u32, parse_u64};
use super::parse::{Context, Parsed, TooLarge, parse_data_len};
use super::request::{ArithmeticOp, Meta, MetaArithmetic, MetaSet, Request, SetMode};

/// Most flags on one meta command line. memcached refuses a line of more
/// than 20 tokens (`MFLAG_MAX_OPT_LENGTH`), command and key included.
pub const MAX_META_FLAGS: usize = 18;

/// Longest opaque (`O`) token, in bytes, as protocol.txt documents it.
pub const MAX_OPAQUE_BYTES: usize = 32;

/// The flags memcached's meta commands accept, in any command.
const KNOWN_FLAGS: &[u8] = b"bcfhklqstuvxCDEFIJLMNOPRT";

/// [`KNOWN_FLAGS`] as a set of [`flag_bit`]s.
const KNOWN_FLAG_BITS: u64 = {
    let mut bits = 0;
    let mut at = 0;
    while at < KNOWN_FLAGS.len() {
        bits |= flag_bit(KNOWN_FLAGS[at]);
        at += 1;
    }
    bits
};

/// One meta flag: its letter and the token after it (empty if none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MetaFlag<'a> {
    /// The flag letter, e.g. `b'T'`.
    pub flag: u8,
    /// The token after the letter, e.g. `b"30"` for `T30`.
    pub token: &'a [u8],
}

/// The validated flags of a meta request, in request order.
///
/// Stored as the part of the line they came in plus a bit set of the letters
/// present, so [`has`](Self::has) is one test and nothing is allocated.
/// Typed accessors return the token of a flag already checked at parse time.
#[derive(Clone, Copy, Debug, Default)]
pub struct MetaFlags<'a> {
    raw: &'a [u8],
    present: u64,
    len: u8,
}

impl<'a> MetaFlags<'a> {
    /// Validates the space-separated flags `raw` the way memcached does.
    ///
    /// Errors, in memcached's order of checking: [`RequestError::TooManyFlags`];
    /// then per flag [`RequestError::InvalidFlag`] and
    /// [`RequestError::DuplicateFlag`], which stop at once; then the last of
    /// any token errors ([`RequestError::BadToken`], `BadFormat` for `F`,
    /// [`RequestError::ModeLength`], [`RequestError::InvalidInitial`],
    /// [`RequestError::InvalidMetaDelta`]); then
    /// [`RequestError::OpaqueTooLong`].
    pub fn parse(raw: &'a [u8]) -> Result<Self, RequestError> {
        let raw = super::line::trim_spaces(raw);
        let count = Tokens::new(raw).count();
        if count > MAX_META_FLAGS {
            return Err(RequestError::TooManyFlags);
        }
        let mut present = 0u64;
        let mut token_error = None;
        let mut opaque_too_long = false;
        for token in Tokens::new(raw) {
            let Some((&flag, arg)) = token.split_first() else {
                continue;
            };
            let bit = flag_bit(flag);
            if !flag.is_ascii_alphabetic() || KNOWN_FLAG_BITS & bit == 0 {
                return Err(RequestError::InvalidFlag);
            }
            if present & bit != 0 {
                return Err(RequestError::DuplicateFlag);
            }
            present |= bit;
            match flag {
                b'N' | b'T' | b'R' if parse_i64(arg).is_none() => token_error = Some(RequestError::BadToken),
                b'C' | b'E' if parse_u64(arg).is_none() => token_error = Some(RequestError::BadToken),
                // memcached sets no message of its own for a bad `F`.
                b'F' if parse_u32(arg).is_none() => {
                    token_error = token_error.or(Some(RequestError::BadFormat));
                }
                b'J' if parse_u64(arg).is_none() => token_error = Some(RequestError::InvalidInitial),
                b'D' if parse_u64(arg).is_none() => token_error = Some(RequestError::InvalidMetaDelta),
                b'M' if arg.len() != 1 => token_error = Some(RequestError::ModeLength),
                b'O' if arg.len() > MAX_OPAQUE_BYTES => opaque_too_long = true,
                _ => {}
            }
        }
        if let Some(error) = token_error {
            return Err(error);
        }
        if opaque_too_long {
            return Err(RequestError::OpaqueTooLong);
        }
        // count <= MAX_META_FLAGS, which fits in a u8.
        Ok(MetaFlags {
            raw,
            present,
            len: count as u8,
        })
    }

    /// How many flags there are.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The flags in request order.
    pub fn iter(&self) -> MetaFlagsIter<'a> {
        MetaFlagsIter {
            tokens: Tokens::new(self.raw),
        }
    }

    /// Whether `flag` is present.
    pub fn has(&self, flag: u8) -> bool {
        flag.is_ascii_alphabetic() && self.present & flag_bit(flag) != 0
    }

    /// The token of `flag`, if the flag is present.
    pub fn token(&self, flag: u8) -> Option<&'a [u8]> {
        if !self.has(flag) {
            return None;
        }
        self.iter()
            .find(|candidate| candidate.flag == flag)
            .map(|found| found.token)
    }

    /// `b`: the key is base64.
    pub fn base64_key(&self) -> bool {
        self.has(b'b')
    }

    /// `q`: quiet mode; suppress the nominal reply (`EN` for `mg`, `HD` for
    /// `ms`, `md`, `ma`). Errors are always sent.
    pub fn quiet(&self) -> bool {
        self.has(b'q')
    }

    /// `v`: return the value.
    pub fn return_value(&self) -> bool {
        self.has(b'v')
    }

    /// `u`: don't bump the item in the LRU.
    pub fn no_bump(&self) -> bool {
        self.has(b'u')
    }

    /// `I`: invalidate (mark stale) instead of deleting or overwriting.
    pub fn invalidate(&self) -> bool {
        self.has(b'I')
    }

    /// `x`: `md` removes the value but keeps the item.
    pub fn remove_value(&self) -> bool {
        self.has(b'x')
    }

    /// `T<ttl>`: the new exptime, raw (see [`Expiration`](super::Expiration)).
    pub fn ttl(&self) -> Option<i64> {
        self.token(b'T').and_then(parse_i64)
    }

    /// `N<ttl>`: vivify on miss with this exptime.
    pub fn vivify_ttl(&self) -> Option<i64> {
        self.token(b'N').and_then(parse_i64)
    }

    /// `R<ttl>`: win the recache if the remaining TTL is below this.
    pub fn recache_ttl(&self) -> Option<i64> {
        self.token(b'R').and_then(parse_i64)
    }

    /// `C<cas>`: compare this CAS unique.
    pub fn compare_cas(&self) -> Option<u64> {
        self.token(b'C').and_then(parse_u64)
    }

    /// `E<cas>`: use this as the item's new CAS unique.
    pub fn new_cas(&self) -> Option<u64> {
        self.token(b'E').and_then(parse_u64)
    }

    /// `F<flags>`: the client flags to store (0 if absent).
    pub fn client_flags(&self) -> Option<u32> {
        self.token(b'F').and_then(parse_u32)
    }

    /// `D<delta>`: `ma`'s delta (1 if absent).
    pub fn delta(&self) -> Option<u64> {
        self.token(b'D').and_then(parse_u64)
    }

    /// `J<value>`: `ma`'s initial value on vivify (0 if absent).
    pub fn initial(&self) -> Option<u64> {
        self.token(b'J').and_then(parse_u64)
    }

    /// `O<opaque>`: the opaque token to copy into the reply.
    pub fn opaque(&self) -> Option<&'a [u8]> {
        self.token(b'O')
    }

    /// `M<mode>`: the mode character.
    pub fn mode(&self) -> Option<u8> {
        self.token(b'M').and_then(|token| token.first().copied())
    }
}

impl PartialEq for MetaFlags<'_> {
    /// Flags are equal if they are the same flags in the same order,
    /// however they were spaced on the line.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for MetaFlags<'_> {}

impl<'a> IntoIterator for &MetaFlags<'a> {
    type Item = MetaFlag<'a>;
    type IntoIter = MetaFlagsIter<'a>;

    fn into_iter(self) -> MetaFlagsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`MetaFlags`], in request order.
#[derive(Clone, Debug)]
pub struct MetaFlagsIter<'a> {
    tokens: Tokens<'a>,
}

impl<'a> Iterator for MetaFlagsIter<'a> {
    type Item = MetaFlag<'a>;

    fn next(&mut self) -> Option<MetaFlag<'a>> {
        let token = self.tokens.next()?;
        let (&flag, token) = token.split_first()?;
        Some(MetaFlag { flag, token })
    }
}

/// The bit of an ASCII letter in a `u64` set (`A` is bit 0, `z` bit 57).
const fn flag_bit(flag: u8) -> u64 {
    1u64 << (flag.wrapping_sub(b'A') & 63)
}

/// Decodes a base64 key (standard alphabet, padded), as the `b` flag asks.
/// memcached's decoder skips characters outside the alphabet; this one
/// refuses them.
pub(crate) fn decode_key(encoded: &[u8]) -> Result<Vec<u8>, RequestError> {
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(RequestError::KeyDecode),
    }
}

/// Which meta command a line starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetaCommand {
    Get,
    Set,
    Delete,
    Arithmetic,
    Noop,
    Debug,
}

impl MetaCommand {
    /// The meta command named `name`, if it is one.
    pub(crate) fn from_name(name: &[u8]) -> Option<Self> {
        match name {
            b"mg" => Some(MetaCommand::Get),
            b"ms" => Some(MetaCommand::Set),
            b"md" => Some(MetaCommand::Delete),
            b"ma" => Some(MetaCommand::Arithmetic),
            b"mn" => Some(MetaCommand::Noop),
            b"me" => Some(MetaCommand::Debug),
            _ => None,
        }
    }
}

/// Parses the rest of a meta command line (after the command name). Meta
/// errors are always sent, whatever `q` says, so `noreply` is false in every
/// refusal.
pub(crate) fn parse_meta<'a>(context: &Context<'a>, command: MetaCommand, mut args: Tokens<'a>) -> Parsed<'a> {
    match command {
        // memcached answers `mn` without looking at the rest of the line.
        MetaCommand::Noop => context.request(Request::MetaNoop),
        MetaCommand::Debug => parse_debug(context, args),
        MetaCommand::Set => parse_set(context, args),
        MetaCommand::Get | MetaCommand::Delete | MetaCommand::Arithmetic => {
            let Some(raw_key) = args
                .next()
                .filter(|key| is_valid_key(key, context.limits.max_key_bytes))
            else {
                return context.reject(RequestError::BadFormat, false);
            };
            let meta = match parse_key_and_flags(raw_key, args.remainder()) {
                Ok(meta) => meta,
                // memcached reports every error of `ma`'s flag pre-parse
                // with one line; the opaque is checked later, on its own.
                Err(error) if command == MetaCommand::Arithmetic && error != RequestError::OpaqueTooLong => {
                    return context.reject(RequestError::ArithmeticFlags, false);
                }
                Err(error) => return context.reject(error, false),
            };
            let request = match command {
                MetaCommand::Get => Request::MetaGet(meta),
                MetaCommand::Delete => Request::MetaDelete(meta),
                _ => {
                    let op = match meta.flags.mode() {
                        None | Some(b'I' | b'+') => ArithmeticOp::Incr,
                        Some(b'D' | b'-') => ArithmeticOp::Decr,
                        Some(_) => return context.reject(RequestError::InvalidArithmeticMode, false),
                    };
                    Request::MetaArithmetic(MetaArithmetic { meta, op })
                }
            };
            context.request(request)
        }
    }
}

/// Flag validation and base64 decoding shared by `mg`, `ms`, `md` and `ma`;
/// the caller has checked the raw key.
fn parse_key_and_flags<'a>(raw_key: &'a [u8], raw_flags: &'a [u8]) -> Result<Meta<'a>, RequestError> {
    let flags = MetaFlags::parse(raw_flags)?;
    let key = if flags.base64_key() {
        Cow::Owned(decode_key(raw_key)?)
    } else {
        Cow::Borrowed(raw_key)
    };
    Ok(Meta { key, flags })
}

/// `ms <key> <datalen> <flag>*` and its data block. Once `datalen` is known
/// every error swallows the data, as memcached's `process_mset_command`.
fn parse_set<'a>(context: &Context<'a>, mut args: Tokens<'a>) -> Parsed<'a> {
    let (Some(raw_key), Some(raw_len)) = (args.next(), args.next()) else {
        return context.reject(RequestError::BadFormat, false);
    };
    let Some(data_len) = parse_data_len(raw_len) else {
        return context.reject(RequestError::BadFormat, false);
    };
    if !is_valid_key(raw_key, context.limits.max_key_bytes) {
        return context.swallow(RequestError::BadFormat, false, data_len);
    }
    let meta = match parse_key_and_flags(raw_key, args.remainder()) {
        Ok(meta) => meta,
        Err(error) => return context.swallow(error, false, data_len),
    };
    let mode = match meta.flags.mode() {
        None => SetMode::Set,
        Some(token) => match SetMode::from_token(token) {
            Some(mode) => mode,
            None => return context.swallow(RequestError::InvalidSetMode, false, data_len),
        },
    };
    if data_len > context.limits.max_value_bytes {
        let refused = TooLarge {
            key: meta.key,
            replaces: mode != SetMode::Add,
        };
        return context.too_large(refused, false, data_len);
    }
    match context.data(data_len, false) {
        Ok(data) => context.request_with_data(Request::MetaSet(MetaSet { meta, mode, data }), data_len),
        Err(outcome) => outcome,
    }
}

/// `me <key> [b]`: memcached looks only at whether the first flag is `b`,
/// and answers a bad key or bad base64 with "bad command line format".
fn parse_debug<'a>(context: &Context<'a>, mut args: Tokens<'a>) -> Parsed<'a> {
    let Some(raw_key) = args.next() else {
        return context.reject(RequestError::BadFormat, false);
    };
    if !is_valid_key(raw_key, context.limits.max_key_bytes) {
        return context.reject(RequestError::BadFormat, false);
    }
    let binary = args.next() == Some(b"b".as_slice());
    let key = if binary {
        match decode_key(raw_key) {
            Ok(key) => Cow::Owned(key),
            Err(_) => return context.reject(RequestError::BadFormat, false),
        }
    } else {
        Cow::Borrowed(raw_key)
    };
    context.request(Request::MetaDebug { key, binary })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(raw: &[u8]) -> Result<Vec<(char, String)>, RequestError> {
        let parsed = MetaFlags::parse(raw)?;
        Ok(parsed
            .iter()
            .map(|flag| (char::from(flag.flag), String::from_utf8_lossy(flag.token).into_owned()))
            .collect())
    }

    #[test]
    fn flags_keep_request_order_and_tokens() {
        let parsed = flags(b"v  t Oabc T30 k").expect("valid");
        let expected: Vec<(char, String)> = [('v', ""), ('t', ""), ('O', "abc"), ('T', "30"), ('k', "")]
            .into_iter()
            .map(|(flag, token)| (flag, token.to_owned()))
            .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn typed_accessors_read_tokens() {
        let parsed = MetaFlags::parse(b"b q v T-1 N30 R5 C7 E8 F9 D10 J11 Oop MD I x u").expect("valid");
        assert!(parsed.base64_key() && parsed.quiet() && parsed.return_value());
        assert!(parsed.invalidate() && parsed.remove_value() && parsed.no_bump());
        assert_eq!(parsed.ttl(), Some(-1));
        assert_eq!(parsed.vivify_ttl(), Some(30));
        assert_eq!(parsed.recache_ttl(), Some(5));
        assert_eq!(parsed.compare_cas(), Some(7));
        assert_eq!(parsed.new_cas(), Some(8));
        assert_eq!(parsed.client_flags(), Some(9));
        assert_eq!(parsed.delta(), Some(10));
        assert_eq!(parsed.initial(), Some(11));
        assert_eq!(parsed.opaque(), Some(&b"op"[..]));
        assert_eq!(parsed.mode(), Some(b'D'));
        assert!(!parsed.has(b'k'));
        assert!(!parsed.has(b'1'));
        assert_eq!(parsed.len(), 16);
    }

    #[test]
    fn flag_errors_match_memcached() {
        assert_eq!(flags(b"v v"), Err(RequestError::DuplicateFlag));
        assert_eq!(flags(b"z"), Err(RequestError::InvalidFlag));
        assert_eq!(flags(b"1"), Err(RequestError::InvalidFlag));
        assert_eq!(flags(b"Tx"), Err(RequestError::BadToken));
        assert_eq!(flags(b"T"), Err(RequestError::BadToken));
        assert_eq!(flags(b"C-1"), Err(RequestError::BadToken));
        assert_eq!(flags(b"F-1"), Err(RequestError::BadFormat));
        assert_eq!(flags(b"Jx"), Err(RequestError::InvalidInitial));
        assert_eq!(flags(b"Dx"), Err(RequestError::InvalidMetaDelta));
        assert_eq!(flags(b"MSS"), Err(RequestError::ModeLength));
        assert_eq!(flags(b"M"), Err(RequestError::ModeLength));
        // A duplicate stops at once, before any token error is reported.
        assert_eq!(flags(b"Tx v v"), Err(RequestError::DuplicateFlag));
        let opaque = [b"O".as_slice(), &[b'o'; MAX_OPAQUE_BYTES]].concat();
        assert!(flags(&opaque).is_ok());
        let opaque = [b"O".as_slice(), &[b'o'; MAX_OPAQUE_BYTES + 1]].concat();
        assert_eq!(flags(&opaque), Err(RequestError::OpaqueTooLong));
    }

    #[test]
    fn too_many_flags() {
        let many: Vec<u8> = KNOWN_FLAGS.iter().flat_map(|&flag| [flag, b'1', b' ']).collect();
        assert_eq!(flags(&many), Err(RequestError::TooManyFlags));
        let just_enough: Vec<u8> = KNOWN_FLAGS[..MAX_META_FLAGS]
            .iter()
            .flat_map(|&flag| [flag, b'1', b' '])
            .collect();
        assert!(flags(&just_enough).is_ok());
    }

    #[test]
    fn flags_compare_by_content() {
        let a = MetaFlags::parse(b"v  t").expect("valid");
        let b = MetaFlags::parse(b"v t").expect("valid");
        let c = MetaFlags::parse(b"t v").expect("valid");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn base64_keys_decode_strictly() {
        assert_eq!(decode_key(b"Zm9v"), Ok(b"foo".to_vec()));
        assert_eq!(decode_key(b"Zm9vYg=="), Ok(b"foob".to_vec()));
        assert_eq!(decode_key(b"Zm9vYg"), Err(RequestError::KeyDecode));
        assert_eq!(decode_key(b"Zm9*"), Err(RequestError::KeyDecode));
        assert_eq!(decode_key(b"===="), Err(RequestError::KeyDecode));
    }
}
