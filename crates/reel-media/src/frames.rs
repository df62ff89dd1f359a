//! Decoded frames for quality measurement: raw planar YUV (given its size
//! and format), YUV4MPEG2, or any video ffmpeg decodes, optionally scaled
//! (bicubic, as a player would) to the reference's size. Only luma is kept.

use crate::{MediaError, Result};
use reel_vmaf::Plane;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Chroma subsampling of a planar YUV layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroma {
    Gray,
    Yuv420,
    Yuv422,
    Yuv444,
}

/// A raw frame layout: chroma subsampling and bits per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixFmt {
    pub chroma: Chroma,
    pub bpc: u8,
}

impl PixFmt {
    /// Parses an ffmpeg pixel-format name: `yuv420p`, `yuv420p10le`,
    /// `yuv422p12le`, `yuv444p16le`, `gray`, `gray10le`...
    pub fn parse(name: &str) -> Option<PixFmt> {
        let (chroma, rest) = if let Some(r) = name.strip_prefix("yuv420p") {
            (Chroma::Yuv420, r)
        } else if let Some(r) = name.strip_prefix("yuvj420p") {
            (Chroma::Yuv420, r)
        } else if let Some(r) = name.strip_prefix("yuv422p") {
            (Chroma::Yuv422, r)
        } else if let Some(r) = name.strip_prefix("yuvj422p") {
            (Chroma::Yuv422, r)
        } else if let Some(r) = name.strip_prefix("yuv444p") {
            (Chroma::Yuv444, r)
        } else if let Some(r) = name.strip_prefix("yuvj444p") {
            (Chroma::Yuv444, r)
        } else if let Some(r) = name.strip_prefix("gray") {
            (Chroma::Gray, r)
        } else {
            return None;
        };
        let bpc = match rest {
            "" => 8,
            "9le" => 9,
            "10le" => 10,
            "12le" => 12,
            "14le" => 14,
            "16le" => 16,
            _ => return None,
        };
        Some(PixFmt { chroma, bpc })
    }

    /// The ffmpeg name of this layout.
    pub fn name(&self) -> String {
        let base = match self.chroma {
            Chroma::Gray => "gray",
            Chroma::Yuv420 => "yuv420p",
            Chroma::Yuv422 => "yuv422p",
            Chroma::Yuv444 => "yuv444p",
        };
        if self.bpc == 8 { base.to_string() } else { format!("{base}{}le", self.bpc) }
    }

    fn bytes_per_sample(&self) -> usize {
        if self.bpc > 8 { 2 } else { 1 }
    }

    fn luma_bytes(&self, w: usize, h: usize) -> usize {
        w * h * self.bytes_per_sample()
    }

    fn frame_bytes(&self, w: usize, h: usize) -> usize {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let chroma = match self.chroma {
            Chroma::Gray => 0,
            Chroma::Yuv420 => 2 * cw * ch,
            Chroma::Yuv422 => 2 * cw * h,
            Chroma::Yuv444 => 2 * w * h,
        };
        (w * h + chroma) * self.bytes_per_sample()
    }
}

/// How to open one input.
#[derive(Debug, Clone)]
pub struct InputSpec {
    pub path: PathBuf,
    /// Size and format of raw YUV input; `None` for y4m or video files.
    pub raw: Option<(usize, usize, PixFmt)>,
}

/// Width, height, format and (when known) frame count of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub width: usize,
    pub height: usize,
    pub fmt: PixFmt,
    pub frames: Option<u64>,
}

enum Layout {
    Raw,
    Y4m,
}

/// Reads frames one at a time. Raw and y4m files are read directly; other
/// files, and anything that must be scaled, go through ffmpeg.
pub struct FrameReader {
    src: Box<dyn BufRead + Send>,
    child: Option<Child>,
    layout: Layout,
    shape: Shape,
    buf: Vec<u8>,
    index: u64,
    label: String,
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn is_y4m(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("y4m"))
}

fn bad(path: &Path, what: impl Into<String>) -> MediaError {
    MediaError::BadInput { path: path.to_path_buf(), what: what.into() }
}

/// The largest frame side read (16K); larger sizes are a typo or a
/// damaged header, and would ask for more memory than a machine has.
pub const MAX_SIDE: usize = 16_384;

fn check_size(path: &Path, w: usize, h: usize, source: &str) -> Result<()> {
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(bad(path, format!("{w}x{h} (from {source}) is not a supported frame size: each side from 1 to {MAX_SIDE}")));
    }
    Ok(())
}

/// The shape of an input without decoding it (ffprobe for video files).
pub fn probe_shape(spec: &InputSpec) -> Result<Shape> {
    let path = &spec.path;
    let meta = std::fs::metadata(path).map_err(crate::io_err(path))?;
    if meta.is_dir() {
        return Err(bad(path, "is a directory, not a video"));
    }
    if let Some((w, h, fmt)) = spec.raw {
        check_size(path, w, h, "--width and --height")?;
        let fb = fmt.frame_bytes(w, h) as u64;
        if meta.len() == 0 || meta.len() % fb != 0 {
            return Err(bad(
                path,
                format!(
                    "is {} bytes, not a whole number of {w}x{h} {} frames ({fb} bytes each); check --width, --height and --pix-fmt",
                    meta.len(),
                    fmt.name()
                ),
            ));
        }
        return Ok(Shape { width: w, height: h, fmt, frames: Some(meta.len() / fb) });
    }
    if is_y4m(path) {
        let f = std::fs::File::open(path).map_err(crate::io_err(path))?;
        let mut r = BufReader::new(f);
        let (w, h, fmt, header_len) = read_y4m_header(&mut r, path)?;
        check_size(path, w, h, "its y4m header")?;
        let per = (fmt.frame_bytes(w, h) + 6) as u64;
        let frames = meta.len().saturating_sub(header_len as u64) / per;
        return Ok(Shape { width: w, height: h, fmt, frames: Some(frames) });
    }
    let p = crate::probe::probe_video(path)?;
    check_size(path, p.width as usize, p.height as usize, "its video stream")?;
    Ok(Shape {
        width: p.width as usize,
        height: p.height as usize,
        fmt: PixFmt::parse(&p.pix_fmt).unwrap_or(PixFmt { chroma: Chroma::Yuv420, bpc: p.bits }),
        frames: p.frames,
    })
}

fn read_y4m_header(r: &mut impl BufRead, path: &Path) -> Result<(usize, usize, PixFmt, usize)> {
    let mut line = Vec::new();
    r.take(4096).read_until(b'\n', &mut line).map_err(crate::io_err(path))?;
    let text = String::from_utf8_lossy(&line);
    let mut tokens = text.split_whitespace();
    if tokens.next() != Some("YUV4MPEG2") {
        return Err(bad(path, "is not a YUV4MPEG2 file (no YUV4MPEG2 header)"));
    }
    let (mut w, mut h, mut fmt) = (0usize, 0usize, PixFmt { chroma: Chroma::Yuv420, bpc: 8 });
    for t in tokens {
        match t.split_at(1) {
            ("W", v) => w = v.parse().unwrap_or(0),
            ("H", v) => h = v.parse().unwrap_or(0),
            ("C", v) => {
                let (chroma, bits) = if let Some(b) = v.strip_prefix("420") {
                    (Chroma::Yuv420, b)
                } else if let Some(b) = v.strip_prefix("422") {
                    (Chroma::Yuv422, b)
                } else if let Some(b) = v.strip_prefix("444") {
                    (Chroma::Yuv444, b)
                } else if let Some(b) = v.strip_prefix("mono") {
                    (Chroma::Gray, b)
                } else {
                    return Err(bad(path, format!("y4m colour space {v} is not supported")));
                };
                // 420jpeg, 420mpeg2, 420paldv and plain 420 are 8-bit.
                let bpc = bits.strip_prefix('p').and_then(|b| b.parse::<u8>().ok()).unwrap_or(8);
                fmt = PixFmt { chroma, bpc };
            }
            _ => {}
        }
    }
    if w == 0 || h == 0 {
        return Err(bad(path, "y4m header has no frame size"));
    }
    Ok((w, h, fmt, line.len()))
}

impl FrameReader {
    /// Opens `spec`; with `scale_to`, frames are scaled (bicubic) to that
    /// size by ffmpeg, and `out_bpc` picks the depth they are decoded at.
    pub fn open(spec: &InputSpec, scale_to: Option<(usize, usize)>, out_bpc: Option<u8>) -> Result<FrameReader> {
        let path = &spec.path;
        let shape = probe_shape(spec)?;
        let direct = scale_to.is_none_or(|s| s == (shape.width, shape.height))
            && out_bpc.is_none_or(|b| b == shape.fmt.bpc)
            && (spec.raw.is_some() || is_y4m(path));
        let label = path.display().to_string();
        if direct {
            let f = std::fs::File::open(path).map_err(crate::io_err(path))?;
            let mut src: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1 << 20, f));
            let layout = if spec.raw.is_some() {
                Layout::Raw
            } else {
                read_y4m_header(&mut src, path)?;
                Layout::Y4m
            };
            return Ok(FrameReader { src, child: None, layout, shape, buf: Vec::new(), index: 0, label });
        }
        let ffmpeg = crate::find_ffmpeg()?;
        let (w, h) = scale_to.unwrap_or((shape.width, shape.height));
        // Decoded as 4:2:0 at the nearest depth ffmpeg writes (8, 10, 12, 16).
        let bpc = match out_bpc.unwrap_or(shape.fmt.bpc) {
            0..=8 => 8,
            9 | 10 => 10,
            11 | 12 => 12,
            _ => 16,
        };
        let fmt = PixFmt { chroma: Chroma::Yuv420, bpc };
        let mut cmd = Command::new(&ffmpeg);
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
        if let Some((rw, rh, rf)) = spec.raw {
            cmd.args(["-f", "rawvideo", "-pix_fmt", &rf.name(), "-s", &format!("{rw}x{rh}")]);
        }
        cmd.arg("-i").arg(path);
        cmd.args(["-map", "0:v:0", "-vf", &format!("scale={w}:{h}:flags=bicubic")]);
        cmd.args(["-f", "rawvideo", "-pix_fmt", &fmt.name(), "-"]);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| MediaError::Io { path: ffmpeg.clone(), source: e })?;
        let out = child.stdout.take().ok_or_else(|| bad(path, "ffmpeg gave no output pipe"))?;
        let shape = Shape { width: w, height: h, fmt, frames: shape.frames };
        Ok(FrameReader {
            src: Box::new(BufReader::with_capacity(1 << 20, out)),
            child: Some(child),
            layout: Layout::Raw,
            shape,
            buf: Vec::new(),
            index: 0,
            label,
        })
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The next frame's luma, or `None` at the end.
    pub fn next_frame(&mut self) -> Result<Option<Plane>> {
        let Shape { width: w, height: h, fmt, .. } = self.shape;
        if let Layout::Y4m = self.layout {
            let mut marker = Vec::new();
            let n = (&mut self.src).take(1024).read_until(b'\n', &mut marker).map_err(|e| self.io(e))?;
            if n == 0 {
                return Ok(None);
            }
            if !marker.starts_with(b"FRAME") {
                return Err(bad(Path::new(&self.label), format!("frame {} has no FRAME marker (corrupt y4m)", self.index)));
            }
        }
        let size = fmt.frame_bytes(w, h);
        self.buf.resize(size, 0);
        let mut filled = 0;
        while filled < size {
            let n = self.src.read(&mut self.buf[filled..]).map_err(|e| self.io(e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return self.finish().map(|()| None);
        }
        if filled < size {
            return Err(bad(
                Path::new(&self.label),
                format!("is truncated: frame {} has {filled} of {size} bytes", self.index),
            ));
        }
        self.index += 1;
        let luma = &self.buf[..fmt.luma_bytes(w, h)];
        let data: Vec<u16> = if fmt.bpc == 8 {
            luma.iter().map(|&b| u16::from(b)).collect()
        } else {
            luma.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()
        };
        Ok(Some(Plane::new(data, w, h, fmt.bpc)))
    }

    fn io(&self, e: std::io::Error) -> MediaError {
        MediaError::Io { path: PathBuf::from(&self.label), source: e }
    }

    /// At the end of a decoded stream, ffmpeg's exit status says whether
    /// the file was whole.
    fn finish(&mut self) -> Result<()> {
        let Some(child) = self.child.take() else { return Ok(()) };
        let out = child.wait_with_output().map_err(|e| self.io(e))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(bad(
                Path::new(&self.label),
                format!("cannot be decoded: {}", stderr.lines().last().unwrap_or("ffmpeg failed")),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_formats() {
        let f = PixFmt::parse("yuv420p10le").unwrap();
        assert_eq!((f.chroma, f.bpc), (Chroma::Yuv420, 10));
        assert_eq!(f.frame_bytes(480, 270), 480 * 270 * 3);
        assert_eq!(PixFmt::parse("yuv420p").unwrap().frame_bytes(161, 91), 161 * 91 + 2 * 81 * 46);
        assert_eq!(PixFmt::parse("yuv444p16le").unwrap().name(), "yuv444p16le");
        assert!(PixFmt::parse("rgb24").is_none());
    }
}
