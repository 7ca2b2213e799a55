//! Conformance tests of `ptxsim::semantics::mma` against plain matrix products.
//!
//! The fragment index maps below are transcribed independently from the PTX ISA
//! figures ("Matrix Fragments for mma.m16n8k8 / m16n8k16 / m16n8k32 / m16n8k64",
//! as tabulated in /work/shared/ptx-fragments.md and CuTe's sm80 traits), one
//! explicit table per shape, rather than derived from the implementation's formula.

// Lane-indexed loops mirror the ISA tables, which index several arrays by lane.
#![allow(clippy::needless_range_loop)]

use ptxsim::semantics::mma::{mma_reg_counts, mma_sync, MmaDesc};
use ptxsim::semantics::types::ScalarType::{self, *};

mod common;

use common::Rng;

/// (row, k) of element `j` of A register `r` in lane `lane`.
fn a_pos(k: u32, bits: u32, lane: u32, r: u32, j: u32) -> (u32, u32) {
    let (g, t) = (lane >> 2, lane & 3);
    match (k, bits, r) {
        // m16n8k16 .f16/.bf16: a0..a3
        (16, 16, 0) => (g, 2 * t + j),
        (16, 16, 1) => (g + 8, 2 * t + j),
        (16, 16, 2) => (g, 2 * t + 8 + j),
        (16, 16, 3) => (g + 8, 2 * t + 8 + j),
        // m16n8k8 .f16: a0, a1
        (8, 16, 0) => (g, 2 * t + j),
        (8, 16, 1) => (g + 8, 2 * t + j),
        // m16n8k32 .s8/.u8
        (32, 8, 0) => (g, 4 * t + j),
        (32, 8, 1) => (g + 8, 4 * t + j),
        (32, 8, 2) => (g, 16 + 4 * t + j),
        (32, 8, 3) => (g + 8, 16 + 4 * t + j),
        // m16n8k16 .s8/.u8
        (16, 8, 0) => (g, 4 * t + j),
        (16, 8, 1) => (g + 8, 4 * t + j),
        // m16n8k64 .s4/.u4
        (64, 4, 0) => (g, 8 * t + j),
        (64, 4, 1) => (g + 8, 8 * t + j),
        (64, 4, 2) => (g, 32 + 8 * t + j),
        (64, 4, 3) => (g + 8, 32 + 8 * t + j),
        // m16n8k32 .s4/.u4
        (32, 4, 0) => (g, 8 * t + j),
        (32, 4, 1) => (g + 8, 8 * t + j),
        _ => panic!("no A entry for k{k} b{bits} r{r}"),
    }
}

/// (k, col) of element `j` of B register `r` in lane `lane`.
fn b_pos(k: u32, bits: u32, lane: u32, r: u32, j: u32) -> (u32, u32) {
    let (g, t) = (lane >> 2, lane & 3);
    match (k, bits, r) {
        (16, 16, 0) | (8, 16, 0) => (2 * t + j, g),
        (16, 16, 1) => (2 * t + 8 + j, g),
        (32, 8, 0) | (16, 8, 0) => (4 * t + j, g),
        (32, 8, 1) => (16 + 4 * t + j, g),
        (64, 4, 0) | (32, 4, 0) => (8 * t + j, g),
        (64, 4, 1) => (32 + 8 * t + j, g),
        _ => panic!("no B entry for k{k} b{bits} r{r}"),
    }
}

/// (row, col) of accumulator value `i` (c0..c3) in lane `lane`.
fn c_pos(lane: u32, i: u32) -> (u32, u32) {
    let (g, t) = (lane >> 2, lane & 3);
    match i {
        0 => (g, 2 * t),
        1 => (g, 2 * t + 1),
        2 => (g + 8, 2 * t),
        _ => (g + 8, 2 * t + 1),
    }
}

fn bits_of(t: ScalarType) -> u32 {
    match t {
        F16 | Bf16 => 16,
        S8 | U8 => 8,
        _ => 4,
    }
}

/// Scatters an M x K (A) or K x N (B) matrix of raw element codes into fragments.
fn scatter(k: u32, bits: u32, regs: usize, is_a: bool, code: &dyn Fn(u32, u32) -> u32) -> [[u32; 4]; 32] {
    let mut f = [[0u32; 4]; 32];
    let per = 32 / bits;
    for lane in 0..32 {
        for r in 0..regs as u32 {
            for j in 0..per {
                let (x, y) = if is_a { a_pos(k, bits, lane, r, j) } else { b_pos(k, bits, lane, r, j) };
                let mask = if bits == 32 { u32::MAX } else { (1 << bits) - 1 };
                f[lane as usize][r as usize] |= (code(x, y) & mask) << (bits * j);
            }
        }
    }
    f
}

fn desc(k: u32, a: ScalarType, b: ScalarType, c: ScalarType, d: ScalarType, sat: bool) -> MmaDesc {
    MmaDesc { m: 16, n: 8, k, a, b, c, d, satfinite: sat }
}

// Each A/B position is covered exactly once by the ISA tables (sanity of the oracle).
#[test]
fn fragment_tables_are_bijections() {
    for (k, bits, ra, rb) in [(16, 16, 4, 2), (8, 16, 2, 1), (32, 8, 4, 2), (16, 8, 2, 1), (64, 4, 4, 2), (32, 4, 2, 1)]
    {
        let mut seen_a = vec![0; 16 * k as usize];
        let mut seen_b = vec![0; 8 * k as usize];
        for lane in 0..32 {
            for j in 0..32 / bits {
                for r in 0..ra {
                    let (row, col) = a_pos(k, bits, lane, r, j);
                    seen_a[(row * k + col) as usize] += 1;
                }
                for r in 0..rb {
                    let (kk, n) = b_pos(k, bits, lane, r, j);
                    seen_b[(kk * 8 + n) as usize] += 1;
                }
            }
        }
        assert!(seen_a.iter().all(|&c| c == 1), "A k{k} bits{bits}");
        assert!(seen_b.iter().all(|&c| c == 1), "B k{k} bits{bits}");
    }
}

#[test]
fn reg_counts_per_isa() {
    assert_eq!(mma_reg_counts(&desc(16, F16, F16, F32, F32, false)), Ok((4, 2, 4, 4)));
    assert_eq!(mma_reg_counts(&desc(16, F16, F16, F16, F16, false)), Ok((4, 2, 2, 2)));
    assert_eq!(mma_reg_counts(&desc(16, F16, F16, F16, F32, false)), Ok((4, 2, 2, 4)));
    assert_eq!(mma_reg_counts(&desc(8, F16, F16, F32, F32, false)), Ok((2, 1, 4, 4)));
    assert_eq!(mma_reg_counts(&desc(16, Bf16, Bf16, F32, F32, false)), Ok((4, 2, 4, 4)));
    assert_eq!(mma_reg_counts(&desc(32, S8, U8, S32, S32, true)), Ok((4, 2, 4, 4)));
    assert_eq!(mma_reg_counts(&desc(16, U8, U8, S32, S32, false)), Ok((2, 1, 4, 4)));
    assert_eq!(mma_reg_counts(&desc(64, S4, S4, S32, S32, false)), Ok((4, 2, 4, 4)));
    assert_eq!(mma_reg_counts(&desc(32, U4, S4, S32, S32, false)), Ok((2, 1, 4, 4)));
    // Invalid forms: bf16 with f16 accumulators, mixed f16/bf16, s8 with s4, bad K.
    assert!(mma_reg_counts(&desc(16, Bf16, Bf16, F16, F16, false)).is_err());
    assert!(mma_reg_counts(&desc(16, F16, Bf16, F32, F32, false)).is_err());
    assert!(mma_reg_counts(&desc(32, S8, S4, S32, S32, false)).is_err());
    assert!(mma_reg_counts(&desc(64, S8, S8, S32, S32, false)).is_err());
    assert!(mma_reg_counts(&desc(16, F16, F16, F32, F32, true)).is_err());
    let mut d = desc(16, F16, F16, F32, F32, false);
    d.m = 8;
    assert!(mma_reg_counts(&d).is_err());
    let z = [[0u32; 4]; 32];
    assert!(mma_sync(&d, &z, &z, &z).is_err());
}

/// Runs one float mma with random small values (exactly representable sums) and
/// checks every lane's D against the f64 product rounded to the D type.
fn check_float(k: u32, ab: ScalarType, ct: ScalarType, dt: ScalarType, seed: u64) {
    let mut rng = Rng(seed);
    let enc = |v: f64| -> u32 {
        if ab == F16 {
            half::f16::from_f64(v).to_bits() as u32
        } else {
            half::bf16::from_f64(v).to_bits() as u32
        }
    };
    // Multiples of 1/8 in [-4, 4]: exact in f16 and bf16; products and sums exact in f32.
    let amat: Vec<f64> = (0..16 * k).map(|_| rng.range(-32, 32) as f64 / 8.0).collect();
    let bmat: Vec<f64> = (0..k * 8).map(|_| rng.range(-32, 32) as f64 / 8.0).collect();
    let cmat: Vec<f64> = (0..16 * 8).map(|_| rng.range(-64, 64) as f64 / 4.0).collect();
    let d = desc(k, ab, ab, ct, dt, false);
    let (ra, rb, _, _) = mma_reg_counts(&d).unwrap();
    let a = scatter(k, 16, ra, true, &|r, c| enc(amat[(r * k + c) as usize]));
    let b = scatter(k, 16, rb, false, &|kk, n| enc(bmat[(kk * 8 + n) as usize]));
    let mut c = [[0u32; 4]; 32];
    for lane in 0..32 {
        for i in 0..4 {
            let (r, col) = c_pos(lane, i);
            let v = cmat[(r * 8 + col) as usize];
            if ct == F32 {
                c[lane as usize][i as usize] = (v as f32).to_bits();
            } else {
                let h = half::f16::from_f64(v).to_bits() as u32;
                c[lane as usize][(i / 2) as usize] |= h << (16 * (i % 2));
            }
        }
    }
    let out = mma_sync(&d, &a, &b, &c).unwrap();
    for lane in 0..32 {
        for i in 0..4 {
            let (r, col) = c_pos(lane, i);
            let mut want = cmat[(r * 8 + col) as usize];
            for kk in 0..k {
                want += amat[(r * k + kk) as usize] * bmat[(kk * 8 + col) as usize];
            }
            let got = if dt == F32 {
                f32::from_bits(out[lane as usize][i as usize]) as f64
            } else {
                let h = (out[lane as usize][(i / 2) as usize] >> (16 * (i % 2))) as u16;
                half::f16::from_bits(h).to_f64()
            };
            let want = if dt == F32 { want as f32 as f64 } else { half::f16::from_f64(want).to_f64() };
            assert_eq!(got, want, "k{k} {ab:?} {ct:?}->{dt:?} lane {lane} c{i} (row {r}, col {col})");
        }
    }
}

// PTX ISA "Matrix Fragments for mma.m16n8k16 with floating point type".
#[test]
fn m16n8k16_f16_f32_matches_naive_product() {
    for seed in 1..6 {
        check_float(16, F16, F32, F32, seed);
    }
}

// Same figure; f16 accumulators pack (c0,c1) and (c2,c3) into two registers.
#[test]
fn m16n8k16_f16_f16_accumulators() {
    for seed in 10..14 {
        check_float(16, F16, F16, F16, seed);
        check_float(16, F16, F16, F32, seed);
        check_float(16, F16, F32, F16, seed);
    }
}

// Same figure, .bf16 inputs (f32 accumulators only).
#[test]
fn m16n8k16_bf16_matches_naive_product() {
    for seed in 20..25 {
        check_float(16, Bf16, F32, F32, seed);
    }
}

// PTX ISA "Matrix Fragments for mma.m16n8k8" (.f16 / .bf16).
#[test]
fn m16n8k8_f16_matches_naive_product() {
    for seed in 30..33 {
        check_float(8, F16, F32, F32, seed);
        check_float(8, Bf16, F32, F32, seed);
    }
}

// Rounding once: a sum not representable in f32 rounds to nearest even, and
// products of large f16 values do not overflow before the final rounding.
#[test]
fn float_accumulation_rounds_once() {
    let d = desc(16, F16, F16, F32, F32, false);
    let one = 0x3c00u32; // f16 1.0
    let tiny = 0x0001u32; // smallest f16 subnormal 2^-24
                          // A row 0 = [1, 2^-24, 0...], B col 0 = [1, 1, 0...], C = 2^24 -> 2^24 + 1 + 2^-24.
    let a = scatter(16, 16, 4, true, &|r, c| match (r, c) {
        (0, 0) => one,
        (0, 1) => tiny,
        _ => 0,
    });
    let b = scatter(16, 16, 2, false, &|kk, n| if n == 0 && kk < 2 { one } else { 0 });
    let mut c = [[0u32; 4]; 32];
    c[0][0] = 16777216.0f32.to_bits();
    let out = mma_sync(&d, &a, &b, &c).unwrap();
    // Exact 2^24 + 1 + 2^-24 rounds up to 2^24 + 2 (above the midpoint).
    assert_eq!(f32::from_bits(out[0][0]), 16777218.0);
    // f16 max * f16 max * 16 overflows f16 accumulators to +inf but not f32.
    let big = 0x7bffu32; // 65504
    let a = scatter(16, 16, 4, true, &|_, _| big);
    let b = scatter(16, 16, 2, false, &|_, _| big);
    let z = [[0u32; 4]; 32];
    let out = mma_sync(&d, &a, &b, &z).unwrap();
    assert_eq!(f32::from_bits(out[5][2]), 16.0 * 65504.0 * 65504.0);
    let dh = desc(16, F16, F16, F16, F16, false);
    let out = mma_sync(&dh, &a, &b, &z).unwrap();
    assert_eq!(out[5][0], 0x7c00_7c00);
    // NaN input -> canonical NaN in the affected row (f32 0x7fffffff).
    let a = scatter(16, 16, 4, true, &|r, c| if r == 3 && c == 7 { 0x7e00 } else { one });
    let b = scatter(16, 16, 2, false, &|_, _| one);
    let out = mma_sync(&d, &a, &b, &z).unwrap();
    // Row 3 lives in lanes 12..15 as c0/c1.
    assert_eq!(out[12][0], 0x7fff_ffff);
    assert_eq!(f32::from_bits(out[12][2]), 16.0);
}

fn int_code(t: ScalarType, v: i64) -> u32 {
    let mask = (1u64 << bits_of(t)) - 1;
    (v as u64 & mask) as u32
}

fn int_range(t: ScalarType) -> (i64, i64) {
    match t {
        S8 => (-128, 127),
        U8 => (0, 255),
        S4 => (-8, 7),
        _ => (0, 15),
    }
}

/// Integer mma against an i64 naive product; returns D as s32 values per (row,col).
fn run_int(k: u32, at: ScalarType, bt: ScalarType, sat: bool, amat: &[i64], bmat: &[i64], cmat: &[i32]) -> Vec<i32> {
    let d = desc(k, at, bt, S32, S32, sat);
    let (ra, rb, _, _) = mma_reg_counts(&d).unwrap();
    let a = scatter(k, bits_of(at), ra, true, &|r, c| int_code(at, amat[(r * k + c) as usize]));
    let b = scatter(k, bits_of(bt), rb, false, &|kk, n| int_code(bt, bmat[(kk * 8 + n) as usize]));
    let mut c = [[0u32; 4]; 32];
    for lane in 0..32 {
        for i in 0..4 {
            let (r, col) = c_pos(lane, i);
            c[lane as usize][i as usize] = cmat[(r * 8 + col) as usize] as u32;
        }
    }
    let out = mma_sync(&d, &a, &b, &c).unwrap();
    let mut dm = vec![0i32; 128];
    for lane in 0..32 {
        for i in 0..4 {
            let (r, col) = c_pos(lane, i);
            dm[(r * 8 + col) as usize] = out[lane as usize][i as usize] as i32;
        }
    }
    dm
}

fn naive_int(k: u32, amat: &[i64], bmat: &[i64], cmat: &[i32]) -> Vec<i64> {
    (0..128)
        .map(|idx| {
            let (r, col) = (idx / 8, idx % 8);
            cmat[idx as usize] as i64
                + (0..k).map(|kk| amat[(r * k + kk) as usize] * bmat[(kk * 8 + col) as usize]).sum::<i64>()
        })
        .collect()
}

// PTX ISA "Matrix Fragments for mma.m16n8k32" / "m16n8k16" (.s8/.u8) and
// "m16n8k64" / "m16n8k32" (.s4/.u4), every signedness mix.
#[test]
fn integer_forms_match_naive_product() {
    let mut rng = Rng(99);
    for (k, pair) in [(32u32, [S8, U8]), (16, [S8, U8]), (64, [S4, U4]), (32, [S4, U4])] {
        for at in pair {
            for bt in pair {
                for _ in 0..3 {
                    let (alo, ahi) = int_range(at);
                    let (blo, bhi) = int_range(bt);
                    let amat: Vec<i64> = (0..16 * k).map(|_| rng.range(alo, ahi)).collect();
                    let bmat: Vec<i64> = (0..k * 8).map(|_| rng.range(blo, bhi)).collect();
                    let cmat: Vec<i32> = (0..128).map(|_| rng.range(-100_000, 100_000) as i32).collect();
                    let got = run_int(k, at, bt, false, &amat, &bmat, &cmat);
                    let want = naive_int(k, &amat, &bmat, &cmat);
                    for i in 0..128 {
                        assert_eq!(got[i] as i64, want[i], "k{k} {at:?}x{bt:?} elem {i}");
                    }
                }
            }
        }
    }
}

// PTX ISA "mma": without .satfinite the s32 accumulation wraps; with it, clamps.
#[test]
fn integer_saturation_and_wrap() {
    let k = 32;
    let amat = vec![127i64; 16 * 32];
    let bmat = vec![127i64; 32 * 8];
    let near_max = vec![i32::MAX - 10; 128];
    let wrap = run_int(k, S8, S8, false, &amat, &bmat, &near_max);
    let exact = (i32::MAX - 10) as i64 + 32 * 127 * 127;
    assert_eq!(wrap[0], exact as i32); // wrapped (two's complement truncation)
    assert!(wrap[0] < 0);
    let sat = run_int(k, S8, S8, true, &amat, &bmat, &near_max);
    assert!(sat.iter().all(|&v| v == i32::MAX));
    let neg_a = vec![-128i64; 16 * 32];
    let near_min = vec![i32::MIN + 10; 128];
    let sat = run_int(k, S8, U8, true, &neg_a, &vec![255i64; 32 * 8], &near_min);
    assert!(sat.iter().all(|&v| v == i32::MIN));
    // u4 x s4 extremes: 15 * -8 * 64 = -7680.
    let got = run_int(64, U4, S4, false, &vec![15i64; 16 * 64], &vec![-8i64; 64 * 8], &[0; 128]);
    assert!(got.iter().all(|&v| v == -7680));
}
