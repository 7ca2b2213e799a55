//! The bandwidth-bound kernels (`dequant_int8`, `dequant_int4`,
//! `quantize_int8_per_token`) against their host references in `qkernels::formats`, on
//! every backend, on fresh random inputs with shapes that are not multiples of the
//! vector width (16 or 32 elements) or the block size, outputs poisoned first.
//!
//! Tolerance: none. Each kernel's arithmetic is specified to the bit (the product of a
//! small integer and a scale rounded once to f16; the quantizer's f32 division, multiply
//! and round-to-nearest-even) and the reference performs the same operations, so the
//! comparison is exact.

mod common;

use common::{devices, ran, rng, POISON_F16_BITS, POISON_F32_BITS, POISON_I8};
use half::f16;
use qkernels::formats::{self, GroupSize, Int4Scheme};
use qkernels::ops::{self, Int8Scales};
use qkernels::QkError;
use rand::Rng;

/// Shapes (rows, cols) that straddle vector and row boundaries: cols below, at and above
/// the 16-element vector, odd counts, and totals that leave a scalar tail.
const INT8_SHAPES: &[(usize, usize)] = &[(1, 1), (3, 5), (1, 16), (7, 33), (17, 100), (5, 257), (33, 48)];

fn random_f16_row_data(rng: &mut impl Rng, len: usize) -> Vec<f16> {
    // Mixed magnitudes; never all zeros.
    (0..len).map(|_| f16::from_f32(rng.random_range(-8.0f32..8.0) * 2f32.powi(rng.random_range(-6..3)))).collect()
}

fn assert_f16_bits_eq(test: &str, got: &[f16], want: &[f16]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_ne!(g.to_bits(), POISON_F16_BITS, "{test}: element {i} was never written");
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{test}: element {i}: got {g} ({:#06x}), want {w} ({:#06x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

#[test]
fn dequant_int8_matches_reference_bit_exactly() {
    let test = "dequant_int8";
    let mut rng = rng(test);
    for device in devices(test) {
        for &(rows, cols) in INT8_SHAPES {
            // Every int8 value, -128 included, and scales of both precisions.
            let q: Vec<i8> = (0..rows * cols).map(|_| rng.random::<i8>()).collect();
            let scales_f32: Vec<f32> = (0..rows).map(|_| rng.random_range(1e-4f32..0.5)).collect();
            let scales_f16: Vec<f16> = scales_f32.iter().map(|&s| f16::from_f32(s)).collect();
            let q_dev = device.upload(&q).unwrap();
            let out = device.alloc::<f16>(rows * cols).unwrap();

            let s32 = device.upload(&scales_f32).unwrap();
            device.fill(&out, f16::from_bits(POISON_F16_BITS)).unwrap();
            ops::dequant_int8(&device, &q_dev, Int8Scales::F32(&s32), &out, rows, cols).unwrap();
            let want = formats::dequant_int8_reference(&q, &scales_f32, rows, cols).unwrap();
            assert_f16_bits_eq(test, &device.download(&out).unwrap(), &want);

            let s16 = device.upload(&scales_f16).unwrap();
            device.fill(&out, f16::from_bits(POISON_F16_BITS)).unwrap();
            ops::dequant_int8(&device, &q_dev, Int8Scales::F16(&s16), &out, rows, cols).unwrap();
            let widened: Vec<f32> = scales_f16.iter().map(|s| s.to_f32()).collect();
            let want = formats::dequant_int8_reference(&q, &widened, rows, cols).unwrap();
            assert_f16_bits_eq(test, &device.download(&out).unwrap(), &want);
        }
        ran(test, &device);
    }
}

#[test]
fn dequant_int4_matches_reference_bit_exactly() {
    let test = "dequant_int4";
    let mut rng = rng(test);
    // (rows, cols, group): every group size, sym and asym, per-channel rows whose length
    // is not a multiple of the 32-element vector (the kernel's scalar path).
    let cases: &[(usize, usize, GroupSize)] = &[
        (3, 64, GroupSize::G32),
        (5, 96, GroupSize::G32),
        (2, 192, GroupSize::G64),
        (7, 256, GroupSize::G128),
        (3, 2, GroupSize::PerChannel),
        (5, 50, GroupSize::PerChannel),
        (9, 70, GroupSize::PerChannel),
        (4, 128, GroupSize::PerChannel),
    ];
    for device in devices(test) {
        for &(rows, cols, group) in cases {
            for scheme in [Int4Scheme::Symmetric, Int4Scheme::Asymmetric] {
                let w: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-2.0f32..2.0)).collect();
                let qw = formats::quantize_int4(&w, rows, cols, group, scheme).unwrap();
                let out = ops::dequant_int4_host(&device, qw.packed(), qw.scales(), qw.zeros(), rows, cols, group);
                let want = formats::dequant_int4_reference(&qw);
                assert_f16_bits_eq(&format!("{test} {rows}x{cols} {group:?} {scheme:?}"), &out.unwrap(), &want);
            }
        }
        ran(test, &device);
    }
}

#[test]
fn dequant_int4_writes_every_element_of_a_poisoned_output() {
    let test = "dequant_int4_poison";
    let mut rng = rng(test);
    for device in devices(test) {
        let (rows, cols, group) = (11, 160, GroupSize::G32);
        let w: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let qw = formats::quantize_int4(&w, rows, cols, group, Int4Scheme::Asymmetric).unwrap();
        let packed = device.upload(qw.packed()).unwrap();
        let scales = device.upload(qw.scales()).unwrap();
        let zeros = device.upload(qw.zeros().unwrap()).unwrap();
        let out = device.alloc::<f16>(rows * cols).unwrap();
        device.fill(&out, f16::from_bits(POISON_F16_BITS)).unwrap();
        ops::dequant_int4(&device, &packed, &scales, Some(&zeros), &out, rows, cols, group).unwrap();
        assert_f16_bits_eq(test, &device.download(&out).unwrap(), &formats::dequant_int4_reference(&qw));
        ran(test, &device);
    }
}

#[test]
fn quantize_int8_per_token_matches_reference_bit_exactly() {
    let test = "quantize_int8_per_token";
    let mut rng = rng(test);
    // cols multiples of 16 take the vector path, others the scalar path; rows beyond
    // one block per row and row lengths beyond one pass of the block.
    let shapes: &[(usize, usize)] = &[(1, 16), (3, 7), (5, 48), (2, 130), (9, 512), (4, 1000), (1, 2064)];
    for device in devices(test) {
        for &(rows, cols) in shapes {
            let mut x = random_f16_row_data(&mut rng, rows * cols);
            if rows > 1 {
                // One all-zero row: scale 0 and q 0, no NaN.
                x[cols..2 * cols].fill(f16::ZERO);
            }
            let x_dev = device.upload(&x).unwrap();
            let q = device.alloc::<i8>(rows * cols).unwrap();
            let scales = device.alloc::<f32>(rows).unwrap();
            device.fill(&q, POISON_I8).unwrap();
            device.fill(&scales, f32::from_bits(POISON_F32_BITS)).unwrap();
            ops::quantize_int8_per_token(&device, &x_dev, &q, &scales, rows, cols).unwrap();
            let want = formats::quantize_int8_per_token(&x, rows, cols).unwrap();
            let got_q = device.download(&q).unwrap();
            let got_s = device.download(&scales).unwrap();
            for (i, (g, w)) in got_q.iter().zip(want.q()).enumerate() {
                assert_eq!(g, w, "{test} {rows}x{cols}: q[{i}]");
            }
            for (r, (g, w)) in got_s.iter().zip(want.scales()).enumerate() {
                assert_eq!(g.to_bits(), w.to_bits(), "{test} {rows}x{cols}: scale[{r}] got {g} want {w}");
            }
        }
        ran(test, &device);
    }
}

#[test]
fn wrappers_reject_bad_arguments_before_launch() {
    let device = qkernels::Device::sim();
    let invalid = |r: Result<(), QkError>, arg: &str| match r {
        Err(QkError::InvalidArgument { arg: a, .. }) if a == arg => {}
        other => panic!("expected InvalidArgument({arg}), got {other:?}"),
    };
    let q = device.upload(&[1i8; 12]).unwrap();
    let s = device.upload(&[0.5f32; 3]).unwrap();
    let out = device.alloc::<f16>(12).unwrap();
    invalid(ops::dequant_int8(&device, &q, Int8Scales::F32(&s), &out, 0, 4), "shape");
    invalid(ops::dequant_int8(&device, &q, Int8Scales::F32(&s), &out, 4, 3), "scales");
    invalid(ops::dequant_int8(&device, &q, Int8Scales::F32(&s), &out, 2, 6), "scales");
    let short = device.alloc::<f16>(11).unwrap();
    invalid(ops::dequant_int8(&device, &q, Int8Scales::F32(&s), &short, 3, 4), "out");

    let packed = device.upload(&[0u8; 48]).unwrap();
    let scales = device.upload(&[f16::ONE; 3]).unwrap();
    let out4 = device.alloc::<f16>(96).unwrap();
    invalid(ops::dequant_int4(&device, &packed, &scales, None, &out4, 1, 95, GroupSize::PerChannel), "cols");
    invalid(ops::dequant_int4(&device, &packed, &scales, None, &out4, 1, 96, GroupSize::G64), "group");
    invalid(ops::dequant_int4(&device, &packed, &scales, None, &out4, 1, 96, GroupSize::G128), "group");

    // A buffer of another device is refused, not dereferenced.
    let other = qkernels::Device::sim();
    let foreign = other.upload(&[1i8; 12]).unwrap();
    assert!(matches!(
        ops::dequant_int8(&device, &foreign, Int8Scales::F32(&s), &out, 3, 4),
        Err(QkError::ForeignBuffer { arg: "q" })
    ));
}
