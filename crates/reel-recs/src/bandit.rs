//! Artwork personalization: a contextual bandit that picks, for one
//! profile and one title, which of the title's artwork variants to show,
//! and the offline estimators that judge a new policy from the logs of an
//! old one.
//!
//! The policy is disjoint LinUCB (Li et al., 2010) with ε-greedy
//! exploration on top: each (title, variant) arm keeps a ridge regression
//! of reward (a play) on the context (the profile's genre affinities, the
//! hour of day, a bias), the greedy choice is the arm with the highest
//! upper confidence bound, and with probability ε a uniformly random arm is
//! shown instead. Every choice comes with its propensity — the probability
//! the policy gave the variant shown — which is what makes the logs usable
//! for offline evaluation:
//!
//! * **replay** (Li et al., 2011): the mean reward over the logged events
//!   where the new policy would have chosen what was shown (unbiased when
//!   the logging policy chose uniformly);
//! * **IPS**: mean of reward × π(a|x) / p;
//! * **SNIPS**: the same, self-normalized by the sum of weights;
//! * **doubly robust**: a reward model's prediction for the new policy's
//!   choice, corrected by the importance-weighted residual on what was shown.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::rng::Rng;

/// One arm's ridge regression: A = λI + Σ x xᵀ, b = Σ r x.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// A, row-major d × d.
    a: Vec<f64>,
    b: Vec<f64>,
    /// θ = A⁻¹ b and A⁻¹, refreshed after updates.
    theta: Vec<f64>,
    a_inv: Vec<f64>,
    pub pulls: u64,
    pub rewards: f64,
}

impl Arm {
    fn new(d: usize, ridge: f64) -> Arm {
        let mut a = vec![0.0; d * d];
        let mut a_inv = vec![0.0; d * d];
        for i in 0..d {
            a[i * d + i] = ridge;
            a_inv[i * d + i] = 1.0 / ridge;
        }
        Arm { a, b: vec![0.0; d], theta: vec![0.0; d], a_inv, pulls: 0, rewards: 0.0 }
    }

    fn update(&mut self, x: &[f64], reward: f64) {
        let d = x.len();
        for i in 0..d {
            for j in 0..d {
                self.a[i * d + j] += x[i] * x[j];
            }
            self.b[i] += reward * x[i];
        }
        self.pulls += 1;
        self.rewards += reward;
    }

    fn refresh(&mut self) {
        let d = self.b.len();
        if let Some(inv) = invert(&self.a, d) {
            self.a_inv = inv;
            self.theta = (0..d).map(|i| (0..d).map(|j| self.a_inv[i * d + j] * self.b[j]).sum()).collect();
        }
    }

    /// Predicted reward for `x`.
    pub fn predict(&self, x: &[f64]) -> f64 {
        dot(&self.theta, x)
    }

    /// The confidence width √(xᵀ A⁻¹ x).
    fn width(&self, x: &[f64]) -> f64 {
        let d = x.len();
        let mut s = 0.0;
        for i in 0..d {
            let row: f64 = (0..d).map(|j| self.a_inv[i * d + j] * x[j]).sum();
            s += x[i] * row;
        }
        s.max(0.0).sqrt()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Gauss-Jordan inverse of a small symmetric positive-definite matrix.
fn invert(m: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut a = m.to_vec();
    let mut inv = vec![0.0; d * d];
    for i in 0..d {
        inv[i * d + i] = 1.0;
    }
    for col in 0..d {
        let pivot = (col..d).max_by(|&x, &y| a[x * d + col].abs().total_cmp(&a[y * d + col].abs()))?;
        if a[pivot * d + col].abs() < 1e-12 {
            return None;
        }
        if pivot != col {
            for k in 0..d {
                a.swap(pivot * d + k, col * d + k);
                inv.swap(pivot * d + k, col * d + k);
            }
        }
        let p = a[col * d + col];
        for k in 0..d {
            a[col * d + k] /= p;
            inv[col * d + k] /= p;
        }
        for r in 0..d {
            if r != col {
                let f = a[r * d + col];
                if f != 0.0 {
                    for k in 0..d {
                        a[r * d + k] -= f * a[col * d + k];
                        inv[r * d + k] -= f * inv[col * d + k];
                    }
                }
            }
        }
    }
    Some(inv)
}

/// Settings of the artwork policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BanditParams {
    /// Width of the upper confidence bound (LinUCB's α).
    pub alpha: f64,
    /// Share of impressions shown a uniformly random variant (ε).
    pub exploration: f64,
    /// Ridge of each arm's regression.
    pub ridge: f64,
}

impl Default for BanditParams {
    fn default() -> Self {
        BanditParams { alpha: 0.5, exploration: 0.1, ridge: 1.0 }
    }
}

/// One logged impression: the context, what was shown, with what
/// probability, and whether it was played.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    /// The arm group (a title).
    pub group: String,
    /// The variants that could have been shown.
    pub choices: Vec<String>,
    pub context: Vec<f64>,
    pub shown: String,
    pub propensity: f64,
    pub reward: f64,
}

/// The artwork policy: disjoint LinUCB per (title, variant), ε-greedy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtworkBandit {
    pub params: BanditParams,
    pub dim: usize,
    arms: BTreeMap<String, Arm>,
}

fn arm_key(group: &str, variant: &str) -> String {
    format!("{group}\u{1f}{variant}")
}

/// A choice and the probability the policy gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub variant: String,
    pub propensity: f64,
    /// Whether this was an exploration draw.
    pub explored: bool,
}

impl ArtworkBandit {
    pub fn new(dim: usize, params: BanditParams) -> Result<ArtworkBandit> {
        if dim == 0 || !(0.0..=1.0).contains(&params.exploration) || params.ridge <= 0.0 || params.alpha < 0.0 {
            return Err(Error::InvalidParameter("bandit: dim > 0, exploration in [0, 1], ridge > 0, alpha >= 0".into()));
        }
        Ok(ArtworkBandit { params, dim, arms: BTreeMap::new() })
    }

    /// Fits every arm from logged impressions (rewards 0/1).
    pub fn fit(dim: usize, params: BanditParams, logs: &[Logged]) -> Result<ArtworkBandit> {
        let mut b = ArtworkBandit::new(dim, params)?;
        for l in logs {
            if l.context.len() != dim {
                return Err(Error::InvalidParameter(format!("context of {} features, expected {dim}", l.context.len())));
            }
            b.arms.entry(arm_key(&l.group, &l.shown)).or_insert_with(|| Arm::new(dim, params.ridge)).update(&l.context, l.reward);
        }
        for arm in b.arms.values_mut() {
            arm.refresh();
        }
        Ok(b)
    }

    fn arm(&self, group: &str, variant: &str) -> Option<&Arm> {
        self.arms.get(&arm_key(group, variant))
    }

    fn ucb(&self, group: &str, variant: &str, x: &[f64]) -> f64 {
        match self.arm(group, variant) {
            Some(a) => a.predict(x) + self.params.alpha * a.width(x),
            // Never shown: the prior's bound, √(xᵀx/λ).
            None => self.params.alpha * (dot(x, x) / self.params.ridge).sqrt(),
        }
    }

    /// The variant the greedy part would show (ties to the first listed).
    pub fn greedy(&self, group: &str, choices: &[String], x: &[f64]) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, c) in choices.iter().enumerate() {
            let s = self.ucb(group, c, x);
            if best.is_none_or(|(_, b)| s > b + 1e-12) {
                best = Some((i, s));
            }
        }
        best.map(|(i, _)| i)
    }

    /// The probability of showing each of `choices` for context `x`.
    pub fn probabilities(&self, group: &str, choices: &[String], x: &[f64]) -> Vec<f64> {
        let k = choices.len();
        if k == 0 {
            return Vec::new();
        }
        let eps = self.params.exploration;
        let g = self.greedy(group, choices, x).unwrap_or(0);
        (0..k).map(|i| eps / k as f64 + if i == g { 1.0 - eps } else { 0.0 }).collect()
    }

    /// Picks a variant, with its propensity.
    pub fn choose(&self, group: &str, choices: &[String], x: &[f64], rng: &mut Rng) -> Option<Choice> {
        let k = choices.len();
        if k == 0 || x.len() != self.dim {
            return None;
        }
        let probs = self.probabilities(group, choices, x);
        let explored = rng.next_f64() < self.params.exploration;
        let i = if explored { rng.below(k) } else { self.greedy(group, choices, x).unwrap_or(0) };
        Some(Choice { variant: choices[i].clone(), propensity: probs[i], explored })
    }

    /// Plays and impressions per arm, for reports.
    pub fn arm_stats(&self) -> Vec<(String, String, u64, f64)> {
        self.arms
            .iter()
            .map(|(k, a)| {
                let (g, v) = k.split_once('\u{1f}').unwrap_or((k.as_str(), ""));
                (g.to_string(), v.to_string(), a.pulls, a.rewards)
            })
            .collect()
    }
}

/// A policy to evaluate offline: the probability it gives each choice.
pub trait Policy {
    fn probabilities(&self, group: &str, choices: &[String], x: &[f64]) -> Vec<f64>;
}

impl Policy for ArtworkBandit {
    fn probabilities(&self, group: &str, choices: &[String], x: &[f64]) -> Vec<f64> {
        ArtworkBandit::probabilities(self, group, choices, x)
    }
}

/// Shows every variant equally often.
pub struct Uniform;

impl Policy for Uniform {
    fn probabilities(&self, _: &str, choices: &[String], _: &[f64]) -> Vec<f64> {
        vec![1.0 / choices.len().max(1) as f64; choices.len()]
    }
}

/// Always the first variant (what a site without personalization shows).
pub struct Fixed;

impl Policy for Fixed {
    fn probabilities(&self, _: &str, choices: &[String], _: &[f64]) -> Vec<f64> {
        (0..choices.len()).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect()
    }
}

/// Estimates of a policy's reward per impression from logs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimates {
    pub replay: Option<f64>,
    /// Logged events the replay estimate used.
    pub replay_matches: usize,
    pub ips: f64,
    pub snips: f64,
    pub doubly_robust: f64,
    pub events: usize,
}

/// Estimates `policy`'s mean reward from `logs` (collected by another
/// policy, with propensities). The doubly robust estimator's reward model
/// is a ridge regression per arm fitted on the same logs.
pub fn evaluate(policy: &dyn Policy, logs: &[Logged], dim: usize) -> Result<Estimates> {
    if logs.is_empty() {
        return Err(Error::InvalidParameter("no logged impressions to evaluate on".into()));
    }
    let reward_model = ArtworkBandit::fit(dim, BanditParams { alpha: 0.0, exploration: 0.0, ridge: 1.0 }, logs)?;
    let (mut replay_sum, mut replay_n) = (0.0, 0usize);
    let (mut ips, mut w_sum, mut wr_sum, mut dr) = (0.0, 0.0, 0.0, 0.0);
    for l in logs {
        if l.propensity <= 0.0 || l.propensity > 1.0 {
            return Err(Error::InvalidParameter(format!("propensity {} outside (0, 1]", l.propensity)));
        }
        let probs = policy.probabilities(&l.group, &l.choices, &l.context);
        let Some(shown) = l.choices.iter().position(|c| *c == l.shown) else {
            return Err(Error::InvalidParameter(format!("shown variant {} is not among the choices", l.shown)));
        };
        let pi = probs.get(shown).copied().unwrap_or(0.0);
        // Replay: the new policy's most likely choice matched what was shown.
        let top = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
        if top == Some(shown) {
            replay_sum += l.reward;
            replay_n += 1;
        }
        let w = pi / l.propensity;
        ips += w * l.reward;
        w_sum += w;
        wr_sum += w * l.reward;
        let predict = |i: usize| reward_model.arm(&l.group, &l.choices[i]).map_or(0.0, |a| a.predict(&l.context));
        let direct: f64 = probs.iter().enumerate().map(|(i, p)| p * predict(i)).sum();
        dr += direct + w * (l.reward - predict(shown));
    }
    let n = logs.len() as f64;
    Ok(Estimates {
        replay: (replay_n > 0).then(|| replay_sum / replay_n as f64),
        replay_matches: replay_n,
        ips: ips / n,
        snips: if w_sum > 0.0 { wr_sum / w_sum } else { 0.0 },
        doubly_robust: dr / n,
        events: logs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A world where the best variant depends on the context: viewers who
    /// like action (feature 1) play variant "b", others play "a".
    fn true_ctr(variant: &str, x: &[f64]) -> f64 {
        let action = x[1];
        match variant {
            "a" => 0.05 + 0.25 * (1.0 - action),
            "b" => 0.05 + 0.35 * action,
            _ => 0.08,
        }
    }

    fn context(rng: &mut Rng) -> Vec<f64> {
        let action = if rng.next_f64() < 0.5 { 1.0 } else { 0.0 };
        vec![1.0, action, 1.0 - action]
    }

    fn choices() -> Vec<String> {
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    }

    /// Logs from a uniformly random policy.
    fn uniform_logs(n: usize, seed: u64) -> Vec<Logged> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                let x = context(&mut rng);
                let i = rng.below(3);
                let shown = choices()[i].clone();
                let reward = if rng.next_f64() < true_ctr(&shown, &x) { 1.0 } else { 0.0 };
                Logged { group: "t1".into(), choices: choices(), context: x, shown, propensity: 1.0 / 3.0, reward }
            })
            .collect()
    }

    /// The true value of a policy, by simulating it.
    fn simulate(policy: &dyn Policy, n: usize, seed: u64) -> f64 {
        let mut rng = Rng::new(seed);
        let mut total = 0.0;
        for _ in 0..n {
            let x = context(&mut rng);
            let p = policy.probabilities("t1", &choices(), &x);
            total += p.iter().zip(choices()).map(|(p, c)| p * true_ctr(&c, &x)).sum::<f64>();
        }
        total / n as f64
    }

    #[test]
    fn learns_the_variant_each_context_prefers() {
        let logs = uniform_logs(6000, 1);
        let bandit = ArtworkBandit::fit(3, BanditParams { alpha: 0.1, exploration: 0.0, ridge: 1.0 }, &logs).expect("fit");
        assert_eq!(bandit.greedy("t1", &choices(), &[1.0, 1.0, 0.0]), Some(1), "action fans get b");
        assert_eq!(bandit.greedy("t1", &choices(), &[1.0, 0.0, 1.0]), Some(0), "others get a");
    }

    #[test]
    fn propensities_follow_the_exploration_share() {
        let bandit = ArtworkBandit::new(3, BanditParams { exploration: 0.3, ..Default::default() }).expect("new");
        let p = bandit.probabilities("t1", &choices(), &[1.0, 0.0, 1.0]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p[0] - (0.7 + 0.1)).abs() < 1e-12 && (p[1] - 0.1).abs() < 1e-12);
        let mut rng = Rng::new(9);
        let explored = (0..10_000).filter(|_| bandit.choose("t1", &choices(), &[1.0, 0.0, 1.0], &mut rng).is_some_and(|c| c.explored)).count();
        assert!((2700..3300).contains(&explored), "{explored} of 10000 explored");
    }

    #[test]
    fn offline_estimates_agree_with_the_simulated_truth() {
        let logs = uniform_logs(20_000, 2);
        let learned = ArtworkBandit::fit(3, BanditParams { alpha: 0.0, exploration: 0.1, ridge: 1.0 }, &uniform_logs(5000, 3)).expect("fit");
        for (name, policy) in [("learned", &learned as &dyn Policy), ("fixed", &Fixed), ("uniform", &Uniform)] {
            let truth = simulate(policy, 20_000, 4);
            let e = evaluate(policy, &logs, 3).expect("evaluate");
            for (est, v) in [("ips", e.ips), ("snips", e.snips), ("dr", e.doubly_robust)] {
                assert!((v - truth).abs() < 0.02, "{name} {est}: {v:.4} vs truth {truth:.4}");
            }
            if name != "uniform" {
                let r = e.replay.expect("some matches");
                assert!((r - truth).abs() < 0.03, "{name} replay: {r:.4} vs {truth:.4}");
            }
        }
        // And the learned policy is the better one, by every estimator.
        let l = evaluate(&learned, &logs, 3).expect("learned");
        let f = evaluate(&Fixed, &logs, 3).expect("fixed");
        assert!(l.snips > f.snips + 0.05 && l.doubly_robust > f.doubly_robust + 0.05);
    }

    #[test]
    fn bad_logs_are_errors() {
        let mut logs = uniform_logs(10, 5);
        logs[3].propensity = 0.0;
        assert!(evaluate(&Uniform, &logs, 3).is_err());
        let mut logs = uniform_logs(10, 5);
        logs[2].shown = "zzz".into();
        assert!(evaluate(&Uniform, &logs, 3).is_err());
        assert!(evaluate(&Uniform, &[], 3).is_err());
        assert!(ArtworkBandit::new(3, BanditParams { exploration: 1.5, ..Default::default() }).is_err());
    }
}
