//! scratch: print window size over time.
#![allow(missing_docs)]
use strata_bench::trace::{self, SizeMode};
use strata_store::{Replayer, WTinyLfuConfig, ClimberConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = trace::traces_dir().join(format!("{}.txt.gz", args[1]));
    let size: u64 = args[2].parse().unwrap();
    let every: usize = args[3].parse().unwrap();
    let mut cfg = WTinyLfuConfig::adaptive();
    for kv in args[4..].iter() {
        let (k, v) = kv.split_once('=').unwrap();
        let f: f64 = v.parse().unwrap();
        match k {
            "ghost" => cfg.ghost = f,
            "rgain" => cfg.region_gain = f,
            "gain" => cfg.ghost_gain = f,
            "hashdos" => cfg.hashdos_threshold = f as u8,
            "cmax" => { let mut c = cfg.climber.unwrap(); c.max_window = f; cfg.climber = Some(c) }
            "window" => cfg.window = f,
            "transfer" => cfg.transfer = f != 0.0,
            "bytes" => cfg.sketch_bytes_per_entry = f as u32,
            "climber" => { if f == 0.0 { cfg.climber = None } else { cfg.climber = Some(ClimberConfig::CAFFEINE) } }
            _ => panic!("key {k}"),
        }
    }
    let t = trace::load(&path, SizeMode::Count).unwrap();
    let mut r = Replayer::with_policy(cfg.build(size), size);
    let mut hits = 0u64;
    for (i, req) in t.requests.iter().enumerate() {
        if r.access(req.key, 1) { hits += 1; }
        if (i + 1) % every == 0 {
            let s = r.policy().stats();
            println!("{:>8} hr {:6.2} window {:5} prob {:5} prot {:5} adm {} rej {}", i + 1, hits as f64 * 100.0 / every as f64, s.get("window_max").unwrap(), s.get("probation_weight").unwrap(), s.get("protected_weight").unwrap(), s.get("admitted").unwrap(), s.get("rejected").unwrap());
            hits = 0;
        }
    }
    println!("total {:.2}", r.hit_ratio() * 100.0);
}
