//! `report.json`, the public, versioned result format of every bench run (schema
//! [`SCHEMA`]), and its analysis: statistics, throughput, roofline efficiency and speedups
//! derived from the per-launch samples.
//!
//! Readers require only `schema` and, per result, `kernel`, `m`, `n`, `k` and `samples_us`;
//! every other field is optional on read (`null` or absent shows as "unknown"), so older
//! and hand-made files load. [`Report::analyze`] recomputes every derived field from the
//! samples, so a file carrying only the required fields renders in full.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::env::Environment;
use super::stats::{ratio_of_medians_ci, RatioCi, Summary};

/// The schema identifier this version writes and reads.
pub const SCHEMA: &str = "qk-bench/1";

/// Kernel name of the FP16 cuBLAS GEMM baseline: speedups are relative to it.
pub const BASELINE_GEMM: &str = "cublas_fp16";

/// Kernel name of the FP16 decoder-layer baseline.
pub const BASELINE_LAYER: &str = "layer_fp16";

/// Kernel-name prefix of decoder-layer workloads (linear layers of one decoder layer).
pub const LAYER_PREFIX: &str = "layer_";

/// One bench run: where it ran, how, and every measured point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The machine and software the run measured (all fields optional).
    #[serde(default)]
    pub env: Environment,
    /// The run's configuration (all fields optional).
    #[serde(default)]
    pub config: RunConfigRecord,
    /// Reference measurements taken in the same run.
    #[serde(default)]
    pub calibration: Calibration,
    /// One entry per (kernel, m, n, k) point.
    #[serde(default)]
    pub results: Vec<BenchResult>,
}

/// The configuration a run used, as recorded in the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfigRecord {
    /// Discarded warm-up launches per implementation and point.
    pub warmup: Option<usize>,
    /// Timed launches per implementation and point.
    pub reps: Option<usize>,
    /// Whether inputs and weights rotate among copies exceeding twice the L2 size.
    pub l2_rotation: Option<bool>,
    /// Whether launches were replayed from CUDA graphs.
    pub cuda_graph: Option<bool>,
    /// Launches captured per graph replay (graph mode).
    pub graph_launches: Option<usize>,
    /// Kernels selected.
    pub kernels: Option<Vec<String>>,
    /// Shapes selected, as (K, N).
    pub shapes: Option<Vec<(usize, usize)>>,
    /// Batch sizes selected.
    pub m: Option<Vec<usize>>,
    /// K splits forced on this crate's GEMM kernels (`None`: the planner's choice).
    pub splits: Option<usize>,
    /// Bootstrap resamples of every confidence interval.
    pub bootstrap_resamples: Option<usize>,
}

/// Reference figures measured in the same run, which the roofline uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Calibration {
    /// Device-to-device copy bandwidth, GB/s (bytes read + bytes written per second).
    pub copy_gbps: Option<f64>,
    /// Bytes copied by that measurement (one direction).
    pub copy_bytes: Option<u64>,
    /// Theoretical dense FP16 tensor-core peak at the device's maximum SM clock, TFLOP/s.
    pub fp16_peak_tflops_theoretical: Option<f64>,
    /// The cuBLAS FP16 compute type the baseline used.
    pub fp16_compute_type: Option<String>,
}

/// One measured point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// Implementation (`cublas_fp16`, `cublaslt_int8`, `w8a8`, `quant_w8a8`, `layer_fp16`, ...).
    pub kernel: String,
    /// Human label (`Llama-3-8B qkv`), optional.
    #[serde(default)]
    pub label: Option<String>,
    /// Rows of A (tokens).
    pub m: u64,
    /// Output features (for decoder layers: the model's hidden size).
    pub n: u64,
    /// Reduction dimension (for decoder layers: the model's intermediate size).
    pub k: u64,
    /// Per-launch GPU times, µs (in graph mode: each replay's time / launches per replay).
    pub samples_us: Vec<f64>,
    /// Discarded warm-up launches.
    #[serde(default)]
    pub warmup: Option<usize>,
    /// Floating/integer operations per launch (default 2·M·N·K).
    #[serde(default)]
    pub flops: Option<f64>,
    /// Compulsory bytes moved per launch: weights, scales, activations, outputs.
    #[serde(default)]
    pub bytes: Option<f64>,
    /// Tensor-core rate of this kernel's math relative to FP16 (2 for INT8 MMA, 1 for FP16
    /// or weight-only kernels that compute in FP16); used by the ideal-speedup line.
    #[serde(default)]
    pub tensor_rate_vs_fp16: Option<f64>,
    /// Decoder-layer workloads: layers in the model (step time = layer time × layers).
    #[serde(default)]
    pub layers: Option<u32>,
    /// Why the point has no samples (an unsupported shape, a cuBLAS status, ...).
    #[serde(default)]
    pub skipped: Option<String>,
    /// How this crate's kernel was launched (configuration, tile, grid, split-K), so a
    /// change in timing can be told apart from a change in the plan; `None` for cuBLAS.
    #[serde(default)]
    pub plan: Option<String>,
    /// Derived: statistics of `samples_us`.
    #[serde(default)]
    pub stats: Option<Summary>,
    /// Derived: flops / p50, TFLOP/s.
    #[serde(default)]
    pub tflops: Option<f64>,
    /// Derived: bytes / p50, GB/s.
    #[serde(default)]
    pub gbps: Option<f64>,
    /// Derived: roofline time / p50, percent.
    #[serde(default)]
    pub roofline_pct: Option<f64>,
    /// Derived: p50 of the baseline / p50 of this kernel, with a bootstrap 95% CI.
    #[serde(default)]
    pub speedup: Option<RatioCi>,
    /// Derived (decoder layers): M / (p50 × layers), tokens per second.
    #[serde(default)]
    pub tokens_per_s: Option<f64>,
}

impl BenchResult {
    /// Operations per launch: `flops`, else 2·M·N·K.
    pub fn flops_per_launch(&self) -> f64 {
        self.flops.unwrap_or(2.0 * self.m as f64 * self.n as f64 * self.k as f64)
    }

    /// The baseline kernel this result's speedup is measured against.
    pub fn baseline_kernel(&self) -> &'static str {
        if self.kernel.starts_with(LAYER_PREFIX) {
            BASELINE_LAYER
        } else {
            BASELINE_GEMM
        }
    }

    /// True for decoder-layer workloads.
    pub fn is_layer(&self) -> bool {
        self.kernel.starts_with(LAYER_PREFIX)
    }

    /// The (kernel, m, n, k) key that identifies a point across runs.
    pub fn key(&self) -> (String, u64, u64, u64) {
        (self.kernel.clone(), self.m, self.n, self.k)
    }
}

/// Errors of reading a report: one clear line each.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not JSON, truncated, or a required field is missing or mistyped.
    #[error("{path} is not a valid qk-bench report: {message}")]
    Parse {
        /// The file.
        path: String,
        /// serde_json's message (with line and column).
        message: String,
    },
    /// The `schema` field names another format.
    #[error("{path} has schema {found:?}; this qk reads {SCHEMA:?}")]
    Schema {
        /// The file.
        path: String,
        /// The schema found.
        found: String,
    },
}

impl Report {
    /// An empty report of the current schema.
    pub fn new(env: Environment, config: RunConfigRecord) -> Report {
        Report { schema: SCHEMA.into(), env, config, calibration: Calibration::default(), results: Vec::new() }
    }

    /// Parses a report from JSON text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Report, ReportError> {
        // Check the schema first, so a file of another format gets the schema message
        // rather than a complaint about a field it was never meant to have.
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ReportError::Parse { path: origin.into(), message: e.to_string() })?;
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => return Err(ReportError::Schema { path: origin.into(), found: other.into() }),
            None => {
                return Err(ReportError::Parse { path: origin.into(), message: "missing string field `schema`".into() })
            }
        }
        serde_json::from_value(value).map_err(|e| ReportError::Parse { path: origin.into(), message: e.to_string() })
    }

    /// Reads a report file.
    pub fn load(path: &Path) -> Result<Report, ReportError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ReportError::Io { path: path.display().to_string(), source })?;
        Report::from_json(&text, &path.display().to_string())
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialization of plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The best FP16 cuBLAS throughput of the run, TFLOP/s: the measured compute peak of
    /// the roofline (the definition: the best cuBLAS FP16 large-M point).
    pub fn measured_fp16_peak_tflops(&self) -> Option<f64> {
        self.results.iter().filter(|r| r.kernel == BASELINE_GEMM).filter_map(|r| r.tflops).reduce(f64::max)
    }

    /// Recomputes every derived field (stats, TFLOP/s, GB/s, roofline %, speedup with CI,
    /// tokens/s) from the samples and the per-point metadata. Idempotent.
    pub fn analyze(&mut self) {
        for r in &mut self.results {
            r.stats = Summary::from_samples(&r.samples_us);
            let p50_s = r.stats.map(|s| s.p50_us * 1e-6).filter(|t| *t > 0.0);
            r.tflops = p50_s.map(|t| r.flops_per_launch() / t / 1e12);
            r.gbps = p50_s.and_then(|t| r.bytes.map(|b| b / t / 1e9));
            r.tokens_per_s = p50_s.and_then(|t| r.layers.map(|l| r.m as f64 / (t * f64::from(l))));
        }
        let peak_tflops = self.measured_fp16_peak_tflops();
        let copy_gbps = self.calibration.copy_gbps;
        let baselines: BTreeMap<(String, u64, u64, u64), Vec<f64>> = self
            .results
            .iter()
            .filter(|r| r.kernel == BASELINE_GEMM || r.kernel == BASELINE_LAYER)
            .map(|r| (r.key(), r.samples_us.clone()))
            .collect();
        for r in &mut self.results {
            let base_key = (r.baseline_kernel().to_string(), r.m, r.n, r.k);
            r.speedup = baselines.get(&base_key).and_then(|base| ratio_of_medians_ci(base, &r.samples_us));
            r.roofline_pct = match (r.stats, roofline_time_s(r, copy_gbps, peak_tflops)) {
                (Some(s), Some(ideal_s)) if s.p50_us > 0.0 => Some(100.0 * ideal_s / (s.p50_us * 1e-6)),
                _ => None,
            };
        }
    }

    /// The ideal speedup of `r` over the FP16 baseline at the same point: the ratio of
    /// their roofline times (memory-bound: bytes ratio; compute-bound: the tensor-core
    /// rate ratio, 2× for INT8 MMA). `None` without calibration or metadata.
    pub fn ideal_speedup(&self, r: &BenchResult) -> Option<f64> {
        let base =
            self.results.iter().find(|b| b.kernel == r.baseline_kernel() && (b.m, b.n, b.k) == (r.m, r.n, r.k))?;
        let peak = self.measured_fp16_peak_tflops();
        let copy = self.calibration.copy_gbps;
        Some(roofline_time_s(base, copy, peak)? / roofline_time_s(r, copy, peak)?)
    }
}

/// The roofline time of one launch of `r`: max(bytes / copy bandwidth, flops / (peak ×
/// tensor rate)), seconds; `None` when a figure is unknown.
fn roofline_time_s(r: &BenchResult, copy_gbps: Option<f64>, fp16_peak_tflops: Option<f64>) -> Option<f64> {
    let memory_s = r.bytes? / (copy_gbps? * 1e9);
    let rate = r.tensor_rate_vs_fp16.unwrap_or(1.0);
    let compute_s = r.flops_per_launch() / (fp16_peak_tflops? * 1e12 * rate);
    Some(memory_s.max(compute_s))
}
