//! Prints per-frame integer VIF (four scales), motion and motion2 of a raw
//! YUV 4:2:0 pair, one tab-separated line per frame, and timings on stderr.
//!
//! `cargo run --release -p reel-vmaf --example vif_dump -- REF.yuv DIS.yuv WIDTH HEIGHT BPC [MAX_FRAMES]`
use std::io::Read;
use std::time::Instant;

use reel_vmaf::{motion_blur, motion_sad, vif, Plane};

fn read_frames(path: &str, w: usize, h: usize, bpc: u8, max: usize) -> std::io::Result<Vec<Plane>> {
    let bytes = if bpc > 8 { 2 } else { 1 };
    let (cw, chh) = (w.div_ceil(2), h.div_ceil(2));
    let frame = (w * h + 2 * cw * chh) * bytes;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; frame];
    let mut out = Vec::new();
    while out.len() < max {
        match f.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let luma = &buf[..w * h * bytes];
        let data: Vec<u16> = if bytes == 2 {
            luma.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()
        } else {
            luma.iter().map(|&b| u16::from(b)).collect()
        };
        out.push(Plane::new(data, w, h, bpc));
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: vif_dump REF DIS WIDTH HEIGHT BPC [MAX_FRAMES]");
        std::process::exit(2);
    }
    let (w, h): (usize, usize) = (args[3].parse()?, args[4].parse()?);
    let bpc: u8 = args[5].parse()?;
    let max: usize = args.get(6).map(|s| s.parse()).transpose()?.unwrap_or(usize::MAX);
    let refs = read_frames(&args[1], w, h, bpc, max)?;
    let diss = read_frames(&args[2], w, h, bpc, max)?;
    let n = refs.len().min(diss.len());

    let t = Instant::now();
    let vifs: Vec<_> = (0..n).map(|i| vif(&refs[i], &diss[i])).collect();
    let t_vif = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let blurs: Vec<Vec<u16>> = refs[..n].iter().map(motion_blur).collect();
    let sads: Vec<f64> =
        (0..n).map(|i| if i == 0 { 0.0 } else { motion_sad(&blurs[i - 1], &blurs[i], w, h) }).collect();
    // motion2 as libvmaf derives it (reel_vmaf's motion2() once lib.rs exports it).
    let m2: Vec<f64> = (0..n)
        .map(|i| match i {
            0 => 0.0,
            _ if i + 1 < n => sads[i].min(sads[i + 1]),
            _ => sads[i],
        })
        .collect();
    let t_motion = t.elapsed().as_secs_f64();

    for i in 0..n {
        let v = &vifs[i];
        println!(
            "{i}\t{:.6}\t{:.6}\t{:.6}\t{:.6}\t{:.6}\t{:.6}",
            v.scale[0], v.scale[1], v.scale[2], v.scale[3], sads[i], m2[i]
        );
    }
    eprintln!(
        "{n} frames {w}x{h}: vif {:.3} s ({:.1} fps), motion {:.3} s ({:.1} fps)",
        t_vif,
        n as f64 / t_vif,
        t_motion,
        n as f64 / t_motion
    );
    Ok(())
}
