//! Wrapper of `kernels/gemm_w4a16.cu`: weight-only quantized GEMM (4-bit `gemm_w4a16` and
//! 8-bit `gemm_w8a16`, one kernel template) with f16 activations, of its Hopper large-M
//! variant `kernels/gemm_w4a16_sm90a.cu` (wgmma), and of `kernels/permute.cu` (act-order
//! column permutation of A).
//!
//! 1. Import or quantize weights into [`WeightOnlyWeights`](crate::formats::WeightOnlyWeights)
//!    (GPTQ, AWQ, int8), repack them with
//!    [`pack_weight_only`](crate::formats::pack_weight_only), upload with
//!    [`DevicePackedWeights::upload`].
//! 2. Plan once per (M, weights): [`GemmWeightOnlyPlan::new`] picks the configuration from
//!    M and the compute capability, and a split-K factor from (N, K, SM count) that gives
//!    every SM work.
//! 3. [`GemmWeightOnlyPlan::run`] every step.
//!
//! Host reference: [`crate::reference::gemm_weight_only_reference`].

use half::f16;

use super::split_k::{GemmTiling, SplitKGrid, SplitKRule};
use super::{check_buffer, grid_stride_blocks};
use crate::abi::{self, QkGemmWeightOnlyArgs, QkGemmWeightOnlyTmaArgs, QkPermuteColsArgs, QkTensorMap};
use crate::device::{DeviceBuffer, DeviceRegion, LaunchOrder, TensorMap2dF16};
use crate::formats::{PackedWeights, WeightBits, WeightOnlyShape};
use crate::kernels::{self, KernelRef};
use crate::{Device, QkError, Result};

/// Extra global bytes split-K may cost, as a fraction of the weight bytes. Every split
/// reads the scale (and zero) row of the group it starts in; with one group per column
/// (per-channel) that is one extra row per split, so the split count is capped to keep
/// those re-reads within this budget. (Groups of 32 and 64 start at every split
/// boundary and 128-groups are never cut: they cost nothing.)
const SPLIT_REREAD_BUDGET: f64 = 0.02;
/// Bytes of scale plus zero point per column and group (f16 + one nibble, rounded up).
const SCALE_ZERO_BYTES_PER_COLUMN: f64 = 2.5;
/// The compute capability of the Hopper GPUs `kernels/gemm_w4a16_sm90a.cu` is built for
/// (its `sm_90a` SASS and `compute_90a` PTX run on 9.0 only).
const HOPPER_COMPUTE_CAPABILITY: (u32, u32) = (9, 0);
/// The oldest compute capability the mma.sync kernels run on (`cp.async`,
/// `mma.m16n8k16`: the `compute_80` PTX every other module embeds).
const MIN_COMPUTE_CAPABILITY: (u32, u32) = (8, 0);
/// f16 elements of K per pipeline stage (a K tile).
const BK: usize = abi::QK_WO_BK as usize;

/// A tile configuration of the weight-only GEMM (kernel instances of `gemm_w4a16.cu`, and
/// of `gemm_w4a16_sm90a.cu` for [`WeightOnlyConfig::LargeWgmma`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightOnlyConfig {
    /// Decode (M <= 8): 16 x 256 tiles, 4 warps, 6 stages (4-bit) — a weight stream
    /// split over K across all SMs.
    Gemv,
    /// [`Gemv`](Self::Gemv)'s strips, stages and split-K with the mma operands swapped:
    /// the dequantized weights are the A operand (16 columns of C per m16 tile) and an
    /// 8-row tile of A is the n8, so no multiply is spent on padding rows: half the mma
    /// instructions, ldmatrix loads, A copies and accumulators of `Gemv`. Meant for
    /// M <= 8 (larger M streams the weights once per 8 rows). Chosen only explicitly
    /// ([`GemmWeightOnlyPlan::with_config`]) until timed on a GPU.
    GemvSwapAb,
    /// [`GemvSwapAb`](Self::GemvSwapAb)'s mma arrangement with no shared memory in the main
    /// loop: every lane loads its own weights (a ring of k-steps in flight per warp), A
    /// fragments and group constants straight from global memory into registers, and the
    /// warps pass no block barrier until the split-K fix-up. Meant for M <= 8. Chosen only
    /// explicitly until timed on a GPU.
    GemvDirect,
    /// M <= 32: 32 x 256 tiles, 4 warps, split-K.
    Small,
    /// M <= 64: 64 x 256 tiles, 4 warps.
    Medium,
    /// M > 64, compute-bound: 128 x 128 tiles, 2 x 2 warps of 64 x 64.
    Large,
    /// M > 64 on Hopper (compute capability 9.0 only, `kernels/gemm_w4a16_sm90a.cu`):
    /// 128 x 256 tiles, 2 warpgroups issuing `wgmma.m64n128k16` with the dequantized
    /// weights as the register operand, two warps per 64-column strip.
    LargeWgmma,
    /// [`LargeWgmma`](Self::LargeWgmma)'s tile fed by Hopper's copy engine: a third
    /// warpgroup issues each stage as one TMA box of A and bulk copies of the weight
    /// strips and group rows, completing on mbarriers, so the consumers issue no copy.
    /// Compute capability 9.0 only; needs N a multiple of 256 and K of 64. Chosen only
    /// explicitly ([`GemmWeightOnlyPlan::with_config`]) until timed on a GPU.
    LargeWgmmaTma,
    /// M > 64 on Hopper (compute capability 9.0 only): 256 x 128 tiles, 2 warpgroups each
    /// issuing one `wgmma.m64n256k16` per k-step, four warps per 64-column strip (each
    /// dequantizes a 16-column quarter). Every dequantized weight feeds 256 rows of A
    /// instead of [`LargeWgmma`](Self::LargeWgmma)'s 128: half the dequantization per
    /// multiply-add, for 50% more L2 traffic per multiply-add. Chosen only explicitly
    /// until timed on a GPU.
    LargeWgmmaN256,
    /// [`LargeWgmmaN256`](Self::LargeWgmmaN256)'s tile fed by the copy engine as
    /// [`LargeWgmmaTma`](Self::LargeWgmmaTma) feeds `LargeWgmma`'s (one 256-row TMA box of
    /// A per stage). Compute capability 9.0 only; needs N a multiple of 128 and K of 64.
    /// Chosen only explicitly until timed on a GPU.
    LargeWgmmaN256Tma,
}

/// The shape constants of one configuration, from `qk_abi.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightOnlyTileShape {
    /// Rows of C per block.
    pub block_m: u32,
    /// Columns of C per block.
    pub block_n: u32,
    /// Threads per block.
    pub threads: u32,
    /// Pipeline stages (`GemvDirect`, which has no shared-memory pipeline: the depth of its
    /// prefetch ring in 64-deep K tiles).
    pub stages: u32,
    /// Dynamic shared memory per block, bytes.
    pub shared_bytes: u32,
}

impl WeightOnlyConfig {
    /// Every configuration.
    pub const ALL: [WeightOnlyConfig; 10] = [
        WeightOnlyConfig::Gemv,
        WeightOnlyConfig::GemvSwapAb,
        WeightOnlyConfig::GemvDirect,
        WeightOnlyConfig::Small,
        WeightOnlyConfig::Medium,
        WeightOnlyConfig::Large,
        WeightOnlyConfig::LargeWgmma,
        WeightOnlyConfig::LargeWgmmaTma,
        WeightOnlyConfig::LargeWgmmaN256,
        WeightOnlyConfig::LargeWgmmaN256Tma,
    ];

    /// The mma.sync configuration for `m` rows of A (every architecture): the smallest
    /// tile height that holds M (one M tile streams W exactly once) up to 64, then the
    /// compute-bound 128 x 128 tiles. N, K and the SM count decide the split-K factor
    /// ([`GemmWeightOnlyPlan::new`]).
    pub fn for_m(m: usize) -> WeightOnlyConfig {
        if m <= abi::QK_WO_GEMV_MAX_M as usize {
            WeightOnlyConfig::Gemv
        } else if m <= abi::QK_WO_SMALL_BM as usize {
            WeightOnlyConfig::Small
        } else if m <= abi::QK_WO_MEDIUM_BM as usize {
            WeightOnlyConfig::Medium
        } else {
            WeightOnlyConfig::Large
        }
    }

    /// The configuration [`GemmWeightOnlyPlan::new`] picks for `m` rows of A on `device`:
    /// [`for_capability`](Self::for_capability) of its compute capability.
    pub fn choose(device: &Device, m: usize) -> WeightOnlyConfig {
        WeightOnlyConfig::for_capability(device.properties().compute_capability, m)
    }

    /// The configuration for `m` rows of A on a GPU of compute capability `cc`: on 9.0,
    /// [`WeightOnlyConfig::LargeWgmma`] where [`for_m`](Self::for_m) would pick the
    /// mma.sync `Large` (M > 64; both tile 128 rows of A, both split K when the tiles
    /// leave SMs idle), otherwise `for_m(m)`. The wgmma kernel is about twice as fast as
    /// the mma.sync one on an H200 (docs/results/h200-2026-11-26);
    /// [`GemmWeightOnlyPlan::with_config`] with `Large` selects the mma.sync kernel on
    /// Hopper too.
    pub fn for_capability(cc: (u32, u32), m: usize) -> WeightOnlyConfig {
        match WeightOnlyConfig::for_m(m) {
            WeightOnlyConfig::Large if WeightOnlyConfig::LargeWgmma.runs_on(cc) => WeightOnlyConfig::LargeWgmma,
            portable => portable,
        }
    }

    /// Whether this configuration's kernel runs on compute capability `cc`: every
    /// configuration on sm_80 and newer, except the wgmma ones: 9.0 only (their `sm_90a`
    /// SASS and `compute_90a` PTX use Hopper's arch-specific wgmma).
    pub fn runs_on(self, cc: (u32, u32)) -> bool {
        if self.uses_wgmma() {
            cc == HOPPER_COMPUTE_CAPABILITY
        } else {
            cc >= MIN_COMPUTE_CAPABILITY
        }
    }

    /// Whether this is one of the Hopper wgmma configurations
    /// (`kernels/gemm_w4a16_sm90a.cu`).
    pub fn uses_wgmma(self) -> bool {
        matches!(
            self,
            WeightOnlyConfig::LargeWgmma
                | WeightOnlyConfig::LargeWgmmaTma
                | WeightOnlyConfig::LargeWgmmaN256
                | WeightOnlyConfig::LargeWgmmaN256Tma
        )
    }

    /// Whether this configuration's stages are fed by the copy engine (TMA and bulk copies
    /// from a producer warpgroup): its kernel takes [`QkGemmWeightOnlyTmaArgs`], and N
    /// must be a multiple of its tile width and K of 64 (bulk copies cannot zero-fill).
    pub fn fed_by_tma(self) -> bool {
        matches!(self, WeightOnlyConfig::LargeWgmmaTma | WeightOnlyConfig::LargeWgmmaN256Tma)
    }

    /// Whether this configuration's kernel can take weights of `shape`: every one can,
    /// except the TMA-fed ones ([`WeightOnlyConfig::fed_by_tma`]), whose bulk copies move
    /// whole strips and stages and cannot zero-fill a partial one: they need N a multiple
    /// of their tile width and K a multiple of the 64-deep K tile.
    pub fn takes(self, shape: WeightOnlyShape) -> bool {
        !self.fed_by_tma()
            || shape.n().is_multiple_of(self.shape(shape.bits()).block_n as usize) && shape.k().is_multiple_of(BK)
    }

    /// The configuration's tile shape for weights of width `bits`.
    pub fn shape(self, bits: WeightBits) -> WeightOnlyTileShape {
        use abi::*;
        // BM, warps, and (stages, shared bytes) at 4 and at 8 bits, of qk_abi.h, whose byte
        // counts the kernels check against their tile layout at compile time.
        // GemvDirect has no dynamic shared memory; its "stages" are its prefetch ring's
        // depth in K tiles.
        let direct_ring = |steps: u32| (steps * QK_WO_K_STEP / QK_WO_BK, 0);
        let (block_m, warps_m, warps_n, w4, w8) = match self {
            WeightOnlyConfig::Gemv => (
                QK_WO_GEMV_BM,
                QK_WO_GEMV_WARPS_M,
                QK_WO_GEMV_WARPS_N,
                (QK_WO_GEMV_STAGES, QK_WO_GEMV_SMEM_BYTES),
                (QK_WO_GEMV_STAGES_W8, QK_WO_GEMV_SMEM_BYTES_W8),
            ),
            WeightOnlyConfig::GemvSwapAb => (
                QK_WO_GEMV_SWAP_AB_BM,
                QK_WO_GEMV_SWAP_AB_WARPS_M,
                QK_WO_GEMV_SWAP_AB_WARPS_N,
                (QK_WO_GEMV_STAGES, QK_WO_GEMV_SWAP_AB_SMEM_BYTES),
                (QK_WO_GEMV_STAGES_W8, QK_WO_GEMV_SWAP_AB_SMEM_BYTES_W8),
            ),
            WeightOnlyConfig::GemvDirect => (
                QK_WO_GEMV_DIRECT_BM,
                QK_WO_GEMV_DIRECT_WARPS_M,
                QK_WO_GEMV_DIRECT_WARPS_N,
                direct_ring(QK_WO_GEMV_DIRECT_PREFETCH_STEPS),
                direct_ring(QK_WO_GEMV_DIRECT_PREFETCH_STEPS_W8),
            ),
            WeightOnlyConfig::Small => (
                QK_WO_SMALL_BM,
                QK_WO_SMALL_WARPS_M,
                QK_WO_SMALL_WARPS_N,
                (QK_WO_SMALL_STAGES, QK_WO_SMALL_SMEM_BYTES),
                (QK_WO_SMALL_STAGES_W8, QK_WO_SMALL_SMEM_BYTES_W8),
            ),
            WeightOnlyConfig::Medium => (
                QK_WO_MEDIUM_BM,
                QK_WO_MEDIUM_WARPS_M,
                QK_WO_MEDIUM_WARPS_N,
                (QK_WO_MEDIUM_STAGES, QK_WO_MEDIUM_SMEM_BYTES),
                (QK_WO_MEDIUM_STAGES_W8, QK_WO_MEDIUM_SMEM_BYTES_W8),
            ),
            WeightOnlyConfig::Large => (
                QK_WO_LARGE_BM,
                QK_WO_LARGE_WARPS_M,
                QK_WO_LARGE_WARPS_N,
                (QK_WO_LARGE_STAGES, QK_WO_LARGE_SMEM_BYTES),
                (QK_WO_LARGE_STAGES_W8, QK_WO_LARGE_SMEM_BYTES_W8),
            ),
            WeightOnlyConfig::LargeWgmma | WeightOnlyConfig::LargeWgmmaTma => (
                QK_WO_WGMMA_BM,
                QK_WO_WGMMA_WARPS_M,
                QK_WO_WGMMA_WARPS_N,
                (QK_WO_WGMMA_STAGES, QK_WO_WGMMA_SMEM_BYTES),
                (QK_WO_WGMMA_STAGES_W8, QK_WO_WGMMA_SMEM_BYTES_W8),
            ),
            WeightOnlyConfig::LargeWgmmaN256 | WeightOnlyConfig::LargeWgmmaN256Tma => (
                QK_WO_WGMMA_N256_BM,
                QK_WO_WGMMA_N256_WARPS_M,
                QK_WO_WGMMA_N256_WARPS_N,
                (QK_WO_WGMMA_N256_STAGES, QK_WO_WGMMA_N256_SMEM_BYTES),
                (QK_WO_WGMMA_N256_STAGES_W8, QK_WO_WGMMA_N256_SMEM_BYTES_W8),
            ),
        };
        let (stages, shared_bytes) = if bits == WeightBits::Int8 { w8 } else { w4 };
        // The TMA-fed kernels' producer warpgroup comes on top of the computing warps.
        let extra_warps = if self.fed_by_tma() { QK_WO_WGMMA_TMA_PRODUCER_WARPS } else { 0 };
        WeightOnlyTileShape {
            block_m,
            block_n: warps_n * QK_WO_N_BLOCK,
            threads: (warps_m * warps_n + extra_warps) * QK_WARP_THREADS,
            stages,
            shared_bytes,
        }
    }

    /// The kernel instance for weights of width `bits`.
    pub fn kernel(self, bits: WeightBits) -> KernelRef {
        match (bits, self) {
            (WeightBits::Int4, WeightOnlyConfig::Gemv) => kernels::GEMM_W4A16_GEMV,
            (WeightBits::Int4, WeightOnlyConfig::GemvSwapAb) => kernels::GEMM_W4A16_GEMV_SWAP_AB,
            (WeightBits::Int4, WeightOnlyConfig::GemvDirect) => kernels::GEMM_W4A16_GEMV_DIRECT,
            (WeightBits::Int4, WeightOnlyConfig::Small) => kernels::GEMM_W4A16_SMALL,
            (WeightBits::Int4, WeightOnlyConfig::Medium) => kernels::GEMM_W4A16_MEDIUM,
            (WeightBits::Int4, WeightOnlyConfig::Large) => kernels::GEMM_W4A16_LARGE,
            (WeightBits::Int4, WeightOnlyConfig::LargeWgmma) => kernels::GEMM_W4A16_LARGE_WGMMA,
            (WeightBits::Int4, WeightOnlyConfig::LargeWgmmaTma) => kernels::GEMM_W4A16_LARGE_WGMMA_TMA,
            (WeightBits::Int4, WeightOnlyConfig::LargeWgmmaN256) => kernels::GEMM_W4A16_LARGE_WGMMA_N256,
            (WeightBits::Int4, WeightOnlyConfig::LargeWgmmaN256Tma) => kernels::GEMM_W4A16_LARGE_WGMMA_N256_TMA,
            (WeightBits::Int8, WeightOnlyConfig::Gemv) => kernels::GEMM_W8A16_GEMV,
            (WeightBits::Int8, WeightOnlyConfig::GemvSwapAb) => kernels::GEMM_W8A16_GEMV_SWAP_AB,
            (WeightBits::Int8, WeightOnlyConfig::GemvDirect) => kernels::GEMM_W8A16_GEMV_DIRECT,
            (WeightBits::Int8, WeightOnlyConfig::Small) => kernels::GEMM_W8A16_SMALL,
            (WeightBits::Int8, WeightOnlyConfig::Medium) => kernels::GEMM_W8A16_MEDIUM,
            (WeightBits::Int8, WeightOnlyConfig::Large) => kernels::GEMM_W8A16_LARGE,
            (WeightBits::Int8, WeightOnlyConfig::LargeWgmma) => kernels::GEMM_W8A16_LARGE_WGMMA,
            (WeightBits::Int8, WeightOnlyConfig::LargeWgmmaTma) => kernels::GEMM_W8A16_LARGE_WGMMA_TMA,
            (WeightBits::Int8, WeightOnlyConfig::LargeWgmmaN256) => kernels::GEMM_W8A16_LARGE_WGMMA_N256,
            (WeightBits::Int8, WeightOnlyConfig::LargeWgmmaN256Tma) => kernels::GEMM_W8A16_LARGE_WGMMA_N256_TMA,
        }
    }
}

/// Packed weight-only weights on a device: what [`GemmWeightOnlyPlan::run`] reads.
#[derive(Debug)]
pub struct DevicePackedWeights {
    shape: WeightOnlyShape,
    words: DeviceBuffer<u32>,
    scales: DeviceBuffer<f16>,
    zeros: Option<DeviceBuffer<u32>>,
    perm: Option<DeviceBuffer<u32>>,
}

impl DevicePackedWeights {
    /// Uploads packed weights (validated by construction of [`PackedWeights`]).
    pub fn upload(device: &Device, w: &PackedWeights) -> Result<DevicePackedWeights> {
        Ok(DevicePackedWeights {
            shape: w.shape(),
            words: device.upload(w.words())?,
            scales: device.upload(w.scales())?,
            zeros: w.zeros().map(|z| device.upload(z)).transpose()?,
            perm: w.perm().map(|p| device.upload(p)).transpose()?,
        })
    }

    /// Width, N, K and group.
    pub fn shape(&self) -> WeightOnlyShape {
        self.shape
    }
    // The accessors give address ranges, not buffers: `run` trusts the contents it
    // validated at upload (the permutation indexes A unchecked on the device), and
    // `Device::write` would let a `&DeviceBuffer` holder rewrite them.

    /// Where the packed codes live (for traffic accounting).
    pub fn words(&self) -> DeviceRegion {
        self.words.region()
    }
    /// Where the shuffled scales live.
    pub fn scales(&self) -> DeviceRegion {
        self.scales.region()
    }
    /// Where the packed zero points live, if asymmetric.
    pub fn zeros(&self) -> Option<DeviceRegion> {
        self.zeros.as_ref().map(DeviceBuffer::region)
    }
    /// Where the act-order permutation lives, if any.
    pub fn perm(&self) -> Option<DeviceRegion> {
        self.perm.as_ref().map(DeviceBuffer::region)
    }
}

/// A prepared weight-only GEMM for one M and one [`WeightOnlyShape`] (bits, N, K, group):
/// the configuration, the split-K factor, its workspace and (act-order) the permuted-A
/// scratch buffer. Build once, [`run`](GemmWeightOnlyPlan::run) many times.
#[derive(Debug)]
pub struct GemmWeightOnlyPlan {
    device: Device,
    m: usize,
    shape: WeightOnlyShape,
    config: WeightOnlyConfig,
    /// The configuration's tile and kernel for the weights' width (looked up once).
    tile: WeightOnlyTileShape,
    kernel: KernelRef,
    /// Grid, split-K factor, f32 partial tiles and tile counters.
    split_k: SplitKGrid<f32>,
    /// A with its columns in the weights' (act-order) K order.
    a_permuted: Option<DeviceBuffer<f16>>,
    /// How its kernels are ordered after the previous kernel on the stream.
    order: LaunchOrder,
}

impl GemmWeightOnlyPlan {
    /// Plans `C[M,N] = A[M,K] · dequant(W)ᵀ` for `weights`, choosing the configuration from
    /// M and the compute capability ([`WeightOnlyConfig::choose`]) and the split-K factor
    /// from (N, K, SM count).
    pub fn new(device: &Device, weights: &DevicePackedWeights, m: usize) -> Result<GemmWeightOnlyPlan> {
        let config = WeightOnlyConfig::choose(device, m);
        GemmWeightOnlyPlan::with_config(device, weights, m, config, None)
    }

    /// Plans with an explicit configuration and optionally an explicit number of K splits
    /// (clamped to the number of 64-deep K tiles; more than 65535, the grid's z limit, is
    /// an error). The wgmma configurations
    /// ([`WeightOnlyConfig::uses_wgmma`]) need compute capability 9.0 (the simulator
    /// models an H100).
    pub fn with_config(
        device: &Device,
        weights: &DevicePackedWeights,
        m: usize,
        config: WeightOnlyConfig,
        splits: Option<usize>,
    ) -> Result<GemmWeightOnlyPlan> {
        let shape = weights.shape;
        if m == 0 {
            return Err(QkError::invalid("m", "M = 0: must be >= 1"));
        }
        let cc = device.properties().compute_capability;
        if !config.runs_on(cc) {
            return Err(QkError::invalid(
                "config",
                format!("{config:?} does not run on compute capability {}.{}", cc.0, cc.1),
            ));
        }
        let (tile, kernel) = (config.shape(shape.bits()), config.kernel(shape.bits()));
        if !config.takes(shape) {
            return Err(QkError::invalid(
                "config",
                format!(
                    "{config:?} needs N a multiple of {} and K of {BK}; N = {}, K = {}",
                    tile.block_n,
                    shape.n(),
                    shape.k()
                ),
            ));
        }
        let tiling = GemmTiling {
            m,
            n: shape.n(),
            k: shape.k(),
            block_m: tile.block_m,
            block_n: tile.block_n,
            bk: BK,
            kernel,
            threads: tile.threads,
            shared_bytes: tile.shared_bytes,
        };
        let split_k = SplitKGrid::plan(device, tiling, &config, splits, split_k_rule(shape))?;
        let a_permuted = weights.perm.as_ref().map(|_| device.alloc::<f16>(m * shape.k())).transpose()?;
        let order = LaunchOrder::AfterPrevious;
        Ok(GemmWeightOnlyPlan { device: device.clone(), m, shape, config, tile, kernel, split_k, a_permuted, order })
    }

    /// The same plan with its kernels launched in `order`. With
    /// [`LaunchOrder::Programmatic`] (compute capability 9.0 with the kernels' sm_90a
    /// code, [`Device::check_launch_order`]; refused with a typed error otherwise) each
    /// launch may start while the previous kernel on the stream still runs: it waits for
    /// that kernel before reading A or writing anything (the cp.async configurations
    /// first fetch their first weights into L2), which hides part of the launch and of
    /// the first DRAM round trip, the fixed cost that dominates a decode GEMV. Every
    /// configuration's kernels (and the act-order permutation) are written for it.
    pub fn with_launch_order(mut self, order: LaunchOrder) -> Result<GemmWeightOnlyPlan> {
        self.device.check_launch_order(order)?;
        self.order = order;
        Ok(self)
    }

    /// How the plan's kernels are ordered after the previous kernel on the stream.
    pub fn launch_order(&self) -> LaunchOrder {
        self.order
    }

    /// The configuration this plan launches.
    pub fn config(&self) -> WeightOnlyConfig {
        self.config
    }

    /// Number of K splits (grid z).
    pub fn splits(&self) -> usize {
        self.split_k.splits()
    }

    /// Launch grid (N tiles, M tiles, K splits).
    pub fn grid(&self) -> [u32; 3] {
        self.split_k.grid()
    }

    /// (M, N, K).
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.m, self.shape.n(), self.shape.k())
    }

    /// One line describing the choice, for `qk run --report` and the bench reports'
    /// `plan`: kernel, tile shape, grid, splits, and the inputs it was chosen from.
    pub fn describe(&self) -> String {
        let s = self.tile;
        let tile = [s.block_m, s.block_n, s.threads, s.stages, s.shared_bytes];
        format!(
            "{} for M={} N={} K={} group={} on {} SMs x {} resident blocks{}{}",
            self.split_k.describe_launch(self.kernel.name, &self.config, tile),
            self.m,
            self.shape.n(),
            self.shape.k(),
            self.shape.group(),
            self.device.properties().sm_count,
            self.split_k.resident_per_sm(),
            if self.a_permuted.is_some() { ", act-order permute of A" } else { "" },
            if self.order == LaunchOrder::Programmatic { ", programmatic launch" } else { "" }
        )
    }

    /// Runs `c = a · dequant(weights)ᵀ (+ bias)`. Shapes: `a` f16 `[M, K]` (original K
    /// order), `bias` f16 `[N]`, `c` f16 `[M, N]`, `c` not the same buffer as `a` (no in-place
    /// GEMM; `c` may be the bias); all on the plan's device, 16-byte
    /// aligned. `weights` must have the [`WeightOnlyShape`] the plan was made for.
    pub fn run(
        &self,
        a: &DeviceBuffer<f16>,
        weights: &DevicePackedWeights,
        bias: Option<&DeviceBuffer<f16>>,
        c: &DeviceBuffer<f16>,
    ) -> Result<()> {
        let d = &self.device;
        let (m, n, k) = self.dims();
        if weights.shape != self.shape || weights.perm.is_some() != self.a_permuted.is_some() {
            return Err(QkError::invalid(
                "weights",
                format!(
                    "{:?} act-order={}; the plan is for {:?} act-order={}",
                    weights.shape,
                    weights.perm.is_some(),
                    self.shape,
                    self.a_permuted.is_some()
                ),
            ));
        }
        check_buffer(d, a, "a", m * k)?;
        check_buffer(d, &weights.words, "weights.words", self.shape.packed_words())?;
        check_buffer(d, &weights.scales, "weights.scales", self.shape.scale_count())?;
        if let Some(z) = &weights.zeros {
            check_buffer(d, z, "weights.zeros", self.shape.zero_words())?;
        }
        if let Some(b) = bias {
            check_buffer(d, b, "bias", n)?;
        }
        check_buffer(d, c, "c", m * n)?;
        // Every block reads its rows of A across all of K while other blocks of the launch
        // write C, in no order: C in A's memory would be read partly overwritten. (C as
        // the bias is fine: a column's bias is read by the block that writes the column,
        // before it stores.) With act-order A is first gathered into scratch, but one
        // rule for every weight format is easier to rely on.
        if c.device_addr() == a.device_addr() {
            return Err(QkError::invalid("c", "is the same buffer as `a`; the GEMM cannot run in place"));
        }
        let a_in = match (&self.a_permuted, &weights.perm) {
            (Some(scratch), Some(perm)) => {
                permute_cols_f16(d, self.order, a, perm, scratch, m, k)?;
                scratch
            }
            _ => a,
        };
        let args = QkGemmWeightOnlyArgs {
            a: a_in.device_addr(),
            w: weights.words.device_addr(),
            scales: weights.scales.device_addr(),
            zeros: weights.zeros.as_ref().map_or(0, |z| z.device_addr()),
            bias: bias.map_or(0, |b| b.device_addr()),
            c: c.device_addr(),
            workspace: self.split_k.workspace_addr(),
            tile_counters: self.split_k.tile_counters_addr(),
            m: m as u32,
            n: n as u32,
            k: k as u32,
            group_size: self.shape.group() as u32,
            k_tiles_per_split: self.split_k.k_tiles_per_split(),
            launch_flags: match self.order {
                LaunchOrder::Programmatic => abi::QK_LAUNCH_PROGRAMMATIC,
                LaunchOrder::AfterPrevious => 0,
            },
        };
        let (tile, kernel) = (self.tile, self.kernel);
        let (grid, block) = (self.split_k.grid(), [tile.threads, 1, 1]);
        if !self.config.fed_by_tma() {
            return d.launch_ordered(self.order, kernel, grid, block, tile.shared_bytes, &args);
        }
        // A as the copy engine reads it: f16 [M, K] row-major, boxes of one K tile x one
        // BM-row tile, or all of A's rows when it has fewer (a box no taller than the
        // tensor; the kernel zeroes the tile's other rows) (qk_abi.h,
        // QkGemmWeightOnlyTmaArgs). Encoded on every call because the map holds A's
        // address, which each call may change; cuTensorMapEncodeTiled only fills a
        // 128-byte host struct (no device round trip), and the map travels by value in
        // the launch parameters.
        let f16_bytes = std::mem::size_of::<f16>() as u64;
        let a_box_rows = tile.block_m.min(m as u32);
        let a_map = d.encode_tensor_map(&TensorMap2dF16 {
            base: a_in.device_addr(),
            dims: [k as u64, m as u64],
            row_stride_bytes: k as u64 * f16_bytes,
            box_dims: [BK as u32, a_box_rows],
        })?;
        let tma_args = QkGemmWeightOnlyTmaArgs {
            base: args,
            a_box_rows,
            pad: [0; abi::QK_WO_TMA_ARGS_PAD_BYTES as usize],
            a_map: QkTensorMap { bytes: a_map },
        };
        d.launch_ordered(self.order, kernel, grid, block, tile.shared_bytes, &tma_args)
    }
}

/// The weight-only kernel's bound on the automatic split-K choice, from the weights'
/// (bits, K, group): every split re-reads the scale (and zero) row of the group it
/// starts in.
fn split_k_rule(shape: WeightOnlyShape) -> SplitKRule {
    let (bits, k, group) = (shape.bits(), shape.k(), shape.group());
    // Per-channel (one group per column): one extra scale row per split, so cap the
    // split count to keep those re-reads within SPLIT_REREAD_BUDGET of the weight bytes.
    let max_splits = if group == k {
        let weight_bytes_per_column = (k * bits.bits()) as f64 / 8.0;
        1 + (SPLIT_REREAD_BUDGET * weight_bytes_per_column / SCALE_ZERO_BYTES_PER_COLUMN) as usize
    } else {
        usize::MAX
    };
    // A group spanning several K tiles (128) is best not cut by a split: round the
    // split length up to whole groups.
    let tiles_per_group = group / BK;
    let k_tiles_multiple = if tiles_per_group > 1 && group < k { tiles_per_group } else { 1 };
    SplitKRule { max_splits, k_tiles_multiple }
}

/// `dst[r, j] = src[r, perm[j]]` for f16 `[rows, cols]` matrices (`perm` u32 `[cols]`, a
/// permutation; `cols` a multiple of 8): the act-order gather of A's columns, launched in
/// `order`. Crate-private: the kernel reads `src` at whatever `perm` says, so it is
/// called only with the permutation of [`DevicePackedWeights`], which
/// [`PackedWeights::from_parts`] validated.
pub(crate) fn permute_cols_f16(
    device: &Device,
    order: LaunchOrder,
    src: &DeviceBuffer<f16>,
    perm: &DeviceBuffer<u32>,
    dst: &DeviceBuffer<f16>,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let vec = abi::QK_PERMUTE_VEC as usize;
    let len = super::check_shape(rows, cols)?;
    if !cols.is_multiple_of(vec) {
        return Err(QkError::invalid("cols", format!("{cols} is not a multiple of {vec}")));
    }
    check_buffer(device, src, "src", len)?;
    check_buffer(device, perm, "perm", cols)?;
    check_buffer(device, dst, "dst", len)?;
    let args = QkPermuteColsArgs {
        src: src.device_addr(),
        dst: dst.device_addr(),
        perm: perm.device_addr(),
        rows: rows as u32,
        cols: cols as u32,
    };
    let threads = abi::QK_PERMUTE_BLOCK_THREADS;
    let blocks = grid_stride_blocks(device, kernels::PERMUTE_COLS_F16, len / vec, threads)?;
    device.launch_ordered(order, kernels::PERMUTE_COLS_F16, [blocks, 1, 1], [threads, 1, 1], 0, &args)
}

/// One-shot `gemm_w4a16` on host data: uploads the packed 4-bit weights, plans for `m`,
/// runs and returns C f16 `[M, N]` (`a` f16 `[M, K]`, `bias` f16 `[N]`).
pub fn gemm_w4a16_host(
    device: &Device,
    a: &[f16],
    weights: &PackedWeights,
    bias: Option<&[f16]>,
    m: usize,
) -> Result<Vec<f16>> {
    if weights.shape().bits() != WeightBits::Int4 {
        return Err(QkError::invalid("weights", "gemm_w4a16 takes 4-bit weights (use gemm_w8a16 for 8-bit)"));
    }
    gemm_weight_only_host(device, a, weights, bias, m).map(|(c, _)| c)
}

/// Host-data weight-only GEMM for either width; returns C and the plan's
/// [`describe`](GemmWeightOnlyPlan::describe) line.
pub fn gemm_weight_only_host(
    device: &Device,
    a: &[f16],
    weights: &PackedWeights,
    bias: Option<&[f16]>,
    m: usize,
) -> Result<(Vec<f16>, String)> {
    let (n, k) = (weights.shape().n(), weights.shape().k());
    let a_len = m.checked_mul(k).ok_or_else(|| QkError::invalid("m", format!("M = {m} x K = {k} overflows")))?;
    super::check_len(a, "a", a_len)?;
    if let Some(b) = bias {
        super::check_len(b, "bias", n)?;
    }
    let w = DevicePackedWeights::upload(device, weights)?;
    let plan = GemmWeightOnlyPlan::new(device, &w, m)?;
    let a = device.upload(a)?;
    let bias = bias.map(|b| device.upload(b)).transpose()?;
    let c = device.alloc::<f16>(m * n)?;
    plan.run(&a, &w, bias.as_ref(), &c)?;
    Ok((device.download(&c)?, plan.describe()))
}
