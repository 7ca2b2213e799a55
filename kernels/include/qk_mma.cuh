/*
 * qk_mma.cuh — warp-level tensor-core fragments: ldmatrix loads and mma.sync.
 * Fragment layouts: PTX ISA "Matrix Fragments for mma.m16n8k32" / "ldmatrix"
 * (summarized in shared/ptx-fragments.md).
 */
#ifndef QK_MMA_CUH
#define QK_MMA_CUH

#include <stdint.h>

/* Four 8x8 b16 matrices (= four 8-row x 16-byte int8 tiles) from shared memory: lanes
 * 8i..8i+7 give the row addresses of matrix i, and register i of lane l receives bytes
 * 4(l%4)..4(l%4)+3 of row l/4 of matrix i — exactly an m16n8k32 s8 A/B register. */
__device__ __forceinline__ void qk_ldmatrix_x4(uint32_t (&r)[4], uint32_t smem_row_addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_row_addr));
}

/* D = A(16x32 s8) * B(32x8 s8) + C, s32 accumulate. Without .satfinite the sum wraps,
 * which the K <= 131072 bound makes impossible. */
__device__ __forceinline__ void qk_mma_s8_16832(int32_t (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* D = A(16x16 f16) * B(16x8 f16) + C with f32 accumulation ("Matrix Fragments for
 * mma.m16n8k16"): a0..a3 are ldmatrix.x4 of the (rows 0-7 | 8-15) x (k 0-7 | 8-15)
 * 8x8 tiles, b0 = (k 2t, 2t+1; n g), b1 = (k 2t+8, 2t+9; n g). */
__device__ __forceinline__ void qk_mma_f16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* 16 bytes from shared memory (a lane's chunk of a packed weight unit, or 8 scales). */
__device__ __forceinline__ uint4 qk_lds_v4(uint32_t smem_addr) {
    uint4 v;
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(smem_addr));
    return v;
}

/* 8 bytes from shared memory (half a lane's chunk, or 4 scales). */
__device__ __forceinline__ uint2 qk_lds_v2(uint32_t smem_addr) {
    uint2 v;
    asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "r"(smem_addr));
    return v;
}

/* 4 bytes from shared memory. */
__device__ __forceinline__ uint32_t qk_lds_u32(uint32_t smem_addr) {
    uint32_t v;
    asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(v) : "r"(smem_addr));
    return v;
}

#endif /* QK_MMA_CUH */
