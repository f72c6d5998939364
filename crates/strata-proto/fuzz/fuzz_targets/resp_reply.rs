//! Fuzzes the RESP reply parser and encoder: arbitrary bytes must never
//! panic or report consuming more than they hold; a reply that parses must
//! be incomplete one byte short, and must re-encode (RESP3 and RESP2) into
//! bytes that parse back and encode identically.
//!
//! The first input byte chooses the depth limit; the rest is the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_proto::resp::{Encoder, Protocol, Reply, ReplyLimits, parse_reply};

fn encode(reply: &Reply, protocol: Protocol) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(&mut out, protocol).reply(reply);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let limits = ReplyLimits {
        max_depth: usize::from(control % 12),
        max_bulk_bytes: 1 << 16,
        ..ReplyLimits::default()
    };
    let Ok(Some((reply, used))) = parse_reply(stream, &limits) else {
        return;
    };
    assert!(used > 0 && used <= stream.len());
    assert_eq!(parse_reply(&stream[..used - 1], &limits), Ok(None));

    let unlimited = ReplyLimits::default();
    for protocol in [Protocol::Resp3, Protocol::Resp2] {
        let once = encode(&reply, protocol);
        let (again, again_used) = parse_reply(&once, &unlimited)
            .expect("an encoded reply parses")
            .expect("an encoded reply is complete");
        assert_eq!(again_used, once.len());
        assert_eq!(encode(&again, protocol), once);
    }
});
