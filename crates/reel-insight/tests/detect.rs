//! Hand-checked cases, the public `detect` entry point, and BOCPD.

use reel_insight::{
    binseg, detect, pelt, BinSegStop, Bocpd, BocpdParams, CostKind, Error, Method, Penalty,
};

/// Deterministic pseudo-noise in [-0.5, 0.5).
fn noise(i: usize) -> f64 {
    let v = (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        >> 33;
    (v % 10_000) as f64 / 10_000.0 - 0.5
}

fn steps(levels: &[(f64, usize)]) -> Vec<f64> {
    let mut x = Vec::new();
    for &(level, len) in levels {
        x.extend(std::iter::repeat_n(level, len));
    }
    x.iter()
        .enumerate()
        .map(|(i, v)| v + 0.3 * noise(i))
        .collect()
}

#[test]
fn two_point_jump_by_hand() {
    // [0,0,0,10,10,10]: one cut at 3 costs 0 + pen; no cut costs 150.
    let x = [0.0, 0.0, 0.0, 10.0, 10.0, 10.0];
    assert_eq!(pelt(&x, CostKind::L2, 1.0, 1, 1).ok(), Some(vec![3, 6]));
    assert_eq!(pelt(&x, CostKind::L2, 200.0, 1, 1).ok(), Some(vec![6]));
    assert_eq!(
        binseg(&x, CostKind::L2, BinSegStop::Penalty(149.0), 1, 1).ok(),
        Some(vec![3, 6])
    );
    assert_eq!(
        binseg(&x, CostKind::L2, BinSegStop::Penalty(150.0), 1, 1).ok(),
        Some(vec![6])
    );
    assert_eq!(
        binseg(&x, CostKind::L2, BinSegStop::NBkps(1), 1, 1).ok(),
        Some(vec![3, 6])
    );
}

#[test]
fn every_method_and_cost_finds_planted_steps() {
    let x = steps(&[(0.0, 150), (4.0, 100), (-2.0, 150)]);
    for cost in [
        CostKind::L2,
        CostKind::L1,
        CostKind::Normal,
        CostKind::Rbf { gamma: None },
    ] {
        for method in [Method::Pelt, Method::BinSeg] {
            let b = detect(&x, method, cost, Penalty::Mbic, 5, 5).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(b, vec![150, 250, 400], "{method:?} {cost:?}");
        }
    }
}

#[test]
fn invalid_input_is_refused_clearly() {
    assert!(matches!(
        detect(&[], Method::Pelt, CostKind::L2, Penalty::Bic, 2, 5),
        Err(Error::EmptySignal)
    ));
    let e = detect(
        &[1.0, f64::NAN],
        Method::Pelt,
        CostKind::L2,
        Penalty::Bic,
        1,
        1,
    );
    assert!(matches!(e, Err(Error::NonFinite { index: 1, .. })));
    assert!(matches!(
        pelt(&[1.0, 2.0], CostKind::L2, 1.0, 5, 1),
        Err(Error::SegmentationImpossible { .. })
    ));
    assert!(matches!(
        pelt(&[1.0, 2.0], CostKind::L2, 1.0, 1, 0),
        Err(Error::InvalidParameter(_))
    ));
    assert!(pelt(&[1.0, 2.0], CostKind::L2, f64::NAN, 1, 1).is_err());
}

#[test]
fn bocpd_detects_a_planted_mean_shift() {
    let x = steps(&[(0.0, 200), (3.0, 200)]);
    let mut det = Bocpd::new(BocpdParams {
        lambda: 200.0,
        ..BocpdParams::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut found = Vec::new();
    for (t, &v) in x.iter().enumerate() {
        if let Some(cp) = det.push(v) {
            found.push((t, cp));
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    let (seen_at, cp) = found[0];
    assert!((199..=201).contains(&cp), "change point {cp}");
    assert!(seen_at < 215, "detected only at {seen_at}");
    let post = det.run_length_posterior();
    assert!((post.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    // The mass sits on a run that started at the shift.
    assert!((det.map_run_length() as i64 - 200).abs() <= 1);
    assert_eq!(
        Bocpd::detect(
            &x,
            BocpdParams {
                lambda: 200.0,
                ..BocpdParams::default()
            }
        )
        .ok(),
        Some(vec![cp])
    );
}

#[test]
fn rbf_long_signal_matches_between_pelt_paths() {
    // Long enough for the parallel kernel path; PELT and exhaustive BinSeg
    // must agree on clean steps.
    let x = steps(&[(0.0, 3000), (2.0, 3000), (0.5, 3000)]);
    let b = pelt(&x, CostKind::Rbf { gamma: None }, 20.0, 2, 50).unwrap_or_default();
    assert_eq!(b, vec![3000, 6000, 9000]);
    let b = binseg(
        &x,
        CostKind::Rbf { gamma: None },
        BinSegStop::NBkps(2),
        2,
        50,
    )
    .unwrap_or_default();
    assert_eq!(b, vec![3000, 6000, 9000]);
}
