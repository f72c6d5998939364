//! Fuzzes the memcached response decoder as a client drives it.
//!
//! The first byte picks the kind of reply expected and the limits; the
//! second picks a chunk size. Checked: no panic; decoding the bytes in
//! chunks gives the same responses and the same final error as decoding
//! them at once; every response re-encodes to bytes that decode to the same
//! response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_proto::memcache::{ReplyKind, Response, ResponseDecoder, ResponseError, ResponseLimits, encode_response};

const KINDS: [ReplyKind; 9] = [
    ReplyKind::Retrieval,
    ReplyKind::Storage,
    ReplyKind::Delete,
    ReplyKind::Arithmetic,
    ReplyKind::Touch,
    ReplyKind::Ok,
    ReplyKind::Version,
    ReplyKind::Stats,
    ReplyKind::Meta,
];

const TINY: ResponseLimits = ResponseLimits {
    max_line_bytes: 40,
    max_value_bytes: 8,
    max_items: 3,
};

/// Decodes replies of `kind` from `input`, fed `chunk` bytes at a time;
/// stops at the first error.
fn decode(
    input: &[u8],
    kind: ReplyKind,
    limits: ResponseLimits,
    chunk: usize,
) -> (Vec<Response>, Option<ResponseError>) {
    let mut decoder = ResponseDecoder::new(kind, limits);
    let mut buffer = Vec::new();
    let mut responses = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buffer.extend_from_slice(piece);
        loop {
            match decoder.decode(&buffer) {
                Err(error) => return (responses, Some(error)),
                Ok(progress) => {
                    assert!(progress.consumed <= buffer.len());
                    buffer.drain(..progress.consumed);
                    match progress.response {
                        Some(response) => responses.push(response),
                        None => break,
                    }
                }
            }
        }
    }
    (responses, None)
}

fuzz_target!(|data: &[u8]| {
    let [selector, chunk, input @ ..] = data else { return };
    let kind = KINDS[usize::from(*selector) % KINDS.len()];
    let limits = if selector & 0x80 == 0 {
        ResponseLimits::default()
    } else {
        TINY
    };
    let (at_once, error) = decode(input, kind, limits, input.len());
    let (chunked, chunked_error) = decode(input, kind, limits, usize::from(*chunk));
    assert_eq!(chunked, at_once);
    assert_eq!(chunked_error, error);
    for response in at_once {
        let mut again = Vec::new();
        encode_response(&mut again, &response);
        let mut fresh = ResponseDecoder::new(kind, ResponseLimits::default());
        match fresh.decode(&again) {
            Ok(progress) => {
                assert_eq!(progress.consumed, again.len());
                assert_eq!(progress.response.as_ref(), Some(&response));
            }
            Err(error) => panic!("{response:?} re-encoded as {again:?}: {error}"),
        }
    }
});
