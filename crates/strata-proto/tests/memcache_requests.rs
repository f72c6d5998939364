//! Example-based tests of the memcached request parser: the meta commands
//! line by line, memcached's error replies, and a server loop that pipelines
//! requests through refusals and swallowed values.

use std::borrow::Cow;

use strata_proto::memcache::{
    ArithmeticOp, Discard, FatalError, Limits, MetaFlag, Parsed, Request, RequestError, SetMode, TooLarge,
    parse_request,
};

const LIMITS: Limits = Limits {
    max_key_bytes: 250,
    max_value_bytes: 64,
    max_line_bytes: 1024,
    max_keys_per_get: 8,
};

fn parse(buf: &[u8]) -> Parsed<'_> {
    match parse_request(buf, &LIMITS) {
        Ok(parsed) => parsed,
        Err(fatal) => panic!("{:?}: fatal {fatal}", String::from_utf8_lossy(buf)),
    }
}

fn request(buf: &[u8]) -> Request<'_> {
    match parse(buf) {
        Parsed::Request { request, consumed } => {
            assert_eq!(consumed, buf.len(), "{:?}", String::from_utf8_lossy(buf));
            request
        }
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn refusal(buf: &[u8]) -> RequestError {
    match parse(buf) {
        Parsed::Reject {
            error,
            noreply: false,
            consumed,
        } if consumed == buf.len() => error,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn flags<'a>(pairs: &[(u8, &'a [u8])]) -> Vec<MetaFlag<'a>> {
    pairs.iter().map(|&(flag, token)| MetaFlag { flag, token }).collect()
}

#[test]
fn mg_keeps_flags_in_request_order() {
    let Request::MetaGet(meta) = request(b"mg foo s v t Oabc k c f q\r\n") else {
        panic!("not mg")
    };
    assert_eq!(meta.key, Cow::Borrowed(&b"foo"[..]));
    let expected = flags(&[
        (b's', b""),
        (b'v', b""),
        (b't', b""),
        (b'O', b"abc"),
        (b'k', b""),
        (b'c', b""),
        (b'f', b""),
        (b'q', b""),
    ]);
    assert_eq!(meta.flags.iter().collect::<Vec<_>>(), expected);
    assert!(meta.flags.quiet() && meta.flags.return_value());
    assert!(!meta.binary_key());
}

#[test]
fn mg_without_flags_and_with_base64_key() {
    let Request::MetaGet(meta) = request(b"mg foo\r\n") else {
        panic!()
    };
    assert!(meta.flags.is_empty());
    let Request::MetaGet(meta) = request(b"mg AAEC/w== b v\r\n") else {
        panic!()
    };
    assert_eq!(meta.key.as_ref(), &[0, 1, 2, 255]);
    assert!(meta.binary_key());
    // Binary keys may hold bytes a text key may not.
    let Request::MetaGet(meta) = request(b"mg ICAg b\r\n") else {
        panic!()
    };
    assert_eq!(meta.key.as_ref(), b"   ");
}

#[test]
fn mg_errors_are_memcacheds() {
    assert_eq!(refusal(b"mg\r\n"), RequestError::BadFormat);
    assert_eq!(refusal(b"mg foo v v\r\n"), RequestError::DuplicateFlag);
    assert_eq!(refusal(b"mg foo y\r\n"), RequestError::InvalidFlag);
    assert_eq!(refusal(b"mg foo Tabc\r\n"), RequestError::BadToken);
    assert_eq!(refusal(b"mg foo* b\r\n"), RequestError::KeyDecode);
    let long_opaque = [b"mg foo O".as_slice(), &[b'x'; 33], b"\r\n"].concat();
    assert_eq!(refusal(&long_opaque), RequestError::OpaqueTooLong);
    let long_key = [b"mg ".as_slice(), &[b'k'; 251], b" v\r\n"].concat();
    assert_eq!(refusal(&long_key), RequestError::BadFormat);
    let many = b"mg foo b c f h k l q s t u v x I P L O1 T1 C1 E1\r\n";
    assert_eq!(refusal(many), RequestError::TooManyFlags);
    // Errors are sent even in quiet mode.
    assert!(matches!(
        parse(b"mg foo q q\r\n"),
        Parsed::Reject { noreply: false, .. }
    ));
}

#[test]
fn ms_reads_its_data_and_mode() {
    let Request::MetaSet(set) = request(b"ms foo 2 T90 F5 MA c\r\nhi\r\n") else {
        panic!()
    };
    assert_eq!(set.meta.key.as_ref(), b"foo");
    assert_eq!(set.data, b"hi");
    assert_eq!(set.mode, SetMode::Append);
    assert_eq!(set.meta.flags.ttl(), Some(90));
    assert_eq!(set.meta.flags.client_flags(), Some(5));
    let Request::MetaSet(set) = request(b"ms foo 0\r\n\r\n") else {
        panic!()
    };
    assert_eq!((set.mode, set.data), (SetMode::Set, &b""[..]));
    assert_eq!(parse(b"ms foo 2 T90\r\nh"), Parsed::Incomplete);
}

#[test]
fn ms_errors_swallow_once_the_length_is_known() {
    assert_eq!(refusal(b"ms foo\r\n"), RequestError::BadFormat);
    assert_eq!(refusal(b"ms foo bar\r\n"), RequestError::BadFormat);
    for (line, error) in [
        (&b"ms foo 3 MX\r\n"[..], RequestError::InvalidSetMode),
        (b"ms foo 3 v v\r\n", RequestError::DuplicateFlag),
        (b"ms foo 3 Fx\r\n", RequestError::BadFormat),
        (b"ms foo 3 MEE\r\n", RequestError::ModeLength),
        (b"ms foo\x01 3\r\n", RequestError::BadFormat),
        (b"ms foo 65 T0\r\n", RequestError::TooLarge),
    ] {
        let swallow = if error == RequestError::TooLarge { 67 } else { 5 };
        assert_eq!(
            parse(line),
            Parsed::Swallow {
                error,
                noreply: false,
                consumed: line.len(),
                swallow,
                too_large: (error == RequestError::TooLarge).then(|| TooLarge {
                    key: std::borrow::Cow::Borrowed(&b"foo"[..]),
                    replaces: true
                }),
            },
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    assert_eq!(
        parse(b"ms foo 2\r\nhiX\n"),
        Parsed::Reject {
            error: RequestError::BadDataChunk,
            noreply: false,
            consumed: 14
        }
    );
}

#[test]
fn md_and_ma() {
    let Request::MetaDelete(meta) = request(b"md foo I T30 q\r\n") else {
        panic!()
    };
    assert!(meta.flags.invalidate() && meta.flags.quiet());
    assert_eq!(meta.flags.ttl(), Some(30));
    let Request::MetaArithmetic(arithmetic) = request(b"ma foo MD D5 N0 J10 v\r\n") else {
        panic!()
    };
    assert_eq!(arithmetic.op, ArithmeticOp::Decr);
    assert_eq!(arithmetic.meta.flags.delta(), Some(5));
    assert_eq!(arithmetic.meta.flags.initial(), Some(10));
    let Request::MetaArithmetic(arithmetic) = request(b"ma foo\r\n") else {
        panic!()
    };
    assert_eq!(arithmetic.op, ArithmeticOp::Incr);
    assert_eq!(refusal(b"ma foo M*\r\n"), RequestError::InvalidArithmeticMode);
    // memcached answers every flag error of ma with one line.
    assert_eq!(refusal(b"ma foo Dx\r\n"), RequestError::ArithmeticFlags);
    assert_eq!(refusal(b"ma foo v v\r\n"), RequestError::ArithmeticFlags);
    assert_eq!(refusal(b"md foo Cx\r\n"), RequestError::BadToken);
}

#[test]
fn mn_and_me() {
    assert_eq!(request(b"mn\r\n"), Request::MetaNoop);
    assert_eq!(
        request(b"me foo\r\n"),
        Request::MetaDebug {
            key: Cow::Borrowed(b"foo"),
            binary: false
        }
    );
    assert_eq!(
        request(b"me Zm9v b\r\n"),
        Request::MetaDebug {
            key: Cow::Owned(b"foo".to_vec()),
            binary: true
        }
    );
    assert_eq!(refusal(b"me\r\n"), RequestError::BadFormat);
    assert_eq!(refusal(b"me Zm9*v b\r\n"), RequestError::BadFormat);
}

#[test]
fn classic_noreply_is_reported_with_refusals() {
    assert_eq!(
        parse(b"set k 0 0 65 noreply\r\n"),
        Parsed::Swallow {
            error: RequestError::TooLarge,
            noreply: true,
            consumed: 22,
            swallow: 67,
            too_large: Some(TooLarge {
                key: std::borrow::Cow::Borrowed(&b"k"[..]),
                replaces: true
            }),
        }
    );
    assert_eq!(
        parse(b"incr k x noreply\r\n"),
        Parsed::Reject {
            error: RequestError::InvalidDelta,
            noreply: true,
            consumed: 18
        }
    );
    // Commands without a noreply option never report one.
    assert_eq!(
        parse(b"get a\x02 noreply\r\n"),
        Parsed::Reject {
            error: RequestError::BadFormat,
            noreply: false,
            consumed: 16
        }
    );
}

#[test]
fn too_long_lines_are_fatal_as_soon_as_proven() {
    let mut buf = b"get ".to_vec();
    buf.resize(1023, b'k');
    assert_eq!(parse_request(&buf, &LIMITS), Ok(Parsed::Incomplete));
    buf.push(b'k');
    assert_eq!(
        parse_request(&buf, &LIMITS),
        Err(FatalError::LineTooLong { limit: 1024 })
    );
    // A complete line of exactly the limit is fine.
    let mut line = b"get ".to_vec();
    line.resize(1022, b'k');
    line.extend_from_slice(b"\r\n");
    assert!(matches!(
        parse_request(&line, &LIMITS),
        Ok(Parsed::Reject {
            error: RequestError::BadFormat,
            ..
        })
    ));
}

/// What a server loop saw, one entry per outcome.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Request(String),
    Refused(RequestError),
}

/// Runs a server's read loop over `chunks`: parse, act, drop, swallow.
fn serve(chunks: &[&[u8]]) -> Vec<Seen> {
    let mut buffer = Vec::new();
    let mut discard = Discard::new(0);
    let mut seen = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            let dropped = discard.take(buffer.len());
            buffer.drain(..dropped);
            if !discard.is_done() {
                break;
            }
            let consumed = match parse_request(&buffer, &LIMITS).expect("no fatal input") {
                Parsed::Incomplete => break,
                Parsed::Request { request, consumed } => {
                    seen.push(Seen::Request(format!("{request:?}")));
                    consumed
                }
                Parsed::Reject { error, consumed, .. } => {
                    seen.push(Seen::Refused(error));
                    consumed
                }
                Parsed::Swallow {
                    error,
                    consumed,
                    swallow,
                    ..
                } => {
                    seen.push(Seen::Refused(error));
                    discard = Discard::new(swallow);
                    consumed
                }
            };
            buffer.drain(..consumed);
        }
    }
    assert!(
        buffer.is_empty() && discard.is_done(),
        "left over: {buffer:?}, {discard:?}"
    );
    seen
}

#[test]
fn a_refused_value_is_never_read_as_commands() {
    let big = vec![b'x'; 100];
    let value_with_commands = b"get evil\r\ndelete evil\r\n".repeat(3);
    let pipeline = [
        b"set big 0 0 100\r\n".as_slice(),
        &big,
        b"\r\n",
        b"set k 0 0 69\r\n",
        &value_with_commands[..69],
        b"\r\n",
        b"get k\r\n",
        b"bogus\r\n",
        b"ms k 3 Mz\r\nabc\r\n",
        b"mn\r\n",
    ]
    .concat();
    let expected = vec![
        Seen::Refused(RequestError::TooLarge),
        Seen::Refused(RequestError::TooLarge),
        Seen::Request(format!("{:?}", request(b"get k\r\n"))),
        Seen::Refused(RequestError::UnknownCommand),
        Seen::Refused(RequestError::InvalidSetMode),
        Seen::Request(format!("{:?}", Request::MetaNoop)),
    ];
    assert_eq!(serve(&[&pipeline]), expected);
    // Byte by byte, the server sees the same.
    let bytes: Vec<&[u8]> = pipeline.chunks(1).collect();
    assert_eq!(serve(&bytes), expected);
}
