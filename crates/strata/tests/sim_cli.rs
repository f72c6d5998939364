//! Black-box tests of `strata sim`: the built binary, run as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_remove("STRATA_LOG")
        .output()
        .expect("the strata binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A file with `contents` in this test binary's scratch directory.
fn scratch_file(name: &str, contents: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sim_cli");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("scratch file");
    path
}

/// Runs `args`, expects failure with one line on stderr containing every
/// one of `needles`, and returns that line.
fn fails_with(args: &[&str], needles: &[&str]) -> String {
    let output = strata(args);
    let err = stderr(&output);
    assert!(!output.status.success(), "{args:?} succeeded:\n{}", stdout(&output));
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line:\n{err}");
    assert!(err.starts_with("strata: error: "), "{args:?}: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    }
    assert!(stdout(&output).is_empty(), "{args:?} printed a report");
    err
}

#[test]
fn quick_start_prints_every_policy_on_the_builtin_workload() {
    let output = strata(&["sim"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        stderr(&output).contains("built-in workload zipf:"),
        "{}",
        stderr(&output)
    );
    let header = out
        .lines()
        .find(|line| line.trim_start().starts_with("capacity"))
        .expect("a table header");
    let columns: Vec<&str> = header.split_whitespace().skip(1).collect();
    assert_eq!(
        columns,
        [
            "lru", "fifo", "clock", "lfu", "arc", "sieve", "s3fifo", "wtinylfu", "adaptive", "opt", "belady"
        ]
    );
    let hit_rows: Vec<&str> = out
        .lines()
        .skip_while(|line| *line != "hit ratio (%)")
        .skip(2)
        .take_while(|line| !line.is_empty())
        .collect();
    assert_eq!(hit_rows.len(), 4, "{out}");
    for row in hit_rows {
        // Rows read `1990 (1%)  20.71  ...`: a capacity, the percentage it
        // came from, then one cell per column.
        assert!(
            row.split_whitespace().nth(1).is_some_and(|p| p.ends_with("%)")),
            "{row}"
        );
        let cells: Vec<f64> = row.split_whitespace().skip(2).map(|c| c.parse().unwrap()).collect();
        assert_eq!(cells.len(), columns.len(), "{row}");
        let (opt, online) = (cells[9], &cells[..9]);
        assert!(online.iter().all(|&hit| (0.0..=opt).contains(&hit)), "{row}");
    }
}

#[test]
fn count_mode_trace_in_every_format() {
    // Capacity 2: a b a c a b -> LRU hits the second and third a.
    let trace = scratch_file("abacab.txt", "a\nb\na\n# a comment\n\nc\na\nb\n");
    let path = trace.to_str().unwrap();
    let args = ["sim", "--trace", path, "--policy", "lru,fifo,opt", "--capacity", "2"];

    let table = strata(&[&args[..], &["--format", "table"]].concat());
    assert!(table.status.success(), "{}", stderr(&table));
    let out = stdout(&table);
    assert!(out.starts_with("abacab: 6 requests, 3 distinct keys"), "{out}");
    assert!(out.contains("       2  33.33  16.67  50.00\n"), "{out}");

    let csv = strata(&[&args[..], &["--format", "csv"]].concat());
    let out = stdout(&csv);
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert_eq!(rows[1], "abacab,count,2,lru,6,2,4,0.333333,2,4,0.333333");
    assert!(rows[3].starts_with("abacab,count,2,opt,6,3,3,"), "{out}");

    let json = strata(&[&args[..], &["--format", "json"]].concat());
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON output");
    assert_eq!(report["mode"], "count");
    let workload = &report["workloads"][0];
    assert_eq!(workload["name"], "abacab");
    assert_eq!(workload["unique_keys"], 3);
    assert_eq!(workload["results"][2]["policy"], "opt");
    assert_eq!(workload["results"][2]["misses"], 3);
}

#[test]
fn byte_mode_counts_sizes_and_accepts_suffixes() {
    // 1 KiB holds a (600) or b (500) but not both; c (2000) never fits.
    let trace = scratch_file("bytes.txt", "a 600\nb 500\na 600\nc 2000\nc 2000\nb 500\n");
    let path = trace.to_str().unwrap();
    let output = strata(&[
        "sim",
        "--trace",
        path,
        "--bytes",
        "--policy",
        "lru,belady,opt",
        "--capacity",
        "1k,2KiB",
        "-f",
        "csv",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let rows: Vec<&str> = out.lines().collect();
    // LRU at 1 KiB: a, b (evicts a), a (evicts b), c (too big), c, b (miss).
    assert_eq!(rows[1], "bytes,bytes,1024,lru,6,0,6,0.000000,0,6200,0.000000");
    // LRU at 2 KiB: a, b, a hit; c fits only alone: it evicts both, then
    // hits; b misses.
    assert!(rows[2].starts_with("bytes,bytes,2048,lru,6,2,4,"), "{out}");
    // OPT at 1 KiB keeps a for its reuse, then b.
    assert!(rows[5].starts_with("bytes,bytes,1024,opt,6,1,5,"), "{out}");

    let table = stdout(&strata(&[
        "sim",
        "--trace",
        path,
        "--bytes",
        "--capacity",
        "1k",
        "-p",
        "lru",
    ]));
    assert!(
        table.contains("6 requests of 6,200 bytes, 3 distinct objects of 3,100 bytes"),
        "{table}"
    );
    assert!(table.contains("    1KiB"), "{table}");
}

#[test]
fn percent_capacities_resolve_per_workload() {
    let trace = scratch_file("ten.txt", &(0..10).map(|i| format!("k{i}\n")).collect::<String>());
    let output = strata(&[
        "sim",
        "-t",
        trace.to_str().unwrap(),
        "-c",
        "50%,100%",
        "-p",
        "lru",
        "-f",
        "csv",
    ]);
    let out = stdout(&output);
    assert!(out.contains("ten,count,5,lru,"), "{out}");
    assert!(out.contains("ten,count,10,lru,"), "{out}");
}

#[test]
fn synthetic_workloads_and_plots() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sim_cli");
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("plot.svg");
    let _ = std::fs::remove_file(&svg);
    let spec = "zipf:0.9,keys=2000,requests=20000,scan=0.1/300,loop=5%/100,seed=9";
    let output = strata(&[
        "sim",
        "--synthetic",
        spec,
        "--synthetic",
        "uniform,keys=500,requests=5000",
        "--policy",
        "lru,sieve,opt",
        "--capacity",
        "50,200,1000",
        "--plot",
        svg.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 1 + 2 * 3 * 3, "{out}");
    assert!(out.contains(&format!("\"{spec}\",count,50,lru,20000,")), "{out}");
    let drawing = std::fs::read_to_string(&svg).expect("the plot was written");
    assert!(
        drawing.starts_with("<svg") && drawing.contains("uniform,keys=500"),
        "{drawing:.200}"
    );
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let spec = "zipf:0.7,keys=3000,requests=30000,scan=0.2/1000,seed=3";
    let run = |threads: &str| {
        let output = strata(&["sim", "-s", spec, "-c", "1%,5%,20%", "--threads", threads, "-f", "json"]);
        assert!(output.status.success(), "{}", stderr(&output));
        output.stdout
    };
    assert_eq!(run("1"), run("2"));
}

#[test]
fn public_trace_matches_the_reference_table() {
    let Some(path) = strata_sim::trace::trace_for_test("lirs_cs.txt.gz") else {
        return;
    };
    let output = strata(&[
        "sim",
        "-t",
        path.to_str().unwrap(),
        "-p",
        "lru,opt,belady",
        "-c",
        "500,1000",
    ]);
    let out = stdout(&output);
    assert!(out.contains("     500  1.83  31.32   31.32\n"), "{out}");
    assert!(out.contains("    1000  1.83  60.82   60.82\n"), "{out}");
}

#[test]
fn bad_input_is_one_line_naming_what_is_wrong() {
    let missing = "/nonexistent/strata/trace.txt";
    fails_with(&["sim", "--trace", missing], &[missing, "No such file"]);

    let bad = scratch_file("malformed.txt", "a 10\nb 20\nc twelve\n");
    let bad = bad.to_str().unwrap();
    fails_with(
        &["sim", "--trace", bad, "--bytes"],
        &[&format!("{bad}:3:"), "\"twelve\""],
    );
    let no_size = scratch_file("no-size.txt", "a 10\nb\n");
    fails_with(
        &["sim", "--trace", no_size.to_str().unwrap(), "--bytes"],
        &["no-size.txt:2:", "found no size"],
    );
    let empty = scratch_file("empty.txt", "# nothing\n\n");
    fails_with(&["sim", "--trace", empty.to_str().unwrap()], &["empty.txt", "empty"]);

    let good = scratch_file("good.txt", "a\nb\na\n");
    let good = good.to_str().unwrap();
    fails_with(
        &["sim", "-t", good, "--capacity", "100,0"],
        &["invalid capacity \"0\"", "at least 1"],
    );
    fails_with(
        &["sim", "-t", good, "--capacity", "10MB"],
        &["invalid capacity \"10MB\""],
    );
    fails_with(
        &["sim", "-t", good, "--capacity", "lots"],
        &["invalid capacity \"lots\""],
    );
    fails_with(
        &["sim", "-t", good, "--policy", "lru,mru"],
        &["unknown policy \"mru\"", "sieve", "belady"],
    );
    fails_with(
        &["sim", "--synthetic", "zipf:abc,keys=10"],
        &[
            "invalid synthetic workload \"zipf:abc,keys=10\"",
            "\"abc\" is not a number",
        ],
    );
    fails_with(
        &["sim", "--synthetic", "zipf:1,keys=10,colour=red"],
        &["unknown parameter \"colour\""],
    );
    fails_with(
        &["sim", "-t", good, "--plot", "/nonexistent/dir/plot.svg"],
        &["/nonexistent/dir", "not a directory"],
    );
}
