/*
 * qk_pipeline.cuh — the asynchronous global -> shared copy pipeline (sm_80 cp.async)
 * and the swizzled shared-memory tile layout the GEMM kernels share.
 */
#ifndef QK_PIPELINE_CUH
#define QK_PIPELINE_CUH

#include <stdint.h>

/* Bytes of one cp.async / ldmatrix row: the 16-byte unit both instructions move. */
#define QK_CHUNK_BYTES 16

/* Generic -> shared-window address: cp.async and ldmatrix take 32-bit .shared
 * addresses (PTX ISA "Generic Addressing", cvta). */
__device__ __forceinline__ uint32_t qk_smem_addr(const void* ptr) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

/* Copies 16 bytes global -> shared without passing through registers. `.cg` caches
 * in L2 only: tiles are consumed once from shared memory, so L1 allocation would only
 * evict useful lines. `src_bytes` < 16 zero-fills the rest; 0 is a pure zero fill for
 * rows/columns outside the matrix, and then the source is not read at all (PTX ISA
 * "cp.async": src-size bytes are copied from src), so callers pass the address they
 * computed, in range or not, instead of selecting a valid one (two fewer instructions
 * per copy). ptxas emits the {0, 16} case as a predicated zero-filling LDGSTS. */
__device__ __forceinline__ void qk_cp_async_16(uint32_t smem_dst, const void* gmem_src, uint32_t src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_dst), "l"(gmem_src), "r"(src_bytes)
                 : "memory");
}

/* Closes this thread's outstanding cp.async operations into one group (one stage). */
__device__ __forceinline__ void qk_cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

/* Waits until at most `PENDING` of this thread's most recent groups are in flight. The
 * data are visible to other threads only after this AND a barrier. */
template <int PENDING>
__device__ __forceinline__ void qk_cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING) : "memory");
}

/* Who reads the stages, and what the main loop must do for them.
 * QkWarpReaders: ld.shared / ldmatrix (generic proxy), synchronous: a stage is free
 * once every warp passed the next iteration's barrier, so tile i + STAGES - 1 may be
 * loaded into the stage that tile i - 1 used. */
struct QkWarpReaders {
    static constexpr int kLag = 1;  // stages still being read when a load is issued
    __device__ __forceinline__ static void before_barrier() {}
    __device__ __forceinline__ static void drain() {}
};

/* The main loop of the GEMM kernels. `load(stage, i)` issues the cp.async copies of
 * the i-th K tile into shared-memory stage `stage`; `compute(stage, i)` consumes it.
 * With READERS::kLag = L, STAGES - L tiles are in flight while one is computed:
 *
 *   prologue: load tiles 0 .. STAGES-L-1, one commit group each
 *   iteration i: wait until tile i landed (wait_group STAGES-L-1: the newer groups may
 *                still be pending), READERS::before_barrier(), barrier (every thread's
 *                copies visible to all, and every warp done with the stage about to be
 *                refilled), load tile i + STAGES - L into the stage that tile i - L
 *                used, compute tile i.
 *
 * Every thread commits a group per tile even when it has nothing to copy, so
 * wait_group counts the same groups in every thread. Ends with READERS::drain(), all
 * copies drained and a barrier, so the caller may reuse the stages (e.g. to stage the
 * output tile). */
template <int STAGES, class READERS = QkWarpReaders, class Load, class Compute>
__device__ __forceinline__ void qk_pipeline_main_loop(int num_tiles, Load&& load, Compute&& compute) {
    constexpr int kAhead = STAGES - READERS::kLag;  // tiles loaded ahead of the one computed
    static_assert(kAhead >= 2, "the pipeline needs >= 2 tiles in flight to overlap copy and compute");
#pragma unroll
    for (int s = 0; s < kAhead; ++s) {
        if (s < num_tiles) {
            load(s, s);
        }
        qk_cp_async_commit();
    }
    // The stages of tiles i and i + kAhead. Modulo STAGES is one AND for a power of two,
    // but a multiply-high, a shift and a multiply-add per use otherwise (the decode
    // GEMV's 6 stages): there the two stage indices advance with a wrap instead.
    constexpr bool kPow2Stages = (STAGES & (STAGES - 1)) == 0;
    int load_slot = kAhead % STAGES;
    int compute_slot = 0;
    for (int i = 0; i < num_tiles; ++i) {
        qk_cp_async_wait<kAhead - 1>();
        READERS::before_barrier();
        __syncthreads();
        const int next = i + kAhead;
        if (next < num_tiles) {
            load(kPow2Stages ? next % STAGES : load_slot, next);
        }
        qk_cp_async_commit();
        compute(kPow2Stages ? i % STAGES : compute_slot, i);
        if constexpr (!kPow2Stages) {
            load_slot = load_slot + 1 == STAGES ? 0 : load_slot + 1;
            compute_slot = compute_slot + 1 == STAGES ? 0 : compute_slot + 1;
        }
    }
    READERS::drain();
    qk_cp_async_wait<0>();
    __syncthreads();
}

/* Shared-memory tile of ROWS rows of 128 bytes (8 chunks of 16 B), chunk c of row r
 * stored at chunk position c ^ (r % 8).
 *
 * Why: an ldmatrix phase reads the same logical chunk of 8 consecutive rows, and a
 * quarter-warp of cp.async writes 8 chunks of one row. Without the XOR every row
 * starts at bank 0 (rows are 128 B = all 32 banks), so the 8 row reads would hit the
 * same 4 banks 8 times (8-way conflict). With it, the 8 rows' chunks land on 8
 * distinct 16-byte bank groups: one wavefront per phase, for reads and writes alike.
 *
 *   (row, chunk) -> byte offset:  row * 128 + ((chunk ^ (row & 7)) * 16)
 */
#define QK_SWIZZLE_ROW_BYTES 128
#define QK_SWIZZLE_CHUNKS 8
__device__ __forceinline__ uint32_t qk_swizzle_128(uint32_t row, uint32_t chunk) {
    return row * QK_SWIZZLE_ROW_BYTES + ((chunk ^ (row % QK_SWIZZLE_CHUNKS)) * QK_CHUNK_BYTES);
}

/* One thread's share of the copies of a K tile of a row-major, K-contiguous operand
 * (rows of `row_bytes` bytes, a multiple of 16) into a swizzled ROWS x 128-byte tile,
 * planned once per block and issued once per stage.
 *
 * Why: the copies are issued every stage by every thread, and while the tensor cores
 * wait on memory (small M) the instructions issued per stage bound how fast a block
 * drains its pipeline. Thread t copies chunk t % 8 of rows t / 8 + p * (THREADS / 8),
 * p = 0 .. kPasses - 1: a fixed trip count (no remainder code), and because THREADS / 8
 * is a multiple of 8 every pass has the same swizzle phase, so the shared offset of
 * pass p is the plan's offset plus a constant. Per stage a copy costs a 64-bit add,
 * a compare of p against the count of in-range passes and the cp.async itself (the K
 * bound is one compare per stage). The plan is five registers, kept for the whole loop.
 *
 *   tile layout: qk_swizzle_128; rows past `rows_total` and chunks past the row end are
 *   zero-filled (cp.async src-size 0), so the MMAs need no bounds checks. */
template <int ROWS, int THREADS>
struct QkTileCopy {
    static constexpr int kChunks = ROWS * QK_SWIZZLE_CHUNKS;
    // A tile of fewer chunks than threads (the 8-row tile of gemm_w4a16.cu's gemv_swap_ab)
    // is copied by threads 0 .. kChunks - 1, one pass each; the others copy nothing.
    static constexpr bool kFewerChunksThanThreads = kChunks < THREADS;
    static constexpr int kPasses = kFewerChunksThanThreads ? 1 : kChunks / THREADS;
    static constexpr int kRowsPerPass = THREADS / QK_SWIZZLE_CHUNKS;
    static_assert(kFewerChunksThanThreads ? THREADS % kChunks == 0 : kChunks % THREADS == 0,
                  "every copying thread copies the same number of chunks");
    static_assert(kPasses == 1 || kRowsPerPass % QK_SWIZZLE_CHUNKS == 0,
                  "every pass must have the same swizzle phase");

    const uint8_t* src;     // this thread's chunk of its pass-0 row, at K tile 0
    uint32_t row_bytes;     // bytes per operand row (the K bound)
    uint32_t dst;           // swizzled byte offset of pass 0's chunk in the tile
    uint32_t chunk_offset;  // byte offset of the chunk within a 128-byte K-tile row
    uint32_t passes_in;     // passes whose row lies inside the operand: a prefix, rows grow with p

    /* `base` [rows_total, row_bytes] row-major; the tile starts at row `row0`. */
    __device__ __forceinline__ QkTileCopy(const void* base, uint32_t row0, uint32_t rows_total, uint32_t row_bytes_)
        : row_bytes(row_bytes_) {
        const uint32_t row = threadIdx.x / QK_SWIZZLE_CHUNKS;
        const uint32_t chunk = threadIdx.x % QK_SWIZZLE_CHUNKS;
        chunk_offset = chunk * QK_CHUNK_BYTES;
        dst = qk_swizzle_128(row, chunk);
        src = static_cast<const uint8_t*>(base) + static_cast<uint64_t>(row0 + row) * row_bytes + chunk_offset;
        const uint32_t first = row0 + row;
        passes_in = first < rows_total ? min(kPasses, (rows_total - first + kRowsPerPass - 1) / kRowsPerPass) : 0;
        // The empty asm hides how the plan was derived, so the compiler keeps its five
        // registers rather than rebuilding it from %tid.x every stage, which it did in
        // the weight-only kernels (~20 PTX instructions a stage) whenever their tail code
        // changed its inlining choices.
        asm("" : "+l"(src), "+r"(dst), "+r"(chunk_offset), "+r"(passes_in));
    }

    /* Issues the cp.async copies of K tile `kt` into the tile at shared address `tile`. */
    __device__ __forceinline__ void issue(uint32_t tile, uint32_t kt) const {
        if (kFewerChunksThanThreads && threadIdx.x >= kChunks) {
            return;  // past the tile: a zero fill here would land in the next operand's bytes
        }
        const uint32_t k_byte = kt * QK_SWIZZLE_ROW_BYTES;
        const bool k_in = k_byte + chunk_offset < row_bytes;
#pragma unroll
        for (int p = 0; p < kPasses; ++p) {
            const bool in = k_in && p < passes_in;
            const uint8_t* from = src + k_byte + static_cast<uint64_t>(p) * kRowsPerPass * row_bytes;
            qk_cp_async_16(tile + dst + p * kRowsPerPass * QK_SWIZZLE_ROW_BYTES, from, in ? QK_CHUNK_BYTES : 0);
        }
    }
};

#endif /* QK_PIPELINE_CUH */
