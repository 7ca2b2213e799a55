/*
 * gemm_w8a8.cu — W8A8: INT8 activations x INT8 weights on tensor cores, fused
 * dequantizing epilogue.
 *
 *   C[m, n] = f16( f32(sum_k A[m, k] * W[n, k]) * a_scale[m] * w_scale[n] (+ bias[n]) )
 *
 *   A  int8 [M, K] row-major (per-token quantized activations)
 *   W  int8 [N, K] row-major (per-channel quantized weights; "TN": K contiguous in both)
 *   C  f16  [M, N] row-major
 *
 * Design
 * ------
 * Tiling. A block computes a BM x BN tile of C over a range of K; warps are arranged
 * WARPS_M x WARPS_N, each owning a (BM/WARPS_M) x (BN/WARPS_N) sub-tile made of
 * m16n8 MMA tiles. Configurations (constants in qk_abi.h):
 *
 *     config   BM x BN   warps   warp tile   stages   smem      for
 *     small    16 x 64   1 x 4   16 x 16     4        40 KiB    M <= 16 (decode)
 *     medium   64 x 128  2 x 2   32 x 64     4        96 KiB    M <= 64
 *     large   128 x 128  2 x 4   64 x 32     3        96 KiB    M > 64 (compute-bound)
 *
 * Small M is memory-bound: the whole GPU must stream W exactly once. With a single
 * 16-row M tile every W byte is loaded by exactly one block; to keep every SM busy at
 * M = 1 the host splits K (grid z) until tiles x splits covers the SMs:
 *
 *        N tiles ->                  K ->  split 0 | split 1 | split 2
 *     +----+----+----+--          W rows  [========|========|========]
 *     | b0 | b1 | b2 | ..         each split is its own block; the last one to finish
 *     +----+----+----+--          a tile (atomic counter) sums the int32 partials.
 *
 * Split-K reduction is exact: partials are int32 and integer addition is associative;
 * the last block sums every split's partial in split order (qk_gemm.cuh, shared with the
 * f32 weight-only GEMM, where that order makes the result deterministic) and resets the
 * tile's counter to 0, so the counters need zeroing only once.
 *
 * Pipeline. STAGES shared-memory stages filled by cp.async.cg (16 B per copy, L2 only;
 * PTX ISA "cp.async"). Iteration i waits until stage i has landed
 * (cp.async.wait_group STAGES-2; "cp.async.wait_group"), passes a barrier (making every
 * thread's copies visible to all, and guaranteeing that every warp finished computing
 * on the stage about to be overwritten), issues the copy of stage i + STAGES - 1, then
 * computes on stage i. Out-of-range rows/K are zero-filled by cp.async's src-size
 * operand, so the MMAs need no bounds checks.
 *
 * Shared-memory layout. Each operand row of a stage is 128 bytes (BK = 128 int8 of K),
 * stored as 8 chunks of 16 B with chunk c of row r at position c ^ (r % 8)
 * (qk_pipeline.cuh). ldmatrix phases (8 rows x one chunk) and cp.async quarter-warps
 * (one row x 8 chunks) then each touch all 32 banks exactly once: conflict-free.
 *
 * Fragments. ldmatrix.x4 (PTX ISA "ldmatrix") of four 8-row x 16-byte tiles yields
 * exactly the registers of mma.m16n8k32.s8 ("Matrix Fragments for mma.m16n8k32"):
 * for A the tiles (rows 0-7, k 0-15), (rows 8-15, k 0-15), (rows 0-7, k 16-31),
 * (rows 8-15, k 16-31) are a0..a3; for W two n8 tiles at once, (n 0-7, k 0-15),
 * (n 0-7, k 16-31), (n 8-15, k 0-15), (n 8-15, k 16-31) are b0, b1 of each.
 *
 * Epilogue. acc (exact int32) -> f32, times a_scale then w_scale (each __fmul_rn, so no
 * FMA contraction changes the rounding), plus bias, rounded once to f16; staged in
 * shared memory (rows padded by 16 B so the fragment-order half2 stores hit 32
 * distinct banks) and written out as 16-byte row segments when N % 8 == 0.
 */
#include "qk_abi.h"
#include "qk_gemm.cuh"
#include "qk_mma.cuh"
#include "qk_pipeline.cuh"

#include <cuda_fp16.h>
#include <stdint.h>

namespace {

constexpr int kWarpThreads = QK_WARP_THREADS;
constexpr int kMmaM = QK_MMA_M;
constexpr int kMmaN = QK_MMA_N;
constexpr int kMmaK = 32;
constexpr int kBk = QK_W8A8_BK;
constexpr int kKSteps = kBk / kMmaK;

template <int BM, int BN, int WARPS_M, int WARPS_N, int STAGES>
struct Tile {
    static constexpr int kThreads = WARPS_M * WARPS_N * kWarpThreads;
    static constexpr int kWarpM = BM / WARPS_M;      // rows of C per warp
    static constexpr int kWarpN = BN / WARPS_N;      // cols of C per warp
    static constexpr int kMTiles = kWarpM / kMmaM;   // m16 tiles per warp
    static constexpr int kNTiles = kWarpN / kMmaN;   // n8 tiles per warp
    static constexpr int kStageBytes = (BM + BN) * kBk;
    static constexpr int kSmemBytes = STAGES * kStageBytes;
    static constexpr int kCStride = BN + QK_C_ROW_PAD_HALVES;  // halves per staged C row
    static_assert(kWarpM % kMmaM == 0 && kWarpN % (2 * kMmaN) == 0, "warp tile must hold whole m16 / n16 tiles");
    static_assert(BM * kCStride * 2 <= kSmemBytes, "the C stage must fit in the pipeline's shared memory");
};

/* The per-thread copy plans of a stage's two operand tiles. A and W are both
 * K-contiguous int8 ("TN", one byte per K element), so one tile copy (qk_pipeline.cuh)
 * loads either; W's tile follows A's in the stage. */
template <class T, int BM, int BN>
struct StageCopy {
    QkTileCopy<BM, T::kThreads> a;
    QkTileCopy<BN, T::kThreads> w;

    __device__ __forceinline__ StageCopy(const QkGemmW8A8Args& args, uint32_t m0, uint32_t n0)
        : a(reinterpret_cast<const void*>(args.a_q), m0, args.m, args.k),
          w(reinterpret_cast<const void*>(args.w_q), n0, args.n, args.k) {}

    /* Issues the cp.async copies of K-tile `kt` of A and W into one stage. */
    __device__ __forceinline__ void issue(uint32_t stage_addr, uint32_t kt) const {
        a.issue(stage_addr, kt);
        w.issue(stage_addr + BM * kBk, kt);
    }
};

/* acc[mt][nt] += A_tile(mt) * W_tile(nt) over the 128 K of one stage. */
template <class T, int BM>
__device__ __forceinline__ void compute_stage(int32_t (&acc)[T::kMTiles][T::kNTiles][4], uint32_t stage_addr,
                                              int warp_m, int warp_n, int lane) {
    const uint32_t a_addr = stage_addr;
    const uint32_t w_addr = stage_addr + BM * kBk;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
        uint32_t a_frag[T::kMTiles][4];
        uint32_t b_frag[T::kNTiles][2];
#pragma unroll
        for (int mt = 0; mt < T::kMTiles; ++mt) {
            // Lanes 0-7: rows 0-7 / k-chunk 0, 8-15: rows 8-15 / chunk 0,
            // 16-23: rows 0-7 / chunk 1, 24-31: rows 8-15 / chunk 1 (-> a0..a3).
            const uint32_t row = warp_m * T::kWarpM + mt * kMmaM + (lane % 8) + ((lane / 8) % 2) * 8;
            const uint32_t chunk = ks * 2 + lane / 16;
            qk_ldmatrix_x4(a_frag[mt], a_addr + qk_swizzle_128(row, chunk));
        }
#pragma unroll
        for (int np = 0; np < T::kNTiles / 2; ++np) {
            // Lanes 0-7: n 0-7 / chunk 0 (b0 of tile 2np), 8-15: n 0-7 / chunk 1 (b1),
            // 16-23: n 8-15 / chunk 0 (b0 of tile 2np+1), 24-31: n 8-15 / chunk 1 (b1).
            const uint32_t row = warp_n * T::kWarpN + np * 2 * kMmaN + (lane % 8) + (lane / 16) * 8;
            const uint32_t chunk = ks * 2 + (lane / 8) % 2;
            uint32_t r[4];
            qk_ldmatrix_x4(r, w_addr + qk_swizzle_128(row, chunk));
            b_frag[2 * np][0] = r[0];
            b_frag[2 * np][1] = r[1];
            b_frag[2 * np + 1][0] = r[2];
            b_frag[2 * np + 1][1] = r[3];
        }
#pragma unroll
        for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
            for (int nt = 0; nt < T::kNTiles; ++nt) {
                qk_mma_s8_16832(acc[mt][nt], a_frag[mt], b_frag[nt][0], b_frag[nt][1]);
            }
        }
    }
}

__device__ __forceinline__ float dequant_scale(int32_t acc, float a_scale, float w_scale) {
    return __fmul_rn(__fmul_rn(__int2float_rn(acc), a_scale), w_scale);
}

template <int BM, int BN, int WARPS_M, int WARPS_N, int STAGES>
__device__ __forceinline__ void gemm_w8a8(const QkGemmW8A8Args& args) {
    using T = Tile<BM, BN, WARPS_M, WARPS_N, STAGES>;
    extern __shared__ __align__(128) uint8_t smem[];
    const QkGemmBlock blk = qk_gemm_block<BM, BN, WARPS_N, kBk>(args.k, args.k_tiles_per_split);
    const uint32_t smem_base = qk_smem_addr(smem);

    int32_t acc[T::kMTiles][T::kNTiles][4];
    qk_zero_acc(acc);

    const StageCopy<T, BM, BN> copy(args, blk.m0, blk.n0);
    qk_pipeline_main_loop<STAGES>(
        blk.num_kt, [&](int stage, int i) { copy.issue(smem_base + stage * T::kStageBytes, blk.kt_begin + i); },
        [&](int stage, int) {
            compute_stage<T, BM>(acc, smem_base + stage * T::kStageBytes, blk.warp_m, blk.warp_n, blk.lane);
        });
    // The stages are drained: the C tile may reuse them.

    if (gridDim.z > 1 &&
        !qk_split_k_reduce<int32_t, T::kMTiles, T::kNTiles, T::kThreads>(
            acc, args.workspace, args.tile_counters, blk.m0 + blk.warp_m * T::kWarpM + blk.lane / 4, args.m)) {
        return;
    }

    // Epilogue 1: scale in registers, stage f16 in shared memory.
    const float* a_scale = reinterpret_cast<const float*>(args.a_scale);  // [M]
    const float* w_scale = reinterpret_cast<const float*>(args.w_scale);  // [N]
    const __half* bias = reinterpret_cast<const __half*>(args.bias);      // [N] or null
    __half* c_tile = reinterpret_cast<__half*>(smem);                     // [BM][kCStride]
    qk_stage_c_fragments<T::kWarpM, T::kWarpN, T::kCStride>(c_tile, acc, blk, [&](uint32_t gn) {
        const float ws0 = gn < args.n ? w_scale[gn] : 0.0f;
        const float ws1 = gn + 1 < args.n ? w_scale[gn + 1] : 0.0f;
        const float b0 = (bias != nullptr && gn < args.n) ? __half2float(bias[gn]) : 0.0f;
        const float b1 = (bias != nullptr && gn + 1 < args.n) ? __half2float(bias[gn + 1]) : 0.0f;
        return [a_scale, m = args.m, ws0, ws1, b0, b1](uint32_t gm, int32_t acc0, int32_t acc1) {
            const float as = gm < m ? a_scale[gm] : 0.0f;
            const float v0 = __fadd_rn(dequant_scale(acc0, as, ws0), b0);
            const float v1 = __fadd_rn(dequant_scale(acc1, as, ws1), b1);
            return __floats2half2_rn(v0, v1);
        };
    });
    __syncthreads();

    // Epilogue 2: shared -> global, 16-byte row segments.
    qk_store_c_tile<BM, BN, T::kThreads, T::kCStride>(c_tile, args.c, blk.m0, blk.n0, args.m, args.n);
}

}  // namespace

/* One kernel per configuration; the tile shape is a template argument so that every
 * loop over fragments unrolls into registers. */
#define QK_W8A8_INSTANCE(NAME, CFG)                                                                          \
    extern "C" __global__ void __launch_bounds__(QK_W8A8_##CFG##_WARPS_M * QK_W8A8_##CFG##_WARPS_N *        \
                                                 QK_WARP_THREADS)                                            \
        qk_gemm_w8a8_##NAME(const QkGemmW8A8Args args) {                                                    \
        gemm_w8a8<QK_W8A8_##CFG##_BM, QK_W8A8_##CFG##_BN, QK_W8A8_##CFG##_WARPS_M, QK_W8A8_##CFG##_WARPS_N, \
                  QK_W8A8_##CFG##_STAGES>(args);                                                             \
    }

QK_W8A8_INSTANCE(small, SMALL)
QK_W8A8_INSTANCE(medium, MEDIUM)
QK_W8A8_INSTANCE(large, LARGE)
