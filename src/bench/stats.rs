//! Descriptive statistics of per-launch timings (the user's methodology: many timed
//! repetitions after discarded warm-ups, reported as mean, median and tail percentiles),
//! and the bootstrap confidence interval of a ratio of medians used for speedups and
//! regressions.
//!
//! Bootstrap method (percentile bootstrap, Efron & Tibshirani ch. 13): each of
//! [`BOOTSTRAP_RESAMPLES`] resamples draws `n` values with replacement from each of the
//! two per-launch samples independently, takes the ratio of the two resampled medians,
//! and the 2.5th and 97.5th percentiles of those ratios bound the 95% interval. The RNG
//! is seeded with [`BOOTSTRAP_SEED`], so a report always gives the same interval.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Bootstrap resamples per interval: 2000 puts the Monte-Carlo error of a 2.5% tail
/// percentile near 0.35% of the resamples (binomial, sqrt(p(1-p)/B)), well under the
/// thresholds (3%) the verdicts use.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// Fixed RNG seed of the bootstrap: a report re-rendered, or compared twice, gives the
/// same intervals.
pub const BOOTSTRAP_SEED: u64 = 0x5eed_b007;

/// Confidence level of every interval this module computes.
pub const CONFIDENCE: f64 = 0.95;

/// Summary of a sample of per-launch times in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Number of timed samples.
    pub n: usize,
    /// Arithmetic mean, µs.
    pub mean_us: f64,
    /// Sample standard deviation, µs.
    pub std_us: f64,
    /// Minimum, µs.
    pub min_us: f64,
    /// Median, µs.
    pub p50_us: f64,
    /// 90th percentile, µs.
    pub p90_us: f64,
    /// 95th percentile, µs.
    pub p95_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Maximum, µs.
    pub max_us: f64,
    /// Coefficient of variation (std / mean).
    pub cv: f64,
}

/// The `q`-quantile (0..=1) of sorted data, linearly interpolated between order
/// statistics (the "type 7" definition of R and NumPy's default).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

impl Summary {
    /// Summarizes `samples_us`; `None` for an empty sample or one holding NaN.
    pub fn from_samples(samples_us: &[f64]) -> Option<Summary> {
        if samples_us.is_empty() || samples_us.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = samples_us.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let var = if n > 1 { sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
        let std = var.sqrt();
        Some(Summary {
            n,
            mean_us: mean,
            std_us: std,
            min_us: sorted[0],
            p50_us: quantile_sorted(&sorted, 0.50),
            p90_us: quantile_sorted(&sorted, 0.90),
            p95_us: quantile_sorted(&sorted, 0.95),
            p99_us: quantile_sorted(&sorted, 0.99),
            max_us: sorted[n - 1],
            cv: if mean > 0.0 { std / mean } else { 0.0 },
        })
    }
}

/// A ratio of medians with its bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RatioCi {
    /// median(numerator) / median(denominator) of the full samples.
    pub ratio: f64,
    /// Lower bound of the 95% percentile-bootstrap interval.
    pub ci_low: f64,
    /// Upper bound of the 95% percentile-bootstrap interval.
    pub ci_high: f64,
}

fn median_of(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    quantile_sorted(values, 0.5)
}

/// median(`numerator_us`) / median(`denominator_us`) with a 95% percentile-bootstrap
/// interval (see the module documentation); `None` when either sample is empty, holds a
/// NaN, or has a median of zero.
pub fn ratio_of_medians_ci(numerator_us: &[f64], denominator_us: &[f64]) -> Option<RatioCi> {
    let clean = |s: &[f64]| !s.is_empty() && s.iter().all(|v| v.is_finite());
    if !clean(numerator_us) || !clean(denominator_us) {
        return None;
    }
    let ratio = median_of(&mut numerator_us.to_vec()) / median_of(&mut denominator_us.to_vec());
    if !ratio.is_finite() {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(BOOTSTRAP_SEED);
    let mut num = vec![0.0; numerator_us.len()];
    let mut den = vec![0.0; denominator_us.len()];
    let mut ratios = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        for v in num.iter_mut() {
            *v = numerator_us[rng.random_range(0..numerator_us.len())];
        }
        for v in den.iter_mut() {
            *v = denominator_us[rng.random_range(0..denominator_us.len())];
        }
        let r = median_of(&mut num) / median_of(&mut den);
        if r.is_finite() {
            ratios.push(r);
        }
    }
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    Some(RatioCi { ratio, ci_low: quantile_sorted(&ratios, tail), ci_high: quantile_sorted(&ratios, 1.0 - tail) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let data: Vec<f64> = (1..=101).map(f64::from).collect();
        let s = Summary::from_samples(&data).unwrap();
        assert_eq!(s.p50_us, 51.0);
        assert_eq!(s.p95_us, 96.0);
        assert_eq!(s.p99_us, 100.0);
        assert_eq!((s.min_us, s.max_us), (1.0, 101.0));
        assert!((s.mean_us - 51.0).abs() < 1e-12);
        assert_eq!(quantile_sorted(&[1.0, 2.0], 0.25), 1.25);
    }

    #[test]
    fn ratio_ci_brackets_a_planted_ratio_and_is_deterministic() {
        let base: Vec<f64> = (0..200).map(|i| 100.0 + (i % 7) as f64 * 0.1).collect();
        let slow: Vec<f64> = base.iter().map(|v| v * 1.10).collect();
        let ci = ratio_of_medians_ci(&slow, &base).unwrap();
        assert!((ci.ratio - 1.10).abs() < 1e-9, "{ci:?}");
        assert!(ci.ci_low <= ci.ratio && ci.ratio <= ci.ci_high, "{ci:?}");
        assert!(ci.ci_low > 1.09 && ci.ci_high < 1.11, "{ci:?}");
        assert_eq!(ratio_of_medians_ci(&slow, &base), Some(ci));
        assert!(ratio_of_medians_ci(&[], &base).is_none());
        assert!(ratio_of_medians_ci(&base, &[0.0]).is_none());
    }

    #[test]
    fn empty_or_nan_samples_have_no_summary() {
        assert!(Summary::from_samples(&[]).is_none());
        assert!(Summary::from_samples(&[1.0, f64::NAN]).is_none());
    }
}
