//! `qk bench run | report | compare`: the CLI face of [`crate::bench`]. `run` times on a
//! CUDA device (without one it writes an environment-only report and says why);
//! `report` and `compare` work on any `qk-bench/1` file, GPU or not.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};

use crate::bench::compare::{self, Verdict, DEFAULT_THRESHOLD};
use crate::bench::report::Report;
use crate::bench::run::{self, BenchConfig, FixedRounds, DEFAULT_GRAPH_LAUNCHES, DEFAULT_REPS, DEFAULT_WARMUP};
use crate::bench::{gemm, render, skip_message};
use crate::Device;

/// Exit code of `compare --fail-on-regression` when a point regressed.
pub const EXIT_REGRESSION: u8 = 3;

/// `qk bench` subcommands.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Time the GEMM sweep and decoder-layer workload on the CUDA device; writes
    /// `target/qk-bench/<run-id>/{report.json,report.md,*.svg}`.
    Run(RunArgs),
    /// Render report.md and the SVG charts from a report.json.
    Report {
        /// The report (qk-bench/1 JSON).
        report: PathBuf,
        /// Output directory (default: the report's directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare two reports point by point (ratio NEW/BASE of medians, bootstrap 95% CI).
    Compare(CompareArgs),
}

/// Options of `qk bench run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Kernels (comma list): cublas_fp16, cublaslt_int8, w8a8, quant_w8a8, w4a16_g128_sym,
    /// w4a16_g128_asym, w4a16_g128_actorder, w8a16, dequant_int4_cublas, layer_fp16,
    /// layer_w8a8, layer_w4a16_g128, layer_w8a16; and, only when named (experiments not yet
    /// timed): w4a16_g128_sym_tma, w4a16_g128_sym_n256, w4a16_g128_sym_n256_tma,
    /// w4a16_g128_sym_swap_ab, w4a16_g128_sym_direct, w8a16_n256, w8a16_swap_ab,
    /// w8a16_direct, and the programmatic dependent launches (compute capability 9.0; time
    /// them with --graph) w4a16_g128_sym_pdl, w4a16_g128_actorder_pdl, w8a16_pdl,
    /// layer_w4a16_g128_pdl. The FP16 baselines are always added.
    #[arg(long, value_delimiter = ',')]
    kernels: Vec<String>,
    /// Shapes: llama3-8b, llama3-70b or K,N (repeatable).
    #[arg(long, num_args = 1..)]
    shapes: Vec<String>,
    /// Batch sizes (comma list).
    #[arg(long, value_delimiter = ',')]
    m: Vec<usize>,
    /// Warm-up rounds per point (discarded).
    #[arg(long, default_value_t = DEFAULT_WARMUP)]
    warmup: usize,
    /// Timed rounds per point.
    #[arg(long, default_value_t = DEFAULT_REPS)]
    reps: usize,
    /// Replay launches from CUDA graphs (20 launches per replay).
    #[arg(long)]
    graph: bool,
    /// Do not rotate buffers over more than twice the L2 (measures warm-L2 times).
    #[arg(long)]
    no_l2_rotation: bool,
    /// Only points whose id (gemm/KxN/mM, decoder_layer/MODEL/mM) contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Force this many K splits on the crate's GEMM kernels (default: the planner's
    /// choice; clamped to the K tiles; decoder layers keep the planner's choice).
    #[arg(long)]
    splits: Option<usize>,
    /// Root of the run directories.
    #[arg(long, default_value = "target/qk-bench")]
    out: PathBuf,
}

/// Output format of `qk bench compare`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// A table.
    Text,
    /// A JSON array of {kernel, m, n, k, ratio, ci_low, ci_high, verdict}.
    Json,
}

/// Options of `qk bench compare`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// The baseline report.
    base: PathBuf,
    /// The new report.
    new: PathBuf,
    /// Relative threshold of a verdict.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    threshold: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit with status 3 when any point regressed.
    #[arg(long)]
    fail_on_regression: bool,
    /// Compare runs from different GPUs, drivers or clock states.
    #[arg(long)]
    force: bool,
}

/// Runs a `qk bench` subcommand: `Ok(exit code)` or one error line.
pub fn run(cmd: BenchCommand) -> Result<u8, String> {
    match cmd {
        BenchCommand::Run(args) => run_bench(args).map(|_| 0),
        BenchCommand::Report { report, out } => {
            let dir = out.unwrap_or_else(|| report.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf));
            render_report(&report, &dir).map(|_| 0)
        }
        BenchCommand::Compare(args) => compare_reports(&args),
    }
}

fn config_of(args: RunArgs) -> Result<BenchConfig, String> {
    let mut cfg = BenchConfig::default();
    if !args.kernels.is_empty() {
        cfg.select_kernels(&args.kernels)?;
    }
    if !args.shapes.is_empty() {
        cfg.shapes = args.shapes.iter().map(|s| gemm::parse_shapes(s)).collect::<Result<Vec<_>, _>>()?.concat();
    }
    if !args.m.is_empty() {
        if args.m.contains(&0) {
            return Err("--m: batch sizes must be positive".into());
        }
        cfg.m = args.m;
    }
    if args.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    cfg.warmup = args.warmup;
    cfg.reps = args.reps;
    cfg.graph_launches = args.graph.then_some(DEFAULT_GRAPH_LAUNCHES);
    cfg.l2_rotation = !args.no_l2_rotation;
    if args.splits == Some(0) {
        return Err("--splits must be at least 1".into());
    }
    cfg.splits = args.splits;
    cfg.filter = args.filter;
    cfg.out_root = args.out;
    Ok(cfg)
}

fn run_bench(args: RunArgs) -> Result<(), String> {
    let cfg = config_of(args)?;
    let dir = run::run_dir(&cfg.out_root);
    let report = match Device::cuda(0) {
        Ok(device) => {
            let report = run::run(&device, &cfg, &mut FixedRounds { reps: cfg.reps }).map_err(|e| e.to_string())?;
            print!("{}", render::console_table(&report));
            report
        }
        Err(e) => {
            println!("{}", skip_message(&e.to_string()));
            run::environment_only(&cfg, &e.to_string())
        }
    };
    let files = run::write_report(&report, &dir)?;
    println!("report: {}", dir.join("report.json").display());
    eprintln!("wrote {} files under {}", files.len(), dir.display());
    Ok(())
}

fn render_report(path: &Path, dir: &Path) -> Result<(), String> {
    let mut report = Report::load(path).map_err(|e| e.to_string())?;
    report.analyze();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let md = dir.join("report.md");
    std::fs::write(&md, render::markdown(&report)).map_err(|e| format!("cannot write {}: {e}", md.display()))?;
    let charts = render::charts(&report);
    for (name, svg) in &charts {
        let p = dir.join(name);
        std::fs::write(&p, svg).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    println!("wrote {} and {} charts to {}", md.display(), charts.len(), dir.display());
    Ok(())
}

fn compare_reports(args: &CompareArgs) -> Result<u8, String> {
    if !(args.threshold.is_finite() && args.threshold >= 0.0) {
        return Err(format!("--threshold {} must be a non-negative number", args.threshold));
    }
    let base = Report::load(&args.base).map_err(|e| e.to_string())?;
    let new = Report::load(&args.new).map_err(|e| e.to_string())?;
    let points = compare::compare(&base, &new, args.threshold, args.force).map_err(|e| e.to_string())?;
    match args.format {
        Format::Text => print!("{}", compare::text_table(&points)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&points).map_err(|e| e.to_string())?),
    }
    let regressed = points.iter().any(|p| p.verdict == Verdict::Regression);
    Ok(if args.fail_on_regression && regressed { EXIT_REGRESSION } else { 0 })
}
