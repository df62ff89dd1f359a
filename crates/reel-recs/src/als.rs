//! Alternating least squares for implicit feedback (Hu, Koren and Volinsky,
//! "Collaborative Filtering for Implicit Feedback Datasets", 2008), in the
//! exact formulation of the Python library `implicit`'s
//! `AlternatingLeastSquares`:
//!
//! * the stored value `c` of a pair is its confidence (`Cu`), the
//!   preference `p` is 1 where `c > 0` and 0 where `c < 0` (a dislike with
//!   confidence `|c|`), unobserved pairs have `p = 0, c = 1`;
//! * each user row solves `(YᵀY + λI + Σ_i (|c_i|−1) y_i y_iᵀ) x = Σ_{c_i>0} c_i y_i`
//!   (no scaling of λ by the row's count), then each item row the same with
//!   the roles swapped; users first, from random item factors;
//! * factors start uniform in `[0, 0.01)`; rows with no entries are zeroed;
//! * the conjugate-gradient solver is implicit's `least_squares_cg`: warm
//!   started from the current row, residual `r = b − A x` with `A x` computed
//!   as `(YᵀY + λI) x` plus the sparse correction, then `cg_steps` steps,
//!   stopping early when `rᵀr < 1e-20`.
//!
//! Each row's solve reads only the other side's factors and writes only its
//! own row, so the rows run in parallel and the result does not depend on
//! the thread count; `YᵀY` is summed over fixed row blocks in a fixed order.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::factors::{FactorAlgorithm, FactorModel};
use crate::fixed;
use crate::interactions::{Csr, Interactions, SparseRow};
use crate::linalg::{axpy, cholesky_solve, dot, dot_opaque, gram_add, sym_matvec};
use crate::rng::Rng;

/// Runs `$fixed` with the const `$F` bound to `$f` when a specialised
/// kernel exists for it, else `$general`.
macro_rules! with_fixed {
    ($f:expr, $F:ident => $fixed:expr, $general:expr) => {
        match $f {
            32 => {
                const $F: usize = 32;
                $fixed
            }
            64 => {
                const $F: usize = 64;
                $fixed
            }
            96 => {
                const $F: usize = 96;
                $fixed
            }
            128 => {
                const $F: usize = 128;
                $fixed
            }
            160 => {
                const $F: usize = 160;
                $fixed
            }
            192 => {
                const $F: usize = 192;
                $fixed
            }
            256 => {
                const $F: usize = 256;
                $fixed
            }
            _ => $general,
        }
    };
}

/// How each row's least-squares problem is solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlsSolver {
    /// A few conjugate-gradient steps from the previous iteration's row
    /// (Takács, Pilászy and Tikk 2011); implicit's default, with 3 steps.
    ConjugateGradient { steps: usize },
    /// The exact solution by Cholesky factorization of the row's system.
    Cholesky,
}

/// Training parameters; the defaults are implicit's (except `factors`,
/// 64 here against implicit's 100).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlsParams {
    pub factors: usize,
    pub regularization: f32,
    pub iterations: usize,
    pub solver: AlsSolver,
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 64,
            regularization: 0.01,
            iterations: 15,
            solver: AlsSolver::ConjugateGradient { steps: 3 },
            seed: 0,
        }
    }
}

/// Rows solved by one rayon task: enough to amortize the task and its
/// scratch, few enough to balance rows of very different lengths.
const ROWS_PER_TASK: usize = 16;
/// Rows per partial sum of `YᵀY`; fixed so the sum's order is too.
const GRAM_ROWS: usize = 512;

/// Trains ALS on the user × item confidence matrix, in the current rayon
/// pool (wrap in `ThreadPool::install` to choose the thread count).
pub fn train_als(m: &Interactions, params: &AlsParams) -> Result<FactorModel> {
    let f = params.factors;
    if f == 0 {
        return Err(Error::InvalidParameter(
            "ALS needs at least one factor".into(),
        ));
    }
    if !(params.regularization.is_finite() && params.regularization >= 0.0) {
        return Err(Error::InvalidParameter(format!(
            "ALS regularization must be finite and >= 0, not {}",
            params.regularization
        )));
    }
    if let AlsSolver::ConjugateGradient { steps: 0 } = params.solver {
        return Err(Error::InvalidParameter(
            "ALS conjugate gradient needs >= 1 step".into(),
        ));
    }
    let mut users = random_factors(m.n_users(), f, params.seed, 0);
    let mut items = random_factors(m.n_items(), f, params.seed, 1);
    for _ in 0..params.iterations {
        solve_side(m.by_user(), &mut users, &items, f, params)?;
        solve_side(m.by_item(), &mut items, &users, f, params)?;
    }
    FactorModel::new(FactorAlgorithm::Als, f, users, items)
}

/// Uniform in `[0, 0.01)` like implicit's `rand(n, factors) * 0.01`, drawn
/// from one stream per block of rows so it can be filled in parallel.
fn random_factors(n: usize, f: usize, seed: u64, side: u64) -> Vec<f32> {
    let mut v = vec![0f32; n * f];
    if f == 0 {
        return v;
    }
    v.par_chunks_mut(f * 1024)
        .enumerate()
        .for_each(|(block, chunk)| {
            let mut rng = Rng::derive(seed, &[0xA15, side, block as u64]);
            for x in chunk {
                *x = rng.next_f32() * 0.01;
            }
        });
    v
}

/// `YᵀY`, summed in parallel over fixed blocks of rows, added in order.
pub(crate) fn parallel_gram(y: &[f32], f: usize) -> Vec<f32> {
    if f == 0 {
        return Vec::new();
    }
    let partials: Vec<Vec<f32>> = y
        .par_chunks(f * GRAM_ROWS)
        .map(|block| {
            #[cfg(target_arch = "x86_64")]
            if cpu_has_avx2() {
                #[allow(unsafe_code)]
                // SAFETY: `gram_block_avx2` only needs AVX2 and FMA, which
                // `cpu_has_avx2` checked at run time.
                return unsafe { gram_block_avx2(block, f) };
            }
            gram_block::<false>(block, f)
        })
        .collect();
    let mut g = vec![0f32; f * f];
    for p in &partials {
        for (a, b) in g.iter_mut().zip(p) {
            *a += b;
        }
    }
    // The fixed kernels fill only the upper triangle.
    with_fixed!(f, F => fixed::mirror_upper(&mut g, F), ());
    g
}

/// One half-iteration: every row of `x` from the fixed `y`.
fn solve_side(rows: &Csr, x: &mut [f32], y: &[f32], f: usize, params: &AlsParams) -> Result<()> {
    let mut a0 = parallel_gram(y, f);
    for j in 0..f {
        a0[j * f + j] += params.regularization;
    }
    let a0 = &a0;
    let avx2 = cpu_has_avx2();
    match params.solver {
        AlsSolver::ConjugateGradient { steps } => {
            x.par_chunks_mut(f * ROWS_PER_TASK).enumerate().for_each(|(task, chunk)| {
                if avx2 {
                    #[cfg(target_arch = "x86_64")]
                    #[allow(unsafe_code)]
                    // SAFETY: `cg_chunk_avx2` only needs the CPU to support
                    // AVX2 and FMA, which `cpu_has_avx2` checked at run time.
                    unsafe {
                        cg_chunk_avx2(task, chunk, rows, y, a0, f, steps)
                    };
                    return;
                }
                cg_chunk::<false>(task, chunk, rows, y, a0, f, steps)
            });
            Ok(())
        }
        AlsSolver::Cholesky => x
            .par_chunks_mut(f * ROWS_PER_TASK)
            .enumerate()
            .try_for_each(|(task, chunk)| {
                let mut scratch = CholeskyScratch::new(f);
                for (k, xu) in chunk.chunks_exact_mut(f).enumerate() {
                    let u = task * ROWS_PER_TASK + k;
                    if !cholesky_row(rows.row(u), xu, y, a0, &mut scratch) {
                        return Err(Error::NotPositiveDefinite { row: u });
                    }
                }
                Ok(())
            }),
    }
}

/// Whether this CPU runs the AVX2 + FMA builds of the kernels (checked once).
/// The default x86-64 target stops at SSE2, whose 4-wide vectors and
/// missing FMA leave the CG loop issue-bound: the AVX2 build trains ALS
/// about 1.5x faster, from the same source.
/// A non-empty `REEL_RECS_NO_SIMD` selects the portable build.
pub fn cpu_has_avx2() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| reel_cpu::detect("REEL_RECS") != reel_cpu::Isa::Base)
}

/// Conjugate-gradient solves for one task's rows.
#[inline(always)]
fn cg_chunk<const V3: bool>(task: usize, chunk: &mut [f32], rows: &Csr, y: &[f32], a0: &[f32], f: usize, steps: usize) {
    let mut scratch = CgScratch::new(f);
    for (k, xu) in chunk.chunks_exact_mut(f).enumerate() {
        let row = rows.row(task * ROWS_PER_TASK + k);
        with_fixed!(
            f,
            F => cg_row_fixed::<F, V3>(row, xu, y, a0, steps, &mut scratch.d),
            cg_row(row, xu, y, a0, steps, &mut scratch)
        );
    }
}

/// [`cg_chunk`] compiled for AVX2 and FMA (the same code, inlined here).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn cg_chunk_avx2(task: usize, chunk: &mut [f32], rows: &Csr, y: &[f32], a0: &[f32], f: usize, steps: usize) {
    cg_chunk::<true>(task, chunk, rows, y, a0, f, steps)
}

/// One block of `YᵀY` (upper triangle for the fixed kernels).
#[inline(always)]
fn gram_block<const V3: bool>(block: &[f32], f: usize) -> Vec<f32> {
    let mut g = vec![0f32; f * f];
    with_fixed!(f, F => fixed::gram_add_upper::<F, V3>(block, &mut g), gram_add(block, f, &mut g));
    g
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gram_block_avx2(block: &[f32], f: usize) -> Vec<f32> {
    gram_block::<true>(block, f)
}

/// The AVX2 + FMA build of an out-of-line kernel when `V3`, else the plain one.
#[inline(always)]
fn weighted_dots<const V3: bool>(y: &[f32], f: usize, rows: &[u32], w: &[f32], v: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if V3 {
        #[allow(unsafe_code)]
        // SAFETY: `V3` kernels run only after `cpu_has_avx2` found AVX2 and FMA.
        return unsafe { fixed::weighted_dots_v3(y, f, rows, w, v, out) };
    }
    fixed::weighted_dots(y, f, rows, w, v, out)
}

#[inline(always)]
fn dot_opaque_sel<const V3: bool>(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if V3 {
        #[allow(unsafe_code)]
        // SAFETY: `V3` kernels run only after `cpu_has_avx2` found AVX2 and FMA.
        return unsafe { crate::linalg::dot_opaque_v3(a, b) };
    }
    dot_opaque(a, b)
}

struct CgScratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
    /// Per-entry coefficients of the sparse part, for the fixed kernels.
    d: Vec<f32>,
}

impl CgScratch {
    fn new(f: usize) -> CgScratch {
        CgScratch {
            r: vec![0.0; f],
            p: vec![0.0; f],
            ap: vec![0.0; f],
            d: Vec::new(),
        }
    }
}

/// [`cg_row`] for a factor count known at compile time: the same
/// arithmetic, with the sparse part done as all the row dots first, then
/// one pass that accumulates `Σ d_i y_i` in registers.
#[inline(always)]
fn cg_row_fixed<const F: usize, const V3: bool>(
    row: SparseRow<'_>,
    x: &mut [f32],
    y: &[f32],
    a0: &[f32],
    steps: usize,
    d: &mut Vec<f32>,
) {
    let Ok(x) = <&mut [f32; F]>::try_from(x) else {
        return;
    };
    if row.is_empty() {
        x.fill(0.0);
        return;
    }
    let n = row.len();
    d.clear();
    d.resize(2 * n, 0.0);
    let (w, d) = d.split_at_mut(n);
    for (wi, &c) in w.iter_mut().zip(row.values) {
        *wi = c.abs() - 1.0;
    }
    let mut r = [0f32; F];
    let mut p = [0f32; F];
    let mut ap = [0f32; F];
    // r = b − A x
    fixed::matvec::<F, V3>(a0, x, &mut r);
    for v in r.iter_mut() {
        *v = -*v;
    }
    weighted_dots::<V3>(y, F, row.indices, w, x, d);
    for (di, &c) in d.iter_mut().zip(row.values) {
        *di = if c > 0.0 { c } else { 0.0 } - *di;
    }
    fixed::accumulate::<F, V3>(y, row.indices, d, &mut r);
    p.copy_from_slice(&r);
    let mut rsold = dot_opaque_sel::<V3>(&r, &r);
    if rsold < 1e-20 {
        return;
    }
    for _ in 0..steps {
        fixed::matvec::<F, V3>(a0, &p, &mut ap);
        weighted_dots::<V3>(y, F, row.indices, w, &p, d);
        fixed::accumulate::<F, V3>(y, row.indices, d, &mut ap);
        let alpha = rsold / dot_opaque_sel::<V3>(&p, &ap);
        for t in 0..F {
            x[t] += alpha * p[t];
            r[t] -= alpha * ap[t];
        }
        let rsnew = dot_opaque_sel::<V3>(&r, &r);
        if rsnew < 1e-20 {
            break;
        }
        let beta = rsnew / rsold;
        for t in 0..F {
            p[t] = r[t] + beta * p[t];
        }
        rsold = rsnew;
    }
}

/// implicit's `_least_squares_cg` for one row; `a0 = YᵀY + λI`.
fn cg_row(
    row: SparseRow<'_>,
    x: &mut [f32],
    y: &[f32],
    a0: &[f32],
    steps: usize,
    s: &mut CgScratch,
) {
    let f = x.len();
    if row.is_empty() {
        x.fill(0.0);
        return;
    }
    let CgScratch { r, p, ap, .. } = s;
    // r = b − A x
    sym_matvec(a0, x, r);
    for v in r.iter_mut() {
        *v = -*v;
    }
    for (&i, &c) in row.indices.iter().zip(row.values) {
        let yi = &y[i as usize * f..(i as usize + 1) * f];
        let pref = if c > 0.0 { c } else { 0.0 };
        let t = pref - (c.abs() - 1.0) * dot(yi, x);
        axpy(t, yi, r);
    }
    p.copy_from_slice(r);
    let mut rsold = dot(r, r);
    if rsold < 1e-20 {
        return;
    }
    for _ in 0..steps {
        // Ap = (YᵀY + λI) p + Σ (|c|−1)(y_i·p) y_i
        sym_matvec(a0, p, ap);
        for (&i, &c) in row.indices.iter().zip(row.values) {
            let yi = &y[i as usize * f..(i as usize + 1) * f];
            let t = (c.abs() - 1.0) * dot(yi, p);
            axpy(t, yi, ap);
        }
        let alpha = rsold / dot(p, ap);
        axpy(alpha, p, x);
        axpy(-alpha, ap, r);
        let rsnew = dot(r, r);
        if rsnew < 1e-20 {
            break;
        }
        let beta = rsnew / rsold;
        for (pi, ri) in p.iter_mut().zip(r.iter()) {
            *pi = ri + beta * *pi;
        }
        rsold = rsnew;
    }
}

struct CholeskyScratch {
    a: Vec<f32>,
    l: Vec<f64>,
    t: Vec<f64>,
    /// `|c| − 1` of each entry of the row.
    w: Vec<f32>,
}

impl CholeskyScratch {
    fn new(f: usize) -> CholeskyScratch {
        CholeskyScratch {
            a: vec![0.0; f * f],
            l: vec![0.0; f * f],
            t: vec![0.0; f],
            w: Vec::new(),
        }
    }
}

/// implicit's `_least_squares` for one row: builds the row's system
/// (upper triangle) and solves it exactly. False if it is not positive
/// definite.
fn cholesky_row(
    row: SparseRow<'_>,
    x: &mut [f32],
    y: &[f32],
    a0: &[f32],
    s: &mut CholeskyScratch,
) -> bool {
    let f = x.len();
    if row.is_empty() {
        x.fill(0.0);
        return true;
    }
    s.a.copy_from_slice(a0);
    x.fill(0.0);
    s.w.clear();
    for (&i, &c) in row.indices.iter().zip(row.values) {
        let yi = &y[i as usize * f..(i as usize + 1) * f];
        if c > 0.0 {
            axpy(c, yi, x);
        }
        s.w.push(c.abs() - 1.0);
    }
    with_fixed!(
        f,
        F => fixed::weighted_gram_add_upper::<F, false>(y, row.indices, &s.w, &mut s.a),
        for (&i, &w) in row.indices.iter().zip(&s.w) {
            let yi = &y[i as usize * f..(i as usize + 1) * f];
            for (j, aj) in s.a.chunks_exact_mut(f).enumerate() {
                axpy(w * yi[j], &yi[j..], &mut aj[j..]);
            }
        }
    );
    cholesky_solve(&s.a, x, &mut s.l, &mut s.t)
}

/// The value implicit's `calculate_loss` reports: the weighted squared
/// error over every (user, item) pair plus the regularization, divided by
/// the total confidence mass. For watching training converge in tests.
pub fn training_loss(m: &Interactions, model: &FactorModel, regularization: f32) -> f64 {
    let f = model.dim();
    let x = model.user_factors();
    let y = model.item_factors();
    let yty = parallel_gram(y, f);
    let mut r = vec![0f32; f];
    let (mut loss, mut total_conf, mut norms) = (0f64, 0f64, 0f64);
    for u in 0..m.n_users() {
        let xu = &x[u * f..(u + 1) * f];
        sym_matvec(&yty, xu, &mut r);
        let row = m.user_row(u as u32);
        for (&i, &c) in row.indices.iter().zip(row.values) {
            let yi = &y[i as usize * f..(i as usize + 1) * f];
            let pref = if c > 0.0 { -2.0 * c } else { 0.0 };
            let t = pref + (c.abs() - 1.0) * dot(yi, xu);
            axpy(t, yi, &mut r);
            total_conf += c.abs() as f64;
            loss += c.abs() as f64;
        }
        loss += dot(&r, xu) as f64;
        norms += dot(xu, xu) as f64;
    }
    for yi in y.chunks_exact(f) {
        norms += dot(yi, yi) as f64;
    }
    loss += regularization as f64 * norms;
    let cells = (m.n_users() * m.n_items()) as f64 - m.nnz() as f64;
    loss / (total_conf + cells)
}

/// Factors for users the model has not seen, or whose history changed
/// since training: the exact ALS solution for one user against the trained
/// item factors ("folding in"), without retraining. Build once per model
/// (it computes `YᵀY`), keep it with the model, then call per request.
pub struct FoldIn {
    model: std::sync::Arc<FactorModel>,
    a0: Vec<f32>,
}

impl FoldIn {
    /// Prepares folding in against an ALS model trained with
    /// `regularization`. BPR factors have no least-squares meaning.
    pub fn new(model: std::sync::Arc<FactorModel>, regularization: f32) -> Result<FoldIn> {
        if model.algorithm != FactorAlgorithm::Als {
            return Err(Error::InvalidInput("folding in needs an ALS model".into()));
        }
        if !(regularization.is_finite() && regularization >= 0.0) {
            return Err(Error::InvalidParameter(format!(
                "ALS regularization must be finite and >= 0, not {regularization}"
            )));
        }
        let f = model.dim();
        let mut a0 = parallel_gram(model.item_factors(), f);
        for j in 0..f {
            a0[j * f + j] += regularization;
        }
        Ok(FoldIn { model, a0 })
    }

    /// The model folded into.
    pub fn model(&self) -> &FactorModel {
        &self.model
    }

    /// The user vector for a history (items and confidences, as in
    /// training); items the model does not know are ignored.
    pub fn user_vector(&self, history: SparseRow<'_>) -> Result<Vec<f32>> {
        let f = self.model.dim();
        let n = self.model.n_items();
        let (indices, values): (Vec<u32>, Vec<f32>) = history
            .indices
            .iter()
            .zip(history.values)
            .filter(|(&i, _)| (i as usize) < n)
            .map(|(&i, &v)| (i, v))
            .unzip();
        let row = SparseRow {
            indices: &indices,
            values: &values,
        };
        let mut x = vec![0f32; f];
        let mut scratch = CholeskyScratch::new(f);
        if cholesky_row(
            row,
            &mut x,
            self.model.item_factors(),
            &self.a0,
            &mut scratch,
        ) {
            Ok(x)
        } else {
            Err(Error::NotPositiveDefinite { row: 0 })
        }
    }

    /// Top-`k` for a history, as [`crate::Recommender::recommend`] would
    /// give for a trained user with that history.
    pub fn recommend(
        &self,
        history: SparseRow<'_>,
        k: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Result<Vec<(u32, f32)>> {
        let x = self.user_vector(history)?;
        let mut scores = vec![0f32; self.model.n_items()];
        self.model.score_vector(&x, &mut scores);
        Ok(crate::topk::top_k(&scores, k, history.indices, allow))
    }
}
