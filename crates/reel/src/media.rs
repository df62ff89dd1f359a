//! `reel media ...`: quality measurement (VMAF, PSNR, SSIM) and the ingest
//! pipeline that turns a mezzanine into a per-title ladder.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use reel_media::frames::{InputSpec, PixFmt};
use reel_vmaf::{Model, Report, Scorer};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum MediaCommand {
    /// VMAF (libvmaf's default model, computed in Rust), PSNR and SSIM of a
    /// distorted video against its reference. Raw YUV needs --width,
    /// --height and --pix-fmt; y4m and video files carry their own. A
    /// distorted video of another size is scaled to the reference's
    /// (bicubic, as a player would).
    Vmaf {
        /// The reference (source) video.
        #[arg(long = "ref")]
        reference: PathBuf,
        /// The distorted (encoded) video.
        #[arg(long = "dist")]
        distorted: PathBuf,
        /// Width of raw YUV input.
        #[arg(long)]
        width: Option<usize>,
        /// Height of raw YUV input.
        #[arg(long)]
        height: Option<usize>,
        /// Pixel format of raw YUV input: yuv420p, yuv420p10le, yuv420p12le,
        /// yuv420p16le (also 422/444 variants).
        #[arg(long, default_value = "yuv420p")]
        pix_fmt: String,
        /// A built-in model (vmaf_v0.6.1, vmaf_4k_v0.6.1) or a libvmaf JSON
        /// model file using the integer features.
        #[arg(long, default_value = "vmaf_v0.6.1")]
        model: String,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Skip SSIM (about a third of the work).
        #[arg(long)]
        no_ssim: bool,
        /// One JSON object: model, pooled {mean, harmonic_mean, min, max},
        /// psnr_y, ssim, and a frames array.
        #[arg(long)]
        json: bool,
    },
    /// Ingest a mezzanine: probe it, cut it into chunks at scene changes,
    /// encode H.264 candidates (several resolutions and qualities) in
    /// parallel, score each with VMAF, choose the per-title ladder from the
    /// convex hull, package CMAF for HLS and DASH into the origin store and
    /// register it in the catalog. A job that dies resumes from its last
    /// finished chunk when run again.
    Ingest {
        #[command(flatten)]
        store: crate::cli::StoreArgs,
        /// The mezzanine file.
        file: PathBuf,
        /// The title's id: an existing title gets the new media; otherwise
        /// a movie is created with this id.
        #[arg(long)]
        title: String,
        /// Name for a title created by this ingest [default: the file name].
        #[arg(long)]
        name: Option<String>,
        /// Where packaged media lives [default: DATA_DIR/origin].
        #[arg(long)]
        origin_dir: Option<PathBuf>,
        /// Candidate heights, comma-separated [default: the fixed ladder's heights up to the source's].
        #[arg(long, value_delimiter = ',')]
        heights: Vec<u32>,
        /// Candidate x264 CRFs, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "18,22,26,30,34,38,42")]
        crfs: Vec<u8>,
        /// x264 preset for the candidates.
        #[arg(long, default_value = "fast")]
        preset: String,
        /// Encodes running at once [default: one per core].
        #[arg(long)]
        jobs: Option<usize>,
        /// Longest chunk, in seconds (shots longer than this are split).
        #[arg(long, default_value_t = 2.0)]
        max_chunk_seconds: f64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a title's per-title ladder: each rung's resolution, bitrate and
    /// VMAF, drawn against the hull.
    Ladder {
        #[command(flatten)]
        store: crate::cli::StoreArgs,
        /// The title's id.
        #[arg(long)]
        title: String,
        /// Also encode the classic fixed ladder (same resolutions, fixed
        /// bitrates), score it, and print what the per-title ladder saves
        /// at equal VMAF.
        #[arg(long)]
        compare_fixed: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: MediaCommand) -> Result<()> {
    match cmd {
        MediaCommand::Ingest { store, file, title, name, origin_dir, heights, crfs, preset, jobs, max_chunk_seconds, json } => {
            if !reel_domain::is_valid_id(&title) {
                bail!("--title {title:?} is not a valid id: use letters, digits, '-' and '_'");
            }
            if crfs.is_empty() || crfs.iter().any(|&c| c == 0 || c > 51) {
                // 0 is lossless, a different H.264 profile that cannot join the others.
                bail!("--crfs must list x264 CRFs from 1 to 51");
            }
            if heights.iter().any(|&h| !(16..=4320).contains(&h)) {
                bail!("--heights must list frame heights from 16 to 4320");
            }
            // The title's name, checked now, not after an hour of encoding;
            // without --name, the file's name made fit to be one.
            let name = match name {
                Some(n) => {
                    let patch = reel_store::TitlePatch { name: Some(n), ..Default::default() };
                    reel_control::check_title_patch(patch).context("--name")?.name
                }
                None => {
                    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or(&title).replace('_', " ");
                    let clean: String = stem.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
                    Some(if clean.trim().is_empty() { title.clone() } else { clean.trim().to_string() })
                }
            };
            if !(0.5..=60.0).contains(&max_chunk_seconds) {
                bail!("--max-chunk-seconds must be between 0.5 and 60");
            }
            let db = store.open().await?;
            let origin = origin_dir.unwrap_or_else(|| store.data_dir.join("origin"));
            let work = store.data_dir.join("ingest").join(&title);
            let mut opts = reel_media::ingest::IngestOptions::new(file.clone(), work, origin.join(&title));
            if !heights.is_empty() {
                opts.heights = Some(heights);
            }
            opts.crfs = crfs;
            opts.preset = preset;
            if let Some(j) = jobs {
                opts.jobs = j.max(1);
            }
            opts.max_chunk_s = max_chunk_seconds;
            opts.min_chunk_s = opts.min_chunk_s.min(max_chunk_seconds / 2.0);
            let progress = std::sync::Arc::new(Bars::new(!json));
            let report = reel_media::ingest::ingest(&opts, progress.clone())
                .await
                .with_context(|| format!("cannot ingest {}", file.display()))?;
            progress.done();
            register(&db, &title, name, &file, &report).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "ingested {} as {title}: {} chunks, {} candidate encodes ({} reused from an earlier run)",
                    file.display(),
                    report.chunks,
                    report.encodes,
                    report.encodes_reused
                );
                print_ladder(&report.ladder, &report.hull);
            }
            Ok(())
        }
        MediaCommand::Ladder { store, title, compare_fixed, json } => {
            let db = store.open().await?;
            let text = db
                .ladder(&title)
                .await?
                .with_context(|| format!("title {title:?} has no ladder: ingest it first (reel media ingest FILE --title {title})"))?;
            let mut doc: LadderDoc = serde_json::from_str(&text).context("the stored ladder is unreadable")?;
            if compare_fixed {
                let work = store.data_dir.join("ingest").join(&title);
                let progress = std::sync::Arc::new(Bars::new(!json));
                let fixed = reel_media::ingest::fixed_ladder(&work, progress.clone())
                    .await
                    .context("cannot encode the fixed ladder")?;
                progress.done();
                let points: Vec<RatePoint> = doc.ladder.iter().map(|r| r.point.clone()).collect();
                doc.fixed = Some(reel_media::ladder::compare(&points, &fixed));
                // What the same ingest would save with one CRF per rung (a
                // ladder stored before per-shot CRFs already is one).
                doc.constant_crf = if doc.ladder.iter().any(|r| !r.point.shot_crfs.is_empty()) {
                    let hull = reel_media::ladder::convex_hull(&doc.candidates);
                    let constant = reel_media::ladder::choose_ladder(&hull, reel_media::ladder::LadderPolicy::default());
                    Some(reel_media::ladder::compare(&constant, &fixed))
                } else {
                    None
                };
                db.set_ladder(&title, &serde_json::to_string(&doc)?).await?;
            }
            if json {
                println!("{}", serde_json::to_string(&doc)?);
                return Ok(());
            }
            print_ladder(&doc.ladder, &doc.hull);
            if let Some(c) = &doc.fixed {
                print_comparison(c);
            }
            if let Some(c) = &doc.constant_crf {
                let (how, share) = if c.savings >= 0.0 { ("fewer", c.savings) } else { ("more", -c.savings) };
                println!("(a ladder of constant-CRF encodes, without per-shot CRFs: {:.1}% {how} bits)", share * 100.0);
            }
            Ok(())
        }
        MediaCommand::Vmaf { reference, distorted, width, height, pix_fmt, model, threads, no_ssim, json } => {
            let raw = match (width, height) {
                (Some(w), Some(h)) => {
                    let fmt = PixFmt::parse(&pix_fmt).with_context(|| {
                        format!("--pix-fmt {pix_fmt} is not supported; use yuv420p, yuv422p, yuv444p or gray, each also with 10le, 12le or 16le")
                    })?;
                    if w < 16 || h < 16 {
                        bail!("--width and --height must be at least 16");
                    }
                    Some((w, h, fmt))
                }
                (None, None) => {
                    // Raw YUV has no header to say its size.
                    let raw_ext = |p: &std::path::Path| p.extension().and_then(|e| e.to_str()).is_some_and(|e| ["yuv", "raw"].contains(&e.to_ascii_lowercase().as_str()));
                    if raw_ext(&reference) || raw_ext(&distorted) {
                        bail!("raw YUV needs --width and --height (and --pix-fmt unless it is yuv420p)");
                    }
                    None
                }
                _ => bail!("raw YUV needs both --width and --height"),
            };
            if threads.is_some_and(|t| !(1..=1024).contains(&t)) {
                bail!("--threads must be from 1 to 1024");
            }
            let model = load_model(&model)?;
            let report = tokio::task::spawn_blocking(move || {
                let refs = InputSpec { raw: raw_for(&reference, raw), path: reference };
                let dist = InputSpec { raw: raw_for(&distorted, raw), path: distorted };
                let mut scorer = Scorer::new(model);
                if no_ssim {
                    scorer = scorer.without_ssim();
                }
                score_files(&refs, &dist, scorer, threads, !json)
            })
            .await
            .context("the scoring task failed")??;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_report(&report);
            }
            Ok(())
        }
    }
}

/// Raw sizes apply to files that are not y4m or containers.
fn raw_for(path: &std::path::Path, raw: Option<(usize, usize, PixFmt)>) -> Option<(usize, usize, PixFmt)> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "y4m" | "mp4" | "mkv" | "mov" | "webm" | "ts" | "m4v" | "avi" | "ivf" | "264" | "h264" | "hevc" => None,
        _ => raw,
    }
}

fn load_model(name: &str) -> Result<Model> {
    if let Some(m) = Model::builtin(name) {
        return Ok(m);
    }
    let path = PathBuf::from(name);
    if !path.is_file() {
        bail!("--model {name}: not a built-in model (vmaf_v0.6.1, vmaf_4k_v0.6.1) nor a model file");
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    Ok(Model::from_json(stem, &text)?)
}

/// Scores two inputs frame by frame, with a progress bar when asked.
pub fn score_files(
    reference: &InputSpec,
    distorted: &InputSpec,
    scorer: Scorer,
    threads: Option<usize>,
    progress: bool,
) -> Result<Report> {
    let bar = if progress { frames_bar(0, "scoring") } else { ProgressBar::hidden() };
    let on_start = |total: Option<u64>| bar.set_length(total.unwrap_or(0));
    let on_frames = |n: u64| bar.inc(n);
    let on_mismatch = || eprintln!("reel: the two videos differ in length; scoring the frames they share");
    let report = reel_media::quality::score(
        reference,
        distorted,
        scorer,
        reel_media::quality::ScoreOptions { threads, on_start: &on_start, on_frames: &on_frames, on_length_mismatch: &on_mismatch },
    );
    bar.finish_and_clear();
    Ok(report?)
}

fn frames_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} {what} {{pos}}/{{len}} [{{bar:30}}] {{per_sec}} eta {{eta}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn print_report(r: &Report) {
    println!("model          {}", r.model);
    println!("frames         {}", r.frames.len());
    println!("vmaf mean      {:.6}", r.pooled.mean);
    println!("vmaf harmonic  {:.6}", r.pooled.harmonic_mean);
    println!("vmaf min       {:.6}", r.pooled.min);
    println!("vmaf max       {:.6}", r.pooled.max);
    println!("psnr_y         {:.4} dB", r.psnr_y);
    if r.ssim.is_finite() {
        println!("ssim           {:.6}", r.ssim);
    }
}

use reel_media::ingest::{IngestProgress, IngestReport, Rung};
use reel_media::ladder::{Comparison, RatePoint};

/// The ladder document stored with a title (and served to the admin page).
#[derive(serde::Serialize, serde::Deserialize)]
struct LadderDoc {
    source: String,
    width: u32,
    height: u32,
    fps: f64,
    duration_s: f64,
    chunks: usize,
    candidates: Vec<RatePoint>,
    hull: Vec<RatePoint>,
    ladder: Vec<Rung>,
    #[serde(default)]
    fixed: Option<Comparison>,
    /// The same comparison for a ladder of constant-CRF encodes (what
    /// per-title encoding gets without per-shot CRFs), for reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    constant_crf: Option<Comparison>,
}

/// Creates the title if needed, then records the ladder and the renditions
/// (which make it playable), and the duration.
async fn register(db: &reel_store::Store, id: &str, name: Option<String>, file: &std::path::Path, report: &IngestReport) -> Result<()> {
    let duration = report.probe.duration_s.max(report.probe.frames.unwrap_or(0) as f64 / report.probe.fps.max(1.0));
    if db.title(id).await?.is_none() {
        let name = name.unwrap_or_else(|| id.to_string());
        db.create_title(reel_store::NewTitle {
            id: Some(id.to_string()),
            kind: reel_domain::TitleKind::Movie,
            parent_id: None,
            season_number: None,
            episode_number: None,
            artwork: reel_control::demo::artwork_styles(&name),
            name,
            synopsis: String::new(),
            year: 2026,
            maturity: reel_domain::Maturity::G,
            duration_s: duration,
            genres: Vec::new(),
            created_ms: None,
        })
        .await
        .with_context(|| format!("cannot create title {id:?}"))?;
    }
    let doc = LadderDoc {
        source: file.display().to_string(),
        width: report.probe.width,
        height: report.probe.height,
        fps: report.probe.fps,
        duration_s: duration,
        chunks: report.chunks,
        candidates: report.candidates.clone(),
        hull: report.hull.clone(),
        ladder: report.ladder.clone(),
        fixed: None,
        constant_crf: None,
    };
    db.set_ladder(id, &serde_json::to_string(&doc)?).await?;
    let renditions: Vec<reel_store::Rendition> = report.renditions.iter().map(reel_control::demo::rendition_row).collect();
    db.set_renditions(id, &renditions).await?;
    db.update_title(id, reel_store::TitlePatch { duration_s: Some(duration), ..Default::default() }).await?;
    Ok(())
}

fn print_ladder(ladder: &[Rung], hull: &[RatePoint]) {
    println!("{:<12} {:>10} {:>6} {:>10} {:>8}", "rung", "resolution", "crf", "kbps", "vmaf");
    for r in ladder {
        let p = &r.point;
        println!("{:<12} {:>10} {:>6} {:>10.0} {:>8.2}", r.name, format!("{}x{}", p.width, p.height), p.crf_label(), p.kbps, p.vmaf);
    }
    // The hull, drawn: VMAF against bitrate, rungs marked.
    let (w, h) = (60usize, 12usize);
    let max_k = hull.iter().map(|p| p.kbps).fold(1.0, f64::max);
    let mut grid = vec![vec![' '; w]; h];
    let cell = |p: &RatePoint| {
        let x = ((p.kbps / max_k) * (w - 1) as f64).round() as usize;
        let y = ((1.0 - p.vmaf.clamp(0.0, 100.0) / 100.0) * (h - 1) as f64).round() as usize;
        (x.min(w - 1), y.min(h - 1))
    };
    for p in hull {
        let (x, y) = cell(p);
        grid[y][x] = '.';
    }
    for r in ladder {
        let (x, y) = cell(&r.point);
        grid[y][x] = '#';
    }
    println!("\nVMAF ^  (. hull, # rung)");
    for (i, row) in grid.iter().enumerate() {
        let label = if i == 0 { "100".to_string() } else if i == h - 1 { "  0".to_string() } else { "   ".to_string() };
        println!("{label} | {}", row.iter().collect::<String>());
    }
    println!("    +-{}> kbps (max {:.0})", "-".repeat(w), max_k);
}

fn print_comparison(c: &Comparison) {
    println!("\nfixed ladder vs per-title ladder, at equal VMAF:");
    println!("{:>10} {:>10} {:>8} {:>16} {:>8}", "resolution", "fixed kbps", "vmaf", "per-title kbps", "saves");
    for r in &c.rungs {
        let f = &r.fixed;
        match (r.per_title_kbps, r.savings) {
            (Some(k), Some(s)) => println!("{:>10} {:>10.0} {:>8.2} {:>16.0} {:>7.1}%", format!("{}x{}", f.width, f.height), f.kbps, f.vmaf, k, s * 100.0),
            _ => println!("{:>10} {:>10.0} {:>8.2} {:>16} {:>8}", format!("{}x{}", f.width, f.height), f.kbps, f.vmaf, "not reached", "-"),
        }
    }
    let (how, share) = if c.savings >= 0.0 { ("fewer", c.savings) } else { ("more", -c.savings) };
    println!("per-title ladder: {:.1}% {how} bits than the fixed ladder at equal VMAF", share * 100.0);
}

/// Progress bars for the ingest stages.
struct Bars {
    bar: ProgressBar,
}

impl Bars {
    fn new(visible: bool) -> Bars {
        let bar = if visible { ProgressBar::new(0) } else { ProgressBar::hidden() };
        Bars { bar }
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}

impl IngestProgress for Bars {
    fn stage(&self, name: &str, total: u64) {
        self.bar.reset();
        self.bar.set_length(total);
        let template = if total > 0 {
            format!("{{spinner}} {name} {{pos}}/{{len}} [{{bar:30}}] eta {{eta}}")
        } else {
            format!("{{spinner}} {name} {{elapsed}}")
        };
        self.bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
        self.bar.enable_steady_tick(std::time::Duration::from_millis(200));
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn note(&self, msg: &str) {
        if self.bar.is_hidden() {
            eprintln!("reel: {msg}");
        } else {
            self.bar.println(msg);
        }
    }
}
