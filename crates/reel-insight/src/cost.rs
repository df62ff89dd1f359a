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

    /// Called by PELT before it asks for `error(t, end)` for starts `t >= lo`
    /// that are multiples of `stride` (PELT's `jump`).
    fn advance_to(&mut self, _end: usize, _lo: usize, _stride: usize) {}

    /// Whether PELT should ask for its starts' errors in one [`Self::errors`]
    /// call (worth it when `error` is a division away from stored sums:
    /// the divisions then overlap) rather than one `error` call each.
    const BATCH_ERRORS: bool = false;

    /// `out[i] = error(starts[i], end)`, for PELT's admissible starts:
    /// ascending multiples of the `stride` last given to
    /// [`Self::advance_to`] (a cost may rely on that to batch them).
    fn errors(&self, starts: &[usize], end: usize, out: &mut Vec<f64>) {
        out.clear();
        out.extend(starts.iter().map(|&t| self.error(t, end)));
    }

    /// `out[i] = total[starts[i]] + (error(starts[i], end) + pen)`, PELT's
    /// candidate totals, in that order of operations.
    #[inline(always)]
    fn totals(&self, starts: &[usize], end: usize, total: &[f64], pen: f64, out: &mut Vec<f64>) {
        self.errors(starts, end, out);
        for (v, &t) in out.iter_mut().zip(starts) {
            *v = total[t] + (*v + pen);
        }
    }

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
    /// `block[t]` = Σ K over `[t, end)²` for the multiples `t` of `stride`
    /// in `lo..mid` and every `t` in `mid..=end` (the newest step).
    block: Vec<f64>,
    lo: usize,
    mid: usize,
    end: usize,
    stride: usize,
    /// `lo` is a multiple of `stride` (kept to spare a division per step).
    lo_aligned: bool,

    scratch: Vec<f64>,
    /// For BinSeg on short signals: `tri[e(e+1)/2 + s]` = Σ K over
    /// `[0, s) × [0, e)`, s ≤ e (the lower half of the Gram integral image;
    /// the Gram matrix is symmetric), so any segment costs O(1).
    tri: Option<Vec<f64>>,
}

/// Largest signal for which BinSeg builds the triangular integral image
/// ((n+1)(n+2)/2 doubles: 256 MB at this size).
const RBF_DENSE_MAX: usize = 8000;

/// A step of at most this many new samples evaluates its own square block
/// as one flat list of pairs.
pub(crate) const SMALL_BLOCK: usize = 8;
const SMALL_PAIRS: usize = SMALL_BLOCK * (SMALL_BLOCK - 1) / 2;

/// Below this many kernel evaluations a step runs on one thread.
const PAR_MIN_WORK: usize = 1 << 15;

impl<'a> Rbf<'a> {
    fn new(x: &'a [f64], gamma: f64) -> Self {
        Rbf {
            x,
            gamma,
            block: vec![0.0; x.len() + 1],
            lo: 0,
            mid: 0,
            end: 0,
            stride: 1,
            lo_aligned: true,
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
                    .par_chunks_mut(1024)
                    .zip(x[..e].par_chunks(1024))
                    .for_each(|(c, xs)| cross_sums(c, xs, &[xe], gamma));
            } else {
                cross_sums(&mut col[..e], &x[..e], &[xe], gamma);
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

    /// Whether `block` holds the sums for all of PELT's (ascending) `starts`.
    #[inline(always)]
    fn swept_all(&self, starts: &[usize], end: usize) -> bool {
        let swept = self.tri.is_none()
            && end == self.end
            && starts.first().is_none_or(|&t| t >= self.lo)
            && starts.last().is_none_or(|&t| t <= end)
            // PELT's starts are multiples of its jump, which is the stride
            // it swept with (a division per start would cost more than
            // the rest of the loop).
            && starts.first().is_none_or(|&t| {
                if t == self.lo {
                    self.lo_aligned
                } else {
                    t.is_multiple_of(self.stride)
                }
            });
        debug_assert!(!swept || starts.iter().all(|&t| self.swept(t, end)));
        swept
    }

    /// Whether `block[start]` holds the sum over `[start, end)²`.
    #[inline]
    fn swept(&self, start: usize, end: usize) -> bool {
        end == self.end && start >= self.lo && (start >= self.mid || start.is_multiple_of(self.stride))
    }

    #[inline]
    fn k(&self, i: usize, j: usize) -> f64 {
        k_off(self.x[i], self.x[j], self.gamma)
    }

    /// Σ K over `[start, end)²`, directly (fallback path).
    #[cold]
    #[inline(never)]
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

/// `block[j] += 2 Σ_{o ≥ j} s[o] + corner` (`s` is clobbered). The running
/// sum is one chain of dependent adds; four chains over four quarters, then
/// each quarter's offset, keep the adder busy.
#[inline(always)]
fn add_suffix_sums(block: &mut [f64], s: &mut [f64], corner: f64) {
    const K: usize = 4;
    let w = s.len();
    let q = w / K;
    // Local suffix sums within quarters [c q, (c+1) q); the tail [K q, w)
    // is the last quarter's extension.
    let mut acc = [0.0f64; K];
    let tail: f64 = {
        let mut a = 0.0;
        for v in s[K * q..].iter_mut().rev() {
            a += *v;
            *v = a;
        }
        a
    };
    for o in (0..q).rev() {
        for c in 0..K {
            let v = &mut s[c * q + o];
            acc[c] += *v;
            *v = acc[c];
        }
    }
    // Offsets: what lies above each quarter.
    let mut off = [0.0f64; K + 1];
    off[K] = tail;
    for c in (0..K).rev() {
        off[c] = off[c + 1] + acc[c];
    }
    for c in 0..K {
        let o = off[c + 1];
        for (b, &v) in block[c * q..(c + 1) * q]
            .iter_mut()
            .zip(&s[c * q..(c + 1) * q])
        {
            *b += 2.0 * (v + o) + corner;
        }
    }
    for (b, &v) in block[K * q..].iter_mut().zip(&s[K * q..]) {
        *b += 2.0 * v + corner;
    }
}

reel_cpu::multiversion! {
isa = crate::simd::isa;
avx512 = crate::simd::avx512::block_row_sums;
/// `rows[j] = Σ_{q > j} K(blk[j], blk[q])` for a block of at most
/// [`SMALL_BLOCK`] samples: all pairs in one short vectorisable loop, then
/// each row's sum.
fn block_row_sums(blk: &[f64], gamma: f64, rows: &mut [f64; SMALL_BLOCK]) {
    let w = blk.len().min(SMALL_BLOCK);
    let (mut a, mut b) = ([0.0f64; SMALL_PAIRS], [0.0f64; SMALL_PAIRS]);
    let mut p = 0;
    for j in 0..w {
        for q in (j + 1)..w {
            (a[p], b[p]) = (blk[j], blk[q]);
            p += 1;
        }
    }
    let mut k = [0.0f64; SMALL_PAIRS];
    for ((k, &a), &b) in k[..p].iter_mut().zip(&a[..p]).zip(&b[..p]) {
        *k = k_off(a, b, gamma);
    }
    let mut p = 0;
    for (j, row) in rows[..w].iter_mut().enumerate() {
        let len = w - j - 1;
        *row = k[p..p + len].iter().sum();
        p += len;
    }
}
}

/// [`add_suffix_sums`] at the multiples of `stride` only (`block` and `s`
/// start at position `base`): the sums between them are summed as groups,
/// so the dependent chain is `stride` times shorter.
#[inline(always)]
fn add_strided_suffix_sums(block: &mut [f64], s: &[f64], first: usize, corner: f64, stride: usize) {
    let w = s.len();
    if first >= w {
        return;
    }
    let mut acc = 0.0;
    let mut hi = w;
    let last = first + (w - 1 - first) / stride * stride;
    let mut off = last;
    loop {
        acc += s[off..hi].iter().sum::<f64>();
        block[off] += 2.0 * acc + corner;
        if off == first {
            break;
        }
        hi = off;
        off -= stride;
    }
}

reel_cpu::multiversion! {
isa = crate::simd::isa;
avx512 = crate::simd::avx512::cross_sums;
/// `out[j] = Σ_i K(rows[i], cols[j])` (`rows` non-empty), one row at a
/// time so the loop over columns vectorises.
fn cross_sums(out: &mut [f64], cols: &[f64], rows: &[f64], gamma: f64) {
    // Three passes per block of columns: the clipped argument, its
    // reduction, then the polynomial. Each pass's loop body is short, so the
    // out-of-order core keeps many columns in flight instead of waiting on
    // one long dependency chain (measured: 1 pass 10, 2 passes 6.9,
    // 3 passes 6.4 cycles per kernel value on SSE2).
    const B: usize = 64;
    let mut r = [0.0f64; B];
    let mut s = [0u64; B];
    for (out, cols) in out.chunks_mut(B).zip(cols.chunks(B)) {
        let w = out.len();
        for (row, &xi) in rows.iter().enumerate() {
            for (r, &xj) in r[..w].iter_mut().zip(cols) {
                *r = clipped_arg(xi, xj, gamma);
            }
            for (r, s) in r[..w].iter_mut().zip(s[..w].iter_mut()) {
                (*r, *s) = exp_reduce(*r);
            }
            let terms = r[..w].iter().zip(&s[..w]).map(|(&r, &s)| exp_finish(r, s));
            if row == 0 {
                for (o, k) in out.iter_mut().zip(terms) {
                    *o = k;
                }
            } else {
                for (o, k) in out.iter_mut().zip(terms) {
                    *o += k;
                }
            }
        }
    }
}
}

reel_cpu::multiversion! {
isa = crate::simd::isa;
avx512 = crate::simd::avx512::row_into;
/// `out[j] += K(xi, cols[j])` for every j; returns Σ_j K(xi, cols[j]).
/// Like [`cross_sums`], with the row's total kept in four lanes so that
/// sum vectorises too.
fn row_into(out: &mut [f64], cols: &[f64], xi: f64, gamma: f64) -> f64 {
    const B: usize = 64;
    const L: usize = 4;
    let mut r = [0.0f64; B];
    let mut s = [0u64; B];
    let mut acc = [0.0f64; L];
    for (out, cols) in out.chunks_mut(B).zip(cols.chunks(B)) {
        let w = out.len();
        for (r, &xj) in r[..w].iter_mut().zip(cols) {
            *r = clipped_arg(xi, xj, gamma);
        }
        for (r, s) in r[..w].iter_mut().zip(s[..w].iter_mut()) {
            (*r, *s) = exp_reduce(*r);
        }
        let mut oc = out.chunks_exact_mut(L);
        let mut rc = r[..w].chunks_exact(L);
        let mut sc = s[..w].chunks_exact(L);
        for ((o, r), s) in (&mut oc).zip(&mut rc).zip(&mut sc) {
            for l in 0..L {
                let k = exp_finish(r[l], s[l]);
                o[l] += k;
                acc[l] += k;
            }
        }
        let tail = oc.into_remainder();
        for ((o, &r), &s) in tail.iter_mut().zip(rc.remainder()).zip(sc.remainder()) {
            let k = exp_finish(r, s);
            *o += k;
            acc[0] += k;
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}
}

/// Off-diagonal kernel value, clipped as ruptures clips it:
/// `exp(−clip(γ (a − b)², 0.01, 100))`. Branch-free so loops over it
/// auto-vectorise.
#[inline(always)]
fn k_off(a: f64, b: f64, gamma: f64) -> f64 {
    exp_neg_clipped(clipped_arg(a, b, gamma))
}

/// `clip(γ (a − b)², 0.01, 100)`, computed in NumPy's order.
#[inline(always)]
fn clipped_arg(a: f64, b: f64, gamma: f64) -> f64 {
    let d = a - b;
    let z = d * d * gamma;
    // `clamp` without its NaN handling (z is never NaN: the signal is finite,
    // and an overflow to +inf clips to 100 as in NumPy).
    let z = if z < 1e-2 { 1e-2 } else { z };
    if z > 1e2 {
        1e2
    } else {
        z
    }
}

/// `exp(−z)` for `z` in [0.01, 100], within about 1 ulp of the correctly
/// rounded value (as accurate as libm's `exp`; see the test), written as
/// straight-line arithmetic so the compiler vectorises it. The range needs
/// no overflow, underflow or subnormal handling: the result lies in
/// [3.7e-44, 0.99].
#[inline(always)]
fn exp_neg_clipped(z: f64) -> f64 {
    let (r, s) = exp_reduce(z);
    exp_finish(r, s)
}

// Adding 1.5·2^52 rounds to an integer held in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;

/// `−z = k ln 2 + r`, k = round(−z / ln 2) ≤ 0, |r| ≤ ln2/2: returns r and
/// k already shifted into the exponent field.
#[inline(always)]
fn exp_reduce(z: f64) -> (f64, u64) {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // fdlibm's split of ln 2: LN2_HI has 21 trailing zero bits, so k·LN2_HI
    // is exact for the |k| ≤ 145 that occur here.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    let t = SHIFT - z * LOG2E;
    let kf = t - SHIFT;
    let r = (kf * -LN2_HI - z) + kf * -LN2_LO;
    (r, t.to_bits().wrapping_sub(SHIFT.to_bits()) << 52)
}

/// `e^r · 2^k` from [`exp_reduce`]'s output.
#[inline(always)]
fn exp_finish(r: f64, k_bits: u64) -> f64 {
    // Near-minimax (Chebyshev) fit of e^r on |r| ≤ ln2/2, degree 11:
    // approximation error 3e-18, below the rounding of the evaluation.
    const C: [f64; 12] = [
        1.0,
        1.0,
        0.500_000_000_000_001_9,
        0.166_666_666_666_666_8,
        0.041_666_666_666_487_38,
        0.008_333_333_333_319_546,
        0.001_388_888_895_250_540_6,
        0.000_198_412_698_901_937_05,
        2.480_148_527_837_006_2e-5,
        2.755_724_076_173_925_7e-6,
        2.763_271_507_163_225_5e-7,
        2.511_009_561_188_623_7e-8,
    ];
    // e^r = 1 + (r + r² q(r)) (C[0] = C[1] = 1), so the only rounding at
    // full scale is the final add; q by Estrin's scheme: a short dependency
    // chain, so many lanes are in flight at once (Horner's 11-deep chain
    // leaves the core waiting on latency).
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let e0 = C[2] + C[3] * r;
    let e1 = C[4] + C[5] * r;
    let e2 = C[6] + C[7] * r;
    let e3 = C[8] + C[9] * r;
    let e4 = C[10] + C[11] * r;
    let f0 = e0 + e1 * r2;
    let f1 = e2 + e3 * r2;
    let q = (f0 + f1 * r4) + e4 * r8;
    let p = C[0] + (r + r2 * q);
    // p in [0.70, 1.42]; scale by 2^k through the exponent field.
    f64::from_bits(p.to_bits().wrapping_add(k_bits))
}

impl SegmentCost for Rbf<'_> {
    const BATCH_ERRORS: bool = true;

    #[inline]
    fn error(&self, start: usize, end: usize) -> f64 {
        if let Some(tri) = &self.tri {
            return Self::dense_error(tri, start, end);
        }
        let len = (end - start) as f64;
        let sum = if self.swept(start, end) {
            self.block[start]
        } else {
            self.block_sum(start, end)
        };
        len - sum / len
    }

    #[inline(always)]
    fn errors(&self, starts: &[usize], end: usize, out: &mut Vec<f64>) {
        out.clear();
        if !self.swept_all(starts, end) {
            out.extend(starts.iter().map(|&t| self.error(t, end)));
            return;
        }
        // Independent divisions side by side (the divider is the limit).
        let e = end as f64;
        out.extend(starts.iter().map(|&t| {
            let len = e - t as f64;
            len - self.block[t] / len
        }));
    }

    #[inline(always)]
    fn totals(&self, starts: &[usize], end: usize, total: &[f64], pen: f64, out: &mut Vec<f64>) {
        if !self.swept_all(starts, end) {
            self.errors(starts, end, out);
            for (v, &t) in out.iter_mut().zip(starts) {
                *v = total[t] + (*v + pen);
            }
            return;
        }
        out.clear();
        #[cfg(target_arch = "x86_64")]
        if crate::simd::isa() == crate::simd::Isa::Avx512 {
            out.resize(starts.len(), 0.0);
            #[allow(unsafe_code)]
            // SAFETY: isa() answers Avx512 only after detecting the features
            // the kernel is compiled with.
            unsafe { crate::simd::avx512::totals(starts, end, &self.block, total, pen, out) };
            return;
        }
        let e = end as f64;
        out.extend(starts.iter().map(|&t| {
            let len = e - t as f64;
            total[t] + ((len - self.block[t] / len) + pen)
        }));
    }

    #[inline(always)]
    fn advance_to(&mut self, new_end: usize, lo: usize, stride: usize) {
        let old_end = self.end;
        let stride = stride.max(1);
        if new_end <= old_end || lo < self.lo || stride != self.stride {
            if new_end != old_end || lo < self.lo || stride != self.stride {
                // Not the forward sweep PELT does; start the sweep afresh.
                self.lo = lo;
                self.mid = lo;
                self.end = lo;
                self.stride = stride;
                self.block[lo] = 0.0;
                self.advance_to(new_end, lo, stride);
            }
            return;
        }
        let lo = lo.min(old_end);
        if lo != self.lo || self.mid == self.lo {
            self.lo_aligned = lo.is_multiple_of(stride);
        }
        self.lo = lo;
        self.mid = old_end;
        let (x, gamma) = (self.x, self.gamma);
        // New square block [old_end, new_end)², from its bottom-right corner.
        self.block[new_end] = 0.0;
        let w = new_end - old_end;
        if w <= SMALL_BLOCK {
            // PELT's step (`jump` samples).
            let mut rows = [0.0f64; SMALL_BLOCK];
            block_row_sums(&x[old_end..new_end], gamma, &mut rows);
            for j in (0..w).rev() {
                let g = old_end + j;
                self.block[g] = self.block[g + 1] + 1.0 + 2.0 * rows[j];
            }
        } else {
            for j in (old_end..new_end).rev() {
                let row: f64 = ((j + 1)..new_end).map(|q| k_off(x[j], x[q], gamma)).sum();
                self.block[j] = self.block[j + 1] + 1.0 + 2.0 * row;
            }
        }
        let corner = self.block[old_end];
        // Cross terms: r[j] = Σ_{i in new rows} K(i, j) for old columns j.
        let width = old_end - lo;
        // (every entry is assigned: a step has at least one new row)
        if self.scratch.len() < width {
            self.scratch.resize(x.len().max(width), 0.0);
        }
        let scratch = &mut self.scratch[..width];
        let rows = &x[old_end..new_end];
        let cols = &x[lo..old_end];
        if width * rows.len() >= PAR_MIN_WORK {
            scratch
                .par_chunks_mut(4096)
                .zip(cols.par_chunks(4096))
                .for_each(|(out, cols)| cross_sums(out, cols, rows, gamma));
        } else {
            cross_sums(scratch, cols, rows, gamma);
        }
        if stride == 1 {
            add_suffix_sums(&mut self.block[lo..old_end], scratch, corner);
        } else {
            let first = if self.lo_aligned {
                0
            } else {
                (stride - lo % stride) % stride
            };
            add_strided_suffix_sums(&mut self.block[lo..old_end], scratch, first, corner, stride);
        }
        self.end = new_end;
    }

    fn split_profile(&self, start: usize, end: usize) -> Option<(f64, Vec<f64>, Vec<f64>)> {
        if self.tri.is_some() {
            return None; // error() is O(1) already
        }
        let len = end - start;
        let (seg, gamma) = (&self.x[start..end], self.gamma);
        // Each pair of the upper triangle once: above[i] = Σ_{j>i} K(i, j)
        // (row sums), below[j] = Σ_{i<j} K(i, j) (column sums).
        let pass = |rows: std::ops::Range<usize>| -> (Vec<f64>, Vec<f64>) {
            let mut below = vec![0.0; len];
            let above = rows
                .map(|i| row_into(&mut below[i + 1..], &seg[i + 1..], seg[i], gamma))
                .collect();
            (above, below)
        };
        let threads = rayon::current_num_threads();
        let (above, below) = if len * len >= PAR_MIN_WORK && threads > 1 {
            // Contiguous row ranges with about equal pair counts, each with
            // its own column sums, added up afterwards.
            let parts = threads * 4;
            let pairs = len * (len - 1) / 2;
            let mut bounds = vec![0];
            let mut acc = 0;
            for i in 0..len {
                acc += len - i - 1;
                if acc * parts >= pairs * bounds.len() && bounds.len() < parts {
                    bounds.push(i + 1);
                }
            }
            if bounds.last() != Some(&len) {
                bounds.push(len);
            }
            let results: Vec<(Vec<f64>, Vec<f64>)> = bounds
                .windows(2)
                .map(|w| w[0]..w[1])
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(pass)
                .collect();
            let mut above = Vec::with_capacity(len);
            let mut below = vec![0.0; len];
            for (a, b) in results {
                above.extend(a);
                for (s, v) in below.iter_mut().zip(b) {
                    *s += v;
                }
            }
            (above, below)
        } else {
            pass(0..len)
        };
        let mut fwd = vec![0.0; len + 1];
        for i in 0..len {
            fwd[i + 1] = fwd[i] + 2.0 * below[i] + 1.0;
        }
        let mut bwd = vec![0.0; len + 1];
        for i in (0..len).rev() {
            bwd[i] = bwd[i + 1] + 2.0 * above[i] + 1.0;
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
    let x = sorted(signal);
    let m = n * (n - 1) / 2;
    let stats = |k1, k2| {
        if x.iter().all(|v| v.is_finite()) {
            pair_diff_order_stats(&x, k1, k2)
        } else {
            // Not reached from detection (signals are validated first).
            (kth_pair_diff(&x, k1), kth_pair_diff(&x, k2))
        }
    };
    let med = if m % 2 == 1 {
        let (d, _) = stats(m / 2, m / 2);
        d * d
    } else {
        let (a, b) = stats(m / 2 - 1, m / 2);
        (a * a + b * b) / 2.0
    };
    if med != 0.0 {
        1.0 / med
    } else {
        1.0
    }
}

/// `signal` sorted ascending (no NaNs here), through integer keys that order
/// as the doubles do: sorting plain integers beats a comparator closure.
fn sorted(signal: &[f64]) -> Vec<f64> {
    const SIGN: u64 = 1 << 63;
    let mut keys: Vec<u64> = signal
        .iter()
        .map(|v| {
            let b = v.to_bits();
            if b & SIGN != 0 {
                !b
            } else {
                b | SIGN
            }
        })
        .collect();
    keys.sort_unstable();
    keys.into_iter()
        .map(|k| f64::from_bits(if k & SIGN != 0 { k & !SIGN } else { !k }))
        .collect()
}

/// The `k1`-th and `k2`-th smallest (0-based, `k2` ∈ {`k1`, `k1` + 1}) of
/// `x[j] − x[i]`, i < j, for sorted `x`, exactly, in O(n) per pass and a
/// handful of passes: a bracket `(lo, hi]` around both is narrowed (first
/// from a sample of pairs, then by interpolating the pair count, with
/// bisection as the fallback) until it holds at most a few n pairs, which
/// are then listed and selected from.
fn pair_diff_order_stats(x: &[f64], k1: usize, k2: usize) -> (f64, f64) {
    let n = x.len();
    let m = n * (n - 1) / 2;
    debug_assert!(k1 <= k2 && k2 <= k1 + 1 && k2 < m);
    let limit = n.max(1024);
    // Invariants: c_lo = #{d ≤ lo} ≤ k1 and c_hi = #{d ≤ hi} > k2. lo = −1
    // stands for "below every difference" (all are ≥ 0).
    let (mut lo, mut c_lo) = (-1.0f64, 0usize);
    let (mut hi, mut c_hi) = (x[n - 1] - x[0], m);
    let (mut va, mut vb) = sample_bracket(x, k1, k2, m);
    loop {
        if c_hi - c_lo <= limit {
            return select_in_bracket(x, lo, hi, c_lo, k1, k2);
        }
        let before = c_hi - c_lo;
        let (ca, cb) = count_le2(x, va, vb);
        for (v, c) in [(va, ca), (vb, cb)] {
            if c <= k1 {
                if v > lo {
                    (lo, c_lo) = (v, c);
                }
            } else if c > k2 {
                if v < hi {
                    (hi, c_hi) = (v, c);
                }
            } else {
                // c = k1 + 1 = k2: v splits the two order statistics.
                return split_at(x, v);
            }
        }
        if c_hi - c_lo <= limit {
            continue;
        }
        let lo0 = lo.max(0.0);
        let (bl, bh) = (lo0.to_bits(), hi.to_bits());
        if bh - bl <= 1 {
            // No double strictly inside (lo0, hi): the bracket's differences
            // are all hi, or 0 and hi when lo is the −1 sentinel.
            let zeros = if lo < 0.0 {
                count_le2(x, 0.0, 0.0).0
            } else {
                0
            };
            let at = |k: usize| if k < zeros { 0.0 } else { hi };
            return (at(k1), at(k2));
        }
        if (c_hi - c_lo) * 2 > before {
            // Too little progress: bisect the bit patterns (monotone in value).
            va = f64::from_bits(bl + (bh - bl) / 2);
            vb = va;
        } else {
            // Interpolate the count linearly, aiming a little outside both.
            let span = (c_hi - c_lo) as f64;
            let margin = (n as f64 / 8.0).max(span / 64.0);
            let at = |target: f64| {
                let f = ((target - c_lo as f64) / span).clamp(0.0, 1.0);
                (lo0 + (hi - lo0) * f).clamp(lo0, hi)
            };
            va = at(k1 as f64 - margin);
            vb = at(k2 as f64 + 1.0 + margin);
        }
    }
}

/// Two first probes: sample quantiles of a fixed pseudo-random sample of
/// pairs, a few standard errors either side of the target rank.
fn sample_bracket(x: &[f64], k1: usize, k2: usize, m: usize) -> (f64, f64) {
    let n = x.len();
    const S: usize = 512;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (((state >> 32) * n as u64) >> 32) as usize
    };
    let mut d: Vec<f64> = Vec::with_capacity(S);
    while d.len() < S {
        let (i, j) = (next(), next());
        if i != j {
            d.push((x[i] - x[j]).abs());
        }
    }
    let q1 = k1 as f64 / m as f64;
    let q2 = (k2 + 1) as f64 / m as f64;
    let sd = (q1 * (1.0 - q1) / S as f64).sqrt().max(1.0 / S as f64);
    let ia = ((q1 - 3.0 * sd) * S as f64).floor();
    let ib = ((q2 + 3.0 * sd) * S as f64).ceil();
    // The upper rank is selected among the elements above the lower one
    // (select_nth leaves them to its right).
    let (va, above) = if ia < 0.0 {
        (0.0, 0)
    } else {
        let ia = ia as usize;
        (*d.select_nth_unstable_by(ia, f64::total_cmp).1, ia + 1)
    };
    let vb = if ib >= S as f64 {
        x[n - 1] - x[0]
    } else if (ib as usize) < above {
        va
    } else {
        *d[above..].select_nth_unstable_by(ib as usize - above, f64::total_cmp).1
    };
    (va, vb.max(va))
}

/// Up to this length the pointer walks of the median search follow each j
/// with a short loop (cheap while `x` sits in L1); longer signals use
/// [`merge_walk`]'s branch-free chains, whose cost does not depend on how
/// well the branches predict (measured: 20 vs 30 µs at n = 1,000, 0.21 vs
/// 0.12 ms at n = 5,000, 0.57 vs 0.30 ms at n = 10,000).
const WALK_MAX: usize = 2048;

/// `(#{d ≤ va}, #{d ≤ vb})` over pairs i < j, d = x[j] − x[i] (va, vb ≥ 0).
fn count_le2(x: &[f64], va: f64, vb: f64) -> (usize, usize) {
    let (mut ca, mut cb) = (0, 0);
    if x.len() <= WALK_MAX {
        walk2(x, va, vb, |j, ia, ib| {
            ca += j - ia;
            cb += j - ib;
        });
    } else {
        let mut counts = [0usize; 2 * CHAINS];
        let v = |c: usize| if c < CHAINS { va } else { vb };
        merge_walk(x, v, |c, j, i, step| counts[c] += (j - i) * (1 - step));
        let (a, b) = counts.split_at(CHAINS);
        (ca, cb) = (a.iter().sum(), b.iter().sum());
    }
    (ca, cb)
}

/// `out[j]` = the first i with `x[j] − x[i] ≤ v` (v ≥ 0, so i ≤ j).
fn first_within_all(x: &[f64], v: f64, out: &mut Vec<usize>) {
    out.clear();
    out.resize(x.len(), 0);
    if x.len() <= WALK_MAX {
        walk1(x, v, |j, i| out[j] = i);
    } else {
        // The last write for each j is the final i (earlier ones are
        // provisional).
        merge_walk(
            x,
            |c| if c < CHAINS { v } else { f64::NAN },
            |_, j, i, _| out[j] = i,
        );
    }
}

/// [`walk2`] for one probe: `f(j, i)`.
#[inline(always)]
fn walk1(x: &[f64], v: f64, mut f: impl FnMut(usize, usize)) {
    const K: usize = 4;
    let n = x.len();
    let len = n / K;
    let (mut i, mut j0) = ([0usize; K], [0usize; K]);
    for c in 0..K {
        let j = c * len;
        j0[c] = j;
        i[c] = x[..j].partition_point(|&xi| x[j] - xi > v);
    }
    for t in 0..len {
        for c in 0..K {
            let j = j0[c] + t;
            i[c] = first_within(x, x[j], i[c], v);
            f(j, i[c]);
        }
    }
    let mut a = i[K - 1];
    for (j, &xj) in x.iter().enumerate().skip(K * len) {
        a = first_within(x, xj, a, v);
        f(j, a);
    }
}

/// Calls `f(j, ia, ib)` for every j (in no particular order), where `ia` /
/// `ib` is the first i with `x[j] − x[i] ≤ va` / `≤ vb` (va, vb ≥ 0; x
/// sorted). The pointer walk is one long chain of dependent loads; K walks
/// over K slices of j side by side give the core independent work.
#[inline(always)]
fn walk2(x: &[f64], va: f64, vb: f64, mut f: impl FnMut(usize, usize, usize)) {
    const K: usize = 4;
    let n = x.len();
    let len = n / K;
    let (mut ia, mut ib, mut j0) = ([0usize; K], [0usize; K], [0usize; K]);
    for c in 0..K {
        let j = c * len;
        j0[c] = j;
        ia[c] = x[..j].partition_point(|&xi| x[j] - xi > va);
        ib[c] = x[..j].partition_point(|&xi| x[j] - xi > vb);
    }
    for t in 0..len {
        for c in 0..K {
            let j = j0[c] + t;
            let xj = x[j];
            ia[c] = first_within(x, xj, ia[c], va);
            ib[c] = first_within(x, xj, ib[c], vb);
            f(j, ia[c], ib[c]);
        }
    }
    let (mut a, mut b) = (ia[K - 1], ib[K - 1]);
    for (j, &xj) in x.iter().enumerate().skip(K * len) {
        a = first_within(x, xj, a, va);
        b = first_within(x, xj, b, vb);
        f(j, a, b);
    }
}

/// The first `i ≥ from` with `xj − x[i] ≤ v` (v ≥ 0, so at most xj's own
/// index). Pointers move by about one per element: one branch-free step
/// first, then the loop (measured best: more steps lengthen the chain of
/// dependent loads, none leaves the loop branch to mispredict).
#[inline(always)]
fn first_within(x: &[f64], xj: f64, from: usize, v: f64) -> usize {
    let mut i = from;
    i += usize::from(xj - x[i] > v);
    while xj - x[i] > v {
        i += 1;
    }
    i
}

/// Walks per slice of j.
const CHAINS: usize = 4;

/// The two-pointer walk over sorted `x` for up to two probes at once, as
/// 2 × [`CHAINS`] independent merge chains (slices of j × probes `v(c)`,
/// c < CHAINS the first probe) stepped side by side: each step moves either
/// i or j, decided without a branch, so nothing mispredicts and the chains'
/// dependent loads overlap. Calls `done(c, j, i, step)` at every step of
/// chain c; the steps with `step` = 0 are the ones that finish j, with i
/// the first index where `x[j] − x[i] ≤ v` (v ≥ 0; a NaN probe is
/// skipped).
#[inline(always)]
fn merge_walk(
    x: &[f64],
    v: impl Fn(usize) -> f64,
    mut done: impl FnMut(usize, usize, usize, usize),
) {
    const M: usize = 2 * CHAINS;
    let n = x.len();
    let len = n.div_ceil(CHAINS);
    let (mut i, mut j, mut end, mut vv) = ([0usize; M], [0usize; M], [0usize; M], [0.0f64; M]);
    for c in 0..M {
        let s = c % CHAINS;
        vv[c] = v(c);
        j[c] = (s * len).min(n);
        end[c] = if vv[c].is_nan() {
            j[c]
        } else {
            ((s + 1) * len).min(n)
        };
        i[c] = if j[c] < end[c] {
            let (jc, vc) = (j[c], vv[c]);
            x[..jc].partition_point(|&xi| x[jc] - xi > vc)
        } else {
            j[c]
        };
    }
    loop {
        let mut active = false;
        for c in 0..M {
            let (ic, jc) = (i[c], j[c]);
            if jc < end[c] {
                active = true;
                // i ≤ j always: at i = j the difference is 0 ≤ v.
                let step = usize::from(x[jc] - x[ic] > vv[c]);
                done(c, jc, ic, step);
                i[c] = ic + step;
                j[c] = jc + 1 - step;
            }
        }
        if !active {
            break;
        }
    }
}

/// Lists the differences in `(lo, hi]` (there are few) and picks the ranks.
fn select_in_bracket(x: &[f64], lo: f64, hi: f64, c_lo: usize, k1: usize, k2: usize) -> (f64, f64) {
    // Differences fall as i rises: d > hi for i < ia[j], d > lo for
    // i < ib[j] (every i < j when lo is the −1 sentinel).
    let (mut ia, mut ib) = (Vec::new(), Vec::new());
    first_within_all(x, hi, &mut ia);
    if lo >= 0.0 {
        first_within_all(x, lo, &mut ib);
    } else {
        ib.extend(0..x.len());
    }
    let mut vals = Vec::new();
    for (j, (&a, &b)) in ia.iter().zip(&ib).enumerate() {
        if a < b {
            let xj = x[j];
            vals.extend(x[a..b].iter().map(|&xi| xj - xi));
        }
    }
    let r1 = k1 - c_lo;
    let a = *vals.select_nth_unstable_by(r1, f64::total_cmp).1;
    let b = if k2 == k1 {
        a
    } else {
        vals[r1 + 1..].iter().copied().fold(f64::INFINITY, f64::min)
    };
    (a, b)
}

/// With exactly k1 + 1 differences ≤ v: the largest of them and the
/// smallest above v.
fn split_at(x: &[f64], v: f64) -> (f64, f64) {
    let (mut below, mut above) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut first = Vec::new();
    first_within_all(x, v, &mut first);
    for (j, (&xj, &i)) in x.iter().zip(&first).enumerate() {
        if i < j {
            below = below.max(xj - x[i]);
        }
        if i > 0 {
            above = above.min(xj - x[i - 1]);
        }
    }
    (below, above)
}

/// The k-th smallest (0-based) of `x[j] − x[i]`, i < j, for sorted `x`:
/// a bisection over the bit patterns of non-negative doubles (monotone in
/// value), counting pairs at or below the probe with two pointers: 64
/// passes. The fallback for non-finite input, and the reference the tests
/// check [`pair_diff_order_stats`] against.
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
    fn exp_neg_clipped_is_within_an_ulp_or_two() {
        let mut worst = 0.0f64;
        let (mut same, mut total) = (0usize, 0usize);
        let mut z = 1e-2f64;
        let mut i = 0u64;
        while z <= 1e2 {
            let want = (-z).exp();
            let got = exp_neg_clipped(z);
            worst = worst.max(((got - want) / want).abs());
            same += usize::from(got == want);
            total += 1;
            i = i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            z += 1e-4 * (1.0 + (i >> 40) as f64 / (1u64 << 24) as f64);
        }
        for z in [
            1e-2f64,
            1e2,
            std::f64::consts::LN_2,
            0.5 * std::f64::consts::LN_2,
            99.999,
        ] {
            let want = (-z).exp();
            worst = worst.max(((exp_neg_clipped(z) - want) / want).abs());
        }
        eprintln!(
            "exp_neg_clipped: worst relative error {worst:e} vs libm, {same} of {total} equal"
        );
        assert!(worst < 3e-16, "worst relative error {worst:e}");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_exp_is_within_an_ulp_or_two() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let (mut worst, mut worst_abs) = (0.0f64, 0.0f64);
        let mut z = [0.0f64; 8];
        let mut fill = 0;
        let mut check = |z: &[f64; 8]| {
            #[allow(unsafe_code)]
            // SAFETY: avx512f was detected above.
            let got = unsafe { crate::simd::avx512::exp_neg_clipped(z) };
            for (&z, &got) in z.iter().zip(&got) {
                let want = (-z).exp();
                let err = (got - want).abs();
                // Within an ulp where the kernel is large; everywhere, at
                // most an ulp plus a small absolute error (what the kernel
                // sums see).
                if z <= 2.0 {
                    worst = worst.max(err / want);
                }
                worst_abs = worst_abs.max(err - 2.3e-16 * want);
            }
        };
        let mut v = 1e-2f64;
        while v <= 1e2 {
            z[fill] = v;
            fill += 1;
            if fill == 8 {
                check(&z);
                fill = 0;
            }
            v += 7.3e-5;
        }
        check(&[1e-2, 1e2, std::f64::consts::LN_2, 0.5 * std::f64::consts::LN_2, 99.999, 0.0433, 0.0217, 50.0]);
        eprintln!("avx512 exp: worst relative error {worst:e} (z <= 2), excess over an ulp {worst_abs:e}, vs libm");
        assert!(worst < 3e-16, "worst relative error {worst:e}");
        assert!(worst_abs < 1.3e-17, "error beyond an ulp {worst_abs:e}");
    }

    #[test]
    fn pair_diff_order_stats_match_bisection() {
        let mut state = 12345u64;
        let mut rnd = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut signals: Vec<Vec<f64>> = Vec::new();
        for &n in &[2usize, 3, 4, 5, 10, 57, 200, 1001, 3000, 5000] {
            signals.push((0..n).map(|_| rnd() * 10.0).collect());
            // heavy ties, several levels, outliers
            signals.push((0..n).map(|i| (i % 3) as f64).collect());
            signals.push(vec![7.0; n]);
            signals.push(
                (0..n)
                    .map(|i| {
                        let r = rnd();
                        (i / 97) as f64 * 3.0 + r + if r > 0.99 { 1e6 } else { 0.0 }
                    })
                    .collect(),
            );
            signals.push(
                (0..n)
                    .map(|_| (rnd() * 8.0).round() / 1024.0 + 1e-300)
                    .collect(),
            );
        }
        for x in &signals {
            let mut x = x.clone();
            x.sort_by(f64::total_cmp);
            let m = x.len() * (x.len() - 1) / 2;
            for (k1, k2) in [
                (m / 2, m / 2),
                (m / 2 - usize::from(m > 1), m / 2),
                (0, 0),
                (m - 1, m - 1),
            ] {
                let want = (kth_pair_diff(&x, k1), kth_pair_diff(&x, k2));
                assert_eq!(
                    pair_diff_order_stats(&x, k1, k2),
                    want,
                    "n={} k={k1},{k2}",
                    x.len()
                );
            }
        }
    }

    #[test]
    fn median_gamma_terminates_on_non_finite() {
        for x in [
            vec![1.0, f64::NAN, 3.0, 4.0],
            vec![f64::INFINITY, 0.0, -1.0],
            vec![f64::NEG_INFINITY, f64::INFINITY, 2.0, 2.0, 5.0],
        ] {
            let _ = rbf_median_gamma(&x);
        }
        // Finite, but differences overflow to infinity.
        let mut x: Vec<f64> = (0..300)
            .map(|i| match i % 3 {
                0 => 1.7e308,
                1 => -1.7e308,
                _ => i as f64,
            })
            .collect();
        x.sort_by(f64::total_cmp);
        let m = x.len() * (x.len() - 1) / 2;
        let want = (kth_pair_diff(&x, m / 2 - 1), kth_pair_diff(&x, m / 2));
        assert_eq!(pair_diff_order_stats(&x, m / 2 - 1, m / 2), want);
    }

    #[test]
    fn sorted_orders_as_total_cmp() {
        let x = [3.5, -0.0, 0.0, -2.0, 1e-300, -1e300, 7.0, 3.5, -1e-310];
        let mut want = x.to_vec();
        want.sort_by(f64::total_cmp);
        let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&sorted(&x)), bits(&want));
    }

    /// A deterministic signal with level shifts every `period` samples.
    fn stepped(n: usize, period: usize) -> Vec<f64> {
        (0..n)
            .map(|i| ((i * 7919 % 1013) as f64) / 300.0 + ((i / period) % 3) as f64 * 2.5)
            .collect()
    }

    /// The RBF cost of `[t, end)` from the kernel sum computed pair by pair.
    fn direct_error(direct: &Rbf<'_>, t: usize, end: usize) -> f64 {
        let len = (end - t) as f64;
        len - direct.block_sum(t, end) / len
    }

    #[test]
    fn rbf_wide_steps_match_direct() {
        // Wide windows and long steps: the parallel cross sums, the
        // four-chain suffix sums and the general square block.
        let x = stepped(2600, 400);
        let g = rbf_median_gamma(&x);
        let mut inc = Rbf::new(&x, g);
        let direct = Rbf::new(&x, g);
        for (end, lo) in [
            (7usize, 0usize),
            (40, 0),
            (1700, 0),
            (1720, 3),
            (2600, 1500),
        ] {
            inc.advance_to(end, lo, 1);
            for t in [lo, lo + 1, lo + 2, (lo + end) / 2, end - 3, end - 1] {
                let (a, b) = (inc.error(t, end), direct_error(&direct, t, end));
                assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "{t}..{end}: {a} vs {b}");
            }
            let starts: Vec<usize> = (lo..end).step_by(5).collect();
            let mut batch = Vec::new();
            inc.errors(&starts, end, &mut batch);
            for (&t, &e) in starts.iter().zip(&batch) {
                assert_eq!(e.to_bits(), inc.error(t, end).to_bits());
            }
        }
    }

    #[test]
    fn rbf_strided_sweep_matches_direct() {
        // PELT's sweep with jump 5: only multiples of 5 (and the newest
        // step) are kept, through narrow and wide steps and moving `lo`.
        let x = stepped(1400, 300);
        let g = rbf_median_gamma(&x);
        let mut inc = Rbf::new(&x, g);
        let direct = Rbf::new(&x, g);
        let mut steps: Vec<(usize, usize)> = (1..=60).map(|k| (5 * k, 5 * (k / 7))).collect();
        steps.extend([(700, 100), (705, 100), (1397, 350), (1400, 350)]);
        for (end, lo) in steps {
            inc.advance_to(end, lo, 5);
            let mut starts: Vec<usize> = (lo..end).step_by(5).collect();
            starts.extend([end - 2, end - 1]);
            for &t in &starts {
                let (a, b) = (inc.error(t, end), direct_error(&direct, t, end));
                assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "{t}..{end}: {a} vs {b}");
            }
            // A start the sweep does not keep falls back to the direct sum.
            if end > lo + 12 && (lo + 6) < inc.mid {
                let t = lo + 6;
                let (a, b) = (inc.error(t, end), direct_error(&direct, t, end));
                assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "off-stride {t}..{end}");
            }
        }
    }

    #[test]
    fn rbf_split_profile_wide_matches_direct() {
        // Long enough for the threaded split (when rayon has threads).
        let x: Vec<f64> = (0..900)
            .map(|i| ((i * 7919 % 1013) as f64) / 300.0 + ((i / 200) % 3) as f64 * 2.5)
            .collect();
        let direct = Rbf::new(&x, rbf_median_gamma(&x));
        let (start, end) = (100, 850);
        let (whole, left, right) = direct.split_profile(start, end).unwrap_or_default();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * (1.0 + b.abs());
        assert!(close(whole, direct.error(start, end)));
        for i in [1usize, 2, 77, 375, 600, 748, 749] {
            assert!(close(left[i], direct.error(start, start + i)), "left {i}");
            assert!(close(right[i], direct.error(start + i, end)), "right {i}");
        }
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
            inc.advance_to(end, 3, 1);
            for t in [3usize, 4, end / 2, end - 1] {
                let (a, b) = (inc.error(t, end), direct_error(&direct, t, end));
                assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "{t}..{end}: {a} vs {b}");
            }
        }
        let (whole, left, right) = direct.split_profile(10, 90).unwrap_or_default();
        assert!((whole - direct.error(10, 90)).abs() < 1e-9);
        assert!((left[30] - direct.error(10, 40)).abs() < 1e-9);
        assert!((right[30] - direct.error(40, 90)).abs() < 1e-9);
    }
}
