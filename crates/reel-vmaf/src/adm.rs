//! Integer ADM (detail loss), bit-exact with libvmaf's `integer_adm`.
//!
//! Both frames go through a four-level integer wavelet transform. At every
//! level the distorted detail bands are split into a part explained by the
//! reference (the "restored" detail) and an additive impairment; the
//! restored detail is weighted by a contrast sensitivity function, masked
//! by the impairment's local energy and pooled with a cube-root norm. The
//! score of a level is that pooled detail over the pooled CSF-weighted
//! reference detail, and `adm2` is the ratio of the sums over all levels.
//!
//! Default libvmaf options are implied: viewing distance 3 heights on a
//! 1080-line display and an enhancement gain limit of 100.
//!
//! libvmaf refuses frames of 32 samples or less in either direction. Such
//! frames are still scored here (with edge handling clamped so that every
//! access stays in bounds) but the numbers have no reference to match.
//!
//! Speed: the whole computation is written as `#[inline(always)]` scalar
//! loops that LLVM vectorises, compiled three times (AVX-512, AVX2, plain
//! x86-64) and chosen once at run time. Closures and iterator adapters are
//! kept out of the hot loops since they would be compiled without the SIMD
//! target features. The decoupling is done row by row into a three-row ring
//! consumed directly by the masking/pooling step.
use crate::Plane;

mod common;
mod dwt;
mod level0;
mod level123;

/// `adm2` (the model feature) and the per-scale scores.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AdmScore {
    pub adm2: f64,
    pub scale: [f64; 4],
}

/// Score `distorted` against `reference`. Both planes must have the same
/// dimensions and bit depth and hold `width * height` samples; otherwise
/// every field of the result is NaN.
pub fn adm(reference: &Plane, distorted: &Plane) -> AdmScore {
    let (w, h) = (reference.width, reference.height);
    let n = w.checked_mul(h).unwrap_or(0);
    if n == 0
        || distorted.width != w
        || distorted.height != h
        || reference.data.len() < n
        || distorted.data.len() < n
    {
        return AdmScore {
            adm2: f64::NAN,
            scale: [f64::NAN; 4],
        };
    }
    let bpc = u32::from(reference.bpc);
    let (rd, dd) = (&reference.data[..n], &distorted.data[..n]);
    score_built(rd, dd, w, h, bpc)
}

reel_cpu::multiversion! {
    isa = crate::isa::isa;
    /// [`score`] compiled for this CPU's widest build (the same code, inlined).
    fn score_built(rd: &[u16], dd: &[u16], w: usize, h: usize, bpc: u32) -> AdmScore {
        score(rd, dd, w, h, bpc)
    }
}

/// The whole computation for `w * h` samples of both frames.
#[inline(always)]
fn score(rd: &[u16], dd: &[u16], w: usize, h: usize, bpc: u32) -> AdmScore {
    let n = w * h;

    let mut num = 0.0f64;
    let mut den = 0.0f64;
    let mut scale = [0.0f64; 4];

    // Level 0: 16-bit bands straight from the samples.
    let r0 = dwt::dwt_scale0(rd, w, h, bpc);
    let d0 = dwt::dwt_scale0(dd, w, h, bpc);
    let den0 = level0::denominator(&r0);
    let num0 = level0::numerator(&r0, &d0);
    num += f64::from(num0);
    den += f64::from(den0);
    scale[0] = f64::from(num0) / f64::from(den0);

    // Levels 1..=3: 32-bit bands from the previous approximation.
    let (mut cw, mut ch) = (r0.w, r0.h);
    let ref16 = r0.recycle_details();
    let dis16 = d0.recycle_details();
    let mut ref_a = Vec::new();
    let mut dis_a = Vec::new();
    for (s, slot) in scale.iter_mut().enumerate().skip(1) {
        let (rb, db) = if s == 1 {
            (
                dwt::dwt_scale1(&ref16, cw, ch),
                dwt::dwt_scale1(&dis16, cw, ch),
            )
        } else {
            (
                dwt::dwt_scale123(&ref_a, cw, ch, s),
                dwt::dwt_scale123(&dis_a, cw, ch, s),
            )
        };
        let den_s = level123::denominator(&rb, s);
        let num_s = level123::numerator(&rb, &db, s);
        num += f64::from(num_s);
        den += f64::from(den_s);
        *slot = f64::from(num_s) / f64::from(den_s);
        cw = rb.w;
        ch = rb.h;
        common::pool::put32(std::mem::replace(&mut ref_a, rb.recycle_details()));
        common::pool::put32(std::mem::replace(&mut dis_a, db.recycle_details()));
    }
    common::pool::put16(ref16);
    common::pool::put16(dis16);
    common::pool::put32(ref_a);
    common::pool::put32(dis_a);

    let limit = 1e-10 * n as f64 / (1920.0 * 1080.0);
    let num = if num < limit { 0.0 } else { num };
    let den = if den < limit { 0.0 } else { den };
    let adm2 = if den == 0.0 { 1.0 } else { num / den };
    AdmScore { adm2, scale }
}
