//! Fuzzes the RESP request parser: arbitrary bytes must never panic, never
//! report consuming more than they hold, and must give the same requests
//! and the same final error whether parsed whole or fed in pieces.
//!
//! The first input byte chooses the limits (default or tiny) and the size of
//! the pieces; the rest is the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_proto::resp::{Args, Limits, ParseError, parse_request};

/// Requests parsed from a stream, and the error that ended it.
type Session = (Vec<Vec<Vec<u8>>>, Option<ParseError>);

/// A server's read loop over `pieces`, compacting its buffer every other read.
fn serve(pieces: &[&[u8]], limits: &Limits) -> Session {
    let mut buf = Vec::new();
    let mut pos = 0;
    let mut args = Args::new();
    let mut requests = Vec::new();
    for (read, piece) in pieces.iter().enumerate() {
        if read % 2 == 1 {
            buf.drain(..pos);
            pos = 0;
        }
        buf.extend_from_slice(piece);
        loop {
            let unread = &buf[pos..];
            match parse_request(unread, limits, &mut args) {
                Ok(Some(used)) => {
                    assert!(used > 0 && used <= unread.len());
                    if !args.is_empty() {
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
        }
    };
    let whole = serve(&[stream], &limits);
    let piece_len = usize::from(control >> 1) % 16 + 1;
    let pieces: Vec<&[u8]> = stream.chunks(piece_len).collect();
    assert_eq!(whole, serve(&pieces, &limits), "pieces of {piece_len}");
});
