//! Proactive fill: inside its fill window the appliance asks the control
//! plane which titles it should hold and pulls every object of them
//! (master, rendition playlists, init and media segments) through the same
//! single-flight fill as a viewer's miss, no faster than its byte rate.

use crate::Edge;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A daily window in UTC, `start..end` minutes after midnight; it may wrap
/// midnight (22:00-04:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillWindow {
    pub start_min: u32,
    pub end_min: u32,
}

impl std::str::FromStr for FillWindow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("{s:?} is not a window like 02:00-06:00 (UTC)");
        let minutes = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
        };
        let (a, b) = s.split_once('-').ok_or_else(err)?;
        Ok(FillWindow { start_min: minutes(a).ok_or_else(err)?, end_min: minutes(b).ok_or_else(err)? })
    }
}

impl FillWindow {
    pub fn contains(&self, minute_of_day: u32) -> bool {
        if self.start_min <= self.end_min {
            (self.start_min..self.end_min).contains(&minute_of_day)
        } else {
            minute_of_day >= self.start_min || minute_of_day < self.end_min
        }
    }

    fn now_contains(&self) -> bool {
        let s = (reel_domain::now_ms() / 1000).max(0) as u64;
        self.contains(((s % 86_400) / 60) as u32)
    }
}

/// What proactive fill has done.
#[derive(Debug, Default)]
pub struct PrefillCounters {
    pub objects: AtomicU64,
    pub bytes: AtomicU64,
}

fn uris(playlist: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in playlist.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            if let Some(u) = rest.split('"').next() {
                out.push(u.to_string());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            out.push(line.trim().to_string());
        }
    }
    out
}

/// Pulls every object of `titles` into the cache, pacing to `bytes_per_s`.
/// Objects already cached cost nothing. Returns the bytes fetched.
pub async fn prefill(edge: &Arc<Edge>, titles: &[String], bytes_per_s: u64) -> u64 {
    let mut fetched = 0u64;
    let pace = |bytes: u64| Duration::from_secs_f64(bytes as f64 / bytes_per_s.max(1) as f64);
    for title in titles {
        let Ok(master) = edge.ensure(&format!("{title}/master.m3u8")).await else { continue };
        let Ok(master) = std::str::from_utf8(&master) else { continue };
        // The DASH manifest describes the same segments; a title packaged
        // before DASH existed simply has none.
        let _ = edge.ensure(&format!("{title}/manifest.mpd")).await;
        for variant in uris(master) {
            // "720p/index.m3u8" -> rendition "720p".
            let Some((rendition, _)) = variant.split_once('/') else { continue };
            let key = format!("{title}/{variant}");
            let Ok(playlist) = edge.ensure(&key).await else { continue };
            let Ok(playlist) = std::str::from_utf8(&playlist) else { continue };
            for object in uris(playlist) {
                let key = format!("{title}/{rendition}/{object}");
                if edge.cache.path_of(&key).is_some() {
                    continue;
                }
                let before = edge.counters.upstream_fetches.load(Ordering::Relaxed);
                if let Ok(object) = edge.ensure(&key).await {
                    if edge.counters.upstream_fetches.load(Ordering::Relaxed) > before {
                        let size = object.len() as u64;
                        fetched += size;
                        edge.prefill.objects.fetch_add(1, Ordering::Relaxed);
                        edge.prefill.bytes.fetch_add(size, Ordering::Relaxed);
                        tokio::time::sleep(pace(size)).await;
                    }
                }
            }
        }
    }
    fetched
}

/// Inside the window, every `every`: ask the control plane for this
/// appliance's plan (a request signed with the fleet key) and prefill it.
pub async fn prefill_loop(edge: Arc<Edge>, window: FillWindow, bytes_per_s: u64, every: Duration) {
    let Some(control) = edge.config.control_url.clone() else { return };
    let id = edge.config.appliance_id.clone();
    let url = format!("{}/api/v1/fleet/appliances/{id}/fill-plan", control.trim_end_matches('/'));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        if !window.now_contains() {
            continue;
        }
        let now = reel_domain::now_ms() / 1000;
        let stamp = format!("{id}:{now}");
        let res = http
            .get(&url)
            .header("x-reel-time", now.to_string())
            .header("x-reel-signature", edge.config.key.sign_bytes(stamp.as_bytes()))
            .send()
            .await;
        let titles: Vec<String> = match res {
            Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
                Ok(v) => v["titles"].as_array().map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect()).unwrap_or_default(),
                Err(_) => continue,
            },
            Ok(r) => {
                tracing::warn!(message = "fill plan refused", status = %r.status());
                continue;
            }
            Err(e) => {
                tracing::warn!(message = "fill plan unavailable", error = %e);
                continue;
            }
        };
        let bytes = prefill(&edge, &titles, bytes_per_s).await;
        if bytes > 0 {
            tracing::info!(message = "prefilled", titles = titles.len(), bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let w: FillWindow = "02:00-06:00".parse().unwrap_or(FillWindow { start_min: 0, end_min: 0 });
        assert!(w.contains(2 * 60) && w.contains(5 * 60 + 59) && !w.contains(6 * 60) && !w.contains(60));
        let wrap: FillWindow = "22:00-04:00".parse().unwrap_or(FillWindow { start_min: 0, end_min: 0 });
        assert!(wrap.contains(23 * 60) && wrap.contains(60) && !wrap.contains(12 * 60));
        let all: FillWindow = "00:00-24:00".parse().unwrap_or(FillWindow { start_min: 0, end_min: 0 });
        assert!(all.contains(0) && all.contains(1439));
        for bad in ["2-6", "25:00-01:00", "02:00", "aa:bb-cc:dd", "02:60-03:00"] {
            assert!(bad.parse::<FillWindow>().is_err(), "{bad}");
        }
    }

    #[test]
    fn playlist_uris() {
        let p = "#EXTM3U\n#EXT-X-MAP:URI=\"init_1.mp4\"\n#EXTINF:4,\nseg_000.m4s\n#EXTINF:4,\nseg_001.m4s\n#EXT-X-ENDLIST\n";
        assert_eq!(uris(p), vec!["init_1.mp4", "seg_000.m4s", "seg_001.m4s"]);
    }
}
