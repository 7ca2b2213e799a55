//! Descriptive statistics of per-launch timings (the user's methodology: many timed
//! repetitions after discarded warm-ups, reported as mean, median and tail percentiles).

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
    fn empty_or_nan_samples_have_no_summary() {
        assert!(Summary::from_samples(&[]).is_none());
        assert!(Summary::from_samples(&[1.0, f64::NAN]).is_none());
    }
}
