//! Wrapper of `kernels/gemm_w8a8.cu`: INT8 x INT8 tensor-core GEMM with the fused
//! per-token x per-channel scale epilogue, and the fused quantize-then-GEMM path.
//! Host reference: [`crate::reference::gemm_w8a8_reference`].

use half::f16;

use super::split_k::{GemmTiling, SplitKGrid, SplitKRule};
use super::{check_buffer, check_len, quantize_int8_per_token};
use crate::abi::{self, QkGemmW8A8Args};
use crate::device::DeviceBuffer;
use crate::kernels::{self, KernelRef};
use crate::{Device, QkError, Result};

/// A tile configuration of `gemm_w8a8` (the kernel instances of `gemm_w8a8.cu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmW8A8Config {
    /// 16 x 64 tiles, 4 warps, 4 stages: decode (M <= 16), split-K over all SMs.
    Small,
    /// 64 x 128 tiles, 4 warps, 4 stages: M <= 64.
    Medium,
    /// 128 x 128 tiles, 8 warps, 3 stages: M > 64, compute-bound.
    Large,
}

/// The shape constants of one configuration, from `qk_abi.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct W8A8TileShape {
    /// Rows of C per block.
    pub block_m: u32,
    /// Columns of C per block.
    pub block_n: u32,
    /// Threads per block.
    pub threads: u32,
    /// Pipeline stages.
    pub stages: u32,
    /// Dynamic shared memory per block, bytes.
    pub shared_bytes: u32,
}

impl GemmW8A8Config {
    /// Every configuration.
    pub const ALL: [GemmW8A8Config; 3] = [GemmW8A8Config::Small, GemmW8A8Config::Medium, GemmW8A8Config::Large];

    /// The configuration the wrapper picks for `m` rows of A.
    pub fn for_m(m: usize) -> GemmW8A8Config {
        if m <= abi::QK_W8A8_SMALL_BM as usize {
            GemmW8A8Config::Small
        } else if m <= abi::QK_W8A8_MEDIUM_BM as usize {
            GemmW8A8Config::Medium
        } else {
            GemmW8A8Config::Large
        }
    }

    /// The configuration's tile shape.
    pub fn shape(self) -> W8A8TileShape {
        let (block_m, block_n, warps, stages) = match self {
            GemmW8A8Config::Small => (
                abi::QK_W8A8_SMALL_BM,
                abi::QK_W8A8_SMALL_BN,
                abi::QK_W8A8_SMALL_WARPS_M * abi::QK_W8A8_SMALL_WARPS_N,
                abi::QK_W8A8_SMALL_STAGES,
            ),
            GemmW8A8Config::Medium => (
                abi::QK_W8A8_MEDIUM_BM,
                abi::QK_W8A8_MEDIUM_BN,
                abi::QK_W8A8_MEDIUM_WARPS_M * abi::QK_W8A8_MEDIUM_WARPS_N,
                abi::QK_W8A8_MEDIUM_STAGES,
            ),
            GemmW8A8Config::Large => (
                abi::QK_W8A8_LARGE_BM,
                abi::QK_W8A8_LARGE_BN,
                abi::QK_W8A8_LARGE_WARPS_M * abi::QK_W8A8_LARGE_WARPS_N,
                abi::QK_W8A8_LARGE_STAGES,
            ),
        };
        W8A8TileShape {
            block_m,
            block_n,
            threads: warps * abi::QK_WARP_THREADS,
            stages,
            shared_bytes: stages * (block_m + block_n) * abi::QK_W8A8_BK,
        }
    }

    /// The kernel instance.
    pub fn kernel(self) -> KernelRef {
        match self {
            GemmW8A8Config::Small => kernels::GEMM_W8A8_SMALL,
            GemmW8A8Config::Medium => kernels::GEMM_W8A8_MEDIUM,
            GemmW8A8Config::Large => kernels::GEMM_W8A8_LARGE,
        }
    }
}

/// A prepared `gemm_w8a8` for one (M, N, K): the configuration, the split-K factor and
/// its workspace. Build once, [`run`](GemmW8A8Plan::run) many times.
#[derive(Debug)]
pub struct GemmW8A8Plan {
    device: Device,
    m: usize,
    n: usize,
    k: usize,
    config: GemmW8A8Config,
    /// Grid, split-K factor, int32 partial tiles and tile counters.
    split_k: SplitKGrid<i32>,
}

impl GemmW8A8Plan {
    /// Plans `C[M,N] = A[M,K] · W[N,K]ᵀ` with the configuration chosen by M and a split-K
    /// factor that gives every SM work.
    pub fn new(device: &Device, m: usize, n: usize, k: usize) -> Result<GemmW8A8Plan> {
        GemmW8A8Plan::with_config(device, m, n, k, GemmW8A8Config::for_m(m), None)
    }

    /// Plans with an explicit configuration and optionally an explicit number of K splits
    /// (clamped to the number of 128-wide K tiles; more than 65535, the grid's z limit, is
    /// an error).
    pub fn with_config(
        device: &Device,
        m: usize,
        n: usize,
        k: usize,
        config: GemmW8A8Config,
        splits: Option<usize>,
    ) -> Result<GemmW8A8Plan> {
        if m == 0 || n == 0 {
            return Err(QkError::invalid("shape", format!("M = {m}, N = {n}: both must be >= 1")));
        }
        let k_multiple = abi::QK_W8A8_K_MULTIPLE as usize;
        if k == 0 || !k.is_multiple_of(k_multiple) || k > abi::QK_W8A8_MAX_K as usize {
            return Err(QkError::invalid(
                "k",
                format!("K = {k}: must be a positive multiple of {k_multiple} and at most {}", abi::QK_W8A8_MAX_K),
            ));
        }
        let shape = config.shape();
        let tiling = GemmTiling {
            m,
            n,
            k,
            block_m: shape.block_m,
            block_n: shape.block_n,
            bk: abi::QK_W8A8_BK as usize,
            kernel: config.kernel(),
            threads: shape.threads,
            shared_bytes: shape.shared_bytes,
        };
        // int32 partials are exact, so the split count costs only partial traffic: no
        // kernel-specific bound beyond the per-SM block target.
        let split_k = SplitKGrid::plan(device, tiling, &config, splits, SplitKRule::UNBOUNDED)?;
        Ok(GemmW8A8Plan { device: device.clone(), m, n, k, config, split_k })
    }

    /// The configuration this plan launches.
    pub fn config(&self) -> GemmW8A8Config {
        self.config
    }

    /// Rows of C per block of the plan's configuration.
    pub fn block_m(&self) -> usize {
        self.config.shape().block_m as usize
    }

    /// Number of K splits (grid z).
    pub fn splits(&self) -> usize {
        self.split_k.splits()
    }

    /// One line describing the choice, for `qk run --report` and the bench reports'
    /// `plan`: kernel, tile shape, grid, splits and the shape it was chosen for.
    pub fn describe(&self) -> String {
        let s = self.config.shape();
        let (m, n, k) = self.dims();
        let tile = [s.block_m, s.block_n, s.threads, s.stages, s.shared_bytes];
        format!("{} for M={m} N={n} K={k}", self.split_k.describe_launch(self.config.kernel().name, &self.config, tile))
    }

    /// Launch grid (N tiles, M tiles, K splits).
    pub fn grid(&self) -> [u32; 3] {
        self.split_k.grid()
    }

    /// (M, N, K).
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.m, self.n, self.k)
    }

    /// Runs `c = (a_q · w_qᵀ) · a_scale · w_scale (+ bias)`.
    ///
    /// Shapes: `a_q` int8 `[M, K]`, `a_scale` f32 `[M]`, `w_q` int8 `[N, K]`, `w_scale` f32
    /// `[N]`, `bias` f16 `[N]`, `c` f16 `[M, N]`; all on the plan's device, 16-byte aligned.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        a_q: &DeviceBuffer<i8>,
        a_scale: &DeviceBuffer<f32>,
        w_q: &DeviceBuffer<i8>,
        w_scale: &DeviceBuffer<f32>,
        bias: Option<&DeviceBuffer<f16>>,
        c: &DeviceBuffer<f16>,
    ) -> Result<()> {
        let d = &self.device;
        let (m, n, k) = (self.m, self.n, self.k);
        check_buffer(d, a_q, "a_q", m * k)?;
        check_buffer(d, a_scale, "a_scale", m)?;
        check_buffer(d, w_q, "w_q", n * k)?;
        check_buffer(d, w_scale, "w_scale", n)?;
        if let Some(b) = bias {
            check_buffer(d, b, "bias", n)?;
        }
        check_buffer(d, c, "c", m * n)?;
        let args = QkGemmW8A8Args {
            a_q: a_q.device_addr(),
            a_scale: a_scale.device_addr(),
            w_q: w_q.device_addr(),
            w_scale: w_scale.device_addr(),
            bias: bias.map_or(0, |b| b.device_addr()),
            c: c.device_addr(),
            workspace: self.split_k.workspace_addr(),
            tile_counters: self.split_k.tile_counters_addr(),
            m: m as u32,
            n: n as u32,
            k: k as u32,
            k_tiles_per_split: self.split_k.k_tiles_per_split(),
        };
        let shape = self.config.shape();
        d.launch(self.config.kernel(), self.split_k.grid(), [shape.threads, 1, 1], shape.shared_bytes, &args)
    }
}

/// One-shot `gemm_w8a8` on device buffers (plans, then runs; see [`GemmW8A8Plan::run`]).
#[allow(clippy::too_many_arguments)]
pub fn gemm_w8a8(
    device: &Device,
    a_q: &DeviceBuffer<i8>,
    a_scale: &DeviceBuffer<f32>,
    w_q: &DeviceBuffer<i8>,
    w_scale: &DeviceBuffer<f32>,
    bias: Option<&DeviceBuffer<f16>>,
    c: &DeviceBuffer<f16>,
    (m, n, k): (usize, usize, usize),
) -> Result<()> {
    GemmW8A8Plan::new(device, m, n, k)?.run(a_q, a_scale, w_q, w_scale, bias, c)
}

/// Host-slice form of [`gemm_w8a8`]: returns C f16 `[M, N]`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_w8a8_host(
    device: &Device,
    a_q: &[i8],
    a_scale: &[f32],
    w_q: &[i8],
    w_scale: &[f32],
    bias: Option<&[f16]>,
    (m, n, k): (usize, usize, usize),
) -> Result<Vec<f16>> {
    let plan = GemmW8A8Plan::new(device, m, n, k)?;
    check_len(a_q, "a_q", m * k)?;
    check_len(a_scale, "a_scale", m)?;
    check_len(w_q, "w_q", n * k)?;
    check_len(w_scale, "w_scale", n)?;
    if let Some(b) = bias {
        check_len(b, "bias", n)?;
    }
    let a_q = device.upload(a_q)?;
    let a_scale = device.upload(a_scale)?;
    let w_q = device.upload(w_q)?;
    let w_scale = device.upload(w_scale)?;
    let bias = bias.map(|b| device.upload(b)).transpose()?;
    let c = device.alloc::<f16>(m * n)?;
    plan.run(&a_q, &a_scale, &w_q, &w_scale, bias.as_ref(), &c)?;
    device.download(&c)
}

/// The fused path of a real layer: quantize f16 activations per token
/// (`quantize_int8_per_token`), then `gemm_w8a8`, with the int8 activations in
/// buffers the plan owns. Build once per (M, N, K), run every step.
#[derive(Debug)]
pub struct GemmW8A8F16Plan {
    gemm: GemmW8A8Plan,
    a_q: DeviceBuffer<i8>,
    a_scale: DeviceBuffer<f32>,
}

impl GemmW8A8F16Plan {
    /// Plans the fused quantize + GEMM for (M, N, K).
    pub fn new(device: &Device, m: usize, n: usize, k: usize) -> Result<GemmW8A8F16Plan> {
        GemmW8A8F16Plan::from_gemm(GemmW8A8Plan::new(device, m, n, k)?)
    }

    /// Plans the fused quantize + GEMM around a GEMM plan made with
    /// [`GemmW8A8Plan::with_config`] (an explicit configuration or split count).
    pub fn from_gemm(gemm: GemmW8A8Plan) -> Result<GemmW8A8F16Plan> {
        let (m, _, k) = gemm.dims();
        let device = gemm.device.clone();
        Ok(GemmW8A8F16Plan { a_q: device.alloc(m * k)?, a_scale: device.alloc(m)?, gemm })
    }

    /// The GEMM part's plan.
    pub fn gemm(&self) -> &GemmW8A8Plan {
        &self.gemm
    }

    /// `c = gemm_w8a8(quantize_int8_per_token(a), w_q, w_scale, bias)`; `a` f16 `[M, K]`.
    pub fn run(
        &self,
        a: &DeviceBuffer<f16>,
        w_q: &DeviceBuffer<i8>,
        w_scale: &DeviceBuffer<f32>,
        bias: Option<&DeviceBuffer<f16>>,
        c: &DeviceBuffer<f16>,
    ) -> Result<()> {
        let (m, _, k) = self.gemm.dims();
        quantize_int8_per_token(&self.gemm.device, a, &self.a_q, &self.a_scale, m, k)?;
        self.gemm.run(&self.a_q, &self.a_scale, w_q, w_scale, bias, c)
    }
}
