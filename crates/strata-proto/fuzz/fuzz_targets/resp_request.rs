//! Fuzzes the RESP request parser: arbitrary bytes must never panic, never
//! report consuming more than they hold, and must give the same requests
//! and the same final error whether parsed whole or fed in pieces.
//!
//! The first input byte chooses the limits (default or tiny; the tiny ones
//! discard bulks over 16 bytes unbuffered, through `Swallow`) and the size
//! of the pieces; the rest is the stream. A request with a discarded bulk
//! is recorded with an empty marker in its place and the arguments after
//! it that were kept.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_proto::resp::{Args, Limits, ParseError, Swallow, parse_request};

/// Requests parsed from a stream, and the error that ended it.
type Session = (Vec<Vec<Vec<u8>>>, Option<ParseError>);

/// A server's read loop over `pieces`, compacting its buffer every other read.
fn serve(pieces: &[&[u8]], limits: &Limits) -> Session {
    let mut buf = Vec::new();
    let mut pos = 0;
    let mut args = Args::new();
    let mut requests: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut swallowing: Option<(Vec<Vec<u8>>, Swallow)> = None;
    for (read, piece) in pieces.iter().enumerate() {
        if read % 2 == 1 {
            buf.drain(..pos);
            pos = 0;
        }
        buf.extend_from_slice(piece);
        loop {
            let unread = &buf[pos..];
            if let Some((_, swallow)) = &mut swallowing {
                match swallow.feed(unread, limits) {
                    Ok(used) => {
                        assert!(used <= unread.len());
                        pos += used;
                    }
                    Err(error) => return (requests, Some(error)),
                }
                if !swallow.is_done() {
                    break;
                }
                if let Some((mut request, swallow)) = swallowing.take() {
                    request.push(b"<discarded>".to_vec());
                    request.extend(swallow.into_kept().into_iter().map(Option::unwrap_or_default));
                    requests.push(request);
                }
                continue;
            }
            match parse_request(unread, limits, &mut args) {
                Ok(Some(used)) => {
                    assert!(used > 0 && used <= unread.len());
                    if let Some(oversized) = args.oversized() {
                        assert!(oversized.len > limits.max_buffered_bulk);
                        let prefix = args.iter(unread).map(<[u8]>::to_vec).collect();
                        swallowing = Some((prefix, Swallow::new(oversized, 8)));
                    } else if !args.is_empty() {
                        requests.push(args.iter(unread).map(<[u8]>::to_vec).collect());
                    }
                    pos += used;
                }
                Ok(None) => break,
                Err(error) => return (requests, Some(error)),
            }
        }
    }
    (requests, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let limits = if control & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_args: 8,
            max_bulk_bytes: 64,
            max_inline_bytes: 32,
            max_request_bytes: 200,
            max_buffered_bulk: 16,
        }
    };
    let whole = serve(&[stream], &limits);
    let piece_len = usize::from(control >> 1) % 16 + 1;
    let pieces: Vec<&[u8]> = stream.chunks(piece_len).collect();
    assert_eq!(whole, serve(&pieces, &limits), "pieces of {piece_len}");
});
