//! PromQL operators, aggregations and functions beyond the basics: table-driven, each
//! expression against a small in-memory store, expected results as Prometheus gives them.

use reel_tsdb::promql::eval::format_value;
use reel_tsdb::{Labels, Options, QueryResult, Tsdb};

/// Evaluation time of every instant query below.
const T: i64 = 600_000;

fn store() -> (tempfile::TempDir, Tsdb) {
    let dir = tempfile::tempdir().expect("tmp");
    let db = Tsdb::open(dir.path(), Options::default()).expect("open");
    let mut batch: Vec<(Labels, i64, f64)> = Vec::new();
    let mut put = |name: &str, tags: &[(&str, &str)], v: f64| {
        batch.push((Labels::metric(name, tags), T - 1_000, v));
    };
    put(
        "req",
        &[("job", "api"), ("instance", "a"), ("method", "get")],
        10.0,
    );
    put(
        "req",
        &[("job", "api"), ("instance", "b"), ("method", "get")],
        20.0,
    );
    put(
        "req",
        &[("job", "api"), ("instance", "a"), ("method", "post")],
        5.0,
    );
    put(
        "req",
        &[("job", "web"), ("instance", "c"), ("method", "get")],
        30.0,
    );
    put("up", &[("job", "api"), ("instance", "a")], 1.0);
    put("up", &[("job", "api"), ("instance", "b")], 0.0);
    put("up", &[("job", "web"), ("instance", "c")], 1.0);
    put("info", &[("job", "api"), ("team", "core")], 1.0);
    put("info", &[("job", "web"), ("team", "edge")], 1.0);
    put("dup", &[("job", "api"), ("v", "1")], 1.0);
    put("dup", &[("job", "api"), ("v", "2")], 2.0);
    put("n", &[("k", "x")], f64::NAN);
    put("n", &[("k", "y")], 1.0);
    put("n", &[("k", "z")], 3.0);
    for (i, v) in [5.0, 5.0, 5.0, 9.0, 1.0].iter().enumerate() {
        put("ties", &[("i", &(i + 1).to_string())], *v);
    }
    for (i, v) in [1.0, 2.0, 3.0, 4.0].iter().enumerate() {
        put(
            "q",
            &[
                ("i", &(i + 1).to_string()),
                ("g", if i < 2 { "lo" } else { "hi" }),
            ],
            *v,
        );
    }
    put("neg", &[("k", "a")], -2.5);
    put("neg", &[("k", "b")], 2.5);
    put("neg", &[("k", "c")], 0.49);
    // A gauge over the last 5 minutes (every 30 s): 0, 1, 4, 9, ..., 100 (t/30s)^2.
    for i in 0..=10i64 {
        batch.push((
            Labels::metric("sq", &[("k", "v")]),
            T - 300_000 + i * 30_000,
            (i * i) as f64,
        ));
        batch.push((
            Labels::metric("lin", &[("k", "v")]),
            T - 300_000 + i * 30_000,
            2.0 * i as f64 + 1.0,
        ));
        batch.push((
            Labels::metric("flap", &[("k", "v")]),
            T - 300_000 + i * 30_000,
            (i % 3) as f64,
        ));
    }
    db.append(&batch).expect("append");
    (dir, db)
}

fn render(r: QueryResult) -> Vec<String> {
    match r {
        QueryResult::Scalar { v, .. } => vec![format!("scalar {}", format_value(v))],
        QueryResult::Vector { samples, .. } => samples
            .into_iter()
            .map(|(l, v)| format!("{l} {}", format_value(v)))
            .collect(),
        QueryResult::Matrix(m) => m
            .into_iter()
            .map(|(l, pts)| format!("{l} {pts:?}"))
            .collect(),
    }
}

/// Runs `(expr, expected)` cases; `expected` lines are compared as a set unless `ordered`.
fn check(db: &Tsdb, cases: &[(&str, &[&str])], ordered: bool) {
    let mut failures = Vec::new();
    for (q, want) in cases {
        let got = match db.query_instant(q, T) {
            Ok(r) => render(r),
            Err(e) => vec![format!("error: {e}")],
        };
        let mut got_cmp = got.clone();
        let mut want_cmp: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        if !ordered {
            got_cmp.sort();
            want_cmp.sort();
        }
        if got_cmp != want_cmp {
            failures.push(format!("{q}\n   want {want_cmp:?}\n   got  {got_cmp:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Error cases: the query fails with a message containing the given text.
fn check_errors(db: &Tsdb, cases: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (q, want) in cases {
        match db.query_instant(q, T) {
            Ok(r) => failures.push(format!("{q}: expected error {want:?}, got {:?}", render(r))),
            Err(e) if e.to_string().contains(want) => {}
            Err(e) => failures.push(format!("{q}: expected error {want:?}, got {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn comparison_operators() {
    let (_d, db) = store();
    check(
        &db,
        &[
            // Vector/scalar: filter, keeping the metric name and the vector's value.
            (
                "req > 10",
                &[
                    r#"req{instance="b", job="api", method="get"} 20"#,
                    r#"req{instance="c", job="web", method="get"} 30"#,
                ],
            ),
            (
                "req >= 20",
                &[
                    r#"req{instance="b", job="api", method="get"} 20"#,
                    r#"req{instance="c", job="web", method="get"} 30"#,
                ],
            ),
            (
                "req < 10",
                &[r#"req{instance="a", job="api", method="post"} 5"#],
            ),
            (
                "req <= 5",
                &[r#"req{instance="a", job="api", method="post"} 5"#],
            ),
            (
                "req == 10",
                &[r#"req{instance="a", job="api", method="get"} 10"#],
            ),
            ("up != 1", &[r#"up{instance="b", job="api"} 0"#]),
            // Scalar on the left: still the vector's value is kept.
            (
                "10 < req",
                &[
                    r#"req{instance="b", job="api", method="get"} 20"#,
                    r#"req{instance="c", job="web", method="get"} 30"#,
                ],
            ),
            // bool: 0/1 for every element, metric name dropped.
            (
                "up == bool 1",
                &[
                    r#"{instance="a", job="api"} 1"#,
                    r#"{instance="b", job="api"} 0"#,
                    r#"{instance="c", job="web"} 1"#,
                ],
            ),
            (
                "1 < bool up",
                &[
                    r#"{instance="a", job="api"} 0"#,
                    r#"{instance="b", job="api"} 0"#,
                    r#"{instance="c", job="web"} 0"#,
                ],
            ),
            // Scalar/scalar needs bool.
            ("1 < bool 2", &["scalar 1"]),
            ("2 == bool 3", &["scalar 0"]),
            ("(1 > bool 2) + 5", &["scalar 5"]),
            // NaN: never equal, always unequal, never ordered.
            ("n == n", &[r#"n{k="y"} 1"#, r#"n{k="z"} 3"#]),
            ("n != 3", &[r#"n{k="x"} NaN"#, r#"n{k="y"} 1"#]),
            ("n > 0", &[r#"n{k="y"} 1"#, r#"n{k="z"} 3"#]),
            (
                "n == bool NaN",
                &[r#"{k="x"} 0"#, r#"{k="y"} 0"#, r#"{k="z"} 0"#],
            ),
            (
                "n != bool NaN",
                &[r#"{k="x"} 1"#, r#"{k="y"} 1"#, r#"{k="z"} 1"#],
            ),
            ("NaN != bool NaN", &["scalar 1"]),
            // Vector/vector: filter by the left value, left labels kept (with the name).
            (
                "req > on(job, instance) group_left up * 15",
                &[
                    r#"req{instance="b", job="api", method="get"} 20"#,
                    r#"req{instance="c", job="web", method="get"} 30"#,
                ],
            ),
            (
                "up == up",
                &[
                    r#"up{instance="a", job="api"} 1"#,
                    r#"up{instance="b", job="api"} 0"#,
                    r#"up{instance="c", job="web"} 1"#,
                ],
            ),
            (
                "up > bool ignoring(job) up",
                &[
                    r#"{instance="a"} 0"#,
                    r#"{instance="b"} 0"#,
                    r#"{instance="c"} 0"#,
                ],
            ),
            // on(): one-to-one keeps only the matching labels, even for comparisons.
            (
                "max by (job) (req) > on(job) sum by (job) (up)",
                &[r#"{job="api"} 20"#, r#"{job="web"} 30"#],
            ),
            // Filtering then arithmetic: the comparison result feeds the sum.
            ("sum(req > 10)", &["{} 50"]),
            ("count(up == 1)", &["{} 2"]),
        ],
        false,
    );
}

#[test]
fn arithmetic_operators_and_precedence() {
    let (_d, db) = store();
    check(
        &db,
        &[
            ("7 % 3", &["scalar 1"]),
            ("-7 % 3", &["scalar -1"]),
            ("2 ^ 3 ^ 2", &["scalar 512"]),
            ("-2 ^ 2", &["scalar -4"]),
            ("(-2) ^ 2", &["scalar 4"]),
            ("2 * 3 ^ 2", &["scalar 18"]),
            ("1 + 2 * 3 - 4 / 2", &["scalar 5"]),
            ("2 ^ -1", &["scalar 0.5"]),
            ("1 atan2 1", &["scalar 0.7853981633974483"]),
            ("1 + 1 > bool 1", &["scalar 1"]),
            ("1 > bool 0 + 1", &["scalar 0"]),
            (
                "req % 7",
                &[
                    r#"{instance="a", job="api", method="get"} 3"#,
                    r#"{instance="b", job="api", method="get"} 6"#,
                    r#"{instance="a", job="api", method="post"} 5"#,
                    r#"{instance="c", job="web", method="get"} 2"#,
                ],
            ),
            (
                "up ^ 2 + 1",
                &[
                    r#"{instance="a", job="api"} 2"#,
                    r#"{instance="b", job="api"} 1"#,
                    r#"{instance="c", job="web"} 2"#,
                ],
            ),
            // + binds tighter than >, > tighter than and, and tighter than or.
            (
                "up + 1 > 1",
                &[
                    r#"{instance="a", job="api"} 2"#,
                    r#"{instance="c", job="web"} 2"#,
                ],
            ),
            (
                "up > 0 and up or info",
                &[
                    r#"up{instance="a", job="api"} 1"#,
                    r#"up{instance="c", job="web"} 1"#,
                    r#"info{job="api", team="core"} 1"#,
                    r#"info{job="web", team="edge"} 1"#,
                ],
            ),
            (
                "-up",
                &[
                    r#"{instance="a", job="api"} -1"#,
                    r#"{instance="b", job="api"} -0"#,
                    r#"{instance="c", job="web"} -1"#,
                ],
            ),
        ],
        false,
    );
}

#[test]
fn set_operators() {
    let (_d, db) = store();
    check(
        &db,
        &[
            // and: left elements with a match on the right (exact label sets, name ignored).
            (
                "up and up == 1",
                &[
                    r#"up{instance="a", job="api"} 1"#,
                    r#"up{instance="c", job="web"} 1"#,
                ],
            ),
            (
                "req and on(job) info",
                &[
                    r#"req{instance="a", job="api", method="get"} 10"#,
                    r#"req{instance="b", job="api", method="get"} 20"#,
                    r#"req{instance="a", job="api", method="post"} 5"#,
                    r#"req{instance="c", job="web", method="get"} 30"#,
                ],
            ),
            (
                "req and on(instance) (up == 0)",
                &[r#"req{instance="b", job="api", method="get"} 20"#],
            ),
            (
                "req and ignoring(method) up",
                &[
                    r#"req{instance="a", job="api", method="get"} 10"#,
                    r#"req{instance="b", job="api", method="get"} 20"#,
                    r#"req{instance="a", job="api", method="post"} 5"#,
                    r#"req{instance="c", job="web", method="get"} 30"#,
                ],
            ),
            ("req and up", &[]),
            ("up and nothing", &[]),
            // or: all of the left plus right elements without a match on the left.
            (
                "up == 0 or up",
                &[
                    r#"up{instance="b", job="api"} 0"#,
                    r#"up{instance="a", job="api"} 1"#,
                    r#"up{instance="c", job="web"} 1"#,
                ],
            ),
            (
                "nothing or info",
                &[
                    r#"info{job="api", team="core"} 1"#,
                    r#"info{job="web", team="edge"} 1"#,
                ],
            ),
            (
                "info or on(job) up",
                &[
                    r#"info{job="api", team="core"} 1"#,
                    r#"info{job="web", team="edge"} 1"#,
                ],
            ),
            (
                "up or vector(7)",
                &[
                    r#"up{instance="a", job="api"} 1"#,
                    r#"up{instance="b", job="api"} 0"#,
                    r#"up{instance="c", job="web"} 1"#,
                    "{} 7",
                ],
            ),
            ("nothing or vector(0)", &["{} 0"]),
            // unless: left elements without a match.
            (
                "up unless up == 0",
                &[
                    r#"up{instance="a", job="api"} 1"#,
                    r#"up{instance="c", job="web"} 1"#,
                ],
            ),
            (
                "req unless on(job) (info{team=\"edge\"})",
                &[
                    r#"req{instance="a", job="api", method="get"} 10"#,
                    r#"req{instance="b", job="api", method="get"} 20"#,
                    r#"req{instance="a", job="api", method="post"} 5"#,
                ],
            ),
            (
                "up unless nothing",
                &[
                    r#"up{instance="a", job="api"} 1"#,
                    r#"up{instance="b", job="api"} 0"#,
                    r#"up{instance="c", job="web"} 1"#,
                ],
            ),
            // Many-to-many is fine for set operators.
            (
                "dup and on(job) req",
                &[r#"dup{job="api", v="1"} 1"#, r#"dup{job="api", v="2"} 2"#],
            ),
        ],
        false,
    );
}

#[test]
fn many_to_one_matching() {
    let (_d, db) = store();
    check(
        &db,
        &[
            // group_left: many side keeps its labels (name dropped for arithmetic).
            (
                "req * on(job) group_left info",
                &[
                    r#"{instance="a", job="api", method="get"} 10"#,
                    r#"{instance="b", job="api", method="get"} 20"#,
                    r#"{instance="a", job="api", method="post"} 5"#,
                    r#"{instance="c", job="web", method="get"} 30"#,
                ],
            ),
            // group_left(team) copies the label from the one side.
            (
                "req * on(job) group_left(team) info",
                &[
                    r#"{instance="a", job="api", method="get", team="core"} 10"#,
                    r#"{instance="b", job="api", method="get", team="core"} 20"#,
                    r#"{instance="a", job="api", method="post", team="core"} 5"#,
                    r#"{instance="c", job="web", method="get", team="edge"} 30"#,
                ],
            ),
            (
                "req / ignoring(method) group_left up",
                &[
                    r#"{instance="a", job="api", method="get"} 10"#,
                    r#"{instance="b", job="api", method="get"} +Inf"#,
                    r#"{instance="a", job="api", method="post"} 5"#,
                    r#"{instance="c", job="web", method="get"} 30"#,
                ],
            ),
            // group_right: the right side is the many side; values keep their sides.
            (
                "info * on(job) group_right(team) req",
                &[
                    r#"{instance="a", job="api", method="get", team="core"} 10"#,
                    r#"{instance="b", job="api", method="get", team="core"} 20"#,
                    r#"{instance="a", job="api", method="post", team="core"} 5"#,
                    r#"{instance="c", job="web", method="get", team="edge"} 30"#,
                ],
            ),
            (
                "up - on(instance, job) group_right req",
                &[
                    r#"{instance="a", job="api", method="get"} -9"#,
                    r#"{instance="b", job="api", method="get"} -20"#,
                    r#"{instance="a", job="api", method="post"} -4"#,
                    r#"{instance="c", job="web", method="get"} -29"#,
                ],
            ),
            // Comparison with group_right keeps the many side's labels (name included) and
            // the one (left) side's value.
            ("up >= on(instance, job) group_right req", &[]),
            (
                "up <= on(instance, job) group_right req",
                &[
                    r#"req{instance="a", job="api", method="get"} 1"#,
                    r#"req{instance="b", job="api", method="get"} 0"#,
                    r#"req{instance="a", job="api", method="post"} 1"#,
                    r#"req{instance="c", job="web", method="get"} 1"#,
                ],
            ),
            // Unmatched elements disappear.
            (
                "req * on(job) group_left(team) info{team=\"edge\"}",
                &[r#"{instance="c", job="web", method="get", team="edge"} 30"#],
            ),
            // A label absent on the one side is removed from the result.
            (
                "up{instance=\"a\"} * on(job) group_left(instance) info",
                &[r#"{job="api"} 1"#],
            ),
        ],
        false,
    );
    check_errors(
        &db,
        &[
            ("req * on(job) group_left dup", "found duplicate series for the match group {job=\"api\"} on the right hand-side of the operation"),
            ("dup * on(job) group_right req", "found duplicate series for the match group {job=\"api\"} on the left hand-side of the operation"),
            ("req * on(job) info", "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"),
            ("req * on(job) dup", "many-to-many matching not allowed"),
            ("req * on(job) group_left(instance) up", "found duplicate series"),
            // A label absent on the one side is removed, so two results collide.
            ("up * on(job) group_left(instance) info", "grouping labels must ensure unique matches"),
            // Two many-side series collapsing onto one result label set.
            ("req * on(job) group_left(method) (info * 0 + on(job) group_left max by (job) (up))", "grouping labels must ensure unique matches"),
        ],
    );
}

#[test]
fn new_aggregations() {
    let (_d, db) = store();
    check(
        &db,
        &[
            // quantile: φ·(n−1) interpolation.
            ("quantile(0.5, q)", &["{} 2.5"]),
            ("quantile(0.9, q)", &["{} 3.7"]),
            ("quantile(0, q)", &["{} 1"]),
            ("quantile(1, q)", &["{} 4"]),
            ("quantile(-1, q)", &["{} -Inf"]),
            ("quantile(1.5, q)", &["{} +Inf"]),
            (
                "quantile by (g) (0.5, q)",
                &[r#"{g="hi"} 3.5"#, r#"{g="lo"} 1.5"#],
            ),
            ("quantile(NaN, q)", &["{} NaN"]),
            // Welford's running variance over the series in label order (3, 4, 1, 2), the
            // same recurrence as Prometheus; hence the last-digit rounding.
            ("stddev(q)", &["{} 1.1180339887498947"]),
            ("stdvar(q)", &["{} 1.2499999999999998"]),
            ("stdvar(q{g=\"lo\"} or q{g=\"hi\"})", &["{} 1.25"]),
            (
                "stdvar by (g) (q)",
                &[r#"{g="hi"} 0.25"#, r#"{g="lo"} 0.25"#],
            ),
            ("stddev(up)", &["{} 0.4714045207910317"]),
            (
                "group by (job) (req)",
                &[r#"{job="api"} 1"#, r#"{job="web"} 1"#],
            ),
            ("group(req)", &["{} 1"]),
            (
                "count_values(\"value\", up)",
                &[r#"{value="0"} 1"#, r#"{value="1"} 2"#],
            ),
            (
                "count_values by (job) (\"value\", up)",
                &[
                    r#"{job="api", value="0"} 1"#,
                    r#"{job="api", value="1"} 1"#,
                    r#"{job="web", value="1"} 1"#,
                ],
            ),
            (
                "count_values without (instance) (\"value\", up)",
                &[
                    r#"{job="api", value="0"} 1"#,
                    r#"{job="api", value="1"} 1"#,
                    r#"{job="web", value="1"} 1"#,
                ],
            ),
            (
                "count_values(\"v\", n)",
                &[r#"{v="1"} 1"#, r#"{v="3"} 1"#, r#"{v="NaN"} 1"#],
            ),
            (
                "count_values(\"v\", q / 2)",
                &[
                    r#"{v="0.5"} 1"#,
                    r#"{v="1"} 1"#,
                    r#"{v="1.5"} 1"#,
                    r#"{v="2"} 1"#,
                ],
            ),
            // topk/bottomk keep the input labels, name included.
            (
                "topk(2, req)",
                &[
                    r#"req{instance="c", job="web", method="get"} 30"#,
                    r#"req{instance="b", job="api", method="get"} 20"#,
                ],
            ),
            (
                "bottomk(1, req)",
                &[r#"req{instance="a", job="api", method="post"} 5"#],
            ),
            (
                "topk by (job) (1, req)",
                &[
                    r#"req{instance="b", job="api", method="get"} 20"#,
                    r#"req{instance="c", job="web", method="get"} 30"#,
                ],
            ),
            ("topk(0, req)", &[]),
            ("topk(-1, req)", &[]),
            (
                "topk(100, up)",
                &[
                    r#"up{instance="a", job="api"} 1"#,
                    r#"up{instance="c", job="web"} 1"#,
                    r#"up{instance="b", job="api"} 0"#,
                ],
            ),
            (
                "topk(1.9, req)",
                &[r#"req{instance="c", job="web", method="get"} 30"#],
            ),
            (
                "topk(scalar(up{instance=\"a\"}), req)",
                &[r#"req{instance="c", job="web", method="get"} 30"#],
            ),
            // NaN is the least preferred for both.
            ("topk(1, n)", &[r#"n{k="z"} 3"#]),
            ("bottomk(1, n)", &[r#"n{k="y"} 1"#]),
            (
                "topk(3, n)",
                &[r#"n{k="z"} 3"#, r#"n{k="y"} 1"#, r#"n{k="x"} NaN"#],
            ),
            (
                "bottomk(3, n)",
                &[r#"n{k="y"} 1"#, r#"n{k="z"} 3"#, r#"n{k="x"} NaN"#],
            ),
        ],
        false,
    );
    // Ties: Prometheus leaves them to its heap (replace the root, then heap.Fix, as in
    // Prometheus >= 2.51), fed with series in label order; output sorted by value.
    check(
        &db,
        &[
            ("topk(1, ties)", &[r#"ties{i="4"} 9"#]),
            ("topk(2, ties)", &[r#"ties{i="4"} 9"#, r#"ties{i="2"} 5"#]),
            (
                "topk(3, ties)",
                &[r#"ties{i="4"} 9"#, r#"ties{i="2"} 5"#, r#"ties{i="3"} 5"#],
            ),
            (
                "bottomk(2, ties)",
                &[r#"ties{i="5"} 1"#, r#"ties{i="2"} 5"#],
            ),
            (
                "bottomk(3, ties)",
                &[r#"ties{i="5"} 1"#, r#"ties{i="2"} 5"#, r#"ties{i="3"} 5"#],
            ),
            (
                "topk(2, q)",
                &[r#"q{g="hi", i="4"} 4"#, r#"q{g="hi", i="3"} 3"#],
            ),
        ],
        true,
    );
    check_errors(
        &db,
        &[
            ("topk(NaN, req)", "Scalar value NaN overflows int64"),
            ("topk(1e30, req)", "overflows int64"),
        ],
    );
}

#[test]
fn new_functions() {
    let (_d, db) = store();
    check(
        &db,
        &[
            (
                "clamp_min(neg, 0)",
                &[r#"{k="a"} 0"#, r#"{k="b"} 2.5"#, r#"{k="c"} 0.49"#],
            ),
            (
                "clamp_max(neg, 1)",
                &[r#"{k="a"} -2.5"#, r#"{k="b"} 1"#, r#"{k="c"} 0.49"#],
            ),
            (
                "clamp(neg, -1, 1)",
                &[r#"{k="a"} -1"#, r#"{k="b"} 1"#, r#"{k="c"} 0.49"#],
            ),
            ("clamp(neg, 1, -1)", &[]),
            (
                "clamp_max(n, 2)",
                &[r#"{k="x"} NaN"#, r#"{k="y"} 1"#, r#"{k="z"} 2"#],
            ),
            (
                "round(neg)",
                &[r#"{k="a"} -2"#, r#"{k="b"} 3"#, r#"{k="c"} 0"#],
            ),
            (
                "round(neg, 0.5)",
                &[r#"{k="a"} -2.5"#, r#"{k="b"} 2.5"#, r#"{k="c"} 0.5"#],
            ),
            (
                "ceil(neg)",
                &[r#"{k="a"} -2"#, r#"{k="b"} 3"#, r#"{k="c"} 1"#],
            ),
            (
                "floor(neg)",
                &[r#"{k="a"} -3"#, r#"{k="b"} 2"#, r#"{k="c"} 0"#],
            ),
            (
                "sgn(neg)",
                &[r#"{k="a"} -1"#, r#"{k="b"} 1"#, r#"{k="c"} 1"#],
            ),
            ("sqrt(q{i=\"4\"})", &[r#"{g="hi", i="4"} 2"#]),
            ("sqrt(neg{k=\"a\"})", &[r#"{k="a"} NaN"#]),
            (
                "ln(up)",
                &[
                    r#"{instance="a", job="api"} 0"#,
                    r#"{instance="b", job="api"} -Inf"#,
                    r#"{instance="c", job="web"} 0"#,
                ],
            ),
            ("log2(q{i=\"4\"})", &[r#"{g="hi", i="4"} 2"#]),
            (
                "log10(req{instance=\"a\",method=\"get\"})",
                &[r#"{instance="a", job="api", method="get"} 1"#],
            ),
            (
                "exp(up{instance=\"b\"})",
                &[r#"{instance="b", job="api"} 1"#],
            ),
            ("scalar(up{instance=\"c\"})", &["scalar 1"]),
            ("scalar(up)", &["scalar NaN"]),
            ("scalar(nothing)", &["scalar NaN"]),
            ("vector(3)", &["{} 3"]),
            ("vector(time())", &["{} 600"]),
            (
                "up * scalar(up{instance=\"c\"}) * 2",
                &[
                    r#"{instance="a", job="api"} 2"#,
                    r#"{instance="b", job="api"} 0"#,
                    r#"{instance="c", job="web"} 2"#,
                ],
            ),
            ("absent(up)", &[]),
            ("absent(nothing)", &["{} 1"]),
            (
                "absent(nothing{job=\"x\", a=~\"b\", __name__=\"y\"})",
                &[r#"{job="x"} 1"#],
            ),
            ("absent(nothing{job=\"x\", job=\"y\"})", &["{} 1"]),
            ("absent(sum(nothing))", &["{} 1"]),
            (
                "absent_over_time(nothing{job=\"x\"}[5m])",
                &[r#"{job="x"} 1"#],
            ),
            ("absent_over_time(sq[5m])", &[]),
            ("present_over_time(sq[5m])", &[r#"{k="v"} 1"#]),
            (
                "label_replace(up, \"host\", \"$1-x\", \"instance\", \"(.*)\")",
                &[
                    r#"up{host="a-x", instance="a", job="api"} 1"#,
                    r#"up{host="b-x", instance="b", job="api"} 0"#,
                    r#"up{host="c-x", instance="c", job="web"} 1"#,
                ],
            ),
            (
                "label_replace(up, \"job\", \"${1}z\", \"instance\", \"(a)\")",
                &[
                    r#"up{instance="a", job="az"} 1"#,
                    r#"up{instance="b", job="api"} 0"#,
                    r#"up{instance="c", job="web"} 1"#,
                ],
            ),
            // No match: unchanged; empty replacement deletes the label.
            (
                "label_replace(info, \"team\", \"\", \"team\", \"core\")",
                &[r#"info{job="api"} 1"#, r#"info{job="web", team="edge"} 1"#],
            ),
            (
                "label_replace(info, \"x\", \"$1\", \"missing\", \"(.*)\")",
                &[
                    r#"info{job="api", team="core"} 1"#,
                    r#"info{job="web", team="edge"} 1"#,
                ],
            ),
            (
                "label_replace(info, \"x\", \"$name\", \"team\", \"(?P<name>e.*)\")",
                &[
                    r#"info{job="api", team="core"} 1"#,
                    r#"info{job="web", team="edge", x="edge"} 1"#,
                ],
            ),
            (
                "label_join(info, \"jt\", \"/\", \"job\", \"team\")",
                &[
                    r#"info{job="api", jt="api/core", team="core"} 1"#,
                    r#"info{job="web", jt="web/edge", team="edge"} 1"#,
                ],
            ),
            // Range functions.
            ("quantile_over_time(0.5, sq[5m])", &[r#"{k="v"} 25"#]),
            ("quantile_over_time(0.75, sq[5m])", &[r#"{k="v"} 56.5"#]),
            ("quantile_over_time(2, sq[5m])", &[r#"{k="v"} +Inf"#]),
            ("max_over_time(sq[5m])", &[r#"{k="v"} 100"#]),
            ("min_over_time(sq[1m])", &[r#"{k="v"} 64"#]),
            ("count_over_time(sq[5m])", &[r#"{k="v"} 11"#]),
            ("sum_over_time(lin[1m])", &[r#"{k="v"} 57"#]),
            ("avg_over_time(lin[1m])", &[r#"{k="v"} 19"#]),
            ("last_over_time(lin[1m])", &[r#"lin{k="v"} 21"#]),
            (
                "stdvar_over_time(lin[1m])",
                &[r#"{k="v"} 2.6666666666666665"#],
            ),
            (
                "stddev_over_time(lin[1m])",
                &[r#"{k="v"} 1.632993161855452"#],
            ),
            ("deriv(lin[5m])", &[r#"{k="v"} 0.06666666666666667"#]),
            ("predict_linear(lin[5m], 60)", &[r#"{k="v"} 25"#]),
            ("changes(flap[5m])", &[r#"{k="v"} 10"#]),
            ("resets(flap[5m])", &[r#"{k="v"} 3"#]),
            ("idelta(sq[5m])", &[r#"{k="v"} 19"#]),
            ("max_over_time(lin[1m] offset 1m)", &[r#"{k="v"} 17"#]),
        ],
        false,
    );
    check(
        &db,
        &[
            (
                "sort(req)",
                &[
                    r#"req{instance="a", job="api", method="post"} 5"#,
                    r#"req{instance="a", job="api", method="get"} 10"#,
                    r#"req{instance="b", job="api", method="get"} 20"#,
                    r#"req{instance="c", job="web", method="get"} 30"#,
                ],
            ),
            (
                "sort_desc(req)",
                &[
                    r#"req{instance="c", job="web", method="get"} 30"#,
                    r#"req{instance="b", job="api", method="get"} 20"#,
                    r#"req{instance="a", job="api", method="get"} 10"#,
                    r#"req{instance="a", job="api", method="post"} 5"#,
                ],
            ),
            (
                "sort(n)",
                &[r#"n{k="y"} 1"#, r#"n{k="z"} 3"#, r#"n{k="x"} NaN"#],
            ),
            (
                "sort_desc(n)",
                &[r#"n{k="z"} 3"#, r#"n{k="y"} 1"#, r#"n{k="x"} NaN"#],
            ),
        ],
        true,
    );
    check_errors(
        &db,
        &[
            // Two series collapse onto one label set.
            (
                "label_replace(req, \"instance\", \"x\", \"instance\", \".*\")",
                "vector cannot contain metrics with the same labelset",
            ),
        ],
    );
}

#[test]
fn parse_errors_point_at_the_position() {
    let (_d, db) = store();
    check_errors(
        &db,
        &[
            (
                "1 > 2",
                "at 2: comparisons between scalars must use BOOL modifier",
            ),
            (
                "up + bool up",
                "at 5: bool modifier can only be used on comparison operators",
            ),
            (
                "up and 1",
                "at 3: set operator \"and\" not allowed in binary scalar expression",
            ),
            (
                "1 or up",
                "at 2: set operator \"or\" not allowed in binary scalar expression",
            ),
            (
                "up and on(job) group_left info",
                "at 15: no grouping allowed for \"and\" operation",
            ),
            (
                "up * group_left info",
                "at 5: group_left must follow on(...) or ignoring(...)",
            ),
            (
                "up * on(job) group_left(job) info",
                "label \"job\" must not occur in ON and GROUP clause at once",
            ),
            ("topk(up, req)", "at 5: expected a scalar parameter"),
            (
                "topk(1 req)",
                "at 7: expected ',', found identifier \"req\"",
            ),
            ("count_values(1, up)", "at 13: expected a string"),
            ("count_values(\"a-b\", up)", "at 13: invalid label name"),
            ("quantile(0.5)", "expected ','"),
            (
                "clamp_max(up)",
                "at 0: function expects 2 argument(s), got 1",
            ),
            (
                "round(up, 1, 2)",
                "function expects 1 to 2 argument(s), got 3",
            ),
            (
                "label_replace(up, \"a-b\", \"\", \"x\", \"y\")",
                "at 0: invalid destination label name",
            ),
            (
                "label_replace(up, \"a\", \"\", \"x\", \"(\")",
                "at 0: invalid regular expression",
            ),
            ("label_join(up, \"a\")", "at least 3"),
            ("sum(up[5m])", "at 4: aggregation expects an instant vector"),
            (
                "up[5m] > 1",
                "at 0: binary expression must contain only scalar and instant vector types",
            ),
            (
                "\"x\" + 1",
                "binary expression must contain only scalar and instant vector types",
            ),
            ("\"x\"", "string literals are only allowed"),
            ("scalar(1)", "at 7: expected an instant vector"),
            ("vector(up)", "at 7: expected a scalar"),
            ("quantile_over_time(up, x[5m])", "at 19: expected a scalar"),
            (
                "1 + on(job) up",
                "vector matching only allowed between instant vectors",
            ),
            ("up >", "at 4: unexpected end of input"),
            ("up ! 1", "at 3: unexpected character '!'"),
            ("up ==== 1", "at 5: unexpected '=='"),
        ],
    );
}

#[test]
fn range_queries_with_new_operators_match_instant_queries() {
    let (_d, db) = store();
    for q in [
        "up == bool 1",
        "req > 10",
        "req * on(job) group_left(team) info",
        "up or vector(1)",
        "topk(1, req)",
        "quantile(0.5, q)",
        "quantile_over_time(0.5, sq[2m])",
        "deriv(sq[2m])",
        "label_replace(up, \"h\", \"$1\", \"instance\", \"(.*)\")",
        "absent(nothing)",
        "group by (job) (up)",
        "stddev(q)",
        "count_values(\"v\", up)",
    ] {
        let QueryResult::Matrix(m) = db
            .query_range(q, T - 120_000, T, 30_000)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
        else {
            panic!("{q}: not a matrix");
        };
        for t in (0..=4).map(|i| T - 120_000 + i * 30_000) {
            let inst = match db.query_instant(q, t).expect("instant") {
                QueryResult::Vector { samples, .. } => samples,
                other => panic!("{q}: {other:?}"),
            };
            let mut from_range: Vec<String> = m
                .iter()
                .filter_map(|(l, pts)| {
                    pts.iter()
                        .find(|p| p.0 == t)
                        .map(|p| format!("{l} {}", format_value(p.1)))
                })
                .collect();
            let mut want: Vec<String> = inst
                .iter()
                .map(|(l, v)| format!("{l} {}", format_value(*v)))
                .collect();
            from_range.sort();
            want.sort();
            assert_eq!(from_range, want, "{q} at {t}");
        }
    }
}

/// A tiny deterministic PRNG (xorshift) so the mangling is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mangled_queries_error_instead_of_panicking() {
    let (_d, db) = store();
    let seeds = [
        "sum by (job) (rate(req[5m])) > bool on(job) group_left(team) info",
        "topk(3, req) or bottomk by (job) (1, up) unless absent(x{a=\"b\"})",
        "label_replace(up, \"h\", \"$1\", \"instance\", \"(.*)\") and up == 1",
        "quantile_over_time(0.9, sq[5m] offset 1m) ^ 2 % 3 atan2 1",
        "count_values(\"v\", clamp(req, 1, 2)) / ignoring(v) group_right sum(up)",
        "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
        "-(1 + 2) * 3 >= bool -time() <= bool scalar(vector(1))",
        "sort_desc(round(req, 0.5)) != 3",
    ];
    let alphabet: Vec<char> = "()[]{}\",=~!<>+-*/%^ 0123456789.eabyonr_:`'#\\\u{e9}\n"
        .chars()
        .collect();
    let words = [
        " and ",
        " or ",
        " unless ",
        " bool ",
        " on(job) ",
        " group_left ",
        " group_right(x) ",
        " offset 5m ",
        "[5m]",
        " by (a) ",
        " without () ",
        "topk(",
        "(",
        ")",
        "\"",
        "{",
        "}",
        "1e309",
        "-",
        "^",
        " == ",
        "NaN",
        "Inf",
        "99999999999999999999y",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut parsed, mut failed) = (0, 0);
    for round in 0..600 {
        let mut q: Vec<char> = seeds[round % seeds.len()].chars().collect();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(q.len() + 1);
            match rng.below(5) {
                0 if !q.is_empty() => {
                    q.remove(at.min(q.len() - 1));
                }
                1 => q.insert(at, alphabet[rng.below(alphabet.len())]),
                2 => {
                    let w = words[rng.below(words.len())];
                    for (i, c) in w.chars().enumerate() {
                        q.insert(at + i, c);
                    }
                }
                3 => q.truncate(at),
                _ => {
                    let b = rng.below(q.len() + 1);
                    let (lo, hi) = (at.min(b), at.max(b));
                    q[lo..hi].reverse();
                }
            }
        }
        let q: String = q.into_iter().collect();
        match reel_tsdb::promql::parse(&q) {
            Ok(_) => {
                parsed += 1;
                // Evaluation may fail, but must not panic.
                let _ = db.query_instant(&q, T);
                let _ = db.query_range(&q, T - 60_000, T, 30_000);
            }
            Err(e) => {
                failed += 1;
                assert!(e.pos <= q.len(), "{q:?}: position {} out of range", e.pos);
            }
        }
    }
    assert!(
        failed > 100,
        "mangling should break most queries ({parsed} parsed)"
    );
    // Deep nesting is an error, not a stack overflow.
    for deep in [
        "(".repeat(100_000),
        "-".repeat(100_000) + "1",
        "abs(".repeat(50_000),
        "sum(".repeat(50_000),
    ] {
        assert!(reel_tsdb::promql::parse(&deep).is_err());
    }
}
