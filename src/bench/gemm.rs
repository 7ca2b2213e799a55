//! The GEMM sweep: W8A8 INT8 GEMM and the weight-only W4A16/W8A16 GEMMs against FP16
//! cuBLAS over the linear-layer shapes of Llama-3-8B and Llama-3-70B and batch sizes
//! M = 1 … 4096.
//!
//! Per point, each implementation gets its own weights, activations and outputs in
//! `copies` rotating sets whose total exceeds twice the device's L2 (a 4096×4096 INT8
//! weight is 16.7 MB: it would otherwise stay in an H100's 50 MB L2 and the sweep would
//! time the cache), capped by a memory budget; buffers are freed between shapes.

use half::f16;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cublas::{Blas, LtGemm, LtKind};
use super::point::{LaunchFn, Point, Record};
use super::report::BenchResult;
use super::timing::Timeline;
use crate::formats::{PackedWeights, WeightBits, WeightOnlyShape};
use crate::ops::{
    self, DevicePackedWeights, GemmW8A8Config, GemmW8A8F16Plan, GemmW8A8Plan, GemmWeightOnlyPlan, WeightOnlyConfig,
};
use crate::{Device, DeviceBuffer, LaunchOrder, QkError, Result};

/// One linear layer of a model: `y[M, N] = x[M, K] · W[N, K]ᵀ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linear {
    /// Name within the decoder layer (`qkv`, `o`, `gate_up`, `down`).
    pub name: &'static str,
    /// Reduction dimension.
    pub k: usize,
    /// Output features.
    pub n: usize,
}

/// A decoder-only model's linear-layer geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// Display name.
    pub name: &'static str,
    /// CLI name (`llama3-8b`).
    pub key: &'static str,
    /// Decoder layers.
    pub layers: u32,
    /// Hidden size.
    pub hidden: usize,
    /// MLP intermediate size.
    pub intermediate: usize,
    /// The four linear layers of one decoder layer: fused QKV (grouped-query attention:
    /// hidden + 2 × 8 KV heads × 128), O, fused gate+up (2 × intermediate), down.
    pub linears: [Linear; 4],
}

/// Llama-3-8B: 32 layers, hidden 4096, intermediate 14336, 8 KV heads of 128.
pub const LLAMA3_8B: Model = Model {
    name: "Llama-3-8B",
    key: "llama3-8b",
    layers: 32,
    hidden: 4096,
    intermediate: 14336,
    linears: [
        Linear { name: "qkv", k: 4096, n: 6144 },
        Linear { name: "o", k: 4096, n: 4096 },
        Linear { name: "gate_up", k: 4096, n: 28672 },
        Linear { name: "down", k: 14336, n: 4096 },
    ],
};

/// Llama-3-70B: 80 layers, hidden 8192, intermediate 28672, 8 KV heads of 128.
pub const LLAMA3_70B: Model = Model {
    name: "Llama-3-70B",
    key: "llama3-70b",
    layers: 80,
    hidden: 8192,
    intermediate: 28672,
    linears: [
        Linear { name: "qkv", k: 8192, n: 10240 },
        Linear { name: "o", k: 8192, n: 8192 },
        Linear { name: "gate_up", k: 8192, n: 57344 },
        Linear { name: "down", k: 28672, n: 8192 },
    ],
};

/// The models the sweep knows.
pub const MODELS: [Model; 2] = [LLAMA3_8B, LLAMA3_70B];

/// Batch sizes of the default sweep.
pub const DEFAULT_M: [usize; 13] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// A GEMM shape of the sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemmShape {
    /// Reduction dimension.
    pub k: usize,
    /// Output features.
    pub n: usize,
    /// Where it comes from (`Llama-3-8B qkv`), or `custom`.
    pub label: String,
}

/// Parses one `--shapes` item: `llama3-8b`, `llama3-70b` or `K,N`.
pub fn parse_shapes(spec: &str) -> std::result::Result<Vec<GemmShape>, String> {
    let spec = spec.trim();
    if let Some(model) = MODELS.iter().find(|m| m.key.eq_ignore_ascii_case(spec)) {
        return Ok(model
            .linears
            .iter()
            .map(|l| GemmShape { k: l.k, n: l.n, label: format!("{} {}", model.name, l.name) })
            .collect());
    }
    let dims: Vec<_> = spec.split([',', 'x']).map(|v| v.trim().parse::<usize>()).collect();
    match dims.as_slice() {
        [Ok(k), Ok(n)] if *k > 0 && *n > 0 => Ok(vec![GemmShape { k: *k, n: *n, label: "custom".into() }]),
        _ => Err(format!("bad shape `{spec}`: expected llama3-8b, llama3-70b or K,N")),
    }
}

/// A GEMM implementation of the sweep. To add one: a variant here, its arms in
/// [`GemmImpl::name`], [`GemmImpl::bytes`], [`GemmImpl::tensor_rate_vs_fp16`], the
/// buffers it reads in `Weights`/`Activations`, and its launcher in `launcher`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmImpl {
    /// cuBLAS FP16 (cublasGemmEx or cublasLtMatmul, whichever is faster at the point).
    CublasF16,
    /// cuBLASLt INT8 (s8 in, s32 out).
    CublasLtInt8,
    /// `gemm_w8a8` on pre-quantized activations.
    W8A8,
    /// `quantize_int8_per_token` + `gemm_w8a8` from f16 activations.
    QuantW8A8,
    /// `gemm_w4a16`, groups of 128, symmetric (GPTQ without act-order).
    W4A16G128Sym,
    /// `gemm_w4a16`, groups of 128, asymmetric (AWQ, GPTQ with zero points).
    W4A16G128Asym,
    /// `gemm_w4a16`, groups of 128, act-order (GPTQ `desc_act`): A's columns are permuted
    /// on the device before the GEMM.
    W4A16G128ActOrder,
    /// `gemm_w4a16` g128 symmetric on the TMA-fed wgmma kernel
    /// ([`WeightOnlyConfig::LargeWgmmaTma`]: compute capability 9.0, N % 256 == 0,
    /// K % 64 == 0), whatever M: the experiment against `w4a16_g128_sym`'s choice.
    W4A16G128SymTma,
    /// `gemm_w4a16` g128 symmetric on the decode configuration with the mma operands
    /// swapped ([`WeightOnlyConfig::GemvSwapAb`]), whatever M: the experiment against
    /// `w4a16_g128_sym`'s `gemv` at M <= 8.
    W4A16G128SymSwapAb,
    /// `gemm_w4a16` g128 symmetric on [`WeightOnlyConfig::GemvDirect`] (weights streamed
    /// into registers, no shared memory), whatever M: the experiment against `gemv`.
    W4A16G128SymDirect,
    /// `gemm_w4a16` g128 symmetric on the 256 x 128 wgmma tile
    /// ([`WeightOnlyConfig::LargeWgmmaN256`]: compute capability 9.0), whatever M: the
    /// experiment against `w4a16_g128_sym`'s `large_wgmma` at M > 64.
    W4A16G128SymN256,
    /// `gemm_w4a16` g128 symmetric on [`WeightOnlyConfig::LargeWgmmaN256Tma`] (the 256 x 128
    /// wgmma tile fed by the copy engine: N % 128 == 0, K % 64 == 0), whatever M.
    W4A16G128SymN256Tma,
    /// `w4a16_g128_sym` launched with programmatic dependent launch
    /// ([`LaunchOrder::Programmatic`]: compute capability 9.0): the experiment against
    /// `w4a16_g128_sym`, meaningful in CUDA-graph mode (`--graph`), where consecutive
    /// launches are adjacent kernel nodes that may overlap; per-launch event timing puts
    /// an event between them.
    W4A16G128SymPdl,
    /// `w4a16_g128_actorder` with programmatic dependent launch (the permutation of A and
    /// the GEMM): the GEMM fetches its first weights while the permutation runs.
    W4A16G128ActOrderPdl,
    /// `gemm_w8a16`, per-channel scales.
    W8A16,
    /// `w8a16` with programmatic dependent launch.
    W8A16Pdl,
    /// `gemm_w8a16` per-channel on [`WeightOnlyConfig::GemvSwapAb`], whatever M.
    W8A16SwapAb,
    /// `gemm_w8a16` per-channel on [`WeightOnlyConfig::GemvDirect`], whatever M.
    W8A16Direct,
    /// `gemm_w8a16` per-channel on [`WeightOnlyConfig::LargeWgmmaN256`], whatever M.
    W8A16N256,
    /// `dequant_int4` (g128, symmetric) to f16, then cuBLAS FP16: what many frameworks do
    /// at large M.
    DequantInt4Cublas,
}

impl GemmImpl {
    /// Every implementation, baseline first.
    pub const ALL: [GemmImpl; 20] = [
        GemmImpl::CublasF16,
        GemmImpl::CublasLtInt8,
        GemmImpl::W8A8,
        GemmImpl::QuantW8A8,
        GemmImpl::W4A16G128Sym,
        GemmImpl::W4A16G128Asym,
        GemmImpl::W4A16G128ActOrder,
        GemmImpl::W4A16G128SymTma,
        GemmImpl::W4A16G128SymSwapAb,
        GemmImpl::W4A16G128SymDirect,
        GemmImpl::W4A16G128SymN256,
        GemmImpl::W4A16G128SymN256Tma,
        GemmImpl::W4A16G128SymPdl,
        GemmImpl::W4A16G128ActOrderPdl,
        GemmImpl::W8A16,
        GemmImpl::W8A16Pdl,
        GemmImpl::W8A16SwapAb,
        GemmImpl::W8A16Direct,
        GemmImpl::W8A16N256,
        GemmImpl::DequantInt4Cublas,
    ];

    /// The kernel name in reports.
    pub fn name(self) -> &'static str {
        match self {
            GemmImpl::CublasF16 => super::report::BASELINE_GEMM,
            GemmImpl::CublasLtInt8 => "cublaslt_int8",
            GemmImpl::W8A8 => "w8a8",
            GemmImpl::QuantW8A8 => "quant_w8a8",
            GemmImpl::W4A16G128Sym => "w4a16_g128_sym",
            GemmImpl::W4A16G128Asym => "w4a16_g128_asym",
            GemmImpl::W4A16G128ActOrder => "w4a16_g128_actorder",
            GemmImpl::W4A16G128SymTma => "w4a16_g128_sym_tma",
            GemmImpl::W4A16G128SymSwapAb => "w4a16_g128_sym_swap_ab",
            GemmImpl::W4A16G128SymDirect => "w4a16_g128_sym_direct",
            GemmImpl::W4A16G128SymN256 => "w4a16_g128_sym_n256",
            GemmImpl::W4A16G128SymN256Tma => "w4a16_g128_sym_n256_tma",
            GemmImpl::W4A16G128SymPdl => "w4a16_g128_sym_pdl",
            GemmImpl::W4A16G128ActOrderPdl => "w4a16_g128_actorder_pdl",
            GemmImpl::W8A16 => "w8a16",
            GemmImpl::W8A16Pdl => "w8a16_pdl",
            GemmImpl::W8A16SwapAb => "w8a16_swap_ab",
            GemmImpl::W8A16Direct => "w8a16_direct",
            GemmImpl::W8A16N256 => "w8a16_n256",
            GemmImpl::DequantInt4Cublas => "dequant_int4_cublas",
        }
    }

    /// Whether the implementation runs only when named (`--kernels`), not in the default
    /// sweep: an experiment the planner does not dispatch to (not yet timed): the
    /// TMA-fed kernel (pointless below 128 rows of A), the 256 x 128 wgmma tile (meant
    /// for M > 64), the decode configurations with the operands swapped or streamed
    /// into registers (meant for M <= 8) and the programmatic launches.
    pub fn explicit_only(self) -> bool {
        self.forced_config().is_some() || self.launch_order() == LaunchOrder::Programmatic
    }

    /// How this crate's kernels of the implementation are launched.
    pub(crate) fn launch_order(self) -> LaunchOrder {
        if self.stream_order_twin() == self {
            LaunchOrder::AfterPrevious
        } else {
            LaunchOrder::Programmatic
        }
    }

    /// The implementation that launches the same kernels on the same weights in stream
    /// order: the `*_pdl` ones differ from theirs only in the launch, so they share its
    /// weights, traffic and everything else but [`GemmImpl::launch_order`].
    fn stream_order_twin(self) -> GemmImpl {
        match self {
            GemmImpl::W4A16G128SymPdl => GemmImpl::W4A16G128Sym,
            GemmImpl::W4A16G128ActOrderPdl => GemmImpl::W4A16G128ActOrder,
            GemmImpl::W8A16Pdl => GemmImpl::W8A16,
            other => other,
        }
    }

    /// The weight-only configuration an experiment forces (`None`: the planner's choice).
    fn forced_config(self) -> Option<WeightOnlyConfig> {
        match self {
            GemmImpl::W4A16G128SymTma => Some(WeightOnlyConfig::LargeWgmmaTma),
            GemmImpl::W4A16G128SymSwapAb | GemmImpl::W8A16SwapAb => Some(WeightOnlyConfig::GemvSwapAb),
            GemmImpl::W4A16G128SymDirect | GemmImpl::W8A16Direct => Some(WeightOnlyConfig::GemvDirect),
            GemmImpl::W4A16G128SymN256 | GemmImpl::W8A16N256 => Some(WeightOnlyConfig::LargeWgmmaN256),
            GemmImpl::W4A16G128SymN256Tma => Some(WeightOnlyConfig::LargeWgmmaN256Tma),
            _ => None,
        }
    }

    /// The implementation called `name`.
    pub fn from_name(name: &str) -> Option<GemmImpl> {
        GemmImpl::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Compulsory bytes one launch moves: weights (and their scales), activations (and
    /// theirs), outputs; for quantize+GEMM also the int8 activations written and re-read.
    /// Split-K partials are not counted (they are the kernel's choice, not the problem's).
    pub fn bytes(self, m: usize, n: usize, k: usize) -> f64 {
        // The weight-only GEMMs read their packed weights, scales, zero points and
        // act-order permutation once: what `packed_bytes` counts.
        let packed = self.packed_bytes(n, k) as f64;
        let (m, n, k) = (m as f64, n as f64, k as f64);
        // 4-bit codes, one f16 scale per group of 128.
        let w4 = n * k / 2.0 + 2.0 * n * k / WEIGHT_ONLY_GROUP as f64;
        let f16_io = 2.0 * m * k + 2.0 * m * n;
        match self {
            GemmImpl::W4A16G128Sym
            | GemmImpl::W4A16G128SymTma
            | GemmImpl::W4A16G128SymSwapAb
            | GemmImpl::W4A16G128SymDirect
            | GemmImpl::W4A16G128SymN256
            | GemmImpl::W4A16G128SymN256Tma
            | GemmImpl::W4A16G128SymPdl
            | GemmImpl::W4A16G128Asym
            | GemmImpl::W8A16
            | GemmImpl::W8A16Pdl
            | GemmImpl::W8A16SwapAb
            | GemmImpl::W8A16Direct
            | GemmImpl::W8A16N256 => packed + f16_io,
            // The permute kernel also reads A and writes its permuted copy.
            GemmImpl::W4A16G128ActOrder | GemmImpl::W4A16G128ActOrderPdl => packed + f16_io + 4.0 * m * k,
            // dequant writes the f16 weights, cuBLAS reads them back.
            GemmImpl::DequantInt4Cublas => w4 + 4.0 * n * k + f16_io,
            GemmImpl::CublasF16 => 2.0 * n * k + 2.0 * m * k + 2.0 * m * n,
            GemmImpl::CublasLtInt8 => n * k + m * k + 4.0 * m * n,
            GemmImpl::W8A8 => n * k + 4.0 * n + m * k + 4.0 * m + 2.0 * m * n,
            GemmImpl::QuantW8A8 => n * k + 4.0 * n + 2.0 * m * k + 2.0 * (m * k + 4.0 * m) + 2.0 * m * n,
        }
    }

    /// Tensor-core math rate relative to FP16 (INT8 MMA runs at twice the FP16 rate on
    /// sm_80 and sm_90).
    pub fn tensor_rate_vs_fp16(self) -> f64 {
        // The implementations on int8 weights multiply int8 by int8; the others (the
        // weight-only GEMMs, dequant + cuBLAS) run FP16 math on dequantized weights.
        if self.needs_i8_weights() {
            2.0
        } else {
            1.0
        }
    }

    fn needs_f16_weights(self) -> bool {
        self == GemmImpl::CublasF16
    }

    fn reads_f16_activations(self) -> bool {
        !matches!(self, GemmImpl::CublasLtInt8 | GemmImpl::W8A8)
    }

    fn needs_i8_weights(self) -> bool {
        matches!(self, GemmImpl::CublasLtInt8 | GemmImpl::W8A8 | GemmImpl::QuantW8A8)
    }

    /// The kernel-layout weights this implementation reads: (bits, asymmetric, act-order).
    fn packed_weights(self) -> Option<(WeightBits, bool, bool)> {
        match self.stream_order_twin() {
            GemmImpl::W4A16G128Sym
            | GemmImpl::W4A16G128SymTma
            | GemmImpl::W4A16G128SymSwapAb
            | GemmImpl::W4A16G128SymDirect
            | GemmImpl::W4A16G128SymN256
            | GemmImpl::W4A16G128SymN256Tma => Some((WeightBits::Int4, false, false)),
            GemmImpl::W4A16G128Asym => Some((WeightBits::Int4, true, false)),
            GemmImpl::W4A16G128ActOrder => Some((WeightBits::Int4, false, true)),
            GemmImpl::W8A16 | GemmImpl::W8A16SwapAb | GemmImpl::W8A16Direct | GemmImpl::W8A16N256 => {
                Some((WeightBits::Int8, false, false))
            }
            _ => None,
        }
    }

    /// Group size of the implementation's weights (`k` = per-channel: the 8-bit ones).
    fn group(self, k: usize) -> usize {
        if matches!(self.packed_weights(), Some((WeightBits::Int8, ..))) {
            k
        } else {
            WEIGHT_ONLY_GROUP
        }
    }

    /// Bytes of the packed weights of this implementation (0 for others).
    fn packed_bytes(self, n: usize, k: usize) -> u64 {
        match self.packed_weights() {
            Some((bits, asym, act_order)) => {
                let groups = (k / self.group(k)) as u64;
                let weight_bytes = n as u64 * k as u64 * bits.bits() as u64 / 8;
                weight_bytes
                    + 2 * groups * n as u64
                    + u64::from(asym) * groups * n as u64 / 2
                    + u64::from(act_order) * 4 * k as u64
            }
            None if self == GemmImpl::DequantInt4Cublas => {
                (n * k / 2) as u64 + 2 * (n * k / WEIGHT_ONLY_GROUP) as u64 + 2 * (n * k) as u64
            }
            None => 0,
        }
    }
}

/// Group size of the weight-only INT4 benchmarks: the most common GPTQ/AWQ choice, and
/// the one the ideal 3.9x (4 bits + one f16 scale per 128 weights) refers to.
pub const WEIGHT_ONLY_GROUP: usize = 128;

/// Random kernel-layout weights. Every bit pattern of the packed words is a valid set
/// of codes (all 4-bit and 8-bit codes are legal), so no host-side packing of hundreds
/// of millions of weights is needed; act-order gets a random permutation of K.
fn random_packed_weights(
    bits: WeightBits,
    (n, k, group): (usize, usize, usize),
    asym: bool,
    act_order: bool,
    seed: u64,
) -> Result<PackedWeights> {
    let shape = WeightOnlyShape::new(bits, n, k, group)?;
    let words = pattern(shape.packed_words(), seed, |r| r.random::<u32>());
    let scales = pattern(shape.scale_count(), seed + 1, |r| f16::from_f32(r.random_range(0.002f32..0.02)));
    let zeros = asym.then(|| pattern(shape.zero_words(), seed + 2, |r| r.random::<u32>()));
    let perm = act_order.then(|| {
        let mut rng = StdRng::seed_from_u64(seed + 3);
        let mut p: Vec<u32> = (0..k as u32).collect();
        for i in (1..k).rev() {
            p.swap(i, rng.random_range(0..=i));
        }
        p
    });
    Ok(PackedWeights::from_parts(shape, words, scales, zeros, perm)?)
}

/// Fraction of device memory the sweep may allocate: the rest is left to the CUDA
/// context, cuBLAS workspaces and split-K workspaces.
const MEMORY_BUDGET_FRACTION: f64 = 0.6;

/// Assumed device memory when the driver does not report it (the smallest data-center
/// card the kernels target has 16 GB).
const FALLBACK_MEMORY_BYTES: u64 = 16 << 30;

/// Assumed L2 size when the driver does not report it: larger than any current GPU's
/// (B200: 126 MB), so rotation errs on the side of more copies.
const FALLBACK_L2_BYTES: u64 = 256 << 20;

/// The rotating working set must exceed this multiple of L2: after one pass over twice
/// the cache, nothing of the first copy can still be resident (LRU-like replacement).
const L2_ROTATION_FACTOR: u64 = 2;

/// Upper bound on copies (tiny shapes would otherwise ask for thousands).
const MAX_COPIES: usize = 64;

/// Host pattern block: random data is generated once per block and repeated, so
/// gigabyte-sized uploads do not spend seconds in the RNG.
const PATTERN_BLOCK_ELEMS: usize = 1 << 20;

/// Seed of the input data (any fixed value: data only has to be non-trivial, since
/// all-zero operands draw less power and run faster on tensor cores).
const DATA_SEED: u64 = 0x0da7a;

/// The memory budget of the sweep, bytes.
pub(crate) fn memory_budget_bytes(device: &Device) -> u64 {
    (device.properties().total_memory_bytes.unwrap_or(FALLBACK_MEMORY_BYTES) as f64 * MEMORY_BUDGET_FRACTION) as u64
}

/// Copies of a working set of `set_bytes` (its smallest per-launch part) needed to exceed
/// twice the L2, at least 1 and at most `MAX_COPIES` (64); 1 when rotation is off.
pub fn rotation_copies(l2_bytes: Option<u64>, set_bytes: u64, rotation: bool) -> usize {
    if !rotation || set_bytes == 0 {
        return 1;
    }
    let target = L2_ROTATION_FACTOR * l2_bytes.unwrap_or(FALLBACK_L2_BYTES);
    (target.div_ceil(set_bytes) as usize).clamp(1, MAX_COPIES)
}

fn pattern<T: Clone>(len: usize, seed: u64, gen: impl Fn(&mut StdRng) -> T) -> Vec<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    let block: Vec<T> = (0..PATTERN_BLOCK_ELEMS.min(len)).map(|_| gen(&mut rng)).collect();
    block.iter().cycle().take(len).cloned().collect()
}

/// `copies` device buffers holding the same host data (uploaded once, then copied on
/// the device).
fn upload_copies<T: bytemuck::Pod>(device: &Device, data: &[T], copies: usize) -> Result<Vec<DeviceBuffer<T>>> {
    let first = device.upload(data)?;
    let mut out = Vec::with_capacity(copies);
    for _ in 1..copies {
        let b = device.alloc::<T>(data.len())?;
        device.copy(&b, &first)?;
        out.push(b);
    }
    out.insert(0, first);
    device.synchronize()?;
    Ok(out)
}

fn i8_data(len: usize, seed: u64) -> Vec<i8> {
    pattern(len, seed, |r| r.random_range(-127i8..=127))
}

fn f16_data(len: usize, seed: u64) -> Vec<f16> {
    pattern(len, seed, |r| f16::from_f32(r.random_range(-1.0f32..1.0)))
}

fn scale_data(len: usize, seed: u64) -> Vec<f32> {
    pattern(len, seed, |r| r.random_range(0.002f32..0.02))
}

/// Weights of one shape, in `copies` rotating sets.
pub(crate) struct Weights {
    n: usize,
    k: usize,
    w_f16: Vec<DeviceBuffer<f16>>,
    w_i8: Vec<DeviceBuffer<i8>>,
    w_scale: Vec<DeviceBuffer<f32>>,
    /// Kernel-layout weights per weight-only implementation, `copies` each.
    packed: Vec<(GemmImpl, Vec<DevicePackedWeights>)>,
    /// Generic-layout g128 INT4 weights (packed, scales) of `dequant_int4`, and the f16
    /// matrix it writes for cuBLAS (one: it is an output).
    int4_generic: Vec<(DeviceBuffer<u8>, DeviceBuffer<f16>)>,
    int4_dequantized: Option<DeviceBuffer<f16>>,
}

impl Weights {
    pub(crate) fn new(device: &Device, n: usize, k: usize, impls: &[GemmImpl], copies: usize) -> Result<Weights> {
        let f16s = impls.iter().any(|i| i.needs_f16_weights());
        let i8s = impls.iter().any(|i| i.needs_i8_weights());
        let mut packed = Vec::new();
        for &imp in impls {
            if let Some((bits, asym, act_order)) = imp.packed_weights() {
                let host = random_packed_weights(bits, (n, k, imp.group(k)), asym, act_order, DATA_SEED + 10)?;
                let copies = (0..copies).map(|_| DevicePackedWeights::upload(device, &host)).collect::<Result<_>>()?;
                packed.push((imp, copies));
            }
        }
        let dequant = impls.contains(&GemmImpl::DequantInt4Cublas);
        let int4_generic = if dequant {
            let codes = pattern(n * k / 2, DATA_SEED + 20, |r| r.random::<u8>());
            let scales =
                pattern(n * (k / WEIGHT_ONLY_GROUP), DATA_SEED + 21, |r| f16::from_f32(r.random_range(0.002f32..0.02)));
            let codes = upload_copies(device, &codes, copies)?;
            let scales = upload_copies(device, &scales, copies)?;
            codes.into_iter().zip(scales).collect()
        } else {
            Vec::new()
        };
        Ok(Weights {
            n,
            k,
            w_f16: if f16s { upload_copies(device, &f16_data(n * k, DATA_SEED), copies)? } else { Vec::new() },
            w_i8: if i8s { upload_copies(device, &i8_data(n * k, DATA_SEED + 1), copies)? } else { Vec::new() },
            w_scale: if i8s { upload_copies(device, &scale_data(n, DATA_SEED + 2), copies)? } else { Vec::new() },
            packed,
            int4_generic,
            int4_dequantized: if dequant { Some(device.alloc::<f16>(n * k)?) } else { None },
        })
    }

    /// The kernel-layout weights of `imp`, all copies.
    pub(crate) fn packed(&self, imp: GemmImpl) -> std::result::Result<&[DevicePackedWeights], String> {
        self.packed.iter().find(|(i, _)| *i == imp).map(|(_, w)| w.as_slice()).ok_or_else(|| "no packed weights".into())
    }

    /// Copies held (rotation).
    fn copies(&self) -> usize {
        self.w_f16
            .len()
            .max(self.w_i8.len())
            .max(self.packed.first().map_or(0, |(_, w)| w.len()))
            .max(self.int4_generic.len())
            .max(1)
    }

    /// The f16 weights of copy 0 (empty buffer list: a planning error upstream).
    pub(crate) fn f16_weights(&self) -> &DeviceBuffer<f16> {
        &self.w_f16[0]
    }

    /// The int8 weights and their scales, copy 0.
    pub(crate) fn i8_weights(&self) -> (&DeviceBuffer<i8>, &DeviceBuffer<f32>) {
        (&self.w_i8[0], &self.w_scale[0])
    }

    /// Bytes per copy for `impls`.
    pub(crate) fn bytes_per_copy(n: usize, k: usize, impls: &[GemmImpl]) -> u64 {
        let nk = (n * k) as u64;
        let f16s = impls.iter().any(|i| i.needs_f16_weights());
        let i8s = impls.iter().any(|i| i.needs_i8_weights());
        u64::from(f16s) * 2 * nk
            + u64::from(i8s) * (nk + 4 * n as u64)
            + impls.iter().map(|i| i.packed_bytes(n, k)).sum::<u64>()
    }
}

/// Activations and outputs of one (shape, M), in rotating sets.
pub(crate) struct Activations {
    m: usize,
    a_f16: Vec<DeviceBuffer<f16>>,
    a_i8: Vec<DeviceBuffer<i8>>,
    a_scale: Vec<DeviceBuffer<f32>>,
    c_f16: Vec<DeviceBuffer<f16>>,
    c_i32: Vec<DeviceBuffer<i32>>,
}

impl Activations {
    pub(crate) fn new(
        device: &Device,
        m: usize,
        w: &Weights,
        impls: &[GemmImpl],
        copies: usize,
    ) -> Result<Activations> {
        let (n, k) = (w.n, w.k);
        let has = |i: GemmImpl| impls.contains(&i);
        let f16_in = impls.iter().any(|i| i.reads_f16_activations());
        let i8_in = has(GemmImpl::W8A8) || has(GemmImpl::CublasLtInt8);
        let f16_out = impls.iter().any(|&i| i != GemmImpl::CublasLtInt8);
        let alloc_copies =
            |len: usize| -> Result<Vec<DeviceBuffer<f16>>> { (0..copies).map(|_| device.alloc::<f16>(len)).collect() };
        Ok(Activations {
            m,
            a_f16: if f16_in { upload_copies(device, &f16_data(m * k, DATA_SEED + 3), copies)? } else { Vec::new() },
            a_i8: if i8_in { upload_copies(device, &i8_data(m * k, DATA_SEED + 4), copies)? } else { Vec::new() },
            a_scale: if i8_in { upload_copies(device, &scale_data(m, DATA_SEED + 5), copies)? } else { Vec::new() },
            c_f16: if f16_out { alloc_copies(m * n)? } else { Vec::new() },
            c_i32: if has(GemmImpl::CublasLtInt8) {
                (0..copies).map(|_| device.alloc::<i32>(m * n)).collect::<Result<_>>()?
            } else {
                Vec::new()
            },
        })
    }

    /// Bytes per copy for `impls` at (m, n, k).
    pub(crate) fn bytes_per_copy(m: usize, n: usize, k: usize, impls: &[GemmImpl]) -> u64 {
        let has = |i: GemmImpl| impls.contains(&i);
        let (m, n, k) = (m as u64, n as u64, k as u64);
        let f16_in = impls.iter().any(|i| i.reads_f16_activations());
        let i8_in = has(GemmImpl::W8A8) || has(GemmImpl::CublasLtInt8);
        let f16_out = impls.iter().any(|&i| i != GemmImpl::CublasLtInt8);
        u64::from(f16_in) * 2 * m * k
            + u64::from(i8_in) * (m * k + 4 * m)
            + u64::from(f16_out) * 2 * m * n
            + u64::from(has(GemmImpl::CublasLtInt8)) * 4 * m * n
    }
}

/// Plans of one point (kept alive while its launchers run).
pub(crate) struct Plans {
    blas: Option<std::result::Result<Blas, String>>,
    lt_f16: Option<std::result::Result<LtGemm, String>>,
    lt_i8: Option<std::result::Result<LtGemm, String>>,
    w8a8: Option<std::result::Result<GemmW8A8Plan, String>>,
    quant_w8a8: Option<std::result::Result<GemmW8A8F16Plan, String>>,
    /// One plan per weight-only implementation (a plan is tied to its weights' format).
    weight_only: Vec<(GemmImpl, std::result::Result<GemmWeightOnlyPlan, String>)>,
}

impl Plans {
    /// The plans of `impls` at (m, n, k); `splits` forces the K splits of this crate's
    /// kernels (`None`: the planner's choice, as `new` makes it).
    pub(crate) fn new(
        device: &Device,
        (m, n, k): (usize, usize, usize),
        impls: &[GemmImpl],
        w: &Weights,
        splits: Option<usize>,
    ) -> Plans {
        let has = |i: GemmImpl| impls.contains(&i);
        let weight_only_plan = |i: GemmImpl, p: &DevicePackedWeights| {
            let config = i.forced_config().unwrap_or_else(|| WeightOnlyConfig::choose(device, m));
            GemmWeightOnlyPlan::with_config(device, p, m, config, splits)?.with_launch_order(i.launch_order())
        };
        let w8a8_plan = || GemmW8A8Plan::with_config(device, m, n, k, GemmW8A8Config::for_m(m), splits);
        let weight_only = impls
            .iter()
            .filter(|i| i.packed_weights().is_some())
            .map(|&i| (i, w.packed(i).and_then(|p| s(weight_only_plan(i, &p[0])))))
            .collect();
        fn s<T>(r: Result<T>) -> std::result::Result<T, String> {
            r.map_err(|e: QkError| e.to_string())
        }
        Plans {
            blas: (has(GemmImpl::CublasF16) || has(GemmImpl::DequantInt4Cublas)).then(|| s(Blas::new(device))),
            lt_f16: has(GemmImpl::CublasF16).then(|| s(LtGemm::new(device, LtKind::F16, (m, n, k)))),
            lt_i8: has(GemmImpl::CublasLtInt8).then(|| s(LtGemm::new(device, LtKind::Int8, (m, n, k)))),
            w8a8: has(GemmImpl::W8A8).then(|| s(w8a8_plan())),
            quant_w8a8: has(GemmImpl::QuantW8A8).then(|| s(w8a8_plan().and_then(GemmW8A8F16Plan::from_gemm))),
            weight_only,
        }
    }
}

impl Plans {
    /// The launch plan of `imp` (one of this crate's kernels) as a report line.
    fn describe(&self, imp: GemmImpl) -> Option<String> {
        match imp {
            GemmImpl::W8A8 => plan_ref(&self.w8a8).ok().map(GemmW8A8Plan::describe),
            GemmImpl::QuantW8A8 => plan_ref(&self.quant_w8a8).ok().map(|p| p.gemm().describe()),
            _ => self
                .weight_only
                .iter()
                .find(|(i, _)| *i == imp)
                .and_then(|(_, p)| p.as_ref().ok())
                .map(|p| p.describe()),
        }
    }
}

fn plan_ref<T>(p: &Option<std::result::Result<T, String>>) -> std::result::Result<&T, String> {
    match p {
        Some(Ok(t)) => Ok(t),
        Some(Err(e)) => Err(e.clone()),
        None => Err("not planned".into()),
    }
}

/// Launches the cuBLAS FP16 path: GemmEx or Lt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum F16Path {
    GemmEx,
    Lt,
}

impl F16Path {
    fn label(self) -> &'static str {
        match self {
            F16Path::GemmEx => "cublasGemmEx",
            F16Path::Lt => "cublasLtMatmul",
        }
    }
}

/// The launcher of `imp` at this point, or why it cannot run.
fn launcher<'a>(
    device: &'a Device,
    imp: GemmImpl,
    f16_path: F16Path,
    w: &'a Weights,
    a: &'a Activations,
    plans: &'a Plans,
) -> std::result::Result<LaunchFn<'a>, String> {
    let (m, n, k) = (a.m, w.n, w.k);
    let copies = w.copies();
    let pick = move |i: usize| i % copies;
    Ok(match imp {
        GemmImpl::CublasF16 => match f16_path {
            F16Path::GemmEx => {
                let blas = plan_ref(&plans.blas)?;
                Box::new(move |i| {
                    let c = pick(i);
                    blas.gemm_f16((m, n, k), &a.a_f16[c], &w.w_f16[c], &a.c_f16[c])
                })
            }
            F16Path::Lt => {
                let lt = plan_ref(&plans.lt_f16)?;
                lt.check(a.a_f16[0].len(), w.w_f16[0].len(), a.c_f16[0].len()).map_err(|e| e.to_string())?;
                Box::new(move |i| {
                    let c = pick(i);
                    lt.run(a.a_f16[c].device_addr(), w.w_f16[c].device_addr(), a.c_f16[c].device_addr())
                })
            }
        },
        GemmImpl::CublasLtInt8 => {
            let lt = plan_ref(&plans.lt_i8)?;
            debug_assert_eq!(lt.kind(), LtKind::Int8);
            lt.check(a.a_i8[0].len(), w.w_i8[0].len(), a.c_i32[0].len()).map_err(|e| e.to_string())?;
            Box::new(move |i| {
                let c = pick(i);
                lt.run(a.a_i8[c].device_addr(), w.w_i8[c].device_addr(), a.c_i32[c].device_addr())
            })
        }
        GemmImpl::W8A8 => {
            let plan = plan_ref(&plans.w8a8)?;
            Box::new(move |i| {
                let c = pick(i);
                plan.run(&a.a_i8[c], &a.a_scale[c], &w.w_i8[c], &w.w_scale[c], None, &a.c_f16[c])
            })
        }
        GemmImpl::QuantW8A8 => {
            let plan = plan_ref(&plans.quant_w8a8)?;
            Box::new(move |i| {
                let c = pick(i);
                plan.run(&a.a_f16[c], &w.w_i8[c], &w.w_scale[c], None, &a.c_f16[c])
            })
        }
        GemmImpl::W4A16G128Sym
        | GemmImpl::W4A16G128Asym
        | GemmImpl::W4A16G128ActOrder
        | GemmImpl::W4A16G128SymTma
        | GemmImpl::W4A16G128SymSwapAb
        | GemmImpl::W4A16G128SymDirect
        | GemmImpl::W4A16G128SymN256
        | GemmImpl::W4A16G128SymN256Tma
        | GemmImpl::W4A16G128SymPdl
        | GemmImpl::W4A16G128ActOrderPdl
        | GemmImpl::W8A16
        | GemmImpl::W8A16Pdl
        | GemmImpl::W8A16SwapAb
        | GemmImpl::W8A16Direct
        | GemmImpl::W8A16N256 => {
            let plan = match plans.weight_only.iter().find(|(i, _)| *i == imp) {
                Some((_, Ok(p))) => p,
                Some((_, Err(e))) => return Err(e.clone()),
                None => return Err("not planned".into()),
            };
            let weights = w.packed(imp)?;
            Box::new(move |i| {
                let c = pick(i);
                plan.run(&a.a_f16[c], &weights[c], None, &a.c_f16[c])
            })
        }
        GemmImpl::DequantInt4Cublas => {
            let blas = plan_ref(&plans.blas)?;
            let scratch = w.int4_dequantized.as_ref().ok_or("no dequant scratch")?;
            let group = crate::formats::GroupSize::G128;
            Box::new(move |i| {
                let c = pick(i);
                let (codes, scales) = &w.int4_generic[c];
                ops::dequant_int4(device, codes, scales, None, scratch, n, k, group)?;
                blas.gemm_f16((m, n, k), &a.a_f16[c], scratch, &a.c_f16[c])
            })
        }
    })
}

/// Launches per path when choosing the faster cuBLAS FP16 path (after as many warm-ups).
const F16_PATH_TRIAL_LAUNCHES: usize = 5;

/// Times both cuBLAS FP16 paths briefly and returns the faster one that works.
fn choose_f16_path<'a>(
    device: &'a Device,
    w: &'a Weights,
    a: &'a Activations,
    plans: &'a Plans,
) -> std::result::Result<F16Path, String> {
    let mut best: Option<(F16Path, f64)> = None;
    let mut errors = Vec::new();
    let mut timeline = Timeline::new(device).map_err(|e| e.to_string())?;
    for path in [F16Path::GemmEx, F16Path::Lt] {
        let timed = launcher(device, GemmImpl::CublasF16, path, w, a, plans).and_then(|mut f| {
            timeline.time(F16_PATH_TRIAL_LAUNCHES, &mut f).map_err(|e| e.to_string())?;
            timeline.time(F16_PATH_TRIAL_LAUNCHES, &mut f).map_err(|e| e.to_string())
        });
        match timed {
            Ok(mut t) => {
                t.sort_by(f64::total_cmp);
                let median = t[t.len() / 2];
                if best.is_none_or(|(_, b)| median < b) {
                    best = Some((path, median));
                }
            }
            Err(e) => {
                device.synchronize().map_err(|e| e.to_string())?;
                errors.push(format!("{}: {e}", path.label()));
            }
        }
    }
    best.map(|(p, _)| p).ok_or_else(|| errors.join("; "))
}

/// The result skeleton of `imp` at (m, n, k).
fn result_of(imp: GemmImpl, label: &str, (m, n, k): (usize, usize, usize)) -> BenchResult {
    BenchResult {
        kernel: imp.name().into(),
        label: Some(label.into()),
        m: m as u64,
        n: n as u64,
        k: k as u64,
        bytes: Some(imp.bytes(m, n, k)),
        tensor_rate_vs_fp16: Some(imp.tensor_rate_vs_fp16()),
        ..BenchResult::default()
    }
}

/// Builds the point (shape, M) with every implementation of `impls` (baseline first),
/// warms each up with `warmup` interleaved rounds and, in graph mode, captures graphs of
/// `graph_launches` launches. An implementation that cannot be planned or launched is
/// recorded as skipped with the reason.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_point<'a>(
    device: &'a Device,
    shape: &GemmShape,
    impls: &[GemmImpl],
    w: &'a Weights,
    a: &'a Activations,
    plans: &'a Plans,
    warmup: usize,
    graph_launches: Option<usize>,
) -> Result<Point<'a>> {
    let dims = (a.m, shape.n, shape.k);
    let mut point = Point::new(device, format!("gemm/{}x{}", shape.k, shape.n), a.m)?;
    let mut f16_note = None;
    for &imp in impls {
        let launch = if imp == GemmImpl::CublasF16 {
            choose_f16_path(device, w, a, plans).and_then(|path| {
                f16_note = Some(path.label());
                launcher(device, imp, path, w, a, plans)
            })
        } else {
            launcher(device, imp, F16Path::GemmEx, w, a, plans)
        };
        let mut result = result_of(imp, &shape.label, dims);
        result.plan = plans.describe(imp);
        point.add(result, launch);
    }
    if let (Some(note), Some(label)) = (f16_note, point.label_mut(GemmImpl::CublasF16.name())) {
        *label = Some(format!("{} ({note})", shape.label));
    }
    let all: Vec<usize> = point.runnable().into_iter().map(|(i, _)| i).collect();
    point.time_rounds(&all, warmup, Record::Discard)?;
    if let Some(launches) = graph_launches {
        point.capture_graphs(launches);
        let all: Vec<usize> = point.runnable().into_iter().map(|(i, _)| i).collect();
        // One replay each: graph upload and first-launch costs stay out of the samples.
        point.time_rounds(&all, 1, Record::Discard)?;
    }
    Ok(point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse_from_models_and_pairs() {
        let s = parse_shapes("llama3-70b").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!((s[2].k, s[2].n), (8192, 57344));
        assert_eq!(parse_shapes("4096,6144").unwrap()[0].n, 6144);
        assert!(parse_shapes("4096").is_err());
        assert!(parse_shapes("llama2").is_err());
    }

    #[test]
    fn rotation_exceeds_twice_l2_and_is_bounded() {
        let l2 = 50 << 20;
        let set = 4096 * 4096;
        let copies = rotation_copies(Some(l2), set, true);
        assert!(copies as u64 * set > 2 * l2 && (copies as u64 - 1) * set <= 2 * l2);
        assert_eq!(rotation_copies(Some(l2), 470 << 20, true), 1);
        assert_eq!(rotation_copies(Some(l2), set, false), 1);
        assert_eq!(rotation_copies(Some(l2), 1, true), MAX_COPIES);
    }

    #[test]
    fn bytes_count_each_operand_once() {
        // FP16: 2 bytes for each of W, A, C.
        assert_eq!(GemmImpl::CublasF16.bytes(2, 3, 4), 2.0 * (12.0 + 8.0 + 6.0));
        // W8A8: int8 W and A, f32 scales, f16 C.
        assert_eq!(GemmImpl::W8A8.bytes(2, 3, 4), 12.0 + 12.0 + 8.0 + 8.0 + 12.0);
        // Weight-only, M = 1, N = 64, K = 256 (two groups of 128): A and C in f16 (512 +
        // 128), 4-bit codes (8192) and f16 scales (2 x 64 x 2), asymmetric nibble zero
        // points (64), act-order's u32 permutation (1024) and permuted copy of A (2 x 512).
        let f16_io = 512.0 + 128.0;
        assert_eq!(GemmImpl::W4A16G128Sym.bytes(1, 64, 256), 8192.0 + 256.0 + f16_io);
        assert_eq!(GemmImpl::W4A16G128SymDirect.bytes(1, 64, 256), 8192.0 + 256.0 + f16_io);
        assert_eq!(GemmImpl::W4A16G128Asym.bytes(1, 64, 256), 8192.0 + 256.0 + 64.0 + f16_io);
        assert_eq!(GemmImpl::W4A16G128ActOrder.bytes(1, 64, 256), 8192.0 + 256.0 + 1024.0 + f16_io + 1024.0);
        // 8-bit per-channel: one f16 scale per column.
        assert_eq!(GemmImpl::W8A16.bytes(1, 64, 256), 16384.0 + 128.0 + f16_io);
        // A programmatic launch moves what its stream-order twin moves, from the same
        // weights; it runs only when named.
        for imp in GemmImpl::ALL.into_iter().filter(|i| i.launch_order() == LaunchOrder::Programmatic) {
            let twin = imp.stream_order_twin();
            assert_ne!(twin, imp);
            assert_eq!(imp.bytes(3, 64, 256), twin.bytes(3, 64, 256), "{imp:?}");
            assert_eq!(imp.packed_weights(), twin.packed_weights(), "{imp:?}");
            assert!(imp.explicit_only() && imp.name().ends_with("_pdl"), "{imp:?}");
        }
    }
}
