//! Who is calling: passwords (argon2id), session tokens, and the extractors
//! that turn a cookie or bearer token into an [`Caller`].
//!
//! Session tokens are 256 random bits; the store keeps only their SHA-256,
//! so a copy of the database cannot be replayed as sessions.

use crate::error::ApiError;
use crate::AppState;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use reel_domain::Role;
use reel_store::Account;
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "reel_session";

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(message = "password hashing failed", error = %e);
            ApiError::internal()
        })
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A hash to verify against when the email is unknown, so that a miss takes
/// as long as a wrong password and does not reveal which emails exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never matches").unwrap_or_default())
}

pub fn new_session_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("rs_{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The session token of a request: `Authorization: Bearer`, else the cookie.
pub fn request_token(headers: &HeaderMap) -> Option<String> {
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, value) = auth.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| value.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

pub fn session_cookie(token: &str, max_age_s: i64, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

/// A signed-in account, taken from the request's session.
pub struct Caller {
    pub account: Account,
    pub token_hash: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = request_token(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
        if token.is_empty() || token.len() > 200 {
            return Err(ApiError::unauthenticated());
        }
        let hash = token_hash(&token);
        let account = state
            .store
            .session_account(&hash, reel_domain::now_ms())
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        Ok(Caller { account, token_hash: hash })
    }
}

/// A signed-in account with the admin role.
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.account.role != Role::Admin {
            return Err(ApiError::forbidden("this needs the admin role"));
        }
        Ok(Admin(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse battery 9").unwrap_or_default();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery 9", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn token_from_bearer_or_cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; reel_session=rs_abc; b=2".parse().unwrap_or(header::HeaderValue::from_static("")));
        assert_eq!(request_token(&h).as_deref(), Some("rs_abc"));
        h.insert(header::AUTHORIZATION, "Bearer rs_xyz".parse().unwrap_or(header::HeaderValue::from_static("")));
        assert_eq!(request_token(&h).as_deref(), Some("rs_xyz"));
    }
}

/// The client's address as the socket saw it. Forwarded headers are not
/// trusted (a client could set them); behind a proxy, all clients share its
/// address, which steering and the per-address sign-in limit then see.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientAddr(addr))
    }
}

/// For operator endpoints (metrics, alerts): callers on loopback (a local
/// agent, the CLI) pass; anyone else must be a signed-in admin.
pub(crate) async fn loopback_or_admin(state: &crate::AppState, addr: Option<std::net::IpAddr>, req: axum::extract::Request) -> crate::error::ApiResult<()> {
    if addr.is_some_and(|a| a.is_loopback()) {
        return Ok(());
    }
    let (mut parts, _) = req.into_parts();
    match Caller::from_request_parts(&mut parts, state).await {
        Ok(c) if c.account.role == reel_domain::Role::Admin => Ok(()),
        Ok(_) => Err(crate::error::ApiError::new(axum::http::StatusCode::FORBIDDEN, "forbidden", "this is for operators (admins)")),
        Err(e) => Err(e),
    }
}
