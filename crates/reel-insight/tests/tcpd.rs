//! TCPD: the metric code must reproduce published TCPDBench scores, and the
//! default method must beat the paper's best default (binseg: cover 0.672,
//! F1 0.698). Needs the dataset at ../shared/data/tcpd (present in CI).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reel_insight::tcpd::{self, covering, f_measure};

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/tcpd"
    ));
    assert!(
        dir.join("annotations.json").is_file(),
        "TCPD data missing: expected {} (annotations.json, datasets/, tcpdbench_results/)",
        dir.display()
    );
    dir
}

type Published = BTreeMap<String, BTreeMap<String, Option<f64>>>;

fn published(dir: &Path, file: &str) -> Published {
    let path = dir.join("tcpdbench_results/scores").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The 'zero' method (no change points) has published cover and F1 for every
/// series; ours must match to the last digits, on all 42 series.
#[test]
fn metrics_reproduce_published_zero_scores() {
    let dir = data_dir();
    let cover = published(&dir, "default_cover_scores.json");
    let f1 = published(&dir, "default_f1_scores.json");
    let all = tcpd::load_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 42);
    for (s, _, _) in &all {
        let n = s.values.len();
        let want_c = cover[&s.name]["zero"].unwrap_or(f64::NAN);
        let want_f = f1[&s.name]["zero"].unwrap_or(f64::NAN);
        let got_c = covering(&s.annotations, &[], n);
        let got_f = f_measure(&s.annotations, &[], 5);
        assert!(
            (got_c - want_c).abs() < 1e-12,
            "{}: cover {got_c} vs published {want_c}",
            s.name
        );
        assert!(
            (got_f - want_f).abs() < 1e-12,
            "{}: f1 {got_f} vs published {want_f}",
            s.name
        );
    }
}

/// The paper's univariate mean for 'zero' (Table: cover 0.566, F1 0.645)
/// comes out of our series selection too.
#[test]
fn default_experiment_has_the_papers_32_series() {
    let dir = data_dir();
    let series = tcpd::load_default_series(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(series.len(), 32);
    let zero = tcpd::MethodConfig {
        name: "zero".into(),
        standardize: false,
        detector: tcpd::Detector::Zero,
    };
    let (_, s) = tcpd::evaluate_method(&series, &zero).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.cover * 1000.0).round() / 1000.0, 0.566);
    assert_eq!((s.f1 * 1000.0).round() / 1000.0, 0.645);
}

#[test]
fn default_method_beats_the_papers_best_default() {
    let dir = data_dir();
    let report =
        tcpd::evaluate_dir(&dir, &tcpd::default_method()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.series.len(), 32);
    assert!(
        report.cover > 0.672 && report.f1 > 0.698,
        "default: cover {} f1 {}",
        report.cover,
        report.f1
    );
    let json = serde_json::to_value(&report).unwrap_or_default();
    for key in ["cover", "f1", "methods", "series"] {
        assert!(json.get(key).is_some(), "report JSON lacks {key}");
    }
    assert!(report.methods.contains_key("bocpd") && report.methods.contains_key("pelt-l2-bic"));
}
