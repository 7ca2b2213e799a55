//! `gemm_w8a16` (symmetric 8-bit weights, per-channel or group-wise f16 scales) against
//! the f64 reference, on every backend. Same reference, tolerance and simulator
//! assertions as tests/gemm_w4a16.rs: the 8-bit dequant is exact too ((1024 + u) − 1152
//! = q in f16, one rounding in the scale multiply).

mod common;
mod weight_only_common;

use common::{assert_c_within, check_main_loop_sass_budgets, devices, devices_where, ran, rng, SassBudget};
use half::f16;
use qkernels::formats::{pack_weight_only, WeightBits, WeightOnlyError, WeightOnlyShape, WeightOnlyWeights};
use qkernels::ops::{gemm_w8a16_host, pack_w8a16, GemmWeightOnlyPlan, WeightOnlyConfig};
use qkernels::reference::{gemm_weight_only_reference, weight_only_tolerance};
use qkernels::{Device, QkError};
use rand::rngs::StdRng;
use rand::Rng;
use weight_only_common::{
    check_config_at, check_decode_instruction_budget, check_every_configuration, check_every_m, check_large_configs,
    check_programmatic_chains, check_random_shapes, check_tma_config, large_configs, random_a, runs_programmatic,
    runs_wgmma, wgmma_configs_with_n, DECODE_M_SWEEP, LARGE_M_SWEEP, N256_ROW_TILE_MS,
};

/// Random int8 weights over the full range (−128 included) with f16 scales in ±[2⁻¹², 2⁻⁸].
fn random_int8(rng: &mut StdRng, n: usize, k: usize, group: usize) -> WeightOnlyWeights {
    let q: Vec<i8> = (0..n * k).map(|_| rng.random::<i8>()).collect();
    let scales = (0..k / group * n)
        .map(|_| {
            let s = rng.random_range(0.0003f32..0.004);
            f16::from_f32(if rng.random_bool(0.5) { s } else { -s })
        })
        .collect();
    WeightOnlyWeights::from_int8(&q, scales, n, k, group).unwrap()
}

#[test]
fn gemm_w8a16_every_m_and_group() {
    let test = "gemm_w8a16_sweep";
    let mut rng = rng(test);
    for device in devices(test) {
        for (group, k) in [(32usize, 96usize), (64, 192), (128, 256), (208, 208)] {
            let weights = random_int8(&mut rng, 192, k, group);
            check_every_m(test, &device, &mut rng, &weights, false);
        }
        ran(test, &device);
    }
}

#[test]
fn gemm_w8a16_large_configs_every_group() {
    let test = "gemm_w8a16_large_groups";
    let mut rng = rng(test);
    for device in devices(test) {
        let configs = large_configs(test, &device);
        // N = 576: two full 256-column tiles and a partial one; K with partial stages.
        for (group, k) in [(32usize, 96usize), (128, 256), (208, 208)] {
            let weights = random_int8(&mut rng, 576, k, group);
            check_large_configs(test, &device, &mut rng, &weights, &configs, &LARGE_M_SWEEP[..2]);
        }
        // One split over K = 768 (12 tiles) cycles the wgmma kernels' 5 stages twice; the
        // TMA-fed ones (on whole tiles of N) wait on each stage's barriers in both phases.
        // (large_configs holds LargeWgmma where the device runs wgmma.)
        if configs.contains(&WeightOnlyConfig::LargeWgmma) {
            for (config, n) in wgmma_configs_with_n() {
                let weights = random_int8(&mut rng, n, 768, 64);
                check_config_at(test, &device, &mut rng, &weights, config, Some(1), &[100]);
            }
        }
        ran(test, &device);
    }
}

/// Budget of the 8-bit decode kernel, warp instructions per weight byte (measured 0.0842
/// with nvcc 13.0.88: per 16-byte lane chunk 8 prmt, 8 sub and 8 scale multiplies for 16
/// weights, 4 mma, and little else; 0.16 before the copy plans; 0.108 while the compiler
/// rebuilt the A tile's copy plan and ldmatrix offsets from %tid.x every stage; 0.098
/// before the group rows' copy plan; 0.090 while each copy pass took a strip of its own).
const W8_DECODE_INSTRUCTIONS_PER_BYTE: f64 = 0.088;
/// Budget of the 8-bit gemv_swap_ab kernel (measured 0.079 with nvcc 13.0.88: 2 of
/// gemv's 4 mma and 1 of its 2 ldmatrix per lane chunk, half its A copies).
const W8_SWAP_AB_DECODE_INSTRUCTIONS_PER_BYTE: f64 = 0.083;
/// Budget of the 8-bit gemv_direct kernel (measured 0.092 with nvcc 13.0.88; see the
/// 4-bit budget in tests/gemm_w4a16.rs for why its PTX count overstates its SASS).
const W8_DIRECT_DECODE_INSTRUCTIONS_PER_BYTE: f64 = 0.097;

// The 256-row tiles with 8-bit weights at M the 128-row sweeps do not reach
// (N256_ROW_TILE_MS): per-channel, cp.async-fed and TMA-fed.
#[test]
fn gemm_w8a16_large_wgmma_n256_partial_and_whole_row_tiles() {
    let test = "gemm_w8a16_wgmma_n256_rows";
    let mut rng = rng(test);
    for device in devices_where(test, runs_wgmma) {
        let weights = random_int8(&mut rng, 384, 256, 256);
        let configs = [WeightOnlyConfig::LargeWgmmaN256, WeightOnlyConfig::LargeWgmmaN256Tma];
        check_large_configs(test, &device, &mut rng, &weights, &configs, &N256_ROW_TILE_MS);
        ran(test, &device);
    }
}

// The TMA-fed wgmma kernels with 8-bit weights (4 KB strips per stage): per-channel and
// groups of 64; M = 1, a partial row tile and, for the 128-row tile, one over two tiles;
// automatic and 3 splits.
#[test]
fn gemm_w8a16_large_wgmma_tma() {
    let test = "gemm_w8a16_wgmma_tma";
    let mut rng = rng(test);
    for device in devices_where(test, runs_wgmma) {
        for (k, group) in [(256usize, 256usize), (320, 64)] {
            let weights = random_int8(&mut rng, 512, k, group);
            let label = format!("{test} K={k} g={group}");
            // M = 1: a one-row box (the tensor has one row), the tile's other rows zeroed.
            check_tma_config(&label, &device, &mut rng, &weights, &[1, LARGE_M_SWEEP[1], LARGE_M_SWEEP[2]]);
        }
        ran(test, &device);
    }
}

#[test]
fn gemm_w8a16_decode_stays_within_its_instruction_budget() {
    let mut rng = rng("gemm_w8a16_decode_budget");
    let weights = random_int8(&mut rng, 256, 2048, 128);
    check_decode_instruction_budget(
        "gemm_w8a16 g128",
        &weights,
        WeightOnlyConfig::Gemv,
        W8_DECODE_INSTRUCTIONS_PER_BYTE,
    );
    check_decode_instruction_budget(
        "gemm_w8a16 g128 gemv_swap_ab",
        &weights,
        WeightOnlyConfig::GemvSwapAb,
        W8_SWAP_AB_DECODE_INSTRUCTIONS_PER_BYTE,
    );
    check_decode_instruction_budget(
        "gemm_w8a16 g128 gemv_direct",
        &weights,
        WeightOnlyConfig::GemvDirect,
        W8_DIRECT_DECODE_INSTRUCTIONS_PER_BYTE,
    );
}

/// Budgets of the main loops the planner picks, in static SASS instructions (measured
/// with nvcc 13.0.88; see W4_MAIN_LOOP_SASS_BUDGETS in tests/gemm_w4a16.rs): the 8-bit
/// decode kernel (329 on sm_90a and 328 on sm_80, 365 both before the copies were planned
/// per strip and group slot) and the sm_90a wgmma kernel at large M (235, was 250).
const W8_MAIN_LOOP_SASS_BUDGETS: [SassBudget; 3] = [
    ("gemm_w4a16", "qk_gemm_w8a16_gemv", "sm_90a", 335),
    ("gemm_w4a16", "qk_gemm_w8a16_gemv", "sm_80", 335),
    ("gemm_w4a16_sm90a", "qk_gemm_w8a16_large_wgmma", "sm_90a", 240),
];

#[test]
fn gemm_w8a16_main_loops_stay_within_their_sass_budgets() {
    check_main_loop_sass_budgets("gemm_w8a16_main_loop_sass", &W8_MAIN_LOOP_SASS_BUDGETS);
}

// The decode configurations with the operands swapped (through shared memory and
// straight from global memory), at every decode M: per-channel (K not a multiple of the
// stage), groups of 32 and 128; automatic and (but per-channel) 3 splits.
#[test]
fn gemm_w8a16_gemv_swap_ab_and_direct_every_group() {
    let test = "gemm_w8a16_swap_ab_direct";
    let mut rng = rng(test);
    for device in devices(test) {
        for (group, k) in [(32usize, 96usize), (128, 256), (208, 208)] {
            let weights = random_int8(&mut rng, 192, k, group);
            // Forced splits of a per-channel K re-read its scale row per split (see
            // gemm_w4a16_gemv_swap_ab_and_direct_every_group_scheme_and_act_order).
            let forced = if group == k { None } else { Some(3) };
            for config in [WeightOnlyConfig::GemvSwapAb, WeightOnlyConfig::GemvDirect] {
                for splits in [None, forced] {
                    let label = format!("{test} {config:?} splits={splits:?}");
                    check_config_at(&label, &device, &mut rng, &weights, config, splits, &DECODE_M_SWEEP);
                }
            }
        }
        ran(test, &device);
    }
}

// The untimed configurations on random shapes, beside the structured sweep above.
#[test]
fn gemm_w8a16_explicit_only_configurations_on_random_shapes() {
    let test = "gemm_w8a16_random_shapes";
    let mut rng = rng(test);
    for device in devices(test) {
        check_random_shapes(test, &device, &mut rng, random_int8);
        ran(test, &device);
    }
}

#[test]
fn gemm_w8a16_every_configuration_with_and_without_split_k() {
    let test = "gemm_w8a16_configs";
    let mut rng = rng(test);
    for device in devices(test) {
        let weights = random_int8(&mut rng, 320, 320, 320);
        check_every_configuration(test, &device, &mut rng, &weights);
        ran(test, &device);
    }
}

/// Programmatic dependent launch on every configuration (see the gemm_w4a16 test).
#[test]
fn gemm_w8a16_programmatic_launches_back_to_back() {
    let test = "gemm_w8a16_programmatic";
    let mut rng = rng(test);
    for device in devices_where(test, runs_programmatic) {
        let first = random_int8(&mut rng, 256, 256, 256);
        let second = random_int8(&mut rng, 256, 256, 64);
        check_programmatic_chains(test, &device, &mut rng, &first, &second);
        ran(test, &device);
    }
}

#[test]
fn gemm_w8a16_host_entry_point_with_bias() {
    let test = "gemm_w8a16_host";
    let mut rng = rng(test);
    for device in devices(test) {
        let (m, n, k) = (3, 128, 80);
        let w_q: Vec<i8> = (0..n * k).map(|_| rng.random::<i8>()).collect();
        let w_scale: Vec<f16> = (0..n).map(|_| f16::from_f32(rng.random_range(0.0003f32..0.004))).collect();
        let bias: Vec<f16> = (0..n).map(|_| f16::from_f32(rng.random_range(-1.0f32..1.0))).collect();
        let a = random_a(&mut rng, m, k);
        let (got, _) = gemm_w8a16_host(&device, &a, &w_q, &w_scale, k, Some(&bias), (m, n, k)).unwrap();
        let weights = WeightOnlyWeights::from_int8(&w_q, w_scale.clone(), n, k, k).unwrap();
        let (want, magnitude) = gemm_weight_only_reference(&a, &weights.dequantize(), Some(&bias), m, n, k).unwrap();
        assert_c_within(test, &got, &want, n, |i| weight_only_tolerance(want[i].to_f64(), magnitude[i], k));
        ran(test, &device);
    }
}

#[test]
fn gemm_w8a16_rejects_shapes_the_layout_cannot_hold() {
    let device = Device::sim();
    // Typed errors name what the layout requires: N a multiple of 64, K of 16, a group
    // of 32/64/128/K dividing K, lengths matching the shape.
    let err = |r: Result<_, QkError>| match r {
        Err(QkError::WeightOnly(e)) => e,
        other => panic!("expected a QkError::WeightOnly, got {other:?}"),
    };
    let e = err(pack_w8a16(&[0; 32 * 64], &[f16::ONE; 32], 32, 64, 64));
    assert!(matches!(e, WeightOnlyError::NotMultiple { arg: "N", multiple: 64, .. }), "{e}");
    let e = err(pack_w8a16(&[0; 64 * 40], &[f16::ONE; 64], 64, 40, 40));
    assert!(matches!(e, WeightOnlyError::NotMultiple { arg: "K", multiple: 16, .. }), "{e}");
    let e = err(pack_w8a16(&[0; 64 * 96], &[f16::ONE; 64 * 2], 64, 96, 48));
    assert!(matches!(e, WeightOnlyError::UnsupportedGroup { group: 48, k: 96 }), "{e}");
    let e = err(pack_w8a16(&[0; 64 * 64 - 1], &[f16::ONE; 64], 64, 64, 64));
    assert!(matches!(e, WeightOnlyError::LengthMismatch { expected: 4096, got: 4095, .. }), "{e}");
    // 8-bit weights carry no zero points.
    let shape = WeightOnlyShape::new(WeightBits::Int8, 64, 64, 64).unwrap();
    let w = WeightOnlyWeights::new(shape, vec![0; 64 * 64], vec![f16::ONE; 64], Some(vec![0; 64]), None);
    assert!(w.is_err());
    let w = pack_weight_only(&random_int8(&mut rng("gemm_w8a16_reject"), 64, 64, 64)).unwrap();
    assert!(gemm_w8a16_plan_rejects_m0(&device, &w));
}

/// M = 0 is rejected before anything is launched.
fn gemm_w8a16_plan_rejects_m0(device: &Device, w: &qkernels::formats::PackedWeights) -> bool {
    let dw = qkernels::ops::DevicePackedWeights::upload(device, w).unwrap();
    matches!(GemmWeightOnlyPlan::new(device, &dw, 0), Err(QkError::InvalidArgument { arg: "m", .. }))
}
