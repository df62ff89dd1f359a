//! The per-pixel statistic of one row with AVX-512 (eight pixels a step,
//! table look-ups by gather), bit-exact with the scalar `accum_block`.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{Accum, SIGMA_NSQ};

/// log2(v) * 2048 of eight `u64` lanes (meaningful for `v >= 2^15`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512cd,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
fn log2_v(table: &[u32; 32768], v: __m512i) -> __m512i {
    let k = _mm512_sub_epi64(_mm512_set1_epi64(48), _mm512_lzcnt_epi64(v));
    let neg = _mm512_sub_epi64(_mm512_setzero_si512(), k);
    // Counts of 64 and more (the negative side) shift in zeros.
    let m = _mm512_or_si512(_mm512_srlv_epi64(v, k), _mm512_sllv_epi64(v, neg));
    let idx = _mm512_and_si512(m, _mm512_set1_epi64(0x7fff));
    // SAFETY: every index is masked to 0..32768, inside the table.
    let t = unsafe { _mm512_i64gather_epi32::<4>(idx, table.as_ptr().cast()) };
    _mm512_add_epi64(_mm512_cvtepu32_epi64(t), _mm512_slli_epi64::<11>(k))
}

/// Adds the statistic of the pixels with (co)variances `s1`, `s2`, `s12` to
/// `acc`; the caller handles any tail shorter than eight.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512cd,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
pub(super) fn accum_row(acc: &mut Accum, table: &[u32; 32768], s1: &[i32], s2: &[i32], s12: &[i32]) -> usize {
    const EPS: f64 = 65536.0 * 1.0e-10;
    let nsq = _mm256_set1_epi32(SIGMA_NSQ as i32);
    let zero = _mm256_setzero_si256();
    let mut den_log = _mm512_setzero_si512();
    let mut num_log = _mm512_setzero_si512();
    let mut num_non_log = _mm512_setzero_si512();
    let mut den_non_log = 0i64;
    let mut done = 0;
    for ((a, b), c) in s1.chunks_exact(8).zip(s2.chunks_exact(8)).zip(s12.chunks_exact(8)) {
        // SAFETY: each chunk holds exactly eight i32, 32 bytes.
        let (a, b, c) = unsafe {
            (
                _mm256_loadu_si256(a.as_ptr().cast()),
                _mm256_loadu_si256(b.as_ptr().cast()),
                _mm256_loadu_si256(c.as_ptr().cast()),
            )
        };
        let is_log = _mm256_cmpge_epi32_mask(a, nsq);
        let both = is_log & _mm256_cmpgt_epi32_mask(c, zero) & _mm256_cmpgt_epi32_mask(b, zero);
        let dl = _mm512_sub_epi64(
            log2_v(table, _mm512_cvtepu32_epi64(_mm256_add_epi32(a, nsq))),
            _mm512_set1_epi64(2048 * 17),
        );
        den_log = _mm512_mask_add_epi64(den_log, is_log, den_log, dl);
        num_non_log = _mm512_mask_add_epi64(num_non_log, !is_log, num_non_log, _mm512_cvtepi32_epi64(b));
        den_non_log += i64::from((!is_log).count_ones());
        if both != 0 {
            let af = _mm512_cvtepi32_pd(a);
            let bf = _mm512_cvtepi32_pd(b);
            let cf = _mm512_cvtepi32_pd(c);
            let g = _mm512_div_pd(cf, _mm512_add_pd(af, _mm512_set1_pd(EPS)));
            let sv = _mm512_cvttpd_epi32(_mm512_sub_pd(bf, _mm512_mul_pd(g, cf)));
            let sv = _mm256_max_epi32(sv, zero);
            let g = _mm512_min_pd(g, _mm512_set1_pd(super::GAIN_LIMIT));
            let numer1 = _mm512_cvtepu32_epi64(_mm256_add_epi32(sv, nsq));
            let t = _mm512_cvttpd_epi64(_mm512_mul_pd(_mm512_mul_pd(g, g), af));
            let tmp = _mm512_add_epi64(t, numer1);
            let nl = _mm512_sub_epi64(log2_v(table, tmp), log2_v(table, numer1));
            num_log = _mm512_mask_add_epi64(num_log, both, num_log, nl);
        }
        done += 8;
    }
    acc.den_log += _mm512_reduce_add_epi64(den_log);
    acc.num_log += _mm512_reduce_add_epi64(num_log);
    acc.num_non_log += _mm512_reduce_add_epi64(num_non_log);
    acc.den_non_log += den_non_log;
    done
}

/// Horizontal pass and local (co)variances of the eight filtered rows
/// (stored offset by `0x8000`, see `super::XOR`) for blocks of 32 pixels,
/// with `pmaddwd` over tap pairs: `coef[m]` packs taps `2m` and `2m + 1`
/// (signed 16-bit), `corr` adds back the offset's contribution. Each block's
/// even pixels land in its first 16 outputs and the odd ones in the next 16
/// (the statistic is a sum, so the order does not matter). Returns how many
/// pixels were done; the caller handles the rest in natural order.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512cd,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
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
    let cf: [__m512i; M] = std::array::from_fn(|m| _mm512_set1_epi32(coef[m]));
    let corr = _mm512_set1_epi32(corr as i32);
    let round = _mm512_set1_epi32(32768);
    let round64 = _mm512_set1_epi64(0x8000_0000);
    let mut c = 0;
    while c + 32 <= n && c + 2 * M + 31 <= minlen {
        // Even (at c) and odd (at c + 1) outputs of one row.
        let hs = |row: &[u16], at: usize| -> __m512i {
            let mut acc = corr;
            for (m, f) in cf.iter().enumerate() {
                // SAFETY: at + 2m + 32 <= c + 2M + 31 <= row.len() (loop condition).
                let x = unsafe { _mm512_loadu_si512(row.as_ptr().add(at + 2 * m).cast()) };
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, *f));
            }
            acc
        };
        for (par, off) in [(0usize, 0usize), (1, 16)] {
            let at = c + par;
            let mu1 = hs(&rows[0], at);
            let mu2 = hs(&rows[1], at);
            let sq = |t: usize| {
                let lo = hs(&rows[2 + 2 * t], at);
                let hi = hs(&rows[3 + 2 * t], at);
                _mm512_add_epi32(hi, _mm512_srli_epi32::<16>(_mm512_add_epi32(lo, round)))
            };
            let (xx, yy, xy) = (sq(0), sq(1), sq(2));
            // (a * b + 2^31) >> 32 of u32 lanes.
            let mulhi = |a: __m512i, b: __m512i| {
                let e = _mm512_add_epi64(_mm512_mul_epu32(a, b), round64);
                let o = _mm512_add_epi64(
                    _mm512_mul_epu32(_mm512_srli_epi64::<32>(a), _mm512_srli_epi64::<32>(b)),
                    round64,
                );
                _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64::<32>(e), o)
            };
            let o1 = _mm512_sub_epi32(xx, mulhi(mu1, mu1));
            let o2 = _mm512_max_epi32(_mm512_sub_epi32(yy, mulhi(mu2, mu2)), _mm512_setzero_si512());
            let o12 = _mm512_sub_epi32(xy, mulhi(mu1, mu2));
            // SAFETY: c + off + 16 <= c + 32 <= n, within every output slice.
            unsafe {
                _mm512_storeu_si512(s1.as_mut_ptr().add(c + off).cast(), o1);
                _mm512_storeu_si512(s2.as_mut_ptr().add(c + off).cast(), o2);
                _mm512_storeu_si512(s12.as_mut_ptr().add(c + off).cast(), o12);
            }
        }
        c += 32;
    }
    c
}
