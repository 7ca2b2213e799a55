//! Shared scaffolding of the kernel tests: the backends a test runs on, fresh random
//! seeds, poisoning, the record of where each test ran, and the element-wise comparison
//! of a GEMM's C against its reference.
//!
//! Every kernel test runs on the PTX simulator and on a CUDA GPU (when one is present),
//! unless `QK_TEST_BACKEND` names one of them. A missing GPU is never a silent pass: each
//! test prints "skipped: no CUDA device" and appends one line per backend to
//! `target/tmp/qk-backends.log`, which `scripts/test.sh` summarizes after the run; and
//! with `QK_TEST_BACKEND=cuda` a missing GPU fails the test.
#![allow(dead_code)] // each test binary uses a different subset of the helpers

use std::io::Write;
use std::path::Path;
use std::process::Command;

use half::f16;
use qkernels::{BackendKind, Device};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// f16 bit pattern written into outputs before a kernel runs: a NaN with a payload no
/// arithmetic produces, so an element the kernel forgot to write is caught by an exact
/// comparison (a test's inputs are finite, so no correct output is NaN).
pub const POISON_F16_BITS: u16 = 0x7e5a;
/// int8 poison: a code the quantizers never emit (they clamp to ±127).
pub const POISON_I8: i8 = -128;
/// f32 poison (a NaN with a distinctive payload).
pub const POISON_F32_BITS: u32 = 0x7fc0_5a5a;

/// Environment variable naming the only backend the kernel tests run on (`sim` or
/// `cuda`): on a lent GPU, `QK_TEST_BACKEND=cuda` spends its short time on the GPU runs
/// alone (the simulator runs are the same on every machine). Unset or empty: both.
pub const BACKEND_ENV: &str = "QK_TEST_BACKEND";

/// The devices a kernel test runs on: the simulator, plus CUDA device 0 when present,
/// narrowed by [`BACKEND_ENV`]. Records which ran (and the skip) for the summary.
/// Panics when `QK_TEST_BACKEND=cuda` and no CUDA device opens: a run asked to check
/// the GPU must not pass having checked nothing.
pub fn devices(test: &str) -> Vec<Device> {
    let only = std::env::var(BACKEND_ENV).ok().filter(|v| !v.is_empty());
    let mut out = Vec::new();
    match only.as_deref() {
        None | Some("sim") => out.push(Device::sim()),
        Some("cuda") => {
            println!("{test}: sim: skipped: {BACKEND_ENV}=cuda");
            record(test, "sim", &format!("skipped: {BACKEND_ENV}=cuda"));
        }
        Some(other) => panic!("{BACKEND_ENV}={other}: expected `sim` or `cuda`"),
    }
    if only.as_deref() == Some("sim") {
        println!("{test}: cuda: skipped: {BACKEND_ENV}=sim");
        record(test, "cuda", &format!("skipped: {BACKEND_ENV}=sim"));
        return out;
    }
    match Device::cuda(0) {
        Ok(d) => out.push(d),
        Err(e) if only.is_some() => panic!("{test}: {BACKEND_ENV}=cuda but no CUDA device opens: {e}"),
        Err(e) => {
            println!("{test}: cuda: skipped: no CUDA device ({e})");
            record(test, "cuda", "skipped: no CUDA device");
        }
    }
    out
}

/// [`devices`] that pass `runs(test, device)`, a check that records its own skip (e.g. a
/// feature the device lacks): the test loops over what it can run.
pub fn devices_where(test: &str, runs: fn(&str, &Device) -> bool) -> impl Iterator<Item = Device> + '_ {
    devices(test).into_iter().filter(move |d| runs(test, d))
}

/// The simulator, for a test that checks what only the simulator observes (instruction
/// counts, plans made for the simulated H100); `None`, with the skip printed and
/// recorded, when [`BACKEND_ENV`] asks for the GPU alone.
pub fn sim_only(test: &str) -> Option<Device> {
    if std::env::var(BACKEND_ENV).is_ok_and(|v| v == "cuda") {
        println!("{test}: sim: skipped: {BACKEND_ENV}=cuda");
        record(test, "sim", &format!("skipped: {BACKEND_ENV}=cuda"));
        return None;
    }
    Some(Device::sim())
}

/// One kernel's main-loop budget in static SASS instructions: (kernels/ source file
/// stem, kernel, architecture, budget).
pub type SassBudget = (&'static str, &'static str, &'static str, usize);

/// Checks each [`SassBudget`]: the static SASS instructions of the kernel's main loop
/// (its longest loop) for the architecture, in the fatbin `build.rs` compiled from
/// `kernels/<source>.cu`, as `scripts/sass-loops.py` counts them (with the cuobjdump
/// `scripts/setup.sh` installs), printed beside the budget. The simulator counts the PTX
/// a kernel executes; ptxas decides what a GPU issues (e.g. whether a branch stays a
/// branch or every warp pays for both sides), so the SASS is budgeted too. The count is
/// deterministic for the pinned nvcc. Skipped, printed, when [`BACKEND_ENV`] asks for
/// the GPU alone (the packed test binaries then run on a machine without this build's
/// fatbins, and the SASS is the same wherever it is read), and per budget when the build
/// has no SASS for its architecture (`QK_CUDA_ARCHS` narrowed it).
pub fn check_main_loop_sass_budgets(test: &str, budgets: &[SassBudget]) {
    if std::env::var(BACKEND_ENV).is_ok_and(|v| v == "cuda") {
        println!("{test}: skipped: {BACKEND_ENV}=cuda (the SASS is read where the kernels are built)");
        return;
    }
    for &(source, kernel, arch, budget) in budgets {
        let Some(count) = main_loop_sass_instructions(test, source, kernel, arch) else { continue };
        println!("{test}: {kernel} {arch}: main loop {count} SASS instructions, limit {budget}");
        assert!(
            count <= budget,
            "{test}: {kernel} {arch}: main loop of {count} SASS instructions, over the budget of {budget}"
        );
    }
}

/// [`check_main_loop_sass_budgets`]'s count for one kernel; `None`, printed, when the
/// build has no SASS for `arch`.
fn main_loop_sass_instructions(test: &str, source: &str, kernel: &str, arch: &str) -> Option<usize> {
    let fatbin = Path::new(env!("OUT_DIR")).join(format!("{source}.fatbin"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join("sass-loops.py");
    let run = Command::new("python3")
        .arg(&script)
        .args(["--arch", arch, "--fatbin"])
        .arg(&fatbin)
        .arg(format!("^{kernel}$"))
        .output()
        .unwrap_or_else(|e| panic!("{test}: cannot run python3 {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{test}: {} failed on {}:\n{stdout}{stderr}", script.display(), fatbin.display());
    if stderr.contains(&format!("no {arch} SASS")) {
        println!("{test}: {kernel}: skipped: the build has no {arch} SASS ({})", stderr.trim());
        return None;
    }
    // "  loop 0x1ac0..0x3360: 395 (dequant 273, ...)"
    let longest = stdout
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("loop "))
        .filter_map(|rest| rest.split(": ").nth(1)?.split_whitespace().next()?.parse::<usize>().ok())
        .max();
    Some(longest.unwrap_or_else(|| panic!("{test}: no loop of {kernel} for {arch} in {}:\n{stdout}", fatbin.display())))
}

/// Records that `test` ran on `device` (call after its assertions passed).
pub fn ran(test: &str, device: &Device) {
    let backend = match device.kind() {
        BackendKind::Sim => "sim",
        BackendKind::Cuda => "cuda",
    };
    record(test, backend, "ran");
}

/// Records and prints that `test` did not run on `device`, and why (e.g. a kernel built
/// for another architecture): never a silent pass.
pub fn skipped(test: &str, device: &Device, why: &str) {
    let backend = match device.kind() {
        BackendKind::Sim => "sim",
        BackendKind::Cuda => "cuda",
    };
    println!("{test}: {backend}: skipped: {why}");
    record(test, backend, &format!("skipped: {why}"));
}

fn record(test: &str, backend: &str, what: &str) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("qk-backends.log");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        // One short write per line: appends of this size are atomic across test threads.
        let _ = f.write_all(format!("{test}\t{backend}\t{what}\n").as_bytes());
    }
}

/// Registers an SM allocates to one warp of a kernel using `per_thread` registers per
/// thread: 32 threads' worth, in units of 256 (every sm_80 to sm_90 SM; the CUDA
/// occupancy calculator's register allocation granularity). Written here from that
/// rule, not taken from `ptxsim::warp_registers`, so that the tests check the
/// simulator's residency and register pool against an independent statement of it.
pub fn warp_registers(per_thread: u32) -> u32 {
    const WARP_THREADS: u32 = 32;
    const WARP_REGISTER_UNIT: u32 = 256;
    (per_thread * WARP_THREADS).next_multiple_of(WARP_REGISTER_UNIT)
}

/// A fresh random generator; its seed is printed so a failure can be replayed with
/// `QK_TEST_SEED=<seed>`.
pub fn rng(test: &str) -> StdRng {
    let seed =
        std::env::var("QK_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| rand::rng().next_u64());
    println!("{test}: seed {seed} (replay with QK_TEST_SEED={seed})");
    StdRng::seed_from_u64(seed)
}

/// Asserts that every element of C `[_, n]` (`got`, from a poisoned buffer) was written
/// and is within `tolerance(i)` of the reference `want[i]`. Each GEMM test derives its
/// own tolerance (see its file's doc); the comparison and the messages are shared.
pub fn assert_c_within(label: &str, got: &[f16], want: &[f16], n: usize, tolerance: impl Fn(usize) -> f64) {
    assert_eq!(got.len(), want.len(), "{label}: C holds {} elements, the reference {}", got.len(), want.len());
    for (i, (&g, &r)) in got.iter().zip(want).enumerate() {
        assert_ne!(g.to_bits(), POISON_F16_BITS, "{label}: C[{}, {}] never written", i / n, i % n);
        let tol = tolerance(i);
        assert!(
            (g.to_f64() - r.to_f64()).abs() <= tol,
            "{label}: C[{}, {}] = {g}, reference {r} (tolerance {tol:e})",
            i / n,
            i % n
        );
    }
}
