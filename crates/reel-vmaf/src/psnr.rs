//! PSNR and SSIM of the luma plane, as libvmaf's `psnr` and `float_ssim`
//! features report them.

use crate::Plane;

/// PSNR of luma in dB, capped (libvmaf caps identical frames at
/// `6 * bpc + 12` dB rather than reporting infinity).
pub fn psnr(reference: &Plane, distorted: &Plane) -> f64 {
    let sse: u64 = reference
        .data
        .iter()
        .zip(&distorted.data)
        .map(|(&a, &b)| {
            let d = i64::from(a) - i64::from(b);
            (d * d) as u64
        })
        .sum();
    let n = (reference.width * reference.height).max(1) as f64;
    let peak = f64::from((1u32 << reference.bpc) - 1);
    let cap = 6.0 * f64::from(reference.bpc) + 12.0;
    if sse == 0 {
        return cap;
    }
    let mse = sse as f64 / n;
    (10.0 * (peak * peak / mse).log10()).min(cap)
}

/// Mean SSIM of luma (Wang et al.: 11x11 Gaussian window, σ = 1.5, K1 =
/// 0.01, K2 = 0.03), on samples scaled to 8 bits, after the customary
/// downsampling by `round(min(w, h) / 256)`.
pub fn ssim(reference: &Plane, distorted: &Plane) -> f64 {
    let scale = ((reference.width.min(reference.height) as f64 / 256.0).round() as usize).max(1);
    let to_f = |p: &Plane| -> Vec<f32> {
        let div = (1u32 << (p.bpc.saturating_sub(8))) as f32;
        p.data.iter().map(|&v| f32::from(v) / div).collect()
    };
    let (mut a, mut b) = (to_f(reference), to_f(distorted));
    let (mut w, mut h) = (reference.width, reference.height);
    if scale > 1 {
        (a, _, _) = decimate(&a, w, h, scale);
        let (bb, nw, nh) = decimate(&b, w, h, scale);
        b = bb;
        w = nw;
        h = nh;
    }
    const WIN: usize = 11;
    if w < WIN || h < WIN {
        return if a == b { 1.0 } else { 0.0 };
    }
    let g = gaussian(WIN, 1.5);
    let c1 = (0.01f64 * 255.0).powi(2);
    let c2 = (0.03f64 * 255.0).powi(2);
    // Separable valid-region filtering of a, b, a², b², ab.
    let ow = w - WIN + 1;
    let oh = h - WIN + 1;
    let mut rows = vec![[0f64; 5]; ow * h];
    for y in 0..h {
        let (ra, rb) = (&a[y * w..(y + 1) * w], &b[y * w..(y + 1) * w]);
        for x in 0..ow {
            let mut s = [0f64; 5];
            for (k, &gk) in g.iter().enumerate() {
                let (va, vb) = (f64::from(ra[x + k]), f64::from(rb[x + k]));
                s[0] += gk * va;
                s[1] += gk * vb;
                s[2] += gk * va * va;
                s[3] += gk * vb * vb;
                s[4] += gk * va * vb;
            }
            rows[y * ow + x] = s;
        }
    }
    let mut total = 0.0;
    for y in 0..oh {
        for x in 0..ow {
            let mut s = [0f64; 5];
            for (k, &gk) in g.iter().enumerate() {
                let r = &rows[(y + k) * ow + x];
                for i in 0..5 {
                    s[i] += gk * r[i];
                }
            }
            let (ma, mb) = (s[0], s[1]);
            let va = s[2] - ma * ma;
            let vb = s[3] - mb * mb;
            let cov = s[4] - ma * mb;
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
        }
    }
    total / (ow * oh) as f64
}

fn gaussian(n: usize, sigma: f64) -> Vec<f64> {
    let c = (n / 2) as f64;
    let g: Vec<f64> = (0..n).map(|i| (-((i as f64 - c).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = g.iter().sum::<f64>();
    // The 2-D window is the outer product, so each 1-D pass is normalised.
    g.into_iter().map(|v| v / s).collect()
}

/// Box-filters by `s x s` and keeps every `s`-th sample.
fn decimate(src: &[f32], w: usize, h: usize, s: usize) -> (Vec<f32>, usize, usize) {
    let (nw, nh) = (w / s, h / s);
    let mut out = Vec::with_capacity(nw * nh);
    let inv = 1.0 / (s * s) as f32;
    for y in 0..nh {
        for x in 0..nw {
            let mut acc = 0.0;
            for dy in 0..s {
                let row = &src[(y * s + dy) * w + x * s..(y * s + dy) * w + x * s + s];
                acc += row.iter().sum::<f32>();
            }
            out.push(acc * inv);
        }
    }
    (out, nw, nh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> u16) -> Plane {
        Plane::new((0..w * h).map(|i| f(i % w, i / w)).collect(), w, h, 8)
    }

    #[test]
    fn identical_frames_hit_the_caps() {
        let p = plane(64, 48, |x, y| ((x * 3 + y * 5) % 256) as u16);
        assert_eq!(psnr(&p, &p), 60.0);
        assert!((ssim(&p, &p) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn noise_lowers_both() {
        let a = plane(64, 48, |x, y| ((x * 3 + y * 5) % 200) as u16 + 20);
        let b = plane(64, 48, |x, y| {
            let v = ((x * 3 + y * 5) % 200) as u16 + 20;
            if (x * 7 + y * 13) % 5 == 0 { v + 9 } else { v }
        });
        let p = psnr(&a, &b);
        assert!(p > 20.0 && p < 40.0, "{p}");
        let s = ssim(&a, &b);
        assert!(s > 0.5 && s < 0.999, "{s}");
    }
}
