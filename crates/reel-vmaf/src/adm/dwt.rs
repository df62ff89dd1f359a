//! One level of the integer Daubechies-2 wavelet transform used by ADM.
//!
//! Every level halves the plane (rounding up) and yields four sub-bands.
//! The first level reads the luma samples and produces 16-bit bands; the
//! coarser levels read the previous approximation band and work in 32 bits.

/// Low-pass and high-pass analysis taps, Q15.
use super::common::pool;

const LO: [i32; 4] = [15826, 27411, 7345, -4240];
const HI: [i32; 4] = [-4240, -7345, 27411, -15826];
/// Sum of the low-pass taps, used to centre unsigned input around zero.
const LO_SUM: i32 = 46342;

/// The four sub-bands of one level, each `w * h` values, row-major (every
/// value is written, so the buffers come from the pool unzeroed).
pub struct Bands<T> {
    pub w: usize,
    pub h: usize,
    /// Low-pass both ways (input of the next level).
    pub a: Vec<T>,
    /// High-pass vertically, low-pass horizontally.
    pub h_band: Vec<T>,
    /// Low-pass vertically, high-pass horizontally.
    pub v: Vec<T>,
    /// High-pass both ways.
    pub d: Vec<T>,
}

/// Source positions of the four taps for output position `i` of an axis of
/// length `n`. Position 0 reflects about the first sample; the far end
/// mirrors with the edge sample repeated. Positions are finally clamped so
/// that degenerate (tiny) axes stay in bounds.
#[inline(always)]
pub fn taps(i: usize, n: usize) -> [usize; 4] {
    let last = n.saturating_sub(1);
    let mirror = |p: usize| -> usize {
        let p = if p >= n {
            (2 * n).saturating_sub(p + 1)
        } else {
            p
        };
        p.min(last)
    };
    if i == 0 {
        [mirror(1), 0, mirror(1), mirror(2)]
    } else {
        let c = 2 * i;
        [mirror(c - 1), mirror(c), mirror(c + 1), mirror(c + 2)]
    }
}

/// Range `1..end` of output positions whose taps need no mirroring.
#[inline(always)]
fn interior_end(n: usize) -> usize {
    let half = n.div_ceil(2);
    // For j <= half - 3 the last tap 2j + 2 <= n - 3.
    half.saturating_sub(2).max(1)
}

/// Horizontal analysis of one row of 16-bit intermediates: `lo_out` gets the
/// low-pass, `hi_out` the high-pass output (both `(n + 1) / 2` long).
#[inline(always)]
fn hpass16(tmp: &[i16], lo_out: &mut [i16], hi_out: &mut [i16]) {
    let n = tmp.len();
    let half = lo_out.len();
    let filt = |t: [usize; 4], f: &[i32; 4]| -> i16 {
        let acc = f[0] * i32::from(tmp[t[0]])
            + f[1] * i32::from(tmp[t[1]])
            + f[2] * i32::from(tmp[t[2]])
            + f[3] * i32::from(tmp[t[3]]);
        ((acc + 32768) >> 16) as i16
    };
    let end = interior_end(n).min(half);
    // Edges through the index table.
    for j in (0..1.min(half)).chain(end..half) {
        let t = taps(j, n);
        lo_out[j] = filt(t, &LO);
        hi_out[j] = filt(t, &HI);
    }
    if end > 1 {
        let cnt = end - 1;
        let lo = &mut lo_out[1..end];
        let hi = &mut hi_out[1..end];
        let src = &tmp[1..1 + 2 * cnt + 2];
        for ((l, h), win) in lo
            .iter_mut()
            .zip(hi.iter_mut())
            .zip(src.chunks_exact(2).zip(src[2..].chunks_exact(2)).take(cnt))
        {
            let s0 = i32::from(win.0[0]);
            let s1 = i32::from(win.0[1]);
            let s2 = i32::from(win.1[0]);
            let s3 = i32::from(win.1[1]);
            let a = LO[0] * s0 + LO[1] * s1 + LO[2] * s2 + LO[3] * s3;
            let b = HI[0] * s0 + HI[1] * s1 + HI[2] * s2 + HI[3] * s3;
            *l = ((a + 32768) >> 16) as i16;
            *h = ((b + 32768) >> 16) as i16;
        }
    }
}

/// First level, straight from the luma samples (`bpc` significant bits).
#[inline(always)]
pub fn dwt_scale0(src: &[u16], w: usize, h: usize, bpc: u32) -> Bands<i16> {
    let w2 = w.div_ceil(2);
    let h2 = h.div_ceil(2);
    let shift = bpc.clamp(1, 16);
    let round: i32 = 1 << (shift - 1);
    let lo_bias = round.wrapping_sub(LO_SUM.wrapping_mul(round));
    let mut out = Bands {
        w: w2,
        h: h2,
        a: pool::i16s_dirty(w2 * h2),
        h_band: pool::i16s_dirty(w2 * h2),
        v: pool::i16s_dirty(w2 * h2),
        d: pool::i16s_dirty(w2 * h2),
    };
    let mut tlo = vec![0i16; w];
    let mut thi = vec![0i16; w];
    for i in 0..h2 {
        let t = taps(i, h);
        let r0 = &src[t[0] * w..t[0] * w + w];
        let r1 = &src[t[1] * w..t[1] * w + w];
        let r2 = &src[t[2] * w..t[2] * w + w];
        let r3 = &src[t[3] * w..t[3] * w + w];
        for (((((lo, hi), &u0), &u1), &u2), &u3) in tlo
            .iter_mut()
            .zip(thi.iter_mut())
            .zip(r0)
            .zip(r1)
            .zip(r2)
            .zip(r3)
        {
            let (u0, u1, u2, u3) = (i32::from(u0), i32::from(u1), i32::from(u2), i32::from(u3));
            // 16-bit input can exceed i32 transiently; libvmaf wraps.
            let a = (LO[0].wrapping_mul(u0))
                .wrapping_add(LO[1].wrapping_mul(u1))
                .wrapping_add(LO[2].wrapping_mul(u2))
                .wrapping_add(LO[3].wrapping_mul(u3))
                .wrapping_add(lo_bias);
            let b = (HI[0].wrapping_mul(u0))
                .wrapping_add(HI[1].wrapping_mul(u1))
                .wrapping_add(HI[2].wrapping_mul(u2))
                .wrapping_add(HI[3].wrapping_mul(u3))
                .wrapping_add(round);
            *lo = (a >> shift) as i16;
            *hi = (b >> shift) as i16;
        }
        let row = i * w2..(i + 1) * w2;
        hpass16(&tlo, &mut out.a[row.clone()], &mut out.v[row.clone()]);
        hpass16(&thi, &mut out.h_band[row.clone()], &mut out.d[row]);
    }
    out
}

/// Rounding and shifts of the coarser levels, indexed by `scale - 1`.
const VP_ROUND: [i64; 3] = [0, 32768, 32768];
const VP_SHIFT: [u32; 3] = [0, 16, 16];
const HP_ROUND: [i64; 3] = [16384, 32768, 16384];
const HP_SHIFT: [u32; 3] = [15, 16, 15];

#[inline(always)]
fn hpass32(tmp: &[i32], lo_out: &mut [i32], hi_out: &mut [i32], round: i64, shift: u32) {
    let n = tmp.len();
    let half = lo_out.len();
    let filt = |t: [usize; 4], f: &[i32; 4]| -> i32 {
        let acc = i64::from(f[0]) * i64::from(tmp[t[0]])
            + i64::from(f[1]) * i64::from(tmp[t[1]])
            + i64::from(f[2]) * i64::from(tmp[t[2]])
            + i64::from(f[3]) * i64::from(tmp[t[3]]);
        // Only bits shift..shift+32 are kept: a logical shift will do.
        (((acc + round) as u64) >> shift) as i32
    };
    let end = interior_end(n).min(half);
    for j in (0..1.min(half)).chain(end..half) {
        let t = taps(j, n);
        lo_out[j] = filt(t, &LO);
        hi_out[j] = filt(t, &HI);
    }
    if end > 1 {
        let cnt = end - 1;
        let lo = &mut lo_out[1..end];
        let hi = &mut hi_out[1..end];
        let src = &tmp[1..1 + 2 * cnt + 2];
        for ((l, h), win) in lo
            .iter_mut()
            .zip(hi.iter_mut())
            .zip(src.chunks_exact(2).zip(src[2..].chunks_exact(2)).take(cnt))
        {
            let s0 = i64::from(win.0[0]);
            let s1 = i64::from(win.0[1]);
            let s2 = i64::from(win.1[0]);
            let s3 = i64::from(win.1[1]);
            let a = 15826 * s0 + 27411 * s1 + 7345 * s2 - 4240 * s3;
            let b = -4240 * s0 - 7345 * s1 + 27411 * s2 - 15826 * s3;
            *l = (((a + round) as u64) >> shift) as i32;
            *h = (((b + round) as u64) >> shift) as i32;
        }
    }
}

/// Levels 1..=3, from the previous approximation band (`w * h`, row-major).
#[inline(always)]
pub fn dwt_scale123(src: &[i32], w: usize, h: usize, scale: usize) -> Bands<i32> {
    let k = scale.clamp(1, 3) - 1;
    let w2 = w.div_ceil(2);
    let h2 = h.div_ceil(2);
    let (vr, vs, hr, hs) = (VP_ROUND[k], VP_SHIFT[k], HP_ROUND[k], HP_SHIFT[k]);
    let mut out = Bands {
        w: w2,
        h: h2,
        a: pool::i32s_dirty(w2 * h2),
        h_band: pool::i32s_dirty(w2 * h2),
        v: pool::i32s_dirty(w2 * h2),
        d: pool::i32s_dirty(w2 * h2),
    };
    let mut tlo = vec![0i32; w];
    let mut thi = vec![0i32; w];
    for i in 0..h2 {
        let t = taps(i, h);
        let r0 = &src[t[0] * w..t[0] * w + w];
        let r1 = &src[t[1] * w..t[1] * w + w];
        let r2 = &src[t[2] * w..t[2] * w + w];
        let r3 = &src[t[3] * w..t[3] * w + w];
        for (((((lo, hi), &s0), &s1), &s2), &s3) in tlo
            .iter_mut()
            .zip(thi.iter_mut())
            .zip(r0)
            .zip(r1)
            .zip(r2)
            .zip(r3)
        {
            let (s0, s1, s2, s3) = (i64::from(s0), i64::from(s1), i64::from(s2), i64::from(s3));
            let a = 15826 * s0 + 27411 * s1 + 7345 * s2 - 4240 * s3;
            let b = -4240 * s0 - 7345 * s1 + 27411 * s2 - 15826 * s3;
            // Bits vs..vs+32 survive the truncation: logical shifts.
            *lo = (((a + vr) as u64) >> vs) as i32;
            *hi = (((b + vr) as u64) >> vs) as i32;
        }
        let row = i * w2..(i + 1) * w2;
        hpass32(
            &tlo,
            &mut out.a[row.clone()],
            &mut out.v[row.clone()],
            hr,
            hs,
        );
        hpass32(&thi, &mut out.h_band[row.clone()], &mut out.d[row], hr, hs);
    }
    out
}

/// Level 1 straight from the 16-bit approximation band of level 0 (the
/// same as [`dwt_scale123`] on the widened band). Its vertical pass has no
/// rounding or shift, and with 16-bit input its sums stay below
/// 54822 * 2^15 < 2^31 in magnitude, so it runs in 32-bit lanes.
#[inline(always)]
pub fn dwt_scale1(src: &[i16], w: usize, h: usize) -> Bands<i32> {
    let w2 = w.div_ceil(2);
    let h2 = h.div_ceil(2);
    let (hr, hs) = (HP_ROUND[0], HP_SHIFT[0]);
    let mut out = Bands {
        w: w2,
        h: h2,
        a: pool::i32s_dirty(w2 * h2),
        h_band: pool::i32s_dirty(w2 * h2),
        v: pool::i32s_dirty(w2 * h2),
        d: pool::i32s_dirty(w2 * h2),
    };
    let mut tlo = vec![0i32; w];
    let mut thi = vec![0i32; w];
    for i in 0..h2 {
        let t = taps(i, h);
        let r0 = &src[t[0] * w..t[0] * w + w];
        let r1 = &src[t[1] * w..t[1] * w + w];
        let r2 = &src[t[2] * w..t[2] * w + w];
        let r3 = &src[t[3] * w..t[3] * w + w];
        for (((((lo, hi), &s0), &s1), &s2), &s3) in tlo
            .iter_mut()
            .zip(thi.iter_mut())
            .zip(r0)
            .zip(r1)
            .zip(r2)
            .zip(r3)
        {
            let (s0, s1, s2, s3) = (i32::from(s0), i32::from(s1), i32::from(s2), i32::from(s3));
            *lo = 15826 * s0 + 27411 * s1 + 7345 * s2 - 4240 * s3;
            *hi = -4240 * s0 - 7345 * s1 + 27411 * s2 - 15826 * s3;
        }
        let row = i * w2..(i + 1) * w2;
        hpass32(
            &tlo,
            &mut out.a[row.clone()],
            &mut out.v[row.clone()],
            hr,
            hs,
        );
        hpass32(&thi, &mut out.h_band[row.clone()], &mut out.d[row], hr, hs);
    }
    out
}

impl Bands<i16> {
    /// Return the buffers to the pool, keeping the approximation band.
    pub fn recycle_details(self) -> Vec<i16> {
        pool::put16(self.h_band);
        pool::put16(self.v);
        pool::put16(self.d);
        self.a
    }
}

impl Bands<i32> {
    /// Return the buffers to the pool, keeping the approximation band.
    pub fn recycle_details(self) -> Vec<i32> {
        pool::put32(self.h_band);
        pool::put32(self.v);
        pool::put32(self.d);
        self.a
    }
}
