//! `qk run gemm_w4a16 | gemm_w8a16` and `qk repack`: checkpoint tensors (GPTQ, GPTQ v2,
//! AWQ) or an already repacked file in, the kernel layout or the GEMM's output out.
//!
//! Tensors (names are part of the interface):
//!
//! | format | tensors |
//! |---|---|
//! | `gptq`, `gptq_v2` | `qweight` int32 [K/8, N], `qzeros` int32 [K/g, N/8], `scales` f16 [K/g, N], optional `g_idx` int32 [K] |
//! | `awq` | `qweight` int32 [K, N/8], `qzeros` int32 [K/g, N/8], `scales` f16 [K/g, N] |
//! | `packed` (`qk repack` output) | `w_packed` int32 [N/64, K/16, 128], `scales_packed` f16 [K/g, N], optional `zeros_packed` int32 [K/g, N/8], optional `perm` int32 [K] (act-order); `qk repack` also copies its input's `a` and `bias` |
//!
//! `qk run gemm_w4a16` also reads `a` f16 [M, K] and optional `bias` f16 [N], and writes
//! `c` f16 [M, N]; `qk run gemm_w8a16` reads `a`, `w_q` int8 [N, K], `w_scale` f16 [N] and
//! optional `bias`, and writes `c`.

use std::path::Path;

use clap::ValueEnum;
use half::f16;
use safetensors::tensor::Dtype;

use super::tensors::{self, HostTensor, OutTensor, TensorFile};
use crate::formats::weight_only::{K_STEP, N_BLOCK};
use crate::formats::{
    import_awq, import_gptq, pack_weight_only, AwqTensors, GptqTensors, GptqVersion, PackedWeights, RawTensor,
    WeightBits, WeightOnlyShape, WeightOnlyWeights,
};
use crate::{ops, Device};

/// Shown under `qk run --help` (the lead appends it to the kernel list).
/// Its first line opens the string: a `\` line continuation would strip the indent.
pub const WEIGHT_ONLY_HELP: &str = "  gemm_w4a16   (--format gptq | gptq_v2 | awq | packed)
      in:  a        f16    [M, K]
           bias     f16    [N]           optional
           gptq/gptq_v2: qweight int32 [K/8, N], qzeros int32 [K/g, N/8], scales f16 [K/g, N],
                         optional g_idx int32 [K] (act-order); gptq stores zero points minus 1
           awq:          qweight int32 [K, N/8], qzeros int32 [K/g, N/8], scales f16 [K/g, N]
                         (nibble i of a word = column 8j + [0,2,4,6,1,3,5,7][i])
           packed:       w_packed int32 [N/64, K/16, 128], scales_packed f16 [K/g, N],
                         optional zeros_packed int32 [K/g, N/8], optional perm int32 [K]
                         (act-order): qk repack's output, which also carries the input's
                         a and bias
      out: c        f16    [M, N]        c = a * dequant(W)^T + bias; N % 64 == 0, K % 16 == 0

  gemm_w8a16
      in:  a        f16    [M, K]
           w_q      int8   [N, K]
           w_scale  f16    [N]           per-channel scale
           bias     f16    [N]           optional
      out: c        f16    [M, N]        c = a * (w_q * w_scale)^T + bias
";

/// Names of the tensors of a `qk repack` file.
const PACKED_WORDS: &str = "w_packed";
const PACKED_SCALES: &str = "scales_packed";
const PACKED_ZEROS: &str = "zeros_packed";
const PACKED_PERM: &str = "perm";
/// The f16 tensors `qk repack` copies unchanged from its input when present (name, rank):
/// the rest of what `qk run gemm_w4a16` reads.
const CARRIED_BY_REPACK: [(&str, usize); 2] = [("a", 2), ("bias", 1)];
/// 32-bit words of one packed 4-bit unit (64 columns x 16 K).
const INT4_UNIT_WORDS: usize = N_BLOCK * K_STEP / 8;
/// Zero points per int32 word of `zeros_packed`.
const ZEROS_PER_WORD: usize = 8;

/// Where the weights of `qk run gemm_w4a16` / `qk repack` come from.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum WeightFormat {
    /// AutoGPTQ classic: zero points stored minus one.
    Gptq,
    /// GPTQModel v2: zero points stored as is.
    #[value(name = "gptq_v2")]
    GptqV2,
    /// AutoAWQ GEMM layout.
    Awq,
    /// The kernel layout written by `qk repack`.
    Packed,
}

/// The checkpoint formats `qk repack` reads: every [`WeightFormat`] but its own output.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// AutoGPTQ classic: zero points stored minus one.
    Gptq,
    /// GPTQModel v2: zero points stored as is.
    #[value(name = "gptq_v2")]
    GptqV2,
    /// AutoAWQ GEMM layout.
    Awq,
}

impl From<CheckpointFormat> for WeightFormat {
    fn from(format: CheckpointFormat) -> WeightFormat {
        match format {
            CheckpointFormat::Gptq => WeightFormat::Gptq,
            CheckpointFormat::GptqV2 => WeightFormat::GptqV2,
            CheckpointFormat::Awq => WeightFormat::Awq,
        }
    }
}

/// What a run produced: the output tensors and the `--report` notes (the configuration
/// the wrapper chose: kernel, tiles, grid, splits, and the M, N, K, SM count it used).
pub(crate) type RunOutput = (Vec<OutTensor>, Vec<String>);

/// `qk run gemm_w4a16`: imports the weights in `format`, runs the GEMM, returns `c`.
pub(crate) fn run_gemm_w4a16(device: &Device, file: &TensorFile, format: WeightFormat) -> Result<RunOutput, String> {
    let packed = packed_weights(file, format)?;
    if packed.shape().bits() != WeightBits::Int4 {
        return Err("gemm_w4a16 needs 4-bit weights".into());
    }
    run_packed(device, file, &packed)
}

/// `qk run gemm_w8a16`: `a`, `w_q` int8 [N, K], `w_scale` f16 [N] (per-channel), optional
/// `bias`; returns `c`.
pub(crate) fn run_gemm_w8a16(device: &Device, file: &TensorFile) -> Result<RunOutput, String> {
    let w_q = file.get("w_q", &[Dtype::I8], 2)?;
    let (n, k) = (w_q.shape[0], w_q.shape[1]);
    let w_scale = file.get("w_scale", &[Dtype::F16], 1)?;
    if w_scale.shape != [n] {
        return Err(format!("tensor `w_scale` has shape {:?}, expected [{n}]", w_scale.shape));
    }
    let packed = ops::pack_w8a16(&w_q.values::<i8>(), &w_scale.values::<f16>(), n, k, k).map_err(|e| e.to_string())?;
    run_packed(device, file, &packed)
}

/// `qk repack --format F --inputs IN --out OUT`: writes the kernel layout of the weights
/// in IN (GPTQ, GPTQ v2 or AWQ tensors) to OUT, for `qk run gemm_w4a16 --format packed`,
/// with IN's `a` and `bias` (f16) copied unchanged when present.
pub(crate) fn repack(format: CheckpointFormat, inputs: &Path, out: &Path) -> Result<(), String> {
    let file = TensorFile::read(inputs)?;
    let outputs = repacked(&file, format).map_err(tensors::in_file(inputs))?;
    tensors::write(out, &outputs)
}

/// The tensors `qk repack` writes for `file`.
fn repacked(file: &TensorFile, format: CheckpointFormat) -> Result<Vec<OutTensor>, String> {
    let p = packed_weights(file, format.into())?;
    let shape = p.shape();
    let (n, k, groups) = (shape.n(), shape.k(), shape.groups());
    let as_i32 = |v: &[u32]| v.iter().map(|&x| x as i32).collect::<Vec<i32>>();
    let mut outputs = vec![
        OutTensor::i32(PACKED_WORDS, vec![n / N_BLOCK, k / K_STEP, INT4_UNIT_WORDS], &as_i32(p.words())),
        OutTensor::f16(PACKED_SCALES, vec![groups, n], p.scales()),
    ];
    if let Some(z) = p.zeros() {
        outputs.push(OutTensor::i32(PACKED_ZEROS, vec![groups, n / ZEROS_PER_WORD], &as_i32(z)));
    }
    if let Some(perm) = p.perm() {
        outputs.push(OutTensor::i32(PACKED_PERM, vec![k], &as_i32(perm)));
    }
    // The layer's other inputs travel with it, so the output runs as it is under
    // `qk run gemm_w4a16 --format packed` (a checkpoint's bias is part of the layer; a
    // test file's `a` is what the run multiplies).
    for (name, rank) in CARRIED_BY_REPACK {
        if let Some(t) = file.get_optional(name, &[Dtype::F16], rank)? {
            check_layer_input(name, &t.shape, n, k)?;
            outputs.push(OutTensor { name, dtype: t.dtype, shape: t.shape.clone(), data: t.data.clone() });
        }
    }
    Ok(outputs)
}

/// Checks the layer's `a` [M, K] or `bias` [N] against the weights' N and K: where
/// `qk run` reads them, and where `qk repack` carries them (so a file that repacks runs).
fn check_layer_input(name: &str, shape: &[usize], n: usize, k: usize) -> Result<(), String> {
    match (name, shape) {
        ("a", [_, a_k]) if *a_k == k => Ok(()),
        ("a", _) => Err(format!("tensor `a` has shape {shape:?}, expected [M, {k}] (K of the weights)")),
        ("bias", [b_n]) if *b_n == n => Ok(()),
        _ => Err(format!("tensor `{name}` has shape {shape:?}, expected [{n}]")),
    }
}

/// Runs the weight-only GEMM of `packed` on the file's `a` and optional `bias`.
fn run_packed(device: &Device, file: &TensorFile, packed: &PackedWeights) -> Result<RunOutput, String> {
    let (n, k) = (packed.shape().n(), packed.shape().k());
    let a = file.get("a", &[Dtype::F16], 2)?;
    let m = a.shape[0];
    check_layer_input("a", &a.shape, n, k)?;
    let bias = file.get_optional("bias", &[Dtype::F16], 1)?;
    if let Some(b) = bias {
        check_layer_input("bias", &b.shape, n, k)?;
    }
    let bias = bias.map(|b| b.values::<f16>());
    let (c, plan) = ops::gemm_weight_only_host(device, &a.values::<f16>(), packed, bias.as_deref(), m)
        .map_err(|e| e.to_string())?;
    Ok((vec![OutTensor::f16("c", vec![m, n], &c)], vec![format!("configuration: {plan}")]))
}

/// Reads the weights of `file` in `format` and returns them in the kernel layout.
fn packed_weights(file: &TensorFile, format: WeightFormat) -> Result<PackedWeights, String> {
    let logical: WeightOnlyWeights = match format {
        WeightFormat::Gptq | WeightFormat::GptqV2 => {
            let tensors = GptqTensors {
                qweight: raw(file.get("qweight", &[Dtype::I32], 2)?),
                qzeros: raw(file.get("qzeros", &[Dtype::I32], 2)?),
                scales: raw(file.get("scales", &[Dtype::F16], 2)?),
                g_idx: file.get_optional("g_idx", &[Dtype::I32], 1)?.map(raw),
            };
            let version = if format == WeightFormat::Gptq { GptqVersion::V1 } else { GptqVersion::V2 };
            import_gptq(&tensors, version).map_err(|e| e.to_string())?
        }
        WeightFormat::Awq => {
            let tensors = AwqTensors {
                qweight: raw(file.get("qweight", &[Dtype::I32], 2)?),
                qzeros: raw(file.get("qzeros", &[Dtype::I32], 2)?),
                scales: raw(file.get("scales", &[Dtype::F16], 2)?),
            };
            import_awq(&tensors).map_err(|e| e.to_string())?
        }
        WeightFormat::Packed => return read_packed(file),
    };
    pack_weight_only(&logical).map_err(|e| e.to_string())
}

/// A file tensor as the importers take it.
fn raw(t: &HostTensor) -> RawTensor<'_> {
    RawTensor { dtype: t.dtype, shape: &t.shape, data: &t.data }
}

/// Reads a `qk repack` file back.
fn read_packed(file: &TensorFile) -> Result<PackedWeights, String> {
    let words = file.get(PACKED_WORDS, &[Dtype::I32], 3)?;
    if words.shape[2] != INT4_UNIT_WORDS {
        return Err(format!(
            "tensor `{PACKED_WORDS}` has shape {:?}, expected [N/64, K/16, {INT4_UNIT_WORDS}]",
            words.shape
        ));
    }
    let (n, k) = match (words.shape[0].checked_mul(N_BLOCK), words.shape[1].checked_mul(K_STEP)) {
        (Some(n), Some(k)) => (n, k),
        _ => {
            return Err(format!(
                "tensor `{PACKED_WORDS}` has shape {:?}: N = {N_BLOCK} x {} or K = {K_STEP} x {} overflows usize",
                words.shape, words.shape[0], words.shape[1]
            ))
        }
    };
    let scales = file.get(PACKED_SCALES, &[Dtype::F16], 2)?;
    let groups = scales.shape[0];
    if groups == 0 || scales.shape[1] != n || k % groups != 0 {
        return Err(format!("tensor `{PACKED_SCALES}` has shape {:?}, expected [K/g, {n}] with K = {k}", scales.shape));
    }
    let u32s = |t: &HostTensor| t.values::<i32>().into_iter().map(|v| v as u32).collect::<Vec<u32>>();
    let zeros = file.get_optional(PACKED_ZEROS, &[Dtype::I32], 2)?.map(u32s);
    let perm = file.get_optional(PACKED_PERM, &[Dtype::I32], 1)?.map(u32s);
    let shape = WeightOnlyShape::new(WeightBits::Int4, n, k, k / groups).map_err(|e| e.to_string())?;
    PackedWeights::from_parts(shape, u32s(words), scales.values::<f16>(), zeros, perm).map_err(|e| e.to_string())
}
