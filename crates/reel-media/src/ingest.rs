//! The ingest pipeline: probe a mezzanine, cut it into chunks at scene
//! changes, encode candidate renditions (H.264 at several resolutions and
//! qualities) chunk by chunk in parallel, score each with VMAF against the
//! source, choose the per-title ladder from the convex hull, and package
//! the chosen renditions as CMAF for HLS and DASH.
//!
//! Every finished step is a file in the job's work directory, written under
//! a temporary name and renamed into place, so a job that dies resumes from
//! its last finished chunk: nothing finished is encoded or scored twice.

use crate::ladder::{self, LadderPolicy, RatePoint};
use crate::probe::{probe_video, Probe};
use crate::quality::{self, ScoreOptions};
use crate::{describe_renditions, find_ffmpeg, frames::InputSpec, io_err, MediaError, PackagedRendition, Result};
use reel_vmaf::{Model, Scorer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::process::Command;

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub source: PathBuf,
    /// Job state (chunks, candidate encodes, scores); kept for resuming.
    pub work_dir: PathBuf,
    /// Where the package goes (the title's folder in the origin store).
    pub out_dir: PathBuf,
    /// Candidate heights; `None` takes the fixed ladder's heights up to the source's.
    pub heights: Option<Vec<u32>>,
    /// Candidate x264 CRFs at every height.
    pub crfs: Vec<u8>,
    pub preset: String,
    /// Encodes running at once.
    pub jobs: usize,
    /// Chunks are cut at scene changes, split when longer than this...
    pub max_chunk_s: f64,
    /// ...and merged when shorter than this.
    pub min_chunk_s: f64,
    /// ffmpeg's scene score above which a frame starts a new shot.
    pub scene_threshold: f64,
    /// Keyframe interval inside a chunk (seconds); segments cut on it.
    pub gop_s: f64,
    pub segment_s: u32,
    pub policy: LadderPolicy,
}

impl IngestOptions {
    pub fn new(source: PathBuf, work_dir: PathBuf, out_dir: PathBuf) -> IngestOptions {
        IngestOptions {
            source,
            work_dir,
            out_dir,
            heights: None,
            crfs: vec![18, 22, 26, 30, 34, 38, 42],
            preset: "fast".into(),
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_chunk_s: 2.0,
            min_chunk_s: 1.0,
            scene_threshold: 0.3,
            gop_s: 2.0,
            segment_s: 4,
            policy: LadderPolicy::default(),
        }
    }
}

/// Where a long job is; the CLI draws bars from these.
pub trait IngestProgress: Send + Sync {
    /// A new stage with `total` steps (0: unknown).
    fn stage(&self, name: &str, total: u64);
    fn advance(&self, n: u64);
    fn note(&self, msg: &str);
}

/// Progress that goes nowhere (tests, library callers).
pub struct Quiet;

impl IngestProgress for Quiet {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn note(&self, _: &str) {}
}

/// A candidate rendition: one resolution at one CRF.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Candidate {
    pub width: u32,
    pub height: u32,
    pub crf: u8,
}

impl Candidate {
    fn id(&self) -> String {
        format!("{}x{}-crf{}", self.width, self.height, self.crf)
    }
}

/// The job's plan, fixed on first run and checked on resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Plan {
    version: u32,
    source: PathBuf,
    source_len: u64,
    source_mtime_ms: u128,
    probe: Probe,
    /// Frame ranges [start, end) of each chunk.
    chunks: Vec<(u64, u64)>,
    candidates: Vec<Candidate>,
    preset: String,
    gop_frames: u32,
}

/// One encode's measurements, saved beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EncodeResult {
    bytes: u64,
    frames: u64,
    vmaf: Vec<f64>,
}

/// A rung of the chosen ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    pub name: String,
    #[serde(flatten)]
    pub point: RatePoint,
}

/// What an ingest produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestReport {
    pub source: PathBuf,
    pub probe: Probe,
    pub chunks: usize,
    pub encodes: usize,
    /// Encodes found finished from an earlier run and not redone.
    pub encodes_reused: usize,
    pub candidates: Vec<RatePoint>,
    pub hull: Vec<RatePoint>,
    pub ladder: Vec<Rung>,
    #[serde(skip)]
    pub renditions: Vec<PackagedRendition>,
    /// The DASH manifest, relative to the package folder.
    pub dash: String,
}

/// 2: encodes are x264 "stitchable", so chunks at different CRFs join.
const PLAN_VERSION: u32 = 2;

fn bad(path: &Path, what: impl Into<String>) -> MediaError {
    MediaError::BadInput { path: path.to_path_buf(), what: what.into() }
}

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// Runs the whole pipeline (or the rest of it, after a crash).
pub async fn ingest(opts: &IngestOptions, progress: Arc<dyn IngestProgress>) -> Result<IngestReport> {
    let ffmpeg = find_ffmpeg()?;
    let src = &opts.source;
    let probe = probe_video(src)?;
    if probe.width < 16 || probe.height < 16 {
        return Err(bad(src, format!("{}x{} is too small to ingest", probe.width, probe.height)));
    }
    let meta = std::fs::metadata(src).map_err(io_err(src))?;
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis());
    std::fs::create_dir_all(&opts.work_dir).map_err(io_err(&opts.work_dir))?;
    // One job per title at a time: a second would write the same files.
    let lock_path = opts.work_dir.join("LOCK");
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err(&lock_path))?;
    if lock.try_lock().is_err() {
        return Err(bad(&opts.work_dir, "another ingest of this title is running; wait for it to finish"));
    }

    let plan_path = opts.work_dir.join("plan.json");
    let candidates = candidates(opts, &probe);
    if candidates.is_empty() {
        return Err(bad(src, format!("is {}x{}: no candidate height fits it (heights from 16 to {})", probe.width, probe.height, probe.height)));
    }
    let gop_frames = ((opts.gop_s * probe.fps).round() as u32).max(1);
    let previous: Option<Plan> = std::fs::read(&plan_path).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let plan = match previous {
        Some(p)
            if p.version == PLAN_VERSION
                && p.source == *src
                && p.source_len == meta.len()
                && p.source_mtime_ms == mtime
                && p.candidates == candidates
                && p.preset == opts.preset
                && p.gop_frames == gop_frames
                && opts.work_dir.join("source").is_dir() =>
        {
            progress.note(&format!("resuming: {} chunks planned earlier", p.chunks.len()));
            p
        }
        _ => {
            // A new source or new settings: start clean.
            for sub in ["source", "encodes", "fixed"] {
                let d = opts.work_dir.join(sub);
                if d.exists() {
                    std::fs::remove_dir_all(&d).map_err(io_err(&d))?;
                }
            }
            progress.stage("finding scene changes", 0);
            let cuts = scene_cuts(&ffmpeg, src, opts.scene_threshold, &probe).await?;
            let total = total_frames(&probe);
            let chunks = plan_chunks(&cuts, total, probe.fps, opts.min_chunk_s, opts.max_chunk_s);
            progress.stage("splitting the source", 0);
            split_source(&ffmpeg, src, &chunks, &opts.work_dir).await?;
            let plan = Plan {
                version: PLAN_VERSION,
                source: src.clone(),
                source_len: meta.len(),
                source_mtime_ms: mtime,
                probe: probe.clone(),
                chunks,
                candidates: candidates.clone(),
                preset: opts.preset.clone(),
                gop_frames,
            };
            write_atomically(&plan_path, &serde_json::to_vec_pretty(&plan).map_err(|e| bad(&plan_path, e.to_string()))?)?;
            plan
        }
    };

    // Encode and score every (chunk, candidate), chunk by chunk.
    let total = plan.chunks.len() * plan.candidates.len();
    let mut pending = Vec::new();
    let mut reused = 0;
    for k in 0..plan.chunks.len() {
        for c in &plan.candidates {
            if result_path(&opts.work_dir, c, k).is_file() {
                reused += 1;
            } else {
                pending.push((k, c.clone()));
            }
        }
    }
    if reused > 0 {
        progress.note(&format!("{reused} of {total} encodes already done; not redoing them"));
    }
    progress.stage("encoding and scoring candidates", total as u64);
    progress.advance(reused as u64);
    // Encodes start in chunk order (a permit is taken before each starts),
    // so a job that dies leaves whole early chunks behind, not scattered ones.
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let check = |joined: std::result::Result<Result<()>, tokio::task::JoinError>| -> Result<()> {
        match joined {
            Ok(r) => r,
            Err(e) => Err(bad(&opts.work_dir, format!("an encode task failed: {e}"))),
        }
    };
    for (k, c) in pending {
        let permit = sem.clone().acquire_owned().await.map_err(|_| bad(&opts.work_dir, "job cancelled"))?;
        while let Some(joined) = set.try_join_next() {
            if let Err(e) = check(joined) {
                set.abort_all();
                return Err(e);
            }
        }
        let ffmpeg = ffmpeg.clone();
        let work = opts.work_dir.clone();
        let preset = plan.preset.clone();
        let gop = plan.gop_frames;
        let progress = progress.clone();
        set.spawn(async move {
            let _permit = permit;
            encode_and_score(&ffmpeg, &work, k, &c, &preset, gop).await?;
            progress.advance(1);
            Ok::<(), MediaError>(())
        });
    }
    while let Some(joined) = set.join_next().await {
        if let Err(e) = check(joined) {
            set.abort_all();
            return Err(e);
        }
    }

    // Aggregate per candidate over chunks, and per shot at each resolution.
    let duration_s = |frames: u64| frames as f64 / plan.probe.fps;
    let mut points = Vec::new();
    // Per resolution, each chunk's encodes.
    let mut by_size: std::collections::BTreeMap<(u32, u32), Vec<Vec<ladder::ChunkEncode>>> = Default::default();
    for c in &plan.candidates {
        let (mut bytes, mut frames, mut sum) = (0u64, 0u64, 0f64);
        let mut encodes = Vec::with_capacity(plan.chunks.len());
        for k in 0..plan.chunks.len() {
            let path = result_path(&opts.work_dir, c, k);
            let r: EncodeResult = read_json(&path)?;
            bytes += r.bytes;
            frames += r.frames;
            let chunk_sum = r.vmaf.iter().sum::<f64>();
            sum += chunk_sum;
            // The chunk's planned length, so every encode of it weighs the
            // same even if one scored fewer frames.
            let planned = plan.chunks[k].1 - plan.chunks[k].0;
            let mean = if r.vmaf.is_empty() { 0.0 } else { chunk_sum / r.vmaf.len() as f64 };
            encodes.push(ladder::ChunkEncode { crf: c.crf, bits: r.bytes as f64 * 8.0, vmaf_sum: mean * planned as f64, frames: planned });
        }
        if frames == 0 {
            continue;
        }
        let per_chunk = by_size.entry((c.width, c.height)).or_insert_with(|| vec![Vec::new(); plan.chunks.len()]);
        for (k, e) in encodes.into_iter().enumerate() {
            per_chunk[k].push(e);
        }
        points.push(RatePoint {
            width: c.width,
            height: c.height,
            crf: c.crf,
            kbps: bytes as f64 * 8.0 / duration_s(frames) / 1000.0,
            vmaf: sum / frames as f64,
            shot_crfs: Vec::new(),
        });
    }
    // Per-shot mixes (each chunk at its own CRF, one resolution per rung)
    // reach at least what constant CRFs do; the ladder comes from their hull.
    let mut mixes = points.clone();
    for ((w, h), per_chunk) in &by_size {
        mixes.extend(ladder::per_shot_points(*w, *h, per_chunk, plan.probe.fps));
    }
    let mut hull = ladder::convex_hull(&mixes);
    let chosen = ladder::choose_ladder(&hull, opts.policy);
    let rungs = name_rungs(&chosen);
    // The report keeps per-chunk CRFs for the rungs only: on a long title
    // every hull point's list would be thousands of entries.
    for p in &mut hull {
        p.shot_crfs = Vec::new();
    }

    progress.stage("packaging HLS and DASH", 0);
    let renditions = package(&ffmpeg, opts, &plan, &rungs).await?;
    Ok(IngestReport {
        source: src.clone(),
        probe: plan.probe.clone(),
        chunks: plan.chunks.len(),
        encodes: total,
        encodes_reused: reused,
        candidates: points,
        hull,
        ladder: rungs,
        renditions,
        dash: "manifest.mpd".into(),
    })
}

fn total_frames(p: &Probe) -> u64 {
    p.frames.unwrap_or_else(|| (p.duration_s * p.fps).round() as u64).max(1)
}

/// Display width for a height, keeping the source's shape.
fn candidates(opts: &IngestOptions, p: &Probe) -> Vec<Candidate> {
    let heights: Vec<u32> = match &opts.heights {
        Some(h) => h.iter().copied().filter(|&h| h <= p.height && h >= 16).collect(),
        None => {
            let mut h: Vec<u32> = ladder::FIXED_LADDER.iter().map(|&(h, _)| h).filter(|&h| h <= p.height).collect();
            h.dedup();
            if h.is_empty() {
                h.push(p.height);
            }
            h
        }
    };
    let aspect = f64::from(p.width) / f64::from(p.height);
    let mut out: Vec<Candidate> = Vec::new();
    for h in heights {
        let w = even(f64::from(h) * aspect).min(p.width + p.width % 2);
        for &crf in &opts.crfs {
            let c = Candidate { width: w, height: h - h % 2, crf };
            // Listed twice (or two heights that round alike): encoded once.
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// Shot boundaries (frame numbers) from ffmpeg's scene score.
async fn scene_cuts(ffmpeg: &Path, src: &Path, threshold: f64, p: &Probe) -> Result<Vec<u64>> {
    let out = Command::new(ffmpeg)
        .args(["-nostdin", "-hide_banner", "-loglevel", "info", "-xerror", "-i"])
        .arg(src)
        .args(["-map", "0:v:0", "-an", "-vf", &format!("select='gt(scene,{threshold})',showinfo"), "-f", "null", "-"])
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| MediaError::Io { path: ffmpeg.to_path_buf(), source: e })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(bad(src, format!("cannot be decoded: {}", crate::last_lines(&stderr))));
    }
    let mut cuts = Vec::new();
    for line in stderr.lines().filter(|l| l.contains("Parsed_showinfo")) {
        if let Some(t) = line.split("pts_time:").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|t| t.parse::<f64>().ok()) {
            cuts.push((t * p.fps).round() as u64);
        }
    }
    Ok(cuts)
}

/// Chunks from shot boundaries: shots shorter than `min_s` join the next,
/// longer than `max_s` are split evenly.
fn plan_chunks(cuts: &[u64], total: u64, fps: f64, min_s: f64, max_s: f64) -> Vec<(u64, u64)> {
    let min_f = (min_s * fps).round().max(1.0) as u64;
    let max_f = (max_s * fps).round().max(min_f as f64) as u64;
    let mut bounds: Vec<u64> = vec![0];
    for &c in cuts {
        if c > 0 && c < total && c - bounds.last().copied().unwrap_or(0) >= min_f && total - c >= min_f {
            bounds.push(c);
        }
    }
    bounds.push(total);
    let mut chunks = Vec::new();
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1]);
        let len = b - a;
        let parts = len.div_ceil(max_f).max(1);
        for i in 0..parts {
            let s = a + len * i / parts;
            let e = a + len * (i + 1) / parts;
            if e > s {
                chunks.push((s, e));
            }
        }
    }
    chunks
}

/// Writes each chunk of the source as lossless intra-only FFV1, in one
/// pass, into `work/source` (atomically, as a whole).
async fn split_source(ffmpeg: &Path, src: &Path, chunks: &[(u64, u64)], work: &Path) -> Result<()> {
    let partial = work.join("source.partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io_err(&partial))?;
    }
    std::fs::create_dir_all(&partial).map_err(io_err(&partial))?;
    let frames: Vec<String> = chunks.iter().skip(1).map(|c| c.0.to_string()).collect();
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-xerror", "-y", "-i"])
        .arg(src)
        .args(["-map", "0:v:0", "-an", "-sn", "-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4"])
        .args(["-f", "segment", "-reset_timestamps", "1"]);
    if !frames.is_empty() {
        cmd.args(["-segment_frames", &frames.join(",")]);
    } else {
        cmd.args(["-segment_time", "999999"]);
    }
    cmd.arg(partial.join("%05d.mkv")).kill_on_drop(true);
    crate::run_ffmpeg(cmd, src).await?;
    for k in 0..chunks.len() {
        if !partial.join(format!("{k:05}.mkv")).is_file() {
            return Err(bad(src, format!("is truncated or damaged: it ends before chunk {k} of {}", chunks.len())));
        }
    }
    let done = work.join("source");
    if done.exists() {
        std::fs::remove_dir_all(&done).map_err(io_err(&done))?;
    }
    std::fs::rename(&partial, &done).map_err(io_err(&done))
}

fn chunk_source(work: &Path, k: usize) -> PathBuf {
    work.join("source").join(format!("{k:05}.mkv"))
}

fn encode_path(work: &Path, c: &Candidate, k: usize) -> PathBuf {
    work.join("encodes").join(c.id()).join(format!("{k:05}.mp4"))
}

fn result_path(work: &Path, c: &Candidate, k: usize) -> PathBuf {
    work.join("encodes").join(c.id()).join(format!("{k:05}.json"))
}

async fn encode_and_score(ffmpeg: &Path, work: &Path, k: usize, c: &Candidate, preset: &str, gop: u32) -> Result<()> {
    let src = chunk_source(work, k);
    let out = encode_path(work, c, k);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    if !out.is_file() {
        encode_x264(ffmpeg, &src, (c.width, c.height), Rate::Crf(c.crf), preset, gop, &out).await?;
    }
    let bytes = mdat_bytes(&out)?;
    let report = vmaf_of(src, out).await?;
    let result = EncodeResult { bytes, frames: report.frames.len() as u64, vmaf: report.frames.iter().map(|f| f.vmaf).collect() };
    let path = result_path(work, c, k);
    write_atomically(&path, &serde_json::to_vec(&result).map_err(|e| bad(&path, e.to_string()))?)
}

/// How an x264 encode spends its bits.
enum Rate {
    /// Constant quality (the candidates).
    Crf(u8),
    /// A target bitrate in kb/s, peaks capped at 1.5x (the fixed ladder).
    Abr(u32),
}

/// Encodes `input`, scaled (bicubic) to `size`, with x264 on the
/// pipeline's keyframe grid (every `gop` frames, no scene-cut keyframes, so
/// all renditions cut segments at the same instants), into `out` via a
/// temporary name. The headers are "stitchable" (independent of the CRF),
/// so a rung can join chunks encoded at different CRFs. One thread per
/// encode: jobs run side by side instead.
async fn encode_x264(ffmpeg: &Path, input: &Path, size: (u32, u32), rate: Rate, preset: &str, gop: u32, out: &Path) -> Result<()> {
    let tmp = out.with_extension("mp4.partial");
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(input)
        .args(["-vf", &format!("scale={}:{}:flags=bicubic", size.0, size.1)])
        .args(["-c:v", "libx264", "-preset", preset, "-profile:v", "high", "-pix_fmt", "yuv420p"]);
    match rate {
        Rate::Crf(crf) => cmd.args(["-crf", &crf.to_string()]),
        Rate::Abr(kbps) => cmd.args(["-b:v", &format!("{kbps}k"), "-maxrate", &format!("{}k", kbps * 3 / 2), "-bufsize", &format!("{}k", kbps * 2)]),
    };
    cmd.args(["-threads", "1", "-x264-params", &format!("keyint={gop}:min-keyint={gop}:scenecut=0:stitchable=1")])
        .args(["-an", "-f", "mp4"])
        .arg(&tmp)
        .kill_on_drop(true);
    crate::run_ffmpeg(cmd, input).await?;
    std::fs::rename(&tmp, out).map_err(io_err(out))
}

/// VMAF of an encode against its source (scaled up to it), scored on the
/// blocking pool.
async fn vmaf_of(reference: PathBuf, distorted: PathBuf) -> Result<reel_vmaf::Report> {
    let label = distorted.clone();
    tokio::task::spawn_blocking(move || {
        let (start, frames, mismatch) = (|_: Option<u64>| {}, |_: u64| {}, || {});
        quality::score(
            &InputSpec { path: reference, raw: None },
            &InputSpec { path: distorted, raw: None },
            Scorer::new(Model::v0_6_1()).without_ssim(),
            ScoreOptions { threads: None, on_start: &start, on_frames: &frames, on_length_mismatch: &mismatch },
        )
    })
    .await
    .map_err(|e| bad(&label, format!("scoring failed: {e}")))?
}

/// The video payload of an MP4 (the `mdat` boxes), without the container.
fn mdat_bytes(path: &Path) -> Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let (mut at, mut total) = (0u64, 0u64);
    // Walk the top-level boxes by their headers; the payloads are skipped.
    while at + 8 <= len {
        let mut head = [0u8; 16];
        f.seek(SeekFrom::Start(at)).map_err(io_err(path))?;
        let n = if at + 16 <= len { 16 } else { 8 };
        f.read_exact(&mut head[..n]).map_err(io_err(path))?;
        let size32 = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let (size, header) = match size32 {
            1 if n == 16 => (u64::from_be_bytes([head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15]]), 16),
            0 => (len - at, 8),
            s => (s, 8),
        };
        if size < header {
            break;
        }
        if &head[4..8] == b"mdat" {
            total += size - header;
        }
        at = at.saturating_add(size);
    }
    if total == 0 {
        return Err(bad(path, "encode has no media data"));
    }
    Ok(total)
}

/// Names rungs by height; a second rung at one height carries its bitrate.
fn name_rungs(points: &[RatePoint]) -> Vec<Rung> {
    let mut out: Vec<Rung> = Vec::new();
    for p in points {
        let base = format!("{}p", p.height);
        let name = if out.iter().any(|r| r.point.height == p.height) { format!("{base}-{}k", p.kbps.round() as u64) } else { base };
        out.push(Rung { name, point: p.clone() });
    }
    out
}

/// Joins each rung's chunks and packages all rungs (with the source's
/// audio, if any) as fMP4 HLS, then writes a DASH manifest over the same
/// segments. The package is built beside `out_dir` and swapped in whole.
async fn package(ffmpeg: &Path, opts: &IngestOptions, plan: &Plan, rungs: &[Rung]) -> Result<Vec<PackagedRendition>> {
    let work = &opts.work_dir;
    let pkg = work.join("package.partial");
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg).map_err(io_err(&pkg))?;
    }
    let mut cmd = Command::new(ffmpeg);
    cmd.current_dir(&pkg).args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]);
    for r in rungs {
        std::fs::create_dir_all(pkg.join(&r.name)).map_err(io_err(&pkg))?;
        let list = work.join(format!("concat-{}.txt", r.name));
        let mut text = String::new();
        for k in 0..plan.chunks.len() {
            let cand = Candidate { width: r.point.width, height: r.point.height, crf: r.point.crf_of_chunk(k) };
            let p = encode_path(work, &cand, k);
            let p = std::fs::canonicalize(&p).map_err(io_err(&p))?;
            text.push_str(&format!("file '{}'\n", p.display().to_string().replace('\'', "'\\''")));
        }
        std::fs::write(&list, text).map_err(io_err(&list))?;
        cmd.args(["-f", "concat", "-safe", "0", "-i"]).arg(&list);
    }
    let audio = plan.probe.has_audio;
    if audio {
        cmd.arg("-i").arg(std::fs::canonicalize(&plan.source).map_err(io_err(&plan.source))?);
    }
    let n = rungs.len();
    for i in 0..n {
        cmd.args(["-map", &format!("{i}:v:0")]);
    }
    if audio {
        for _ in 0..n {
            cmd.args(["-map", &format!("{n}:a:0")]);
        }
        cmd.args(["-c:a", "aac", "-b:a", "128k", "-ac", "2"]);
    }
    cmd.args(["-c:v", "copy"]);
    let map: Vec<String> = rungs
        .iter()
        .enumerate()
        .map(|(i, r)| if audio { format!("v:{i},a:{i},name:{}", r.name) } else { format!("v:{i},name:{}", r.name) })
        .collect();
    cmd.args(["-f", "hls", "-hls_time", &opts.segment_s.to_string(), "-hls_playlist_type", "vod"])
        .args(["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"])
        .args(["-hls_segment_filename", "%v/seg_%03d.m4s", "-var_stream_map", &map.join(" ")])
        .arg("%v/index.m3u8")
        .kill_on_drop(true);
    crate::run_ffmpeg(cmd, &plan.source).await?;
    let steps: Vec<(String, u32, u32)> = rungs.iter().map(|r| (r.name.clone(), r.point.width, r.point.height)).collect();
    let renditions = describe_renditions(&pkg, &steps)?;
    let mpd = crate::dash::mpd_for_package(&pkg, &renditions)?;
    std::fs::write(pkg.join("manifest.mpd"), mpd).map_err(io_err(&pkg))?;
    let ladder_json = serde_json::to_vec_pretty(rungs).map_err(|e| bad(&pkg, e.to_string()))?;
    std::fs::write(pkg.join("ladder.json"), ladder_json).map_err(io_err(&pkg))?;
    // Swap in: the old package (if any) moves aside, then goes.
    let out = &opts.out_dir;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let old = out.with_extension("old");
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    if out.exists() {
        std::fs::rename(out, &old).map_err(io_err(out))?;
    }
    std::fs::rename(&pkg, out).map_err(io_err(out))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    describe_renditions(out, &steps)
}

/// Encodes the classic fixed ladder (the fixed-ladder rungs at or below the
/// source's height, same widths as the candidates, one-pass ABR at each
/// rung's bitrate) from the job's source, and scores each rung. Results are
/// kept in the work directory and reused.
pub async fn fixed_ladder(work: &Path, progress: Arc<dyn IngestProgress>) -> Result<Vec<RatePoint>> {
    let plan: Plan = read_json(&work.join("plan.json"))?;
    let ffmpeg = find_ffmpeg()?;
    let p = &plan.probe;
    let aspect = f64::from(p.width) / f64::from(p.height);
    let rungs: Vec<(u32, u32, u32)> = ladder::FIXED_LADDER
        .iter()
        .filter(|&&(h, _)| h <= p.height)
        .map(|&(h, kbps)| (even(f64::from(h) * aspect).min(p.width + p.width % 2), h - h % 2, kbps))
        .collect();
    let dir = work.join("fixed");
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    // The reference is the job's lossless source chunks, joined.
    let list = dir.join("source.txt");
    let mut text = String::new();
    for k in 0..plan.chunks.len() {
        let c = chunk_source(work, k);
        let c = std::fs::canonicalize(&c).map_err(io_err(&c))?;
        text.push_str(&format!("file '{}'\n", c.display().to_string().replace('\'', "'\\''")));
    }
    std::fs::write(&list, text).map_err(io_err(&list))?;
    let reference = dir.join("source.mkv");
    if !reference.is_file() {
        let tmp = dir.join("source.partial.mkv");
        let mut cmd = Command::new(&ffmpeg);
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i"])
            .arg(&list)
            .args(["-c", "copy"])
            .arg(&tmp)
            .kill_on_drop(true);
        crate::run_ffmpeg(cmd, &list).await?;
        std::fs::rename(&tmp, &reference).map_err(io_err(&reference))?;
    }
    progress.stage("encoding and scoring the fixed ladder", rungs.len() as u64);
    let sem = Arc::new(tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));
    let mut set = tokio::task::JoinSet::new();
    for (i, &(w, h, kbps)) in rungs.iter().enumerate() {
        let (ffmpeg, dir, reference, preset, sem, progress) =
            (ffmpeg.clone(), dir.clone(), reference.clone(), plan.preset.clone(), sem.clone(), progress.clone());
        let (gop, fps) = (plan.gop_frames, p.fps);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|_| bad(&dir, "cancelled"))?;
            let result = dir.join(format!("{w}x{h}-{kbps}k.json"));
            let point = if let Ok(point) = read_json::<RatePoint>(&result) {
                point
            } else {
                let out = dir.join(format!("{w}x{h}-{kbps}k.mp4"));
                encode_x264(&ffmpeg, &reference, (w, h), Rate::Abr(kbps), &preset, gop, &out).await?;
                let bytes = mdat_bytes(&out)?;
                let report = vmaf_of(reference.clone(), out).await?;
                let secs = report.frames.len() as f64 / fps;
                let point = RatePoint { width: w, height: h, crf: 0, kbps: bytes as f64 * 8.0 / secs / 1000.0, vmaf: report.pooled.mean, shot_crfs: Vec::new() };
                write_atomically(&result, &serde_json::to_vec(&point).map_err(|e| bad(&result, e.to_string()))?)?;
                point
            };
            progress.advance(1);
            Ok::<(usize, RatePoint), MediaError>((i, point))
        });
    }
    let mut points = vec![None; rungs.len()];
    while let Some(joined) = set.join_next().await {
        let (i, point) = joined.map_err(|e| bad(work, format!("an encode task failed: {e}")))??;
        points[i] = Some(point);
    }
    Ok(points.into_iter().flatten().collect())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(path, format!("unreadable: {e}")))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_shots_within_bounds() {
        // 25 fps, 300 frames, shots at 40 (too close to 0 for 1 s? no: 1.6 s), 45 (too close), 250.
        let chunks = plan_chunks(&[40, 45, 250], 300, 25.0, 1.0, 2.0);
        assert_eq!(chunks.first().map(|c| c.0), Some(0));
        assert_eq!(chunks.last().map(|c| c.1), Some(300));
        assert!(chunks.windows(2).all(|w| w[0].1 == w[1].0));
        assert!(chunks.iter().all(|c| c.1 - c.0 <= 50), "{chunks:?}");
        assert!(chunks.iter().any(|c| c.0 == 40) && chunks.iter().any(|c| c.0 == 250));
        assert!(!chunks.iter().any(|c| c.0 == 45));
        // No cuts: 150 frames at 2 s max -> three even chunks.
        assert_eq!(plan_chunks(&[], 150, 25.0, 1.0, 2.0), vec![(0, 50), (50, 100), (100, 150)]);
    }

    #[test]
    fn rung_names_are_unique() {
        let p = |h: u32, kbps: f64| RatePoint { width: h, height: h, crf: 20, kbps, vmaf: 50.0, shot_crfs: Vec::new() };
        let names: Vec<String> = name_rungs(&[p(240, 100.0), p(480, 500.0), p(480, 900.4)]).into_iter().map(|r| r.name).collect();
        assert_eq!(names, vec!["240p", "480p", "480p-900k"]);
        for n in &names {
            assert!(reel_domain::rendition_height(n).is_some(), "{n}");
        }
    }
}
