// One warpgroup computes a 64x64 f32 tile D = A * B (K = 64) with
// wgmma.mma_async (A in registers, B in shared memory, K-major, 128-byte swizzle).
// A is row-major [64][64] f16; Bt is B transposed, row-major [64][64] f16 (B K-major);
// D is row-major [64][64] f32. Launch: 1 block of 128 threads. Test input of
// ptxsim's wgmma support (regen.sh builds it for sm_90a).
#include <cuda_fp16.h>
#include <stdint.h>

constexpr int N = 64, K = 64;

// Keeps the compiler from moving accesses of `r` across a wgmma fence (the role of
// CUTLASS's warpgroup_fence_operand).
__device__ __forceinline__ void fence_operand(float& r) { asm volatile("" : "+f"(r)::"memory"); }
__device__ __forceinline__ void fence_operand(uint32_t& r) { asm volatile("" : "+r"(r)::"memory"); }

extern "C" __global__ void __launch_bounds__(128) wgmma_tile(const __half* __restrict__ A, const __half* __restrict__ Bt,
                                                            float* __restrict__ D) {
    __shared__ alignas(1024) __half sB[N * K];
    const int tid = threadIdx.x;
    // 128-byte swizzle, K-major: row n is 128 bytes (64 halves); its 16-byte chunk c is
    // stored at chunk c ^ (n % 8); 8-row groups are 1024 bytes apart (SBO).
    for (int i = tid; i < N * K / 8; i += 128) {
        const int n = i / (K / 8), c = i % (K / 8);
        const uint4 v = *reinterpret_cast<const uint4*>(Bt + n * K + c * 8);
        const int dst = (n / 8) * 1024 + (n % 8) * 128 + ((c ^ (n % 8)) * 16);
        *reinterpret_cast<uint4*>(reinterpret_cast<char*>(sB) + dst) = v;
    }
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    __syncthreads();
    const int warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    float d[N / 2];
#pragma unroll
    for (int i = 0; i < N / 2; i++) d[i] = 0.f;
    uint32_t a[K / 16][4];
#pragma unroll
    for (int s = 0; s < K / 16; s++)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int row = 16 * warp + g + 8 * (r & 1), col = 16 * s + 2 * t + 8 * (r >> 1);
            a[s][r] = *reinterpret_cast<const uint32_t*>(A + row * K + col);
        }
    const uint32_t sb = static_cast<uint32_t>(__cvta_generic_to_shared(sB));
    const uint64_t desc0 = ((sb & 0x3FFFF) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
#pragma unroll
    for (int i = 0; i < N / 2; i++) fence_operand(d[i]);
#pragma unroll
    for (int s = 0; s < K / 16; s++)
#pragma unroll
        for (int r = 0; r < 4; r++) fence_operand(a[s][r]);
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int s = 0; s < K / 16; s++) {
        const uint64_t desc = desc0 + 2 * s;  // +32 bytes along K inside the 128-byte row
        asm volatile(
            "{\n"
            ".reg .pred p;\n"
            "setp.ne.b32 p, %37, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
            "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
            "{%32, %33, %34, %35}, %36, p, 1, 1, 0;\n"
            "}\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
            : "r"(a[s][0]), "r"(a[s][1]), "r"(a[s][2]), "r"(a[s][3]), "l"(desc), "r"(s > 0 ? 1 : 0));
    }
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
    for (int i = 0; i < N / 2; i++) fence_operand(d[i]);
#pragma unroll
    for (int i = 0; i < N / 2; i++) {
        const int row = 16 * warp + g + 8 * ((i >> 1) & 1), col = 8 * (i >> 2) + 2 * t + (i & 1);
        D[row * N + col] = d[i];
    }
}
