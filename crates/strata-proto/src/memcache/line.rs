//! Line-level helpers shared by the request parser, the reply encoders and
//! the response decoder: finding a line, splitting it into tokens, strict
//! number parsing and allocation-free number formatting.
//!
//! memcached separates tokens by spaces only (`mcmc_tokenize` and the older
//! `tokenize_command` both split on `' '`), so a tab or a `\r` inside a line
//! is part of a token, and runs of spaces count as one separator.

/// Where the first line of a buffer ends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineScan<'a> {
    /// A whole line: its content without the `\n` or `\r\n`, and the bytes
    /// it occupies including the terminator.
    Complete { line: &'a [u8], consumed: usize },
    /// No newline yet, and the buffer is still shorter than the limit.
    Incomplete,
    /// No newline within the first `max_line_bytes` bytes.
    TooLong,
}

/// Finds the first line of `buf`. A line may end in `\r\n` or, as memcached
/// also accepts for commands, in a bare `\n`. `max_line_bytes` counts the
/// terminator; a buffer that holds `max_line_bytes` bytes without a newline
/// proves the line too long, whatever follows.
pub(crate) fn scan_line(buf: &[u8], max_line_bytes: usize) -> LineScan<'_> {
    let window = &buf[..buf.len().min(max_line_bytes)];
    match memchr::memchr(b'\n', window) {
        Some(newline) => {
            let content = &buf[..newline];
            let line = content.strip_suffix(b"\r").unwrap_or(content);
            LineScan::Complete {
                line,
                consumed: newline + 1,
            }
        }
        None if buf.len() >= max_line_bytes => LineScan::TooLong,
        None => LineScan::Incomplete,
    }
}

/// The space-separated tokens of a line, borrowed from it.
#[derive(Clone, Debug)]
pub(crate) struct Tokens<'a> {
    rest: &'a [u8],
}

impl<'a> Tokens<'a> {
    /// Tokens of `line`.
    pub(crate) fn new(line: &'a [u8]) -> Self {
        Tokens { rest: line }
    }

    /// What has not been tokenized yet, without leading or trailing spaces.
    pub(crate) fn remainder(&self) -> &'a [u8] {
        trim_spaces(self.rest)
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|&byte| byte != b' ')?;
        let rest = &self.rest[start..];
        let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        let (token, after) = rest.split_at(end);
        self.rest = after;
        Some(token)
    }
}

/// `bytes` without leading and trailing spaces.
pub(crate) fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&byte| byte != b' ').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&byte| byte != b' ')
        .map_or(start, |last| last + 1);
    &bytes[start..end.max(start)]
}

/// The last token of `line`, if any.
pub(crate) fn last_token(line: &[u8]) -> Option<&[u8]> {
    let line = trim_spaces(line);
    if line.is_empty() {
        return None;
    }
    let start = memchr::memrchr(b' ', line).map_or(0, |space| space + 1);
    Some(&line[start..])
}

/// Whether a classic command line ends in `noreply`, the way memcached's
/// `set_noreply_maybe` decides it: by its last token alone.
pub(crate) fn ends_with_noreply(line: &[u8]) -> bool {
    last_token(line) == Some(b"noreply".as_slice())
}

/// A key memcached's protocol allows: 1 to `max_bytes` bytes with no control
/// characters and no whitespace (protocol.txt, "Keys"). Bytes of 0x80 and
/// above are allowed, so UTF-8 keys work.
pub(crate) fn is_valid_key(key: &[u8], max_bytes: usize) -> bool {
    !key.is_empty() && key.len() <= max_bytes && key.iter().all(|&byte| byte > b' ' && byte != 0x7f)
}

/// A decimal unsigned number of digits only: no sign, no spaces, no
/// overflow (mcmc's `mcmc_toktou64`).
pub(crate) fn parse_u64(token: &[u8]) -> Option<u64> {
    if token.is_empty() {
        return None;
    }
    token.iter().try_fold(0u64, |sum, &byte| {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        sum.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A decimal `u32` (memcached's client flags, `verbosity` level).
pub(crate) fn parse_u32(token: &[u8]) -> Option<u32> {
    parse_u64(token).and_then(|value| u32::try_from(value).ok())
}

/// A decimal signed number: an optional `-`, then digits only.
pub(crate) fn parse_i64(token: &[u8]) -> Option<i64> {
    let (negative, digits) = match token.split_first() {
        Some((b'-', digits)) => (true, digits),
        _ => (false, token),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulate towards the sign so that i64::MIN parses.
    digits.iter().try_fold(0i64, |sum, &byte| {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        let shifted = sum.checked_mul(10)?;
        if negative {
            shifted.checked_sub(i64::from(digit))
        } else {
            shifted.checked_add(i64::from(digit))
        }
    })
}

/// Appends `value` in decimal, without allocating beyond `out`'s growth.
pub(crate) fn push_u64(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        // `rest % 10` is below 10, so the cast cannot truncate.
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Appends `value` in decimal with a leading `-` when negative.
pub(crate) fn push_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    push_u64(out, value.unsigned_abs());
}

/// Appends `usize` in decimal.
pub(crate) fn push_usize(out: &mut Vec<u8>, value: usize) {
    // usize is at most 64 bits on every platform Rust supports.
    push_u64(out, value as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(line: &[u8]) -> Vec<&[u8]> {
        Tokens::new(line).collect()
    }

    #[test]
    fn scan_line_accepts_crlf_and_bare_newline() {
        assert_eq!(
            scan_line(b"get a\r\nrest", 100),
            LineScan::Complete {
                line: b"get a",
                consumed: 7
            }
        );
        assert_eq!(
            scan_line(b"get a\nrest", 100),
            LineScan::Complete {
                line: b"get a",
                consumed: 6
            }
        );
        assert_eq!(scan_line(b"get a\r", 100), LineScan::Incomplete);
        assert_eq!(scan_line(b"", 100), LineScan::Incomplete);
    }

    #[test]
    fn scan_line_proves_too_long_at_the_limit() {
        // A line of exactly the limit, terminator included, is fine.
        assert_eq!(
            scan_line(b"abc\r\n", 5),
            LineScan::Complete {
                line: b"abc",
                consumed: 5
            }
        );
        assert_eq!(scan_line(b"abcd\r\n", 5), LineScan::TooLong);
        assert_eq!(scan_line(b"abcd", 5), LineScan::Incomplete);
        assert_eq!(scan_line(b"abcde", 5), LineScan::TooLong);
    }

    #[test]
    fn tokens_split_on_runs_of_spaces_only() {
        assert_eq!(tokens(b"  get  a\tb  c "), vec![&b"get"[..], b"a\tb", b"c"]);
        assert!(tokens(b"   ").is_empty());
        let mut iter = Tokens::new(b"mg key  v t  ");
        assert_eq!(iter.next(), Some(&b"mg"[..]));
        assert_eq!(iter.next(), Some(&b"key"[..]));
        assert_eq!(iter.remainder(), b"v t");
    }

    #[test]
    fn last_token_and_noreply() {
        assert_eq!(last_token(b"set a 0 0 1 noreply  "), Some(&b"noreply"[..]));
        assert_eq!(last_token(b"   "), None);
        assert_eq!(last_token(b"one"), Some(&b"one"[..]));
        assert!(ends_with_noreply(b"delete a noreply"));
        assert!(!ends_with_noreply(b"delete a noreplyx"));
    }

    #[test]
    fn keys_refuse_control_characters_and_length() {
        assert!(is_valid_key(b"user:42", 250));
        assert!(is_valid_key("ключ".as_bytes(), 250));
        assert!(!is_valid_key(b"", 250));
        assert!(!is_valid_key(b"a\tb", 250));
        assert!(!is_valid_key(b"a\rb", 250));
        assert!(!is_valid_key(b"a\x7fb", 250));
        assert!(is_valid_key(&[b'k'; 250], 250));
        assert!(!is_valid_key(&[b'k'; 251], 250));
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"1a"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"--1"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
    }

    #[test]
    fn numbers_format_like_display() {
        for value in [0u64, 1, 9, 10, 99, 100, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, value);
            assert_eq!(out, value.to_string().into_bytes());
        }
        for value in [0i64, -1, 7, -100, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            push_i64(&mut out, value);
            assert_eq!(out, value.to_string().into_bytes());
        }
    }
}
