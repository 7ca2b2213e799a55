/*
 * permute.cu — qk_permute_cols_f16: dst[r, j] = src[r, perm[j]].
 *
 * Act-order GPTQ checkpoints quantize K in a data-dependent order (g_idx), so a group's
 * rows are scattered along K. The repack (src/formats/weight_only.rs) sorts K by group,
 * which makes groups contiguous for the GEMM, and records the permutation; before the
 * GEMM this kernel gathers A's columns into the same order. The sum over K is
 * order-independent, so C is unchanged.
 *
 * Each thread produces QK_PERMUTE_VEC = 8 consecutive output columns of one row: 8
 * 2-byte gathers (src through L2, perm through the read-only path: it is read by every
 * row and stays in L1/L2) and one 16-byte store. Grid-stride over rows x cols / 8. The kernel moves
 * 2 * M * K bytes; at decode (M <= 8) that is a few KiB against megabytes of weights.
 *
 * Programmatic dependent launch (qk_grid_dependency.cuh): src is the previous kernel's
 * output and dst what the previous GEMM read, so every thread waits first; and the GEMM
 * that follows may launch at once, to bring its first weights into L2 while this runs.
 */
#include "qk_abi.h"
#include "qk_grid_dependency.cuh"

#include <cuda_fp16.h>
#include <stdint.h>

extern "C" __global__ void __launch_bounds__(QK_PERMUTE_BLOCK_THREADS)
    qk_permute_cols_f16(const QkPermuteColsArgs args) {
    qk_wait_for_prior_grid();
    qk_allow_dependent_grid();
    const __half* src = reinterpret_cast<const __half*>(args.src);    // [rows, cols]
    __half* dst = reinterpret_cast<__half*>(args.dst);                // [rows, cols]
    const uint32_t* perm = reinterpret_cast<const uint32_t*>(args.perm);  // [cols]
    const uint32_t vecs_per_row = args.cols / QK_PERMUTE_VEC;
    const uint64_t total = static_cast<uint64_t>(args.rows) * vecs_per_row;
    for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
        const uint64_t row = i / vecs_per_row;
        const uint32_t col = static_cast<uint32_t>(i % vecs_per_row) * QK_PERMUTE_VEC;
        const __half* src_row = src + row * args.cols;
        __align__(16) __half out[QK_PERMUTE_VEC];
#pragma unroll
        for (int j = 0; j < QK_PERMUTE_VEC; ++j) {
            // src through L2 only (.cg): under a programmatic launch the previous kernel
            // wrote it during this kernel's lifetime, which the read-only path (.nc)
            // does not allow; perm is the weights' and stays read-only.
            out[j] = __ldcg(&src_row[__ldg(&perm[col + j])]);
        }
        *reinterpret_cast<uint4*>(&dst[row * args.cols + col]) = *reinterpret_cast<const uint4*>(out);
    }
}
