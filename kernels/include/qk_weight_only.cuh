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
 * block's BN / 64 strips, contiguous per strip in the packed layout. The threads are
 * split evenly over the strips, whole warps per strip, and thread t of a strip's
 * kThreadsPerStrip copies chunks t, t + kThreadsPerStrip, ... of the strip's stage: a
 * fixed trip count of kPasses copies from one running source address at offsets known
 * at compile time, which ptxas folds into the cp.async's immediate (the K bound is one
 * compare per pass). A warp's pass still reads and writes 512 consecutive bytes.
 *
 * Why one strip per thread: with a strip per pass instead, each pass added the strip
 * stride to a 64-bit address (two instructions) and tested its own strip against N,
 * paid by every warp every stage (issue-bound decode, see gemm_w4a16.cu). */
template <class T>
struct WeightStreamCopy {
    static constexpr int kChunksPerUnit = T::kUnitBytes / QK_CHUNK_BYTES;
    static constexpr int kChunksPerStrip = kKSteps * kChunksPerUnit;  // of one stage
    static constexpr int kStageStripBytes = kKSteps * T::kUnitBytes;  // one stage of one strip
    static constexpr int kStrips = T::kWBytes / kStageStripBytes;     // BN / 64
    static constexpr int kThreadsPerStrip = T::kThreads / kStrips;
    static constexpr int kPasses = kChunksPerStrip / kThreadsPerStrip;
    static_assert(T::kThreads % kStrips == 0 && kThreadsPerStrip % kWarpThreads == 0,
                  "whole warps per strip: a warp's pass is 512 consecutive bytes");
    static_assert(kChunksPerStrip % kThreadsPerStrip == 0, "every thread copies the same number of chunks");
    static_assert(kThreadsPerStrip % kChunksPerUnit == 0 || kChunksPerUnit % kThreadsPerStrip == 0,
                  "a pass covers whole units, or the same part of one unit for every thread");

    const uint8_t* src;  // this thread's pass-0 chunk, at K tile 0
    uint32_t dst;        // its offset in a stage's weight area
    uint32_t steps_in;   // K / 16 if the thread's strip lies inside N, else 0: nothing to copy
    uint32_t unit;       // k-step within a stage of the pass-0 chunk

    __device__ __forceinline__ WeightStreamCopy(const QkGemmWeightOnlyArgs& args, uint32_t n0) {
        const uint8_t* w = reinterpret_cast<const uint8_t*>(args.w);  // units [N/64][K/16]
        const uint32_t k_steps = args.k / kMmaK;
        const uint32_t strip = threadIdx.x / kThreadsPerStrip;
        const uint32_t chunk0 = threadIdx.x % kThreadsPerStrip;
        src = w + (n0 / kNBlock + strip) * (static_cast<uint64_t>(k_steps) * T::kUnitBytes) + chunk0 * QK_CHUNK_BYTES;
        dst = strip * kStageStripBytes + chunk0 * QK_CHUNK_BYTES;
        steps_in = n0 / kNBlock + strip < args.n / kNBlock ? k_steps : 0;
        unit = chunk0 / kChunksPerUnit;
        // Kept in registers, not re-derived from %tid.x every stage (see QkTileCopy).
        asm("" : "+l"(src), "+r"(dst), "+r"(steps_in), "+r"(unit));
    }

    /* Issues the copies of K tile `kt` into the stage's weight area at shared `area`. */
    __device__ __forceinline__ void issue(uint32_t area, uint32_t kt) const {
        const uint8_t* stage_src = src + static_cast<uint64_t>(kt) * kStageStripBytes;
        // k-steps left from the pass-0 chunk's to the end of K (to 0 past N), signed: each
        // pass's bound is then one compare with a constant (K / 16 < 2^27: no overflow).
        const int32_t steps_left = static_cast<int32_t>(steps_in) - static_cast<int32_t>(kt * kKSteps + unit);
#pragma unroll
        for (int p = 0; p < kPasses; ++p) {
            constexpr uint32_t kPassBytes = kThreadsPerStrip * QK_CHUNK_BYTES;
            // chunk0 < kThreadsPerStrip: pass p's unit is unit + p * kThreadsPerStrip /
            // kChunksPerUnit in either case of the static_assert above.
            const bool in = p * kThreadsPerStrip / kChunksPerUnit < steps_left;
            qk_cp_async_16(area + dst + p * kPassBytes, stage_src + p * kPassBytes, in ? QK_CHUNK_BYTES : 0);
        }
    }
};

/* One thread's share of the copies of a stage's group rows (the scales, and the zero
 * points of asymmetric 4-bit weights, of the groups a stage needs), planned once per
 * block like QkTileCopy. Each thread that copies owns one 16-byte chunk of one slot of
 * one tensor, for the whole loop:
 *
 *     threads   [0, S)      [S, 2S)     [2S, 2S+Z)   [2S+Z, 2S+2Z)    the rest
 *     copy      scales      scales      zero points  zero points      nothing
 *               slot 0      slot 1      slot 0       slot 1
 *
 * (S = BN / 8 chunks of BN f16 scales, Z = BN / 32 chunks of BN nibbles). Slot 1 holds
 * the second group of a 64-wide stage and is used only by groups of 32; its threads
 * copy nothing otherwise.
 *
 * Why: every warp issues a stage's copy code, predicated or not, so its cost is paid by
 * all of them. Computed per stage (the group row's address from the column, the tensor
 * and N, the bounds), it took ~45 instructions per group slot and warp, as many as a
 * third of the decode GEMV's k-step work. Planned with a chunk per thread and slot, a
 * stage's whole group-row copy is one instance of the code (the row's group: a shift;
 * its address: a multiply-add; the K bound; the cp.async), which ptxas puts behind a
 * branch that threads without a chunk, and all threads in a stage that starts no
 * group, skip. A loop over the two slots had given every warp two predicated instances
 * in every stage (~30 SASS instructions of the 4-bit decode kernel's loop of 416). */
template <class T>
struct GroupRowCopy {
    static constexpr int kScaleChunks = T::kScaleSlotBytes / QK_CHUNK_BYTES;
    static constexpr int kZeroChunks = T::kZeroSlotBytes / QK_CHUNK_BYTES;
    static constexpr int kCopyThreads = kGroupSlots * (kScaleChunks + kZeroChunks);
    static_assert(kCopyThreads <= T::kThreads, "one group-row chunk per thread at most");

    const uint8_t* src;   // the thread's chunk in group row 0 of its tensor
    uint32_t row_bytes;   // bytes of one group row of that tensor
    uint32_t dst;         // the chunk's offset in a stage (in its slot)
    uint32_t slot_k;      // K offset of the thread's slot in a stage: 0, or 32 for slot 1
    uint32_t copies;      // 1: the thread has a chunk (of a tensor present, of a slot in use)
    uint32_t bytes_in_n;  // 16, or 0 for a chunk past N: zero-filled, as the strips' weights

    __device__ __forceinline__ GroupRowCopy(const QkGemmWeightOnlyArgs& args, const Groups& groups, uint32_t n0) {
        const uint32_t t = threadIdx.x;
        const bool scale_thread = t < kGroupSlots * kScaleChunks;
        // The thread's slot and chunk within its tensor's slot.
        const uint32_t u = scale_thread ? t : t - kGroupSlots * kScaleChunks;
        const uint32_t chunks = scale_thread ? kScaleChunks : kZeroChunks;
        const uint32_t slot = u / chunks;
        const uint32_t i = u % chunks;
        // Scales f16 [K/g, N]: chunk i holds columns n0 + 8i ..; zero points u32
        // [K/g, N/8]: chunk i holds the nibbles of columns n0 + 32i ...
        const uint32_t gn = n0 + i * (scale_thread ? kHalvesPerChunk : kColsPerZeroChunk);
        const uint64_t tensor = scale_thread ? args.scales : args.zeros;
        row_bytes = scale_thread ? args.n * kF16Bytes : args.n / kNibblesPerByte;
        src = reinterpret_cast<const uint8_t*>(tensor) + (scale_thread ? gn * kF16Bytes : gn / kNibblesPerByte);
        dst = (scale_thread ? T::kScaleOffset + slot * T::kScaleSlotBytes : T::kZeroOffset + slot * T::kZeroSlotBytes) +
              i * QK_CHUNK_BYTES;
        slot_k = slot * QK_WO_MIN_GROUP;
        copies = (t < kCopyThreads && tensor != 0 && (slot == 0 || groups.of_32)) ? 1u : 0u;
        bytes_in_n = gn < args.n ? QK_CHUNK_BYTES : 0;
        asm("" : "+l"(src), "+r"(row_bytes), "+r"(dst), "+r"(slot_k), "+r"(copies), "+r"(bytes_in_n));
    }

    /* Issues the thread's copy of the group row its slot needs for the stage at
     * `stage_addr` holding K tile `k0` .. k0 + 63, when the stage needs group rows at all
     * (`stage_starts`: a group starts at k0, or k0 is the split's first K; groups of 32
     * start at every k0). A slot past K (the second of a stage of groups of 32 in a K
     * that ends 32 into it) is zero-filled, so the k-steps there, which run on zeros (see
     * compute_stage), read finite scales. */
    __device__ __forceinline__ void issue(uint32_t stage_addr, uint32_t k0, bool stage_starts, const Groups& groups,
                                          uint32_t k) const {
        const uint32_t gk = k0 + slot_k;
        if (copies && stage_starts) {
            qk_cp_async_16(stage_addr + dst, src + static_cast<uint64_t>(groups.of(gk)) * row_bytes,
                           gk < k ? bytes_in_n : 0);
        }
    }
};

/* The copy plans of a block's stages: A, W and the group rows. */
template <class T>
struct StageCopies {
    QkTileCopy<T::kBm, T::kThreads> a;
    WeightStreamCopy<T> w;
    GroupRowCopy<T> rows;

    __device__ __forceinline__ StageCopies(const QkGemmWeightOnlyArgs& args, const Groups& groups, uint32_t m0,
                                           uint32_t n0)
        : a(reinterpret_cast<const void*>(args.a), m0, args.m, args.k * 2), w(args, n0), rows(args, groups, n0) {}
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
    // split's first tile). Block-uniform condition.
    copies.rows.issue(stage_addr, k0, groups.starts(k0, first_tile), groups, args.k);
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
    const StageCopies<T> copies(args, groups, blk.m0, blk.n0);
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
