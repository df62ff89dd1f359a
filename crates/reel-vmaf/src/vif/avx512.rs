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
