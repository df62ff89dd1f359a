//! The signed, expiring playback token.
//!
//! Format: `base64url(claims JSON) "." base64url(HMAC-SHA256(key, first part))`.
//! It travels as a path segment (`/media/<token>/...`) so that a player's
//! relative segment URLs carry it without rewriting manifests. Media servers
//! trust it by its signature alone: they never ask the control plane.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a playback token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybackClaims {
    /// The stream (playback session) this token belongs to.
    pub sid: String,
    /// The playable title (movie or episode) whose media it opens.
    pub tid: String,
    /// Tallest rendition the viewer's plan allows.
    pub mh: u32,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the playback token is malformed")]
    Malformed,
    #[error("the playback token's signature does not match")]
    BadSignature,
    #[error("the playback token has expired")]
    Expired,
    #[error("the playback token is for another title")]
    OtherTitle,
}

/// A shared secret for signing and checking playback tokens.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from raw bytes; at least 32 are required.
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= 32).then_some(TokenKey(bytes))
    }

    pub fn generate() -> Self {
        use rand::RngCore;
        let mut k = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        TokenKey(k)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        #[allow(clippy::expect_used)]
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    pub fn sign(&self, claims: &PlaybackClaims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{sig}")
    }

    /// A hex HMAC-SHA256 of `bytes`: how appliances sign their health reports.
    pub fn sign_bytes(&self, bytes: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(bytes);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Checks a [`TokenKey::sign_bytes`] signature in constant time.
    pub fn verify_bytes(&self, bytes: &[u8], hex_sig: &str) -> bool {
        let Some(sig) = (0..hex_sig.len())
            .step_by(2)
            .map(|i| hex_sig.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(bytes);
        mac.verify_slice(&sig).is_ok()
    }

    /// [`TokenKey::verify`], and that the token opens `title`.
    pub fn verify_for_title(&self, token: &str, title: &str, now_s: i64) -> Result<PlaybackClaims, TokenError> {
        let claims = self.verify(token, now_s)?;
        if claims.tid != title {
            return Err(TokenError::OtherTitle);
        }
        Ok(claims)
    }

    /// Checks signature first (in constant time), then expiry against `now_s`.
    pub fn verify(&self, token: &str, now_s: i64) -> Result<PlaybackClaims, TokenError> {
        if token.len() > 1024 {
            return Err(TokenError::Malformed);
        }
        let (body, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
        let claims: PlaybackClaims = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now_s {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> PlaybackClaims {
        PlaybackClaims { sid: "str_1".into(), tid: "t1".into(), mh: 720, exp }
    }

    #[test]
    fn byte_signatures() {
        let k = TokenKey::generate();
        let sig = k.sign_bytes(b"report");
        assert!(k.verify_bytes(b"report", &sig));
        assert!(!k.verify_bytes(b"tampered", &sig));
        assert!(!k.verify_bytes(b"report", "zz"));
        assert!(!TokenKey::generate().verify_bytes(b"report", &sig));
    }

    #[test]
    fn round_trip() {
        let k = TokenKey::generate();
        let t = k.sign(&claims(2_000));
        assert_eq!(k.verify(&t, 1_000), Ok(claims(2_000)));
    }

    #[test]
    fn expired_forged_and_malformed() {
        let k = TokenKey::generate();
        let t = k.sign(&claims(1_000));
        assert_eq!(k.verify(&t, 1_000), Err(TokenError::Expired));
        let other = TokenKey::generate();
        assert_eq!(other.verify(&t, 0), Err(TokenError::BadSignature));
        // Raising the height cap in the body breaks the signature.
        let (_, sig) = t.split_once('.').unwrap_or_default();
        let forged_body = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&PlaybackClaims { mh: 2160, ..claims(1_000) }).unwrap_or_default(),
        );
        assert_eq!(k.verify(&format!("{forged_body}.{sig}"), 0), Err(TokenError::BadSignature));
        assert_eq!(k.verify("nodot", 0), Err(TokenError::Malformed));
        assert_eq!(k.verify_for_title(&k.sign(&claims(5)), "other", 0), Err(TokenError::OtherTitle));
        assert_eq!(k.verify("a.b!c", 0), Err(TokenError::Malformed));
    }
}
