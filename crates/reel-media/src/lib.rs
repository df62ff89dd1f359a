//! Media packaging: turns a source into HLS renditions (H.264 + AAC in
//! fragmented MP4, segments aligned across renditions) and describes what it
//! wrote, for the catalog to register.
//!
//! Encoding runs Debian's `ffmpeg` as a subprocess; this crate knows nothing
//! of HTTP or the database. It packages generated test sources (the demo
//! catalog) and runs the ingest pipeline ([`ingest`]: probe, chunk at scene
//! changes, candidate encodes scored with VMAF, per-title ladder from the
//! convex hull, CMAF for HLS and DASH).

pub mod dash;
pub mod frames;
mod hls;
pub mod ingest;
pub mod ladder;
pub mod probe;
pub mod quality;
mod source;

pub use hls::{describe_package, describe_renditions, read_media_playlist, MediaPlaylist, PackagedRendition};
pub use source::{package_test_source, Pattern, TestSource};

use std::path::PathBuf;

/// One rung of a bitrate ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LadderStep {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
}

/// The fixed ladder used for demo titles: three renditions, 360p to 1080p.
pub const DEMO_LADDER: [LadderStep; 3] = [
    LadderStep { name: "1080p", width: 1920, height: 1080, video_kbps: 3000 },
    LadderStep { name: "720p", width: 1280, height: 720, video_kbps: 1500 },
    LadderStep { name: "360p", width: 640, height: 360, video_kbps: 500 },
];

/// Segment length in seconds; keyframes are forced on this grid so segments
/// line up across renditions and the player can switch at any boundary.
pub const SEGMENT_SECONDS: u32 = 4;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    #[error("ffmpeg was not found: install it (apt-get install ffmpeg) or set REEL_FFMPEG to its path")]
    FfmpegMissing,
    #[error("ffmpeg failed ({status}): {stderr}")]
    Ffmpeg { status: String, stderr: String },
    #[error("{path}: {what}")]
    BadInput { path: PathBuf, what: String },
    #[error("package in {dir} is incomplete: {what}")]
    Incomplete { dir: PathBuf, what: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, MediaError>;

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> MediaError {
    let path = path.into();
    move |source| MediaError::Io { path, source }
}

/// Finds ffmpeg: `$REEL_FFMPEG`, else `ffmpeg` on `PATH`.
pub fn find_ffmpeg() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REEL_FFMPEG") {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(MediaError::FfmpegMissing) };
    }
    let path = std::env::var_os("PATH").ok_or(MediaError::FfmpegMissing)?;
    std::env::split_paths(&path)
        .map(|d| d.join("ffmpeg"))
        .find(|p| p.is_file())
        .ok_or(MediaError::FfmpegMissing)
}

/// Runs an ffmpeg command to completion; a failure carries ffmpeg's last
/// words, and a missing binary says how to install it.
pub(crate) async fn run_ffmpeg(mut cmd: tokio::process::Command, input: &std::path::Path) -> Result<()> {
    let out = cmd.output().await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => MediaError::FfmpegMissing,
        _ => MediaError::Io { path: input.to_path_buf(), source: e },
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(MediaError::Ffmpeg { status: out.status.to_string(), stderr: last_lines(&stderr) });
    }
    Ok(())
}

/// The last two non-empty lines of a tool's output, for one-line errors.
pub(crate) fn last_lines(s: &str) -> String {
    s.lines().rev().filter(|l| !l.trim().is_empty()).take(2).collect::<Vec<_>>().join(" | ")
}
