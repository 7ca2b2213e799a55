//! Tensor maps: the descriptor a tensor bulk copy (`cp.async.bulk.tensor`, PTX ISA
//! 9.7.9.25.5.1) reads to find a box of a tensor in global memory.
//!
//! On a GPU the tensor map is a 128-byte opaque object the driver encodes
//! (`cuTensorMapEncodeTiled`); its bit layout is not documented. The simulator defines
//! its own 128-byte encoding of the same fields ([`TensorMap::encode`]), so a program
//! (or a backend-neutral wrapper) builds the map per backend from one description and
//! the kernel passes its global address to the instruction unchanged. The fields and
//! the validation follow the driver's tiled mode: element size, rank 1 to 5, dimensions
//! and byte strides of the tensor, box dimensions, and the shared-memory swizzle; no
//! interleave, element strides of 1, out-of-bounds elements filled with zeros.
//!
//! # The box in shared memory
//!
//! The box is stored densely, innermost dimension first: element `(i0, i1, …)` at byte
//! `o = elem_bytes · (i0 + box0 · (i1 + box1 · (i2 + …)))` from the destination. A
//! swizzle permutes 16-byte chunks within each 128-byte row of shared memory, keyed on
//! the absolute shared address `a = dst + o` (so a destination aligned to the pattern's
//! period, 256, 512 or 1024 bytes, starts the box at pattern row 0):
//!
//! ```text
//!   a' = a ^ (((a >> 7) & m) << 4)      m = 1 (32-byte), 3 (64-byte), 7 (128-byte)
//! ```
//!
//! The 128-byte mode is the `row · 128 + ((chunk ^ (row % 8)) · 16)` layout that
//! `ldmatrix` and `wgmma` read without bank conflicts.

/// Bytes of an encoded tensor map (`CUtensorMap` is 128 bytes, 64-byte aligned).
pub const TENSOR_MAP_BYTES: usize = 128;

// Limits of the driver's tiled tensor maps (CUDA driver API, cuTensorMapEncodeTiled).
/// Highest tensor rank a tensor map describes.
const MAX_RANK: usize = 5;
/// Largest box dimension, elements.
const MAX_BOX_DIM: u32 = 256;
/// Largest tensor dimension, elements.
const MAX_DIM: u64 = 1 << 32;
/// Byte strides (and the base address) must be multiples of this.
const STRIDE_ALIGN: u64 = 16;
/// Byte strides must be below this.
const MAX_STRIDE: u64 = 1 << 40;
/// Identifies the simulator's encoding (b"QKTM" little-endian).
const MAGIC: u32 = u32::from_le_bytes(*b"QKTM");
/// Bytes of one shared-memory row a swizzle permutes chunks within (address bits 0-6).
const SWIZZLE_ROW_BYTES: u64 = 128;

/// Shared-memory swizzle of a tensor copy's box (`CU_TENSOR_MAP_SWIZZLE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorSwizzle {
    /// Dense box, no permutation.
    None,
    /// 16-byte chunks permuted within 32-byte spans (address bit 7 into bit 4).
    Bytes32,
    /// Within 64-byte spans (bits 7-8 into 4-5).
    Bytes64,
    /// Within 128-byte spans (bits 7-9 into 4-6).
    Bytes128,
}

impl TensorSwizzle {
    /// The span the inner box dimension may not exceed, bytes (`None`: unbounded).
    fn span(self) -> Option<u64> {
        match self {
            TensorSwizzle::None => None,
            TensorSwizzle::Bytes32 => Some(32),
            TensorSwizzle::Bytes64 => Some(64),
            TensorSwizzle::Bytes128 => Some(128),
        }
    }

    /// The mask of address bits 7.. XORed into the chunk index (bits 4..).
    fn mask(self) -> u64 {
        match self {
            TensorSwizzle::None => 0,
            TensorSwizzle::Bytes32 => 1,
            TensorSwizzle::Bytes64 => 3,
            TensorSwizzle::Bytes128 => 7,
        }
    }

    /// The swizzled shared address of byte address `a`.
    pub fn apply(self, a: u64) -> u64 {
        a ^ (((a >> 7) & self.mask()) << 4)
    }

    fn code(self) -> u8 {
        match self {
            TensorSwizzle::None => 0,
            TensorSwizzle::Bytes32 => 1,
            TensorSwizzle::Bytes64 => 2,
            TensorSwizzle::Bytes128 => 3,
        }
    }

    fn from_code(c: u8) -> Option<TensorSwizzle> {
        Some(match c {
            0 => TensorSwizzle::None,
            1 => TensorSwizzle::Bytes32,
            2 => TensorSwizzle::Bytes64,
            3 => TensorSwizzle::Bytes128,
            _ => return None,
        })
    }
}

/// A tiled tensor map: which tensor a tensor copy reads and the box it moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorMap {
    /// Global address of element (0, 0, …), 16-byte aligned.
    pub global_address: u64,
    /// Bytes per element: 1, 2, 4 or 8.
    pub elem_bytes: u32,
    /// Elements per dimension, innermost first; the rank is its length (1 to 5).
    pub dims: Vec<u64>,
    /// Byte stride of dimensions 1 .. rank (dimension 0 is contiguous), multiples of 16.
    pub strides_bytes: Vec<u64>,
    /// Elements per box dimension, innermost first, 1 to 256 each and at most the
    /// tensor's dimension.
    pub box_dims: Vec<u32>,
    /// The box's shared-memory layout.
    pub swizzle: TensorSwizzle,
}

/// Why a tensor map cannot be encoded or decoded: a broken driver rule for tiled tensor
/// maps, a simulator limit, or bytes that are no encoding of [`TensorMap::encode`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TensorMapError {
    /// The rank is outside 1 ..= 5.
    #[error("invalid tensor map: rank {0} (1 to {MAX_RANK})")]
    Rank(usize),
    /// The box dimensions or strides do not match the rank (`rank` and `rank − 1`).
    #[error("invalid tensor map: rank {rank} with {box_dims} box dimensions and {strides} strides (want {rank} and {})", rank.saturating_sub(1))]
    FieldCounts {
        /// The tensor's rank (`dims.len()`).
        rank: usize,
        /// `box_dims.len()`.
        box_dims: usize,
        /// `strides_bytes.len()`.
        strides: usize,
    },
    /// The element size is not 1, 2, 4 or 8 bytes.
    #[error("invalid tensor map: element size {0} bytes (1, 2, 4 or 8)")]
    ElemBytes(u32),
    /// The global address is not 16-byte aligned.
    #[error("invalid tensor map: global address {0:#x} not {STRIDE_ALIGN}-byte aligned")]
    Misaligned(u64),
    /// A tensor dimension is 0 or above 2^32 elements.
    #[error("invalid tensor map: dimension {dim} of {elems} elements (1 to 2^32)")]
    Dimension {
        /// The dimension (0 innermost).
        dim: usize,
        /// Its element count.
        elems: u64,
    },
    /// A byte stride is not a multiple of 16 or not below 2^40.
    #[error(
        "invalid tensor map: stride of dimension {dim} is {bytes} bytes (a multiple of {STRIDE_ALIGN} below 2^40)"
    )]
    Stride {
        /// The dimension the stride steps (1 ..= rank − 1).
        dim: usize,
        /// The stride.
        bytes: u64,
    },
    /// A box dimension is 0 or above 256 elements.
    #[error("invalid tensor map: box dimension {dim} of {elems} elements (1 to {MAX_BOX_DIM})")]
    BoxDimension {
        /// The dimension (0 innermost).
        dim: usize,
        /// Its element count.
        elems: u32,
    },
    /// A box dimension exceeds the tensor's: the driver documents only the bound of 256,
    /// but such boxes are reported to fault on hardware (illegal address), so the
    /// simulator refuses them and a kernel relying on them fails here first.
    #[error("invalid tensor map: box dimension {dim} of {box_elems} elements exceeds the tensor's {tensor_elems}")]
    BoxExceedsTensor {
        /// The dimension (0 innermost).
        dim: usize,
        /// The box's element count.
        box_elems: u32,
        /// The tensor's element count.
        tensor_elems: u64,
    },
    /// The box's inner dimension is not a multiple of 16 bytes.
    #[error("invalid tensor map: inner box dimension of {0} bytes (a multiple of {STRIDE_ALIGN})")]
    InnerBoxBytes(u64),
    /// The box's inner dimension is wider than its swizzle's span.
    #[error("invalid tensor map: inner box dimension of {bytes} bytes exceeds the {span}-byte swizzle span")]
    InnerBoxExceedsSwizzle {
        /// The inner box dimension, bytes.
        bytes: u64,
        /// The swizzle's span, bytes.
        span: u64,
    },
    /// A simulator limit, not a driver rule: a swizzled box whose size is not a whole
    /// number of 128-byte rows (a swizzle moves chunks within rows of shared memory, so
    /// such a box would land some chunks past its own end, which is not modelled).
    #[error("invalid tensor map: a swizzled box of {0} bytes (not modelled unless a multiple of {SWIZZLE_ROW_BYTES})")]
    SwizzledBoxPartialRow(u64),
    /// The tensor's last element lies past the 64-bit address space.
    #[error("invalid tensor map: the tensor at {0:#x} extends past the 64-bit address space")]
    AddressOverflow(u64),
    /// Fewer bytes than an encoding holds.
    #[error("invalid tensor map: {0} bytes (want {TENSOR_MAP_BYTES})")]
    EncodingSize(usize),
    /// The bytes do not start with the simulator encoding's magic number.
    #[error("invalid tensor map: not a tensor map encoded by ptxsim::TensorMap::encode (bad magic)")]
    BadMagic,
    /// The encoding's swizzle code is none of the four modes.
    #[error("invalid tensor map: swizzle code {0}")]
    SwizzleCode(u8),
}

/// Byte offsets of the encoding's fields: a u32 magic, rank, element size and swizzle
/// code as bytes, the u64 address, then MAX_RANK u64 dimensions, MAX_RANK - 1 u64
/// strides and MAX_RANK u16 box dimensions.
mod at {
    use super::MAX_RANK;
    pub const MAGIC: usize = 0;
    pub const RANK: usize = 4;
    pub const ELEM_BYTES: usize = 5;
    pub const SWIZZLE: usize = 6;
    pub const ADDRESS: usize = 8;
    pub const DIMS: usize = ADDRESS + 8;
    pub const STRIDES: usize = DIMS + 8 * MAX_RANK;
    pub const BOX: usize = STRIDES + 8 * (MAX_RANK - 1);
    pub const END: usize = BOX + 2 * MAX_RANK;
}
const _: () = assert!(at::END <= TENSOR_MAP_BYTES);

impl TensorMap {
    /// The tensor's rank.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Bytes of one box (what a copy moves and completes on its mbarrier); saturates for
    /// a map that [`validate`](Self::validate) would refuse.
    pub fn box_bytes(&self) -> u64 {
        self.box_dims.iter().fold(u64::from(self.elem_bytes), |n, &b| n.saturating_mul(u64::from(b)))
    }

    /// Checks the fields against the driver's rules for tiled tensor maps.
    pub fn validate(&self) -> Result<(), TensorMapError> {
        let rank = self.rank();
        if !(1..=MAX_RANK).contains(&rank) {
            return Err(TensorMapError::Rank(rank));
        }
        if self.box_dims.len() != rank || self.strides_bytes.len() != rank - 1 {
            return Err(TensorMapError::FieldCounts {
                rank,
                box_dims: self.box_dims.len(),
                strides: self.strides_bytes.len(),
            });
        }
        if ![1, 2, 4, 8].contains(&self.elem_bytes) {
            return Err(TensorMapError::ElemBytes(self.elem_bytes));
        }
        if !self.global_address.is_multiple_of(STRIDE_ALIGN) {
            return Err(TensorMapError::Misaligned(self.global_address));
        }
        if let Some(d) = self.dims.iter().position(|&n| n == 0 || n > MAX_DIM) {
            return Err(TensorMapError::Dimension { dim: d, elems: self.dims[d] });
        }
        if let Some(d) = self.strides_bytes.iter().position(|&s| !s.is_multiple_of(STRIDE_ALIGN) || s >= MAX_STRIDE) {
            return Err(TensorMapError::Stride { dim: d + 1, bytes: self.strides_bytes[d] });
        }
        if let Some(d) = self.box_dims.iter().position(|&b| b == 0 || b > MAX_BOX_DIM) {
            return Err(TensorMapError::BoxDimension { dim: d, elems: self.box_dims[d] });
        }
        // Boxes larger than their tensor are reported to fault on hardware (see the
        // variant's doc): refused here, so a kernel relying on them fails here first.
        if let Some(d) = (0..rank).find(|&d| u64::from(self.box_dims[d]) > self.dims[d]) {
            return Err(TensorMapError::BoxExceedsTensor {
                dim: d,
                box_elems: self.box_dims[d],
                tensor_elems: self.dims[d],
            });
        }
        let inner = self.box_dims[0] as u64 * self.elem_bytes as u64;
        if !inner.is_multiple_of(STRIDE_ALIGN) {
            return Err(TensorMapError::InnerBoxBytes(inner));
        }
        if let Some(span) = self.swizzle.span() {
            if inner > span {
                return Err(TensorMapError::InnerBoxExceedsSwizzle { bytes: inner, span });
            }
            // A simulator limit, not a driver rule (see the variant's doc).
            if !self.box_bytes().is_multiple_of(SWIZZLE_ROW_BYTES) {
                return Err(TensorMapError::SwizzledBoxPartialRow(self.box_bytes()));
            }
        }
        // Every in-bounds element's address fits 64 bits.
        let extent = self
            .dims
            .iter()
            .skip(1)
            .zip(&self.strides_bytes)
            .try_fold(self.dims[0].checked_mul(u64::from(self.elem_bytes)), |end, (&n, &stride)| {
                Some(end?.checked_add((n - 1).checked_mul(stride)?))
            })
            .flatten()
            .and_then(|end| end.checked_add(self.global_address));
        if extent.is_none() {
            return Err(TensorMapError::AddressOverflow(self.global_address));
        }
        Ok(())
    }

    /// The simulator's 128-byte encoding, after [`validate`](Self::validate).
    pub fn encode(&self) -> Result<[u8; TENSOR_MAP_BYTES], TensorMapError> {
        self.validate()?;
        let mut b = [0u8; TENSOR_MAP_BYTES];
        b[at::MAGIC..at::MAGIC + 4].copy_from_slice(&MAGIC.to_le_bytes());
        b[at::RANK] = self.rank() as u8;
        b[at::ELEM_BYTES] = self.elem_bytes as u8;
        b[at::SWIZZLE] = self.swizzle.code();
        b[at::ADDRESS..at::ADDRESS + 8].copy_from_slice(&self.global_address.to_le_bytes());
        for (d, &n) in self.dims.iter().enumerate() {
            b[at::DIMS + 8 * d..at::DIMS + 8 * d + 8].copy_from_slice(&n.to_le_bytes());
        }
        for (d, &s) in self.strides_bytes.iter().enumerate() {
            b[at::STRIDES + 8 * d..at::STRIDES + 8 * d + 8].copy_from_slice(&s.to_le_bytes());
        }
        for (d, &n) in self.box_dims.iter().enumerate() {
            b[at::BOX + 2 * d..at::BOX + 2 * d + 2].copy_from_slice(&(n as u16).to_le_bytes());
        }
        Ok(b)
    }

    /// Decodes (and validates) an encoding made by [`encode`](Self::encode).
    pub fn decode(b: &[u8]) -> Result<TensorMap, TensorMapError> {
        if b.len() < TENSOR_MAP_BYTES {
            return Err(TensorMapError::EncodingSize(b.len()));
        }
        let u64_at = |o: usize| u64::from_le_bytes(std::array::from_fn(|i| b[o + i]));
        if u32::from_le_bytes(std::array::from_fn(|i| b[at::MAGIC + i])) != MAGIC {
            return Err(TensorMapError::BadMagic);
        }
        let rank = b[at::RANK] as usize;
        if !(1..=MAX_RANK).contains(&rank) {
            return Err(TensorMapError::Rank(rank));
        }
        let swizzle = TensorSwizzle::from_code(b[at::SWIZZLE]).ok_or(TensorMapError::SwizzleCode(b[at::SWIZZLE]))?;
        let map = TensorMap {
            global_address: u64_at(at::ADDRESS),
            elem_bytes: b[at::ELEM_BYTES] as u32,
            dims: (0..rank).map(|d| u64_at(at::DIMS + 8 * d)).collect(),
            strides_bytes: (0..rank - 1).map(|d| u64_at(at::STRIDES + 8 * d)).collect(),
            box_dims: (0..rank)
                .map(|d| u16::from_le_bytes([b[at::BOX + 2 * d], b[at::BOX + 2 * d + 1]]) as u32)
                .collect(),
            swizzle,
        };
        map.validate()?;
        Ok(map)
    }

    /// The box at `coords` (innermost first, possibly negative) as it lands at shared
    /// address `dst`: `dst .. dst + box_bytes()` in order, swizzled.
    /// `read(global_address, buf)` fills `buf` from global memory; it is called once per
    /// in-bounds run of the inner dimension. Out-of-bounds elements are zeros.
    ///
    /// The caller guarantees what the instruction's checks establish: the map is valid
    /// ([`decode`](Self::decode) returned it), `coords` has one entry per dimension, and
    /// `dst` is 128-byte aligned (a swizzle keys on its bits 7 and up).
    pub(crate) fn gather<E>(
        &self,
        coords: &[i64],
        dst: u64,
        mut read: impl FnMut(u64, &mut [u8]) -> Result<(), E>,
    ) -> Result<Vec<u8>, E> {
        debug_assert!(self.validate().is_ok() && coords.len() == self.rank());
        debug_assert!(dst.is_multiple_of(SWIZZLE_ROW_BYTES));
        let eb = self.elem_bytes as u64;
        let row_bytes = self.box_dims[0] as u64 * eb;
        let rows: u64 = self.box_dims[1..].iter().map(|&b| b as u64).product();
        let mut dense = vec![0u8; self.box_bytes() as usize];
        for row in 0..rows {
            // Row `row` holds box indices (i1, i2, …) in mixed radix: its global
            // coordinates c_d + i_d, d >= 1, and their byte offset.
            let mut r = row;
            let mut base = self.global_address as i128;
            let mut inside = true;
            let outer = self.box_dims[1..].iter().zip(&self.dims[1..]).zip(&self.strides_bytes).zip(&coords[1..]);
            for (((&b, &n), &stride), &c) in outer {
                let i = r % b as u64;
                r /= b as u64;
                let g = c as i128 + i as i128;
                inside &= g >= 0 && g < n as i128;
                base += g * stride as i128;
            }
            if !inside {
                continue;
            }
            // The in-bounds part of the inner dimension: g0 in [max(c0, 0), min(c0 + box0, dim0)).
            let (c0, box0, dim0) = (coords[0] as i128, self.box_dims[0] as i128, self.dims[0] as i128);
            let (lo, hi) = (c0.max(0), (c0 + box0).min(dim0));
            if lo >= hi {
                continue;
            }
            let at = (row * row_bytes) as usize + ((lo - c0) as u64 * eb) as usize;
            let n = ((hi - lo) as u64 * eb) as usize;
            read((base + lo * eb as i128) as u64, &mut dense[at..at + n])?;
        }
        if self.swizzle == TensorSwizzle::None {
            return Ok(dense);
        }
        let mut out = vec![0u8; dense.len()];
        // 16-byte chunks: the unit a swizzle moves (address bits 4-6).
        for (o, chunk) in dense.chunks(STRIDE_ALIGN as usize).enumerate() {
            let a = dst + o as u64 * STRIDE_ALIGN;
            let to = (self.swizzle.apply(a) - dst) as usize;
            out[to..to + chunk.len()].copy_from_slice(chunk);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_zero_fills_outside_and_swizzles_by_address() {
        // 1-byte elements 0..128 in a 32 x 4 tensor (row stride 32), box 32 x 2 at
        // (-16, 3): row 0 is tensor row 3 shifted right by 16 bytes, row 1 is out of
        // bounds. (tests/semantics_bulk_tensor.rs covers the instruction end to end.)
        let m = TensorMap {
            global_address: 0,
            elem_bytes: 1,
            dims: vec![32, 4],
            strides_bytes: vec![32],
            box_dims: vec![32, 2],
            swizzle: TensorSwizzle::None,
        };
        let tensor: Vec<u8> = (0..128).collect();
        let read = |a: u64, buf: &mut [u8]| -> Result<(), ()> {
            buf.copy_from_slice(&tensor[a as usize..a as usize + buf.len()]);
            Ok(())
        };
        let got = m.gather(&[-16, 3], 0, read).unwrap();
        let mut want = vec![0u8; 64];
        want[16..32].copy_from_slice(&tensor[96..112]);
        assert_eq!(got, want);
        // Swizzled (128-byte mode, two 128-byte rows of a 128 x 2 byte tensor): row 1's
        // chunk c lands at chunk c ^ 1, row 0 stays.
        let m = TensorMap {
            dims: vec![128, 2],
            strides_bytes: vec![128],
            box_dims: vec![128, 2],
            swizzle: TensorSwizzle::Bytes128,
            ..m
        };
        let tensor: Vec<u8> = (0..=255).collect();
        let read = |a: u64, buf: &mut [u8]| -> Result<(), ()> {
            buf.copy_from_slice(&tensor[a as usize..a as usize + buf.len()]);
            Ok(())
        };
        let got = m.gather(&[0, 0], 0, read).unwrap();
        assert_eq!(got[..128], tensor[..128]);
        for c in 0..8 {
            let to = 128 + 16 * (c ^ 1);
            assert_eq!(got[to..to + 16], tensor[128 + 16 * c..128 + 16 * c + 16], "chunk {c}");
        }
        // The swizzles move a 16-byte chunk by address bits 7 and up.
        assert_eq!(TensorSwizzle::Bytes32.apply(128), 144);
        assert_eq!(TensorSwizzle::Bytes64.apply(5 * 128), 5 * 128 + 16);
        assert_eq!(TensorSwizzle::Bytes128.apply(7 * 128 + 16), 7 * 128 + 16 * (1 ^ 7));
        assert_eq!(TensorSwizzle::None.apply(7 * 128 + 16), 7 * 128 + 16);
    }
}
