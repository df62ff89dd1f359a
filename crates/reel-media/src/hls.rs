//! Reading back what the packager wrote: each rendition's media playlist,
//! its measured bitrates and its codecs (from the init segment's `avcC`).

use crate::{io_err, LadderStep, MediaError, Result};
use std::path::Path;

/// A packaged rendition as the catalog records it.
#[derive(Debug, Clone, PartialEq)]
pub struct PackagedRendition {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Peak segment bitrate, bits per second (HLS `BANDWIDTH`).
    pub bandwidth: u64,
    /// Mean bitrate over the title (HLS `AVERAGE-BANDWIDTH`).
    pub average_bandwidth: u64,
    pub codecs: String,
    /// Media playlist path relative to the package directory.
    pub playlist: String,
    pub duration_s: f64,
}

/// Describes the renditions of a package directory laid out as
/// `<dir>/<step.name>/index.m3u8` with an init segment and media segments.
pub fn describe_package(dir: &Path, ladder: &[LadderStep]) -> Result<Vec<PackagedRendition>> {
    ladder.iter().map(|step| describe_rendition(dir, step.name, step.width, step.height)).collect()
}

/// The same, for renditions named at run time: `(name, width, height)`.
pub fn describe_renditions(dir: &Path, steps: &[(String, u32, u32)]) -> Result<Vec<PackagedRendition>> {
    steps.iter().map(|(name, w, h)| describe_rendition(dir, name, *w, *h)).collect()
}

/// A media playlist's init segment and its segments with durations.
pub struct MediaPlaylist {
    pub init: String,
    pub segments: Vec<(String, f64)>,
}

/// Reads a finished fMP4 media playlist.
pub fn read_media_playlist(path: &Path) -> Result<MediaPlaylist> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let incomplete = |what: &str| MediaError::Incomplete { dir: path.to_path_buf(), what: what.to_string() };
    if !text.starts_with("#EXTM3U") || !text.contains("#EXT-X-ENDLIST") {
        return Err(incomplete("not a finished playlist"));
    }
    let (mut init, mut segments, mut pending) = (None, Vec::new(), None);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            init = rest.split('"').next().map(str::to_string);
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            pending = rest.split(',').next().and_then(|d| d.trim().parse::<f64>().ok());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let dur = pending.take().ok_or_else(|| incomplete("segment without #EXTINF"))?;
            segments.push((line.trim().to_string(), dur));
        }
    }
    let init = init.ok_or_else(|| incomplete("no #EXT-X-MAP init segment"))?;
    Ok(MediaPlaylist { init, segments })
}

fn describe_rendition(dir: &Path, name: &str, width: u32, height: u32) -> Result<PackagedRendition> {
    let rdir = dir.join(name);
    let incomplete = |what: &str| MediaError::Incomplete { dir: dir.to_path_buf(), what: format!("{name}: {what}") };
    let playlist = read_media_playlist(&rdir.join("index.m3u8"))?;
    let mut total_bits = 0u64;
    let mut total_s = 0f64;
    let mut peak = 0f64;
    for (segment, dur) in &playlist.segments {
        let seg = rdir.join(segment);
        let bytes = std::fs::metadata(&seg).map_err(io_err(&seg))?.len();
        total_bits += bytes * 8;
        total_s += dur;
        if *dur > 0.5 {
            peak = peak.max((bytes * 8) as f64 / dur);
        }
    }
    let init_path = rdir.join(&playlist.init);
    let init_bytes = std::fs::read(&init_path).map_err(io_err(&init_path))?;
    let video = avc_codec(&init_bytes).ok_or_else(|| incomplete("init segment has no avcC box"))?;
    let has_audio = init_bytes.windows(4).any(|w| w == b"mp4a");
    let codecs = if has_audio { format!("{video},mp4a.40.2") } else { video };
    if total_s <= 0.0 {
        return Err(incomplete("no segments"));
    }
    let average = total_bits as f64 / total_s;
    Ok(PackagedRendition {
        name: name.to_string(),
        width,
        height,
        bandwidth: peak.max(average).ceil() as u64,
        average_bandwidth: average.ceil() as u64,
        codecs,
        playlist: format!("{name}/index.m3u8"),
        duration_s: total_s,
    })
}

/// `avc1.PPCCLL` from the first `avcC` box: profile, constraint flags, level.
fn avc_codec(init: &[u8]) -> Option<String> {
    let at = init.windows(4).position(|w| w == b"avcC")?;
    let b = init.get(at + 5..at + 8)?;
    Some(format!("avc1.{:02x}{:02x}{:02x}", b[0], b[1], b[2]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn avcc_codec_string() {
        // "avcC" then configurationVersion=1, profile 0x64 (High), compat 0, level 0x1f (3.1).
        let bytes = [0, 0, 0, 9, b'a', b'v', b'c', b'C', 1, 0x64, 0x00, 0x1f, 0xff];
        assert_eq!(super::avc_codec(&bytes).as_deref(), Some("avc1.64001f"));
        assert_eq!(super::avc_codec(b"nothing here"), None);
    }
}
