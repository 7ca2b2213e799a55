//! `qk bench compare BASE NEW`: per point present in both reports (matched by kernel, m,
//! n, k), the ratio NEW/BASE of median per-launch times with a bootstrap 95% CI, and a
//! verdict: `regression` when the whole CI lies above 1 + threshold, `improvement` when it
//! lies below 1 − threshold, else `unchanged`. A shift inside the noise, or smaller than
//! the threshold, is therefore never flagged.

use serde::Serialize;

use super::report::Report;
use super::stats::ratio_of_medians_ci;

/// Default relative threshold of a verdict (3%: clock drift alone moves medians by a
/// percent or two between runs, see style-anchors' criterion notes).
pub const DEFAULT_THRESHOLD: f64 = 0.03;

/// A verdict on one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// NEW is slower beyond the threshold, with 95% confidence.
    Regression,
    /// NEW is faster beyond the threshold, with 95% confidence.
    Improvement,
    /// Neither.
    Unchanged,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::Unchanged => "unchanged",
        })
    }
}

/// The comparison of one point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointComparison {
    /// Kernel.
    pub kernel: String,
    /// M.
    pub m: u64,
    /// N.
    pub n: u64,
    /// K.
    pub k: u64,
    /// median(NEW) / median(BASE).
    pub ratio: f64,
    /// Lower bound of the bootstrap 95% CI of the ratio.
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// `(base plan, new plan)` when both runs recorded a launch plan for the point and
    /// the plans differ: the time changed with the plan, not (only) with the kernel.
    pub replanned: Option<(String, String)>,
}

/// Why two reports cannot be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompareError {
    /// Different GPU, driver or clock state.
    #[error("the runs differ in {0} (use --force to compare anyway)")]
    Incompatible(String),
    /// No (kernel, m, n, k) point has samples in both.
    #[error("the reports have no common points with samples (matched by kernel, m, n, k)")]
    NoCommonPoints,
}

/// The verdict of a ratio CI against `threshold`.
pub fn verdict(ci_low: f64, ci_high: f64, threshold: f64) -> Verdict {
    if ci_low > 1.0 + threshold {
        Verdict::Regression
    } else if ci_high < 1.0 - threshold {
        Verdict::Improvement
    } else {
        Verdict::Unchanged
    }
}

/// Compares `new` against `base` (see the module documentation). Unless `force`, runs
/// whose environments differ in GPU, driver or clock state are refused, naming the fields.
pub fn compare(base: &Report, new: &Report, threshold: f64, force: bool) -> Result<Vec<PointComparison>, CompareError> {
    let diffs = base.env.incompatibilities(&new.env);
    if !force && !diffs.is_empty() {
        let named: Vec<String> = diffs.iter().map(|(f, a, b)| format!("{f} ({a:?} vs {b:?})")).collect();
        return Err(CompareError::Incompatible(named.join(", ")));
    }
    let mut out = Vec::new();
    for b in &base.results {
        let Some(n) = new.results.iter().find(|n| n.key() == b.key()) else { continue };
        let Some(ci) = ratio_of_medians_ci(&n.samples_us, &b.samples_us) else { continue };
        out.push(PointComparison {
            kernel: b.kernel.clone(),
            m: b.m,
            n: b.n,
            k: b.k,
            ratio: ci.ratio,
            ci_low: ci.ci_low,
            ci_high: ci.ci_high,
            verdict: verdict(ci.ci_low, ci.ci_high, threshold),
            replanned: match (&b.plan, &n.plan) {
                (Some(bp), Some(np)) if bp != np => Some((bp.clone(), np.clone())),
                _ => None,
            },
        });
    }
    if out.is_empty() {
        return Err(CompareError::NoCommonPoints);
    }
    Ok(out)
}

/// The text table of a comparison; points whose launch plan changed are marked
/// `replanned` and their two plans listed after the table.
pub fn text_table(points: &[PointComparison]) -> String {
    let mut s =
        format!("{:<16} {:>6} {:>7} {:>7} {:>8} {:>18}  verdict\n", "kernel", "m", "n", "k", "new/base", "95% CI");
    for p in points {
        s += &format!(
            "{:<16} {:>6} {:>7} {:>7} {:>8.4} {:>18}  {}{}\n",
            p.kernel,
            p.m,
            p.n,
            p.k,
            p.ratio,
            format!("[{:.4}, {:.4}]", p.ci_low, p.ci_high),
            p.verdict,
            if p.replanned.is_some() { "  replanned" } else { "" }
        );
    }
    for p in points {
        if let Some((base, new)) = &p.replanned {
            s += &format!("replanned {} m={} n={} k={}:\n  base: {base}\n  new:  {new}\n", p.kernel, p.m, p.n, p.k);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_need_the_whole_interval_beyond_the_threshold() {
        assert_eq!(verdict(1.05, 1.12, 0.03), Verdict::Regression);
        assert_eq!(verdict(1.02, 1.12, 0.03), Verdict::Unchanged);
        assert_eq!(verdict(0.80, 0.96, 0.03), Verdict::Improvement);
        assert_eq!(verdict(0.80, 0.98, 0.03), Verdict::Unchanged);
    }
}
