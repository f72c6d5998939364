//! Property tests of the memcached codec.
//!
//! Requests are generated as an owned model, written with the client
//! encoders, and parsed back — whole, prefix by prefix, and pipelined in
//! random chunks through a server loop — to the same model. Responses go
//! through the server encoders and the incremental decoder. Random and
//! protocol-shaped bytes never panic, and whatever parses re-encodes to
//! something that parses the same.

use proptest::prelude::*;
use strata_proto::memcache::client::{
    encode_arithmetic, encode_delete, encode_gat, encode_gats, encode_get, encode_gets, encode_ma, encode_md,
    encode_me, encode_mg, encode_mn, encode_ms, encode_store, encode_touch,
};
use strata_proto::memcache::{
    ArithmeticOp, Discard, Limits, MetaArg, MetaCode, MetaDebug, MetaFlags, MetaResponse, Parsed, ReplyKind, Request,
    RequestError, Response, ResponseDecoder, ResponseLimits, ReturnedFlag, SetMode, Stat, Status, StoreCommand,
    TooLarge, Value, encode_request, encode_response, parse_request,
};

const LIMITS: Limits = Limits {
    max_key_bytes: 250,
    max_value_bytes: 1024,
    max_line_bytes: 16384,
    max_keys_per_get: 32,
};

/// Which meta command a [`Model::Meta`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MetaKind {
    Get,
    Set,
    Delete,
    Arithmetic,
}

/// An owned request, to compare parsed requests with.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Model {
    Get {
        cas: bool,
        touch: Option<i64>,
        keys: Vec<Vec<u8>>,
    },
    Store {
        command: StoreCommand,
        key: Vec<u8>,
        flags: u32,
        exptime: i64,
        data: Vec<u8>,
        noreply: bool,
    },
    Delete {
        key: Vec<u8>,
        noreply: bool,
    },
    Arithmetic {
        op: ArithmeticOp,
        key: Vec<u8>,
        delta: u64,
        noreply: bool,
    },
    Touch {
        key: Vec<u8>,
        exptime: i64,
        noreply: bool,
    },
    FlushAll {
        delay: Option<i64>,
        noreply: bool,
    },
    Version,
    Verbosity {
        level: u32,
        noreply: bool,
    },
    Stats {
        args: Option<Vec<u8>>,
    },
    Quit,
    // `mode` is the `ms`/`ma` mode character the parser must derive from
    // the `M` flag (0 for `mg`/`md`).
    Meta {
        kind: MetaKind,
        key: Vec<u8>,
        flags: Vec<(u8, Vec<u8>)>,
        mode: u8,
        data: Vec<u8>,
    },
    MetaNoop,
    MetaDebug {
        key: Vec<u8>,
        binary: bool,
    },
}

fn flags_of(flags: &MetaFlags<'_>) -> Vec<(u8, Vec<u8>)> {
    flags.iter().map(|flag| (flag.flag, flag.token.to_vec())).collect()
}

fn model_of(request: &Request<'_>) -> Model {
    match request {
        Request::Get(get) => Model::Get {
            cas: get.cas,
            touch: get.touch,
            keys: get.keys.iter().map(<[u8]>::to_vec).collect(),
        },
        Request::Store(store) => Model::Store {
            command: store.command,
            key: store.key.to_vec(),
            flags: store.flags,
            exptime: store.exptime,
            data: store.data.to_vec(),
            noreply: store.noreply,
        },
        Request::Delete { key, noreply } => Model::Delete {
            key: key.to_vec(),
            noreply: *noreply,
        },
        Request::Arithmetic {
            op,
            key,
            delta,
            noreply,
        } => Model::Arithmetic {
            op: *op,
            key: key.to_vec(),
            delta: *delta,
            noreply: *noreply,
        },
        Request::Touch { key, exptime, noreply } => Model::Touch {
            key: key.to_vec(),
            exptime: *exptime,
            noreply: *noreply,
        },
        Request::FlushAll { delay, noreply } => Model::FlushAll {
            delay: *delay,
            noreply: *noreply,
        },
        Request::Version => Model::Version,
        Request::Verbosity { level, noreply } => Model::Verbosity {
            level: *level,
            noreply: *noreply,
        },
        Request::Stats { args } => Model::Stats {
            args: args.map(<[u8]>::to_vec),
        },
        Request::Quit => Model::Quit,
        Request::MetaGet(meta) | Request::MetaDelete(meta) => Model::Meta {
            kind: if matches!(request, Request::MetaGet(_)) {
                MetaKind::Get
            } else {
                MetaKind::Delete
            },
            key: meta.key.to_vec(),
            flags: flags_of(&meta.flags),
            mode: 0,
            data: Vec::new(),
        },
        Request::MetaSet(set) => Model::Meta {
            kind: MetaKind::Set,
            key: set.meta.key.to_vec(),
            flags: flags_of(&set.meta.flags),
            mode: set.mode.token(),
            data: set.data.to_vec(),
        },
        Request::MetaArithmetic(arithmetic) => Model::Meta {
            kind: MetaKind::Arithmetic,
            key: arithmetic.meta.key.to_vec(),
            flags: flags_of(&arithmetic.meta.flags),
            mode: if arithmetic.op == ArithmeticOp::Incr {
                b'I'
            } else {
                b'D'
            },
            data: Vec::new(),
        },
        Request::MetaNoop => Model::MetaNoop,
        Request::MetaDebug { key, binary } => Model::MetaDebug {
            key: key.to_vec(),
            binary: *binary,
        },
    }
}

/// Writes `model` with the client encoders.
fn encode(model: &Model, out: &mut Vec<u8>) {
    match model {
        Model::Get { cas, touch, keys } => match (touch, cas) {
            (None, false) => encode_get(out, keys),
            (None, true) => encode_gets(out, keys),
            (Some(exptime), false) => encode_gat(out, *exptime, keys),
            (Some(exptime), true) => encode_gats(out, *exptime, keys),
        },
        Model::Store {
            command,
            key,
            flags,
            exptime,
            data,
            noreply,
        } => {
            encode_store(out, *command, key, *flags, *exptime, data, *noreply);
        }
        Model::Delete { key, noreply } => encode_delete(out, key, *noreply),
        Model::Arithmetic {
            op,
            key,
            delta,
            noreply,
        } => encode_arithmetic(out, *op, key, *delta, *noreply),
        Model::Touch { key, exptime, noreply } => encode_touch(out, key, *exptime, *noreply),
        Model::FlushAll { delay, noreply } => {
            encode_request(
                out,
                &Request::FlushAll {
                    delay: *delay,
                    noreply: *noreply,
                },
            );
        }
        Model::Version => encode_request(out, &Request::Version),
        Model::Verbosity { level, noreply } => {
            encode_request(
                out,
                &Request::Verbosity {
                    level: *level,
                    noreply: *noreply,
                },
            );
        }
        Model::Stats { args } => encode_request(out, &Request::Stats { args: args.as_deref() }),
        Model::Quit => encode_request(out, &Request::Quit),
        Model::Meta {
            kind, key, flags, data, ..
        } => {
            let args: Vec<MetaArg<'_>> = flags
                .iter()
                .map(|(flag, token)| {
                    if token.is_empty() {
                        MetaArg::flag(*flag)
                    } else {
                        MetaArg::token(*flag, token)
                    }
                })
                .collect();
            match kind {
                MetaKind::Get => encode_mg(out, key, &args),
                MetaKind::Set => encode_ms(out, key, data, &args),
                MetaKind::Delete => encode_md(out, key, &args),
                MetaKind::Arithmetic => encode_ma(out, key, &args),
            }
        }
        Model::MetaNoop => encode_mn(out),
        Model::MetaDebug { key, binary } => encode_me(out, key, *binary),
    }
}

fn wire(model: &Model) -> Vec<u8> {
    let mut out = Vec::new();
    encode(model, &mut out);
    out
}

fn key_byte() -> impl Strategy<Value = u8> {
    prop_oneof![0x21u8..=0x7e, 0x80u8..=0xff]
}

fn text_key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        9 => prop::collection::vec(key_byte(), 1..=16),
        1 => prop::collection::vec(key_byte(), 240..=250),
    ]
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=64),
        prop::collection::vec(prop::sample::select(b"\r\n ab".to_vec()), 0..=32),
        prop::collection::vec(any::<u8>(), 1000..=1024),
    ]
}

fn printable_token(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0x21u8..=0x7e, 0..=max)
}

fn number_token<T: std::fmt::Display + std::fmt::Debug + Clone + 'static>(
    strategy: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Vec<u8>> {
    strategy.prop_map(|value| value.to_string().into_bytes()).boxed()
}

/// A valid token for meta flag `flag` of a `kind` command.
fn meta_token(flag: u8, kind: MetaKind) -> BoxedStrategy<(u8, Vec<u8>)> {
    let token = match flag {
        b'N' | b'T' | b'R' => number_token(any::<i64>()),
        b'C' | b'E' | b'J' | b'D' => number_token(any::<u64>()),
        b'F' => number_token(any::<u32>()),
        b'O' => printable_token(32).boxed(),
        b'P' | b'L' => printable_token(8).boxed(),
        b'M' => {
            let modes: &[u8] = match kind {
                MetaKind::Set => b"SEARP",
                MetaKind::Arithmetic => b"I+D-",
                MetaKind::Get | MetaKind::Delete => b"SEARPID+-xyz",
            };
            prop::sample::select(modes.to_vec()).prop_map(|mode| vec![mode]).boxed()
        }
        _ => Just(Vec::new()).boxed(),
    };
    token.prop_map(move |token| (flag, token)).boxed()
}

/// Distinct valid flags in random order; `b` among them means a binary key.
fn meta_flags(kind: MetaKind) -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop::sample::subsequence(b"bcfhklqstuvxCDEFIJLMNOPRT".to_vec(), 0..=12).prop_flat_map(move |letters| {
        letters
            .into_iter()
            .map(|flag| meta_token(flag, kind))
            .collect::<Vec<_>>()
            .prop_shuffle()
    })
}

fn meta_model(kind: MetaKind) -> impl Strategy<Value = Model> {
    (
        meta_flags(kind),
        text_key(),
        prop::collection::vec(any::<u8>(), 1..=64),
        data(),
    )
        .prop_map(move |(flags, text_key, binary_key, data)| {
            let binary = flags.iter().any(|(flag, _)| *flag == b'b');
            let mode_flag = flags.iter().find(|(flag, _)| *flag == b'M').map(|(_, token)| token[0]);
            let mode = match kind {
                MetaKind::Set => mode_flag.unwrap_or(b'S'),
                MetaKind::Arithmetic => match mode_flag {
                    Some(b'D' | b'-') => b'D',
                    _ => b'I',
                },
                MetaKind::Get | MetaKind::Delete => 0,
            };
            let data = if kind == MetaKind::Set { data } else { Vec::new() };
            Model::Meta {
                kind,
                key: if binary { binary_key } else { text_key },
                flags,
                mode,
                data,
            }
        })
}

fn store_command() -> impl Strategy<Value = StoreCommand> {
    prop_oneof![
        Just(StoreCommand::Set),
        Just(StoreCommand::Add),
        Just(StoreCommand::Replace),
        Just(StoreCommand::Append),
        Just(StoreCommand::Prepend),
        any::<u64>().prop_map(StoreCommand::Cas),
    ]
}

fn op() -> impl Strategy<Value = ArithmeticOp> {
    prop_oneof![Just(ArithmeticOp::Incr), Just(ArithmeticOp::Decr)]
}

fn model() -> impl Strategy<Value = Model> {
    prop_oneof![
        (
            any::<bool>(),
            any::<Option<i64>>(),
            prop::collection::vec(text_key(), 1..=32)
        )
            .prop_map(|(cas, touch, keys)| Model::Get { cas, touch, keys }),
        (
            store_command(),
            text_key(),
            any::<u32>(),
            any::<i64>(),
            data(),
            any::<bool>()
        )
            .prop_map(|(command, key, flags, exptime, data, noreply)| Model::Store {
                command,
                key,
                flags,
                exptime,
                data,
                noreply
            }),
        (text_key(), any::<bool>()).prop_map(|(key, noreply)| Model::Delete { key, noreply }),
        (op(), text_key(), any::<u64>(), any::<bool>()).prop_map(|(op, key, delta, noreply)| Model::Arithmetic {
            op,
            key,
            delta,
            noreply
        }),
        (text_key(), any::<i64>(), any::<bool>()).prop_map(|(key, exptime, noreply)| Model::Touch {
            key,
            exptime,
            noreply
        }),
        (any::<Option<i64>>(), any::<bool>()).prop_map(|(delay, noreply)| Model::FlushAll { delay, noreply }),
        Just(Model::Version),
        (any::<u32>(), any::<bool>()).prop_map(|(level, noreply)| Model::Verbosity { level, noreply }),
        prop::option::of(prop::collection::vec(
            prop::collection::vec(0x21u8..=0x7e, 1..=8),
            1..=3
        ))
        .prop_map(|args| Model::Stats {
            args: args.map(|tokens| tokens.join(&b' '))
        }),
        Just(Model::Quit),
        meta_model(MetaKind::Get),
        meta_model(MetaKind::Set),
        meta_model(MetaKind::Delete),
        meta_model(MetaKind::Arithmetic),
        Just(Model::MetaNoop),
        (any::<bool>(), text_key(), prop::collection::vec(any::<u8>(), 1..=64)).prop_map(
            |(binary, text_key, binary_key)| Model::MetaDebug {
                key: if binary { binary_key } else { text_key },
                binary
            }
        ),
    ]
}

/// Parses all of `buf` as one request.
fn parse_one(buf: &[u8]) -> Result<Model, TestCaseError> {
    match parse_request(buf, &LIMITS) {
        Ok(Parsed::Request { request, consumed }) => {
            prop_assert_eq!(consumed, buf.len());
            Ok(model_of(&request))
        }
        other => Err(TestCaseError::fail(format!(
            "{:?}: {other:?}",
            String::from_utf8_lossy(buf)
        ))),
    }
}

/// A server read loop over `chunks`: every request it parsed, and every
/// refusal.
fn serve(chunks: &[&[u8]]) -> Result<(Vec<Model>, Vec<RequestError>), TestCaseError> {
    let mut buffer = Vec::new();
    let mut discard = Discard::new(0);
    let (mut requests, mut refusals) = (Vec::new(), Vec::new());
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            let dropped = discard.take(buffer.len());
            buffer.drain(..dropped);
            if !discard.is_done() {
                break;
            }
            let parsed = parse_request(&buffer, &LIMITS).map_err(|fatal| TestCaseError::fail(fatal.to_string()))?;
            let consumed = match parsed {
                Parsed::Incomplete => break,
                Parsed::Request { request, consumed } => {
                    requests.push(model_of(&request));
                    consumed
                }
                Parsed::Reject { error, consumed, .. } => {
                    refusals.push(error);
                    consumed
                }
                Parsed::Swallow {
                    error,
                    consumed,
                    swallow,
                    ..
                } => {
                    refusals.push(error);
                    discard = Discard::new(swallow);
                    consumed
                }
            };
            prop_assert!(consumed > 0 && consumed <= buffer.len());
            buffer.drain(..consumed);
        }
    }
    prop_assert!(buffer.is_empty(), "left over {:?}", String::from_utf8_lossy(&buffer));
    Ok((requests, refusals))
}

/// Splits `bytes` at the given cut points.
fn split<'b>(bytes: &'b [u8], cuts: &[prop::sample::Index]) -> Vec<&'b [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for point in points.into_iter().chain([bytes.len()]) {
        chunks.push(&bytes[start..point]);
        start = point;
    }
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn requests_round_trip_through_the_client_encoder(model in model()) {
        let bytes = wire(&model);
        prop_assert_eq!(parse_one(&bytes)?, model.clone());
        // And the server's view re-encodes to the same bytes.
        let Ok(Parsed::Request { request, .. }) = parse_request(&bytes, &LIMITS) else {
            return Err(TestCaseError::fail("did not parse"));
        };
        let mut again = Vec::new();
        encode_request(&mut again, &request);
        prop_assert_eq!(again, bytes);
    }

    #[test]
    fn every_proper_prefix_is_incomplete(model in model()) {
        let bytes = wire(&model);
        for end in 0..bytes.len() {
            prop_assert_eq!(parse_request(&bytes[..end], &LIMITS), Ok(Parsed::Incomplete), "prefix {}", end);
        }
    }

    #[test]
    fn pipelines_parse_in_any_chunking(
        models in prop::collection::vec(model(), 1..=8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..=12),
    ) {
        let bytes: Vec<u8> = models.iter().flat_map(wire).collect();
        let (requests, refusals) = serve(&split(&bytes, &cuts))?;
        prop_assert!(refusals.is_empty(), "{:?}", refusals);
        prop_assert_eq!(requests, models);
    }

    #[test]
    fn oversized_values_are_refused_on_the_command_line(
        len in (LIMITS.max_value_bytes + 1)..=(16 * LIMITS.max_value_bytes),
        key in text_key(),
        noreply in any::<bool>(),
        meta in any::<bool>(),
        after in prop::collection::vec(any::<u8>(), 0..=64),
    ) {
        let mut line = Vec::new();
        if meta {
            line.extend_from_slice(b"ms ");
            line.extend_from_slice(&key);
            line.extend_from_slice(format!(" {len} T0\r\n").as_bytes());
        } else {
            line.extend_from_slice(b"set ");
            line.extend_from_slice(&key);
            line.extend_from_slice(format!(" 0 0 {len}{}\r\n", if noreply { " noreply" } else { "" }).as_bytes());
        }
        let expected = Parsed::Swallow {
            error: RequestError::TooLarge,
            noreply: noreply && !meta,
            consumed: line.len(),
            swallow: len + 2,
            // The key travels with the refusal: its old value must go.
            too_large: Some(TooLarge { key: std::borrow::Cow::Borrowed(&key[..]), replaces: true }),
        };
        // Nothing of the value needs to be there, and nothing after the line matters.
        prop_assert_eq!(parse_request(&line, &LIMITS), Ok(expected.clone()));
        let with_more = [line.as_slice(), &after].concat();
        prop_assert_eq!(parse_request(&with_more, &LIMITS), Ok(expected));
    }

    #[test]
    fn swallowed_values_never_leak_into_the_pipeline(
        before in model(),
        value in prop::collection::vec(any::<u8>(), (LIMITS.max_value_bytes + 1)..=(2 * LIMITS.max_value_bytes)),
        after in model(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..=12),
    ) {
        let oversized = Model::Store {
            command: StoreCommand::Set, key: b"big".to_vec(), flags: 0, exptime: 0, data: value, noreply: false,
        };
        let bytes = [wire(&before), wire(&oversized), wire(&after)].concat();
        let (requests, refusals) = serve(&split(&bytes, &cuts))?;
        prop_assert_eq!(requests, vec![before, after]);
        prop_assert_eq!(refusals, vec![RequestError::TooLarge]);
    }
}

fn response_key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(key_byte(), 1..=16)
}

/// Bytes without `\r` or `\n`, possibly with spaces.
fn line_text(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |byte| *byte != b'\r' && *byte != b'\n'),
        0..=max,
    )
}

fn meta_code() -> impl Strategy<Value = MetaCode> {
    prop::sample::select(vec![
        MetaCode::Va,
        MetaCode::Hd,
        MetaCode::En,
        MetaCode::Nf,
        MetaCode::Ns,
        MetaCode::Ex,
        MetaCode::Mn,
    ])
}

fn returned_flag() -> impl Strategy<Value = ReturnedFlag> {
    (0x21u8..=0x7e, printable_token(12)).prop_map(|(flag, token)| ReturnedFlag { flag, token })
}

fn response() -> impl Strategy<Value = Response> {
    let value = (response_key(), any::<u32>(), any::<Option<u64>>(), data())
        .prop_map(|(key, flags, cas, data)| Value { key, flags, cas, data });
    let stat = (
        printable_token(12).prop_filter("named", |name| !name.is_empty()),
        line_text(24),
    )
        .prop_map(|(name, value)| Stat { name, value });
    let status = prop::sample::select(vec![
        Status::Stored,
        Status::NotStored,
        Status::Exists,
        Status::NotFound,
        Status::Deleted,
        Status::Touched,
        Status::Ok,
        Status::Reset,
    ]);
    let meta = (meta_code(), prop::collection::vec(returned_flag(), 0..=8), data()).prop_map(|(code, flags, data)| {
        let data = (code == MetaCode::Va).then_some(data);
        MetaResponse { code, flags, data }
    });
    let field = (
        prop::collection::vec((0x21u8..=0x7e).prop_filter("no =", |byte| *byte != b'='), 0..=6),
        printable_token(6),
    );
    let debug =
        (response_key(), prop::collection::vec(field, 0..=6)).prop_map(|(key, fields)| MetaDebug { key, fields });
    prop_oneof![
        prop::collection::vec(value, 0..=6).prop_map(Response::Values),
        status.prop_map(Response::Status),
        any::<u64>().prop_map(Response::Number),
        prop::collection::vec(stat, 0..=6).prop_map(Response::Stats),
        line_text(24).prop_map(Response::Version),
        meta.prop_map(Response::Meta),
        debug.prop_map(Response::MetaDebug),
        line_text(24).prop_map(Response::Error),
        line_text(24).prop_map(Response::ClientError),
        line_text(24).prop_map(Response::ServerError),
    ]
}

/// The kind of request `response` answers; errors answer any.
fn kind_of(response: &Response, any_kind: ReplyKind) -> ReplyKind {
    match response {
        Response::Values(_) => ReplyKind::Retrieval,
        Response::Status(Status::Stored | Status::NotStored | Status::Exists | Status::NotFound) => ReplyKind::Storage,
        Response::Status(Status::Deleted) => ReplyKind::Delete,
        Response::Status(Status::Touched) => ReplyKind::Touch,
        Response::Status(Status::Reset) => ReplyKind::Stats,
        Response::Status(_) => ReplyKind::Ok,
        Response::Number(_) => ReplyKind::Arithmetic,
        Response::Stats(_) => ReplyKind::Stats,
        Response::Version(_) => ReplyKind::Version,
        Response::Meta(_) | Response::MetaDebug(_) => ReplyKind::Meta,
        Response::Error(_) | Response::ClientError(_) | Response::ServerError(_) => any_kind,
    }
}

fn reply_kind() -> impl Strategy<Value = ReplyKind> {
    prop::sample::select(vec![
        ReplyKind::Retrieval,
        ReplyKind::Storage,
        ReplyKind::Delete,
        ReplyKind::Arithmetic,
        ReplyKind::Touch,
        ReplyKind::Ok,
        ReplyKind::Version,
        ReplyKind::Stats,
        ReplyKind::Meta,
    ])
}

/// Feeds `chunks` to decoders, one response per entry of `kinds`.
fn decode_all(chunks: &[&[u8]], kinds: &[ReplyKind]) -> Result<Vec<Response>, TestCaseError> {
    let limits = ResponseLimits::default();
    let mut buffer = Vec::new();
    let mut responses = Vec::new();
    let mut decoder = ResponseDecoder::new(kinds[0], limits);
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        while responses.len() < kinds.len() {
            let progress = decoder
                .decode(&buffer)
                .map_err(|error| TestCaseError::fail(error.to_string()))?;
            prop_assert!(progress.consumed <= buffer.len());
            buffer.drain(..progress.consumed);
            match progress.response {
                Some(response) => {
                    responses.push(response);
                    if let Some(next) = kinds.get(responses.len()) {
                        decoder.expect(*next);
                    }
                }
                None => break,
            }
        }
    }
    prop_assert!(buffer.is_empty(), "left over {:?}", String::from_utf8_lossy(&buffer));
    Ok(responses)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn responses_round_trip_in_any_chunking(
        responses in prop::collection::vec((response(), reply_kind()), 1..=6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..=12),
    ) {
        let kinds: Vec<ReplyKind> = responses.iter().map(|(response, any_kind)| kind_of(response, *any_kind)).collect();
        let responses: Vec<Response> = responses.into_iter().map(|(response, _)| response).collect();
        let mut bytes = Vec::new();
        for response in &responses {
            encode_response(&mut bytes, response);
        }
        prop_assert_eq!(decode_all(&split(&bytes, &cuts), &kinds)?, responses);
    }
}

/// Pieces of requests and replies, to build bytes that get deep into the
/// parsers.
const FRAGMENTS: &[&[u8]] = &[
    b"get ",
    b"gets ",
    b"gat ",
    b"gats ",
    b"set ",
    b"add ",
    b"cas ",
    b"append ",
    b"delete ",
    b"incr ",
    b"decr ",
    b"touch ",
    b"flush_all",
    b"verbosity ",
    b"stats",
    b"version",
    b"quit",
    b"mg ",
    b"ms ",
    b"md ",
    b"ma ",
    b"mn",
    b"me ",
    b"noreply",
    b" ",
    b"  ",
    b"\r\n",
    b"\n",
    b"\r",
    b"0",
    b"1",
    b"5",
    b"-1",
    b"18446744073709551616",
    b"k",
    b"key",
    b"Zm9v",
    b"AAE=",
    b" b",
    b" v",
    b" q",
    b" k",
    b" T30",
    b" N0",
    b" C1",
    b" E2",
    b" F3",
    b" D1",
    b" J9",
    b" Oop",
    b" MS",
    b" ME",
    b" MD",
    b" M+",
    b" Mxx",
    b" I",
    b" x",
    b"VALUE ",
    b"END",
    b"STAT ",
    b"STORED",
    b"NOT_FOUND",
    b"DELETED",
    b"VA ",
    b"HD",
    b"EN",
    b"ME ",
    b"MN",
    b"ERROR",
    b"CLIENT_ERROR ",
    b"SERVER_ERROR ",
    b"VERSION ",
    b"exp=1",
    b"hello",
    b"\x00",
    b"\x80",
    b"HTTP/1.1",
];

fn protocolish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..=24).prop_map(|pieces| pieces.concat())
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..=256), protocolish()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_parse_without_panic_and_reparse_the_same(input in bytes()) {
        let small = Limits { max_key_bytes: 8, max_value_bytes: 16, max_line_bytes: 64, max_keys_per_get: 3 };
        for limits in [LIMITS, small] {
            let mut rest = input.as_slice();
            while let Ok(parsed) = parse_request(rest, &limits) {
                let consumed = match parsed {
                    Parsed::Incomplete => break,
                    Parsed::Request { request, consumed } => {
                        let mut again = Vec::new();
                        encode_request(&mut again, &request);
                        // A bare `\n` comes back as `\r\n`: one byte more.
                        let relaxed = Limits { max_line_bytes: limits.max_line_bytes + 1, ..limits };
                        match parse_request(&again, &relaxed) {
                            Ok(Parsed::Request { request: reparsed, consumed: used }) => {
                                prop_assert_eq!(used, again.len());
                                prop_assert_eq!(model_of(&reparsed), model_of(&request));
                            }
                            other => return Err(TestCaseError::fail(format!("{again:?} reparsed as {other:?}"))),
                        }
                        consumed
                    }
                    Parsed::Reject { consumed, .. } => consumed,
                    Parsed::Swallow { consumed, swallow, .. } => consumed.saturating_add(swallow).min(rest.len()),
                };
                prop_assert!(consumed > 0 && consumed <= rest.len());
                rest = &rest[consumed..];
            }
        }
    }

    #[test]
    fn any_bytes_decode_without_panic_and_reencode_the_same(input in bytes(), kind in reply_kind()) {
        let limits = ResponseLimits { max_line_bytes: 128, max_value_bytes: 64, max_items: 8 };
        let mut decoder = ResponseDecoder::new(kind, limits);
        let Ok(progress) = decoder.decode(&input) else { return Ok(()) };
        prop_assert!(progress.consumed <= input.len());
        if let Some(response) = progress.response {
            let mut again = Vec::new();
            encode_response(&mut again, &response);
            let mut fresh = ResponseDecoder::new(kind, ResponseLimits::default());
            let reparsed = fresh.decode(&again).map_err(|error| TestCaseError::fail(error.to_string()))?;
            prop_assert_eq!(reparsed.consumed, again.len());
            prop_assert_eq!(reparsed.response, Some(response));
        }
    }
}

#[test]
fn set_mode_letters_are_the_documented_ones() {
    let modes: Vec<_> = b"SEARP".iter().map(|&mode| SetMode::from_token(mode)).collect();
    assert_eq!(
        modes,
        [
            Some(SetMode::Set),
            Some(SetMode::Add),
            Some(SetMode::Append),
            Some(SetMode::Replace),
            Some(SetMode::Prepend)
        ]
    );
}
