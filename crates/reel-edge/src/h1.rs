//! HTTP/1.1 on plain connections, written for the appliance's one job: a
//! cached object goes from the page cache to the socket by sendfile(2),
//! never through user space. Everything else a connection asks for
//! (playlists, misses, errors, preflights) goes through the same router as
//! HTTP/2 and TLS, on the same connection. A connection that opens with the
//! HTTP/2 preface is handed to hyper.

use crate::server::{error, object_reply, Reply, Source};
use crate::{Counters, Edge};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tower::ServiceExt;

/// The most bytes a request head may take.
const MAX_HEAD: usize = 16 * 1024;
/// The largest request body read (only operator calls carry one).
const MAX_BODY: usize = 64 * 1024;
/// How long one write may wait for a client to take bytes.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes per sendfile call, so one big object does not hold a worker.
const SENDFILE_STEP: usize = 1 << 20;
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub async fn serve(
    listener: tokio::net::TcpListener,
    edge: Arc<Edge>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = crate::router(edge.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let live = Arc::new(());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (sock, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, say: back off rather than spin.
                        tracing::warn!(message = "accept failed", error = %e);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = sock.set_nodelay(true);
                let (edge, app, stop, live) = (edge.clone(), app.clone(), stop_rx.clone(), live.clone());
                tokio::spawn(async move {
                    let _live = live;
                    connection(sock, peer, edge, app, stop).await;
                });
            }
        }
    }
    // Let requests in progress finish, for a while.
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while Arc::strong_count(&live) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

enum Head {
    Request(Request<Body>),
    Closed,
    Http2,
    TooLarge,
    Bad,
}

async fn connection(mut sock: TcpStream, peer: std::net::SocketAddr, edge: Arc<Edge>, app: axum::Router, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut buf = BytesMut::with_capacity(4096);
    let mut first = true;
    loop {
        let timeout = edge.config.header_read_timeout;
        let head = tokio::select! {
            r = tokio::time::timeout(timeout, read_head(&mut sock, &mut buf, first)) => r,
            _ = stop.wait_for(|s| *s), if buf.is_empty() => return,
        };
        first = false;
        let req = match head {
            Err(_) => {
                // Too slow to send its headers (or idle too long).
                if !buf.is_empty() {
                    let _ = send_response(&mut sock, error(StatusCode::REQUEST_TIMEOUT, "request_timeout", "request headers took too long"), false, false).await;
                }
                return;
            }
            Ok(Err(_)) | Ok(Ok(Head::Closed)) => return,
            Ok(Ok(Head::Http2)) => {
                let io = hyper_util::rt::TokioIo::new(Rewind { pre: buf.freeze(), inner: sock });
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = crate::server::http2_builder(timeout).serve_connection(io, service).await;
                return;
            }
            Ok(Ok(Head::TooLarge)) => {
                let r = error(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "head_too_large", "request headers are too large");
                let _ = send_response(&mut sock, r, false, false).await;
                return linger_close(sock).await;
            }
            Ok(Ok(Head::Bad)) => {
                let _ = send_response(&mut sock, error(StatusCode::BAD_REQUEST, "bad_request", "malformed HTTP request"), false, false).await;
                return linger_close(sock).await;
            }
            Ok(Ok(Head::Request(r))) => r,
        };
        let keep_alive = wants_keep_alive(&req) && !*stop.borrow();
        let mut req = req;
        if has_body(req.headers()) {
            // Only small bodies of a stated length (operator calls such as
            // /chaos); anything else is answered and the connection closed.
            let len = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<usize>().ok());
            let Some(len) = len.filter(|&l| l <= MAX_BODY && !req.headers().contains_key(header::TRANSFER_ENCODING)) else {
                let r = error(StatusCode::PAYLOAD_TOO_LARGE, "body_not_accepted", "this appliance accepts only small request bodies with a Content-Length");
                let _ = send_response(&mut sock, r, false, false).await;
                return linger_close(sock).await;
            };
            let read = tokio::time::timeout(timeout, async {
                while buf.len() < len {
                    if sock.read_buf(&mut buf).await? == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut short"));
                    }
                }
                Ok(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            *req.body_mut() = Body::from(buf.split_to(len).freeze());
        }
        let head_only = req.method() == Method::HEAD;
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let sent = match media_object(&req) {
            Some(parts) => {
                let started = std::time::Instant::now();
                let reply = object_reply(&edge, parts, req.headers(), edge.config.sendfile).await;
                let status = match &reply {
                    Reply::Done(r) => r.status().as_u16(),
                    Reply::Object { head, .. } => head.status().as_u16(),
                };
                let sent = send_reply(&mut sock, &edge, reply, head_only, keep_alive).await;
                edge.observe(crate::server::route_of(req.uri().path()), if sent.is_ok() { status } else { 599 }, started);
                sent
            }
            None => {
                let res = match app.clone().oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                send_response(&mut sock, res, head_only, keep_alive).await
            }
        };
        if sent.is_err() || !keep_alive {
            let _ = sock.shutdown().await;
            return;
        }
    }
}

/// Closes after an error answer without losing it: closing with unread
/// request bytes would reset the connection, and the client could lose the
/// answer. Stops sending, then reads and drops what the client still sends,
/// for a moment.
async fn linger_close(mut sock: TcpStream) {
    let _ = sock.shutdown().await;
    let mut sink = [0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let mut total = 0usize;
        while total < 1 << 20 {
            match sock.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// Reads one request head into `buf`, leaving any bytes after it there.
async fn read_head(sock: &mut TcpStream, buf: &mut BytesMut, first: bool) -> io::Result<Head> {
    loop {
        if !buf.is_empty() {
            if first && buf.len() < PREFACE.len() && PREFACE.starts_with(buf) {
                // Could still be the HTTP/2 preface.
            } else if first && buf.starts_with(PREFACE) {
                return Ok(Head::Http2);
            } else {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut parsed = httparse::Request::new(&mut headers);
                match parsed.parse(buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let req = build(&parsed);
                        buf.advance(n);
                        return Ok(req.map_or(Head::Bad, Head::Request));
                    }
                    Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Ok(Head::TooLarge),
                    Ok(httparse::Status::Partial) => {}
                    Err(httparse::Error::TooManyHeaders) => return Ok(Head::TooLarge),
                    Err(_) => return Ok(Head::Bad),
                }
            }
        }
        if sock.read_buf(buf).await? == 0 {
            return Ok(Head::Closed);
        }
    }
}

fn build(parsed: &httparse::Request<'_, '_>) -> Option<Request<Body>> {
    let version = match parsed.version? {
        0 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut b = Request::builder().method(Method::from_bytes(parsed.method?.as_bytes()).ok()?).uri(parsed.path?).version(version);
    for h in parsed.headers.iter() {
        b = b.header(HeaderName::from_bytes(h.name.as_bytes()).ok()?, HeaderValue::from_bytes(h.value).ok()?);
    }
    b.body(Body::empty()).ok()
}

fn wants_keep_alive(req: &Request<Body>) -> bool {
    let conn = req.headers().get(header::CONNECTION).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    match req.version() {
        Version::HTTP_10 => conn.contains("keep-alive"),
        _ => !conn.contains("close"),
    }
}

fn has_body(h: &HeaderMap) -> bool {
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH).is_some_and(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) != Some(0))
}

/// `GET|HEAD /media/<token>/<title>/<rendition>/<file>` with nothing encoded:
/// the parts. Anything else (including percent-encoding) takes the router.
fn media_object(req: &Request<Body>) -> Option<[&str; 4]> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    let path = req.uri().path();
    if path.contains('%') {
        return None;
    }
    let mut it = path.strip_prefix("/media/")?.split('/');
    let parts = [it.next()?, it.next()?, it.next()?, it.next()?];
    if it.next().is_some() || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(parts)
}

fn head_bytes(parts: &axum::http::response::Parts, framing: Option<&str>, keep_alive: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let status = parts.status;
    out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", status.as_u16(), status.canonical_reason().unwrap_or("")).as_bytes());
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(f) = framing {
        out.extend_from_slice(f.as_bytes());
    }
    if !parts.headers.contains_key(header::DATE) {
        out.extend_from_slice(format!("date: {}\r\n", httpdate::fmt_http_date(std::time::SystemTime::now())).as_bytes());
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

async fn write_timed(sock: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    for piece in bytes.chunks(256 * 1024) {
        tokio::time::timeout(SEND_TIMEOUT, sock.write_all(piece)).await.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))??;
    }
    Ok(())
}

/// Sends an object: the head, then its bytes; a checked cache file goes by
/// sendfile straight from the page cache.
async fn send_reply(sock: &mut TcpStream, edge: &Edge, reply: Reply, head_only: bool, keep_alive: bool) -> io::Result<()> {
    let (head, source, start, len) = match reply {
        Reply::Done(r) => return send_response(sock, r, head_only, keep_alive).await,
        Reply::Object { head, source, start, len } => (head, source, start, len),
    };
    let (parts, _) = head.into_parts();
    let streaming_unknown_len = matches!(source, Source::Filling(_)) && !parts.headers.contains_key(header::CONTENT_LENGTH);
    // An object of unknown length can only end by closing the connection.
    let keep_alive = keep_alive && !streaming_unknown_len;
    if head_only {
        return write_timed(sock, &head_bytes(&parts, None, keep_alive)).await;
    }
    match source {
        Source::File { key, generation, .. } => {
            let file = match edge.cache.open_file(&key, generation) {
                Ok(f) => f,
                Err(_) => {
                    Counters::add(&edge.counters.errors, 1);
                    let r = error(StatusCode::BAD_GATEWAY, "cache_read", "this appliance could not read the object; try the next URL");
                    return send_response(sock, r, false, keep_alive).await;
                }
            };
            // The head goes out with MSG_MORE, so the kernel sends it in the
            // same segment as the first bytes of the file.
            send_more(sock, &head_bytes(&parts, None, keep_alive)).await?;
            send_file(sock, &file, start, len).await?;
            Counters::add(&edge.counters.bytes_served, len);
        }
        Source::Bytes(b) => {
            let mut out = head_bytes(&parts, None, keep_alive);
            let body = b.slice(start as usize..(start + len) as usize);
            if body.len() <= 64 * 1024 {
                out.extend_from_slice(&body);
                write_timed(sock, &out).await?;
            } else {
                write_timed(sock, &out).await?;
                write_timed(sock, &body).await?;
            }
            Counters::add(&edge.counters.bytes_served, len);
        }
        Source::Filling(f) => {
            write_timed(sock, &head_bytes(&parts, None, keep_alive)).await?;
            let mut i = 0;
            let mut sent = 0u64;
            loop {
                match f.chunk(i).await {
                    Ok(Some(c)) => {
                        write_timed(sock, &c).await?;
                        sent += c.len() as u64;
                        i += 1;
                    }
                    Ok(None) => break,
                    // Upstream broke off: cut the response short so the
                    // player sees the failure and tries the next URL.
                    Err(e) => return Err(io::Error::other(e)),
                }
            }
            Counters::add(&edge.counters.bytes_served, sent);
        }
    }
    Ok(())
}

/// Writes `bytes` flagged MSG_MORE: more data follows at once.
async fn send_more(sock: &TcpStream, bytes: &[u8]) -> io::Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        let n = tokio::time::timeout(
            SEND_TIMEOUT,
            sock.async_io(Interest::WRITABLE, || rustix::net::send(sock, &bytes[at..], rustix::net::SendFlags::MORE).map_err(io::Error::from)),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))??;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "connection closed"));
        }
        at += n;
    }
    Ok(())
}

/// `len` bytes of `file` from `offset` to the socket, by sendfile(2).
async fn send_file(sock: &TcpStream, file: &std::fs::File, mut offset: u64, len: u64) -> io::Result<()> {
    let end = offset + len;
    while offset < end {
        let want = ((end - offset) as usize).min(SENDFILE_STEP);
        let sent = tokio::time::timeout(
            SEND_TIMEOUT,
            sock.async_io(Interest::WRITABLE, || {
                let mut at = offset;
                rustix::fs::sendfile(sock, file, Some(&mut at), want).map_err(io::Error::from)
            }),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))??;
        if sent == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cached file shorter than its index entry"));
        }
        offset += sent as u64;
    }
    Ok(())
}

/// Sends a router response: Content-Length when the body's size is known,
/// else chunked.
async fn send_response(sock: &mut TcpStream, res: Response<Body>, head_only: bool, keep_alive: bool) -> io::Result<()> {
    let (parts, body) = res.into_parts();
    let no_body = head_only || parts.status.is_informational() || parts.status == StatusCode::NO_CONTENT || parts.status == StatusCode::NOT_MODIFIED;
    let known = parts.headers.contains_key(header::CONTENT_LENGTH);
    let exact = http_body::Body::size_hint(&body).exact();
    let framing = match (known, exact) {
        (true, _) => None,
        (false, Some(n)) => Some(format!("content-length: {n}\r\n")),
        (false, None) if no_body => None,
        (false, None) => Some("transfer-encoding: chunked\r\n".to_string()),
    };
    let chunked = framing.as_deref() == Some("transfer-encoding: chunked\r\n");
    let head = head_bytes(&parts, framing.as_deref(), keep_alive);
    if no_body {
        return write_timed(sock, &head).await;
    }
    let mut out = head;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(io::Error::other)?.into_data() else { continue };
        if chunked {
            if data.is_empty() {
                continue;
            }
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(&data);
        }
        if out.len() >= 64 * 1024 {
            write_timed(sock, &out).await?;
            out.clear();
        }
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    write_timed(sock, &out).await
}

/// A connection with bytes already read put back in front.
struct Rewind {
    pre: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
