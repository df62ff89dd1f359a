//! One side of `bench/tsdb-vs-prometheus`. Prints one JSON line of measurements.
//!
//! `tsdb_bench ours <dir> <series> <minutes>`: ingest through [`Tsdb::append`], compact, query.
//! `tsdb_bench prometheus <host:port> <pid> <data-dir> <series> <minutes>`: remote-write the
//! same data into a running Prometheus and query it over HTTP.
//!
//! Data: `bench_requests_total{host, route, tag}` counters, 10 s apart, ending now.

use rayon::prelude::*;
use reel_tsdb::remote_write::{encode_write_request, snappy_compress, RemoteWriter};
use reel_tsdb::{Labels, Options, Tsdb};
use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const STEP_MS: i64 = 10_000;
const QUERY: &str = "sum by (tag) (rate(bench_requests_total[5m]))";
const QUERY_RUNS: usize = 30;
/// Samples per series per write: one minute.
const WINDOW: i64 = 6;

fn labels(i: usize) -> Labels {
    Labels::metric(
        "bench_requests_total",
        &[
            ("host", &format!("host-{}", i % 1000)),
            ("route", &format!("/r{}", (i / 1000) % 100)),
            ("tag", &format!("t{}", i % 10)),
            ("series", &i.to_string()),
        ],
    )
}

/// Monotonic counter: rises 3 per scrape plus 0..2 of noise.
fn value(i: usize, k: i64) -> f64 {
    let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (k as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    ((i % 1000) * 10_000) as f64 + (3 * k) as f64 + (h >> 61) as f64 % 3.0
}

fn rss_kib(pid: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                dir_bytes(&path)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}

fn percentiles(mut d: Vec<f64>) -> (f64, f64) {
    d.sort_by(f64::total_cmp);
    let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn now_aligned() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    now - now % 60_000
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("ours") => ours(&args[2], args[3].parse()?, args[4].parse()?),
        Some("prometheus") => prometheus(&args[2], &args[3], &args[4], args[5].parse()?, args[6].parse()?),
        _ => Err("usage: tsdb_bench ours <dir> <series> <minutes> | prometheus <addr> <pid> <dir> <series> <minutes>".into()),
    }
}

fn ours(dir: &str, series: usize, minutes: i64) -> Result<(), Box<dyn std::error::Error>> {
    let all: Vec<Labels> = (0..series).map(labels).collect();
    let points = minutes * 6;
    let end = now_aligned();
    let start = end - (points - 1) * STEP_MS;
    let rss0 = rss_kib("self");
    let db = Tsdb::open(
        dir,
        Options {
            head_retention_ms: 0,
            ..Options::default()
        },
    )?;
    let threads = 2;
    let per_batch = 10_000 / WINDOW as usize;
    let t0 = Instant::now();
    for w in (0..points).step_by(WINDOW as usize) {
        let shards: Vec<&[Labels]> = all.chunks(series.div_ceil(threads)).collect();
        shards
            .par_iter()
            .enumerate()
            .try_for_each(|(s, shard)| -> Result<(), String> {
                let base = s * series.div_ceil(threads);
                for (c, part) in shard.chunks(per_batch).enumerate() {
                    let mut batch: Vec<(&Labels, i64, f64)> =
                        Vec::with_capacity(part.len() * WINDOW as usize);
                    for (j, l) in part.iter().enumerate() {
                        let i = base + c * per_batch + j;
                        for k in w..(w + WINDOW).min(points) {
                            batch.push((l, start + k * STEP_MS, value(i, k)));
                        }
                    }
                    db.append(&batch).map_err(|e| e.to_string())?;
                }
                Ok(())
            })?;
    }
    let ingest_s = t0.elapsed().as_secs_f64();
    let rss1 = rss_kib("self");
    let samples = series as u64 * points as u64;
    let tc = Instant::now();
    db.compact_before(i64::MAX)?;
    let compact_s = tc.elapsed().as_secs_f64();
    let stats = db.stats();
    let mut lat = Vec::new();
    let mut check = String::new();
    for _ in 0..QUERY_RUNS {
        let t = Instant::now();
        let r = db.query_range(QUERY, start, end, 60_000)?;
        let json = serde_json::to_string(&r)?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        check = json;
    }
    let (p50, p99) = percentiles(lat);
    let v: serde_json::Value = serde_json::from_str(&check)?;
    let out = serde_json::json!({
        "system": "reel-tsdb",
        "samples": samples,
        "ingest_samples_per_s": samples as f64 / ingest_s,
        "bytes_per_sample": stats.block_bytes as f64 / stats.block_samples as f64,
        "mem_bytes_per_series": (rss1.saturating_sub(rss0) * 1024) as f64 / series as f64,
        "query_p50_ms": p50,
        "query_p99_ms": p99,
        "compact_s": compact_s,
        "check": v["result"][0]["values"][10].clone(),
    });
    println!("{out}");
    Ok(())
}

fn http(addr: &str, req: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    s.write_all(req.as_bytes())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    Ok(resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

fn prometheus(
    addr: &str,
    pid: &str,
    data: &str,
    series: usize,
    minutes: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let points = minutes * 6;
    let end = now_aligned();
    let start = end - (points - 1) * STEP_MS;
    let all: Vec<Labels> = (0..series).map(labels).collect();
    // Encode every request body up front so Prometheus gets both cores while it ingests.
    let per_req = 10_000 / WINDOW as usize;
    let bodies: Vec<Vec<Vec<u8>>> = (0..points)
        .step_by(WINDOW as usize)
        .map(|w| {
            all.par_chunks(per_req)
                .enumerate()
                .map(|(c, part)| {
                    let req: Vec<(Labels, Vec<(i64, f64)>)> = part
                        .iter()
                        .enumerate()
                        .map(|(j, l)| {
                            let i = c * per_req + j;
                            (
                                l.clone(),
                                (w..(w + WINDOW).min(points))
                                    .map(|k| (start + k * STEP_MS, value(i, k)))
                                    .collect(),
                            )
                        })
                        .collect();
                    snappy_compress(&encode_write_request(&req))
                })
                .collect()
        })
        .collect();
    drop(all);
    let rss0 = rss_kib(pid);
    let writer = RemoteWriter::new(&format!("http://{addr}/api/v1/write"))?;
    let t0 = Instant::now();
    for window in &bodies {
        // Two concurrent senders, like remote-write shards; windows stay in time order.
        window
            .par_iter()
            .with_max_len(1)
            .try_for_each(|b| writer.post(b).map_err(|e| e.to_string()))?;
    }
    let ingest_s = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let rss1 = rss_kib(pid);
    let samples = series as u64 * points as u64;
    // Prometheus cuts blocks only after hours; its head chunks already on disk (`chunks_head`)
    // hold full 120-sample chunks in the same Gorilla encoding, so measure those.
    let head_chunk_bytes = dir_bytes(&std::path::Path::new(data).join("chunks_head"));
    let full_chunk_samples = series as u64 * ((points as u64 / 120).saturating_sub(0)) * 120;
    let mut lat = Vec::new();
    let mut check = String::new();
    let q = format!(
        "GET /api/v1/query_range?query={}&start={}&end={}&step=60 HTTP/1.0\r\nHost: {addr}\r\n\r\n",
        "sum%20by%20(tag)%20(rate(bench_requests_total%5B5m%5D))",
        start / 1000,
        end / 1000
    );
    for _ in 0..QUERY_RUNS {
        let t = Instant::now();
        check = http(addr, &q)?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (p50, p99) = percentiles(lat);
    let v: serde_json::Value = serde_json::from_str(&check).unwrap_or_default();
    if v["status"] != "success" {
        return Err(format!(
            "prometheus query failed: {}",
            check.chars().take(500).collect::<String>()
        )
        .into());
    }
    let out = serde_json::json!({
        "system": "prometheus",
        "samples": samples,
        "ingest_samples_per_s": samples as f64 / ingest_s,
        "bytes_per_sample": head_chunk_bytes as f64 / full_chunk_samples.max(1) as f64,
        "mem_bytes_per_series": (rss1.saturating_sub(rss0) * 1024) as f64 / series as f64,
        "query_p50_ms": p50,
        "query_p99_ms": p99,
        "check": v["data"]["result"][0]["values"][10].clone(),
    });
    println!("{out}");
    Ok(())
}
