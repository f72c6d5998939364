//! Replays every reference trace at every reference size through the chosen
//! policies and compares each with the best classical policy and with OPT.
//!
//! ```text
//! cargo run --release -p strata-sim --example tune_default -- [options] [POLICY...]
//! ```
//!
//! A POLICY is a policy name (`adaptive`, `wtinylfu`, `lru`, …, or
//! `caffeine` for the known design; default `adaptive`), optionally followed
//! by `:key=value,…` to change a W-TinyLFU setting, e.g.
//! `adaptive:m.depth=0.08,bytes=4`. Keys (see `WTinyLfuConfig`): `window`,
//! `min`, `max`, `protected`, `bytes`, `sketch_sample`, `doorkeeper`,
//! `margin`, `hashdos`, `seed`, `adapt=fixed|hill|marginal`; for the hill
//! climber `c.sample`, `c.step0`, `c.step`, `c.decay`, `c.restart`; for the
//! marginal climber `m.depth`, `m.gain`.
//!
//! Options: `--traces a,b` (substrings of trace names), `--summary` (only
//! the summary), `--markdown` (the table as Markdown), `--stats` (each
//! run's policy statistics on stderr), `--threads N` (default 2).
//!
//! Per trace and size it prints each policy's hit ratio, the best online
//! column of the reference table and its name, and the shortfalls (best −
//! ours, opt − ours) in percentage points; then per policy the mean
//! shortfall (rows where it beats the best count negative; the figure in
//! parentheses counts them as 0), its 90th percentile, the worst row, the
//! number of rows more than a point short, and the mean and worst shortfall
//! against OPT.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_sim::reference::{self, OPT_COLUMN, ReferenceTable};
use strata_sim::trace::{self, SizeMode, Trace};
use strata_store::{Adaptation, ClimberConfig, EvictionPolicy, MarginalConfig, PolicyKind, Replayer, WTinyLfuConfig};

/// One policy to run: a label and how to build it.
#[derive(Clone, Debug)]
struct Spec {
    label: String,
    kind: PolicyKind,
    config: Option<WTinyLfuConfig>,
}

impl Spec {
    fn parse(text: &str) -> Result<Spec, String> {
        let (name, settings) = text.split_once(':').unwrap_or((text, ""));
        let (kind, mut config) = if name == "caffeine" {
            (PolicyKind::Adaptive, Some(WTinyLfuConfig::caffeine()))
        } else {
            let kind: PolicyKind = name.parse().map_err(|e| format!("{e}"))?;
            let config = match kind {
                PolicyKind::WTinyLfu => Some(WTinyLfuConfig::fixed()),
                PolicyKind::Adaptive => Some(WTinyLfuConfig::adaptive()),
                _ => None,
            };
            (kind, config)
        };
        for setting in settings.split(',').filter(|s| !s.is_empty()) {
            let Some(cfg) = config.as_mut() else {
                return Err(format!("{name} has no settings"));
            };
            let (key, value) = setting
                .split_once('=')
                .ok_or_else(|| format!("setting {setting:?} is not key=value"))?;
            apply(cfg, key, value)?;
        }
        Ok(Spec {
            label: text.to_owned(),
            kind,
            config,
        })
    }

    fn build(&self, capacity: u64) -> Box<dyn EvictionPolicy> {
        match &self.config {
            Some(config) => config.build(capacity),
            None => self.kind.build(capacity),
        }
    }
}

fn apply(cfg: &mut WTinyLfuConfig, key: &str, value: &str) -> Result<(), String> {
    let float = || {
        value
            .parse::<f64>()
            .map_err(|_| format!("{key}: {value:?} is not a number"))
    };
    let int = || {
        value
            .parse::<u32>()
            .map_err(|_| format!("{key}: {value:?} is not a whole number"))
    };
    let byte = || u8::try_from(int()?).map_err(|e| format!("{key}: {e}"));
    if let Some(climber_key) = key.strip_prefix("c.") {
        let mut climber = match cfg.adaptation {
            Adaptation::HillClimber(c) => c,
            _ => ClimberConfig::CAFFEINE,
        };
        let v = float()?;
        match climber_key {
            "sample" => climber.sample_factor = v,
            "step0" => climber.initial_step = v,
            "step" => climber.restart_step = v,
            "decay" => climber.step_decay = v,
            "restart" => climber.restart_threshold = v,
            _ => return Err(format!("unknown hill climber setting {key}")),
        }
        cfg.adaptation = Adaptation::HillClimber(climber);
        return Ok(());
    }
    if let Some(marginal_key) = key.strip_prefix("m.") {
        let mut marginal = match cfg.adaptation {
            Adaptation::Marginal(m) => m,
            _ => MarginalConfig::DEFAULT,
        };
        let v = float()?;
        match marginal_key {
            "depth" => marginal.depth = v,
            "gain" => marginal.gain = v,
            _ => return Err(format!("unknown marginal climber setting {key}")),
        }
        cfg.adaptation = Adaptation::Marginal(marginal);
        return Ok(());
    }
    match key {
        "adapt" => {
            cfg.adaptation = match value {
                "fixed" => Adaptation::Fixed,
                "hill" => Adaptation::HillClimber(ClimberConfig::CAFFEINE),
                "marginal" => Adaptation::Marginal(MarginalConfig::DEFAULT),
                _ => return Err(format!("adapt: {value:?} is not fixed, hill or marginal")),
            }
        }
        "window" => cfg.window = float()?,
        "min" => cfg.min_window = float()?,
        "max" => cfg.max_window = float()?,
        "protected" => cfg.protected = float()?,
        "bytes" => cfg.sketch_bytes_per_entry = int()?,
        "sketch_sample" => cfg.sketch_sample_factor = int()?,
        "doorkeeper" => cfg.doorkeeper_bits_per_entry = int()?,
        "margin" => cfg.admission_margin = byte()?,
        "hashdos" => cfg.hashdos_threshold = byte()?,
        "seed" => cfg.seed = u64::from(int()?),
        _ => return Err(format!("unknown setting {key}")),
    }
    Ok(())
}

struct Options {
    specs: Vec<Spec>,
    traces: Vec<String>,
    summary_only: bool,
    markdown: bool,
    stats: bool,
    threads: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        specs: Vec::new(),
        traces: Vec::new(),
        summary_only: false,
        markdown: false,
        stats: false,
        threads: 2,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--traces" => {
                let list = args.next().ok_or("--traces needs a list")?;
                options.traces = list.split(',').map(str::to_owned).collect();
            }
            "--summary" => options.summary_only = true,
            "--markdown" => options.markdown = true,
            "--stats" => options.stats = true,
            "--threads" => {
                let n = args.next().ok_or("--threads needs a number")?;
                options.threads = n.parse().map_err(|_| format!("bad thread count {n:?}"))?;
            }
            spec => options.specs.push(Spec::parse(spec)?),
        }
    }
    if options.specs.is_empty() {
        options.specs.push(Spec::parse("adaptive")?);
    }
    Ok(options)
}

struct Job {
    trace: usize,
    size: u64,
    spec: usize,
    cost: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let dir: PathBuf = trace::traces_dir();
    let tables: Vec<ReferenceTable> = reference::load(&dir.join("README.md"))?
        .into_iter()
        .filter(|t| options.traces.is_empty() || options.traces.iter().any(|f| t.trace.contains(f.as_str())))
        .collect();
    let mut traces: Vec<Trace> = Vec::new();
    for table in &tables {
        let path = reference::trace_path(&dir, &table.trace).ok_or_else(|| format!("no trace for {}", table.trace))?;
        traces.push(trace::load(&path, SizeMode::Count)?);
    }

    let mut jobs = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        for row in &table.rows {
            for spec in 0..options.specs.len() {
                let cost = traces[t].requests.len() as u64;
                jobs.push(Job {
                    trace: t,
                    size: row.size,
                    spec,
                    cost,
                });
            }
        }
    }
    jobs.sort_by_key(|j| std::cmp::Reverse(j.cost));
    let results = Mutex::new(vec![f64::NAN; jobs.len()]);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let spec = &options.specs[job.spec];
                    let mut replay = Replayer::with_policy(spec.build(job.size), job.size);
                    for request in &traces[job.trace].requests {
                        replay.access(request.key, 1);
                    }
                    let ratio = replay.hit_ratio() * 100.0;
                    if options.stats {
                        let stats = replay.policy().stats();
                        let window = stats.get("window_max").unwrap_or(0) as f64 / job.size as f64;
                        eprintln!(
                            "{:<22} {:>6} {:<30} {ratio:6.2} window {:5.1}% {:?}",
                            tables[job.trace].trace,
                            job.size,
                            spec.label,
                            window * 100.0,
                            stats.values
                        );
                    }
                    if let Ok(mut results) = results.lock() {
                        results[i] = ratio;
                    }
                }
            });
        }
    });
    let results = results.into_inner().map_err(|_| "a worker panicked")?;
    let lookup = |trace: usize, size: u64, spec: usize| -> f64 {
        jobs.iter()
            .zip(&results)
            .find(|(j, _)| j.trace == trace && j.size == size && j.spec == spec)
            .map_or(f64::NAN, |(_, &r)| r)
    };

    let n = options.specs.len();
    let mut shortfalls: Vec<Vec<(f64, f64, String)>> = vec![Vec::new(); n];
    if options.markdown {
        let ours: Vec<&str> = options.specs.iter().map(|s| s.label.as_str()).collect();
        let gaps: Vec<String> = ours.iter().map(|l| format!("best − {l}")).collect();
        println!(
            "| trace | size | {} | best | best column | opt | {} |",
            ours.join(" | "),
            gaps.join(" | ")
        );
        println!("|---|---:|{}---:|---|---:|{}", "---:|".repeat(n), "---:|".repeat(n));
    }
    for (t, table) in tables.iter().enumerate() {
        for row in &table.rows {
            let (best_col, best) = row.best_online(&table.columns).unwrap_or(("?", f64::NAN));
            let opt = table.value(row.size, OPT_COLUMN).unwrap_or(f64::NAN);
            let values: Vec<f64> = (0..n).map(|s| lookup(t, row.size, s)).collect();
            for (s, &v) in values.iter().enumerate() {
                shortfalls[s].push((best - v, opt - v, format!("{}@{}", table.trace, row.size)));
            }
            if options.summary_only {
                continue;
            }
            if options.markdown {
                let ours: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
                let gaps: Vec<String> = values.iter().map(|v| format!("{:.2}", best - v)).collect();
                println!(
                    "| {} | {} | {} | {best:.2} | {best_col} | {opt:.2} | {} |",
                    table.trace,
                    row.size,
                    ours.join(" | "),
                    gaps.join(" | ")
                );
            } else {
                let ours: Vec<String> = values
                    .iter()
                    .map(|v| format!("{v:6.2} (short {:6.2} best, {:6.2} opt)", best - v, opt - v))
                    .collect();
                println!(
                    "{:<22} {:>6}  best {best:6.2} {best_col:<13} opt {opt:6.2} | {}",
                    table.trace,
                    row.size,
                    ours.join(" | ")
                );
            }
        }
    }
    println!();
    for (spec, rows) in options.specs.iter().zip(&shortfalls) {
        let count = rows.len().max(1) as f64;
        let mean_best = rows.iter().map(|r| r.0).sum::<f64>() / count;
        let mean_opt = rows.iter().map(|r| r.1).sum::<f64>() / count;
        // Rows where the policy beats the best column count as 0 here.
        let mean_short = rows.iter().map(|r| r.0.max(0.0)).sum::<f64>() / count;
        let worst = rows.iter().max_by(|a, b| a.0.total_cmp(&b.0));
        let over_one = rows.iter().filter(|r| r.0 > 1.0).count();
        let (worst_gap, worst_at) = worst.map_or((f64::NAN, "-"), |w| (w.0, w.2.as_str()));
        let worst_opt = rows.iter().map(|r| r.1).fold(f64::NAN, f64::max);
        let mut sorted: Vec<f64> = rows.iter().map(|r| r.0).collect();
        sorted.sort_by(f64::total_cmp);
        let p90 = sorted.get(sorted.len() * 9 / 10).copied().unwrap_or(f64::NAN);
        println!(
            "{:<50} shortfall vs best: mean {mean_best:5.2} (wins as 0: {mean_short:4.2}) p90 {p90:5.2} worst {worst_gap:5.2} at {worst_at:<22} >1pt {over_one:3}/{} | vs opt: mean {mean_opt:5.2} worst {worst_opt:5.2}",
            spec.label,
            rows.len()
        );
    }
    Ok(())
}
