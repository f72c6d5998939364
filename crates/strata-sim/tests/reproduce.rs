//! Exact reproductions of published numbers, from the public traces in
//! `$STRATA_TRACES` (see `/work/shared/traces/README.md` for where each
//! number comes from). Without the traces each test says loudly that it
//! skipped; with `STRATA_REQUIRE_TRACES=1` a missing trace fails instead.
//!
//! - libCacheSim's own test expectations: byte-mode miss counts of LRU, FIFO
//!   and Belady (always admitting) on cloudPhysicsIO at 128 MiB × 1..8;
//! - the ARC paper's LRU hit ratios on its OLTP trace;
//! - the reference table of the traces' README: `opt` (MIN with bypass) and
//!   `lcs-belady` (libCacheSim's Belady) on every trace and size, and LRU and
//!   FIFO, whose columns agree between both reference simulators.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use strata_sim::report::percent_2dp;
use strata_sim::trace::{self, SizeMode, Trace, trace_for_test};
use strata_sim::{Algorithm, CapacitySpec, Measurement, Plan, simulate};

/// Traces already loaded, by file name and byte mode.
type Loaded = Mutex<HashMap<(String, bool), Arc<Trace>>>;

/// Loads a trace once per test binary, or `None` (loudly) without traces.
fn load(file: &str, mode: SizeMode) -> Option<Arc<Trace>> {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    let key = (file.to_owned(), mode == SizeMode::Bytes);
    let cache = LOADED.get_or_init(Default::default);
    if let Some(trace) = cache.lock().unwrap().get(&key) {
        return Some(trace.clone());
    }
    let path = trace_for_test(file)?;
    let trace = Arc::new(trace::load(&path, mode).unwrap_or_else(|e| panic!("{e}")));
    cache.lock().unwrap().insert(key, trace.clone());
    Some(trace)
}

fn run(trace: &Trace, policies: &str, capacities: &[u64], mode: SizeMode) -> strata_sim::WorkloadReport {
    let plan = Plan {
        algorithms: Algorithm::parse_list(policies).unwrap(),
        capacities: capacities.iter().map(|&c| CapacitySpec::Units(c)).collect(),
        mode,
        threads: 0,
    };
    let mut report = simulate(std::slice::from_ref(trace), &plan, &()).unwrap();
    report.workloads.remove(0)
}

fn percent(measurement: &Measurement) -> String {
    percent_2dp(measurement.hits, measurement.hits + measurement.misses)
}

#[test]
fn libcachesim_byte_mode_miss_counts_on_cloudphysics() {
    let Some(trace) = load("libcachesim_cloudPhysicsIO.sizes.txt.gz", SizeMode::Bytes) else {
        return;
    };
    // libCacheSim test/test_evictionAlgo.c: test_LRU, test_FIFO, test_Belady
    // (miss_cnt_true, the README's table, and miss_byte_true beside it).
    let expected: [(&str, [u64; 8], [u64; 8]); 3] = [
        (
            "lru",
            [93374, 89783, 83572, 81722, 72494, 72104, 71972, 71704],
            [
                4214303232, 4061242368, 3778040320, 3660569600, 3100927488, 3078128640, 3075403776, 3061662720,
            ],
        ),
        (
            "fifo",
            [93403, 89386, 84387, 84025, 72498, 72228, 72182, 72140],
            [
                4213112832, 4052646400, 3829170176, 3807412736, 3093146112, 3079525888, 3079210496, 3077547520,
            ],
        ),
        (
            "belady",
            [79256, 70724, 65481, 61594, 59645, 57599, 50873, 48974],
            [
                3472532480, 2995165696, 2726689792, 2537648128, 2403427840, 2269212672, 2134992896, 2029769728,
            ],
        ),
    ];
    let capacities: Vec<u64> = (1..=8).map(|i| i * (128 << 20)).collect();
    let report = run(&trace, "lru,fifo,belady", &capacities, SizeMode::Bytes);
    assert_eq!(report.requests, 113_872);
    assert_eq!(report.requested_bytes, 4_368_040_448);
    let mut wrong = Vec::new();
    for (policy, misses, miss_bytes) in expected {
        let algorithm: Algorithm = policy.parse().unwrap();
        for ((&capacity, &misses), &miss_bytes) in capacities.iter().zip(&misses).zip(&miss_bytes) {
            let got = report.get(algorithm, capacity).unwrap();
            if (got.misses, got.miss_bytes) != (misses, miss_bytes) {
                wrong.push(format!(
                    "{policy} at {} MiB: {} misses of {} bytes, expected {misses} of {miss_bytes}",
                    capacity >> 20,
                    got.misses,
                    got.miss_bytes
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "libCacheSim miss counts differ:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn arc_paper_lru_hit_ratios_on_oltp() {
    let Some(trace) = load("arc_OLTP.txt.gz", SizeMode::Count) else {
        return;
    };
    // Megiddo & Modha, FAST'03, Table III (OLTP).
    let expected = [
        (1000, "32.83"),
        (2000, "42.47"),
        (5000, "53.65"),
        (10000, "60.70"),
        (15000, "64.63"),
    ];
    let capacities: Vec<u64> = expected.iter().map(|&(c, _)| c).collect();
    let report = run(&trace, "lru", &capacities, SizeMode::Count);
    let lru: Algorithm = "lru".parse().unwrap();
    let got: Vec<(u64, String)> = capacities
        .iter()
        .map(|&c| (c, percent(report.get(lru, c).unwrap())))
        .collect();
    let want: Vec<(u64, String)> = expected.iter().map(|&(c, h)| (c, h.to_owned())).collect();
    assert_eq!(got, want);
}

/// One trace of the reference table: per size, the expected hit ratios of
/// the columns in [`COLUMNS`] (`None` where the table leaves a cell empty).
struct Reference {
    trace: &'static str,
    requests: u64,
    rows: &'static [(u64, [Option<&'static str>; 4])],
}

/// Our names for the table's `lru`, `fifo`, `opt` and `lcs-belady` columns.
const COLUMNS: [&str; 4] = ["lru", "fifo", "opt", "belady"];

#[test]
fn reference_table_lru_fifo_opt_and_belady_in_count_mode() {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for reference in REFERENCE {
        let Some(trace) = load(reference.trace, SizeMode::Count) else {
            continue;
        };
        let capacities: Vec<u64> = reference.rows.iter().map(|&(size, _)| size).collect();
        let report = run(&trace, &COLUMNS.join(","), &capacities, SizeMode::Count);
        assert_eq!(report.requests, reference.requests, "{}", reference.trace);
        for &(capacity, ref cells) in reference.rows {
            for (column, cell) in COLUMNS.iter().zip(cells) {
                let Some(expected) = cell else { continue };
                let measurement = report.get(column.parse().unwrap(), capacity).unwrap();
                let got = percent(measurement);
                checked += 1;
                if got != *expected {
                    wrong.push(format!(
                        "{} {column} at {capacity}: {got} ({} hits), expected {expected}",
                        reference.trace, measurement.hits
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The README's reference table (lru, fifo, opt, lcs-belady columns).
const REFERENCE: &[Reference] = &[
    Reference {
        trace: "arc_OLTP.txt.gz",
        requests: 914145,
        rows: &[
            (250, [Some("16.47"), None, Some("38.47"), None]),
            (500, [Some("23.45"), None, Some("46.43"), None]),
            (750, [Some("28.28"), None, Some("50.67"), None]),
            (1000, [Some("32.83"), Some("28.53"), Some("53.62"), Some("53.61")]),
            (1250, [Some("36.21"), None, Some("55.84"), None]),
            (1500, [Some("38.70"), None, Some("57.62"), None]),
            (1750, [Some("40.79"), None, Some("59.13"), None]),
            (2000, [Some("42.47"), Some("37.44"), Some("60.40"), Some("60.40")]),
            (5000, [Some("53.65"), Some("49.68"), Some("68.27"), Some("68.27")]),
            (10000, [Some("60.70"), Some("57.29"), Some("73.02"), Some("73.02")]),
            (15000, [Some("64.63"), Some("61.42"), Some("75.14"), Some("75.14")]),
        ],
    },
    Reference {
        trace: "cache2k_web07.txt.gz",
        requests: 76118,
        rows: &[
            (500, [Some("45.58"), Some("42.75"), Some("59.17"), Some("59.16")]),
            (1000, [Some("50.41"), Some("47.69"), Some("63.59"), Some("63.58")]),
            (2000, [Some("55.50"), Some("52.93"), Some("67.97"), Some("67.97")]),
            (4000, [Some("60.82"), Some("58.56"), Some("71.59"), Some("71.59")]),
            (8000, [Some("66.92"), Some("65.08"), Some("73.09"), Some("73.09")]),
        ],
    },
    Reference {
        trace: "cache2k_web12.txt.gz",
        requests: 95607,
        rows: &[
            (500, [Some("55.78"), Some("52.38"), Some("71.82"), Some("71.81")]),
            (1000, [Some("64.73"), Some("60.82"), Some("77.75"), Some("77.75")]),
            (2000, [Some("72.56"), Some("68.65"), Some("82.34"), Some("82.34")]),
            (4000, [Some("78.97"), Some("75.71"), Some("85.29"), Some("85.29")]),
            (8000, [Some("83.87"), Some("81.84"), Some("85.61"), Some("85.61")]),
        ],
    },
    Reference {
        trace: "libcachesim_cloudPhysicsIO.txt.gz",
        requests: 113872,
        rows: &[
            (500, [Some("16.22"), Some("15.27"), Some("20.82"), Some("20.81")]),
            (1000, [Some("16.73"), Some("16.12"), Some("23.58"), Some("23.58")]),
            (5000, [Some("19.62"), Some("19.58"), Some("37.38"), Some("37.38")]),
            (10000, [Some("30.24"), Some("30.44"), Some("45.69"), Some("45.69")]),
            (20000, [Some("36.72"), Some("36.57"), Some("54.47"), Some("54.47")]),
            (40000, [Some("56.97"), Some("56.84"), Some("56.99"), Some("56.99")]),
        ],
    },
    Reference {
        trace: "lirs_2_pools.txt.gz",
        requests: 100000,
        rows: &[
            (100, [Some("21.95"), Some("19.38"), Some("50.76"), Some("50.64")]),
            (250, [Some("41.71"), Some("33.58"), Some("57.93"), Some("57.91")]),
            (500, [Some("51.06"), Some("42.70"), Some("62.85"), Some("62.84")]),
            (1000, [Some("54.41"), Some("49.96"), Some("68.52"), Some("68.52")]),
            (2000, [Some("59.33"), Some("57.33"), Some("75.34"), Some("75.34")]),
            (4000, [Some("68.52"), Some("67.88"), Some("83.07"), Some("83.07")]),
        ],
    },
    Reference {
        trace: "lirs_cpp.txt.gz",
        requests: 9047,
        rows: &[
            (50, [Some("9.26"), Some("10.71"), Some("63.46"), Some("62.76")]),
            (100, [Some("69.71"), Some("54.84"), Some("82.60"), Some("82.51")]),
            (200, [Some("82.16"), Some("74.52"), Some("86.00"), Some("85.98")]),
            (300, [Some("83.49"), Some("79.24"), Some("86.48"), Some("86.48")]),
            (400, [Some("84.40"), Some("80.84"), Some("86.48"), Some("86.48")]),
            (500, [Some("84.78"), Some("82.09"), Some("86.48"), Some("86.48")]),
            (600, [Some("85.83"), Some("83.15"), Some("86.48"), Some("86.48")]),
            (700, [Some("85.98"), Some("84.49"), Some("86.48"), Some("86.48")]),
        ],
    },
    Reference {
        trace: "lirs_cs.txt.gz",
        requests: 6781,
        rows: &[
            (100, [Some("1.83"), Some("1.83"), Some("7.73"), Some("7.73")]),
            (200, [Some("1.83"), Some("1.83"), Some("13.63"), Some("13.63")]),
            (300, [Some("1.83"), Some("1.83"), Some("19.53"), Some("19.53")]),
            (400, [Some("1.83"), Some("1.83"), Some("25.42"), Some("25.42")]),
            (500, [Some("1.83"), Some("1.83"), Some("31.32"), Some("31.32")]),
            (600, [Some("1.83"), Some("1.83"), Some("37.22"), Some("37.22")]),
            (700, [Some("1.83"), Some("1.83"), Some("43.12"), Some("43.12")]),
            (800, [Some("1.83"), Some("1.83"), Some("49.02"), Some("49.02")]),
            (900, [Some("1.83"), Some("1.83"), Some("54.92"), Some("54.92")]),
            (1000, [Some("1.83"), Some("1.83"), Some("60.82"), Some("60.82")]),
        ],
    },
    Reference {
        trace: "lirs_gli.txt.gz",
        requests: 6015,
        rows: &[
            (250, [Some("0.91"), Some("0.91"), Some("17.71"), Some("17.64")]),
            (500, [Some("0.95"), Some("0.95"), Some("34.33"), Some("34.26")]),
            (750, [Some("1.15"), Some("1.08"), Some("46.13"), Some("46.10")]),
            (1000, [Some("11.21"), Some("11.14"), Some("53.15"), Some("53.13")]),
            (1250, [Some("21.25"), Some("11.14"), Some("57.31"), Some("57.29")]),
            (1500, [Some("36.56"), Some("27.61"), Some("57.96"), Some("57.96")]),
            (1750, [Some("45.04"), Some("42.08"), Some("57.96"), Some("57.96")]),
            (2000, [Some("57.41"), Some("47.90"), Some("57.96"), Some("57.96")]),
        ],
    },
    Reference {
        trace: "lirs_loop.txt.gz",
        requests: 505500,
        rows: &[
            (100, [Some("0.00"), Some("0.00"), Some("9.87"), Some("9.79")]),
            (250, [Some("0.00"), Some("0.00"), Some("24.68"), Some("24.63")]),
            (500, [Some("0.00"), Some("0.00"), Some("49.36"), Some("49.36")]),
            (750, [Some("0.00"), Some("0.00"), Some("74.04"), Some("74.04")]),
            (1000, [Some("0.00"), Some("0.00"), Some("98.71"), Some("98.71")]),
        ],
    },
    Reference {
        trace: "lirs_multi1.txt.gz",
        requests: 15858,
        rows: &[
            (100, [Some("18.17"), Some("15.00"), Some("47.97"), Some("47.92")]),
            (250, [Some("42.86"), Some("33.31"), Some("52.48"), Some("52.48")]),
            (500, [Some("46.51"), Some("40.72"), Some("58.79"), Some("58.78")]),
            (1000, [Some("48.23"), Some("44.79"), Some("71.40"), Some("71.40")]),
            (1500, [Some("48.56"), Some("46.30"), Some("83.02"), Some("83.01")]),
            (2000, [Some("83.21"), Some("73.92"), Some("83.57"), Some("83.57")]),
        ],
    },
    Reference {
        trace: "lirs_multi2.txt.gz",
        requests: 26311,
        rows: &[
            (250, [Some("24.10"), Some("17.88"), Some("46.65"), Some("46.60")]),
            (500, [Some("35.98"), Some("28.85"), Some("53.62"), Some("53.60")]),
            (1000, [Some("47.80"), Some("38.77"), Some("62.16"), Some("62.16")]),
            (1500, [Some("48.31"), Some("42.06"), Some("69.76"), Some("69.76")]),
            (2000, [Some("49.00"), Some("44.27"), Some("74.65"), Some("74.65")]),
            (3000, [Some("71.18"), Some("65.41"), Some("78.40"), Some("78.40")]),
        ],
    },
    Reference {
        trace: "lirs_multi3.txt.gz",
        requests: 30241,
        rows: &[
            (250, [Some("17.76"), Some("14.81"), Some("42.05"), Some("41.99")]),
            (500, [Some("32.65"), Some("24.91"), Some("48.90"), Some("48.88")]),
            (1000, [Some("37.70"), Some("32.97"), Some("56.29"), Some("56.28")]),
            (1500, [Some("44.12"), Some("37.67"), Some("62.90"), Some("62.89")]),
            (2000, [Some("44.59"), Some("39.65"), Some("68.78"), Some("68.78")]),
            (3000, [Some("52.12"), Some("48.15"), Some("73.60"), Some("73.60")]),
            (4000, [Some("66.12"), Some("61.88"), Some("75.35"), Some("75.35")]),
        ],
    },
    Reference {
        trace: "lirs_ps.txt.gz",
        requests: 10448,
        rows: &[
            (100, [Some("7.37"), Some("7.37"), Some("31.34"), Some("31.14")]),
            (200, [Some("12.19"), Some("12.19"), Some("50.48"), Some("50.29")]),
            (400, [Some("48.55"), Some("30.37"), Some("56.20"), Some("56.18")]),
            (600, [Some("48.55"), Some("36.43"), Some("60.03"), Some("60.01")]),
            (800, [Some("48.55"), Some("42.49"), Some("63.86"), Some("63.84")]),
            (1000, [Some("48.55"), Some("42.49"), Some("67.69"), Some("67.67")]),
            (1500, [Some("52.58"), Some("48.55"), Some("70.49"), Some("70.49")]),
        ],
    },
    Reference {
        trace: "lirs_scan.txt.gz",
        requests: 50025,
        rows: &[
            (100, [Some("0.00"), Some("0.00"), Some("4.80"), Some("4.80")]),
            (250, [Some("0.00"), Some("0.00"), Some("11.99"), Some("11.99")]),
            (500, [Some("0.00"), Some("0.00"), Some("23.99"), Some("23.99")]),
            (1000, [Some("0.00"), Some("0.00"), Some("47.98"), Some("47.98")]),
            (1500, [Some("0.00"), Some("0.00"), Some("71.96"), Some("71.96")]),
        ],
    },
    Reference {
        trace: "lirs_sprite.txt.gz",
        requests: 133996,
        rows: &[
            (100, [Some("21.58"), Some("22.30"), Some("50.91"), Some("50.80")]),
            (200, [Some("39.88"), Some("40.20"), Some("68.90"), Some("68.86")]),
            (300, [Some("57.75"), Some("56.58"), Some("78.85"), Some("78.83")]),
            (400, [Some("70.77"), Some("66.14"), Some("84.56"), Some("84.56")]),
            (500, [Some("78.30"), Some("73.61"), Some("87.89"), Some("87.88")]),
            (600, [Some("83.19"), Some("78.50"), Some("89.95"), Some("89.95")]),
            (800, [Some("88.55"), Some("84.49"), Some("92.19"), Some("92.19")]),
            (1000, [Some("90.64"), Some("87.24"), Some("93.24"), Some("93.24")]),
        ],
    },
    Reference {
        trace: "lirs_zigzag.txt.gz",
        requests: 52001,
        rows: &[
            (100, [Some("4.76"), Some("4.76"), Some("4.81"), Some("4.76")]),
            (250, [Some("11.97"), Some("11.97"), Some("12.02"), Some("11.97")]),
            (500, [Some("23.99"), Some("23.99"), Some("24.04"), Some("23.99")]),
            (1000, [Some("48.03"), Some("48.03"), Some("48.08"), Some("48.03")]),
            (1500, [Some("72.07"), Some("49.01"), Some("72.11"), Some("72.07")]),
        ],
    },
];
