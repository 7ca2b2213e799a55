//! `qk bench compare` on fixtures with planted changes: a clear 10% slowdown at one point
//! must be a regression, a 0.5% shift inside the noise at another must be unchanged, and
//! nothing else may be flagged.

use std::path::{Path, PathBuf};
use std::process::Command;

use qkernels::bench::compare::{compare, CompareError, Verdict, DEFAULT_THRESHOLD};
use qkernels::bench::report::Report;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn qk(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_qk")).args(args).output().unwrap()
}

#[test]
fn planted_changes_get_exactly_their_verdicts() {
    let base = Report::load(&fixture("bench_base.json")).unwrap();
    let new = Report::load(&fixture("bench_new.json")).unwrap();
    let points = compare(&base, &new, DEFAULT_THRESHOLD, false).unwrap();
    assert_eq!(points.len(), base.results.len());
    let at = |k: &str, m: u64| points.iter().find(|p| p.kernel == k && p.m == m).unwrap();
    let slow = at("w8a8", 16);
    assert_eq!(slow.verdict, Verdict::Regression, "{slow:?}");
    assert!((slow.ratio - 1.10).abs() < 0.02 && slow.ci_low > 1.03, "{slow:?}");
    let shifted = at("cublas_fp16", 16);
    assert_eq!(shifted.verdict, Verdict::Unchanged, "{shifted:?}");
    let flagged: Vec<_> = points.iter().filter(|p| p.verdict != Verdict::Unchanged).collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    // Reversed, the slowdown is an improvement.
    let back = compare(&new, &base, DEFAULT_THRESHOLD, false).unwrap();
    assert_eq!(back.iter().find(|p| p.kernel == "w8a8" && p.m == 16).unwrap().verdict, Verdict::Improvement);
}

#[test]
fn different_gpus_are_refused_unless_forced() {
    let base = Report::load(&fixture("bench_base.json")).unwrap();
    let mut new = Report::load(&fixture("bench_new.json")).unwrap();
    new.env.gpu_name = Some("NVIDIA H200".into());
    new.env.driver_version = Some("575.1".into());
    let err = compare(&base, &new, DEFAULT_THRESHOLD, false).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("gpu_name") && text.contains("driver_version"), "{text}");
    assert!(compare(&base, &new, DEFAULT_THRESHOLD, true).is_ok());
}

#[test]
fn no_common_points_is_an_error() {
    let base = Report::load(&fixture("bench_base.json")).unwrap();
    let mut other = Report::load(&fixture("bench_minimal.json")).unwrap();
    assert!(compare(&base, &other, DEFAULT_THRESHOLD, false).is_ok(), "M = 1 is common");
    other.results.iter_mut().for_each(|r| r.n = 1234);
    assert_eq!(compare(&base, &other, DEFAULT_THRESHOLD, false).unwrap_err(), CompareError::NoCommonPoints);
}

#[test]
fn cli_json_output_and_exit_codes() {
    let base = fixture("bench_base.json");
    let new = fixture("bench_new.json");
    let (b, n) = (base.to_str().unwrap(), new.to_str().unwrap());
    let out = qk(&["bench", "compare", b, n, "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arr = v.as_array().unwrap();
    let keys: Vec<&str> = arr[0].as_object().unwrap().keys().map(|k| k.as_str()).collect();
    for k in ["kernel", "m", "n", "k", "ratio", "ci_low", "ci_high", "verdict"] {
        assert!(keys.contains(&k), "{keys:?}");
    }
    assert_eq!(arr.iter().filter(|p| p["verdict"] == "regression").count(), 1);

    assert_eq!(qk(&["bench", "compare", b, n, "--fail-on-regression"]).status.code(), Some(3));
    assert_eq!(qk(&["bench", "compare", b, b, "--fail-on-regression"]).status.code(), Some(0));
    // A huge threshold hides the slowdown.
    assert_eq!(qk(&["bench", "compare", b, n, "--threshold", "0.5", "--fail-on-regression"]).status.code(), Some(0));
}

#[test]
fn cli_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.json");
    let text = std::fs::read_to_string(fixture("bench_base.json")).unwrap();
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, "{\"schema\": \"other/9\", \"results\": []}").unwrap();
    let disjoint = dir.path().join("disjoint.json");
    std::fs::write(
        &disjoint,
        r#"{"schema": "qk-bench/1", "results": [{"kernel": "w8a8", "m": 3, "n": 5, "k": 7, "samples_us": [1.0]}]}"#,
    )
    .unwrap();
    let base = fixture("bench_base.json");
    for (a, b) in [(&base, &truncated), (&wrong, &base), (&base, &disjoint)] {
        let out = qk(&["bench", "compare", a.to_str().unwrap(), b.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("qk: error: "), "{err}");
    }
}

#[test]
fn a_changed_launch_plan_is_marked_and_both_plans_listed() {
    let mut base = Report::load(&fixture("bench_base.json")).unwrap();
    let mut new = Report::load(&fixture("bench_new.json")).unwrap();
    // Fixtures without plans: nothing is marked.
    let points = compare(&base, &new, DEFAULT_THRESHOLD, false).unwrap();
    assert!(points.iter().all(|p| p.replanned.is_none()));
    let set = |r: &mut Report, kernel: &str, m: u64, plan: &str| {
        r.results.iter_mut().find(|x| x.kernel == kernel && x.m == m).unwrap().plan = Some(plan.into());
    };
    set(&mut base, "w8a8", 16, "Small grid [64, 1, 5] splits 5");
    set(&mut new, "w8a8", 16, "Small grid [64, 1, 4] splits 4");
    // Same plan on both sides, or a plan on one side only: not a change.
    set(&mut base, "w8a8", 1, "Small grid [64, 1, 8] splits 8");
    set(&mut new, "w8a8", 1, "Small grid [64, 1, 8] splits 8");
    set(&mut base, "cublas_fp16", 16, "only in base");
    let points = compare(&base, &new, DEFAULT_THRESHOLD, false).unwrap();
    let marked: Vec<_> = points.iter().filter(|p| p.replanned.is_some()).collect();
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert_eq!((marked[0].kernel.as_str(), marked[0].m), ("w8a8", 16));
    let table = qkernels::bench::compare::text_table(&points);
    assert_eq!(table.lines().filter(|l| l.starts_with("w8a8") && l.ends_with("  replanned")).count(), 1, "{table}");
    assert!(
        table.contains("  base: Small grid [64, 1, 5] splits 5\n  new:  Small grid [64, 1, 4] splits 4"),
        "{table}"
    );
}
