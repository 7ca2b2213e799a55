/*
 * quantize.cu — activation quantization: f16 rows -> int8 + one f32 scale per row.
 *
 *   qk_quantize_int8_per_token   x f16 [rows, cols] -> q int8 [rows, cols], scale f32 [rows]
 *
 * Per row (one token): absmax = max |x|; scale = absmax / 127; q = clamp(rint(x *
 * (127 / absmax)), -127, 127), with IEEE f32 division and round-to-nearest-even
 * (cvt.rni, PTX ISA "cvt"). A row of zeros gets scale 0 and q 0. The host reference
 * (src/formats) performs the same f32 operations in the same order: results are
 * bit-exact.
 *
 * Design: one block per row in a grid-stride loop over rows. Pass 1 reduces absmax
 * (thread-local max, warp butterfly with shfl.sync, then one shared-memory round
 * across warps); pass 2 re-reads the row (now L1/L2-resident) and writes int8. Rows
 * whose length is a multiple of 16 use 16-byte vectors (two f16 loads make one int8
 * store); other lengths take the scalar path.
 */
#include "qk_abi.h"
#include "qk_memory.cuh"

#include <cuda_fp16.h>
#include <stdint.h>

#define QK_QUANTIZE_WARPS (QK_QUANTIZE_BLOCK_THREADS / QK_WARP_THREADS)
#define QK_FULL_WARP_MASK 0xffffffffu

__device__ __forceinline__ float qk_abs_f16(uint32_t bits16) {
    return fabsf(__half2float(__ushort_as_half(static_cast<unsigned short>(bits16))));
}

__device__ __forceinline__ uint32_t qk_quantize_one(uint32_t bits16, float inv_scale) {
    const float x = __half2float(__ushort_as_half(static_cast<unsigned short>(bits16)));
    const int q = min(max(__float2int_rn(x * inv_scale), -QK_INT8_QMAX), QK_INT8_QMAX);
    return static_cast<uint32_t>(q) & 0xffu;
}

extern "C" __global__ void __launch_bounds__(QK_QUANTIZE_BLOCK_THREADS)
qk_quantize_int8_per_token(const QkQuantizeInt8Args args) {
    __shared__ float warp_absmax[QK_QUANTIZE_WARPS];
    const uint16_t* x_all = reinterpret_cast<const uint16_t*>(args.x);  // [rows, cols] f16
    uint8_t* q_all = reinterpret_cast<uint8_t*>(args.q);                // [rows, cols] int8
    float* scales = reinterpret_cast<float*>(args.scales);             // [rows]
    const bool vectorized = args.cols % QK_QUANTIZE_VEC_ELEMS == 0;
    const uint32_t vec_per_row = args.cols / QK_QUANTIZE_VEC_ELEMS;

    for (uint32_t row = blockIdx.x; row < args.rows; row += gridDim.x) {
        const uint16_t* x = x_all + static_cast<uint64_t>(row) * args.cols;
        uint8_t* q = q_all + static_cast<uint64_t>(row) * args.cols;

        // Pass 1: absmax. fmaxf ignores a NaN operand, so NaN inputs do not poison it.
        float absmax = 0.0f;
        if (vectorized) {
            for (uint32_t v = threadIdx.x; v < vec_per_row; v += blockDim.x) {
                const uint4 lo = *reinterpret_cast<const uint4*>(x + v * QK_QUANTIZE_VEC_ELEMS);
                const uint4 hi = *reinterpret_cast<const uint4*>(x + v * QK_QUANTIZE_VEC_ELEMS + 8);
                const uint32_t words[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    absmax = fmaxf(absmax, fmaxf(qk_abs_f16(words[j] & 0xffffu), qk_abs_f16(words[j] >> 16)));
                }
            }
        } else {
            for (uint32_t c = threadIdx.x; c < args.cols; c += blockDim.x) {
                absmax = fmaxf(absmax, qk_abs_f16(x[c]));
            }
        }
#pragma unroll
        for (int offset = QK_WARP_THREADS / 2; offset > 0; offset /= 2) {
            absmax = fmaxf(absmax, __shfl_xor_sync(QK_FULL_WARP_MASK, absmax, offset));
        }
        if (threadIdx.x % QK_WARP_THREADS == 0) {
            warp_absmax[threadIdx.x / QK_WARP_THREADS] = absmax;
        }
        __syncthreads();
#pragma unroll
        for (int w = 0; w < QK_QUANTIZE_WARPS; ++w) {
            absmax = fmaxf(absmax, warp_absmax[w]);
        }
        // Every thread has read warp_absmax; the next row may overwrite it only after
        // this barrier (otherwise a fast warp's write races with a slow warp's read).
        __syncthreads();

        // A zero row would give 127 / 0 = inf and 0 * inf = NaN: use 0 instead.
        const float inv_scale = absmax > 0.0f ? static_cast<float>(QK_INT8_QMAX) / absmax : 0.0f;
        if (threadIdx.x == 0) {
            scales[row] = absmax / static_cast<float>(QK_INT8_QMAX);
        }

        // Pass 2: quantize.
        if (vectorized) {
            for (uint32_t v = threadIdx.x; v < vec_per_row; v += blockDim.x) {
                const uint4 lo = *reinterpret_cast<const uint4*>(x + v * QK_QUANTIZE_VEC_ELEMS);
                const uint4 hi = *reinterpret_cast<const uint4*>(x + v * QK_QUANTIZE_VEC_ELEMS + 8);
                const uint32_t words[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
                uint32_t out[4];
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const uint32_t a = words[2 * j];
                    const uint32_t b = words[2 * j + 1];
                    out[j] = qk_quantize_one(a & 0xffffu, inv_scale) |
                             (qk_quantize_one(a >> 16, inv_scale) << 8) |
                             (qk_quantize_one(b & 0xffffu, inv_scale) << 16) |
                             (qk_quantize_one(b >> 16, inv_scale) << 24);
                }
                *reinterpret_cast<uint4*>(q + v * QK_QUANTIZE_VEC_ELEMS) = make_uint4(out[0], out[1], out[2], out[3]);
            }
        } else {
            for (uint32_t c = threadIdx.x; c < args.cols; c += blockDim.x) {
                q[c] = static_cast<uint8_t>(qk_quantize_one(x[c], inv_scale));
            }
        }
    }
}
