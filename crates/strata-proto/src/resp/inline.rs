//! Inline commands: `SET key "a value"\r\n`, as typed into telnet.
//!
//! The line is split as Redis's `sdssplitargs` splits it:
//!
//! - Blanks (space, `\t`, `\n`, `\v`, `\f`, `\r`) separate arguments; an
//!   unquoted argument ends at a space, `\t`, `\n` or `\r`.
//! - A NUL byte ends the line (Redis handles the line as a C string).
//! - `"..."` may hold the escapes `\n \r \t \b \a`, `\xHH` (two hex digits)
//!   and `\` before any other byte, which stands for that byte.
//! - `'...'` holds bytes literally, except that `\'` is a quote.
//! - A quote may start mid-argument (`a"b c"` is `ab c`), but a closing
//!   quote must be followed by a blank or the end of the line; that and an
//!   unterminated quote are [`ParseError::UnbalancedQuotes`].
//!
//! Lines without quotes (nearly all of them) are split in place, so their
//! arguments are ranges of the input; a line with quotes is unescaped into a
//! scratch buffer that the caller reuses.

use super::error::ParseError;

/// Where one argument lies: `start..end` in the request or in the scratch
/// buffer, relative to the request's first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

/// C's `isspace` in the C locale.
#[inline]
fn is_blank(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Bytes that end an unquoted argument (NUL is handled by truncation).
#[inline]
fn ends_token(byte: u8) -> bool {
    matches!(byte, b' ' | b'\n' | b'\r' | b'\t')
}

/// What [`split`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Split {
    /// The spans are ranges of the line.
    InPlace,
    /// The spans are ranges of the scratch buffer.
    Scratch,
}

/// Splits `line` (without its line ending) into `spans`, which must be
/// empty. `line` must be shorter than `u32::MAX` bytes.
pub(crate) fn split(line: &[u8], spans: &mut Vec<Span>, scratch: &mut Vec<u8>) -> Result<Split, ParseError> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    if line.iter().any(|&b| b == b'"' || b == b'\'') {
        scratch.clear();
        split_quoted(line, spans, scratch)?;
        Ok(Split::Scratch)
    } else {
        split_plain(line, spans);
        Ok(Split::InPlace)
    }
}

/// The fast path: no quotes, so every argument is a run of the line.
fn split_plain(line: &[u8], spans: &mut Vec<Span>) {
    let mut pos = 0;
    let len = line.len();
    loop {
        while pos < len && is_blank(line[pos]) {
            pos += 1;
        }
        if pos == len {
            return;
        }
        let start = pos;
        while pos < len && !ends_token(line[pos]) {
            pos += 1;
        }
        spans.push(Span {
            start: start as u32,
            end: pos as u32,
        });
        // Step over the terminator, as sdssplitargs does.
        if pos < len {
            pos += 1;
        }
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// A line-by-line port of `sdssplitargs`, unescaping into `scratch`.
fn split_quoted(line: &[u8], spans: &mut Vec<Span>, scratch: &mut Vec<u8>) -> Result<(), ParseError> {
    // The C code reads `*(p+k)` past the end as the terminating NUL.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut p = 0;
    loop {
        while at(p) != 0 && is_blank(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Ok(());
        }
        let start = scratch.len();
        let (mut in_double, mut in_single, mut done) = (false, false, false);
        while !done {
            let c = at(p);
            if in_double {
                if let (b'\\', b'x', Some(high), Some(low)) = (c, at(p + 1), hex_value(at(p + 2)), hex_value(at(p + 3)))
                {
                    scratch.push(high * 16 + low);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    scratch.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => b'\x08',
                        b'a' => b'\x07',
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_blank(at(p + 1)) {
                        return Err(ParseError::UnbalancedQuotes);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(ParseError::UnbalancedQuotes);
                } else {
                    scratch.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    scratch.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_blank(at(p + 1)) {
                        return Err(ParseError::UnbalancedQuotes);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(ParseError::UnbalancedQuotes);
                } else {
                    scratch.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => scratch.push(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        spans.push(Span {
            start: start as u32,
            end: scratch.len() as u32,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(line: &[u8]) -> Result<Vec<Vec<u8>>, ParseError> {
        let mut spans = Vec::new();
        let mut scratch = Vec::new();
        let source = split(line, &mut spans, &mut scratch)?;
        let from: &[u8] = match source {
            Split::InPlace => line,
            Split::Scratch => &scratch,
        };
        Ok(spans
            .iter()
            .map(|s| from[s.start as usize..s.end as usize].to_vec())
            .collect())
    }

    fn ok(line: &str) -> Vec<String> {
        args(line.as_bytes())
            .expect("valid line")
            .into_iter()
            .map(|a| String::from_utf8(a).expect("utf8"))
            .collect()
    }

    #[test]
    fn splits_plain_arguments() {
        assert_eq!(ok("SET  key\tvalue "), ["SET", "key", "value"]);
        assert_eq!(ok(""), Vec::<String>::new());
        assert_eq!(ok(" \x0b\x0c "), Vec::<String>::new());
        // \v and \f are blanks between arguments but not inside one.
        assert_eq!(ok("a\x0bb \x0bc"), ["a\x0bb", "c"]);
        assert_eq!(ok("get a\0ignored"), ["get", "a"]);
    }

    #[test]
    fn unescapes_double_quotes() {
        assert_eq!(
            ok(r#"set "a b" "\n\r\t\b\a\\\"\x41\x4a\q""#),
            ["set", "a b", "\n\r\t\x08\x07\\\"AJq"]
        );
        assert_eq!(ok(r#""\xZZ" "\x4""#), ["xZZ", "x4"]);
        assert_eq!(ok(r#"a"b c"  "" x"#), ["ab c", "", "x"]);
        assert_eq!(
            args(br#""\xff\x00""#).expect("valid"),
            [vec![0xff, 0x00]],
            "hex escapes give raw bytes"
        );
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(ok(r#"'a\'b' 'c\nd' 'x"y'"#), ["a'b", "c\\nd", "x\"y"]);
    }

    #[test]
    fn unbalanced_quotes_are_errors() {
        for line in [
            &br#"set "a"#[..],
            br#"set 'a"#,
            br#""a"b"#,
            br#"'a'b"#,
            br#""a\"#,
            br#"set """test-key""" test-value"#,
            b"\"a\0\"",
        ] {
            assert_eq!(
                args(line),
                Err(ParseError::UnbalancedQuotes),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    proptest! {
        /// Without quotes, the fast path agrees with the port of sdssplitargs.
        #[test]
        fn plain_split_matches_port(line in proptest::collection::vec(
            prop_oneof![Just(b' '), Just(b'\t'), Just(b'\r'), Just(b'\n'), Just(b'\x0b'), Just(b'\x0c'), Just(b'a'), Just(b'b'), Just(b'\\')],
            0..40,
        )) {
            let mut fast = Vec::new();
            split_plain(&line, &mut fast);
            let mut slow = Vec::new();
            let mut scratch = Vec::new();
            split_quoted(&line, &mut slow, &mut scratch).expect("no quotes");
            let fast: Vec<&[u8]> = fast.iter().map(|s| &line[s.start as usize..s.end as usize]).collect();
            let slow: Vec<&[u8]> = slow.iter().map(|s| &scratch[s.start as usize..s.end as usize]).collect();
            prop_assert_eq!(fast, slow);
        }
    }
}
