//! Health reports: every interval, the appliance posts its counters, cache
//! use and the titles it holds to the control plane, signed with its key.

use crate::Edge;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Debug, Serialize)]
pub struct Report {
    pub appliance_id: String,
    pub requests: u64,
    pub bytes_served: u64,
    pub hits: u64,
    pub misses: u64,
    pub upstream_fetches: u64,
    pub errors: u64,
    pub hit_ratio: f64,
    pub disk_used: u64,
    pub disk_capacity: u64,
    /// Requests per second over the last interval, as a share of 2,000.
    pub load: f64,
    pub titles: Vec<String>,
    pub prefilled_objects: u64,
    pub prefilled_bytes: u64,
}

impl Edge {
    pub fn report(&self, load: f64) -> Report {
        let c = &self.counters;
        let (hits, misses) = (c.hits.load(Ordering::Relaxed), c.misses.load(Ordering::Relaxed));
        let (used, cap) = self.cache.usage();
        Report {
            appliance_id: self.config.appliance_id.clone(),
            requests: c.requests.load(Ordering::Relaxed),
            bytes_served: c.bytes_served.load(Ordering::Relaxed),
            hits,
            misses,
            upstream_fetches: c.upstream_fetches.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            hit_ratio: if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 },
            disk_used: used,
            disk_capacity: cap,
            load,
            titles: self.cache.titles(),
            prefilled_objects: self.prefill.objects.load(Ordering::Relaxed),
            prefilled_bytes: self.prefill.bytes.load(Ordering::Relaxed),
        }
    }
}

/// Posts a report every `report_interval` until the process ends. Failures
/// are logged and retried next interval: the appliance serves regardless.
pub async fn report_loop(edge: Arc<Edge>) {
    let Some(control) = edge.config.control_url.clone() else { return };
    let url = format!("{}/api/v1/fleet/reports", control.trim_end_matches('/'));
    let http = reqwest::Client::builder().timeout(edge.config.report_interval).build().unwrap_or_default();
    let mut last_requests = 0u64;
    let mut ticker = tokio::time::interval(edge.config.report_interval);
    loop {
        ticker.tick().await;
        let requests = edge.counters.requests.load(Ordering::Relaxed);
        let rate = (requests - last_requests) as f64 / edge.config.report_interval.as_secs_f64().max(0.001);
        last_requests = requests;
        let body = serde_json::to_vec(&edge.report((rate / 2000.0).min(1.0))).unwrap_or_default();
        let sig = edge.config.key.sign_bytes(&body);
        let sent = http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-reel-signature", sig)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(message = "health report refused", status = %r.status()),
            Err(e) => tracing::warn!(message = "health report failed", error = %e),
        }
    }
}
