//! The reference hit-ratio tables that ship with the public traces.
//!
//! The traces' `README.md` carries, per trace, a Markdown table of hit
//! ratios (percent) computed independently in two simulators: one row per
//! cache size, one column per policy (`lru`, `arc`, `lcs-lirs`, …, `opt`).
//! This module parses those tables so that tuning runs and reports can put
//! strata's numbers beside them, and answer "how far is a policy from the
//! best classical policy at this size?" with [`ReferenceRow::best_online`].
//!
//! Only sections headed `## <trace> (<n> requests)` whose table starts with a
//! `size` column are read; anything else in the file (prose, the byte-mode
//! miss counts) is skipped. Empty cells mean "not computed" and parse as
//! `None`.

use std::path::{Path, PathBuf};

/// Columns that are offline bounds rather than policies a cache could run.
pub const OFFLINE_COLUMNS: [&str; 2] = ["opt", "lcs-belady"];

/// The column holding Belady's optimum (with bypass).
pub const OPT_COLUMN: &str = "opt";

/// The reference table of one trace.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceTable {
    /// The section's trace name, e.g. `lirs_loop` or `cloudPhysicsIO_count`.
    pub trace: String,
    /// The request count given in the heading.
    pub requests: u64,
    /// Column names after `size`, in table order.
    pub columns: Vec<String>,
    /// One row per cache size, in table order.
    pub rows: Vec<ReferenceRow>,
}

/// One cache size of a [`ReferenceTable`].
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceRow {
    /// Cache size in entries.
    pub size: u64,
    /// Hit ratio in percent per column (same order as the table's columns);
    /// `None` for an empty cell.
    pub values: Vec<Option<f64>>,
}

/// Why the reference tables could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The README.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A table line does not fit its header.
    #[error("line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl ReferenceTable {
    /// The index of `column`, if the table has it.
    pub fn column_index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// The row for cache size `size`.
    pub fn row(&self, size: u64) -> Option<&ReferenceRow> {
        self.rows.iter().find(|r| r.size == size)
    }

    /// The value of `column` at `size`, if present and not empty.
    pub fn value(&self, size: u64, column: &str) -> Option<f64> {
        let index = self.column_index(column)?;
        self.row(size)?.values[index]
    }

    /// The best online policy at `size`: see [`ReferenceRow::best_online`].
    pub fn best_online(&self, size: u64) -> Option<(&str, f64)> {
        self.row(size)?.best_online(&self.columns)
    }
}

impl ReferenceRow {
    /// The highest value among columns that are not offline bounds, with its
    /// column name (the first such column on ties), given the table's
    /// `columns`.
    pub fn best_online<'a>(&self, columns: &'a [String]) -> Option<(&'a str, f64)> {
        let mut best: Option<(&str, f64)> = None;
        for (column, value) in columns.iter().zip(&self.values) {
            let Some(value) = *value else { continue };
            if OFFLINE_COLUMNS.contains(&column.as_str()) {
                continue;
            }
            if best.is_none_or(|(_, b)| value > b) {
                best = Some((column, value));
            }
        }
        best
    }
}

/// Reads and parses the reference tables from a README.
pub fn load(path: &Path) -> Result<Vec<ReferenceTable>, ReferenceError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReferenceError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&text)
}

/// The traces' README: `README.md` in [`crate::trace::traces_dir`].
pub fn default_path() -> PathBuf {
    crate::trace::traces_dir().join("README.md")
}

/// Parses every `## <trace> (<n> requests)` section's table from `text`.
pub fn parse(text: &str) -> Result<Vec<ReferenceTable>, ReferenceError> {
    let mut tables = Vec::new();
    let mut current: Option<ReferenceTable> = None;
    for (line_no, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if let Some(heading) = line.strip_prefix("## ") {
            tables.extend(current.take().filter(|t| !t.rows.is_empty()));
            current = parse_heading(heading);
            continue;
        }
        let Some(table) = current.as_mut() else { continue };
        if !line.starts_with('|') {
            continue;
        }
        let cells = split_row(line);
        if table.columns.is_empty() {
            if cells.first().is_some_and(|c| c.eq_ignore_ascii_case("size")) {
                table.columns = cells[1..].iter().map(|c| (*c).to_owned()).collect();
            } else {
                // A table of something else (e.g. miss counts): not ours.
                current = None;
            }
            continue;
        }
        if cells.iter().all(|c| c.chars().all(|ch| matches!(ch, '-' | ':'))) {
            continue; // the separator line
        }
        let malformed = |reason: String| ReferenceError::Malformed { line: line_no, reason };
        if cells.len() != table.columns.len() + 1 {
            return Err(malformed(format!(
                "{} cells, header has {}",
                cells.len(),
                table.columns.len() + 1
            )));
        }
        let size = cells[0]
            .parse::<u64>()
            .map_err(|_| malformed(format!("size {:?} is not a whole number", cells[0])))?;
        let values = cells[1..]
            .iter()
            .map(|cell| {
                if cell.is_empty() {
                    Ok(None)
                } else {
                    cell.parse::<f64>()
                        .map(Some)
                        .map_err(|_| malformed(format!("value {cell:?} is not a number")))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        table.rows.push(ReferenceRow { size, values });
    }
    tables.extend(current.filter(|t| !t.rows.is_empty()));
    Ok(tables)
}

/// `name (12345 requests)` → a table with no columns yet.
fn parse_heading(heading: &str) -> Option<ReferenceTable> {
    let (name, rest) = heading.trim().split_once(" (")?;
    let requests = rest.strip_suffix(" requests)")?.trim().replace(',', "").parse().ok()?;
    Some(ReferenceTable {
        trace: name.trim().to_owned(),
        requests,
        columns: Vec::new(),
        rows: Vec::new(),
    })
}

fn split_row(line: &str) -> Vec<&str> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(str::trim).collect()
}

/// The trace file in `dir` that a reference table describes, if present.
///
/// Table names are file names without `.txt.gz`, except that a `_count`
/// suffix means "the count-mode run of" and libCacheSim's traces keep a
/// `libcachesim_` prefix on disk: `cloudPhysicsIO_count` is
/// `libcachesim_cloudPhysicsIO.txt.gz` replayed with every size 1.
pub fn trace_path(dir: &Path, trace: &str) -> Option<PathBuf> {
    let base = trace.strip_suffix("_count").unwrap_or(trace);
    [
        format!("{base}.txt.gz"),
        format!("libcachesim_{base}.txt.gz"),
        format!("{base}.txt"),
    ]
    .into_iter()
    .map(|file| dir.join(file))
    .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# Title

## Numbers to reproduce exactly

| policy | 128M | 256M |
|---|---:|---:|
| LRU | 93374 | 89783 |

## lirs_loop (505500 requests)

| size | lru | lcs-lirs | opt | lcs-belady |
|---:|---:|---:|---:|---:|
| 100 | 0.00 | 9.77 | 9.87 | 9.79 |
| 250 | 0.00 | 24.48 | 24.68 |  |

## arc_OLTP (914,145 requests)

| size | lru | arc | opt |
|---:|---:|---:|---:|
| 250 | 16.47 |  | 38.47 |
| 1000 | 32.83 | 38.95 | 53.62 |
";

    #[test]
    fn parses_sections_and_skips_other_tables() {
        let tables = parse(SAMPLE).ok().unwrap_or_default();
        assert_eq!(tables.len(), 2);
        let lp = &tables[0];
        assert_eq!(lp.trace, "lirs_loop");
        assert_eq!(lp.requests, 505_500);
        assert_eq!(lp.columns, ["lru", "lcs-lirs", "opt", "lcs-belady"]);
        assert_eq!(lp.value(250, "lcs-belady"), None);
        assert_eq!(lp.value(100, "opt"), Some(9.87));
        assert_eq!(lp.best_online(100), Some(("lcs-lirs", 9.77)));
        let oltp = &tables[1];
        assert_eq!(oltp.requests, 914_145);
        assert_eq!(oltp.best_online(250), Some(("lru", 16.47)));
        assert_eq!(oltp.best_online(1000), Some(("arc", 38.95)));
        assert_eq!(oltp.row(5), None);
    }

    #[test]
    fn reports_malformed_rows() {
        let bad = "## t (10 requests)\n| size | lru |\n|---|---|\n| 10 | x |\n";
        match parse(bad) {
            Err(ReferenceError::Malformed { line, .. }) => assert_eq!(line, 4),
            other => panic!("expected a malformed row, got {other:?}"),
        }
        let short = "## t (10 requests)\n| size | lru | arc |\n| 10 | 1.0 |\n";
        assert!(matches!(parse(short), Err(ReferenceError::Malformed { line: 3, .. })));
    }

    #[test]
    fn parses_the_shipped_readme_when_present() {
        let path = default_path();
        if !path.is_file() {
            eprintln!("SKIPPED: {} not found", path.display());
            return;
        }
        let tables = load(&path).ok().unwrap_or_default();
        assert!(tables.len() >= 16, "only {} tables", tables.len());
        for table in &tables {
            assert!(table.column_index(OPT_COLUMN).is_some(), "{} has no opt", table.trace);
            for row in &table.rows {
                let (_, best) = row.best_online(&table.columns).unwrap_or(("", f64::NAN));
                let opt = table.value(row.size, OPT_COLUMN).unwrap_or(f64::NAN);
                assert!(
                    best <= opt + 0.01,
                    "{} at {}: best {best} above opt {opt}",
                    table.trace,
                    row.size
                );
            }
            assert!(
                trace_path(&crate::trace::traces_dir(), &table.trace).is_some(),
                "no trace file for {}",
                table.trace
            );
        }
    }
}
