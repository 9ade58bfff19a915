//! The learned model: logistic regression over standardised per-server features, calibrated.
//!
//! Trained by `botscope flow train` (linfa's logistic regression) and stored as plain JSON, so
//! a reviewer can read the weights; inference is a dot product. Two things keep the score a
//! probability that ranks on traffic unlike the training's:
//!
//! - Standardised features are clipped to ±[`CLIP`]: one feature far outside anything seen in
//!   training (a flood's packet rate, a server with ten thousand bots) moves the score as much as
//!   a large training value does, not without bound. Shares (the graph score, the bot and
//!   returning shares, bounded in 0..1) cannot run away and are clipped only at ±[`SHARE_CLIP`]
//!   from format 3 on: the 4 sd clip made one known bot among five clients read like one among
//!   fifty.
//! - Platt scaling: the logit is mapped through `sigmoid(a·z + b)`, with `a` and `b` fitted on
//!   out-of-fold logits (each training input scored by a model fitted without it) and Platt's
//!   smoothed targets. A logistic regression fitted on separable data is overconfident; fitted
//!   this way the score says how often such servers were C&C in inputs the weights never saw.

use serde::{Deserialize, Serialize};

use super::features::{EXPECTED_SIGN, NAMES, SHARE};

/// The shipped model, trained on lab ISPs (see `docs/flow.md`).
const SHIPPED: &str = include_str!("../../../../data/flow-model.json");

/// Standardised features are clipped to this many standard deviations.
pub const CLIP: f64 = 4.0;

/// Shares, bounded by construction, are clipped only this far: a model retrained on data where a
/// share hardly varies would otherwise turn it into hundreds of standard deviations. (The shipped
/// model's widest share term is the graph score's, at -7.5.)
pub const SHARE_CLIP: f64 = 3.0 * CLIP;

/// The model format this build writes: 3 leaves shares unclipped. Format 2 files (every feature
/// clipped) are still read and scored as they were trained.
pub const FORMAT: u32 = 3;

/// A trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Format version (2: calibrated, every feature clipped; 3: shares unclipped).
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
    /// Platt scaling `[a, b]`: the score is `sigmoid(a * logit + b)` (`[1, 0]` is none).
    #[serde(default = "identity")]
    pub calibration: [f64; 2],
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

fn identity() -> [f64; 2] {
    [1.0, 0.0]
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Model {
    /// The model shipped in `data/flow-model.json`.
    pub fn shipped() -> Result<Self, ModelError> {
        Self::from_json(SHIPPED)
    }

    /// A model that knows nothing (every weight 0, every score 0.5), for gathering training rows
    /// when no model for the analyser's features exists yet: the rows do not depend on it.
    pub fn untrained() -> Self {
        let n = NAMES.len();
        Model {
            version: FORMAT,
            features: NAMES.iter().map(|n| (*n).to_string()).collect(),
            mean: vec![0.0; n],
            scale: vec![1.0; n],
            weights: vec![0.0; n],
            bias: 0.0,
            calibration: identity(),
            trained_on: String::new(),
        }
    }

    /// Reads and checks a model.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let model: Model = serde_json::from_str(text)?;
        if !(2..=FORMAT).contains(&model.version) {
            return Err(ModelError::Inconsistent("unknown model format (this build reads 2 and 3)"));
        }
        if model.features.iter().map(String::as_str).ne(NAMES.iter().copied()) {
            return Err(ModelError::Features { expected: NAMES.join(","), found: model.features.join(",") });
        }
        let n = NAMES.len();
        if model.mean.len() != n || model.scale.len() != n || model.weights.len() != n {
            return Err(ModelError::Inconsistent("mean, scale and weights need one value per feature"));
        }
        let finite = model.mean.iter().chain(&model.scale).chain(&model.weights).all(|v| v.is_finite());
        let calibrated = model.calibration.iter().all(|v| v.is_finite()) && model.calibration[0] > 0.0;
        if !finite || !model.bias.is_finite() || !calibrated || model.scale.iter().any(|s| *s <= 0.0) {
            return Err(ModelError::Inconsistent(
                "values must be finite, scales positive and the calibration slope positive",
            ));
        }
        Ok(model)
    }

    /// Feature `j`'s standardised value, clipped (shares only at [`SHARE_CLIP`] from format 3 on);
    /// an unknown (NaN) one counts as average.
    fn standardised(version: u32, j: usize, x: f64, mean: f64, scale: f64) -> f64 {
        if x.is_nan() {
            return 0.0;
        }
        let z = (x - mean) / scale;
        let clip = if version >= 3 && SHARE[j] { SHARE_CLIP } else { CLIP };
        z.clamp(-clip, clip)
    }

    /// Feature `j`'s standardised value times its weight.
    fn term(&self, j: usize, x: f64) -> f64 {
        self.weights[j] * Self::standardised(self.version, j, x, self.mean[j], self.scale[j])
    }

    /// The uncalibrated logit: what the ranking follows.
    pub fn logit(&self, features: &[f64]) -> f64 {
        let z: f64 = self.bias + features.iter().enumerate().map(|(j, x)| self.term(j, *x)).sum::<f64>();
        // A NaN feature (none should reach here) gives no confidence at all.
        if z.is_nan() { f64::NEG_INFINITY } else { z }
    }

    /// The calibrated probability that a server with these features is a C&C server.
    pub fn score(&self, features: &[f64]) -> f64 {
        let z = self.logit(features);
        if z == f64::NEG_INFINITY {
            return 0.0;
        }
        sigmoid(self.calibration[0] * z + self.calibration[1])
    }

    /// The feature that pulled this score down most, with its contribution (on the logit).
    pub fn bottom_contribution(&self, features: &[f64]) -> Option<(&'static str, f64)> {
        self.contributions(features).into_iter().min_by(|a, b| a.1.total_cmp(&b.1))
    }

    fn contributions(&self, features: &[f64]) -> Vec<(&'static str, f64)> {
        NAMES
            .iter()
            .zip(features)
            .enumerate()
            .map(|(j, (name, x))| (*name, self.calibration[0] * self.term(j, *x)))
            .collect()
    }

    /// The features that pushed this score up most, with their contributions.
    pub fn top_contributions(&self, features: &[f64], k: usize) -> Vec<(&'static str, f64)> {
        let mut parts = self.contributions(features);
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts.truncate(k);
        parts
    }

    /// Fits a model to labelled feature rows with linfa's logistic regression (L2 penalty
    /// `alpha`) and calibrates it. `groups` names each row's input (one flow file): the
    /// calibration is fitted on logits of each group scored by a model fitted without it, so
    /// at least two groups with C&C rows are needed for it; with fewer, the model stays
    /// uncalibrated (`[1, 0]`).
    pub fn train(
        rows: &[Vec<f64>],
        labels: &[bool],
        groups: &[usize],
        alpha: f64,
        trained_on: String,
    ) -> Result<Self, ModelError> {
        if groups.len() != rows.len() {
            return Err(ModelError::Training("one group per row is needed".into()));
        }
        let mut model = Self::fit(rows, labels, alpha, trained_on)?;
        let mut names: Vec<usize> = groups.to_vec();
        names.sort_unstable();
        names.dedup();
        let mut held_out: Vec<(f64, bool)> = Vec::new();
        for group in &names {
            let (mut train_rows, mut train_labels) = (Vec::new(), Vec::new());
            for ((row, label), g) in rows.iter().zip(labels).zip(groups) {
                if g != group {
                    train_rows.push(row.clone());
                    train_labels.push(*label);
                }
            }
            // A fold without both classes cannot be fitted; it adds no calibration rows.
            let Ok(fold) = Self::fit(&train_rows, &train_labels, alpha, String::new()) else {
                continue;
            };
            for ((row, label), g) in rows.iter().zip(labels).zip(groups) {
                if g == group {
                    held_out.push((fold.logit(row), *label));
                }
            }
        }
        let folds_with_cnc = names.iter().filter(|g| groups.iter().zip(labels).any(|(h, l)| h == *g && *l)).count();
        if folds_with_cnc >= 2 {
            model.calibration = platt(&held_out);
        }
        Ok(model)
    }

    fn fit(rows: &[Vec<f64>], labels: &[bool], alpha: f64, trained_on: String) -> Result<Self, ModelError> {
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
        // Means and spreads over the known values (unknown, NaN, ones are left out), with both
        // classes weighing the same: most rows are scan targets, and a spread taken over them
        // would be so narrow that the clip put a C&C poll and a flood at the same +4 sd.
        let (mut mean, mut scale) = (vec![0.0; n], vec![1.0; n]);
        for j in 0..n {
            let class = |want: bool| -> Option<(f64, f64)> {
                let values: Vec<f64> = rows
                    .iter()
                    .zip(labels)
                    .filter(|(_, l)| **l == want)
                    .map(|(r, _)| r[j])
                    .filter(|v| !v.is_nan())
                    .collect();
                if values.is_empty() {
                    return None;
                }
                let m = values.iter().sum::<f64>() / values.len() as f64;
                Some((m, values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len() as f64))
            };
            let (m, var) = match (class(true), class(false)) {
                (Some((m1, v1)), Some((m0, v0))) => {
                    let m = (m1 + m0) / 2.0;
                    (m, (v1 + (m1 - m).powi(2) + v0 + (m0 - m).powi(2)) / 2.0)
                }
                (Some(one), None) | (None, Some(one)) => one,
                (None, None) => (0.0, 1.0),
            };
            mean[j] = m;
            scale[j] = if var.sqrt() > 1e-9 { var.sqrt() } else { 1.0 };
        }
        let mut records = ndarray::Array2::<f64>::zeros((rows.len(), n));
        for (i, row) in rows.iter().enumerate() {
            for j in 0..n {
                records[[i, j]] = Self::standardised(FORMAT, j, row[j], mean[j], scale[j]);
            }
        }
        let targets = ndarray::Array1::from_iter(labels.iter().copied());
        // Features whose weight came out against what is known of them are left out and the rest
        // refitted, one at a time (see `features::EXPECTED_SIGN`).
        let mut left_out = vec![false; n];
        loop {
            let mut columns = records.clone();
            for (j, out) in left_out.iter().enumerate() {
                if *out {
                    columns.column_mut(j).fill(0.0);
                }
            }
            let dataset = Dataset::new(columns, targets.clone());
            let fitted = LogisticRegression::default()
                .alpha(alpha)
                .max_iterations(300)
                .fit(&dataset)
                .map_err(|e| ModelError::Training(e.to_string()))?;
            let mut model = Model {
                version: FORMAT,
                features: NAMES.iter().map(|s| s.to_string()).collect(),
                mean: mean.clone(),
                scale: scale.clone(),
                weights: fitted.params().to_vec(),
                bias: fitted.intercept(),
                calibration: identity(),
                trained_on: trained_on.clone(),
            };
            for (w, out) in model.weights.iter_mut().zip(&left_out) {
                if *out {
                    *w = 0.0;
                }
            }
            // linfa orders the two classes itself; make sure the score is that of "C&C".
            let average = |want: bool| {
                let picked: Vec<f64> =
                    rows.iter().zip(labels).filter(|(_, l)| **l == want).map(|(r, _)| model.logit(r)).collect();
                picked.iter().sum::<f64>() / picked.len() as f64
            };
            if average(true) < average(false) {
                model.weights.iter_mut().for_each(|w| *w = -*w);
                model.bias = -model.bias;
            }
            let wrong = model
                .weights
                .iter()
                .zip(EXPECTED_SIGN)
                .enumerate()
                .filter(|(_, (w, sign))| **w * f64::from(*sign) < 0.0)
                .max_by(|a, b| a.1.0.abs().total_cmp(&b.1.0.abs()))
                .map(|(j, _)| j);
            match wrong {
                Some(j) if !left_out[j] => left_out[j] = true,
                _ => return Ok(model),
            }
        }
    }
}

/// Platt's fit of `sigmoid(a·z + b)` to `(logit, label)` pairs, by Newton's method on the log
/// loss with his smoothed targets (`(N₊+1)/(N₊+2)` and `1/(N₋+2)`), which keep a separable set
/// from driving `a` to infinity. Falls back to `[1, 0]` if the fit does not converge to a
/// positive slope.
pub fn platt(points: &[(f64, bool)]) -> [f64; 2] {
    let positives = points.iter().filter(|(_, y)| *y).count() as f64;
    let negatives = points.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return identity();
    }
    let hi = (positives + 1.0) / (positives + 2.0);
    let lo = 1.0 / (negatives + 2.0);
    let points: Vec<(f64, f64)> =
        points.iter().filter(|(z, _)| z.is_finite()).map(|(z, y)| (*z, if *y { hi } else { lo })).collect();
    // The negative log-likelihood, computed stably from the logit.
    let loss = |a: f64, b: f64| -> f64 {
        points
            .iter()
            .map(|(z, t)| {
                let f = a * z + b;
                // log(1 + e^f) - t f, without overflow either way.
                let soft = if f > 0.0 { f + (-f).exp().ln_1p() } else { f.exp().ln_1p() };
                soft - t * f
            })
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 0.0f64);
    let mut current = loss(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
        for (z, t) in &points {
            let p = sigmoid(a * z + b);
            let d = p - t;
            let w = (p * (1.0 - p)).max(1e-12);
            ga += d * z;
            gb += d;
            haa += w * z * z;
            hab += w * z;
            hbb += w;
        }
        if ga.abs() < 1e-9 && gb.abs() < 1e-9 {
            break;
        }
        let det = haa * hbb - hab * hab;
        if det <= 0.0 {
            break;
        }
        let da = -(hbb * ga - hab * gb) / det;
        let db = -(haa * gb - hab * ga) / det;
        // Backtracking: halve the Newton step until the loss falls enough (Armijo).
        let mut step = 1.0;
        let slope = ga * da + gb * db;
        let mut moved = false;
        while step >= 1e-10 {
            let (na, nb) = (a + step * da, b + step * db);
            let next = loss(na, nb);
            if next <= current + 1e-4 * step * slope {
                a = na;
                b = nb;
                current = next;
                moved = true;
                break;
            }
            step /= 2.0;
        }
        if !moved || (step * da).abs() < 1e-10 && (step * db).abs() < 1e-10 {
            break;
        }
    }
    if a.is_finite() && b.is_finite() && a > 0.0 { [a, b] } else { identity() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_on_separable_points_stays_below_certainty() {
        let mut points: Vec<(f64, bool)> = (0..200).map(|i| (-10.0 - f64::from(i % 7), false)).collect();
        points.extend((0..20).map(|i| (10.0 + f64::from(i % 5), true)));
        let [a, b] = platt(&points);
        assert!(a > 0.0);
        let top = sigmoid(a * 14.0 + b);
        assert!(top < 1.0 && top > 0.9, "{top}");
        assert!(sigmoid(a * -16.0 + b) < 0.05);
    }

    #[test]
    fn platt_recovers_a_known_scaling() {
        // Labels drawn so that P(y | z) = sigmoid(0.5 z - 1): the fit comes back near (0.5, -1).
        let mut state = 7u64;
        let mut points = Vec::new();
        for i in 0..20_000 {
            let z = f64::from(i % 41) - 20.0;
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            points.push((z, u < sigmoid(0.5 * z - 1.0)));
        }
        let [a, b] = platt(&points);
        assert!((a - 0.5).abs() < 0.05 && (b + 1.0).abs() < 0.1, "{a} {b}");
    }

    #[test]
    fn a_weight_against_its_expected_sign_leaves_the_feature_out() {
        // Packet rate (expected: no higher for C&C) made to rise with the label here.
        let mut state = 3u64;
        let mut unit = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut rows, mut labels) = (Vec::new(), Vec::new());
        for i in 0..600 {
            let label = i % 5 == 0;
            let mut row: Vec<f64> = (0..NAMES.len()).map(|_| unit()).collect();
            row[0] = if label { 0.7 } else { 0.3 } + 0.4 * unit();
            row[6] = if label { 3.0 } else { 1.0 } + unit();
            rows.push(row);
            labels.push(label);
        }
        let groups = vec![0; rows.len()];
        let model = Model::train(&rows, &labels, &groups, 1.0, String::new()).unwrap();
        assert_eq!(NAMES[6], "log_packet_rate");
        assert_eq!(model.weights[6], 0.0);
        assert!(model.weights[0] > 0.0);
        // One group: nothing is held out, so no calibration.
        assert_eq!(model.calibration, [1.0, 0.0]);
    }

    #[test]
    fn a_feature_far_outside_training_moves_the_logit_a_bounded_amount() {
        let mut model = Model::shipped().unwrap();
        model.calibration = [1.0, 0.0];
        let row = model.mean.clone();
        let base = model.logit(&row);
        // Shares cannot leave 0..1, but a hand-made or narrow model must still stay bounded.
        for j in 0..NAMES.len() {
            let clip = if SHARE[j] { SHARE_CLIP } else { CLIP };
            for far in [1e12, -1e12] {
                let mut extreme = row.clone();
                extreme[j] = model.mean[j] + far * model.scale[j];
                let moved = (model.logit(&extreme) - base).abs();
                assert!(moved <= model.weights[j].abs() * clip + 1e-9, "{}: {moved}", NAMES[j]);
                // (A share 12 sd out is past what 0..1 allows and may reach f64's 1.0.)
                assert!(SHARE[j] || model.score(&extreme) < 1.0);
            }
        }
    }

    #[test]
    fn regression_one_known_bot_in_five_clients_outscores_one_in_fifty() {
        // With the graph score clipped at -4 sd (about 0.36 for the shipped model), a C&C with one
        // known bot among five clients scored like a web site with one among fifty (0.43 and 0.13
        // gave the same term), and such sites ranked above Torii's C&C.
        let model = Model::shipped().unwrap();
        assert!(model.version >= 3);
        let mut few = model.mean.clone();
        few[super::super::features::GRAPH_SCORE] = 0.43;
        let mut many = few.clone();
        many[super::super::features::GRAPH_SCORE] = 0.13;
        assert!(model.logit(&few) - model.logit(&many) > 1.0, "{} {}", model.logit(&few), model.logit(&many));
        // A format 2 model reads as it was trained: clipped.
        let mut old = model.clone();
        old.version = 2;
        let floor = old.mean[0] - CLIP * old.scale[0];
        let (mut at, mut below) = (few.clone(), few.clone());
        at[0] = floor;
        below[0] = floor - 0.1;
        assert_eq!(old.logit(&at), old.logit(&below));
    }

    #[test]
    fn unknown_model_formats_are_refused() {
        let mut model = Model::untrained();
        model.version = 4;
        let text = serde_json::to_string(&model).unwrap();
        assert!(matches!(Model::from_json(&text), Err(ModelError::Inconsistent(_))));
    }

    #[test]
    fn standardisation_weighs_both_classes_alike() {
        // 990 scan-target-like rows at 0 and 10 C&C rows at 10 in the first feature: the mean is
        // the midpoint of the classes, not 0.1, so a C&C is not pushed to the clip by default.
        let n = NAMES.len();
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..1000 {
            let cnc = i % 100 == 0;
            let mut row = vec![0.0; n];
            row[0] = if cnc { 10.0 } else { 0.0 };
            row[1] = f64::from(i % 7);
            rows.push(row);
            labels.push(cnc);
        }
        let groups = vec![0; rows.len()];
        let model = Model::train(&rows, &labels, &groups, 1.0, String::new()).unwrap();
        assert!((model.mean[0] - 5.0).abs() < 1e-9, "{}", model.mean[0]);
        assert!((model.scale[0] - 5.0).abs() < 1e-9, "{}", model.scale[0]);
        assert!(Model::standardised(FORMAT, 0, 10.0, model.mean[0], model.scale[0]) < CLIP);
    }

    #[test]
    fn the_untrained_model_knows_nothing_and_reads_back() {
        let model = Model::untrained();
        assert_eq!(model.score(&vec![3.0; NAMES.len()]), 0.5);
        let back = Model::from_json(&serde_json::to_string(&model).unwrap()).unwrap();
        assert_eq!(back, model);
    }
}
