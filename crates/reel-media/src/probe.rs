//! What a mezzanine file holds, from ffprobe.

use crate::{MediaError, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct Probe {
    pub width: u32,
    pub height: u32,
    pub pix_fmt: String,
    pub bits: u8,
    pub fps: f64,
    pub duration_s: f64,
    pub frames: Option<u64>,
    pub has_audio: bool,
}

/// Finds ffprobe: beside `$REEL_FFMPEG` if set, else on `PATH`.
pub fn find_ffprobe() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REEL_FFPROBE") {
        return Ok(PathBuf::from(p));
    }
    if let Ok(ff) = crate::find_ffmpeg() {
        let beside = ff.with_file_name("ffprobe");
        if beside.is_file() {
            return Ok(beside);
        }
    }
    let path = std::env::var_os("PATH").ok_or(MediaError::FfmpegMissing)?;
    std::env::split_paths(&path)
        .map(|d| d.join("ffprobe"))
        .find(|p| p.is_file())
        .ok_or(MediaError::FfmpegMissing)
}

#[derive(Deserialize)]
struct Out {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Stream {
    codec_type: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    pix_fmt: Option<String>,
    bits_per_raw_sample: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    nb_frames: Option<String>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct Format {
    duration: Option<String>,
}

fn rate(s: &str) -> Option<f64> {
    let (a, b) = s.split_once('/')?;
    let (a, b): (f64, f64) = (a.parse().ok()?, b.parse().ok()?);
    (b > 0.0 && a > 0.0).then_some(a / b)
}

/// Probes `path`'s first video stream. A file ffprobe cannot read, or one
/// without video, is a clear error.
pub fn probe_video(path: &Path) -> Result<Probe> {
    let bad = |what: String| MediaError::BadInput { path: path.to_path_buf(), what };
    if !path.is_file() {
        return Err(bad("does not exist or is not a file".into()));
    }
    let ffprobe = find_ffprobe()?;
    let out = Command::new(&ffprobe)
        .args(["-v", "error", "-show_entries"])
        .arg("stream=codec_type,width,height,pix_fmt,bits_per_raw_sample,avg_frame_rate,r_frame_rate,nb_frames,duration:format=duration")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .map_err(|e| MediaError::Io { path: ffprobe.clone(), source: e })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(bad(format!("is not a readable video ({})", err.lines().last().unwrap_or("ffprobe failed").trim())));
    }
    let parsed: Out = serde_json::from_slice(&out.stdout).map_err(|e| bad(format!("ffprobe output unreadable: {e}")))?;
    let has_audio = parsed.streams.iter().any(|s| s.codec_type.as_deref() == Some("audio"));
    let v = parsed
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .ok_or_else(|| bad("has no video stream".into()))?;
    let (width, height) = match (v.width, v.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(bad("video stream has no frame size".into())),
    };
    let pix_fmt = v.pix_fmt.clone().unwrap_or_else(|| "yuv420p".into());
    let bits = v
        .bits_per_raw_sample
        .as_deref()
        .and_then(|b| b.parse().ok())
        .or_else(|| crate::frames::PixFmt::parse(&pix_fmt).map(|f| f.bpc))
        .unwrap_or(8);
    let fps = v.avg_frame_rate.as_deref().and_then(rate).or_else(|| v.r_frame_rate.as_deref().and_then(rate)).unwrap_or(25.0);
    let duration_s = v
        .duration
        .as_deref()
        .or(parsed.format.as_ref().and_then(|f| f.duration.as_deref()))
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    let frames = v.nb_frames.as_deref().and_then(|n| n.parse().ok());
    Ok(Probe { width, height, pix_fmt, bits, fps, duration_s, frames, has_audio })
}
