//! The `qk` binary end to end: `info`, `kernels`, and `qk run` on safetensors files
//! written by an independent Python script (tests/scripts/qk_cases.py, standard library
//! only) whose own reference the outputs must match; and `qk run`'s error paths (bad
//! file, missing tensor, wrong dtype, no device) — one error line, non-zero exit.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use half::f16;
use qkernels::reference::f16_ulp;
use safetensors::SafeTensors;

/// f32 epilogue rounding bound of gemm_w8a8 (see tests/gemm_w8a8.rs for the derivation).
const F32_EPILOGUE_REL_ERROR: f64 = 1.0 / (1u64 << 22) as f64;

fn qk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qk")).args(args).output().expect("run qk")
}

fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the Python case generator; returns (expected values, magnitudes, output name, shape).
fn python_case(dir: &Path, args: &[&str]) -> (Vec<f64>, Vec<f64>, String, Vec<usize>) {
    let seed = rand::random::<u32>().to_string();
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/qk_cases.py"));
    cmd.arg(args[0]).arg(dir).arg(&seed).args(&args[1..]);
    let out = cmd.output().expect("python3 is required by this test");
    assert!(out.status.success(), "qk_cases.py failed (seed {seed}): {}", String::from_utf8_lossy(&out.stderr));
    println!("{}: python seed {seed}", args[0]);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let vals = |key: &str| json[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>();
    let shape = json["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    (vals("values"), vals("magnitude"), json["output"].as_str().unwrap().to_string(), shape)
}

fn read_f16_output(path: &Path, name: &str, shape: &[usize]) -> Vec<f16> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    assert_eq!(t.shape(), shape);
    bytemuck::pod_collect_to_vec(t.data())
}

fn check_against_python(kernel: &str, case_args: &[&str]) {
    let dir = scratch(&case_args.join("-").replace("--", ""));
    let (want, magnitude, output, shape) = python_case(&dir, case_args);
    let out_file = dir.join("out.safetensors");
    let inputs = dir.join("inputs.safetensors");
    let run = qk(&[
        "run",
        kernel,
        "--inputs",
        inputs.to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
        "--backend",
        "sim",
        "--report",
    ]);
    assert!(run.status.success(), "qk run failed: {}", String::from_utf8_lossy(&run.stderr));
    let got = read_f16_output(&out_file, &output, &shape);
    for (i, (g, (w, mag))) in got.iter().zip(want.iter().zip(&magnitude)).enumerate() {
        // An exact kernel (magnitude 0) rounds the exact value once: within half an ulp.
        // One with f32 intermediate rounding may land on the neighbouring f16 (1 ulp) plus
        // the f32 error relative to the operands' magnitude.
        let tol = if *mag > 0.0 { f16_ulp(*w) + F32_EPILOGUE_REL_ERROR * mag } else { 0.5 * f16_ulp(*w) };
        assert!((g.to_f64() - w).abs() <= tol, "{kernel}: {output}[{i}] = {g}, python reference {w}");
    }
    common::ran(&format!("cli_{kernel}"), &qkernels::Device::sim());
}

#[test]
fn qk_run_gemm_w8a8_on_the_simulator_matches_an_independent_reference() {
    check_against_python("gemm_w8a8", &["gemm_w8a8"]);
}

#[test]
fn qk_run_gemm_w8a8_fused_quantize_matches_an_independent_reference() {
    check_against_python("gemm_w8a8", &["gemm_w8a8", "--fused"]);
}

#[test]
fn qk_run_dequant_int4_on_the_simulator_matches_an_independent_reference() {
    check_against_python("dequant_int4", &["dequant_int4"]);
}

/// Asserts a failed run: non-zero exit, exactly one line on stderr naming `needle`.
fn assert_one_line_error(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one error line expected, got:\n{stderr}");
    assert!(stderr.contains(needle), "error should mention `{needle}`: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn qk_run_reports_bad_inputs_in_one_line() {
    let dir = scratch("errors");
    let (_, _, _, _) = python_case(&dir, &["dequant_int4"]);
    let inputs = dir.join("inputs.safetensors");
    let out = dir.join("out.safetensors");
    let run = |kernel: &str, input: &Path, extra: &[&str]| {
        let mut args = vec!["run", kernel, "--inputs", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        qk(&args)
    };
    // Not a file.
    assert_one_line_error(&run("dequant_int4", &dir.join("missing.safetensors"), &[]), "cannot read");
    // Not safetensors.
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not a safetensors file").unwrap();
    assert_one_line_error(&run("dequant_int4", &garbage, &[]), "not a valid safetensors");
    // Missing tensor: dequant_int8 wants `q`.
    assert_one_line_error(&run("dequant_int8", &inputs, &[]), "missing tensor `q`");
    // Wrong dtype: `packed` read as int8 weights by gemm_w8a8 (`w_q` missing first), and a
    // file whose `scales` are f32 where dequant_int4 wants f16.
    let wrong = dir.join("wrong_dtype.safetensors");
    let packed = vec![0x21u8; 4 * 32];
    let scales = vec![0u8; 4 * 4];
    let views = vec![
        ("packed", safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![4, 32], &packed).unwrap()),
        ("scales", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4, 1], &scales).unwrap()),
    ];
    safetensors::serialize_to_file(views, None, &wrong).unwrap();
    assert_one_line_error(&run("dequant_int4", &wrong, &[]), "dtype F32, expected F16");
    // Wrong shape (3 scale rows for 4 weight rows); every error about a file's contents
    // names the file.
    let misshapen = dir.join("wrong_shape.safetensors");
    let scales_f16 = vec![0u8; 3 * 2];
    let views = vec![
        ("packed", safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![4, 32], &packed).unwrap()),
        ("scales", safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![3, 1], &scales_f16).unwrap()),
    ];
    safetensors::serialize_to_file(views, None, &misshapen).unwrap();
    let out = run("dequant_int4", &misshapen, &[]);
    assert_one_line_error(&out, "tensor `scales` has shape [3, 1]");
    assert_one_line_error(&out, misshapen.to_str().unwrap());
    assert_one_line_error(&run("dequant_int4", &wrong, &[]), wrong.to_str().unwrap());
    // Unknown kernel.
    assert_one_line_error(&run("gemm_w5a5", &inputs, &[]), "unknown kernel");
    // No device: --backend cuda on a machine without one (skip the check where a GPU exists).
    if !qkernels::device::cuda_available() {
        assert_one_line_error(&run("dequant_int4", &inputs, &["--backend", "cuda"]), "no CUDA device");
    }
}

#[test]
fn qk_info_and_kernels_work_without_a_gpu() {
    let info = qk(&["info"]);
    assert!(info.status.success());
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("release 13.0"), "{text}");
    if !qkernels::device::cuda_available() {
        assert!(text.contains("no CUDA device"), "{text}");
    }
    let kernels = qk(&["kernels"]);
    assert!(kernels.status.success());
    let table = String::from_utf8_lossy(&kernels.stdout);
    for k in qkernels::kernels::ALL {
        let module = qkernels::kernels::module(k.module).expect("every kernel's module is compiled");
        for arch in module.sass_archs() {
            let row = table
                .lines()
                .find(|l| l.split_whitespace().next() == Some(k.name) && l.contains(arch))
                .unwrap_or_else(|| panic!("qk kernels lists no {} on {arch}:\n{table}", k.name));
            let spills: Vec<&str> = row.split_whitespace().rev().take(2).collect();
            assert_eq!(spills, ["0", "0"], "{} spills registers on {arch}: {row}", k.name);
        }
    }
}

/// Writes a safetensors file by hand (so shapes the library's writer would refuse, like
/// a zero-sized tensor with a huge other dimension, can be made): `(name, dtype, shape,
/// data)` laid out in order.
fn write_raw_safetensors(path: &Path, tensors: &[(&str, &str, &[u64], &[u8])]) {
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        entries.push(format!(
            r#""{name}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{start},{}]}}"#,
            data.len()
        ));
    }
    let header = format!("{{{}}}", entries.join(","));
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&data);
    std::fs::write(path, file).unwrap();
}

/// Tiny hostile files whose zero-sized tensors carry huge other dimensions: `qk run`
/// reports each in one error line (exit 1) instead of overflowing (a panic in debug
/// builds, a wrapped size in release): N = 64 x rows of `w_packed`, K = 2 x columns of a
/// dequant_int4 `packed`, and gemm_w8a8's output M x N with K = 0.
#[test]
fn qk_run_rejects_shapes_that_overflow() {
    let dir = scratch("overflow");
    let out = dir.join("out.safetensors");
    let run = |kernel: &str, input: &Path, extra: &[&str]| {
        let mut args = vec![
            "run",
            kernel,
            "--backend",
            "sim",
            "--inputs",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        qk(&args)
    };
    let huge = (1u64 << 58) + 1;
    let packed = dir.join("packed.safetensors");
    write_raw_safetensors(&packed, &[("w_packed", "I32", &[huge, 0, 128], &[])]);
    let o = run("gemm_w4a16", &packed, &["--format", "packed"]);
    assert_eq!(o.status.code(), Some(1));
    assert_one_line_error(&o, "overflows usize");
    let packed = dir.join("packed_k.safetensors");
    write_raw_safetensors(&packed, &[("w_packed", "I32", &[0, 1 << 61, 128], &[])]);
    let o = run("gemm_w4a16", &packed, &["--format", "packed"]);
    assert_eq!(o.status.code(), Some(1));
    assert_one_line_error(&o, "overflows usize");

    let int4 = dir.join("int4.safetensors");
    write_raw_safetensors(&int4, &[("packed", "U8", &[0, 1 << 63], &[]), ("scales", "F16", &[0, 1], &[])]);
    let o = run("dequant_int4", &int4, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_one_line_error(&o, "overflows usize");

    let w8a8 = dir.join("w8a8.safetensors");
    write_raw_safetensors(
        &w8a8,
        &[("w_q", "I8", &[2, 0], &[]), ("w_scale", "F32", &[2], &[0; 8]), ("a_q", "I8", &[1 << 63, 0], &[])],
    );
    let o = run("gemm_w8a8", &w8a8, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_one_line_error(&o, "fit in usize");
}

// `qk bench run --help` names every kernel the sweep knows, so a new one cannot be
// selectable yet undocumented.
#[test]
fn bench_run_help_names_every_kernel() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qk")).args(["bench", "run", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for name in qkernels::bench::run::kernel_names() {
        assert!(help.contains(name), "`qk bench run --help` does not name {name}:\n{help}");
    }
}
