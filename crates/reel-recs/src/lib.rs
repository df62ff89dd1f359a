//! Reel's recommendation engine: what to put on a viewer's home page, and
//! which titles are like this one.
//!
//! Models, all trained from a user × title confidence matrix
//! ([`Interactions`], built from viewing [`Event`]s; see
//! [`watch_confidence`] for turning "watched 80% twice" into a number):
//!
//! * [`als`] — implicit-feedback matrix factorization (Hu, Koren and
//!   Volinsky), exactly as the Python library `implicit` formulates it,
//!   with its conjugate-gradient solver or an exact Cholesky one;
//! * [`bpr`] — Bayesian personalized ranking, deterministic and parallel;
//! * [`item_knn`] — item-item cosine neighbours;
//! * [`popularity`] — what is being watched now, with exponential decay.
//!
//! Every model implements [`Recommender`] (top-k for a user, their history
//! left out, an optional filter such as a maturity rating) and fits in a
//! [`Model`] that encodes to bytes, so the control plane can store,
//! version and hot-swap it. [`split`] and [`metrics`] evaluate offline;
//! [`eval::evaluate_movielens`] runs the standard comparison.
//!
//! Speed: the kernels are plain Rust written so LLVM vectorizes them. The
//! ALS kernels are also instantiated for AVX2 + FMA and picked at run time
//! when the CPU has them (as OpenBLAS picks its kernels): the crate's only
//! `unsafe` is calling those builds, each call behind that check (see
//! [`als::cpu_has_avx2`]). Factors are then bit-identical for a seed on any
//! thread count on one kind of CPU, and differ in the last bits between CPUs
//! with and without FMA. `bench/recs-vs-implicit` compares the default build
//! and a `-C target-cpu=native` build with `implicit`.
//!
//! This crate knows nothing of HTTP, SQL or Reel's catalogue: ids are dense
//! `u32` indices the caller maps to its own. It does no I/O except reading
//! MovieLens files and `.npy` factor files at paths it is given. Training is
//! parallel on the current rayon pool and deterministic for a seed whatever
//! the number of threads.
//!
//! ```
//! use reel_recs::{als, Event, Interactions, Recommender};
//!
//! // Users 0–3 watch sci-fi (items 0–2), users 4–7 watch comedy (3–5);
//! // user 0 has not seen item 2 yet.
//! let mut events = Vec::new();
//! for user in 0..8u32 {
//!     let first = if user < 4 { 0 } else { 3 };
//!     for item in first..first + 3 {
//!         if (user, item) != (0, 2) {
//!             events.push(Event { user, item, weight: 1.0, timestamp: 0 });
//!         }
//!     }
//! }
//! let m = Interactions::from_events(&events)?;
//! let params = als::AlsParams { factors: 8, iterations: 10, ..Default::default() };
//! let model = als::train_als(&m, &params)?;
//! let recs = model.recommend(0, m.user_row(0), 1, None);
//! assert_eq!(recs[0].0, 2);
//! # Ok::<(), reel_recs::Error>(())
//! ```

#![deny(unsafe_code)]

pub mod als;
pub mod bandit;
pub mod bpr;
mod error;
pub mod eval;
mod factors;
mod fixed;
mod interactions;
pub mod item_knn;
mod linalg;
pub mod metrics;
mod model;
pub mod movielens;
pub mod npy;
pub mod popularity;
mod recommender;
mod rng;
pub mod split;
mod topk;

pub use error::{Error, Result};
pub use factors::{FactorAlgorithm, FactorModel};
pub use interactions::{watch_confidence, Csr, Event, Interactions, SparseRow};
pub use model::Model;
pub use recommender::Recommender;
pub use rng::Rng;
pub use topk::top_k;
