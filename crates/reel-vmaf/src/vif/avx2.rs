//! AVX2 kernels: the horizontal pass with `pmaddwd` and the per-pixel
//! statistic (four pixels a step, table look-ups by gather), bit-exact with
//! the scalar code.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{Accum, SIGMA_NSQ};

/// Horizontal pass and local (co)variances of the eight filtered rows
/// (stored offset by `0x8000`, see `super::XOR`) for blocks of 16 pixels,
/// with `pmaddwd` over tap pairs: `coef[m]` packs taps `2m` and `2m + 1`
/// (signed 16-bit), `corr` adds back the offset's contribution. Each block's
/// even pixels land in its first 8 outputs and the odd ones in the next 8
/// (the statistic is a sum, so the order does not matter). Returns how many
/// pixels were done; the caller handles the rest in natural order.
#[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
pub(super) fn hrow<const M: usize>(
    rows: &[Vec<u16>; 8],
    coef: &[i32; 9],
    corr: u32,
    w: usize,
    s1: &mut [i32],
    s2: &mut [i32],
    s12: &mut [i32],
) -> usize {
    let minlen = rows.iter().map(Vec::len).min().unwrap_or(0);
    let n = w.min(s1.len()).min(s2.len()).min(s12.len());
    let cf: [__m256i; M] = std::array::from_fn(|m| _mm256_set1_epi32(coef[m]));
    let corr = _mm256_set1_epi32(corr as i32);
    let round = _mm256_set1_epi32(32768);
    let round64 = _mm256_set1_epi64x(0x8000_0000);
    let mut c = 0;
    while c + 16 <= n && c + 2 * M + 15 <= minlen {
        // Even (at c) and odd (at c + 1) outputs of one row.
        let hs = |row: &[u16], at: usize| -> __m256i {
            let mut acc = corr;
            for (m, f) in cf.iter().enumerate() {
                // SAFETY: at + 2m + 16 <= c + 2M + 15 <= row.len() (loop condition).
                let x = unsafe { _mm256_loadu_si256(row.as_ptr().add(at + 2 * m).cast()) };
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, *f));
            }
            acc
        };
        for (par, off) in [(0usize, 0usize), (1, 8)] {
            let at = c + par;
            let mu1 = hs(&rows[0], at);
            let mu2 = hs(&rows[1], at);
            let sq = |t: usize| {
                let lo = hs(&rows[2 + 2 * t], at);
                let hi = hs(&rows[3 + 2 * t], at);
                _mm256_add_epi32(hi, _mm256_srli_epi32::<16>(_mm256_add_epi32(lo, round)))
            };
            let (xx, yy, xy) = (sq(0), sq(1), sq(2));
            // (a * b + 2^31) >> 32 of u32 lanes.
            let mulhi = |a: __m256i, b: __m256i| {
                let e = _mm256_add_epi64(_mm256_mul_epu32(a, b), round64);
                let o = _mm256_add_epi64(
                    _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), _mm256_srli_epi64::<32>(b)),
                    round64,
                );
                _mm256_blend_epi32::<0xAA>(_mm256_srli_epi64::<32>(e), o)
            };
            let o1 = _mm256_sub_epi32(xx, mulhi(mu1, mu1));
            let o2 = _mm256_max_epi32(_mm256_sub_epi32(yy, mulhi(mu2, mu2)), _mm256_setzero_si256());
            let o12 = _mm256_sub_epi32(xy, mulhi(mu1, mu2));
            // SAFETY: c + off + 8 <= c + 16 <= n, within every output slice.
            unsafe {
                _mm256_storeu_si256(s1.as_mut_ptr().add(c + off).cast(), o1);
                _mm256_storeu_si256(s2.as_mut_ptr().add(c + off).cast(), o2);
                _mm256_storeu_si256(s12.as_mut_ptr().add(c + off).cast(), o12);
            }
        }
        c += 16;
    }
    c
}

/// log2(v) * 2048 of four `u64` lanes (meaningful for `2^15 <= v < 2^52`).
#[inline]
#[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn log2_v(table: &[u32; 32768], v: __m256i) -> __m256i {
    // v as a double, exact below 2^52; its exponent is floor(log2(v)).
    let magic = _mm256_set1_epi64x(0x4330_0000_0000_0000);
    let d = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, magic)), _mm256_castsi256_pd(magic));
    let e = _mm256_srli_epi64::<52>(_mm256_castpd_si256(d));
    let k = _mm256_sub_epi64(e, _mm256_set1_epi64x(1023 + 15));
    let neg = _mm256_sub_epi64(_mm256_setzero_si256(), k);
    // Counts of 64 and more (the negative side) shift in zeros.
    let m = _mm256_or_si256(_mm256_srlv_epi64(v, k), _mm256_sllv_epi64(v, neg));
    let idx = _mm256_and_si256(m, _mm256_set1_epi64x(0x7fff));
    // SAFETY: every index is masked to 0..32768, inside the table.
    let t = unsafe { _mm256_i64gather_epi32::<4>(table.as_ptr().cast(), idx) };
    _mm256_add_epi64(_mm256_cvtepu32_epi64(t), _mm256_slli_epi64::<11>(k))
}

/// Adds the statistic of the pixels with (co)variances `s1`, `s2`, `s12` to
/// `acc`; the caller handles any tail shorter than four.
#[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
pub(super) fn accum_row(acc: &mut Accum, table: &[u32; 32768], s1: &[i32], s2: &[i32], s12: &[i32]) -> usize {
    const EPS: f64 = 65536.0 * 1.0e-10;
    let nsq = _mm_set1_epi32(SIGMA_NSQ as i32);
    let nsq_m1 = _mm_set1_epi32(SIGMA_NSQ as i32 - 1);
    let zero = _mm_setzero_si128();
    let magic = _mm256_set1_pd(4503599627370496.0);
    let mut den_log = _mm256_setzero_si256();
    let mut num_log = _mm256_setzero_si256();
    let mut num_non_log = _mm256_setzero_si256();
    let mut den_non_log = 0i64;
    let mut done = 0;
    for ((a, b), c) in s1.chunks_exact(4).zip(s2.chunks_exact(4)).zip(s12.chunks_exact(4)) {
        // SAFETY: each chunk holds exactly four i32, 16 bytes.
        let (a, b, c) = unsafe {
            (
                _mm_loadu_si128(a.as_ptr().cast()),
                _mm_loadu_si128(b.as_ptr().cast()),
                _mm_loadu_si128(c.as_ptr().cast()),
            )
        };
        let is_log = _mm_cmpgt_epi32(a, nsq_m1);
        let both = _mm_and_si128(is_log, _mm_and_si128(_mm_cmpgt_epi32(c, zero), _mm_cmpgt_epi32(b, zero)));
        let is_log64 = _mm256_cvtepi32_epi64(is_log);
        let dl = _mm256_sub_epi64(
            log2_v(table, _mm256_cvtepu32_epi64(_mm_add_epi32(a, nsq))),
            _mm256_set1_epi64x(2048 * 17),
        );
        den_log = _mm256_add_epi64(den_log, _mm256_and_si256(is_log64, dl));
        num_non_log = _mm256_add_epi64(num_non_log, _mm256_andnot_si256(is_log64, _mm256_cvtepi32_epi64(b)));
        den_non_log += i64::from(4 - (_mm_movemask_ps(_mm_castsi128_ps(is_log)) as u32).count_ones());
        if _mm_movemask_ps(_mm_castsi128_ps(both)) != 0 {
            let af = _mm256_cvtepi32_pd(a);
            let bf = _mm256_cvtepi32_pd(b);
            let cf = _mm256_cvtepi32_pd(c);
            let g = _mm256_div_pd(cf, _mm256_add_pd(af, _mm256_set1_pd(EPS)));
            let sv = _mm256_cvttpd_epi32(_mm256_sub_pd(bf, _mm256_mul_pd(g, cf)));
            let sv = _mm_max_epi32(sv, zero);
            let g = _mm256_min_pd(g, _mm256_set1_pd(super::GAIN_LIMIT));
            let numer1 = _mm256_cvtepu32_epi64(_mm_add_epi32(sv, nsq));
            // Truncation to an integer, exact for the 0 <= t < 2^52 of the
            // lanes that count.
            let t = _mm256_round_pd::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(_mm256_mul_pd(_mm256_mul_pd(g, g), af));
            let t = _mm256_sub_epi64(
                _mm256_castpd_si256(_mm256_add_pd(t, magic)),
                _mm256_castpd_si256(magic),
            );
            let tmp = _mm256_add_epi64(t, numer1);
            let nl = _mm256_sub_epi64(log2_v(table, tmp), log2_v(table, numer1));
            num_log = _mm256_add_epi64(num_log, _mm256_and_si256(_mm256_cvtepi32_epi64(both), nl));
        }
        done += 4;
    }
    let sum = |v: __m256i| {
        let mut o = [0i64; 4];
        // SAFETY: o is 32 bytes.
        unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), v) };
        o.iter().sum::<i64>()
    };
    acc.den_log += sum(den_log);
    acc.num_log += sum(num_log);
    acc.num_non_log += sum(num_non_log);
    acc.den_non_log += den_non_log;
    done
}
