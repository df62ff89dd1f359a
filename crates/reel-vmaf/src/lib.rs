//! `reel-vmaf` measures video quality the way Netflix's libvmaf does, in
//! plain Rust: the integer VIF (four scales), ADM and motion features of the
//! default model, the `vmaf_v0.6.1` support-vector regression, and PSNR and
//! SSIM beside them. Frames are scored in parallel.
//!
//! This crate is an engine: it takes decoded frames (the luma plane, 8 to
//! 16 bits) and returns numbers. It reads no files and runs no programs;
//! the `reel` binary decodes inputs and hands frames in.
//!
//! ```
//! use reel_vmaf::{Model, Plane, Scorer};
//! let frame = |shift: u16| {
//!     let data = (0..64 * 48).map(|i| ((i % 64) as u16 * 3 + (i / 64) as u16 + shift) % 256).collect();
//!     Plane::new(data, 64, 48, 8)
//! };
//! let mut scorer = Scorer::new(Model::v0_6_1());
//! scorer.push(vec![(frame(0), frame(0)), (frame(1), frame(1))])?;
//! let report = scorer.finish();
//! assert_eq!(report.frames.len(), 2);
//! assert!(report.pooled.mean > 90.0);
//! # Ok::<(), reel_vmaf::Error>(())
//! ```

mod adm;
mod isa;
mod model;
mod motion;
mod psnr;
mod vif;

use rayon::prelude::*;
use serde::Serialize;

pub use adm::{adm, AdmScore};
pub use model::{Features, Model};
pub use motion::{motion2, motion2_from_scores, motion_blur, motion_sad, MotionFrame};
pub use psnr::{psnr, ssim};
pub use vif::{vif, VifScore};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("frame {index}: {why}")]
    Frame { index: usize, why: String },
    #[error("model: {0}")]
    Model(String),
}

/// One plane of samples, row-major, `width * height` values. 8-bit input
/// is widened to `u16`; `bpc` says how many bits are significant.
#[derive(Debug, Clone)]
pub struct Plane {
    pub data: Vec<u16>,
    pub width: usize,
    pub height: usize,
    pub bpc: u8,
}

impl Plane {
    pub fn new(data: Vec<u16>, width: usize, height: usize, bpc: u8) -> Self {
        debug_assert_eq!(data.len(), width * height);
        Plane { data, width, height, bpc }
    }

    pub fn at(&self, x: usize, y: usize) -> u16 {
        self.data[y * self.width + x]
    }
}

/// Everything measured on one frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FrameScore {
    pub frame: usize,
    pub vmaf: f64,
    pub adm2: f64,
    pub motion2: f64,
    pub vif_scale0: f64,
    pub vif_scale1: f64,
    pub vif_scale2: f64,
    pub vif_scale3: f64,
    pub psnr_y: f64,
    pub ssim: f64,
}

/// VMAF pooled over the frames, libvmaf's way (the harmonic mean is taken
/// of `score + 1`, minus one, so a zero frame does not blow it up).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Pooled {
    pub mean: f64,
    pub harmonic_mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Pooled {
    pub fn of(scores: &[f64]) -> Pooled {
        if scores.is_empty() {
            return Pooled::default();
        }
        let n = scores.len() as f64;
        Pooled {
            mean: scores.iter().sum::<f64>() / n,
            harmonic_mean: n / scores.iter().map(|s| 1.0 / (s + 1.0)).sum::<f64>() - 1.0,
            min: scores.iter().copied().fold(f64::INFINITY, f64::min),
            max: scores.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub pooled: Pooled,
    pub psnr_y: f64,
    pub ssim: f64,
    pub frames: Vec<FrameScore>,
}

/// What a frame yields before motion (which needs its neighbours) is known.
struct Partial {
    vif: VifScore,
    adm: AdmScore,
    psnr: f64,
    ssim: f64,
    /// Motion against the previous reference frame (0 for the first).
    motion_prev: f64,
}

/// Scores a sequence of (reference, distorted) frame pairs, batch by batch,
/// each batch in parallel. Motion links each frame to the one before, so
/// batches must arrive in order.
pub struct Scorer {
    model: Model,
    with_ssim: bool,
    prev_blur: Option<MotionFrame>,
    frames: Vec<Partial>,
    size: Option<(usize, usize, u8)>,
}

impl Scorer {
    pub fn new(model: Model) -> Scorer {
        Scorer { model, with_ssim: true, prev_blur: None, frames: Vec::new(), size: None }
    }

    /// SSIM costs about as much as VMAF; callers that only want VMAF (the
    /// ladder search) turn it off.
    pub fn without_ssim(mut self) -> Scorer {
        self.with_ssim = false;
        self
    }

    pub fn frames_scored(&self) -> usize {
        self.frames.len()
    }

    /// Scores the next frames. Every pair must match in size and depth,
    /// with each other and with earlier frames.
    pub fn push(&mut self, pairs: Vec<(Plane, Plane)>) -> Result<(), Error> {
        if pairs.is_empty() {
            return Ok(());
        }
        let first = self.frames.len();
        for (i, (r, d)) in pairs.iter().enumerate() {
            let index = first + i;
            let shape = (r.width, r.height, r.bpc);
            if (d.width, d.height, d.bpc) != shape {
                return Err(Error::Frame {
                    index,
                    why: format!(
                        "reference is {}x{} at {} bits but distorted is {}x{} at {} bits; scale the distorted video to the reference first",
                        r.width, r.height, r.bpc, d.width, d.height, d.bpc
                    ),
                });
            }
            if r.data.len() != r.width * r.height || d.data.len() != d.width * d.height {
                return Err(Error::Frame { index, why: "plane size does not match its width and height".into() });
            }
            if r.width < 16 || r.height < 16 {
                return Err(Error::Frame { index, why: format!("{}x{} is too small (16x16 at least)", r.width, r.height) });
            }
            if !(8..=16).contains(&r.bpc) {
                return Err(Error::Frame { index, why: format!("{} bits per sample is not supported (8 to 16)", r.bpc) });
            }
            match self.size {
                None => self.size = Some(shape),
                Some(s) if s != shape => {
                    return Err(Error::Frame { index, why: "frame size or depth changed mid-sequence".into() })
                }
                Some(_) => {}
            }
        }
        let with_ssim = self.with_ssim;
        let computed: Vec<(Partial, MotionFrame)> = pairs
            .par_iter()
            .map(|(r, d)| {
                let blur = motion_blur(r);
                let p = Partial {
                    vif: vif(r, d),
                    adm: adm(r, d),
                    psnr: psnr(r, d),
                    ssim: if with_ssim { ssim(r, d) } else { f64::NAN },
                    motion_prev: 0.0,
                };
                (p, blur)
            })
            .collect();
        let blurs: Vec<&MotionFrame> = computed.iter().map(|(_, b)| b).collect();
        let (w, h) = (pairs[0].0.width, pairs[0].0.height);
        let motions: Vec<f64> = (0..computed.len())
            .into_par_iter()
            .map(|i| {
                let prev = if i == 0 { self.prev_blur.as_ref() } else { Some(blurs[i - 1]) };
                prev.map_or(0.0, |p| motion_sad(p, blurs[i], w, h))
            })
            .collect();
        let mut last = None;
        for ((mut p, blur), m) in computed.into_iter().zip(motions) {
            p.motion_prev = m;
            self.frames.push(p);
            last = Some(blur);
        }
        if last.is_some() {
            self.prev_blur = last;
        }
        Ok(())
    }

    /// Pools what was pushed. motion2 of a frame is the smaller of its
    /// motion to the frame before and from it to the frame after.
    pub fn finish(self) -> Report {
        let n = self.frames.len();
        let frames: Vec<FrameScore> = (0..n)
            .map(|i| {
                let p = &self.frames[i];
                let motion2 = match self.frames.get(i + 1) {
                    Some(next) => p.motion_prev.min(next.motion_prev),
                    None => p.motion_prev,
                };
                let features = Features { adm2: p.adm.adm2, motion2, vif: p.vif.scale };
                FrameScore {
                    frame: i,
                    vmaf: self.model.predict(&features),
                    adm2: p.adm.adm2,
                    motion2,
                    vif_scale0: p.vif.scale[0],
                    vif_scale1: p.vif.scale[1],
                    vif_scale2: p.vif.scale[2],
                    vif_scale3: p.vif.scale[3],
                    psnr_y: p.psnr,
                    ssim: p.ssim,
                }
            })
            .collect();
        let vmaf: Vec<f64> = frames.iter().map(|f| f.vmaf).collect();
        let mean_of = |f: fn(&FrameScore) -> f64| {
            if n == 0 { 0.0 } else { frames.iter().map(f).sum::<f64>() / n as f64 }
        };
        Report {
            model: self.model.name().to_string(),
            pooled: Pooled::of(&vmaf),
            psnr_y: mean_of(|f| f.psnr_y),
            ssim: mean_of(|f| f.ssim),
            frames,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmonic_mean_is_libvmafs() {
        let p = Pooled::of(&[0.0, 100.0]);
        assert!((p.harmonic_mean - (2.0 / (1.0 + 1.0 / 101.0) - 1.0)).abs() < 1e-12);
        assert_eq!(p.min, 0.0);
        assert_eq!(p.mean, 50.0);
    }

    #[test]
    fn mismatched_sizes_are_refused() {
        let a = Plane::new(vec![0; 32 * 32], 32, 32, 8);
        let b = Plane::new(vec![0; 16 * 16], 16, 16, 8);
        let mut s = Scorer::new(Model::v0_6_1());
        let err = s.push(vec![(a, b)]).unwrap_err();
        assert!(err.to_string().contains("scale the distorted"), "{err}");
    }
}
