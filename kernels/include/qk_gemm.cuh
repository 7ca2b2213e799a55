/*
 * qk_gemm.cuh — the parts of a tensor-core GEMM that do not depend on its operand
 * types: a block's place in the (N tiles, M tiles, K splits) grid, accumulator
 * zeroing, the split-K fix-up of partial tiles, the staging of accumulator fragments
 * as f16 in shared memory and the 16-byte store of that C tile. Used by gemm_w8a8.cu
 * (int32 partials), gemm_w4a16.cu and gemm_w4a16_sm90a.cu (f32); the host side of the
 * same grid is src/ops/split_k.rs.
 */
#ifndef QK_GEMM_CUH
#define QK_GEMM_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "qk_abi.h"
#include "qk_memory.cuh"

/* The barrier among a block's threads that hold accumulators: all of them
 * (__syncthreads), or, in a warp-specialized kernel whose producer warps have left, the
 * first THREADS threads through named barrier 1 (PTX ISA "bar, barrier": with
 * bar.sync a, b only b threads, a multiple of the warp size, take part; barrier 0 stays
 * __syncthreads'). */
struct QkBlockBarrier {
    __device__ __forceinline__ static void sync() { __syncthreads(); }
};
template <int THREADS>
struct QkConsumerBarrier {
    static_assert(THREADS % QK_WARP_THREADS == 0, "named barriers count whole warps");
    static constexpr int kId = 1;
    __device__ __forceinline__ static void sync() {
        asm volatile("bar.sync %0, %1;\n" ::"n"(kId), "n"(THREADS) : "memory");
    }
};

/* The 16-byte vector type of an accumulator element type. */
template <typename T>
struct QkVec4;
template <>
struct QkVec4<int32_t> {
    using type = int4;
    __device__ static type pack(const int32_t (&v)[4]) { return make_int4(v[0], v[1], v[2], v[3]); }
    __device__ static type from_bits(uint4 b) {
        return make_int4(static_cast<int32_t>(b.x), static_cast<int32_t>(b.y), static_cast<int32_t>(b.z),
                         static_cast<int32_t>(b.w));
    }
};
template <>
struct QkVec4<float> {
    using type = float4;
    __device__ static type pack(const float (&v)[4]) { return make_float4(v[0], v[1], v[2], v[3]); }
    __device__ static type from_bits(uint4 b) {
        return make_float4(__uint_as_float(b.x), __uint_as_float(b.y), __uint_as_float(b.z), __uint_as_float(b.w));
    }
};

/* mma.m16n8 accumulator fragment layout (PTX ISA "Matrix Fragments for mma.m16n8k16"):
 * lane 4g + t holds, of each m16 x n8 tile, rows g and g + 8 at columns 2t and 2t + 1. */
#define QK_MMA_M 16
#define QK_MMA_N 8

/* A block's share of a split-K GEMM, from blockIdx / threadIdx: grid x walks the BN-wide
 * column tiles of C, grid y the BM-tall row tiles, grid z the K splits of
 * `k_tiles_per_split` BK-deep K tiles each (the last split may be shorter). Warps are
 * laid out row-major over a WARPS_M x WARPS_N arrangement (warp_m = warp / WARPS_N). */
struct QkGemmBlock {
    int lane;           // lane within the warp
    int warp_m;         // warp row within the block
    int warp_n;         // warp column within the block
    uint32_t m0;        // first row of C of this block
    uint32_t n0;        // first column of C of this block
    uint32_t kt_begin;  // first K tile of this split
    int num_kt;         // K tiles of this split, >= 1: the host sizes grid z (no empty split)
};

template <int BM, int BN, int WARPS_N, int BK>
__device__ __forceinline__ QkGemmBlock qk_gemm_block(uint32_t k, uint32_t k_tiles_per_split) {
    QkGemmBlock b;
    const int warp = threadIdx.x / QK_WARP_THREADS;
    b.lane = threadIdx.x % QK_WARP_THREADS;
    b.warp_m = warp / WARPS_N;
    b.warp_n = warp % WARPS_N;
    b.m0 = blockIdx.y * BM;
    b.n0 = blockIdx.x * BN;
    const uint32_t k_tiles = (k + BK - 1) / BK;
    b.kt_begin = blockIdx.z * k_tiles_per_split;
    const uint32_t kt_end = min(k_tiles, b.kt_begin + k_tiles_per_split);
    b.num_kt = static_cast<int>(kt_end - b.kt_begin);
    return b;
}

/* Zeroes MT x NT mma accumulator fragments (4 values per thread each). Fully unrolled so
 * the array stays in registers. */
template <typename T, int MT, int NT>
__device__ __forceinline__ void qk_zero_acc(T (&acc)[MT][NT][4]) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[mt][nt][i] = T(0);
}

/* Split-K fix-up. Grid z is the K split; every block stores its partial accumulators
 * (MT x NT fragments of 4 values per thread) into `workspace`, laid out
 * [tile][split][fragment][thread] as 16-byte vectors (fragment-major, thread-minor: a
 * warp's 32 stores are 512 contiguous bytes). The block that increments the tile's
 * counter last returns true with `acc` replaced by the sum of ALL splits' partials,
 * read back from the workspace in split order 0 .. splits-1 (its own included), so an
 * f32 result does not depend on which split finished last: deterministic. It also
 * resets the counter to 0 for the next launch. Every other block returns false.
 * Only fragments holding a row of C are stored and summed: `holds_rows(mt, nt)` says
 * whether fragment acc[mt][nt] has one (its accumulators are never written to C
 * otherwise). At decode (M = 1 in a 16-row tile) that cuts the partial traffic 8x.
 *
 * The sum is latency-bound: one block reads every split's partial, so what matters is
 * how many L2 round trips it waits for. Its loads are predicated (qk_ld_cg_v4_if), never
 * branched around, so a round's loads (kChunk fragments of kSplitsInFlight splits) are
 * all in flight before any is added: about splits x kFrags / 16 round trips. (With the
 * loads behind per-fragment branches, ptxas put each add right after its load: 16
 * splits x 32 fragments = 512 round trips, which made the GEMM 3.5-3.7x slower at M = 64.) */
template <typename T, int MT, int NT, int THREADS, class Barrier = QkBlockBarrier, class HoldsRows>
__device__ __forceinline__ bool qk_split_k_reduce_if(T (&acc)[MT][NT][4], qk_dptr workspace_addr,
                                                     qk_dptr counters_addr, HoldsRows&& holds_rows) {
    using V = typename QkVec4<T>::type;
    __shared__ uint32_t is_last_split;
    constexpr int kFrags = MT * NT;
    // Loads in flight per round: 16 vectors of 16 bytes (64 registers) per thread, which
    // the largest tiles' 128 accumulator registers leave room for without spilling:
    // kChunk fragments of kSplitsInFlight splits.
    constexpr int kStagedVectors = 16;
    constexpr int kChunk = kFrags < kStagedVectors ? kFrags : kStagedVectors;
    constexpr int kSplitsInFlight = kStagedVectors / kChunk;
    static_assert(kFrags % kChunk == 0, "fragments come in whole chunks");
    V* workspace = reinterpret_cast<V*>(workspace_addr);             // [tiles][splits][kFrags][THREADS]
    uint32_t* counters = reinterpret_cast<uint32_t*>(counters_addr);  // [tiles]
    const uint32_t tile = blockIdx.y * gridDim.x + blockIdx.x;
    const uint32_t splits = gridDim.z;
    const uint64_t tile_base = static_cast<uint64_t>(tile) * splits;
#pragma unroll
    for (int f = 0; f < kFrags; ++f) {
        if (holds_rows(f / NT, f % NT)) {
            workspace[((tile_base + blockIdx.z) * kFrags + f) * THREADS + threadIdx.x] =
                QkVec4<T>::pack(acc[f / NT][f % NT]);
        }
    }
    // Release: this block's partial is visible device-wide before the counter moves.
    __threadfence();
    Barrier::sync();
    if (threadIdx.x == 0) {
        is_last_split = atomicAdd(&counters[tile], 1u) == splits - 1;
    }
    Barrier::sync();
    if (!is_last_split) {
        return false;
    }
    // Acquire: the other splits' partials (each fenced before counting) are visible.
    __threadfence();
    bool held[kFrags];
#pragma unroll
    for (int f = 0; f < kFrags; ++f) {
        held[f] = holds_rows(f / NT, f % NT);
        T* v = acc[f / NT][f % NT];
        v[0] = v[1] = v[2] = v[3] = T(0);
    }
    // Byte address of this thread's vector of fragment 0, split 0. Addresses are integers
    // until the load: absent splits (s >= splits) would point past the workspace, which
    // as C++ pointer arithmetic is undefined even though their loads never happen.
    const qk_dptr mine = workspace_addr + (tile_base * kFrags * THREADS + threadIdx.x) * sizeof(V);
#pragma unroll
    for (int f0 = 0; f0 < kFrags; f0 += kChunk) {
        for (uint32_t s0 = 0; s0 < splits; s0 += kSplitsInFlight) {
            uint4 part[kSplitsInFlight][kChunk];
#pragma unroll
            for (int u = 0; u < kSplitsInFlight; ++u) {
#pragma unroll
                for (int c = 0; c < kChunk; ++c) {
                    const int f = f0 + c;
                    const qk_dptr at = mine + ((static_cast<uint64_t>(s0 + u) * kFrags + f) * THREADS) * sizeof(V);
                    part[u][c] = qk_ld_cg_v4_if(held[f] && s0 + u < splits, at);
                }
            }
            // Absent splits and fragments loaded as zeros: adding them changes nothing.
#pragma unroll
            for (int u = 0; u < kSplitsInFlight; ++u) {
#pragma unroll
                for (int c = 0; c < kChunk; ++c) {
                    const V p = QkVec4<T>::from_bits(part[u][c]);
                    T* v = acc[(f0 + c) / NT][(f0 + c) % NT];
                    v[0] += p.x;
                    v[1] += p.y;
                    v[2] += p.z;
                    v[3] += p.w;
                }
            }
        }
    }
    if (threadIdx.x == 0) {
        counters[tile] = 0;  // ready for the next launch
    }
    return true;
}

/* qk_split_k_reduce_if for mma.sync accumulators: the thread's rows of m16 tile mt are
 * row0 + 16 mt (+ 8), so fragment (mt, nt) holds a row of C iff row0 + 16 mt < m. */
template <typename T, int MT, int NT, int THREADS>
__device__ __forceinline__ bool qk_split_k_reduce(T (&acc)[MT][NT][4], qk_dptr workspace_addr, qk_dptr counters_addr,
                                                  uint32_t row0, uint32_t m) {
    return qk_split_k_reduce_if<T, MT, NT, THREADS>(acc, workspace_addr, counters_addr,
                                                    [&](int mt, int) { return row0 + mt * QK_MMA_M < m; });
}

/* Epilogue staging: converts the block's accumulators to f16 into the shared-memory C
 * tile (row stride C_STRIDE halves), in fragment order (one half2 per row and column
 * pair). The warp owns a WARP_ROWS x WARP_COLS sub-tile at (warp_m, warp_n).
 * `column(gn)` is called once per column pair (gn: global column of the pair's first
 * element) and returns the per-row operation `op(gm, acc0, acc1) -> __half2` (gm: global
 * row), so per-column operands (scales, bias) are loaded once per n8 tile, not per row.
 * The caller does the barrier before the tile is read. */
template <int WARP_ROWS, int WARP_COLS, int C_STRIDE, typename T, int MT, int NT, class Column>
__device__ __forceinline__ void qk_stage_c_fragments(__half* c_tile, const T (&acc)[MT][NT][4],
                                                     const QkGemmBlock& blk, Column&& column) {
    const int g = blk.lane / 4;  // fragment row within an m16 tile (and +8)
    const int t = blk.lane % 4;  // fragment column pair 2t, 2t+1
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
        const uint32_t local_col = blk.warp_n * WARP_COLS + nt * QK_MMA_N + 2 * t;
        const auto op = column(blk.n0 + local_col);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const uint32_t local_row = blk.warp_m * WARP_ROWS + mt * QK_MMA_M + g + 8 * h;
                *reinterpret_cast<__half2*>(&c_tile[local_row * C_STRIDE + local_col]) =
                    op(blk.m0 + local_row, acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
            }
        }
    }
}

/* Halves per 16-byte store of C. */
#define QK_C_VEC_HALVES 8
/* Halves of padding per staged C row: 16 B shifts consecutive rows by 4 banks, so the
 * fragment-order half2 stores of a warp (8 rows x 4 columns) hit 32 distinct banks. */
#define QK_C_ROW_PAD_HALVES 8

/* Writes the BM x BN f16 tile staged in shared memory (row stride C_STRIDE halves) to
 * C [m, n] at (m0, n0): 16-byte row segments when rows are 16-byte aligned (n % 8 == 0),
 * else element by element. Rows/columns outside C are skipped. */
template <int BM, int BN, int THREADS, int C_STRIDE>
__device__ __forceinline__ void qk_store_c_tile(const __half* c_tile, qk_dptr c_addr, uint32_t m0, uint32_t n0,
                                                uint32_t m, uint32_t n) {
    __half* c = reinterpret_cast<__half*>(c_addr);  // [m, n]
    if (n % QK_C_VEC_HALVES == 0) {
        constexpr int kVecPerRow = BN / QK_C_VEC_HALVES;
        for (int i = threadIdx.x; i < BM * kVecPerRow; i += THREADS) {
            const uint32_t row = i / kVecPerRow;
            const uint32_t col = (i % kVecPerRow) * QK_C_VEC_HALVES;
            const uint32_t gm = m0 + row;
            const uint32_t gn = n0 + col;
            if (gm < m && gn < n) {
                *reinterpret_cast<uint4*>(&c[static_cast<uint64_t>(gm) * n + gn]) =
                    *reinterpret_cast<const uint4*>(&c_tile[row * C_STRIDE + col]);
            }
        }
    } else {
        for (int i = threadIdx.x; i < BM * BN; i += THREADS) {
            const uint32_t row = i / BN;
            const uint32_t col = i % BN;
            const uint32_t gm = m0 + row;
            const uint32_t gn = n0 + col;
            if (gm < m && gn < n) {
                c[static_cast<uint64_t>(gm) * n + gn] = c_tile[row * C_STRIDE + col];
            }
        }
    }
}

#endif /* QK_GEMM_CUH */
