//! Conformance tests of `ptxsim::semantics::float` against independent oracles:
//! a brute-force table of every finite f16/bf16 value (rounding = choosing the
//! bracketing table entry per IEEE 754 4.3, which PTX ISA "Rounding Modifiers"
//! adopts), native IEEE f32 arithmetic for `.rn`, and neighbour-bracketing checks
//! for the directed modes on f32.

// Lane-indexed loops mirror the ISA tables, which index several arrays by lane.
#![allow(clippy::needless_range_loop)]

use ptxsim::semantics::float::*;
use ptxsim::semantics::types::Rounding::{self, *};

mod common;

use common::Rng;

/// All non-negative finite values of a 16-bit format in increasing order (bits
/// 0x0000..max are monotonic), plus infinity as the value past the largest finite
/// one: 2^(emax+1), the point IEEE rounding treats as the overflow threshold.
struct Table {
    vals: Vec<(f64, u16)>,
}

impl Table {
    fn new(bf16: bool) -> Table {
        let dec = |b: u16| if bf16 { half::bf16::from_bits(b).to_f64() } else { half::f16::from_bits(b).to_f64() };
        let inf: u16 = if bf16 { 0x7f80 } else { 0x7c00 };
        let mut vals: Vec<(f64, u16)> = (0..inf).map(|b| (dec(b), b)).collect();
        let max = vals.last().unwrap().0;
        let ulp = max - vals[vals.len() - 2].0;
        vals.push((max + ulp, inf));
        Table { vals }
    }

    /// Rounds the exact value `x` (an f64) per IEEE 754: nearest-even, toward
    /// zero, down, up. Exact zero keeps the sign of `x`.
    fn round(&self, x: f64, r: Rounding) -> u16 {
        let neg = x.is_sign_negative();
        let m = x.abs();
        let sign = if neg { 0x8000 } else { 0 };
        let last = *self.vals.last().unwrap();
        let max = self.vals[self.vals.len() - 2];
        let idx = self.vals.partition_point(|&(v, _)| v <= m); // first entry > m
        let (lo, hi) = if idx == 0 {
            unreachable!()
        } else if idx >= self.vals.len() {
            (max, last)
        } else {
            (self.vals[idx - 1], self.vals[idx])
        };
        if lo.0 == m {
            return sign | lo.1;
        }
        // Beyond the overflow threshold the "hi" neighbour is infinity.
        let hi = if m > last.0 { last } else { hi };
        let lo = if m > last.0 { max } else { lo };
        let up_mag = match r {
            Rn => {
                let mid = (lo.0 + hi.0) / 2.0;
                m > mid || (m == mid && hi.1 & 1 == 0)
            }
            Rz => false,
            Rm => neg,
            Rp => !neg,
            _ => unreachable!(),
        };
        sign | if up_mag { hi.1 } else { lo.1 }
    }
}

fn dec16(b: u16, bf16: bool) -> f64 {
    if bf16 {
        half::bf16::from_bits(b).to_f64()
    } else {
        half::f16::from_bits(b).to_f64()
    }
}

/// Random 16-bit patterns biased toward interesting regions (subnormals, near
/// overflow, small exponent differences).
fn pick16(rng: &mut Rng, bf16: bool) -> u16 {
    let r = rng.next();
    let b = (r >> 16) as u16;
    match r % 4 {
        0 => b & 0x83ff,                                        // subnormals / tiny
        1 => (b & 0x80ff) | if bf16 { 0x4700 } else { 0x7800 }, // near overflow
        _ => b,
    }
}

// PTX ISA "add/sub/mul" (half precision) with .rn/.rz/.rm/.rp: correctly rounded,
// NaN -> canonical 0x7FFF. f16/bf16 sums and products are exact in f64 ... for
// f16; for bf16 samples whose exact result is not an f64 are skipped.
#[test]
fn half_add_sub_mul_all_modes_match_table() {
    for bf16 in [false, true] {
        let t = Table::new(bf16);
        let mut rng = Rng(5 + bf16 as u64);
        for _ in 0..40_000 {
            let (a, b) = (pick16(&mut rng, bf16), pick16(&mut rng, bf16));
            for op in [FBinOp::Add, FBinOp::Sub, FBinOp::Mul] {
                for r in [Rn, Rz, Rm, Rp] {
                    let got =
                        if bf16 { bf16_bin(op, a, b, r, false, false) } else { f16_bin(op, a, b, r, false, false) };
                    let (x, y) = (dec16(a, bf16), dec16(b, bf16));
                    let exact = match op {
                        FBinOp::Add => x + y,
                        FBinOp::Sub => x - y,
                        _ => x * y,
                    };
                    if exact.is_nan() {
                        assert_eq!(got, 0x7fff, "{op:?} {a:#x} {b:#x} -> canonical NaN");
                        continue;
                    }
                    // Exactness filter for the oracle (always true for f16).
                    let exact_ok = match op {
                        FBinOp::Mul => true,
                        _ => {
                            let yy = if op == FBinOp::Add { y } else { -y };
                            exact.is_infinite() || ((exact - x) == yy && (exact - yy) == x)
                        }
                    };
                    if !exact_ok {
                        continue;
                    }
                    let want = if exact.is_infinite() {
                        if exact > 0.0 {
                            t.vals.last().unwrap().1
                        } else {
                            0x8000 | t.vals.last().unwrap().1
                        }
                    } else if exact == 0.0 {
                        // IEEE 754 6.3: exact zero sums are +0 except -0 under .rm;
                        // zero products carry the XOR of the operand signs.
                        let neg = match op {
                            FBinOp::Mul => (a ^ b) & 0x8000 != 0,
                            _ => {
                                let yy = if op == FBinOp::Add { y } else { -y };
                                if x == 0.0 && yy == 0.0 && x.is_sign_negative() == yy.is_sign_negative() {
                                    x.is_sign_negative()
                                } else {
                                    r == Rm
                                }
                            }
                        };
                        if neg {
                            0x8000
                        } else {
                            0
                        }
                    } else {
                        t.round(exact, r)
                    };
                    assert_eq!(got, want, "bf16={bf16} {op:?} {r:?} {a:#06x} {b:#06x} exact {exact}");
                }
            }
        }
    }
}

// PTX ISA "fma" (half precision): a*b+c rounded once, .relu clamps negatives to +0
// (NaN stays canonical NaN), .sat clamps to [0, 1].
#[test]
fn half_fma_single_rounding_relu_sat() {
    let t = Table::new(false);
    let mut rng = Rng(77);
    let mut checked = 0;
    for _ in 0..60_000 {
        let (a, b, c) = (pick16(&mut rng, false), pick16(&mut rng, false), pick16(&mut rng, false));
        let (x, y, z) = (dec16(a, false), dec16(b, false), dec16(c, false));
        let p = x * y;
        let s = p + z;
        if !s.is_finite() || s == 0.0 || (s - p) != z || (s - z) != p {
            continue; // oracle only for exact nonzero finite f64 results
        }
        checked += 1;
        for r in [Rn, Rz, Rm, Rp] {
            let want = t.round(s, r);
            assert_eq!(f16_fma(a, b, c, r, false, false, false), want, "{r:?} {a:#x} {b:#x} {c:#x}");
            let relu = if want & 0x8000 != 0 { 0 } else { want };
            assert_eq!(f16_fma(a, b, c, r, false, false, true), relu);
        }
    }
    assert!(checked > 20_000);
    // Single rounding: 1 + 2^-11 (a tie in f16) plus a tiny product breaks the tie.
    let one = 0x3c00;
    let tie_half = 0x1000; // 2^-11
    assert_eq!(f16_fma(tie_half, one, one, Rn, false, false, false), 0x3c00); // tie -> even
                                                                              // 1 + (2^-11 + 2^-21): just above the tie -> rounds up.
    assert_eq!(f16_fma(one, one, 0x1001, Rn, false, false, false), 0x3c01);
    // 2^-11 * (1 + 2^-10) + 1 = 1 + 2^-11 + 2^-21: the product's low bit breaks the tie
    // only if the product is not rounded first.
    assert_eq!(f16_fma(tie_half, 0x3c01, one, Rn, false, false, false), 0x3c01);
    // NaN with .relu stays NaN; .sat maps NaN to +0 and clamps.
    assert_eq!(f16_fma(0x7e00, one, one, Rn, false, false, true), 0x7fff);
    assert_eq!(f16_fma(0x7e00, one, one, Rn, false, true, false), 0);
    assert_eq!(f16_fma(0x4000, one, one, Rn, false, true, false), 0x3c00); // 3 -> 1
    assert_eq!(f16_fma(0xc000, one, one, Rn, false, true, false), 0); // -1 -> 0
                                                                      // bf16 fma: 1 + 2^-8 is a tie in bf16 -> 1.0; with +2^-20 it rounds up.
    assert_eq!(bf16_fma(0x3b80, 0x3f80, 0x3f80, Rn, false, false, false), 0x3f80);
    assert_eq!(bf16_fma(0x3b80, 0x3f80, 0x3f80, Rp, false, false, false), 0x3f81);
}

// PTX ISA half-precision ".ftz": subnormal inputs and results flush to signed zero.
#[test]
fn half_ftz_and_packed_lanes() {
    let sub = 0x0200; // f16 subnormal
    assert_eq!(f16_bin(FBinOp::Add, sub, sub, Rn, false, false), 0x0400);
    assert_eq!(f16_bin(FBinOp::Add, sub, sub, Rn, true, false), 0);
    assert_eq!(f16_bin(FBinOp::Mul, 0x8400, 0x3800, Rn, true, false), 0x8000); // -2^-14 * 0.5
                                                                               // x2 forms operate per half, element 0 in the low half.
    let a = 0x4000_3c00; // (hi 2.0, lo 1.0)
    let b = 0x3c00_4200; // (hi 1.0, lo 3.0)
    assert_eq!(f16x2_bin(FBinOp::Add, a, b, Rn, false, false), 0x4200_4400);
    assert_eq!(f16x2_bin(FBinOp::Max, a, b, Rn, false, false), 0x4000_4200);
    assert_eq!(f16x2_fma(a, b, a, Rn, false, false, false), 0x4400_4400);
    assert_eq!(bf16x2_bin(FBinOp::Mul, 0x4000_3f80, 0x4000_4040, Rn, false, false), 0x4080_4040);
    assert_eq!(bf16x2_fma(0x4000_3f80, 0x4000_4040, 0, Rn, false, false, false), 0x4080_4040);
    assert_eq!(f16x2_neg(0x3c00_bc00), 0xbc00_3c00);
    assert_eq!(f16x2_abs(0xbc00_bc00), 0x3c00_3c00);
    assert_eq!(f16_neg(0x7e00), 0xfe00);
    assert_eq!(f16_abs(0xfe00), 0x7e00);
}

// PTX ISA "min"/"max": NaN operand -> the other; both NaN -> NaN; .NaN -> NaN;
// -0 < +0.
#[test]
fn min_max_nan_rules() {
    let nan = 0x7e01;
    let one = 0x3c00;
    assert_eq!(f16_bin(FBinOp::Min, nan, one, Rn, false, false), one);
    assert_eq!(f16_bin(FBinOp::Max, one, nan, Rn, false, false), one);
    assert_eq!(f16_bin(FBinOp::Max, nan, nan, Rn, false, false), 0x7fff);
    assert_eq!(f16_bin(FBinOp::MinNaN, nan, one, Rn, false, false), 0x7fff);
    assert_eq!(f16_bin(FBinOp::Min, 0x8000, 0x0000, Rn, false, false), 0x8000);
    assert_eq!(f16_bin(FBinOp::Max, 0x8000, 0x0000, Rn, false, false), 0x0000);
    assert_eq!(f32_bin(FBinOp::Min, f32::NAN, 2.0, Rn, false, false), 2.0);
    assert_eq!(f32_bin(FBinOp::Max, f32::NAN, f32::NAN, Rn, false, false).to_bits(), 0x7fff_ffff);
    assert_eq!(f32_bin(FBinOp::Min, -0.0, 0.0, Rn, false, false).to_bits(), 0x8000_0000);
    assert_eq!(f64_bin(FBinOp::Max, f64::NAN, -1.0, Rn), -1.0);
}

/// The f32 neighbours of `r` (toward -inf, toward +inf), as f64.
fn nbrs(r: f32) -> (f64, f64) {
    let down = if r == 0.0 {
        -f32::from_bits(1)
    } else if r > 0.0 {
        f32::from_bits(r.to_bits() - 1)
    } else {
        f32::from_bits(r.to_bits() + 1)
    };
    let up = if r == 0.0 {
        f32::from_bits(1)
    } else if r > 0.0 {
        f32::from_bits(r.to_bits() + 1)
    } else {
        f32::from_bits(r.to_bits() - 1)
    };
    (down as f64, up as f64)
}

/// Checks that `r` is `exact` rounded by mode `m` (bracketing property).
fn check_bracket(r: f32, exact: f64, m: Rounding, what: &str) {
    let v = r as f64;
    let (down, up) = nbrs(r);
    let ok = match m {
        Rz => v.abs() <= exact.abs() && (if exact >= 0.0 { up } else { down }).abs() > exact.abs(),
        Rm => v <= exact && up > exact,
        Rp => v >= exact && down < exact,
        _ => (v - exact).abs() <= (up - exact).abs() && (v - exact).abs() <= (down - exact).abs(),
    };
    assert!(ok, "{what}: {m:?} exact {exact:e} got {r:e}");
}

fn pick32(rng: &mut Rng) -> f32 {
    let r = rng.next();
    let b = (r >> 32) as u32;
    let f = match r % 5 {
        0 => f32::from_bits(b & 0x807f_ffff),                 // subnormal
        1 => f32::from_bits((b & 0x81ff_ffff) | 0x3e00_0000), // exponents near 1
        _ => f32::from_bits((b & 0x8fff_ffff) | 0x3000_0000),
    };
    if f.is_nan() {
        1.5
    } else {
        f
    }
}

// PTX ISA "add/sub/mul/fma .f32" with .rn equals IEEE (native) arithmetic; the
// directed modes bracket the exact result (exact in f64 for products, filtered
// for sums).
#[test]
fn f32_arith_all_modes() {
    let mut rng = Rng(3);
    for _ in 0..100_000 {
        let (a, b, c) = (pick32(&mut rng), pick32(&mut rng), pick32(&mut rng));
        assert_eq!(f32_bin(FBinOp::Add, a, b, Rn, false, false).to_bits(), (a + b).to_bits());
        assert_eq!(f32_bin(FBinOp::Sub, a, b, Rn, false, false).to_bits(), (a - b).to_bits());
        assert_eq!(f32_bin(FBinOp::Mul, a, b, Rn, false, false).to_bits(), (a * b).to_bits());
        assert_eq!(f32_fma(a, b, c, Rn, false, false).to_bits(), a.mul_add(b, c).to_bits());
        let prod = a as f64 * b as f64;
        let sum = a as f64 + b as f64;
        let sum_exact = (sum - a as f64) == b as f64 && (sum - b as f64) == a as f64;
        for m in [Rz, Rm, Rp] {
            check_bracket(f32_bin(FBinOp::Mul, a, b, m, false, false), prod, m, "mul");
            if sum_exact && sum != 0.0 {
                check_bracket(f32_bin(FBinOp::Add, a, b, m, false, false), sum, m, "add");
            }
        }
    }
    // Known directed results: 1 + 2^-30.
    let tiny = 2f32.powi(-30);
    assert_eq!(f32_bin(FBinOp::Add, 1.0, tiny, Rp, false, false), 1.0 + f32::EPSILON);
    assert_eq!(f32_bin(FBinOp::Add, 1.0, tiny, Rz, false, false), 1.0);
    assert_eq!(f32_bin(FBinOp::Add, -1.0, -tiny, Rm, false, false), -1.0 - f32::EPSILON);
    assert_eq!(f32_bin(FBinOp::Sub, 1.0, tiny, Rz, false, false), 1.0 - f32::EPSILON / 2.0);
    // Overflow: .rz gives the largest finite value, .rn infinity.
    assert_eq!(f32_bin(FBinOp::Mul, f32::MAX, 2.0, Rz, false, false), f32::MAX);
    assert_eq!(f32_bin(FBinOp::Mul, f32::MAX, 2.0, Rn, false, false), f32::INFINITY);
    assert_eq!(f32_bin(FBinOp::Mul, f32::MAX, -2.0, Rp, false, false), -f32::MAX);
    // Exact zero sum under .rm is -0 (IEEE 754 6.3).
    assert_eq!(f32_bin(FBinOp::Add, 1.0, -1.0, Rm, false, false).to_bits(), 0x8000_0000);
    assert_eq!(f32_bin(FBinOp::Add, 1.0, -1.0, Rn, false, false).to_bits(), 0);
    // NaN results are canonical (PTX ISA: 0x7FFFFFFF).
    assert_eq!(f32_bin(FBinOp::Add, f32::INFINITY, f32::NEG_INFINITY, Rn, false, false).to_bits(), 0x7fff_ffff);
    assert_eq!(f32_fma(0.0, f32::INFINITY, 1.0, Rn, false, false).to_bits(), 0x7fff_ffff);
}

// PTX ISA ".ftz" (f32) and ".sat" (clamp to [0,1], NaN -> +0).
#[test]
fn f32_ftz_and_sat() {
    let sub = f32::from_bits(0x0000_0100);
    assert_eq!(f32_bin(FBinOp::Add, sub, sub, Rn, false, false), sub * 2.0);
    assert_eq!(f32_bin(FBinOp::Add, sub, sub, Rn, true, false), 0.0);
    assert_eq!(f32_bin(FBinOp::Mul, -f32::MIN_POSITIVE, 0.5, Rn, true, false).to_bits(), 0x8000_0000);
    assert_eq!(f32_bin(FBinOp::Mul, -f32::MIN_POSITIVE, 0.5, Rn, false, false), -f32::MIN_POSITIVE / 2.0);
    assert_eq!(ftz_f32(-sub).to_bits(), 0x8000_0000);
    assert_eq!(f32_bin(FBinOp::Add, 0.75, 0.5, Rn, false, true), 1.0);
    assert_eq!(f32_bin(FBinOp::Sub, 0.25, 0.5, Rn, false, true).to_bits(), 0);
    assert_eq!(f32_bin(FBinOp::Add, f32::NAN, 0.5, Rn, false, true).to_bits(), 0);
    assert_eq!(f32_fma(0.5, 0.5, 0.25, Rn, false, true), 0.5);
}

// PTX ISA "div", "rcp", "sqrt" IEEE forms: correctly rounded in each mode.
#[test]
fn f32_div_rcp_sqrt() {
    let mut rng = Rng(11);
    for _ in 0..50_000 {
        let (a, b) = (pick32(&mut rng), pick32(&mut rng));
        if b == 0.0 {
            continue;
        }
        assert_eq!(f32_div(a, b, Some(Rn), false).to_bits(), (a / b).to_bits());
        let aa = a.abs();
        assert_eq!(f32_sqrt(aa, Some(Rn), false).to_bits(), aa.sqrt().to_bits());
        // Directed: r rounded down is the largest f32 with r*b <= a (b > 0), etc.
        // Check via exact f64 residuals: a - r*b has the sign the mode implies.
        let bb = b.abs();
        for m in [Rz, Rm, Rp] {
            let r = f32_div(aa, bb, Some(m), false) as f64;
            let res = (aa as f64) - r * bb as f64; // exact? r*bb has <= 48 bits: yes
            match m {
                Rp => assert!(res <= 0.0 || r.is_infinite()),
                _ => assert!(res >= 0.0),
            }
            let s = f32_sqrt(aa, Some(m), false) as f64;
            let sres = aa as f64 - s * s; // s*s exact in f64
            match m {
                Rp => assert!(sres <= 0.0),
                _ => assert!(sres >= 0.0),
            }
        }
    }
    assert_eq!(f32_div(1.0, 3.0, Some(Rz), false), f32::from_bits(0x3eaa_aaaa));
    assert_eq!(f32_div(1.0, 3.0, Some(Rp), false), f32::from_bits(0x3eaa_aaab));
    assert_eq!(f32_rcp(3.0, Some(Rm), false), f32::from_bits(0x3eaa_aaaa));
    assert_eq!(f32_div(1.0, 0.0, None, false), f32::INFINITY);
    assert_eq!(f32_div(0.0, 0.0, None, false).to_bits(), 0x7fff_ffff);
    assert_eq!(f32_sqrt(-1.0, Some(Rn), false).to_bits(), 0x7fff_ffff);
    assert_eq!(f32_sqrt(-0.0, Some(Rn), false).to_bits(), 0x8000_0000);
    assert_eq!(f32_sqrt(2.0, Some(Rp), false), f32::from_bits(0x3fb5_04f4));
    assert_eq!(f32_sqrt(2.0, Some(Rz), false), f32::from_bits(0x3fb5_04f3));
}

// Approximate transcendental forms: within a few ulp of the true value.
#[test]
fn f32_approx_functions_close() {
    assert_eq!(f32_ex2_approx(3.0, false), 8.0);
    assert_eq!(f32_lg2_approx(1024.0, false), 10.0);
    assert_eq!(f32_lg2_approx(0.0, false), f32::NEG_INFINITY);
    assert!((f32_rsqrt(4.0, false) - 0.5).abs() < 1e-7);
    assert!((f32_sin_approx(1.0, false) - 1f32.sin()).abs() < 1e-6);
    assert!((f32_cos_approx(1.0, false) - 1f32.cos()).abs() < 1e-6);
    assert_eq!(f32_ex2_approx(-200.0, true), 0.0); // subnormal result flushed
}

// PTX ISA "f64" arithmetic with directed rounding.
#[test]
fn f64_directed() {
    let tiny = 2f64.powi(-70);
    assert_eq!(f64_bin(FBinOp::Add, 1.0, tiny, Rp), 1.0 + f64::EPSILON);
    assert_eq!(f64_bin(FBinOp::Add, 1.0, tiny, Rn), 1.0);
    assert_eq!(f64_bin(FBinOp::Add, -1.0, -tiny, Rz), -1.0);
    assert_eq!(f64_bin(FBinOp::Add, -1.0, -tiny, Rm), -1.0 - f64::EPSILON);
    assert_eq!(f64_bin(FBinOp::Sub, 1.0, tiny, Rz), 1.0 - f64::EPSILON / 2.0);
    let third = 1.0 / 3.0;
    assert!(f64_bin(FBinOp::Mul, third, 3.0, Rz) < 1.0 || third * 3.0 == 1.0);
    assert_eq!(f64_div(1.0, 3.0, Rp), f64::from_bits((1.0f64 / 3.0).to_bits() + 1));
    assert_eq!(f64_div(1.0, 3.0, Rz), 1.0 / 3.0);
    assert_eq!(f64_div(-1.0, 3.0, Rm), -f64::from_bits((1.0f64 / 3.0).to_bits() + 1));
    assert_eq!(f64_bin(FBinOp::Mul, f64::MAX, 2.0, Rz), f64::MAX);
    assert_eq!(f64_bin(FBinOp::Mul, f64::MAX, 2.0, Rm), f64::MAX);
    assert_eq!(f64_bin(FBinOp::Mul, f64::MAX, 2.0, Rp), f64::INFINITY);
    assert_eq!(f64_fma(1.0, 1.0, tiny, Rp), 1.0 + f64::EPSILON);
    assert_eq!(f64_fma(1.0, 1.0, -tiny, Rz), 1.0 - f64::EPSILON / 2.0);
    assert_eq!(f64_fma(third, 3.0, -1.0, Rn), third.mul_add(3.0, -1.0));
}

// PTX ISA "setp" floating-point comparison operators incl. unordered forms.
#[test]
fn setp_ordered_unordered() {
    use FCmp::*;
    let n = f32::NAN;
    for (cmp, lt, nan_res) in [
        (Eq, false, false),
        (Ne, true, false),
        (Lt, true, false),
        (Le, true, false),
        (Gt, false, false),
        (Ge, false, false),
        (Equ, false, true),
        (Neu, true, true),
        (Ltu, true, true),
        (Leu, true, true),
        (Gtu, false, true),
        (Geu, false, true),
        (Num, true, false),
        (Nan, false, true),
    ] {
        assert_eq!(setp_f32(cmp, 1.0, 2.0), lt, "{cmp:?}");
        assert_eq!(setp_f32(cmp, n, 2.0), nan_res, "{cmp:?} nan");
        assert_eq!(setp_f64(cmp, 1.0, f64::NAN), nan_res);
        assert_eq!(setp_f16(cmp, 0x3c00, 0x4000), lt);
        assert_eq!(setp_f16(cmp, 0x7e00, 0x4000), nan_res);
        assert_eq!(setp_bf16(cmp, 0x3f80, 0x4000), lt);
    }
    assert!(setp_f32(Eq, 0.0, -0.0));
    assert!(setp_f16(Eq, 0x0000, 0x8000));
    assert!(!setp_f32(Eq, ftz_f32(1e-40), 1e-40));
    assert!(setp_f32(Eq, ftz_f32(1e-40), 0.0));
}

// Rounding core: gradual underflow and overflow into f16 from exact values.
#[test]
fn round_core_edges() {
    use ptxsim::semantics::float::{round_exact, round_f64, FpFormat};
    assert_eq!(round_f64(FpFormat::F16, 65520.0, 0.0, Rn), 0x7c00);
    assert_eq!(round_f64(FpFormat::F16, 65519.0, 0.0, Rn), 0x7bff);
    assert_eq!(round_f64(FpFormat::F16, 65520.0, 0.0, Rz), 0x7bff);
    assert_eq!(round_f64(FpFormat::F16, 2f64.powi(-25), 0.0, Rn), 0); // tie -> even (0)
    assert_eq!(round_f64(FpFormat::F16, 2f64.powi(-25), 1e-30, Rn), 1); // above tie
    assert_eq!(round_f64(FpFormat::F16, 3.0 * 2f64.powi(-26), 0.0, Rn), 1);
    assert_eq!(round_f64(FpFormat::F16, 1e-30, 0.0, Rp), 1);
    assert_eq!(round_f64(FpFormat::F16, -1e-30, 0.0, Rp), 0x8000);
    assert_eq!(round_f64(FpFormat::F16, -1e-30, 0.0, Rm), 0x8001);
    // Largest subnormal rounding up into the smallest normal.
    assert_eq!(round_f64(FpFormat::F16, 2f64.powi(-14) - 2f64.powi(-26), 0.0, Rn), 0x0400);
    assert_eq!(round_exact(FpFormat::F32, false, u64::MAX as u128, 0, Rz), 0x5f7f_ffff);
    assert_eq!(round_exact(FpFormat::F32, false, u64::MAX as u128, 0, Rn), 0x5f80_0000);
    assert_eq!(round_exact(FpFormat::Bf16, true, 1, -200, Rm), 0x8001);
}
