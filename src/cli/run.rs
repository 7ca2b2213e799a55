//! `qk run <kernel>`: read named tensors, validate them, run the kernel, write outputs.

use std::path::Path;

use half::f16;
use safetensors::tensor::Dtype;

use super::tensors::{self, OutTensor, TensorFile};
use super::weight_only::{self, WeightFormat};
use super::{open_device, BackendChoice};
use crate::formats::GroupSize;
use crate::{ops, Device};

/// Shown under `qk run --help`: every kernel's tensors (names, dtypes, shapes).
pub const KERNEL_HELP: &str = "\
Kernels and their tensors (inputs in --inputs, outputs written to --out):

  dequant_int8
      in:  q       int8        [N, K]
           scales  f32 or f16  [N]           one scale per row
      out: out     f16         [N, K]        out = q * scale

  dequant_int4
      in:  packed  uint8       [N, K/2]      column 2j in the low nibble of byte j
           scales  f16         [N, K/g]      g = 32, 64, 128 or K (per-channel)
           zeros   uint8       [N, K/g]      optional: asymmetric zero points 0..15
                                             (absent: symmetric, zero point 8)
      out: out     f16         [N, K]        out = (q - zero) * scale

  quantize_int8_per_token
      in:  x       f16         [M, K]
      out: q       int8        [M, K]        q = rint(x * 127 / absmax(row))
           scales  f32         [M]           absmax(row) / 127

  gemm_w8a8                                  C = (A_q . W_q^T) * a_scale * w_scale + bias
      in:  a_q     int8        [M, K]        K a multiple of 16, at most 131072
           a_scale f32         [M]
           (or instead of a_q/a_scale: a f16 [M, K], quantized per token on the device)
           w_q     int8        [N, K]
           w_scale f32         [N]
           bias    f16         [N]           optional
      out: c       f16         [M, N]
";

/// The kernels `qk run` knows.
const KERNELS: &[&str] =
    &["dequant_int8", "dequant_int4", "quantize_int8_per_token", "gemm_w8a8", "gemm_w4a16", "gemm_w8a16"];

/// Runs `kernel` on the tensors of `inputs` and writes its outputs to `out`.
pub fn run(
    kernel: &str,
    inputs: &Path,
    out: &Path,
    backend: BackendChoice,
    report: bool,
    format: Option<WeightFormat>,
) -> Result<(), String> {
    if !KERNELS.contains(&kernel) {
        return Err(format!("unknown kernel `{kernel}` (known: {})", KERNELS.join(", ")));
    }
    if format.is_some() && kernel != "gemm_w4a16" {
        return Err(format!("--format applies to gemm_w4a16, not {kernel}"));
    }
    let format = match (kernel, format) {
        ("gemm_w4a16", None) => return Err("gemm_w4a16 needs --format gptq|gptq_v2|awq|packed".into()),
        (_, f) => f,
    };
    let file = TensorFile::read(inputs)?;
    let device = open_device(backend)?;
    let ran = match (kernel, format) {
        ("dequant_int8", _) => run_dequant_int8(&device, &file),
        ("dequant_int4", _) => run_dequant_int4(&device, &file),
        ("quantize_int8_per_token", _) => run_quantize_int8_per_token(&device, &file),
        ("gemm_w8a8", _) => run_gemm_w8a8(&device, &file),
        ("gemm_w4a16", Some(format)) => weight_only::run_gemm_w4a16(&device, &file, format).map(Ran::from),
        _ => weight_only::run_gemm_w8a16(&device, &file).map(Ran::from),
    }
    .map_err(tensors::in_file(inputs))?;
    // The report is output the user asked for: standard output (errors go to stderr).
    if report {
        println!("backend: {} ({})", device.kind(), device.properties().name);
        for note in &ran.notes {
            println!("{kernel}: {note}");
        }
        if let Some(r) = device.last_sim_report() {
            println!("last launch:\n{r}");
        }
    }
    tensors::write(out, &ran.outputs)
}

/// What a kernel runner produced: the output tensors and notes for `--report` (the
/// configuration the wrapper chose, and why).
struct Ran {
    outputs: Vec<OutTensor>,
    notes: Vec<String>,
}

impl From<(Vec<OutTensor>, Vec<String>)> for Ran {
    fn from((outputs, notes): (Vec<OutTensor>, Vec<String>)) -> Ran {
        Ran { outputs, notes }
    }
}

impl From<Vec<OutTensor>> for Ran {
    fn from(outputs: Vec<OutTensor>) -> Ran {
        Ran { outputs, notes: Vec::new() }
    }
}

fn dims2(shape: &[usize]) -> (usize, usize) {
    (shape[0], shape[1])
}

fn expect_shape(name: &str, got: &[usize], want: &[usize]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("tensor `{name}` has shape {got:?}, expected {want:?}"))
    }
}

fn run_dequant_int8(device: &Device, file: &TensorFile) -> Result<Ran, String> {
    let q = file.get("q", &[Dtype::I8], 2)?;
    let (n, k) = dims2(&q.shape);
    let scales = file.get("scales", &[Dtype::F32, Dtype::F16], 1)?;
    expect_shape("scales", &scales.shape, &[n])?;
    let q_dev = device.upload(&q.values::<i8>()).map_err(|e| e.to_string())?;
    let out = device.alloc::<f16>(n * k).map_err(|e| e.to_string())?;
    if scales.dtype == Dtype::F32 {
        let s = device.upload(&scales.values::<f32>()).map_err(|e| e.to_string())?;
        ops::dequant_int8(device, &q_dev, ops::Int8Scales::F32(&s), &out, n, k)
    } else {
        let s = device.upload(&scales.values::<f16>()).map_err(|e| e.to_string())?;
        ops::dequant_int8(device, &q_dev, ops::Int8Scales::F16(&s), &out, n, k)
    }
    .map_err(|e| e.to_string())?;
    Ok(vec![OutTensor::f16("out", vec![n, k], &device.download(&out).map_err(|e| e.to_string())?)].into())
}

fn run_dequant_int4(device: &Device, file: &TensorFile) -> Result<Ran, String> {
    let packed = file.get("packed", &[Dtype::U8], 2)?;
    let (n, half_k) = dims2(&packed.shape);
    let k = half_k
        .checked_mul(2)
        .ok_or_else(|| format!("tensor `packed` has shape {:?}: K = 2 x {half_k} overflows usize", packed.shape))?;
    let scales = file.get("scales", &[Dtype::F16], 2)?;
    let groups = scales.shape[1];
    if scales.shape[0] != n || groups == 0 || k % groups != 0 {
        return Err(format!("tensor `scales` has shape {:?}, expected [{n}, K/g] with K = {k}", scales.shape));
    }
    let group = match GroupSize::try_from(k / groups) {
        Ok(g) => g,
        Err(_) if groups == 1 => GroupSize::PerChannel,
        Err(_) => return Err(format!("group size {} (K = {k}, {groups} groups) is not 32, 64, 128 or K", k / groups)),
    };
    let zeros = file.get_optional("zeros", &[Dtype::U8], 2)?;
    if let Some(z) = zeros {
        expect_shape("zeros", &z.shape, &scales.shape)?;
    }
    let zeros_values = zeros.map(|z| z.values::<u8>());
    if let Some(bad) = zeros_values.as_ref().and_then(|z| z.iter().find(|&&v| v > 15)) {
        return Err(format!("tensor `zeros` holds {bad}; 4-bit zero points are 0..15"));
    }
    let out = ops::dequant_int4_host(
        device,
        &packed.values::<u8>(),
        &scales.values::<f16>(),
        zeros_values.as_deref(),
        n,
        k,
        group,
    )
    .map_err(|e| e.to_string())?;
    Ok(vec![OutTensor::f16("out", vec![n, k], &out)].into())
}

fn run_quantize_int8_per_token(device: &Device, file: &TensorFile) -> Result<Ran, String> {
    let x = file.get("x", &[Dtype::F16], 2)?;
    let (m, k) = dims2(&x.shape);
    let (q, scales) = ops::quantize_int8_per_token_host(device, &x.values::<f16>(), m, k).map_err(|e| e.to_string())?;
    Ok(vec![OutTensor::i8("q", vec![m, k], &q), OutTensor::f32("scales", vec![m], &scales)].into())
}

fn run_gemm_w8a8(device: &Device, file: &TensorFile) -> Result<Ran, String> {
    let err = |e: crate::QkError| e.to_string();
    let w_q = file.get("w_q", &[Dtype::I8], 2)?;
    let (n, k) = dims2(&w_q.shape);
    let w_scale = file.get("w_scale", &[Dtype::F32], 1)?;
    expect_shape("w_scale", &w_scale.shape, &[n])?;
    let bias = file.get_optional("bias", &[Dtype::F16], 1)?;
    if let Some(b) = bias {
        expect_shape("bias", &b.shape, &[n])?;
    }
    let w_dev = device.upload(&w_q.values::<i8>()).map_err(err)?;
    let w_scale_dev = device.upload(&w_scale.values::<f32>()).map_err(err)?;
    let bias_dev = bias.map(|b| device.upload(&b.values::<f16>())).transpose().map_err(err)?;
    let fused = file.get_optional("a", &[Dtype::F16], 2)?;
    let m = match fused {
        Some(a) => a.shape[0],
        None => file.get("a_q", &[Dtype::I8], 2)?.shape[0],
    };
    let c_len = m
        .checked_mul(n)
        .ok_or_else(|| format!("output `c` [M, N] = [{m}, {n}] has more elements than fit in usize"))?;
    let c = device.alloc::<f16>(c_len).map_err(err)?;
    let plan = if let Some(a) = fused {
        expect_shape("a", &a.shape, &[m, k])?;
        let plan = ops::GemmW8A8F16Plan::new(device, m, n, k).map_err(err)?;
        let a_dev = device.upload(&a.values::<f16>()).map_err(err)?;
        plan.run(&a_dev, &w_dev, &w_scale_dev, bias_dev.as_ref(), &c).map_err(err)?;
        format!("configuration: quantize_int8_per_token + {}", plan.gemm().describe())
    } else {
        let a_q = file.get("a_q", &[Dtype::I8], 2)?;
        expect_shape("a_q", &a_q.shape, &[m, k])?;
        let a_scale = file.get("a_scale", &[Dtype::F32], 1)?;
        expect_shape("a_scale", &a_scale.shape, &[m])?;
        let plan = ops::GemmW8A8Plan::new(device, m, n, k).map_err(err)?;
        let a_dev = device.upload(&a_q.values::<i8>()).map_err(err)?;
        let a_scale_dev = device.upload(&a_scale.values::<f32>()).map_err(err)?;
        plan.run(&a_dev, &a_scale_dev, &w_dev, &w_scale_dev, bias_dev.as_ref(), &c).map_err(err)?;
        format!("configuration: {}", plan.describe())
    };
    Ok(Ran { outputs: vec![OutTensor::f16("c", vec![m, n], &device.download(&c).map_err(err)?)], notes: vec![plan] })
}
