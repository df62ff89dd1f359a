//! Prometheus text exposition format (version 0.0.4): a parser for scraping and a writer for
//! `/metrics`.

use crate::labels::{Labels, METRIC_NAME};
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ExpositionError {
    pub line: usize,
    pub message: String,
}

/// Parses Prometheus' float syntax including `+Inf`, `-Inf`, `NaN`.
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Parses an exposition body into `(labels, value, optional timestamp ms)`. `# HELP`,
/// `# TYPE` and other comments are skipped; label values are unescaped (`\\`, `\"`, `\n`).
pub fn parse_exposition(text: &str) -> Result<Vec<(Labels, f64, Option<i64>)>, ExpositionError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let e = |m: &str| ExpositionError {
            line: n + 1,
            message: m.to_string(),
        };
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            return Err(e("invalid metric name"));
        }
        let mut pairs = vec![(METRIC_NAME.to_string(), name.to_string())];
        let mut rest = &line[name_end..];
        if rest.starts_with('{') {
            let mut chars = rest.char_indices().skip(1).peekable();
            let mut end = None;
            loop {
                while chars
                    .peek()
                    .is_some_and(|(_, c)| c.is_whitespace() || *c == ',')
                {
                    chars.next();
                }
                match chars.peek() {
                    Some((i, '}')) => {
                        end = Some(*i);
                        break;
                    }
                    None => break,
                    _ => {}
                }
                let mut key = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        key.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                    chars.next();
                }
                if key.is_empty() || chars.next().map(|x| x.1) != Some('=') {
                    return Err(e("expected label=\"value\""));
                }
                while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                    chars.next();
                }
                if chars.next().map(|x| x.1) != Some('"') {
                    return Err(e("expected '\"' to open a label value"));
                }
                let mut val = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => val.push('\n'),
                            Some((_, c)) => val.push(c),
                            None => return Err(e("unterminated label value")),
                        },
                        Some((_, c)) => val.push(c),
                        None => return Err(e("unterminated label value")),
                    }
                }
                pairs.push((key, val));
            }
            let Some(end) = end else {
                return Err(e("expected '}'"));
            };
            rest = &rest[end + 1..];
        }
        let mut fields = rest.split_whitespace();
        let value = fields
            .next()
            .and_then(parse_float)
            .ok_or_else(|| e("missing or invalid value"))?;
        let ts = match fields.next() {
            Some(s) => Some(s.parse::<i64>().map_err(|_| e("invalid timestamp"))?),
            None => None,
        };
        out.push((Labels::new(pairs), value, ts));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// One metric family for the writer.
#[derive(Debug, Clone)]
pub struct MetricFamily {
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    pub samples: Vec<(Labels, f64)>,
}

fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Renders families in the text format served at `/metrics`.
pub fn write_exposition(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    for f in families {
        let help = f.help.replace('\\', "\\\\").replace('\n', "\\n");
        let kind = match f.kind {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        };
        let _ = writeln!(out, "# HELP {} {}", f.name, help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, kind);
        for (labels, v) in &f.samples {
            let name = if labels.name().is_empty() {
                f.name.as_str()
            } else {
                labels.name()
            };
            out.push_str(name);
            let mut first = true;
            for (k, val) in labels.iter().filter(|(k, _)| *k != METRIC_NAME) {
                out.push(if first { '{' } else { ',' });
                first = false;
                out.push_str(k);
                out.push_str("=\"");
                escape_label(val, &mut out);
                out.push('"');
            }
            if !first {
                out.push('}');
            }
            out.push(' ');
            out.push_str(&crate::promql::eval::format_value(*v));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_scrape() {
        let text = "# HELP http_requests_total Total.\n# TYPE http_requests_total counter\n\
            http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
            msg{text=\"a \\\"q\\\" \\\\ b\\nc\"} +Inf\n\
            nan_metric NaN\n\
            lat_bucket{le=\"0.5\"} 3e2\n";
        let got = parse_exposition(text).expect("parses");
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[0].0,
            Labels::metric(
                "http_requests_total",
                &[("method", "post"), ("code", "200")]
            )
        );
        assert_eq!((got[0].1, got[0].2), (1027.0, Some(1_395_066_363_000)));
        assert_eq!(got[1].0.get("text"), Some("a \"q\" \\ b\nc"));
        assert_eq!(got[1].1, f64::INFINITY);
        assert!(got[2].1.is_nan());
        assert_eq!(got[3].1, 300.0);
        assert_eq!(parse_exposition("x{a=\"1\" 2").map_err(|e| e.line), Err(1));
    }

    #[test]
    fn writer_round_trips_through_parser() {
        let fam = MetricFamily {
            name: "reel_plays_total".into(),
            help: "Plays.".into(),
            kind: MetricType::Counter,
            samples: vec![
                (
                    Labels::metric("reel_plays_total", &[("title", "a\"b\\c\nd")]),
                    3.0,
                ),
                (Labels::metric("reel_plays_total", &[]), f64::NEG_INFINITY),
            ],
        };
        let text = write_exposition(std::slice::from_ref(&fam));
        let back = parse_exposition(&text).expect("parses");
        assert_eq!(back[0].0, fam.samples[0].0);
        assert_eq!(back[1].1, f64::NEG_INFINITY);
        assert!(
            text.starts_with("# HELP reel_plays_total Plays.\n# TYPE reel_plays_total counter\n")
        );
    }
}
