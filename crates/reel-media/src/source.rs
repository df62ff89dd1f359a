//! Generated test sources packaged as HLS: the demo catalog's video, made
//! offline on first start from ffmpeg's lavfi test patterns.

use crate::{describe_package, io_err, LadderStep, PackagedRendition, Result, SEGMENT_SECONDS};
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// A moving lavfi pattern; each looks different enough to tell titles apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    TestSrc2,
    Life,
    CellAuto,
    Gradients,
    Sierpinski,
    Mandelbrot,
    TestSrc,
}

impl Pattern {
    fn lavfi(self) -> &'static str {
        match self {
            Pattern::TestSrc2 => "testsrc2=",
            Pattern::Life => "life=mold=10:ratio=0.1:death_color=#101030:life_color=#ff8040:",
            Pattern::CellAuto => "cellauto=rule=110:",
            Pattern::Gradients => "gradients=speed=0.03:",
            Pattern::Sierpinski => "sierpinski=",
            Pattern::Mandelbrot => "mandelbrot=",
            Pattern::TestSrc => "testsrc=",
        }
    }
}

/// A generated source: a pattern tinted by a hue shift, with a beeping tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TestSource {
    pub pattern: Pattern,
    pub hue_degrees: i32,
    pub tone_hz: u32,
    pub duration_s: u32,
}

impl TestSource {
    /// A stable name for this source and ladder, used as the cache key.
    fn cache_key(&self, ladder: &[LadderStep]) -> String {
        let steps: Vec<String> = ladder.iter().map(|s| format!("{}x{}@{}", s.width, s.height, s.video_kbps)).collect();
        format!(
            "v2-{:?}-h{}-t{}-d{}-s{}-{}",
            self.pattern,
            self.hue_degrees,
            self.tone_hz,
            self.duration_s,
            SEGMENT_SECONDS,
            steps.join("_")
        )
        .to_lowercase()
    }
}

/// Packages `src` into `out_dir` (one folder per ladder step). A finished
/// package already in `out_dir` is kept; with `cache`, a package made
/// before for the same source and ladder is copied instead of re-encoded.
pub async fn package_test_source(
    ffmpeg: &Path,
    src: &TestSource,
    ladder: &[LadderStep],
    out_dir: &Path,
    cache: Option<&Path>,
) -> Result<Vec<PackagedRendition>> {
    if let Ok(done) = describe_package(out_dir, ladder) {
        return Ok(done);
    }
    match cache {
        Some(cache) => {
            let cached = cache.join(src.cache_key(ladder));
            if describe_package(&cached, ladder).is_err() {
                encode_atomically(ffmpeg, src, ladder, &cached).await?;
            }
            replace_dir(out_dir)?;
            copy_tree(&cached, out_dir)?;
        }
        None => encode_atomically(ffmpeg, src, ladder, out_dir).await?,
    }
    describe_package(out_dir, ladder)
}

/// Encodes into a sibling `.partial` folder and renames it into place, so a
/// crash never leaves a half-written package under the final name.
async fn encode_atomically(ffmpeg: &Path, src: &TestSource, ladder: &[LadderStep], dir: &Path) -> Result<()> {
    let partial = dir.with_extension("partial");
    replace_dir(&partial)?;
    for step in ladder {
        std::fs::create_dir_all(partial.join(step.name)).map_err(io_err(&partial))?;
    }
    run_ffmpeg(ffmpeg, src, ladder, &partial).await?;
    describe_package(&partial, ladder)?;
    replace_dir(dir)?;
    std::fs::remove_dir(dir).map_err(io_err(dir))?;
    std::fs::rename(&partial, dir).map_err(io_err(dir))?;
    Ok(())
}

async fn run_ffmpeg(ffmpeg: &Path, src: &TestSource, ladder: &[LadderStep], dir: &Path) -> Result<()> {
    let n = ladder.len();
    let fps = 24;
    let gop = fps * SEGMENT_SECONDS;
    let mut graph = format!("[0:v]hue=h={},split={n}", src.hue_degrees);
    for i in 0..n {
        graph.push_str(&format!("[s{i}]"));
    }
    for (i, step) in ladder.iter().enumerate() {
        graph.push_str(&format!(";[s{i}]scale={}:{}:flags=bicubic[v{i}]", step.width, step.height));
    }
    let mut cmd = Command::new(ffmpeg);
    cmd.current_dir(dir)
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-t", &src.duration_s.to_string(), "-f", "lavfi", "-i"])
        .arg(format!("{}s=640x360:r={fps}", src.pattern.lavfi()))
        .args(["-t", &src.duration_s.to_string(), "-f", "lavfi", "-i"])
        .arg(format!("sine=frequency={}:beep_factor=4:sample_rate=48000", src.tone_hz))
        .args(["-filter_complex", &graph]);
    for i in 0..n {
        cmd.args(["-map", &format!("[v{i}]")]);
    }
    for _ in 0..n {
        cmd.args(["-map", "1:a"]);
    }
    cmd.args(["-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "high", "-pix_fmt", "yuv420p"])
        .args(["-g", &gop.to_string(), "-keyint_min", &gop.to_string(), "-sc_threshold", "0"]);
    for (i, step) in ladder.iter().enumerate() {
        cmd.arg(format!("-b:v:{i}")).arg(format!("{}k", step.video_kbps));
        cmd.arg(format!("-maxrate:v:{i}")).arg(format!("{}k", step.video_kbps * 3 / 2));
        cmd.arg(format!("-bufsize:v:{i}")).arg(format!("{}k", step.video_kbps * 2));
    }
    let map: Vec<String> = ladder.iter().enumerate().map(|(i, s)| format!("v:{i},a:{i},name:{}", s.name)).collect();
    cmd.args(["-c:a", "aac", "-b:a", "96k", "-ac", "2"])
        .args(["-f", "hls", "-hls_time", &SEGMENT_SECONDS.to_string(), "-hls_playlist_type", "vod"])
        .args(["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"])
        .args(["-hls_segment_filename", "%v/seg_%03d.m4s", "-var_stream_map", &map.join(" ")])
        .arg("%v/index.m3u8")
        .kill_on_drop(true);
    crate::run_ffmpeg(cmd, ffmpeg).await
}

/// Removes `dir` if present and creates it empty.
fn replace_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))
}

/// Hard-links (or, across file systems, copies) every file of `from` into `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).map_err(io_err(from))? {
        let entry = entry.map_err(io_err(from))?;
        let src: PathBuf = entry.path();
        let dst = to.join(entry.file_name());
        if entry.file_type().map_err(io_err(&src))?.is_dir() {
            std::fs::create_dir_all(&dst).map_err(io_err(&dst))?;
            copy_tree(&src, &dst)?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(io_err(&dst))?;
        }
    }
    Ok(())
}
