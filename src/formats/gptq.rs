//! Import of GPTQ checkpoints (AutoGPTQ / GPTQModel layout) into [`WeightOnlyWeights`].
//!
//! Tensors of one linear layer (K inputs, N outputs, groups of g along K, G = K / g):
//!
//! ```text
//!   qweight  int32 [K/8, N]   word (r, n), nibble i (lowest first) = code of (k = 8r + i, n)
//!   qzeros   int32 [G, N/8]   word (j, c), nibble i = zero point of (group j, n = 8c + i)
//!   scales   f16   [G, N]
//!   g_idx    int32 [K]        optional: the group of each k (act-order when not k / g)
//!
//!   w[k, n] = (q[k, n] − z[group(k), n]) · s[group(k), n]
//! ```
//!
//! The classic format ([`GptqVersion::V1`]) stores each zero point minus one (so it cannot
//! represent a zero point of 0: the stored nibble would be −1); v2 stores it as is.
//! Zero points that are all 8 are imported as symmetric (no zero-point loads in the
//! kernel).

use safetensors::Dtype;

use super::int32_codes::{BITS, MASK as NIBBLE, PER_WORD};
use super::weight_only::{
    check_g_idx, group_from_rows, CheckpointLayout, RawTensor, WeightBits, WeightOnlyError, WeightOnlyShape,
    WeightOnlyWeights,
};

/// Largest stored zero point in v1 (stored + 1 must stay <= 15).
const V1_MAX_STORED: u32 = 14;

/// Which GPTQ zero-point convention a checkpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GptqVersion {
    /// AutoGPTQ's classic format: stored zero point = z − 1 (`--format gptq`).
    V1,
    /// GPTQModel's v2 format: stored zero point = z (`--format gptq_v2`).
    V2,
}

/// The tensors of one GPTQ layer, as read from a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct GptqTensors<'a> {
    /// `qweight` int32 `[K/8, N]`.
    pub qweight: RawTensor<'a>,
    /// `qzeros` int32 `[K/g, N/8]`.
    pub qzeros: RawTensor<'a>,
    /// `scales` f16 `[K/g, N]`.
    pub scales: RawTensor<'a>,
    /// `g_idx` int32 `[K]`, optional.
    pub g_idx: Option<RawTensor<'a>>,
}

/// Imports a GPTQ layer. Errors (typed): wrong dtype or rank, shapes that disagree, N not
/// a multiple of 8 (`qzeros` packs 8 columns per word), K not divisible into equal groups
/// of 32, 64, 128 or K, `g_idx` out of range or unbalanced, AWQ's shapes
/// ([`WeightOnlyError::OtherCheckpointLayout`]), a v1 stored zero-point nibble
/// of 15 (z = 16, [`WeightOnlyError::GptqV1ZeroOverflow`]), a shape whose size overflows
/// ([`WeightOnlyError::TensorOverflow`], [`WeightOnlyError::ShapeOverflow`]).
pub fn import_gptq(t: &GptqTensors<'_>, version: GptqVersion) -> Result<WeightOnlyWeights, WeightOnlyError> {
    t.qweight.expect("qweight", Dtype::I32, "int32", 2)?;
    t.qzeros.expect("qzeros", Dtype::I32, "int32", 2)?;
    t.scales.expect("scales", Dtype::F16, "f16", 2)?;
    CheckpointLayout::Gptq.check(t.qweight.shape, t.scales.shape)?;
    let (k_words, n) = (t.qweight.shape[0], t.qweight.shape[1]);
    if n == 0 || k_words == 0 {
        return Err(WeightOnlyError::ZeroDimension { arg: if n == 0 { "N" } else { "K" } });
    }
    let k = k_words.checked_mul(PER_WORD).ok_or_else(|| t.qweight.overflow("qweight"))?;
    if n % PER_WORD != 0 {
        return Err(WeightOnlyError::NotMultiple {
            arg: "N",
            value: n,
            multiple: PER_WORD,
            reason: "qzeros packs the zero points of 8 columns per int32",
        });
    }
    let groups = t.scales.shape[0];
    t.scales.expect_shape("scales", &[groups, n], "[K/g, N]")?;
    let group = group_from_rows(k, groups)?;
    t.qzeros.expect_shape("qzeros", &[groups, n / PER_WORD], "[K/g, N/8]")?;
    // Before any allocation: N·K codes must fit in memory.
    let shape = WeightOnlyShape::new(WeightBits::Int4, n, k, group)?;

    let qweight = t.qweight.i32s();
    let mut codes = vec![0u8; shape.weights()];
    for (r, row) in qweight.chunks_exact(n).enumerate() {
        for (col, &word) in row.iter().enumerate() {
            for i in 0..PER_WORD {
                codes[col * k + r * PER_WORD + i] = ((word as u32 >> (BITS * i)) & NIBBLE) as u8;
            }
        }
    }
    let qzeros = t.qzeros.i32s();
    let mut zeros = vec![0u8; shape.scale_count()];
    for (idx, &word) in qzeros.iter().enumerate() {
        for i in 0..PER_WORD {
            let stored = (word as u32 >> (BITS * i)) & NIBBLE;
            let z = match version {
                GptqVersion::V2 => stored,
                GptqVersion::V1 if stored <= V1_MAX_STORED => stored + 1,
                GptqVersion::V1 => {
                    let words_per_row = n / PER_WORD;
                    return Err(WeightOnlyError::GptqV1ZeroOverflow {
                        group: idx / words_per_row,
                        column: idx % words_per_row * PER_WORD + i,
                    });
                }
            };
            zeros[idx * PER_WORD + i] = z as u8;
        }
    }
    let symmetric = zeros.iter().all(|&z| z == WeightBits::Int4.symmetric_zero());
    let g_idx = t.g_idx.as_ref().map(|g| import_g_idx(g, k, groups, group)).transpose()?;
    WeightOnlyWeights::new(shape, codes, t.scales.f16s(), (!symmetric).then_some(zeros), g_idx)
}

/// Reads and validates `g_idx` int32 `[K]`.
fn import_g_idx(g: &RawTensor<'_>, k: usize, groups: usize, group: usize) -> Result<Vec<u32>, WeightOnlyError> {
    g.expect("g_idx", Dtype::I32, "int32", 1)?;
    g.expect_shape("g_idx", &[k], "[K]")?;
    let values = g.i32s();
    if let Some(index) = values.iter().position(|&v| v < 0) {
        return Err(WeightOnlyError::GIdxOutOfRange { index, value: i64::from(values[index]), groups });
    }
    let values: Vec<u32> = values.into_iter().map(|v| v as u32).collect();
    check_g_idx(&values, groups, group)?;
    Ok(values)
}
