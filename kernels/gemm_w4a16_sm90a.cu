/*
 * gemm_w4a16_sm90a.cu — the weight-only GEMM of gemm_w4a16.cu (W4A16 and W8A16) for large
 * M on Hopper: warpgroup MMA (wgmma) instead of mma.sync. Compiled for sm_90a only
 * (build.rs: files named *_sm90a.cu), chosen by the host on compute capability 9.0.
 *
 *   C[m, n] = f16( f32( sum_k A[m, k] * w[n, k] ) (+ bias[n]) ),  w as in gemm_w4a16.cu
 *
 * Why a second kernel
 * -------------------
 * On Hopper the mma.sync kernels of this project stay far below cuBLAS once a GEMM is
 * compute-bound (H100, docs/results/h100-2026-11-26: gemm_w4a16's large configuration
 * ran at 0.3x cuBLAS FP16 at M = 4096; gemm_w8a8's at about 600 TOP/s against
 * cuBLASLt INT8's 1400-1580), and cuBLAS's sm_90 kernels use wgmma. wgmma is issued
 * once per warpgroup for a 64 x N x 16 product and runs asynchronously, so the
 * dequantization of the next k-step overlaps the tensor-core work of this one.
 * Measured on an H200 (docs/results/h200-2026-11-26): about 2x the mma.sync large
 * configuration, 0.61-0.73x cuBLAS FP16 at M = 4096; its tests passed on the card.
 *
 * Operand roles
 * -------------
 * wgmma takes its A operand (64 x 16) from registers or shared memory and B (16 x N)
 * from shared memory only (PTX ISA 9.7.15.5). The weights must be dequantized in
 * registers, so they are wgmma's A: the GEMM is computed transposed, D = W_tile *
 * A_tileᵀ, D[64 columns of C][BM rows of C]. The packed layout (qk_abi.h) already
 * fits: a lane's 16 bytes of a k-step unit hold the mma.m16n8k16 B fragments of the
 * strip's 8 n8-tiles, and two n8-tiles' B fragments side by side are exactly an
 * m16 x k16 A fragment of the transposed product (a0 = b0 of tile 2i, a1 = b0 of tile
 * 2i + 1, a2 = b1 of tile 2i, a3 = b1 of tile 2i + 1: rows g and g + 8 at k 2t, 2t + 1
 * and 2t + 8, 2t + 9).
 *
 * Two warps per strip. A warp's accumulators cover its columns x BM rows of C: with a
 * whole 64-column strip per warp, BM could be at most 64 (2 * BM f32 registers per
 * thread), and every weight would be dequantized once per 64 rows of A. Instead two
 * warps share each strip, each dequantizing one 32-column half of every lane's chunk
 * (4-bit: 2 of its 4 words; 8-bit: 1 of its 2 chunks): 2 A fragments
 * (16-column slices) per k-step, and BM = 128 rows for the same 128 accumulators, so
 * each weight is dequantized half as often per multiply-add.
 *
 *     block:  BM = 128 rows of C x BN = 256 columns (4 strips), 8 warps = 2 warpgroups;
 *             warp w: strip w / 2, half w % 2 (warpgroup 0 = strips 0-1)
 *     warp:   32 columns; acc[2 slices][16][4] f32 = 32 columns x 128 rows
 *     k-step: ld.shared + dequant (qk_weight_only.cuh) -> 8 b registers
 *             wgmma.fence; 2 x wgmma.m64n128k16 (A = regs, B = desc + 32 B per k-step)
 *             commit; wait until at most this k-step's group is pending
 *
 * wgmma i of a warpgroup has as its 64 A rows slice i of its 4 warps' halves; each
 * warp receives the D rows of its own A rows, so its accumulators are its columns.
 * B is the stage's activation tile exactly as gemm_w4a16.cu stores it: BM rows of 128 B
 * (64 f16 of K), 128-byte XOR swizzle, which is wgmma's K-major 128-byte-swizzle
 * canonical layout when the tile starts on a 1024-byte boundary (qk_wgmma.cuh).
 *
 * Synchronization (each rule checked by the simulator's hazard model):
 * - wgmma.fence before each k-step's wgmma: the dequantization wrote their A registers.
 * - wgmma.wait_group 1 after each commit: the previous k-step's group retires before its
 *   A registers could be reused and before its stage could be refilled.
 * - Stages are refilled two tiles behind (QkWgmmaReaders, lag 2): when tile i's loads
 *   are issued only tile i - 1's last group may still read shared memory.
 * - cp.async writes through the generic proxy, wgmma reads through the async proxy:
 *   every thread executes fence.proxy.async.shared::cta after its copies landed and
 *   before the barrier that publishes them.
 *
 * Partitioning: grid (ceil(N / 256), ceil(M / 128), K splits); the host splits K when
 * the tiles alone leave SMs idle, and the last split of a tile sums the f32 partials in
 * split order (qk_split_k_reduce, as in gemm_w4a16.cu). Out-of-range rows
 * of A, strips of W and K past the end are zero-filled by cp.async as in gemm_w4a16.cu,
 * so they add exact zeros.
 *
 * Epilogue: after the last group retires, acc (+ bias) is rounded once to f16 and
 * staged transposed into shared memory (C row = token): lane 4g + t writes rows
 * 8j + 2t (+1), columns g (+8) of each slice; with the 16-byte row padding of
 * QK_C_ROW_PAD_HALVES rows 2 apart land 8 banks apart, so a warp's stores hit distinct
 * words. Then 16-byte row segments to global memory (qk_gemm.cuh).
 */
#include "qk_weight_only.cuh"
#include "qk_wgmma.cuh"

#include <cuda_fp16.h>
#include <stdint.h>

namespace {

using namespace qk_wo;

/* Warps sharing one 64-column strip, each dequantizing one half of it. */
constexpr int kWarpsPerStrip = 2;
/* n8-tiles of a warp's half strip. */
constexpr int kHalfTiles = kNTiles / kWarpsPerStrip;
/* Columns of one wgmma A fragment per warp: a 16-column slice. */
constexpr int kSliceCols = QK_MMA_M;
/* Slices of a warp's half strip: wgmma instructions per k-step. */
constexpr int kSlices = kNBlock / kWarpsPerStrip / kSliceCols;
/* 8-row groups of C (wgmma's 8-column blocks of D) of one wgmma.m64n128k16: each
 * thread holds 4 f32 of each, 64 per slice (64 x 128 over 128 threads). */
constexpr int kRowGroups = QK_WO_WGMMA_BM / QK_MMA_N;
static_assert(QK_WO_WGMMA_BM == 128, "qk_wgmma_m64n128k16_f32_f16 is the wgmma shape wrapped");
static_assert(QK_WO_WGMMA_WARPS_M == kWarpsPerStrip, "WARPS_M counts the warps sharing a strip");

/* The block's tile and shared memory (qk_weight_only.cuh): WARPS_M = 2 gives 8 warps for
 * the 4 strips of BN = 256. */
template <int BITS, int STAGES>
using WgmmaTile = Tile<BITS, QK_WO_WGMMA_BM, QK_WO_WGMMA_WARPS_N * kNBlock, QK_WO_WGMMA_WARPS_M,
                       QK_WO_WGMMA_WARPS_N, STAGES, QK_WO_WGMMA_STAGE_ALIGN>;

/* acc[i] += W(slice i of this warp's half strip) x A_tileᵀ over the 64 K of one stage. */
template <class T, int BITS>
__device__ __forceinline__ void compute_stage(const QkGemmWeightOnlyArgs& args, const Groups& groups,
                                              float (&acc)[kSlices][kRowGroups][4], GroupConsts<kHalfTiles>& gc,
                                              const LaneOffsets<T, kHalfTiles>& offsets, uint32_t stage_addr,
                                              uint32_t kt, bool first_tile) {
    const int half = offsets.half;
    const bool stage_starts_group = groups.starts(kt * kBk, first_tile);
    const uint32_t strip_units = stage_addr + offsets.unit;  // the lane's bytes of k-step 0's unit
    // The weights of k-step ks + 1 are loaded before k-step ks is dequantized and issued:
    // the wgmma fence/commit/wait are ordering points the compiler and ptxas do not move
    // shared loads across, so a load issued after them waits its full latency (Nsight
    // Compute on an H200: the first use of each k-step's ld.shared took 18% of the stall
    // samples). The stage's k-steps all landed before the stage began.
    StepWords<BITS, kHalfTiles> words = load_step<BITS, kHalfTiles>(strip_units, half);
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
        const bool new_group =
            ks == 0 ? stage_starts_group : groups.of_32 && ks * kMmaK % QK_WO_MIN_GROUP == 0;
        if (new_group) {
            load_group<T, BITS, kHalfTiles>(gc, stage_addr, groups.slot(ks), offsets, args.zeros != 0);
        }
        StepWords<BITS, kHalfTiles> next = words;
        if (ks + 1 < kKSteps) {
            next = load_step<BITS, kHalfTiles>(strip_units + (ks + 1) * T::kUnitBytes, half);
        }
        uint32_t b[kHalfTiles][2];
        dequant_words<BITS, kHalfTiles>(b, words, half, gc);
        words = next;
        const uint64_t desc_b = qk_wgmma_desc_k_major_sw128(stage_addr, ks);  // the k-step's activations
        qk_wgmma_fence();
#pragma unroll
        for (int i = 0; i < kSlices; ++i) {
            const uint32_t a[4] = {b[2 * i][0], b[2 * i + 1][0], b[2 * i][1], b[2 * i + 1][1]};
            qk_wgmma_m64n128k16_f32_f16(acc[i], a, desc_b);
        }
        qk_wgmma_commit();
        qk_wgmma_wait<1>();
    }
}

template <int BITS, int STAGES, int SMEM_BYTES>
__device__ __forceinline__ void gemm_weight_only_wgmma(const QkGemmWeightOnlyArgs& args) {
    using T = WgmmaTile<BITS, STAGES>;
    static_assert(T::kSmemBytes + QK_WO_WGMMA_STAGE_ALIGN == SMEM_BYTES,
                  "qk_abi.h's QK_WO_WGMMA_SMEM_BYTES* must equal the stages plus the base alignment slack");
    constexpr int BM = QK_WO_WGMMA_BM;
    constexpr int BN = QK_WO_WGMMA_WARPS_N * kNBlock;
    // 16-byte alignment is all the declaration asks (a larger one pads the static shared
    // memory before it); the stages' 1024-byte alignment is applied at run time below.
    extern __shared__ __align__(QK_CHUNK_BYTES) uint8_t smem[];
    const QkGemmBlock blk = qk_gemm_block<BM, BN, QK_WO_WGMMA_WARPS_N, kBk>(args.k, args.k_tiles_per_split);
    // The host never launches an empty K range. Telling the compiler so removes the
    // path that skips the main loop, on which the accumulators' zeroing can sit inside
    // an open wgmma pipeline in ptxas's view (an earlier version of this kernel drew
    // advisory C7515 from it: every wgmma serialized; build.rs fails on such advisories).
    __builtin_assume(blk.num_kt > 0);
    const int warp = threadIdx.x / kWarpThreads;
    const int strip = warp / kWarpsPerStrip;
    const int half = warp % kWarpsPerStrip;
    // The B tiles must start on a swizzle-pattern boundary; the host adds one alignment
    // unit to the dynamic shared memory so the rounded-up base still fits.
    const uint32_t raw_base = qk_smem_addr(smem);
    const uint32_t smem_base = (raw_base + QK_WO_WGMMA_STAGE_ALIGN - 1) & ~(QK_WO_WGMMA_STAGE_ALIGN - 1u);

    float acc[kSlices][kRowGroups][4];
    qk_zero_acc(acc);
    qk_wgmma_fence_operands(acc);
    GroupConsts<kHalfTiles> gc = GroupConsts<kHalfTiles>::with_symmetric_zeros<BITS>();
    const Groups groups(args.group_size);
    const LaneOffsets<T, kHalfTiles> offsets(strip, half, blk.lane);
    weight_only_main_loop<T, QkWgmmaReaders>(
        args, blk, groups, smem_base, [&](uint32_t stage_addr, uint32_t kt, bool first_tile) {
            compute_stage<T, BITS>(args, groups, acc, gc, offsets, stage_addr, kt, first_tile);
        });

    qk_wgmma_fence_operands(acc);  // the last wgmma retired (drain) before any read below

    // Split-K fix-up (qk_gemm.cuh): the workspace is laid out by accumulator fragment,
    // whatever its geometry, so the wgmma fragments go through as kSlices x kRowGroups
    // fragments of 4; fragment (i, j) holds rows 8j .. 8j + 7 of the tile (every lane's
    // d[j]), so it is stored and summed only if row m0 + 8j lies inside C.
    if (gridDim.z > 1 && !qk_split_k_reduce_if<float, kSlices, kRowGroups, T::kThreads>(
                             acc, args.workspace, args.tile_counters,
                             [&](int, int j) { return blk.m0 + j * QK_MMA_N < args.m; })) {
        return;
    }

    // Epilogue 1: bias in f32, one rounding to f16, staged transposed in shared memory.
    const __half* bias = reinterpret_cast<const __half*>(args.bias);               // [N] or null
    __half* c_tile = reinterpret_cast<__half*>(smem + (smem_base - raw_base));  // [BM][kCStride]
    const int g = blk.lane / 4;
    const int t = blk.lane % 4;
#pragma unroll
    for (int i = 0; i < kSlices; ++i) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const uint32_t col = strip * kNBlock + half * (kNBlock / kWarpsPerStrip) + i * kSliceCols + g + 8 * h;
            const uint32_t gn = blk.n0 + col;
            const float bias_n = (bias != nullptr && gn < args.n) ? __half2float(bias[gn]) : 0.0f;
#pragma unroll
            for (int j = 0; j < kRowGroups; ++j) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const uint32_t row = j * QK_MMA_N + 2 * t + e;
                    c_tile[row * T::kCStride + col] = __float2half_rn(__fadd_rn(acc[i][j][2 * h + e], bias_n));
                }
            }
        }
    }
    __syncthreads();

    // Epilogue 2: shared -> global, 16-byte row segments (N % 64 == 0).
    qk_store_c_tile<BM, BN, T::kThreads, T::kCStride>(c_tile, args.c, blk.m0, blk.n0, args.m, args.n);
}

}  // namespace

/* One kernel per weight width; one block per SM (128 accumulators per thread). */
#define QK_WO_WGMMA_INSTANCE(NAME, BITS, STAGES, SMEM_BYTES)                                                 \
    extern "C" __global__ void __launch_bounds__(QK_WO_WGMMA_WARPS_M * QK_WO_WGMMA_WARPS_N * QK_WARP_THREADS, 1) \
        NAME(const QkGemmWeightOnlyArgs args) {                                                              \
        gemm_weight_only_wgmma<BITS, STAGES, SMEM_BYTES>(args);                                              \
    }

QK_WO_WGMMA_INSTANCE(qk_gemm_w4a16_large_wgmma, 4, QK_WO_WGMMA_STAGES, QK_WO_WGMMA_SMEM_BYTES)
QK_WO_WGMMA_INSTANCE(qk_gemm_w8a16_large_wgmma, 8, QK_WO_WGMMA_STAGES_W8, QK_WO_WGMMA_SMEM_BYTES_W8)
