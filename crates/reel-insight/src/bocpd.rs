//! Bayesian online change-point detection (Adams & MacKay 2007) for a
//! Gaussian with unknown mean and variance (Normal-Gamma conjugate prior)
//! and a constant hazard `1 / lambda`.
//!
//! After `t` observations the run-length posterior `P(r | x₁..ₜ)` says how
//! many of the latest observations belong to the current segment; `r = 0`
//! means the next observation starts a new one. A change point is reported
//! when the most probable run length drops (the posterior has moved its mass
//! to a younger run): its index is `t − r`, the first observation of the new
//! segment. Run lengths whose probability falls below `prune` are dropped
//! from the tail, so memory and time stay bounded in practice.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Prior and hazard.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BocpdParams {
    /// Expected segment length (hazard = 1 / lambda).
    pub lambda: f64,
    /// Normal-Gamma prior: mean, pseudo-count of the mean, shape, rate.
    pub mu0: f64,
    pub kappa0: f64,
    pub alpha0: f64,
    pub beta0: f64,
    /// Tail run lengths below this posterior probability are dropped.
    pub prune: f64,
    /// A change point closer than this to the previous one is not reported.
    pub min_gap: usize,
}

impl Default for BocpdParams {
    /// TCPDBench's default prior (λ = 100, α = β = κ = 1, μ = 0), which
    /// assumes a roughly standardised signal.
    fn default() -> Self {
        BocpdParams {
            lambda: 100.0,
            mu0: 0.0,
            kappa0: 1.0,
            alpha0: 1.0,
            beta0: 1.0,
            prune: 1e-10,
            min_gap: 1,
        }
    }
}

/// One run length's sufficient statistics (posterior parameters).
#[derive(Debug, Clone, Copy)]
struct Run {
    log_p: f64,
    mu: f64,
    kappa: f64,
    alpha: f64,
    beta: f64,
}

impl Run {
    /// log Student-t predictive density of `x`.
    fn log_pred(&self, x: f64) -> f64 {
        let nu = 2.0 * self.alpha;
        let scale2 = self.beta * (self.kappa + 1.0) / (self.alpha * self.kappa);
        let z = (x - self.mu) * (x - self.mu) / (nu * scale2);
        ln_gamma((nu + 1.0) / 2.0)
            - ln_gamma(nu / 2.0)
            - 0.5 * (nu * std::f64::consts::PI * scale2).ln()
            - (nu + 1.0) / 2.0 * z.ln_1p()
    }

    fn update(&self, x: f64) -> Run {
        let kappa = self.kappa + 1.0;
        Run {
            log_p: self.log_p,
            mu: (self.kappa * self.mu + x) / kappa,
            kappa,
            alpha: self.alpha + 0.5,
            beta: self.beta + self.kappa * (x - self.mu) * (x - self.mu) / (2.0 * kappa),
        }
    }
}

/// A streaming detector: feed observations one at a time.
#[derive(Debug, Clone)]
pub struct Bocpd {
    params: BocpdParams,
    /// `runs[r]` is run length `r`.
    runs: Vec<Run>,
    t: usize,
    last_map: usize,
    last_cp: Option<usize>,
}

impl Bocpd {
    pub fn new(params: BocpdParams) -> Result<Self> {
        let p = params;
        if !(p.lambda > 1.0
            && p.kappa0 > 0.0
            && p.alpha0 > 0.0
            && p.beta0 > 0.0
            && p.mu0.is_finite())
        {
            return Err(Error::InvalidParameter(format!(
                "bocpd needs lambda > 1 and kappa0, alpha0, beta0 > 0, got {p:?}"
            )));
        }
        let mut b = Bocpd {
            params,
            runs: Vec::new(),
            t: 0,
            last_map: 0,
            last_cp: None,
        };
        b.runs.push(b.prior(0.0));
        Ok(b)
    }

    fn prior(&self, log_p: f64) -> Run {
        let p = &self.params;
        Run {
            log_p,
            mu: p.mu0,
            kappa: p.kappa0,
            alpha: p.alpha0,
            beta: p.beta0,
        }
    }

    /// Observes `x`; returns the index of a newly detected change point. A
    /// non-finite `x` counts as a missing observation: time advances, the
    /// hazard applies, but no run learns from it.
    pub fn push(&mut self, x: f64) -> Option<usize> {
        let seen = x.is_finite();
        let h = 1.0 / self.params.lambda;
        let (log_h, log_1h) = (h.ln(), (1.0 - h).ln());
        let mut cp_terms = f64::NEG_INFINITY;
        let mut next = Vec::with_capacity(self.runs.len() + 1);
        next.push(self.prior(0.0));
        for run in &self.runs {
            let lp = run.log_p + if seen { run.log_pred(x) } else { 0.0 };
            cp_terms = log_add(cp_terms, lp + log_h);
            let mut grown = if seen { run.update(x) } else { *run };
            grown.log_p = lp + log_1h;
            next.push(grown);
        }
        next[0].log_p = cp_terms;
        let norm = next
            .iter()
            .fold(f64::NEG_INFINITY, |a, r| log_add(a, r.log_p));
        for r in &mut next {
            r.log_p -= norm;
        }
        let floor = self.params.prune.ln();
        while next.len() > 2 && next.last().is_some_and(|r| r.log_p < floor) {
            next.pop();
        }
        self.runs = next;
        self.t += 1;

        let map = self.map_run_length();
        let mut found = None;
        if map < self.last_map {
            let cp = self.t - map;
            let far = self
                .last_cp
                .is_none_or(|last| cp >= last + self.params.min_gap.max(1));
            if cp > 0 && far {
                self.last_cp = Some(cp);
                found = Some(cp);
            }
        }
        self.last_map = map;
        found
    }

    /// Most probable run length now.
    pub fn map_run_length(&self) -> usize {
        let mut best = (0, f64::NEG_INFINITY);
        for (r, run) in self.runs.iter().enumerate() {
            if run.log_p > best.1 {
                best = (r, run.log_p);
            }
        }
        best.0
    }

    /// `P(run length = r | data)` for r = 0, 1, … (pruned tail omitted).
    pub fn run_length_posterior(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.log_p.exp()).collect()
    }

    /// Observations seen.
    pub fn len(&self) -> usize {
        self.t
    }

    pub fn is_empty(&self) -> bool {
        self.t == 0
    }

    /// Runs a whole signal; returns change points (first index of each new segment).
    pub fn detect(signal: &[f64], params: BocpdParams) -> Result<Vec<usize>> {
        let mut b = Bocpd::new(params)?;
        let mut cps: Vec<usize> = signal.iter().filter_map(|&x| b.push(x)).collect();
        cps.sort_unstable();
        cps.dedup();
        Ok(cps)
    }
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn posterior_sums_to_one_and_zero_run_is_hazard() {
        let mut b = Bocpd::new(BocpdParams::default()).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..50 {
            b.push((i % 3) as f64 * 0.1);
        }
        let post = b.run_length_posterior();
        let s: f64 = post.iter().sum();
        assert!((s - 1.0).abs() < 1e-9);
        assert!((post[0] - 0.01).abs() < 1e-9);
    }
}
