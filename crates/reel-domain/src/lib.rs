//! Reel's shared vocabulary: plans, roles, maturity ratings, title kinds and the
//! playback-token format that the control plane signs and the media servers check.
//!
//! This crate depends on nothing of Reel's and does no I/O: it is the one place
//! where a rule such as "Basic means one stream at up to 720p" is written down.

mod maturity;
mod media;
mod plan;
mod token;

pub use maturity::{Maturity, KIDS_MAX_LEVEL};
pub use media::{is_media_name, media_content_type, rendition_height};
pub use plan::{Plan, Role};
pub use token::{PlaybackClaims, TokenError, TokenKey};

use rand::Rng;

/// A new random identifier: `prefix` then 20 lowercase base32 characters
/// (100 bits), so ids are unguessable and safe in URLs and file names.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(prefix.len() + 21);
    id.push_str(prefix);
    id.push('_');
    for _ in 0..20 {
        id.push(ALPHABET[rng.gen_range(0..32)] as char);
    }
    id
}

/// Whether `s` looks like an id made by [`new_id`] (or a demo slug): ASCII
/// letters, digits, `_` and `-`, at most 64 bytes. Anything else is rejected
/// before it reaches a query or a path.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Milliseconds since the Unix epoch, the one clock format the store uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The kind of a catalog entry. Series hold episodes; movies and episodes play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TitleKind {
    Movie,
    Series,
    Episode,
}

impl TitleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TitleKind::Movie => "movie",
            TitleKind::Series => "series",
            TitleKind::Episode => "episode",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "movie" => Some(TitleKind::Movie),
            "series" => Some(TitleKind::Series),
            "episode" => Some(TitleKind::Episode),
            _ => None,
        }
    }
    /// Whether a stream can be started for this kind directly.
    pub fn is_playable(self) -> bool {
        !matches!(self, TitleKind::Series)
    }
}

/// A genre slug from a display name: "Sci-Fi & Fantasy" -> "sci-fi-fantasy".
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_distinct() {
        let a = new_id("acc");
        let b = new_id("acc");
        assert!(is_valid_id(&a));
        assert_ne!(a, b);
        assert!(a.starts_with("acc_"));
    }

    #[test]
    fn ids_reject_path_and_sql_tricks() {
        for bad in ["", "../etc", "a/b", "x'; DROP TABLE t;--", "a\0b", "%2e%2e", &"a".repeat(65)] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Sci-Fi & Fantasy"), "sci-fi-fantasy");
        assert_eq!(slugify("  Drama "), "drama");
    }
}
