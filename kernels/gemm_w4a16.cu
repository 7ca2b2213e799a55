/*
 * gemm_w4a16.cu — weight-only quantized GEMM: f16 activations x 4-bit (W4A16) or 8-bit
 * (W8A16) weights, dequantized in registers, f32 accumulation on tensor cores.
 *
 *   C[m, n] = f16( f32( sum_k A[m, k] * w[n, k] ) (+ bias[n]) )
 *   w[n, k] = f16( (q[n, k] - z[grp(k), n]) * s[grp(k), n] )
 *
 *   A  f16 [M, K] row-major (act-order: columns already permuted, see permute.cu)
 *   W  q in the packed kernel layout of qk_abi.h ("gemm_w4a16 / gemm_w8a16")
 *   C  f16 [M, N] row-major
 *
 * One template, gemm_weight_only<BITS, ...>, instantiated per configuration and weight
 * width by the macros at the bottom; nothing else differs between W4A16 and W8A16.
 *
 * Weight layout
 * -------------
 * An offline repack (src/formats/weight_only.rs) cuts W into units of 64 columns x 16 K:
 * exactly the B operands one warp needs for one mma.m16n8k16 k-step over its 8 n8-tiles.
 * Lane l = 4g + t of the warp reads its 16 bytes of a unit (4-bit: one chunk; 8-bit:
 * two), and those bytes hold column g of every n8-tile at K rows 2t, 2t+1 (b0) and
 * 2t+8, 2t+9 (b1) (PTX ISA "Matrix Fragments for mma.m16n8k16"), ordered so that each
 * b register comes out of one or two ALU instructions. Units are stored n-block-major:
 * a 64-column strip of W is one contiguous stream, copied by cp.async into shared memory
 * stage by stage (4 units = 64 K per stage) and read back by each lane as one
 * ld.shared.v4 at lane * 16 (consecutive lanes, consecutive 16 B: conflict-free). No
 * shared-memory round trip for the conversion itself.
 *
 * Dequantization
 * --------------
 * 4-bit. Word j of the lane's chunk holds n8-tiles 2j and 2j+1; nibble p (p = 0..3)
 * holds the lower K element of b register p % 2 of tile 2j + p / 2, nibble p + 4 the
 * upper one. For each p:
 *     lop3.b32 d, (word >> 4p), 0x000f000f, 0x64006400, (0xF0 & 0xCC) | 0xAA
 * computes d = (x & 0x000f000f) | 0x64006400 in one instruction (PTX ISA "lop3": the
 * immLut is the truth table of the function evaluated on the canonical operands
 * a = 0xF0, b = 0xCC, c = 0xAA). Each 16-bit half is then 0x6400 | q: f16 0x6400 is
 * 1024.0 with a zero mantissa and the ulp at 1024 is exactly 1, so OR-ing q < 16 into
 * the mantissa gives the f16 value 1024 + q exactly. The zero point is kept as the f16
 * 1024 + z (built the same way), so sub.f16x2 gives q - z, an integer in [-15, 15],
 * exactly (both operands lie in [1024, 1040), their difference is representable); one
 * mul.f16x2 by the scale rounds once. The weight therefore equals the host reference
 * f16((q - z) * s) bit for bit.
 * 8-bit. Word j of chunk h holds tile 4h + j; bytes 0, 1 are b0's pair, bytes 2, 3 b1's.
 * Stored biased (u = q + 128). prmt.b32 d, word, 0x64646464, 0x4140 (PTX ISA "prmt",
 * default mode: each selector nibble picks a byte of the 8-byte {b, a}) builds
 * {u0, 0x64, u1, 0x64} = half2(1024 + u0, 1024 + u1), exact since u < 256 fits the
 * mantissa at ulp 1; subtracting 1152 = 1024 + 128 gives q exactly, and the scale
 * multiply rounds once.
 * Scales (and zero points) of a group are refreshed when a k-step starts a new group:
 * a lane's 8 scales are one 16-byte shared load (the layout shuffles them per 64-column
 * block), its 8 zero points one 32-bit load; prmt replicates each into both halves.
 *
 * Tiling and partitioning
 * -----------------------
 * A block computes a BM x BN tile of C over a range of K; warps are WARPS_M x WARPS_N,
 * each owns (BM / WARPS_M) rows x 64 columns (BN = WARPS_N * 64):
 *
 *     config   BM x BN    warps  warp tile  stages (4b/8b)  for
 *     gemv     16 x 256   1 x 4  16 x 64    6 / 4           M <= 8 (decode)
 *     small    32 x 256   1 x 4  32 x 64    4 / 4           M <= 32
 *     medium   64 x 256   1 x 4  64 x 64    4 / 3           M <= 64
 *     large   128 x 128   2 x 2  64 x 64    4 / 3           M > 64 (compute-bound)
 *
 * At small M the GEMM is a weight stream: with a single M tile every weight byte is
 * loaded by exactly one block, and the host splits K (grid z) until tiles x splits
 * covers every SM (twice), so at M = 1 all SMs stream:
 *
 *        N tiles ->                  K ->  split 0 | split 1 | split 2
 *     +----+----+----+--          W strip [========|========|========]
 *     | b0 | b1 | b2 | ..         each split is its own block; the last one to finish
 *     +----+----+----+--          a tile sums the f32 partials in split order.
 *
 * The fix-up (qk_gemm.cuh) sums all splits' partials from the workspace in split order
 * 0..S-1, so the result is deterministic whatever order the splits finish in. Only
 * fragments holding rows < M are stored and summed: at M = 1 a 16-row tile's partial
 * traffic (write, then the last split's read of every split) shrinks 8x.
 *
 * Pipeline and shared memory: qk_pipeline.cuh's cp.async main loop; per stage
 *   A      BM rows x 128 B (64 f16 of K), 128-byte XOR swizzle: ldmatrix.x4 phases and
 *          cp.async quarter-warps touch all 32 banks once (conflict-free);
 *   W      BN/64 strips x 4 units, copied and read in 16-byte lane order;
 *   scales 2 group slots x BN f16 (a 64-wide stage spans at most two groups of >= 32);
 *   zeros  2 group slots x BN nibbles (asymmetric 4-bit only).
 * A group's scale row is copied only by the stage where the group starts (or the first
 * stage of a split), so scales and zeros are read from global memory once per split.
 * Out-of-range rows of A and columns/K of W are zero-filled by cp.async's src-size;
 * k-steps past K are skipped.
 * At decode the tensor cores are nearly idle and few warps are resident, so the
 * instructions issued per stage bound how fast a block drains its pipeline: the
 * group-start test costs one remainder per stage, not per k-step. (Rewriting the copy
 * loops below with fixed trip counts was measured on an H100: 1.2x faster on layers
 * with few K splits, 1.8x slower on 4096 x 4096 with 16 splits; the loops stay as
 * they are until that is understood.)
 *
 * Epilogue: acc (+ bias) rounded once to f16, staged in shared memory and written as
 * 16-byte row segments (qk_gemm.cuh).
 */
#include "qk_abi.h"
#include "qk_convert.cuh"
#include "qk_gemm.cuh"
#include "qk_mma.cuh"
#include "qk_pipeline.cuh"

#include <cuda_fp16.h>
#include <stdint.h>

namespace {

constexpr int kWarpThreads = QK_WARP_THREADS;
constexpr int kMmaM = QK_MMA_M;
constexpr int kMmaN = QK_MMA_N;
constexpr int kMmaK = QK_WO_K_STEP;
constexpr int kBk = QK_WO_BK;
constexpr int kKSteps = kBk / kMmaK;                           // k-steps per stage
constexpr int kNBlock = QK_WO_N_BLOCK;                         // columns per warp
constexpr int kNTiles = kNBlock / kMmaN;                       // n8-tiles per warp
constexpr int kAChunksPerRow = kBk * 2 / QK_CHUNK_BYTES;       // 16-byte chunks per A row
constexpr int kHalvesPerChunk = QK_CHUNK_BYTES / 2;            // f16 per chunk
constexpr int kGroupSlots = QK_WO_MAX_GROUPS_PER_STAGE;        // scale rows per stage
constexpr int kNibblesPerWord = 8;
/* 1024 + 8: the implicit zero point of symmetric 4-bit weights, as the biased f16. */
constexpr uint32_t kSymZeroInt4 = 0x64086408u;
/* 1024 + 128: the bias of the stored 8-bit codes (u = q + 128), as the biased f16. */
constexpr uint32_t kSymZeroInt8 = 0x64806480u;

template <int BITS, int BM, int BN, int WARPS_M, int WARPS_N, int STAGES>
struct Tile {
    static_assert(BITS == 4 || BITS == 8, "4- or 8-bit weights");
    static_assert(BN == WARPS_N * kNBlock, "every warp owns one 64-column weight strip");
    static constexpr int kThreads = WARPS_M * WARPS_N * kWarpThreads;
    static constexpr int kWarpM = BM / WARPS_M;                    // rows of C per warp
    static constexpr int kMTiles = kWarpM / kMmaM;                 // m16 tiles per warp
    static constexpr int kChunksPerLane = BITS / 4;                // 16-byte loads per lane per k-step
    static constexpr int kUnitBytes = kWarpThreads * QK_CHUNK_BYTES * kChunksPerLane;  // 64 x 16 weights
    static constexpr int kABytes = BM * kAChunksPerRow * QK_CHUNK_BYTES;
    static constexpr int kWBytes = (BN / kNBlock) * kKSteps * kUnitBytes;
    static constexpr int kScaleSlotBytes = BN * 2;                 // BN f16
    static constexpr int kZeroSlotBytes = BN / 2;                  // BN nibbles
    static constexpr int kWOffset = kABytes;
    static constexpr int kScaleOffset = kWOffset + kWBytes;
    static constexpr int kZeroOffset = kScaleOffset + kGroupSlots * kScaleSlotBytes;
    static constexpr int kStageBytes = kZeroOffset + kGroupSlots * kZeroSlotBytes;
    static constexpr int kSmemBytes = STAGES * kStageBytes;
    static constexpr int kCStride = BN + QK_C_ROW_PAD_HALVES;     // halves per staged C row
    static_assert(kWarpM % kMmaM == 0, "warp tile must hold whole m16 tiles");
    static_assert(kZeroSlotBytes % QK_CHUNK_BYTES == 0, "zero slots are copied in 16-byte chunks");
    static_assert(BM * kCStride * 2 <= kSmemBytes, "the C stage must fit in the pipeline's shared memory");
};

/* Where a k-step's group starts: the scales must be (re)loaded at the first k-step of a
 * split and at every group boundary. */
__device__ __forceinline__ bool starts_group(uint32_t k, uint32_t group_size, bool first_step) {
    return first_step || k % group_size == 0;
}

/* The scale slot of a stage that k-step `ks` reads: with groups of 32 a 64-wide stage
 * holds two group rows, otherwise one. */
__device__ __forceinline__ int group_slot(int ks, uint32_t group_size) {
    return group_size == QK_WO_MIN_GROUP ? ks * kMmaK / QK_WO_MIN_GROUP : 0;
}

/* Issues the cp.async copies of K-tile `kt` (A, W, and the scale/zero rows of groups
 * starting in it) into one stage. */
template <class T>
__device__ __forceinline__ void load_stage(const QkGemmWeightOnlyArgs& args, uint32_t stage_addr, uint32_t m0,
                                           uint32_t n0, uint32_t kt, bool first_tile) {
    const __half* a = reinterpret_cast<const __half*>(args.a);  // [M, K]
    const uint8_t* w = reinterpret_cast<const uint8_t*>(args.w);  // units [N/64][K/16]
    const uint32_t k0 = kt * kBk;
    // Fixed trip counts (every thread copies the same number of chunks): the loops
    // unroll into straight-line copies with no remainder handling.
#pragma unroll
    for (int i = threadIdx.x; i < T::kABytes / QK_CHUNK_BYTES; i += T::kThreads) {
        const uint32_t row = i / kAChunksPerRow;
        const uint32_t chunk = i % kAChunksPerRow;
        const uint32_t gm = m0 + row;
        const uint32_t gk = k0 + chunk * kHalvesPerChunk;
        const bool valid = gm < args.m && gk < args.k;
        const __half* src = valid ? a + static_cast<uint64_t>(gm) * args.k + gk : a;
        qk_cp_async_16(stage_addr + qk_swizzle_128(row, chunk), src, valid ? QK_CHUNK_BYTES : 0);
    }
    // W: per 64-column strip, the 4 units of this stage are contiguous in global memory.
    constexpr int kChunksPerUnit = T::kUnitBytes / QK_CHUNK_BYTES;
    constexpr int kChunksPerStrip = kKSteps * kChunksPerUnit;
    const uint32_t k_steps = args.k / kMmaK;
    const uint32_t strips = args.n / kNBlock;
#pragma unroll
    for (int i = threadIdx.x; i < T::kWBytes / QK_CHUNK_BYTES; i += T::kThreads) {
        const uint32_t strip = n0 / kNBlock + i / kChunksPerStrip;
        const uint32_t chunk = i % kChunksPerStrip;
        const uint32_t step = kt * kKSteps + chunk / kChunksPerUnit;
        const bool valid = strip < strips && step < k_steps;
        const uint8_t* src =
            valid ? w + (static_cast<uint64_t>(strip) * k_steps + kt * kKSteps) * T::kUnitBytes + chunk * QK_CHUNK_BYTES
                  : w;
        qk_cp_async_16(stage_addr + T::kWOffset + i * QK_CHUNK_BYTES, src, valid ? QK_CHUNK_BYTES : 0);
    }
    // Scale (and zero) rows of the groups that start in this tile (or are current at a
    // split's first tile). Block-uniform conditions.
    const __half* scales = reinterpret_cast<const __half*>(args.scales);  // [K/g, N]
    const uint32_t* zeros = reinterpret_cast<const uint32_t*>(args.zeros);  // [K/g, N/8]
#pragma unroll
    for (int slot = 0; slot < kGroupSlots; ++slot) {
        const uint32_t gk = k0 + slot * QK_WO_MIN_GROUP;
        const bool needed = args.group_size == QK_WO_MIN_GROUP ? gk < args.k
                                                              : slot == 0 && starts_group(k0, args.group_size, first_tile);
        if (!needed) {
            continue;
        }
        const uint32_t group = gk / args.group_size;
        constexpr int kScaleChunks = T::kScaleSlotBytes / QK_CHUNK_BYTES;
        static_assert(kScaleChunks <= T::kThreads, "one scale chunk per thread at most");
        if (threadIdx.x < kScaleChunks) {
            const int i = threadIdx.x;
            const uint32_t gn = n0 + i * kHalvesPerChunk;
            const bool valid = gn < args.n;
            const __half* src = valid ? scales + static_cast<uint64_t>(group) * args.n + gn : scales;
            qk_cp_async_16(stage_addr + T::kScaleOffset + slot * T::kScaleSlotBytes + i * QK_CHUNK_BYTES, src,
                           valid ? QK_CHUNK_BYTES : 0);
        }
        if (zeros != nullptr) {
            constexpr int kZeroChunks = T::kZeroSlotBytes / QK_CHUNK_BYTES;
            constexpr int kColsPerZeroChunk = QK_CHUNK_BYTES * 2;  // nibbles
            static_assert(kZeroChunks <= T::kThreads, "one zero chunk per thread at most");
            if (threadIdx.x < kZeroChunks) {
                const int i = threadIdx.x;
                const uint32_t gn = n0 + i * kColsPerZeroChunk;
                const bool valid = gn < args.n;
                const uint32_t* src =
                    valid ? zeros + (static_cast<uint64_t>(group) * args.n + gn) / kNibblesPerWord : zeros;
                qk_cp_async_16(stage_addr + T::kZeroOffset + slot * T::kZeroSlotBytes + i * QK_CHUNK_BYTES, src,
                               valid ? QK_CHUNK_BYTES : 0);
            }
        }
    }
}

/* Loads the lane's 8 scales and zero points (one per n8-tile) of a group slot, each
 * replicated into both halves of a half2 register. */
template <class T, int BITS>
__device__ __forceinline__ void load_group(uint32_t (&scale)[kNTiles], uint32_t (&zero)[kNTiles], uint32_t stage_addr,
                                           int slot, int warp_n, int g, bool asymmetric) {
    // Position 8g + nt of a 64-column block holds column 8nt + g: 16 contiguous bytes.
    const uint4 s = qk_lds_v4(stage_addr + T::kScaleOffset + slot * T::kScaleSlotBytes +
                              (warp_n * kNBlock + g * kNTiles) * 2);
    const uint32_t pairs[4] = {s.x, s.y, s.z, s.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        scale[2 * j] = qk_prmt(pairs[j], pairs[j], QK_PRMT_DUP_LOW_HALF);
        scale[2 * j + 1] = qk_prmt(pairs[j], pairs[j], QK_PRMT_DUP_HIGH_HALF);
    }
    if (BITS == 4 && asymmetric) {
        // Word 8 * strip + g holds tile nt's zero point in nibble nt; the nibble trick on
        // (word >> 4j) yields half2(1024 + z_j, 1024 + z_{j+4}).
        const uint32_t word = qk_lds_u32(stage_addr + T::kZeroOffset + slot * T::kZeroSlotBytes +
                                         (warp_n * kNTiles + g) * sizeof(uint32_t));
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const uint32_t z = qk_nibbles_to_f16x2_biased(word >> (4 * j));
            zero[j] = qk_prmt(z, z, QK_PRMT_DUP_LOW_HALF);
            zero[j + 4] = qk_prmt(z, z, QK_PRMT_DUP_HIGH_HALF);
        }
    } else {
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
            zero[nt] = BITS == 4 ? kSymZeroInt4 : kSymZeroInt8;
        }
    }
}

/* (biased - zero) * scale in f16x2: the subtraction is exact, the product rounds once. */
__device__ __forceinline__ uint32_t dequant_pair(uint32_t biased, uint32_t zero, uint32_t scale) {
    return qk_half2_bits(__hmul2_rn(__hsub2(qk_as_half2(biased), qk_as_half2(zero)), qk_as_half2(scale)));
}

/* The lane's B registers of one k-step: b[nt][0..1] for its 8 n8-tiles. */
template <class T, int BITS>
__device__ __forceinline__ void dequant_step(uint32_t (&b)[kNTiles][2], uint32_t unit_addr, int lane,
                                             const uint32_t (&scale)[kNTiles], const uint32_t (&zero)[kNTiles]) {
    if constexpr (BITS == 4) {
        const uint4 v = qk_lds_v4(unit_addr + lane * QK_CHUNK_BYTES);
        const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
#pragma unroll
            for (int p = 0; p < 4; ++p) {
                const int nt = 2 * j + p / 2;
                b[nt][p % 2] = dequant_pair(qk_nibbles_to_f16x2_biased(words[j] >> (4 * p)), zero[nt], scale[nt]);
            }
        }
    } else {
#pragma unroll
        for (int h = 0; h < T::kChunksPerLane; ++h) {
            const uint4 v = qk_lds_v4(unit_addr + (h * kWarpThreads + lane) * QK_CHUNK_BYTES);
            const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int nt = 4 * h + j;
                b[nt][0] = dequant_pair(qk_bytes_to_f16x2_biased(words[j], QK_PRMT_BYTES_01_F16), zero[nt], scale[nt]);
                b[nt][1] = dequant_pair(qk_bytes_to_f16x2_biased(words[j], QK_PRMT_BYTES_23_F16), zero[nt], scale[nt]);
            }
        }
    }
}

/* acc[mt][nt] += A_tile(mt) * dequant(W_tile(nt)) over the 64 K of one stage. */
template <class T, int BITS>
__device__ __forceinline__ void compute_stage(const QkGemmWeightOnlyArgs& args, float (&acc)[T::kMTiles][kNTiles][4],
                                              uint32_t (&scale)[kNTiles], uint32_t (&zero)[kNTiles],
                                              uint32_t stage_addr, uint32_t kt, bool first_tile, int warp_m,
                                              int warp_n, int lane) {
    const uint32_t k0 = kt * kBk;
    // One remainder per stage, not per k-step: a stage starts at a multiple of 64, so
    // with groups >= 32 (or per-channel, where only k = 0 starts a group) a later k-step
    // k0 + 16 ks starts a group only for groups of 32 at ks = 2.
    const bool stage_starts_group = starts_group(k0, args.group_size, first_tile);
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
        const uint32_t k = k0 + ks * kMmaK;
        if (k >= args.k) {
            break;  // block-uniform: the rest of the stage is past K
        }
        const bool new_group =
            ks == 0 ? stage_starts_group : args.group_size == QK_WO_MIN_GROUP && ks * kMmaK % QK_WO_MIN_GROUP == 0;
        if (new_group) {
            load_group<T, BITS>(scale, zero, stage_addr, group_slot(ks, args.group_size), warp_n, lane / 4,
                                args.zeros != 0);
        }
        uint32_t a_frag[T::kMTiles][4];
#pragma unroll
        for (int mt = 0; mt < T::kMTiles; ++mt) {
            // Lanes 0-7: rows 0-7 / k 0-7, 8-15: rows 8-15 / k 0-7, 16-23: rows 0-7 /
            // k 8-15, 24-31: rows 8-15 / k 8-15 (-> a0..a3).
            const uint32_t row = warp_m * T::kWarpM + mt * kMmaM + (lane % 16);
            const uint32_t chunk = ks * 2 + lane / 16;
            qk_ldmatrix_x4(a_frag[mt], stage_addr + qk_swizzle_128(row, chunk));
        }
        uint32_t b[kNTiles][2];
        dequant_step<T, BITS>(b, stage_addr + T::kWOffset + (warp_n * kKSteps + ks) * T::kUnitBytes, lane, scale,
                              zero);
#pragma unroll
        for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
            for (int nt = 0; nt < kNTiles; ++nt) {
                qk_mma_f16_16816(acc[mt][nt], a_frag[mt], b[nt][0], b[nt][1]);
            }
        }
    }
}

template <int BITS, int BM, int BN, int WARPS_M, int WARPS_N, int STAGES>
__device__ __forceinline__ void gemm_weight_only(const QkGemmWeightOnlyArgs& args) {
    using T = Tile<BITS, BM, BN, WARPS_M, WARPS_N, STAGES>;
    extern __shared__ __align__(128) uint8_t smem[];
    const QkGemmBlock blk = qk_gemm_block<BM, BN, WARPS_N, kBk>(args.k, args.k_tiles_per_split);
    const uint32_t smem_base = qk_smem_addr(smem);

    float acc[T::kMTiles][kNTiles][4];
    qk_zero_acc(acc);
    uint32_t scale[kNTiles];  // half2 (s, s) per n8-tile of the current group
    uint32_t zero[kNTiles];   // half2 (1024 + z, 1024 + z)

    qk_pipeline_main_loop<STAGES>(
        blk.num_kt,
        [&](int stage, int i) {
            load_stage<T>(args, smem_base + stage * T::kStageBytes, blk.m0, blk.n0, blk.kt_begin + i, i == 0);
        },
        [&](int stage, int i) {
            compute_stage<T, BITS>(args, acc, scale, zero, smem_base + stage * T::kStageBytes, blk.kt_begin + i, i == 0,
                                   blk.warp_m, blk.warp_n, blk.lane);
        });

    if (gridDim.z > 1 &&
        !qk_split_k_reduce<float, T::kMTiles, kNTiles, T::kThreads>(
            acc, args.workspace, args.tile_counters, blk.m0 + blk.warp_m * T::kWarpM + blk.lane / 4, args.m)) {
        return;
    }

    // Epilogue 1: bias in f32, one rounding to f16, staged in shared memory.
    const __half* bias = reinterpret_cast<const __half*>(args.bias);  // [N] or null
    __half* c_tile = reinterpret_cast<__half*>(smem);                 // [BM][kCStride]
    qk_stage_c_fragments<T::kWarpM, kNBlock, T::kCStride>(c_tile, acc, blk, [&](uint32_t gn) {
        // N % 64 == 0: gn < N iff gn + 1 < N
        const float b0 = (bias != nullptr && gn < args.n) ? __half2float(bias[gn]) : 0.0f;
        const float b1 = (bias != nullptr && gn < args.n) ? __half2float(bias[gn + 1]) : 0.0f;
        return [b0, b1](uint32_t, float acc0, float acc1) {
            return __floats2half2_rn(__fadd_rn(acc0, b0), __fadd_rn(acc1, b1));
        };
    });
    __syncthreads();

    // Epilogue 2: shared -> global, 16-byte row segments (N % 64 == 0).
    qk_store_c_tile<BM, BN, T::kThreads, T::kCStride>(c_tile, args.c, blk.m0, blk.n0, args.m, args.n);
}

}  // namespace

/* One kernel per (weight width, configuration); the tile shape is a template argument
 * so that every loop over fragments unrolls into registers. */
#define QK_WO_INSTANCE(NAME, BITS, CFG, STAGES)                                                                \
    extern "C" __global__ void __launch_bounds__(QK_WO_##CFG##_WARPS_M * QK_WO_##CFG##_WARPS_N * 32)         \
        NAME(const QkGemmWeightOnlyArgs args) {                                                                \
        gemm_weight_only<BITS, QK_WO_##CFG##_BM, QK_WO_##CFG##_WARPS_N * QK_WO_N_BLOCK, QK_WO_##CFG##_WARPS_M, \
                         QK_WO_##CFG##_WARPS_N, STAGES>(args);                                                 \
    }

QK_WO_INSTANCE(qk_gemm_w4a16_gemv, 4, GEMV, QK_WO_GEMV_STAGES)
QK_WO_INSTANCE(qk_gemm_w4a16_small, 4, SMALL, QK_WO_SMALL_STAGES)
QK_WO_INSTANCE(qk_gemm_w4a16_medium, 4, MEDIUM, QK_WO_MEDIUM_STAGES)
QK_WO_INSTANCE(qk_gemm_w4a16_large, 4, LARGE, QK_WO_LARGE_STAGES)
QK_WO_INSTANCE(qk_gemm_w8a16_gemv, 8, GEMV, QK_WO_GEMV_STAGES_W8)
QK_WO_INSTANCE(qk_gemm_w8a16_small, 8, SMALL, QK_WO_SMALL_STAGES_W8)
QK_WO_INSTANCE(qk_gemm_w8a16_medium, 8, MEDIUM, QK_WO_MEDIUM_STAGES_W8)
QK_WO_INSTANCE(qk_gemm_w8a16_large, 8, LARGE, QK_WO_LARGE_STAGES_W8)
