//! Shared checks of the weight-only GEMM tests (`gemm_w4a16`, `gemm_w8a16`): the f64
//! reference comparison with the f32-accumulation tolerance, the simulator's traffic
//! and bank-conflict assertions, and the M and configuration sweeps both widths run. The
//! tolerance is `qkernels::reference::weight_only_tolerance`.
#![allow(dead_code)] // each test binary uses a different subset of the helpers

use crate::common::{assert_c_within, sim_only, POISON_F16_BITS};
use half::f16;
use qkernels::formats::{pack_weight_only, WeightBits, WeightOnlyWeights};
use qkernels::ops::{DevicePackedWeights, GemmWeightOnlyPlan, WeightOnlyConfig};
use qkernels::reference::{gemm_weight_only_reference, weight_only_tolerance};
use qkernels::{BackendKind, Device, LaunchOrder};
use rand::rngs::StdRng;
use rand::Rng;

/// Allowed weight + scale + zero traffic at M ≤ 16, as a multiple of their size.
pub const SMALL_M_WEIGHT_TRAFFIC_LIMIT: f64 = 1.05;
/// Every M the tests sweep: each configuration, its boundaries and partial M tiles.
pub const M_SWEEP: [usize; 9] = [1, 2, 5, 8, 9, 16, 33, 100, 257];
/// M of the decode configurations' sweeps: the M of [`M_SWEEP`] up to 8 (`gemv` is
/// chosen for M <= 8, and the explicit `gemv_swap_ab` and `gemv_direct` are meant for it).
pub const DECODE_M_SWEEP: [usize; 4] = [1, 2, 5, 8];
/// M up to which the weights must be streamed exactly once.
pub const STREAMING_MAX_M: usize = 16;

/// Random activations in ±4 (never all zero).
pub fn random_a(rng: &mut StdRng, m: usize, k: usize) -> Vec<f16> {
    (0..m * k).map(|_| f16::from_f32(rng.random_range(-4.0f32..4.0))).collect()
}

/// A random bias in ±2.
pub fn random_bias(rng: &mut StdRng, n: usize) -> Vec<f16> {
    (0..n).map(|_| f16::from_f32(rng.random_range(-2.0f32..2.0))).collect()
}

/// Runs `weights` for `a` through `plan` on `device` and checks the result, the traffic
/// and the bank conflicts.
pub fn check(
    label: &str,
    device: &Device,
    weights: &WeightOnlyWeights,
    a: &[f16],
    bias: Option<&[f16]>,
    m: usize,
    plan_with: impl Fn(&DevicePackedWeights) -> GemmWeightOnlyPlan,
) {
    let (n, k) = (weights.shape().n(), weights.shape().k());
    let packed = pack_weight_only(weights).unwrap();
    let w = DevicePackedWeights::upload(device, &packed).unwrap();
    let plan = plan_with(&w);
    let a_dev = device.upload(a).unwrap();
    let bias_dev = bias.map(|b| device.upload(b).unwrap());
    let c = device.alloc::<f16>(m * n).unwrap();
    device.fill(&c, f16::from_bits(POISON_F16_BITS)).unwrap();
    plan.run(&a_dev, &w, bias_dev.as_ref(), &c).unwrap();
    let got = device.download(&c).unwrap();
    let (want, magnitude) = gemm_weight_only_reference(a, &weights.dequantize(), bias, m, n, k).unwrap();
    let label = format!("{label} M={m} N={n} K={k} group={} {}", weights.shape().group(), plan.describe());
    assert_c_within(&label, &got, &want, n, |i| weight_only_tolerance(want[i].to_f64(), magnitude[i], k));
    if device.kind() == BackendKind::Sim {
        let report = device.last_sim_report().expect("the simulator reports every launch");
        assert_eq!(report.shared_bank_conflicts, 0, "{label}: bank conflicts\n{report}");
        // Only a programmatic launch prefetches its first weights into L2.
        assert_eq!(report.l2_prefetch_bytes, 0, "{label}: an ordinary launch prefetched\n{report}");
        if m <= STREAMING_MAX_M {
            let traffic = |addr: u64| report.per_alloc.get(&addr).map_or(0, |t| t.load_bytes);
            let mut read = traffic(w.words().device_addr()) + traffic(w.scales().device_addr());
            let mut size = w.words().size_bytes() + w.scales().size_bytes();
            if let Some(z) = w.zeros() {
                read += traffic(z.device_addr());
                size += z.size_bytes();
            }
            assert!(
                read as f64 <= SMALL_M_WEIGHT_TRAFFIC_LIMIT * size as f64,
                "{label}: read {read} weight/scale/zero bytes for {size} (limit {SMALL_M_WEIGHT_TRAFFIC_LIMIT}x)"
            );
            assert!(read >= size as u64, "{label}: read only {read} of {size} weight/scale/zero bytes");
        }
    }
}

/// Checks `weights` at every M of [`M_SWEEP`] with the configuration and split-K factor
/// the plan picks; with `bias_at_odd_m`, odd M also get a random bias.
pub fn check_every_m(label: &str, device: &Device, rng: &mut StdRng, weights: &WeightOnlyWeights, bias_at_odd_m: bool) {
    for &m in &M_SWEEP {
        let a = random_a(rng, m, weights.shape().k());
        // Drawn at every M (then dropped at even M) so the draws do not depend on M.
        let bias = bias_at_odd_m.then(|| random_bias(rng, weights.shape().n())).filter(|_| m % 2 == 1);
        check(label, device, weights, &a, bias.as_deref(), m, |w| GemmWeightOnlyPlan::new(device, w, m).unwrap());
    }
}

/// M of the large configurations' sweeps (128-row tiles): one partial tile, a partial
/// tile past the 64-row boundary, and several tiles with a partial last one.
pub const LARGE_M_SWEEP: [usize; 3] = [33, 100, 257];
/// M for the 256-row wgmma tiles (large_wgmma_n256 and its TMA feed) that LARGE_M_SWEEP
/// does not reach: one tile with more than 128 real rows (200: the TMA box 56 rows short
/// of the tile) and two whole tiles (512: no zero fill, grid y = 2).
pub const N256_ROW_TILE_MS: [usize; 2] = [200, 512];

/// Whether `device` runs [`WeightOnlyConfig::LargeWgmma`] (compute capability 9.0; the
/// simulator models an H100); prints and records the skip otherwise.
pub fn runs_wgmma(test: &str, device: &Device) -> bool {
    let cc = device.properties().compute_capability;
    if cc == (9, 0) {
        return true;
    }
    crate::common::skipped(
        test,
        device,
        &format!("LargeWgmma needs compute capability 9.0, device is {}.{}", cc.0, cc.1),
    );
    false
}

/// The large-M configurations `device` runs: mma.sync `Large`, and `LargeWgmma` and
/// `LargeWgmmaN256` where the device runs them (the skip is recorded for `test`
/// otherwise). Call once per test.
pub fn large_configs(test: &str, device: &Device) -> Vec<WeightOnlyConfig> {
    let mut configs = vec![WeightOnlyConfig::Large];
    if runs_wgmma(test, device) {
        configs.extend(wgmma_configs().filter(|c| !c.fed_by_tma()));
    }
    configs
}

/// The wgmma configurations ([`WeightOnlyConfig::uses_wgmma`]).
pub fn wgmma_configs() -> impl Iterator<Item = WeightOnlyConfig> {
    WeightOnlyConfig::ALL.into_iter().filter(|c| c.uses_wgmma())
}

/// Each wgmma configuration with an N it takes: 512 (whole 256- and 128-column tiles)
/// for the TMA-fed ones, 320 (a partial last tile) for the others.
pub fn wgmma_configs_with_n() -> impl Iterator<Item = (WeightOnlyConfig, usize)> {
    wgmma_configs().map(|c| (c, if c.fed_by_tma() { 512 } else { 320 }))
}

/// Checks `weights` with each of `configs` at every M of `ms`, automatic split-K, each
/// with a random bias.
pub fn check_large_configs(
    label: &str,
    device: &Device,
    rng: &mut StdRng,
    weights: &WeightOnlyWeights,
    configs: &[WeightOnlyConfig],
    ms: &[usize],
) {
    for &config in configs {
        check_config_at(&format!("{label} {config:?}"), device, rng, weights, config, None, ms);
    }
}

/// Checks `weights` with `config` and `splits` (None: automatic) at every M of `ms`,
/// each with a random bias.
pub fn check_config_at(
    label: &str,
    device: &Device,
    rng: &mut StdRng,
    weights: &WeightOnlyWeights,
    config: WeightOnlyConfig,
    splits: Option<usize>,
    ms: &[usize],
) {
    for &m in ms {
        let a = random_a(rng, m, weights.shape().k());
        let bias = random_bias(rng, weights.shape().n());
        check(label, device, weights, &a, Some(&bias), m, |w| {
            GemmWeightOnlyPlan::with_config(device, w, m, config, splits).unwrap()
        });
    }
}

/// The configurations fed by the copy engine ([`WeightOnlyConfig::fed_by_tma`]).
pub fn tma_configs() -> impl Iterator<Item = WeightOnlyConfig> {
    WeightOnlyConfig::ALL.into_iter().filter(|c| c.fed_by_tma())
}

/// Checks `weights` on each TMA-fed configuration at every M of `ms`, with the automatic
/// split count and with 3 splits.
pub fn check_tma_config(label: &str, device: &Device, rng: &mut StdRng, weights: &WeightOnlyWeights, ms: &[usize]) {
    for config in tma_configs() {
        for splits in [None, Some(3)] {
            check_config_at(&format!("{label} {config:?}"), device, rng, weights, config, splits, ms);
        }
    }
}

/// Checks `weights` at M = 17 on every configuration, each with 1 split, 3 splits and the
/// automatic choice (explicit configurations may run M far below or above their tile).
/// Weights that a TMA-fed configuration cannot take must be refused with a typed error
/// instead.
pub fn check_every_configuration(test: &str, device: &Device, rng: &mut StdRng, weights: &WeightOnlyWeights) {
    for config in WeightOnlyConfig::ALL {
        if config.uses_wgmma() && !runs_wgmma(test, device) {
            continue;
        }
        if !config.takes(weights.shape()) {
            let w = DevicePackedWeights::upload(device, &pack_weight_only(weights).unwrap()).unwrap();
            let err = GemmWeightOnlyPlan::with_config(device, &w, 17, config, None)
                .expect_err("a TMA-fed configuration must refuse N or K off its tile");
            let tile_n = config.shape(weights.shape().bits()).block_n;
            assert!(err.to_string().contains(&format!("multiple of {tile_n}")), "{config:?}: {err}");
            continue;
        }
        for splits in [Some(1), Some(3), None] {
            let m = 17;
            let a = random_a(rng, m, weights.shape().k());
            let label = format!("{test} {config:?}");
            check(&label, device, weights, &a, None, m, |w| {
                GemmWeightOnlyPlan::with_config(device, w, m, config, splits).unwrap()
            });
        }
    }
}

/// Two layers launched back to back with [`LaunchOrder::Programmatic`] (no host copy
/// between them, so each launch may overlap the previous one on a GPU, and the
/// simulator checks each against what the previous launch touched): `first` twice on
/// the same plan (the second run rewrites the C, split-K workspace and tile counters the
/// first one used), then `second` on the first layer's output (its A is the previous
/// grid's C). Both outputs are checked against the f64 reference, the second's on the
/// first's actual output. `second`'s K must equal `first`'s N.
pub fn check_programmatic_chain(
    label: &str,
    device: &Device,
    rng: &mut StdRng,
    first: &WeightOnlyWeights,
    second: &WeightOnlyWeights,
    m: usize,
    config: WeightOnlyConfig,
) {
    let (n1, k1, n2) = (first.shape().n(), first.shape().k(), second.shape().n());
    assert_eq!(second.shape().k(), n1, "{label}: the second layer reads the first one's output");
    const SPLITS: Option<usize> = Some(3); // exercises the fix-up's workspace and counters
    let plan_for = |w: &DevicePackedWeights| {
        GemmWeightOnlyPlan::with_config(device, w, m, config, SPLITS)
            .and_then(|p| p.with_launch_order(LaunchOrder::Programmatic))
            .unwrap()
    };
    let w1 = DevicePackedWeights::upload(device, &pack_weight_only(first).unwrap()).unwrap();
    let w2 = DevicePackedWeights::upload(device, &pack_weight_only(second).unwrap()).unwrap();
    let (plan1, plan2) = (plan_for(&w1), plan_for(&w2));
    let a = random_a(rng, m, k1);
    let a_dev = device.upload(&a).unwrap();
    let c1 = device.alloc::<f16>(m * n1).unwrap();
    let c2 = device.alloc::<f16>(m * n2).unwrap();
    device.fill(&c1, f16::from_bits(POISON_F16_BITS)).unwrap();
    device.fill(&c2, f16::from_bits(POISON_F16_BITS)).unwrap();
    let label = format!("{label} {config:?} M={m} programmatic: {} then {}", plan1.describe(), plan2.describe());
    for (plan, a, w, c) in [(&plan1, &a_dev, &w1, &c1), (&plan1, &a_dev, &w1, &c1), (&plan2, &c1, &w2, &c2)] {
        plan.run(a, w, None, c).unwrap_or_else(|e| panic!("{label}: {e}"));
    }
    if device.kind() == BackendKind::Sim {
        // The cp.async configurations prefetch their prologue's weights (the last launch
        // is the second layer's GEMM), within the weights' size; gemv_direct and the
        // TMA-fed ones do not prefetch.
        let report = device.last_sim_report().expect("the simulator reports every launch");
        let prefetches = config != WeightOnlyConfig::GemvDirect && !config.fed_by_tma();
        let weight_bytes = w2.words().size_bytes() as u64;
        let m_tiles = m.div_ceil(config.shape(second.shape().bits()).block_m as usize) as u64;
        let bytes = report.l2_prefetch_bytes;
        assert!(
            if prefetches { bytes > 0 && bytes <= m_tiles * weight_bytes } else { bytes == 0 },
            "{label}: {bytes} bytes prefetched into L2 ({m_tiles} M tiles of {weight_bytes} weight bytes)\n{report}"
        );
    }
    let got1 = device.download(&c1).unwrap();
    let got2 = device.download(&c2).unwrap();
    let (want1, magnitude1) = gemm_weight_only_reference(&a, &first.dequantize(), None, m, n1, k1).unwrap();
    assert_c_within(&format!("{label}: layer 1"), &got1, &want1, n1, |i| {
        weight_only_tolerance(want1[i].to_f64(), magnitude1[i], k1)
    });
    let (want2, magnitude2) = gemm_weight_only_reference(&got1, &second.dequantize(), None, m, n2, n1).unwrap();
    assert_c_within(&format!("{label}: layer 2"), &got2, &want2, n2, |i| {
        weight_only_tolerance(want2[i].to_f64(), magnitude2[i], n1)
    });
}

/// Whether `device` launches programmatically (compute capability 9.0 with the
/// kernels' sm_90a code; the simulator does); prints and records the skip otherwise.
pub fn runs_programmatic(test: &str, device: &Device) -> bool {
    match device.check_launch_order(LaunchOrder::Programmatic) {
        Ok(()) => true,
        Err(e) => {
            crate::common::skipped(test, device, &e.to_string());
            false
        }
    }
}

/// Rows of A of the programmatic chains: two of gemv_swap_ab's 8-row tiles, one of
/// gemv's 16-row tile.
pub const PROGRAMMATIC_CHAIN_M: usize = 9;

/// [`check_programmatic_chain`] on every configuration `device` runs (N and K of both
/// layers multiples of 256 so that the TMA-fed ones take them too).
pub fn check_programmatic_chains(
    test: &str,
    device: &Device,
    rng: &mut StdRng,
    first: &WeightOnlyWeights,
    second: &WeightOnlyWeights,
) {
    for config in WeightOnlyConfig::ALL {
        if config.uses_wgmma() && !runs_wgmma(test, device) {
            continue;
        }
        check_programmatic_chain(test, device, rng, first, second, PROGRAMMATIC_CHAIN_M, config);
    }
}

/// Bytes an H100 SXM SM must take per SM clock to stream at full HBM3 bandwidth:
/// 3.35 TB/s over 132 SMs at 1.98 GHz.
pub const H100_BYTES_PER_SM_CYCLE: f64 = 12.8;

/// Checks the decode configuration's instruction budget on the simulator: the warp
/// instructions (PTX) one launch at M = 1 executes per byte of packed weights, which
/// at [`H100_BYTES_PER_SM_CYCLE`] is the issue rate an SM needs to stream at full
/// bandwidth (an SM issues at most 4 warp instructions per clock, and far fewer when
/// dependent dequantization and barriers stall its warps). Measured on an H100, the
/// decode kernel that executed 0.30 instructions per 4-bit weight byte (3.8 per SM clock
/// at full bandwidth) streamed at a third of copy bandwidth, as an issue-bound kernel
/// would. `limit_per_byte` is the budget a change must keep; the count is deterministic
/// (pinned nvcc).
pub fn check_decode_instruction_budget(
    label: &str,
    weights: &WeightOnlyWeights,
    config: WeightOnlyConfig,
    limit_per_byte: f64,
) {
    let Some((report, plan, w)) = launch_once_on_sim(label, weights, 1, config) else { return };
    let per_byte = report.warp_instructions as f64 / w.words().size_bytes() as f64;
    println!(
        "{label}: {per_byte:.4} warp instructions per weight byte ({:.1} per SM clock at full H100 bandwidth), limit {limit_per_byte}",
        per_byte * H100_BYTES_PER_SM_CYCLE
    );
    assert!(
        per_byte <= limit_per_byte,
        "{label}: {} executes {per_byte:.3} warp instructions per weight byte, over the budget of {limit_per_byte}\n{report}",
        plan.describe()
    );
}

/// Checks a large-M configuration's instruction budget on the simulator: the warp
/// instructions (PTX) one launch executes per 1024 multiply-adds at `m` rows. At the
/// H100's dense FP16 tensor rate (2048 multiply-adds per SM clock) a kernel needs
/// 2 x this many warp instructions per SM clock to keep the tensor cores busy, of the
/// 4 an SM can issue at best. The count is deterministic (pinned nvcc).
pub fn check_large_m_instruction_budget(
    label: &str,
    weights: &WeightOnlyWeights,
    m: usize,
    config: WeightOnlyConfig,
    limit_per_kmac: f64,
) {
    let Some((report, plan, _)) = launch_once_on_sim(label, weights, m, config) else { return };
    let (n, k) = (weights.shape().n(), weights.shape().k());
    let per_kmac = report.warp_instructions as f64 * 1024.0 / (m * n * k) as f64;
    println!("{label}: {per_kmac:.4} warp instructions per 1024 multiply-adds, limit {limit_per_kmac}");
    assert!(
        per_kmac <= limit_per_kmac,
        "{label}: {} executes {per_kmac:.3} warp instructions per 1024 multiply-adds, over the budget of {limit_per_kmac}\n{report}",
        plan.describe()
    );
}

/// One launch of `weights` with `config` at `m` rows on the simulator, in one split (the
/// count is the main loop's, not the split-K fix-up's): its report, plan and weights;
/// `None` when the run is for the GPU alone ([`sim_only`]).
fn launch_once_on_sim(
    label: &str,
    weights: &WeightOnlyWeights,
    m: usize,
    config: WeightOnlyConfig,
) -> Option<(ptxsim::LaunchReport, GemmWeightOnlyPlan, DevicePackedWeights)> {
    let device = sim_only(label)?;
    let mut rng = crate::common::rng(label);
    let w = DevicePackedWeights::upload(&device, &pack_weight_only(weights).unwrap()).unwrap();
    let plan = GemmWeightOnlyPlan::with_config(&device, &w, m, config, Some(1)).unwrap();
    let a = device.upload(&random_a(&mut rng, m, weights.shape().k())).unwrap();
    let c = device.alloc::<f16>(m * weights.shape().n()).unwrap();
    plan.run(&a, &w, None, &c).unwrap();
    let report = device.last_sim_report().expect("the simulator reports every launch");
    Some((report, plan, w))
}

/// Random draws of [`check_random_shapes`] per test run: each draw is one launch of a
/// small layer (a few ms on the simulator); replay a failure with the seed `rng` printed.
pub const RANDOM_SHAPE_DRAWS: usize = 24;

/// The explicit-only configurations (not yet timed on a GPU, so not chosen automatically)
/// on random shapes, beside the structured sweeps: each draw picks a configuration, a
/// group (32, 64, 128 or per-channel), N and K within what the configuration takes, M
/// within its range (decode: 1..=8; large_wgmma_tma and large_wgmma_n256: 1..300, where
/// the device runs them)
/// and an automatic or forced split count (automatic for per-channel weights, whose
/// forced splits each re-read the scale row, past the traffic limit), then checks it as
/// every test does. `random_weights(rng, n, k, group)` draws the weights (sym/asym and
/// act-order are its choice).
pub fn check_random_shapes(
    test: &str,
    device: &Device,
    rng: &mut StdRng,
    random_weights: impl Fn(&mut StdRng, usize, usize, usize) -> WeightOnlyWeights,
) {
    /// Largest N (in 64-column strips) and K drawn: layers of a few hundred columns and
    /// rows keep a draw to milliseconds on the simulator, and K up to 6 groups of 128 lets
    /// forced splits start inside a group.
    const MAX_N_UNITS: usize = 6;
    /// Largest N of a TMA-fed draw (whole tiles of 256 or 128 columns).
    const MAX_TMA_N: usize = 512;
    const MAX_K: usize = 768;
    const GROUPS: [usize; 4] = [32, 64, 128, 0]; // 0: per-channel (one group of K)
    let mut configs = vec![WeightOnlyConfig::GemvSwapAb, WeightOnlyConfig::GemvDirect];
    if runs_wgmma(test, device) {
        configs.extend(tma_configs());
        configs.push(WeightOnlyConfig::LargeWgmmaN256);
    }
    for draw in 0..RANDOM_SHAPE_DRAWS {
        let config = configs[rng.random_range(0..configs.len())];
        let tma = config.fed_by_tma();
        // TMA-fed: whole tiles of N (256 or 128 columns) and whole K tiles.
        let (n_unit, k_step) = if tma {
            (config.shape(WeightBits::Int4).block_n as usize, qkernels::abi::QK_WO_BK as usize)
        } else {
            (64, 16)
        };
        let group = GROUPS[rng.random_range(0..GROUPS.len())];
        let k_unit = k_step.max(group);
        let max_units = if tma { MAX_TMA_N / n_unit } else { MAX_N_UNITS };
        let n = n_unit * rng.random_range(1..=max_units);
        let k = k_unit * rng.random_range(1..=MAX_K / k_unit);
        let group = if group == 0 { k } else { group };
        let m = if config.uses_wgmma() { rng.random_range(1..300) } else { rng.random_range(1..=8) };
        let splits = if group == k || rng.random_bool(0.4) { None } else { Some(rng.random_range(1..8)) };
        let weights = random_weights(rng, n, k, group);
        let label = format!("{test} draw {draw}: {config:?} splits={splits:?}");
        check_config_at(&label, device, rng, &weights, config, splits, &[m]);
    }
}
