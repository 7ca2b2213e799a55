// Inline-asm scoped predicates, cp.async with L2 cache hints, and ldmatrix:
// each warp copies a 16x16 fp16 tile (row-major, 32 bytes per row) to shared memory
// asynchronously and reads it back with ldmatrix.x4; every lane stores its 4 registers.
#include <cstdint>
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool pred, uint64_t pol) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, %0, 0;\n"
                 "@p cp.async.cg.shared.global.L2::cache_hint [%1], [%2], 16, %3; }\n"
                 :: "r"((int)pred), "r"(dst), "l"(src), "l"(pol));
}
extern "C" __global__ void tile_ldmatrix(const uint4* in, uint32_t* out) {
    __shared__ __align__(16) uint4 tile[32];
    uint64_t pol;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
    unsigned lane = threadIdx.x;
    uint32_t dst = (uint32_t)__cvta_generic_to_shared(&tile[lane]);
    cp_async16(dst, in + lane, true, pol);
    asm volatile("cp.async.commit_group;\n" ::);
    asm volatile("cp.async.wait_group 0;\n" ::);
    __syncwarp();
    // Row address for ldmatrix: matrices 0..3 = (rows 0-7, cols 0-7), (rows 8-15, cols 0-7),
    // (rows 0-7, cols 8-15), (rows 8-15, cols 8-15).
    unsigned row = (lane & 7) + ((lane >> 3) & 1) * 8;
    unsigned col = (lane >> 4) * 8;
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(reinterpret_cast<char*>(tile) + row * 32 + col * 2);
    uint32_t r0, r1, r2, r3;
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
    out[lane * 4 + 0] = r0;
    out[lane * 4 + 1] = r1;
    out[lane * 4 + 2] = r2;
    out[lane * 4 + 3] = r3;
}
