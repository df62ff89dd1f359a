//! Integer motion, bit-exact with libvmaf's `integer_motion` (the current
//! extractor, which blurs the *difference* of two reference frames).
//!
//! libvmaf filters `prev - cur` with a separable 5-tap filter: a vertical
//! pass rounded to 16-bit precision, then a horizontal pass, then sums the
//! absolute values. The vertical pass is linear and exact before its
//! rounding, so each frame's unrounded vertical sums can be computed on their
//! own (and in parallel); the pair step subtracts them, rounds, runs the
//! horizontal pass and sums. Edges mirror without repeating the edge sample
//! (`-1 -> 1`, `n -> n - 2`).
//!
//! The per-frame data ([`motion_blur`]) is the vertical sum scaled to a
//! common 32-bit range (`sum << (16 - bpc)`), stored as two `u16` planes:
//! the low halves of all samples, then the high halves (`2 * width * height`
//! values).
use crate::Plane;

const FILTER: [u32; 5] = [3571, 16004, 26386, 16004, 3571];

/// Largest value libvmaf lets a motion score reach (`motion_max_val`).
const MOTION_MAX: f64 = 10000.0;

/// Reflect an index into `0..n` without repeating the edge sample.
#[inline]
fn mirror(i: isize, n: usize) -> usize {
    let n = n as isize;
    let m = if i < 0 {
        -i
    } else if i >= n {
        2 * n - i - 2
    } else {
        i
    };
    m.clamp(0, (n - 1).max(0)) as usize
}

/// The per-frame half of libvmaf's motion: the reference frame's vertical
/// 5-tap sums, unrounded, scaled to 32 bits and split into a low-half plane
/// followed by a high-half plane (`2 * width * height` values).
/// What motion keeps of each reference frame to compare with the next.
pub type MotionFrame = Vec<u16>;

pub fn motion_blur(reference: &Plane) -> MotionFrame {
    let (w, h) = (reference.width, reference.height);
    let n = w * h;
    let mut out = vec![0u16; 2 * n];
    if w == 0 || h == 0 || reference.data.len() < n {
        return out;
    }
    let up = 16u32.saturating_sub(u32::from(reference.bpc.clamp(1, 16)));
    let data = &reference.data[..n];
    let (lo, hi) = out.split_at_mut(n);
    let mut acc = vec![0u32; w];
    for i in 0..h {
        acc.iter_mut().for_each(|a| *a = 0);
        for (k, &f) in FILTER.iter().enumerate() {
            let r = mirror(i as isize + k as isize - 2, h);
            let row = &data[r * w..r * w + w];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(f * u32::from(p));
            }
        }
        let lo_row = &mut lo[i * w..i * w + w];
        let hi_row = &mut hi[i * w..i * w + w];
        for ((a, l), hh) in acc.iter().zip(lo_row.iter_mut()).zip(hi_row.iter_mut()) {
            let v = a << up;
            *l = v as u16;
            *hh = (v >> 16) as u16;
        }
    }
    out
}

/// Sum of absolute values of the blurred difference `a - b`, the raw SAD.
fn motion_sad_raw(a: &[u16], b: &[u16], w: usize, h: usize) -> u64 {
    let n = w * h;
    if w == 0 || h == 0 || a.len() < 2 * n || b.len() < 2 * n {
        return 0;
    }
    let (alo, ahi) = a[..2 * n].split_at(n);
    let (blo, bhi) = b[..2 * n].split_at(n);
    // Row of vertical results with two mirrored samples on each side.
    let mut y = vec![0i32; w + 4];
    let mut sad = 0u64;
    for i in 0..h {
        let s = i * w..i * w + w;
        let mut any = 0i32;
        let mut big = 0u32;
        {
            let yr = &mut y[2..2 + w];
            for ((((o, &al), &ah), &bl), &bh) in yr
                .iter_mut()
                .zip(&alo[s.clone()])
                .zip(&ahi[s.clone()])
                .zip(&blo[s.clone()])
                .zip(&bhi[s.clone()])
            {
                let va = i64::from(u32::from(al) | (u32::from(ah) << 16));
                let vb = i64::from(u32::from(bl) | (u32::from(bh) << 16));
                let v = ((va - vb + 32768) >> 16) as i32;
                *o = v;
                any |= v;
                big |= v.unsigned_abs();
            }
        }
        if any == 0 {
            continue;
        }
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
