/*
 * qk_weight_only.cuh — the parts of the weight-only GEMM (gemm_w4a16.cu, mma.sync, and
 * gemm_w4a16_sm90a.cu, wgmma) that do not depend on how the tensor cores are fed: the
 * block's tile and shared-memory plan, the stage copies of A, W and the group rows, the
 * group bookkeeping, and the in-register dequantization of one k-step's weights. The
 * packed weight layout and the dequantization bit tricks are described at the top of
 * gemm_w4a16.cu and in qk_abi.h.
 */
#ifndef QK_WEIGHT_ONLY_CUH
#define QK_WEIGHT_ONLY_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "qk_abi.h"
#include "qk_convert.cuh"
#include "qk_gemm.cuh"
#include "qk_grid_dependency.cuh"
#include "qk_mma.cuh"
#include "qk_pipeline.cuh"

namespace qk_wo {
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
constexpr int kF16Bytes = 2;                                   // bytes per f16 (scales)
constexpr int kNibblesPerByte = 2;                             // 4-bit zero points per byte
constexpr int kColsPerZeroChunk = QK_CHUNK_BYTES * kNibblesPerByte;  // zero points per 16 bytes
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

/* A block's tile (BM rows of C x BN columns, WARPS_M x WARPS_N warps) and its shared
 * memory: STAGES stages of [A | W | scale slots | zero slots], each stage starting on a
 * STAGE_ALIGN-byte boundary (wgmma's 128-byte-swizzled operands need 1024). */
template <int BITS, int BM, int BN, int WARPS_M, int WARPS_N, int STAGES, int STAGE_ALIGN = QK_CHUNK_BYTES>
struct Tile {
    static_assert(BITS == 4 || BITS == 8, "4- or 8-bit weights");
    static_assert(BN == WARPS_N * kNBlock, "each of the WARPS_N warp columns owns one 64-column weight strip");
    static constexpr int kThreads = WARPS_M * WARPS_N * kWarpThreads;
    static constexpr int kBm = BM;
    static constexpr int kStages = STAGES;
    // Rows of C per warp and its m16 tiles (mma.sync kernels; the wgmma kernel's
    // WARPS_M = 2 or 4 warps share a strip's columns instead, each over all BM rows).
    static constexpr int kWarpM = BM / WARPS_M;
    static constexpr int kMTiles = kWarpM / kMmaM;
    static constexpr int kChunksPerLane = BITS / 4;                // 16-byte loads per lane per k-step
    static constexpr int kUnitBytes = kWarpThreads * QK_CHUNK_BYTES * kChunksPerLane;  // 64 x 16 weights
    static constexpr int kABytes = BM * kAChunksPerRow * QK_CHUNK_BYTES;
    static constexpr int kWBytes = (BN / kNBlock) * kKSteps * kUnitBytes;
    static constexpr int kScaleSlotBytes = BN * 2;                 // BN f16
    static constexpr int kZeroSlotBytes = BN / 2;                  // BN nibbles
    static constexpr int kWOffset = kABytes;
    static constexpr int kScaleOffset = kWOffset + kWBytes;
    static constexpr int kZeroOffset = kScaleOffset + kGroupSlots * kScaleSlotBytes;
    static constexpr int kStageBytes =
        (kZeroOffset + kGroupSlots * kZeroSlotBytes + STAGE_ALIGN - 1) / STAGE_ALIGN * STAGE_ALIGN;
    static constexpr int kSmemBytes = STAGES * kStageBytes;
    static constexpr int kCStride = BN + QK_C_ROW_PAD_HALVES;     // halves per staged C row
    static_assert(kWarpM % kMmaM == 0 || kWarpM == kMmaN,
                  "a warp tile holds whole m16 tiles, or is the n8 of a product with the weights as the "
                  "mma's A operand (gemv_swap_ab)");
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
    /* Whether a stage starting at K `k0` needs group slot `slot` copied: groups of 32 use
     * both slots every stage; otherwise slot 0 holds the group starting in the stage (or
     * current at a split's first stage) and slot 1 is unused. */
    __device__ __forceinline__ bool needs_slot(int slot, uint32_t k0, bool first_stage) const {
        return of_32 || (slot == 0 && starts(k0, first_stage));
    }
    /* Whether k-step `ks` of a stage starts a group (`stage_starts`: whether its first
     * k-step does, from starts()): only groups of 32 start inside a 64-wide stage, at its
     * third k-step. */
    __device__ __forceinline__ bool step_starts(int ks, bool stage_starts) const {
        return ks == 0 ? stage_starts : of_32 && ks * kMmaK % QK_WO_MIN_GROUP == 0;
    }
    /* The scale slot of a stage that k-step `ks` reads: with groups of 32 a 64-wide stage
     * holds two group rows, otherwise one. */
    __device__ __forceinline__ int slot(int ks) const { return of_32 ? ks * kMmaK / QK_WO_MIN_GROUP : 0; }
};

/* One thread's share of a stage's weight copies: the kKSteps units of each of the
 * block's BN / 64 strips, contiguous per strip in the packed layout. Thread t copies
 * chunk t + p * kThreads (p = 0 .. kPasses - 1) of the stage's strips, a fixed trip
 * count; the per-thread part of every address is computed once, so a stage's copy costs
 * a 64-bit add, the K and N bound tests and the cp.async itself. A pass covers part of
 * one strip (kThreads <= chunks per strip stage) or whole strips (kThreads a multiple). */
template <class T>
struct WeightStreamCopy {
    static constexpr int kChunks = T::kWBytes / QK_CHUNK_BYTES;
    static constexpr int kPasses = kChunks / T::kThreads;
    static constexpr int kChunksPerUnit = T::kUnitBytes / QK_CHUNK_BYTES;
    static constexpr int kChunksPerStrip = kKSteps * kChunksPerUnit;  // of one stage
    static constexpr int kStageStripBytes = kKSteps * T::kUnitBytes;  // one stage of one strip
    static_assert(kChunks % T::kThreads == 0, "every thread copies the same number of chunks");
    static_assert((kChunksPerStrip % T::kThreads == 0 || T::kThreads % kChunksPerStrip == 0) &&
                      T::kThreads % kChunksPerUnit == 0,
                  "a pass covers whole units, of one strip or of whole strips");

    const uint8_t* src;     // this thread's pass-0 chunk, at K tile 0
    uint64_t strip_bytes;   // bytes of one 64-column strip (K/16 units)
    uint32_t k_steps;       // K / 16
    uint32_t unit;          // k-step within a stage of this thread's pass-0 chunk
    uint32_t strips_in;     // bit p: this thread's pass-p strip lies inside N

    __device__ __forceinline__ WeightStreamCopy(const QkGemmWeightOnlyArgs& args, uint32_t n0) {
        const uint8_t* w = reinterpret_cast<const uint8_t*>(args.w);  // units [N/64][K/16]
        k_steps = args.k / kMmaK;
        strip_bytes = static_cast<uint64_t>(k_steps) * T::kUnitBytes;
        // A block with more threads than a strip stage has chunks starts its threads on
        // different strips; otherwise all on the first (known at compile time).
        constexpr bool kThreadsSpanStrips = T::kThreads > kChunksPerStrip;
        const uint32_t strip0 = n0 / kNBlock + (kThreadsSpanStrips ? threadIdx.x / kChunksPerStrip : 0);
        const uint32_t chunk0 = kThreadsSpanStrips ? threadIdx.x % kChunksPerStrip : threadIdx.x;
        src = w + strip0 * strip_bytes + chunk0 * QK_CHUNK_BYTES;
        unit = chunk0 / kChunksPerUnit;
        strips_in = 0;
#pragma unroll
        for (int p = 0; p < kPasses; ++p) {
            strips_in |= static_cast<uint32_t>(strip0 + strip_of(p) < args.n / kNBlock) << p;
        }
        // Kept in registers, not re-derived from %tid.x every stage (see QkTileCopy).
        asm("" : "+l"(src), "+l"(strip_bytes), "+r"(k_steps), "+r"(unit), "+r"(strips_in));
    }

    /* Strips and chunks (within the strip's stage) pass p adds to pass 0's. */
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

/* One thread's share of the copies of a stage's group rows (the scales, and the zero
 * points of asymmetric 4-bit weights, of the groups a stage needs), planned once per
 * block like QkTileCopy. Threads 0 .. kScaleChunks - 1 copy one 16-byte chunk of the
 * block's BN scales each, the next kZeroChunks threads one chunk of its BN zero-point
 * nibbles each, the others nothing.
 *
 * Why: every warp issues a stage's copy code, predicated or not, so its cost is paid by
 * all of them. Computed per stage (the group row's address from the column, the tensor
 * and N, the bounds), it took ~45 instructions per group slot and warp, as many as a
 * third of the decode GEMV's k-step work; planned, a slot costs an address multiply-add,
 * a compare and the predicated cp.async. */
template <class T>
struct GroupRowCopy {
    static constexpr int kScaleChunks = T::kScaleSlotBytes / QK_CHUNK_BYTES;
    static constexpr int kZeroChunks = T::kZeroSlotBytes / QK_CHUNK_BYTES;
    static_assert(kScaleChunks + kZeroChunks <= T::kThreads, "one group-row chunk per thread at most");

    const uint8_t* src;   // the thread's chunk in group row 0 of its tensor
    uint32_t row_bytes;   // bytes of one group row of that tensor
    uint32_t dst;         // the chunk's offset in a stage (slot 0)
    uint32_t slot_bytes;  // bytes between the tensor's slots in a stage
    uint32_t copies;      // 1: the thread has a chunk (of a tensor present)
    uint32_t bytes_in_n;  // 16, or 0 for a chunk past N: zero-filled, as the strips' weights

    __device__ __forceinline__ GroupRowCopy(const QkGemmWeightOnlyArgs& args, uint32_t n0) {
        const uint32_t t = threadIdx.x;
        const bool scale_thread = t < kScaleChunks;
        // Scales f16 [K/g, N]: chunk t holds columns n0 + 8t ..; zero points u32
        // [K/g, N/8]: chunk i holds the nibbles of columns n0 + 32i ...
        const uint32_t i = scale_thread ? t : t - kScaleChunks;
        const uint32_t gn = n0 + i * (scale_thread ? kHalvesPerChunk : kColsPerZeroChunk);
        const uint64_t tensor = scale_thread ? args.scales : args.zeros;
        row_bytes = scale_thread ? args.n * kF16Bytes : args.n / kNibblesPerByte;
        src = reinterpret_cast<const uint8_t*>(tensor) + (scale_thread ? gn * kF16Bytes : gn / kNibblesPerByte);
        dst = scale_thread ? T::kScaleOffset + i * QK_CHUNK_BYTES : T::kZeroOffset + i * QK_CHUNK_BYTES;
        slot_bytes = scale_thread ? T::kScaleSlotBytes : T::kZeroSlotBytes;
        copies = (t < kScaleChunks + kZeroChunks && tensor != 0) ? 1u : 0u;
        bytes_in_n = gn < args.n ? QK_CHUNK_BYTES : 0;
        asm("" : "+l"(src), "+r"(row_bytes), "+r"(dst), "+r"(slot_bytes), "+r"(copies), "+r"(bytes_in_n));
    }

    /* Issues the thread's copy of group `group`'s row into slot `slot` of the stage at
     * `stage_addr`; `k_in` false (a slot past K) zero-fills it instead. */
    __device__ __forceinline__ void issue(uint32_t stage_addr, int slot, uint32_t group, bool k_in) const {
        if (copies) {
            qk_cp_async_16(stage_addr + dst + slot * slot_bytes, src + static_cast<uint64_t>(group) * row_bytes,
                           k_in ? bytes_in_n : 0);
        }
    }
};

/* The copy plans of a block's stages: A, W and the group rows. */
template <class T>
struct StageCopies {
    QkTileCopy<T::kBm, T::kThreads> a;
    WeightStreamCopy<T> w;
    GroupRowCopy<T> rows;

    __device__ __forceinline__ StageCopies(const QkGemmWeightOnlyArgs& args, uint32_t m0, uint32_t n0)
        : a(reinterpret_cast<const void*>(args.a), m0, args.m, args.k * 2), w(args, n0), rows(args, n0) {}
};

/* Issues the cp.async copies of K-tile `kt` (A, W, and the scale/zero rows of groups
 * starting in it) into one stage. */
template <class T>
__device__ __forceinline__ void load_stage(const QkGemmWeightOnlyArgs& args, const Groups& groups,
                                           const StageCopies<T>& copies, uint32_t stage_addr, uint32_t kt,
                                           bool first_tile) {
    const uint32_t k0 = kt * kBk;
    copies.a.issue(stage_addr, kt);
    copies.w.issue(stage_addr + T::kWOffset, kt);
    // Scale (and zero) rows of the groups that start in this tile (or are current at a
    // split's first tile). Block-uniform conditions.
#pragma unroll
    for (int slot = 0; slot < kGroupSlots; ++slot) {
        const uint32_t gk = k0 + slot * QK_WO_MIN_GROUP;
        // Groups of 32: both slots, every stage; a slot past K is zero-filled, so the
        // k-steps there (which run on zeros, see compute_stage) read finite scales.
        if (groups.needs_slot(slot, k0, first_tile)) {
            copies.rows.issue(stage_addr, slot, groups.of(gk), gk < args.k);
        }
    }
}

/* Before a block waits for the previous grid (programmatic dependent launch,
 * qk_grid_dependency.cuh): thread s < BN / 64 asks L2 for strip s's weights of the first
 * TILES K tiles of the block's split (clipped to K), one contiguous range per strip in the
 * packed layout. They do not depend on the previous grid, so under a programmatic launch
 * they arrive while it finishes, and the pipeline's first copies hit L2 instead of
 * paying a DRAM round trip after the wait. Only under a programmatic launch
 * (QK_LAUNCH_PROGRAMMATIC): otherwise the prologue's own copies follow at once, and the
 * measured ordinary launch stays as it was. */
template <class T, int TILES>
__device__ __forceinline__ void prefetch_first_weights(const QkGemmWeightOnlyArgs& args, const QkGemmBlock& blk) {
    constexpr uint32_t kStrips = T::kWBytes / (kKSteps * T::kUnitBytes);  // BN / 64
    static_assert(T::kUnitBytes % QK_PREFETCH_GRANULE_BYTES == 0, "whole units are whole prefetch granules");
    const uint32_t strip = blk.n0 / kNBlock + threadIdx.x;
    if (threadIdx.x < kStrips && strip < args.n / kNBlock) {
        const uint32_t k_steps = args.k / kMmaK;  // units per strip
        const uint32_t first = blk.kt_begin * kKSteps;
        const uint32_t steps = min(static_cast<uint32_t>(min(blk.num_kt, TILES)) * kKSteps, k_steps - first);
        qk_prefetch_l2(args.w + (static_cast<uint64_t>(strip) * k_steps + first) * T::kUnitBytes,
                       steps * T::kUnitBytes);
    }
}

/* The weight-only main loop of a block: the stage copy plans and the cp.async pipeline
 * (qk_pipeline_main_loop, READERS as there) over the block's K tiles, loading each stage
 * with load_stage; `compute(stage_addr, kt, first_tile)` consumes a stage.
 * Programmatic dependent launch: the prologue's weights are prefetched into L2 (when
 * the host says it launched so: QK_LAUNCH_PROGRAMMATIC), then every thread waits for
 * the previous grid before its first copy (A is that grid's output; C, the workspace
 * and the tile counters are written only after the loop), and once the block's loop is
 * done (no weights left to stream) the next grid may launch. */
template <class T, class READERS = QkWarpReaders, class Compute>
__device__ __forceinline__ void weight_only_main_loop(const QkGemmWeightOnlyArgs& args, const QkGemmBlock& blk,
                                                      const Groups& groups, uint32_t smem_base, Compute&& compute) {
    if (args.launch_flags & QK_LAUNCH_PROGRAMMATIC) {
        prefetch_first_weights<T, T::kStages - READERS::kLag>(args, blk);
    }
    qk_wait_for_prior_grid();
    const StageCopies<T> copies(args, blk.m0, blk.n0);
    qk_pipeline_main_loop<T::kStages, READERS>(
        blk.num_kt,
        [&](int stage, int i) {
            load_stage<T>(args, groups, copies, smem_base + stage * T::kStageBytes, blk.kt_begin + i, i == 0);
        },
        [&](int stage, int i) { compute(smem_base + stage * T::kStageBytes, blk.kt_begin + i, i == 0); });
    qk_allow_dependent_grid();
}

/* The lane's dequantization constants of the current group, one half2 per n8-tile with
 * both halves equal (the two K elements of a b register share a group). TILES is the
 * n8-tiles of a strip one warp dequantizes, a "part" of the strip: all 8 (mma.sync
 * kernels: a warp per 64-column strip), the 4 of one 32-column half (wgmma large_wgmma:
 * two warps per strip) or the 2 of one 16-column quarter (wgmma large_wgmma_n256: four
 * warps per strip), each warp dequantizing its part of every lane's chunk. */
template <int TILES>
struct GroupConsts {
    static_assert(TILES == kNTiles || TILES == kNTiles / 2 || TILES == kNTiles / 4,
                  "a whole strip, one half or one quarter");
    uint32_t scale[TILES];     // (s, s)
    uint32_t zero[TILES];      // (1024 + z): subtracted from an even nibble's 1024 + q
    uint32_t zero_x16[TILES];  // -(64 + z): added to an odd nibble's (1024 + 16 q) / 16

    /* Zero points start as the symmetric formats' implicit ones; load_group replaces
     * them only for asymmetric weights. Set once before the main loop, they stay in
     * registers: rewritten at every group (as before), they cost 2 x TILES moves a group. */
    template <int BITS>
    __device__ __forceinline__ static GroupConsts with_symmetric_zeros() {
        GroupConsts gc;
#pragma unroll
        for (int nt = 0; nt < TILES; ++nt) {
            gc.zero[nt] = BITS == 4 ? kSymZeroInt4 : kSymZeroInt8;
            gc.zero_x16[nt] = kSymZeroInt4X16;
        }
        return gc;
    }
};

/* A lane's fixed offsets within a stage, for the TILES n8-tiles starting at tile
 * TILES * part of strip `strip`: its 16 bytes of the strip's first unit (k-step ks adds
 * ks * kUnitBytes), its scales and its zero-point word in group slot 0. Computed once
 * per block; the empty asm hides how, so the compiler keeps three registers instead of
 * re-deriving them from %tid.x every stage (which it did, and which a decode warp's
 * stage could not afford). */
template <class T, int TILES>
struct LaneOffsets {
    uint32_t unit;   // lane's bytes of the strip's unit 0
    uint32_t scale;  // lane's scales, slot 0
    uint32_t zero;   // lane's zero-point word, slot 0
    int part;        // which TILES n8-tiles of the strip (0 for a whole strip); not hidden:
                     // a constant 0 in the mma.sync kernels, folded away there

    __device__ __forceinline__ LaneOffsets(int strip, int part_, int lane) : part(part_) {
        const int g = lane / 4;  // the lane's column within each n8-tile
        unit = T::kWOffset + strip * kKSteps * T::kUnitBytes + lane * QK_CHUNK_BYTES;
        // Position 8g + nt of a 64-column block holds column 8nt + g: the lane's scales
        // are 16 contiguous bytes, a part's 2 * TILES of them.
        scale = T::kScaleOffset + (strip * kNBlock + g * kNTiles + part * TILES) * kF16Bytes;
        zero = T::kZeroOffset + (strip * kNTiles + g) * sizeof(uint32_t);
        asm("" : "+r"(unit), "+r"(scale), "+r"(zero));
    }
};

/* Replicates each of the lane's scales into both halves of its n8-tile's constant:
 * `pairs` are its scales as stored, one f16 pair of n8-tiles per word (the 64-column
 * block's shuffled order), for the TILES n8-tiles it dequantizes. */
template <int TILES>
__device__ __forceinline__ void expand_scales(GroupConsts<TILES>& gc, const uint32_t (&pairs)[TILES / 2]) {
#pragma unroll
    for (int j = 0; j < TILES / 2; ++j) {
        gc.scale[2 * j] = qk_prmt(pairs[j], pairs[j], QK_PRMT_DUP_LOW_HALF);
        gc.scale[2 * j + 1] = qk_prmt(pairs[j], pairs[j], QK_PRMT_DUP_HIGH_HALF);
    }
}

/* The lane's 4-bit zero points from its zero-point word (nibble nt: n8-tile nt of its
 * column of the 64-column block; a part's tiles from nibble TILES * part), as the biased
 * f16 the dequantization subtracts and its odd-nibble form. */
template <int TILES>
__device__ __forceinline__ void expand_zeros(GroupConsts<TILES>& gc, uint32_t zero_word, int part) {
    // The nibble trick on (word >> 4j) yields half2(1024 + z_j, 1024 + z_{j+4}).
    const uint32_t word = zero_word >> (4 * TILES * part);
#pragma unroll
    for (int j = 0; j < TILES / 2; ++j) {
        if constexpr (TILES == kNTiles) {
            const uint32_t z = qk_nibbles_to_f16x2_biased(word >> (4 * j));
            gc.zero[j] = qk_prmt(z, z, QK_PRMT_DUP_LOW_HALF);
            gc.zero[j + TILES / 2] = qk_prmt(z, z, QK_PRMT_DUP_HIGH_HALF);
        } else {
            // Only the low nibbles are this part's: one tile per nibble-trick result.
            const uint32_t z0 = qk_nibbles_to_f16x2_biased(word >> (8 * j));
            const uint32_t z1 = qk_nibbles_to_f16x2_biased(word >> (8 * j + 4));
            gc.zero[2 * j] = qk_prmt(z0, z0, QK_PRMT_DUP_LOW_HALF);
            gc.zero[2 * j + 1] = qk_prmt(z1, z1, QK_PRMT_DUP_LOW_HALF);
        }
    }
#pragma unroll
    for (int nt = 0; nt < TILES; ++nt) {
        // 960 - (1024 + z) = -(64 + z), exact (integers below 2048).
        gc.zero_x16[nt] = qk_half2_bits(__hsub2(qk_as_half2(kF16x2_960), qk_as_half2(gc.zero[nt])));
    }
}

/* Loads the lane's scales and zero points (one per n8-tile) of group slot `slot` of the
 * stage at `stage_addr`, for the lane's TILES n8-tiles (`offsets`); symmetric weights
 * keep the zero points `gc` was made with (GroupConsts::with_symmetric_zeros). */
template <class T, int BITS, int TILES>
__device__ __forceinline__ void load_group(GroupConsts<TILES>& gc, uint32_t stage_addr, int slot,
                                           const LaneOffsets<T, TILES>& offsets, bool asymmetric) {
    const uint32_t scale_addr = stage_addr + offsets.scale + slot * T::kScaleSlotBytes;
    uint32_t pairs[TILES / 2];
    if constexpr (TILES == kNTiles) {
        const uint4 s = qk_lds_v4(scale_addr);
        pairs[0] = s.x, pairs[1] = s.y, pairs[2] = s.z, pairs[3] = s.w;
    } else if constexpr (TILES == kNTiles / 2) {
        const uint2 s = qk_lds_v2(scale_addr);
        pairs[0] = s.x, pairs[1] = s.y;
    } else {
        pairs[0] = qk_lds_u32(scale_addr);
    }
    expand_scales(gc, pairs);
    if (BITS == 4 && asymmetric) {
        expand_zeros(gc, qk_lds_u32(stage_addr + offsets.zero + slot * T::kZeroSlotBytes), offsets.part);
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

/* The lane's packed weights of one k-step for TILES n8-tiles: one 16-byte chunk of
 * 4-bit weights (8 tiles, of which a half strip uses 4 and a quarter 2), or the 8-bit
 * chunks holding them (4 tiles a chunk: TILES / 4, or the one chunk a quarter lies in). */
template <int BITS, int TILES>
struct StepWords {
    static constexpr int kChunks = BITS == 4 ? 1 : (TILES + 3) / 4;
    uint4 chunk[kChunks];
};

/* Word `i` (0..3) of a 16-byte chunk, `i` known only at run time (a warp's part of a
 * strip): three selects, where an indexed array would go to local memory. */
__device__ __forceinline__ uint32_t chunk_word(const uint4& v, int i) {
    const uint32_t low = (i & 1) ? v.y : v.x;
    const uint32_t high = (i & 1) ? v.w : v.z;
    return (i & 2) ? high : low;
}


/* Loads the lane's StepWords of a unit (tiles TILES * part onwards); `lane_addr` is the
 * unit's address plus lane * 16 (stage + LaneOffsets::unit + ks * kUnitBytes).
 * Separate from the dequantization so a kernel can issue the next k-step's shared loads
 * before this k-step's work (see gemm_w4a16_sm90a.cu). */
template <int BITS, int TILES>
__device__ __forceinline__ StepWords<BITS, TILES> load_step(uint32_t lane_addr, int part) {
    StepWords<BITS, TILES> w;
    if constexpr (BITS == 4) {
        // The whole 16 bytes are loaded even for a half or a quarter: consecutive lanes'
        // 8- or 4-byte parts lie 16 bytes apart, a 2- or 4-way bank conflict for
        // ld.shared.v2 or .b32, while ld.shared.v4 at lane * 16 is conflict-free and
        // moves as many wavefronts per warp (4) as the conflicted narrow load would.
        w.chunk[0] = qk_lds_v4(lane_addr);
    } else {
        // Chunk c of the lane holds tiles 4c .. 4c + 3: a half is one of the 2 chunks, a
        // quarter half of one (loaded whole, for the same reason as 4-bit's).
        const int first_chunk = TILES * part / 4;
#pragma unroll
        for (int c = 0; c < StepWords<BITS, TILES>::kChunks; ++c) {
            w.chunk[c] = qk_lds_v4(lane_addr + (first_chunk + c) * kWarpThreads * QK_CHUNK_BYTES);
        }
    }
    return w;
}

/* The lane's B registers of one k-step from its StepWords: b[nt][0..1] for the TILES
 * n8-tiles starting at tile TILES * part of the unit. */
template <int BITS, int TILES>
__device__ __forceinline__ void dequant_words(uint32_t (&b)[TILES][2], const StepWords<BITS, TILES>& sw, int part,
                                              const GroupConsts<TILES>& gc) {
    if constexpr (BITS == 4) {
        // Word j of the lane's chunk holds tiles 2j and 2j + 1: a part is TILES / 2 of the
        // 4 words (a whole strip all of them, without a select).
        constexpr int kWords = TILES / 2;
        const uint4 v = sw.chunk[0];
        uint32_t words[kWords];
        if constexpr (kWords == 4) {
            words[0] = v.x, words[1] = v.y, words[2] = v.z, words[3] = v.w;
        } else if constexpr (kWords == 2) {
            // A half: part is 0 or 1. One select per word; chunk_word(v, 2 * part + j)
            // would compute the index's bits and cost large_wgmma 1% more instructions.
            words[0] = part ? v.z : v.x;
            words[1] = part ? v.w : v.y;
        } else {
            words[0] = chunk_word(v, part);  // a quarter: word `part`
        }
#pragma unroll
        for (int j = 0; j < kWords; ++j) {
            // Nibbles p = 0..3 (and p + 4 in the high half) are b0, b1 of tile 2j, then
            // b0, b1 of tile 2j + 1: p = 0, 1 from the word, p = 2, 3 from word >> 8.
#pragma unroll
            for (int odd = 0; odd < 2; ++odd) {
                const int nt = 2 * j + odd;
                const uint32_t w = words[j] >> (8 * odd);
                b[nt][0] = dequant_pair(qk_nibbles_to_f16x2_biased(w), gc.zero[nt], gc.scale[nt]);
                b[nt][1] = dequant_pair_x16(qk_high_nibbles_to_f16x2_biased16(w), gc.zero_x16[nt], gc.scale[nt]);
            }
        }
    } else {
        // Word j of chunk c holds tile 4c + j; a quarter's 2 tiles are words 0, 1 or 2, 3
        // of its chunk, selected at run time (its part); whole chunks need no select.
        constexpr int kTilesPerChunk = TILES < 4 ? TILES : 4;
#pragma unroll
        for (int c = 0; c < StepWords<BITS, TILES>::kChunks; ++c) {
            const uint4 v = sw.chunk[c];
            const uint32_t whole[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int j = 0; j < kTilesPerChunk; ++j) {
                const int nt = kTilesPerChunk * c + j;
                const uint32_t word = TILES < 4 ? chunk_word(v, TILES * part % 4 + j) : whole[j];
                b[nt][0] = dequant_pair(qk_bytes_to_f16x2_biased(word, QK_PRMT_BYTES_01_F16), gc.zero[nt],
                                        gc.scale[nt]);
                b[nt][1] = dequant_pair(qk_bytes_to_f16x2_biased(word, QK_PRMT_BYTES_23_F16), gc.zero[nt],
                                        gc.scale[nt]);
            }
        }
    }
}

/* The lane's B registers of one k-step: b[nt][0..1] for the TILES n8-tiles starting at
 * tile TILES * part of a unit, `lane_addr` as load_step's (load_step, then dequant_words). */
template <int BITS, int TILES>
__device__ __forceinline__ void dequant_step(uint32_t (&b)[TILES][2], uint32_t lane_addr, int part,
                                             const GroupConsts<TILES>& gc) {
    dequant_words<BITS, TILES>(b, load_step<BITS, TILES>(lane_addr, part), part, gc);
}

}  // namespace qk_wo

#endif /* QK_WEIGHT_ONLY_CUH */
