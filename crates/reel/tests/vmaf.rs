//! `reel media vmaf` against libvmaf: the scores VMAF's own test suite
//! publishes for its resource pairs, and pairs generated here (Debian's
//! ffmpeg: test sources, x264 at several qualities, 8- and 10-bit, 360p to
//! 1080p) scored by the libvmaf inside PyPI's `imageio-ffmpeg` (the oracle,
//! which also checks PSNR and SSIM;
//! `scripts/setup --test` installs it).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn vmaf(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_reel")).args(["media", "vmaf", "--json"]).args(args).output().expect("run reel");
    assert!(out.status.success(), "reel media vmaf {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn mean(v: &Value) -> f64 {
    v["pooled"]["mean"].as_f64().expect("pooled.mean")
}

fn yuv(name: &str) -> String {
    shared().join("vmaf/resource/yuv").join(name).to_str().expect("utf-8").to_string()
}

#[test]
fn published_scores_are_matched_within_a_hundredth() {
    let (r10, d10) = (yuv("src01_hrc00_576x324.yuv420p10le.yuv"), yuv("src01_hrc01_576x324.yuv420p10le.yuv"));
    let (rs, ds) = (yuv("sparks_ref_480x270.yuv42010le.yuv"), yuv("sparks_dis_480x270.yuv42010le.yuv"));
    let stem = "test_0_1_src01_hrc00_576x324_576x324_vs_src01_hrc01_576x324_576x324_q_160x90.yuv";
    let (r8, d8) = (yuv(&format!("ref_{stem}")), yuv(&format!("dis_{stem}")));
    let cases: Vec<(Vec<&str>, f64, usize)> = vec![
        (vec!["--ref", &r10, "--dist", &d10, "--width", "576", "--height", "324", "--pix-fmt", "yuv420p10le"], 82.56422467, 3),
        (vec!["--ref", &rs, "--dist", &ds, "--width", "480", "--height", "270", "--pix-fmt", "yuv420p10le"], 97.9006316, 5),
        (vec!["--ref", &r8, "--dist", &d8, "--width", "160", "--height", "90"], 92.52095888, 48),
        // The reference against itself.
        (vec!["--ref", &r10, "--dist", &r10, "--width", "576", "--height", "324", "--pix-fmt", "yuv420p10le"], 99.142826, 3),
        (vec!["--ref", &rs, "--dist", &rs, "--width", "480", "--height", "270", "--pix-fmt", "yuv420p10le"], 98.4716976, 5),
        (vec!["--ref", &r8, "--dist", &r8, "--width", "160", "--height", "90"], 99.30667316, 48),
    ];
    for (args, want, frames) in cases {
        let v = vmaf(&args);
        let got = mean(&v);
        assert!((got - want).abs() <= 0.01, "{args:?}: {got} vs published {want}");
        assert_eq!(v["frames"].as_array().map(Vec::len), Some(frames));
        let (hm, min) = (v["pooled"]["harmonic_mean"].as_f64().expect("hm"), v["pooled"]["min"].as_f64().expect("min"));
        assert!(min <= hm && hm <= got + 1e-9, "min {min} <= harmonic {hm} <= mean {got}");
    }
    // 12- and 16-bit versions of the first pair score the same.
    for (fmt, suffix) in [("yuv420p12le", "12le"), ("yuv420p16le", "16le")] {
        let (r, d) = (yuv(&format!("src01_hrc00_576x324.yuv420p{suffix}.yuv")), yuv(&format!("src01_hrc01_576x324.yuv420p{suffix}.yuv")));
        let got = mean(&vmaf(&["--ref", &r, "--dist", &d, "--width", "576", "--height", "324", "--pix-fmt", fmt]));
        assert!((got - 82.5642).abs() <= 0.01, "{fmt}: {got}");
    }
    // A video file scaled to its reference's size (bicubic), as a player would.
    let video = shared().join("video");
    let v = vmaf(&[
        "--ref",
        video.join("Seeking_30_480_1050.mp4").to_str().expect("utf-8"),
        "--dist",
        video.join("Seeking_10_288_375.mp4").to_str().expect("utf-8"),
    ]);
    assert!((mean(&v) - 51.017497).abs() <= 0.01, "Seeking: {}", mean(&v));
    assert_eq!(v["frames"].as_array().map(Vec::len), Some(150));
}

#[test]
fn raw_input_of_the_wrong_size_is_a_clear_error() {
    let r = yuv("sparks_ref_480x270.yuv42010le.yuv");
    let out = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(["media", "vmaf", "--ref", &r, "--dist", &r, "--width", "481", "--height", "270", "--pix-fmt", "yuv420p10le"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("--width"), "says how to fix it: {err}");
    let out = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(["media", "vmaf", "--ref", &r, "--dist", &r, "--width", "480", "--height", "270", "--pix-fmt", "rgb24"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pix-fmt"));
}

#[test]
fn a_reader_that_goes_away_stops_reel_quietly() {
    // `reel media vmaf … | head -0`: the pipe is closed before reel writes.
    let stem = "test_0_1_src01_hrc00_576x324_576x324_vs_src01_hrc01_576x324_576x324_q_160x90.yuv";
    let (r, d) = (yuv(&format!("ref_{stem}")), yuv(&format!("dis_{stem}")));
    let mut child = Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(["media", "vmaf", "--ref", &r, "--dist", &d, "--width", "160", "--height", "90"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run reel");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "no crash report: {err}");
    assert_eq!(out.status.code(), Some(141), "exits as a SIGPIPE'd tool would: {err}");
}

/// The static ffmpeg with libvmaf from PyPI's imageio-ffmpeg.
fn oracle() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the libvmaf oracle is missing: pip install imageio-ffmpeg (scripts/setup --test does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]).args(args).output().expect("ffmpeg");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn generated_pairs_agree_with_libvmaf_frame_by_frame() {
    let oracle = oracle();
    let dir = tempfile::tempdir().expect("tmp");
    // (pattern, size, pixel format, crf, frames)
    let cases = [
        ("testsrc2", "640x360", "yuv420p", 38, 12),
        ("mandelbrot", "640x360", "yuv420p10le", 30, 8),
        ("testsrc2", "1280x720", "yuv420p10le", 42, 6),
        ("mandelbrot", "960x540", "yuv420p", 22, 8),
        ("testsrc2", "1920x1080", "yuv420p", 45, 5),
        ("mandelbrot", "1920x1080", "yuv420p10le", 35, 4),
    ];
    for (pattern, size, fmt, crf, frames) in cases {
        let tag = format!("{pattern}-{size}-{fmt}-{crf}");
        let reference = dir.path().join(format!("{tag}-ref.yuv"));
        let encoded = dir.path().join(format!("{tag}.mp4"));
        let distorted = dir.path().join(format!("{tag}-dis.yuv"));
        let (r, e, d) = (reference.to_str().expect("utf-8"), encoded.to_str().expect("utf-8"), distorted.to_str().expect("utf-8"));
        let n = frames.to_string();
        ffmpeg(&["-f", "lavfi", "-i", &format!("{pattern}=s={size}:r=25"), "-frames:v", &n, "-pix_fmt", fmt, "-f", "rawvideo", r]);
        ffmpeg(&["-f", "rawvideo", "-pix_fmt", fmt, "-s", size, "-i", r, "-c:v", "libx264", "-preset", "veryfast", "-crf", &crf.to_string(), "-pix_fmt", fmt, e]);
        ffmpeg(&["-i", e, "-pix_fmt", fmt, "-f", "rawvideo", d]);
        let log = dir.path().join(format!("{tag}.json"));
        let out = Command::new(&oracle)
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", fmt, "-s", size, "-i", d])
            .args(["-f", "rawvideo", "-pix_fmt", fmt, "-s", size, "-i", r])
            .args(["-lavfi", &format!("libvmaf=log_path={}:log_fmt=json:n_threads=2:feature=name=psnr|name=float_ssim", log.display())])
            .args(["-f", "null", "-"])
            .output()
            .expect("oracle");
        assert!(out.status.success(), "oracle: {}", String::from_utf8_lossy(&out.stderr));
        let want: Value = serde_json::from_slice(&std::fs::read(&log).expect("log")).expect("oracle json");
        let (w, h) = size.split_once('x').expect("size");
        let got = vmaf(&["--ref", r, "--dist", d, "--width", w, "--height", h, "--pix-fmt", fmt]);
        let (gf, wf) = (got["frames"].as_array().expect("frames"), want["frames"].as_array().expect("oracle frames"));
        assert_eq!(gf.len(), wf.len(), "{tag}: frame count");
        let mut spread = 0.0f64;
        for (g, o) in gf.iter().zip(wf) {
            let (a, b) = (g["vmaf"].as_f64().expect("vmaf"), o["metrics"]["vmaf"].as_f64().expect("oracle vmaf"));
            assert!((a - b).abs() <= 0.01, "{tag} frame {}: {a} vs libvmaf {b}", g["frame"]);
            spread += (a - b).abs();
            for (ours, theirs) in [("adm2", "integer_adm2"), ("motion2", "integer_motion2"), ("vif_scale0", "integer_vif_scale0"), ("vif_scale3", "integer_vif_scale3")] {
                let (x, y) = (g[ours].as_f64().expect("feature"), o["metrics"][theirs].as_f64().expect("oracle feature"));
                assert!((x - y).abs() <= 2e-6, "{tag} frame {} {ours}: {x} vs {y}", g["frame"]);
            }
            // PSNR and SSIM beside VMAF, as libvmaf's psnr and float_ssim report them.
            for (ours, theirs, tol) in [("psnr_y", "psnr_y", 1e-5), ("ssim", "float_ssim", 5e-4)] {
                let (x, y) = (g[ours].as_f64().expect("metric"), o["metrics"][theirs].as_f64().expect("oracle metric"));
                assert!((x - y).abs() <= tol, "{tag} frame {} {ours}: {x} vs libvmaf {y}", g["frame"]);
            }
        }
        // A pair that is not trivially perfect: the test means something.
        let pooled = mean(&got);
        assert!(pooled < 99.0, "{tag}: VMAF {pooled} is too close to perfect to test anything");
        eprintln!("{tag}: VMAF {pooled:.3}, mean |delta| {:.6}", spread / gf.len() as f64);
    }
}
