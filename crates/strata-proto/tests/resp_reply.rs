//! Property tests of reply encoding and the client-side reply parser:
//! random `Reply` trees survive `Encoder` then `parse_reply` in RESP3
//! exactly, and in RESP2 as their RESP2 shape; every proper prefix is
//! incomplete; arbitrary bytes never panic or over-consume.

use proptest::prelude::*;
use strata_proto::resp::{Encoder, Protocol, Reply, ReplyLimits, parse_reply, write_double};

fn line_text() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no CR or LF", |b| *b != b'\r' && *b != b'\n'),
        0..12,
    )
}

fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>().prop_filter("NaN never equals itself", |v| !v.is_nan()),
        1 => (-1000i32..1000).prop_map(|v| f64::from(v) / 8.0),
        1 => prop_oneof![Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(0.0), Just(-0.0), Just(1e300)],
    ]
}

fn leaf() -> impl Strategy<Value = Reply> {
    prop_oneof![
        line_text().prop_map(Reply::Simple),
        line_text().prop_map(Reply::Error),
        any::<i64>().prop_map(Reply::Integer),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Reply::Bulk),
        Just(Reply::Null),
        Just(Reply::NullArray),
        double().prop_map(Reply::Double),
        any::<bool>().prop_map(Reply::Boolean),
        (any::<[u8; 3]>(), proptest::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(format, text)| Reply::Verbatim { format, text }),
        "-?[0-9]{1,50}".prop_map(|digits| Reply::BigNumber(digits.into_bytes())),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        let pairs = proptest::collection::vec((inner.clone(), inner.clone()), 0..3);
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Reply::Array),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Reply::Set),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Reply::Push),
            pairs.clone().prop_map(Reply::Map),
            (pairs, inner).prop_map(|(attributes, reply)| Reply::Attribute {
                attributes,
                reply: Box::new(reply)
            }),
        ]
    })
}

/// What a RESP3 round trip gives: the tree itself, except that RESP3 has
/// one null for both of RESP2's.
fn as_resp3(reply: &Reply) -> Reply {
    let all = |items: &[Reply]| items.iter().map(as_resp3).collect();
    let pairs = |pairs: &[(Reply, Reply)]| pairs.iter().map(|(k, v)| (as_resp3(k), as_resp3(v))).collect();
    match reply {
        Reply::NullArray => Reply::Null,
        Reply::Array(items) => Reply::Array(all(items)),
        Reply::Set(items) => Reply::Set(all(items)),
        Reply::Push(items) => Reply::Push(all(items)),
        Reply::Map(entries) => Reply::Map(pairs(entries)),
        Reply::Attribute { attributes, reply } => Reply::Attribute {
            attributes: pairs(attributes),
            reply: Box::new(as_resp3(reply)),
        },
        other => other.clone(),
    }
}

/// What a RESP2 round trip gives: each RESP3 type in its RESP2 stand-in.
fn as_resp2(reply: &Reply) -> Reply {
    let all = |items: &[Reply]| Reply::Array(items.iter().map(as_resp2).collect());
    match reply {
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => all(items),
        Reply::Map(entries) => Reply::Array(entries.iter().flat_map(|(k, v)| [as_resp2(k), as_resp2(v)]).collect()),
        Reply::Attribute { reply, .. } => as_resp2(reply),
        Reply::Double(value) => {
            let mut text = Vec::new();
            write_double(&mut text, *value);
            Reply::Bulk(text)
        }
        Reply::Boolean(value) => Reply::Integer(i64::from(*value)),
        Reply::Verbatim { text, .. } => Reply::Bulk(text.clone()),
        Reply::BigNumber(digits) => Reply::Bulk(digits.clone()),
        other => other.clone(),
    }
}

fn encode(reply: &Reply, protocol: Protocol) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(&mut out, protocol).reply(reply);
    out
}

/// Parses `bytes`, which must hold exactly one reply, and checks that every
/// proper prefix is reported incomplete.
fn parse_exactly(bytes: &[u8]) -> Result<Reply, TestCaseError> {
    let limits = ReplyLimits::default();
    for end in 0..bytes.len() {
        prop_assert_eq!(parse_reply(&bytes[..end], &limits), Ok(None), "prefix of {} bytes", end);
    }
    match parse_reply(bytes, &limits) {
        Ok(Some((reply, used))) => {
            prop_assert_eq!(used, bytes.len());
            Ok(reply)
        }
        other => Err(TestCaseError::fail(format!("{other:?}"))),
    }
}

proptest! {
    #[test]
    fn resp3_round_trip(tree in reply()) {
        let bytes = encode(&tree, Protocol::Resp3);
        prop_assert_eq!(parse_exactly(&bytes)?, as_resp3(&tree));
    }

    #[test]
    fn resp2_round_trip(tree in reply()) {
        let bytes = encode(&tree, Protocol::Resp2);
        prop_assert_eq!(parse_exactly(&bytes)?, as_resp2(&tree));
    }

    /// Replies are self-delimiting: a pipeline parses back one by one.
    #[test]
    fn pipelined_replies(trees in proptest::collection::vec(reply(), 1..5), resp3 in any::<bool>()) {
        let protocol = if resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
        let mut bytes = Vec::new();
        for tree in &trees {
            Encoder::new(&mut bytes, protocol).reply(tree);
        }
        let limits = ReplyLimits::default();
        let mut pos = 0;
        for tree in &trees {
            let (reply, used) = parse_reply(&bytes[pos..], &limits)
                .map_err(|e| TestCaseError::fail(e.to_string()))?
                .ok_or_else(|| TestCaseError::fail("incomplete"))?;
            let expected = if resp3 { as_resp3(tree) } else { as_resp2(tree) };
            prop_assert_eq!(reply, expected);
            pos += used;
        }
        prop_assert_eq!(pos, bytes.len());
    }

    /// Arbitrary bytes: no panic, no over-consumption, and a reply that
    /// parses re-encodes to bytes that parse to the same encoding.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(
                prop_oneof![
                    Just(b'*'), Just(b'$'), Just(b'%'), Just(b'|'), Just(b'~'), Just(b'>'), Just(b'='),
                    Just(b'!'), Just(b'?'), Just(b';'), Just(b'.'), Just(b'_'), Just(b','), Just(b'#'),
                    Just(b'('), Just(b':'), Just(b'+'), Just(b'-'), Just(b'\r'), Just(b'\n'), Just(b'0'),
                    Just(b'1'), Just(b'2'), Just(b'4'), Just(b't'),
                ],
                0..200,
            ),
        ],
        depth in 0usize..6,
    ) {
        let limits = ReplyLimits { max_depth: depth, ..ReplyLimits::default() };
        if let Ok(Some((reply, used))) = parse_reply(&bytes, &limits) {
            prop_assert!(used <= bytes.len());
            prop_assert_eq!(parse_reply(&bytes[..used], &limits), Ok(Some((reply.clone(), used))));
            let once = encode(&reply, Protocol::Resp3);
            let (again, _) = parse_reply(&once, &limits)
                .map_err(|e| TestCaseError::fail(e.to_string()))?
                .ok_or_else(|| TestCaseError::fail("re-encoding incomplete"))?;
            prop_assert_eq!(encode(&again, Protocol::Resp3), once);
        }
    }
}

#[test]
fn nan_round_trips() {
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let bytes = encode(&Reply::Double(f64::NAN), protocol);
        let parsed = parse_reply(&bytes, &ReplyLimits::default())
            .expect("valid")
            .expect("complete");
        match (protocol, parsed) {
            (Protocol::Resp3, (Reply::Double(value), _)) => assert!(value.is_nan()),
            (Protocol::Resp2, (Reply::Bulk(text), _)) => assert_eq!(text, b"nan"),
            other => panic!("{other:?}"),
        }
    }
}
