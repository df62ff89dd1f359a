//! The RBF kernel loops' builds, picked once per process: a hand-written
//! AVX-512 build with its own `exp` (see [`avx512`]), and the portable code
//! compiled for AVX2 + FMA or for the baseline. The AVX2 and portable
//! builds do the same arithmetic in the same order (Rust never fuses a
//! multiply and an add on its own), so their costs are bit-identical; the
//! AVX-512 build's kernel values may differ from theirs in the last bits.
//! Every build reproduces the ruptures fixtures (tests/ruptures_fixtures.rs).

pub(crate) use reel_cpu::Isa;

/// The widest build whose every feature this CPU has ([`reel_cpu::detect`]).
/// A non-empty `REEL_INSIGHT_NO_AVX512` caps it at AVX2 and a non-empty
/// `REEL_INSIGHT_NO_SIMD` selects the portable build (tests and benches).
pub(crate) fn isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| reel_cpu::detect("REEL_INSIGHT"))
}


/// The AVX-512 build of the RBF kernel loops, written with intrinsics
/// because its `exp` needs a table lookup that the compiler would turn into
/// a slow gather: `e^{−z} = 2^{k/16} · e^r` with `2^{j/16}` picked from a
/// 16-entry table held in two registers (one `vpermt2pd`), which leaves
/// |r| ≤ ln2/32 and a degree-6 polynomial (FMA throughout). Accuracy:
/// within about 1 ulp of the correctly rounded value where K ≥ e^{−2}, and
/// everywhere within an ulp plus 1.2e-17 (tested against libm); the portable
/// `exp` is within 1 ulp throughout. The builds may differ in the last bits,
/// so one build's costs are not bit-identical to another's.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    /// `2^{j/16}`, correctly rounded.
    const TABLE: [f64; 16] = [
        f64::from_bits(0x3ff0000000000000),
        f64::from_bits(0x3ff0b5586cf9890f),
        f64::from_bits(0x3ff172b83c7d517b),
        f64::from_bits(0x3ff2387a6e756238),
        f64::from_bits(0x3ff306fe0a31b715),
        f64::from_bits(0x3ff3dea64c123422),
        f64::from_bits(0x3ff4bfdad5362a27),
        f64::from_bits(0x3ff5ab07dd485429),
        f64::from_bits(0x3ff6a09e667f3bcd),
        f64::from_bits(0x3ff7a11473eb0187),
        f64::from_bits(0x3ff8ace5422aa0db),
        f64::from_bits(0x3ff9c49182a3f090),
        f64::from_bits(0x3ffae89f995ad3ad),
        f64::from_bits(0x3ffc199bdd85529c),
        f64::from_bits(0x3ffd5818dcfba487),
        f64::from_bits(0x3ffea4afa2a490da),
    ];
    /// Adding 1.5·2^52 rounds to an integer held in the low mantissa bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    /// 16 / ln 2.
    const L2E16: f64 = f64::from_bits(0x40371547652b82fe);
    /// ln 2 / 16, rounded.
    const LN2_16: f64 = f64::from_bits(0x3fa62e42fefa39ef);
    /// e^r ≈ 1 + r + r² (C0 + C1 r + … + C4 r⁴) on |r| ≤ ln2/32: a
    /// near-minimax fit (least squares on Chebyshev nodes) with relative
    /// error 2.8e-17, an eighth of an ulp.
    const C: [f64; 5] = [
        0.500_000_000_000_000_4,
        0.166_666_666_653_015_08,
        0.041_666_666_663_329_27,
        0.008_333_449_709_038_295,
        0.001_388_907_120_113_698_3,
    ];

    /// The constants the kernel keeps in registers.
    #[derive(Clone, Copy)]
    struct Consts {
        neg_gamma: __m512d,
        tlo: __m512d,
        thi: __m512d,
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn consts(gamma: f64) -> Consts {
        let t = &TABLE;
        Consts {
            neg_gamma: _mm512_set1_pd(-gamma),
            tlo: _mm512_setr_pd(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]),
            thi: _mm512_setr_pd(t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15]),
        }
    }

    /// `K(xi, xj) = exp(−clip(γ (xi − xj)², 0.01, 100))` lane-wise, the
    /// argument in NumPy's order (ruptures' kernel).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn kernel(xi: __m512d, xj: __m512d, c: Consts) -> __m512d {
        let d = _mm512_sub_pd(xi, xj);
        // −(d² γ), exactly the negation of NumPy's d·d·γ.
        let zn = _mm512_mul_pd(_mm512_mul_pd(d, d), c.neg_gamma);
        let zn = _mm512_min_pd(_mm512_max_pd(zn, _mm512_set1_pd(-100.0)), _mm512_set1_pd(-0.01));
        exp(zn, c)
    }

    /// `e^{zn}` for `zn` in [−100, −0.01].
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn exp(zn: __m512d, c: Consts) -> __m512d {
        // zn = k ln2/16 + r, k = round(zn · 16/ln2) ∈ [−2308, 0].
        let shift = _mm512_set1_pd(SHIFT);
        let t = _mm512_fmadd_pd(zn, _mm512_set1_pd(L2E16), shift);
        let kf = _mm512_sub_pd(t, shift);
        // One FMA, so r = zn − k·LN2_16 rounded once; LN2_16's own error
        // (1.4e-18) makes e^r off by k·1.4e-18 relative: 0.05 ulp at z = 1,
        // growing with z while K shrinks as e^{−z}, so the absolute error,
        // which is what reaches the kernel sums, stays below 1.2e-17
        // (a tenth of an ulp of 1; tested). Fdlibm's second, low-order term
        // would cost an FMA per kernel value, a tenth of this loop.
        let r = _mm512_fnmadd_pd(kf, _mm512_set1_pd(LN2_16), zn);
        // 2^{(k mod 16)/16}: vpermt2pd reads the low four bits of each
        // lane, and t's low mantissa bits hold 2^51 + k, 2^51 ≡ 0 (mod 16).
        let tab = _mm512_permutex2var_pd(c.tlo, _mm512_castpd_si512(t), c.thi);
        // e^r − 1 = r + r² (C0 + r (C1 + … + r C4)).
        let mut q = _mm512_set1_pd(C[4]);
        for &cf in C[..4].iter().rev() {
            q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(cf));
        }
        let pm1 = _mm512_fmadd_pd(_mm512_mul_pd(r, r), q, r);
        let v = _mm512_fmadd_pd(tab, pm1, tab);
        // · 2^{floor(k/16)}: vscalefpd floors its (exact) k/16 itself; no
        // underflow, the result is at least e^{−100}.
        _mm512_scalef_pd(v, _mm512_mul_pd(kf, _mm512_set1_pd(0.0625)))
    }

    /// The lanes of a chunk of `len` ≤ 8 elements.
    #[inline]
    fn mask(len: usize) -> __mmask8 {
        if len >= 8 {
            0xff
        } else {
            (1u8 << len) - 1
        }
    }

    /// `out[j] = Σ_i K(rows[i], cols[j])`, rows added in order.
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    pub(crate) fn cross_sums(out: &mut [f64], cols: &[f64], rows: &[f64], gamma: f64) {
        let c = consts(gamma);
        let len = out.len().min(cols.len());
        let (out, cols) = (&mut out[..len], &cols[..len]);
        let sums = |xj: __m512d| {
            let mut acc = _mm512_setzero_pd();
            for &xi in rows {
                acc = _mm512_add_pd(acc, kernel(_mm512_set1_pd(xi), xj, c));
            }
            acc
        };
        let mut oc = out.chunks_exact_mut(8);
        let mut xc = cols.chunks_exact(8);
        for (o, xs) in (&mut oc).zip(&mut xc) {
            // SAFETY: `xs` and `o` hold eight f64 each.
            unsafe { _mm512_storeu_pd(o.as_mut_ptr(), sums(_mm512_loadu_pd(xs.as_ptr()))) };
        }
        let (o, xs) = (oc.into_remainder(), xc.remainder());
        if !o.is_empty() {
            let m = mask(o.len());
            // SAFETY: the mask enables only lanes below o.len() = xs.len().
            unsafe { _mm512_mask_storeu_pd(o.as_mut_ptr(), m, sums(_mm512_maskz_loadu_pd(m, xs.as_ptr()))) };
        }
    }

    /// `out[j] += K(xi, cols[j])` for every j; returns Σ_j K(xi, cols[j]).
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    pub(crate) fn row_into(out: &mut [f64], cols: &[f64], xi: f64, gamma: f64) -> f64 {
        let c = consts(gamma);
        let xi = _mm512_set1_pd(xi);
        let mut total = _mm512_setzero_pd();
        for (o, xs) in out.chunks_mut(8).zip(cols.chunks(8)) {
            let m = mask(o.len().min(xs.len()));
            // SAFETY: the mask enables only lanes below xs.len().
            let xj = unsafe { _mm512_maskz_loadu_pd(m, xs.as_ptr()) };
            let k = _mm512_maskz_mov_pd(m, kernel(xi, xj, c));
            total = _mm512_add_pd(total, k);
            // SAFETY: the mask enables only lanes below o.len(), for load and store.
            unsafe {
                let prev = _mm512_maskz_loadu_pd(m, o.as_ptr());
                _mm512_mask_storeu_pd(o.as_mut_ptr(), m, _mm512_add_pd(prev, k));
            }
        }
        _mm512_reduce_add_pd(total)
    }

    /// For a block of `w` ≤ 8 samples, the pairs `(j, q)`, `j < q`, in the
    /// portable code's order (`j` ascending, then `q`): `PAIRS[w].0[p]` is
    /// the p-th pair's `j`, `.1[p]` its `q` (unused slots point at 0).
    const PAIRS: [([u64; 32], [u64; 32]); 9] = {
        let mut t = [([0u64; 32], [0u64; 32]); 9];
        let mut w = 0;
        while w <= 8 {
            let mut p = 0;
            let mut j = 0;
            while j < w {
                let mut q = j + 1;
                while q < w {
                    t[w].0[p] = j as u64;
                    t[w].1[p] = q as u64;
                    p += 1;
                    q += 1;
                }
                j += 1;
            }
            w += 1;
        }
        t
    };

    /// `rows[j] = Σ_{q > j} K(blk[j], blk[q])` for a block of at most 8
    /// samples: the w(w−1)/2 pairs packed eight to a vector (two vectors
    /// for PELT's usual step of 5), then each row summed in order.
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    pub(crate) fn block_row_sums(blk: &[f64], gamma: f64, rows: &mut [f64; 8]) {
        let c = consts(gamma);
        let w = blk.len().min(8);
        let n_pairs = w * w.saturating_sub(1) / 2;
        // SAFETY: the mask enables only lanes below blk.len().
        let xs = unsafe { _mm512_maskz_loadu_pd(mask(w), blk.as_ptr()) };
        let (ja, qa) = &PAIRS[w];
        let mut k = [0.0f64; 32];
        for v in 0..n_pairs.div_ceil(8) {
            let at = 8 * v;
            // SAFETY: `at + 8 ≤ 32`, the length of the index and output arrays.
            unsafe {
                let ij = _mm512_loadu_si512(ja[at..].as_ptr().cast());
                let iq = _mm512_loadu_si512(qa[at..].as_ptr().cast());
                let kv = kernel(_mm512_permutexvar_pd(ij, xs), _mm512_permutexvar_pd(iq, xs), c);
                _mm512_storeu_pd(k[at..].as_mut_ptr(), kv);
            }
        }
        let mut p = 0;
        for (j, row) in rows[..w].iter_mut().enumerate() {
            let len = w - j - 1;
            *row = k[p..p + len].iter().sum();
            p += len;
        }
    }

    /// PELT's candidate totals from the swept block sums:
    /// `out[i] = total[t] + ((len − block[t] / len) + pen)`, `t = starts[i]`,
    /// `len = end − t`, eight starts at a time (gathers and one vector
    /// division instead of eight scalar ones). Falls back to scalar code if
    /// a start lies outside `block` or `total`.
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    pub(crate) fn totals(
        starts: &[usize],
        end: usize,
        block: &[f64],
        total: &[f64],
        pen: f64,
        out: &mut [f64],
    ) {
        let scalar = |t: usize| {
            let len = end as f64 - t as f64;
            total[t] + ((len - block[t] / len) + pen)
        };
        let bound = block.len().min(total.len());
        // Checked for every start (not just the last of PELT's ascending ones): the gathers
        // below rely on it.
        let in_bounds = starts.iter().all(|&t| t < bound) && bound <= i64::MAX as usize;
        if !in_bounds {
            for (o, &t) in out.iter_mut().zip(starts) {
                *o = scalar(t);
            }
            return;
        }
        let (e, p) = (_mm512_set1_pd(end as f64), _mm512_set1_pd(pen));
        let n = out.len().min(starts.len());
        for at in (0..n).step_by(8) {
            let m = mask(n - at);
            // SAFETY: the mask enables only lanes below n − at, inside
            // `starts` (usize = u64 on x86-64) and `out`; every enabled
            // index is below `bound`, so inside `block` and `total`.
            unsafe {
                let idx = _mm512_maskz_loadu_epi64(m, starts[at..].as_ptr().cast());
                let len = _mm512_sub_pd(e, _mm512_cvtepu64_pd(idx));
                let zero = _mm512_setzero_pd();
                let b = _mm512_mask_i64gather_pd::<8>(zero, m, idx, block.as_ptr());
                let tot = _mm512_mask_i64gather_pd::<8>(zero, m, idx, total.as_ptr());
                let err = _mm512_sub_pd(len, _mm512_div_pd(b, len));
                _mm512_mask_storeu_pd(out[at..].as_mut_ptr(), m, _mm512_add_pd(tot, _mm512_add_pd(err, p)));
            }
        }
    }

    /// `exp(−z)` for `z` in [0.01, 100], lane by lane (for tests).
    #[cfg(test)]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn exp_neg_clipped(z: &[f64; 8]) -> [f64; 8] {
        let n = |i: usize| -z[i];
        let zn = _mm512_setr_pd(n(0), n(1), n(2), n(3), n(4), n(5), n(6), n(7));
        let v = exp(zn, consts(1.0));
        let mut out = [0.0; 8];
        // SAFETY: `out` holds eight f64.
        unsafe { _mm512_storeu_pd(out.as_mut_ptr(), v) };
        out
    }
}
