//! memcached codec throughput: parsing the hot requests, encoding their
//! replies, and decoding a reply on the client side, one thread, in ns per
//! operation.
//!
//! Each case runs `RUNS` times over `OPS` operations; the table reports the
//! minimum and median ns/op. Values are 100 bytes, keys 11.
//!
//! `cargo bench -p strata-proto --bench memcache` (add `-- --ops N` or
//! `-- --runs N` to change the size).

use std::hint::black_box;
use std::time::Instant;

use strata_proto::memcache::encode::{encode_end, encode_value};
use strata_proto::memcache::{
    Limits, MetaCode, MetaReply, Parsed, ReplyKind, ResponseDecoder, ResponseLimits, parse_request,
};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == name)
        .and_then(|at| args.get(at + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A named operation to time.
type Case<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Runs `op` `ops` times, `runs` times; min and median ns per op.
fn measure(ops: usize, runs: usize, mut op: impl FnMut()) -> (f64, f64) {
    let mut per_op: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ops {
                op();
            }
            start.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    per_op.sort_by(f64::total_cmp);
    (per_op[0], per_op[per_op.len() / 2])
}

fn parse_case(buf: &[u8], limits: &Limits) -> impl FnMut() {
    move || {
        let parsed = parse_request(black_box(buf), limits);
        assert!(matches!(parsed, Ok(Parsed::Request { .. })));
        black_box(parsed.is_ok());
    }
}

fn main() {
    let ops = arg("--ops", 1_000_000);
    let runs = arg("--runs", 5);
    let limits = Limits::default();
    let value = [b'v'; 100];
    let set = [b"set user:12345 0 0 100\r\n".as_slice(), &value, b"\r\n"].concat();
    let ms = [b"ms user:12345 100 T60 F0\r\n".as_slice(), &value, b"\r\n"].concat();
    let multiget: Vec<u8> = {
        let keys: Vec<String> = (0..16).map(|key| format!("user:{key:05}")).collect();
        format!("get {}\r\n", keys.join(" ")).into_bytes()
    };
    let reply = {
        let mut out = Vec::new();
        encode_value(&mut out, b"user:12345", 0, &value, None);
        encode_end(&mut out);
        out
    };

    let mut out = Vec::with_capacity(1024);
    let mut decoder = ResponseDecoder::new(ReplyKind::Retrieval, ResponseLimits::default());
    let cases: Vec<Case<'_>> = vec![
        ("parse get <key>", Box::new(parse_case(b"get user:12345\r\n", &limits))),
        ("parse get <16 keys>", Box::new(parse_case(&multiget, &limits))),
        (
            "parse mg <key> v f t",
            Box::new(parse_case(b"mg user:12345 v f t\r\n", &limits)),
        ),
        ("parse set (100 B)", Box::new(parse_case(&set, &limits))),
        ("parse ms (100 B)", Box::new(parse_case(&ms, &limits))),
        (
            "encode VALUE+END (100 B)",
            Box::new(|| {
                out.clear();
                encode_value(&mut out, black_box(b"user:12345"), 0, black_box(&value), None);
                encode_end(&mut out);
                black_box(out.len());
            }),
        ),
        (
            "encode VA f t c (100 B)",
            Box::new(|| {
                let mut buffer = Vec::with_capacity(256);
                let mut line = MetaReply::value(&mut buffer, value.len());
                line.uint(b'f', 0).int(b't', -1).uint(b'c', 1234567);
                line.finish_with_data(black_box(&value));
                black_box(buffer.len());
                let mut status = Vec::with_capacity(16);
                MetaReply::status(&mut status, MetaCode::Hd).finish();
                black_box(status.len());
            }),
        ),
        (
            "decode VALUE+END (100 B)",
            Box::new(|| {
                let progress = decoder.decode(black_box(&reply));
                assert!(matches!(progress, Ok(ref done) if done.response.is_some()));
            }),
        ),
    ];

    println!("memcache codec, {ops} ops x {runs} runs, one thread");
    println!("{:<28} {:>12} {:>12}", "case", "min ns/op", "median ns/op");
    for (name, mut case) in cases {
        let (min, median) = measure(ops, runs, &mut case);
        println!("{name:<28} {min:>12.1} {median:>12.1}");
    }
}
