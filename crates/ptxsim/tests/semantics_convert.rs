//! Conformance tests of `ptxsim::semantics::convert::cvt` (PTX ISA "cvt").

// Lane-indexed loops mirror the ISA tables, which index several arrays by lane.
#![allow(clippy::needless_range_loop)]

use ptxsim::semantics::convert::{cvt, cvt_f32_to_half, cvt_pack_f16x2};
use ptxsim::semantics::types::Rounding::{self, *};
use ptxsim::semantics::types::ScalarType::*;

fn c(
    bits: u64,
    from: ptxsim::semantics::types::ScalarType,
    to: ptxsim::semantics::types::ScalarType,
    r: Option<Rounding>,
) -> u64 {
    cvt(bits, from, to, r, false, false).unwrap()
}

// PTX ISA "cvt": integer-to-integer truncates or sign/zero-extends; .sat clamps.
// Signed results come back sign-extended to 64 bits (documented convention).
#[test]
fn int_to_int() {
    assert_eq!(c(0x1234_5678, S32, S8, None), 0x78);
    assert_eq!(c(0x1234_56f8, S32, S8, None), 0xffff_ffff_ffff_fff8);
    assert_eq!(c(0x1234_56f8, S32, U8, None), 0xf8);
    assert_eq!(c(0xff, S8, U32, None), 0xffff_ffff);
    assert_eq!(c(0xff, U8, S32, None), 0xff);
    assert_eq!(c(0xffff_ffff, S32, S64, None), u64::MAX);
    assert_eq!(c(0xffff_ffff, U32, S64, None), 0xffff_ffff);
    assert_eq!(c(0xdead_beef_0000_0001, U64, U16, None), 1);
    let sat = |bits, from, to| cvt(bits, from, to, None, true, false).unwrap();
    assert_eq!(sat(300, S32, S8), 127);
    assert_eq!(sat((-300i64) as u64, S32, S8), (-128i64) as u64);
    assert_eq!(sat((-5i64) as u64, S32, U16), 0);
    assert_eq!(sat(0xff, S8, U32), 0); // -1 -> 0
    assert_eq!(sat(0xffff_ffff, U32, S32), 0x7fff_ffff);
    assert_eq!(sat(u64::MAX, U64, S64), i64::MAX as u64);
    assert!(cvt(1, S32, S8, Some(Rn), false, false).is_err());
    assert!(cvt(1, B32, S8, None, false, false).is_err());
}

// PTX ISA "cvt": int -> float with .rn/.rz/.rm/.rp.
#[test]
fn int_to_float() {
    assert_eq!(c(16_777_217, S32, F32, Some(Rn)), 16_777_216f32.to_bits() as u64);
    assert_eq!(c(16_777_217, S32, F32, Some(Rp)), 16_777_218f32.to_bits() as u64);
    assert_eq!(c(16_777_219, S32, F32, Some(Rn)), 16_777_220f32.to_bits() as u64); // tie -> even
    assert_eq!(c((-16_777_217i64) as u64 & 0xffff_ffff, S32, F32, Some(Rm)), (-16_777_218f32).to_bits() as u64);
    assert_eq!(c(u64::MAX, U64, F32, Some(Rz)), 0x5f7f_ffff);
    assert_eq!(c(u64::MAX, U64, F32, Some(Rn)), 0x5f80_0000);
    assert_eq!(c(u64::MAX, U64, F64, Some(Rz)), 0x43ef_ffff_ffff_ffff);
    assert_eq!(c(i64::MIN as u64, S64, F64, Some(Rn)), (i64::MIN as f64).to_bits());
    assert_eq!(c(70000, U32, F16, Some(Rn)), 0x7c00);
    assert_eq!(c(70000, U32, F16, Some(Rz)), 0x7bff);
    assert_eq!(c(2049, U16, F16, Some(Rn)), 0x6800); // 2048
    assert_eq!(c(2049, U16, F16, Some(Rp)), 0x6801); // 2050
    assert_eq!(c(0x81, S8, Bf16, Some(Rn)), 0xc2fe); // -127
    assert_eq!(c(5, U32, F32, None), 5f32.to_bits() as u64);
    assert_eq!(cvt(5, U32, F32, None, true, false).unwrap(), 1f32.to_bits() as u64);
    assert!(cvt(5, U32, F32, Some(Rni), false, false).is_err());
}

// PTX ISA "cvt": float -> int rounds with .rni/.rzi/.rmi/.rpi, saturates always,
// NaN -> 0.
#[test]
fn float_to_int() {
    let f = |x: f32| x.to_bits() as u64;
    assert_eq!(c(f(2.5), F32, S32, Some(Rni)), 2);
    assert_eq!(c(f(3.5), F32, S32, Some(Rni)), 4);
    assert_eq!(c(f(-2.5), F32, S32, Some(Rzi)), (-2i64) as u64);
    assert_eq!(c(f(-2.5), F32, S32, Some(Rmi)), (-3i64) as u64);
    assert_eq!(c(f(-2.5), F32, S32, Some(Rpi)), (-2i64) as u64);
    assert_eq!(c(f(1e10), F32, S32, Some(Rzi)), i32::MAX as u64);
    assert_eq!(c(f(-1e10), F32, S32, Some(Rzi)), i32::MIN as i64 as u64);
    assert_eq!(c(f(-1.0), F32, U32, Some(Rzi)), 0);
    assert_eq!(c(f(300.0), F32, U8, Some(Rni)), 255);
    assert_eq!(c(f(-129.0), F32, S8, Some(Rni)), (-128i64) as u64);
    assert_eq!(c(f(f32::INFINITY), F32, U64, Some(Rzi)), u64::MAX);
    assert_eq!(c(f(f32::NEG_INFINITY), F32, S64, Some(Rzi)), i64::MIN as u64);
    assert_eq!(c(f(f32::NAN), F32, S32, Some(Rni)), 0);
    assert_eq!(c(0x7e00, F16, U16, Some(Rni)), 0);
    assert_eq!(c(0xc500, F16, S16, Some(Rni)), (-5i64) as u64);
    assert_eq!(c(0x4049, Bf16, U32, Some(Rzi)), 3); // 3.140625
    assert_eq!(c(1e300f64.to_bits(), F64, S64, Some(Rni)), i64::MAX as u64);
    // .ftz flushes a subnormal f32 source before rounding up.
    let sub = f32::from_bits(1).to_bits() as u64;
    assert_eq!(cvt(sub, F32, S32, Some(Rpi), false, false).unwrap(), 1);
    assert_eq!(cvt(sub, F32, S32, Some(Rpi), false, true).unwrap(), 0);
    assert!(cvt(f(1.0), F32, S32, Some(Rn), false, false).is_err());
    assert!(cvt(f(1.0), F32, S32, None, false, false).is_err());
}

// PTX ISA "cvt": float -> float narrowing rounds per mode; widening is exact;
// .rni etc. round to an integral value in the same type; .sat clamps to [0, 1].
#[test]
fn float_to_float() {
    let f = |x: f32| x.to_bits() as u64;
    assert_eq!(c(f(1.0 + 2f32.powi(-11)), F32, F16, Some(Rn)), 0x3c00);
    assert_eq!(c(f(1.0 + 3.0 * 2f32.powi(-11)), F32, F16, Some(Rn)), 0x3c02);
    assert_eq!(c(f(1.0 + 2f32.powi(-11)), F32, F16, Some(Rp)), 0x3c01);
    assert_eq!(c(f(-(1.0 + 2f32.powi(-11))), F32, F16, Some(Rm)), 0xbc01);
    assert_eq!(c(f(65520.0), F32, F16, Some(Rn)), 0x7c00);
    assert_eq!(c(f(65520.0), F32, F16, Some(Rz)), 0x7bff);
    assert_eq!(c(f(1e-8), F32, F16, Some(Rn)), 0x0000);
    assert_eq!(c(f(1e-8), F32, F16, Some(Rp)), 0x0001);
    assert_eq!(c(f(f32::NAN), F32, F16, Some(Rn)), 0x7fff);
    assert_eq!(c(f(1.0 + 2f32.powi(-8)), F32, Bf16, Some(Rn)), 0x3f80);
    assert_eq!(c(f(1.0 + 3.0 * 2f32.powi(-8)), F32, Bf16, Some(Rn)), 0x3f82);
    assert_eq!(c(f(1.0 + 2f32.powi(-20)), F32, Bf16, Some(Rp)), 0x3f81);
    assert_eq!(c(0x3c01, F16, Bf16, Some(Rz)), 0x3f80);
    assert_eq!(c(0x3c01, F16, Bf16, Some(Rp)), 0x3f81);
    assert_eq!(c(0x4780, Bf16, F16, Some(Rn)), 0x7c00); // 65536 overflows f16
    assert_eq!(c(0x0001, F16, F32, None), f(2f32.powi(-24)));
    assert_eq!(c(0x0001, F16, F64, None), 2f64.powi(-24).to_bits());
    assert_eq!(c(f(0.1), F32, F64, None), (0.1f32 as f64).to_bits());
    let third = (1.0f64 / 3.0).to_bits();
    assert_eq!(c(third, F64, F32, Some(Rz)), 0x3eaa_aaaa);
    assert_eq!(c(third, F64, F32, Some(Rp)), 0x3eaa_aaab);
    assert_eq!(c(1e300f64.to_bits(), F64, F32, Some(Rz)), f(f32::MAX));
    assert_eq!(c(1e300f64.to_bits(), F64, F32, Some(Rn)), f(f32::INFINITY));
    // Round to integral in the same type.
    assert_eq!(c(f(2.5), F32, F32, Some(Rni)), f(2.0));
    assert_eq!(c(f(-2.5), F32, F32, Some(Rmi)), f(-3.0));
    assert_eq!(c(f(-0.25), F32, F32, Some(Rni)), f(-0.0));
    assert_eq!(c(0x3e00, F16, F16, Some(Rpi)), 0x4000); // 1.5 -> 2
    assert_eq!(c(f(1e20), F32, F32, Some(Rzi)), f(1e20));
    // .ftz / .sat on f32 results.
    let sub = f32::from_bits(5).to_bits() as u64;
    assert_eq!(cvt(sub, F32, F32, None, false, true).unwrap(), 0);
    assert_eq!(cvt(sub | 0x8000_0000, F32, F32, None, false, true).unwrap(), 0x8000_0000);
    assert_eq!(cvt(1e-40f64.to_bits(), F64, F32, Some(Rn), false, true).unwrap(), 0);
    assert_eq!(cvt(f(1.5), F32, F32, None, true, false).unwrap(), f(1.0));
    assert_eq!(cvt(f(-1.5), F32, F16, Some(Rn), true, false).unwrap(), 0);
    assert_eq!(cvt(f(f32::NAN), F32, F32, None, true, false).unwrap(), 0);
    assert_eq!(cvt(f(0.5), F32, F16, Some(Rn), true, false).unwrap(), 0x3800);
}

// Exhaustive: every f16 widens exactly to f32 and narrows back to itself (.rn).
#[test]
fn f16_roundtrip_exhaustive() {
    for h in 0..=u16::MAX {
        let w = c(h as u64, F16, F32, None);
        let back = c(w, F32, F16, Some(Rn));
        if h & 0x7fff > 0x7c00 {
            assert_eq!(back, 0x7fff);
        } else {
            assert_eq!(back, h as u64, "{h:#x}");
            assert_eq!(f32::from_bits(w as u32), half::f16::from_bits(h).to_f32());
        }
    }
}

// f32 -> f16 .rn matches half's single-rounding f32 conversion on many inputs.
#[test]
fn f32_to_f16_rn_matches_reference() {
    let mut x: u32 = 0x1234_5678;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let v = f32::from_bits(x & 0xbfff_ffff | 0x0800_0000);
        if v.is_nan() {
            continue;
        }
        let want = half::f16::from_f32(v).to_bits() as u64;
        assert_eq!(c(v.to_bits() as u64, F32, F16, Some(Rn)), want, "{v:e}");
    }
}

// PTX ISA "cvt ... .f16x2.f32 d, a, b": a -> d[31:16], b -> d[15:0]; .relu and
// .satfinite per element.
#[test]
fn pack_f16x2_order_relu_satfinite() {
    assert_eq!(cvt_pack_f16x2(1.0, 2.0, Rn, false, false, false), 0x3c00_4000);
    assert_eq!(cvt_pack_f16x2(1.0, 2.0, Rn, true, false, false), 0x3f80_4000);
    assert_eq!(cvt_pack_f16x2(-1.0, 2.0, Rn, false, true, false), 0x0000_4000);
    assert_eq!(cvt_pack_f16x2(f32::NAN, 1e6, Rn, false, true, true), 0x7fff_7bff);
    assert_eq!(cvt_pack_f16x2(-1e6, f32::INFINITY, Rz, false, false, true), 0xfbff_7bff);
    assert_eq!(cvt_pack_f16x2(-1e6, 1e6, Rn, false, false, false), 0xfc00_7c00);
    assert_eq!(cvt_pack_f16x2(1.0 + 2f32.powi(-11), 0.0, Rz, false, false, false), 0x3c00_0000);
    assert_eq!(cvt_f32_to_half(f32::MAX, Rn, true, false, true), 0x7f7f);
    assert_eq!(cvt_f32_to_half(f32::NAN, Rn, true, false, false), 0x7fff);
}
