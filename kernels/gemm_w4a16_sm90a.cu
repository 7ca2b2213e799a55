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
 * Four warps per strip (large_wgmma_n256; explicit only until timed on a GPU). The same
 * step once more: four warps share each strip, each dequantizing one 16-column quarter
 * (one word of every lane's 4-bit chunk, or half of one 8-bit chunk; the whole 16 bytes
 * are loaded, since ld.shared.v4 at lane * 16 is conflict-free and a narrower load there
 * is not), and a warpgroup's 4 quarters are the 64 A rows of one wgmma.m64n256k16 over
 * BM = 256 rows of C:
 *
 *     block:  BM = 256 rows of C x BN = 128 columns (2 strips), 8 warps = 2 warpgroups;
 *             warp w: strip w / 4, quarter w % 4 (warpgroup 0 = strip 0)
 *     warp:   16 columns; acc[1 slice][32][4] f32 = 16 columns x 256 rows
 *     k-step: as above with 4 of the 16 weights per lane, then 1 x wgmma.m64n256k16
 *
 * The same 128 accumulators; each weight is dequantized once per 256 rows of A instead
 * of 128, half the dequantization per multiply-add, while the L2->SM bytes per
 * multiply-add, 2 / BN (A) + (bits / 8) / BM (W), go from 2/256 + 0.5/128 = 0.0117 to
 * 2/128 + 0.5/256 = 0.0176 at 4 bits. Which of the two bounds large M is what this
 * experiment decides. A hint that it is not L2: on an H200 at M = 4096 gemm_w4a16 and
 * gemm_w8a16 on large_wgmma ran within 2% of each other (docs/results/h200-2026-11-26b)
 * although the 8-bit weights move a third more bytes per multiply-add (0.0156), while
 * their dequantization costs about the same instructions per weight.
 *
 * wgmma i of a warpgroup has as its 64 A rows slice i of its 4 warps' parts; each
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
 * Partitioning: grid (ceil(N / BN), ceil(M / BM), K splits); the host splits K when
 * the tiles alone leave SMs idle, and the last split of a tile sums the f32 partials in
 * split order (qk_split_k_reduce, as in gemm_w4a16.cu). Out-of-range rows
 * of A, strips of W and K past the end are zero-filled by cp.async as in gemm_w4a16.cu,
 * so they add exact zeros.
 *
 * Fed by the copy engine (qk_gemm_w{4,8}a16_large_wgmma{,_n256}_tma, the
 * large_wgmma{,_n256}_tma configurations; not yet timed on a GPU, so the host picks
 * them only when asked)
 * ---------------------------------------------------------------------------------
 * The same stages and compute_stage, but no thread of the two computing warpgroups issues
 * a copy, computes a copy address or passes a block barrier in the main loop: a third
 * warpgroup produces (qk_tma.cuh). One of its threads, per K tile: arrive.expect_tx on
 * the stage's "full" mbarrier with the tile's bytes; A's 64 K x BM rows as one TMA box
 * (a 2D tensor map with the 128-byte swizzle, which lays the box out exactly as
 * qk_swizzle_128 does on the 1024-byte aligned stage; rows past M arrive as zeros; with
 * M < BM the box has M rows, no taller than A, and the consumers zero the tile's other
 * rows once at the start; a box dimension may be up to 256, so BM = 256 fits); each
 * 64-column weight strip's stage (2 or 4 KB, contiguous in the packed layout) and each
 * needed group row (scales 512 B, zero points 128 B) as one bulk copy. The consumers wait
 * on "full", compute, and after tile i release tile i - 1's stage on its "empty" mbarrier
 * (one arrival per warp after __syncwarp): tile i's first wgmma.wait_group 1 retired
 * every wgmma that read tile i - 1. setmaxnreg moves registers from the producer (40) to
 * the consumers (232): with 384 threads the register file gives 168 each at launch, too
 * few for 128 accumulators (ptxas then serializes the wgmmas, C7512). The producer
 * warpgroup leaves after its loop, so the epilogue synchronizes the consumers alone
 * (named barrier 1 of 256 threads, QkConsumerBarrier): any code it shared with them would
 * need the consumers' registers, and ptxas ignores setmaxnreg then (C7507). Bulk copies
 * cannot zero-fill, so the host takes this path only for N % BN == 0 and K % 64 == 0.
 *
 * Epilogue: after the last group retires, acc (+ bias) is rounded once to f16 and
 * staged transposed into shared memory (C row = token): lane 4g + t writes rows
 * 8j + 2t (+1), columns g (+8) of each slice; with the 16-byte row padding of
 * QK_C_ROW_PAD_HALVES rows 2 apart land 8 banks apart, so a warp's stores hit distinct
 * words. Then 16-byte row segments to global memory (qk_gemm.cuh).
 */
#include "qk_tma.cuh"
#include "qk_weight_only.cuh"
#include "qk_wgmma.cuh"

#include <cuda_fp16.h>
#include <stdint.h>

namespace {

using namespace qk_wo;

/* Warps that compute: two warpgroups, in every geometry (WgmmaGeometry asserts it). The
 * TMA-fed kernel's producer warpgroup follows them. */
constexpr int kConsumerWarps = QK_WO_WGMMA_WARPS_M * QK_WO_WGMMA_WARPS_N;
/* Columns of one wgmma A fragment per warp: a 16-column slice. */
constexpr int kSliceCols = QK_MMA_M;
/* f32 accumulators per computing thread: 128 x 256 (large_wgmma) or 256 x 128
 * (large_wgmma_n256) of C over 256 threads. */
constexpr int kAccPerThread = 128;

/* A wgmma tile geometry (qk_abi.h): BM rows of C, which are the N of each wgmma (one
 * wgmma spans the block's rows), and WARPS_PER_STRIP warps sharing each of STRIPS
 * 64-column weight strips, each dequantizing one part (WARPS_PER_STRIP-th) of every
 * lane's chunk. */
template <int BM, int WARPS_PER_STRIP, int STRIPS>
struct WgmmaGeometry {
    static constexpr int kBm = BM;
    static constexpr int kWarpsPerStrip = WARPS_PER_STRIP;
    static constexpr int kStrips = STRIPS;
    static constexpr int kBn = STRIPS * kNBlock;
    /* n8-tiles of a warp's part of its strip. */
    static constexpr int kPartTiles = kNTiles / WARPS_PER_STRIP;
    /* 16-column slices of a warp's part: wgmma instructions per k-step. */
    static constexpr int kSlices = kNBlock / WARPS_PER_STRIP / kSliceCols;
    /* 8-row groups of C (wgmma's 8-column blocks of D): each thread holds 4 f32 of each,
     * 4 * kRowGroups per slice (64 x BM over 128 threads). */
    static constexpr int kRowGroups = BM / QK_MMA_N;
    static_assert(WARPS_PER_STRIP * STRIPS == kConsumerWarps, "two warpgroups compute");
    static_assert(kSlices * kRowGroups * 4 == kAccPerThread, "128 f32 accumulators per thread");
};
/* large_wgmma: 128 rows x 4 strips, two warps per strip (halves), 2 x m64n128k16. */
using LargeWgmma = WgmmaGeometry<QK_WO_WGMMA_BM, QK_WO_WGMMA_WARPS_M, QK_WO_WGMMA_WARPS_N>;
/* large_wgmma_n256: 256 rows x 2 strips, four warps per strip (quarters), 1 x m64n256k16. */
using LargeWgmmaN256 = WgmmaGeometry<QK_WO_WGMMA_N256_BM, QK_WO_WGMMA_N256_WARPS_M, QK_WO_WGMMA_N256_WARPS_N>;

/* The block's tile and shared memory (qk_weight_only.cuh): WARPS_M = the warps sharing a
 * strip, WARPS_N = the strips. */
template <class G, int BITS, int STAGES>
using WgmmaTile =
    Tile<BITS, G::kBm, G::kBn, G::kWarpsPerStrip, G::kStrips, STAGES, QK_WO_WGMMA_STAGE_ALIGN>;

/* acc[i] += W(slice i of this warp's part of its strip) x A_tileᵀ over the 64 K of one
 * stage. */
template <class G, class T, int BITS>
__device__ __forceinline__ void compute_stage(const QkGemmWeightOnlyArgs& args, const Groups& groups,
                                              float (&acc)[G::kSlices][G::kRowGroups][4],
                                              GroupConsts<G::kPartTiles>& gc,
                                              const LaneOffsets<T, G::kPartTiles>& offsets, uint32_t stage_addr,
                                              uint32_t kt, bool first_tile) {
    constexpr int TILES = G::kPartTiles;
    const int part = offsets.part;
    const bool stage_starts_group = groups.starts(kt * kBk, first_tile);
    const uint32_t strip_units = stage_addr + offsets.unit;  // the lane's bytes of k-step 0's unit
    // The weights of k-step ks + 1 are loaded before k-step ks is dequantized and issued:
    // the wgmma fence/commit/wait are ordering points the compiler and ptxas do not move
    // shared loads across, so a load issued after them waits its full latency (Nsight
    // Compute on an H200: the first use of each k-step's ld.shared took 18% of the stall
    // samples). The stage's k-steps all landed before the stage began.
    StepWords<BITS, TILES> words = load_step<BITS, TILES>(strip_units, part);
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
        if (groups.step_starts(ks, stage_starts_group)) {
            load_group<T, BITS, TILES>(gc, stage_addr, groups.slot(ks), offsets, args.zeros != 0);
        }
        StepWords<BITS, TILES> next = words;
        if (ks + 1 < kKSteps) {
            next = load_step<BITS, TILES>(strip_units + (ks + 1) * T::kUnitBytes, part);
        }
        uint32_t b[TILES][2];
        dequant_words<BITS, TILES>(b, words, part, gc);
        words = next;
        const uint64_t desc_b = qk_wgmma_desc_k_major_sw128(stage_addr, ks);  // the k-step's activations
        qk_wgmma_fence();
#pragma unroll
        for (int i = 0; i < G::kSlices; ++i) {
            const uint32_t a[4] = {b[2 * i][0], b[2 * i + 1][0], b[2 * i][1], b[2 * i + 1][1]};
            qk_wgmma_m64nNk16_f32_f16<G::kBm>(acc[i], a, desc_b);
        }
        qk_wgmma_commit();
        qk_wgmma_wait<1>();
    }
}

/* The TMA-fed pipeline's mbarriers (shared addresses of the first of STAGES each):
 *   full[s]:  1 arrival (the producer's, with expect-tx of the stage's bytes) and the
 *             copies' complete-tx; consumers wait on it before reading stage s;
 *   empty[s]: kConsumerWarps arrivals (lane 0 of each consumer warp); the producer waits
 *             on it before refilling stage s.
 * Tile i lives in stage i % STAGES, in phase (i / STAGES) of both. */
struct TmaBarriers {
    uint32_t full;
    uint32_t empty;
};
constexpr uint32_t kMbarBytes = sizeof(uint64_t);
/* Bytes of one row of A's box: a K tile of f16, which is one 128-byte swizzled row of
 * the stage's A tile (the tensor map's 128-byte swizzle span). */
constexpr uint32_t kABoxRowBytes = kBk * kF16Bytes;
static_assert(kABoxRowBytes == QK_SWIZZLE_ROW_BYTES, "a box row is one swizzled row of the A tile");

/* Thread 0 initializes the barriers; every thread passes the block barrier after. */
template <int STAGES>
__device__ __forceinline__ TmaBarriers tma_init_barriers() {
    __shared__ __align__(8) uint64_t full[STAGES];
    __shared__ __align__(8) uint64_t empty[STAGES];
    const TmaBarriers bars{qk_smem_addr(full), qk_smem_addr(empty)};
    if (threadIdx.x == 0) {
#pragma unroll
        for (int s = 0; s < STAGES; ++s) {
            qk_mbar_init(bars.full + s * kMbarBytes, 1);
            qk_mbar_init(bars.empty + s * kMbarBytes, kConsumerWarps);
        }
        qk_fence_proxy_async_shared();
    }
    __syncthreads();
    return bars;
}

/* The producer (one thread): issues the copies of every K tile of the block into stage
 * i % STAGES, once the consumers released its previous tile. The group rows a tile
 * needs are those load_stage copies (a group starting in it, or current at the split's
 * first tile; groups of 32: both slots). */
template <class T>
__device__ __forceinline__ void tma_produce(const QkGemmWeightOnlyArgs& args, const void* a_map, uint32_t a_box_rows,
                                           const QkGemmBlock& blk, const Groups& groups, uint32_t smem_base,
                                           TmaBarriers bars) {
    constexpr int STAGES = T::kStages;
    constexpr uint32_t kStageStripBytes = kKSteps * T::kUnitBytes;  // one strip's share of a stage
    constexpr int kStrips = T::kWBytes / kStageStripBytes;
    const uint8_t* scales = reinterpret_cast<const uint8_t*>(args.scales);  // f16 [K/g, N]
    const uint8_t* zeros = reinterpret_cast<const uint8_t*>(args.zeros);    // nibbles [K/g, N], or null
    const uint64_t strip_bytes = static_cast<uint64_t>(args.k / kMmaK) * T::kUnitBytes;
    const uint8_t* strips = reinterpret_cast<const uint8_t*>(args.w) + blk.n0 / kNBlock * strip_bytes;
    int stage = 0;
    uint32_t phase = 0;
    for (int i = 0; i < blk.num_kt; ++i) {
        if (i >= STAGES) {
            qk_mbar_wait_parity(bars.empty + stage * kMbarBytes, (phase - 1) & 1);
        }
        const uint32_t st = smem_base + stage * T::kStageBytes;
        const uint32_t full = bars.full + stage * kMbarBytes;
        const uint32_t kt = blk.kt_begin + i;
        const uint32_t k0 = kt * kBk;
        bool slot_needed[kGroupSlots];
        uint32_t bytes = a_box_rows * kABoxRowBytes + T::kWBytes;
#pragma unroll
        for (int slot = 0; slot < kGroupSlots; ++slot) {
            slot_needed[slot] = groups.needs_slot(slot, k0, i == 0);
            if (slot_needed[slot]) {
                bytes += T::kScaleSlotBytes + (zeros != nullptr ? T::kZeroSlotBytes : 0);
            }
        }
        qk_mbar_arrive_expect_tx(full, bytes);
        // A: K k0 .. k0 + 63 of rows m0 .. m0 + a_box_rows - 1 (past M: zeros), laid out
        // as qk_swizzle_128 (the 128-byte swizzle on a 1024-byte aligned stage).
        qk_tma_load_2d(st, a_map, static_cast<int32_t>(k0), static_cast<int32_t>(blk.m0), full);
#pragma unroll
        for (int strip = 0; strip < kStrips; ++strip) {
            qk_bulk_copy_g2s(st + T::kWOffset + strip * kStageStripBytes,
                             strips + strip * strip_bytes + static_cast<uint64_t>(kt) * kStageStripBytes,
                             kStageStripBytes, full);
        }
#pragma unroll
        for (int slot = 0; slot < kGroupSlots; ++slot) {
            if (!slot_needed[slot]) {
                continue;
            }
            const uint64_t row = groups.of(k0 + slot * QK_WO_MIN_GROUP) * static_cast<uint64_t>(args.n) + blk.n0;
            qk_bulk_copy_g2s(st + T::kScaleOffset + slot * T::kScaleSlotBytes, scales + row * kF16Bytes,
                             T::kScaleSlotBytes, full);
            if (zeros != nullptr) {
                qk_bulk_copy_g2s(st + T::kZeroOffset + slot * T::kZeroSlotBytes, zeros + row / kNibblesPerByte,
                                 T::kZeroSlotBytes, full);
            }
        }
        stage = stage + 1 == STAGES ? 0 : stage + 1;
        phase += stage == 0;
    }
}

/* A consumer warp's main loop: waits for each tile's stage, computes it, and releases
 * the previous tile's stage. After tile i's compute, every k-step ended with
 * wgmma.wait_group 1, so no wgmma reads tile i - 1's activations any more; the warp's
 * own ld.shared of that stage are program-ordered before the release, its other lanes'
 * through __syncwarp (an mbarrier arrive releases only the arriving thread's accesses). */
template <class T, class Compute>
__device__ __forceinline__ void tma_consume(const QkGemmBlock& blk, uint32_t smem_base, TmaBarriers bars,
                                            Compute&& compute) {
    constexpr int STAGES = T::kStages;
    int stage = 0;
    int prev = STAGES - 1;
    uint32_t phase = 0;
    for (int i = 0; i < blk.num_kt; ++i) {
        qk_mbar_wait_parity(bars.full + stage * kMbarBytes, phase & 1);
        // The wait retries per thread (a branch in PTX), and compute's first wgmma.fence
        // is .sync.aligned: the warp's lanes execute it together, and every thread of the
        // warpgroup the same one (PTX ISA "wgmma.fence"). In practice one try_wait answers
        // all lanes alike, so they leave the loop together; the warp barrier makes the
        // reconvergence explicit instead of relying on that.
        __syncwarp();
        compute(smem_base + stage * T::kStageBytes, blk.kt_begin + i, i == 0);
        if (i > 0) {
            __syncwarp();
            if (blk.lane == 0) {
                qk_mbar_arrive(bars.empty + prev * kMbarBytes);
            }
        }
        prev = stage;
        stage = stage + 1 == STAGES ? 0 : stage + 1;
        phase += stage == 0;
    }
    qk_wgmma_wait<0>();
}

/* The barrier of the epilogue: the whole block, or (TMA-fed: the producer warpgroup has
 * left) the consumers alone. */
template <bool TMA>
struct EpilogueBarrier {
    using type = QkBlockBarrier;
};
template <>
struct EpilogueBarrier<true> {
    using type = QkConsumerBarrier<kConsumerWarps * kWarpThreads>;
};

/* Zeroes rows a_box_rows .. BM - 1 of every stage's A tile, which a box shorter than the
 * tile (M < BM) never writes, once, before any wgmma reads them (their products feed
 * only C rows past M, never stored, but must be finite and initialized). Generic-proxy
 * stores read by wgmma (async proxy): each thread fences its own, then the consumers'
 * barrier orders them before every consumer's first wgmma. The rows are whole 128-byte
 * lines, which the swizzle permutes within, so the copies never touch them. */
template <class T, class Barrier>
__device__ __forceinline__ void zero_rows_past_box(uint32_t smem_base, uint32_t a_box_rows) {
    constexpr int kThreads = kConsumerWarps * kWarpThreads;
    constexpr uint32_t kChunksPerRow = kABoxRowBytes / QK_CHUNK_BYTES;
    if (a_box_rows >= T::kBm) {
        return;  // block-uniform
    }
    const uint32_t chunks = (T::kBm - a_box_rows) * kChunksPerRow;
    for (uint32_t i = threadIdx.x; i < T::kStages * chunks; i += kThreads) {
        const uint32_t stage = i / chunks;
        const uint32_t at = smem_base + stage * T::kStageBytes + a_box_rows * kABoxRowBytes +
                            (i % chunks) * QK_CHUNK_BYTES;
        asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};\n" ::"r"(at), "r"(0u) : "memory");
    }
    qk_fence_proxy_async_shared();
    Barrier::sync();
}

template <class G, int BITS, int STAGES, int SMEM_BYTES, bool TMA>
__device__ __forceinline__ void gemm_weight_only_wgmma(const QkGemmWeightOnlyArgs& args, const void* a_map,
                                                       uint32_t a_box_rows) {
    using T = WgmmaTile<G, BITS, STAGES>;
    using Barrier = typename EpilogueBarrier<TMA>::type;
    static_assert(T::kSmemBytes + QK_WO_WGMMA_STAGE_ALIGN == SMEM_BYTES,
                  "qk_abi.h's QK_WO_WGMMA*_SMEM_BYTES* must equal the stages plus the base alignment slack");
    constexpr int BM = G::kBm;
    constexpr int BN = G::kBn;
    constexpr int kSlices = G::kSlices;
    constexpr int kRowGroups = G::kRowGroups;
    constexpr int TILES = G::kPartTiles;
    // 16-byte alignment is all the declaration asks (a larger one pads the static shared
    // memory before it); the stages' 1024-byte alignment is applied at run time below.
    extern __shared__ __align__(QK_CHUNK_BYTES) uint8_t smem[];
    const QkGemmBlock blk = qk_gemm_block<BM, BN, G::kStrips, kBk>(args.k, args.k_tiles_per_split);
    // The host never launches an empty K range. Telling the compiler so removes the
    // path that skips the main loop, on which the accumulators' zeroing can sit inside
    // an open wgmma pipeline in ptxas's view (an earlier version of this kernel drew
    // advisory C7515 from it: every wgmma serialized; build.rs fails on such advisories).
    __builtin_assume(blk.num_kt > 0);
    const int warp = threadIdx.x / kWarpThreads;
    const int strip = warp / G::kWarpsPerStrip;
    const int part = warp % G::kWarpsPerStrip;
    // The B tiles must start on a swizzle-pattern boundary; the host adds one alignment
    // unit to the dynamic shared memory so the rounded-up base still fits.
    const uint32_t raw_base = qk_smem_addr(smem);
    const uint32_t smem_base = (raw_base + QK_WO_WGMMA_STAGE_ALIGN - 1) & ~(QK_WO_WGMMA_STAGE_ALIGN - 1u);
    TmaBarriers bars{};
    if constexpr (TMA) {
        // Programmatic dependent launch (qk_grid_dependency.cuh): the producer's first
        // copy reads A and the consumers end by writing C, so every thread waits for the
        // previous grid first (the cp.async feed does so in weight_only_main_loop).
        qk_wait_for_prior_grid();
        bars = tma_init_barriers<STAGES>();
        if (warp >= kConsumerWarps) {
            // The producer warpgroup: its registers go to the consumers; one thread
            // issues the copies; then it leaves (the epilogue syncs the consumers only).
            qk_setmaxnreg<false, QK_WO_WGMMA_TMA_PRODUCER_REGS>();
            if (warp == kConsumerWarps && blk.lane == 0) {
                tma_produce<T>(args, a_map, a_box_rows, blk, Groups(args.group_size), smem_base, bars);
            }
            return;
        }
        qk_setmaxnreg<true, QK_WO_WGMMA_TMA_CONSUMER_REGS>();
        zero_rows_past_box<T, Barrier>(smem_base, a_box_rows);
    }

    float acc[kSlices][kRowGroups][4];
    qk_zero_acc(acc);
    qk_wgmma_fence_operands(acc);
    GroupConsts<TILES> gc = GroupConsts<TILES>::template with_symmetric_zeros<BITS>();
    const Groups groups(args.group_size);
    const LaneOffsets<T, TILES> offsets(strip, part, blk.lane);
    const auto compute = [&](uint32_t stage_addr, uint32_t kt, bool first_tile) {
        compute_stage<G, T, BITS>(args, groups, acc, gc, offsets, stage_addr, kt, first_tile);
    };
    if constexpr (TMA) {
        tma_consume<T>(blk, smem_base, bars, compute);
        // Every consumer is done with the stages before the epilogue reuses them (the
        // cp.async loop ends with a block barrier for the same reason).
        Barrier::sync();
        qk_allow_dependent_grid();  // the producer warps exited, which counts the same
    } else {
        weight_only_main_loop<T, QkWgmmaReaders>(args, blk, groups, smem_base, compute);
    }

    qk_wgmma_fence_operands(acc);  // the last wgmma retired (drain) before any read below

    // Split-K fix-up (qk_gemm.cuh): the workspace is laid out by accumulator fragment,
    // whatever its geometry, so the wgmma fragments go through as kSlices x kRowGroups
    // fragments of 4; fragment (i, j) holds rows 8j .. 8j + 7 of the tile (every lane's
    // d[j]), so it is stored and summed only if row m0 + 8j lies inside C.
    if (gridDim.z > 1 && !qk_split_k_reduce_if<float, kSlices, kRowGroups, T::kThreads, Barrier>(
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
            const uint32_t col = strip * kNBlock + part * (kNBlock / G::kWarpsPerStrip) + i * kSliceCols + g + 8 * h;
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
    Barrier::sync();

    // Epilogue 2: shared -> global, 16-byte row segments (N % 64 == 0).
    qk_store_c_tile<BM, BN, T::kThreads, T::kCStride>(c_tile, args.c, blk.m0, blk.n0, args.m, args.n);
}

}  // namespace

/* One kernel per geometry, weight width and feed; one block per SM (128 accumulators per
 * thread). The TMA-fed kernels take their arguments as a __grid_constant__ parameter: the
 * copy engine reads A's tensor map from the parameter space by address. */
#define QK_WO_WGMMA_INSTANCE(NAME, GEOMETRY, BITS, STAGES, SMEM_BYTES)                                       \
    extern "C" __global__ void __launch_bounds__(kConsumerWarps * QK_WARP_THREADS, 1)                       \
        NAME(const QkGemmWeightOnlyArgs args) {                                                              \
        gemm_weight_only_wgmma<GEOMETRY, BITS, STAGES, SMEM_BYTES, false>(args, nullptr, 0);                 \
    }
#define QK_WO_WGMMA_TMA_INSTANCE(NAME, GEOMETRY, BITS, STAGES, SMEM_BYTES)                                   \
    extern "C" __global__ void __launch_bounds__(                                                            \
        (kConsumerWarps + QK_WO_WGMMA_TMA_PRODUCER_WARPS) * QK_WARP_THREADS, 1)                              \
        NAME(const __grid_constant__ QkGemmWeightOnlyTmaArgs args) {                                         \
        gemm_weight_only_wgmma<GEOMETRY, BITS, STAGES, SMEM_BYTES, true>(args.base, &args.a_map,             \
                                                                         args.a_box_rows);                   \
    }

QK_WO_WGMMA_INSTANCE(qk_gemm_w4a16_large_wgmma, LargeWgmma, 4, QK_WO_WGMMA_STAGES, QK_WO_WGMMA_SMEM_BYTES)
QK_WO_WGMMA_INSTANCE(qk_gemm_w8a16_large_wgmma, LargeWgmma, 8, QK_WO_WGMMA_STAGES_W8, QK_WO_WGMMA_SMEM_BYTES_W8)
QK_WO_WGMMA_TMA_INSTANCE(qk_gemm_w4a16_large_wgmma_tma, LargeWgmma, 4, QK_WO_WGMMA_STAGES, QK_WO_WGMMA_SMEM_BYTES)
QK_WO_WGMMA_TMA_INSTANCE(qk_gemm_w8a16_large_wgmma_tma, LargeWgmma, 8, QK_WO_WGMMA_STAGES_W8,
                         QK_WO_WGMMA_SMEM_BYTES_W8)
QK_WO_WGMMA_INSTANCE(qk_gemm_w4a16_large_wgmma_n256, LargeWgmmaN256, 4, QK_WO_WGMMA_N256_STAGES,
                     QK_WO_WGMMA_N256_SMEM_BYTES)
QK_WO_WGMMA_INSTANCE(qk_gemm_w8a16_large_wgmma_n256, LargeWgmmaN256, 8, QK_WO_WGMMA_N256_STAGES_W8,
                     QK_WO_WGMMA_N256_SMEM_BYTES_W8)
QK_WO_WGMMA_TMA_INSTANCE(qk_gemm_w4a16_large_wgmma_n256_tma, LargeWgmmaN256, 4, QK_WO_WGMMA_N256_STAGES,
                         QK_WO_WGMMA_N256_SMEM_BYTES)
QK_WO_WGMMA_TMA_INSTANCE(qk_gemm_w8a16_large_wgmma_n256_tma, LargeWgmmaN256, 8, QK_WO_WGMMA_N256_STAGES_W8,
                         QK_WO_WGMMA_N256_SMEM_BYTES_W8)
