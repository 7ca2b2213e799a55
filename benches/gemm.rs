//! W8A8 INT8 GEMM against FP16 cuBLAS (and cuBLASLt INT8, and quantize + GEMM) over the
//! Llama-3-8B/70B linear-layer shapes and M = 1 … 4096, then the decoder-layer workload;
//! writes `target/qk-bench/<run-id>/{report.json, report.md, *.svg}`.
//!
//! The harness (`qkernels::bench::run`) prepares each point (buffers rotated over more
//! than twice the L2, plans, warm-up, optional CUDA graphs); this bench times it with
//! criterion: one benchmark per (point, candidate), whose `iter_custom` runs interleaved
//! (FP16 baseline, candidate) rounds and returns the candidate's summed per-launch event
//! times. Criterion runs in flat sampling mode with one round per sample, so a benchmark
//! is exactly `QK_BENCH_REPS` rounds (criterion's one warm-up round is discarded); the
//! per-launch samples go to the report, where p50/p95/p99 and bootstrap CIs are computed
//! (criterion's "Unable to complete … in 1.0ns" warnings are expected: the target time
//! is set to nothing so that the round count, not a time, decides).
//!
//! Narrowing: `QK_BENCH_SHAPES="llama3-8b"` or `"4096,4096;8192,8192"`, `QK_BENCH_M=1,16,256`,
//! `QK_BENCH_KERNELS=w8a8,layer_w8a8`, `QK_BENCH_REPS`, `QK_BENCH_WARMUP`, `QK_BENCH_GRAPH=1`,
//! `QK_BENCH_NO_L2_ROTATION=1`, `QK_BENCH_OUT=dir`, or a criterion filter on point ids
//! (`cargo bench --bench gemm -- 4096x4096`). Without a CUDA device: the skip message, an
//! environment-only report, exit 0.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode};
use qkernels::bench::point::{Point, Record};
use qkernels::bench::run::{self, BenchConfig, Driver};
use qkernels::bench::{render, skip_message};
use qkernels::Device;

/// Criterion's own bootstrap resamples (its summary only; the report's CIs use the
/// harness's bootstrap): 10 000 keeps the per-benchmark analysis fast with many points.
const CRITERION_RESAMPLES: usize = 10_000;

/// Criterion's smallest allowed sample size.
const CRITERION_MIN_SAMPLES: usize = 10;

/// Times each point's candidates against the baseline in criterion benchmarks.
struct CriterionDriver<'c> {
    criterion: &'c mut Criterion,
    reps: usize,
}

impl Driver for CriterionDriver<'_> {
    fn measure(&mut self, point: &mut Point<'_>) -> qkernels::Result<()> {
        let runnable = point.runnable();
        let base = point.baseline();
        let m = point.m();
        let mut group = self.criterion.benchmark_group(point.group().to_string());
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(self.reps.max(CRITERION_MIN_SAMPLES))
            .warm_up_time(Duration::from_nanos(1))
            .measurement_time(Duration::from_nanos(1))
            .nresamples(CRITERION_RESAMPLES);
        let mut error = None;
        for (idx, kernel) in &runnable {
            // The baseline gets its samples from the pairs; alone only without candidates.
            let which = match base {
                Some(b) if b == *idx && runnable.len() > 1 => continue,
                Some(b) if b != *idx => vec![b, *idx],
                _ => vec![*idx],
            };
            let mut first = true;
            group.bench_function(BenchmarkId::new(kernel.as_str(), format!("m{m}")), |b| {
                b.iter_custom(|iters| {
                    let record = if std::mem::take(&mut first) { Record::Discard } else { Record::Keep };
                    match point.time_rounds(&which, iters as usize, record) {
                        Ok(times) => {
                            Duration::from_secs_f64(times.last().map_or(0.0, |t| t.iter().sum::<f64>()) * 1e-6)
                        }
                        Err(e) => {
                            error.get_or_insert(e);
                            Duration::ZERO
                        }
                    }
                })
            });
        }
        group.finish();
        error.map_or(Ok(()), Err)
    }
}

/// The first positional argument (cargo passes `--bench`; criterion flags start with `-`).
fn filter_arg() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a.starts_with('-') {
            // Criterion options that take a value.
            if matches!(
                a.as_str(),
                "--save-baseline"
                    | "--baseline"
                    | "--sample-size"
                    | "--measurement-time"
                    | "--warm-up-time"
                    | "--profile-time"
                    | "--output-format"
                    | "--color"
                    | "--plotting-backend"
                    | "--nresamples"
                    | "--noise-threshold"
                    | "--confidence-level"
                    | "--significance-level"
                    | "--load-baseline"
            ) {
                args.next();
            }
            continue;
        }
        return Some(a);
    }
    None
}

fn main() {
    let mut cfg = match BenchConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench configuration: {e}");
            std::process::exit(2);
        }
    };
    cfg.filter = filter_arg();
    let dir = run::run_dir(&cfg.out_root);
    let report = match Device::cuda(0) {
        Ok(device) => {
            let mut criterion = Criterion::default().configure_from_args();
            let mut driver = CriterionDriver { criterion: &mut criterion, reps: cfg.reps };
            let report = match run::run(&device, &cfg, &mut driver) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("bench failed: {e}");
                    std::process::exit(1);
                }
            };
            criterion.final_summary();
            print!("{}", render::console_table(&report));
            report
        }
        Err(e) => {
            println!("{}", skip_message(&e.to_string()));
            run::environment_only(&cfg, &e.to_string())
        }
    };
    match run::write_report(&report, &dir) {
        Ok(_) => println!("report: {}", dir.join("report.json").display()),
        Err(e) => {
            eprintln!("bench report: {e}");
            std::process::exit(1);
        }
    }
}
