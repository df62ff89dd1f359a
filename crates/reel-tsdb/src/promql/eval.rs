//! Evaluation. Each selector's samples are loaded once for the whole query window, then every
//! step is evaluated independently (in parallel with rayon) against those preloaded series.

use super::{AggOp, BinOp, Expr, Func, GroupModifier, Grouping, Selector};
use crate::labels::{Labels, MatchOp, METRIC_NAME};
use crate::{Error, Result, Tsdb};
use rayon::prelude::*;
use regex_automata::meta::Regex;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Compiles a `label_replace` regex the way Prometheus does: fully anchored, `.` matches `\n`.
pub(crate) fn anchored_regex(re: &str) -> std::result::Result<Regex, String> {
    Regex::new(&format!("^(?s:{re})$")).map_err(|e| {
        let detail = e
            .syntax_error()
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string());
        format!(
            "invalid regular expression {re:?}: {}",
            detail.lines().last().unwrap_or("")
        )
    })
}

fn qerr<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Query(msg.into()))
}

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
/// Series loaded for each selector, indexed by selector id, and each selector's seam: its
/// samples before the seam are downsampled (rollup `last` samples, see
/// [`Tsdb::select_downsampled`]; `i64::MIN` when there are none), `rollup_step_ms` apart.
struct Loaded {
    per_selector: Vec<Vec<LoadedSeries>>,
    seams: Vec<i64>,
    rollup_step_ms: i64,
}

impl std::ops::Deref for Loaded {
    type Target = Vec<Vec<LoadedSeries>>;
    fn deref(&self) -> &Self::Target {
        &self.per_selector
    }
}

impl Loaded {
    /// A selector's seam and the rollup step.
    fn seam(&self, id: usize) -> (i64, i64) {
        (self.seams.get(id).copied().unwrap_or(i64::MIN), self.rollup_step_ms)
    }
}

fn drop_name(l: Arc<Labels>) -> Arc<Labels> {
    if l.get(METRIC_NAME).is_none() {
        l
    } else {
        Arc::new(l.without_name())
    }
}

fn collect_selectors<'a>(e: &'a Expr, out: &mut Vec<&'a Selector>) {
    match e {
        Expr::Number(_) | Expr::Str(_) => {}
        Expr::Selector(s) => out.push(s),
        Expr::Call { args, .. } => args.iter().for_each(|a| collect_selectors(a, out)),
        Expr::Aggregate { expr, param, .. } => {
            if let Some(p) = param {
                collect_selectors(p, out);
            }
            collect_selectors(expr, out)
        }
        Expr::Neg(expr) => collect_selectors(expr, out),
        Expr::Binary { lhs, rhs, .. } => {
            collect_selectors(lhs, out);
            collect_selectors(rhs, out);
        }
    }
}

fn load(db: &Tsdb, e: &Expr, start: i64, end: i64) -> Result<Loaded> {
    let mut sels = Vec::new();
    collect_selectors(e, &mut sels);
    let mut loaded = Loaded {
        per_selector: vec![Vec::new(); sels.len()],
        seams: vec![i64::MIN; sels.len()],
        rollup_step_ms: db.options().rollup_step_ms,
    };
    for s in sels {
        let window = s.range_ms.unwrap_or(LOOKBACK_MS);
        // Raw samples where they exist; before the oldest raw block, the 5-minute rollups'
        // `last` samples (downsampling, as in Thanos), under the series' own labels.
        let (data, seam) = db.select_downsampled(
            &s.matchers,
            start.saturating_sub(s.offset_ms).saturating_sub(window),
            end.saturating_sub(s.offset_ms),
        )?;
        if let (Some(slot), Some(seam_slot)) = (loaded.per_selector.get_mut(s.id), loaded.seams.get_mut(s.id)) {
            *slot = data
                .into_iter()
                .map(|(l, pts)| (Arc::new(l.without_name()), Arc::new(l), pts))
                .collect();
            *seam_slot = seam;
        }
    }
    Ok(loaded)
}

/// The `label_replace` regexes of an expression, compiled once per query.
fn collect_regexes(e: &Expr, out: &mut HashMap<String, Regex>) -> Result<()> {
    match e {
        Expr::Call { func, args } => {
            if *func == Func::LabelReplace {
                if let Some(Expr::Str(re)) = args.get(4) {
                    if !out.contains_key(re) {
                        out.insert(re.clone(), anchored_regex(re).map_err(Error::Query)?);
                    }
                }
            }
            for a in args {
                collect_regexes(a, out)?;
            }
        }
        Expr::Aggregate { expr, param, .. } => {
            if let Some(p) = param {
                collect_regexes(p, out)?;
            }
            collect_regexes(expr, out)?;
        }
        Expr::Neg(x) => collect_regexes(x, out)?,
        Expr::Binary { lhs, rhs, .. } => {
            collect_regexes(lhs, out)?;
            collect_regexes(rhs, out)?;
        }
        Expr::Number(_) | Expr::Str(_) | Expr::Selector(_) => {}
    }
    Ok(())
}

/// Prometheus refuses a vector with two samples of the same label set.
fn check_unique(v: &[(Arc<Labels>, f64)]) -> Result<()> {
    if v.len() > 1 {
        let mut seen: HashSet<&Labels> = HashSet::with_capacity(v.len());
        for (l, _) in v {
            if !seen.insert(l) {
                return qerr("vector cannot contain metrics with the same labelset");
            }
        }
    }
    Ok(())
}

pub(crate) fn instant(db: &Tsdb, e: &Expr, t: i64) -> Result<QueryResult> {
    let mut regexes = HashMap::new();
    collect_regexes(e, &mut regexes)?;
    let loaded = load(db, e, t, t)?;
    if let Expr::Selector(s) = e {
        if let Some(r) = s.range_ms {
            // A bare range selector returns its raw samples, as in Prometheus.
            let hi = t.saturating_sub(s.offset_ms);
            let lo = hi.saturating_sub(r);
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
                regexes: &regexes,
            },
        )? {
            Value::Scalar(v) => QueryResult::Scalar { t, v },
            Value::Vector(samples) => QueryResult::Vector {
                t,
                samples: check_unique(&samples)
                    .map(|()| samples)?
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
    let mut regexes = HashMap::new();
    collect_regexes(e, &mut regexes)?;
    let loaded = load(db, e, start, end)?;
    let steps: Vec<i64> = (0..)
        .map(|i| start + i * step)
        .take_while(|&t| t <= end)
        .collect();
    if let Expr::Aggregate {
        op: op @ (AggOp::Sum | AggOp::Avg | AggOp::Max | AggOp::Min | AggOp::Count | AggOp::Group),
        grouping,
        expr,
        param: None,
    } = e
    {
        let job = match expr.as_ref() {
            Expr::Selector(s) if s.range_ms.is_none() => Some((s, None)),
            Expr::Call { func, args } if func.is_simple_range() => match args.first() {
                Some(Expr::Selector(s)) => Some((s, Some(*func))),
                _ => None,
            },
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
                    regexes: &regexes,
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
                    let pts = by_labels.entry(Arc::unwrap_or_clone(l)).or_default();
                    if pts.last().is_some_and(|p| p.0 == t) {
                        return qerr("vector cannot contain metrics with the same labelset");
                    }
                    pts.push((t, x));
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
        Expr::Str(_) => return qerr("a string is only allowed as a function argument"),
        Expr::Selector(s) => {
            if s.range_ms.is_some() {
                return qerr("a range vector is only allowed as a function argument");
            }
            if let Some(Some(per_step)) = cx.pre.get(s.id) {
                return Ok(Value::Vector(
                    per_step.get(cx.step).cloned().unwrap_or_default(),
                ));
            }
            let hi = t.saturating_sub(s.offset_ms);
            let mut out = Vec::new();
            for (_, l, pts) in loaded.get(s.id).map(Vec::as_slice).unwrap_or_default() {
                // Exclusive lower bound: a sample exactly 5m old is stale, as in Prometheus.
                if let Some(&(_, v)) = window(pts, hi.saturating_sub(LOOKBACK_MS - 1), hi).last() {
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
        Expr::Aggregate {
            op,
            grouping,
            expr,
            param,
        } => {
            let param = match param.as_deref() {
                None => AggParam::None,
                Some(Expr::Str(s)) => AggParam::Label(s),
                Some(p) => AggParam::Num(scalar_arg(p, t, cx)?),
            };
            match eval(expr, t, cx)? {
                Value::Vector(v) => Value::Vector(aggregate(*op, grouping.as_ref(), param, v)?),
                Value::Scalar(_) => return qerr("aggregation over a scalar"),
            }
        }
        Expr::Binary {
            op,
            lhs,
            rhs,
            matching,
            group,
            return_bool,
        } => {
            let l = eval(lhs, t, cx)?;
            let r = eval(rhs, t, cx)?;
            binary(*op, l, r, matching.as_ref(), group.as_ref(), *return_bool)?
        }
    })
}

fn scalar_arg(e: &Expr, t: i64, cx: &Cx) -> Result<f64> {
    match eval(e, t, cx)? {
        Value::Scalar(x) => Ok(x),
        Value::Vector(_) => qerr("expected a scalar"),
    }
}

fn vector_arg(e: &Expr, t: i64, cx: &Cx) -> Result<Vec<(Arc<Labels>, f64)>> {
    match eval(e, t, cx)? {
        Value::Vector(v) => Ok(v),
        Value::Scalar(_) => qerr("expected an instant vector"),
    }
}

fn arith(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        BinOp::Pow => a.powf(b),
        BinOp::Atan2 => a.atan2(b),
        // Comparisons between scalars (with `bool`) give 0 or 1.
        op if op.is_comparison() => f64::from(u8::from(compare(op, a, b))),
        _ => f64::NAN,
    }
}

/// A comparison; NaN compares unequal to everything (`NaN != NaN` is true).
fn compare(op: BinOp, a: f64, b: f64) -> bool {
    match op {
        BinOp::Eq => a == b,
        BinOp::Ne => a != b,
        BinOp::Gt => a > b,
        BinOp::Lt => a < b,
        BinOp::Ge => a >= b,
        BinOp::Le => a <= b,
        _ => false,
    }
}

/// The operator applied to one pair of values: `(value, keep)`. Comparisons keep the left
/// value when true (filter semantics); arithmetic always keeps.
fn elem_op(op: BinOp, a: f64, b: f64) -> (f64, bool) {
    if op.is_comparison() {
        (a, compare(op, a, b))
    } else {
        (arith(op, a, b), true)
    }
}

fn binary(
    op: BinOp,
    l: Value,
    r: Value,
    matching: Option<&(bool, Vec<String>)>,
    group: Option<&GroupModifier>,
    return_bool: bool,
) -> Result<Value> {
    Ok(match (l, r) {
        (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(arith(op, a, b)),
        (Value::Vector(v), Value::Scalar(s)) => {
            Value::Vector(vector_scalar(op, v, s, false, return_bool))
        }
        (Value::Scalar(s), Value::Vector(v)) => {
            Value::Vector(vector_scalar(op, v, s, true, return_bool))
        }
        (Value::Vector(lv), Value::Vector(rv)) => {
            if op.is_set() {
                Value::Vector(set_op(op, lv, rv, matching))
            } else {
                Value::Vector(vector_vector(op, lv, rv, matching, group, return_bool)?)
            }
        }
    })
}

/// Vector–scalar operation; `swap` = the scalar is on the left. Comparisons filter and keep
/// the vector element's value (and metric name); `bool` turns them into 0/1 without the name.
fn vector_scalar(
    op: BinOp,
    v: Vec<(Arc<Labels>, f64)>,
    s: f64,
    swap: bool,
    return_bool: bool,
) -> Vec<(Arc<Labels>, f64)> {
    let mut out = Vec::with_capacity(v.len());
    for (l, x) in v {
        let (a, b) = if swap { (s, x) } else { (x, s) };
        let (mut value, mut keep) = elem_op(op, a, b);
        if op.is_comparison() {
            value = x;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            let l = if return_bool || !op.is_comparison() {
                drop_name(l)
            } else {
                l
            };
            out.push((l, value));
        }
    }
    out
}

/// The match signature of a series: the `on` labels, or all but the `ignoring` labels and
/// the metric name.
fn signature(l: &Labels, matching: Option<&(bool, Vec<String>)>) -> Labels {
    match matching {
        Some((true, on)) => l.filtered(|k| on.iter().any(|x| x == k)),
        Some((false, ign)) => l.filtered(|k| k != METRIC_NAME && !ign.iter().any(|x| x == k)),
        None => l.without_name(),
    }
}

/// Prometheus' `resultMetric`: the "many" (or left) side's labels, without the metric name
/// for arithmetic; one-to-one matching keeps only the `on` labels / drops the `ignoring`
/// ones; `group_x(labels)` copies those labels from the "one" side.
fn result_metric(
    l: &Labels,
    r: &Labels,
    op: BinOp,
    matching: Option<&(bool, Vec<String>)>,
    group: Option<&GroupModifier>,
) -> Labels {
    let drop = !op.is_comparison();
    let mut pairs: Vec<(&str, &str)> = l
        .iter()
        .filter(|(k, _)| !(drop && *k == METRIC_NAME))
        .collect();
    match (group, matching) {
        (None, Some((true, on))) => pairs.retain(|(k, _)| on.iter().any(|x| x == k)),
        (None, Some((false, ign))) => pairs.retain(|(k, _)| !ign.iter().any(|x| x == k)),
        (None, None) => {}
        (Some(g), _) => {
            pairs.retain(|(k, _)| !g.include.iter().any(|x| x == k));
            for name in &g.include {
                if let Some(v) = r.get(name) {
                    pairs.push((name, v));
                }
            }
        }
    }
    Labels::new(pairs)
}

/// Vector–vector arithmetic/comparison with one-to-one, many-to-one (`group_left`) or
/// one-to-many (`group_right`) matching (Prometheus' `VectorBinop`).
fn vector_vector(
    op: BinOp,
    lv: Vec<(Arc<Labels>, f64)>,
    rv: Vec<(Arc<Labels>, f64)>,
    matching: Option<&(bool, Vec<String>)>,
    group: Option<&GroupModifier>,
    return_bool: bool,
) -> Result<Vec<(Arc<Labels>, f64)>> {
    let one_to_many = matches!(group, Some(g) if !g.left);
    // The right side below is always the "one" side.
    let (lhs, rhs) = if one_to_many { (rv, lv) } else { (lv, rv) };
    let mut right: HashMap<Labels, (Arc<Labels>, f64)> = HashMap::with_capacity(rhs.len());
    for (l, x) in rhs {
        let sig = signature(&l, matching);
        if let Some((prev, _)) = right.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            return qerr(format!(
                "found duplicate series for the match group {sig} on the {side} hand-side of the operation: [{l}, {prev}];many-to-many matching not allowed: matching labels must be unique on one side"
            ));
        }
        right.insert(sig, (l, x));
    }
    let mut matched_one: HashSet<Labels> = HashSet::new();
    let mut matched_many: HashMap<Labels, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for (l, x) in lhs {
        let sig = signature(&l, matching);
        let Some((rl, y)) = right.get(&sig) else {
            continue;
        };
        let (a, b) = if one_to_many { (*y, x) } else { (x, *y) };
        let (mut value, keep) = elem_op(op, a, b);
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&l, rl, op, matching, group);
        if return_bool {
            metric = metric.without_name();
        }
        if group.is_none() {
            if !matched_one.insert(sig) {
                return qerr("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
            }
        } else if !matched_many.entry(sig).or_default().insert(metric.clone()) {
            return qerr("multiple matches for labels: grouping labels must ensure unique matches");
        }
        out.push((Arc::new(metric), value));
    }
    Ok(out)
}

/// `and`, `or`, `unless`: many-to-many, label sets (and names) passed through unchanged.
fn set_op(
    op: BinOp,
    lv: Vec<(Arc<Labels>, f64)>,
    rv: Vec<(Arc<Labels>, f64)>,
    matching: Option<&(bool, Vec<String>)>,
) -> Vec<(Arc<Labels>, f64)> {
    match op {
        BinOp::And => {
            if lv.is_empty() || rv.is_empty() {
                return Vec::new();
            }
            let right: HashSet<Labels> = rv.iter().map(|(l, _)| signature(l, matching)).collect();
            lv.into_iter()
                .filter(|(l, _)| right.contains(&signature(l, matching)))
                .collect()
        }
        BinOp::Or => {
            if lv.is_empty() {
                return rv;
            }
            if rv.is_empty() {
                return lv;
            }
            let left: HashSet<Labels> = lv.iter().map(|(l, _)| signature(l, matching)).collect();
            let mut out = lv;
            out.extend(
                rv.into_iter()
                    .filter(|(l, _)| !left.contains(&signature(l, matching))),
            );
            out
        }
        _ => {
            if lv.is_empty() || rv.is_empty() {
                return lv;
            }
            let right: HashSet<Labels> = rv.iter().map(|(l, _)| signature(l, matching)).collect();
            lv.into_iter()
                .filter(|(l, _)| !right.contains(&signature(l, matching)))
                .collect()
        }
    }
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

/// The evaluated parameter of an aggregation.
#[derive(Clone, Copy)]
enum AggParam<'a> {
    None,
    Num(f64),
    Label(&'a str),
}

fn aggregate(
    op: AggOp,
    g: Option<&Grouping>,
    param: AggParam,
    v: Vec<(Arc<Labels>, f64)>,
) -> Result<Vec<(Arc<Labels>, f64)>> {
    match op {
        AggOp::Sum | AggOp::Avg | AggOp::Max | AggOp::Min | AggOp::Count | AggOp::Group => {
            Ok(aggregate_simple(op, g, v))
        }
        _ => aggregate_general(op, g, param, v),
    }
}

fn aggregate_simple(
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

/// Aggregations that need every member of a group: topk, bottomk, quantile, stddev, stdvar,
/// count_values. Groups come out sorted by their labels.
fn aggregate_general(
    op: AggOp,
    g: Option<&Grouping>,
    param: AggParam,
    v: Vec<(Arc<Labels>, f64)>,
) -> Result<Vec<(Arc<Labels>, f64)>> {
    let mut k = 0usize;
    if matches!(op, AggOp::Topk | AggOp::Bottomk) {
        let AggParam::Num(p) = param else {
            return qerr("topk/bottomk need a scalar k");
        };
        // Go's int64(param) after Prometheus' convertibleToInt64 check.
        if !(p.is_finite() && p > -9.223_372_036_854_776e18 && p < 9.223_372_036_854_776e18) {
            return qerr(format!("Scalar value {} overflows int64", format_value(p)));
        }
        if p < 1.0 {
            return Ok(Vec::new());
        }
        k = (p as i64).min(v.len() as i64).max(0) as usize;
    }
    if op == AggOp::CountValues {
        let AggParam::Label(name) = param else {
            return qerr("count_values needs a label name");
        };
        // The value label joins the grouping labels.
        let g2 = match g {
            None => Grouping {
                without: false,
                labels: vec![name.to_string()],
            },
            Some(Grouping {
                without: false,
                labels,
            }) => {
                let mut labels = labels.clone();
                labels.push(name.to_string());
                Grouping {
                    without: false,
                    labels,
                }
            }
            Some(gr) => gr.clone(),
        };
        let mut counts: BTreeMap<Labels, f64> = BTreeMap::new();
        for (l, x) in v {
            let value = format_value(x);
            let key = l.with(name, &value).filtered(|k| in_group(k, Some(&g2)));
            *counts.entry(key).or_default() += 1.0;
        }
        return Ok(counts.into_iter().map(|(l, c)| (Arc::new(l), c)).collect());
    }
    let mut groups: BTreeMap<Labels, Vec<(Arc<Labels>, f64)>> = BTreeMap::new();
    for (l, x) in v {
        groups
            .entry(l.filtered(|k| in_group(k, g)))
            .or_default()
            .push((l, x));
    }
    let mut out = Vec::new();
    for (key, members) in groups {
        match op {
            AggOp::Topk | AggOp::Bottomk => out.extend(top_k(members, k, op == AggOp::Topk)),
            AggOp::Quantile => {
                let q = match param {
                    AggParam::Num(q) => q,
                    _ => f64::NAN,
                };
                let mut vals: Vec<f64> = members.iter().map(|m| m.1).collect();
                out.push((Arc::new(key), quantile(q, &mut vals)));
            }
            AggOp::Stddev | AggOp::Stdvar => {
                // Welford's running variance, as Prometheus computes it.
                let (mut n, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
                for (_, x) in &members {
                    n += 1.0;
                    let delta = x - mean;
                    mean += delta / n;
                    m2 += delta * (x - mean);
                }
                let var = m2 / n;
                let v = if op == AggOp::Stddev { var.sqrt() } else { var };
                out.push((Arc::new(key), v));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Go's `container/heap` over `(labels, value)` with Prometheus' orderings, so that ties
/// resolve exactly as in Prometheus: topk keeps a min-heap (NaN smallest), bottomk a max-heap
/// (NaN largest); an incoming sample replaces the root only if strictly better.
fn top_k(members: Vec<(Arc<Labels>, f64)>, k: usize, top: bool) -> Vec<(Arc<Labels>, f64)> {
    let less = |a: f64, b: f64| -> bool {
        if a.is_nan() {
            return true;
        }
        if top {
            a < b
        } else {
            a > b
        }
    };
    fn up(h: &mut [(Arc<Labels>, f64)], mut j: usize, less: &impl Fn(f64, f64) -> bool) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !less(h[j].1, h[i].1) {
                break;
            }
            h.swap(i, j);
            j = i;
        }
    }
    fn down(h: &mut [(Arc<Labels>, f64)], i0: usize, less: &impl Fn(f64, f64) -> bool) -> bool {
        let n = h.len();
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            if j1 + 1 < n && less(h[j1 + 1].1, h[j1].1) {
                j = j1 + 1;
            }
            if !less(h[j].1, h[i].1) {
                break;
            }
            h.swap(i, j);
            i = j;
        }
        i > i0
    }
    if k == 0 {
        return Vec::new();
    }
    let mut heap: Vec<(Arc<Labels>, f64)> = Vec::with_capacity(k.min(members.len()));
    for (l, x) in members {
        if heap.len() < k {
            heap.push((l, x));
            let last = heap.len() - 1;
            up(&mut heap, last, &less);
        } else {
            let root = heap[0].1;
            let better = if top { root < x } else { root > x };
            if better || (root.is_nan() && !x.is_nan()) {
                heap[0] = (l, x);
                if k > 1 && !down(&mut heap, 0, &less) {
                    up(&mut heap, 0, &less);
                }
            }
        }
    }
    // Prometheus: sort.Sort(sort.Reverse(heap)); Go's sort is an insertion sort up to 12
    // elements (stable). Larger heaps: a stable sort with NaN last.
    let rev_less = |a: f64, b: f64| less(b, a);
    if heap.len() <= 12 {
        for i in 1..heap.len() {
            let mut j = i;
            while j > 0 && rev_less(heap[j].1, heap[j - 1].1) {
                heap.swap(j, j - 1);
                j -= 1;
            }
        }
    } else {
        heap.sort_by(|a, b| {
            let key = |x: f64| (x.is_nan(), if top { -x } else { x });
            let (ka, kb) = (key(a.1), key(b.1));
            ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
        });
    }
    heap
}

/// Prometheus' `quantile`: linear interpolation between the closest ranks (φ·(n−1)).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as with Prometheus' vectorByValueHeap ordering.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
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
    extrapolated_rate_across(pts, range_start, range_end, is_counter, is_rate, (i64::MIN, 0))
}

/// [`extrapolated_rate`] for a window that may begin in downsampled data: `seam` = (the time
/// before which samples are rollup samples, the rollup step in ms). Prometheus judges how
/// close the data reaches each window edge against the window's average sample interval; a
/// window that begins in downsampled data and ends in raw data has a raw-sized average, so its
/// sparse start would never count as close and up to a rollup step of the window would go
/// missing. Here each edge is judged against the spacing of the data at that edge: the
/// rollup step at the start, the raw samples' average at the end. Any other window is
/// computed exactly as Prometheus does.
pub fn extrapolated_rate_across(
    pts: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
    seam: (i64, i64),
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
    let (seam, step) = seam;
    let rolled = pts.partition_point(|p| p.0 < seam);
    let (start_interval, end_interval) = if range_start < seam && rolled > 0 && rolled < pts.len() && step > 0 {
        // The window begins in downsampled data and ends in raw data (a series with no
        // sample before the seam is judged as Prometheus would).
        let raw = pts.len() - rolled;
        // Rollup samples are a bucket's last ones: a step apart, except where a compaction
        // cut a bucket (closer), so the step is the spacing to expect.
        let start = step as f64 / 1000.0;
        let end = if raw >= 2 { (last.0 - pts[rolled].0) as f64 / 1000.0 / (raw - 1) as f64 } else { avg_interval };
        (start, end)
    } else {
        (avg_interval, avg_interval)
    };
    if is_counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let mut interval = sampled;
    interval += if to_start < start_interval * 1.1 {
        to_start
    } else {
        start_interval / 2.0
    };
    interval += if to_end < end_interval * 1.1 {
        to_end
    } else {
        end_interval / 2.0
    };
    result *= interval / sampled;
    if is_rate {
        result /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result)
}

/// Go's `math.Max` (NaN wins, except against +Inf; +0 beats -0).
fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() {
            y
        } else {
            x
        }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min` (NaN wins, except against -Inf; -0 beats +0).
fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() {
            x
        } else {
            y
        }
    } else if x < y {
        x
    } else {
        y
    }
}

fn map_values(v: Vec<(Arc<Labels>, f64)>, f: impl Fn(f64) -> f64) -> Value {
    Value::Vector(v.into_iter().map(|(l, x)| (drop_name(l), f(x))).collect())
}

/// Labels of `absent(x)`: the equality matchers of a plain selector (a label given twice is
/// left out), as Prometheus' `createLabelsForAbsentFunction`.
fn absent_labels(e: Option<&Expr>) -> Labels {
    let Some(Expr::Selector(s)) = e else {
        return Labels::default();
    };
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut dup: HashSet<&str> = HashSet::new();
    for m in &s.matchers {
        if m.op != MatchOp::Equal || m.name == METRIC_NAME {
            continue;
        }
        if pairs.iter().any(|(k, _)| *k == m.name) {
            dup.insert(&m.name);
        }
        pairs.push((&m.name, &m.value));
    }
    pairs.retain(|(k, _)| !dup.contains(k));
    Labels::new(pairs)
}

fn str_arg(args: &[Expr], i: usize) -> Result<&str> {
    match args.get(i) {
        Some(Expr::Str(s)) => Ok(s),
        _ => qerr("expected a string argument"),
    }
}

fn call(func: Func, args: &[Expr], t: i64, cx: &Cx) -> Result<Value> {
    let loaded = cx.loaded;
    let arg = |i: usize| -> Result<&Expr> {
        args.get(i)
            .ok_or_else(|| Error::Query("missing function argument".into()))
    };
    match func {
        Func::Time => return Ok(Value::Scalar(t as f64 / 1000.0)),
        Func::Abs
        | Func::Ceil
        | Func::Floor
        | Func::Sqrt
        | Func::Exp
        | Func::Ln
        | Func::Log2
        | Func::Log10
        | Func::Sgn => {
            let f: fn(f64) -> f64 = match func {
                Func::Abs => f64::abs,
                Func::Ceil => f64::ceil,
                Func::Floor => f64::floor,
                Func::Sqrt => f64::sqrt,
                Func::Exp => f64::exp,
                Func::Ln => f64::ln,
                Func::Log2 => f64::log2,
                Func::Log10 => f64::log10,
                _ => |x: f64| {
                    if x < 0.0 {
                        -1.0
                    } else if x > 0.0 {
                        1.0
                    } else {
                        x
                    }
                },
            };
            return Ok(match eval(arg(0)?, t, cx)? {
                Value::Vector(v) => map_values(v, f),
                Value::Scalar(x) => Value::Scalar(f(x)),
            });
        }
        Func::Round => {
            let v = vector_arg(arg(0)?, t, cx)?;
            let to = match args.get(1) {
                Some(e) => scalar_arg(e, t, cx)?,
                None => 1.0,
            };
            let inv = 1.0 / to;
            return Ok(map_values(v, |x| (x * inv + 0.5).floor() / inv));
        }
        Func::ClampMin | Func::ClampMax => {
            let v = vector_arg(arg(0)?, t, cx)?;
            let bound = scalar_arg(arg(1)?, t, cx)?;
            return Ok(if func == Func::ClampMin {
                map_values(v, |x| go_max(x, bound))
            } else {
                map_values(v, |x| go_min(x, bound))
            });
        }
        Func::Clamp => {
            let v = vector_arg(arg(0)?, t, cx)?;
            let lo = scalar_arg(arg(1)?, t, cx)?;
            let hi = scalar_arg(arg(2)?, t, cx)?;
            if hi < lo {
                return Ok(Value::Vector(Vec::new()));
            }
            return Ok(map_values(v, |x| go_max(lo, go_min(hi, x))));
        }
        Func::Scalar => {
            let v = vector_arg(arg(0)?, t, cx)?;
            return Ok(Value::Scalar(if v.len() == 1 { v[0].1 } else { f64::NAN }));
        }
        Func::Vector => {
            let x = scalar_arg(arg(0)?, t, cx)?;
            return Ok(Value::Vector(vec![(Arc::new(Labels::default()), x)]));
        }
        Func::Absent => {
            let v = vector_arg(arg(0)?, t, cx)?;
            return Ok(Value::Vector(if v.is_empty() {
                vec![(Arc::new(absent_labels(args.first())), 1.0)]
            } else {
                Vec::new()
            }));
        }
        Func::Sort | Func::SortDesc => {
            let mut v = vector_arg(arg(0)?, t, cx)?;
            let desc = func == Func::SortDesc;
            // NaN sorts to the end either way, as in Prometheus.
            v.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if desc => b.1.total_cmp(&a.1),
                _ => a.1.total_cmp(&b.1),
            });
            return Ok(Value::Vector(v));
        }
        Func::LabelReplace => {
            let v = vector_arg(arg(0)?, t, cx)?;
            let (dst, repl, src, re) = (
                str_arg(args, 1)?,
                str_arg(args, 2)?,
                str_arg(args, 3)?,
                str_arg(args, 4)?,
            );
            let owned;
            let re = match cx.regexes.get(re) {
                Some(r) => r,
                None => {
                    owned = anchored_regex(re).map_err(Error::Query)?;
                    &owned
                }
            };
            let mut caps = re.create_captures();
            let mut out = Vec::with_capacity(v.len());
            for (l, x) in v {
                let hay = l.get(src).unwrap_or("");
                re.captures(hay, &mut caps);
                if !caps.is_match() {
                    out.push((l, x));
                    continue;
                }
                let value = caps.interpolate_string(hay, repl);
                out.push((Arc::new(l.with(dst, &value)), x));
            }
            check_unique(&out)?;
            return Ok(Value::Vector(out));
        }
        Func::LabelJoin => {
            let v = vector_arg(arg(0)?, t, cx)?;
            let (dst, sep) = (str_arg(args, 1)?, str_arg(args, 2)?);
            let srcs: Vec<&str> = (3..args.len())
                .map(|i| str_arg(args, i))
                .collect::<Result<_>>()?;
            let mut out = Vec::with_capacity(v.len());
            for (l, x) in v {
                let value = srcs
                    .iter()
                    .map(|s| l.get(s).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(sep);
                out.push((Arc::new(l.with(dst, &value)), x));
            }
            check_unique(&out)?;
            return Ok(Value::Vector(out));
        }
        Func::HistogramQuantile => {
            let q = scalar_arg(arg(0)?, t, cx)?;
            let v = vector_arg(arg(1)?, t, cx)?;
            return Ok(Value::Vector(histogram_quantile(q, v)));
        }
        _ => {}
    }
    // Range-vector functions.
    let (sel_arg, param) = match func {
        Func::QuantileOverTime => (arg(1)?, scalar_arg(arg(0)?, t, cx)?),
        Func::PredictLinear => (arg(0)?, scalar_arg(arg(1)?, t, cx)?),
        _ => (arg(0)?, f64::NAN),
    };
    let Expr::Selector(s) = sel_arg else {
        return qerr("expected a range vector argument");
    };
    if func.is_simple_range() {
        if let Some(Some(per_step)) = cx.pre.get(s.id) {
            return Ok(Value::Vector(
                per_step.get(cx.step).cloned().unwrap_or_default(),
            ));
        }
    }
    let range = s.range_ms.unwrap_or(0);
    let hi = t.saturating_sub(s.offset_ms);
    let lo = hi.saturating_sub(range);
    let series = loaded.get(s.id).map(Vec::as_slice).unwrap_or_default();
    if func == Func::AbsentOverTime {
        let any = series
            .iter()
            .any(|(_, _, pts)| !window(pts, lo, hi).is_empty());
        return Ok(Value::Vector(if any {
            Vec::new()
        } else {
            vec![(Arc::new(absent_labels(Some(sel_arg))), 1.0)]
        }));
    }
    let mut out = Vec::new();
    let seam = loaded.seam(s.id);
    for (nameless, l, pts) in series {
        let w = window(pts, lo, hi);
        if let Some(v) = range_fn(func, w, lo, hi, param, t, seam) {
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

/// Prometheus' `kahanSumInc` (Neumaier's variant).
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Prometheus' `linearRegression`: (slope, intercept at `intercept_t`).
fn linear_regression(w: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = w.first().map_or(f64::NAN, |p| p.1);
    let mut const_y = true;
    for (i, &(ts, y)) in w.iter().enumerate() {
        if const_y && i > 0 && y != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (ts - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(y, sy, cy);
        (sxy, cxy) = kahan_inc(x * y, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// A range function over one window of samples; `None` when it has no value. `param` is the
/// scalar argument (φ of quantile_over_time, seconds of predict_linear), `t` the step time.
fn range_fn(func: Func, w: &[(i64, f64)], lo: i64, hi: i64, param: f64, t: i64, seam: (i64, i64)) -> Option<f64> {
    if w.is_empty() {
        return None;
    }
    match func {
        Func::Rate => extrapolated_rate_across(w, lo, hi, true, true, seam),
        Func::Increase => extrapolated_rate_across(w, lo, hi, true, false, seam),
        Func::Delta => extrapolated_rate_across(w, lo, hi, false, false, seam),
        Func::Irate | Func::Idelta => {
            if w.len() < 2 {
                None
            } else {
                let (a, b) = (w[w.len() - 2], w[w.len() - 1]);
                if func == Func::Idelta {
                    return Some(b.1 - a.1);
                }
                let d = if b.1 < a.1 { b.1 } else { b.1 - a.1 };
                Some(d / ((b.0 - a.0) as f64 / 1000.0))
            }
        }
        Func::Deriv => (w.len() >= 2).then(|| linear_regression(w, w[0].0).0),
        Func::PredictLinear => (w.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(w, t);
            slope * param + intercept
        }),
        Func::Changes => Some(
            w.windows(2)
                .filter(|p| p[0].1 != p[1].1 && !(p[0].1.is_nan() && p[1].1.is_nan()))
                .count() as f64,
        ),
        Func::Resets => Some(w.windows(2).filter(|p| p[1].1 < p[0].1).count() as f64),
        Func::AvgOverTime => Some(w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64),
        Func::SumOverTime => Some(w.iter().map(|p| p.1).sum::<f64>()),
        Func::CountOverTime => Some(w.len() as f64),
        Func::PresentOverTime => Some(1.0),
        Func::MaxOverTime => w
            .iter()
            .map(|p| p.1)
            .reduce(|a, b| if b > a || a.is_nan() { b } else { a }),
        Func::MinOverTime => w
            .iter()
            .map(|p| p.1)
            .reduce(|a, b| if b < a || a.is_nan() { b } else { a }),
        Func::LastOverTime => w.last().map(|p| p.1),
        Func::QuantileOverTime => {
            let mut vals: Vec<f64> = w.iter().map(|p| p.1).collect();
            Some(quantile(param, &mut vals))
        }
        Func::StddevOverTime | Func::StdvarOverTime => {
            let (mut n, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for &(_, x) in w {
                n += 1.0;
                let delta = x - (mean + cmean);
                (mean, cmean) = kahan_inc(delta / n, mean, cmean);
                (aux, caux) = kahan_inc(delta * (x - (mean + cmean)), aux, caux);
            }
            let var = (aux + caux) / n;
            Some(if func == Func::StddevOverTime {
                var.sqrt()
            } else {
                var
            })
        }
        _ => None,
    }
}

/// Evaluation context of one step.
struct Cx<'a> {
    loaded: &'a Loaded,
    /// Per selector id: its value (instant selector, or the range function applied to it) at
    /// every step, computed series by series.
    pre: &'a Pre,
    step: usize,
    /// Compiled `label_replace` regexes by source text.
    regexes: &'a HashMap<String, Regex>,
}

type Pre = Vec<Option<Vec<Vec<(Arc<Labels>, f64)>>>>;

/// Values of a selector (`func` = `None`) or of a range function over it, per series and step.
fn series_values(
    s: &super::Selector,
    func: Option<Func>,
    series: &[LoadedSeries],
    seam: (i64, i64),
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
                    let hi = t.saturating_sub(s.offset_ms);
                    let lo = hi.saturating_sub(range);
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
                        Some(f) => range_fn(f, w, lo, hi, f64::NAN, t, seam),
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
    let values = series_values(s, func, series, loaded.seam(s.id), steps);
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
        AggOp::Group => 1.0,
        _ => f64::NAN,
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
            Expr::Call { func, args } if func.is_simple_range() => {
                if let Some(Expr::Selector(s)) = args.first() {
                    jobs.push((s, Some(*func)));
                }
            }
            Expr::Call { args, .. } => args.iter().for_each(|a| walk(a, jobs)),
            Expr::Aggregate { expr, param, .. } => {
                if let Some(p) = param {
                    walk(p, jobs);
                }
                walk(expr, jobs)
            }
            Expr::Neg(expr) => walk(expr, jobs),
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
        let per_series = series_values(s, func, series, loaded.seam(s.id), steps);
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
