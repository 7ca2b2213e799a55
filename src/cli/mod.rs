//! The `qk` command: `info`, `kernels`, `run`, `bench`. Parsing (clap) is kept apart from the
//! work: each subcommand is a function returning `Result<(), String>`, and `main` turns
//! an error into one line on stderr and a non-zero exit code (never a panic).

pub mod bench;
mod run;
pub mod tensors;
mod weight_only;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::{kernels, BackendKind, Device, QkError};

/// Exit code of a command that failed at run time (bad file, kernel error).
const EXIT_FAILURE: u8 = 1;

#[derive(Parser)]
#[command(name = "qk", version, about = "Quantized INT8/INT4 LLM kernels: inspect, run on a GPU or the PTX simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The device (or "no CUDA device"), the driver, and the toolkit that built the kernels.
    Info,
    /// Every kernel with its ptxas resource usage per architecture.
    Kernels,
    /// Run one kernel on tensors from a safetensors file and write its outputs.
    #[command(after_help = format!("{}\n{}", run::KERNEL_HELP, weight_only::WEIGHT_ONLY_HELP))]
    Run(RunArgs),
    /// Repack GPTQ / GPTQ v2 / AWQ checkpoint tensors into the gemm_w4a16 kernel layout.
    Repack(RepackArgs),
    /// Benchmarks: run the sweep, render a report, compare two reports.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Where `qk run` executes a kernel.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum BackendChoice {
    /// A CUDA GPU when one exists, else the PTX simulator.
    Auto,
    /// A CUDA GPU (fails when there is none).
    Cuda,
    /// The PTX simulator on the CPU.
    Sim,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Kernel to run (see the list below).
    kernel: String,
    /// Input tensors (safetensors).
    #[arg(long)]
    inputs: PathBuf,
    /// Output file (safetensors), overwritten.
    #[arg(long)]
    out: PathBuf,
    /// Backend.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    /// Print a report to standard output: the backend, the configuration a GEMM's
    /// wrapper chose, and on the simulator the last launch's counters (instructions,
    /// bytes, sectors, bank conflicts).
    #[arg(long)]
    report: bool,
    /// Weight format of gemm_w4a16 (gptq, gptq_v2, awq, packed).
    #[arg(long, value_enum)]
    format: Option<weight_only::WeightFormat>,
}

#[derive(clap::Args)]
struct RepackArgs {
    /// Checkpoint format of the input tensors.
    #[arg(long, value_enum)]
    format: weight_only::CheckpointFormat,
    /// Input tensors (safetensors): the format's tensors, and optionally `a` and `bias`,
    /// which are copied unchanged.
    #[arg(long)]
    inputs: PathBuf,
    /// Output file (safetensors), overwritten: the kernel layout, which
    /// `qk run gemm_w4a16 --format packed` reads.
    #[arg(long)]
    out: PathBuf,
}

/// Entry point of the `qk` binary.
pub fn main() -> ExitCode {
    // Rust programs start with SIGPIPE ignored, so `println!` into a closed pipe
    // (`qk kernels | head -3`) panics. Restore the default action: the process ends
    // quietly, as other command-line tools do.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any other thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info(),
        Command::Kernels => {
            print!("{}", kernels_table());
            Ok(())
        }
        Command::Run(args) => run::run(&args.kernel, &args.inputs, &args.out, args.backend, args.report, args.format),
        Command::Repack(args) => weight_only::repack(args.format, &args.inputs, &args.out),
        Command::Bench(cmd) => match bench::run(cmd) {
            Ok(0) => Ok(()),
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("qk: error: {message}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Opens the device `choice` names.
pub fn open_device(choice: BackendChoice) -> Result<Device, String> {
    match choice {
        BackendChoice::Auto => Device::auto(),
        BackendChoice::Cuda => Device::cuda(0),
        BackendChoice::Sim => Ok(Device::sim()),
    }
    .map_err(|e| e.to_string())
}

fn info() -> Result<(), String> {
    println!("qkernels {}", env!("CARGO_PKG_VERSION"));
    println!("kernels built by: {}", kernels::NVCC_VERSION);
    println!("PTX:              {} (JIT fallback; the simulator runs {})", kernels::PTX_ARCH, kernels::SIM_PTX_ARCH);
    println!("SASS:             {}", kernels::SASS_ARCHS.join(", "));
    match Device::cuda(0) {
        Ok(d) => {
            let p = d.properties();
            println!("device 0:         {} (sm_{}{})", p.name, p.compute_capability.0, p.compute_capability.1);
            println!("SMs:              {}", p.sm_count);
            let opt = |v: Option<u64>, unit: &str| v.map_or("unknown".to_string(), |v| format!("{v} {unit}"));
            println!("memory:           {}", opt(p.total_memory_bytes, "bytes"));
            println!("L2 cache:         {}", opt(p.l2_cache_bytes, "bytes"));
            println!("max SM clock:     {}", opt(p.max_sm_clock_khz.map(u64::from), "kHz"));
            println!("max memory clock: {}", opt(p.max_memory_clock_khz.map(u64::from), "kHz"));
            println!(
                "driver API:       {}",
                p.driver_version.map_or("unknown".into(), |v| format!("{}.{}", v / 1000, v % 1000 / 10))
            );
        }
        Err(QkError::NoCudaDevice { reason }) => {
            println!("device:           no CUDA device ({reason})");
            println!("backend:          {} (kernels run on the PTX simulator)", BackendKind::Sim);
        }
        Err(e) => return Err(e.to_string()),
    }
    Ok(())
}

/// The `qk kernels` table: every kernel × architecture with its ptxas figures, bytes
/// per thread (stack, spills) or per block (static shared memory).
pub fn kernels_table() -> String {
    let mut out = format!(
        "{:<34} {:<8} {:>5} {:>11} {:>7} {:>12} {:>11}\n",
        "kernel", "arch", "regs", "static_smem", "stack", "spill_stores", "spill_loads"
    );
    for k in kernels::ALL {
        for r in kernels::resources_of(k.name) {
            out += &format!(
                "{:<34} {:<8} {:>5} {:>11} {:>7} {:>12} {:>11}\n",
                r.kernel, r.arch, r.registers, r.shared_bytes, r.stack_bytes, r.spill_store_bytes, r.spill_load_bytes
            );
        }
    }
    out += "\nAll sizes in bytes. static_smem is the shared memory a kernel declares; the pipeline stages' dynamic\n\
            shared memory depends on the configuration: `qk run --report` and the bench reports'\n\
            launch plans show it per launch.\n";
    out
}
