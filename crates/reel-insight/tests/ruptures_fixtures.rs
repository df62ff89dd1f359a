//! Breakpoints must equal ruptures' own, case for case. The fixture was
//! written by ruptures itself: `bench/changepoints-vs-ruptures --fixtures`.

use reel_insight::{binseg, pelt, segment_cost, BinSegStop, CostKind};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    ruptures: String,
    signals: Vec<Vec<f64>>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    signal: usize,
    algo: String,
    cost: String,
    pen: Option<f64>,
    n_bkps: Option<usize>,
    min_size: usize,
    jump: usize,
    bkps: Option<Vec<usize>>,
}

#[test]
fn breakpoints_equal_ruptures() {
    let text = include_str!("fixtures/ruptures.json");
    let fx: Fixture = serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture: {e}"));
    let mut failures = Vec::new();
    for (i, c) in fx.cases.iter().enumerate() {
        let x = &fx.signals[c.signal];
        let cost = match c.cost.as_str() {
            "l2" => CostKind::L2,
            "l1" => CostKind::L1,
            "normal" => CostKind::Normal,
            "rbf" => CostKind::Rbf { gamma: None },
            other => panic!("unknown cost {other}"),
        };
        let got = match (c.algo.as_str(), c.pen, c.n_bkps) {
            ("pelt", Some(p), _) => pelt(x, cost, p, c.min_size, c.jump),
            ("binseg", _, Some(k)) => binseg(x, cost, BinSegStop::NBkps(k), c.min_size, c.jump),
            ("binseg", Some(p), _) => binseg(x, cost, BinSegStop::Penalty(p), c.min_size, c.jump),
            _ => panic!("case {i}: bad fixture"),
        };
        let ok = match (&got, &c.bkps) {
            (Ok(g), Some(want)) if g == want => true,
            // A noiseless signal can have two segmentations of mathematically
            // equal cost; which one wins then depends on NumPy's summation
            // rounding. Accept a different answer only for such an exact tie.
            (Ok(g), Some(want)) if c.algo == "pelt" => {
                let pen = c.pen.unwrap_or(0.0);
                let (a, b) = (total(x, cost, g, pen), total(x, cost, want, pen));
                (a - b).abs() <= 1e-9 * (1.0 + a.abs())
            }
            (Err(_), None) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "case {i}: {} {} pen={:?} n_bkps={:?} min_size={} jump={} signal={}: want {:?}, got {:?}",
                c.algo, c.cost, c.pen, c.n_bkps, c.min_size, c.jump, c.signal, c.bkps, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from ruptures {}:\n{}",
        failures.len(),
        fx.cases.len(),
        fx.ruptures,
        failures.join("\n")
    );
}

/// The RBF kernel has an AVX-512, an AVX2 and a portable build, picked at
/// run time; each must reproduce ruptures. This reruns the fixture test in
/// child processes pinned to the narrower builds (a process picks its build
/// once).
#[test]
fn every_kernel_build_equals_ruptures() {
    if std::env::var_os("REEL_INSIGHT_CHILD").is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    for var in ["REEL_INSIGHT_NO_AVX512", "REEL_INSIGHT_NO_SIMD"] {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "breakpoints_equal_ruptures", "--test-threads=1"])
            .env("REEL_INSIGHT_CHILD", "1")
            .env(var, "1")
            .output()
            .unwrap_or_else(|e| panic!("run {exe:?}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "with {var}=1:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Penalised cost of a segmentation.
fn total(x: &[f64], cost: CostKind, bkps: &[usize], pen: f64) -> f64 {
    let mut start = 0;
    let mut sum = 0.0;
    for &end in bkps {
        sum += segment_cost(x, cost, start, end).unwrap_or(f64::NAN) + pen;
        start = end;
    }
    sum
}
