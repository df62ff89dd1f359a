//! Behaviour a viewer would notice, on synthetic catalogues with a planted
//! structure: people who watch one genre get that genre recommended.

use reel_recs::als::{train_als, training_loss, AlsParams, AlsSolver};
use reel_recs::bpr::{train_bpr, BprParams};
use reel_recs::item_knn::ItemKnn;
use reel_recs::{Event, FactorModel, Interactions, Model, Recommender, Rng};

const GENRES: u32 = 4;
const ITEMS_PER_GENRE: u32 = 25;
const USERS_PER_GENRE: u32 = 60;

fn genre_of_item(item: u32) -> u32 {
    item / ITEMS_PER_GENRE
}

fn genre_of_user(user: u32) -> u32 {
    user / USERS_PER_GENRE
}

/// Each user watches 8 random titles of their genre and, rarely, one
/// title of another genre.
fn planted() -> Interactions {
    let mut rng = Rng::new(7);
    let mut events = Vec::new();
    for user in 0..GENRES * USERS_PER_GENRE {
        let g = genre_of_user(user);
        for _ in 0..8 {
            let item = g * ITEMS_PER_GENRE + rng.below(ITEMS_PER_GENRE as usize) as u32;
            events.push(Event {
                user,
                item,
                weight: 1.0 + rng.below(4) as f32,
                timestamp: 0,
            });
        }
        if rng.below(10) == 0 {
            let item = rng.below((GENRES * ITEMS_PER_GENRE) as usize) as u32;
            events.push(Event {
                user,
                item,
                weight: 1.0,
                timestamp: 0,
            });
        }
    }
    Interactions::from_events(&events).expect("valid events")
}

/// Share of the top-10 recommendations, over all users, in the user's genre.
fn in_genre_share(model: &dyn Recommender, m: &Interactions) -> f64 {
    let (mut hits, mut total) = (0, 0);
    for user in 0..m.n_users() as u32 {
        for (item, _) in model.recommend(user, m.user_row(user), 10, None) {
            total += 1;
            hits += (genre_of_item(item) == genre_of_user(user)) as usize;
        }
    }
    hits as f64 / total as f64
}

fn als(solver: AlsSolver, seed: u64) -> AlsParams {
    AlsParams {
        factors: 8,
        iterations: 15,
        regularization: 1.0,
        solver,
        seed,
    }
}

/// The same with 32 factors, a size with compile-time specialised kernels.
fn als32(solver: AlsSolver, seed: u64) -> AlsParams {
    AlsParams {
        factors: 32,
        ..als(solver, seed)
    }
}

#[test]
fn als_recommends_the_genre_users_watch() {
    let m = planted();
    for solver in [
        AlsSolver::ConjugateGradient { steps: 3 },
        AlsSolver::Cholesky,
    ] {
        let model = train_als(&m, &als(solver, 1)).expect("trains");
        let share = in_genre_share(&model, &m);
        assert!(
            share > 0.95,
            "{solver:?}: only {share:.2} of recommendations in genre"
        );
    }
}

#[test]
fn bpr_and_item_item_recommend_the_genre_users_watch() {
    let m = planted();
    let params = BprParams {
        factors: 16,
        iterations: 200,
        learning_rate: 0.05,
        seed: 3,
        ..BprParams::default()
    };
    let bpr = train_bpr(&m, &params).expect("trains");
    let share = in_genre_share(&bpr, &m);
    assert!(share > 0.85, "BPR: only {share:.2} in genre");
    let knn = ItemKnn::cosine(&m, 20).expect("k > 0");
    let share = in_genre_share(&knn, &m);
    assert!(share > 0.9, "item-item: only {share:.2} in genre");
}

#[test]
fn similar_items_stay_in_genre() {
    let m = planted();
    let model = train_als(&m, &als(AlsSolver::ConjugateGradient { steps: 3 }, 1)).expect("trains");
    for item in [0, 30, 60, 99] {
        let sim = model.similar_items(item, 5);
        assert_eq!(sim.len(), 5);
        assert!(
            sim.iter().all(|&(j, _)| j != item),
            "the item itself is left out"
        );
        let same = sim
            .iter()
            .filter(|&&(j, _)| genre_of_item(j) == genre_of_item(item))
            .count();
        assert!(same >= 4, "item {item}: {sim:?}");
    }
}

/// Relative L2 distance between two models' score matrices, and the
/// share of top-10 lists they have in common.
fn compare(a: &dyn Recommender, b: &dyn Recommender, m: &Interactions) -> (f64, f64) {
    let (mut diff, mut norm, mut overlap) = (0f64, 0f64, 0usize);
    let mut sa = vec![0f32; m.n_items()];
    let mut sb = vec![0f32; m.n_items()];
    for user in 0..m.n_users() as u32 {
        a.score_into(user, m.user_row(user), &mut sa);
        b.score_into(user, m.user_row(user), &mut sb);
        for (x, y) in sa.iter().zip(&sb) {
            diff += ((x - y) as f64).powi(2);
            norm += (*y as f64).powi(2);
        }
        let ta: Vec<u32> = a
            .recommend(user, m.user_row(user), 10, None)
            .iter()
            .map(|r| r.0)
            .collect();
        let tb: Vec<u32> = b
            .recommend(user, m.user_row(user), 10, None)
            .iter()
            .map(|r| r.0)
            .collect();
        overlap += ta.iter().filter(|i| tb.contains(i)).count();
    }
    (
        (diff / norm).sqrt(),
        overlap as f64 / (10 * m.n_users()) as f64,
    )
}

#[test]
fn conjugate_gradient_and_cholesky_agree() {
    let m = planted();
    for params in [als, als32] {
        let exact = train_als(&m, &params(AlsSolver::Cholesky, 5)).expect("trains");
        // Three warm-started steps per half-iteration (implicit's default)
        // land close to the exact solution...
        let cg =
            train_als(&m, &params(AlsSolver::ConjugateGradient { steps: 3 }, 5)).expect("trains");
        let (rel, overlap) = compare(&cg, &exact, &m);
        assert!(rel < 0.1, "relative score difference {rel:.4}");
        assert!(overlap > 0.8, "top-10 overlap {overlap:.2}");
        let (lc, le) = (training_loss(&m, &cg, 1.0), training_loss(&m, &exact, 1.0));
        assert!((lc - le).abs() < 0.01 * le, "loss {lc} vs exact {le}");
        // ...and enough steps converge to it.
        let long =
            train_als(&m, &params(AlsSolver::ConjugateGradient { steps: 40 }, 5)).expect("trains");
        let (rel, _) = compare(&long, &exact, &m);
        assert!(rel < 1e-3, "40 steps: relative difference {rel:.2e}");
    }
}

fn on_threads<T: Send>(n: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("thread pool")
        .install(f)
}

fn assert_bit_identical(a: &FactorModel, b: &FactorModel) {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(a.user_factors()), bits(b.user_factors()));
    assert_eq!(bits(a.item_factors()), bits(b.item_factors()));
}

#[test]
fn same_seed_same_factors_on_one_and_two_threads() {
    let m = planted();
    for solver in [
        AlsSolver::ConjugateGradient { steps: 3 },
        AlsSolver::Cholesky,
    ] {
        let p = als(solver, 11);
        let one = on_threads(1, || train_als(&m, &p)).expect("trains");
        let two = on_threads(2, || train_als(&m, &p)).expect("trains");
        assert_bit_identical(&one, &two);
        let other = on_threads(2, || train_als(&m, &als(solver, 12))).expect("trains");
        assert_ne!(one.user_factors(), other.user_factors(), "the seed matters");
    }
    let p = BprParams {
        factors: 16,
        iterations: 20,
        seed: 9,
        ..BprParams::default()
    };
    let one = on_threads(1, || train_bpr(&m, &p)).expect("trains");
    let two = on_threads(2, || train_bpr(&m, &p)).expect("trains");
    assert_bit_identical(&one, &two);
    let three = on_threads(3, || train_bpr(&m, &p)).expect("trains");
    assert_bit_identical(&one, &three);
}

#[test]
fn recommendations_skip_seen_and_filtered_titles() {
    let m = planted();
    let model = Model::Factors(
        train_als(&m, &als(AlsSolver::ConjugateGradient { steps: 3 }, 1)).expect("trains"),
    );
    let kids_safe = |item: u32| item.is_multiple_of(2);
    for user in 0..m.n_users() as u32 {
        let seen = m.user_row(user);
        let recs = model.recommend(user, seen, 20, Some(&kids_safe));
        assert_eq!(recs.len(), 20);
        assert!(recs.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
        for (item, _) in recs {
            assert!(!seen.contains(item), "user {user} already watched {item}");
            assert!(kids_safe(item));
        }
    }
    // And a model that went through bytes recommends the same.
    let back = Model::from_bytes(&model.to_bytes()).expect("round trip");
    assert_eq!(
        back.recommend(3, m.user_row(3), 10, None),
        model.recommend(3, m.user_row(3), 10, None)
    );
}

#[test]
fn users_without_history_get_zero_factors_and_bad_parameters_are_refused() {
    let mut events = vec![Event {
        user: 0,
        item: 0,
        weight: 1.0,
        timestamp: 0,
    }];
    events.push(Event {
        user: 2,
        item: 1,
        weight: 2.0,
        timestamp: 0,
    });
    let m = Interactions::from_events(&events).expect("valid");
    let model = train_als(
        &m,
        &AlsParams {
            factors: 4,
            ..AlsParams::default()
        },
    )
    .expect("trains");
    assert!(model
        .user_factor(1)
        .expect("in range")
        .iter()
        .all(|&x| x == 0.0));
    assert!(train_als(
        &m,
        &AlsParams {
            factors: 0,
            ..AlsParams::default()
        }
    )
    .is_err());
    assert!(train_als(
        &m,
        &AlsParams {
            regularization: f32::NAN,
            ..AlsParams::default()
        }
    )
    .is_err());
    assert!(train_bpr(
        &m,
        &BprParams {
            blocks: 0,
            ..BprParams::default()
        }
    )
    .is_err());
}

#[test]
fn a_new_viewer_folded_in_gets_their_genre() {
    let m = planted();
    let model = train_als(&m, &als(AlsSolver::Cholesky, 1)).expect("trains");
    let fold = reel_recs::als::FoldIn::new(std::sync::Arc::new(model.clone()), 1.0).expect("an ALS model");
    // A profile created after training that watched three genre-2 titles.
    let items = [50, 53, 61];
    let history = reel_recs::SparseRow {
        indices: &items,
        values: &[2.0, 1.0, 3.0],
    };
    let recs = fold.recommend(history, 10, None).expect("solves");
    assert_eq!(recs.len(), 10);
    assert!(
        recs.iter()
            .all(|&(i, _)| genre_of_item(i) == 2 && !items.contains(&i)),
        "{recs:?}"
    );
    // Folding in a trained user's own history reproduces their factors
    // (the last half-iteration solved items, so up to that one update).
    let user = 5;
    let x = fold.user_vector(m.user_row(user)).expect("solves");
    let trained = model.user_factor(user).expect("known user");
    let err: f32 = x
        .iter()
        .zip(trained)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    let scale: f32 = trained.iter().map(|v| v.abs()).fold(0.0, f32::max);
    assert!(err < 0.1 * scale, "fold-in {x:?} vs trained {trained:?}");
    let bpr = train_bpr(
        &m,
        &BprParams {
            factors: 4,
            iterations: 1,
            ..BprParams::default()
        },
    )
    .expect("trains");
    assert!(reel_recs::als::FoldIn::new(std::sync::Arc::new(bpr.clone()), 1.0).is_err());
}
