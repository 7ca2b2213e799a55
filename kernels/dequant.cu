/*
 * dequant.cu — the dequantization family: quantized weights -> f16.
 *
 *   qk_dequant_int8   int8 [rows, cols] * per-row scale (f32 or f16)     -> f16
 *   qk_dequant_int4   packed 4-bit [rows, cols/2], per-group f16 scale,
 *                     optional per-group zero point (else 8)             -> f16
 *
 * Both are bandwidth-bound elementwise passes. Design:
 *   - The tensor is treated as one flat array, so any rows x cols works and every
 *     thread issues full 16-byte loads and stores (the widest LDG/STG; PTX ISA
 *     "ld"/"st" with .v4.u32) except for a scalar tail of fewer than one vector.
 *   - A grid-stride loop lets the host size the grid to the GPU rather than to the
 *     tensor: one wave of the blocks its SMs hold at once (the occupancy calculator,
 *     so registers count), since a partial second wave takes as long as a full one.
 *   - Index math is 32-bit: the wrappers reject tensors of 2^32 or more elements,
 *     so no 64-bit division (a slow software sequence on the GPU) is needed.
 *   - The result of every element is bit-exact: the product of a small integer and
 *     an f16 (or the f32 product for f32 scales) is rounded once to f16, which is the
 *     host reference (src/formats) exactly.
 */
#include "qk_abi.h"
#include "qk_convert.cuh"
#include "qk_memory.cuh"

#include <cuda_fp16.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------- */
/* qk_dequant_int8                                                                 */
/* ------------------------------------------------------------------------------- */

__device__ __forceinline__ float qk_load_scale(const QkDequantInt8Args& args, uint32_t row) {
    if (args.scale_dtype == QK_SCALE_F16) {
        return __half2float(reinterpret_cast<const __half*>(args.scales)[row]);
    }
    return reinterpret_cast<const float*>(args.scales)[row];
}

__device__ __forceinline__ uint16_t qk_dequant_int8_one(int8_t q, float scale) {
    return __half_as_ushort(__float2half_rn(static_cast<float>(q) * scale));
}

extern "C" __global__ void __launch_bounds__(QK_DEQUANT_BLOCK_THREADS)
qk_dequant_int8(const QkDequantInt8Args args) {
    const int8_t* q = reinterpret_cast<const int8_t*>(args.q);  // [rows, cols]
    uint16_t* out = reinterpret_cast<uint16_t*>(args.out);       // [rows, cols] f16 bits
    const uint32_t total = args.rows * args.cols;
    const uint32_t vec_count = total / QK_DEQUANT_INT8_ELEMS_PER_THREAD;
    const uint32_t stride = gridDim.x * blockDim.x;

    for (uint32_t v = blockIdx.x * blockDim.x + threadIdx.x; v < vec_count; v += stride) {
        const uint32_t first = v * QK_DEQUANT_INT8_ELEMS_PER_THREAD;
        const uint4 raw = qk_ld_stream_v4(q + first);
        const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
        // A 16-element vector may straddle row boundaries when cols is not a multiple
        // of 16 (or is smaller than 16): walk the row index along with the elements.
        uint32_t row = first / args.cols;
        uint32_t col = first - row * args.cols;
        float scale = qk_load_scale(args, row);
        uint32_t packed[8];
#pragma unroll
        for (int j = 0; j < QK_DEQUANT_INT8_ELEMS_PER_THREAD; ++j) {
            if (col == args.cols) {
                row += 1;
                col = 0;
                scale = qk_load_scale(args, row);
            }
            const int8_t value = static_cast<int8_t>(words[j / 4] >> (8 * (j % 4)));
            const uint32_t bits = qk_dequant_int8_one(value, scale);
            packed[j / 2] = (j % 2 == 0) ? bits : (packed[j / 2] | (bits << 16));
            col += 1;
        }
        uint4* dst = reinterpret_cast<uint4*>(out + first);
        qk_st_stream_v4(dst, make_uint4(packed[0], packed[1], packed[2], packed[3]));
        qk_st_stream_v4(dst + 1, make_uint4(packed[4], packed[5], packed[6], packed[7]));
    }

    // Scalar tail: fewer than one vector of elements, handled by the first threads.
    const uint32_t tail_first = vec_count * QK_DEQUANT_INT8_ELEMS_PER_THREAD;
    const uint32_t tail_index = tail_first + blockIdx.x * blockDim.x + threadIdx.x;
    if (tail_index < total) {
        const uint32_t row = tail_index / args.cols;
        out[tail_index] = qk_dequant_int8_one(q[tail_index], qk_load_scale(args, row));
    }
}

/* ------------------------------------------------------------------------------- */
/* qk_dequant_int4                                                                 */
/* ------------------------------------------------------------------------------- */

/* Symmetric 4-bit formats store q + 8: the implicit zero point. */
#define QK_INT4_SYMMETRIC_ZERO 8

__device__ __forceinline__ uint32_t qk_int4_zero(const QkDequantInt4Args& args, uint32_t idx) {
    return args.zeros == 0 ? QK_INT4_SYMMETRIC_ZERO
                           : static_cast<uint32_t>(reinterpret_cast<const uint8_t*>(args.zeros)[idx]);
}

/* One element, any position: the exact reference formula (integer difference times
 * the f16 scale is exact in f32; one rounding to f16). */
__device__ __forceinline__ uint16_t qk_dequant_int4_one(const QkDequantInt4Args& args,
                                                         uint32_t element) {
    const uint8_t* packed = reinterpret_cast<const uint8_t*>(args.packed);
    const __half* scales = reinterpret_cast<const __half*>(args.scales);
    const uint32_t row = element / args.cols;
    const uint32_t col = element - row * args.cols;
    const uint32_t groups_per_row = args.cols / args.group_size;
    const uint32_t group = row * groups_per_row + col / args.group_size;
    const uint32_t byte = packed[element / 2];
    const uint32_t value = (element % 2 == 0) ? (byte & 0xfu) : (byte >> 4);
    const float diff = static_cast<float>(static_cast<int>(value) -
                                          static_cast<int>(qk_int4_zero(args, group)));
    return __half_as_ushort(__float2half_rn(diff * __half2float(scales[group])));
}

extern "C" __global__ void __launch_bounds__(QK_DEQUANT_BLOCK_THREADS)
qk_dequant_int4(const QkDequantInt4Args args) {
    const uint8_t* packed = reinterpret_cast<const uint8_t*>(args.packed);  // [rows, cols/2]
    const __half* scales = reinterpret_cast<const __half*>(args.scales);    // [rows, groups]
    uint16_t* out = reinterpret_cast<uint16_t*>(args.out);                 // [rows, cols]
    const uint32_t total = args.rows * args.cols;
    const uint32_t vec_count = total / QK_DEQUANT_INT4_ELEMS_PER_THREAD;
    const uint32_t groups_per_row = args.cols / args.group_size;
    const uint32_t stride = gridDim.x * blockDim.x;

    for (uint32_t v = blockIdx.x * blockDim.x + threadIdx.x; v < vec_count; v += stride) {
        const uint32_t first = v * QK_DEQUANT_INT4_ELEMS_PER_THREAD;
        const uint32_t last = first + QK_DEQUANT_INT4_ELEMS_PER_THREAD - 1;
        const uint32_t row = first / args.cols;
        const uint32_t col = first - row * args.cols;
        uint4* dst = reinterpret_cast<uint4*>(out + first);
        const bool one_group = last < (row + 1) * args.cols &&
                               col / args.group_size == (col + QK_DEQUANT_INT4_ELEMS_PER_THREAD - 1) / args.group_size;
        if (!one_group) {
            // Only per-channel groups whose row length is not a multiple of 32 get
            // here (g = 32/64/128 forces cols % 32 == 0): the exact scalar formula.
            uint32_t bits[16];
#pragma unroll
            for (int j = 0; j < 16; ++j) {
                bits[j] = qk_dequant_int4_one(args, first + 2 * j) |
                          (static_cast<uint32_t>(qk_dequant_int4_one(args, first + 2 * j + 1)) << 16);
            }
#pragma unroll
            for (int s = 0; s < 4; ++s) {
                qk_st_stream_v4(dst + s, make_uint4(bits[4 * s], bits[4 * s + 1], bits[4 * s + 2], bits[4 * s + 3]));
            }
            continue;
        }
        const uint32_t group = row * groups_per_row + col / args.group_size;
        const __half2 scale2 = __half2half2(scales[group]);
        // (1024 + q) - (1024 + z) = q - z exactly in f16 (integers below 2048 are exact),
        // and f16 multiplication rounds the exact product (q - z) * s once, as the
        // reference does (PTX ISA "Half Precision Floating-Point Instructions: mul").
        const uint32_t zero_bias = QK_F16X2_MAGIC_1024 | (qk_int4_zero(args, group) * 0x00010001u);
        const __half2 bias2 = qk_as_half2(zero_bias);
        const uint4 raw = qk_ld_stream_v4(packed + first / 2);
        const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int w = 0; w < 4; ++w) {
            // A word holds elements e0..e7, e_i in bits [4i, 4i+4). Shifting by 4s puts
            // (e_s, e_{s+4}) at bit offsets 0 and 16, the nibbles the magic trick reads.
            uint32_t pairs[4];  // pairs[s] = f16x2 (e_s, e_{s+4}) dequantized
#pragma unroll
            for (int s = 0; s < 4; ++s) {
                const __half2 biased = qk_as_half2(qk_nibbles_to_f16x2_biased(words[w] >> (4 * s)));
                pairs[s] = qk_half2_bits(__hmul2(__hsub2(biased, bias2), scale2));
            }
            // Reorder (e0,e4) (e1,e5) (e2,e6) (e3,e7) into (e0,e1) (e2,e3) (e4,e5) (e6,e7).
            qk_st_stream_v4(dst + w, make_uint4(qk_prmt(pairs[0], pairs[1], QK_PRMT_LOW_HALVES),
                                                qk_prmt(pairs[2], pairs[3], QK_PRMT_LOW_HALVES),
                                                qk_prmt(pairs[0], pairs[1], QK_PRMT_HIGH_HALVES),
                                                qk_prmt(pairs[2], pairs[3], QK_PRMT_HIGH_HALVES)));
        }
    }

    // Scalar tail: fewer than 32 elements (cols is even, so whole bytes).
    const uint32_t tail_index = vec_count * QK_DEQUANT_INT4_ELEMS_PER_THREAD +
                                blockIdx.x * blockDim.x + threadIdx.x;
    if (tail_index < total) {
        out[tail_index] = qk_dequant_int4_one(args, tail_index);
    }
}
