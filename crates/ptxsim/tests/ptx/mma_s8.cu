// One warp computes a 16x8 int32 tile D = A(16x64 s8, row-major) * B(8x64 s8, one
// row per output column) with mma.sync m16n8k32, fed by a two-stage cp.async
// pipeline and ldmatrix; then dequantizes with per-row/per-column scales to fp16
// and reduces the tile sum with warp shuffles.
#include <cstdint>
#include <cuda_fp16.h>
__device__ __forceinline__ void cp16(uint32_t dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(dst), "l"(src));
}
extern "C" __global__ void mma_s8(const int8_t* A, const int8_t* B, const float* sa, const float* sb,
                                   int32_t* D, __half* Y, int32_t* sum) {
    __shared__ __align__(16) int8_t As[2][16][32];
    __shared__ __align__(16) int8_t Bs[2][8][32];
    unsigned lane = threadIdx.x;
    for (int s = 0; s < 2; ++s) {
        for (unsigned c = lane; c < 32; c += 32) {  // A: 16 rows x 2 chunks
            unsigned r = c >> 1, h = c & 1;
            cp16((uint32_t)__cvta_generic_to_shared(&As[s][r][h * 16]), A + r * 64 + s * 32 + h * 16);
        }
        if (lane < 16) {
            unsigned r = lane >> 1, h = lane & 1;
            cp16((uint32_t)__cvta_generic_to_shared(&Bs[s][r][h * 16]), B + r * 64 + s * 32 + h * 16);
        }
        asm volatile("cp.async.commit_group;\n" ::);
    }
    int32_t d[4] = {0, 0, 0, 0};
    for (int s = 0; s < 2; ++s) {
        if (s == 0) asm volatile("cp.async.wait_group 1;\n" ::);
        else asm volatile("cp.async.wait_group 0;\n" ::);
        __syncwarp();
        uint32_t a[4], b[2];
        uint32_t aaddr = (uint32_t)__cvta_generic_to_shared(&As[s][lane & 15][(lane >> 4) * 16]);
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3]) : "r"(aaddr));
        uint32_t baddr = (uint32_t)__cvta_generic_to_shared(&Bs[s][lane & 7][((lane >> 3) & 1) * 16]);
        asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];"
                     : "=r"(b[0]), "=r"(b[1]) : "r"(baddr));
        asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
    unsigned g = lane >> 2, q = lane & 3;
    int32_t local = 0;
    for (int i = 0; i < 4; ++i) {
        unsigned row = g + (i >> 1) * 8, col = q * 2 + (i & 1);
        D[row * 8 + col] = d[i];
        Y[row * 8 + col] = __float2half_rn((float)d[i] * sa[row] * sb[col]);
        local += d[i];
    }
    for (int o = 16; o > 0; o >>= 1) local += __shfl_xor_sync(0xffffffffu, local, o);
    if (lane == 0) *sum = local;
}
