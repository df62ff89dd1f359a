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

/// Mean SSIM of luma the way libvmaf's `float_ssim` computes it (Wang et
/// al.: 11x11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03, on samples
/// scaled to 8 bits, after box-filtered downsampling by `round(min(w, h) /
/// 256)`, single-precision steps). It agrees with libvmaf to about 1e-4
/// (the tests allow 5e-4), not bit for bit: VMAF is the exact metric here.
pub fn ssim(reference: &Plane, distorted: &Plane) -> f64 {
    let (w, h) = (reference.width, reference.height);
    let scale = ((w.min(h) as f32 / 256.0).round() as usize).max(1);
    let to_f = |p: &Plane| -> Vec<f32> {
        let div = (1u32 << p.bpc.saturating_sub(8)) as f32;
        p.data.iter().map(|&v| f32::from(v) / div).collect()
    };
    let (mut a, mut b) = (to_f(reference), to_f(distorted));
    let (mut w, mut h) = (w, h);
    if scale > 1 {
        let (na, nw, nh) = decimate(&a, w, h, scale);
        let (nb, _, _) = decimate(&b, w, h, scale);
        (a, b, w, h) = (na, nb, nw, nh);
    }
    const WIN: usize = 11;
    if w < WIN || h < WIN {
        return if a == b { 1.0 } else { 0.0 };
    }
    let g = gaussian();
    let c1 = (0.01f32 * 255.0) * (0.01f32 * 255.0);
    let c2 = (0.03f32 * 255.0) * (0.03f32 * 255.0);
    let sq = |x: &[f32], y: &[f32]| -> Vec<f32> { x.iter().zip(y).map(|(p, q)| p * q).collect() };
    let mu_a = convolve(&a, w, h, &g);
    let mu_b = convolve(&b, w, h, &g);
    let s_aa = convolve(&sq(&a, &a), w, h, &g);
    let s_bb = convolve(&sq(&b, &b), w, h, &g);
    let s_ab = convolve(&sq(&a, &b), w, h, &g);
    let n = mu_a.len();
    let mut total = 0f64;
    for i in 0..n {
        let (ma, mb) = (mu_a[i], mu_b[i]);
        let va = (s_aa[i] - ma * ma).max(0.0);
        let vb = (s_bb[i] - mb * mb).max(0.0);
        let cov = s_ab[i] - ma * mb;
        let root = f64::from(va * vb).sqrt();
        let l = (2.0 * f64::from(ma) * f64::from(mb) + f64::from(c1)) / f64::from(ma * ma + mb * mb + c1);
        let c = (2.0 * root + f64::from(c2)) / f64::from(va + vb + c2);
        let s = (f64::from(cov) + f64::from(c2) / 2.0) / (root + f64::from(c2) / 2.0);
        total += l * c * s;
    }
    f64::from((total / n as f64) as f32)
}

/// The normalised 11-tap Gaussian (σ = 1.5), in single precision.
fn gaussian() -> [f32; 11] {
    let mut g = [0f64; 11];
    for (i, v) in g.iter_mut().enumerate() {
        let d = i as f64 - 5.0;
        *v = (-(d * d) / (2.0 * 1.5 * 1.5)).exp();
    }
    let sum: f64 = g.iter().sum();
    g.map(|v| (v / sum) as f32)
}

/// Separable "valid" convolution (the window inside the image only):
/// horizontal then vertical, each tap sum in double, stored as float.
fn convolve(img: &[f32], w: usize, h: usize, k: &[f32; 11]) -> Vec<f32> {
    let (dw, dh) = (w - 10, h - 10);
    let mut rows = vec![0f32; dw * h];
    for y in 0..h {
        let src = &img[y * w..(y + 1) * w];
        let dst = &mut rows[y * dw..(y + 1) * dw];
        for (x, d) in dst.iter_mut().enumerate() {
            let mut sum = 0f64;
            for (t, &kv) in k.iter().enumerate() {
                sum += f64::from(src[x + t] * kv);
            }
            *d = sum as f32;
        }
    }
    let mut out = vec![0f32; dw * dh];
    for y in 0..dh {
        for x in 0..dw {
            let mut sum = 0f64;
            for (t, &kv) in k.iter().enumerate() {
                sum += f64::from(rows[(y + t) * dw + x] * kv);
            }
            out[y * dw + x] = sum as f32;
        }
    }
    out
}

/// Downsamples by `f`: an `f x f` box around every `f`-th sample (mirrored
/// at the edges), libvmaf's size rule `w / f + (w & 1)`.
fn decimate(src: &[f32], w: usize, h: usize, f: usize) -> (Vec<f32>, usize, usize) {
    let (sw, sh) = (w / f + (w & 1), h / f + (h & 1));
    let weight = 1.0f32 / (f * f) as f32;
    let half = (f / 2) as isize;
    let (lo, hi) = (-half, half - if f.is_multiple_of(2) { 1 } else { 0 });
    let mirror = |i: isize, n: usize| -> usize {
        let n = n as isize;
        let m = if i < 0 { -1 - i } else if i >= n { n - (i - n) - 1 } else { i };
        m.clamp(0, n - 1) as usize
    };
    let mut out = Vec::with_capacity(sw * sh);
    for y in 0..sh {
        for x in 0..sw {
            let (cx, cy) = ((x * f) as isize, (y * f) as isize);
            let mut sum = 0f64;
            for v in lo..=hi {
                let row = mirror(cy + v, h) * w;
                for u in lo..=hi {
                    sum += f64::from(src[row + mirror(cx + u, w)] * weight);
                }
            }
            out.push(sum as f32);
        }
    }
    (out, sw, sh)
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
