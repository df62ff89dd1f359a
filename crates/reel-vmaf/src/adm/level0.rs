//! The finest level, whose bands are 16-bit.

use super::common::{
    ceil_log2_minus, cos1_sq, half, inner_region, neighbours, outer_region, recip30, rfactor,
    zero_outside, Region, RowCache,
};
use super::dwt::Bands;

/// Fixed-point reciprocal thresholds of level 0 for the default viewing
/// conditions (Q21 for h and v, Q23 for d).
const RF: [i32; 3] = [36453, 36453, 49417];
const CSF_SHIFT: [u32; 3] = [15, 15, 17];
const CSF_ROUND: [i32; 3] = [16384, 16384, 65535];
/// 1/30 and 1/15 in fixed point.
const ONE_BY_30: i32 = 4369;
const ONE_BY_15: i32 = 8738;

/// Restored part of distorted coefficient `t` given reference `o`:
/// `clamp(t / o, 0, 1) * o` in Q15, then the enhancement gain limit of 100
/// (an enhancement within one degree of the reference may grow the restored
/// part up to 100x, never beyond `t`). A zero `o` restores nothing.
#[inline(always)]
fn restore16(o: i16, t: i16, recip: i32, angle: bool) -> i16 {
    let (o, t) = (i32::from(o), i32::from(t));
    // (recip * t + 2^14) >> 15 without 64-bit lanes: split recip at bit 15.
    let (hi, lo) = (recip >> 15, recip & 0x7fff);
    let q = (hi * t + ((lo * t + 16384) >> 15)).clamp(0, 32768);
    let rst = i32::from(((q * o + 16384) >> 15) as i16);
    let boosted = rst * 100;
    let limited = if o > 0 {
        boosted.min(t)
    } else {
        boosted.max(t)
    };
    let out = if angle & (q > 0) & (o != 0) {
        limited
    } else {
        rst
    };
    out as i16
}

/// `trunc(2^30 / o)` (libvmaf's reciprocal table entry) for each `o`, exact
/// in f64 for `|o| <= 2^15`: the quotient is at least `1/|o|` away from the
/// next integer, far more than its rounding error. A zero `o` gets `2^30`,
/// harmless since its restored value is 0 whatever the reciprocal. A
/// separate loop, so that the divisions vectorise.
#[inline(always)]
fn reciprocals16(o: &[i16], out: &mut [i32]) {
    for (r, &o) in out.iter_mut().zip(o) {
        let q = recip30(i32::from(o).abs().max(1));
        *r = if o < 0 { -q } else { q };
    }
}

/// Split row `i` of the distorted bands into restored reference and
/// additive impairment, then apply the CSF to the impairment. Outside
/// `reg` (the scored region plus the masking reach) everything is zero.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn decouple_row(
    r: &Bands<i16>,
    d: &Bands<i16>,
    i: usize,
    reg: &Region,
    cos_sq: f64,
    angle: &mut [bool],
    recip: &mut [i32],
    out_r: &mut [i16],
    out_csf: &mut [i16],
    out_flt: &mut [i16],
) {
    let w = r.w;
    let outside = i < reg.top || i >= reg.bottom;
    for buf in [&mut *out_r, &mut *out_csf, &mut *out_flt] {
        zero_outside(buf, w, reg.left, reg.right, outside);
    }
    if outside {
        return;
    }
    let s = i * w + reg.left..i * w + reg.right;
    let oh = &r.h_band[s.clone()];
    let ov = &r.v[s.clone()];
    let th = &d.h_band[s.clone()];
    let tv = &d.v[s.clone()];
    // The angle test couples h and v; evaluate it first for the row.
    for (ang, ((&oh, &ov), (&th, &tv))) in angle
        .iter_mut()
        .zip(oh.iter().zip(ov).zip(th.iter().zip(tv)))
    {
        *ang = {
            // Products of 16-bit values are exact in f64; rounding the
            // exact sum to f32 equals libvmaf's int64 -> float.
            let (oh, ov, th, tv) = (f64::from(oh), f64::from(ov), f64::from(th), f64::from(tv));
            let dot = f64::from((oh * th + ov * tv) as f32) / 4096.0;
            let o2 = f64::from((oh * oh + ov * ov) as f32) / 4096.0;
            let t2 = f64::from((th * th + tv * tv) as f32) / 4096.0;
            dot >= 0.0 && dot * dot >= cos_sq * o2 * t2
        };
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
        let (rf, round, shift) = (RF[b], CSF_ROUND[b], CSF_SHIFT[b]);
        reciprocals16(o, recip);
        for ((((((&o, &t), &rc), &ang), ro), co), fo) in o
            .iter()
            .zip(t)
            .zip(&*recip)
            .zip(&*angle)
            .zip(ro.iter_mut())
            .zip(co.iter_mut())
            .zip(fo.iter_mut())
        {
            let rst = restore16(o, t, rc, ang);
            *ro = rst;
            let a = t.wrapping_sub(rst);
            let x = ((rf * i32::from(a) + round) >> shift) as i16;
            *co = x;
            *fo = ((ONE_BY_30 * i32::from(x).abs() + 2048) >> 12) as i16;
        }
    }
}

/// Cube-root pooled value of one band sum, plus the area term.
#[inline(always)]
fn pooled(v: f32, add: f32) -> f32 {
    v.powf(1.0 / 3.0) + add
}

/// Denominator of level 0: CSF-weighted reference energy.
#[inline(always)]
pub fn denominator(r: &Bands<i16>) -> f32 {
    let (w, h) = (r.w, r.h);
    let reg = inner_region(w, h);
    let area = reg.area();
    let shift = ((area.max(1) as f64).log2() - 20.0).ceil().max(0.0) as u32;
    let round = half(shift) as u64;
    let mut acc = [0u64; 3];
    for i in reg.top..reg.bottom {
        let s = i * w + reg.left..i * w + reg.right;
        for (b, band) in [&r.h_band, &r.v, &r.d].into_iter().enumerate() {
            // Plain loops, not iterator adapters: closures would not inherit
            // the SIMD target features of the caller.
            let mut row = 0u64;
            for &x in &band[s.clone()] {
                let a = u64::from(x.unsigned_abs());
                row += a * a * a;
            }
            acc[b] += (row + round) >> shift;
        }
    }
    let rf = rfactor(0);
    let scale = 2f64.powi(18 - shift as i32);
    let add = (area as f32 / 32.0).powf(1.0 / 3.0);
    let mut sum = 0.0f32;
    for b in 0..3 {
        let csf = (acc[b] as f64 / scale) * f64::from(rf[b]).powf(3.0);
        sum += pooled(csf as f32, add);
    }
    sum
}

/// Sum of the 3x3 masking neighbourhood over the three orientations for
/// each column of row `i` (`thr.len() == w`).
#[inline(always)]
fn threshold_row(
    m: &RowCache<i16>,
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
            *c = i32::from(x) + i32::from(y) + i32::from(z);
        }
        // Interior columns.
        if w >= 3 {
            let t = &mut thr[1..w - 1];
            for (j, tj) in t.iter_mut().enumerate() {
                let centre = (ONE_BY_15 * i32::from(ac[j + 1]).abs() + 2048) >> 12;
                *tj += col[j] + col[j + 1] + col[j + 2] - i32::from(fc[j + 1])
                    + i32::from(centre as i16);
            }
        }
        // Edge columns: (1, 0, 1) on the left, (w-2, w-1, w-1) on the right.
        let last = w - 1;
        let edges: &[usize] = if w == 1 { &[0] } else { &[0, last] };
        for &j in edges {
            let l = if j == 0 { 1.min(last) } else { j - 1 };
            let r = if j == last { last } else { j + 1 };
            let centre = (ONE_BY_15 * i32::from(ac[j]).abs() + 2048) >> 12;
            thr[j] += col[l] + col[j] + col[r] - i32::from(fc[j]) + i32::from(centre as i16);
        }
    }
}

/// Numerator of level 0: contrast-masked restored detail.
#[inline(always)]
pub fn numerator(r: &Bands<i16>, d: &Bands<i16>) -> f32 {
    let (w, h) = (r.w, r.h);
    let reg = inner_region(w, h);
    let outer = outer_region(w, h);
    let cos_sq = cos1_sq();
    let mut angle = vec![false; outer.right - outer.left];
    let mut recip = vec![0i32; outer.right - outer.left];
    let mut m = RowCache::<i16>::new(w);
    // Rows/columns touching the frame edge are only scored when the border
    // cut is empty; the ranges below reproduce libvmaf's visiting order.
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
    let cub = [
        ceil_log2_minus(w, 4.0),
        ceil_log2_minus(w, 4.0),
        ceil_log2_minus(w, 3.0),
    ];
    let sq_shift = [29u32, 29, 30];
    let sub_shift = [10u32, 10, 12];
    let inner = ceil_log2_minus(h, 0.0);
    let inner_round = half(inner);
    let mut thr = vec![0i32; w];
    let mut col = vec![0i32; w];
    let mut acc = [0i64; 3];
    for i in rows {
        let (p, n) = neighbours(i, h);
        for k in [p, i, n] {
            if let Some((ro, co, fo)) = m.missing(k) {
                decouple_row(r, d, k, &outer, cos_sq, &mut angle, &mut recip, ro, co, fo);
            }
        }
        threshold_row(&m, w, h, i, &mut thr, &mut col);
        let t = &thr[cols.clone()];
        for b in 0..3 {
            let src = &m.r(i, b)[cols.clone()];
            let (sq, sub, cb) = (sq_shift[b], sub_shift[b], cub[b]);
            let (sq_r, cb_r) = (half(sq), half(cb));
            let rf = RF[b];
            let mut row = 0i64;
            for (&s, &th) in src.iter().zip(t) {
                let x = (i32::from(s) * rf).abs() - (th << sub);
                let x = x.max(0);
                // x * x >= 0: the shift may be a logical one.
                let x2 = (((i64::from(x) * i64::from(x) + sq_r) as u64) >> sq) as i32;
                row += (i64::from(x2) * i64::from(x) + cb_r) >> cb;
            }
            acc[b] += (row + inner_round) >> inner;
        }
    }
    let reg_area = reg.area();
    let add = (reg_area as f32 / 32.0).powf(1.0 / 3.0);
    let pend = [52i32, 52, 57];
    let mut sum = 0.0f32;
    for b in 0..3 {
        let e = pend[b] - cub[b] as i32 - inner as i32;
        let v = (acc[b] as f64 / 2f64.powi(e)) as f32;
        sum += pooled(v, add);
    }
    sum
}
