//! The learned model: logistic regression over standardised per-server features.
//!
//! Trained by `botscope flow train` (linfa's logistic regression) and stored as plain JSON, so
//! a reviewer can read the weights; inference is a dot product.

use serde::{Deserialize, Serialize};

use super::features::NAMES;

/// The shipped model, trained on lab ISPs (see `docs/flow.md`).
const SHIPPED: &str = include_str!("../../../../data/flow-model.json");

/// A trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Format version (1).
    pub version: u32,
    /// Feature names, in order; must equal the analyser's.
    pub features: Vec<String>,
    /// Means used to standardise each feature.
    pub mean: Vec<f64>,
    /// Standard deviations used to standardise each feature.
    pub scale: Vec<f64>,
    /// Weights on the standardised features.
    pub weights: Vec<f64>,
    /// Intercept.
    pub bias: f64,
    /// What it was trained on, in words.
    #[serde(default)]
    pub trained_on: String,
}

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Not the model JSON.
    #[error("not a flow model: {0}")]
    Parse(#[from] serde_json::Error),
    /// Built for other features.
    #[error(
        "the model's features ({found}) differ from this analyser's ({expected}); retrain with `botscope flow train`"
    )]
    Features {
        /// What the analyser computes.
        expected: String,
        /// What the file names.
        found: String,
    },
    /// Lengths or numbers that do not fit.
    #[error("inconsistent model: {0}")]
    Inconsistent(&'static str),
    /// Training could not proceed.
    #[error("cannot train: {0}")]
    Training(String),
}

impl Model {
    /// The model shipped in `data/flow-model.json`.
    pub fn shipped() -> Result<Self, ModelError> {
        Self::from_json(SHIPPED)
    }

    /// Reads and checks a model.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let model: Model = serde_json::from_str(text)?;
        if model.features.iter().map(String::as_str).ne(NAMES.iter().copied()) {
            return Err(ModelError::Features { expected: NAMES.join(","), found: model.features.join(",") });
        }
        let n = NAMES.len();
        if model.mean.len() != n || model.scale.len() != n || model.weights.len() != n {
            return Err(ModelError::Inconsistent("mean, scale and weights need one value per feature"));
        }
        let finite = model.mean.iter().chain(&model.scale).chain(&model.weights).all(|v| v.is_finite());
        if !finite || !model.bias.is_finite() || model.scale.iter().any(|s| *s <= 0.0) {
            return Err(ModelError::Inconsistent("values must be finite and scales positive"));
        }
        Ok(model)
    }

    /// The probability that a server with these features is a C&C server.
    pub fn score(&self, features: &[f64]) -> f64 {
        let z: f64 = self.bias
            + features
                .iter()
                .zip(&self.mean)
                .zip(&self.scale)
                .zip(&self.weights)
                .map(|(((x, m), s), w)| w * (x - m) / s)
                .sum::<f64>();
        // Opposing infinite terms cancel to NaN; such a server is given no confidence at all.
        if z.is_nan() {
            return 0.0;
        }
        1.0 / (1.0 + (-z).exp())
    }

    /// The features that pushed this score up most, with their contributions.
    pub fn top_contributions(&self, features: &[f64], k: usize) -> Vec<(&'static str, f64)> {
        let mut parts: Vec<(&'static str, f64)> = NAMES
            .iter()
            .zip(features.iter().zip(&self.mean).zip(&self.scale).zip(&self.weights))
            .map(|(name, (((x, m), s), w))| (*name, w * (x - m) / s))
            .collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts.truncate(k);
        parts
    }

    /// Fits a model to labelled feature rows with linfa's logistic regression (L2 penalty
    /// `alpha`).
    pub fn train(rows: &[Vec<f64>], labels: &[bool], alpha: f64, trained_on: String) -> Result<Self, ModelError> {
        use linfa::prelude::*;
        use linfa_logistic::LogisticRegression;
        let n = NAMES.len();
        if rows.is_empty() || rows.len() != labels.len() || rows.iter().any(|r| r.len() != n) {
            return Err(ModelError::Training("no rows, or rows of the wrong width".into()));
        }
        let positives = labels.iter().filter(|l| **l).count();
        if positives == 0 || positives == labels.len() {
            return Err(ModelError::Training(format!(
                "need both classes; got {positives} C&C rows of {}",
                labels.len()
            )));
        }
        let count = rows.len() as f64;
        let mean: Vec<f64> = (0..n).map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / count).collect();
        let scale: Vec<f64> = (0..n)
            .map(|j| {
                let var = rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / count;
                if var.sqrt() > 1e-9 { var.sqrt() } else { 1.0 }
            })
            .collect();
        let mut records = ndarray::Array2::<f64>::zeros((rows.len(), n));
        for (i, row) in rows.iter().enumerate() {
            for j in 0..n {
                records[[i, j]] = (row[j] - mean[j]) / scale[j];
            }
        }
        let targets = ndarray::Array1::from_iter(labels.iter().copied());
        let dataset = Dataset::new(records, targets);
        let fitted = LogisticRegression::default()
            .alpha(alpha)
            .max_iterations(300)
            .fit(&dataset)
            .map_err(|e| ModelError::Training(e.to_string()))?;
        let mut model = Model {
            version: 1,
            features: NAMES.iter().map(|s| s.to_string()).collect(),
            mean,
            scale,
            weights: fitted.params().to_vec(),
            bias: fitted.intercept(),
            trained_on,
        };
        // linfa orders the two classes itself; make sure the score is that of "C&C".
        let average = |want: bool| {
            let picked: Vec<f64> =
                rows.iter().zip(labels).filter(|(_, l)| **l == want).map(|(r, _)| model.score(r)).collect();
            picked.iter().sum::<f64>() / picked.len() as f64
        };
        if average(true) < average(false) {
            model.weights.iter_mut().for_each(|w| *w = -*w);
            model.bias = -model.bias;
        }
        Ok(model)
    }
}
