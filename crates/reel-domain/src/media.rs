//! The media URL layout every server shares (origin and appliances):
//! `/media/<token>/<title>/master.m3u8` and
//! `/media/<token>/<title>/<rendition>/<file>`, where a rendition folder is
//! named by its height (`720p`). These checks run before any path touches a
//! disk, so nothing outside a cache or origin directory is reachable.

/// Whether `name` may be one path part of a media object: 1 to 64 of
/// ASCII letters, digits, `_`, `-`, `.`, not starting with a dot.
pub fn is_media_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Height encoded in a rendition folder name: `720p` -> 720, and
/// `720p-2400k` (a second rung at the same height, told apart by its
/// bitrate) -> 720. Anything else (`720p-old`, `720px`) is not a rendition
/// folder.
pub fn rendition_height(name: &str) -> Option<u32> {
    let base = match name.split_once('-') {
        Some((base, rate)) => {
            let kbps = rate.strip_suffix('k')?;
            if kbps.is_empty() || !kbps.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            base
        }
        None => name,
    };
    let digits = base.strip_suffix('p')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The content type of a servable media file, by extension; `None` for
/// anything a player should never be sent.
pub fn media_content_type(file: &str) -> Option<&'static str> {
    match file.rsplit_once('.')?.1 {
        "m3u8" => Some("application/vnd.apple.mpegurl"),
        "m4s" => Some("video/iso.segment"),
        "mp4" => Some("video/mp4"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendition_names() {
        assert_eq!(rendition_height("720p"), Some(720));
        assert_eq!(rendition_height("1080p"), Some(1080));
        assert_eq!(rendition_height("480p-1200k"), Some(480));
        for bad in ["p720", "720", "..", "720p-old", "720px", "p", "720p-k", "720p-12k-3k", "-12k"] {
            assert_eq!(rendition_height(bad), None, "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(is_media_name("seg_001.m4s"));
        for bad in ["", "..", ".hidden", "a/b", "a\\\\b", "a\\0b", "%2e%2e"] {
            assert!(!is_media_name(bad), "{bad:?}");
        }
        assert_eq!(media_content_type("seg.m4s"), Some("video/iso.segment"));
        assert_eq!(media_content_type("passwd"), None);
        assert_eq!(media_content_type("x.exe"), None);
    }
}
