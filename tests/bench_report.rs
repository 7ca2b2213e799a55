//! Bench reports without a GPU: reading `qk-bench/1` files (full and minimal), the
//! derived statistics, the markdown, and the SVG charts parsed as XML series by series.

use std::path::{Path, PathBuf};
use std::process::Command;

use qkernels::bench::env::Environment;
use qkernels::bench::render::{self, SERIES_STROKE_PX};
use qkernels::bench::report::{Report, ReportError};
use qkernels::bench::run::{self, BenchConfig};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn load(name: &str) -> Report {
    let mut r = Report::load(&fixture(name)).expect("fixture loads");
    r.analyze();
    r
}

#[test]
fn minimal_report_gets_every_derived_field() {
    let r = load("bench_minimal.json");
    let w8a8 = r.results.iter().find(|r| r.kernel == "w8a8" && r.m == 1).unwrap();
    let s = w8a8.stats.unwrap();
    assert_eq!((s.n, s.p50_us), (3, 6.0));
    assert!((w8a8.tflops.unwrap() - 2.0 * 4096.0 * 4096.0 / 6e-6 / 1e12).abs() < 1e-9);
    let sp = w8a8.speedup.unwrap();
    assert!((sp.ratio - 10.05 / 6.0).abs() < 1e-9, "{sp:?}");
    assert!(sp.ci_low <= sp.ratio && sp.ratio <= sp.ci_high);
    // No bytes, no calibration: unknown, not guessed.
    assert_eq!((w8a8.gbps, w8a8.roofline_pct), (None, None));
    let md = render::markdown(&r);
    assert!(md.contains("| gpu_name | unknown |"), "{md}");
    assert!(md.contains("| 1 | w8a8 | 6.00 |"), "{md}");
}

#[test]
fn full_report_has_roofline_and_tokens_per_second() {
    let r = load("bench_base.json");
    let peak = r.measured_fp16_peak_tflops().unwrap();
    let best = r.results.iter().filter(|x| x.kernel == "cublas_fp16").filter_map(|x| x.tflops).fold(0.0, f64::max);
    assert_eq!(peak, best);
    for x in r.results.iter().filter(|x| !x.is_layer()) {
        let pct = x.roofline_pct.unwrap();
        assert!(pct > 0.0 && pct <= 100.0 + 1e-9, "{} m={} {pct}", x.kernel, x.m);
    }
    // The fixture's decoder layers carry no byte counts: their roofline is unknown.
    assert!(r.results.iter().filter(|x| x.is_layer()).all(|x| x.roofline_pct.is_none()));
    let layer = r.results.iter().find(|x| x.kernel == "layer_w8a8" && x.m == 16).unwrap();
    let p50_s = layer.stats.unwrap().p50_us * 1e-6;
    assert!((layer.tokens_per_s.unwrap() - 16.0 / (p50_s * 32.0)).abs() < 1e-6);
    let md = render::markdown(&r);
    assert!(md.contains("Linear layers only"));
    assert!(md.contains("## Llama-3-8B o (K=4096, N=4096)"));
}

/// (legend names, data polylines as point counts, circles per fill color) of an SVG.
fn series_of(svg: &str) -> (Vec<String>, Vec<usize>, std::collections::BTreeMap<String, usize>) {
    let doc = roxmltree::Document::parse(svg).expect("chart is well-formed XML");
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect();
    let width = SERIES_STROKE_PX.to_string();
    let lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some(width.as_str()))
        .map(|n| n.attribute("points").unwrap_or("").split_whitespace().count())
        .collect();
    let mut circles = std::collections::BTreeMap::new();
    for c in doc.descendants().filter(|n| n.has_tag_name("circle")) {
        *circles.entry(c.attribute("fill").unwrap_or("").to_string()).or_insert(0) += 1;
    }
    (texts, lines, circles)
}

#[test]
fn charts_have_one_series_per_kernel_with_one_point_per_m() {
    let r = load("bench_base.json");
    let charts = render::charts(&r);
    let names: Vec<&str> = charts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "4096x4096_throughput.svg",
            "4096x4096_latency.svg",
            "4096x4096_speedup.svg",
            "layer_4096x14336_tokens_per_s.svg"
        ]
    );
    let svg = |name: &str| &charts.iter().find(|(n, _)| n == name).unwrap().1;

    let (texts, lines, circles) = series_of(svg("4096x4096_throughput.svg"));
    for k in ["cublas_fp16", "w8a8", "quant_w8a8"] {
        assert!(texts.iter().any(|t| t == k), "legend lacks {k}: {texts:?}");
    }
    // Three series of 3 points (M = 1, 16, 256); legend swatches are 2-point lines.
    assert_eq!(lines.iter().filter(|&&n| n == 3).count(), 3, "{lines:?}");
    assert_eq!(circles.values().copied().collect::<Vec<_>>(), vec![3, 3, 3], "{circles:?}");
    assert!(texts.iter().any(|t| t.contains("NVIDIA H100 80GB HBM3") && t.contains("K=4096, N=4096")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("TFLOP/s")) && texts.iter().any(|t| t.contains("batch size M")));

    let (texts, lines, _) = series_of(svg("4096x4096_speedup.svg"));
    for k in ["w8a8", "quant_w8a8", "ideal w8a8", "ideal quant_w8a8"] {
        assert!(texts.iter().any(|t| t == k), "speedup legend lacks {k}: {texts:?}");
    }
    assert!(!texts.iter().any(|t| t == "cublas_fp16"), "the baseline has no speedup series");
    assert_eq!(lines.iter().filter(|&&n| n == 3).count(), 2, "{lines:?}");

    let (texts, lines, circles) = series_of(svg("layer_4096x14336_tokens_per_s.svg"));
    assert!(texts.iter().any(|t| t == "layer_fp16") && texts.iter().any(|t| t == "layer_w8a8"));
    assert_eq!(lines.iter().filter(|&&n| n == 3).count(), 2, "{lines:?}");
    assert_eq!(circles.values().sum::<usize>(), 6);
}

#[test]
fn bad_files_give_one_clear_error() {
    let bad = |text: &str| Report::from_json(text, "x.json").unwrap_err();
    assert!(matches!(bad("{\"schema\": \"qk-bench/1\", \"results\": [{\"kernel\": \"a\""), ReportError::Parse { .. }));
    assert!(matches!(bad("not json"), ReportError::Parse { .. }));
    assert!(matches!(bad("{\"schema\": \"qk-bench/2\"}"), ReportError::Schema { .. }));
    let e = bad("{\"schema\": \"qk-bench/1\", \"results\": [{\"kernel\": \"a\", \"m\": 1, \"n\": 2, \"k\": 3}]}");
    assert!(e.to_string().contains("samples_us"), "{e}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn environment_only_report_says_no_cuda_device() {
    let cfg = BenchConfig::default();
    let r = run::environment_only(&cfg, "the CUDA driver library (libcuda.so) is not installed");
    assert!(r.results.is_empty());
    assert!(r.env.cuda_device.as_deref().unwrap().starts_with("no CUDA device"));
    assert!(r.env.crate_version.is_some() && r.env.utc_time.is_some() && r.env.nvcc_version.is_some());
    assert_eq!(r.env.gpu_name, None);
    assert_eq!(r.config.reps, Some(cfg.reps));
    assert!(Environment::host().build_profile.is_some());
    // Round trip through the public format.
    let back = Report::from_json(&r.to_json(), "env-only").unwrap();
    assert_eq!(back.env, r.env);
}

#[test]
fn qk_bench_report_renders_a_fixture() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_qk"))
        .args(["bench", "report"])
        .arg(fixture("bench_base.json"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    for f in ["report.md", "4096x4096_throughput.svg", "4096x4096_latency.svg", "4096x4096_speedup.svg"] {
        assert!(out.path().join(f).exists(), "{f} missing");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_qk")).args(["bench", "report", "/nonexistent/r.json"]).output().unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn launch_plans_render_when_present_and_are_optional() {
    let mut r = load("bench_minimal.json");
    // The fixture predates the field: no plan, no plans section.
    assert!(r.results.iter().all(|x| x.plan.is_none()));
    assert!(!render::markdown(&r).contains("## Launch plans"));
    let plan = "qk_gemm_w8a8_small (Small) grid [16, 1, 8] | splits 8";
    r.results.iter_mut().find(|x| x.kernel == "w8a8").unwrap().plan = Some(plan.into());
    let md = render::markdown(&r);
    assert!(md.contains("## Launch plans of this crate's kernels"), "{md}");
    // A '|' inside the plan would split the table row: it is replaced by '/'.
    assert!(md.contains("| w8a8 | 1 | 4096 | 4096 | qk_gemm_w8a8_small (Small) grid [16, 1, 8] / splits 8 |"), "{md}");
    // And it survives a JSON round trip.
    let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back.results.iter().find(|x| x.kernel == "w8a8").unwrap().plan.as_deref(), Some(plan));
}

#[test]
fn forced_splits_are_recorded_and_zero_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let run = |splits: &str| {
        Command::new(env!("CARGO_BIN_EXE_qk"))
            .args(["bench", "run", "--splits", splits, "--m", "1", "--shapes", "4096,4096", "--out"])
            .arg(out.path())
            .output()
            .unwrap()
    };
    let refused = run("0");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--splits must be at least 1"));
    // Without a GPU the run records its configuration (and says it timed nothing); with
    // one it times the points. Either way the report names the forced split count.
    assert!(run("3").status.success());
    let report = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path().join("report.json"))
        .find(|p| p.exists())
        .expect("a report.json");
    let r = Report::load(&report).unwrap();
    assert_eq!(r.config.splits, Some(3));
    // Reports written before the field existed read as the planner's choice.
    assert_eq!(load("bench_minimal.json").config.splits, None);
}

// The default sweep leaves out the explicit-only experiment; naming it selects it, with
// the FP16 baseline.
#[test]
fn explicit_only_kernels_run_only_when_named() {
    use qkernels::bench::gemm::GemmImpl;
    let mut cfg = BenchConfig::default();
    for experiment in [
        GemmImpl::W4A16G128SymTma,
        GemmImpl::W4A16G128SymSwapAb,
        GemmImpl::W4A16G128SymDirect,
        GemmImpl::W8A16SwapAb,
        GemmImpl::W8A16Direct,
    ] {
        assert!(!cfg.gemm.contains(&experiment), "{experiment:?}");
    }
    assert!(cfg.gemm.contains(&GemmImpl::W4A16G128Sym));
    cfg.select_kernels(&["w4a16_g128_sym_tma".to_string()]).unwrap();
    assert_eq!(cfg.gemm, [GemmImpl::CublasF16, GemmImpl::W4A16G128SymTma]);
}
