//! Writing a [`Report`] as an aligned table, CSV or JSON.
//!
//! - table: per workload, one matrix of hit ratios (percent, two decimals)
//!   and one of miss counts, a row per capacity and a column per algorithm;
//!   for people.
//! - CSV: one row per workload, capacity and algorithm, with raw counts and
//!   ratios as fractions; for spreadsheets and scripts.
//! - JSON: the [`Report`] as serde serializes it; for programs.

use std::fmt::Write as _;
use std::str::FromStr;

use crate::engine::{Measurement, Report, WorkloadReport};
use crate::trace::SizeMode;

/// An output format of `strata sim`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// Comma-separated values, one row per measurement.
    Csv,
    /// The whole report as JSON.
    Json,
}

/// A format name that is not `table`, `csv` or `json`.
#[derive(Debug, thiserror::Error)]
#[error("unknown format {0:?} (known: table, csv, json)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            _ => Err(UnknownFormat(s.to_owned())),
        }
    }
}

/// Renders `report` in `format`; the text ends with a newline.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => table(report),
        Format::Csv => csv(report),
        Format::Json => {
            // Serializing plain numbers and strings cannot fail.
            let mut json = serde_json::to_string_pretty(report).expect("a report serializes");
            json.push('\n');
            json
        }
    }
}

/// The aligned, human-readable form.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for (index, workload) in report.workloads.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{}", headline(workload, report.mode));
        matrix(&mut out, "hit ratio (%)", workload, report.mode, |m| {
            percent_2dp(m.hits, m.hits + m.misses)
        });
        matrix(&mut out, "misses", workload, report.mode, |m| group_digits(m.misses));
    }
    out
}

fn headline(workload: &WorkloadReport, mode: SizeMode) -> String {
    match mode {
        SizeMode::Count => format!(
            "{}: {} requests, {} distinct keys (capacity in entries)",
            workload.name,
            group_digits(workload.requests),
            group_digits(workload.unique_keys)
        ),
        SizeMode::Bytes => format!(
            "{}: {} requests of {} bytes, {} distinct objects of {} bytes (capacity in bytes)",
            workload.name,
            group_digits(workload.requests),
            group_digits(workload.requested_bytes),
            group_digits(workload.unique_keys),
            group_digits(workload.unique_bytes)
        ),
    }
}

fn matrix(
    out: &mut String,
    title: &str,
    workload: &WorkloadReport,
    mode: SizeMode,
    cell: impl Fn(&Measurement) -> String,
) {
    let capacities: Vec<String> = workload
        .capacities
        .iter()
        .zip(&workload.capacities_given)
        .map(|(&capacity, given)| {
            let label = capacity_label(capacity, mode);
            if given.ends_with('%') {
                format!("{label} ({given})")
            } else {
                label
            }
        })
        .collect();
    let rows: Vec<Vec<String>> = workload
        .capacities
        .iter()
        .map(|&capacity| {
            workload
                .algorithms
                .iter()
                .map(|&algorithm| workload.get(algorithm, capacity).map_or_else(|| "-".into(), &cell))
                .collect()
        })
        .collect();
    let first_width = capacities
        .iter()
        .map(String::len)
        .chain(["capacity".len()])
        .max()
        .unwrap_or(8);
    let widths: Vec<usize> = workload
        .algorithms
        .iter()
        .enumerate()
        .map(|(column, algorithm)| {
            rows.iter()
                .map(|row| row[column].len())
                .chain([algorithm.name().len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let _ = writeln!(out, "\n{title}");
    let _ = write!(out, "{:>first_width$}", "capacity");
    for (algorithm, width) in workload.algorithms.iter().zip(&widths) {
        let _ = write!(out, "  {:>width$}", algorithm.name());
    }
    out.push('\n');
    for (label, row) in capacities.iter().zip(&rows) {
        let _ = write!(out, "{label:>first_width$}");
        for (value, width) in row.iter().zip(&widths) {
            let _ = write!(out, "  {value:>width$}");
        }
        out.push('\n');
    }
}

/// A capacity for people: entries as is; bytes in the largest binary unit
/// that divides them exactly (`128MiB`), else as is.
pub fn capacity_label(capacity: u64, mode: SizeMode) -> String {
    if mode == SizeMode::Bytes {
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if capacity >= 1 << shift && capacity % (1 << shift) == 0 {
                return format!("{}{unit}", capacity >> shift);
            }
        }
    }
    capacity.to_string()
}

/// `part / whole` as a percentage with two decimals: the double
/// `100 · part / whole` (one rounding), printed exactly rounded, as C's
/// `printf("%.2f")` and Python's `f"{:.2f}"` print it. That is how the
/// published tables were printed, so ties come out the same: 50755 of
/// 100000 is `50.76` (the double is just above 50.755), 62845 of 100000 is
/// `62.84` (just below). `0.00` when `whole` is 0.
pub fn percent_2dp(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.00".to_owned();
    }
    format!("{:.2}", part as f64 * 100.0 / whole as f64)
}

/// `1234567` as `1,234,567`.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The CSV form, with a header row.
pub fn csv(report: &Report) -> String {
    let mode = match report.mode {
        SizeMode::Count => "count",
        SizeMode::Bytes => "bytes",
    };
    let mut out = String::from(
        "workload,mode,capacity,policy,requests,hits,misses,hit_ratio,hit_bytes,miss_bytes,byte_hit_ratio\n",
    );
    for workload in &report.workloads {
        let name = csv_field(&workload.name);
        for m in &workload.results {
            let _ = writeln!(
                out,
                "{name},{mode},{},{},{},{},{},{:.6},{},{},{:.6}",
                m.capacity,
                m.algorithm,
                workload.requests,
                m.hits,
                m.misses,
                m.hit_ratio,
                m.hit_bytes,
                m.miss_bytes,
                m.byte_hit_ratio()
            );
        }
    }
    out
}

/// Quotes a field that holds a comma, quote or line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Algorithm;
    use crate::capacity::CapacitySpec;
    use crate::engine::{Plan, simulate};
    use crate::trace::{Request, Trace};

    fn report(mode: SizeMode) -> Report {
        let requests = [1u64, 2, 1, 3, 1, 2, 4, 2]
            .iter()
            .map(|&key| Request { key, size: 1000 })
            .collect();
        let trace = Trace {
            name: "zipf:1,keys=4".into(),
            requests,
        };
        let plan = Plan {
            algorithms: Algorithm::parse_list("lru,opt").unwrap(),
            capacities: vec![CapacitySpec::Units(2048), CapacitySpec::Units(3000)],
            mode,
            threads: 1,
        };
        simulate(&[trace], &plan, &()).unwrap()
    }

    #[test]
    fn table_aligns_columns_and_labels_byte_capacities() {
        let text = table(&report(SizeMode::Bytes));
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("zipf:1,keys=4: 8 requests of 8,000 bytes"),
            "{text}"
        );
        assert_eq!(lines[2], "hit ratio (%)");
        assert_eq!(lines[3], "capacity    lru    opt");
        assert_eq!(lines[4], "    2KiB  37.50  50.00");
        assert_eq!(lines[5], "    3000  50.00  50.00");
        assert_eq!(lines[7], "misses");
        assert_eq!(lines[9], "    2KiB    5    4");
    }

    #[test]
    fn csv_quotes_names_and_json_parses() {
        let report = report(SizeMode::Count);
        let text = csv(&report);
        let mut lines = text.lines();
        assert!(lines.next().unwrap().starts_with("workload,mode,capacity,policy"));
        assert_eq!(
            lines.next().unwrap(),
            "\"zipf:1,keys=4\",count,2048,lru,8,4,4,0.500000,4000,4000,0.500000"
        );
        let json: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
        assert_eq!(json["mode"], "count");
        assert_eq!(json["workloads"][0]["policies"][1], "opt");
        assert_eq!(json["workloads"][0]["results"][0]["policy"], "lru");
        assert_eq!(json["workloads"][0]["results"][0]["hits"], 4);
    }

    #[test]
    fn percentages_print_like_the_published_tables() {
        assert_eq!(percent_2dp(50_755, 100_000), "50.76");
        assert_eq!(percent_2dp(62_845, 100_000), "62.84");
        assert_eq!(percent_2dp(54_415, 100_000), "54.41");
        assert_eq!(percent_2dp(50_754, 100_000), "50.75");
        assert_eq!(percent_2dp(1, 3), "33.33");
        assert_eq!(percent_2dp(2, 3), "66.67");
        assert_eq!(percent_2dp(7, 7), "100.00");
        assert_eq!(percent_2dp(0, 0), "0.00");
        assert_eq!(percent_2dp(u64::MAX, u64::MAX), "100.00");
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(4_368_040_448), "4,368,040,448");
        assert_eq!(capacity_label(128 << 20, SizeMode::Bytes), "128MiB");
        assert_eq!(capacity_label(128 << 20, SizeMode::Count), "134217728");
    }
}
