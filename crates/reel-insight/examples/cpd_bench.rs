//! Times one offline detection for `bench/changepoints-vs-ruptures`.
//!
//! Usage: cpd_bench SIGNAL_FILE pelt|binseg l2|l1|normal|rbf PEN MIN_SIZE JUMP [MAX_RUNS]
//! The signal file holds one number a line. Prints
//! `{"bkps": [...], "seconds": best wall time}`: the best of at least 3
//! runs (at most MAX_RUNS), more until 0.5 s is spent; a run over 1 s ends it.

use std::time::Instant;

use reel_insight::{binseg, pelt, BinSegStop, CostKind};

fn main() {
    if let Err(e) = run() {
        eprintln!("cpd_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        return Err(
            "usage: cpd_bench SIGNAL pelt|binseg l2|l1|normal|rbf PEN MIN_SIZE JUMP [MAX_RUNS]"
                .into(),
        );
    }
    let text = std::fs::read_to_string(&args[0]).map_err(|e| format!("{}: {e}", args[0]))?;
    let signal: Vec<f64> = text
        .split_whitespace()
        .map(|t| {
            t.parse::<f64>()
                .map_err(|e| format!("bad number {t:?}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let cost = match args[2].as_str() {
        "l2" => CostKind::L2,
        "l1" => CostKind::L1,
        "normal" => CostKind::Normal,
        "rbf" => CostKind::Rbf { gamma: None },
        c => return Err(format!("unknown cost {c}")),
    };
    let num = |i: usize| {
        args[i]
            .parse::<f64>()
            .map_err(|e| format!("{}: {e}", args[i]))
    };
    let pen = num(3)?;
    let min_size = num(4)? as usize;
    let jump = num(5)? as usize;
    let max_runs = if args.len() > 6 { num(6)? as usize } else { 1 }.max(1);
    let mut best = f64::INFINITY;
    let mut bkps: Vec<usize>;
    // The bench's rule for both sides: the best of at least 3 runs (or
    // MAX_RUNS if fewer), repeated until 0.5 s is spent; a run over 1 s ends it.
    let (mut spent, mut runs) = (0.0, 0);
    loop {
        let t0 = Instant::now();
        bkps = match args[1].as_str() {
            "pelt" => pelt(&signal, cost, pen, min_size, jump),
            "binseg" => binseg(&signal, cost, BinSegStop::Penalty(pen), min_size, jump),
            m => return Err(format!("unknown method {m}")),
        }
        .map_err(|e| e.to_string())?;
        let dt = t0.elapsed().as_secs_f64();
        best = best.min(dt);
        (spent, runs) = (spent + dt, runs + 1);
        if dt > 1.0 || runs >= max_runs || (runs >= 3 && spent >= 0.5) {
            break;
        }
    }
    println!("{}", serde_json::json!({ "bkps": bkps, "seconds": best }));
    Ok(())
}
