//! Warp-level matrix multiply-accumulate `mma.sync.aligned.mMnNkK.row.col` (PTX ISA
//! 9.7.14 "Warp Level Matrix Multiply-Accumulate Instructions", subsections
//! "Matrix Fragments for mma.m16n8k8 / m16n8k16 / m16n8k32 / m16n8k64").
//!
//! Supported (A row-major, B column-major only):
//! - `m16n8k16` and `m16n8k8` with A/B `.f16` (C/D `.f16` or `.f32`, independently)
//!   or `.bf16` (C/D `.f32`);
//! - `m16n8k32` and `m16n8k16` with A/B `.s8`/`.u8` (any mix), C/D `.s32`;
//! - `m16n8k64` and `m16n8k32` with A/B `.s4`/`.u4` (any mix), C/D `.s32`.
//!
//! Fragment layout (lane `l`, `g = l >> 2`, `t = l & 3`; `e` = elements per
//! 32-bit register = 32 / element bits, element `j` in bits `[j*bits, (j+1)*bits)`):
//! - A register `r`: row `g + 8*(r & 1)`, k `(r >> 1)*4e + t*e + j`;
//! - B register `r`: k `r*4e + t*e + j`, column `g`;
//! - C/D 32-bit register `r`: row `g + 8*(r >> 1)`, column `2t + (r & 1)`;
//!   f16 C/D register `r`: row `g + 8r`, columns `2t + j` (j = half, low first).
//!
//! These follow the ISA's fragment figures (cross-checked in
//! `/work/shared/ptx-fragments.md` and CUTLASS CuTe `mma_traits_sm80.hpp`).
//!
//! Numerics. Floating point: every product of two f16/bf16 values is exact in
//! f64; the K products and C are summed in f64 and rounded once (to nearest even)
//! into the destination type. The ISA leaves the internal accumulation order and
//! precision unspecified; hardware may differ from this in the last bit of an f32
//! result (and in flushing of f32 subnormal accumulators). Integer: exact i64 sum;
//! without `.satfinite` the result wraps to 32 bits, with it the result clamps to
//! the s32 range (PTX ISA "mma": `.satfinite` for integer types).

use super::float::{round_f64, to_f64, FpFormat};
use super::types::{Rounding, ScalarType};

/// Shape and types of one `mma.sync.aligned.mMnNkK.row.col{.satfinite}.dtype.atype.btype.ctype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmaDesc {
    /// Rows of A and D (M).
    pub m: u32,
    /// Columns of B and D (N).
    pub n: u32,
    /// Inner dimension (K).
    pub k: u32,
    /// Element type of A.
    pub a: ScalarType,
    /// Element type of B.
    pub b: ScalarType,
    /// Element type of C.
    pub c: ScalarType,
    /// Element type of D.
    pub d: ScalarType,
    /// `.satfinite` (integer forms: clamp to the s32 range instead of wrapping).
    pub satfinite: bool,
}

/// Operand class after validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Float,
    Int,
}

/// Validates the descriptor against the supported forms; returns the class and
/// the element width in bits of A/B.
fn validate(desc: &MmaDesc) -> Result<(Class, u32), String> {
    use ScalarType::*;
    let bad = || format!("unsupported mma form {desc:?}");
    if desc.m != 16 || desc.n != 8 {
        return Err(bad());
    }
    match (desc.a, desc.b) {
        (F16, F16) | (Bf16, Bf16) => {
            if !matches!(desc.k, 8 | 16) || desc.satfinite {
                return Err(bad());
            }
            let ok_acc = |t: ScalarType| t == F32 || (t == F16 && desc.a == F16);
            if !ok_acc(desc.c) || !ok_acc(desc.d) {
                return Err(bad());
            }
            Ok((Class::Float, 16))
        }
        (S8 | U8, S8 | U8) => {
            if !matches!(desc.k, 16 | 32) || desc.c != S32 || desc.d != S32 {
                return Err(bad());
            }
            Ok((Class::Int, 8))
        }
        (S4 | U4, S4 | U4) => {
            if !matches!(desc.k, 32 | 64) || desc.c != S32 || desc.d != S32 {
                return Err(bad());
            }
            Ok((Class::Int, 4))
        }
        _ => Err(bad()),
    }
}

/// Registers per lane of A, B, C and D for a supported form (PTX ISA "mma"
/// fragment sections): A holds `M*K/32` elements per lane, B `N*K/32`, C/D `M*N/32`
/// (4 values: 4 registers of f32/s32, or 2 registers of packed f16x2).
pub fn mma_reg_counts(desc: &MmaDesc) -> Result<(usize, usize, usize, usize), String> {
    let (_, bits) = validate(desc)?;
    let per_reg = (32 / bits) as usize;
    let a = (desc.m * desc.k / 32) as usize / per_reg;
    let b = (desc.n * desc.k / 32) as usize / per_reg;
    let acc = |t: ScalarType| if t == ScalarType::F16 { 2 } else { 4 };
    Ok((a, b, acc(desc.c), acc(desc.d)))
}

/// Extracts element `j` of a packed register as an exact value.
fn element(t: ScalarType, reg: u32, j: u32) -> Elem {
    match t {
        ScalarType::F16 => Elem::F(to_f64(FpFormat::F16, ((reg >> (16 * j)) & 0xffff) as u64)),
        ScalarType::Bf16 => Elem::F(to_f64(FpFormat::Bf16, ((reg >> (16 * j)) & 0xffff) as u64)),
        ScalarType::S8 => Elem::I(((reg >> (8 * j)) as u8) as i8 as i64),
        ScalarType::U8 => Elem::I(((reg >> (8 * j)) & 0xff) as i64),
        ScalarType::S4 => Elem::I((((reg >> (4 * j)) << 28) as i32 >> 28) as i64),
        _ => Elem::I(((reg >> (4 * j)) & 0xf) as i64), // U4 (validated)
    }
}

#[derive(Clone, Copy)]
enum Elem {
    F(f64),
    I(i64),
}

/// Executes one warp-wide `mma.sync.aligned.m16n8kK.row.col` (PTX ISA "mma").
///
/// `a[lane][r]`, `b[lane][r]`, `c[lane][r]` are the lane's fragment registers
/// (only the first `mma_reg_counts` entries are read); the result holds D's
/// registers in the same way, unused entries zero. Unsupported forms return `Err`.
pub fn mma_sync(
    desc: &MmaDesc,
    a: &[[u32; 4]; 32],
    b: &[[u32; 4]; 32],
    c: &[[u32; 4]; 32],
) -> Result<[[u32; 4]; 32], String> {
    let (class, bits) = validate(desc)?;
    let (ra, rb, _, _) = mma_reg_counts(desc)?;
    let e = 32 / bits; // elements per register
    let (m, n, k) = (desc.m as usize, desc.n as usize, desc.k as usize);

    // Gather the full matrices from the fragments.
    let mut am = vec![Elem::I(0); m * k]; // row-major M x K
    let mut bm = vec![Elem::I(0); k * n]; // B[k][n] stored at k * n + col
    for lane in 0..32u32 {
        let (g, t) = (lane >> 2, lane & 3);
        for r in 0..ra as u32 {
            for j in 0..e {
                let row = g + 8 * (r & 1);
                let col = (r >> 1) * 4 * e + t * e + j;
                am[row as usize * k + col as usize] = element(desc.a, a[lane as usize][r as usize], j);
            }
        }
        for r in 0..rb as u32 {
            for j in 0..e {
                let kk = r * 4 * e + t * e + j;
                bm[kk as usize * n + g as usize] = element(desc.b, b[lane as usize][r as usize], j);
            }
        }
    }

    // C as values: f64 for float forms, i64 for integer forms.
    let c_val = |lane: usize, idx: usize| -> Elem {
        // idx 0..4 in the order (row g, col 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1).
        match desc.c {
            ScalarType::F16 => {
                let reg = c[lane][idx >> 1];
                Elem::F(to_f64(FpFormat::F16, ((reg >> (16 * (idx & 1))) & 0xffff) as u64))
            }
            ScalarType::F32 => Elem::F(f32::from_bits(c[lane][idx]) as f64),
            _ => Elem::I(c[lane][idx] as i32 as i64),
        }
    };

    let mut out = [[0u32; 4]; 32];
    for (lane, regs) in out.iter_mut().enumerate() {
        let (g, t) = (lane >> 2, lane & 3);
        for idx in 0..4 {
            let row = g + 8 * (idx >> 1);
            let col = 2 * t + (idx & 1);
            let value = match class {
                Class::Float => {
                    let mut sum = match c_val(lane, idx) {
                        Elem::F(v) => v,
                        Elem::I(v) => v as f64,
                    };
                    for kk in 0..k {
                        if let (Elem::F(x), Elem::F(y)) = (am[row * k + kk], bm[kk * n + col]) {
                            sum += x * y;
                        }
                    }
                    Elem::F(sum)
                }
                Class::Int => {
                    let mut sum = match c_val(lane, idx) {
                        Elem::I(v) => v,
                        Elem::F(_) => 0,
                    };
                    for kk in 0..k {
                        if let (Elem::I(x), Elem::I(y)) = (am[row * k + kk], bm[kk * n + col]) {
                            sum += x * y;
                        }
                    }
                    Elem::I(sum)
                }
            };
            match (desc.d, value) {
                (ScalarType::F16, Elem::F(v)) => {
                    let h = round_f64(FpFormat::F16, v, 0.0, Rounding::Rn) as u32;
                    regs[idx >> 1] |= h << (16 * (idx & 1));
                }
                (ScalarType::F32, Elem::F(v)) => {
                    regs[idx] = round_f64(FpFormat::F32, v, 0.0, Rounding::Rn) as u32;
                }
                (_, Elem::I(v)) => {
                    regs[idx] =
                        if desc.satfinite { v.clamp(i32::MIN as i64, i32::MAX as i64) as i32 as u32 } else { v as u32 };
                }
                _ => return Err(format!("unsupported mma form {desc:?}")),
            }
        }
    }
    Ok(out)
}
