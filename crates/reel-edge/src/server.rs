//! The appliance's HTTP surface: the same media URLs as the origin
//! (`/media/<token>/<title>/...`), so a player can fail over between them.

use crate::{Counters, Edge};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use crate::Loaded;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use reel_domain::{PlaybackClaims, TokenError};
use std::net::SocketAddr;
use std::sync::Arc;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], axum::Json(body)).into_response()
}

pub fn router(edge: Arc<Edge>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/media/{token}/{title}/master.m3u8", get(master))
        .route("/media/{token}/{title}/{rendition}/{file}", get(object))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such path on this appliance") })
        .layer(tower_http::cors::CorsLayer::new().allow_origin(tower_http::cors::Any).allow_headers(tower_http::cors::Any))
        .with_state(edge)
}

/// A client gets this long to send its request headers; a slow or idle
/// client cannot hold a connection open by dribbling bytes.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn configure(b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>, header_timeout: std::time::Duration) {
    b.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
    b.http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(std::time::Duration::from_secs(30))
        .keep_alive_timeout(header_timeout);
}

fn stop_on(shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> axum_server::Handle<SocketAddr> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    handle
}

/// Serves HTTP/1.1 and HTTP/2 (prior knowledge) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    edge: Arc<Edge>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timeout = edge.config.header_read_timeout;
    let mut server = axum_server::from_tcp(listener.into_std()?)?;
    configure(server.http_builder(), timeout);
    server
        .handle(stop_on(shutdown))
        .serve(router(edge).into_make_service_with_connect_info::<SocketAddr>())
        .await
}

/// Serves over TLS (rustls; HTTP/2 by ALPN, else HTTP/1.1) with the PEM
/// certificate chain and key at the given paths, until `shutdown` resolves.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    edge: Arc<Edge>,
    cert_pem: &std::path::Path,
    key_pem: &std::path::Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // One process-wide crypto provider; a second install is a no-op error.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert_pem, key_pem).await?;
    let timeout = edge.config.header_read_timeout;
    let mut server = axum_server::from_tcp_rustls(listener, config)?;
    configure(server.http_builder(), timeout);
    server
        .handle(stop_on(shutdown))
        .serve(router(edge).into_make_service_with_connect_info::<SocketAddr>())
        .await
}

fn check(edge: &Edge, token: &str, title: &str) -> Result<PlaybackClaims, Response> {
    if !reel_domain::is_valid_id(title) {
        return Err(error(StatusCode::NOT_FOUND, "not_found", "no such title"));
    }
    edge.config.key.verify_for_title(token, title, reel_domain::now_ms() / 1000).map_err(|e| match e {
        TokenError::Expired => error(StatusCode::FORBIDDEN, "token_expired", "the playback token has expired"),
        e => error(StatusCode::FORBIDDEN, "bad_token", &e.to_string()),
    })
}

fn upstream_failed(edge: &Edge, e: crate::EdgeError) -> Response {
    Counters::add(&edge.counters.errors, 1);
    tracing::warn!(message = "fill failed", error = %e);
    error(StatusCode::BAD_GATEWAY, "upstream_failed", "this appliance could not fetch the object; try the next URL")
}

/// The master playlist, cut to the renditions the token's plan allows.
async fn master(State(edge): State<Arc<Edge>>, Path((token, title)): Path<(String, String)>) -> Response {
    Counters::add(&edge.counters.requests, 1);
    let claims = match check(&edge, &token, &title) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let path = match edge.ensure(&format!("{title}/master.m3u8")).await {
        Ok(p) => p,
        Err(e) => return upstream_failed(&edge, e),
    };
    let Ok(full) = tokio::fs::read_to_string(&path).await else {
        return error(StatusCode::BAD_GATEWAY, "upstream_failed", "the cached playlist is unreadable");
    };
    let filtered = filter_master(&full, claims.mh);
    Counters::add(&edge.counters.bytes_served, filtered.len() as u64);
    (
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        filtered,
    )
        .into_response()
}

/// Keeps the variants whose height is within `max_height`.
pub fn filter_master(full: &str, max_height: u32) -> String {
    let mut out = String::new();
    let mut skip_next_uri = false;
    for line in full.lines() {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let height = attrs
                .split(',')
                .find_map(|a| a.strip_prefix("RESOLUTION="))
                .and_then(|r| r.split_once('x'))
                .and_then(|(_, h)| h.parse::<u32>().ok());
            skip_next_uri = height.is_some_and(|h| h > max_height);
            if skip_next_uri {
                continue;
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() && skip_next_uri {
            skip_next_uri = false;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

async fn object(
    State(edge): State<Arc<Edge>>,
    Path((token, title, rendition, file)): Path<(String, String, String, String)>,
    req: Request,
) -> Response {
    Counters::add(&edge.counters.requests, 1);
    let claims = match check(&edge, &token, &title) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(height) = reel_domain::rendition_height(&rendition) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such rendition");
    };
    if height > claims.mh {
        return error(StatusCode::FORBIDDEN, "quality_cap", "the plan does not include this quality");
    }
    let Some(mime) = reel_domain::media_content_type(&file).filter(|_| reel_domain::is_media_name(&file)) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such file");
    };
    let key = format!("{title}/{rendition}/{file}");
    let loaded = match edge.memory.get(&key) {
        Some(l) => {
            edge.cache.hit(&key); // keep its popularity current for disk eviction
            Counters::add(&edge.counters.hits, 1);
            l
        }
        None => match load_verified(&edge, &key).await {
            Ok(l) => l,
            Err(r) => return r,
        },
    };
    let cache = if file.ends_with(".m3u8") { "private, max-age=10" } else { "private, max-age=86400, immutable" };
    let res = respond(&loaded, req.headers(), mime, cache, &edge.config.appliance_id);
    if let Some(len) = res.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()) {
        Counters::add(&edge.counters.bytes_served, len);
    }
    res
}

/// Loads `key` from disk (filling it first if needed) and checks it against
/// the checksum taken at fill; a corrupted copy is dropped and refilled once.
async fn load_verified(edge: &Edge, key: &str) -> Result<Loaded, Response> {
    for attempt in 0..2 {
        let path = edge.ensure(key).await.map_err(|e| upstream_failed(edge, e))?;
        let loaded = crate::cache::load(&path).await.map_err(|_| {
            Counters::add(&edge.counters.errors, 1);
            error(StatusCode::BAD_GATEWAY, "cache_read", "this appliance could not read the object; try the next URL")
        })?;
        if edge.cache.verify(key, &loaded.bytes) {
            edge.memory.put(key, loaded.clone());
            return Ok(loaded);
        }
        Counters::add(&edge.counters.errors, 1);
        tracing::warn!(message = "corrupted cache object dropped", key = %key, attempt);
        edge.cache.remove(key);
    }
    Err(error(StatusCode::BAD_GATEWAY, "cache_corrupt", "this appliance's copy is damaged; try the next URL"))
}

/// One byte range of a `len`-byte object, from a `Range` header.
/// `Ok(None)`: serve the whole object (no header, or one we do not act on:
/// several ranges, other units, bad syntax). `Err(())`: unsatisfiable (416).
fn byte_range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Ok(None) };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ok(None),
        (true, false) => {
            // Suffix: the last n bytes.
            let Ok(n) = b.parse::<u64>() else { return Ok(None) };
            if n == 0 || len == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len - 1)
        }
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else { return Ok(None) };
            let end = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e.min(len.saturating_sub(1)),
                    _ => return Ok(None),
                }
            };
            if start >= len {
                return Err(());
            }
            (start, end)
        }
    };
    Ok(Some(range))
}

/// An object's response: 200, 206 for a range, 304 for a matching
/// `If-None-Match`, 416 for an unsatisfiable range. HEAD gets the same
/// headers (axum drops the body).
fn respond(l: &Loaded, headers: &axum::http::HeaderMap, mime: &'static str, cache: &'static str, appliance: &str) -> Response {
    let len = l.bytes.len() as u64;
    let mut b = Response::builder()
        .header(header::CONTENT_TYPE, mime)
        .header(header::CACHE_CONTROL, cache)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, l.etag.as_str())
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::ACCESS_CONTROL_EXPOSE_HEADERS, "content-range, content-length, etag, x-reel-appliance");
    if let Ok(v) = HeaderValue::from_str(appliance) {
        b = b.header("x-reel-appliance", v);
    }
    let inm = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if inm.is_some_and(|v| v.split(',').any(|t| t.trim() == l.etag || t.trim() == "*")) {
        return b.status(StatusCode::NOT_MODIFIED).body(Body::empty()).unwrap_or_default();
    }
    // A range applies only if If-Range (when sent) still names this object.
    let if_range_ok = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()).is_none_or(|v| v.trim() == l.etag);
    let range = if if_range_ok { byte_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), len) } else { Ok(None) };
    match range {
        Ok(None) => b.status(StatusCode::OK).header(header::CONTENT_LENGTH, len).body(Body::from(l.bytes.clone())).unwrap_or_default(),
        Ok(Some((start, end))) => b
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
            .header(header::CONTENT_LENGTH, end - start + 1)
            .body(Body::from(l.bytes.slice(start as usize..=end as usize)))
            .unwrap_or_default(),
        Err(()) => b
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{len}"))
            .body(Body::empty())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn master_filtering() {
        let full = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920x1080\n1080p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1280x720\n720p/index.m3u8\n";
        let cut = super::filter_master(full, 720);
        assert!(cut.contains("720p/index.m3u8"));
        assert!(!cut.contains("1080"));
    }

    #[test]
    fn ranges() {
        use super::byte_range;
        assert_eq!(byte_range(None, 100), Ok(None));
        assert_eq!(byte_range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(byte_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(byte_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(byte_range(Some("bytes=-1000"), 100), Ok(Some((0, 99))));
        assert_eq!(byte_range(Some("bytes=50-5000"), 100), Ok(Some((50, 99))));
        assert_eq!(byte_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(byte_range(Some("bytes=-0"), 100), Err(()));
        for ignored in ["bytes=9-1", "bytes=a-b", "items=0-1", "bytes=0-1,5-6", "bytes=-", "bytes=99999999999999999999-"] {
            assert_eq!(byte_range(Some(ignored), 100), Ok(None), "{ignored}");
        }
    }
}
