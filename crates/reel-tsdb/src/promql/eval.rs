//! Evaluation. Each selector's samples are loaded once for the whole query window, then every
//! step is evaluated independently (in parallel with rayon) against those preloaded series.

use super::{AggOp, BinOp, Expr, Func, Grouping, Selector};
use crate::labels::{Labels, METRIC_NAME};
use crate::{Error, Result, Tsdb};
use rayon::prelude::*;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How far back an instant selector looks for the latest sample (Prometheus' default).
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// A query answer; serializes like the `data` object of Prometheus' HTTP API:
/// `{"resultType": "matrix", "result": [{"metric": {...}, "values": [[t, "v"], ...]}]}`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    Scalar { t: i64, v: f64 },
    Vector { t: i64, samples: Vec<(Labels, f64)> },
    Matrix(Vec<(Labels, Vec<(i64, f64)>)>),
}

/// Formats a float as Prometheus does (Go's `strconv.FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

struct Point(i64, f64);
impl Serialize for Point {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(2))?;
        seq.serialize_element(&(self.0 as f64 / 1000.0))?;
        seq.serialize_element(&format_value(self.1))?;
        seq.end()
    }
}

struct Metric<'a>(&'a Labels);
impl Serialize for Metric<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for QueryResult {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        match self {
            QueryResult::Scalar { t, v } => {
                m.serialize_entry("resultType", "scalar")?;
                m.serialize_entry("result", &Point(*t, *v))?;
            }
            QueryResult::Vector { t, samples } => {
                #[derive(serde::Serialize)]
                struct Item<'a> {
                    metric: Metric<'a>,
                    value: Point,
                }
                let items: Vec<Item> = samples
                    .iter()
                    .map(|(l, v)| Item {
                        metric: Metric(l),
                        value: Point(*t, *v),
                    })
                    .collect();
                m.serialize_entry("resultType", "vector")?;
                m.serialize_entry("result", &items)?;
            }
            QueryResult::Matrix(series) => {
                #[derive(serde::Serialize)]
                struct Item<'a> {
                    metric: Metric<'a>,
                    values: Vec<Point>,
                }
                let items: Vec<Item> = series
                    .iter()
                    .map(|(l, pts)| Item {
                        metric: Metric(l),
                        values: pts.iter().map(|&(t, v)| Point(t, v)).collect(),
                    })
                    .collect();
                m.serialize_entry("resultType", "matrix")?;
                m.serialize_entry("result", &items)?;
            }
        }
        m.end()
    }
}

/// Label sets are shared (`Arc`) because every step of a range query hands the same series
/// around; cloning them per step dominated query time.
enum Value {
    Scalar(f64),
    Vector(Vec<(Arc<Labels>, f64)>),
}

/// A loaded series: full labels, labels without the metric name, samples.
type LoadedSeries = (Arc<Labels>, Arc<Labels>, Vec<(i64, f64)>);
/// Series loaded for each selector, indexed by selector id.
type Loaded = Vec<Vec<LoadedSeries>>;

fn drop_name(l: Arc<Labels>) -> Arc<Labels> {
    if l.get(METRIC_NAME).is_none() {
        l
    } else {
        Arc::new(l.without_name())
    }
}

fn collect_selectors<'a>(e: &'a Expr, out: &mut Vec<&'a Selector>) {
    match e {
        Expr::Number(_) => {}
        Expr::Selector(s) => out.push(s),
        Expr::Call { args, .. } => args.iter().for_each(|a| collect_selectors(a, out)),
        Expr::Aggregate { expr, .. } | Expr::Neg(expr) => collect_selectors(expr, out),
        Expr::Binary { lhs, rhs, .. } => {
            collect_selectors(lhs, out);
            collect_selectors(rhs, out);
        }
    }
}

fn load(db: &Tsdb, e: &Expr, start: i64, end: i64) -> Result<Loaded> {
    let mut sels = Vec::new();
    collect_selectors(e, &mut sels);
    let mut loaded: Loaded = vec![Vec::new(); sels.len()];
    for s in sels {
        let window = s.range_ms.unwrap_or(LOOKBACK_MS);
        let data = db.select(&s.matchers, start - s.offset_ms - window, end - s.offset_ms)?;
        if let Some(slot) = loaded.get_mut(s.id) {
            *slot = data
                .into_iter()
                .map(|(l, pts)| (Arc::new(l.without_name()), Arc::new(l), pts))
                .collect();
        }
    }
    Ok(loaded)
}

pub(crate) fn instant(db: &Tsdb, e: &Expr, t: i64) -> Result<QueryResult> {
    let loaded = load(db, e, t, t)?;
    if let Expr::Selector(s) = e {
        if let Some(r) = s.range_ms {
            // A bare range selector returns its raw samples, as in Prometheus.
            let lo = t - s.offset_ms - r;
            let hi = t - s.offset_ms;
            let series = loaded[s.id]
                .iter()
                .map(|(_, l, pts)| (Labels::clone(l), window(pts, lo, hi).to_vec()))
                .filter(|(_, p)| !p.is_empty())
                .collect();
            return Ok(QueryResult::Matrix(series));
        }
    }
    let pre = Vec::new();
    Ok(
        match eval(
            e,
            t,
            &Cx {
                loaded: &loaded,
                pre: &pre,
                step: 0,
            },
        )? {
            Value::Scalar(v) => QueryResult::Scalar { t, v },
            Value::Vector(samples) => QueryResult::Vector {
                t,
                samples: samples
                    .into_iter()
                    .map(|(l, v)| (Arc::unwrap_or_clone(l), v))
                    .collect(),
            },
        },
    )
}

pub(crate) fn range(db: &Tsdb, e: &Expr, start: i64, end: i64, step: i64) -> Result<QueryResult> {
    if matches!(e, Expr::Selector(s) if s.range_ms.is_some()) {
        return Err(Error::Query(
            "range queries need an instant vector or scalar expression".into(),
        ));
    }
    let loaded = load(db, e, start, end)?;
    let steps: Vec<i64> = (0..)
        .map(|i| start + i * step)
        .take_while(|&t| t <= end)
        .collect();
    if let Expr::Aggregate { op, grouping, expr } = e {
        let job = match expr.as_ref() {
            Expr::Selector(s) if s.range_ms.is_none() => Some((s, None)),
            Expr::Call { func, args } if func.signature() == [super::ArgKind::Range] => {
                match args.first() {
                    Some(Expr::Selector(s)) => Some((s, Some(*func))),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((s, func)) = job {
            return Ok(fast_aggregate(
                *op,
                grouping.as_ref(),
                s,
                func,
                &loaded,
                &steps,
            ));
        }
    }
    let pre = precompute(e, &loaded, &steps);
    let results: Vec<(i64, Value)> = steps
        .par_iter()
        .enumerate()
        .map(|(step, &t)| {
            eval(
                e,
                t,
                &Cx {
                    loaded: &loaded,
                    pre: &pre,
                    step,
                },
            )
            .map(|v| (t, v))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut by_labels: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for (t, v) in results {
        match v {
            Value::Scalar(x) => by_labels.entry(Labels::default()).or_default().push((t, x)),
            Value::Vector(samples) => {
                for (l, x) in samples {
                    by_labels
                        .entry(Arc::unwrap_or_clone(l))
                        .or_default()
                        .push((t, x));
                }
            }
        }
    }
    Ok(QueryResult::Matrix(by_labels.into_iter().collect()))
}

/// Samples with `lo <= t <= hi` (`pts` is sorted by time).
fn window(pts: &[(i64, f64)], lo: i64, hi: i64) -> &[(i64, f64)] {
    let a = pts.partition_point(|p| p.0 < lo);
    let b = pts.partition_point(|p| p.0 <= hi);
    &pts[a..b.max(a)]
}

fn eval(e: &Expr, t: i64, cx: &Cx) -> Result<Value> {
    let loaded = cx.loaded;
    Ok(match e {
        Expr::Number(n) => Value::Scalar(*n),
        Expr::Selector(s) => {
            if s.range_ms.is_some() {
                return Err(Error::Query(
                    "a range vector is only allowed as a function argument".into(),
                ));
            }
            if let Some(Some(per_step)) = cx.pre.get(s.id) {
                return Ok(Value::Vector(
                    per_step.get(cx.step).cloned().unwrap_or_default(),
                ));
            }
            let hi = t - s.offset_ms;
            let mut out = Vec::new();
            for (_, l, pts) in &loaded[s.id] {
                // Exclusive lower bound: a sample exactly 5m old is stale, as in Prometheus.
                if let Some(&(_, v)) = window(pts, hi - LOOKBACK_MS + 1, hi).last() {
                    out.push((l.clone(), v));
                }
            }
            Value::Vector(out)
        }
        Expr::Neg(inner) => match eval(inner, t, cx)? {
            Value::Scalar(v) => Value::Scalar(-v),
            Value::Vector(v) => {
                Value::Vector(v.into_iter().map(|(l, x)| (drop_name(l), -x)).collect())
            }
        },
        Expr::Call { func, args } => call(*func, args, t, cx)?,
        Expr::Aggregate { op, grouping, expr } => match eval(expr, t, cx)? {
            Value::Vector(v) => Value::Vector(aggregate(*op, grouping.as_ref(), v)),
            Value::Scalar(_) => return Err(Error::Query("aggregation over a scalar".into())),
        },
        Expr::Binary {
            op,
            lhs,
            rhs,
            matching,
        } => {
            let l = eval(lhs, t, cx)?;
            let r = eval(rhs, t, cx)?;
            binary(*op, l, r, matching.as_ref())?
        }
    })
}

fn arith(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
    }
}

fn binary(op: BinOp, l: Value, r: Value, matching: Option<&(bool, Vec<String>)>) -> Result<Value> {
    Ok(match (l, r) {
        (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(arith(op, a, b)),
        (Value::Vector(v), Value::Scalar(b)) => Value::Vector(
            v.into_iter()
                .map(|(l, a)| (drop_name(l), arith(op, a, b)))
                .collect(),
        ),
        (Value::Scalar(a), Value::Vector(v)) => Value::Vector(
            v.into_iter()
                .map(|(l, b)| (drop_name(l), arith(op, a, b)))
                .collect(),
        ),
        (Value::Vector(lv), Value::Vector(rv)) => {
            let signature = |l: &Labels| -> Labels {
                match matching {
                    Some((true, on)) => l.filtered(|k| on.iter().any(|x| x == k)),
                    Some((false, ign)) => {
                        l.filtered(|k| k != METRIC_NAME && !ign.iter().any(|x| x == k))
                    }
                    None => l.without_name(),
                }
            };
            let mut right: HashMap<Labels, f64> = HashMap::with_capacity(rv.len());
            for (l, v) in rv {
                if right.insert(signature(&l), v).is_some() {
                    return Err(Error::Query(format!(
                        "many-to-many matching not allowed: duplicate series on the right side for {}",
                        signature(&l)
                    )));
                }
            }
            let mut seen: HashMap<Labels, ()> = HashMap::new();
            let mut out = Vec::new();
            for (l, a) in lv {
                let sig = signature(&l);
                let Some(&b) = right.get(&sig) else { continue };
                if seen.insert(sig.clone(), ()).is_some() {
                    return Err(Error::Query(format!(
                        "found duplicate series for the match group {sig} on the left side"
                    )));
                }
                let labels = match matching {
                    Some((true, on)) => l.filtered(|k| on.iter().any(|x| x == k)),
                    Some((false, ign)) => {
                        l.filtered(|k| k != METRIC_NAME && !ign.iter().any(|x| x == k))
                    }
                    None => l.without_name(),
                };
                out.push((Arc::new(labels), arith(op, a, b)));
            }
            Value::Vector(out)
        }
    })
}

fn in_group(k: &str, g: Option<&Grouping>) -> bool {
    match g {
        None => false,
        Some(Grouping {
            without: false,
            labels,
        }) => labels.iter().any(|x| x == k),
        Some(Grouping {
            without: true,
            labels,
        }) => k != METRIC_NAME && !labels.iter().any(|x| x == k),
    }
}

fn aggregate(
    op: AggOp,
    g: Option<&Grouping>,
    v: Vec<(Arc<Labels>, f64)>,
) -> Vec<(Arc<Labels>, f64)> {
    // Groups are found by hashing the grouping labels in place; the key label set is only
    // allocated once per group. Accumulator: (sum, count, min, max); min/max skip NaN unless
    // every value is NaN, as in Prometheus.
    let mut groups: HashMap<u64, Vec<(Labels, [f64; 4])>> = HashMap::new();
    for (l, x) in v {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (k, val) in l.iter().filter(|(k, _)| in_group(k, g)) {
            for b in k.bytes().chain([0xff]).chain(val.bytes()).chain([0xfe]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        let bucket = groups.entry(h).or_default();
        let pos = bucket
            .iter()
            .position(|(key, _)| key.iter().eq(l.iter().filter(|(k, _)| in_group(k, g))));
        let acc = match pos {
            Some(p) => &mut bucket[p].1,
            None => {
                bucket.push((l.filtered(|k| in_group(k, g)), ACC_EMPTY));
                let last = bucket.len() - 1;
                &mut bucket[last].1
            }
        };
        acc_add(acc, x);
    }
    let mut out: Vec<(Arc<Labels>, f64)> = groups
        .into_values()
        .flatten()
        .map(|(k, a)| (Arc::new(k), acc_value(op, &a)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Prometheus' `extrapolatedRate` (promql/functions.go): the increase between the first and
/// last sample in the window, corrected for counter resets, extrapolated towards the window
/// edges when the data reaches close to them (within 1.1× the average sample interval),
/// otherwise by half an interval; counters are not extrapolated below zero.
pub fn extrapolated_rate(
    pts: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let (first, last) = (pts[0], pts[pts.len() - 1]);
    let mut result = last.1 - first.1;
    if is_counter {
        let mut prev = 0.0;
        for &(_, v) in pts {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut to_start = (first.0 - range_start) as f64 / 1000.0;
    let to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg_interval = sampled / (pts.len() - 1) as f64;
    if is_counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_interval * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg_interval / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg_interval / 2.0
    };
    result *= interval / sampled;
    if is_rate {
        result /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result)
}

fn call(func: Func, args: &[Expr], t: i64, cx: &Cx) -> Result<Value> {
    let loaded = cx.loaded;
    if func == Func::Time {
        return Ok(Value::Scalar(t as f64 / 1000.0));
    }
    if func == Func::Abs {
        return Ok(match eval(&args[0], t, cx)? {
            Value::Vector(v) => Value::Vector(
                v.into_iter()
                    .map(|(l, x)| (drop_name(l), x.abs()))
                    .collect(),
            ),
            Value::Scalar(x) => Value::Scalar(x.abs()),
        });
    }
    if func == Func::HistogramQuantile {
        let q = match eval(&args[0], t, cx)? {
            Value::Scalar(q) => q,
            Value::Vector(_) => {
                return Err(Error::Query(
                    "histogram_quantile: quantile must be a scalar".into(),
                ))
            }
        };
        let Value::Vector(v) = eval(&args[1], t, cx)? else {
            return Err(Error::Query(
                "histogram_quantile: expected an instant vector".into(),
            ));
        };
        return Ok(Value::Vector(histogram_quantile(q, v)));
    }
    let Some(Expr::Selector(s)) = args.first() else {
        return Err(Error::Query("expected a range vector argument".into()));
    };
    if let Some(Some(per_step)) = cx.pre.get(s.id) {
        return Ok(Value::Vector(
            per_step.get(cx.step).cloned().unwrap_or_default(),
        ));
    }
    let range = s.range_ms.unwrap_or(0);
    let (lo, hi) = (t - s.offset_ms - range, t - s.offset_ms);
    let mut out = Vec::new();
    for (nameless, l, pts) in &loaded[s.id] {
        let w = window(pts, lo, hi);
        if let Some(v) = range_fn(func, w, lo, hi) {
            let labels = if func == Func::LastOverTime {
                Arc::clone(l)
            } else {
                Arc::clone(nameless)
            };
            out.push((labels, v));
        }
    }
    Ok(Value::Vector(out))
}

/// A range function over one window of samples; `None` when it has no value.
fn range_fn(func: Func, w: &[(i64, f64)], lo: i64, hi: i64) -> Option<f64> {
    if w.is_empty() {
        return None;
    }
    match func {
        Func::Rate => extrapolated_rate(w, lo, hi, true, true),
        Func::Increase => extrapolated_rate(w, lo, hi, true, false),
        Func::Delta => extrapolated_rate(w, lo, hi, false, false),
        Func::Irate => {
            if w.len() < 2 {
                None
            } else {
                let (a, b) = (w[w.len() - 2], w[w.len() - 1]);
                let d = if b.1 < a.1 { b.1 } else { b.1 - a.1 };
                Some(d / ((b.0 - a.0) as f64 / 1000.0))
            }
        }
        Func::AvgOverTime => Some(w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64),
        Func::SumOverTime => Some(w.iter().map(|p| p.1).sum::<f64>()),
        Func::CountOverTime => Some(w.len() as f64),
        Func::MaxOverTime => w
            .iter()
            .map(|p| p.1)
            .reduce(|a, b| if b > a || a.is_nan() { b } else { a }),
        Func::MinOverTime => w
            .iter()
            .map(|p| p.1)
            .reduce(|a, b| if b < a || a.is_nan() { b } else { a }),
        Func::LastOverTime => w.last().map(|p| p.1),
        Func::Time | Func::Abs | Func::HistogramQuantile => None,
    }
}

/// Evaluation context of one step.
struct Cx<'a> {
    loaded: &'a Loaded,
    /// Per selector id: its value (instant selector, or the range function applied to it) at
    /// every step, computed series by series.
    pre: &'a Pre,
    step: usize,
}

type Pre = Vec<Option<Vec<Vec<(Arc<Labels>, f64)>>>>;

/// Values of a selector (`func` = `None`) or of a range function over it, per series and step.
fn series_values(
    s: &super::Selector,
    func: Option<Func>,
    series: &[LoadedSeries],
    steps: &[i64],
) -> Vec<Vec<Option<f64>>> {
    let range = s.range_ms.unwrap_or(LOOKBACK_MS - 1);
    series
        .par_iter()
        .map(|(_, _, pts)| {
            let (mut a, mut b) = (0usize, 0usize);
            steps
                .iter()
                .map(|&t| {
                    let (lo, hi) = (t - s.offset_ms - range, t - s.offset_ms);
                    while a < pts.len() && pts[a].0 < lo {
                        a += 1;
                    }
                    b = b.max(a);
                    while b < pts.len() && pts[b].0 <= hi {
                        b += 1;
                    }
                    let w = &pts[a..b];
                    match func {
                        None => w.last().map(|p| p.1),
                        Some(f) => range_fn(f, w, lo, hi),
                    }
                })
                .collect()
        })
        .collect()
}

/// The common dashboard shape `agg by (...) (f(x[r]))` (or `agg(x)`) over a range: each
/// series' group is found once instead of once per step, and values accumulate in series
/// order, exactly as the step-by-step path does (same floating-point results).
fn fast_aggregate(
    op: AggOp,
    g: Option<&Grouping>,
    s: &super::Selector,
    func: Option<Func>,
    loaded: &Loaded,
    steps: &[i64],
) -> QueryResult {
    let Some(series) = loaded.get(s.id) else {
        return QueryResult::Matrix(Vec::new());
    };
    let values = series_values(s, func, series, steps);
    let n = steps.len();
    let mut group_of: HashMap<Labels, usize> = HashMap::new();
    let mut keys: Vec<Labels> = Vec::new();
    let mut acc: Vec<[f64; 4]> = Vec::new();
    for ((nameless, l, _), vals) in series.iter().zip(&values) {
        let labels = match func {
            None | Some(Func::LastOverTime) => l,
            Some(_) => nameless,
        };
        let key = labels.filtered(|k| in_group(k, g));
        let gi = match group_of.get(&key) {
            Some(&gi) => gi,
            None => {
                group_of.insert(key.clone(), keys.len());
                keys.push(key);
                acc.extend(std::iter::repeat_n(ACC_EMPTY, n));
                keys.len() - 1
            }
        };
        for (a, v) in acc[gi * n..(gi + 1) * n].iter_mut().zip(vals) {
            if let Some(x) = v {
                acc_add(a, *x);
            }
        }
    }
    let mut out: Vec<(Labels, Vec<(i64, f64)>)> = keys
        .into_iter()
        .enumerate()
        .map(|(gi, k)| {
            let pts = acc[gi * n..(gi + 1) * n]
                .iter()
                .zip(steps)
                .filter(|(a, _)| a[1] > 0.0)
                .map(|(a, &t)| (t, acc_value(op, a)))
                .collect();
            (k, pts)
        })
        .collect();
    out.retain(|(_, p): &(Labels, Vec<(i64, f64)>)| !p.is_empty());
    out.sort_by(|a, b| a.0.cmp(&b.0));
    QueryResult::Matrix(out)
}

/// Aggregation accumulator: (sum, count, min, max); min/max skip NaN unless all are NaN.
const ACC_EMPTY: [f64; 4] = [0.0, 0.0, f64::NAN, f64::NAN];

fn acc_add(acc: &mut [f64; 4], x: f64) {
    acc[0] += x;
    acc[1] += 1.0;
    if acc[2].is_nan() || x < acc[2] {
        acc[2] = x;
    }
    if acc[3].is_nan() || x > acc[3] {
        acc[3] = x;
    }
}

fn acc_value(op: AggOp, a: &[f64; 4]) -> f64 {
    match op {
        AggOp::Sum => a[0],
        AggOp::Avg => a[0] / a[1],
        AggOp::Count => a[1],
        AggOp::Min => a[2],
        AggOp::Max => a[3],
    }
}

/// Range queries walk each series once across all steps (two sliding pointers) instead of
/// binary-searching every series at every step: the latter missed the cache on each probe and
/// dominated query time.
fn precompute(e: &Expr, loaded: &Loaded, steps: &[i64]) -> Pre {
    let mut jobs: Vec<(&super::Selector, Option<Func>)> = Vec::new();
    fn walk<'a>(e: &'a Expr, jobs: &mut Vec<(&'a super::Selector, Option<Func>)>) {
        match e {
            Expr::Selector(s) if s.range_ms.is_none() => jobs.push((s, None)),
            Expr::Call { func, args } if func.signature() == [super::ArgKind::Range] => {
                if let Some(Expr::Selector(s)) = args.first() {
                    jobs.push((s, Some(*func)));
                }
            }
            Expr::Call { args, .. } => args.iter().for_each(|a| walk(a, jobs)),
            Expr::Aggregate { expr, .. } | Expr::Neg(expr) => walk(expr, jobs),
            Expr::Binary { lhs, rhs, .. } => {
                walk(lhs, jobs);
                walk(rhs, jobs);
            }
            _ => {}
        }
    }
    walk(e, &mut jobs);
    let mut pre: Pre = vec![None; loaded.len()];
    for (s, func) in jobs {
        let Some(series) = loaded.get(s.id) else {
            continue;
        };
        let per_series = series_values(s, func, series, steps);
        let mut by_step: Vec<Vec<(Arc<Labels>, f64)>> = vec![Vec::new(); steps.len()];
        for ((nameless, l, _), values) in series.iter().zip(per_series) {
            let labels = match func {
                None | Some(Func::LastOverTime) => l,
                Some(_) => nameless,
            };
            for (slot, v) in by_step.iter_mut().zip(values) {
                if let Some(v) = v {
                    slot.push((Arc::clone(labels), v));
                }
            }
        }
        if let Some(slot) = pre.get_mut(s.id) {
            *slot = Some(by_step);
        }
    }
    pre
}

/// Prometheus' `bucketQuantile` over classic `le` buckets, grouped by the other labels.
fn histogram_quantile(q: f64, v: Vec<(Arc<Labels>, f64)>) -> Vec<(Arc<Labels>, f64)> {
    let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for (l, count) in v {
        let Some(le) = l.get("le").and_then(crate::exposition::parse_float) else {
            continue;
        };
        groups
            .entry(l.filtered(|k| k != "le" && k != METRIC_NAME))
            .or_default()
            .push((le, count));
    }
    let mut out = Vec::new();
    for (labels, mut buckets) in groups {
        out.push((Arc::new(labels), bucket_quantile(q, &mut buckets)));
    }
    out
}

fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.len() < 2 || buckets[buckets.len() - 1].0 != f64::INFINITY {
        return f64::NAN;
    }
    // Rates of separately scraped buckets can be slightly non-monotonic; fix as Prometheus does.
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else {
            b.1 = max;
        }
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 || observations.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets
        .partition_point(|x| x.1 < rank)
        .min(buckets.len() - 1);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_matches_prometheus_extrapolation() {
        // 0,10,...,300 over [0s, 300s]: exact coverage, rate 1/s.
        let pts: Vec<(i64, f64)> = (0..=30).map(|i| (i * 10_000, i as f64 * 10.0)).collect();
        let r = extrapolated_rate(&pts, 0, 300_000, true, true).expect("rate");
        assert!((r - 1.0).abs() < 1e-12, "{r}");
        // Window starts 25s before the first sample (> 1.1 × 10s): extrapolate by half an interval.
        let shifted: Vec<(i64, f64)> = pts.iter().map(|&(t, v)| (t, v + 100.0)).collect();
        let r = extrapolated_rate(&shifted, -25_000, 300_000, true, false).expect("increase");
        assert!((r - 300.0 * 305.0 / 300.0).abs() < 1e-9, "{r}");
        // A counter starting at 0 is not extrapolated to before its zero point.
        let r = extrapolated_rate(&pts, -25_000, 300_000, true, false).expect("increase");
        assert!((r - 300.0).abs() < 1e-9, "{r}");
        // Counter reset: 5,10,2 → increase 10-5 + 2 = 7 over 20s sampled.
        let pts = [(0, 5.0), (10_000, 10.0), (20_000, 2.0)];
        let r = extrapolated_rate(&pts, 0, 20_000, true, false).expect("increase");
        // Zero point: 20s × 5/7 ≈ 14.3s > 0s to start, so no clamp; interval 20s exact.
        assert!((r - 7.0).abs() < 1e-12, "{r}");
    }

    #[test]
    fn bucket_quantile_interpolates() {
        let mut b = vec![
            (0.1, 10.0),
            (0.5, 60.0),
            (1.0, 90.0),
            (f64::INFINITY, 100.0),
        ];
        // rank 50 falls in (0.1, 0.5]: 0.1 + 0.4 × 40/50.
        assert!((bucket_quantile(0.5, &mut b) - 0.42).abs() < 1e-12);
        assert_eq!(bucket_quantile(0.99, &mut b), 1.0);
    }
}
