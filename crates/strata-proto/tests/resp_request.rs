//! Property tests of the server-side RESP request parser, through the public
//! API only: commands encoded by `encode_command` (or written inline) come
//! back exactly however the bytes are split into reads; arbitrary bytes
//! never panic and give the same outcome however they are split; limits
//! fail as soon as a header proves them exceeded.

use proptest::prelude::*;
use strata_proto::resp::{Args, Limits, ParseError, encode_command, parse_request};

type Command = Vec<Vec<u8>>;

/// What a connection made of a byte stream: the non-empty requests it
/// parsed, and the error that ended it, if any.
#[derive(Debug, PartialEq)]
struct Session {
    requests: Vec<Command>,
    error: Option<ParseError>,
}

/// Feeds `chunks` to one `Args` as a server's read loop would, dropping
/// consumed bytes from the front of its buffer whenever `compact` says so.
fn serve<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, limits: &Limits, compact: impl Fn(usize) -> bool) -> Session {
    let mut buf = Vec::new();
    let mut pos = 0;
    let mut args = Args::new();
    let mut requests = Vec::new();
    for (read, chunk) in chunks.into_iter().enumerate() {
        if compact(read) {
            buf.drain(..pos);
            pos = 0;
        }
        buf.extend_from_slice(chunk);
        loop {
            let unread = &buf[pos..];
            match parse_request(unread, limits, &mut args) {
                Ok(Some(used)) => {
                    assert!(used > 0 && used <= unread.len(), "used {used} of {}", unread.len());
                    if !args.is_empty() {
                        requests.push(args.iter(unread).map(<[u8]>::to_vec).collect());
                    }
                    pos += used;
                }
                Ok(None) => break,
                Err(error) => {
                    return Session {
                        requests,
                        error: Some(error),
                    };
                }
            }
        }
    }
    Session { requests, error: None }
}

fn whole(input: &[u8], limits: &Limits) -> Session {
    serve([input], limits, |_| false)
}

/// Splits `input` at the sorted offsets `cuts`.
fn split_at<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let cut = cut.min(input.len()).max(start);
        chunks.push(&input[start..cut]);
        start = cut;
    }
    chunks.push(&input[start..]);
    chunks
}

fn command() -> impl Strategy<Value = Command> {
    let arg = prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..12),
        1 => proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'$'), Just(b'*')], 0..6),
        1 => proptest::collection::vec(any::<u8>(), 100..300),
    ];
    proptest::collection::vec(arg, 1..6)
}

/// An inline line for `command`, every argument double-quoted with `\xHH`
/// escapes or written bare, the way redis-cli users write them.
fn inline_line(command: &Command, quote: &[bool]) -> Vec<u8> {
    let mut line = Vec::new();
    for (i, arg) in command.iter().enumerate() {
        if i > 0 {
            line.extend_from_slice(b" \t ");
        }
        if quote.get(i).copied().unwrap_or(true) {
            line.push(b'"');
            for &byte in arg {
                line.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
            }
            line.push(b'"');
        } else {
            line.extend_from_slice(arg);
        }
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// A bare-word argument: no blanks, quotes, NUL or `*` (which would make a
/// line multibulk).
fn bare_arg() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..10).prop_map(|bytes| {
        bytes
            .into_iter()
            .map(|b| match b {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c' | b'"' | b'\'' | b'*' | 0 => b'x',
                other => other,
            })
            .collect()
    })
}

/// Bytes drawn mostly from the protocol's own alphabet, to reach deep paths.
fn protocolish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop_oneof![Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'1'), Just(b'2'), Just(b'0'), Just(b'-')],
        2 => prop_oneof![Just(b' '), Just(b'"'), Just(b'\''), Just(b'\\'), Just(b'x'), Just(b'a'), Just(0u8)],
        1 => any::<u8>(),
    ];
    proptest::collection::vec(byte, 0..120)
}

fn small_limits() -> Limits {
    Limits {
        max_args: 8,
        max_bulk_bytes: 64,
        max_inline_bytes: 24,
        max_request_bytes: 256,
        max_buffered_bulk: usize::MAX,
    }
}

proptest! {
    /// A pipeline of encoded commands, cut once at every offset.
    #[test]
    fn encoded_commands_survive_every_cut(commands in proptest::collection::vec(command(), 1..4)) {
        let mut input = Vec::new();
        for command in &commands {
            encode_command(&mut input, command);
        }
        let expected = Session { requests: commands, error: None };
        let limits = Limits::default();
        prop_assert_eq!(&whole(&input, &limits), &expected);
        for cut in 0..=input.len() {
            prop_assert_eq!(&serve(split_at(&input, &[cut]), &limits, |_| false), &expected, "cut at {}", cut);
        }
    }

    /// The same, fed in random pieces, sometimes one byte at a time, with the
    /// buffer compacted between some reads.
    #[test]
    fn encoded_commands_survive_random_reads(
        commands in proptest::collection::vec(command(), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        compact_every in 1usize..4,
    ) {
        let mut input = Vec::new();
        for command in &commands {
            encode_command(&mut input, command);
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        let session = serve(split_at(&input, &cuts), &Limits::default(), |read| read % compact_every == 0);
        prop_assert_eq!(session, Session { requests: commands.clone(), error: None });
        let bytewise = serve(input.chunks(1), &Limits::default(), |_| false);
        prop_assert_eq!(bytewise, Session { requests: commands, error: None });
    }

    /// Inline commands, bare or quoted with `\xHH` escapes, with blank lines
    /// and empty multibulks between them, mixed with multibulk commands.
    #[test]
    fn inline_commands_round_trip(
        commands in proptest::collection::vec(
            (proptest::collection::vec(bare_arg(), 1..5), proptest::collection::vec(any::<bool>(), 5), 0u8..4),
            1..5,
        ),
        quoted in proptest::collection::vec(command(), 1..3),
    ) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for (command, quote, filler) in &commands {
            match filler {
                0 => input.extend_from_slice(b"\r\n"),
                1 => input.extend_from_slice(b"*0\r\n  \n"),
                2 => input.extend_from_slice(b"*-1\r\n"),
                _ => {}
            }
            input.extend_from_slice(&inline_line(command, quote));
            expected.push(command.clone());
        }
        for command in &quoted {
            input.extend_from_slice(&inline_line(command, &[]));
            expected.push(command.clone());
            encode_command(&mut input, command);
            expected.push(command.clone());
        }
        let limits = Limits::default();
        let expected = Session { requests: expected, error: None };
        prop_assert_eq!(&whole(&input, &limits), &expected);
        for cut in 0..=input.len() {
            prop_assert_eq!(&serve(split_at(&input, &[cut]), &limits, |_| false), &expected, "cut at {}", cut);
        }
    }

    /// Arbitrary bytes never panic, never claim more than was given, and give
    /// the same requests and the same error however they are split.
    #[test]
    fn arbitrary_bytes_are_split_invariant(
        input in prop_oneof![protocolish_bytes(), proptest::collection::vec(any::<u8>(), 0..120)],
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        small in any::<bool>(),
    ) {
        let limits = if small { small_limits() } else { Limits::default() };
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        let reference = whole(&input, &limits);
        prop_assert_eq!(&serve(split_at(&input, &cuts), &limits, |read| read % 2 == 1), &reference);
        prop_assert_eq!(&serve(input.chunks(1), &limits, |_| false), &reference);
    }

    /// A `$` length over the limit fails on its header, before any data.
    /// (`max` is at least 1: the one-byte bulks before it must fit.)
    #[test]
    fn oversized_bulk_fails_on_its_header(max in 1usize..1000, over in 1usize..1_000_000, before in 0usize..3) {
        let limits = Limits { max_bulk_bytes: max, ..Limits::default() };
        let mut input = format!("*{}\r\n", before + 1).into_bytes();
        for _ in 0..before {
            input.extend_from_slice(b"$1\r\nx\r\n");
        }
        input.extend_from_slice(format!("${}\r\n", max + over).as_bytes());
        let mut args = Args::new();
        prop_assert_eq!(parse_request(&input, &limits, &mut args), Err(ParseError::InvalidBulkLength));
        // One byte short of the header's end is still just incomplete.
        prop_assert_eq!(parse_request(&input[..input.len() - 1], &limits, &mut Args::new()), Ok(None));
    }

    /// A `*` count over the limit fails on its header.
    #[test]
    fn oversized_count_fails_on_its_header(max in 0usize..1000, over in 1usize..1_000_000) {
        let limits = Limits { max_args: max, ..Limits::default() };
        let input = format!("*{}\r\n", max + over);
        prop_assert_eq!(
            parse_request(input.as_bytes(), &limits, &mut Args::new()),
            Err(ParseError::InvalidMultibulkLength)
        );
    }

    /// A request announcing more than the request limit fails at the header
    /// that crosses it.
    #[test]
    fn oversized_request_fails_on_its_header(sizes in proptest::collection::vec(0usize..100, 1..10), max in 0usize..400) {
        let limits = Limits { max_request_bytes: max, ..Limits::default() };
        let args: Vec<Vec<u8>> = sizes.iter().map(|&size| vec![b'v'; size]).collect();
        let mut input = Vec::new();
        encode_command(&mut input, &args);
        let outcome = parse_request(&input, &limits, &mut Args::new());
        if input.len() <= max {
            prop_assert_eq!(outcome, Ok(Some(input.len())));
        } else {
            prop_assert_eq!(outcome, Err(ParseError::TooBigRequest));
        }
    }

    /// An inline line longer than the limit fails before its newline.
    #[test]
    fn oversized_inline_fails_without_newline(max in 0usize..200, over in 1usize..100) {
        let limits = Limits { max_inline_bytes: max, ..Limits::default() };
        let line = vec![b'a'; max + over];
        prop_assert_eq!(parse_request(&line, &limits, &mut Args::new()), Err(ParseError::TooBigInlineRequest));
        let line = vec![b'a'; max];
        prop_assert_eq!(parse_request(&line, &limits, &mut Args::new()), Ok(None));
    }
}
