//! The appliance's HTTP surface: the same media URLs as the origin
//! (`/media/<token>/<title>/...`), so a player can fail over between them.

use crate::{Counters, Edge, Filling, Loaded};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use bytes::Bytes;
use std::path::PathBuf;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use reel_domain::{PlaybackClaims, TokenError};
use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], axum::Json(body)).into_response()
}

pub fn router(edge: Arc<Edge>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/metrics", get(metrics))
        .route("/chaos", axum::routing::post(chaos))
        .route("/media/{token}/{title}/master.m3u8", get(master))
        .route("/media/{token}/{title}/manifest.mpd", get(dash_manifest))
        .route("/media/{token}/{title}/{rendition}/{file}", get(object))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such path on this appliance") })
        .layer(tower_http::cors::CorsLayer::new().allow_origin(tower_http::cors::Any).allow_headers(tower_http::cors::Any))
        .layer(axum::middleware::from_fn_with_state(edge.clone(), observe))
        .with_state(edge)
}

/// Times every request that goes through the router (HTTP/2, TLS, and
/// plain HTTP/1.1 other than cached objects, which `h1` times itself).
async fn observe(State(edge): State<Arc<Edge>>, req: Request, next: axum::middleware::Next) -> Response {
    let route = route_of(req.uri().path());
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    edge.observe(route, res.status().as_u16(), started);
    res
}

/// A low-cardinality name for a path.
pub(crate) fn route_of(path: &str) -> &'static str {
    if path.starts_with("/media/") {
        if path.ends_with(".m3u8") { "playlist" } else { "segment" }
    } else if path == "/metrics" || path == "/healthz" {
        "ops"
    } else {
        "other"
    }
}

/// `POST /chaos` `{"error_rate": 0..1, "latency_ms": n}`: inject faults
/// into this appliance's object requests (`{}` turns them off). Loopback only.
async fn chaos(State(edge): State<Arc<Edge>>, req: Request) -> Response {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if !peer.is_some_and(|ip| ip.is_loopback()) {
        return error(StatusCode::FORBIDDEN, "forbidden", "chaos is for loopback operators only");
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), 4096).await else {
        return error(StatusCode::BAD_REQUEST, "bad_request", "send a small JSON object");
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Faults {
        #[serde(default)]
        error_rate: f64,
        #[serde(default)]
        latency_ms: u64,
    }
    let f: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", &format!("expected {{\"error_rate\": 0..1, \"latency_ms\": n}}: {e}")),
    };
    if !(0.0..=1.0).contains(&f.error_rate) || f.latency_ms > 60_000 {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "validation", "error_rate must be within 0..1 and latency_ms at most 60000");
    }
    edge.chaos.error_ppm.store((f.error_rate * 1_000_000.0).round() as u64, std::sync::atomic::Ordering::Relaxed);
    edge.chaos.latency_ms.store(f.latency_ms, std::sync::atomic::Ordering::Relaxed);
    tracing::warn!(message = "chaos set", error_rate = f.error_rate, latency_ms = f.latency_ms);
    axum::Json(serde_json::json!({"error_rate": f.error_rate, "latency_ms": f.latency_ms})).into_response()
}

/// Loopback, or a fresh fleet-key signature of `metrics:<id>:<time>`.
fn scrape_allowed(key: &reel_domain::TokenKey, id: &str, h: &HeaderMap, peer: Option<std::net::IpAddr>, now_s: i64) -> bool {
    if peer.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    let time: i64 = h.get("x-reel-time").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let sig = h.get("x-reel-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    (now_s - time).abs() <= 300 && key.verify_bytes(format!("metrics:{id}:{time}").as_bytes(), sig)
}

/// `GET /metrics`: Prometheus text, for loopback scrapers and for the
/// control plane, which signs `metrics:<appliance id>:<unix time>` with the
/// fleet key (`x-reel-time`, `x-reel-signature`; five minutes of skew).
async fn metrics(State(edge): State<Arc<Edge>>, req: Request) -> Response {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if !scrape_allowed(&edge.config.key, &edge.config.appliance_id, req.headers(), peer, reel_domain::now_ms() / 1000) {
        return error(StatusCode::FORBIDDEN, "forbidden", "metrics are served to loopback scrapers and fleet-signed requests");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], edge.render_metrics()).into_response()
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

/// Serves plain HTTP until `shutdown` resolves: HTTP/1.1 by the
/// appliance's own connection loop (cached objects go out by sendfile),
/// HTTP/2 by prior knowledge through hyper.
pub async fn serve(
    listener: tokio::net::TcpListener,
    edge: Arc<Edge>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::h1::serve(listener, edge, shutdown).await
}

pub(crate) fn http2_builder(header_timeout: std::time::Duration) -> hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor> {
    let mut b = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    configure(&mut b, header_timeout);
    b
}

/// Serves over TLS (rustls; HTTP/2 by ALPN, else HTTP/1.1) with the PEM
/// certificate chain and key at the given paths, until `shutdown` resolves.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    edge: Arc<Edge>,
    config: TlsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = config.0;
    let timeout = edge.config.header_read_timeout;
    // TCP_NODELAY: the last TLS record of a response must not wait on Nagle
    // for the client's delayed ACK (a 40 ms tail on every small object).
    let mut server = axum_server::from_tcp_rustls(listener, config)?.map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()));
    configure(server.http_builder(), timeout);
    server
        .handle(stop_on(shutdown))
        .serve(router(edge).into_make_service_with_connect_info::<SocketAddr>())
        .await
}

/// A certificate chain and key, read and checked before the appliance
/// says it is listening.
pub struct TlsConfig(axum_server::tls_rustls::RustlsConfig);

/// Reads PEM files into a rustls server configuration.
pub async fn load_tls(cert_pem: &std::path::Path, key_pem: &std::path::Path) -> std::io::Result<TlsConfig> {
    // One process-wide crypto provider; a second install is a no-op error.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(TlsConfig(axum_server::tls_rustls::RustlsConfig::from_pem_file(cert_pem, key_pem).await?))
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
    let bytes = match edge.ensure(&format!("{title}/master.m3u8")).await {
        Ok(b) => b,
        Err(e) => return upstream_failed(&edge, e),
    };
    let Ok(full) = std::str::from_utf8(&bytes) else {
        return error(StatusCode::BAD_GATEWAY, "upstream_failed", "the cached playlist is not text");
    };
    let filtered = filter_master(full, claims.mh);
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

/// The DASH manifest (over the same segments as HLS), cut to the
/// representations the token's plan allows.
async fn dash_manifest(State(edge): State<Arc<Edge>>, Path((token, title)): Path<(String, String)>) -> Response {
    Counters::add(&edge.counters.requests, 1);
    let claims = match check(&edge, &token, &title) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let bytes = match edge.ensure(&format!("{title}/manifest.mpd")).await {
        Ok(b) => b,
        Err(e) => return upstream_failed(&edge, e),
    };
    let Ok(full) = std::str::from_utf8(&bytes) else {
        return error(StatusCode::BAD_GATEWAY, "upstream_failed", "the cached manifest is not text");
    };
    let filtered = filter_mpd(full, claims.mh);
    Counters::add(&edge.counters.bytes_served, filtered.len() as u64);
    ([(header::CONTENT_TYPE, "application/dash+xml"), (header::CACHE_CONTROL, "private, no-cache")], filtered).into_response()
}

/// Drops the `<Representation>` elements taller than `max_height` from an
/// MPD written by Reel's packager (one element per block of lines).
pub fn filter_mpd(full: &str, max_height: u32) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in full.lines() {
        let t = line.trim_start();
        if t.starts_with("<Representation") {
            let height = t
                .split("height=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .and_then(|h| h.parse::<u32>().ok());
            skipping = height.is_some_and(|h| h > max_height);
            if skipping && t.ends_with("/>") {
                skipping = false;
                continue;
            }
        }
        if skipping {
            if t.starts_with("</Representation>") {
                skipping = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
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
    let head = req.method() == axum::http::Method::HEAD;
    let reply = object_reply(&edge, [&token, &title, &rendition, &file], req.headers(), false).await;
    reply.into_response(&edge, head).await
}

/// Where an object's bytes come from.
pub(crate) enum Source {
    Bytes(Bytes),
    /// A cached file, checked against its checksum since the cache opened.
    File { key: String, generation: u64, path: PathBuf },
    /// An object still arriving from upstream, sent as it streams.
    Filling(Arc<Filling>),
}

/// The answer to an object request: a finished response, or a head and the
/// part of an object to send after it (`start`, `len`).
pub(crate) enum Reply {
    Done(Response),
    Object { head: Response, source: Source, start: u64, len: u64 },
}

impl Reply {
    /// As a response with its body (the HTTP/2 and TLS paths).
    pub(crate) async fn into_response(self, edge: &Edge, head_only: bool) -> Response {
        let (head, source, start, len) = match self {
            Reply::Done(r) => return r,
            Reply::Object { head, source, start, len } => (head, source, start, len),
        };
        Counters::add(&edge.counters.bytes_served, len);
        let (parts, _) = head.into_parts();
        if head_only {
            return Response::from_parts(parts, Body::empty());
        }
        let body = match source {
            Source::Bytes(b) => Body::from(b.slice(start as usize..(start + len) as usize)),
            Source::File { path, .. } => match tokio::fs::read(&path).await {
                Ok(b) if (b.len() as u64) >= start + len => Body::from(Bytes::from(b).slice(start as usize..(start + len) as usize)),
                _ => {
                    Counters::add(&edge.counters.errors, 1);
                    return error(StatusCode::BAD_GATEWAY, "cache_read", "this appliance could not read the object; try the next URL");
                }
            },
            Source::Filling(f) => Body::from_stream(futures_util::stream::try_unfold((f, 0usize), |(f, i)| async move {
                match f.chunk(i).await {
                    Ok(Some(c)) => Ok(Some((c, (f, i + 1)))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(std::io::Error::other(e)),
                }
            })),
        };
        Response::from_parts(parts, body)
    }
}

/// Decides how to answer `GET /media/<token>/<title>/<rendition>/<file>`:
/// checks the token, then serves from memory, the disk cache (a checked
/// file when `prefer_file`, so the caller can hand it to the kernel) or a
/// fill, which a request for the whole object reads while it streams.
pub(crate) async fn object_reply(edge: &Arc<Edge>, [token, title, rendition, file]: [&str; 4], headers: &HeaderMap, prefer_file: bool) -> Reply {
    Counters::add(&edge.counters.requests, 1);
    let claims = match check(edge, token, title) {
        Ok(c) => c,
        Err(r) => return Reply::Done(r),
    };
    let (fail, stall) = edge.chaos.draw();
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    if fail {
        Counters::add(&edge.counters.errors, 1);
        return Reply::Done(error(StatusCode::INTERNAL_SERVER_ERROR, "chaos", "a fault injected on purpose; try the next URL"));
    }
    let Some(height) = reel_domain::rendition_height(rendition) else {
        return Reply::Done(error(StatusCode::NOT_FOUND, "not_found", "no such rendition"));
    };
    if height > claims.mh {
        return Reply::Done(error(StatusCode::FORBIDDEN, "quality_cap", "the plan does not include this quality"));
    }
    let Some(mime) = reel_domain::media_content_type(file).filter(|_| reel_domain::is_media_name(file)) else {
        return Reply::Done(error(StatusCode::NOT_FOUND, "not_found", "no such file"));
    };
    let cache = if file.ends_with(".m3u8") { "private, max-age=10" } else { "private, max-age=86400, immutable" };
    let key = format!("{title}/{rendition}/{file}");
    let id = edge.config.appliance_id.as_str();
    let ready = |len: u64, etag: Option<&str>, source: Source| -> Reply {
        let (b, outcome) = object_head(len, etag, headers, mime, cache, id);
        match outcome {
            Outcome::Send(start, n) => Reply::Object { head: b.body(Body::empty()).unwrap_or_default(), source, start, len: n },
            Outcome::Respond(r) => Reply::Done(r),
        }
    };
    for _ in 0..3 {
        if !prefer_file {
            if let Some(l) = edge.memory.get(&key) {
                edge.cache.hit(&key); // keep its popularity current for disk eviction
                Counters::add(&edge.counters.hits, 1);
                return ready(l.bytes.len() as u64, Some(&l.etag), Source::Bytes(l.bytes));
            }
        }
        if let Some(hit) = edge.cache.hit(&key) {
            Counters::add(&edge.counters.hits, 1);
            if let (true, true, Some(etag)) = (prefer_file, hit.verified, hit.etag.as_deref()) {
                return ready(hit.size, Some(etag), Source::File { key: key.clone(), generation: hit.generation, path: hit.path });
            }
            match crate::cache::read_verified(&edge.cache, &key, &hit.path).await {
                Ok(Some((bytes, sum))) => {
                    let etag = crate::cache::etag_of(&sum);
                    edge.memory.put(&key, Loaded { bytes: bytes.clone(), etag: etag.clone() });
                    return ready(bytes.len() as u64, Some(&etag), Source::Bytes(bytes));
                }
                Ok(None) => Counters::add(&edge.counters.errors, 1), // damaged, dropped: fill again
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // evicted meanwhile
                Err(_) => {
                    Counters::add(&edge.counters.errors, 1);
                    return Reply::Done(error(StatusCode::BAD_GATEWAY, "cache_read", "this appliance could not read the object; try the next URL"));
                }
            }
        }
        let Some(filling) = edge.fill(&key) else { continue };
        let whole = !headers.contains_key(header::RANGE) && !headers.contains_key(header::IF_NONE_MATCH);
        if whole {
            // Sent while it streams; its length if upstream said, no validator yet.
            return match filling.length().await {
                Ok(len) => {
                    let mut b = base_head(None, mime, cache, id).status(StatusCode::OK);
                    if let Some(len) = len {
                        b = b.header(header::CONTENT_LENGTH, len);
                    }
                    Reply::Object { head: b.body(Body::empty()).unwrap_or_default(), source: Source::Filling(filling), start: 0, len: len.unwrap_or(0) }
                }
                Err(reason) => Reply::Done(upstream_failed(edge, crate::EdgeError::Upstream { key, reason })),
            };
        }
        return match filling.whole().await {
            Ok(bytes) => {
                let etag = edge.cache.hit(&key).and_then(|h| h.etag).unwrap_or_else(|| crate::cache::etag_of(&crate::cache::sha256_hex(&bytes)));
                ready(bytes.len() as u64, Some(&etag), Source::Bytes(bytes))
            }
            Err(reason) => Reply::Done(upstream_failed(edge, crate::EdgeError::Upstream { key, reason })),
        };
    }
    Reply::Done(error(StatusCode::SERVICE_UNAVAILABLE, "busy", "the object kept changing in the cache; try again"))
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

/// The headers every object response carries.
fn base_head(etag: Option<&str>, mime: &'static str, cache: &'static str, appliance: &str) -> axum::http::response::Builder {
    let mut b = Response::builder()
        .header(header::CONTENT_TYPE, mime)
        .header(header::CACHE_CONTROL, cache)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::ACCESS_CONTROL_EXPOSE_HEADERS, "content-range, content-length, etag, x-reel-appliance");
    if let Some(etag) = etag {
        b = b.header(header::ETAG, etag);
    }
    if let Ok(v) = HeaderValue::from_str(appliance) {
        b = b.header("x-reel-appliance", v);
    }
    b
}

pub(crate) enum Outcome {
    /// Send `len` bytes from `start` after the head.
    Send(u64, u64),
    Respond(Response),
}

/// An object's head: 200, 206 for a range, 304 for a matching
/// `If-None-Match`, 416 for an unsatisfiable range.
fn object_head(len: u64, etag: Option<&str>, headers: &HeaderMap, mime: &'static str, cache: &'static str, appliance: &str) -> (axum::http::response::Builder, Outcome) {
    let b = base_head(etag, mime, cache, appliance);
    let etag = etag.unwrap_or("");
    let inm = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if !etag.is_empty() && inm.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        let r = b.status(StatusCode::NOT_MODIFIED).body(Body::empty()).unwrap_or_default();
        return (Response::builder(), Outcome::Respond(r));
    }
    // A range applies only if If-Range (when sent) still names this object.
    let if_range_ok = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()).is_none_or(|v| !etag.is_empty() && v.trim() == etag);
    let range = if if_range_ok { byte_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), len) } else { Ok(None) };
    match range {
        Ok(None) => (b.status(StatusCode::OK).header(header::CONTENT_LENGTH, len), Outcome::Send(0, len)),
        Ok(Some((start, end))) => (
            b.status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
                .header(header::CONTENT_LENGTH, end - start + 1),
            Outcome::Send(start, end - start + 1),
        ),
        Err(()) => {
            let r = b
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap_or_default();
            (Response::builder(), Outcome::Respond(r))
        }
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
    fn mpd_filtering() {
        let full = "<MPD>\n  <Period>\n    <AdaptationSet maxHeight=\"1080\">\n      <Representation id=\"1080p\" bandwidth=\"1\" width=\"1920\" height=\"1080\" codecs=\"avc1\">\n        <SegmentTemplate/>\n      </Representation>\n      <Representation id=\"720p\" bandwidth=\"1\" width=\"1280\" height=\"720\" codecs=\"avc1\">\n        <SegmentTemplate/>\n      </Representation>\n    </AdaptationSet>\n  </Period>\n</MPD>\n";
        let cut = super::filter_mpd(full, 720);
        assert!(cut.contains("id=\"720p\""));
        assert!(!cut.contains("id=\"1080p\""));
        assert_eq!(cut.matches("</Representation>").count(), 1);
        assert!(cut.ends_with("</MPD>\n"));
        assert_eq!(super::filter_mpd(full, 2160), full);
    }

    #[test]
    fn remote_scrapes_need_a_fresh_fleet_signature() {
        use axum::http::HeaderMap;
        let key = reel_domain::TokenKey::generate();
        let remote: Option<std::net::IpAddr> = Some([10, 0, 0, 7].into());
        let now = 1_800_000_000;
        let signed = |id: &str, t: i64, k: &reel_domain::TokenKey| {
            let mut h = HeaderMap::new();
            h.insert("x-reel-time", t.to_string().parse().expect("header"));
            h.insert("x-reel-signature", k.sign_bytes(format!("metrics:{id}:{t}").as_bytes()).parse().expect("header"));
            h
        };
        assert!(super::scrape_allowed(&key, "oca-1", &HeaderMap::new(), Some([127, 0, 0, 1].into()), now), "loopback");
        assert!(!super::scrape_allowed(&key, "oca-1", &HeaderMap::new(), remote, now), "remote, unsigned");
        assert!(super::scrape_allowed(&key, "oca-1", &signed("oca-1", now, &key), remote, now), "remote, signed");
        assert!(!super::scrape_allowed(&key, "oca-1", &signed("oca-2", now, &key), remote, now), "signed for another appliance");
        assert!(!super::scrape_allowed(&key, "oca-1", &signed("oca-1", now - 600, &key), remote, now), "stale");
        let other = reel_domain::TokenKey::generate();
        assert!(!super::scrape_allowed(&key, "oca-1", &signed("oca-1", now, &other), remote, now), "another fleet's key");
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
