//! `reel insight ...`: change points in a signal, and the TCPD benchmark.

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use reel_insight::{CostKind, Method, Penalty};
use std::io::Read;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum MethodArg {
    Pelt,
    Binseg,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CostArg {
    L2,
    L1,
    Normal,
    Rbf,
}

#[derive(Subcommand)]
pub enum InsightCommand {
    /// Change points of a signal (one number per line; `-` reads stdin),
    /// printed as a JSON array in ruptures' convention (segment ends, the
    /// last equal to the signal's length).
    Changepoints {
        #[arg(long, value_enum, default_value = "pelt")]
        method: MethodArg,
        #[arg(long, value_enum, default_value = "l2")]
        cost: CostArg,
        /// A number, or `bic` / `mbic`.
        #[arg(long, default_value = "bic")]
        penalty: String,
        #[arg(long, default_value_t = 2)]
        min_size: usize,
        #[arg(long, default_value_t = 5)]
        jump: usize,
        file: PathBuf,
    },
    /// Score the default detector (and the others) on the Turing Change Point
    /// Dataset: F1 and covering over its 32 univariate series, as the paper does.
    Tcpd {
        /// The TCPD directory (with datasets/ and annotations.json).
        dir: PathBuf,
        /// One JSON object: {"cover", "f1", "methods": {...}, "series": [...]}.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: InsightCommand) -> Result<()> {
    match cmd {
        InsightCommand::Changepoints { method, cost, penalty, min_size, jump, file } => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).context("cannot read stdin")?;
                s
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?
            };
            let mut signal = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let t = line.trim();
                if t.is_empty() {
                    continue;
                }
                match t.parse::<f64>() {
                    Ok(v) if v.is_finite() => signal.push(v),
                    _ => bail!("line {}: {t:?} is not a number (the file needs one number per line)", i + 1),
                }
            }
            if signal.is_empty() {
                bail!("the signal is empty: give one number per line");
            }
            let penalty = match penalty.to_ascii_lowercase().as_str() {
                "bic" => Penalty::Bic,
                "mbic" => Penalty::Mbic,
                p => match p.parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => Penalty::Value(v),
                    _ => bail!("--penalty must be a non-negative number, bic or mbic, not {penalty:?}"),
                },
            };
            if jump == 0 || min_size == 0 {
                bail!("--min-size and --jump must be at least 1");
            }
            let method = match method {
                MethodArg::Pelt => Method::Pelt,
                MethodArg::Binseg => Method::BinSeg,
            };
            let cost = match cost {
                CostArg::L2 => CostKind::L2,
                CostArg::L1 => CostKind::L1,
                CostArg::Normal => CostKind::Normal,
                CostArg::Rbf => CostKind::Rbf { gamma: None },
            };
            let bkps = reel_insight::detect(&signal, method, cost, penalty, min_size, jump).context("change-point detection failed")?;
            println!("{}", serde_json::to_string(&bkps)?);
            Ok(())
        }
        InsightCommand::Tcpd { dir, json } => {
            if !dir.join("annotations.json").is_file() {
                bail!("{} has no annotations.json: pass the TCPD directory", dir.display());
            }
            let report = reel_insight::tcpd::evaluate_dir(&dir, &reel_insight::tcpd::default_method()).context("TCPD evaluation failed")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(());
            }
            println!("TCPD, {} univariate series, one setting for all (default: {}):", report.series.len(), report.method);
            println!("  {:<28} {:>8} {:>8}", "method", "cover", "F1");
            for (name, s) in &report.methods {
                let mark = if *name == report.method { " (default)" } else { "" };
                println!("  {:<28} {:>8.3} {:>8.3}", format!("{name}{mark}"), s.cover, s.f1);
            }
            println!("  {:<28} {:>8.3} {:>8.3}", "paper's best default: binseg", 0.672, 0.698);
            Ok(())
        }
    }
}

#[derive(Subcommand)]
pub enum MetricsCommand {
    /// Run a PromQL query against a running node (on this machine):
    /// instant by default, over a range with --since.
    Query {
        /// The query, e.g. `sum by (status) (rate(http_server_requests_total[1m]))`.
        query: String,
        /// The node's URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Query the last DURATION (e.g. 15m, 1h) as a range.
        #[arg(long)]
        since: Option<String>,
        /// Seconds between points of a range query.
        #[arg(long, default_value_t = 15.0)]
        step: f64,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_duration_s(s: &str) -> Result<f64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len()));
    let Ok(n) = num.parse::<f64>() else { bail!("--since {s:?} is not a duration like 90s, 15m, 1h, 2d") };
    let mult = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => bail!("--since {s:?}: use s, m, h or d"),
    };
    let span = n * mult;
    if !(1.0..=366.0 * 86400.0).contains(&span) {
        bail!("--since {s:?}: look back from 1s to 366d");
    }
    Ok(span)
}

pub async fn metrics(cmd: MetricsCommand) -> Result<()> {
    let MetricsCommand::Query { query, url, since, step, json } = cmd;
    let now = reel_domain::now_ms() as f64 / 1000.0;
    let base = url.trim_end_matches('/');
    let http = reqwest::Client::new();
    let req = match &since {
        Some(d) => {
            let span = parse_duration_s(d)?;
            http.get(format!("{base}/api/v1/metrics/query_range")).query(&[
                ("query", query.clone()),
                ("start", format!("{:.3}", now - span)),
                ("end", format!("{now:.3}")),
                ("step", format!("{step}")),
            ])
        }
        None => http.get(format!("{base}/api/v1/metrics/query")).query(&[("query", query.clone())]),
    };
    let res = req.send().await.with_context(|| format!("cannot reach {base}: is `reel up` or `reel serve` running?"))?;
    let status = res.status();
    let body: serde_json::Value = res.json().await.context("the node answered something other than JSON")?;
    if !status.is_success() {
        let msg = body.pointer("/error/message").and_then(|m| m.as_str()).unwrap_or("query failed");
        // Where the query went wrong, drawn for a person at a terminal.
        let at = msg.strip_prefix("at ").and_then(|m| m.split(':').next()).and_then(|p| p.parse::<usize>().ok());
        if let Some(pos) = at.filter(|_| std::io::IsTerminal::is_terminal(&std::io::stderr())) {
            eprintln!("  {query}");
            eprintln!("  {}^", " ".repeat(pos.min(query.len())));
        }
        bail!("{msg}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let data = &body["data"];
    if data["result"].as_array().is_some_and(Vec::is_empty) {
        // Nothing on stdout (scripts see no series), a word for a person.
        eprintln!("no series matched");
    }
    let label = |m: &serde_json::Value| -> String {
        let parts: Vec<String> = m.as_object().map(|o| o.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect()).unwrap_or_default();
        format!("{{{}}}", parts.join(", "))
    };
    match data["resultType"].as_str() {
        Some("scalar") => println!("{}", data["result"][1].as_str().unwrap_or("")),
        Some("vector") => {
            for s in data["result"].as_array().into_iter().flatten() {
                println!("{:<70} {}", label(&s["metric"]), s["value"][1].as_str().unwrap_or(""));
            }
        }
        Some("matrix") => {
            for s in data["result"].as_array().into_iter().flatten() {
                let values: Vec<&str> = s["values"].as_array().into_iter().flatten().filter_map(|p| p[1].as_str()).collect();
                let last = values.last().copied().unwrap_or("");
                println!("{:<70} {} points, last {last}", label(&s["metric"]), values.len());
            }
        }
        _ => println!("{data}"),
    }
    Ok(())
}
