//! Compiles `kernels/*.cu` with nvcc and generates the Rust side of the shared ABI.
//!
//! For every kernel file it produces
//!   - PTX for `compute_90a`: what the PTX simulator executes (it models an H100), the
//!     same PTX the file's sm_90a SASS is compiled from;
//!   - a fatbin with SASS for each target architecture (default sm_80, sm_86, sm_89,
//!     sm_90a; `QK_CUDA_ARCHS=80,90a` narrows it, e.g. for CI) plus compute_80 PTX, the
//!     JIT fallback for GPUs without SASS here;
//!   - the `ptxas -v` resource usage of every kernel for every architecture.
//!
//! Files named `*_sm90a.cu` use Hopper's arch-specific instructions (wgmma): their PTX is
//! `compute_90a` and their SASS `sm_90a` only (when `90a` is among the targets).
//! `ptxas` advisories that it serialized or waited on wgmma instructions ("Potential
//! Performance Loss: wgmma...", e.g. C7515) fail the build: that silently costs the
//! kernel its overlap of tensor-core work and dequantization.
//!
//! `bindgen` turns `kernels/include/qk_abi.h` into Rust, so argument structs and
//! constants have one definition. Everything lands in `OUT_DIR`; `src/kernels/registry.rs`
//! includes the generated index.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Architecture of the PTX we embed: the oldest we support (mma.sync m16n8k16/k32 and
/// cp.async need sm_80), so one PTX runs on every target via the driver's JIT.
const PTX_ARCH: &str = "80";
/// Architecture of the PTX the simulator runs: the simulated device is an H100, so it
/// runs what an H100's SASS is built from, Hopper-only code paths included (e.g. the
/// `griddepcontrol` of programmatic dependent launch, absent from compute_80 PTX).
const SIM_PTX_ARCH: &str = "90a";
/// SASS targets when `QK_CUDA_ARCHS` is unset: Ampere (A100, A10/RTX 30), Ada (L4, RTX 40)
/// and Hopper with its arch-specific features (`90a`).
const DEFAULT_SASS_ARCHS: &str = "80,86,89,90a";
/// File-stem suffix of kernel files written for Hopper's arch-specific features, and
/// the one architecture they are compiled for.
const HOPPER_SUFFIX: &str = "_sm90a";
const HOPPER_ARCH: &str = "90a";
/// Markers of a `ptxas` advisory that it serialized (C7515) or inserted waits between
/// wgmma instructions: "Potential Performance Loss: wgmma.mma_async instructions are ...".
const PTXAS_PERF_ADVISORY: &str = "Potential Performance Loss";
const PTXAS_WGMMA: &str = "wgmma";
/// Where `scripts/setup.sh` installs the pinned CUDA wheels, relative to the crate.
const LOCAL_NVCC: &str = ".toolchain/cuda/nvidia/cu13/bin/nvcc";
const SETUP_HINT: &str = "run ./scripts/setup.sh (installs the pinned CUDA 13.0 toolchain into .toolchain/)";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let kernel_dir = manifest_dir.join("kernels");
    let include_dir = kernel_dir.join("include");

    for var in ["NVCC", "CUDA_HOME", "CUDA_PATH", "QK_CUDA_ARCHS", "PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed={}", kernel_dir.display());
    println!("cargo:rerun-if-changed={}", include_dir.display());

    let nvcc = find_nvcc(&manifest_dir);
    let archs_spec = env::var("QK_CUDA_ARCHS").unwrap_or_else(|_| DEFAULT_SASS_ARCHS.to_string());
    let archs: Vec<String> = archs_spec.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect();
    if archs.is_empty() {
        panic!("QK_CUDA_ARCHS is empty; expected e.g. 80,86,89,90a");
    }

    let mut sources: Vec<PathBuf> = fs::read_dir(&kernel_dir)
        .expect("kernels/ exists")
        .map(|e| e.expect("readable kernels/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    sources.sort();
    for dir in [&kernel_dir, &include_dir] {
        for entry in fs::read_dir(dir).expect("readable kernel dir") {
            println!("cargo:rerun-if-changed={}", entry.expect("entry").path().display());
        }
    }

    // The script also reruns when only git's HEAD moved (provenance below): skip nvcc
    // when the kernel sources, the compiler and the architectures are what the last
    // compilation in this OUT_DIR saw.
    let stamp = out_dir.join("kernels.stamp");
    let fingerprint = fingerprint(&nvcc, &archs, &[&kernel_dir, &include_dir]);
    if fs::read_to_string(&stamp).ok().as_deref() != Some(fingerprint.as_str()) {
        // Kernel files compile independently: one thread each (nvcc itself is serial).
        let compiled: Vec<Compiled> = std::thread::scope(|scope| {
            let handles: Vec<_> =
                sources.iter().map(|src| scope.spawn(|| compile(&nvcc, src, &include_dir, &out_dir, &archs))).collect();
            handles.into_iter().map(|h| h.join().expect("nvcc thread")).collect()
        });
        write_index(&out_dir, &nvcc, &archs, &compiled);
        generate_abi(&include_dir, &out_dir);
        fs::write(&stamp, &fingerprint).expect("write kernels.stamp");
    }
    record_provenance(&manifest_dir);
}

/// Bakes the git commit and rustc version into the crate, so benchmark
/// reports state them even on a machine with neither git nor rustc (the GPU machines the
/// binaries are carried to). Unknown values are left unset, never guessed.
fn record_provenance(manifest_dir: &Path) {
    let output = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .current_dir(manifest_dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    // The dirty flag is not baked in: it would describe the tree at build time, not the
    // binary's sources, once files change without a rebuild. Reports read it at run time
    // (unknown where there is no git).
    if let Some(commit) = output("git", &["rev-parse", "HEAD"]) {
        println!("cargo:rustc-env=QK_GIT_COMMIT={commit}");
        // Re-read when HEAD moves: HEAD itself (branch switch) and the branch's ref (commit).
        let head = manifest_dir.join(".git/HEAD");
        if let Ok(text) = fs::read_to_string(&head) {
            println!("cargo:rerun-if-changed={}", head.display());
            if let Some(reference) = text.trim().strip_prefix("ref: ") {
                println!("cargo:rerun-if-changed={}", manifest_dir.join(".git").join(reference).display());
            }
        }
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Some(version) = output(&rustc, &["--version"]) {
        println!("cargo:rustc-env=QK_RUSTC_VERSION={version}");
    }
}

/// A digest of everything the kernel build depends on: every file in `dirs` (names and
/// contents), the nvcc path and the architecture list.
fn fingerprint(nvcc: &Path, archs: &[String], dirs: &[&Path]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    nvcc.hash(&mut hasher);
    archs.hash(&mut hasher);
    for dir in dirs {
        let mut files: Vec<PathBuf> =
            fs::read_dir(dir).expect("readable kernel dir").map(|e| e.expect("entry").path()).collect();
        files.sort();
        for f in files.iter().filter(|f| f.is_file()) {
            f.hash(&mut hasher);
            fs::read(f).expect("readable kernel source").hash(&mut hasher);
        }
    }
    format!("{:016x}", hasher.finish())
}

/// nvcc from, in order: `NVCC`, `CUDA_HOME`/`CUDA_PATH`, the project toolchain, `PATH`.
fn find_nvcc(manifest_dir: &Path) -> PathBuf {
    if let Ok(p) = env::var("NVCC") {
        return PathBuf::from(p);
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Ok(home) = env::var(var) {
            let p = Path::new(&home).join("bin/nvcc");
            if p.is_file() {
                return p;
            }
        }
    }
    let local = manifest_dir.join(LOCAL_NVCC);
    if local.is_file() {
        return local;
    }
    if let Some(path) = env::var_os("PATH") {
        for dir in env::split_paths(&path) {
            let p = dir.join("nvcc");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("nvcc not found (NVCC, CUDA_HOME, CUDA_PATH, {LOCAL_NVCC}, PATH): {SETUP_HINT}");
}

struct Compiled {
    stem: String,
    ptx_arch: &'static str,
    ptx: PathBuf,
    fatbin: PathBuf,
    resources: Vec<Resources>,
}

#[derive(Default)]
struct Resources {
    kernel: String,
    arch: String,
    registers: u32,
    shared_bytes: u32,
    stack_bytes: u32,
    spill_store_bytes: u32,
    spill_load_bytes: u32,
    barriers: u32,
}

fn nvcc_base(nvcc: &Path, include_dir: &Path) -> Command {
    let mut cmd = Command::new(nvcc);
    // -O3 for the device code; C++17 for constexpr/if constexpr in templates;
    // no fast-math: the kernels' rounding is part of their tested contract.
    cmd.args(["-std=c++17", "-O3", "--expt-relaxed-constexpr"]).arg("-I").arg(include_dir);
    cmd
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("failed to start nvcc for {what}: {e}; {SETUP_HINT}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        panic!("nvcc failed for {what}:\n{cmd:?}\n{stderr}{}", String::from_utf8_lossy(&out.stdout));
    }
    stderr
}

fn compile(nvcc: &Path, src: &Path, include_dir: &Path, out_dir: &Path, archs: &[String]) -> Compiled {
    let stem = src.file_stem().expect("file stem").to_string_lossy().into_owned();
    let ptx = out_dir.join(format!("{stem}.ptx"));
    let fatbin = out_dir.join(format!("{stem}.fatbin"));
    let hopper_only = stem.ends_with(HOPPER_SUFFIX);
    let ptx_arch = if hopper_only { HOPPER_ARCH } else { PTX_ARCH };
    let sass_archs: Vec<&String> = archs.iter().filter(|a| !hopper_only || *a == HOPPER_ARCH).collect();

    run(
        nvcc_base(nvcc, include_dir)
            .arg("-ptx")
            .arg(format!("-arch=compute_{SIM_PTX_ARCH}"))
            .arg(src)
            .arg("-o")
            .arg(&ptx),
        &format!("{} (ptx)", src.display()),
    );

    let mut cmd = nvcc_base(nvcc, include_dir);
    cmd.arg("-fatbin").args(["-Xptxas", "-v"]);
    for arch in sass_archs {
        cmd.arg(format!("-gencode=arch=compute_{arch},code=sm_{arch}"));
    }
    cmd.arg(format!("-gencode=arch=compute_{ptx_arch},code=compute_{ptx_arch}"));
    let log = run(cmd.arg(src).arg("-o").arg(&fatbin), &format!("{} (fatbin)", src.display()));
    if let Some(line) = log.lines().find(|l| l.contains(PTXAS_PERF_ADVISORY) && l.contains(PTXAS_WGMMA)) {
        panic!("{}: ptxas stalls the wgmma pipeline:\n{line}", src.display());
    }
    Compiled { stem, ptx_arch, ptx, fatbin, resources: parse_ptxas_log(&log) }
}

/// Parses `ptxas -v` lines:
///   ptxas info : Compiling entry function 'k' for 'sm_80'
///       N bytes stack frame, N bytes spill stores, N bytes spill loads
///   ptxas info : Used N registers, used N barriers, N bytes smem, N bytes cmem[0]
fn parse_ptxas_log(log: &str) -> Vec<Resources> {
    fn number_before(line: &str, unit: &str) -> Option<u32> {
        let end = line.find(unit)?;
        line[..end].split(|c: char| !c.is_ascii_digit()).rev().find(|s| !s.is_empty())?.parse().ok()
    }
    let mut all = Vec::new();
    let mut current: Option<Resources> = None;
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            all.extend(current.take());
            let mut parts = rest.split('\'');
            let kernel = parts.next().unwrap_or_default().to_string();
            let arch = parts.nth(1).unwrap_or_default().to_string();
            current = Some(Resources { kernel, arch, ..Default::default() });
        } else if let Some(res) = current.as_mut() {
            if line.contains("stack frame") {
                res.stack_bytes = number_before(line, " bytes stack frame").unwrap_or(0);
                res.spill_store_bytes = number_before(line, " bytes spill stores").unwrap_or(0);
                res.spill_load_bytes = number_before(line, " bytes spill loads").unwrap_or(0);
            } else if line.contains("Used ") && line.contains(" registers") {
                res.registers = number_before(line, " registers").unwrap_or(0);
                res.barriers = number_before(line, " barriers").unwrap_or(0);
                res.shared_bytes = number_before(line, " bytes smem").unwrap_or(0);
            }
        }
    }
    all.extend(current);
    all
}

fn write_index(out_dir: &Path, nvcc: &Path, archs: &[String], compiled: &[Compiled]) {
    let version = Command::new(nvcc)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.contains("release")).collect::<String>())
        .unwrap_or_default();
    let mut s = String::new();
    writeln!(s, "/// `nvcc --version` release line of the compiler that built the kernels.").unwrap();
    writeln!(s, "pub const NVCC_VERSION: &str = {version:?};").unwrap();
    writeln!(s, "/// Architecture of the embedded PTX (of every module not written for one architecture).").unwrap();
    writeln!(s, "pub const PTX_ARCH: &str = \"compute_{PTX_ARCH}\";").unwrap();
    writeln!(s, "/// Architecture of the PTX the simulator runs ([`KernelModule::ptx`]).").unwrap();
    writeln!(s, "pub const SIM_PTX_ARCH: &str = \"compute_{SIM_PTX_ARCH}\";").unwrap();
    let sass: Vec<String> = archs.iter().map(|a| format!("sm_{a}")).collect();
    writeln!(s, "/// Architectures with SASS in the embedded fatbins.").unwrap();
    writeln!(s, "pub const SASS_ARCHS: &[&str] = &{sass:?};").unwrap();
    writeln!(s, "/// Every compiled kernel file.").unwrap();
    writeln!(s, "pub static MODULES: &[KernelModule] = &[").unwrap();
    for c in compiled {
        writeln!(
            s,
            "    KernelModule {{ name: {:?}, ptx_arch: \"compute_{}\", ptx: include_str!({:?}), fatbin: include_bytes!({:?}) }},",
            c.stem,
            c.ptx_arch,
            c.ptx.display().to_string(),
            c.fatbin.display().to_string()
        )
        .unwrap();
    }
    writeln!(s, "];").unwrap();
    writeln!(s, "/// `ptxas -v` figures of every kernel for every SASS architecture.").unwrap();
    writeln!(s, "pub static RESOURCES: &[KernelResources] = &[").unwrap();
    for c in compiled {
        for r in &c.resources {
            writeln!(
                s,
                "    KernelResources {{ module: {:?}, kernel: {:?}, arch: {:?}, registers: {}, shared_bytes: {}, stack_bytes: {}, spill_store_bytes: {}, spill_load_bytes: {}, barriers: {} }},",
                c.stem, r.kernel, r.arch, r.registers, r.shared_bytes, r.stack_bytes, r.spill_store_bytes, r.spill_load_bytes, r.barriers
            )
            .unwrap();
        }
    }
    writeln!(s, "];").unwrap();
    fs::write(out_dir.join("kernel_index.rs"), s).expect("write kernel_index.rs");
}

fn generate_abi(include_dir: &Path, out_dir: &Path) {
    let header = include_dir.join("qk_abi.h");
    bindgen::Builder::default()
        .header(header.to_string_lossy())
        .allowlist_type("Qk.*")
        .allowlist_var("QK_.*")
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(true)
        .generate_comments(true)
        .layout_tests(true)
        .generate()
        .unwrap_or_else(|e| panic!("bindgen failed on {}: {e}; {SETUP_HINT}", header.display()))
        .write_to_file(out_dir.join("abi.rs"))
        .expect("write abi.rs");
}
