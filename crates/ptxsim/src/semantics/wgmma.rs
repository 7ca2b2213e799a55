//! Warpgroup matrix multiply-accumulate `wgmma.mma_async.sync.aligned.m64nNk16`
//! (PTX ISA 9.7.15 "Asynchronous Warpgroup Level Matrix Multiply-Accumulate
//! Instructions"): the pure parts, i.e. the matrix descriptor, the shared-memory
//! address of each element of a K-major operand, and one warp's share of the
//! product. The asynchrony (pending groups, fences, proxies) lives in `step`.
//!
//! Supported: `.m64nNk16` (N a multiple of 8 in 8..=256), `.dtype .f32`, `.atype` =
//! `.btype` `.f16` or `.bf16`, A in registers or in shared memory, both K-major
//! (`imm-trans-a` = `imm-trans-b` = 0), `imm-scale-a`/`imm-scale-b` 1 or -1, all
//! four swizzling modes, matrix base offset 0.
//!
//! Register fragments (9.7.15.5.1.1.1 "Matrix Fragments for wgmma.mma_async.m64nNk16",
//! Figures "WGMMA .m64nNk16 register fragment layout for matrix A / accumulator
//! matrix D"; cross-checked with CUTLASS CuTe `ALayout_64x16` / `CLayout_64xN`).
//! Warp `w` = warp index % 4 of the warpgroup holds rows `16w..16w+15`; lane `l`,
//! `g = l >> 2`, `t = l & 3`:
//! - A register `r` (f16x2, low half first): row `16w + g + 8*(r & 1)`,
//!   columns `2t + 8*(r >> 1)` and `+1`;
//! - D register `i` (f32): row `16w + g + 8*((i >> 1) & 1)`, column
//!   `8*(i >> 2) + 2t + (i & 1)`.
//!
//! Within a warp these are exactly the `mma.m16n8k16` A fragment and, per 8-column
//! block `j`, the `m16n8` C/D fragment in registers `4j..4j+3`, so the numerics are
//! those of `mma::mma_sync` (exact products and sum in f64, one rounding to f32),
//! called once per 8-column block.
//!
//! Shared memory (9.7.15.5.1.2 "Shared Memory Matrix Layout", 9.7.15.5.1.2.1.3
//! "Canonical Layouts", 9.7.15.5.1.2.2 "Matrix Descriptor Format"). K-major with
//! 16-bit elements (T = 8 elements = 16 bytes), row `r` (N index of B, M index of
//! A), k in `0..16`, byte address before swizzling:
//! - no swizzle (`((8,m),(T,2k)):((1T,SBO),(1,LBO))`):
//!   `start + (r/8)*SBO + (k/8)*LBO + (r%8)*16 + 2*(k%8)`;
//! - 32/64/128-byte swizzle (`((8,m),(T,2k)):((sT,SBO),(1,T))`, s = 2/4/8, LBO
//!   unused): `start + (r/8)*SBO + (r%8)*(16s) + 2k`,
//!
//! then `Swizzle<b,4,3>` (b = 1/2/3) on the byte address: bits `4..4+b` XOR bits
//! `7..7+b`. The pattern repeats every 256/512/1024 bytes; with base offset 0 it
//! must start at such a boundary, so the start address may only carry offsets
//! below bit 7 (K offsets inside the swizzled row).

use super::mma::{mma_sync, MmaDesc};
use super::types::ScalarType;

/// Shape, types and immediates of one `wgmma.mma_async`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WgmmaDesc {
    /// Rows of A and D (M, always 64).
    pub m: u32,
    /// Columns of B and D (N).
    pub n: u32,
    /// Inner dimension (K).
    pub k: u32,
    /// Element type of D.
    pub d: ScalarType,
    /// Element type of A.
    pub a: ScalarType,
    /// Element type of B.
    pub b: ScalarType,
    /// `imm-scale-a` = -1: negate A.
    pub neg_a: bool,
    /// `imm-scale-b` = -1: negate B.
    pub neg_b: bool,
    /// `imm-trans-a` = 1 (A M-major; shared-memory A only).
    pub trans_a: bool,
    /// `imm-trans-b` = 1 (B N-major).
    pub trans_b: bool,
}

impl WgmmaDesc {
    /// Checks the form against the supported subset (module doc).
    pub fn validate(&self) -> Result<(), String> {
        let bad = |why: &str| Err(format!("wgmma form {self:?}: {why}"));
        if self.m != 64 || self.k != 16 {
            return bad("only .m64nNk16 is supported");
        }
        if self.n == 0 || self.n > 256 || !self.n.is_multiple_of(8) {
            return bad("N must be a multiple of 8 in 8..=256");
        }
        if self.d != ScalarType::F32 {
            return bad("only .f32 accumulators are supported");
        }
        if self.a != self.b || !matches!(self.a, ScalarType::F16 | ScalarType::Bf16) {
            return bad("only .f16.f16 and .bf16.bf16 inputs are supported");
        }
        if self.trans_a || self.trans_b {
            return bad("only K-major operands (imm-trans-a = imm-trans-b = 0) are supported");
        }
        Ok(())
    }

    /// Accumulator registers per lane (`N/2` for `.f32`).
    pub fn d_regs(&self) -> usize {
        self.n as usize / 2
    }
}

/// Swizzling mode of a matrix descriptor (bits 62-63).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Swizzle {
    /// 0: no swizzle (interleaved core matrices).
    None,
    /// 1: 128-byte swizzle.
    B128,
    /// 2: 64-byte swizzle.
    B64,
    /// 3: 32-byte swizzle.
    B32,
}

impl Swizzle {
    /// Bytes of one swizzled row (16 for no swizzle: one core-matrix row).
    pub fn row_bytes(self) -> u64 {
        match self {
            Swizzle::None => 16,
            Swizzle::B128 => 128,
            Swizzle::B64 => 64,
            Swizzle::B32 => 32,
        }
    }

    /// Number of address bits XORed (`b` of `Swizzle<b,4,3>`).
    fn bits(self) -> u32 {
        match self {
            Swizzle::None => 0,
            Swizzle::B32 => 1,
            Swizzle::B64 => 2,
            Swizzle::B128 => 3,
        }
    }

    /// Bytes after which the pattern repeats (its start must be aligned to this when
    /// the base offset is 0): 1024 / 512 / 256 (9.7.15.5.1.2.2).
    pub fn pattern_bytes(self) -> u64 {
        128 << self.bits()
    }

    /// Applies `Swizzle<b,4,3>` to a byte address: bits `4..4+b` ^= bits `7..7+b`.
    pub fn apply(self, addr: u64) -> u64 {
        let m = (1u64 << self.bits()) - 1;
        addr ^ (((addr >> 7) & m) << 4)
    }
}

/// A decoded 64-bit matrix descriptor (PTX ISA 9.7.15.5.1.2.2 "Matrix Descriptor
/// Format"). Addresses and offsets are in bytes (the fields hold them `>> 4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatrixDesc {
    /// Start address (shared-memory byte address), bits 0-13 `<< 4`.
    pub start: u64,
    /// Leading dimension byte offset, bits 16-29 `<< 4`.
    pub lbo: u64,
    /// Stride dimension byte offset, bits 32-45 `<< 4`.
    pub sbo: u64,
    /// Matrix base offset, bits 49-51.
    pub base_offset: u32,
    /// Swizzling mode, bits 62-63.
    pub swizzle: Swizzle,
}

impl MatrixDesc {
    /// Decodes a descriptor register value.
    pub fn decode(v: u64) -> MatrixDesc {
        let f14 = |sh: u32| ((v >> sh) & 0x3fff) << 4;
        MatrixDesc {
            start: f14(0),
            lbo: f14(16),
            sbo: f14(32),
            base_offset: ((v >> 49) & 7) as u32,
            swizzle: match v >> 62 {
                0 => Swizzle::None,
                1 => Swizzle::B128,
                2 => Swizzle::B64,
                _ => Swizzle::B32,
            },
        }
    }

    /// Encodes a descriptor (inverse of `decode` for 16-byte multiples below 256 KiB).
    pub fn encode(&self) -> u64 {
        let e = |x: u64| (x & 0x3ffff) >> 4;
        let sw = match self.swizzle {
            Swizzle::None => 0u64,
            Swizzle::B128 => 1,
            Swizzle::B64 => 2,
            Swizzle::B32 => 3,
        };
        e(self.start) | e(self.lbo) << 16 | e(self.sbo) << 32 | ((self.base_offset as u64) & 7) << 49 | sw << 62
    }

    /// True when a swizzled pattern would not start on its repeat boundary: the start
    /// address has bits at or above bit 7 inside the pattern while the base offset is
    /// 0 (9.7.15.5.1.2.2: base offset 0 means the pattern starts on a 1024/512/256-byte
    /// boundary; only offsets inside one swizzled row may be added to the start).
    pub fn misaligned_pattern(&self) -> bool {
        self.swizzle != Swizzle::None && self.base_offset == 0 && self.start % self.swizzle.pattern_bytes() >= 128
    }

    /// Byte address of element (`row`, `k`) (`k < 16`) of a K-major operand with
    /// 16-bit elements (module doc; 9.7.15.5.1.2.1.3 "Canonical Layouts").
    pub fn k_major_addr(&self, row: u32, k: u32) -> u64 {
        let (r, k) = (row as u64, k as u64);
        match self.swizzle {
            Swizzle::None => self.start + (r / 8) * self.sbo + (k / 8) * self.lbo + (r % 8) * 16 + 2 * (k % 8),
            s => s.apply(self.start + (r / 8) * self.sbo + (r % 8) * s.row_bytes() + 2 * k),
        }
    }
}

/// Computes warp `w`'s share of one `wgmma.mma_async.m64nNk16` (rows `16w..16w+15`
/// of D): `D = (scale_d ? C : 0) + (scale_a A)(scale_b B)`.
///
/// `a[lane]` holds the lane's four A fragment registers (module doc); `b(k, n)` gives
/// the raw 16-bit element `B[k][n]`; `c[lane * N/2 + i]` is accumulator register `i`
/// of the lane (f32 bits; ignored when `!scale_d`). Returns D in the same layout as
/// `c`. Numerics are `mma::mma_sync`'s, one call per 8-column block.
pub fn wgmma_warp(
    desc: &WgmmaDesc,
    a: &[[u32; 4]; 32],
    b: &dyn Fn(u32, u32) -> u16,
    c: &[u32],
    scale_d: bool,
) -> Result<Vec<u32>, String> {
    desc.validate()?;
    let nd = desc.d_regs();
    if c.len() != 32 * nd {
        return Err(format!("wgmma: {} accumulator values, expected {}", c.len(), 32 * nd));
    }
    let mdesc =
        MmaDesc { m: 16, n: 8, k: 16, a: desc.a, b: desc.b, c: ScalarType::F32, d: ScalarType::F32, satfinite: false };
    // Negation flips the sign bit of every 16-bit element (exact, as the ISA's
    // multiplication by -1).
    let na = if desc.neg_a { 0x8000_8000u32 } else { 0 };
    let nb = if desc.neg_b { 0x8000u16 } else { 0 };
    let mut af = *a;
    for regs in af.iter_mut() {
        for r in regs.iter_mut() {
            *r ^= na;
        }
    }
    let mut out = vec![0u32; 32 * nd];
    for j in 0..desc.n / 8 {
        let mut bf = [[0u32; 4]; 32];
        let mut cf = [[0u32; 4]; 32];
        for lane in 0..32usize {
            let (g, t) = (lane as u32 >> 2, lane as u32 & 3);
            let col = 8 * j + g;
            let pair = |k: u32| (b(k, col) ^ nb) as u32 | ((b(k + 1, col) ^ nb) as u32) << 16;
            // mma.m16n8k16 B fragment: b0 = B[2t, 2t+1][g], b1 = B[2t+8, 2t+9][g].
            bf[lane] = [pair(2 * t), pair(2 * t + 8), 0, 0];
            if scale_d {
                let base = lane * nd + 4 * j as usize;
                cf[lane].copy_from_slice(&c[base..base + 4]);
            }
        }
        let res = mma_sync(&mdesc, &af, &bf, &cf)?;
        for (lane, r) in res.iter().enumerate() {
            let base = lane * nd + 4 * j as usize;
            out[base..base + 4].copy_from_slice(r);
        }
    }
    Ok(out)
}
