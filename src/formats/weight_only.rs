//! Weight-only quantized weights (W4A16 / W8A16): the logical form every import produces
//! ([`WeightOnlyWeights`]: from GPTQ, AWQ, int8 values, or this crate's INT4 quantizer
//! via [`WeightOnlyWeights::from_int4`]), the kernel layout the `gemm_w4a16` / `gemm_w8a16` kernels read
//! ([`PackedWeights`]), the repack between them ([`pack_weight_only`],
//! [`unpack_weight_only`]: a bijection) and the dequant reference.
//!
//! # Logical form
//!
//! ```text
//!   codes  u8  [N, K]   unsigned codes u: 4-bit 0..=15; 8-bit u = q + 128 (q the int8 value)
//!   scales f16 [G, N]   G = K / g groups along K (G = 1: per-channel)
//!   zeros  u8  [G, N]   4-bit asymmetric only (0..=15); else implicit 8 (4-bit) / 128 (8-bit)
//!   g_idx  u32 [K]      optional (act-order GPTQ): the group of each k; else group(k) = k / g
//!
//!   w[n, k] = f16( (u[n, k] − z[group(k), n]) · s[group(k), n] )   (exact product, one rounding)
//! ```
//!
//! # Kernel layout
//!
//! Documented once, in `kernels/include/qk_abi.h` ("gemm_w4a16 / gemm_w8a16"); the
//! position methods [`WeightOnlyShape::code_position`], [`WeightOnlyShape::scale_position`]
//! and [`WeightOnlyShape::zero_position`] are its executable form.
//! Requirements, each for a layout reason: N a multiple of 64 ([`N_BLOCK`]: a warp's
//! 16-byte load spans 8 n8-tiles), K a multiple of 16 ([`K_STEP`]: one mma k-step), the
//! group 32, 64, 128 or K with K divisible by it. Act-order weights are stored with K
//! sorted by group (stable), which makes every group contiguous; the permutation is kept
//! ([`PackedWeights::perm`]) and applied to A's columns on the device.

use half::f16;

use super::int32_codes;
use crate::abi;
use crate::reference::f16_from_f64_rn;

/// Columns of one packed weight unit; N must be a multiple (`QK_WO_N_BLOCK`).
pub const N_BLOCK: usize = abi::QK_WO_N_BLOCK as usize;
/// K of one packed weight unit (one mma.m16n8k16 k-step); K must be a multiple.
pub const K_STEP: usize = abi::QK_WO_K_STEP as usize;
/// Group sizes below the per-channel case that the kernels support.
pub const GROUP_SIZES: [usize; 3] = [32, 64, 128];

/// Lanes of a warp: a unit holds one 16-byte chunk (4-bit) or two (8-bit) per lane.
const WARP_LANES: usize = 32;
/// 32-bit words in a 16-byte chunk.
const WORDS_PER_CHUNK: usize = 4;
/// n8-tiles of a 64-column unit.
const N_TILES: usize = 8;
/// Columns of one mma n8-tile.
const TILE_N: usize = 8;
/// Zero points (4-bit) per 32-bit word of the packed zeros.
const ZEROS_PER_WORD: usize = 8;
/// Implicit zero point of symmetric 4-bit codes.
const INT4_SYM_ZERO: u8 = 8;
/// Bias of stored 8-bit codes (u = q + 128), i.e. their zero point.
const INT8_ZERO: u8 = 128;
/// Largest 4-bit code.
const NIBBLE_MAX: u8 = 15;
/// Bits of one packed word.
const WORD_BITS: usize = 32;
/// Most weights (N·K) a shape may describe: the codes `[N, K]`, one byte each, must fit
/// in one Rust allocation (at most `isize::MAX` bytes).
const MAX_WEIGHTS: usize = isize::MAX as usize;

/// Width of the quantized weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightBits {
    /// 4-bit codes 0..=15 (`gemm_w4a16`).
    Int4,
    /// 8-bit codes (`gemm_w8a16`), symmetric.
    Int8,
}

impl WeightBits {
    /// Bits per weight.
    pub fn bits(self) -> usize {
        match self {
            WeightBits::Int4 => 4,
            WeightBits::Int8 => 8,
        }
    }

    /// The implicit zero point of symmetric codes (8 or 128).
    pub fn symmetric_zero(self) -> u8 {
        match self {
            WeightBits::Int4 => INT4_SYM_ZERO,
            WeightBits::Int8 => INT8_ZERO,
        }
    }

    /// 32-bit words of packed weights for an `n x k` matrix, `None` when `n·k` overflows
    /// `usize`. The count of a validated shape, which cannot overflow, is
    /// [`WeightOnlyShape::packed_words`].
    pub fn packed_words(self, n: usize, k: usize) -> Option<usize> {
        // n·k·bits / 32 without the intermediate n·k·bits (bits divides 32).
        n.checked_mul(k).map(|elems| elems / (WORD_BITS / self.bits()))
    }
}

/// Why a weight-only import, repack or validation rejected its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightOnlyError {
    /// A dimension was zero.
    #[error("{arg} must be non-zero")]
    ZeroDimension {
        /// Which dimension (`"N"`, `"K"`, ...).
        arg: &'static str,
    },
    /// N·K weights do not fit in memory: the codes `[N, K]` (one byte each) would exceed
    /// `isize::MAX` bytes, the largest allocation (or N·K overflows `usize`).
    #[error("shape N x K = {n} x {k} has too many weights (N·K must be at most {max})")]
    ShapeOverflow {
        /// N.
        n: usize,
        /// K.
        k: usize,
        /// The largest N·K accepted (`isize::MAX`).
        max: usize,
    },
    /// A checkpoint tensor's shape describes more data than fits in memory: its element
    /// count or byte length overflows `usize`, or so does a dimension derived from it
    /// (e.g. K = 8 x the rows of a GPTQ `qweight`).
    #[error("tensor `{tensor}` has shape {shape:?}, whose size overflows usize")]
    TensorOverflow {
        /// Tensor name.
        tensor: &'static str,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A dimension is not a multiple of what the format or layout needs.
    #[error("{arg} = {value} must be a multiple of {multiple}: {reason}")]
    NotMultiple {
        /// Which dimension.
        arg: &'static str,
        /// Its value.
        value: usize,
        /// The required multiple.
        multiple: usize,
        /// Why.
        reason: &'static str,
    },
    /// The group size is not 32, 64, 128 or K, or does not divide K.
    #[error("group size {group} is not supported for K = {k} (32, 64, 128 dividing K, or K itself)")]
    UnsupportedGroup {
        /// K.
        k: usize,
        /// The group size (K / number of groups).
        group: usize,
    },
    /// A tensor has the wrong element type.
    #[error("tensor `{tensor}` has dtype {got}, expected {expected}")]
    Dtype {
        /// Tensor name.
        tensor: &'static str,
        /// Its dtype.
        got: String,
        /// The dtype the format stores.
        expected: &'static str,
    },
    /// A tensor has the wrong shape.
    #[error("tensor `{tensor}` has shape {got:?}, expected {expected}")]
    Shape {
        /// Tensor name.
        tensor: &'static str,
        /// Its shape.
        got: Vec<usize>,
        /// The expected shape, in words (e.g. `"[K/8, N]"` with values).
        expected: String,
    },
    /// A slice has the wrong length.
    #[error("{arg}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// Which argument.
        arg: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// A code or zero point is outside its range.
    #[error("{arg}[{index}] = {value} is outside 0..={max}")]
    ValueOutOfRange {
        /// Which argument (`"codes"`, `"zeros"`).
        arg: &'static str,
        /// Flat index.
        index: usize,
        /// The value.
        value: i64,
        /// The largest valid value.
        max: i64,
    },
    /// A classic GPTQ (`GptqVersion::V1`) `qzeros` nibble of 15: that format stores each
    /// zero point minus one, so 15 would be a zero point of 16, past 4 bits. Checkpoints
    /// that store zero points as they are (nibble 15 = zero point 15) are GPTQ v2.
    #[error(
        "qzeros nibble at group {group}, column {column} is 15: classic GPTQ (GptqVersion::V1, \
         --format gptq) stores zero points minus one, so it would be 16, past 15; a checkpoint \
         storing zero points as they are is GPTQ v2 (GptqVersion::V2, --format gptq_v2)"
    )]
    GptqV1ZeroOverflow {
        /// Quantization group (row of `qzeros`).
        group: usize,
        /// Column of the weights (N index).
        column: usize,
    },
    /// A `g_idx` entry is negative or not below the number of groups.
    #[error("g_idx[{index}] = {value} is outside 0..{groups}")]
    GIdxOutOfRange {
        /// k.
        index: usize,
        /// The entry.
        value: i64,
        /// Number of groups (rows of `scales`).
        groups: usize,
    },
    /// Act-order groups must each hold exactly g = K / G rows of K (as GPTQ produces),
    /// so that sorting K by group makes every group a contiguous run of g.
    #[error("g_idx assigns {count} rows of K to group {group}; every group needs exactly {expected}")]
    GIdxUnbalanced {
        /// The group.
        group: usize,
        /// How many k map to it.
        count: usize,
        /// g = K / G.
        expected: usize,
    },
    /// A scale is NaN or infinite.
    #[error("scales[{index}] is not finite")]
    NonFiniteScale {
        /// Flat index.
        index: usize,
    },
    /// 8-bit weights are symmetric; zero points are not supported.
    #[error("8-bit weights are symmetric: zero points are not supported")]
    Int8ZeroPoints,
    /// The permutation stored with packed weights is not a permutation of 0..K.
    #[error("perm is not a permutation of 0..{k}")]
    BadPermutation {
        /// K.
        k: usize,
    },
    /// The `qweight` and `scales` shapes are the other checkpoint layout's: GPTQ packs
    /// `qweight` along K (`[K/8, N]`), AWQ along N (`[K, N/8]`), and both store `scales`
    /// `[K/g, N]`, so the width of `qweight` against that of `scales` tells them apart.
    #[error(
        "qweight {qweight:?} beside scales {scales:?} is {found}'s layout (qweight {}), not {expected}'s \
         (qweight {}): import it with {} (qk: --format {})",
        found.qweight_shape(),
        expected.qweight_shape(),
        found.importer(),
        found.cli_formats()
    )]
    OtherCheckpointLayout {
        /// The layout the importer that was called reads.
        expected: CheckpointLayout,
        /// The layout the shapes have.
        found: CheckpointLayout,
        /// The shape of `qweight`.
        qweight: Vec<usize>,
        /// The shape of `scales`.
        scales: Vec<usize>,
    },
}

/// The two checkpoint layouts of 4-bit weights the importers read (GPTQ v1 and v2 differ
/// only in how they store zero points, not in layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointLayout {
    /// AutoGPTQ / GPTQModel: `qweight` int32 `[K/8, N]`, codes packed along K.
    Gptq,
    /// AutoAWQ GEMM: `qweight` int32 `[K, N/8]`, codes packed along N.
    Awq,
}

impl CheckpointLayout {
    /// The layout that `qweight` `[_, qweight_cols]` beside `scales` `[_, scales_cols]`
    /// has, when exactly one of them fits (`None` when neither does, or both: N = 0).
    pub fn of_shapes(qweight_cols: usize, scales_cols: usize) -> Option<CheckpointLayout> {
        let gptq = qweight_cols == scales_cols;
        let awq = qweight_cols.checked_mul(int32_codes::PER_WORD) == Some(scales_cols);
        match (gptq, awq) {
            (true, false) => Some(CheckpointLayout::Gptq),
            (false, true) => Some(CheckpointLayout::Awq),
            _ => None,
        }
    }

    /// Refuses `qweight` and `scales` (both rank 2) that have the other layout's shapes,
    /// with [`WeightOnlyError::OtherCheckpointLayout`]; shapes that fit neither are left
    /// to the importer's own shape checks.
    pub(crate) fn check(self, qweight: &[usize], scales: &[usize]) -> Result<(), WeightOnlyError> {
        match CheckpointLayout::of_shapes(qweight[1], scales[1]) {
            Some(found) if found != self => Err(WeightOnlyError::OtherCheckpointLayout {
                expected: self,
                found,
                qweight: qweight.to_vec(),
                scales: scales.to_vec(),
            }),
            _ => Ok(()),
        }
    }

    /// The shape of `qweight` in this layout, in words.
    fn qweight_shape(self) -> &'static str {
        match self {
            CheckpointLayout::Gptq => "[K/8, N]",
            CheckpointLayout::Awq => "[K, N/8]",
        }
    }

    /// The library function that imports this layout.
    fn importer(self) -> &'static str {
        match self {
            CheckpointLayout::Gptq => "import_gptq",
            CheckpointLayout::Awq => "import_awq",
        }
    }

    /// The `qk run` / `qk repack` `--format` values of this layout.
    fn cli_formats(self) -> &'static str {
        match self {
            CheckpointLayout::Gptq => "gptq or gptq_v2",
            CheckpointLayout::Awq => "awq",
        }
    }
}

impl std::fmt::Display for CheckpointLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CheckpointLayout::Gptq => "GPTQ",
            CheckpointLayout::Awq => "AWQ",
        })
    }
}

/// The shape of a weight-only layer: weight width, N (output channels), K (reduction
/// dimension) and the group (elements of K sharing a scale; K for per-channel). Every
/// form of the weights (logical [`WeightOnlyWeights`], packed [`PackedWeights`], on a
/// device) and every plan made for them carries one, so "are these the weights the
/// plan was made for" is one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeightOnlyShape {
    bits: WeightBits,
    n: usize,
    k: usize,
    group: usize,
}

/// `4-bit, N = 256, K = 512, group 128` (or `per-channel` when the group is K).
impl std::fmt::Display for WeightOnlyShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-bit, N = {}, K = {}, ", self.bits.bits(), self.n, self.k)?;
        if self.group == self.k {
            write!(f, "per-channel")
        } else {
            write!(f, "group {}", self.group)
        }
    }
}

impl WeightOnlyShape {
    /// Validates a shape: N and K non-zero, N·K at most `isize::MAX` (the codes `[N, K]`
    /// fit in memory, so every size derived from the shape fits in `usize`), the group
    /// 32, 64, 128 or K and dividing K. (The kernel layout needs more: see
    /// [`pack_weight_only`].)
    ///
    /// Errors: [`WeightOnlyError::ZeroDimension`], [`WeightOnlyError::ShapeOverflow`],
    /// [`WeightOnlyError::UnsupportedGroup`].
    pub fn new(bits: WeightBits, n: usize, k: usize, group: usize) -> Result<WeightOnlyShape, WeightOnlyError> {
        check_dims(n, k, group)?;
        Ok(WeightOnlyShape { bits, n, k, group })
    }
    /// Weight width.
    pub fn bits(self) -> WeightBits {
        self.bits
    }
    /// N (output channels).
    pub fn n(self) -> usize {
        self.n
    }
    /// K (reduction dimension).
    pub fn k(self) -> usize {
        self.k
    }
    /// Elements of K per group (K for per-channel).
    pub fn group(self) -> usize {
        self.group
    }
    /// Groups along K (rows of the scales).
    pub fn groups(self) -> usize {
        self.k / self.group
    }
    /// Weights N·K (the length of the codes `[N, K]`); fits in `usize` by construction.
    pub fn weights(self) -> usize {
        self.n * self.k
    }
    /// Scales (and zero points) per layer, `groups · N`; at most N·K, so it fits.
    pub fn scale_count(self) -> usize {
        self.groups() * self.n
    }
    /// 32-bit words of the packed zero points (asymmetric 4-bit), eight per word.
    pub fn zero_words(self) -> usize {
        self.scale_count() / ZEROS_PER_WORD
    }
    /// 32-bit words of the packed weights, N·K·bits / 32; at most N·K, so it fits.
    pub fn packed_words(self) -> usize {
        self.weights() / (WORD_BITS / self.bits.bits())
    }

    /// True when the kernel layout holds this shape (N a multiple of 64, K of 16: see
    /// [`pack_weight_only`]).
    fn fits_layout(self) -> bool {
        check_layout(self.n, self.k, self.group).is_ok()
    }

    /// Where weight (n, k) (k in packed order) lives in the kernel layout's words: (word
    /// index, code index in the word: nibble 0..8 for 4 bits, byte 0..4 for 8 bits).
    /// `None` outside `[N, K]` or when the layout cannot hold the shape.
    pub fn code_position(self, n: usize, k: usize) -> Option<(usize, usize)> {
        (n < self.n && k < self.k && self.fits_layout()).then(|| match self.bits {
            WeightBits::Int4 => int4_position(self.k, n, k),
            WeightBits::Int8 => int8_position(self.k, n, k),
        })
    }

    /// Index of the scale of (group, n) in the shuffled scales. `None` outside
    /// `[groups, N]` or when the layout cannot hold the shape.
    pub fn scale_position(self, group: usize, n: usize) -> Option<usize> {
        (group < self.groups() && n < self.n && self.fits_layout()).then(|| scale_position(self.n, group, n))
    }

    /// Where the zero point of (group, n) lives in the packed zeros (4-bit asymmetric):
    /// (word index, nibble). `None` for 8-bit weights (symmetric only), outside
    /// `[groups, N]`, or when the layout cannot hold the shape.
    pub fn zero_position(self, group: usize, n: usize) -> Option<(usize, usize)> {
        let fits = self.bits == WeightBits::Int4 && group < self.groups() && n < self.n && self.fits_layout();
        fits.then(|| zero_position(self.n, group, n))
    }
}

/// Weight-only quantized weights in logical form (see the [module documentation](self)).
///
/// Invariants: those of its [`WeightOnlyShape`] (non-zero N and K; the group 32, 64, 128
/// or K and dividing K), and, checked by [`WeightOnlyWeights::new`]: lengths match; codes
/// and zero points in range; scales finite; `g_idx`, when present, maps exactly g rows
/// of K to each group and is not the trivial `k / g` (that is normalized to `None`, so
/// equal weights compare equal).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightOnlyWeights {
    shape: WeightOnlyShape,
    codes: Vec<u8>,
    scales: Vec<f16>,
    zeros: Option<Vec<u8>>,
    g_idx: Option<Vec<u32>>,
}

impl WeightOnlyWeights {
    /// Validates and wraps logical weights of `shape`: `codes` u8 `[N, K]`, `scales` f16
    /// `[K/group, N]`, `zeros` u8 `[K/group, N]` (4-bit asymmetric; `None` = symmetric),
    /// `g_idx` `[K]`.
    pub fn new(
        shape: WeightOnlyShape,
        codes: Vec<u8>,
        scales: Vec<f16>,
        zeros: Option<Vec<u8>>,
        g_idx: Option<Vec<u32>>,
    ) -> Result<WeightOnlyWeights, WeightOnlyError> {
        let WeightOnlyShape { bits, k, group, .. } = shape;
        let groups = shape.groups();
        check_len("codes", shape.weights(), codes.len())?;
        check_scales(bits, shape.scale_count(), &scales, zeros.is_some())?;
        if bits == WeightBits::Int4 {
            check_range("codes", &codes, NIBBLE_MAX)?;
        }
        if let Some(z) = &zeros {
            check_len("zeros", shape.scale_count(), z.len())?;
            check_range("zeros", z, NIBBLE_MAX)?;
        }
        let g_idx = match g_idx {
            Some(g_idx) => {
                check_len("g_idx", k, g_idx.len())?;
                check_g_idx(&g_idx, groups, group)?;
                (!g_idx.iter().enumerate().all(|(i, &gi)| gi as usize == i / group)).then_some(g_idx)
            }
            None => None,
        };
        Ok(WeightOnlyWeights { shape, codes, scales, zeros, g_idx })
    }

    /// Symmetric 8-bit weights from signed int8 values `q` `[N, K]` and scales f16
    /// `[K/group, N]` (`group = K`: per-channel, `scales` is then `[1, N]` = `[N]`).
    pub fn from_int8(
        q: &[i8],
        scales: Vec<f16>,
        n: usize,
        k: usize,
        group: usize,
    ) -> Result<WeightOnlyWeights, WeightOnlyError> {
        let codes = q.iter().map(|&v| (i16::from(v) + i16::from(INT8_ZERO)) as u8).collect();
        WeightOnlyWeights::new(WeightOnlyShape::new(WeightBits::Int8, n, k, group)?, codes, scales, None, None)
    }

    /// The 4-bit weights `w` (the generic layout of the INT4 quantizer and dequant
    /// kernel, [`quantize_int4`](super::quantize_int4)) in logical form, for the
    /// `gemm_w4a16` kernels: the same codes `[N, K]`, the scales and zero points
    /// transposed from `[N, K/g]` to `[K/g, N]`, contiguous groups. Every weight
    /// dequantizes to the same f16 as [`dequant_int4_reference`](super::dequant_int4_reference).
    ///
    /// ```
    /// use qkernels::formats::{pack_weight_only, quantize_int4, GroupSize, Int4Scheme, WeightOnlyWeights};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (n, k) = (64, 256); // N a multiple of 64 and K of 16: the kernel layout's units
    /// let w: Vec<f32> = (0..n * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
    /// let int4 = quantize_int4(&w, n, k, GroupSize::G128, Int4Scheme::Asymmetric)?;
    /// let logical = WeightOnlyWeights::from_int4(&int4)?;
    /// let packed = pack_weight_only(&logical)?; // what DevicePackedWeights::upload takes
    /// assert_eq!(packed.shape().group(), 128);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Errors: none for weights [`Int4Weights`](super::Int4Weights) accepts (its group
    /// sizes and shapes are a subset of the logical form's); the `Result` is
    /// [`WeightOnlyShape::new`]'s.
    pub fn from_int4(w: &super::Int4Weights) -> Result<WeightOnlyWeights, WeightOnlyError> {
        let (n, k) = (w.rows(), w.cols());
        let group = w.group().elems(k);
        let shape = WeightOnlyShape::new(WeightBits::Int4, n, k, group)?;
        let groups = shape.groups();
        let zeros = w.zeros().map(|z| groups_major(z, n, groups));
        WeightOnlyWeights::new(shape, w.values(), groups_major(w.scales(), n, groups), zeros, None)
    }

    /// Width, N, K and group.
    pub fn shape(&self) -> WeightOnlyShape {
        self.shape
    }
    /// Unsigned codes `[N, K]`.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }
    /// Scales `[K/group, N]`.
    pub fn scales(&self) -> &[f16] {
        &self.scales
    }
    /// Zero points `[K/group, N]`, `None` when symmetric.
    pub fn zeros(&self) -> Option<&[u8]> {
        self.zeros.as_deref()
    }
    /// The act-order group of each k, `None` when groups are contiguous (`k / group`).
    pub fn g_idx(&self) -> Option<&[u32]> {
        self.g_idx.as_deref()
    }

    /// The group of row `k` of K, `None` when `k` is not below K.
    pub fn group_of(&self, k: usize) -> Option<usize> {
        (k < self.shape.k).then(|| self.group_at(k))
    }

    /// The zero point of (group, n) (the implicit one when symmetric), `None` when
    /// `group` is not below the number of groups or `n` not below N.
    pub fn zero_of(&self, group: usize, n: usize) -> Option<u8> {
        (group < self.shape.groups() && n < self.shape.n).then(|| self.zero_at(group, n))
    }

    /// [`WeightOnlyWeights::group_of`] for `k` known to be below K.
    fn group_at(&self, k: usize) -> usize {
        self.g_idx.as_ref().map_or(k / self.shape.group, |g| g[k] as usize)
    }

    /// [`WeightOnlyWeights::zero_of`] for a (group, n) known to be in range.
    fn zero_at(&self, group: usize, n: usize) -> u8 {
        self.zeros.as_ref().map_or(self.shape.bits.symmetric_zero(), |z| z[group * self.shape.n + n])
    }

    /// Dequantized weights f16 `[N, K]`: `f16((u − z) · s)`, the exact product rounded
    /// once (what the kernels compute in registers, bit for bit).
    pub fn dequantize(&self) -> Vec<f16> {
        let WeightOnlyShape { n: n_total, k: k_total, .. } = self.shape;
        let mut out = Vec::with_capacity(self.shape.weights());
        for n in 0..n_total {
            for k in 0..k_total {
                let grp = self.group_at(k);
                let q = f64::from(self.codes[n * k_total + k]) - f64::from(self.zero_at(grp, n));
                out.push(f16_from_f64_rn(q * self.scales[grp * n_total + n].to_f64()));
            }
        }
        out
    }
}

/// Per-group values `[n, groups]` row-major (one row per output channel, the generic
/// INT4 layout's order) as `[groups, n]` row-major (the logical form's).
fn groups_major<T: Copy>(v: &[T], n: usize, groups: usize) -> Vec<T> {
    (0..groups * n).map(|i| v[(i % n) * groups + i / n]).collect()
}

/// Weights in the kernel layout (`qk_abi.h`), as `pack_weight_only` produces them.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedWeights {
    shape: WeightOnlyShape,
    words: Vec<u32>,
    scales: Vec<f16>,
    zeros: Option<Vec<u32>>,
    perm: Option<Vec<u32>>,
}

impl PackedWeights {
    /// Validates and wraps raw kernel-layout parts of `shape` (e.g. read back from a `qk
    /// repack` file): `words` `[N·K·bits/32]`, shuffled `scales` `[K/group, N]`, packed
    /// `zeros` `[K/group, N/8]` (4-bit asymmetric), `perm` `[K]` (act-order).
    pub fn from_parts(
        shape: WeightOnlyShape,
        words: Vec<u32>,
        scales: Vec<f16>,
        zeros: Option<Vec<u32>>,
        perm: Option<Vec<u32>>,
    ) -> Result<PackedWeights, WeightOnlyError> {
        let WeightOnlyShape { bits, n, k, group } = shape;
        check_layout(n, k, group)?;
        check_len("words", shape.packed_words(), words.len())?;
        check_scales(bits, shape.scale_count(), &scales, zeros.is_some())?;
        if let Some(z) = &zeros {
            check_len("zeros", shape.zero_words(), z.len())?;
        }
        if let Some(p) = &perm {
            check_len("perm", k, p.len())?;
            let mut seen = vec![false; k];
            for &v in p {
                match seen.get_mut(v as usize) {
                    Some(s) if !*s => *s = true,
                    _ => return Err(WeightOnlyError::BadPermutation { k }),
                }
            }
        }
        Ok(PackedWeights { shape, words, scales, zeros, perm })
    }

    /// Width, N, K and group.
    pub fn shape(&self) -> WeightOnlyShape {
        self.shape
    }
    /// Packed codes, u32 words in the unit layout.
    pub fn words(&self) -> &[u32] {
        &self.words
    }
    /// Scales f16 `[K/group, N]`, shuffled per 64-column block.
    pub fn scales(&self) -> &[f16] {
        &self.scales
    }
    /// Packed zero points u32 `[K/group, N/8]`, `None` when symmetric.
    pub fn zeros(&self) -> Option<&[u32]> {
        self.zeros.as_deref()
    }
    /// Act-order permutation: packed K position `k'` holds original row `perm[k']`.
    pub fn perm(&self) -> Option<&[u32]> {
        self.perm.as_deref()
    }
}

/// Where 4-bit element (n, k) of an N x K matrix lives in the packed words: (word index,
/// nibble 0..8). See `qk_abi.h`. Unchecked: the packer's loops stay in range; callers
/// outside use [`WeightOnlyShape::code_position`].
fn int4_position(k_total: usize, n: usize, k: usize) -> (usize, usize) {
    let (unit, lane, nt, r, hi) = fragment_coords(k_total, n, k);
    let word = (unit * WARP_LANES + lane) * WORDS_PER_CHUNK + nt / 2;
    (word, 2 * (nt % 2) + r + 4 * hi)
}

/// Where 8-bit element (n, k) lives in the packed words: (word index, byte 0..4).
fn int8_position(k_total: usize, n: usize, k: usize) -> (usize, usize) {
    let (unit, lane, nt, r, hi) = fragment_coords(k_total, n, k);
    let chunk = nt / WORDS_PER_CHUNK;
    let word = ((unit * 2 + chunk) * WARP_LANES + lane) * WORDS_PER_CHUNK + nt % WORDS_PER_CHUNK;
    (word, 2 * r + hi)
}

/// Index of the scale of (group, n) in the shuffled scales: inside each 64-column block,
/// position 8g + nt holds column 8nt + g (a lane's 8 scales are contiguous).
fn scale_position(n_total: usize, group: usize, n: usize) -> usize {
    let (block, c) = (n / N_BLOCK, n % N_BLOCK);
    group * n_total + block * N_BLOCK + (c % TILE_N) * N_TILES + c / TILE_N
}

/// Where the zero point of (group, n) lives in the packed zeros: (word index, nibble).
fn zero_position(n_total: usize, group: usize, n: usize) -> (usize, usize) {
    let (block, c) = (n / N_BLOCK, n % N_BLOCK);
    ((group * n_total + block * N_BLOCK) / ZEROS_PER_WORD + c % TILE_N, c / TILE_N)
}

/// Unit, lane and fragment coordinates of element (n, k): the mma.m16n8k16 B layout
/// (b0: k 2t, 2t+1; b1: k 2t+8, 2t+9; column g of each n8-tile).
fn fragment_coords(k_total: usize, n: usize, k: usize) -> (usize, usize, usize, usize, usize) {
    let unit = (n / N_BLOCK) * (k_total / K_STEP) + k / K_STEP;
    let (c, kk) = (n % N_BLOCK, k % K_STEP);
    let (nt, g) = (c / TILE_N, c % TILE_N);
    let (r, t, hi) = (kk / 8, (kk % 8) / 2, kk % 2);
    (unit, 4 * g + t, nt, r, hi)
}

/// Repacks logical weights into the kernel layout. Act-order weights get K sorted by
/// group (stable) and the permutation recorded.
///
/// Errors: [`WeightOnlyError::NotMultiple`] (N not a multiple of 64, K not a multiple of
/// 16), [`WeightOnlyError::UnsupportedGroup`].
pub fn pack_weight_only(w: &WeightOnlyWeights) -> Result<PackedWeights, WeightOnlyError> {
    let WeightOnlyShape { bits, n: n_total, k: k_total, group } = w.shape;
    check_layout(n_total, k_total, group)?;
    let perm: Option<Vec<u32>> = w.g_idx.as_ref().map(|g| {
        let mut p: Vec<u32> = (0..k_total as u32).collect();
        p.sort_by_key(|&k| g[k as usize]); // stable: k order inside a group
        p
    });
    let mut words = vec![0u32; w.shape.packed_words()];
    for n in 0..n_total {
        for kp in 0..k_total {
            let k = perm.as_ref().map_or(kp, |p| p[kp] as usize);
            let code = u32::from(w.codes[n * k_total + k]);
            let (word, shift) = match bits {
                WeightBits::Int4 => {
                    let (word, nibble) = int4_position(k_total, n, kp);
                    (word, 4 * nibble)
                }
                WeightBits::Int8 => {
                    let (word, byte) = int8_position(k_total, n, kp);
                    (word, 8 * byte)
                }
            };
            words[word] |= code << shift;
        }
    }
    let groups = w.shape.groups();
    let mut scales = vec![f16::ZERO; w.shape.scale_count()];
    for grp in 0..groups {
        for n in 0..n_total {
            scales[scale_position(n_total, grp, n)] = w.scales[grp * n_total + n];
        }
    }
    let zeros = w.zeros.as_ref().map(|z| {
        let mut out = vec![0u32; w.shape.zero_words()];
        for grp in 0..groups {
            for n in 0..n_total {
                let (word, nibble) = zero_position(n_total, grp, n);
                out[word] |= u32::from(z[grp * n_total + n]) << (4 * nibble);
            }
        }
        out
    });
    Ok(PackedWeights { shape: w.shape, words, scales, zeros, perm })
}

/// The inverse of [`pack_weight_only`]: logical weights (in the original K order, with
/// `g_idx` rebuilt from the permutation).
pub fn unpack_weight_only(p: &PackedWeights) -> WeightOnlyWeights {
    let WeightOnlyShape { bits, n: n_total, k: k_total, group } = p.shape;
    let mut codes = vec![0u8; p.shape.weights()];
    let mask = (1u32 << bits.bits()) - 1;
    for n in 0..n_total {
        for kp in 0..k_total {
            let (word, shift) = match bits {
                WeightBits::Int4 => {
                    let (word, nibble) = int4_position(k_total, n, kp);
                    (word, 4 * nibble)
                }
                WeightBits::Int8 => {
                    let (word, byte) = int8_position(k_total, n, kp);
                    (word, 8 * byte)
                }
            };
            let k = p.perm.as_ref().map_or(kp, |perm| perm[kp] as usize);
            codes[n * k_total + k] = ((p.words[word] >> shift) & mask) as u8;
        }
    }
    let groups = p.shape.groups();
    let mut scales = vec![f16::ZERO; p.shape.scale_count()];
    for grp in 0..groups {
        for n in 0..n_total {
            scales[grp * n_total + n] = p.scales[scale_position(n_total, grp, n)];
        }
    }
    let zeros = p.zeros.as_ref().map(|z| {
        let mut out = vec![0u8; p.shape.scale_count()];
        for grp in 0..groups {
            for n in 0..n_total {
                let (word, nibble) = zero_position(n_total, grp, n);
                out[grp * n_total + n] = ((z[word] >> (4 * nibble)) & 0xf) as u8;
            }
        }
        out
    });
    let g_idx = p.perm.as_ref().map(|perm| {
        let mut g = vec![0u32; k_total];
        for (kp, &k) in perm.iter().enumerate() {
            g[k as usize] = (kp / group) as u32;
        }
        g
    });
    WeightOnlyWeights { shape: p.shape, codes, scales, zeros, g_idx }
}

/// Checks the logical-form dimensions: non-zero, N·K at most [`MAX_WEIGHTS`], group
/// 32/64/128 or K, dividing K.
fn check_dims(n: usize, k: usize, group: usize) -> Result<(), WeightOnlyError> {
    if n == 0 {
        return Err(WeightOnlyError::ZeroDimension { arg: "N" });
    }
    if k == 0 {
        return Err(WeightOnlyError::ZeroDimension { arg: "K" });
    }
    if n.checked_mul(k).is_none_or(|weights| weights > MAX_WEIGHTS) {
        return Err(WeightOnlyError::ShapeOverflow { n, k, max: MAX_WEIGHTS });
    }
    if !(group == k || GROUP_SIZES.contains(&group)) || !k.is_multiple_of(group) {
        return Err(WeightOnlyError::UnsupportedGroup { k, group });
    }
    Ok(())
}

/// Checks what the kernel layout needs on top of [`check_dims`].
pub(crate) fn check_layout(n: usize, k: usize, group: usize) -> Result<(), WeightOnlyError> {
    check_dims(n, k, group)?;
    if !n.is_multiple_of(N_BLOCK) {
        return Err(WeightOnlyError::NotMultiple {
            arg: "N",
            value: n,
            multiple: N_BLOCK,
            reason: "the weight-only kernels' layout stores the weights in strips of 64 columns",
        });
    }
    if !k.is_multiple_of(K_STEP) {
        return Err(WeightOnlyError::NotMultiple {
            arg: "K",
            value: k,
            multiple: K_STEP,
            reason: "the weight-only kernels' layout stores K in steps of 16 (one tensor-core k-step)",
        });
    }
    Ok(())
}

/// Checks that `g_idx` is in range and assigns exactly `group` rows to each group.
pub(crate) fn check_g_idx(g_idx: &[u32], groups: usize, group: usize) -> Result<(), WeightOnlyError> {
    let mut counts = vec![0usize; groups];
    for (index, &v) in g_idx.iter().enumerate() {
        match counts.get_mut(v as usize) {
            Some(c) => *c += 1,
            None => return Err(WeightOnlyError::GIdxOutOfRange { index, value: i64::from(v), groups }),
        }
    }
    match counts.iter().position(|&c| c != group) {
        Some(g) => Err(WeightOnlyError::GIdxUnbalanced { group: g, count: counts[g], expected: group }),
        None => Ok(()),
    }
}

/// The checks the logical and the packed form share: `scales` holds `expected` finite
/// values, and only 4-bit weights carry zero points (8-bit ones are symmetric).
fn check_scales(bits: WeightBits, expected: usize, scales: &[f16], has_zeros: bool) -> Result<(), WeightOnlyError> {
    check_len("scales", expected, scales.len())?;
    if let Some(index) = scales.iter().position(|s| !s.is_finite()) {
        return Err(WeightOnlyError::NonFiniteScale { index });
    }
    if has_zeros && bits == WeightBits::Int8 {
        return Err(WeightOnlyError::Int8ZeroPoints);
    }
    Ok(())
}

fn check_len(arg: &'static str, expected: usize, got: usize) -> Result<(), WeightOnlyError> {
    if expected == got {
        Ok(())
    } else {
        Err(WeightOnlyError::LengthMismatch { arg, expected, got })
    }
}

fn check_range(arg: &'static str, values: &[u8], max: u8) -> Result<(), WeightOnlyError> {
    match values.iter().position(|&v| v > max) {
        Some(index) => {
            Err(WeightOnlyError::ValueOutOfRange { arg, index, value: i64::from(values[index]), max: i64::from(max) })
        }
        None => Ok(()),
    }
}

/// A checkpoint tensor as read from a file: element type, shape and raw little-endian
/// bytes. The importers check all three.
#[derive(Debug, Clone, Copy)]
pub struct RawTensor<'a> {
    /// Element type.
    pub dtype: safetensors::Dtype,
    /// Shape.
    pub shape: &'a [usize],
    /// Row-major little-endian bytes.
    pub data: &'a [u8],
}

impl RawTensor<'_> {
    /// Checks dtype, rank and byte length (an element count or byte length that
    /// overflows `usize` is [`WeightOnlyError::TensorOverflow`]).
    pub(crate) fn expect(
        &self,
        tensor: &'static str,
        dtype: safetensors::Dtype,
        dtype_name: &'static str,
        rank: usize,
    ) -> Result<(), WeightOnlyError> {
        if self.dtype != dtype {
            return Err(WeightOnlyError::Dtype { tensor, got: format!("{:?}", self.dtype), expected: dtype_name });
        }
        if self.shape.len() != rank {
            return Err(WeightOnlyError::Shape {
                tensor,
                got: self.shape.to_vec(),
                expected: format!("{rank} dimensions"),
            });
        }
        let bytes = self
            .shape
            .iter()
            .try_fold(1usize, |elems, &dim| elems.checked_mul(dim))
            .and_then(|elems| elems.checked_mul(dtype.bitsize()))
            .map(|bits| bits / u8::BITS as usize)
            .ok_or_else(|| self.overflow(tensor))?;
        check_len(tensor, bytes, self.data.len())
    }

    /// [`WeightOnlyError::TensorOverflow`] for this tensor, named `tensor`.
    pub(crate) fn overflow(&self, tensor: &'static str) -> WeightOnlyError {
        WeightOnlyError::TensorOverflow { tensor, shape: self.shape.to_vec() }
    }

    /// Checks that the shape is exactly `want`.
    pub(crate) fn expect_shape(
        &self,
        tensor: &'static str,
        want: &[usize],
        words: &str,
    ) -> Result<(), WeightOnlyError> {
        if self.shape == want {
            Ok(())
        } else {
            Err(WeightOnlyError::Shape { tensor, got: self.shape.to_vec(), expected: format!("{words} = {want:?}") })
        }
    }

    /// The data as little-endian i32 values.
    pub(crate) fn i32s(&self) -> Vec<i32> {
        self.data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    }

    /// The data as f16 values.
    pub(crate) fn f16s(&self) -> Vec<f16> {
        self.data.chunks_exact(2).map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]]))).collect()
    }
}

/// The group size implied by K rows and `groups` scale rows: `K / groups`, which must be
/// exact and one of 32, 64, 128 or K.
pub(crate) fn group_from_rows(k: usize, groups: usize) -> Result<usize, WeightOnlyError> {
    if groups == 0 {
        return Err(WeightOnlyError::ZeroDimension { arg: "groups (rows of scales)" });
    }
    let group = k / groups;
    if group * groups != k {
        return Err(WeightOnlyError::NotMultiple {
            arg: "K",
            value: k,
            multiple: groups,
            reason: "K must split into equal groups (one row of scales each)",
        });
    }
    check_dims(1, k, group)?;
    Ok(group)
}
