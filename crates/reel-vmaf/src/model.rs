//! The VMAF model: libsvm ν-SVR with an RBF kernel over six normalised
//! features, as libvmaf loads it from `vmaf_v0.6.1.json`.

use serde::Deserialize;

use crate::Error;

/// The features a model may name, in the order [`Features`] stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Adm2,
    Motion2,
    Vif(usize),
}

impl Feature {
    fn parse(name: &str) -> Option<Feature> {
        let short = name
            .strip_prefix("VMAF_integer_feature_")
            .and_then(|s| s.strip_suffix("_score"))?;
        Some(match short {
            "adm2" => Feature::Adm2,
            "motion2" => Feature::Motion2,
            "vif_scale0" => Feature::Vif(0),
            "vif_scale1" => Feature::Vif(1),
            "vif_scale2" => Feature::Vif(2),
            "vif_scale3" => Feature::Vif(3),
            _ => return None,
        })
    }
}

/// The model features of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Features {
    pub adm2: f64,
    pub motion2: f64,
    pub vif: [f64; 4],
}

impl Features {
    fn get(&self, f: Feature) -> f64 {
        match f {
            Feature::Adm2 => self.adm2,
            Feature::Motion2 => self.motion2,
            Feature::Vif(k) => self.vif[k],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Model {
    name: String,
    features: Vec<Feature>,
    /// Per-feature `slope * x + intercept`.
    slopes: Vec<f64>,
    intercepts: Vec<f64>,
    /// The output's rescale: score = (svr - out_intercept) / out_slope.
    out_slope: f64,
    out_intercept: f64,
    clip: Option<(f64, f64)>,
    gamma: f64,
    rho: f64,
    /// Support vectors, dense, one row of `features.len()` per vector.
    sv: Vec<f64>,
    coef: Vec<f64>,
}

#[derive(Deserialize)]
struct File {
    model_dict: Dict,
}

#[derive(Deserialize)]
struct Dict {
    model: String,
    model_type: String,
    norm_type: String,
    feature_names: Vec<String>,
    slopes: Vec<f64>,
    intercepts: Vec<f64>,
    #[serde(default)]
    score_clip: Option<(f64, f64)>,
}

const V061: &str = include_str!("../model/vmaf_v0.6.1.json");
const V061_4K: &str = include_str!("../model/vmaf_4k_v0.6.1.json");

impl Model {
    /// The default model, `vmaf_v0.6.1` (for 1080p viewing at 3H). Parsed
    /// once per process; every call after the first is a copy.
    pub fn v0_6_1() -> Model {
        static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
        MODEL.get_or_init(|| Model::from_json("vmaf_v0.6.1", V061).expect("the embedded model parses")).clone()
    }

    /// `vmaf_4k_v0.6.1`, for 4K viewing at 1.5H.
    pub fn v0_6_1_4k() -> Model {
        static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
        MODEL.get_or_init(|| Model::from_json("vmaf_4k_v0.6.1", V061_4K).expect("the embedded model parses")).clone()
    }

    /// A built-in model by name (`vmaf_v0.6.1`, `vmaf_4k_v0.6.1`).
    pub fn builtin(name: &str) -> Option<Model> {
        match name {
            "vmaf_v0.6.1" | "vmaf" | "default" => Some(Model::v0_6_1()),
            "vmaf_4k_v0.6.1" | "4k" => Some(Model::v0_6_1_4k()),
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parses a libvmaf JSON model whose features are the integer VIF,
    /// ADM2 and motion2 features this crate computes.
    pub fn from_json(name: &str, text: &str) -> Result<Model, Error> {
        let bad = |why: String| Error::Model(why);
        let file: File = serde_json::from_str(text).map_err(|e| bad(format!("not a VMAF model: {e}")))?;
        let d = file.model_dict;
        if d.model_type != "LIBSVMNUSVR" {
            return Err(bad(format!("model type {} is not supported (LIBSVMNUSVR only)", d.model_type)));
        }
        if d.norm_type != "linear_rescale" {
            return Err(bad(format!("norm type {} is not supported (linear_rescale only)", d.norm_type)));
        }
        let features = d
            .feature_names
            .iter()
            .map(|n| Feature::parse(n).ok_or_else(|| bad(format!("feature {n} is not computed here (integer vif, adm2, motion2 only)"))))
            .collect::<Result<Vec<_>, _>>()?;
        let k = features.len();
        if d.slopes.len() != k + 1 || d.intercepts.len() != k + 1 {
            return Err(bad("slopes/intercepts must have one more entry than features".into()));
        }
        let (mut gamma, mut rho, mut in_sv) = (None, None, false);
        let (mut sv, mut coef) = (Vec::new(), Vec::new());
        for line in d.model.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if in_sv {
                let mut parts = line.split_whitespace();
                let c: f64 = parts
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad(format!("bad support vector line: {line}")))?;
                let mut row = vec![0.0; k];
                for p in parts {
                    let (i, v) = p.split_once(':').ok_or_else(|| bad(format!("bad support vector entry: {p}")))?;
                    let i: usize = i.parse().map_err(|_| bad(format!("bad index {i}")))?;
                    let v: f64 = v.parse().map_err(|_| bad(format!("bad value {v}")))?;
                    if i == 0 || i > k {
                        return Err(bad(format!("support vector index {i} out of range")));
                    }
                    row[i - 1] = v;
                }
                coef.push(c);
                sv.extend(row);
            } else if line == "SV" {
                in_sv = true;
            } else if let Some(v) = line.strip_prefix("gamma ") {
                gamma = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("rho ") {
                rho = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("kernel_type ") {
                if v.trim() != "rbf" {
                    return Err(bad(format!("kernel {v} is not supported (rbf only)")));
                }
            }
        }
        let gamma = gamma.ok_or_else(|| bad("model has no gamma".into()))?;
        let rho = rho.ok_or_else(|| bad("model has no rho".into()))?;
        if coef.is_empty() {
            return Err(bad("model has no support vectors".into()));
        }
        Ok(Model {
            name: name.to_string(),
            features,
            slopes: d.slopes[1..].to_vec(),
            intercepts: d.intercepts[1..].to_vec(),
            out_slope: d.slopes[0],
            out_intercept: d.intercepts[0],
            clip: d.score_clip,
            gamma,
            rho,
            sv,
            coef,
        })
    }

    /// The VMAF score of one frame's features.
    pub fn predict(&self, f: &Features) -> f64 {
        let k = self.features.len();
        let x: Vec<f64> = self
            .features
            .iter()
            .enumerate()
            .map(|(i, &feat)| self.slopes[i] * f.get(feat) + self.intercepts[i])
            .collect();
        let mut sum = 0.0;
        for (c, row) in self.coef.iter().zip(self.sv.chunks_exact(k)) {
            let d2: f64 = row.iter().zip(&x).map(|(s, v)| (s - v) * (s - v)).sum();
            sum += c * (-self.gamma * d2).exp();
        }
        let svr = sum - self.rho;
        let mut score = (svr - self.out_intercept) / self.out_slope;
        if let Some((lo, hi)) = self.clip {
            score = score.clamp(lo, hi);
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_models_parse() {
        let m = Model::v0_6_1();
        assert_eq!(m.coef.len(), 211);
        assert_eq!(m.features.len(), 6);
        assert_eq!(Model::v0_6_1_4k().features.len(), 6);
    }

    #[test]
    fn perfect_features_score_near_the_top() {
        let m = Model::v0_6_1();
        let f = Features { adm2: 1.0, motion2: 0.0, vif: [1.0; 4] };
        let s = m.predict(&f);
        assert!(s > 95.0 && s <= 100.0, "{s}");
    }

    /// Features and scores libvmaf logged for the sparks pair (10-bit).
    #[test]
    fn predicts_libvmafs_scores_from_its_features() {
        let m = Model::v0_6_1();
        let rows = [
            (0.997872, 0.0, [0.933186, 0.997187, 0.998732, 0.999293], 96.810731),
            (0.997654, 0.775779, [0.911721, 0.995613, 0.99812, 0.998787], 97.743088),
            (0.998644, 1.099834, [0.91521, 0.996604, 0.998774, 0.999551], 98.496271),
        ];
        for (adm2, motion2, vif, want) in rows {
            let got = m.predict(&Features { adm2, motion2, vif });
            assert!((got - want).abs() < 0.005, "{got} vs {want}");
        }
    }

    #[test]
    fn rejects_float_feature_models() {
        let text = include_str!("../model/vmaf_v0.6.1.json").replace("VMAF_integer_feature_adm2_score", "VMAF_feature_adm2_score");
        let err = Model::from_json("x", &text).unwrap_err();
        assert!(err.to_string().contains("VMAF_feature_adm2_score"), "{err}");
    }
}
