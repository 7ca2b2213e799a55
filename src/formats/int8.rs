//! Symmetric INT8: per-channel weight quantization (f32 or f16 scales), per-token
//! activation quantization (the bit-exact host model of the `quantize_int8_per_token`
//! kernel) and the bit-exact dequant reference. This file owns the INT8 storage types
//! [`Int8Weights`] and [`Int8Activations`].
//!
//! Layout, for both types: `q` is `i8 [rows, cols]` row-major, `scales` has one entry
//! per row, and the represented value is `q[r, c] * scales[r]`:
//!
//! ```text
//!   q (rows x cols, row-major)          scales (rows)
//!   row 0: q00 q01 q02 ... q0(K-1)      s0
//!   row 1: q10 q11 q12 ... q1(K-1)      s1
//!   ...
//! ```

use half::f16;

use super::{check_finite, check_len, checked_len, covering_scale_f16, covering_scale_f32, FormatError};

/// Largest magnitude the quantizers produce; the value range is `[-127, 127]`.
const QMAX: f32 = 127.0;

/// Storage type of per-channel INT8 weight scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleDtype {
    /// 32-bit float scales.
    F32,
    /// 16-bit float scales.
    F16,
}

/// Per-row scales of an INT8 weight matrix, in their storage type.
#[derive(Debug, Clone, PartialEq)]
pub enum Int8Scales {
    /// f32 scales, one per row.
    F32(Vec<f32>),
    /// f16 scales, one per row.
    F16(Vec<f16>),
}

impl Int8Scales {
    /// The storage type of these scales.
    pub fn dtype(&self) -> ScaleDtype {
        match self {
            Int8Scales::F32(_) => ScaleDtype::F32,
            Int8Scales::F16(_) => ScaleDtype::F16,
        }
    }

    /// The scales widened to f32 (exact for f16 scales).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Int8Scales::F32(s) => s.clone(),
            Int8Scales::F16(s) => s.iter().map(|v| v.to_f32()).collect(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Int8Scales::F32(s) => s.len(),
            Int8Scales::F16(s) => s.len(),
        }
    }
}

/// Symmetric per-channel INT8 weights `W[N = rows, K = cols]`: `q` is `i8 [rows, cols]`
/// row-major and row `n` represents `q[n, k] * scales[n]`.
///
/// Invariants (checked by [`Int8Weights::from_parts`]): non-zero shape,
/// `q.len() == rows * cols`, one finite scale per row. `q` may hold any `i8`,
/// including -128, which the quantizer never produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Weights {
    q: Vec<i8>,
    scales: Int8Scales,
    rows: usize,
    cols: usize,
}

impl Int8Weights {
    /// Validates and wraps raw parts (e.g. weights produced elsewhere).
    ///
    /// Errors: [`FormatError::ZeroDimension`], [`FormatError::ShapeOverflow`],
    /// [`FormatError::LengthMismatch`] (`"q"` or `"scales"`),
    /// [`FormatError::NonFinite`] (`"scales"`).
    pub fn from_parts(q: Vec<i8>, scales: Int8Scales, rows: usize, cols: usize) -> Result<Self, FormatError> {
        validate(q.len(), scales.len(), scales.to_f32(), rows, cols)?;
        Ok(Int8Weights { q, scales, rows, cols })
    }

    /// Quantized values, `i8 [rows, cols]` row-major.
    pub fn q(&self) -> &[i8] {
        &self.q
    }

    /// Per-row scales (one per output channel).
    pub fn scales(&self) -> &Int8Scales {
        &self.scales
    }

    /// Number of rows (N, output channels).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (K).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Dequantizes to f16 `[rows, cols]` exactly as [`dequant_int8_reference`] does
    /// (f16 scales are widened to f32 first, exactly).
    pub fn dequantize(&self) -> Vec<f16> {
        dequant_rows(&self.q, &self.scales.to_f32(), self.cols)
    }
}

/// Symmetric per-token INT8 activations `X[M = rows, K = cols]`: `q` is
/// `i8 [rows, cols]` row-major and row `m` represents `q[m, k] * scales[m]`; the
/// output format of the `quantize_int8_per_token` kernel.
///
/// Invariants (checked by [`Int8Activations::from_parts`]): non-zero shape,
/// `q.len() == rows * cols`, one finite f32 scale per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Activations {
    q: Vec<i8>,
    scales: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl Int8Activations {
    /// Validates and wraps raw parts (e.g. a kernel's output, to compare it with
    /// [`quantize_int8_per_token`]).
    ///
    /// Errors: [`FormatError::ZeroDimension`], [`FormatError::ShapeOverflow`],
    /// [`FormatError::LengthMismatch`] (`"q"` or `"scales"`),
    /// [`FormatError::NonFinite`] (`"scales"`).
    pub fn from_parts(q: Vec<i8>, scales: Vec<f32>, rows: usize, cols: usize) -> Result<Self, FormatError> {
        validate(q.len(), scales.len(), scales.iter().copied(), rows, cols)?;
        Ok(Int8Activations { q, scales, rows, cols })
    }

    /// Quantized values, `i8 [rows, cols]` row-major.
    pub fn q(&self) -> &[i8] {
        &self.q
    }

    /// Per-row (per-token) f32 scales.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Number of rows (M, tokens).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (K).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Dequantizes to f16 `[rows, cols]` exactly as [`dequant_int8_reference`] does.
    pub fn dequantize(&self) -> Vec<f16> {
        dequant_rows(&self.q, &self.scales, self.cols)
    }
}

/// Quantizes f32 weights `w [rows = N, cols = K]` (row-major) to symmetric INT8 with
/// one scale per row (output channel), stored as `scale_dtype`.
///
/// For each row `n`:
/// * `absmax = max_k |w[n, k]|`;
/// * `scale[n]` = the smallest value of the storage type that is `>= absmax / 127`
///   (for f32 this is `absmax / 127` itself or the next f32 up; rounding up rather
///   than to nearest means no element is ever clamped, also where the scale is
///   subnormal);
/// * `q[n, k] = clamp(round_half_to_even(w[n, k] / scale[n]), -127, 127)`, computed
///   in f32 with the *stored* scale (for f16, the f16 value widened exactly), so
///   `|q * scale - w| <= scale / 2` holds with the scale that is stored.
///
/// A row of all zeros gets `scale = 0` and `q = 0` (no division, no NaN).
///
/// Errors: [`FormatError::ZeroDimension`], [`FormatError::ShapeOverflow`],
/// [`FormatError::LengthMismatch`] (`"w"`), [`FormatError::NonFinite`] (`"w"`),
/// [`FormatError::ScaleOverflow`] (f16 only: `absmax / 127 > 65504`).
pub fn quantize_int8_per_channel(
    w: &[f32],
    rows: usize,
    cols: usize,
    scale_dtype: ScaleDtype,
) -> Result<Int8Weights, FormatError> {
    let len = checked_len(rows, cols)?;
    check_len("w", len, w.len())?;
    check_finite("w", w.iter().copied())?;

    let absmax = w.chunks_exact(cols).map(|row| row.iter().fold(0.0f32, |m, v| m.max(v.abs())));
    let scales = match scale_dtype {
        ScaleDtype::F32 => Int8Scales::F32(absmax.map(|a| covering_scale_f32(a.into(), QMAX.into())).collect()),
        ScaleDtype::F16 => Int8Scales::F16(
            absmax
                .enumerate()
                .map(|(row, a)| {
                    covering_scale_f16(a.into(), QMAX.into()).ok_or(FormatError::ScaleOverflow {
                        row,
                        group: 0,
                        required: f64::from(a) / f64::from(QMAX),
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let s32 = scales.to_f32();
    let q = w
        .chunks_exact(cols)
        .zip(&s32)
        .flat_map(|(row, &s)| {
            row.iter().map(move |&x| if s == 0.0 { 0 } else { (x / s).round_ties_even().clamp(-QMAX, QMAX) as i8 })
        })
        .collect();
    Ok(Int8Weights { q, scales, rows, cols })
}

/// Quantizes f16 activations `x [rows = M, cols = K]` (row-major) to symmetric INT8
/// with one f32 scale per row (token). This is the bit-exact host model of the GPU
/// kernel `quantize_int8_per_token`, which performs exactly these steps per row:
///
/// 1. `absmax = max_k |f32(x[m, k])|` (f16 → f32 is exact);
/// 2. if `absmax == 0`: `scale = 0` and every `q = 0`; stop;
/// 3. `inv = 127.0f32 / absmax` (IEEE f32 division, round to nearest even);
/// 4. `q[m, k] = clamp(round_half_to_even(f32(x[m, k]) * inv), -127, 127)` (one f32
///    multiply rounded to nearest, then rounded to the nearest integer, ties to
///    even);
/// 5. `scale = absmax / 127.0f32` (IEEE f32 division, round to nearest even).
///
/// Errors: [`FormatError::ZeroDimension`], [`FormatError::ShapeOverflow`],
/// [`FormatError::LengthMismatch`] (`"x"`), [`FormatError::NonFinite`] (`"x"`).
pub fn quantize_int8_per_token(x: &[f16], rows: usize, cols: usize) -> Result<Int8Activations, FormatError> {
    let len = checked_len(rows, cols)?;
    check_len("x", len, x.len())?;
    check_finite("x", x.iter().map(|v| v.to_f32()))?;

    let mut q = Vec::with_capacity(len);
    let mut scales = Vec::with_capacity(rows);
    for row in x.chunks_exact(cols) {
        let absmax = row.iter().fold(0.0f32, |m, v| m.max(v.to_f32().abs()));
        if absmax == 0.0 {
            q.extend(std::iter::repeat_n(0i8, cols));
            scales.push(0.0);
            continue;
        }
        let inv = QMAX / absmax;
        q.extend(row.iter().map(|v| (v.to_f32() * inv).round_ties_even().clamp(-QMAX, QMAX) as i8));
        scales.push(absmax / QMAX);
    }
    Ok(Int8Activations { q, scales, rows, cols })
}

/// Bit-exact reference of the INT8 dequant kernel: returns f16 `[rows, cols]` with
/// `out[r, c] = f16(q[r, c] as f32 * scales[r])` — one f32 multiply (rounded to
/// nearest even), then one conversion to f16 (rounded to nearest even). With f16
/// scales widened to f32 the product is exact, so the result is `q * scale` rounded
/// once; with arbitrary f32 scales it is rounded twice, as on the GPU.
///
/// Errors: [`FormatError::ZeroDimension`], [`FormatError::ShapeOverflow`],
/// [`FormatError::LengthMismatch`] (`"q"` or `"scales"`),
/// [`FormatError::NonFinite`] (`"scales"`).
pub fn dequant_int8_reference(q: &[i8], scales: &[f32], rows: usize, cols: usize) -> Result<Vec<f16>, FormatError> {
    validate(q.len(), scales.len(), scales.iter().copied(), rows, cols)?;
    Ok(dequant_rows(q, scales, cols))
}

/// Checks the shape, the lengths of `q` and the scales, and that the scales are finite.
fn validate(
    q_len: usize,
    scales_len: usize,
    scales: impl IntoIterator<Item = f32>,
    rows: usize,
    cols: usize,
) -> Result<(), FormatError> {
    let len = checked_len(rows, cols)?;
    check_len("q", len, q_len)?;
    check_len("scales", rows, scales_len)?;
    check_finite("scales", scales)
}

/// `f16(q * scale[row])` for every element; lengths already validated.
fn dequant_rows(q: &[i8], scales: &[f32], cols: usize) -> Vec<f16> {
    q.chunks_exact(cols)
        .zip(scales)
        .flat_map(|(row, &s)| row.iter().map(move |&v| f16::from_f32(f32::from(v) * s)))
        .collect()
}
