//! The three coarser levels, whose bands are 32-bit.

use super::common::{
    ceil_log2_minus, cos1_sq, half, inner_region, neighbours, outer_region, recip_table,
    rfactor, within_one_degree,
};
use super::common::pool;
use super::dwt::Bands;
use super::level0::Masked;

/// 1/30 and 1/15 in Q32.
const ONE_BY_30: i64 = 143_165_577;
const ONE_BY_15: i64 = 286_331_153;
/// Rounding term of the Q32 -> integer shifts above. libvmaf stores
/// `1u << 31` in a signed 32-bit slot, so the "rounding" actually
/// subtracts 2^31; reproduced for bit-exactness.
const Q32_ROUND: i64 = -(1i64 << 31);

/// Q32 reciprocal thresholds of `scale`.
fn rf32(scale: usize) -> [i64; 3] {
    let rf = rfactor(scale);
    let q = 2f64.powi(32);
    [
        (f64::from(rf[0]) * q) as u32 as i64,
        (f64::from(rf[1]) * q) as u32 as i64,
        (f64::from(rf[2]) * q) as u32 as i64,
    ]
}

/// 32-bit counterpart of the level-0 restoration: the reciprocal of a
/// large reference is taken from its top 15 significant bits.
#[inline(always)]
fn restore32(tab: &[i32; 65537], o: i32, t: i32, angle: bool) -> i32 {
    let abs = o.unsigned_abs();
    // Keep the top 15 significant bits (rounded) of large references.
    let sh = 17u32.saturating_sub(abs.leading_zeros());
    let m = (abs.wrapping_add((1u32 << sh) >> 1)) >> sh;
    // m <= 2^15 always; the min() only lets the bounds check go.
    let recip = i64::from(tab[(m as usize).min(32768) + 32768]);
    let signed = if o < 0 { -recip } else { recip };
    let q = ((signed * i64::from(t) + (1i64 << (14 + sh))) >> (15 + sh)).clamp(0, 32768);
    let rst = ((q * i64::from(o) + 16384) >> 15) as i32;
    let boosted = i64::from(rst) * 100;
    let t64 = i64::from(t);
    let limited = (if o > 0 { boosted.min(t64) } else { boosted.max(t64) }) as i32;
    if angle & (q > 0) & (o != 0) {
        limited
    } else {
        rst
    }
}

pub fn decouple_csf(r: &Bands<i32>, d: &Bands<i32>, scale: usize) -> Masked<i32> {
    let (w, h) = (r.w, r.h);
    let n = w * h;
    let tab = recip_table();
    let cos_sq = cos1_sq();
    let rf = rf32(scale);
    let mut m = Masked {
        r: [pool::i32s(n), pool::i32s(n), pool::i32s(n)],
        csf: [pool::i32s(n), pool::i32s(n), pool::i32s(n)],
        flt: [pool::i32s(n), pool::i32s(n), pool::i32s(n)],
    };
    let reg = outer_region(w, h);
    let mut angle = vec![false; reg.right - reg.left];
    for i in reg.top..reg.bottom {
        let s = i * w + reg.left..i * w + reg.right;
        let oh = &r.h_band[s.clone()];
        let ov = &r.v[s.clone()];
        let th = &d.h_band[s.clone()];
        let tv = &d.v[s.clone()];
        for (a, ((&oh, &ov), (&th, &tv))) in
            angle.iter_mut().zip(oh.iter().zip(ov).zip(th.iter().zip(tv)))
        {
            *a = within_one_degree(
                cos_sq,
                i64::from(oh),
                i64::from(ov),
                i64::from(th),
                i64::from(tv),
            );
        }
        let bands_o = [&r.h_band, &r.v, &r.d];
        let bands_t = [&d.h_band, &d.v, &d.d];
        for b in 0..3 {
            let o = &bands_o[b][s.clone()];
            let t = &bands_t[b][s.clone()];
            let ro = &mut m.r[b][s.clone()];
            let co = &mut m.csf[b][s.clone()];
            let fo = &mut m.flt[b][s.clone()];
            let f = rf[b];
            for (((((&o, &t), &ang), ro), co), fo) in o
                .iter()
                .zip(t)
                .zip(&angle)
                .zip(ro.iter_mut())
                .zip(co.iter_mut())
                .zip(fo.iter_mut())
            {
                let rst = restore32(tab, o, t, ang);
                *ro = rst;
                let a = t.wrapping_sub(rst);
                let c = ((f * i64::from(a) + (1 << 27)) >> 28) as i32;
                *co = c;
                *fo = ((ONE_BY_30 * i64::from(c.wrapping_abs()) + Q32_ROUND) >> 32) as i32;
            }
        }
    }
    m
}

fn pooled(v: f32, add: f32) -> f32 {
    v.powf(1.0 / 3.0) + add
}

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
            let row: u64 = band[s.clone()]
                .iter()
                .map(|&x| {
                    let a = u64::from(x.unsigned_abs());
                    ((((a * a).wrapping_add(sq_r)) >> sq).wrapping_mul(a).wrapping_add(cub_r)) >> cub
                })
                .fold(0u64, u64::wrapping_add);
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

fn threshold_row(m: &Masked<i32>, w: usize, h: usize, i: usize, thr: &mut [i32], col: &mut [i32]) {
    let (p, n) = neighbours(i, h);
    thr.fill(0);
    for b in 0..3 {
        let f = &m.flt[b];
        let a = &m.csf[b];
        let fp = &f[p * w..p * w + w];
        let fc = &f[i * w..i * w + w];
        let fnx = &f[n * w..n * w + w];
        let ac = &a[i * w..i * w + w];
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

pub fn numerator(m: &Masked<i32>, w: usize, h: usize, scale: usize) -> f32 {
    let k = scale.clamp(1, 3) - 1;
    let reg = inner_region(w, h);
    let rows = if reg.top > 0 { reg.top..reg.bottom } else { 0..h };
    let cols = if reg.left > 0 { reg.left..reg.right } else { 0..w };
    let rf = rf32(scale);
    let cub = ceil_log2_minus(w, 0.0);
    let cub_r = half(cub);
    let inner = ceil_log2_minus(h, 0.0);
    let inner_r = half(inner);
    let mut thr = vec![0i32; w];
    let mut col = vec![0i32; w];
    let mut acc = [0i64; 3];
    for i in rows {
        threshold_row(m, w, h, i, &mut thr, &mut col);
        let t = &thr[cols.clone()];
        for b in 0..3 {
            let src = &m.r[b][i * w + cols.start..i * w + cols.end];
            let f = rf[b];
            let row: i64 = src
                .iter()
                .zip(t)
                .map(|(&s, &th)| {
                    let x = ((i64::from(s) * f + (1 << 27)) >> 28) as i32;
                    let x = x.wrapping_abs().wrapping_sub(th).max(0);
                    let x2 = ((i64::from(x) * i64::from(x) + (1 << 29)) >> 30) as i32;
                    (i64::from(x2) * i64::from(x) + cub_r) >> cub
                })
                .sum();
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
