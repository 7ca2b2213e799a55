//! Conversions `cvt` between PTX scalar types (PTX ISA 9.7.9.21 "cvt", with the
//! rules of 9.7.9.21.1 "Rounding Modifiers" and 8.x "Saturation"), operating on raw
//! register bits.
//!
//! Value convention: the source value sits in the low bits of the `u64` (an `.f16`
//! in bits 15:0, an `.s8` in bits 7:0, ...); higher bits are ignored. The result is
//! returned in the low bits likewise: zero-extended to 64 bits for unsigned and
//! floating-point destinations, sign-extended to 64 bits for signed integer
//! destinations (so the caller may truncate it to any register width, matching the
//! ISA's sign-extension of signed results into wider registers).

use super::float::{round_exact, round_f64, to_f64, FpFormat};
use super::types::{Rounding, ScalarType};

/// Kind of a `cvt` operand type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int { bits: u32, signed: bool },
    Float(FpFormat),
}

fn kind(t: ScalarType) -> Result<Kind, String> {
    use ScalarType::*;
    Ok(match t {
        U8 => Kind::Int { bits: 8, signed: false },
        U16 => Kind::Int { bits: 16, signed: false },
        U32 => Kind::Int { bits: 32, signed: false },
        U64 => Kind::Int { bits: 64, signed: false },
        S8 => Kind::Int { bits: 8, signed: true },
        S16 => Kind::Int { bits: 16, signed: true },
        S32 => Kind::Int { bits: 32, signed: true },
        S64 => Kind::Int { bits: 64, signed: true },
        F16 => Kind::Float(FpFormat::F16),
        Bf16 => Kind::Float(FpFormat::Bf16),
        F32 => Kind::Float(FpFormat::F32),
        F64 => Kind::Float(FpFormat::F64),
        other => return Err(format!("cvt: unsupported type {other:?}")),
    })
}

fn is_integral_rounding(r: Rounding) -> bool {
    matches!(r, Rounding::Rni | Rounding::Rzi | Rounding::Rmi | Rounding::Rpi)
}

/// Reads an integer of `bits` width from the low bits, sign- or zero-extending.
fn read_int(v: u64, bits: u32, signed: bool) -> i128 {
    let sh = 64 - bits;
    if signed {
        (((v << sh) as i64) >> sh) as i128
    } else {
        ((v << sh) >> sh) as i128
    }
}

/// Range of an integer type.
fn int_range(bits: u32, signed: bool) -> (i128, i128) {
    if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    }
}

/// Writes an integer result: truncated to `bits`, then sign-extended to 64 bits for
/// signed types or zero-extended for unsigned ones.
fn write_int(v: i128, bits: u32, signed: bool) -> u64 {
    read_int(v as u64, bits, signed) as u64
}

/// PTX `.sat` on a floating-point result: clamps to [0.0, 1.0], NaN -> +0.0
/// (PTX ISA "Saturation modifier"). -0.0 becomes +0.0.
fn sat_float(fmt: FpFormat, bits: u64) -> u64 {
    if fmt.is_nan(bits) {
        return 0;
    }
    let x = to_f64(fmt, bits);
    if x <= 0.0 {
        0
    } else if x >= 1.0 {
        round_f64(fmt, 1.0, 0.0, Rounding::Rn)
    } else {
        bits
    }
}

/// Rounds an f64 holding an exact value to an integral value by an integer
/// rounding mode (`.rni .rzi .rmi .rpi`); plain modes map to their integral forms.
fn round_integral(x: f64, r: Rounding) -> f64 {
    match r {
        Rounding::Rni | Rounding::Rn => x.round_ties_even(),
        Rounding::Rna => x.round(),
        Rounding::Rzi | Rounding::Rz => x.trunc(),
        Rounding::Rmi | Rounding::Rm => x.floor(),
        Rounding::Rpi | Rounding::Rp => x.ceil(),
    }
}

/// `cvt{.rnd}{.ftz}{.sat}.to.from d, a` (PTX ISA "cvt").
///
/// - int -> int: truncation or sign/zero extension; `.sat` clamps to the
///   destination range. A rounding modifier is an error (the ISA allows none).
/// - int -> float: `.rn .rz .rm .rp` (absent: `.rn`); `.sat` clamps to [0, 1].
/// - float -> int: needs `.rni .rzi .rmi .rpi`; the result always saturates to the
///   destination range and NaN converts to 0 (ISA: float-to-integer conversions
///   saturate by default). `.ftz` flushes a subnormal `.f32` source first.
/// - float -> float: widening is exact; narrowing (and f16 <-> bf16) rounds with
///   `.rn .rz .rm .rp` (absent: `.rn`), with gradual underflow and per-mode
///   overflow; an integer rounding mode rounds to an integral value (in the same
///   type, or then converted with `.rn`). NaN -> the destination's canonical NaN.
///   `.ftz` flushes `.f32` subnormal sources and results to signed zero; `.sat`
///   clamps to [0.0, 1.0] with NaN -> +0.0.
pub fn cvt(
    bits: u64,
    from: ScalarType,
    to: ScalarType,
    rnd: Option<Rounding>,
    sat: bool,
    ftz: bool,
) -> Result<u64, String> {
    let (src, dst) = (kind(from)?, kind(to)?);
    match (src, dst) {
        (Kind::Int { bits: sb, signed: ss }, Kind::Int { bits: db, signed: ds }) => {
            if let Some(r) = rnd {
                return Err(format!("cvt: rounding {r:?} not allowed for {from:?} -> {to:?}"));
            }
            let v = read_int(bits, sb, ss);
            let v = if sat {
                let (lo, hi) = int_range(db, ds);
                v.clamp(lo, hi)
            } else {
                v
            };
            Ok(write_int(v, db, ds))
        }
        (Kind::Int { bits: sb, signed: ss }, Kind::Float(fmt)) => {
            let r = rnd.unwrap_or(Rounding::Rn);
            if is_integral_rounding(r) {
                return Err(format!("cvt: integer rounding {r:?} not allowed for {from:?} -> {to:?}"));
            }
            let v = read_int(bits, sb, ss);
            let out = round_exact(fmt, v < 0, v.unsigned_abs(), 0, r);
            Ok(if sat { sat_float(fmt, out) } else { out })
        }
        (Kind::Float(fmt), Kind::Int { bits: db, signed: ds }) => {
            let r = match rnd {
                Some(r) if is_integral_rounding(r) => r,
                other => return Err(format!("cvt: {from:?} -> {to:?} needs .rni/.rzi/.rmi/.rpi, got {other:?}")),
            };
            let mut b = bits & mask_of(fmt);
            if ftz && fmt == FpFormat::F32 {
                b = fmt.flush(b);
            }
            if fmt.is_nan(b) {
                return Ok(0);
            }
            let x = round_integral(to_f64(fmt, b), r);
            // `as` saturates (and is exact below 2^127); then clamp to the type.
            let (lo, hi) = int_range(db, ds);
            Ok(write_int((x as i128).clamp(lo, hi), db, ds))
        }
        (Kind::Float(sf), Kind::Float(df)) => {
            let mut b = bits & mask_of(sf);
            if ftz && sf == FpFormat::F32 {
                b = sf.flush(b);
            }
            let mut out = if sf.is_nan(b) {
                df.canonical_nan()
            } else {
                let x = to_f64(sf, b);
                match rnd {
                    Some(r) if is_integral_rounding(r) => round_f64(df, round_integral(x, r), 0.0, Rounding::Rn),
                    Some(r) => round_f64(df, x, 0.0, r),
                    None => round_f64(df, x, 0.0, Rounding::Rn),
                }
            };
            if ftz && df == FpFormat::F32 {
                out = df.flush(out);
            }
            Ok(if sat { sat_float(df, out) } else { out })
        }
    }
}

fn mask_of(fmt: FpFormat) -> u64 {
    match fmt {
        FpFormat::F16 | FpFormat::Bf16 => 0xffff,
        FpFormat::F32 => 0xffff_ffff,
        FpFormat::F64 => u64::MAX,
    }
}

/// `cvt.frnd{.relu}{.satfinite}.{f16,bf16}.f32 d, a` (PTX ISA "cvt"): one f32 to
/// f16 (or bf16 when `to_bf16`) bits. `.relu` clamps negative results to +0 and
/// keeps NaN as the canonical NaN; `.satfinite` (`sat`) turns infinities and
/// overflows into the largest finite value of the same sign, NaN staying NaN.
pub fn cvt_f32_to_half(a: f32, rnd: Rounding, to_bf16: bool, relu: bool, sat: bool) -> u16 {
    let fmt = if to_bf16 { FpFormat::Bf16 } else { FpFormat::F16 };
    if a.is_nan() {
        return fmt.canonical_nan() as u16;
    }
    let r = if is_integral_rounding(rnd) { Rounding::Rn } else { rnd };
    let mut out = round_f64(fmt, a as f64, 0.0, r);
    if sat && out & !fmt.sign_bit() == fmt.inf_bits() {
        out = (out & fmt.sign_bit()) | fmt.max_finite_bits();
    }
    if relu && out & fmt.sign_bit() != 0 {
        out = 0;
    }
    out as u16
}

/// `cvt.frnd{.relu}{.satfinite}.{f16x2,bf16x2}.f32 d, a, b` (PTX ISA "cvt"): the
/// value converted from `a` goes to the UPPER half of `d`, the one from `b` to the
/// lower half (ISA: `d[31:16] = convert(a); d[15:0] = convert(b)`).
pub fn cvt_pack_f16x2(a: f32, b: f32, rnd: Rounding, to_bf16: bool, relu: bool, sat: bool) -> u32 {
    let hi = cvt_f32_to_half(a, rnd, to_bf16, relu, sat) as u32;
    let lo = cvt_f32_to_half(b, rnd, to_bf16, relu, sat) as u32;
    (hi << 16) | lo
}
