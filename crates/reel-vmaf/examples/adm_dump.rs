//! Print per-frame ADM scores of a raw YUV 4:2:0 pair as JSON lines.
//!
//! `cargo run --release -p reel-vmaf --example adm_dump -- REF DIS WIDTH HEIGHT BITS [FRAMES]`
//!
//! BITS is 8 (yuv420p) or 10/12/16 (little-endian 16-bit samples). The
//! total time spent in `adm` is printed to stderr.
use std::io::Read;
use std::time::Instant;

use reel_vmaf::{adm, Plane};

fn read_luma(f: &mut std::fs::File, w: usize, h: usize, bits: u8) -> Option<Plane> {
    let bytes = if bits > 8 { 2 } else { 1 };
    let luma = w * h;
    let chroma = 2 * w.div_ceil(2) * h.div_ceil(2);
    let mut buf = vec![0u8; (luma + chroma) * bytes];
    f.read_exact(&mut buf).ok()?;
    let data: Vec<u16> = if bytes == 2 {
        buf[..luma * 2]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    } else {
        buf[..luma].iter().map(|&b| u16::from(b)).collect()
    };
    Some(Plane::new(data, w, h, bits))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        return Err("usage: adm_dump REF DIS WIDTH HEIGHT BITS [FRAMES]".into());
    }
    let w: usize = args[3].parse()?;
    let h: usize = args[4].parse()?;
    let bits: u8 = args[5].parse()?;
    let max: usize = match args.get(6) {
        Some(s) => s.parse()?,
        None => usize::MAX,
    };
    let mut fr = std::fs::File::open(&args[1])?;
    let mut fd = std::fs::File::open(&args[2])?;
    // ADM_DUMP_SKIP=1: read the frames only (to measure the I/O overhead).
    let skip = std::env::var_os("ADM_DUMP_SKIP").is_some_and(|v| !v.is_empty());
    let mut total = 0.0f64;
    let mut count = 0usize;
    while count < max {
        let (Some(r), Some(d)) = (
            read_luma(&mut fr, w, h, bits),
            read_luma(&mut fd, w, h, bits),
        ) else {
            break;
        };
        if skip {
            count += 1;
            continue;
        }
        let t = Instant::now();
        let s = adm(&r, &d);
        total += t.elapsed().as_secs_f64();
        println!(
            "{{\"frame\":{count},\"adm2\":{:.17e},\"scale0\":{:.17e},\"scale1\":{:.17e},\"scale2\":{:.17e},\"scale3\":{:.17e}}}",
            s.adm2, s.scale[0], s.scale[1], s.scale[2], s.scale[3]
        );
        count += 1;
    }
    eprintln!(
        "{count} frames, adm {:.3} s, {:.2} ms/frame, {:.1} frames/s",
        total,
        1e3 * total / count.max(1) as f64,
        count as f64 / total.max(1e-12)
    );
    Ok(())
}
