use super::*;

fn parse(input: &[u8]) -> Result<Option<(Reply, usize)>, ParseError> {
    parse_reply(input, &ReplyLimits::default())
}

/// Parses a whole reply that must use all of `input`.
fn whole(input: &[u8]) -> Reply {
    match parse(input) {
        Ok(Some((reply, used))) => {
            assert_eq!(used, input.len(), "{}", String::from_utf8_lossy(input));
            reply
        }
        other => panic!("{}: {other:?}", String::from_utf8_lossy(input)),
    }
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(text.as_bytes().to_vec())
}

#[test]
fn resp2_types() {
    assert_eq!(whole(b"+OK\r\n"), Reply::Simple(b"OK".to_vec()));
    assert_eq!(whole(b"-ERR no\r\n"), Reply::Error(b"ERR no".to_vec()));
    assert_eq!(whole(b":-12\r\n"), Reply::Integer(-12));
    assert_eq!(whole(b"$5\r\nhe\r\no\r\n"), bulk("he\r\no"));
    assert_eq!(whole(b"$0\r\n\r\n"), bulk(""));
    assert_eq!(whole(b"$-1\r\n"), Reply::Null);
    assert_eq!(whole(b"*-1\r\n"), Reply::NullArray);
    assert_eq!(whole(b"*0\r\n"), Reply::Array(vec![]));
    assert_eq!(
        whole(b"*3\r\n$1\r\na\r\n*1\r\n:1\r\n$-1\r\n"),
        Reply::Array(vec![bulk("a"), Reply::Array(vec![Reply::Integer(1)]), Reply::Null])
    );
}

#[test]
fn resp3_types() {
    assert_eq!(whole(b"_\r\n"), Reply::Null);
    assert_eq!(whole(b",1.5\r\n"), Reply::Double(1.5));
    assert_eq!(whole(b",-inf\r\n"), Reply::Double(f64::NEG_INFINITY));
    assert_eq!(whole(b",1e+20\r\n"), Reply::Double(1e20));
    assert!(matches!(whole(b",nan\r\n"), Reply::Double(value) if value.is_nan()));
    assert_eq!(whole(b"#t\r\n"), Reply::Boolean(true));
    assert_eq!(whole(b"#f\r\n"), Reply::Boolean(false));
    assert_eq!(
        whole(b"!21\r\nSYNTAX invalid syntax\r\n"),
        Reply::Error(b"SYNTAX invalid syntax".to_vec())
    );
    assert_eq!(
        whole(b"=15\r\ntxt:Some string\r\n"),
        Reply::Verbatim {
            format: *b"txt",
            text: b"Some string".to_vec()
        }
    );
    assert_eq!(
        whole(b"(-3492890328409238509324850943850943825024385\r\n"),
        Reply::BigNumber(b"-3492890328409238509324850943850943825024385".to_vec())
    );
    assert_eq!(
        whole(b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n"),
        Reply::Map(vec![
            (Reply::Simple(b"first".to_vec()), Reply::Integer(1)),
            (Reply::Simple(b"second".to_vec()), Reply::Integer(2)),
        ])
    );
    assert_eq!(
        whole(b"~2\r\n+a\r\n#t\r\n"),
        Reply::Set(vec![Reply::Simple(b"a".to_vec()), Reply::Boolean(true)])
    );
    assert_eq!(
        whole(b">3\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n_\r\n"),
        Reply::Push(vec![bulk("invalidate"), Reply::Array(vec![bulk("k")]), Reply::Null])
    );
    // The RESP3 specification's attribute example.
    assert_eq!(
        whole(b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n"),
        Reply::Attribute {
            attributes: vec![(
                Reply::Simple(b"key-popularity".to_vec()),
                Reply::Map(vec![(bulk("a"), Reply::Double(0.1923)), (bulk("b"), Reply::Double(0.0012))]),
            )],
            reply: Box::new(Reply::Array(vec![Reply::Integer(2039123), Reply::Integer(9543892)])),
        }
    );
}

#[test]
fn streamed_forms() {
    assert_eq!(
        whole(b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n"),
        bulk("Hello word")
    );
    assert_eq!(
        whole(b"*?\r\n:1\r\n:2\r\n.\r\n"),
        Reply::Array(vec![Reply::Integer(1), Reply::Integer(2)])
    );
    assert_eq!(whole(b"~?\r\n.\r\n"), Reply::Set(vec![]));
    assert_eq!(
        whole(b"%?\r\n+a\r\n:1\r\n.\r\n"),
        Reply::Map(vec![(Reply::Simple(b"a".to_vec()), Reply::Integer(1))])
    );
    assert_eq!(parse(b"*?\r\n:1\r\n"), Ok(None));
    assert_eq!(parse(b"$?\r\n;4\r\nHell\r\n"), Ok(None));
    assert_eq!(
        parse(b"$?\r\n:4\r\n"),
        Err(ParseError::MalformedReply("streamed string"))
    );
    assert_eq!(parse(b"$?\r\n;-1\r\n"), Err(ParseError::InvalidReplyLength));
    assert_eq!(parse(b"*?\r\n.x\r\n"), Err(ParseError::MalformedReply("stream end")));
}

#[test]
fn pipelined_replies_parse_one_at_a_time() {
    let input = b"+OK\r\n:1\r\n$1\r\nx\r\n";
    assert_eq!(parse(input), Ok(Some((Reply::Simple(b"OK".to_vec()), 5))));
    assert_eq!(parse(&input[5..]), Ok(Some((Reply::Integer(1), 4))));
    assert_eq!(parse(&input[9..]), Ok(Some((bulk("x"), 7))));
}

#[test]
fn incomplete_at_every_prefix() {
    let input: &[u8] = b"*3\r\n%1\r\n$1\r\nk\r\n,2.5\r\n=7\r\ntxt:abc\r\n|1\r\n+a\r\n#t\r\n(12\r\n";
    assert!(matches!(parse(input), Ok(Some((_, used))) if used == input.len()));
    for end in 0..input.len() {
        assert_eq!(parse(&input[..end]), Ok(None), "prefix of {end} bytes");
    }
}

#[test]
fn malformed_replies() {
    let cases: &[(&[u8], ParseError)] = &[
        (b"x\r\n", ParseError::InvalidReplyType(b'x')),
        (b".\r\n", ParseError::InvalidReplyType(b'.')),
        (b":1x\r\n", ParseError::MalformedReply("integer")),
        (b":\r\n", ParseError::MalformedReply("integer")),
        (b"$-2\r\n", ParseError::InvalidReplyLength),
        (b"$x\r\n", ParseError::InvalidReplyLength),
        (b"$1\r\nab\r\n", ParseError::ExpectedCrlf),
        (b"+OK\rx", ParseError::ExpectedCrlf),
        (b"%-1\r\n", ParseError::InvalidReplyLength),
        (b"!-1\r\n", ParseError::InvalidReplyLength),
        (b"=3\r\ntxt\r\n", ParseError::MalformedReply("verbatim string")),
        (b"=4\r\ntxt;\r\n", ParseError::MalformedReply("verbatim string")),
        (b"_x\r\n", ParseError::MalformedReply("null")),
        (b",1.5.5\r\n", ParseError::MalformedReply("double")),
        (b",\xff\r\n", ParseError::MalformedReply("double")),
        (b"#x\r\n", ParseError::MalformedReply("boolean")),
        (b"(\r\n", ParseError::MalformedReply("big number")),
        (b"(12a\r\n", ParseError::MalformedReply("big number")),
        (b"|?\r\n", ParseError::InvalidReplyLength),
    ];
    for (input, error) in cases {
        assert_eq!(parse(input).as_ref(), Err(error), "{}", String::from_utf8_lossy(input));
    }
}

#[test]
fn limits() {
    let limits = ReplyLimits {
        max_depth: 2,
        max_bulk_bytes: 4,
        max_elements: 3,
        max_line_bytes: 8,
    };
    let parse = |input: &[u8]| parse_reply(input, &limits);
    assert!(matches!(parse(b"*1\r\n*1\r\n:1\r\n"), Ok(Some(_))));
    assert_eq!(parse(b"*1\r\n*1\r\n*"), Ok(None));
    assert_eq!(parse(b"*1\r\n*1\r\n*1\r\n"), Err(ParseError::ReplyTooDeep(2)));
    assert_eq!(parse(b"*1\r\n*1\r\n|1\r\n"), Err(ParseError::ReplyTooDeep(2)));
    // Bulk lengths fail before the data arrives.
    assert_eq!(parse(b"$5\r\n"), Err(ParseError::ReplyTooBig("bulk")));
    assert_eq!(parse(b"$4\r\n"), Ok(None));
    assert_eq!(
        parse(b"$?\r\n;3\r\nabc\r\n;2\r\nde\r\n"),
        Err(ParseError::ReplyTooBig("bulk"))
    );
    assert_eq!(parse(b"*4\r\n"), Err(ParseError::ReplyTooBig("aggregate")));
    assert_eq!(parse(b"%4\r\n"), Err(ParseError::ReplyTooBig("aggregate")));
    assert_eq!(
        parse(b"~?\r\n:1\r\n:2\r\n:3\r\n:4\r\n"),
        Err(ParseError::ReplyTooBig("aggregate"))
    );
    assert_eq!(parse(b"+12345678"), Ok(None));
    assert_eq!(parse(b"+123456789"), Err(ParseError::ReplyTooBig("line")));
    assert!(matches!(parse(b"+12345678\r\n"), Ok(Some(_))));
}

#[test]
fn announced_counts_do_not_allocate_up_front() {
    // A count of a billion with three bytes present must not reserve a
    // billion elements.
    assert_eq!(parse(b"*1000000000\r\n:1\r\n"), Ok(None));
    let limits = ReplyLimits::default();
    let mut input = b"*1000000\r\n".to_vec();
    input.extend(std::iter::repeat_n(&b"_\r\n"[..], 1_000_000).flatten());
    let (reply, used) = parse_reply(&input, &limits).expect("valid").expect("complete");
    assert_eq!(used, input.len());
    assert!(matches!(reply, Reply::Array(items) if items.len() == 1_000_000));
}
