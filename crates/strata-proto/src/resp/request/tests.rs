use super::*;

/// A parsed request's arguments and the bytes it used.
type Parsed = Result<Option<(Vec<Vec<u8>>, usize)>, ParseError>;

/// Parses the first request of `input` with `limits`.
fn parse_with(input: &[u8], limits: &Limits) -> Parsed {
    let mut args = Args::new();
    Ok(parse_request(input, limits, &mut args)?.map(|used| (args.iter(input).map(<[u8]>::to_vec).collect(), used)))
}

fn parse(input: &[u8]) -> Parsed {
    parse_with(input, &Limits::default())
}

/// Every request in `input`, empty ones dropped; panics if it is not whole.
fn all(input: &[u8]) -> Vec<Vec<String>> {
    let (limits, mut args) = (Limits::default(), Args::new());
    let mut pos = 0;
    let mut requests = Vec::new();
    while pos < input.len() {
        let used = parse_request(&input[pos..], &limits, &mut args)
            .expect("valid")
            .expect("complete");
        if !args.is_empty() {
            requests.push(
                args.iter(&input[pos..])
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            );
        }
        pos += used;
    }
    requests
}

fn err(input: &[u8]) -> ParseError {
    parse(input).expect_err("a protocol error")
}

#[test]
fn multibulk() {
    let input = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n*1\r\n$4\r\nPING\r\n";
    assert_eq!(parse(input), Ok(Some((vec![b"GET".to_vec(), b"key".to_vec()], 22))));
    assert_eq!(all(input), [vec!["GET", "key"], vec!["PING"]]);
    // Binary-safe, empty arguments allowed.
    assert_eq!(
        parse(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\n\r\n\0\xff\r\n"),
        Ok(Some((vec![b"SET".to_vec(), Vec::new(), b"\r\n\0\xff".to_vec()], 29)))
    );
}

#[test]
fn inline() {
    assert_eq!(
        all(b"PING\r\nset a \"b c\"\nGET   x  \r\n"),
        [vec!["PING"], vec!["set", "a", "b c"], vec!["GET", "x"]]
    );
    assert_eq!(parse(b"GET x"), Ok(None));
    assert_eq!(parse(b"GET x\r"), Ok(None));
    // A lone \r is part of the line; it ends an unquoted argument.
    assert_eq!(all(b"GET x\ry\r\r\n"), [vec!["GET", "x", "y"]]);
}

#[test]
fn empty_requests_are_skipped() {
    let limits = Limits::default();
    let mut args = Args::new();
    // Blank lines and non-positive counts are consumed with no arguments...
    assert_eq!(
        parse_request(b"\r\n\n  \r\n*0\r\n*-1\r\n*-10\r\n", &limits, &mut args),
        Ok(Some(22))
    );
    assert!(args.is_empty());
    // ...or together with the request that follows them.
    let input = b"\r\n*0\r\nPING\r\n";
    assert_eq!(parse_request(input, &limits, &mut args), Ok(Some(12)));
    assert_eq!(args.command(input), Some(&b"PING"[..]));
    // An incomplete request after them: hand back the empties first.
    assert_eq!(parse_request(b"\r\n*1\r\n$4\r\nPI", &limits, &mut args), Ok(Some(2)));
    assert!(args.is_empty());
    assert_eq!(parse_request(b"*1\r\n$4\r\nPI", &limits, &mut args), Ok(None));
    assert_eq!(parse_request(b"*1\r\n$4\r\nPING\r\n", &limits, &mut args), Ok(Some(14)));
    assert_eq!(args.len(), 1);
    assert_eq!(parse_request(b"", &limits, &mut args), Ok(None));
}

#[test]
fn incomplete_at_every_prefix() {
    let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n";
    for end in 0..input.len() {
        assert_eq!(parse(&input[..end]), Ok(None), "prefix of {end} bytes");
    }
    assert_eq!(parse(input).map(|r| r.map(|(_, used)| used)), Ok(Some(input.len())));
}

#[test]
fn resumes_where_it_left_off() {
    let limits = Limits::default();
    let mut args = Args::new();
    let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n";
    assert_eq!(parse_request(&input[..22], &limits, &mut args), Ok(None));
    assert!(matches!(args.resume, Some(Resume { expected: 3, pos: 20 })));
    assert_eq!(args.len(), 2);
    assert_eq!(parse_request(input, &limits, &mut args), Ok(Some(input.len())));
    assert_eq!(args.iter(input).collect::<Vec<_>>(), [&b"SET"[..], b"k", b"value"]);
    assert!(args.resume.is_none());

    // A different buffer after Ok(None) is noticed and parsed from scratch.
    assert_eq!(parse_request(&input[..22], &limits, &mut args), Ok(None));
    assert_eq!(parse_request(b"PING\r\n", &limits, &mut args), Ok(Some(6)));
    assert_eq!(args.iter(b"PING\r\n").collect::<Vec<_>>(), [&b"PING"[..]]);
    // Or one that is shorter than where it left off.
    assert_eq!(parse_request(&input[..22], &limits, &mut args), Ok(None));
    assert_eq!(parse_request(b"*1\r\n$1\r\nx\r\n", &limits, &mut args), Ok(Some(11)));
    assert_eq!(args.len(), 1);
}

#[test]
fn redis_protocol_test_suite_cases() {
    // From tests/unit/protocol.tcl in Redis.
    assert_eq!(err(b"*3000000000\r\n"), ParseError::InvalidMultibulkLength);
    assert_eq!(
        err(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
        ParseError::ExpectedBulk(b'f')
    );
    assert_eq!(
        err(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"),
        ParseError::InvalidBulkLength
    );
    assert_eq!(
        err(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n"),
        ParseError::InvalidBulkLength
    );
    assert_eq!(
        err(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n"),
        ParseError::InvalidBulkLength
    );
    assert_eq!(err(b"*1\r\nfoo\r\n"), ParseError::ExpectedBulk(b'f'));
    assert_eq!(
        err(b"set \"\"\"test-key\"\"\" test-value\r\nping\r\n"),
        ParseError::UnbalancedQuotes
    );
    assert_eq!(
        err(b"set \"\"\"test-key\"\"\" test-value\r\nping\r\n").to_string(),
        "Protocol error: unbalanced quotes in request"
    );
}

#[test]
fn malformed_headers() {
    for bad in [
        &b"*\r\n"[..],
        b"*x\r\n",
        b"*01\r\n",
        b"*+1\r\n",
        b"* 1\r\n",
        b"*1x\r\n",
        b"*1\rx",
    ] {
        assert_eq!(
            err(bad),
            ParseError::InvalidMultibulkLength,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    for bad in [&b"*1\r\n$\r\n"[..], b"*1\r\n$01\r\n", b"*1\r\n$-1\r\n", b"*1\r\n$1\rx"] {
        assert_eq!(
            err(bad),
            ParseError::InvalidBulkLength,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // The data must be followed by CRLF.
    assert_eq!(err(b"*1\r\n$1\r\nab\r\n"), ParseError::InvalidBulkLength);
    assert_eq!(parse(b"*1\r\n$1\r\na\r"), Ok(None));
    assert_eq!(err(b"*1\r\n$1\r\na\rx"), ParseError::InvalidBulkLength);
    // The '$' is checked as soon as it arrives.
    assert_eq!(err(b"*1\r\n:"), ParseError::ExpectedBulk(b':'));
    assert_eq!(err(b"*2\r\n$1\r\na\r\n*"), ParseError::ExpectedBulk(b'*'));
}

#[test]
fn limits_fail_before_the_data_arrives() {
    let limits = Limits {
        max_args: 3,
        max_bulk_bytes: 10,
        max_inline_bytes: 16,
        max_request_bytes: 40,
        max_buffered_bulk: usize::MAX,
    };
    let fails = |input: &[u8]| parse_with(input, &limits).expect_err("over a limit");
    assert_eq!(fails(b"*4\r\n"), ParseError::InvalidMultibulkLength);
    assert_eq!(parse_with(b"*3\r\n", &limits), Ok(None));
    assert_eq!(fails(b"*1\r\n$11\r\n"), ParseError::InvalidBulkLength);
    assert_eq!(parse_with(b"*1\r\n$10\r\n", &limits), Ok(None));
    // 4 + 3 * (5 + 10 + 2) > 40: refused at the third header.
    assert_eq!(
        fails(b"*3\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n$10\r\n"),
        ParseError::TooBigRequest
    );
    // Header lines are limited like inline lines: 16 bytes, type byte included.
    assert_eq!(fails(b"*00000000000000000"), ParseError::TooBigMultibulkCount);
    assert_eq!(parse_with(b"*000000000000000", &limits), Ok(None));
    assert_eq!(fails(b"*1\r\n$00000000000000000"), ParseError::TooBigBulkCount);
    // Inline lines: 16 bytes of content, then an optional \r, then \n.
    assert_eq!(fails(b"GET 0123456789abc"), ParseError::TooBigInlineRequest);
    assert_eq!(parse_with(b"GET 0123456789ab", &limits), Ok(None));
    assert_eq!(parse_with(b"GET 0123456789ab\r", &limits), Ok(None));
    assert!(matches!(
        parse_with(b"GET 0123456789ab\r\n", &limits),
        Ok(Some((_, 18)))
    ));
    assert_eq!(fails(b"GET 0123456789abc\r\n"), ParseError::TooBigInlineRequest);
    assert_eq!(fails(b"GET 0123456789ab\rx"), ParseError::TooBigInlineRequest);
}

#[test]
fn redis_desync_regressions() {
    // tests/unit/protocol.tcl "Protocol desync regression test": a NUL, then
    // a stream of junk without line ends, must end in a protocol error.
    for prefix in [&b"\0"[..], b"*\0", b"$\0"] {
        let mut input = prefix.to_vec();
        let error = loop {
            input.extend_from_slice(b"payload");
            match parse(&input) {
                Ok(None) => continue,
                Ok(Some(_)) => panic!("junk parsed as a request"),
                Err(error) => break error,
            }
        };
        assert!(error.to_string().starts_with("Protocol error"));
        assert!(input.len() <= (64 << 10) + 8);
    }
}

#[test]
fn quoted_inline_arguments_live_in_scratch() {
    let limits = Limits::default();
    let mut args = Args::new();
    let input = b"SET 'k' \"v\\x41\\n\"\r\n";
    assert_eq!(parse_request(input, &limits, &mut args), Ok(Some(input.len())));
    assert_eq!(args.iter(input).collect::<Vec<_>>(), [&b"SET"[..], b"k", b"vA\n"]);
    assert!(args.command_is(input, b"set"));
    assert!(args.arg_is(input, 2, b"Va\n"));
    assert!(!args.arg_is(input, 3, b""));
    // The next plain request reads from the buffer again.
    assert_eq!(parse_request(b"get x\n", &limits, &mut args), Ok(Some(6)));
    assert_eq!(args.iter(b"get x\n").collect::<Vec<_>>(), [&b"get"[..], b"x"]);
}

#[test]
fn command_names() {
    let mut scratch = [0u8; MAX_COMMAND_NAME_LEN];
    assert_eq!(uppercase_command(b"gEt", &mut scratch), Some(&b"GET"[..]));
    assert_eq!(uppercase_command(b"", &mut scratch), Some(&b""[..]));
    assert_eq!(uppercase_command(&[b'a'; MAX_COMMAND_NAME_LEN + 1], &mut scratch), None);
    let input = b"*1\r\n$4\r\nPing\r\n";
    let mut args = Args::new();
    assert_eq!(parse_request(input, &Limits::default(), &mut args), Ok(Some(14)));
    assert!(args.command_is(input, b"PING"));
    assert!(!args.command_is(input, b"PIN"));
}

#[test]
fn errors_reset_the_args() {
    let mut args = Args::new();
    let limits = Limits::default();
    assert_eq!(parse_request(b"*2\r\n$1\r\na\r\n", &limits, &mut args), Ok(None));
    assert!(parse_request(b"*2\r\n$1\r\na\r\nx", &limits, &mut args).is_err());
    assert!(args.is_empty() && args.resume.is_none());
}

#[test]
fn capacity_is_released_after_huge_requests() {
    let mut input = Vec::new();
    let many: Vec<&[u8]> = vec![b"x"; 5000];
    crate::resp::encode_command(&mut input, &many);
    let mut args = Args::new();
    let limits = Limits::default();
    assert_eq!(parse_request(&input, &limits, &mut args), Ok(Some(input.len())));
    assert_eq!(args.len(), 5000);
    assert_eq!(parse_request(b"PING\r\n", &limits, &mut args), Ok(Some(6)));
    assert!(args.spans.capacity() <= KEEP_SPANS);
}

#[test]
fn a_bulk_too_long_to_buffer_stops_the_request_at_its_header() {
    let limits = Limits {
        max_buffered_bulk: 8,
        ..Limits::default()
    };
    let value = vec![b'x'; 100];
    let mut request = b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$100\r\n".to_vec();
    let header_end = request.len();
    request.extend_from_slice(&value);
    request.extend_from_slice(b"\r\n$1\r\nb\r\n$9\r\n123456789\r\n*1\r\n$4\r\nPING\r\n");
    let mut args = Args::new();
    assert_eq!(parse_request(&request, &limits, &mut args), Ok(Some(header_end)));
    assert_eq!(
        args.oversized(),
        Some(Oversized {
            index: 2,
            len: 100,
            remaining: 2
        })
    );
    assert_eq!(args.iter(&request).collect::<Vec<_>>(), vec![&b"MSET"[..], b"a"]);
    // Swallow the rest, fed one byte at a time: the value is never kept,
    // the short key is, the 9-byte value (over 8) is not.
    let mut swallow = Swallow::new(args.oversized().unwrap(), 8);
    let mut at = header_end;
    while !swallow.is_done() {
        let end = (at + 1).min(request.len());
        let used = swallow.feed(&request[at..end], &limits).unwrap();
        if used == 0 {
            // Needs more than one byte at once (a header line, a kept bulk).
            let used = swallow.feed(&request[at..], &limits).unwrap();
            assert!(used > 0);
            at += used;
        } else {
            at += used;
        }
    }
    assert_eq!(swallow.into_kept(), vec![Some(b"b".to_vec()), None]);
    // The next request parses normally.
    assert_eq!(parse_request(&request[at..], &limits, &mut args), Ok(Some(14)));
    assert_eq!(args.oversized(), None);
    assert!(args.command_is(&request[at..], b"PING"));
}
