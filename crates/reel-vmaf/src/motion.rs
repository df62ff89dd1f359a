//! Integer motion, bit-exact with libvmaf's `integer_motion` (the current
//! extractor, which blurs the *difference* of two reference frames).
//!
//! libvmaf filters `prev - cur` with a separable 5-tap filter: a vertical
//! pass rounded to 16-bit precision, then a horizontal pass, then sums the
//! absolute values. Edges mirror without repeating the edge sample
//! (`-1 -> 1`, `n -> n - 2`).
//!
//! The per-frame data ([`motion_blur`]) is a copy of the reference luma
//! plane (plus its bit depth); [`motion_sad`] blurs the difference of two
//! frames directly, as libvmaf does.
use crate::Plane;

const FILTER: [u32; 5] = [3571, 16004, 26386, 16004, 3571];

/// Largest value libvmaf lets a motion score reach (`motion_max_val`).
const MOTION_MAX: f64 = 10000.0;

use crate::vif::mirror;

/// What motion keeps of each reference frame to compare with the next: the
/// luma samples (`width * height` values) followed by one value holding the
/// bit depth. [`motion_sad`] blurs the difference of two of them.
pub type MotionFrame = Vec<u16>;

/// The per-frame half of libvmaf's motion: a copy of the reference luma
/// plane (and its bit depth) to blur against the next frame's.
pub fn motion_blur(reference: &Plane) -> MotionFrame {
    let n = reference.width * reference.height;
    let mut out = Vec::with_capacity(n + 1);
    if reference.data.len() >= n {
        out.extend_from_slice(&reference.data[..n]);
    } else {
        out.resize(n, 0);
    }
    out.push(u16::from(reference.bpc.clamp(1, 16)));
    out
}

/// The vertical pass of `a - b` at row `i`, rounded: libvmaf's
/// `((sum(prev) << up) - (sum(cur) << up) + 32768) >> 16` with
/// `up = 16 - bpc`, which is `(sum(a - b) + 2^(bpc-1)) >> bpc`.
#[inline(always)]
fn vertical_row(a: &[u16], b: &[u16], i: usize, w: usize, h: usize, bpc: u32, y: &mut [i32]) {
    let row = |k: isize| -> std::ops::Range<usize> {
        let r = mirror(i as isize + k, h);
        r * w..r * w + w
    };
    let (rm2, rm1, r0, rp1, rp2) = (row(-2), row(-1), row(0), row(1), row(2));
    let (Some(am2), Some(am1), Some(a0), Some(ap1), Some(ap2)) =
        (a.get(rm2.clone()), a.get(rm1.clone()), a.get(r0.clone()), a.get(rp1.clone()), a.get(rp2.clone()))
    else {
        return;
    };
    let (Some(bm2), Some(bm1), Some(b0), Some(bp1), Some(bp2)) =
        (b.get(rm2), b.get(rm1), b.get(r0), b.get(rp1), b.get(rp2))
    else {
        return;
    };
    let (f0, f1, f2) = (FILTER[0] as i32, FILTER[1] as i32, FILTER[2] as i32);
    if bpc <= 15 {
        // |sum| < 2^31 here.
        let round = 1i32 << (bpc - 1);
        for (j, o) in y.iter_mut().enumerate().take(w) {
            let d = |p: &[u16], q: &[u16]| i32::from(p[j]) - i32::from(q[j]);
            let s = f0 * (d(am2, bm2) + d(ap2, bp2)) + f1 * (d(am1, bm1) + d(ap1, bp1)) + f2 * d(a0, b0);
            *o = (s + round) >> bpc;
        }
    } else {
        let round = 1i64 << (bpc - 1);
        for (j, o) in y.iter_mut().enumerate().take(w) {
            let d = |p: &[u16], q: &[u16]| i64::from(p[j]) - i64::from(q[j]);
            let s = i64::from(f0) * (d(am2, bm2) + d(ap2, bp2))
                + i64::from(f1) * (d(am1, bm1) + d(ap1, bp1))
                + i64::from(f2) * d(a0, b0);
            *o = ((s + round) >> bpc) as i32;
        }
    }
}

/// Sum of absolute values of the blurred difference `a - b`, the raw SAD.
#[inline(always)]
fn motion_sad_impl(a: &[u16], b: &[u16], w: usize, h: usize, bpc: u32) -> u64 {
    // Row of vertical results with two mirrored samples on each side.
    let mut y = vec![0i32; w + 4];
    let mut sad = 0u64;
    for i in 0..h {
        vertical_row(a, b, i, w, h, bpc, &mut y[2..2 + w]);
        let yr = &y[2..2 + w];
        let any = yr.iter().fold(0i32, |acc, &v| acc | v);
        if any == 0 {
            continue;
        }
        let big = yr.iter().fold(0u32, |acc, &v| acc | v.unsigned_abs());
        for f in 1..=2usize {
            y[2 - f] = y[2 + mirror(-(f as isize), w)];
            y[2 + w - 1 + f] = y[2 + mirror((w - 1 + f) as isize, w)];
        }
        let mut row_sad = 0u32;
        if big < 1 << 15 {
            // |y| < 2^15: every sum fits in i32 (the filter sums to 2^16).
            let (f0, f1, f2) = (FILTER[0] as i32, FILTER[1] as i32, FILTER[2] as i32);
            for (((((&a, &b), &c), &d), &e), _) in
                y.iter().zip(&y[1..]).zip(&y[2..]).zip(&y[3..]).zip(&y[4..]).zip(0..w)
            {
                let acc = f0 * (a + e) + f1 * (b + d) + f2 * c;
                row_sad = row_sad.wrapping_add(((acc + 32768) >> 16).unsigned_abs());
            }
            sad += u64::from(row_sad);
            continue;
        }
        let f0 = i64::from(FILTER[0] as i32);
        let f1 = i64::from(FILTER[1] as i32);
        let f2 = i64::from(FILTER[2] as i32);
        for win in y.windows(5) {
            let acc = f0 * i64::from(win[0] + win[4]) + f1 * i64::from(win[1] + win[3]) + f2 * i64::from(win[2]);
            let v = ((acc + 32768) >> 16) as i32;
            row_sad = row_sad.wrapping_add(v.unsigned_abs());
        }
        sad += u64::from(row_sad);
    }
    sad
}

reel_cpu::multiversion! {
    isa = crate::isa::isa;
    /// [`motion_sad_impl`] compiled for this CPU's widest build.
    fn motion_sad_built(a: &[u16], b: &[u16], w: usize, h: usize, bpc: u32) -> u64 {
        motion_sad_impl(a, b, w, h, bpc)
    }
}

fn motion_sad_raw(a: &[u16], b: &[u16], w: usize, h: usize) -> u64 {
    let n = w * h;
    if w == 0 || h == 0 || a.len() <= n || b.len() <= n {
        return 0;
    }
    let bpc = u32::from(a[n].clamp(1, 16));
    let (a, b) = (&a[..n], &b[..n]);
    motion_sad_built(a, b, w, h, bpc)
}

/// libvmaf's per-pair motion score between the blurred data of the previous
/// frame (`a`) and the current one (`b`): what it logs as
/// `integer_motion_sad` (and `integer_motion` in debug mode).
pub fn motion_sad(a: &MotionFrame, b: &MotionFrame, width: usize, height: usize) -> f64 {
    if width == 0 || height == 0 {
        return 0.0;
    }
    let sad = motion_sad_raw(a, b, width, height);
    let pixels = (width as u32).wrapping_mul(height as u32);
    (sad as f64 / 256.0 / f64::from(pixels)).min(MOTION_MAX)
}

/// libvmaf's `integer_motion2` for every frame of a sequence, given each
/// frame's [`motion_blur`]: 0 for the first frame, the smaller of the scores
/// to the previous and to the next frame in the middle, and the score to the
/// previous frame for the last.
pub fn motion2(blurred: &[Vec<u16>], width: usize, height: usize) -> Vec<f64> {
    let n = blurred.len();
    let sad: Vec<f64> = (0..n)
        .map(|i| if i == 0 { 0.0 } else { motion_sad(&blurred[i - 1], &blurred[i], width, height) })
        .collect();
    motion2_from_scores(&sad)
}

/// motion2 from the per-frame scores (`scores[0]` is ignored; `scores[i]` is
/// the motion from frame `i - 1` to frame `i`).
pub fn motion2_from_scores(scores: &[f64]) -> Vec<f64> {
    let n = scores.len();
    (0..n)
        .map(|i| match i {
            0 => 0.0,
            _ if i + 1 < n => scores[i].min(scores[i + 1]),
            _ => scores[i],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn motion2_rule() {
        // Frame 0 is 0, the middle takes the smaller neighbour score, the
        // last keeps its own (libvmaf's flush).
        assert_eq!(motion2_from_scores(&[0.0, 3.0, 1.0, 2.0, 5.0]), vec![0.0, 1.0, 1.0, 2.0, 5.0]);
        assert_eq!(motion2_from_scores(&[0.0]), vec![0.0]);
        assert_eq!(motion2_from_scores(&[0.0, 4.0]), vec![0.0, 4.0]);
        let frames: Vec<Plane> = (0..4u16)
            .map(|k| Plane::new((0..32 * 32).map(|i| (i as u16 * (k + 1)) % 256).collect(), 32, 32, 8))
            .collect();
        let blurs: Vec<Vec<u16>> = frames.iter().map(motion_blur).collect();
        let m2 = motion2(&blurs, 32, 32);
        let s: Vec<f64> = (1..4).map(|i| motion_sad(&blurs[i - 1], &blurs[i], 32, 32)).collect();
        assert_eq!(m2, vec![0.0, s[0].min(s[1]), s[1].min(s[2]), s[2]]);
    }
}
