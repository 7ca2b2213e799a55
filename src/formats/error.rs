//! The typed error of the `formats` module: every way a quantizer, packer, validating
//! constructor or dequant reference can reject its input. No function of the module
//! panics on bad input; each returns one of these variants, naming the argument and
//! what was expected versus what it got.

/// Why a quantization-format operation rejected its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// A matrix dimension (`"rows"` or `"cols"`; `"M"`, `"N"` or `"K"` for the GEMM
    /// references) was zero.
    #[error("{arg} must be non-zero")]
    ZeroDimension {
        /// Which dimension: `"rows"`, `"cols"`, `"M"`, `"N"` or `"K"`.
        arg: &'static str,
    },
    /// `rows * cols` does not fit in `usize` (for the GEMM references: M·K, N·K, or the
    /// output M·N, which must also fit in one allocation).
    #[error("shape {rows} x {cols} overflows usize")]
    ShapeOverflow {
        /// The requested number of rows.
        rows: usize,
        /// The requested number of columns.
        cols: usize,
    },
    /// A slice had the wrong length for the shape it was given with.
    #[error("{arg}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// Which argument, e.g. `"w"`, `"scales"`, `"zeros"`, `"packed"`.
        arg: &'static str,
        /// The length the shape requires.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },
    /// INT4 packing stores two values per byte along K, so K (`cols`) must be even.
    #[error("cols (K = {cols}) must be even to pack two int4 values per byte")]
    OddCols {
        /// The odd K that was passed.
        cols: usize,
    },
    /// K (`cols`) is not a multiple of the INT4 group size.
    #[error("cols (K = {cols}) is not divisible by the group size {group}")]
    GroupNotDivisible {
        /// The K that was passed.
        cols: usize,
        /// The group size in elements.
        group: usize,
    },
    /// A group size other than 32, 64 or 128 was requested.
    #[error("unsupported int4 group size {got}; expected 32, 64 or 128")]
    UnsupportedGroupSize {
        /// The group size that was requested.
        got: usize,
    },
    /// Input data or a scale was NaN or infinite.
    #[error("{arg}[{index}] = {value} is not finite")]
    NonFinite {
        /// Which argument, e.g. `"w"`, `"x"`, `"scales"`.
        arg: &'static str,
        /// Flat (row-major) index of the first offending element.
        index: usize,
        /// The offending value (widened to f32 for f16 inputs).
        value: f32,
    },
    /// A value to be packed into a 4-bit nibble was above 15.
    #[error("{arg}[{index}] = {value} does not fit in 4 bits (expected 0..=15)")]
    NibbleOutOfRange {
        /// Which argument, e.g. `"values"`.
        arg: &'static str,
        /// Flat (row-major) index of the first offending element.
        index: usize,
        /// The offending value.
        value: u8,
    },
    /// An INT4 zero point was above 15.
    #[error("zeros[{index}] = {value} is outside the zero-point range 0..=15")]
    ZeroPointOutOfRange {
        /// Flat (row-major, group index fastest) index of the offending zero point.
        index: usize,
        /// The offending zero point.
        value: u8,
    },
    /// The scale a row or group needs is larger than the largest finite f16 (65504).
    #[error("row {row}, group {group}: scale {required} exceeds the f16 range (max 65504)")]
    ScaleOverflow {
        /// Row (output channel) of the group.
        row: usize,
        /// Group index within the row (0 for per-channel scales).
        group: usize,
        /// The scale that would have been needed.
        required: f64,
    },
}
