//! ADM against values recorded from libvmaf's `integer_adm` (ffmpeg's
//! libvmaf filter, n_threads=1, JSON log with 6 decimals). A value matches
//! when it rounds to the recorded 6-decimal figure.

use std::path::PathBuf;

use reel_vmaf::{adm, AdmScore, Plane};

fn yuv_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/vmaf/resource/yuv")
}

/// Luma of frame `index` of a raw 4:2:0 file (8-bit, or 16-bit LE words).
fn luma(file: &str, w: usize, h: usize, bpc: u8, index: usize) -> Plane {
    let path = yuv_dir().join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let word = if bpc > 8 { 2 } else { 1 };
    let frame = (w * h + 2 * w.div_ceil(2) * h.div_ceil(2)) * word;
    let start = index * frame;
    let y = &bytes[start..start + w * h * word];
    let data = if word == 2 {
        y.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    } else {
        y.iter().map(|&b| u16::from(b)).collect()
    };
    Plane::new(data, w, h, bpc)
}

/// `[adm2, scale0, scale1, scale2, scale3]` per frame, from the oracle.
type Expected = &'static [(usize, [f64; 5])];

const SPARKS_10: Expected = &[
    (0, [0.997872, 0.993741, 0.994942, 0.998699, 0.999452]),
    (1, [0.997654, 0.991924, 0.993782, 0.998909, 0.999671]),
    (2, [0.997769, 0.993282, 0.994286, 0.998699, 0.999568]),
    (3, [0.998644, 0.992483, 0.994158, 1.000047, 1.000889]),
    (4, [0.998811, 0.994123, 0.996651, 0.999538, 1.000287]),
];
const SRC01_10: Expected = &[
    (0, [0.962084, 0.946338, 0.939006, 0.957474, 0.980887]),
    (1, [0.949766, 0.929830, 0.916607, 0.938449, 0.978077]),
    (2, [0.943462, 0.912660, 0.902246, 0.927577, 0.981039]),
];
const SRC01_12: Expected = &[
    (0, [0.962084, 0.946338, 0.939006, 0.957474, 0.980887]),
    (2, [0.943462, 0.912660, 0.902246, 0.927577, 0.981039]),
];
const SRC01_16: Expected = &[(1, [0.949766, 0.929830, 0.916607, 0.938449, 0.978077])];
const Q160_8: Expected = &[
    (0, [0.988316, 0.981059, 0.983582, 0.989084, 0.992604]),
    (1, [0.984688, 0.974479, 0.980603, 0.989499, 0.986086]),
    (11, [0.977206, 0.964868, 0.963120, 0.981758, 0.984767]),
    (23, [0.979587, 0.968812, 0.970664, 0.982222, 0.985513]),
    (35, [0.978098, 0.962702, 0.967603, 0.986609, 0.981364]),
    (47, [0.980714, 0.969176, 0.973578, 0.982117, 0.986760]),
];

fn check(reference: &str, distorted: &str, w: usize, h: usize, bpc: u8, expected: Expected) {
    for &(frame, want) in expected {
        let r = luma(reference, w, h, bpc, frame);
        let d = luma(distorted, w, h, bpc, frame);
        let s: AdmScore = adm(&r, &d);
        let got = [s.adm2, s.scale[0], s.scale[1], s.scale[2], s.scale[3]];
        for (k, (&g, &e)) in got.iter().zip(&want).enumerate() {
            // Same figure at 6 decimals (half an ulp of the log, plus slack
            // for the decimal representation of the constant).
            assert!(
                (g - e).abs() <= 5.0e-7 + 1e-12,
                "{distorted} frame {frame} field {k}: got {g:.9}, libvmaf {e:.6}"
            );
        }
    }
}

#[test]
fn sparks_10bit() {
    check(
        "sparks_ref_480x270.yuv42010le.yuv",
        "sparks_dis_480x270.yuv42010le.yuv",
        480,
        270,
        10,
        SPARKS_10,
    );
}

#[test]
fn src01_10bit() {
    check(
        "src01_hrc00_576x324.yuv420p10le.yuv",
        "src01_hrc01_576x324.yuv420p10le.yuv",
        576,
        324,
        10,
        SRC01_10,
    );
}

#[test]
fn src01_12bit() {
    check(
        "src01_hrc00_576x324.yuv420p12le.yuv",
        "src01_hrc01_576x324.yuv420p12le.yuv",
        576,
        324,
        12,
        SRC01_12,
    );
}

#[test]
fn src01_16bit() {
    check(
        "src01_hrc00_576x324.yuv420p16le.yuv",
        "src01_hrc01_576x324.yuv420p16le.yuv",
        576,
        324,
        16,
        SRC01_16,
    );
}

#[test]
fn small_8bit_160x90() {
    check(
        "ref_test_0_1_src01_hrc00_576x324_576x324_vs_src01_hrc01_576x324_576x324_q_160x90.yuv",
        "dis_test_0_1_src01_hrc00_576x324_576x324_vs_src01_hrc01_576x324_576x324_q_160x90.yuv",
        160,
        90,
        8,
        Q160_8,
    );
}

/// Deterministic test pattern with some noise in the distorted copy.
fn synthetic(w: usize, h: usize, bpc: u8, noisy: bool) -> Plane {
    let max = (1u32 << bpc) - 1;
    let mut seed = 0x2545_f491u32;
    let data = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as u32, (i / w) as u32);
            let base = ((x * 7 + y * 13) % 64) * max / 100 + max / 5;
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let n = if noisy { seed % (max / 16 + 1) } else { 0 };
            (base + n).min(max) as u16
        })
        .collect();
    Plane::new(data, w, h, bpc)
}

#[test]
fn tiny_and_odd_sizes_do_not_panic() {
    for &(w, h) in &[
        (1, 1),
        (2, 3),
        (5, 4),
        (9, 17),
        (16, 16),
        (17, 31),
        (31, 16),
        (33, 33),
        (35, 47),
    ] {
        for bpc in [8u8, 10] {
            let r = synthetic(w, h, bpc, false);
            let d = synthetic(w, h, bpc, true);
            let s = adm(&r, &d);
            if w >= 16 && h >= 16 {
                assert!(s.adm2.is_finite(), "{w}x{h}: {s:?}");
            }
        }
    }
}

#[test]
fn identical_frames_score_one() {
    let r = synthetic(64, 48, 8, true);
    let s = adm(&r, &r.clone());
    // libvmaf itself reports ~1.00001 here (rounding in the integer pipeline).
    assert!((s.adm2 - 1.0).abs() < 1e-4, "{s:?}");
}

#[test]
fn mismatched_planes_are_nan() {
    let r = synthetic(64, 48, 8, false);
    let d = synthetic(48, 64, 8, false);
    assert!(adm(&r, &d).adm2.is_nan());
    let short = Plane {
        data: vec![0; 10],
        width: 64,
        height: 48,
        bpc: 8,
    };
    assert!(adm(&r, &short).adm2.is_nan());
}

/// Full-range noise (every code value equally likely), to drive the
/// integer pipeline to its extremes.
fn noise(w: usize, h: usize, bpc: u8, seed: u32) -> Plane {
    let max = (1u32 << bpc) - 1;
    let mut x = seed | 1;
    let data = (0..w * h)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % (max + 1)) as u16
        })
        .collect();
    Plane::new(data, w, h, bpc)
}

/// Scores of a fixed set of pairs, as exact bit patterns.
fn fingerprint() -> Vec<u64> {
    let mut out = Vec::new();
    for &(w, h, bpc) in &[
        (97, 61, 8),
        (130, 98, 10),
        (64, 48, 12),
        (71, 45, 16),
        (200, 120, 16),
    ] {
        let pairs = [
            (synthetic(w, h, bpc, false), synthetic(w, h, bpc, true)),
            (noise(w, h, bpc, 7), noise(w, h, bpc, 11)),
            (synthetic(w, h, bpc, true), noise(w, h, bpc, 3)),
        ];
        for (r, d) in &pairs {
            let s = adm(r, d);
            out.push(s.adm2.to_bits());
            out.extend(s.scale.iter().map(|v| v.to_bits()));
        }
    }
    out
}

/// Child side of `simd_builds_agree`: print the fingerprint of whatever
/// build the environment selects.
#[test]
fn fingerprint_child() {
    if std::env::var_os("ADM_FINGERPRINT_CHILD").is_some() {
        println!("\nFINGERPRINT {:?}", fingerprint());
    }
}

/// The AVX-512, AVX2 and portable builds of the kernels give bit-identical
/// scores (the build is chosen once per process, so each runs in a child).
#[test]
fn simd_builds_agree() {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let run = |var: Option<&str>| -> Option<String> {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([
            "--exact",
            "fingerprint_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ADM_FINGERPRINT_CHILD", "1")
        .env_remove("REEL_VMAF_NO_SIMD")
        .env_remove("REEL_VMAF_NO_AVX512");
        if let Some(v) = var {
            cmd.env(v, "1");
        }
        let out = cmd.output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.find("FINGERPRINT").map(|i| l[i..].to_owned()))
    };
    let default = run(None).expect("child run");
    for var in ["REEL_VMAF_NO_AVX512", "REEL_VMAF_NO_SIMD"] {
        assert_eq!(run(Some(var)).as_deref(), Some(default.as_str()), "{var}");
    }
}
