//! Times the parts of RBF PELT (median gamma vs the sweep) on a signal file.
//! Usage: rbf_prof SIGNAL_FILE PEN [REPEAT]
use std::time::Instant;

use reel_insight::{pelt, rbf_median_gamma, CostKind};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = std::fs::read_to_string(&args[0]).unwrap_or_default();
    let x: Vec<f64> = text
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    if args[1] == "gamma" {
        // gamma only, for profiling
        let t = Instant::now();
        let mut g = 0.0;
        for _ in 0..5000 {
            g += rbf_median_gamma(&x);
        }
        println!(
            "gamma x5000: {:.4} ms each ({g})",
            t.elapsed().as_secs_f64() * 1e3 / 5000.0
        );
        return;
    }
    let pen: f64 = args[1].parse().unwrap_or(1.0);
    let rep: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let (mut tg, mut tp, mut tall) = (f64::MAX, f64::MAX, f64::MAX);
    let mut g = 0.0;
    let mut b1 = Vec::new();
    let mut b2 = Vec::new();
    for _ in 0..rep {
        let t = Instant::now();
        g = rbf_median_gamma(&x);
        tg = tg.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        b1 = pelt(&x, CostKind::Rbf { gamma: Some(g) }, pen, 2, 5).unwrap_or_default();
        tp = tp.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        b2 = pelt(&x, CostKind::Rbf { gamma: None }, pen, 2, 5).unwrap_or_default();
        tall = tall.min(t.elapsed().as_secs_f64());
    }
    assert_eq!(b1, b2);
    println!(
        "n={} gamma={g:e} gamma_ms={:.4} sweep_ms={:.4} total_ms={:.4} bkps={}",
        x.len(),
        tg * 1e3,
        tp * 1e3,
        tall * 1e3,
        b1.len()
    );
}
