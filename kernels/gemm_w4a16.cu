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
 * upper one. Even nibbles (p = 0, 2):
 *     lop3.b32 d, w, 0x000f000f, 0x64006400, (0xF0 & 0xCC) | 0xAA
 * computes d = (w & 0x000f000f) | 0x64006400 in one instruction (PTX ISA "lop3": the
 * immLut is the truth table of the function evaluated on the canonical operands
 * a = 0xF0, b = 0xCC, c = 0xAA). Each 16-bit half is then 0x6400 | q: f16 0x6400 is
 * 1024.0 with a zero mantissa and the ulp at 1024 is exactly 1, so OR-ing q < 16 into
 * the mantissa gives the f16 value 1024 + q exactly. The zero point is kept as the f16
 * 1024 + z (built the same way), so sub.f16x2 gives q - z, an integer in [-15, 15],
 * exactly (both operands lie in [1024, 1040), their difference is representable).
 * Odd nibbles (p = 1, 3) use the mask 0x00f000f0 instead: the nibble lands on mantissa
 * bits 4-7, giving 1024 + 16 q exactly (16 q <= 240 stays inside the mantissa), and one
 * fma.rn.f16x2 d, x, 1/16, -(64 + z) yields q - z exactly: scaling by 1/16 is exact (a
 * power of two), so the fma's single rounding acts on the integer q - z, which is
 * representable. So w serves p = 0, 1 and w >> 8 serves p = 2, 3: one shift per four
 * b registers instead of three (Marlin's arrangement). One mul.f16x2 by the scale
 * then rounds once; the weight equals the host reference f16((q - z) * s) bit for bit.
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
 * k-steps past K run on those zeros (adding exact zeros) rather than branching.
 * At decode the tensor cores are nearly idle and few warps are resident, so the
 * instructions issued per weight byte bound how fast the SMs drain their pipelines:
 * an H100 SM must take 12.8 B per clock to stream at full HBM3 bandwidth, and the first
 * version of this kernel executed 0.30 warp instructions per 4-bit weight byte (3.8 per
 * SM clock of the 4 an SM can issue at best) and streamed at a third of copy
 * bandwidth, as an issue-bound kernel would. Hence: the copies of a stage are planned
 * once per block (QkTileCopy, WeightStreamCopy: a 64-bit add, a compare and the cp.async
 * per chunk, no loop remainders), group boundaries are masks, not remainders (Groups),
 * the 4-bit dequantization shares one shift among four b registers, and no branch
 * separates the k-steps of a stage (the next k-step's shared loads issue early): 0.18
 * instructions per 4-bit byte, 0.11 per 8-bit byte (was 0.16), counted by the simulator
 * and held as budgets by tests/gemm_w4a16.rs and tests/gemm_w8a16.rs. Not yet timed on
 * a GPU. An earlier fixed-trip rewrite of the copies was timed on an H100: faster on
 * long layers, 1.8x slower at 4096 x 4096 with 16 splits, cause unknown; that kernel
 * was 4900 SASS instructions long with a 5x unrolled prologue of copy loops, this one
 * is 1900.
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
/* -(64 + 8): the implicit zero point in the form the odd nibbles' fma adds. */
constexpr uint32_t kSymZeroInt4X16 = 0xD480D480u;
/* 1024 + 128: the bias of the stored 8-bit codes (u = q + 128), as the biased f16. */
constexpr uint32_t kSymZeroInt8 = 0x64806480u;
/* f16x2 (960, 960): 960 - (1024 + z) = -(64 + z). */
constexpr uint32_t kF16x2_960 = 0x63806380u;
/* f16x2 (1/16, 1/16): undoes the odd nibbles' factor 16 exactly. */
constexpr uint32_t kF16x2_one_sixteenth = 0x2C002C00u;

template <int BITS, int BM, int BN, int WARPS_M, int WARPS_N, int STAGES>
struct Tile {
    static_assert(BITS == 4 || BITS == 8, "4- or 8-bit weights");
    static_assert(BN == WARPS_N * kNBlock, "every warp owns one 64-column weight strip");
    static constexpr int kThreads = WARPS_M * WARPS_N * kWarpThreads;
    static constexpr int kBm = BM;
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

/* A K position's quantization group, without a division: every group size is a power
 * of two (32, 64, 128) except per-channel, where group_size = K and only k = 0 starts a
 * group. For a size that is not a power of two, shift = 31 and mask = ~0 give
 * k >> shift = 0 and (k & mask) == 0 iff k == 0, for every k < 2^31 (the host bounds K).
 * Built once per block: a runtime remainder costs ~20 instructions, and the scales'
 * group is looked up every stage. */
struct Groups {
    uint32_t shift;  // log2(group_size), or 31
    uint32_t mask;   // group_size - 1, or ~0
    bool of_32;      // two groups per 64-wide stage

    __device__ __forceinline__ explicit Groups(uint32_t group_size) {
        const bool pow2 = (group_size & (group_size - 1)) == 0;
        shift = pow2 ? __ffs(static_cast<int>(group_size)) - 1 : 31;
        mask = pow2 ? group_size - 1 : ~0u;
        of_32 = group_size == QK_WO_MIN_GROUP;
    }
    __device__ __forceinline__ uint32_t of(uint32_t k) const { return k >> shift; }
    /* The scales must be (re)loaded at a split's first k-step and at group boundaries. */
    __device__ __forceinline__ bool starts(uint32_t k, bool first_step) const { return first_step || (k & mask) == 0; }
    /* The scale slot of a stage that k-step `ks` reads: with groups of 32 a 64-wide stage
     * holds two group rows, otherwise one. */
    __device__ __forceinline__ int slot(int ks) const { return of_32 ? ks * kMmaK / QK_WO_MIN_GROUP : 0; }
};

/* One thread's share of a stage's weight copies: the kKSteps units of each of the
 * block's BN / 64 strips, contiguous per strip in the packed layout. Thread t copies
 * chunk t + p * kThreads (p = 0 .. kPasses - 1) of the stage's strips, a fixed trip
 * count; the per-thread part of every address is computed once, so a stage's copy costs
 * a 64-bit add, the K and N bound tests and the cp.async itself. */
template <class T>
struct WeightStreamCopy {
    static constexpr int kChunks = T::kWBytes / QK_CHUNK_BYTES;
    static constexpr int kPasses = kChunks / T::kThreads;
    static constexpr int kChunksPerUnit = T::kUnitBytes / QK_CHUNK_BYTES;
    static constexpr int kChunksPerStrip = kKSteps * kChunksPerUnit;
    static constexpr int kStageStripBytes = kKSteps * T::kUnitBytes;  // one stage of one strip
    static_assert(kChunks % T::kThreads == 0, "every thread copies the same number of chunks");
    static_assert(kChunksPerStrip % T::kThreads == 0 && T::kThreads % kChunksPerUnit == 0,
                  "a pass covers whole units of one strip");

    const uint8_t* src;     // this thread's chunk of the block's first strip, at K tile 0
    uint64_t strip_bytes;   // bytes of one 64-column strip (K/16 units)
    uint32_t k_steps;       // K / 16
    uint32_t unit;          // k-step within a stage of this thread's pass-0 chunk
    uint32_t strips_in;     // bit p: pass p's strip lies inside N

    __device__ __forceinline__ WeightStreamCopy(const QkGemmWeightOnlyArgs& args, uint32_t n0) {
        const uint8_t* w = reinterpret_cast<const uint8_t*>(args.w);  // units [N/64][K/16]
        k_steps = args.k / kMmaK;
        strip_bytes = static_cast<uint64_t>(k_steps) * T::kUnitBytes;
        const uint32_t strip0 = n0 / kNBlock;
        src = w + strip0 * strip_bytes + threadIdx.x * QK_CHUNK_BYTES;
        unit = threadIdx.x / kChunksPerUnit;
        strips_in = 0;
#pragma unroll
        for (int p = 0; p < kPasses; ++p) {
            strips_in |= static_cast<uint32_t>(strip0 + strip_of(p) < args.n / kNBlock) << p;
        }
    }

    /* Strip (within the block) and first chunk (within the strip's stage) of pass p. */
    static constexpr int strip_of(int p) { return p * T::kThreads / kChunksPerStrip; }
    static constexpr int chunk_of(int p) { return p * T::kThreads % kChunksPerStrip; }

    /* Issues the copies of K tile `kt` into the stage's weight area at shared `dst`. */
    __device__ __forceinline__ void issue(uint32_t dst, uint32_t kt) const {
        const uint8_t* stage_src = src + static_cast<uint64_t>(kt) * kStageStripBytes;
#pragma unroll
        for (int p = 0; p < kPasses; ++p) {
            const uint32_t step = kt * kKSteps + unit + chunk_of(p) / kChunksPerUnit;
            const bool in = step < k_steps && ((strips_in >> p) & 1u);
            const uint8_t* from = stage_src + strip_of(p) * strip_bytes + chunk_of(p) * QK_CHUNK_BYTES;
            qk_cp_async_16(dst + (p * T::kThreads + threadIdx.x) * QK_CHUNK_BYTES, from, in ? QK_CHUNK_BYTES : 0);
        }
    }
};

/* Issues the cp.async copies of K-tile `kt` (A, W, and the scale/zero rows of groups
 * starting in it) into one stage. */
template <class T>
__device__ __forceinline__ void load_stage(const QkGemmWeightOnlyArgs& args, const Groups& groups,
                                           const QkTileCopy<T::kBm, T::kThreads>& a_copy,
                                           const WeightStreamCopy<T>& w_copy, uint32_t stage_addr, uint32_t n0,
                                           uint32_t kt, bool first_tile) {
    const uint32_t k0 = kt * kBk;
    a_copy.issue(stage_addr, kt);
    w_copy.issue(stage_addr + T::kWOffset, kt);
    // Scale (and zero) rows of the groups that start in this tile (or are current at a
    // split's first tile). Block-uniform conditions.
    const __half* scales = reinterpret_cast<const __half*>(args.scales);  // [K/g, N]
    const uint32_t* zeros = reinterpret_cast<const uint32_t*>(args.zeros);  // [K/g, N/8]
#pragma unroll
    for (int slot = 0; slot < kGroupSlots; ++slot) {
        const uint32_t gk = k0 + slot * QK_WO_MIN_GROUP;
        // Groups of 32: both slots, every stage; a slot past K is zero-filled, so the
        // k-steps there (which run on zeros, see compute_stage) read finite scales.
        const bool needed = groups.of_32 || (slot == 0 && groups.starts(k0, first_tile));
        if (!needed) {
            continue;
        }
        const uint32_t group = groups.of(gk);
        constexpr int kScaleChunks = T::kScaleSlotBytes / QK_CHUNK_BYTES;
        static_assert(kScaleChunks <= T::kThreads, "one scale chunk per thread at most");
        if (threadIdx.x < kScaleChunks) {
            const int i = threadIdx.x;
            const uint32_t gn = n0 + i * kHalvesPerChunk;
            const bool valid = gn < args.n && gk < args.k;
            const __half* src = scales + static_cast<uint64_t>(group) * args.n + gn;
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
                const bool valid = gn < args.n && gk < args.k;
                const uint32_t* src = zeros + (static_cast<uint64_t>(group) * args.n + gn) / kNibblesPerWord;
                qk_cp_async_16(stage_addr + T::kZeroOffset + slot * T::kZeroSlotBytes + i * QK_CHUNK_BYTES, src,
                               valid ? QK_CHUNK_BYTES : 0);
            }
        }
    }
}

/* The lane's dequantization constants of the current group, one half2 per n8-tile with
 * both halves equal (the two K elements of a b register share a group). */
struct GroupConsts {
    uint32_t scale[kNTiles];     // (s, s)
    uint32_t zero[kNTiles];      // (1024 + z): subtracted from an even nibble's 1024 + q
    uint32_t zero_x16[kNTiles];  // -(64 + z): added to an odd nibble's (1024 + 16 q) / 16
};

/* Loads the lane's 8 scales and zero points (one per n8-tile) of a group slot. */
template <class T, int BITS>
__device__ __forceinline__ void load_group(GroupConsts& gc, uint32_t stage_addr, int slot, int warp_n, int g,
                                           bool asymmetric) {
    // Position 8g + nt of a 64-column block holds column 8nt + g: 16 contiguous bytes.
    const uint4 s = qk_lds_v4(stage_addr + T::kScaleOffset + slot * T::kScaleSlotBytes +
                              (warp_n * kNBlock + g * kNTiles) * 2);
    const uint32_t pairs[4] = {s.x, s.y, s.z, s.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        gc.scale[2 * j] = qk_prmt(pairs[j], pairs[j], QK_PRMT_DUP_LOW_HALF);
        gc.scale[2 * j + 1] = qk_prmt(pairs[j], pairs[j], QK_PRMT_DUP_HIGH_HALF);
    }
    if (BITS == 4 && asymmetric) {
        // Word 8 * strip + g holds tile nt's zero point in nibble nt; the nibble trick on
        // (word >> 4j) yields half2(1024 + z_j, 1024 + z_{j+4}).
        const uint32_t word = qk_lds_u32(stage_addr + T::kZeroOffset + slot * T::kZeroSlotBytes +
                                         (warp_n * kNTiles + g) * sizeof(uint32_t));
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const uint32_t z = qk_nibbles_to_f16x2_biased(word >> (4 * j));
            gc.zero[j] = qk_prmt(z, z, QK_PRMT_DUP_LOW_HALF);
            gc.zero[j + 4] = qk_prmt(z, z, QK_PRMT_DUP_HIGH_HALF);
        }
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
            // 960 - (1024 + z) = -(64 + z), exact (integers below 2048).
            gc.zero_x16[nt] = qk_half2_bits(__hsub2(qk_as_half2(kF16x2_960), qk_as_half2(gc.zero[nt])));
        }
    } else {
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
            gc.zero[nt] = BITS == 4 ? kSymZeroInt4 : kSymZeroInt8;
            gc.zero_x16[nt] = kSymZeroInt4X16;
        }
    }
}

/* (biased - zero) * scale in f16x2: the subtraction is exact, the product rounds once. */
__device__ __forceinline__ uint32_t dequant_pair(uint32_t biased, uint32_t zero, uint32_t scale) {
    return qk_half2_bits(__hmul2_rn(__hsub2(qk_as_half2(biased), qk_as_half2(zero)), qk_as_half2(scale)));
}

/* ((1024 + 16 q) / 16 - (64 + z)) * scale in f16x2: 1024 + 16 q times 1/16 is exactly
 * 64 + q (a power of two), so the fma's one rounding acts on the integer q - z and is
 * exact; the product rounds once: the same bits as dequant_pair. */
__device__ __forceinline__ uint32_t dequant_pair_x16(uint32_t biased_x16, uint32_t zero_x16, uint32_t scale) {
    const __half2 q_minus_z =
        __hfma2(qk_as_half2(biased_x16), qk_as_half2(kF16x2_one_sixteenth), qk_as_half2(zero_x16));
    return qk_half2_bits(__hmul2_rn(q_minus_z, qk_as_half2(scale)));
}

/* The lane's B registers of one k-step: b[nt][0..1] for its 8 n8-tiles. */
template <class T, int BITS>
__device__ __forceinline__ void dequant_step(uint32_t (&b)[kNTiles][2], uint32_t unit_addr, int lane,
                                             const GroupConsts& gc) {
    if constexpr (BITS == 4) {
        const uint4 v = qk_lds_v4(unit_addr + lane * QK_CHUNK_BYTES);
        const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            // Nibbles p = 0..3 (and p + 4 in the high half) are b0, b1 of tile 2j, then
            // b0, b1 of tile 2j + 1: p = 0, 1 from the word, p = 2, 3 from word >> 8.
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int nt = 2 * j + half;
                const uint32_t w = words[j] >> (8 * half);
                b[nt][0] = dequant_pair(qk_nibbles_to_f16x2_biased(w), gc.zero[nt], gc.scale[nt]);
                b[nt][1] = dequant_pair_x16(qk_high_nibbles_to_f16x2_biased16(w), gc.zero_x16[nt], gc.scale[nt]);
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
                b[nt][0] = dequant_pair(qk_bytes_to_f16x2_biased(words[j], QK_PRMT_BYTES_01_F16), gc.zero[nt],
                                        gc.scale[nt]);
                b[nt][1] = dequant_pair(qk_bytes_to_f16x2_biased(words[j], QK_PRMT_BYTES_23_F16), gc.zero[nt],
                                        gc.scale[nt]);
            }
        }
    }
}

/* acc[mt][nt] += A_tile(mt) * dequant(W_tile(nt)) over the 64 K of one stage. */
template <class T, int BITS>
__device__ __forceinline__ void compute_stage(const QkGemmWeightOnlyArgs& args, const Groups& groups,
                                              float (&acc)[T::kMTiles][kNTiles][4], GroupConsts& gc,
                                              uint32_t stage_addr, uint32_t kt, bool first_tile, int warp_m,
                                              int warp_n, int lane) {
    const uint32_t k0 = kt * kBk;
    // One remainder per stage, not per k-step: a stage starts at a multiple of 64, so
    // with groups >= 32 (or per-channel, where only k = 0 starts a group) a later k-step
    // k0 + 16 ks starts a group only for groups of 32 at ks = 2.
    const bool stage_starts_group = groups.starts(k0, first_tile);
    // No bounds check between k-steps: past K (the last stage when K % 64 != 0) A, W and
    // the scales are zero-filled, so those k-steps add exact zeros (0 * finite). A
    // branch there would keep the compiler from issuing a k-step's shared loads before
    // the previous k-step's dequantization and mma, exposing their latency every k-step.
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
        const bool new_group =
            ks == 0 ? stage_starts_group : groups.of_32 && ks * kMmaK % QK_WO_MIN_GROUP == 0;
        if (new_group) {
            load_group<T, BITS>(gc, stage_addr, groups.slot(ks), warp_n, lane / 4, args.zeros != 0);
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
        dequant_step<T, BITS>(b, stage_addr + T::kWOffset + (warp_n * kKSteps + ks) * T::kUnitBytes, lane, gc);
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
    GroupConsts gc;  // the current group's scales and zero points
    const Groups groups(args.group_size);

    const QkTileCopy<BM, T::kThreads> a_copy(reinterpret_cast<const void*>(args.a), blk.m0, args.m, args.k * 2);
    const WeightStreamCopy<T> w_copy(args, blk.n0);
    qk_pipeline_main_loop<STAGES>(
        blk.num_kt,
        [&](int stage, int i) {
            load_stage<T>(args, groups, a_copy, w_copy, smem_base + stage * T::kStageBytes, blk.n0, blk.kt_begin + i,
                          i == 0);
        },
        [&](int stage, int i) {
            compute_stage<T, BITS>(args, groups, acc, gc, smem_base + stage * T::kStageBytes, blk.kt_begin + i,
                                   i == 0, blk.warp_m, blk.warp_n, blk.lane);
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
