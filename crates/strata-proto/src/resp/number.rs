//! Numbers on the wire: Redis's strict integer syntax, and integers and
//! doubles formatted straight into the output buffer without allocating.
//!
//! Integers are parsed the way Redis's `string2ll` parses them (a request's
//! `*` count and `$` lengths go through it): an optional `-`, then either a
//! lone `0` or a digit `1`-`9` followed by digits; no `+`, no leading zeros,
//! no spaces, at most 20 bytes, and the value must fit in an `i64`.
//!
//! Doubles are laid out as Redis 7.2+ lays them out (`d2string`): `inf`,
//! `-inf`, `nan`, `0`/`-0`, integral values within ±2^62 as integers, and
//! everything else with the shortest digits that round-trip, placed by the
//! rules of Redis's `fpconv_dtoa` (plain, decimal, or `1.5e+20` scientific).
//! Redis finds those digits with Grisu2, which in rare cases emits one more
//! digit than the shortest; both forms parse back to the same `f64`.

use std::fmt::Write as _;

/// Longest text [`write_double`] produces: a sign, 17 digits, a point and an
/// exponent fit in well under this.
pub(crate) const MAX_DOUBLE_CHARS: usize = 40;

/// Parses `bytes` as Redis's `string2ll` does; `None` if it is not a valid
/// integer in that strict form or does not fit an `i64`. Every Redis
/// integer argument (counts, TTLs, INCRBY amounts) is read with this:
/// no `+`, no leading zeros, no `-0`, no spaces.
pub fn parse_strict_i64(bytes: &[u8]) -> Option<i64> {
    // Redis refuses empty strings and strings of LONG_STR_SIZE (21) or more.
    if bytes.is_empty() || bytes.len() >= 21 {
        return None;
    }
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut value = u64::from(first - b'0');
    for &byte in rest {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
    }
    if negative {
        // -(i64::MIN) is one more than i64::MAX.
        if value > i64::MAX as u64 + 1 {
            return None;
        }
        Some((value as i64).wrapping_neg())
    } else {
        i64::try_from(value).ok()
    }
}

/// Parses a signed decimal integer as the reply parser accepts it: an
/// optional `+` or `-`, then one or more digits (leading zeros allowed).
pub(crate) fn parse_lenient_i64(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 {
            return None;
        }
        Some((value as i64).wrapping_neg())
    } else {
        i64::try_from(value).ok()
    }
}

/// Two ASCII digits for every value below 100, so that formatting emits two
/// digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Formats `value` into the tail of `buf` and returns the index where the
/// digits start.
#[inline]
fn format_u64(mut value: u64, buf: &mut [u8; 20]) -> usize {
    let mut pos = buf.len();
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if value >= 10 {
        let pair = value as usize * 2;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        pos -= 1;
        buf[pos] = b'0' + value as u8;
    }
    pos
}

/// Appends the decimal digits of `value`.
#[inline]
pub(crate) fn write_u64(out: &mut Vec<u8>, value: u64) {
    let mut buf = [0u8; 20];
    let start = format_u64(value, &mut buf);
    out.extend_from_slice(&buf[start..]);
}

/// Appends `value` in decimal, with a `-` if negative.
#[inline]
pub(crate) fn write_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    write_u64(out, value.unsigned_abs());
}

/// Appends `prefix`, `value` in decimal and CRLF: a RESP header or integer
/// line such as `$5\r\n` or `:-3\r\n`, in one copy.
#[inline]
pub(crate) fn write_header(out: &mut Vec<u8>, prefix: u8, value: u64) {
    // Small counts and lengths dominate: one digit is a 4-byte header.
    if value < 10 {
        out.extend_from_slice(&[prefix, b'0' + value as u8, b'\r', b'\n']);
        return;
    }
    let mut buf = [0u8; 24];
    let mut digits = [0u8; 20];
    let start = format_u64(value, &mut digits);
    let len = digits.len() - start;
    buf[0] = prefix;
    buf[1..1 + len].copy_from_slice(&digits[start..]);
    buf[1 + len] = b'\r';
    buf[2 + len] = b'\n';
    out.extend_from_slice(&buf[..len + 3]);
}

/// Appends `value` formatted as Redis formats doubles in replies (see the
/// module docs). At most [`MAX_DOUBLE_CHARS`] bytes, never allocates
/// beyond growing `out`.
pub fn write_double(out: &mut Vec<u8>, value: f64) {
    let mut buf = [0u8; MAX_DOUBLE_CHARS];
    let len = format_double(value, &mut buf);
    out.extend_from_slice(&buf[..len]);
}

/// A fixed buffer that `core::fmt` can write into.
struct StackBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl std::fmt::Write for StackBuf<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        let dest = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dest.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Formats `value` into `out` and returns the length used.
pub(crate) fn format_double(value: f64, out: &mut [u8; MAX_DOUBLE_CHARS]) -> usize {
    let put = |out: &mut [u8; MAX_DOUBLE_CHARS], text: &[u8]| {
        out[..text.len()].copy_from_slice(text);
        text.len()
    };
    if value.is_nan() {
        return put(out, b"nan");
    }
    if value.is_infinite() {
        return put(out, if value < 0.0 { b"-inf" } else { b"inf" });
    }
    if value == 0.0 {
        return put(out, if value.is_sign_negative() { b"-0" } else { b"0" });
    }
    // Redis's double2ll: integral values within ±(LLONG_MAX/2) print as integers.
    const INTEGRAL_LIMIT: f64 = (i64::MAX / 2) as f64;
    if (-INTEGRAL_LIMIT..=INTEGRAL_LIMIT).contains(&value) && value.fract() == 0.0 {
        let mut digits = [0u8; 20];
        let start = format_u64((value as i64).unsigned_abs(), &mut digits);
        let mut len = 0;
        if value < 0.0 {
            out[0] = b'-';
            len = 1;
        }
        let digit_len = digits.len() - start;
        out[len..len + digit_len].copy_from_slice(&digits[start..]);
        return len + digit_len;
    }

    // Shortest round-trip digits from core's formatter, as `d.ddde[-]x`.
    let mut sci = [0u8; MAX_DOUBLE_CHARS];
    let mut writer = StackBuf { buf: &mut sci, len: 0 };
    if write!(writer, "{:e}", value.abs()).is_err() {
        // Cannot happen: the longest `{:e}` of an f64 is about 24 bytes.
        return put(out, b"nan");
    }
    let sci_len = writer.len;
    let text = &sci[..sci_len];
    let e_pos = text.iter().position(|&b| b == b'e').unwrap_or(text.len());
    let mut digits = [0u8; 20];
    let mut ndigits = 0usize;
    for &b in &text[..e_pos] {
        if b.is_ascii_digit() && ndigits < digits.len() {
            digits[ndigits] = b;
            ndigits += 1;
        }
    }
    let exponent = text
        .get(e_pos + 1..)
        .and_then(|e| std::str::from_utf8(e).ok())
        .and_then(|e| e.parse::<i32>().ok())
        .unwrap_or(0);
    // fpconv's K: value = digits * 10^K.
    let k = exponent - (ndigits as i32 - 1);
    let mut len = 0;
    if value < 0.0 {
        out[0] = b'-';
        len = 1;
    }
    len + emit_digits(&digits[..ndigits], k, value < 0.0, &mut out[len..])
}

/// Redis's `fpconv` `emit_digits`: lays out `digits * 10^k`.
fn emit_digits(digits: &[u8], k: i32, negative: bool, dest: &mut [u8]) -> usize {
    let ndigits = digits.len() as i32;
    let exp = (k + ndigits - 1).abs();

    // Plain integer.
    if k >= 0 && exp < ndigits + 7 {
        let n = digits.len();
        dest[..n].copy_from_slice(digits);
        let zeros = k as usize;
        dest[n..n + zeros].fill(b'0');
        return n + zeros;
    }

    // Decimal without scientific notation.
    if k < 0 && (k > -7 || exp < 4) {
        let offset = ndigits - k.abs();
        if offset <= 0 {
            let zeros = (-offset) as usize;
            dest[0] = b'0';
            dest[1] = b'.';
            dest[2..2 + zeros].fill(b'0');
            dest[2 + zeros..2 + zeros + digits.len()].copy_from_slice(digits);
            return digits.len() + 2 + zeros;
        }
        let offset = offset as usize;
        dest[..offset].copy_from_slice(&digits[..offset]);
        dest[offset] = b'.';
        dest[offset + 1..digits.len() + 1].copy_from_slice(&digits[offset..]);
        return digits.len() + 1;
    }

    // Scientific notation.
    let ndigits = ndigits.min(18 - i32::from(negative));
    let digits = &digits[..ndigits as usize];
    let mut idx = 0;
    dest[idx] = digits[0];
    idx += 1;
    if digits.len() > 1 {
        dest[idx] = b'.';
        idx += 1;
        dest[idx..idx + digits.len() - 1].copy_from_slice(&digits[1..]);
        idx += digits.len() - 1;
    }
    dest[idx] = b'e';
    dest[idx + 1] = if k + ndigits - 1 < 0 { b'-' } else { b'+' };
    idx += 2;
    let mut exp = exp;
    let mut cent = 0;
    if exp > 99 {
        cent = exp / 100;
        dest[idx] = b'0' + cent as u8;
        idx += 1;
        exp -= cent * 100;
    }
    if exp > 9 {
        let dec = exp / 10;
        dest[idx] = b'0' + dec as u8;
        idx += 1;
        exp -= dec * 10;
    } else if cent != 0 {
        dest[idx] = b'0';
        idx += 1;
    }
    dest[idx] = b'0' + (exp % 10) as u8;
    idx + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(value: f64) -> String {
        let mut out = Vec::new();
        write_double(&mut out, value);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn strict_integers_follow_string2ll() {
        assert_eq!(parse_strict_i64(b"0"), Some(0));
        assert_eq!(parse_strict_i64(b"12"), Some(12));
        assert_eq!(parse_strict_i64(b"-1"), Some(-1));
        assert_eq!(parse_strict_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_strict_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"000000000000000000001",
            b"18446744073709551616",
        ] {
            assert_eq!(parse_strict_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn lenient_integers() {
        assert_eq!(parse_lenient_i64(b"+5"), Some(5));
        assert_eq!(parse_lenient_i64(b"007"), Some(7));
        assert_eq!(parse_lenient_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_lenient_i64(b"9223372036854775808"), None);
        assert_eq!(parse_lenient_i64(b"-"), None);
        assert_eq!(parse_lenient_i64(b"1.5"), None);
    }

    #[test]
    fn integers_format_like_ll2string() {
        for value in [0i64, 1, 9, 10, 99, 100, 12345, -1, -100, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_i64(&mut out, value);
            assert_eq!(out, value.to_string().as_bytes());
        }
        let mut out = Vec::new();
        write_header(&mut out, b'$', 7);
        write_header(&mut out, b'*', 1234567);
        write_header(&mut out, b':', u64::MAX);
        assert_eq!(out, b"$7\r\n*1234567\r\n:18446744073709551615\r\n");
    }

    #[test]
    fn doubles_format_like_redis() {
        let cases: &[(f64, &str)] = &[
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-42.0, "-42"),
            (1.5, "1.5"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (2.71, "2.71"),
            (0.001, "0.001"),
            (1e-7, "1e-7"),
            (1.5e-10, "1.5e-10"),
            (1e19, "1e+19"),
            (1e100, "1e+100"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (4611686018427387904.0, "4611686018427387904"),
            (12345678901234567890.0, "12345678901234567000"),
            (1.2345678901234567e30, "1.2345678901234567e+30"),
            (1234567.1234567891, "1.2345671234567892e+6"),
            (123.456, "123.456"),
            (0.000123, "0.000123"),
        ];
        for &(value, expected) in cases {
            assert_eq!(double(value), expected, "{value:e}");
        }
    }

    #[test]
    fn doubles_round_trip() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = f64::from_bits(state);
            if value.is_nan() {
                continue;
            }
            let text = double(value);
            assert!(text.len() <= MAX_DOUBLE_CHARS);
            assert_eq!(text.parse::<f64>().ok(), Some(value), "{text}");
        }
    }
}
