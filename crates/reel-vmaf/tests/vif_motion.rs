//! Integer VIF and motion against values recorded from libvmaf (the static
//! ffmpeg's `libvmaf` filter, `n_threads=1`, 6-decimal JSON log).
use reel_vmaf::{motion_blur, motion_sad, vif, Plane};

const YUV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/vmaf/resource/yuv/");

/// (frame, vif scale 0..3, motion score, motion2), from libvmaf n_threads=1.
const EIGHT: &[(usize, [f64; 4], f64, f64)] = &[
    (0, [0.813397, 0.983615, 0.990968, 0.994069], 0.0, 0.0),
    (1, [0.737025, 0.97302, 0.988166, 0.992583], 1.630327, 1.559575),
    (2, [0.719199, 0.969613, 0.985632, 0.990765], 1.559575, 1.509056),
    (23, [0.700144, 0.951862, 0.971127, 0.976727], 1.831251, 1.831251),
    (46, [0.714205, 0.967642, 0.983452, 0.988886], 1.834245, 1.834245),
    (47, [0.737226, 0.971545, 0.986021, 0.991096], 1.875277, 1.875277),
];
/// (frame, vif scale 0..3, motion score, motion2), from libvmaf n_threads=1.
const SPARKS10: &[(usize, [f64; 4], f64, f64)] = &[
    (0, [0.933186, 0.997187, 0.998732, 0.999293], 0.0, 0.0),
    (1, [0.911721, 0.995613, 0.99812, 0.998787], 0.775779, 0.775779),
    (2, [0.924146, 0.996914, 0.998733, 0.999348], 0.78614, 0.78614),
    (3, [0.91521, 0.996604, 0.998774, 0.999551], 2.663689, 1.099834),
    (4, [0.936335, 0.997857, 0.999289, 0.99975], 1.099834, 1.099834),
];
/// (frame, vif scale 0..3, motion score, motion2), from libvmaf n_threads=1.
const SRC01_10: &[(usize, [f64; 4], f64, f64)] = &[
    (0, [0.505712, 0.879061, 0.937873, 0.964301], 0.0, 0.0),
    (1, [0.411649, 0.81354, 0.894563, 0.936879], 4.579442, 4.214327),
    (2, [0.381907, 0.799238, 0.889201, 0.936508], 4.214327, 4.214327),
];
/// (frame, vif scale 0..3, motion score, motion2), from libvmaf n_threads=1.
const SRC01_12: &[(usize, [f64; 4], f64, f64)] = &[
    (0, [0.505712, 0.879061, 0.937873, 0.964301], 0.0, 0.0),
    (1, [0.411649, 0.81354, 0.894563, 0.936879], 4.579442, 4.214327),
    (2, [0.381907, 0.799238, 0.889201, 0.936508], 4.214327, 4.214327),
];
/// (frame, vif scale 0..3, motion score, motion2), from libvmaf n_threads=1.
const SRC01_16: &[(usize, [f64; 4], f64, f64)] = &[
    (0, [0.505712, 0.879061, 0.937873, 0.964301], 0.0, 0.0),
    (1, [0.411649, 0.81354, 0.894563, 0.936879], 4.579442, 4.214327),
    (2, [0.381907, 0.799238, 0.889201, 0.936508], 4.214327, 4.214327),
];

/// Luma planes of a raw YUV 4:2:0 file, or `None` when the data set is absent.
fn luma(name: &str, w: usize, h: usize, bpc: u8) -> Option<Vec<Plane>> {
    let bytes = std::fs::read(format!("{YUV}{name}")).ok()?;
    let bps = if bpc > 8 { 2 } else { 1 };
    let frame = (w * h + 2 * w.div_ceil(2) * h.div_ceil(2)) * bps;
    Some(
        bytes
            .chunks_exact(frame)
            .map(|f| {
                let y = &f[..w * h * bps];
                let data = if bps == 2 {
                    y.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()
                } else {
                    y.iter().map(|&b| u16::from(b)).collect()
                };
                Plane::new(data, w, h, bpc)
            })
            .collect(),
    )
}

fn check(ref_name: &str, dis_name: &str, w: usize, h: usize, bpc: u8, expected: &[(usize, [f64; 4], f64, f64)]) {
    let (Some(refs), Some(diss)) = (luma(ref_name, w, h, bpc), luma(dis_name, w, h, bpc)) else {
        eprintln!("skipping: {ref_name} not found under {YUV}");
        return;
    };
    let n = refs.len().min(diss.len());
    let blurs: Vec<Vec<u16>> = refs[..n].iter().map(motion_blur).collect();
    let motion: Vec<f64> =
        (0..n).map(|i| if i == 0 { 0.0 } else { motion_sad(&blurs[i - 1], &blurs[i], w, h) }).collect();
    for &(i, scales, m, m2) in expected {
        assert!(i < n, "{ref_name}: frame {i} missing");
        let got = vif(&refs[i], &diss[i]);
        for (k, (&g, &e)) in got.scale.iter().zip(&scales).enumerate() {
            assert!((g - e).abs() <= 1e-6, "{ref_name} frame {i} vif scale {k}: {g} vs libvmaf {e}");
        }
        assert!((motion[i] - m).abs() <= 1e-6, "{ref_name} frame {i} motion: {} vs libvmaf {m}", motion[i]);
        let got2 = match i {
            0 => 0.0,
            _ if i + 1 < n => motion[i].min(motion[i + 1]),
            _ => motion[i],
        };
        assert!((got2 - m2).abs() <= 1e-6, "{ref_name} frame {i} motion2: {got2} vs libvmaf {m2}");
    }
}

#[test]
fn eight_bit_160x90() {
    check(
        "ref_test_0_1_src01_hrc00_576x324_576x324_vs_src01_hrc01_576x324_576x324_q_160x90.yuv",
        "dis_test_0_1_src01_hrc00_576x324_576x324_vs_src01_hrc01_576x324_576x324_q_160x90.yuv",
        160,
        90,
        8,
        EIGHT,
    );
}

#[test]
fn ten_bit_sparks() {
    check("sparks_ref_480x270.yuv42010le.yuv", "sparks_dis_480x270.yuv42010le.yuv", 480, 270, 10, SPARKS10);
}

#[test]
fn ten_twelve_sixteen_bit_src01() {
    for (bpc, expected) in [(10u8, SRC01_10), (12, SRC01_12), (16, SRC01_16)] {
        check(
            &format!("src01_hrc00_576x324.yuv420p{bpc}le.yuv"),
            &format!("src01_hrc01_576x324.yuv420p{bpc}le.yuv"),
            576,
            324,
            bpc,
            expected,
        );
    }
}

/// Every size from the 16x16 minimum up, odd and even, at 8 and 16 bits,
/// on full-range noise: no panics, finite scores; identical planes score 1.
#[test]
fn small_and_odd_sizes_do_not_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (w, h) in [(16, 16), (17, 16), (16, 17), (17, 17), (31, 18), (33, 19), (47, 35), (64, 20)] {
        for bpc in [8u8, 10, 16] {
            let max = (1u64 << bpc) - 1;
            let a: Vec<u16> = (0..w * h).map(|_| (next() % (max + 1)) as u16).collect();
            let b: Vec<u16> = (0..w * h).map(|_| (next() % (max + 1)) as u16).collect();
            let (pa, pb) = (Plane::new(a, w, h, bpc), Plane::new(b, w, h, bpc));
            let s = vif(&pa, &pb);
            assert!(s.scale.iter().all(|v| v.is_finite()), "{w}x{h}@{bpc}: {:?}", s.scale);
            let same = vif(&pa, &pa);
            assert!(same.scale.iter().all(|v| (v - 1.0).abs() < 1e-3), "{w}x{h}@{bpc}: {:?}", same.scale);
            let m = motion_sad(&motion_blur(&pa), &motion_blur(&pb), w, h);
            assert!(m.is_finite() && m >= 0.0);
            assert_eq!(motion_sad(&motion_blur(&pa), &motion_blur(&pa), w, h), 0.0);
        }
    }
    // Below the minimum: documented neutral scores, no panic.
    let tiny = Plane::new(vec![7; 8 * 5], 8, 5, 8);
    assert_eq!(vif(&tiny, &tiny).scale, [1.0; 4]);
    let _ = motion_sad(&motion_blur(&tiny), &motion_blur(&tiny), 8, 5);
}

/// The AVX-512, AVX2 and portable builds all give libvmaf's values: the
/// exactness tests above rerun in child processes with each build forced
/// (the build is chosen once per process).
#[test]
fn every_simd_build_is_exact() {
    if std::env::var_os("REEL_VMAF_CHILD").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    for var in ["REEL_VMAF_NO_AVX512", "REEL_VMAF_NO_SIMD"] {
        for test in ["eight_bit_160x90", "ten_bit_sparks", "ten_twelve_sixteen_bit_src01"] {
            let out = std::process::Command::new(&exe)
                .args(["--exact", test, "--test-threads=1"])
                .env("REEL_VMAF_CHILD", "1")
                .env(var, "1")
                .output()
                .expect("rerun the test binary");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && text.contains("1 passed"), "{test} with {var}: {text}{}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
