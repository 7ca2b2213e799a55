//! Floating-point arithmetic on raw register bits (PTX ISA 9.7.3 "Floating-Point
//! Instructions", 9.7.4 "Half Precision Floating-Point Instructions", 9.7.6
//! "Comparison and Selection Instructions" for `setp`), plus the exact rounding
//! core shared with `cvt` and `mma`.
//!
//! Rounding strategy: every f16/bf16/f32 result is computed as an f64 value `s`
//! plus an exactly known error term `e` (error-free transformations: products of
//! two f32 are exact in f64; sums use TwoSum), then rounded ONCE into the target
//! format by [`round_f64`], which looks at `e` only for its sign. That gives
//! correctly rounded results for every rounding mode (`.rn .rz .rm .rp`), with
//! gradual underflow, without double rounding. (Going through the `half` crate's
//! `from_f64` is avoided on purpose: on x86 hosts with F16C it rounds f64 -> f32 ->
//! f16, i.e. twice.)

use super::types::Rounding;

/// A binary floating-point interchange format handled by the rounding core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpFormat {
    /// IEEE binary16 (`.f16`): 5 exponent bits, 10 fraction bits.
    F16,
    /// bfloat16 (`.bf16`): 8 exponent bits, 7 fraction bits.
    Bf16,
    /// IEEE binary32 (`.f32`).
    F32,
    /// IEEE binary64 (`.f64`).
    F64,
}

impl FpFormat {
    /// Exponent field width.
    pub const fn ebits(self) -> u32 {
        match self {
            FpFormat::F16 => 5,
            FpFormat::Bf16 | FpFormat::F32 => 8,
            FpFormat::F64 => 11,
        }
    }
    /// Fraction (stored mantissa) field width.
    pub const fn mbits(self) -> u32 {
        match self {
            FpFormat::F16 => 10,
            FpFormat::Bf16 => 7,
            FpFormat::F32 => 23,
            FpFormat::F64 => 52,
        }
    }
    /// The sign bit.
    pub const fn sign_bit(self) -> u64 {
        1u64 << (self.ebits() + self.mbits())
    }
    /// Bits of +infinity.
    pub const fn inf_bits(self) -> u64 {
        ((1u64 << self.ebits()) - 1) << self.mbits()
    }
    /// Bits of the largest finite value.
    pub const fn max_finite_bits(self) -> u64 {
        self.inf_bits() - 1
    }
    /// The canonical NaN that PTX arithmetic produces (PTX ISA "Floating-Point
    /// Instructions": f32 `0x7FFFFFFF`; half precision `0x7FFF`). f64 uses the same
    /// all-ones pattern (an assumption; the ISA does not pin the f64 payload).
    pub const fn canonical_nan(self) -> u64 {
        match self {
            FpFormat::F16 | FpFormat::Bf16 => 0x7fff,
            FpFormat::F32 => 0x7fff_ffff,
            FpFormat::F64 => 0x7fff_ffff_ffff_ffff,
        }
    }
    /// True when `bits` encode a NaN.
    pub const fn is_nan(self, bits: u64) -> bool {
        bits & !self.sign_bit() > self.inf_bits()
    }
    /// True when `bits` encode a subnormal (nonzero, exponent field 0).
    pub const fn is_subnormal(self, bits: u64) -> bool {
        let mag = bits & !self.sign_bit();
        mag != 0 && mag < (1u64 << self.mbits())
    }
    /// Flushes a subnormal to the zero of the same sign (PTX `.ftz`).
    pub const fn flush(self, bits: u64) -> u64 {
        if self.is_subnormal(bits) {
            bits & self.sign_bit()
        } else {
            bits
        }
    }
}

/// Exact widening of a value of `fmt` (raw bits in the low bits) to f64. Every
/// f16, bf16 and f32 value is representable in f64.
pub fn to_f64(fmt: FpFormat, bits: u64) -> f64 {
    match fmt {
        FpFormat::F16 => half::f16::from_bits(bits as u16).to_f64(),
        FpFormat::Bf16 => half::bf16::from_bits(bits as u16).to_f64(),
        FpFormat::F32 => f32::from_bits(bits as u32) as f64,
        FpFormat::F64 => f64::from_bits(bits),
    }
}

/// Rounding direction after the integral/non-integral distinction is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    NearestEven,
    NearestAway,
    Zero,
    Down,
    Up,
}

fn dir(r: Rounding) -> Dir {
    match r {
        Rounding::Rn | Rounding::Rni => Dir::NearestEven,
        Rounding::Rna => Dir::NearestAway,
        Rounding::Rz | Rounding::Rzi => Dir::Zero,
        Rounding::Rm | Rounding::Rmi => Dir::Down,
        Rounding::Rp | Rounding::Rpi => Dir::Up,
    }
}

/// Result of an overflow under each rounding direction (IEEE 754 7.4, which the
/// PTX ISA's rounding modifiers follow): nearest -> infinity; toward zero ->
/// largest finite; toward -inf/+inf -> infinity on the side rounded toward.
fn overflow(fmt: FpFormat, neg: bool, d: Dir) -> u64 {
    let to_inf = match d {
        Dir::NearestEven | Dir::NearestAway => true,
        Dir::Zero => false,
        Dir::Down => neg,
        Dir::Up => !neg,
    };
    let sign = if neg { fmt.sign_bit() } else { 0 };
    sign | if to_inf { fmt.inf_bits() } else { fmt.max_finite_bits() }
}

/// Position of a discarded remainder relative to half an ulp.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rem {
    Zero,
    Below,
    Half,
    Above,
}

/// Rounds the exact value `(-1)^neg * mant * 2^exp` into `fmt` with rounding `rnd`
/// (the `*i` integral modes count as their plain counterparts here), handling
/// gradual underflow and overflow. Returns the raw bits.
pub fn round_exact(fmt: FpFormat, neg: bool, mant: u128, exp: i32, rnd: Rounding) -> u64 {
    let d = dir(rnd);
    let sign = if neg { fmt.sign_bit() } else { 0 };
    if mant == 0 {
        return sign;
    }
    let mb = fmt.mbits() as i32;
    let bias = (1i32 << (fmt.ebits() - 1)) - 1;
    let emin = 1 - bias;
    let msb = 127 - mant.leading_zeros() as i32;
    let e_val = msb.saturating_add(exp); // value in [2^e_val, 2^(e_val+1))
    if e_val > bias {
        return overflow(fmt, neg, d);
    }
    let te = e_val.max(emin);
    let shift = (te - mb) as i64 - exp as i64; // bits of mant below the target ulp
    let (r, rem) = if shift <= 0 {
        (mant << (-shift) as u32, Rem::Zero)
    } else if shift > 128 {
        (0u128, Rem::Below)
    } else if shift == 128 {
        let half = 1u128 << 127;
        (
            0u128,
            if mant > half {
                Rem::Above
            } else if mant == half {
                Rem::Half
            } else {
                Rem::Below
            },
        )
    } else {
        let s = shift as u32;
        let rest = mant & ((1u128 << s) - 1);
        let half = 1u128 << (s - 1);
        let class = if rest == 0 {
            Rem::Zero
        } else if rest < half {
            Rem::Below
        } else if rest == half {
            Rem::Half
        } else {
            Rem::Above
        };
        (mant >> s, class)
    };
    let up = match d {
        Dir::NearestEven => rem == Rem::Above || (rem == Rem::Half && r & 1 == 1),
        Dir::NearestAway => rem == Rem::Above || rem == Rem::Half,
        Dir::Zero => false,
        Dir::Down => neg && rem != Rem::Zero,
        Dir::Up => !neg && rem != Rem::Zero,
    };
    let r = (r + up as u128) as u64;
    // r carries the implicit bit for normals, so adding it to the biased exponent
    // minus one encodes normals, subnormals (te == emin -> field 0) and the carry
    // into the next binade uniformly.
    let bits = (((te + bias - 1) as u64) << mb) + r;
    if bits >= fmt.inf_bits() {
        return overflow(fmt, neg, d);
    }
    sign | bits
}

/// Rounds `x + err` into `fmt`, where `x` is an f64 and `err` the exact (or
/// sign-exact) error of `x` against the true result, with `|err| <= ulp(x)/2` (as
/// TwoSum/TwoProduct give). Only the sign of `err` is used. NaN -> the canonical NaN
/// of `fmt`; infinities map to infinities.
pub fn round_f64(fmt: FpFormat, x: f64, err: f64, rnd: Rounding) -> u64 {
    if x.is_nan() || err.is_nan() {
        return fmt.canonical_nan();
    }
    let neg = x.is_sign_negative();
    let sign = if neg { fmt.sign_bit() } else { 0 };
    if x.is_infinite() {
        return sign | fmt.inf_bits();
    }
    if x == 0.0 {
        if err == 0.0 {
            return sign;
        }
        // A tiny nonzero remainder around zero: far below every subnormal.
        return round_exact(fmt, err < 0.0, 1, -2000, rnd);
    }
    let b = x.to_bits();
    let field = ((b >> 52) & 0x7ff) as i32;
    let frac = (b & ((1u64 << 52) - 1)) as u128;
    let (m, e) = if field == 0 { (frac, -1074) } else { (frac | (1u128 << 52), field - 1075) };
    // Two extra low bits: the residual's sign lands strictly between neighbours of
    // the f64 grid, never on a target rounding boundary or midpoint.
    let mut m = m << 2;
    if err != 0.0 {
        if (err < 0.0) == neg {
            m += 1;
        } else {
            m -= 1;
        }
    }
    round_exact(fmt, neg, m, e - 2, rnd)
}

/// Error-free sum (Knuth's TwoSum): returns `(s, e)` with `s = fl(a + b)` and
/// `a + b = s + e` exactly (when `s` is finite).
pub fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    if !s.is_finite() {
        return (s, 0.0);
    }
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, e)
}

/// A two-operand floating-point operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FBinOp {
    /// `add`
    Add,
    /// `sub`
    Sub,
    /// `mul`
    Mul,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `min.NaN`
    MinNaN,
    /// `max.NaN`
    MaxNaN,
}

/// Comparison operator of `setp`/`set` on floating-point operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FCmp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `lt`
    Lt,
    /// `le`
    Le,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `equ`
    Equ,
    /// `neu`
    Neu,
    /// `ltu`
    Ltu,
    /// `leu`
    Leu,
    /// `gtu`
    Gtu,
    /// `geu`
    Geu,
    /// `num`
    Num,
    /// `nan`
    Nan,
}

/// Result of an op on unpacked f64 operands: the f64 result and its exact error.
type Exact = (f64, f64);

/// Exact (`value + error`) result of `op` on f64 operands that are values of a
/// narrower format (so that products are exact in f64). Min/max are exact.
fn exact_bin(op: FBinOp, a: f64, b: f64, rnd: Rounding) -> Exact {
    match op {
        FBinOp::Add => exact_add(a, b, rnd),
        FBinOp::Sub => exact_add(a, -b, rnd),
        FBinOp::Mul => (a * b, 0.0),
        FBinOp::Min | FBinOp::Max | FBinOp::MinNaN | FBinOp::MaxNaN => (min_max(op, a, b), 0.0),
    }
}

/// Exact sum `a + b` as TwoSum, with the IEEE 754 (6.3) sign of an exact zero:
/// a zero sum of operands of opposite sign (or of +0 and -0) is -0 under
/// round-toward-negative and +0 otherwise; -0 + -0 stays -0.
fn exact_add(a: f64, b: f64, rnd: Rounding) -> Exact {
    let (s, e) = two_sum(a, b);
    if s == 0.0 && e == 0.0 && dir(rnd) == Dir::Down && !(a.is_sign_positive() && b.is_sign_positive()) {
        return (-0.0, 0.0);
    }
    (s, e)
}

/// PTX ISA "min"/"max": if one operand is NaN the other is returned, both NaN ->
/// NaN; `.NaN` variants return NaN when either is NaN. -0.0 is treated as less
/// than +0.0.
fn min_max(op: FBinOp, a: f64, b: f64) -> f64 {
    let want_min = matches!(op, FBinOp::Min | FBinOp::MinNaN);
    if a.is_nan() || b.is_nan() {
        if matches!(op, FBinOp::MinNaN | FBinOp::MaxNaN) || (a.is_nan() && b.is_nan()) {
            return f64::NAN;
        }
        return if a.is_nan() { b } else { a };
    }
    let a_less = a < b || (a == b && a.is_sign_negative() && !b.is_sign_negative());
    if a_less == want_min {
        a
    } else {
        b
    }
}

/// Applies the result modifiers: rounding into `fmt`, `.ftz` on the result,
/// `.sat` (clamp to [0, 1], NaN -> +0) and `.relu` (negative -> +0, NaN kept).
fn finish(fmt: FpFormat, (s, e): Exact, rnd: Rounding, ftz: bool, sat: bool, relu: bool) -> u64 {
    let mut out = round_f64(fmt, s, e, rnd);
    if ftz {
        out = fmt.flush(out);
    }
    if sat {
        if fmt.is_nan(out) {
            return 0;
        }
        let v = to_f64(fmt, out);
        out = if v <= 0.0 {
            0
        } else if v >= 1.0 {
            round_f64(fmt, 1.0, 0.0, Rounding::Rn)
        } else {
            out
        };
    }
    if relu && !fmt.is_nan(out) && out & fmt.sign_bit() != 0 {
        out = 0;
    }
    out
}

/// Unpacks an operand of `fmt`, flushing subnormals when `ftz`.
fn load(fmt: FpFormat, bits: u64, ftz: bool) -> f64 {
    to_f64(fmt, if ftz { fmt.flush(bits) } else { bits })
}

fn half_bin(fmt: FpFormat, op: FBinOp, a: u16, b: u16, rnd: Rounding, ftz: bool, sat: bool) -> u16 {
    let r = exact_bin(op, load(fmt, a as u64, ftz), load(fmt, b as u64, ftz), rnd);
    finish(fmt, r, rnd, ftz, sat, false) as u16
}

fn half_fma(fmt: FpFormat, (a, b, c): (u16, u16, u16), rnd: Rounding, ftz: bool, sat: bool, relu: bool) -> u16 {
    // a*b is exact in f64 for f16/bf16 operands; one TwoSum makes the sum exact.
    let p = load(fmt, a as u64, ftz) * load(fmt, b as u64, ftz);
    let r = exact_add(p, load(fmt, c as u64, ftz), rnd);
    finish(fmt, r, rnd, ftz, sat, relu) as u16
}

/// `{add,sub,mul,min,max}{.rnd}{.ftz}{.sat}.f16` (PTX ISA "Half Precision
/// Floating-Point Instructions"), correctly rounded in every rounding mode.
pub fn f16_bin(op: FBinOp, a: u16, b: u16, rnd: Rounding, ftz: bool, sat: bool) -> u16 {
    half_bin(FpFormat::F16, op, a, b, rnd, ftz, sat)
}

/// `{add,sub,mul,min,max}{.rnd}.bf16` (PTX ISA "Half Precision Floating-Point
/// Instructions"); `ftz`/`sat` applied as for f16 when requested.
pub fn bf16_bin(op: FBinOp, a: u16, b: u16, rnd: Rounding, ftz: bool, sat: bool) -> u16 {
    half_bin(FpFormat::Bf16, op, a, b, rnd, ftz, sat)
}

/// Applies a 16-bit operation to both halves of packed operands (element 0 in
/// bits 15:0).
fn lanes2(a: u32, b: u32, f: impl Fn(u16, u16) -> u16) -> u32 {
    let lo = f(a as u16, b as u16) as u32;
    let hi = f((a >> 16) as u16, (b >> 16) as u16) as u32;
    (hi << 16) | lo
}

/// `.f16x2` form of [`f16_bin`], elementwise on both halves.
pub fn f16x2_bin(op: FBinOp, a: u32, b: u32, rnd: Rounding, ftz: bool, sat: bool) -> u32 {
    lanes2(a, b, |x, y| f16_bin(op, x, y, rnd, ftz, sat))
}

/// `.bf16x2` form of [`bf16_bin`], elementwise on both halves.
pub fn bf16x2_bin(op: FBinOp, a: u32, b: u32, rnd: Rounding, ftz: bool, sat: bool) -> u32 {
    lanes2(a, b, |x, y| bf16_bin(op, x, y, rnd, ftz, sat))
}

/// `fma{.rnd}{.ftz}{.sat|.relu}.f16 d, a, b, c` = `a*b + c` with a single rounding
/// (PTX ISA "fma" in "Half Precision Floating-Point Instructions").
pub fn f16_fma(a: u16, b: u16, c: u16, rnd: Rounding, ftz: bool, sat: bool, relu: bool) -> u16 {
    half_fma(FpFormat::F16, (a, b, c), rnd, ftz, sat, relu)
}

/// `fma{.rnd}{.relu}.bf16 d, a, b, c` with a single rounding.
pub fn bf16_fma(a: u16, b: u16, c: u16, rnd: Rounding, ftz: bool, sat: bool, relu: bool) -> u16 {
    half_fma(FpFormat::Bf16, (a, b, c), rnd, ftz, sat, relu)
}

/// `.f16x2` form of [`f16_fma`], elementwise.
pub fn f16x2_fma(a: u32, b: u32, c: u32, rnd: Rounding, ftz: bool, sat: bool, relu: bool) -> u32 {
    let lo = f16_fma(a as u16, b as u16, c as u16, rnd, ftz, sat, relu) as u32;
    let hi = f16_fma((a >> 16) as u16, (b >> 16) as u16, (c >> 16) as u16, rnd, ftz, sat, relu) as u32;
    (hi << 16) | lo
}

/// `.bf16x2` form of [`bf16_fma`], elementwise.
pub fn bf16x2_fma(a: u32, b: u32, c: u32, rnd: Rounding, ftz: bool, sat: bool, relu: bool) -> u32 {
    let lo = bf16_fma(a as u16, b as u16, c as u16, rnd, ftz, sat, relu) as u32;
    let hi = bf16_fma((a >> 16) as u16, (b >> 16) as u16, (c >> 16) as u16, rnd, ftz, sat, relu) as u32;
    (hi << 16) | lo
}

/// `neg.f16` / `neg.bf16`: flips the sign bit (NaN included; PTX ISA "neg").
pub fn f16_neg(a: u16) -> u16 {
    a ^ 0x8000
}

/// `abs.f16` / `abs.bf16`: clears the sign bit (PTX ISA "abs").
pub fn f16_abs(a: u16) -> u16 {
    a & 0x7fff
}

/// `neg.f16x2` / `neg.bf16x2`: flips both sign bits.
pub fn f16x2_neg(a: u32) -> u32 {
    a ^ 0x8000_8000
}

/// `abs.f16x2` / `abs.bf16x2`: clears both sign bits.
pub fn f16x2_abs(a: u32) -> u32 {
    a & 0x7fff_7fff
}

/// Flushes an f32 subnormal to the zero of the same sign (`.ftz` on an input).
pub fn ftz_f32(x: f32) -> f32 {
    f32::from_bits(FpFormat::F32.flush(x.to_bits() as u64) as u32)
}

/// `{add,sub,mul,min,max}{.rnd}{.ftz}{.sat}.f32` (PTX ISA "Floating-Point
/// Instructions"): correctly rounded in every mode; NaN results are the canonical
/// NaN `0x7FFFFFFF`.
pub fn f32_bin(op: FBinOp, a: f32, b: f32, rnd: Rounding, ftz: bool, sat: bool) -> f32 {
    let f = FpFormat::F32;
    let r = exact_bin(op, load(f, a.to_bits() as u64, ftz), load(f, b.to_bits() as u64, ftz), rnd);
    f32::from_bits(finish(f, r, rnd, ftz, sat, false) as u32)
}

/// Rounds an f64 result with known exact error into f64 under a directed mode:
/// round-to-nearest is already `s`; the others step one ulp when the error points
/// past `s`. Overflow to infinity is corrected for `.rz` and the opposite direction.
fn f64_directed(s: f64, e: f64, rnd: Rounding, overflowed: bool) -> f64 {
    if s.is_nan() {
        return f64::from_bits(FpFormat::F64.canonical_nan());
    }
    let d = dir(rnd);
    if overflowed {
        return f64::from_bits(overflow(FpFormat::F64, s < 0.0, d));
    }
    match d {
        Dir::NearestEven | Dir::NearestAway => s,
        Dir::Zero if s != 0.0 && e != 0.0 && (e < 0.0) != (s < 0.0) => step(s, s < 0.0),
        Dir::Down if e < 0.0 => step(s, false),
        Dir::Up if e > 0.0 => step(s, true),
        _ => s,
    }
}

/// The f64 neighbour of finite `s` toward +infinity (`up`) or -infinity.
fn step(s: f64, up: bool) -> f64 {
    if s == 0.0 {
        let tiny = f64::from_bits(1);
        return if up { tiny } else { -tiny };
    }
    let b = s.to_bits();
    // Moving away from zero increments the magnitude bits, toward zero decrements.
    let away = up == (s > 0.0);
    f64::from_bits(if away { b + 1 } else { b - 1 })
}

/// `{add,sub,mul,min,max}{.rnd}.f64` (PTX ISA "Floating-Point Instructions").
pub fn f64_bin(op: FBinOp, a: f64, b: f64, rnd: Rounding) -> f64 {
    let (s, e) = match op {
        FBinOp::Add => exact_add(a, b, rnd),
        FBinOp::Sub => exact_add(a, -b, rnd),
        FBinOp::Mul => {
            let p = a * b;
            (p, if p.is_finite() { a.mul_add(b, -p) } else { 0.0 })
        }
        _ => return canon64(min_max(op, a, b)),
    };
    let overflowed = s.is_infinite() && a.is_finite() && b.is_finite();
    f64_directed(s, e, rnd, overflowed)
}

fn canon64(x: f64) -> f64 {
    if x.is_nan() {
        f64::from_bits(FpFormat::F64.canonical_nan())
    } else {
        x
    }
}

/// `fma{.rnd}{.ftz}{.sat}.f32 d, a, b, c` with a single rounding (PTX ISA "fma").
pub fn f32_fma(a: f32, b: f32, c: f32, rnd: Rounding, ftz: bool, sat: bool) -> f32 {
    let f = FpFormat::F32;
    let p = load(f, a.to_bits() as u64, ftz) * load(f, b.to_bits() as u64, ftz); // exact
    let r = exact_add(p, load(f, c.to_bits() as u64, ftz), rnd);
    f32::from_bits(finish(f, r, rnd, ftz, sat, false) as u32)
}

/// `fma{.rnd}.f64 d, a, b, c` (PTX ISA "fma"). `.rn` is exact (`f64::mul_add`);
/// for directed modes the residual sign comes from error-free transformations of
/// `a*b` and the sum (exact except in pathological cancellations at the bottom of
/// the exponent range).
pub fn f64_fma(a: f64, b: f64, c: f64, rnd: Rounding) -> f64 {
    let s = a.mul_add(b, c);
    if dir(rnd) == Dir::NearestEven || !s.is_finite() {
        let overflowed = s.is_infinite() && a.is_finite() && b.is_finite() && c.is_finite();
        return f64_directed(s, 0.0, rnd, overflowed);
    }
    let p = a * b;
    let ep = a.mul_add(b, -p); // a*b = p + ep exactly (when p is finite)
    let (t, et) = two_sum(p, c); // p + c = t + et
    let (u, eu) = two_sum(t, -s); // t - s = u + eu
    let resid = u + (eu + (et + ep)); // a*b + c - s
    f64_directed(s, resid, rnd, false)
}

/// `div.f32`: `rnd = Some(..)` is the IEEE-compliant `div.{rn,rz,rm,rp}.f32`;
/// `None` stands for `div.approx.f32` / `div.full.f32`, computed here correctly
/// rounded (within the ISA's stated error bound of those forms).
pub fn f32_div(a: f32, b: f32, rnd: Option<Rounding>, ftz: bool) -> f32 {
    let f = FpFormat::F32;
    let x = load(f, a.to_bits() as u64, ftz);
    let y = load(f, b.to_bits() as u64, ftz);
    let q = x / y;
    // For finite nonzero q, x - q*y is exact under fma; its sign (times y's) gives
    // the sign of the quotient's error.
    let e = if q.is_finite() && q != 0.0 { (-q).mul_add(y, x) / y } else { 0.0 };
    f32::from_bits(finish(f, (q, e), rnd.unwrap_or(Rounding::Rn), ftz, false, false) as u32)
}

/// `div.rnd.f64` (PTX ISA "div").
pub fn f64_div(a: f64, b: f64, rnd: Rounding) -> f64 {
    let q = a / b;
    if !q.is_finite() || q == 0.0 {
        let overflowed = q.is_infinite() && a.is_finite() && b != 0.0;
        return f64_directed(q, 0.0, rnd, overflowed);
    }
    let r = (-q).mul_add(b, a); // exact remainder
    f64_directed(q, if b < 0.0 { -r } else { r }, rnd, false)
}

/// `rcp{.rnd,.approx}{.ftz}.f32` = `1/a` (PTX ISA "rcp"); `None` = `.approx`.
pub fn f32_rcp(a: f32, rnd: Option<Rounding>, ftz: bool) -> f32 {
    f32_div(1.0, a, rnd, ftz)
}

/// `sqrt{.rnd,.approx}{.ftz}.f32` (PTX ISA "sqrt"); `None` = `.approx`, computed
/// correctly rounded. Negative inputs give the canonical NaN; `sqrt(-0) = -0`.
pub fn f32_sqrt(a: f32, rnd: Option<Rounding>, ftz: bool) -> f32 {
    let f = FpFormat::F32;
    let x = load(f, a.to_bits() as u64, ftz);
    let s = x.sqrt();
    let e = if s.is_finite() && s > 0.0 { (-s).mul_add(s, x) } else { 0.0 };
    f32::from_bits(finish(f, (s, e), rnd.unwrap_or(Rounding::Rn), ftz, false, false) as u32)
}

/// Rounds an f64 approximation to f32 (nearest), honouring `.ftz` on the result.
fn approx_out(x: f64, ftz: bool) -> f32 {
    let f = FpFormat::F32;
    f32::from_bits(finish(f, (x, 0.0), Rounding::Rn, ftz, false, false) as u32)
}

/// `rsqrt.approx{.ftz}.f32` (PTX ISA "rsqrt"): computed in f64 and rounded; the
/// hardware result may differ within the ISA's stated maximum error.
pub fn f32_rsqrt(a: f32, ftz: bool) -> f32 {
    let x = load(FpFormat::F32, a.to_bits() as u64, ftz);
    approx_out(1.0 / x.sqrt(), ftz)
}

/// `ex2.approx{.ftz}.f32` (PTX ISA "ex2"): std `exp2` in f64; the hardware result
/// may differ within the ISA's stated maximum error.
pub fn f32_ex2_approx(a: f32, ftz: bool) -> f32 {
    approx_out(load(FpFormat::F32, a.to_bits() as u64, ftz).exp2(), ftz)
}

/// `lg2.approx{.ftz}.f32` (PTX ISA "lg2"): std `log2` in f64 (so `lg2(0) = -inf`,
/// negative -> NaN); the hardware may differ within the ISA's stated error.
pub fn f32_lg2_approx(a: f32, ftz: bool) -> f32 {
    approx_out(load(FpFormat::F32, a.to_bits() as u64, ftz).log2(), ftz)
}

/// `sin.approx{.ftz}.f32` (PTX ISA "sin"): std `sin` in f64; the hardware result
/// differs within the ISA's stated maximum absolute error.
pub fn f32_sin_approx(a: f32, ftz: bool) -> f32 {
    approx_out(load(FpFormat::F32, a.to_bits() as u64, ftz).sin(), ftz)
}

/// `cos.approx{.ftz}.f32` (PTX ISA "cos"): std `cos` in f64; the hardware result
/// differs within the ISA's stated maximum absolute error.
pub fn f32_cos_approx(a: f32, ftz: bool) -> f32 {
    approx_out(load(FpFormat::F32, a.to_bits() as u64, ftz).cos(), ftz)
}

/// Shared `setp` comparison on exact values (PTX ISA "setp", "Floating Point
/// Comparison Operators"): ordered forms are false when either operand is NaN, the
/// `u` forms true; `num` = both numbers, `nan` = either NaN. +0 == -0.
fn compare(cmp: FCmp, a: f64, b: f64) -> bool {
    let unordered = a.is_nan() || b.is_nan();
    match cmp {
        FCmp::Eq => !unordered && a == b,
        FCmp::Ne => !unordered && a != b,
        FCmp::Lt => !unordered && a < b,
        FCmp::Le => !unordered && a <= b,
        FCmp::Gt => !unordered && a > b,
        FCmp::Ge => !unordered && a >= b,
        FCmp::Equ => unordered || a == b,
        FCmp::Neu => unordered || a != b,
        FCmp::Ltu => unordered || a < b,
        FCmp::Leu => unordered || a <= b,
        FCmp::Gtu => unordered || a > b,
        FCmp::Geu => unordered || a >= b,
        FCmp::Num => !unordered,
        FCmp::Nan => unordered,
    }
}

/// `setp.cmp.f32` (flush operands first with [`ftz_f32`] for `.ftz`).
pub fn setp_f32(cmp: FCmp, a: f32, b: f32) -> bool {
    compare(cmp, a as f64, b as f64)
}

/// `setp.cmp.f64`.
pub fn setp_f64(cmp: FCmp, a: f64, b: f64) -> bool {
    compare(cmp, a, b)
}

/// `setp.cmp.f16` on raw bits.
pub fn setp_f16(cmp: FCmp, a: u16, b: u16) -> bool {
    compare(cmp, to_f64(FpFormat::F16, a as u64), to_f64(FpFormat::F16, b as u64))
}

/// `setp.cmp.bf16` on raw bits.
pub fn setp_bf16(cmp: FCmp, a: u16, b: u16) -> bool {
    compare(cmp, to_f64(FpFormat::Bf16, a as u64), to_f64(FpFormat::Bf16, b as u64))
}
