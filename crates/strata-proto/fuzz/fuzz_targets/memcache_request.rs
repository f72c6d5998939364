//! Fuzzes the memcached request parser as a server drives it.
//!
//! The first byte picks the limits (defaults or tiny ones, to reach every
//! limit) and a cut point; the rest is the bytes a client sent. Checked:
//! no panic; every outcome uses at least one byte and no more than there
//! are; a decision made on a prefix is the decision made on the whole
//! buffer (so reading more never changes a past answer); a parsed request
//! re-encodes to bytes that parse to the same request (allowing the one
//! byte a bare `\n` grows by). A retrieval streamed past the line limit
//! hands out only valid keys, leaves at most one key's bytes unused, and
//! on a prefix hands out a prefix of the same keys (the same keys and end,
//! once it ends the reply).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_proto::memcache::{Discard, GetStream, Limits, Parsed, ReplyKind, encode_request, parse_request};

const TINY: Limits = Limits {
    max_key_bytes: 8,
    max_value_bytes: 16,
    max_line_bytes: 48,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let limits = if selector & 1 == 0 { Limits::default() } else { TINY };
    let mut rest = input;
    let mut discard = Discard::new(0);
    loop {
        let dropped = discard.take(rest.len());
        rest = &rest[dropped..];
        if !discard.is_done() {
            break;
        }
        let whole = parse_request(rest, &limits);
        // The same call on a prefix either waits for more or decides the same.
        let cut = usize::from(selector >> 1) % (rest.len() + 1);
        let prefix = parse_request(&rest[..cut], &limits);
        if prefix != Ok(Parsed::Incomplete) {
            assert_eq!(prefix, whole, "prefix of {cut} bytes decided differently");
        }
        let consumed = match whole {
            Err(_) | Ok(Parsed::Incomplete) => break,
            Ok(Parsed::Request { request, consumed }) => {
                let _ = ReplyKind::of(&request);
                let mut again = Vec::new();
                encode_request(&mut again, &request);
                // Canonical form collapses spaces and numbers but writes
                // `\r\n` where a bare `\n` may have come: one byte more.
                let relaxed = Limits {
                    max_line_bytes: limits.max_line_bytes + 1,
                    ..limits
                };
                match parse_request(&again, &relaxed) {
                    Ok(Parsed::Request {
                        request: reparsed,
                        consumed: used,
                    }) => {
                        assert_eq!(used, again.len());
                        assert_eq!(reparsed, request);
                    }
                    other => panic!("{request:?} re-encoded as {again:?}, which parsed as {other:?}"),
                }
                consumed
            }
            Ok(Parsed::Reject { error, consumed, .. }) => {
                assert!(!error.reply_line().is_empty());
                consumed
            }
            Ok(Parsed::Swallow { consumed, swallow, .. }) => {
                assert!(swallow >= 2);
                discard = Discard::new(swallow);
                consumed
            }
            Ok(Parsed::LongGet { stream, consumed }) => {
                assert!(consumed > 0 && consumed < rest.len());
                match stream_keys(stream, &rest[consumed..], cut.saturating_sub(consumed), &limits) {
                    Some(used) => consumed + used,
                    // The line goes on past the input.
                    None => break,
                }
            }
        };
        assert!(
            consumed > 0 && consumed <= rest.len(),
            "consumed {consumed} of {}",
            rest.len()
        );
        rest = &rest[consumed..];
    }
});

/// Runs `stream` over `buf` as a server would with everything buffered,
/// checking it against a run over the first `cut` bytes; the bytes the
/// line used, or `None` if it has not ended.
fn stream_keys(mut stream: GetStream, buf: &[u8], cut: usize, limits: &Limits) -> Option<usize> {
    let mut early = stream.clone();
    let prefix = early.parse(&buf[..cut.min(buf.len())]);
    let chunk = stream.parse(buf);
    assert!(chunk.consumed <= buf.len());
    for key in chunk.keys.iter() {
        assert!(!key.is_empty() && key.len() <= limits.max_key_bytes, "{key:?}");
        assert!(key.iter().all(|&byte| byte > b' ' && byte != 0x7f), "{key:?}");
    }
    let keys: Vec<&[u8]> = chunk.keys.iter().collect();
    let early_keys: Vec<&[u8]> = prefix.keys.iter().collect();
    assert!(keys.starts_with(&early_keys), "a prefix handed out other keys");
    if prefix.end.is_some() {
        assert_eq!(
            (early_keys, prefix.end),
            (keys, chunk.end),
            "a prefix ended the reply differently"
        );
    }
    if stream.is_done() {
        Some(chunk.consumed)
    } else {
        assert!(
            buf.len() - chunk.consumed <= limits.max_key_bytes + 1,
            "held more than a key"
        );
        None
    }
}
