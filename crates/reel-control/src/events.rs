//! The event relay: events are written to the store's outbox in the same
//! transaction as what caused them (an alert firing, resolving), and, when a
//! node is given a NATS server, this loop publishes them to the JetStream
//! stream `REEL_EVENTS` (subjects `reel.events.<kind>`, e.g.
//! `reel.events.alert.fired`) and marks each one once the stream has
//! acknowledged it. Each message carries the event id as `Nats-Msg-Id`, so
//! two nodes relaying the same outbox (one PostgreSQL database) store it
//! once. Subscribers (remediation, paging) read the stream at their pace.

use crate::AppState;
use std::time::Duration;

/// The stream every event goes to.
pub const STREAM: &str = "REEL_EVENTS";

/// Relays the outbox to JetStream at `url` until the process ends,
/// reconnecting after errors.
pub async fn relay_loop(state: AppState, url: String) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match relay(&state, &url).await {
            Ok(()) => backoff = Duration::from_millis(500),
            Err(e) => {
                tracing::warn!(message = "event relay to NATS failed; retrying", error = %e, retry_in_ms = backoff.as_millis() as u64);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn relay(state: &AppState, url: &str) -> Result<(), String> {
    let client = async_nats::connect(url).await.map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let js = async_nats::jetstream::new(client);
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: STREAM.to_string(),
        subjects: vec!["reel.events.>".to_string()],
        max_age: Duration::from_secs(7 * 24 * 3600),
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    })
    .await
    .map_err(|e| format!("cannot create stream {STREAM}: {e}"))?;
    tracing::info!(message = "relaying events to NATS JetStream", stream = STREAM);
    loop {
        let batch = state.store.unpublished_events(100).await.map_err(|e| e.to_string())?;
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let mut done = Vec::with_capacity(batch.len());
        for (id, kind, subject, body, at_ms) in batch {
            let payload = serde_json::json!({"id": id, "kind": kind, "subject": subject, "body": body, "at_ms": at_ms});
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            let ack = js
                .publish_with_headers(format!("reel.events.{kind}"), headers, payload.to_string().into())
                .await
                .map_err(|e| format!("publish {id}: {e}"))?;
            ack.await.map_err(|e| format!("no acknowledgement for {id}: {e}"))?;
            done.push(id);
        }
        state.store.mark_events_published(&done, reel_domain::now_ms()).await.map_err(|e| e.to_string())?;
        state.metrics.counter("events_published", &[]).add(done.len() as u64);
    }
}
