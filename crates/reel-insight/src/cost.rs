//! Segment costs, defined exactly as the Python library `ruptures` (1.1.10)
//! defines them, but evaluated in O(1) (L2, Normal) or incrementally (RBF)
//! instead of one NumPy call per segment.
//!
//! | cost   | ruptures class | value on `signal[s..e]`                                   | min size |
//! |--------|----------------|-----------------------------------------------------------|----------|
//! | L2     | `CostL2`       | Σ (xᵢ − mean)²                                             | 1        |
//! | L1     | `CostL1`       | Σ |xᵢ − median|                                            | 2        |
//! | Normal | `CostNormal`   | (e − s) · ln(var + 1e-6) (population variance; the 1e-6 is ruptures' default `add_small_diag`) | 2 |
//! | RBF    | `CostRbf`      | (e − s) − Σᵢⱼ K(i, j) / (e − s), K(i, j) = exp(−clip(γ (xᵢ − xⱼ)², 0.01, 100)) for i ≠ j, K(i, i) = 1 | 1 |
//!
//! RBF's γ defaults to ruptures' median heuristic, 1 / median over pairs i < j
//! of (xᵢ − xⱼ)², found here in O(n log n) by selecting the exact order
//! statistic of the pairwise differences instead of materialising n²/2 of them.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which segment cost to use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CostKind {
    L2,
    L1,
    Normal,
    /// Gaussian kernel; `gamma: None` applies ruptures' median heuristic.
    Rbf {
        gamma: Option<f64>,
    },
}

impl CostKind {
    /// The cost's own minimum segment length (ruptures' `cost.min_size`).
    pub fn min_size(self) -> usize {
        match self {
            CostKind::L2 | CostKind::Rbf { .. } => 1,
            CostKind::L1 | CostKind::Normal => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CostKind::L2 => "l2",
            CostKind::L1 => "l1",
            CostKind::Normal => "normal",
            CostKind::Rbf { .. } => "rbf",
        }
    }
}

/// A cost fitted to one signal. PELT and BinSeg are generic over it so each
/// cost is monomorphised into the search loop.
pub(crate) trait SegmentCost: Sync {
    fn error(&self, start: usize, end: usize) -> f64;

    /// Called by PELT before it asks for `error(t, end)` for every `t >= lo`.
    fn advance_to(&mut self, _end: usize, _lo: usize) {}

    /// For BinSeg: `(whole, left, right)` with `left[i] = error(start, start + i)`
    /// and `right[i] = error(start + i, end)`, when the cost can do better than
    /// calling `error` per candidate.
    fn split_profile(&self, _start: usize, _end: usize) -> Option<(f64, Vec<f64>, Vec<f64>)> {
        None
    }
}

/// Prefix sums of the signal and its square, taken after subtracting the
/// global mean (which keeps the cancellation in S2 − S1²/n small).
pub(crate) struct Moments {
    s1: Vec<f64>,
    s2: Vec<f64>,
    /// `run[i]`: first index of the run of equal values that holds `i`, so a
    /// constant segment costs exactly 0 as in NumPy (this decides ties).
    run: Vec<usize>,
}

impl Moments {
    fn new(signal: &[f64]) -> Self {
        let mean = signal.iter().sum::<f64>() / signal.len() as f64;
        let mut s1 = Vec::with_capacity(signal.len() + 1);
        let mut s2 = Vec::with_capacity(signal.len() + 1);
        let (mut a, mut b) = (0.0, 0.0);
        s1.push(0.0);
        s2.push(0.0);
        for &x in signal {
            let c = x - mean;
            a += c;
            b += c * c;
            s1.push(a);
            s2.push(b);
        }
        let mut run = Vec::with_capacity(signal.len());
        for (i, &x) in signal.iter().enumerate() {
            let r = if i > 0 && signal[i - 1] == x {
                run[i - 1]
            } else {
                i
            };
            run.push(r);
        }
        Moments { s1, s2, run }
    }

    /// Σ (x − segment mean)² over `[start, end)`, never negative.
    #[inline]
    fn sse(&self, start: usize, end: usize) -> f64 {
        if self.run[end - 1] <= start {
            return 0.0;
        }
        let len = (end - start) as f64;
        let a = self.s1[end] - self.s1[start];
        let b = self.s2[end] - self.s2[start];
        (b - a * a / len).max(0.0)
    }
}

pub(crate) struct L2(Moments);

impl SegmentCost for L2 {
    #[inline]
    fn error(&self, start: usize, end: usize) -> f64 {
        self.0.sse(start, end)
    }
}

pub(crate) struct Normal(Moments);

impl SegmentCost for Normal {
    #[inline]
    fn error(&self, start: usize, end: usize) -> f64 {
        let len = (end - start) as f64;
        let var = self.0.sse(start, end) / len;
        len * (var + 1e-6).ln()
    }
}

pub(crate) struct L1<'a>(&'a [f64]);

impl SegmentCost for L1<'_> {
    fn error(&self, start: usize, end: usize) -> f64 {
        let mut seg = self.0[start..end].to_vec();
        let med = median_in_place(&mut seg);
        self.0[start..end].iter().map(|x| (x - med).abs()).sum()
    }
}

/// NumPy's median: the middle element, or the mean of the two middle ones.
fn median_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    let mid = n / 2;
    let (_, &mut hi, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    if n % 2 == 1 {
        hi
    } else {
        let lo = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo + hi) / 2.0
    }
}

/// Gaussian-kernel cost without the n × n Gram matrix: PELT keeps, for every
/// still-admissible start `t`, the kernel sum over `[t, end)²` and extends it
/// block by block; BinSeg computes each segment's row sums once.
pub(crate) struct Rbf<'a> {
    x: &'a [f64],
    gamma: f64,
    /// `block[t]` = Σ K over `[t, end)²` for `t` in `lo..=end`.
    block: Vec<f64>,
    lo: usize,
    end: usize,
    scratch: Vec<f64>,
    /// For BinSeg on short signals: `tri[e(e+1)/2 + s]` = Σ K over
    /// `[0, s) × [0, e)`, s ≤ e (the lower half of the Gram integral image;
    /// the Gram matrix is symmetric), so any segment costs O(1).
    tri: Option<Vec<f64>>,
}

/// Largest signal for which BinSeg builds the triangular integral image
/// ((n+1)(n+2)/2 doubles: 256 MB at this size).
const RBF_DENSE_MAX: usize = 8000;

/// Below this many kernel evaluations a step runs on one thread.
const PAR_MIN_WORK: usize = 1 << 15;

impl<'a> Rbf<'a> {
    fn new(x: &'a [f64], gamma: f64) -> Self {
        Rbf {
            x,
            gamma,
            block: vec![0.0; x.len() + 1],
            lo: 0,
            end: 0,
            scratch: Vec::new(),
            tri: None,
        }
    }

    /// Builds the integral image when the signal is short enough (BinSeg
    /// asks for arbitrary segments, unlike PELT's forward sweep).
    pub(crate) fn with_dense(mut self) -> Self {
        let n = self.x.len();
        if n > RBF_DENSE_MAX {
            return self;
        }
        let (x, gamma) = (self.x, self.gamma);
        let mut tri = vec![0.0; (n + 1) * (n + 2) / 2];
        let mut col = vec![0.0; n];
        for e in 0..n {
            // Column e of K above the diagonal: K(p, e) for p < e.
            let xe = x[e];
            if e >= 4096 {
                col[..e]
                    .par_iter_mut()
                    .enumerate()
                    .with_min_len(1024)
                    .for_each(|(p, c)| *c = k_off(x[p], xe, gamma));
            } else {
                for (p, c) in col[..e].iter_mut().enumerate() {
                    *c = k_off(x[p], xe, gamma);
                }
            }
            let (row, next) = tri.split_at_mut((e + 1) * (e + 2) / 2);
            let row = &row[e * (e + 1) / 2..];
            // P[s][e+1] = P[s][e] + Σ_{p<s} K(p, e) for s ≤ e.
            let mut acc = 0.0;
            for s in 0..=e {
                next[s] = row[s] + acc;
                if s < e {
                    acc += col[s];
                }
            }
            // P[e+1][e+1] = P[e][e] + 2 Σ_{p<e} K(p, e) + K(e, e).
            next[e + 1] = row[e] + 2.0 * acc + 1.0;
        }
        self.tri = Some(tri);
        self
    }

    #[inline]
    fn dense_error(tri: &[f64], start: usize, end: usize) -> f64 {
        let p = |s: usize, e: usize| tri[e * (e + 1) / 2 + s];
        let len = (end - start) as f64;
        let sum = p(end, end) - 2.0 * p(start, end) + p(start, start);
        len - sum / len
    }

    #[inline]
    fn k(&self, i: usize, j: usize) -> f64 {
        k_off(self.x[i], self.x[j], self.gamma)
    }

    /// Σ K over `[start, end)²`, directly (fallback path).
    fn block_sum(&self, start: usize, end: usize) -> f64 {
        let mut s = (end - start) as f64;
        for i in start..end {
            for j in (i + 1)..end {
                s += 2.0 * self.k(i, j);
            }
        }
        s
    }
}

/// Off-diagonal kernel value, clipped as ruptures clips it.
#[inline]
fn k_off(a: f64, b: f64, gamma: f64) -> f64 {
    let d = a - b;
    (-(d * d * gamma).clamp(1e-2, 1e2)).exp()
}

impl SegmentCost for Rbf<'_> {
    fn error(&self, start: usize, end: usize) -> f64 {
        if let Some(tri) = &self.tri {
            return Self::dense_error(tri, start, end);
        }
        let len = (end - start) as f64;
        let sum = if end == self.end && start >= self.lo {
            self.block[start]
        } else {
            self.block_sum(start, end)
        };
        len - sum / len
    }

    fn advance_to(&mut self, new_end: usize, lo: usize) {
        let old_end = self.end;
        if new_end <= old_end || lo < self.lo {
            if new_end != old_end || lo < self.lo {
                // Not the forward sweep PELT does; start the sweep afresh.
                self.lo = lo;
                self.end = lo;
                self.block[lo] = 0.0;
                self.advance_to(new_end, lo);
            }
            return;
        }
        let lo = lo.min(old_end);
        self.lo = lo;
        let (x, gamma) = (self.x, self.gamma);
        // New square block [old_end, new_end)², from its bottom-right corner.
        self.block[new_end] = 0.0;
        for j in (old_end..new_end).rev() {
            let row: f64 = ((j + 1)..new_end).map(|q| k_off(x[j], x[q], gamma)).sum();
            self.block[j] = self.block[j + 1] + 1.0 + 2.0 * row;
        }
        let corner = self.block[old_end];
        // Cross terms: r[j] = Σ_{i in new rows} K(i, j) for old columns j.
        let width = old_end - lo;
        self.scratch.clear();
        self.scratch.resize(width, 0.0);
        let rows = &x[old_end..new_end];
        let cross = |j: usize| -> f64 { rows.iter().map(|&xi| k_off(xi, x[j], gamma)).sum() };
        if width * rows.len() >= PAR_MIN_WORK {
            self.scratch
                .par_iter_mut()
                .enumerate()
                .with_min_len(1024)
                .for_each(|(o, r)| *r = cross(lo + o));
        } else {
            for (o, r) in self.scratch.iter_mut().enumerate() {
                *r = cross(lo + o);
            }
        }
        let mut suffix = 0.0;
        for j in (lo..old_end).rev() {
            suffix += self.scratch[j - lo];
            self.block[j] += 2.0 * suffix + corner;
        }
        self.end = new_end;
    }

    fn split_profile(&self, start: usize, end: usize) -> Option<(f64, Vec<f64>, Vec<f64>)> {
        if self.tri.is_some() {
            return None; // error() is O(1) already
        }
        let len = end - start;
        let (x, gamma) = (self.x, self.gamma);
        // Per row i: Σ_{j<i} K and Σ_{j>i} K within the segment.
        let row = |i: usize| -> (f64, f64) {
            let below = (start..i).map(|j| k_off(x[i], x[j], gamma)).sum();
            let above = ((i + 1)..end).map(|j| k_off(x[i], x[j], gamma)).sum();
            (below, above)
        };
        let sums: Vec<(f64, f64)> = if len * len >= PAR_MIN_WORK {
            (start..end)
                .into_par_iter()
                .with_min_len(64)
                .map(row)
                .collect()
        } else {
            (start..end).map(row).collect()
        };
        let mut fwd = vec![0.0; len + 1];
        for i in 0..len {
            fwd[i + 1] = fwd[i] + 2.0 * sums[i].0 + 1.0;
        }
        let mut bwd = vec![0.0; len + 1];
        for i in (0..len).rev() {
            bwd[i] = bwd[i + 1] + 2.0 * sums[i].1 + 1.0;
        }
        let cost = |sum: f64, l: usize| {
            if l == 0 {
                0.0
            } else {
                l as f64 - sum / l as f64
            }
        };
        let left = (0..=len).map(|i| cost(fwd[i], i)).collect();
        let right = (0..=len).map(|i| cost(bwd[i], len - i)).collect();
        Some((cost(fwd[len], len), left, right))
    }
}

/// ruptures' median heuristic: `1 / median(pdist(x, "sqeuclidean"))`, or 1
/// when that median is 0.
pub fn rbf_median_gamma(signal: &[f64]) -> f64 {
    let n = signal.len();
    if n < 2 {
        return 1.0;
    }
    let mut x = signal.to_vec();
    x.sort_by(f64::total_cmp);
    let m = n * (n - 1) / 2;
    let med = if m % 2 == 1 {
        let d = kth_pair_diff(&x, m / 2);
        d * d
    } else {
        let a = kth_pair_diff(&x, m / 2 - 1);
        let b = kth_pair_diff(&x, m / 2);
        (a * a + b * b) / 2.0
    };
    if med != 0.0 {
        1.0 / med
    } else {
        1.0
    }
}

/// The k-th smallest (0-based) of `x[j] − x[i]`, i < j, for sorted `x`:
/// a bisection over the bit patterns of non-negative doubles (monotone in
/// value), counting pairs at or below the probe with two pointers.
fn kth_pair_diff(x: &[f64], k: usize) -> f64 {
    let count_le = |v: f64| -> usize {
        let mut c = 0;
        let mut i = 0;
        for j in 0..x.len() {
            while x[j] - x[i] > v {
                i += 1;
            }
            c += j - i;
        }
        c
    };
    let (mut lo, mut hi) = (0u64, f64::MAX.to_bits());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if count_le(f64::from_bits(mid)) > k {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    f64::from_bits(lo)
}

/// A cost fitted to a signal.
pub(crate) enum Fitted<'a> {
    L2(L2),
    L1(L1<'a>),
    Normal(Normal),
    Rbf(Rbf<'a>),
}

impl<'a> Fitted<'a> {
    pub(crate) fn new(kind: CostKind, signal: &'a [f64]) -> Result<Self> {
        Ok(match kind {
            CostKind::L2 => Fitted::L2(L2(Moments::new(signal))),
            CostKind::L1 => Fitted::L1(L1(signal)),
            CostKind::Normal => Fitted::Normal(Normal(Moments::new(signal))),
            CostKind::Rbf { gamma } => {
                let gamma = match gamma {
                    Some(g) if g.is_finite() && g > 0.0 => g,
                    Some(g) => {
                        return Err(Error::InvalidParameter(format!(
                            "rbf gamma must be > 0, got {g}"
                        )))
                    }
                    None => rbf_median_gamma(signal),
                };
                Fitted::Rbf(Rbf::new(signal, gamma))
            }
        })
    }
}

/// Checks a signal is non-empty and finite.
pub(crate) fn validate(signal: &[f64]) -> Result<()> {
    if signal.is_empty() {
        return Err(Error::EmptySignal);
    }
    if let Some((index, &value)) = signal.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite { index, value });
    }
    Ok(())
}

/// The cost of one segment, for callers who want to inspect a segmentation.
pub fn segment_cost(signal: &[f64], kind: CostKind, start: usize, end: usize) -> Result<f64> {
    validate(signal)?;
    if start >= end || end > signal.len() {
        return Err(Error::InvalidParameter(format!(
            "segment {start}..{end} is empty or outside a signal of {} samples",
            signal.len()
        )));
    }
    Ok(match Fitted::new(kind, signal)? {
        Fitted::L2(c) => c.error(start, end),
        Fitted::L1(c) => c.error(start, end),
        Fitted::Normal(c) => c.error(start, end),
        Fitted::Rbf(c) => c.error(start, end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2_is_sum_of_squared_deviations() {
        let x = [1.0, 2.0, 3.0, 10.0];
        // mean of first three = 2 → 1 + 0 + 1
        assert!((segment_cost(&x, CostKind::L2, 0, 3).ok() == Some(2.0)));
    }

    #[test]
    fn l1_uses_numpy_median() {
        let x = [1.0, 2.0, 4.0, 10.0];
        // median of even length = (2 + 4) / 2 = 3 → 2 + 1 + 1 + 7
        assert_eq!(segment_cost(&x, CostKind::L1, 0, 4).ok(), Some(11.0));
    }

    #[test]
    fn normal_adds_small_diag() {
        let x = [5.0, 5.0, 5.0];
        let c = segment_cost(&x, CostKind::Normal, 0, 3).unwrap_or(f64::NAN);
        assert!((c - 3.0 * (1e-6f64).ln()).abs() < 1e-9);
    }

    #[test]
    fn median_gamma_matches_brute_force() {
        let x: Vec<f64> = (0..57)
            .map(|i| ((i * 37 % 23) as f64).sin() * 3.0 + (i % 5) as f64)
            .collect();
        let mut d: Vec<f64> = Vec::new();
        for i in 0..x.len() {
            for j in (i + 1)..x.len() {
                d.push((x[i] - x[j]) * (x[i] - x[j]));
            }
        }
        d.sort_by(f64::total_cmp);
        let m = d.len();
        let med = if m % 2 == 1 {
            d[m / 2]
        } else {
            (d[m / 2 - 1] + d[m / 2]) / 2.0
        };
        assert_eq!(rbf_median_gamma(&x), 1.0 / med);
    }

    #[test]
    fn rbf_incremental_matches_direct() {
        let x: Vec<f64> = (0..300)
            .map(|i| ((i * 7919 % 101) as f64) / 50.0 + if i > 150 { 3.0 } else { 0.0 })
            .collect();
        let g = rbf_median_gamma(&x);
        let mut inc = Rbf::new(&x, g);
        let direct = Rbf::new(&x, g);
        for end in [5usize, 10, 40, 45, 200, 300] {
            inc.advance_to(end, 3);
            for t in [3usize, 4, end / 2, end - 1] {
                let a = inc.error(t, end);
                let b = direct.block_sum(t, end);
                let b = (end - t) as f64 - b / (end - t) as f64;
                assert!(
                    (a - b).abs() < 1e-9 * (1.0 + b.abs()),
                    "{t}..{end}: {a} vs {b}"
                );
            }
        }
        let (whole, left, right) = direct.split_profile(10, 90).unwrap_or_default();
        assert!((whole - direct.error(10, 90)).abs() < 1e-9);
        assert!((left[30] - direct.error(10, 40)).abs() < 1e-9);
        assert!((right[30] - direct.error(40, 90)).abs() < 1e-9);
    }
}
