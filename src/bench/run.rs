//! A whole bench run: configuration, environment capture, calibration (copy bandwidth),
//! the GEMM sweep and the decoder-layer workload, then the report. `cargo bench --bench
//! gemm` and `qk bench run` both call [`run`]; they differ only in the [`Driver`] that
//! times each prepared point (criterion's `iter_custom`, or fixed interleaved rounds).

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use super::decoder::{self, LayerActivations, LayerPlans, LayerPrecision, LayerWeights};
use super::env::Environment;
use super::gemm::{self, Activations, GemmImpl, GemmShape, Plans, Weights, MODELS};
use super::point::{Point, Record};
use super::render;
use super::report::{Calibration, Report, RunConfigRecord};
use super::stats::{Summary, BOOTSTRAP_RESAMPLES};
use super::timing::Timeline;
use crate::{Device, Result};

/// Default discarded warm-up rounds per point.
pub const DEFAULT_WARMUP: usize = 5;
/// Default timed rounds per point (each round launches every implementation once).
pub const DEFAULT_REPS: usize = 30;
/// Launches per CUDA-graph replay in graph mode: enough that the one graph launch's
/// overhead (a few µs) is under 1% of a replay of M = 1 GEMMs (≈ 5 µs each).
pub const DEFAULT_GRAPH_LAUNCHES: usize = 20;

/// Bytes of the copy-bandwidth calibration (one direction): large enough to stream
/// from HBM (over 4× any current L2), small enough to fit every card.
const COPY_CALIBRATION_BYTES: usize = 1 << 30;
/// Launches of the copy calibration.
const COPY_CALIBRATION_REPS: usize = 20;

/// Dense FP16 tensor-core FLOPs per clock per SM with f32 accumulation, by compute
/// capability: sm_80 (A100: 312 TFLOP/s = 108 SMs × 1.41 GHz × 2048) and sm_90 (H100
/// SXM: 989 TFLOP/s = 132 SMs × 1.83 GHz × 4096). Other architectures are unknown here
/// (GeForce parts run f32-accumulate FP16 at half rate, so no guess is made).
const FP16_FLOPS_PER_CLOCK_PER_SM: &[((u32, u32), f64)] = &[((8, 0), 2048.0), ((9, 0), 4096.0)];

/// A validated run configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// GEMM implementations; the FP16 baseline is always first when any is selected.
    pub gemm: Vec<GemmImpl>,
    /// Decoder-layer precisions; FP16 first when any is selected.
    pub layers: Vec<LayerPrecision>,
    /// GEMM shapes.
    pub shapes: Vec<GemmShape>,
    /// Batch sizes.
    pub m: Vec<usize>,
    /// Warm-up rounds per point (discarded).
    pub warmup: usize,
    /// Timed rounds per point.
    pub reps: usize,
    /// Rotate buffers over more than twice the L2.
    pub l2_rotation: bool,
    /// Launches per CUDA-graph replay (graph mode), `None` for direct launches.
    pub graph_launches: Option<usize>,
    /// Substring filter on point ids (`gemm/4096x4096/m16`, `decoder_layer/llama3-8b/m1`).
    pub filter: Option<String>,
    /// K splits forced on this crate's GEMM kernels at every GEMM point (clamped to the
    /// K tiles), `None` for the planner's choice: to time split counts against each
    /// other. Decoder layers always use the planner's choice.
    pub splits: Option<usize>,
    /// Directory under which `<run-id>/` is written.
    pub out_root: PathBuf,
}

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig {
            gemm: GemmImpl::ALL.into_iter().filter(|i| !i.explicit_only()).collect(),
            layers: LayerPrecision::ALL.into_iter().filter(|p| !p.explicit_only()).collect(),
            shapes: MODELS.iter().flat_map(|m| gemm::parse_shapes(m.key).unwrap_or_default()).collect(),
            m: gemm::DEFAULT_M.to_vec(),
            warmup: DEFAULT_WARMUP,
            reps: DEFAULT_REPS,
            l2_rotation: true,
            graph_launches: None,
            filter: None,
            splits: None,
            out_root: PathBuf::from("target/qk-bench"),
        }
    }
}

/// Every kernel name `--kernels` accepts.
pub fn kernel_names() -> Vec<&'static str> {
    GemmImpl::ALL.iter().map(|i| i.name()).chain(LayerPrecision::ALL.iter().map(|p| p.name())).collect()
}

impl BenchConfig {
    /// Selects kernels by name (see [`kernel_names`]); the baselines are added when a
    /// candidate of their family is selected, since speedups need them.
    pub fn select_kernels(&mut self, names: &[String]) -> std::result::Result<(), String> {
        let mut gemm = Vec::new();
        let mut layers = Vec::new();
        for name in names {
            if let Some(i) = GemmImpl::from_name(name) {
                gemm.push(i);
            } else if let Some(p) = LayerPrecision::from_name(name) {
                layers.push(p);
            } else {
                return Err(format!("unknown kernel `{name}` (known: {})", kernel_names().join(", ")));
            }
        }
        self.gemm = GemmImpl::ALL
            .into_iter()
            .filter(|i| gemm.contains(i) || (i == &GemmImpl::CublasF16 && !gemm.is_empty()))
            .collect();
        self.layers = LayerPrecision::ALL
            .into_iter()
            .filter(|p| layers.contains(p) || (p == &LayerPrecision::Fp16 && !layers.is_empty()))
            .collect();
        Ok(())
    }

    /// Reads the `cargo bench` environment variables over the defaults:
    /// `QK_BENCH_KERNELS` (comma list), `QK_BENCH_SHAPES` (`;`-separated items of
    /// `llama3-8b`, `llama3-70b`, `K,N`), `QK_BENCH_M` (comma list), `QK_BENCH_WARMUP`,
    /// `QK_BENCH_REPS`, `QK_BENCH_GRAPH=1`, `QK_BENCH_NO_L2_ROTATION=1`, `QK_BENCH_SPLITS`,
    /// `QK_BENCH_OUT`.
    pub fn from_env() -> std::result::Result<BenchConfig, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let flag = |name: &str| var(name).is_some_and(|v| v == "1" || v == "true");
        let mut cfg = BenchConfig::default();
        if let Some(k) = var("QK_BENCH_KERNELS") {
            cfg.select_kernels(&k.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>())?;
        }
        if let Some(s) = var("QK_BENCH_SHAPES") {
            cfg.shapes = s.split(';').map(gemm::parse_shapes).collect::<std::result::Result<Vec<_>, _>>()?.concat();
        }
        if let Some(m) = var("QK_BENCH_M") {
            cfg.m = parse_list(&m, "QK_BENCH_M")?;
        }
        if let Some(w) = var("QK_BENCH_WARMUP") {
            cfg.warmup = parse_count(&w, "QK_BENCH_WARMUP")?;
        }
        if let Some(r) = var("QK_BENCH_REPS") {
            cfg.reps = parse_count(&r, "QK_BENCH_REPS")?.max(1);
        }
        if flag("QK_BENCH_GRAPH") {
            cfg.graph_launches = Some(DEFAULT_GRAPH_LAUNCHES);
        }
        cfg.l2_rotation = !flag("QK_BENCH_NO_L2_ROTATION");
        if let Some(s) = var("QK_BENCH_SPLITS") {
            cfg.splits = Some(parse_count(&s, "QK_BENCH_SPLITS")?.max(1));
        }
        if let Some(o) = var("QK_BENCH_OUT") {
            cfg.out_root = PathBuf::from(o);
        }
        Ok(cfg)
    }

    /// The configuration as recorded in the report.
    pub fn record(&self) -> RunConfigRecord {
        RunConfigRecord {
            warmup: Some(self.warmup),
            reps: Some(self.reps),
            l2_rotation: Some(self.l2_rotation),
            cuda_graph: Some(self.graph_launches.is_some()),
            graph_launches: self.graph_launches,
            kernels: Some(
                self.gemm
                    .iter()
                    .map(|i| i.name().to_string())
                    .chain(self.layers.iter().map(|p| p.name().into()))
                    .collect(),
            ),
            shapes: Some(self.shapes.iter().map(|s| (s.k, s.n)).collect()),
            m: Some(self.m.clone()),
            splits: self.splits,
            bootstrap_resamples: Some(BOOTSTRAP_RESAMPLES),
        }
    }

    fn wants(&self, id: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| id.contains(f))
    }
}

/// Parses a comma list of positive integers.
pub fn parse_list(text: &str, what: &str) -> std::result::Result<Vec<usize>, String> {
    text.split(',')
        .map(|v| match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{what}: `{}` is not a positive integer", v.trim())),
        })
        .collect()
}

fn parse_count(text: &str, what: &str) -> std::result::Result<usize, String> {
    text.trim().parse().map_err(|_| format!("{what}: `{}` is not a count", text.trim()))
}

/// Times one prepared point. [`FixedRounds`] runs the configured rounds over every
/// implementation; the criterion bench times (baseline, candidate) pairs in
/// `iter_custom`.
pub trait Driver {
    /// Measures `point` (its id is `point.group()/m{M}`), keeping samples in it.
    fn measure(&mut self, point: &mut Point<'_>) -> Result<()>;
}

/// `reps` interleaved rounds over every runnable implementation of a point.
pub struct FixedRounds {
    /// Rounds per point.
    pub reps: usize,
}

impl Driver for FixedRounds {
    fn measure(&mut self, point: &mut Point<'_>) -> Result<()> {
        let all: Vec<usize> = point.runnable().into_iter().map(|(i, _)| i).collect();
        point.time_rounds(&all, self.reps, Record::Keep).map(|_| ())
    }
}

/// Theoretical dense FP16 (f32 accumulate) tensor peak of `device`, TFLOP/s.
pub fn fp16_peak_tflops(device: &Device) -> Option<f64> {
    let p = device.properties();
    let per_clock = FP16_FLOPS_PER_CLOCK_PER_SM.iter().find(|(cc, _)| *cc == p.compute_capability).map(|(_, f)| *f)?;
    Some(f64::from(p.sm_count) * f64::from(p.max_sm_clock_khz?) * 1e3 * per_clock / 1e12)
}

/// Device-to-device copy bandwidth (read + write bytes per second, GB/s), p50 of
/// [`COPY_CALIBRATION_REPS`] copies after warm-up.
fn measure_copy_gbps(device: &Device, budget_bytes: u64) -> Result<(f64, u64)> {
    let bytes = COPY_CALIBRATION_BYTES.min((budget_bytes / 4) as usize);
    let src = device.alloc::<u8>(bytes)?;
    let dst = device.alloc::<u8>(bytes)?;
    let mut timeline = Timeline::new(device)?;
    timeline.time(DEFAULT_WARMUP, |_| device.copy(&dst, &src))?;
    let samples = timeline.time(COPY_CALIBRATION_REPS, |_| device.copy(&dst, &src))?;
    let p50 = Summary::from_samples(&samples).map_or(f64::NAN, |s| s.p50_us);
    Ok((2.0 * bytes as f64 / (p50 * 1e-6) / 1e9, bytes as u64))
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} points, ETA {eta} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Runs the configured sweep on `device` with `driver` timing each point, and returns
/// the analyzed report. Points that cannot run are recorded as skipped; only a device
/// fault that makes further work impossible ends the sweep early (the report keeps what
/// was measured, and the error is printed).
pub fn run(device: &Device, cfg: &BenchConfig, driver: &mut dyn Driver) -> Result<Report> {
    let mut report = Report::new(Environment::capture(Some(device), None), cfg.record());
    for w in report.env.warnings() {
        eprintln!("warning: {w}");
    }
    let budget = gemm::memory_budget_bytes(device);
    let (copy_gbps, copy_bytes) = measure_copy_gbps(device, budget)?;
    report.calibration = Calibration {
        copy_gbps: Some(copy_gbps),
        copy_bytes: Some(copy_bytes),
        fp16_peak_tflops_theoretical: fp16_peak_tflops(device),
        fp16_compute_type: Some(super::cublas::Blas::F16_COMPUTE_TYPE.into()),
    };
    eprintln!("copy bandwidth: {copy_gbps:.0} GB/s (read + write, {copy_bytes} bytes)");
    eprintln!("cuBLAS FP16 compute type: {}", super::cublas::Blas::F16_COMPUTE_TYPE);

    let gemm_points = if cfg.gemm.is_empty() { 0 } else { cfg.shapes.len() * cfg.m.len() };
    let layer_points = if cfg.layers.is_empty() { 0 } else { MODELS.len() * cfg.m.len() };
    let bar = progress_bar((gemm_points + layer_points) as u64);
    let outcome = sweep(device, cfg, driver, budget, &bar, &mut report);
    bar.finish_and_clear();
    if let Err(e) = &outcome {
        eprintln!("sweep stopped early: {e}");
    }
    report.env.capture_end();
    for w in report.env.warnings() {
        eprintln!("warning: {w}");
    }
    report.analyze();
    Ok(report)
}

fn sweep(
    device: &Device,
    cfg: &BenchConfig,
    driver: &mut dyn Driver,
    budget: u64,
    bar: &ProgressBar,
    report: &mut Report,
) -> Result<()> {
    let l2 = device.properties().l2_cache_bytes;
    if !cfg.gemm.is_empty() {
        let m_max = cfg.m.iter().copied().max().unwrap_or(1);
        for shape in &cfg.shapes {
            let (n, k) = (shape.n, shape.k);
            let ids: Vec<String> = cfg.m.iter().map(|m| format!("gemm/{k}x{n}/m{m}")).collect();
            if !ids.iter().any(|id| cfg.wants(id)) {
                bar.inc(cfg.m.len() as u64);
                continue;
            }
            let smallest_weight = cfg.gemm.iter().map(|i| Weights::bytes_per_copy(n, k, &[*i])).min().unwrap_or(1);
            let per_copy =
                Weights::bytes_per_copy(n, k, &cfg.gemm) + Activations::bytes_per_copy(m_max, n, k, &cfg.gemm);
            let copies = gemm::rotation_copies(l2, smallest_weight, cfg.l2_rotation)
                .min((budget / per_copy.max(1)).max(1) as usize);
            bar.set_message(format!("{} ({k}x{n}): uploading {copies} weight copies", shape.label));
            let weights = Weights::new(device, n, k, &cfg.gemm, copies)?;
            for (&m, id) in cfg.m.iter().zip(&ids) {
                bar.set_message(id.clone());
                if !cfg.wants(id) {
                    bar.inc(1);
                    continue;
                }
                let need = copies as u64
                    * (Weights::bytes_per_copy(n, k, &cfg.gemm) + Activations::bytes_per_copy(m, n, k, &cfg.gemm));
                if need > budget {
                    skip_all(report, &cfg.gemm, shape, m, format!("needs {need} bytes; the memory budget is {budget}"));
                    bar.inc(1);
                    continue;
                }
                let acts = Activations::new(device, m, &weights, &cfg.gemm, copies)?;
                let plans = Plans::new(device, (m, n, k), &cfg.gemm, &weights, cfg.splits);
                let mut point = gemm::prepare_point(
                    device,
                    shape,
                    &cfg.gemm,
                    &weights,
                    &acts,
                    &plans,
                    cfg.warmup,
                    cfg.graph_launches,
                )?;
                driver.measure(&mut point)?;
                report.results.extend(point.into_results());
                bar.inc(1);
            }
        }
    }
    if !cfg.layers.is_empty() {
        for model in &MODELS {
            let ids: Vec<String> = cfg.m.iter().map(|m| format!("decoder_layer/{}/m{m}", model.key)).collect();
            if !ids.iter().any(|id| cfg.wants(id)) {
                bar.inc(cfg.m.len() as u64);
                continue;
            }
            bar.set_message(format!("{}: uploading one decoder layer", model.name));
            let weights = LayerWeights::new(device, model, &cfg.layers)?;
            for (&m, id) in cfg.m.iter().zip(&ids) {
                bar.set_message(id.clone());
                let need = LayerWeights::bytes(model, &cfg.layers) + LayerActivations::bytes(model, m);
                if !cfg.wants(id) || need > budget {
                    bar.inc(1);
                    continue;
                }
                let acts = LayerActivations::new(device, model, m)?;
                let plans = LayerPlans::new(device, model, m, &cfg.layers, &weights);
                let mut point =
                    decoder::prepare_point(device, model, &cfg.layers, &weights, &acts, &plans, cfg.warmup)?;
                driver.measure(&mut point)?;
                report.results.extend(point.into_results());
                bar.inc(1);
            }
        }
    }
    Ok(())
}

fn skip_all(report: &mut Report, impls: &[GemmImpl], shape: &GemmShape, m: usize, reason: String) {
    for imp in impls {
        report.results.push(super::report::BenchResult {
            kernel: imp.name().into(),
            label: Some(shape.label.clone()),
            m: m as u64,
            n: shape.n as u64,
            k: shape.k as u64,
            skipped: Some(reason.clone()),
            ..Default::default()
        });
    }
}

/// A new run directory `<root>/<UTC time>-<pid>/`.
pub fn run_dir(root: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let stamp: String = super::env::utc_timestamp(secs).chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    root.join(format!("{stamp}-{}", std::process::id()))
}

/// Writes `report.json`, `report.md` and the charts into `dir` (created), returning the
/// files written.
pub fn write_report(report: &Report, dir: &Path) -> std::result::Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let mut write = |name: &str, text: &str| -> std::result::Result<(), String> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
        Ok(())
    };
    write("report.json", &report.to_json())?;
    write("report.md", &render::markdown(report))?;
    for (name, svg) in render::charts(report) {
        write(&name, &svg)?;
    }
    Ok(written)
}

/// The report of a run that could not time anything: the environment (host fields and
/// "no CUDA device") and the configuration.
pub fn environment_only(cfg: &BenchConfig, reason: &str) -> Report {
    Report::new(Environment::capture(None, Some(reason)), cfg.record())
}
