//! The three coarser levels, whose bands are 32-bit.

use super::common::{
    ceil_log2_minus, cos1_sq, half, inner_region, neighbours, outer_region, recip30, rfactor,
    within_one_degree, zero_outside, Region, RowCache,
};
use super::dwt::Bands;

/// 1/30 and 1/15 in Q32.
const ONE_BY_30: i64 = 143_165_577;
const ONE_BY_15: i64 = 286_331_153;
/// Rounding term of the Q32 -> integer shifts above. libvmaf stores
/// `1u << 31` in a signed 32-bit slot, so the "rounding" actually
/// subtracts 2^31; reproduced for bit-exactness.
const Q32_ROUND: i64 = -(1i64 << 31);

/// Q32 reciprocal thresholds of `scale`. For the fixed viewing conditions
/// they are all below 2^28 (1/21.9 at most), so they fit an i32, which
/// lets the products below use 32x32 -> 64-bit multiplies.
#[inline(always)]
fn rf32(scale: usize) -> [i32; 3] {
    let rf = rfactor(scale);
    let q = 2f64.powi(32);
    let fix = |r: f32| i32::try_from((f64::from(r) * q) as u32).unwrap_or(i32::MAX);
    [fix(rf[0]), fix(rf[1]), fix(rf[2])]
}

/// 32-bit counterpart of the level-0 restoration, given the signed
/// reciprocal and shift from [`reciprocals32`]. Branch-free so that the
/// calling loop vectorises: the arithmetic shift of a clamped-at-zero value
/// is done as a logical one, and the i64 products only keep bits that
/// survive the final truncation.
#[inline(always)]
fn restore32(o: i32, t: i32, signed: i32, sh: u32, angle: bool) -> i32 {
    // |signed| <= 2^30, so the product and rounding stay within i64.
    let y = i64::from(signed) * i64::from(t) + (1i64 << (14 + sh));
    let q = if y < 0 {
        0
    } else {
        ((y as u64) >> (15 + sh)).min(32768) as i32
    };
    // Bits 15..47 of q * o, the same for a logical or an arithmetic shift.
    let rst = ((i64::from(q) * i64::from(o) + 16384) as u64 >> 15) as i32;
    // min/max(rst * 100, t) in i64, as libvmaf: when rst * 100 leaves the
    // i32 range it is beyond t on the side that selects t.
    let big = rst.unsigned_abs() > 21_474_836;
    let boosted = rst.wrapping_mul(100);
    let limited = if o > 0 {
        boosted.min(t)
    } else {
        boosted.max(t)
    };
    let limited = if big { t } else { limited };
    if angle & (q > 0) & (o != 0) {
        limited
    } else {
        rst
    }
}

/// Signed reciprocal of each reference `o` from its top 15 significant
/// bits (rounded): `sh` drops `max(0, bitlen - 15)` bits and the reciprocal
/// is `trunc(2^30 / m)` of the remaining `m <= 2^15`, exact in f64 (the
/// quotient is at least `1/m` away from the next integer). The bit length
/// comes from the exponent of the exact f64 conversion, and the loop is
/// separate, so that it vectorises. `m == 0` only for `o == 0`, whose
/// restored value is 0 whatever the reciprocal.
#[inline(always)]
fn reciprocals32(o: &[i32], recip: &mut [i32], shift: &mut [u32]) {
    for ((r, s), &o) in recip.iter_mut().zip(shift.iter_mut()).zip(o) {
        let abs = o.unsigned_abs();
        let e = ((f64::from(abs).to_bits() >> 52) as i32) - 1023;
        let sh = (e - 14).max(0) as u32;
        let m = (abs.wrapping_add((1u32 << sh) >> 1)) >> sh;
        let q = recip30(m.max(1) as i32);
        *r = if o < 0 { -q } else { q };
        *s = sh;
    }
}

/// Decoupling and CSF of row `i` (see the level-0 counterpart).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn decouple_row(
    r: &Bands<i32>,
    d: &Bands<i32>,
    i: usize,
    reg: &Region,
    cos_sq: f64,
    rf: &[i32; 3],
    angle: &mut [bool],
    recip: &mut [i32],
    shift: &mut [u32],
    out_r: &mut [i32],
    out_csf: &mut [i32],
    out_flt: &mut [i32],
) {
    let w = r.w;
    let outside = i < reg.top || i >= reg.bottom;
    for buf in [&mut *out_r, &mut *out_csf, &mut *out_flt] {
        zero_outside(buf, w, reg.left, reg.right, outside);
    }
    if outside {
        return;
    }
    {
        let s = i * w + reg.left..i * w + reg.right;
        let oh = &r.h_band[s.clone()];
        let ov = &r.v[s.clone()];
        let th = &d.h_band[s.clone()];
        let tv = &d.v[s.clone()];
        // Below 2^26 in magnitude all products and sums are exact in f64,
        // and rounding the exact value to f32 is libvmaf's int64 -> float:
        // the common case, which vectorises. Otherwise in i64.
        let mut bits = 0u32;
        for (((&a, &b), &c), &d) in oh.iter().zip(ov).zip(th).zip(tv) {
            bits |= a.unsigned_abs() | b.unsigned_abs() | c.unsigned_abs() | d.unsigned_abs();
        }
        if bits < 1 << 26 {
            for (a, ((&oh, &ov), (&th, &tv))) in angle
                .iter_mut()
                .zip(oh.iter().zip(ov).zip(th.iter().zip(tv)))
            {
                let (oh, ov, th, tv) = (f64::from(oh), f64::from(ov), f64::from(th), f64::from(tv));
                let dot = f64::from((oh * th + ov * tv) as f32) / 4096.0;
                let o2 = f64::from((oh * oh + ov * ov) as f32) / 4096.0;
                let t2 = f64::from((th * th + tv * tv) as f32) / 4096.0;
                *a = dot >= 0.0 && dot * dot >= cos_sq * o2 * t2;
            }
        } else {
            for (a, ((&oh, &ov), (&th, &tv))) in angle
                .iter_mut()
                .zip(oh.iter().zip(ov).zip(th.iter().zip(tv)))
            {
                *a = within_one_degree(
                    cos_sq,
                    i64::from(oh),
                    i64::from(ov),
                    i64::from(th),
                    i64::from(tv),
                );
            }
        }
        let bands_o = [&r.h_band, &r.v, &r.d];
        let bands_t = [&d.h_band, &d.v, &d.d];
        for b in 0..3 {
            let o = &bands_o[b][s.clone()];
            let t = &bands_t[b][s.clone()];
            let cols = b * w + reg.left..b * w + reg.right;
            let ro = &mut out_r[cols.clone()];
            let co = &mut out_csf[cols.clone()];
            let fo = &mut out_flt[cols];
            let f = rf[b];
            reciprocals32(o, recip, shift);
            for (((((((&o, &t), &rc), &sh), &ang), ro), co), fo) in o
                .iter()
                .zip(t)
                .zip(&*recip)
                .zip(&*shift)
                .zip(&*angle)
                .zip(ro.iter_mut())
                .zip(co.iter_mut())
                .zip(fo.iter_mut())
            {
                let rst = restore32(o, t, rc, sh, ang);
                *ro = rst;
                let a = t.wrapping_sub(rst);
                // Only bits 28..60 (resp. 32..64) are kept: logical shifts.
                let c = ((i64::from(f) * i64::from(a) + (1 << 27)) as u64 >> 28) as i32;
                *co = c;
                *fo = ((ONE_BY_30 * i64::from(c.wrapping_abs()) + Q32_ROUND) as u64 >> 32) as i32;
            }
        }
    }
}

#[inline(always)]
fn pooled(v: f32, add: f32) -> f32 {
    v.powf(1.0 / 3.0) + add
}

#[inline(always)]
pub fn denominator(r: &Bands<i32>, scale: usize) -> f32 {
    let k = scale.clamp(1, 3) - 1;
    let (w, h) = (r.w, r.h);
    let reg = inner_region(w, h);
    let sq = [31u32, 30, 31][k];
    let sq_r = 1u64 << sq;
    let conv = [32u32, 27, 23][k];
    let cub = ceil_log2_minus(reg.right - reg.left, 0.0);
    let cub_r = half(cub) as u64;
    let acc_sh = ceil_log2_minus(reg.bottom - reg.top, 0.0);
    let acc_r = half(acc_sh) as u64;
    let mut acc = [0u64; 3];
    for i in reg.top..reg.bottom {
        let s = i * w + reg.left..i * w + reg.right;
        for (b, band) in [&r.h_band, &r.v, &r.d].into_iter().enumerate() {
            // Plain loops, not iterator adapters: closures would not inherit
            // the SIMD target features of the caller.
            let mut row = 0u64;
            for &x in &band[s.clone()] {
                let a = u64::from(x.unsigned_abs());
                let v = ((((a * a).wrapping_add(sq_r)) >> sq)
                    .wrapping_mul(a)
                    .wrapping_add(cub_r))
                    >> cub;
                row = row.wrapping_add(v);
            }
            acc[b] = acc[b].wrapping_add((row.wrapping_add(acc_r)) >> acc_sh);
        }
    }
    let rf = rfactor(scale);
    let e = conv.wrapping_sub(acc_sh).wrapping_sub(cub);
    let div = 2f64.powf(f64::from(e));
    let area = reg.area();
    let add = (area as f32 / 32.0).powf(1.0 / 3.0);
    let mut sum = 0.0f32;
    for b in 0..3 {
        let csf = (acc[b] as f64 / div) * f64::from(rf[b]).powf(3.0);
        sum += pooled(csf as f32, add);
    }
    sum
}

#[inline(always)]
fn threshold_row(
    m: &RowCache<i32>,
    w: usize,
    h: usize,
    i: usize,
    thr: &mut [i32],
    col: &mut [i32],
) {
    let (p, n) = neighbours(i, h);
    thr.fill(0);
    for b in 0..3 {
        let fp = m.flt(p, b);
        let fc = m.flt(i, b);
        let fnx = m.flt(n, b);
        let ac = m.csf(i, b);
        for (((c, &x), &y), &z) in col.iter_mut().zip(fp).zip(fc).zip(fnx) {
            *c = x.wrapping_add(y).wrapping_add(z);
        }
        let centre = |v: i32| ((ONE_BY_15 * i64::from(v.wrapping_abs()) + Q32_ROUND) >> 32) as i32;
        if w >= 3 {
            let t = &mut thr[1..w - 1];
            for (j, tj) in t.iter_mut().enumerate() {
                *tj = tj
                    .wrapping_add(col[j])
                    .wrapping_add(col[j + 1])
                    .wrapping_add(col[j + 2])
                    .wrapping_sub(fc[j + 1])
                    .wrapping_add(centre(ac[j + 1]));
            }
        }
        let last = w - 1;
        let edges: &[usize] = if w == 1 { &[0] } else { &[0, last] };
        for &j in edges {
            let l = if j == 0 { 1.min(last) } else { j - 1 };
            let r = if j == last { last } else { j + 1 };
            thr[j] = thr[j]
                .wrapping_add(col[l])
                .wrapping_add(col[j])
                .wrapping_add(col[r])
                .wrapping_sub(fc[j])
                .wrapping_add(centre(ac[j]));
        }
    }
}

#[inline(always)]
pub fn numerator(r: &Bands<i32>, d: &Bands<i32>, scale: usize) -> f32 {
    let (w, h) = (r.w, r.h);
    let k = scale.clamp(1, 3) - 1;
    let reg = inner_region(w, h);
    let outer = outer_region(w, h);
    let cos_sq = cos1_sq();
    let rf_all = rf32(scale);
    let mut angle = vec![false; outer.right - outer.left];
    let mut recip = vec![0i32; outer.right - outer.left];
    let mut shift = vec![0u32; outer.right - outer.left];
    let mut m = RowCache::<i32>::new(w);
    let rows = if reg.top > 0 {
        reg.top..reg.bottom
    } else {
        0..h
    };
    let cols = if reg.left > 0 {
        reg.left..reg.right
    } else {
        0..w
    };
    let rf = rf32(scale);
    let cub = ceil_log2_minus(w, 0.0);
    let cub_r = half(cub);
    let inner = ceil_log2_minus(h, 0.0);
    let inner_r = half(inner);
    let mut thr = vec![0i32; w];
    let mut col = vec![0i32; w];
    let mut acc = [0i64; 3];
    for i in rows {
        let (p, n) = neighbours(i, h);
        for k in [p, i, n] {
            if let Some((ro, co, fo)) = m.missing(k) {
                decouple_row(
                    r, d, k, &outer, cos_sq, &rf_all, &mut angle, &mut recip, &mut shift, ro, co,
                    fo,
                );
            }
        }
        threshold_row(&m, w, h, i, &mut thr, &mut col);
        let t = &thr[cols.clone()];
        for b in 0..3 {
            let src = &m.r(i, b)[cols.clone()];
            let f = rf[b];
            let mut row = 0i64;
            for (&s, &th) in src.iter().zip(t) {
                // Bits 28..60 survive the truncation: a logical shift will do.
                let x = (((i64::from(s) * i64::from(f) + (1 << 27)) as u64) >> 28) as i32;
                let x = x.wrapping_abs().wrapping_sub(th).max(0);
                let x2 = (((i64::from(x) * i64::from(x) + (1 << 29)) as u64) >> 30) as i32;
                row += (i64::from(x2) * i64::from(x) + cub_r) >> cub;
            }
            acc[b] += (row + inner_r) >> inner;
        }
    }
    let e = [45u32, 39, 36][k].wrapping_sub(cub).wrapping_sub(inner);
    let div = 2f64.powf(f64::from(e)) as f32;
    let add = (reg.area() as f32 / 32.0).powf(1.0 / 3.0);
    let mut sum = 0.0f32;
    for a in acc {
        // int64 -> float, then a single-precision division, as in libvmaf.
        sum += pooled(a as f32 / div, add);
    }
    sum
}
