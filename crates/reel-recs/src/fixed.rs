//! Kernels for a factor count known at compile time.
//!
//! With `F` a constant, LLVM unrolls the column loops and keeps the
//! accumulators in registers; the columns are processed in blocks of
//! [`BW`] so the accumulators fit the register file even with plain SSE2.
//! [`crate::als`] dispatches the common sizes here (its `with_fixed!`
//! macro lists them) and falls back to the general kernels of
//! [`crate::linalg`] for the rest.

use crate::linalg::{dot_v, madd_v};

/// Column block width: 32 floats are 8 SSE or 4 AVX registers.
pub const BW: usize = 32;

/// `out = a · v` for a symmetric `F × F` matrix stored in full.
#[inline(always)]
pub fn matvec<const F: usize, const V3: bool>(a: &[f32], v: &[f32; F], out: &mut [f32; F]) {
    let a = &a[..F * F];
    for kb in (0..F).step_by(BW) {
        let mut acc = [0f32; BW];
        for (row, &vj) in a.chunks_exact(F).zip(v.iter()) {
            let blk = &row[kb..kb + BW];
            for t in 0..BW {
                acc[t] = madd_v::<V3>(vj, blk[t], acc[t]);
            }
        }
        out[kb..kb + BW].copy_from_slice(&acc);
    }
}

#[inline(always)]
fn row_of<const F: usize>(y: &[f32], i: u32) -> &[f32; F] {
    let start = i as usize * F;
    match <&[f32; F]>::try_from(&y[start..start + F]) {
        Ok(r) => r,
        // Unreachable: the slice has exactly F elements.
        Err(_) => panic!("row slice of wrong length"),
    }
}

/// `out[n] = w[n] · (y[rows[n]] · v)` for every listed row.
///
/// Not specialised on purpose: LLVM's SLP vectorizer turns fully unrolled
/// dot products into two-float vectors or scalars, depending on the
/// surrounding code; the runtime-length loop of [`crate::linalg::dot`]
/// vectorizes the same way everywhere.
#[inline(never)]
pub fn weighted_dots(y: &[f32], f: usize, rows: &[u32], w: &[f32], v: &[f32], out: &mut [f32]) {
    weighted_dots_v::<false>(y, f, rows, w, v, out)
}

/// [`weighted_dots`] compiled for AVX2 + FMA; call only where
/// `crate::als::cpu_has_avx2()` holds.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
pub fn weighted_dots_v3(y: &[f32], f: usize, rows: &[u32], w: &[f32], v: &[f32], out: &mut [f32]) {
    weighted_dots_v::<true>(y, f, rows, w, v, out)
}

#[inline(always)]
fn weighted_dots_v<const V3: bool>(y: &[f32], f: usize, rows: &[u32], w: &[f32], v: &[f32], out: &mut [f32]) {
    for ((o, &i), &wn) in out.iter_mut().zip(rows).zip(w) {
        let s = i as usize * f;
        *o = wn * dot_v::<V3>(&y[s..s + f], v);
    }
}

/// `out += Σ_n d[n] · y[rows[n]]`.
#[inline(always)]
pub fn accumulate<const F: usize, const V3: bool>(y: &[f32], rows: &[u32], d: &[f32], out: &mut [f32; F]) {
    for kb in (0..F).step_by(BW) {
        let mut acc = [0f32; BW];
        acc.copy_from_slice(&out[kb..kb + BW]);
        for (&i, &dn) in rows.iter().zip(d) {
            let blk = &row_of::<F>(y, i)[kb..kb + BW];
            for t in 0..BW {
                acc[t] = madd_v::<V3>(dn, blk[t], acc[t]);
            }
        }
        out[kb..kb + BW].copy_from_slice(&acc);
    }
}

/// Adds the upper triangle (by column blocks) of `Σ_rows yᵀy` of a
/// row-major block into the `F × F` matrix `g`; blocks wholly below the
/// diagonal are left alone, see [`mirror_upper`].
#[inline(always)]
pub fn gram_add_upper<const F: usize, const V3: bool>(y: &[f32], g: &mut [f32]) {
    let g = &mut g[..F * F];
    // 32 rows (8 KiB at F = 64) stay in L1 while every column block reads them.
    for sub in y.chunks(F * 32) {
        for (j, gj) in g.chunks_exact_mut(F).enumerate() {
            for kb in ((j / BW) * BW..F).step_by(BW) {
                let mut acc = [0f32; BW];
                acc.copy_from_slice(&gj[kb..kb + BW]);
                for r in sub.chunks_exact(F) {
                    let yj = r[j];
                    let blk = &r[kb..kb + BW];
                    for t in 0..BW {
                        acc[t] = madd_v::<V3>(yj, blk[t], acc[t]);
                    }
                }
                gj[kb..kb + BW].copy_from_slice(&acc);
            }
        }
    }
}

/// Adds `Σ_n w[n] · y_nᵀ y_n` over the listed rows of `y` into the upper
/// triangle (by column blocks, as [`gram_add_upper`]) of `g`.
#[inline(always)]
pub fn weighted_gram_add_upper<const F: usize, const V3: bool>(y: &[f32], rows: &[u32], w: &[f32], g: &mut [f32]) {
    let g = &mut g[..F * F];
    for (j, gj) in g.chunks_exact_mut(F).enumerate() {
        for kb in ((j / BW) * BW..F).step_by(BW) {
            let mut acc = [0f32; BW];
            acc.copy_from_slice(&gj[kb..kb + BW]);
            for (&i, &wn) in rows.iter().zip(w) {
                let r = row_of::<F>(y, i);
                let s = wn * r[j];
                let blk = &r[kb..kb + BW];
                for t in 0..BW {
                    acc[t] = madd_v::<V3>(s, blk[t], acc[t]);
                }
            }
            gj[kb..kb + BW].copy_from_slice(&acc);
        }
    }
}

/// Copies the upper triangle onto the lower one.
pub fn mirror_upper(g: &mut [f32], f: usize) {
    for j in 0..f {
        for k in j + 1..f {
            g[k * f + j] = g[j * f + k];
        }
    }
}
