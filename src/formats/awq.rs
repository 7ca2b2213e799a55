//! Import of AWQ checkpoints (AutoAWQ "GEMM" layout) into [`WeightOnlyWeights`].
//!
//! Tensors of one linear layer (K inputs, N outputs, groups of g along K, G = K / g):
//!
//! ```text
//!   qweight  int32 [K, N/8]   nibble i of word (k, j) = code of (k, n = 8j + ORDER[i])
//!   qzeros   int32 [G, N/8]   nibble i of word (grp, j) = zero point of (grp, 8j + ORDER[i])
//!   scales   f16   [G, N]
//!   ORDER = [0, 2, 4, 6, 1, 3, 5, 7]   (AutoAWQ's interleave)
//!
//!   w[k, n] = (q[k, n] − z[k / g, n]) · s[k / g, n]
//! ```
//!
//! AWQ is asymmetric (zero points stored as is); all-8 zero points import as symmetric.

use safetensors::Dtype;

use super::int32_codes::{BITS, MASK as NIBBLE, PER_WORD};
use super::weight_only::{
    group_from_rows, CheckpointLayout, RawTensor, WeightBits, WeightOnlyError, WeightOnlyShape, WeightOnlyWeights,
};

/// AutoAWQ's column order inside a word: nibble i holds column `8j + AWQ_ORDER[i]`.
pub const AWQ_ORDER: [usize; 8] = [0, 2, 4, 6, 1, 3, 5, 7];

/// The tensors of one AWQ layer, as read from a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct AwqTensors<'a> {
    /// `qweight` int32 `[K, N/8]`.
    pub qweight: RawTensor<'a>,
    /// `qzeros` int32 `[K/g, N/8]`.
    pub qzeros: RawTensor<'a>,
    /// `scales` f16 `[K/g, N]`.
    pub scales: RawTensor<'a>,
}

/// Imports an AWQ layer. Errors (typed): wrong dtype or rank, shapes that disagree,
/// K not divisible into equal groups of 32, 64, 128 or K, GPTQ's shapes
/// ([`WeightOnlyError::OtherCheckpointLayout`]), a shape whose size overflows
/// ([`WeightOnlyError::TensorOverflow`], [`WeightOnlyError::ShapeOverflow`]).
pub fn import_awq(t: &AwqTensors<'_>) -> Result<WeightOnlyWeights, WeightOnlyError> {
    t.qweight.expect("qweight", Dtype::I32, "int32", 2)?;
    t.qzeros.expect("qzeros", Dtype::I32, "int32", 2)?;
    t.scales.expect("scales", Dtype::F16, "f16", 2)?;
    CheckpointLayout::Awq.check(t.qweight.shape, t.scales.shape)?;
    let (k, n_words) = (t.qweight.shape[0], t.qweight.shape[1]);
    if n_words == 0 || k == 0 {
        return Err(WeightOnlyError::ZeroDimension { arg: if n_words == 0 { "N" } else { "K" } });
    }
    let n = n_words.checked_mul(PER_WORD).ok_or_else(|| t.qweight.overflow("qweight"))?;
    let groups = t.scales.shape[0];
    t.scales.expect_shape("scales", &[groups, n], "[K/g, N] (N = 8 x qweight columns)")?;
    let group = group_from_rows(k, groups)?;
    t.qzeros.expect_shape("qzeros", &[groups, n_words], "[K/g, N/8]")?;
    // Before any allocation: N·K codes must fit in memory.
    let shape = WeightOnlyShape::new(WeightBits::Int4, n, k, group)?;

    let unpack = |words: &[i32], rows: usize, out: &mut Vec<u8>, transpose_k: Option<usize>| {
        for r in 0..rows {
            for j in 0..n_words {
                let word = words[r * n_words + j] as u32;
                for (i, &col) in AWQ_ORDER.iter().enumerate() {
                    let v = ((word >> (BITS * i)) & NIBBLE) as u8;
                    let n_idx = PER_WORD * j + col;
                    match transpose_k {
                        Some(k_total) => out[n_idx * k_total + r] = v,
                        None => out[r * n + n_idx] = v,
                    }
                }
            }
        }
    };
    let mut codes = vec![0u8; shape.weights()];
    unpack(&t.qweight.i32s(), k, &mut codes, Some(k));
    let mut zeros = vec![0u8; shape.scale_count()];
    unpack(&t.qzeros.i32s(), groups, &mut zeros, None);
    let symmetric = zeros.iter().all(|&z| z == WeightBits::Int4.symmetric_zero());
    WeightOnlyWeights::new(shape, codes, t.scales.f16s(), (!symmetric).then_some(zeros), None)
}
