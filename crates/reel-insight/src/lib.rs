//! `reel-insight` finds change points in a metric series (bitrate, startup
//! time, error rate …): offline with PELT or binary segmentation, online with
//! Bayesian change-point detection, and it scores itself on the Turing
//! Change Point Dataset (TCPD).
//!
//! PELT and BinSeg reproduce the Python library `ruptures` (1.1.10) exactly:
//! same costs, same candidate grid (`min_size`, `jump`), same tie-breaking,
//! same breakpoints — only faster. Breakpoints follow ruptures' convention:
//! sorted segment ends, the last one is `n`.
//!
//! This crate is an engine: it knows nothing of HTTP, databases or files,
//! except [`tcpd`], which reads the TCPD directory it is given.
//!
//! ```
//! use reel_insight::{detect, CostKind, Method, Penalty};
//! let mut signal = vec![0.0; 100];
//! signal.extend(vec![5.0; 100]);
//! for (i, x) in signal.iter_mut().enumerate() { *x += ((i * i * 7919) % 1009) as f64 / 1009.0; }
//! let bkps = detect(&signal, Method::Pelt, CostKind::L2, Penalty::Bic, 2, 5)?;
//! assert_eq!(bkps, vec![100, 200]);
//! let cps = reel_insight::Bocpd::detect(&signal, Default::default())?;
//! assert_eq!(cps, vec![100]);
//! # Ok::<(), reel_insight::Error>(())
//! ```

mod binseg;
mod bocpd;
mod cost;
mod error;
mod pelt;
mod penalty;
mod simd;
pub mod suspects;
pub mod tcpd;

use serde::{Deserialize, Serialize};

pub use binseg::BinSegStop;
pub use bocpd::{Bocpd, BocpdParams};
pub use cost::{rbf_median_gamma, segment_cost, CostKind};
pub use error::{Error, Result};
pub use penalty::{noise_sigma, Penalty};

use cost::Fitted;

/// Offline search method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Pelt,
    BinSeg,
}

/// Breakpoints of `signal` (sorted segment ends, last = `n`), with the
/// penalty resolved by [`Penalty::resolve`]. `min_size` is raised to the
/// cost's own minimum as ruptures does; `jump` ≥ 1.
pub fn detect(
    signal: &[f64],
    method: Method,
    cost: CostKind,
    penalty: Penalty,
    min_size: usize,
    jump: usize,
) -> Result<Vec<usize>> {
    cost::validate(signal)?;
    let pen = penalty.resolve(signal, cost)?;
    match method {
        Method::Pelt => pelt(signal, cost, pen, min_size, jump),
        Method::BinSeg => binseg(signal, cost, BinSegStop::Penalty(pen), min_size, jump),
    }
}

/// ruptures' `Pelt(model, min_size, jump).fit_predict(signal, pen)`.
pub fn pelt(
    signal: &[f64],
    cost: CostKind,
    pen: f64,
    min_size: usize,
    jump: usize,
) -> Result<Vec<usize>> {
    cost::validate(signal)?;
    check_grid(jump)?;
    if !(pen.is_finite() && pen >= 0.0) {
        return Err(Error::InvalidParameter(format!(
            "penalty must be finite and >= 0, got {pen}"
        )));
    }
    let min_size = min_size.max(cost.min_size());
    let n = signal.len();
    match Fitted::new(cost, signal)? {
        Fitted::L2(mut c) => pelt::pelt(&mut c, n, pen, min_size, jump),
        Fitted::L1(mut c) => pelt::pelt(&mut c, n, pen, min_size, jump),
        Fitted::Normal(mut c) => pelt::pelt(&mut c, n, pen, min_size, jump),
        Fitted::Rbf(mut c) => pelt::pelt(&mut c, n, pen, min_size, jump),
    }
}

/// ruptures' `Binseg(model, min_size, jump).fit_predict(signal, n_bkps | pen | epsilon)`.
///
/// With the RBF cost every split scans all kernel pairs of its segment: up
/// to 8,000 samples a triangular integral image (≤ 256 MB) makes that O(1)
/// per candidate; above it rows are recomputed per segment, so the first
/// split alone is n² kernel evaluations (minutes at n = 100,000). Prefer
/// PELT for long RBF signals.
pub fn binseg(
    signal: &[f64],
    cost: CostKind,
    stop: BinSegStop,
    min_size: usize,
    jump: usize,
) -> Result<Vec<usize>> {
    cost::validate(signal)?;
    check_grid(jump)?;
    let min_size = min_size.max(cost.min_size());
    let n = signal.len();
    match Fitted::new(cost, signal)? {
        Fitted::L2(c) => binseg::binseg(&c, n, stop, min_size, jump),
        Fitted::L1(c) => binseg::binseg(&c, n, stop, min_size, jump),
        Fitted::Normal(c) => binseg::binseg(&c, n, stop, min_size, jump),
        Fitted::Rbf(c) => binseg::binseg(&c.with_dense(), n, stop, min_size, jump),
    }
}

fn check_grid(jump: usize) -> Result<()> {
    if jump == 0 {
        return Err(Error::InvalidParameter("jump must be >= 1".into()));
    }
    Ok(())
}
