//! `gemm_w4a16` against the f64 reference, on every backend.
//!
//! Reference: A and the dequantized f16 weights (`WeightOnlyWeights::dequantize`, which
//! the kernel reproduces bit for bit: `(1024 + q) − (1024 + z)` is exact in f16 and the
//! scale multiply rounds once), products summed in f64, rounded once to f16.
//!
//! Tolerance: |c − ref| ≤ 1 ulp_f16(ref) + K·2⁻²³·(Σ_k |a·w| + |bias|), the bound
//! `qkernels::reference::weight_only_tolerance` states and derives: each f16 x f16
//! product is exact in f32, so only the f32 accumulation of K terms (and the bias add)
//! and the final rounding to f16 remain.
//!
//! The simulator also checks what a GPU cannot: no hazards (a hazard fails the launch),
//! 0 shared-memory bank conflicts, and at M ≤ 16 that the weight + scale + zero bytes
//! read from global memory are at most 1.05× their size (the weights are streamed once).
//!
//! Instruction budgets, not timings: the warp instructions (PTX) the simulator executes
//! per weight byte or multiply-add, and the static SASS of the main loops ptxas built.

mod common;
mod weight_only_common;

use common::{check_main_loop_sass_budgets, devices, devices_where, ran, rng, sim_only, SassBudget};
use half::f16;
use qkernels::formats::{pack_weight_only, WeightBits, WeightOnlyError, WeightOnlyShape, WeightOnlyWeights};
use qkernels::ops::{gemm_weight_only_host, DevicePackedWeights, GemmWeightOnlyPlan, WeightOnlyConfig};
use qkernels::{Device, QkError};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use weight_only_common::{
    check_config_at, check_decode_instruction_budget, check_every_configuration, check_every_m, check_large_configs,
    check_large_m_instruction_budget, check_programmatic_chain, check_programmatic_chains, check_random_shapes,
    check_tma_config, large_configs, runs_programmatic, runs_wgmma, tma_configs, wgmma_configs_with_n, DECODE_M_SWEEP,
    LARGE_M_SWEEP, N256_ROW_TILE_MS, PROGRAMMATIC_CHAIN_M,
};

/// Random 4-bit weights: codes, f16 scales in ±[2⁻⁹, 2⁻⁵], zero points (asymmetric), and
/// for act-order a random assignment of K rows to groups of equal size.
fn random_int4(
    rng: &mut StdRng,
    n: usize,
    k: usize,
    group: usize,
    asymmetric: bool,
    act_order: bool,
) -> WeightOnlyWeights {
    let groups = k / group;
    let codes = (0..n * k).map(|_| rng.random_range(0..16u8)).collect();
    let scales = (0..groups * n)
        .map(|_| {
            let s = rng.random_range(0.002f32..0.03);
            f16::from_f32(if rng.random_bool(0.5) { s } else { -s })
        })
        .collect();
    let zeros = asymmetric.then(|| (0..groups * n).map(|_| rng.random_range(0..16u8)).collect());
    let g_idx = act_order.then(|| {
        let mut order: Vec<usize> = (0..k).collect();
        order.shuffle(rng);
        let mut g = vec![0u32; k];
        for (pos, &kk) in order.iter().enumerate() {
            g[kk] = (pos / group) as u32;
        }
        g
    });
    let shape = WeightOnlyShape::new(WeightBits::Int4, n, k, group).unwrap();
    WeightOnlyWeights::new(shape, codes, scales, zeros, g_idx).unwrap()
}

#[test]
fn gemm_w4a16_every_m_on_non_tile_shapes() {
    let test = "gemm_w4a16_m_sweep";
    let mut rng = rng(test);
    for device in devices(test) {
        // N = 192: not a multiple of any BN (256, 128); K = 208: not a multiple of the
        // 64-deep stage (a partial last stage), groups of 16 x... K / 16 = 13 k-steps.
        let weights = random_int4(&mut rng, 192, 208, 208, true, false);
        check_every_m(test, &device, &mut rng, &weights, true);
        ran(test, &device);
    }
}

#[test]
fn gemm_w4a16_every_group_scheme_and_act_order() {
    let test = "gemm_w4a16_groups";
    let mut rng = rng(test);
    for device in devices(test) {
        // (group, K): K a multiple of the group, not of the 64-deep stage where possible;
        // per-channel with K not a power of two (144) and a power of two (256): the
        // kernel's group arithmetic is shift-and-mask for powers of two.
        for (group, k) in [(32usize, 160usize), (64, 192), (128, 384), (144, 144), (256, 256)] {
            for asymmetric in [false, true] {
                for act_order in [false, true] {
                    if act_order && group == k {
                        continue; // one group: act-order is the identity grouping
                    }
                    let weights = random_int4(&mut rng, 128, k, group, asymmetric, act_order);
                    let label = format!("{test} asym={asymmetric} act_order={act_order}");
                    check_every_m(&label, &device, &mut rng, &weights, false);
                }
            }
        }
        ran(test, &device);
    }
}

#[test]
fn gemm_w4a16_every_configuration_with_and_without_split_k() {
    let test = "gemm_w4a16_configs";
    let mut rng = rng(test);
    for device in devices(test) {
        let weights = random_int4(&mut rng, 320, 320, 64, true, false);
        check_every_configuration(test, &device, &mut rng, &weights);
        ran(test, &device);
    }
}

/// Programmatic dependent launch: every configuration, back to back on the same plan and
/// into a second layer, without a host copy between. On the simulator a read of the
/// previous launch's output, or a write to what it used, before the kernel's
/// griddepcontrol.wait fails the launch; on a GPU the launches overlap for real.
#[test]
fn gemm_w4a16_programmatic_launches_back_to_back() {
    let test = "gemm_w4a16_programmatic";
    let mut rng = rng(test);
    for device in devices_where(test, runs_programmatic) {
        let first = random_int4(&mut rng, 256, 256, 64, true, false);
        let second = random_int4(&mut rng, 256, 256, 128, false, false);
        check_programmatic_chains(test, &device, &mut rng, &first, &second);
        // Act-order: the permutation of A is launched programmatically too, and rewrites
        // the scratch copy the previous GEMM read.
        let first = random_int4(&mut rng, 256, 256, 128, false, true);
        let second = random_int4(&mut rng, 192, 256, 32, true, true);
        let m = PROGRAMMATIC_CHAIN_M;
        check_programmatic_chain(test, &device, &mut rng, &first, &second, m, WeightOnlyConfig::Gemv);
        // A partial last K tile (K = 224: three 64-deep tiles and half of one) in the
        // first layer, where the prologue's L2 prefetch must stop at K; N = 192 leaves a
        // 256-wide tile's fourth strip outside N. The TMA-fed configurations refuse it.
        let first = random_int4(&mut rng, 192, 224, 32, true, false);
        let second = random_int4(&mut rng, 256, 192, 64, false, false);
        for config in WeightOnlyConfig::ALL.into_iter().filter(|c| !c.fed_by_tma()) {
            if config.uses_wgmma() && !runs_wgmma(test, &device) {
                continue;
            }
            for m in [1, PROGRAMMATIC_CHAIN_M, 40] {
                check_programmatic_chain(test, &device, &mut rng, &first, &second, m, config);
            }
        }
        ran(test, &device);
    }
}

#[test]
fn gemm_w4a16_decode_uses_gemv_and_splits_k_over_the_sms() {
    let Some(device) = sim_only("gemm_w4a16_decode") else { return };
    let mut rng = rng("gemm_w4a16_decode");
    let weights = random_int4(&mut rng, 256, 1024, 128, false, false);
    let w = DevicePackedWeights::upload(&device, &pack_weight_only(&weights).unwrap()).unwrap();
    for m in 1..=8 {
        let plan = GemmWeightOnlyPlan::new(&device, &w, m).unwrap();
        assert_eq!(plan.config(), WeightOnlyConfig::Gemv, "M={m}");
        // One 256-wide N tile cannot fill the SMs: K must be split.
        assert!(plan.splits() > 1, "M={m}: expected split-K, got {}", plan.describe());
    }
    assert_eq!(GemmWeightOnlyPlan::new(&device, &w, 9).unwrap().config(), WeightOnlyConfig::Small);
    assert_eq!(GemmWeightOnlyPlan::new(&device, &w, 64).unwrap().config(), WeightOnlyConfig::Medium);
    // M > 64 goes to the wgmma kernel on the simulated H100 (the mma.sync `Large` on
    // other GPUs): gemm_w4a16_large_m_on_hopper_uses_wgmma_and_splits_k_when_tiles_are_few.
    assert_eq!(GemmWeightOnlyPlan::new(&device, &w, 65).unwrap().config(), WeightOnlyConfig::LargeWgmma);
}

#[test]
fn gemm_w4a16_large_configs_every_group_scheme_and_act_order() {
    let test = "gemm_w4a16_large_groups";
    let mut rng = rng(test);
    for device in devices(test) {
        let configs = large_configs(test, &device);
        // N = 576: two full 256-column tiles and one with 64 of its columns inside N
        // (its other strips zero-filled); K as in the group test (partial stages).
        for (group, k) in [(32usize, 160usize), (64, 192), (128, 384), (144, 144)] {
            for asymmetric in [false, true] {
                for act_order in [false, true] {
                    if act_order && group == k {
                        continue;
                    }
                    let weights = random_int4(&mut rng, 576, k, group, asymmetric, act_order);
                    let label = format!("{test} asym={asymmetric} act_order={act_order}");
                    // The largest M once per group size: the simulator's cost grows with M.
                    let ms = if asymmetric && !act_order { &LARGE_M_SWEEP[..] } else { &LARGE_M_SWEEP[..2] };
                    check_large_configs(&label, &device, &mut rng, &weights, &configs, ms);
                }
            }
        }
        ran(test, &device);
    }
}

// The TMA-fed wgmma kernels on the shapes they take (N a multiple of their tile width,
// 256 or 128, and K of 64): every group size, symmetric and asymmetric, act-order; M with
// a partial row tile (rows past M arrive as zeros from the tensor copy) and, for the
// 128-row tile, more than one; automatic and 3 splits.
#[test]
fn gemm_w4a16_large_wgmma_tma_every_group_scheme_and_act_order() {
    let test = "gemm_w4a16_wgmma_tma";
    let mut rng = rng(test);
    for device in devices_where(test, runs_wgmma) {
        for (group, k) in [(32usize, 192usize), (64, 256), (128, 384), (192, 192)] {
            for asymmetric in [false, true] {
                for act_order in [false, true] {
                    if act_order && group == k {
                        continue;
                    }
                    let weights = random_int4(&mut rng, 512, k, group, asymmetric, act_order);
                    let label = format!("{test} g={group} asym={asymmetric} act_order={act_order}");
                    let ms = if asymmetric && !act_order { &LARGE_M_SWEEP[..] } else { &LARGE_M_SWEEP[1..2] };
                    check_tma_config(&label, &device, &mut rng, &weights, ms);
                }
            }
        }
        ran(test, &device);
    }
}

// The 256-row tiles at M the 128-row sweeps do not reach (N256_ROW_TILE_MS): cp.async-fed
// on N = 192 (a partial 128-column tile) and K = 224 (a partial stage), groups of 32,
// asymmetric; TMA-fed on N = 384, groups of 64, asymmetric, act-order.
#[test]
fn gemm_w4a16_large_wgmma_n256_partial_and_whole_row_tiles() {
    let test = "gemm_w4a16_wgmma_n256_rows";
    let mut rng = rng(test);
    for device in devices_where(test, runs_wgmma) {
        for (config, n, k, group, act_order) in [
            (WeightOnlyConfig::LargeWgmmaN256, 192, 224, 32, false),
            (WeightOnlyConfig::LargeWgmmaN256Tma, 384, 256, 64, true),
        ] {
            let weights = random_int4(&mut rng, n, k, group, true, act_order);
            check_large_configs(test, &device, &mut rng, &weights, &[config], &N256_ROW_TILE_MS);
        }
        ran(test, &device);
    }
}

// The TMA-fed kernel's producer warpgroup gives its registers to the consumers with
// setmaxnreg (PTX ISA "setmaxnreg", sm_90a): `.dec` returns registers to the block's
// pool and `.inc` blocks until the pool can supply the new count. The pool is what the
// block was launched with: ptxas's register count for every warp, allocated in units of
// 256 per warp. Should a change to the kernel let ptxas start it with fewer registers
// than the hand-off hands out, the consumers would wait forever on a GPU. The simulator
// models the pool when it runs the kernel (ptxsim's PoolExhausted hazard, with the count
// the sim backend passes); this states the budget without running anything, from the
// counts ptxas reported. `.inc` may also not lower a warp's count, nor `.dec` raise it.
#[test]
fn gemm_weight_only_large_wgmma_tma_register_hand_off_fits_its_launch_registers() {
    use qkernels::abi::{
        QK_WARP_THREADS, QK_WO_WGMMA_TMA_CONSUMER_REGS, QK_WO_WGMMA_TMA_PRODUCER_REGS, QK_WO_WGMMA_TMA_PRODUCER_WARPS,
    };
    for (bits, config) in
        [WeightBits::Int4, WeightBits::Int8].into_iter().flat_map(|b| tma_configs().map(move |c| (b, c)))
    {
        let kernel = config.kernel(bits);
        let Some(launch) = qkernels::kernels::resources_of(kernel.name).find(|r| r.arch == "sm_90a") else {
            eprintln!("skipped: {} has no sm_90a build (QK_CUDA_ARCHS)", kernel.name);
            continue;
        };
        let warps = config.shape(bits).threads / QK_WARP_THREADS;
        let consumer_warps = warps - QK_WO_WGMMA_TMA_PRODUCER_WARPS;
        let pool = warps * common::warp_registers(launch.registers);
        let handed_out = QK_WO_WGMMA_TMA_PRODUCER_WARPS * common::warp_registers(QK_WO_WGMMA_TMA_PRODUCER_REGS)
            + consumer_warps * common::warp_registers(QK_WO_WGMMA_TMA_CONSUMER_REGS);
        assert!(
            handed_out <= pool,
            "{}: {warps} warps launched with {} registers each hold {pool}; the hand-off needs {handed_out}",
            kernel.name,
            launch.registers
        );
        let (producer, consumer, at_launch) =
            (QK_WO_WGMMA_TMA_PRODUCER_REGS, QK_WO_WGMMA_TMA_CONSUMER_REGS, launch.registers);
        assert!(producer <= at_launch, "{}: setmaxnreg.dec to {producer} above the launch's {at_launch}", kernel.name);
        assert!(consumer >= at_launch, "{}: setmaxnreg.inc to {consumer} below the launch's {at_launch}", kernel.name);
    }
}

#[test]
fn gemm_w4a16_large_m_on_hopper_uses_wgmma_and_splits_k_when_tiles_are_few() {
    // The simulator models an H100 (132 SMs, compute capability 9.0). Only plans are
    // made here, so the weights may be wide: N = 4096 is 16 tiles of 256 columns.
    let Some(device) = sim_only("gemm_w4a16_wgmma_choice") else { return };
    let mut rng = rng("gemm_w4a16_wgmma_choice");
    let weights = random_int4(&mut rng, 4096, 4096, 128, false, false);
    let w = DevicePackedWeights::upload(&device, &pack_weight_only(&weights).unwrap()).unwrap();
    assert_eq!(GemmWeightOnlyPlan::new(&device, &w, 64).unwrap().config(), WeightOnlyConfig::Medium);
    // 1 x 16 tiles of 128 x 256 leave most SMs idle: K is split.
    let plan = GemmWeightOnlyPlan::new(&device, &w, 65).unwrap();
    assert_eq!(plan.config(), WeightOnlyConfig::LargeWgmma, "{}", plan.describe());
    assert!(plan.splits() > 1, "{}", plan.describe());
    // 32 x 16 tiles fill the SMs several times: one split.
    let plan = GemmWeightOnlyPlan::new(&device, &w, 4096).unwrap();
    assert_eq!(plan.config(), WeightOnlyConfig::LargeWgmma, "{}", plan.describe());
    assert_eq!(plan.splits(), 1, "{}", plan.describe());
}

#[test]
fn gemm_w4a16_large_wgmma_reuses_every_stage_and_splits_per_channel() {
    // One split over K = 768 (12 tiles) cycles the 5 stages twice: cp.async stages are
    // refilled two tiles behind their wgmma readers, and the TMA-fed producer waits on
    // each stage's "empty" barrier and the consumers on "full" in its second phase, which
    // only a long split exercises (on a GPU a wrong phase there hangs). And per-channel
    // scales with several splits (each split reloads the one scale row). Every wgmma
    // configuration, the TMA-fed ones on N = 512 (whole tiles), the others on N = 320.
    let test = "gemm_w4a16_wgmma_long_k";
    let mut rng = rng(test);
    for device in devices_where(test, runs_wgmma) {
        for (config, n) in wgmma_configs_with_n() {
            for (group, asymmetric, splits) in [(32usize, true, Some(1)), (128, false, Some(1)), (768, true, Some(3))] {
                let weights = random_int4(&mut rng, n, 768, group, asymmetric, false);
                let label = format!("{test} {config:?} asym={asymmetric} splits={splits:?}");
                check_config_at(&label, &device, &mut rng, &weights, config, splits, &[100]);
            }
        }
        ran(test, &device);
    }
}

#[test]
fn gemm_w4a16_plans_mma_sync_large_off_hopper() {
    // The simulator is an H100; the choice for other GPUs is a function of the compute
    // capability alone.
    for cc in [(8, 0), (8, 6), (8, 9)] {
        assert_eq!(WeightOnlyConfig::for_capability(cc, 65), WeightOnlyConfig::Large, "{cc:?}");
        assert_eq!(WeightOnlyConfig::for_capability(cc, 4096), WeightOnlyConfig::Large, "{cc:?}");
        assert!(!WeightOnlyConfig::LargeWgmma.runs_on(cc));
    }
    assert_eq!(WeightOnlyConfig::for_capability((9, 0), 65), WeightOnlyConfig::LargeWgmma);
    assert_eq!(WeightOnlyConfig::for_capability((9, 0), 64), WeightOnlyConfig::Medium);
    assert!(!WeightOnlyConfig::Large.runs_on((7, 5)));
}

/// Budget of the wgmma kernel at large M, warp instructions per 1024 multiply-adds
/// (measured 1.206 with nvcc 13.0.88 at M = 256, N = 1024, K = 1024, g128: two warps per
/// strip halve the dequantization per multiply-add; 1.225 before the copies were planned
/// per strip and group slot, 1.250 before the group rows' copy plan; 1.78 with one warp
/// per strip and 64-row tiles; the mma.sync large configuration executes 2.14).
const W4_WGMMA_INSTRUCTIONS_PER_KMAC: f64 = 1.3;

/// Budget of the 256 x 128 wgmma tile at large M (measured 1.064 with nvcc 13.0.88 on the
/// same layer: four warps per strip, one wgmma.m64n256k16 per warpgroup and k-step, so
/// half the f16x2 dequantization per multiply-add (8 instead of 16 per warp and k-step,
/// plus 3 selects of the lane's word), but twice the A copies per block and stage).
const W4_WGMMA_N256_INSTRUCTIONS_PER_KMAC: f64 = 1.15;

#[test]
fn gemm_w4a16_large_wgmma_stays_within_its_instruction_budget() {
    let mut rng = rng("gemm_w4a16_wgmma_budget");
    let weights = random_int4(&mut rng, 1024, 1024, 128, false, false);
    for (config, budget) in [
        (WeightOnlyConfig::LargeWgmma, W4_WGMMA_INSTRUCTIONS_PER_KMAC),
        (WeightOnlyConfig::LargeWgmmaN256, W4_WGMMA_N256_INSTRUCTIONS_PER_KMAC),
    ] {
        // The TMA-fed configurations have no budget here: their consumers' mbarrier waits
        // retry try_wait in a loop, and how often depends on the simulator's warp schedule
        // (16.3 per 1024 multiply-adds for LargeWgmmaTma, mostly branches and waits), not
        // on the hardware, where try_wait suspends the thread for a time before it fails.
        check_large_m_instruction_budget(&format!("gemm_w4a16 {config:?} g128 sym"), &weights, 256, config, budget);
    }
}

/// Budget of the 4-bit decode kernel, warp instructions per weight byte (measured 0.1675
/// with nvcc 13.0.88: per 16-byte lane chunk 4 shifts, 16 lop3, 16 sub/fma and 16
/// scale multiplies for 32 weights, 8 mma, and little else; 0.172 while each copy pass
/// took a strip of its own and each group slot its own copy code, 0.185 while every
/// warp computed the group rows' copy addresses each stage (GroupRowCopy), 0.30 before
/// the copy plans).
const W4_DECODE_INSTRUCTIONS_PER_BYTE: f64 = 0.175;
/// Budget of the 4-bit gemv_swap_ab kernel (measured 0.156 with nvcc 13.0.88: 4 of
/// gemv's 8 mma and 1 of its 2 ldmatrix per lane chunk, half its A copies).
const W4_SWAP_AB_DECODE_INSTRUCTIONS_PER_BYTE: f64 = 0.16;
/// Budget of the 4-bit gemv_direct kernel (measured 0.181 with nvcc 13.0.88: no stage
/// copies, waits or barriers, but per k-step three predicated loads, two 64-bit address
/// increments and the ring's bounds and group tests. The PTX count overstates it: each
/// predicated load is a setp, zero moves and the load in PTX, which ptxas folds into a
/// predicated LDG; in its sm_90a SASS a k-step is ~20 instructions besides the
/// dequantization and mma, against ~25 for gemv_swap_ab's share of a stage).
const W4_DIRECT_DECODE_INSTRUCTIONS_PER_BYTE: f64 = 0.19;

#[test]
fn gemm_w4a16_decode_stays_within_its_instruction_budget() {
    let mut rng = rng("gemm_w4a16_decode_budget");
    let weights = random_int4(&mut rng, 256, 2048, 128, false, false);
    check_decode_instruction_budget(
        "gemm_w4a16 g128 sym",
        &weights,
        WeightOnlyConfig::Gemv,
        W4_DECODE_INSTRUCTIONS_PER_BYTE,
    );
    check_decode_instruction_budget(
        "gemm_w4a16 g128 sym gemv_swap_ab",
        &weights,
        WeightOnlyConfig::GemvSwapAb,
        W4_SWAP_AB_DECODE_INSTRUCTIONS_PER_BYTE,
    );
    check_decode_instruction_budget(
        "gemm_w4a16 g128 sym gemv_direct",
        &weights,
        WeightOnlyConfig::GemvDirect,
        W4_DIRECT_DECODE_INSTRUCTIONS_PER_BYTE,
    );
}

/// Budgets of the main loops the planner picks, in static SASS instructions (one trip:
/// a 64-deep K tile; measured with nvcc 13.0.88): the 4-bit decode kernel (4096 weights
/// per warp and trip; 395 on sm_90a and 392 on sm_80, 416 and 414 while every warp paid
/// for the group-row copies of both slots, if-converted, and a strip stride per weight
/// pass) and the sm_90a wgmma kernel at large M (293, was 301). A change that makes
/// ptxas predicate a skipped path, or rebuild a planned address every trip, shows here
/// even where the PTX count hardly moves.
const W4_MAIN_LOOP_SASS_BUDGETS: [SassBudget; 3] = [
    ("gemm_w4a16", "qk_gemm_w4a16_gemv", "sm_90a", 400),
    ("gemm_w4a16", "qk_gemm_w4a16_gemv", "sm_80", 400),
    ("gemm_w4a16_sm90a", "qk_gemm_w4a16_large_wgmma", "sm_90a", 300),
];

#[test]
fn gemm_w4a16_main_loops_stay_within_their_sass_budgets() {
    check_main_loop_sass_budgets("gemm_w4a16_main_loop_sass", &W4_MAIN_LOOP_SASS_BUDGETS);
}

// The decode configurations with the operands swapped (weights as the mma's A operand,
// A's 8-row tile as its n8), fed through shared memory (gemv_swap_ab) or straight from
// global memory (gemv_direct), at every decode M: every group size, symmetric and
// asymmetric, act-order; N = 192 (not a multiple of the 256-column tile: a block with a
// warp past N) and K not a multiple of the stage where the group allows; automatic and
// forced splits (but per-channel), some starting inside a group.
#[test]
fn gemm_w4a16_gemv_swap_ab_and_direct_every_group_scheme_and_act_order() {
    let test = "gemm_w4a16_swap_ab_direct";
    let mut rng = rng(test);
    for device in devices(test) {
        for (group, k) in [(32usize, 160usize), (64, 192), (128, 384), (144, 144)] {
            for asymmetric in [false, true] {
                for act_order in [false, true] {
                    if act_order && group == k {
                        continue;
                    }
                    let weights = random_int4(&mut rng, 192, k, group, asymmetric, act_order);
                    // Forced splits of a per-channel K re-read its one scale row per split,
                    // past the traffic limit on a K this short: only the planner's count.
                    // Groups of 128 (two K tiles each) split 6 ways start every other split
                    // inside a group, where the split's first k-step must load it.
                    let forced = match group {
                        _ if group == k => None,
                        128 => Some(6),
                        _ => Some(3),
                    };
                    for config in [WeightOnlyConfig::GemvSwapAb, WeightOnlyConfig::GemvDirect] {
                        for splits in [None, forced] {
                            let label =
                                format!("{test} {config:?} asym={asymmetric} act_order={act_order} splits={splits:?}");
                            check_config_at(&label, &device, &mut rng, &weights, config, splits, &DECODE_M_SWEEP);
                        }
                    }
                }
            }
        }
        ran(test, &device);
    }
}

// The untimed configurations on random shapes (weights symmetric or asymmetric, with or
// without act-order), beside the structured sweep above.
#[test]
fn gemm_w4a16_explicit_only_configurations_on_random_shapes() {
    let test = "gemm_w4a16_random_shapes";
    let mut rng = rng(test);
    for device in devices(test) {
        check_random_shapes(test, &device, &mut rng, |rng, n, k, group| {
            let asymmetric = rng.random_bool(0.5);
            let act_order = group < k && rng.random_bool(0.3);
            random_int4(rng, n, k, group, asymmetric, act_order)
        });
        ran(test, &device);
    }
}

#[test]
fn gemm_w4a16_layout_rejects_shapes_it_cannot_hold() {
    let mut rng = rng("gemm_w4a16_reject");
    // N not a multiple of 64.
    let w = random_int4(&mut rng, 96, 64, 32, false, false);
    assert!(matches!(pack_weight_only(&w), Err(WeightOnlyError::NotMultiple { arg: "N", multiple: 64, .. })));
    // K not a multiple of 16 (per-channel, K = 40).
    let w = random_int4(&mut rng, 64, 40, 40, false, false);
    assert!(matches!(pack_weight_only(&w), Err(WeightOnlyError::NotMultiple { arg: "K", multiple: 16, .. })));
    // Unsupported group sizes: 48, and 64 not dividing K = 96.
    let err = WeightOnlyShape::new(WeightBits::Int4, 64, 96, 48);
    assert!(matches!(err, Err(WeightOnlyError::UnsupportedGroup { group: 48, .. })));
    let err = WeightOnlyShape::new(WeightBits::Int4, 64, 96, 64);
    assert!(matches!(err, Err(WeightOnlyError::UnsupportedGroup { group: 64, k: 96 })));
    // Codes out of range.
    let shape = WeightOnlyShape::new(WeightBits::Int4, 64, 32, 32).unwrap();
    let err = WeightOnlyWeights::new(shape, vec![16; 64 * 32], vec![f16::ONE; 64], None, None);
    assert!(matches!(err, Err(WeightOnlyError::ValueOutOfRange { arg: "codes", .. })));
}

// The host-slice entry point checks M before computing A's length from it: an M whose
// M x K overflows is a typed error (it was a debug-build overflow panic), as is M = 0.
#[test]
fn gemm_w4a16_host_rejects_m_it_cannot_hold() {
    let mut rng = rng("gemm_w4a16_host_m");
    let packed = pack_weight_only(&random_int4(&mut rng, 64, 64, 32, false, false)).unwrap();
    let device = Device::sim();
    for m in [usize::MAX / 4, usize::MAX] {
        let r = gemm_weight_only_host(&device, &[], &packed, None, m);
        assert!(matches!(r, Err(QkError::InvalidArgument { arg: "m", .. })), "M = {m}: {r:?}");
    }
    let r = gemm_weight_only_host(&device, &[], &packed, None, 0);
    assert!(matches!(r, Err(QkError::InvalidArgument { .. })), "M = 0: {r:?}");
}

/// `c` in `a`'s buffer (K = N, so both hold M x N f16) is refused before launch: every
/// block reads its rows of A across K while other blocks write C. `c` in the bias's
/// buffer (M = 1) is allowed and runs in place: in every configuration a column's bias
/// is read by the block that then writes the column, so the result is bit for bit the
/// out-of-place one.
#[test]
fn gemm_w4a16_refuses_c_in_a_and_runs_in_place_over_the_bias() {
    let test = "gemm_w4a16_alias";
    let mut rng = rng(test);
    let (n, k) = (256, 256);
    let weights = pack_weight_only(&random_int4(&mut rng, n, k, 64, true, false)).unwrap();
    let a_host: Vec<f16> = (0..k).map(|_| f16::from_f32(rng.random_range(-1.0..1.0))).collect();
    let bias_host: Vec<f16> = (0..n).map(|_| f16::from_f32(rng.random_range(-1.0..1.0))).collect();
    for device in devices(test) {
        let w = DevicePackedWeights::upload(&device, &weights).unwrap();
        let a = device.upload(&a_host).unwrap();
        let r = GemmWeightOnlyPlan::new(&device, &w, 1).unwrap().run(&a, &w, None, &a);
        assert!(matches!(r, Err(QkError::InvalidArgument { arg: "c", .. })), "c = a: {r:?}");
        let wgmma = runs_wgmma(test, &device);
        let configs = WeightOnlyConfig::ALL.into_iter().filter(|c| (wgmma || !c.uses_wgmma()) && c.takes(w.shape()));
        for (config, splits) in configs.flat_map(|c| [(c, None), (c, Some(2))]) {
            let plan = GemmWeightOnlyPlan::with_config(&device, &w, 1, config, splits).unwrap();
            let bias = device.upload(&bias_host).unwrap();
            // NaN poison: every element of the out-of-place result must be written.
            let c = device.upload(&vec![f16::NAN; n]).unwrap();
            plan.run(&a, &w, Some(&bias), &c).unwrap();
            plan.run(&a, &w, Some(&bias), &bias).unwrap();
            let (out_of_place, in_place) = (device.download(&c).unwrap(), device.download(&bias).unwrap());
            assert!(
                out_of_place.iter().all(|v| !v.is_nan()),
                "{config:?} splits {splits:?}: an element was not written"
            );
            let same = out_of_place.iter().zip(&in_place).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{config:?} splits {splits:?}: in place over the bias differs");
        }
        ran(test, &device);
    }
}

/// The shared-memory sizes the host launches with (qk_abi.h's `QK_WO_*_SMEM_BYTES`, which
/// the kernels static_assert against their tile layout) recomputed here from the stage
/// layout the header documents, so a pairing mistake on the Rust side (one
/// configuration's bytes under another) fails too; and each fits the opt-in limit of the
/// GPUs it runs on.
/// The shapes each configuration takes (`WeightOnlyConfig::takes`, which the planner
/// and the configuration sweeps use): all of them for the cp.async and register feeds;
/// for the TMA-fed ones whole tiles of N (256 columns for large_wgmma_tma, 128 for the
/// n256 one) and whole 64-deep K tiles, since bulk copies cannot zero-fill.
#[test]
fn tma_fed_configurations_take_whole_tiles_only() {
    let shape = |n, k, group| WeightOnlyShape::new(WeightBits::Int4, n, k, group).unwrap();
    for config in WeightOnlyConfig::ALL.into_iter().filter(|c| !c.fed_by_tma()) {
        assert!(config.takes(shape(192, 208, 208)), "{config:?}");
    }
    for (n, k, tma, n256_tma) in [(512, 256, true, true), (384, 256, false, true), (512, 208, false, false)] {
        assert_eq!(WeightOnlyConfig::LargeWgmmaTma.takes(shape(n, k, k)), tma, "N={n} K={k}");
        assert_eq!(WeightOnlyConfig::LargeWgmmaN256Tma.takes(shape(n, k, k)), n256_tma, "N={n} K={k}");
    }
}

#[test]
fn tile_shapes_match_the_documented_stage_layout() {
    const A_ROW_BYTES: u32 = 64 * 2; // one 64-deep K tile of f16
    const UNITS_PER_STRIP: u32 = 4; // 16-deep k-steps per stage
    const GROUP_SLOTS: u32 = 2;
    const WGMMA_ALIGN: u32 = 1024;
    const SM86_OPT_IN_BYTES: u32 = 99 * 1024;
    const SM90_OPT_IN_BYTES: u32 = 227 * 1024;
    for bits in [WeightBits::Int4, WeightBits::Int8] {
        for config in WeightOnlyConfig::ALL {
            let s = config.shape(bits);
            let unit_bytes = 64 * 16 * bits.bits() as u32 / 8;
            let stage = s.block_m * A_ROW_BYTES
                + (s.block_n / 64) * UNITS_PER_STRIP * unit_bytes
                + GROUP_SLOTS * s.block_n * 2
                + GROUP_SLOTS * s.block_n / 2;
            if config == WeightOnlyConfig::GemvDirect {
                // No dynamic shared memory: its one static C tile is ptxas's to count.
                assert_eq!(s.shared_bytes, 0, "{config:?} {bits:?}: {s:?}");
                continue;
            }
            let (want, limit) = if config.uses_wgmma() {
                (s.stages * stage.next_multiple_of(WGMMA_ALIGN) + WGMMA_ALIGN, SM90_OPT_IN_BYTES)
            } else {
                (s.stages * stage, SM86_OPT_IN_BYTES)
            };
            assert_eq!(s.shared_bytes, want, "{config:?} {bits:?}: {s:?}");
            assert!(s.shared_bytes <= limit, "{config:?} {bits:?}: {} > {limit}", s.shared_bytes);
        }
    }
}
