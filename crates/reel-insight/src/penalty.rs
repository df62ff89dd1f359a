//! Penalties: a user value, or BIC / MBIC expressed in the units of the cost.
//!
//! Both criteria are penalised −2·log-likelihood; a change point adds `p`
//! parameters (its location plus the segment's new parameters), so BIC costs
//! `p · ln n` and MBIC (Zhang & Siegmund 2007, the constant part as the R
//! `changepoint` package uses it) costs `(p + 1) · ln n`. The segment-length
//! term of MBIC is left out so the penalty stays constant per segment, which
//! PELT and BinSeg need. Converted to each cost's units with the noise scale
//! σ̂ = MAD(first differences) / (0.6745 · √2), which ignores mean shifts:
//!
//! | cost   | p | BIC                    | MBIC                       |
//! |--------|---|------------------------|----------------------------|
//! | L2     | 2 | 2 σ̂² ln n             | 3 σ̂² ln n                 |
//! | L1     | 2 | 2 (b̂/2) ln n, b̂ = σ̂ √(2/π) (Laplace scale) | 3 (b̂/2) ln n |
//! | Normal | 3 | 3 ln n (cost is already −2 log L up to a constant) | 4 ln n |
//! | RBF    | 2 | 2 ln n (kernel cost is unitless, ≤ segment length) | 3 ln n |

use serde::{Deserialize, Serialize};

use crate::cost::CostKind;
use crate::error::{Error, Result};

/// How much a new segment must pay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Penalty {
    /// This value, as is.
    Value(f64),
    /// `c · ln n`, in the cost's units (on a standardised series with the L2
    /// cost this is c · σ²_total · ln n).
    PerLogN(f64),
    Bic,
    Mbic,
}

impl Penalty {
    /// The numeric penalty for `signal` under `cost`.
    pub fn resolve(self, signal: &[f64], cost: CostKind) -> Result<f64> {
        let n = signal.len().max(2) as f64;
        let extra = match self {
            Penalty::Value(v) if v.is_finite() && v >= 0.0 => return Ok(v),
            Penalty::Value(v) => {
                return Err(Error::InvalidParameter(format!(
                    "penalty must be finite and >= 0, got {v}"
                )))
            }
            Penalty::PerLogN(c) if c.is_finite() && c >= 0.0 => return Ok(c * n.ln()),
            Penalty::PerLogN(c) => {
                return Err(Error::InvalidParameter(format!(
                    "penalty factor must be finite and >= 0, got {c}"
                )))
            }
            Penalty::Bic => 0.0,
            Penalty::Mbic => 1.0,
        };
        let sigma = noise_sigma(signal);
        let (params, unit) = match cost {
            CostKind::L2 => (2.0, sigma * sigma),
            CostKind::L1 => (2.0, sigma * (2.0 / std::f64::consts::PI).sqrt() / 2.0),
            CostKind::Normal => (3.0, 1.0),
            CostKind::Rbf { .. } => (2.0, 1.0),
        };
        Ok((params + extra) * unit * n.ln())
    }
}

/// Robust noise standard deviation from first differences (a mean shift
/// touches one difference, noise touches all of them). Falls back to the
/// plain standard deviation of the differences, then to 1.
pub fn noise_sigma(signal: &[f64]) -> f64 {
    if signal.len() < 3 {
        return 1.0;
    }
    let mut d: Vec<f64> = signal.windows(2).map(|w| w[1] - w[0]).collect();
    let med = median(&mut d.clone());
    let mut dev: Vec<f64> = d.iter().map(|x| (x - med).abs()).collect();
    let mad = median(&mut dev);
    let s = mad / (0.6745 * std::f64::consts::SQRT_2);
    if s > 0.0 && s.is_finite() {
        return s;
    }
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    let var = d.iter_mut().map(|x| (*x - mean) * (*x - mean)).sum::<f64>() / d.len() as f64;
    let s = (var / 2.0).sqrt();
    if s > 0.0 && s.is_finite() {
        s
    } else {
        1.0
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
