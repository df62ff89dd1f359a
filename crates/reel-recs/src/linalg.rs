//! The few dense kernels the models need, written so LLVM vectorizes them:
//! fixed-width chunks with independent accumulators (float addition is not
//! reassociated by the compiler, so a single running sum would stay scalar).

/// `a * b + c`, fused where the build targets FMA (one rounding, one
/// instruction), plain otherwise (a software FMA would be far slower).
#[inline(always)]
pub fn madd(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(target_feature = "fma")]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(target_feature = "fma"))]
    {
        a * b + c
    }
}

/// [`madd`] in a kernel instantiated for AVX2 + FMA (`V3`: x86-64-v3)
/// or for the build's own target: `mul_add` is one instruction only where
/// FMA is enabled, and a library call elsewhere.
#[inline(always)]
pub fn madd_v<const V3: bool>(a: f32, b: f32, c: f32) -> f32 {
    if V3 {
        a.mul_add(b, c)
    } else {
        madd(a, b, c)
    }
}

/// Lanes of independent partial sums in [`dot`]: two or more SIMD registers,
/// so consecutive multiply-adds do not wait on each other.
const LANES: usize = 8;

/// `a · b` over the shorter length.
///
/// The lanes are summed in order on purpose: when LLVM sees the
/// accumulation loop together with a reduction *tree*, its SLP vectorizer
/// picks two-float vectors for the whole thing.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_v::<false>(a, b)
}

/// [`dot`], instantiated for AVX2 + FMA or not (see [`madd_v`]).
#[inline(always)]
pub fn dot_v<const V3: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for t in 0..LANES {
            acc[t] = madd_v::<V3>(x[t], y[t], acc[t]);
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail = madd_v::<V3>(*x, *y, tail);
    }
    acc.iter().sum::<f32>() + tail
}

/// [`dot`] behind a call, for callers whose lengths are compile-time
/// constants (where inlining would hand the loop to the SLP vectorizer).
#[inline(never)]
pub fn dot_opaque(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b)
}

/// [`dot_opaque`] compiled for AVX2 + FMA; call only where
/// `crate::als::cpu_has_avx2()` holds.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
pub fn dot_opaque_v3(a: &[f32], b: &[f32]) -> f32 {
    dot_v::<true>(a, b)
}

/// `y += alpha * x`.
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = madd(alpha, *xi, *yi);
    }
}

/// `out = m · v` for a full (both triangles stored) symmetric `f × f`
/// matrix, as a sum of rows scaled by `v` (no horizontal reductions).
#[inline]
pub fn sym_matvec(m: &[f32], v: &[f32], out: &mut [f32]) {
    let f = v.len();
    out.fill(0.0);
    let mut rows = m.chunks_exact(f);
    let mut vs = v.chunks_exact(4);
    for v4 in vs.by_ref() {
        let (r0, r1, r2, r3) = match (rows.next(), rows.next(), rows.next(), rows.next()) {
            (Some(a), Some(b), Some(c), Some(d)) => (a, b, c, d),
            _ => return,
        };
        let (a0, a1, a2, a3) = (v4[0], v4[1], v4[2], v4[3]);
        for k in 0..f {
            out[k] += madd(a0, r0[k], a1 * r1[k]) + madd(a2, r2[k], a3 * r3[k]);
        }
    }
    for (&a, r) in vs.remainder().iter().zip(rows) {
        axpy(a, r, out);
    }
}

/// `Σ_rows yᵀy` of a row-major `n × f` matrix, full `f × f`.
#[cfg(test)]
pub fn gram(y: &[f32], f: usize) -> Vec<f32> {
    let mut g = vec![0f32; f * f];
    gram_add(y, f, &mut g);
    g
}

/// Adds `Σ_rows yᵀy` into `g`, four rows at a time so each pass over `g`
/// does four rank-one updates.
pub fn gram_add(y: &[f32], f: usize, g: &mut [f32]) {
    if f == 0 {
        return;
    }
    let mut quads = y.chunks_exact(4 * f);
    for q in quads.by_ref() {
        let (y0, rest) = q.split_at(f);
        let (y1, rest) = rest.split_at(f);
        let (y2, y3) = rest.split_at(f);
        for (j, gj) in g.chunks_exact_mut(f).enumerate() {
            let (a0, a1, a2, a3) = (y0[j], y1[j], y2[j], y3[j]);
            for k in 0..f {
                gj[k] += madd(a0, y0[k], a1 * y1[k]) + madd(a2, y2[k], a3 * y3[k]);
            }
        }
    }
    for row in quads.remainder().chunks_exact(f) {
        for (j, gj) in g.chunks_exact_mut(f).enumerate() {
            axpy(row[j], row, gj);
        }
    }
}

/// Solves `a x = b` for a symmetric positive definite `f × f` matrix given
/// by its upper triangle (row-major; the lower part is ignored), in f64.
/// `u` is scratch of `f * f`, `y` of `f`. Returns false if `a` is not
/// positive definite.
///
/// Factors `a = UᵀU` row by row, each row of `U` built from the rows above
/// it by contiguous `axpy`s (no dot products: those would be
/// latency-bound), then solves `Uᵀ y = b` and `U x = y`.
pub fn cholesky_solve(a: &[f32], b: &mut [f32], u: &mut [f64], y: &mut [f64]) -> bool {
    let f = b.len();
    for j in 0..f {
        let (above, rest) = u.split_at_mut(j * f);
        let row = &mut rest[j..f];
        for (r, &v) in row.iter_mut().zip(&a[j * f + j..(j + 1) * f]) {
            *r = v as f64;
        }
        // Four rows above at a time: one pass over `row` per four updates.
        let mut k = 0;
        while k + 4 <= j {
            let r0 = &above[k * f + j..(k + 1) * f];
            let r1 = &above[(k + 1) * f + j..(k + 2) * f];
            let r2 = &above[(k + 2) * f + j..(k + 3) * f];
            let r3 = &above[(k + 3) * f + j..(k + 4) * f];
            let (c0, c1, c2, c3) = (r0[0], r1[0], r2[0], r3[0]);
            for t in 0..row.len() {
                row[t] -= (c0 * r0[t] + c1 * r1[t]) + (c2 * r2[t] + c3 * r3[t]);
            }
            k += 4;
        }
        for k in k..j {
            let uk = &above[k * f + j..(k + 1) * f];
            let ukj = uk[0];
            for (r, &v) in row.iter_mut().zip(uk) {
                *r -= ukj * v;
            }
        }
        let d = row[0];
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let inv = 1.0 / d.sqrt();
        for r in row.iter_mut() {
            *r *= inv;
        }
    }
    // Uᵀ y = b, by columns of Uᵀ (rows of U).
    for (yi, &bi) in y.iter_mut().zip(b.iter()) {
        *yi = bi as f64;
    }
    for k in 0..f {
        let uk = &u[k * f + k..(k + 1) * f];
        let yk = y[k] / uk[0];
        y[k] = yk;
        for (yi, &v) in y[k + 1..].iter_mut().zip(&uk[1..]) {
            *yi -= yk * v;
        }
    }
    // U x = y, backwards.
    for i in (0..f).rev() {
        let ui = &u[i * f + i..(i + 1) * f];
        let s: f64 = y[i + 1..].iter().zip(&ui[1..]).map(|(a, b)| a * b).sum();
        y[i] = (y[i] - s) / ui[0];
    }
    for (bi, yi) in b.iter_mut().zip(y.iter()) {
        *bi = *yi as f32;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_for_all_lengths() {
        for n in 0..70 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (*x as f64) * (*y as f64))
                .sum();
            assert!((dot(&a, &b) as f64 - naive).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn gram_and_matvec_match_naive() {
        for (n, f) in [(1, 3), (5, 4), (9, 7), (8, 16)] {
            let y: Vec<f32> = (0..n * f).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
            let g = gram(&y, f);
            for j in 0..f {
                for k in 0..f {
                    let naive: f32 = (0..n).map(|r| y[r * f + j] * y[r * f + k]).sum();
                    assert_eq!(g[j * f + k], naive);
                }
            }
            let v: Vec<f32> = (0..f).map(|i| i as f32 - 1.5).collect();
            let mut out = vec![0.0; f];
            sym_matvec(&g, &v, &mut out);
            for j in 0..f {
                let naive: f32 = (0..f).map(|k| g[j * f + k] * v[k]).sum();
                assert!((out[j] - naive).abs() <= 1e-3 * naive.abs().max(1.0));
            }
        }
    }

    #[test]
    fn cholesky_matches_a_naive_solve() {
        // A well-conditioned random SPD system: m = rᵀr + I.
        let f = 13;
        let r: Vec<f32> = (0..f * f)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0)
            .collect();
        let mut a = vec![0f32; f * f];
        for i in 0..f {
            for j in 0..f {
                a[i * f + j] = (0..f).map(|k| r[k * f + i] * r[k * f + j]).sum::<f32>()
                    + (i == j) as u8 as f32;
            }
        }
        let x_true: Vec<f32> = (0..f).map(|i| i as f32 - 6.0).collect();
        let mut b: Vec<f32> = (0..f)
            .map(|i| (0..f).map(|j| a[i * f + j] * x_true[j]).sum())
            .collect();
        let (mut u, mut y) = (vec![0.0; f * f], vec![0.0; f]);
        assert!(cholesky_solve(&a, &mut b, &mut u, &mut y));
        for (x, t) in b.iter().zip(&x_true) {
            assert!((x - t).abs() < 1e-2, "{b:?}");
        }
    }

    #[test]
    fn cholesky_solves_and_refuses_indefinite() {
        // a = [[4, 2], [2, 3]] (upper triangle), b = [2, 1] → x = [0.5, 0].
        let a = [4.0, 2.0, 0.0, 3.0];
        let mut b = [2.0, 1.0];
        let (mut l, mut y) = (vec![0.0; 4], vec![0.0; 2]);
        assert!(cholesky_solve(&a, &mut b, &mut l, &mut y));
        assert!((b[0] - 0.5).abs() < 1e-6 && b[1].abs() < 1e-6);
        let mut b = [1.0, 1.0];
        assert!(!cholesky_solve(
            &[1.0, 2.0, 0.0, 1.0],
            &mut b,
            &mut l,
            &mut y
        ));
    }
}
