//! Group-wise INT4 weights: the "generic" packed layout the INT4 dequant kernel reads,
//! the symmetric and asymmetric reference quantizers, nibble packing/unpacking and
//! the bit-exact dequant reference. This file owns [`Int4Weights`], [`GroupSize`]
//! and [`Int4Scheme`]. (The GEMM's interleaved layout lives in `weight_only`;
//! `WeightOnlyWeights::from_int4` takes these weights there.)
//!
//! # Layout
//!
//! Weights `W` are logically `[N = rows, K = cols]` (output channels x reduction
//! dimension), row-major, each value an unsigned 4-bit code `q` in `0..=15`. K must
//! be even and a multiple of the group size `g` ([`GroupSize::elems`]).
//!
//! * `packed`: `u8 [N, K/2]` row-major. Byte `j` of row `n` holds `k = 2j` in its
//!   LOW nibble and `k = 2j + 1` in its HIGH nibble:
//!
//! ```text
//!   row n of W (K = 8):  k =     0     1     2     3     4     5     6     7
//!                        q =    q0    q1    q2    q3    q4    q5    q6    q7
//!
//!   packed row n (K/2 = 4 bytes):
//!                     byte j =       0           1           2           3
//!                     bits   =  [7..4|3..0] [7..4|3..0] [7..4|3..0] [7..4|3..0]
//!                     holds  =  [ q1 | q0 ] [ q3 | q2 ] [ q5 | q4 ] [ q7 | q6 ]
//!
//!   packed[n * K/2 + j] = q[n, 2j] | (q[n, 2j + 1] << 4)
//! ```
//!
//! * `scales`: `f16 [N, K/g]` row-major (group index fastest): `s[n, k / g]`.
//! * `zeros`: `u8 [N, K/g]` row-major, values `0..=15`, one per scale; absent for
//!   [`Int4Scheme::Symmetric`], where the zero point is implicitly 8.
//!
//! The represented value is `w[n, k] = (q[n, k] - z[n, k/g]) * s[n, k/g]`; see
//! [`dequant_int4_reference`] for the exact rounding.

use half::f16;

use super::{check_finite, check_len, checked_len, covering_scale_f16, FormatError};

/// Implicit zero point of [`Int4Scheme::Symmetric`].
const SYM_ZERO: u8 = 8;
/// Symmetric scale divisor: `scale >= absmax / 7`, codes `q - 8` in `[-7, 7]`.
const SYM_LEVELS: f32 = 7.0;
/// Asymmetric scale divisor: `scale >= (max - min) / 15`.
const ASYM_LEVELS: f32 = 15.0;
/// Largest 4-bit code.
const NIBBLE_MAX: u8 = 15;

/// How many consecutive elements along K share one INT4 scale (and zero point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSize {
    /// Groups of 32 elements.
    G32,
    /// Groups of 64 elements.
    G64,
    /// Groups of 128 elements.
    G128,
    /// One group spanning the whole row (per-channel scale).
    PerChannel,
}

impl GroupSize {
    /// Elements per group in a row of `k` elements (`k` itself for
    /// [`GroupSize::PerChannel`]).
    pub fn elems(self, k: usize) -> usize {
        match self {
            GroupSize::G32 => 32,
            GroupSize::G64 => 64,
            GroupSize::G128 => 128,
            GroupSize::PerChannel => k,
        }
    }
}

impl TryFrom<usize> for GroupSize {
    type Error = FormatError;

    /// Maps 32, 64 and 128 to their group size; anything else is
    /// [`FormatError::UnsupportedGroupSize`] (per-channel has no fixed number: use
    /// [`GroupSize::PerChannel`]).
    fn try_from(elems: usize) -> Result<Self, FormatError> {
        match elems {
            32 => Ok(GroupSize::G32),
            64 => Ok(GroupSize::G64),
            128 => Ok(GroupSize::G128),
            got => Err(FormatError::UnsupportedGroupSize { got }),
        }
    }
}

/// INT4 quantization scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int4Scheme {
    /// Implicit zero point 8: codes `0..=15` mean `-8..=7`; no `zeros` stored.
    Symmetric,
    /// An explicit zero point `0..=15` per group, stored in `zeros`.
    Asymmetric,
}

/// Group-wise INT4 weights in the generic packed layout (see the
/// [module documentation](self) for the picture).
///
/// Invariants (checked by [`Int4Weights::from_parts`]): non-zero shape, even `cols`
/// divisible by the group size, `packed.len() == rows * cols / 2`,
/// `scales.len() == rows * cols / g` with every scale finite, and for the asymmetric
/// scheme `zeros.len() == scales.len()` with every zero point in `0..=15`.
#[derive(Debug, Clone, PartialEq)]
pub struct Int4Weights {
    packed: Vec<u8>,
    scales: Vec<f16>,
    zeros: Option<Vec<u8>>,
    rows: usize,
    cols: usize,
    group: GroupSize,
}

impl Int4Weights {
    /// Validates and wraps raw parts; `zeros: None` means [`Int4Scheme::Symmetric`].
    ///
    /// Errors: [`FormatError::ZeroDimension`], [`FormatError::ShapeOverflow`],
    /// [`FormatError::OddCols`], [`FormatError::GroupNotDivisible`],
    /// [`FormatError::LengthMismatch`] (`"packed"`, `"scales"` or `"zeros"`),
    /// [`FormatError::NonFinite`] (`"scales"`), [`FormatError::ZeroPointOutOfRange`].
    pub fn from_parts(
        packed: Vec<u8>,
        scales: Vec<f16>,
        zeros: Option<Vec<u8>>,
        rows: usize,
        cols: usize,
        group: GroupSize,
    ) -> Result<Self, FormatError> {
        let (len, n_groups) = check_shape(rows, cols, group)?;
        check_len("packed", len / 2, packed.len())?;
        check_len("scales", n_groups, scales.len())?;
        check_finite("scales", scales.iter().map(|s| s.to_f32()))?;
        if let Some(z) = &zeros {
            check_len("zeros", n_groups, z.len())?;
            if let Some((index, &value)) = z.iter().enumerate().find(|(_, &v)| v > NIBBLE_MAX) {
                return Err(FormatError::ZeroPointOutOfRange { index, value });
            }
        }
        Ok(Int4Weights { packed, scales, zeros, rows, cols, group })
    }

    /// Packed codes, `u8 [rows, cols / 2]`, low nibble = even k.
    pub fn packed(&self) -> &[u8] {
        &self.packed
    }

    /// Scales, `f16 [rows, cols / g]` row-major.
    pub fn scales(&self) -> &[f16] {
        &self.scales
    }

    /// Zero points, `u8 [rows, cols / g]` row-major; `None` for the symmetric scheme
    /// (implicit zero point 8).
    pub fn zeros(&self) -> Option<&[u8]> {
        self.zeros.as_deref()
    }

    /// Number of rows (N, output channels).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (K).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The group size.
    pub fn group(&self) -> GroupSize {
        self.group
    }

    /// The scheme: asymmetric iff zero points are stored.
    pub fn scheme(&self) -> Int4Scheme {
        match self.zeros {
            Some(_) => Int4Scheme::Asymmetric,
            None => Int4Scheme::Symmetric,
        }
    }

    /// The unpacked codes, `u8 [rows, cols]` row-major, each in `0..=15`.
    pub fn values(&self) -> Vec<u8> {
        unpack_pairs(&self.packed)
    }
}

/// Quantizes f32 weights `w [rows = N, cols = K]` (row-major) to packed INT4 with one
/// f16 scale (and, for the asymmetric scheme, one zero point) per group of
/// `group.elems(cols)` consecutive elements of a row.
///
/// Per group (all arithmetic in f32 with the *stored* f16 scale `s`, widened exactly;
/// `round` is round-half-to-even):
///
/// * [`Int4Scheme::Symmetric`]: `absmax = max |x|`; `s` = the smallest f16
///   `>= absmax / 7`; code `q = clamp(round(x / s), -8, 7) + 8`, zero point 8.
///   Because `|x| / s <= 7` the code `-8` (stored 0) is never produced (it is valid
///   input to [`Int4Weights::from_parts`] and dequantizes to `-8 * s`), and every
///   element satisfies `|(q - 8) * s - x| <= s / 2`.
/// * [`Int4Scheme::Asymmetric`]: the range is widened to contain zero,
///   `lo = min(min x, 0)`, `hi = max(max x, 0)` (so the zero point is in range and
///   0.0 is exactly representable); `s` = the smallest f16 `>= (hi - lo) / 15`;
///   `z = clamp(round(-lo / s), 0, 15)`; `q = clamp(round(x / s) + z, 0, 15)`.
///   Every element satisfies `|(q - z) * s - x| <= s / 2` (the rounding of `z`
///   shifts the representable range by at most `s / 2`).
///
/// The scale is rounded *up* to f16 (never down) so it always covers the group, also
/// where f16 is subnormal. A group of all zeros gets `s = 0` and represents 0
/// (symmetric: codes 8; asymmetric: `z = 0`, codes 0).
///
/// Errors: [`FormatError::ZeroDimension`], [`FormatError::ShapeOverflow`],
/// [`FormatError::OddCols`], [`FormatError::GroupNotDivisible`],
/// [`FormatError::LengthMismatch`] (`"w"`), [`FormatError::NonFinite`] (`"w"`),
/// [`FormatError::ScaleOverflow`] (a scale above 65504 would be needed).
pub fn quantize_int4(
    w: &[f32],
    rows: usize,
    cols: usize,
    group: GroupSize,
    scheme: Int4Scheme,
) -> Result<Int4Weights, FormatError> {
    let (len, n_groups) = check_shape(rows, cols, group)?;
    check_len("w", len, w.len())?;
    check_finite("w", w.iter().copied())?;
    let g = group.elems(cols);
    let groups_per_row = cols / g;

    let mut values = Vec::with_capacity(len);
    let mut scales = Vec::with_capacity(n_groups);
    let mut zeros = match scheme {
        Int4Scheme::Symmetric => None,
        Int4Scheme::Asymmetric => Some(Vec::with_capacity(n_groups)),
    };
    // `g` divides `cols`, so consecutive chunks of `g` are the groups in row-major
    // order: chunk i is row i / groups_per_row, group i % groups_per_row.
    for (i, x) in w.chunks_exact(g).enumerate() {
        let lo = x.iter().fold(0.0f32, |m, &v| m.min(v));
        let hi = x.iter().fold(0.0f32, |m, &v| m.max(v));
        let (span, levels) = match scheme {
            // absmax, since lo <= 0 <= hi.
            Int4Scheme::Symmetric => (f64::from(hi.max(-lo)), SYM_LEVELS),
            // Exact enough and finite in f64 for any finite f32 inputs.
            Int4Scheme::Asymmetric => (f64::from(hi) - f64::from(lo), ASYM_LEVELS),
        };
        let s = covering_scale_f16(span, f64::from(levels)).ok_or(FormatError::ScaleOverflow {
            row: i / groups_per_row,
            group: i % groups_per_row,
            required: span / f64::from(levels),
        })?;
        scales.push(s);
        let s = s.to_f32();
        match &mut zeros {
            None => values.extend(x.iter().map(|&v| {
                if s == 0.0 {
                    SYM_ZERO
                } else {
                    ((v / s).round_ties_even().clamp(-8.0, 7.0) + f32::from(SYM_ZERO)) as u8
                }
            })),
            Some(zeros) => {
                let z = if s == 0.0 { 0.0 } else { (-lo / s).round_ties_even().clamp(0.0, ASYM_LEVELS) };
                zeros.push(z as u8);
                values.extend(x.iter().map(|&v| {
                    if s == 0.0 {
                        0
                    } else {
                        ((v / s).round_ties_even() + z).clamp(0.0, ASYM_LEVELS) as u8
                    }
                }));
            }
        }
    }
    Ok(Int4Weights { packed: pack_pairs(&values), scales, zeros, rows, cols, group })
}

/// Packs 4-bit codes `values: u8 [rows, cols]` (row-major, each `0..=15`) into
/// `u8 [rows, cols / 2]`: byte `j` of a row holds element `2j` in its low nibble and
/// `2j + 1` in its high nibble (see the [module documentation](self)).
///
/// Errors: [`FormatError::ZeroDimension`], [`FormatError::ShapeOverflow`],
/// [`FormatError::OddCols`], [`FormatError::LengthMismatch`] (`"values"`),
/// [`FormatError::NibbleOutOfRange`] (a value above 15).
pub fn pack_int4(values: &[u8], rows: usize, cols: usize) -> Result<Vec<u8>, FormatError> {
    let len = checked_len(rows, cols)?;
    if cols % 2 == 1 {
        return Err(FormatError::OddCols { cols });
    }
    check_len("values", len, values.len())?;
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, &v)| v > NIBBLE_MAX) {
        return Err(FormatError::NibbleOutOfRange { arg: "values", index, value });
    }
    Ok(pack_pairs(values))
}

/// Unpacks `packed: u8 [rows, cols / 2]` into 4-bit codes `u8 [rows, cols]`
/// (row-major, each `0..=15`); the inverse of [`pack_int4`].
///
/// Errors: [`FormatError::ZeroDimension`], [`FormatError::ShapeOverflow`],
/// [`FormatError::OddCols`], [`FormatError::LengthMismatch`] (`"packed"`).
pub fn unpack_int4(packed: &[u8], rows: usize, cols: usize) -> Result<Vec<u8>, FormatError> {
    let len = checked_len(rows, cols)?;
    if cols % 2 == 1 {
        return Err(FormatError::OddCols { cols });
    }
    check_len("packed", len / 2, packed.len())?;
    Ok(unpack_pairs(packed))
}

/// Bit-exact reference of the generic INT4 dequant kernel: returns f16
/// `[rows, cols]` with
///
/// ```text
///   out[n, k] = f16( ((q[n, k] - z[n, k/g]) as f32) * f32(s[n, k/g]) )
/// ```
///
/// (`z = 8` for the symmetric scheme). The f32 product is exact (`|q - z| <= 15`
/// has 4 significant bits, the f16 scale 11), so the result is the exact product
/// rounded once to f16, round-to-nearest-even.
pub fn dequant_int4_reference(w: &Int4Weights) -> Vec<f16> {
    let g = w.group.elems(w.cols);
    let zeros = w.zeros.as_deref();
    unpack_pairs(&w.packed)
        .chunks_exact(g)
        .zip(&w.scales)
        .enumerate()
        .flat_map(|(i, (codes, s))| {
            let s = s.to_f32();
            let z = zeros.map_or(SYM_ZERO, |z| z[i]);
            codes.iter().map(move |&q| f16::from_f32(f32::from(i16::from(q) - i16::from(z)) * s))
        })
        .collect()
}

/// Validates an INT4 shape; returns `(rows * cols, rows * groups_per_row)`.
fn check_shape(rows: usize, cols: usize, group: GroupSize) -> Result<(usize, usize), FormatError> {
    let len = checked_len(rows, cols)?;
    if cols % 2 == 1 {
        return Err(FormatError::OddCols { cols });
    }
    let g = group.elems(cols);
    let groups_per_row = cols / g;
    if groups_per_row * g != cols {
        return Err(FormatError::GroupNotDivisible { cols, group: g });
    }
    Ok((len, rows * groups_per_row))
}

/// Packs pairs of codes (already checked to be `0..=15`, even count) into bytes.
fn pack_pairs(values: &[u8]) -> Vec<u8> {
    values.chunks_exact(2).map(|pair| pair[0] | (pair[1] << 4)).collect()
}

/// Splits each byte into (low nibble, high nibble).
fn unpack_pairs(packed: &[u8]) -> Vec<u8> {
    packed.iter().flat_map(|&b| [b & 0x0f, b >> 4]).collect()
}
