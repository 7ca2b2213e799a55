//! Host-side quantization formats: the storage layouts the CUDA kernels read and write,
//! the reference quantizers and packers that produce them, and the bit-exact dequant
//! references the GPU kernels are tested against. Nothing here touches a GPU.
//!
//! * [`int8`]: symmetric INT8 — per-channel weights (f32 or f16 scales), per-token
//!   activations (host model of the `quantize_int8_per_token` kernel) and the dequant
//!   reference.
//! * [`int4`]: group-wise INT4 (groups of 32, 64, 128 or one group per row),
//!   symmetric or asymmetric, packed two values per byte in the "generic" layout the
//!   dequant kernel reads.
//! * [`weight_only`]: weight-only W4A16/W8A16 weights — the logical form, the kernel
//!   layout of `gemm_w4a16`/`gemm_w8a16`, the repack (a bijection) and the dequant
//!   reference; [`gptq`] and [`awq`] import checkpoints into it (typed
//!   [`WeightOnlyError`]s).
//! * [`error`]: [`FormatError`], the one error type of the module.
//!
//! All matrices are row-major `[rows, cols]`; for weights `rows` = N (output channels)
//! and `cols` = K (reduction dimension), for activations `rows` = M (tokens).
//! Every function validates its input and returns a [`FormatError`] instead of
//! panicking.

pub mod awq;
pub mod error;
pub mod gptq;
pub mod int4;
pub mod int8;
pub mod weight_only;

pub use awq::{import_awq, AwqTensors, AWQ_ORDER};
pub use error::FormatError;
pub use gptq::{import_gptq, GptqTensors, GptqVersion};
pub use int4::{dequant_int4_reference, pack_int4, quantize_int4, unpack_int4, GroupSize, Int4Scheme, Int4Weights};
pub use int8::{
    dequant_int8_reference, quantize_int8_per_channel, quantize_int8_per_token, Int8Activations, Int8Scales,
    Int8Weights, ScaleDtype,
};
pub use weight_only::{
    pack_weight_only, unpack_weight_only, CheckpointLayout, PackedWeights, RawTensor, WeightBits, WeightOnlyError,
    WeightOnlyShape, WeightOnlyWeights,
};

use half::f16;

/// How GPTQ and AWQ checkpoints pack 4-bit codes: eight to an int32 word, code i in bits
/// 4i .. 4i + 3 (along K in GPTQ's `qweight`, along N in AWQ's and in both `qzeros`).
pub(crate) mod int32_codes {
    /// Codes per int32 word.
    pub const PER_WORD: usize = 8;
    /// Bits per code.
    pub const BITS: usize = 4;
    /// Mask of one code.
    pub const MASK: u32 = 0xf;
}

/// Checks that `rows` and `cols` are non-zero and returns `rows * cols`.
fn checked_len(rows: usize, cols: usize) -> Result<usize, FormatError> {
    if rows == 0 {
        return Err(FormatError::ZeroDimension { arg: "rows" });
    }
    if cols == 0 {
        return Err(FormatError::ZeroDimension { arg: "cols" });
    }
    rows.checked_mul(cols).ok_or(FormatError::ShapeOverflow { rows, cols })
}

/// Checks that the slice argument `arg` has length `expected`.
pub(crate) fn check_len(arg: &'static str, expected: usize, got: usize) -> Result<(), FormatError> {
    if expected == got {
        Ok(())
    } else {
        Err(FormatError::LengthMismatch { arg, expected, got })
    }
}

/// Checks that every value (given as f32) of the argument `arg` is finite.
fn check_finite(arg: &'static str, values: impl IntoIterator<Item = f32>) -> Result<(), FormatError> {
    match values.into_iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, value)) => Err(FormatError::NonFinite { arg, index, value }),
        None => Ok(()),
    }
}

/// The smallest f32 that is `>= span / levels` (quotient evaluated in f64), so that
/// `|x| / scale <= levels` for every `|x| <= span`. `span` must be finite and
/// non-negative; `span == 0` gives 0.
fn covering_scale_f32(span: f64, levels: f64) -> f32 {
    let target = span / levels;
    let s = target as f32;
    if f64::from(s) < target {
        // s is finite, non-negative and below f32::MAX: the next bit pattern is the
        // next larger f32.
        f32::from_bits(s.to_bits() + 1)
    } else {
        s
    }
}

/// The smallest f16 that is `>= span / levels` (quotient evaluated in f64), or `None`
/// when that exceeds the largest finite f16. `span` must be finite and non-negative;
/// `span == 0` gives 0. Rounding up (instead of to nearest) keeps the scale covering
/// the data even where f16 is coarse (subnormal scales), so no element is clamped
/// further than half a step.
fn covering_scale_f16(span: f64, levels: f64) -> Option<f16> {
    let target = span / levels;
    // Rounding through f32 lands on one of the two f16 neighbours of `target`.
    let s = f16::from_f32(target as f32);
    let s = if s.to_f64() < target {
        // s is finite and non-negative (below target): the next bit pattern is the
        // next larger f16 (or +inf after 65504).
        f16::from_bits(s.to_bits() + 1)
    } else {
        s
    };
    s.is_finite().then_some(s)
}
