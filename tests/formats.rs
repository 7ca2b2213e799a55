//! Tests of `qkernels::formats`: property tests on random shapes and data (fresh seed
//! each run, printed in every assertion message; set `QK_FORMATS_SEED=<base>` to
//! replay a whole run or `QK_FORMATS_CASE_SEED=<seed>` to replay one failing case),
//! hand-computed layout and rounding examples, exactness of the dequant references
//! against an f64 computation rounded once to f16, and the typed errors for bad input.

use half::f16;
use qkernels::formats::{
    dequant_int4_reference, dequant_int8_reference, pack_int4, quantize_int4, quantize_int8_per_channel,
    quantize_int8_per_token, unpack_int4, FormatError, GroupSize, Int4Scheme, Int4Weights, Int8Activations, Int8Scales,
    Int8Weights, ScaleDtype, WeightOnlyWeights,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Random cases per property test.
const CASES: usize = 200;

const GROUPS: [GroupSize; 4] = [GroupSize::G32, GroupSize::G64, GroupSize::G128, GroupSize::PerChannel];
const SCHEMES: [Int4Scheme; 2] = [Int4Scheme::Symmetric, Int4Scheme::Asymmetric];

/// `(case seed, rng)` pairs for the property test `name`: derived from a base seed
/// taken from `QK_FORMATS_SEED` or the clock (printed), or the single case
/// `QK_FORMATS_CASE_SEED`.
fn cases(name: &str) -> Vec<(u64, StdRng)> {
    let env_seed = |var: &str| std::env::var(var).ok().map(|s| s.parse::<u64>().expect("seed must be a u64"));
    if let Some(seed) = env_seed("QK_FORMATS_CASE_SEED") {
        return vec![(seed, StdRng::seed_from_u64(seed))];
    }
    let base = env_seed("QK_FORMATS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    });
    println!("{name}: QK_FORMATS_SEED={base}");
    let name_hash =
        name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let mut master = StdRng::seed_from_u64(base ^ name_hash);
    (0..CASES)
        .map(|_| {
            let seed: u64 = master.random();
            (seed, StdRng::seed_from_u64(seed))
        })
        .collect()
}

/// Random data with a random magnitude per row (1e-3 .. 1e3) and a random shape of
/// distribution: symmetric, shifted to one sign, or with outliers; some exact zeros.
/// Never all zero.
fn random_data(rng: &mut StdRng, rows: usize, cols: usize) -> Vec<f32> {
    let mut w = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        let mag = 10f32.powf(rng.random_range(-3.0..3.0));
        let kind = rng.random_range(0..4);
        for _ in 0..cols {
            let u: f32 = rng.random_range(-1.0..1.0);
            let v = match kind {
                0 => u * mag,
                1 => (u + 2.0) * mag,
                2 => (u - 3.0) * mag,
                _ if rng.random_bool(0.02) => u * mag * 8.0,
                _ => u * mag,
            };
            w.push(if rng.random_bool(0.03) { 0.0 } else { v });
        }
        // Guarantee a non-zero element in every row.
        let last = w.len() - 1;
        if w[last] == 0.0 {
            w[last] = mag;
        }
    }
    w
}

/// Half an f16 ulp at `v`: the largest error of rounding a real to `v` (the ulp of
/// the rounded value is at least that of the exact value).
fn half_ulp(v: f16) -> f64 {
    let exp = i32::from((v.to_bits() >> 10) & 0x1f);
    // Subnormals have the ulp of the smallest normal binade: 2^-24.
    2f64.powi(exp.max(1) - 15 - 10 - 1)
}

/// Tolerance of one dequantized element: half a quantization step (the rounding of
/// `x / s`), a 2^-12 relative slack on the step for the f32 arithmetic of the
/// quantizer (a few f32 roundings of values up to 127 steps: ~2^-16 of a step), and
/// half an f16 ulp of the output for the final rounding to f16.
fn tolerance(scale: f32, out: f16) -> f64 {
    f64::from(scale) * (0.5 + 2f64.powi(-12)) + half_ulp(out)
}

/// `x` rounded once to the nearest f16, ties to even. (`f16::from_f64` is not usable
/// as a reference: it may round through f32, or truncate low bits.)
fn f16_round_once(x: f64) -> f16 {
    if x == 0.0 || !x.is_finite() {
        return f16::from_f64(x);
    }
    let a = x.abs();
    let r = if a >= 65520.0 {
        f16::INFINITY
    } else {
        // Rounding through f32 lands on one of the two f16 neighbours of `a`.
        let c = f16::from_f32(a as f32);
        let (lo, hi) =
            if c.to_f64() > a { (f16::from_bits(c.to_bits() - 1), c) } else { (c, f16::from_bits(c.to_bits() + 1)) };
        let (d_lo, d_hi) = (a - lo.to_f64(), hi.to_f64() - a);
        if d_lo < d_hi || (d_lo == d_hi && lo.to_bits() % 2 == 0) {
            lo
        } else {
            hi
        }
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// Equal, or both NaN.
fn same(a: f32, b: f32) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn random_even_cols(rng: &mut StdRng, group: GroupSize) -> usize {
    match group {
        GroupSize::PerChannel => 2 * rng.random_range(1..=150),
        g => g.elems(0) * rng.random_range(1..=4),
    }
}

// ---------------------------------------------------------------- packing

#[test]
fn pack_unpack_round_trip_random_shapes() {
    for (seed, mut rng) in cases("pack_unpack_round_trip_random_shapes") {
        let rows = rng.random_range(1..=9);
        let cols = 2 * rng.random_range(1..=130);
        let values: Vec<u8> = (0..rows * cols).map(|_| rng.random_range(0..=15)).collect();
        let packed = pack_int4(&values, rows, cols).unwrap();
        assert_eq!(packed.len(), rows * cols / 2, "seed={seed}");
        assert_eq!(unpack_int4(&packed, rows, cols).unwrap(), values, "seed={seed}");

        let bytes: Vec<u8> = (0..rows * cols / 2).map(|_| rng.random()).collect();
        let unpacked = unpack_int4(&bytes, rows, cols).unwrap();
        assert!(unpacked.iter().all(|&v| v <= 15), "seed={seed}");
        assert_eq!(pack_int4(&unpacked, rows, cols).unwrap(), bytes, "seed={seed}");
    }
}

#[test]
fn pack_layout_puts_even_k_in_low_nibble() {
    // Two rows, K = 4: byte j of row n = q[n, 2j] | q[n, 2j + 1] << 4.
    let values = [1, 2, 3, 4, 15, 0, 0, 15];
    let packed = pack_int4(&values, 2, 4).unwrap();
    assert_eq!(packed, [0x21, 0x43, 0x0f, 0xf0]);
    assert_eq!(unpack_int4(&packed, 2, 4).unwrap(), values);
}

#[test]
fn pack_rejects_values_above_15() {
    for (seed, mut rng) in cases("pack_rejects_values_above_15") {
        let rows = rng.random_range(1..=4);
        let cols = 2 * rng.random_range(1..=40);
        let mut values: Vec<u8> = (0..rows * cols).map(|_| rng.random_range(0..=15)).collect();
        let index = rng.random_range(0..values.len());
        let bad = rng.random_range(16..=255);
        values[index] = bad;
        assert_eq!(
            pack_int4(&values, rows, cols),
            Err(FormatError::NibbleOutOfRange { arg: "values", index, value: bad }),
            "seed={seed}"
        );
    }
}

#[test]
fn pack_and_unpack_reject_odd_cols() {
    assert_eq!(pack_int4(&[1, 2, 3], 1, 3), Err(FormatError::OddCols { cols: 3 }));
    assert_eq!(unpack_int4(&[0x21], 1, 3), Err(FormatError::OddCols { cols: 3 }));
}

// ---------------------------------------------------------------- int8

#[test]
fn int8_per_channel_error_within_half_step() {
    for dtype in [ScaleDtype::F32, ScaleDtype::F16] {
        for (seed, mut rng) in cases("int8_per_channel_error_within_half_step") {
            let rows = rng.random_range(1..=8);
            let cols = rng.random_range(1..=300);
            let w = random_data(&mut rng, rows, cols);
            let qw = quantize_int8_per_channel(&w, rows, cols, dtype).unwrap();
            assert_eq!(qw.scales().dtype(), dtype, "seed={seed}");
            assert_eq!((qw.rows(), qw.cols()), (rows, cols), "seed={seed}");
            let scales = qw.scales().to_f32();
            let out = qw.dequantize();
            for (i, ((&x, &q), &y)) in w.iter().zip(qw.q()).zip(&out).enumerate() {
                let s = scales[i / cols];
                assert!((-127..=127).contains(&q), "seed={seed} {dtype:?} i={i} q={q}");
                let err = (f64::from(x) - y.to_f64()).abs();
                assert!(err <= tolerance(s, y), "seed={seed} {dtype:?} i={i}: x={x} q={q} s={s} out={y} err={err}");
            }
            // The stored scale covers the row and is minimal for its type.
            for (n, row) in w.chunks(cols).enumerate() {
                let need = f64::from(row.iter().fold(0f32, |m, v| m.max(v.abs()))) / 127.0;
                let below = match qw.scales() {
                    Int8Scales::F32(s) => f64::from(f32::from_bits(s[n].to_bits() - 1)),
                    Int8Scales::F16(s) => f16::from_bits(s[n].to_bits() - 1).to_f64(),
                };
                assert!(f64::from(scales[n]) >= need, "seed={seed} {dtype:?} n={n}");
                assert!(below < need, "seed={seed} {dtype:?} n={n}");
            }
        }
    }
}

#[test]
fn int8_per_channel_rounds_half_to_even() {
    // absmax 127 -> scale exactly 1; -63.5 and 0.5 are ties.
    let w = [127.0, -63.5, 0.5, 1.5, -2.5, 0.0];
    for dtype in [ScaleDtype::F32, ScaleDtype::F16] {
        let qw = quantize_int8_per_channel(&w, 1, 6, dtype).unwrap();
        assert_eq!(qw.q(), [127, -64, 0, 2, -2, 0]);
        assert_eq!(qw.scales().to_f32(), [1.0]);
    }
}

#[test]
fn int8_per_token_error_within_half_step() {
    for (seed, mut rng) in cases("int8_per_token_error_within_half_step") {
        let rows = rng.random_range(1..=8);
        let cols = rng.random_range(1..=300);
        // Magnitudes ~3e-5 .. 3e4: includes f16 subnormals, stays below f16 max.
        let x: Vec<f16> = random_data(&mut rng, rows, cols)
            .into_iter()
            .map(|v| f16::from_f32(v * 10f32.powf(rng.random_range(-1.5..0.5))))
            .collect();
        if x.chunks(cols).any(|r| r.iter().all(|v| v.to_f32() == 0.0)) {
            continue; // an underflowed row: covered by the all-zero test
        }
        let qa = quantize_int8_per_token(&x, rows, cols).unwrap();
        let out = qa.dequantize();
        for (i, ((&xv, &q), &y)) in x.iter().zip(qa.q()).zip(&out).enumerate() {
            let s = qa.scales()[i / cols];
            assert!((-127..=127).contains(&q), "seed={seed} i={i} q={q}");
            let err = (xv.to_f64() - y.to_f64()).abs();
            assert!(err <= tolerance(s, y), "seed={seed} i={i}: x={xv} q={q} s={s} out={y} err={err}");
        }
    }
}

#[test]
fn int8_per_token_follows_documented_arithmetic() {
    for (seed, mut rng) in cases("int8_per_token_follows_documented_arithmetic") {
        let rows = rng.random_range(1..=6);
        let cols = rng.random_range(1..=200);
        let x: Vec<f16> = random_data(&mut rng, rows, cols).into_iter().map(f16::from_f32).collect();
        let qa = quantize_int8_per_token(&x, rows, cols).unwrap();
        for (m, row) in x.chunks(cols).enumerate() {
            let absmax = row.iter().fold(0f32, |a, v| a.max(v.to_f32().abs()));
            let s = qa.scales()[m];
            if absmax == 0.0 {
                assert_eq!(s, 0.0, "seed={seed} m={m}");
                continue;
            }
            assert_eq!(s.to_bits(), (absmax / 127.0).to_bits(), "seed={seed} m={m}");
            let inv = 127.0f32 / absmax;
            for (k, v) in row.iter().enumerate() {
                let want = (v.to_f32() * inv).round_ties_even().clamp(-127.0, 127.0) as i8;
                assert_eq!(qa.q()[m * cols + k], want, "seed={seed} m={m} k={k}");
            }
        }
    }
}

#[test]
fn int8_per_token_rounds_half_to_even() {
    // Row 0: absmax 127 -> inv 1, scale 1. Row 1: absmax 254 -> inv 0.5, scale 2.
    let x: Vec<f16> = [2.5, 3.5, -2.5, 127.0, 5.0, 7.0, -254.0, 1.0].into_iter().map(f16::from_f32).collect();
    let qa = quantize_int8_per_token(&x, 2, 4).unwrap();
    assert_eq!(qa.q(), [2, 4, -2, 127, 2, 4, -127, 0]);
    assert_eq!(qa.scales(), [1.0, 2.0]);
}

#[test]
fn all_zero_rows_give_zero_scale_and_codes() {
    // Row 1 is all zeros; rows 0 and 2 are not.
    let w = [1.0f32, -2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, -0.5, 0.25, 0.0, 7.0];
    for dtype in [ScaleDtype::F32, ScaleDtype::F16] {
        let qw = quantize_int8_per_channel(&w, 3, 4, dtype).unwrap();
        assert_eq!(qw.scales().to_f32()[1], 0.0);
        assert_eq!(qw.q()[4..8], [0; 4]);
        assert!(qw.dequantize().iter().all(|v| v.is_finite()));
        assert!(qw.dequantize()[4..8].iter().all(|v| v.to_f32() == 0.0));
    }
    let x: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
    let qa = quantize_int8_per_token(&x, 3, 4).unwrap();
    assert_eq!(qa.scales()[1], 0.0);
    assert_eq!(qa.q()[4..8], [0; 4]);
    assert!(qa.dequantize().iter().all(|v| v.is_finite()));

    // INT4, K = 32, G32: row 1 is all zeros.
    let mut w4 = vec![0.0f32; 3 * 32];
    for (k, v) in w4[..32].iter_mut().enumerate() {
        *v = k as f32 - 10.0;
    }
    w4[64..].fill(0.75);
    let sym = quantize_int4(&w4, 3, 32, GroupSize::G32, Int4Scheme::Symmetric).unwrap();
    assert_eq!(sym.scales()[1].to_f32(), 0.0);
    assert!(sym.values()[32..64].iter().all(|&q| q == 8));
    let asym = quantize_int4(&w4, 3, 32, GroupSize::G32, Int4Scheme::Asymmetric).unwrap();
    assert_eq!(asym.scales()[1].to_f32(), 0.0);
    assert_eq!(asym.zeros().unwrap()[1], 0);
    assert!(asym.values()[32..64].iter().all(|&q| q == 0));
    for w in [&sym, &asym] {
        let out = dequant_int4_reference(w);
        assert!(out.iter().all(|v| v.is_finite()));
        assert!(out[32..64].iter().all(|v| v.to_f32() == 0.0));
    }
}

#[test]
fn dequant_int8_reference_is_exact() {
    for (seed, mut rng) in cases("dequant_int8_reference_is_exact") {
        let rows = rng.random_range(1..=6);
        let cols = rng.random_range(1..=100);
        let q: Vec<i8> = (0..rows * cols).map(|_| rng.random()).collect();
        let mag = 10f32.powf(rng.random_range(-9.0..2.0));
        // f16 scales: the f32 product is exact, so the result is rounded once.
        let s16: Vec<f16> = (0..rows).map(|_| f16::from_f32(rng.random_range(-1.0..1.0) * mag)).collect();
        let qw = Int8Weights::from_parts(q.clone(), Int8Scales::F16(s16.clone()), rows, cols).unwrap();
        let out = qw.dequantize();
        for (i, (&v, y)) in q.iter().zip(&out).enumerate() {
            let want = f16_round_once(f64::from(v) * s16[i / cols].to_f64());
            assert_eq!(y.to_bits(), want.to_bits(), "seed={seed} i={i} q={v}");
        }
        // f32 scales: the f32 product is rounded first (as on the GPU); that can only
        // differ from a single rounding when it lands exactly on an f16 tie.
        let s32: Vec<f32> = (0..rows).map(|_| rng.random_range(-1.0..1.0) * mag).collect();
        let out = dequant_int8_reference(&q, &s32, rows, cols).unwrap();
        let qa = Int8Activations::from_parts(q.clone(), s32.clone(), rows, cols).unwrap();
        assert_eq!(qa.dequantize(), out, "seed={seed}");
        for (i, (&v, y)) in q.iter().zip(&out).enumerate() {
            let exact = f64::from(v) * f64::from(s32[i / cols]);
            let want = f16_round_once(exact);
            if y.to_bits() != want.to_bits() {
                let p = f64::from(f32::from(v) * s32[i / cols]);
                let tie = (y.to_f64() + want.to_f64()) / 2.0;
                assert!(
                    p == tie && y.to_bits().abs_diff(want.to_bits()) == 1,
                    "seed={seed} i={i}: q={v} s={} out={y} want={want}",
                    s32[i / cols]
                );
            }
        }
    }
}

#[test]
fn dequant_int4_reference_is_exact() {
    for (seed, mut rng) in cases("dequant_int4_reference_is_exact") {
        let group = GROUPS[rng.random_range(0..GROUPS.len())];
        let rows = rng.random_range(1..=5);
        let cols = random_even_cols(&mut rng, group);
        let n_groups = rows * (cols / group.elems(cols));
        let values: Vec<u8> = (0..rows * cols).map(|_| rng.random_range(0..=15)).collect();
        // Any finite scale, including negative and subnormal ones.
        let mag = 10f32.powf(rng.random_range(-7.0..3.0));
        let scales: Vec<f16> = (0..n_groups).map(|_| f16::from_f32(rng.random_range(-1.0..1.0) * mag)).collect();
        let zeros: Option<Vec<u8>> =
            rng.random_bool(0.5).then(|| (0..n_groups).map(|_| rng.random_range(0..=15)).collect());
        let packed = pack_int4(&values, rows, cols).unwrap();
        let w = Int4Weights::from_parts(packed, scales.clone(), zeros.clone(), rows, cols, group).unwrap();
        assert_eq!(w.values(), values, "seed={seed}");
        let g = group.elems(cols);
        let out = dequant_int4_reference(&w);
        assert_eq!(out.len(), rows * cols, "seed={seed}");
        for (i, (&q, y)) in values.iter().zip(&out).enumerate() {
            let gi = i / g; // == n * (cols / g) + k / g
            let z = zeros.as_ref().map_or(8, |z| z[gi]);
            let want = f16_round_once((f64::from(q) - f64::from(z)) * scales[gi].to_f64());
            assert_eq!(y.to_bits(), want.to_bits(), "seed={seed} {group:?} i={i}");
        }
    }
}

// ---------------------------------------------------------------- int4

#[test]
fn int4_error_within_half_step_for_every_group_size() {
    for scheme in SCHEMES {
        for group in GROUPS {
            for (seed, mut rng) in cases("int4_error_within_half_step_for_every_group_size") {
                let rows = rng.random_range(1..=6);
                let cols = random_even_cols(&mut rng, group);
                let w = random_data(&mut rng, rows, cols);
                let q = quantize_int4(&w, rows, cols, group, scheme).unwrap();
                let g = group.elems(cols);
                let ctx = format!("seed={seed} {scheme:?} {group:?} rows={rows} cols={cols}");
                assert_eq!(q.scheme(), scheme, "{ctx}");
                assert_eq!(q.group(), group, "{ctx}");
                assert_eq!((q.rows(), q.cols()), (rows, cols), "{ctx}");
                assert_eq!(q.packed().len(), rows * cols / 2, "{ctx}");
                assert_eq!(q.scales().len(), rows * cols / g, "{ctx}");
                if let Some(z) = q.zeros() {
                    assert_eq!(z.len(), rows * cols / g, "{ctx}");
                    assert!(z.iter().all(|&z| z <= 15), "{ctx}");
                }
                assert!(q.scales().iter().all(|s| s.to_f32() >= 0.0), "{ctx}");
                let out = dequant_int4_reference(&q);
                for (i, (&x, &y)) in w.iter().zip(&out).enumerate() {
                    let s = q.scales()[i / g].to_f32();
                    let err = (f64::from(x) - y.to_f64()).abs();
                    assert!(err <= tolerance(s, y), "{ctx} i={i}: x={x} s={s} out={y} err={err}");
                }
            }
        }
    }
}

#[test]
fn int4_hand_examples() {
    // Symmetric, one G32 group with absmax 7 -> scale 1, codes x + 8 (ties to even).
    let mut w = vec![0.0f32; 32];
    w[..6].copy_from_slice(&[7.0, -7.0, 3.5, -3.5, 2.5, 1.0]);
    let q = quantize_int4(&w, 1, 32, GroupSize::G32, Int4Scheme::Symmetric).unwrap();
    assert_eq!(q.scales(), [f16::ONE]);
    assert_eq!(q.zeros(), None);
    assert_eq!(q.values()[..7], [15, 1, 12, 4, 10, 9, 8]);
    assert_eq!(q.packed()[..3], [0x1f, 0x4c, 0x9a]);

    // Asymmetric, per channel, values -5..=10 -> scale 1, zero 5, codes x + 5.
    let w: Vec<f32> = (-5..=10).map(|v| v as f32).collect();
    let q = quantize_int4(&w, 1, 16, GroupSize::PerChannel, Int4Scheme::Asymmetric).unwrap();
    assert_eq!(q.scales(), [f16::ONE]);
    assert_eq!(q.zeros(), Some(&[5u8][..]));
    assert_eq!(q.values(), (0..=15).collect::<Vec<u8>>());
    let out: Vec<f32> = dequant_int4_reference(&q).iter().map(|v| v.to_f32()).collect();
    assert_eq!(out, w);

    // Asymmetric with all-positive values: the range is widened to include 0.
    let w = [0.5f32, 7.5, 15.0, 3.0];
    let q = quantize_int4(&w, 1, 4, GroupSize::PerChannel, Int4Scheme::Asymmetric).unwrap();
    assert_eq!(q.scales(), [f16::ONE]);
    assert_eq!(q.zeros(), Some(&[0u8][..]));
    assert_eq!(q.values(), [0, 8, 15, 3]);
}

#[test]
fn tiny_values_keep_error_bound_with_subnormal_scales() {
    for (seed, mut rng) in cases("tiny_values_keep_error_bound_with_subnormal_scales") {
        let rows = rng.random_range(1..=4);
        let cols = 32 * rng.random_range(1..=4);
        // Magnitudes whose f16 scales are subnormal (< 6.1e-5) or zero-rounding.
        let mag = 10f32.powf(rng.random_range(-9.0..-4.0));
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| rng.random_range(0.1f32..1.0) * mag * if rng.random() { 1.0 } else { -1.0 })
            .collect();
        for scheme in SCHEMES {
            let q = quantize_int4(&w, rows, cols, GroupSize::G32, scheme).unwrap();
            let out = dequant_int4_reference(&q);
            for (i, (&x, &y)) in w.iter().zip(&out).enumerate() {
                let s = q.scales()[i / 32].to_f32();
                let err = (f64::from(x) - y.to_f64()).abs();
                assert!(err <= tolerance(s, y), "seed={seed} {scheme:?} i={i}: x={x} s={s}");
            }
        }
        let qw = quantize_int8_per_channel(&w, rows, cols, ScaleDtype::F16).unwrap();
        let scales = qw.scales().to_f32();
        for (i, (&x, &y)) in w.iter().zip(&qw.dequantize()).enumerate() {
            let err = (f64::from(x) - y.to_f64()).abs();
            assert!(err <= tolerance(scales[i / cols], y), "seed={seed} int8 f16 i={i}");
        }
        // f32 scales of subnormal f32 data.
        let tiny: Vec<f32> = w.iter().map(|v| v * 1e-32).collect();
        let qw = quantize_int8_per_channel(&tiny, rows, cols, ScaleDtype::F32).unwrap();
        let scales = qw.scales().to_f32();
        for (i, (&x, &q)) in tiny.iter().zip(qw.q()).enumerate() {
            let s = f64::from(scales[i / cols]);
            let err = (f64::from(x) - f64::from(q) * s).abs();
            assert!(err <= s * (0.5 + 2f64.powi(-12)), "seed={seed} int8 f32 i={i}");
        }
    }
}

#[test]
fn int4_from_parts_accepts_quantizer_output() {
    for (seed, mut rng) in cases("int4_from_parts_accepts_quantizer_output") {
        let group = GROUPS[rng.random_range(0..GROUPS.len())];
        let scheme = SCHEMES[rng.random_range(0..SCHEMES.len())];
        let rows = rng.random_range(1..=4);
        let cols = random_even_cols(&mut rng, group);
        let w = random_data(&mut rng, rows, cols);
        let q = quantize_int4(&w, rows, cols, group, scheme).unwrap();
        let again = Int4Weights::from_parts(
            q.packed().to_vec(),
            q.scales().to_vec(),
            q.zeros().map(<[u8]>::to_vec),
            rows,
            cols,
            group,
        )
        .unwrap();
        assert_eq!(again, q, "seed={seed}");
    }
}

#[test]
fn group_size_elems_and_try_from() {
    assert_eq!(GroupSize::G32.elems(4096), 32);
    assert_eq!(GroupSize::G64.elems(4096), 64);
    assert_eq!(GroupSize::G128.elems(4096), 128);
    assert_eq!(GroupSize::PerChannel.elems(4096), 4096);
    for (n, g) in [(32, GroupSize::G32), (64, GroupSize::G64), (128, GroupSize::G128)] {
        assert_eq!(GroupSize::try_from(n), Ok(g));
    }
    for got in [0, 16, 48, 256] {
        assert_eq!(GroupSize::try_from(got), Err(FormatError::UnsupportedGroupSize { got }));
    }
}

// ---------------------------------------------------------------- errors

#[test]
fn int4_rejects_cols_not_divisible_by_group() {
    let w = vec![1.0f32; 2 * 96];
    assert_eq!(
        quantize_int4(&w, 2, 96, GroupSize::G64, Int4Scheme::Symmetric),
        Err(FormatError::GroupNotDivisible { cols: 96, group: 64 })
    );
    assert_eq!(
        Int4Weights::from_parts(vec![0; 48], vec![f16::ONE; 2], None, 1, 96, GroupSize::G128),
        Err(FormatError::GroupNotDivisible { cols: 96, group: 128 })
    );
}

#[test]
fn int4_rejects_odd_cols() {
    let w = vec![1.0f32; 2 * 7];
    for scheme in SCHEMES {
        assert_eq!(quantize_int4(&w, 2, 7, GroupSize::PerChannel, scheme), Err(FormatError::OddCols { cols: 7 }));
    }
    assert_eq!(
        Int4Weights::from_parts(vec![0; 3], vec![f16::ONE], None, 1, 7, GroupSize::PerChannel),
        Err(FormatError::OddCols { cols: 7 })
    );
}

#[test]
fn rejects_non_finite_input_data() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut w = vec![0.5f32; 2 * 64];
        w[70] = bad;
        let is_bad = |e: Result<(), FormatError>, arg| {
            matches!(e, Err(FormatError::NonFinite { arg: a, index: 70, value })
                if a == arg && same(value, bad))
        };
        for dtype in [ScaleDtype::F32, ScaleDtype::F16] {
            let r = quantize_int8_per_channel(&w, 2, 64, dtype).map(drop);
            assert!(is_bad(r, "w"), "{bad} {dtype:?}");
        }
        for scheme in SCHEMES {
            let r = quantize_int4(&w, 2, 64, GroupSize::G32, scheme).map(drop);
            assert!(is_bad(r, "w"), "{bad} {scheme:?}");
        }
        let x: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
        assert!(is_bad(quantize_int8_per_token(&x, 2, 64).map(drop), "x"), "{bad}");
    }
}

#[test]
fn rejects_non_finite_scales() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let is_bad = |e: Result<(), FormatError>| {
            matches!(e, Err(FormatError::NonFinite { arg: "scales", index: 1, value })
                if same(value, bad))
        };
        let s32 = vec![1.0, bad];
        let s16 = vec![f16::ONE, f16::from_f32(bad)];
        assert!(is_bad(dequant_int8_reference(&[1; 8], &s32, 2, 4).map(drop)));
        assert!(is_bad(Int8Activations::from_parts(vec![1; 8], s32.clone(), 2, 4).map(drop)));
        assert!(is_bad(Int8Weights::from_parts(vec![1; 8], Int8Scales::F32(s32.clone()), 2, 4).map(drop)));
        assert!(is_bad(Int8Weights::from_parts(vec![1; 8], Int8Scales::F16(s16.clone()), 2, 4).map(drop)));
        for zeros in [None, Some(vec![8; 2])] {
            let r = Int4Weights::from_parts(vec![0; 32], s16.clone(), zeros, 1, 64, GroupSize::G32);
            assert!(is_bad(r.map(drop)));
        }
    }
}

#[test]
fn rejects_zero_point_above_15() {
    for bad in [16u8, 200] {
        assert_eq!(
            Int4Weights::from_parts(vec![0; 64], vec![f16::ONE; 4], Some(vec![0, 15, bad, 3]), 2, 64, GroupSize::G32,),
            Err(FormatError::ZeroPointOutOfRange { index: 2, value: bad })
        );
    }
}

#[test]
fn rejects_mismatched_lengths() {
    use FormatError::LengthMismatch as L;
    let w = vec![1.0f32; 63];
    assert_eq!(quantize_int8_per_channel(&w, 2, 32, ScaleDtype::F32), Err(L { arg: "w", expected: 64, got: 63 }));
    assert_eq!(
        quantize_int4(&w, 2, 32, GroupSize::G32, Int4Scheme::Asymmetric),
        Err(L { arg: "w", expected: 64, got: 63 })
    );
    let x = vec![f16::ONE; 65];
    assert_eq!(quantize_int8_per_token(&x, 2, 32), Err(L { arg: "x", expected: 64, got: 65 }));
    assert_eq!(dequant_int8_reference(&[1; 8], &[1.0; 3], 2, 4), Err(L { arg: "scales", expected: 2, got: 3 }));
    assert_eq!(dequant_int8_reference(&[1; 7], &[1.0; 2], 2, 4), Err(L { arg: "q", expected: 8, got: 7 }));
    assert_eq!(
        Int8Weights::from_parts(vec![1; 8], Int8Scales::F16(vec![f16::ONE]), 2, 4),
        Err(L { arg: "scales", expected: 2, got: 1 })
    );
    assert_eq!(Int8Activations::from_parts(vec![1; 9], vec![1.0; 2], 2, 4), Err(L { arg: "q", expected: 8, got: 9 }));
    let g = GroupSize::G32;
    assert_eq!(
        Int4Weights::from_parts(vec![0; 63], vec![f16::ONE; 4], None, 2, 64, g),
        Err(L { arg: "packed", expected: 64, got: 63 })
    );
    assert_eq!(
        Int4Weights::from_parts(vec![0; 64], vec![f16::ONE; 2], None, 2, 64, g),
        Err(L { arg: "scales", expected: 4, got: 2 })
    );
    assert_eq!(
        Int4Weights::from_parts(vec![0; 64], vec![f16::ONE; 4], Some(vec![8; 5]), 2, 64, g),
        Err(L { arg: "zeros", expected: 4, got: 5 })
    );
    assert_eq!(pack_int4(&[1; 6], 2, 4), Err(L { arg: "values", expected: 8, got: 6 }));
    assert_eq!(unpack_int4(&[1; 5], 2, 4), Err(L { arg: "packed", expected: 4, got: 5 }));
}

#[test]
fn rejects_zero_dimensions_and_overflowing_shapes() {
    use FormatError::ZeroDimension as Z;
    assert_eq!(quantize_int8_per_channel(&[], 0, 4, ScaleDtype::F16), Err(Z { arg: "rows" }));
    assert_eq!(quantize_int8_per_token(&[], 3, 0), Err(Z { arg: "cols" }));
    assert_eq!(dequant_int8_reference(&[], &[], 0, 0), Err(Z { arg: "rows" }));
    assert_eq!(quantize_int4(&[], 2, 0, GroupSize::PerChannel, Int4Scheme::Symmetric), Err(Z { arg: "cols" }));
    assert_eq!(pack_int4(&[], 0, 2), Err(Z { arg: "rows" }));
    assert_eq!(unpack_int4(&[], 1, 0), Err(Z { arg: "cols" }));
    assert_eq!(Int4Weights::from_parts(vec![], vec![], None, 0, 32, GroupSize::G32), Err(Z { arg: "rows" }));
    assert_eq!(pack_int4(&[], usize::MAX, 2), Err(FormatError::ShapeOverflow { rows: usize::MAX, cols: 2 }));
}

#[test]
fn scales_beyond_f16_range_are_reported() {
    let w = [1.0f32, -1.0e7, 2.0, 3.0];
    assert!(matches!(
        quantize_int8_per_channel(&w, 2, 2, ScaleDtype::F16),
        Err(FormatError::ScaleOverflow { row: 0, group: 0, required }) if required > 65504.0
    ));
    // f32 scales have the range.
    assert!(quantize_int8_per_channel(&w, 2, 2, ScaleDtype::F32).is_ok());
    let mut w4 = vec![1.0f32; 2 * 64];
    w4[64 + 33] = 6.0e5; // row 1, group 1: symmetric needs 6e5 / 7 > 65504
    assert!(matches!(
        quantize_int4(&w4, 2, 64, GroupSize::G32, Int4Scheme::Symmetric),
        Err(FormatError::ScaleOverflow { row: 1, group: 1, required }) if required > 65504.0
    ));
    // Asymmetric needs (max - min) / 15: 6e5 / 15 fits, a spread of 1.2e6 does not.
    assert!(quantize_int4(&w4, 2, 64, GroupSize::G32, Int4Scheme::Asymmetric).is_ok());
    w4[64 + 34] = -6.0e5;
    assert!(matches!(
        quantize_int4(&w4, 2, 64, GroupSize::G32, Int4Scheme::Asymmetric),
        Err(FormatError::ScaleOverflow { row: 1, group: 1, required }) if required > 65504.0
    ));
}

// ---------------------------------------------------------------- INT4 -> weight-only

// The quantizer's INT4 weights in the GEMM's logical form: the same codes, scales and
// zero points moved from [N, K/g] to [K/g, N] (checked entry by entry against the
// generic layout's definitions), and every weight dequantizes to the same f16.
#[test]
fn int4_weights_convert_to_the_weight_only_form_exactly() {
    for (seed, mut rng) in cases("int4_weights_convert_to_the_weight_only_form_exactly") {
        let group = GROUPS[rng.random_range(0..GROUPS.len())];
        let scheme = SCHEMES[rng.random_range(0..SCHEMES.len())];
        let rows = rng.random_range(1..=9);
        let cols = random_even_cols(&mut rng, group);
        let w = quantize_int4(&random_data(&mut rng, rows, cols), rows, cols, group, scheme).unwrap();
        let logical = WeightOnlyWeights::from_int4(&w).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let g = group.elems(cols);
        let groups = cols / g;
        let shape = logical.shape();
        assert_eq!((shape.n(), shape.k(), shape.group()), (rows, cols, g), "seed {seed}");
        assert_eq!(logical.codes(), unpack_int4(w.packed(), rows, cols).unwrap().as_slice(), "seed {seed}");
        for n in 0..rows {
            for grp in 0..groups {
                // Int4Weights: s[n, k / g] at n * (K / g) + k / g; logical: s[group, n].
                assert_eq!(logical.scales()[grp * rows + n], w.scales()[n * groups + grp], "seed {seed} ({n}, {grp})");
                let zero = w.zeros().map_or(8, |z| z[n * groups + grp]);
                assert_eq!(logical.zero_of(grp, n), Some(zero), "seed {seed} ({n}, {grp})");
            }
        }
        assert_eq!(logical.zeros().is_some(), scheme == Int4Scheme::Asymmetric, "seed {seed}");
        assert_eq!(logical.dequantize(), dequant_int4_reference(&w), "seed {seed}");
    }
}
