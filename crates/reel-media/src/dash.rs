//! A DASH manifest over an HLS fMP4 package: the same init and media
//! segments (CMAF), described by an MPD with one SegmentTimeline per
//! representation, so one package serves both protocols.

use crate::{read_media_playlist, MediaError, Result};
use std::fmt::Write as _;
use std::path::Path;

/// What the MPD needs of a rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct DashRendition {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bandwidth: u64,
    pub codecs: String,
    /// Media playlist relative to the package folder (`480p/index.m3u8`).
    pub playlist: String,
}

impl From<&crate::PackagedRendition> for DashRendition {
    fn from(p: &crate::PackagedRendition) -> Self {
        DashRendition {
            name: p.name.clone(),
            width: p.width,
            height: p.height,
            bandwidth: p.bandwidth,
            codecs: p.codecs.clone(),
            playlist: p.playlist.clone(),
        }
    }
}

const TIMESCALE: u64 = 1000;

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Writes the MPD for the renditions of the package in `dir`. Segment URLs
/// are relative to the MPD (`<rendition>/<segment>`).
pub fn mpd(dir: &Path, renditions: &[DashRendition]) -> Result<String> {
    if renditions.is_empty() {
        return Err(MediaError::Incomplete { dir: dir.to_path_buf(), what: "no renditions to describe".into() });
    }
    let mut reps = String::new();
    let mut duration_ms = 0u64;
    for r in renditions {
        let folder = r.playlist.rsplit_once('/').map_or("", |(f, _)| f);
        let pl = read_media_playlist(&dir.join(&r.playlist))?;
        let mut timeline = String::new();
        let (mut t, mut elapsed_s) = (0u64, 0f64);
        let mut run: Option<(u64, u64, u64)> = None; // (start, duration, repeats)
        let flush = |timeline: &mut String, run: (u64, u64, u64)| {
            let (s, d, rpt) = run;
            if rpt > 0 {
                let _ = write!(timeline, "<S t=\"{s}\" d=\"{d}\" r=\"{rpt}\"/>");
            } else {
                let _ = write!(timeline, "<S t=\"{s}\" d=\"{d}\"/>");
            }
        };
        for (_, secs) in &pl.segments {
            // Round each segment's end, not its length, so rounding never drifts.
            elapsed_s += secs;
            let d = ((elapsed_s * TIMESCALE as f64).round() as u64).saturating_sub(t).max(1);
            run = match run {
                Some((s, rd, rpt)) if rd == d => Some((s, rd, rpt + 1)),
                Some(prev) => {
                    flush(&mut timeline, prev);
                    Some((t, d, 0))
                }
                None => Some((t, d, 0)),
            };
            t += d;
        }
        if let Some(prev) = run {
            flush(&mut timeline, prev);
        }
        duration_ms = duration_ms.max(t);
        // Segment names come from our packager: seg_000.m4s ... in order.
        let first = pl.segments.first().map(|s| s.0.as_str()).unwrap_or("seg_000.m4s");
        let start_number: u64 = first.trim_start_matches("seg_").trim_end_matches(".m4s").parse().unwrap_or(0);
        let prefix = if folder.is_empty() { String::new() } else { format!("{}/", xml_escape(folder)) };
        let _ = write!(
            reps,
            "      <Representation id=\"{id}\" bandwidth=\"{bw}\" width=\"{w}\" height=\"{h}\" codecs=\"{codecs}\">\n        \
             <SegmentTemplate timescale=\"{TIMESCALE}\" initialization=\"{prefix}{init}\" media=\"{prefix}seg_$Number%03d$.m4s\" startNumber=\"{start_number}\">\n          \
             <SegmentTimeline>{timeline}</SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n",
            id = xml_escape(&r.name),
            bw = r.bandwidth,
            w = r.width,
            h = r.height,
            codecs = xml_escape(&r.codecs),
            init = xml_escape(&pl.init),
        );
    }
    let max_w = renditions.iter().map(|r| r.width).max().unwrap_or(0);
    let max_h = renditions.iter().map(|r| r.height).max().unwrap_or(0);
    let dur = format!("PT{}.{:03}S", duration_ms / 1000, duration_ms % 1000);
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"static\" \
         mediaPresentationDuration=\"{dur}\" minBufferTime=\"PT2S\">\n  <Period id=\"0\" start=\"PT0S\">\n    \
         <AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" maxWidth=\"{max_w}\" maxHeight=\"{max_h}\">\n\
         {reps}    </AdaptationSet>\n  </Period>\n</MPD>\n"
    ))
}

/// The MPD for a freshly written package.
pub fn mpd_for_package(dir: &Path, renditions: &[crate::PackagedRendition]) -> Result<String> {
    let list: Vec<DashRendition> = renditions.iter().map(DashRendition::from).collect();
    mpd(dir, &list)
}
