/*
 * qk_wgmma.cuh — Hopper (sm_90a) warpgroup MMA: the instructions and the shared-memory
 * operand descriptor the sm_90a kernels use (PTX ISA 9.7.15 "Asynchronous Warpgroup
 * Level Matrix Multiply-Accumulate Instructions"). Only compiled into *_sm90a.cu files.
 *
 * A warpgroup is 4 consecutive warps (threads 128 i .. 128 i + 127). One
 * wgmma.mma_async computes D[64, N] += A[64, 16] * B[16, N] for the whole warpgroup:
 * warp w of the group supplies rows 16 w .. 16 w + 15 of A from its registers (the
 * mma.m16n8k16 A fragment layout) and receives the same rows of D, so each warp's
 * accumulators depend only on its own A rows and the shared B.
 */
#ifndef QK_WGMMA_CUH
#define QK_WGMMA_CUH

#include <stdint.h>

#include "qk_pipeline.cuh"

/* Swizzled rows of a 128-byte-swizzle operand repeat their XOR pattern every 8 rows:
 * 8 x 128 B = 1024 B, the alignment a stage's B tile needs (PTX ISA "Shared Memory
 * Matrix Layout": the pattern is a function of address bits 4-9, so the tile must
 * start on a pattern boundary when the descriptor's base offset is 0). */
#define QK_WGMMA_SW128_ATOM_BYTES 1024
/* Descriptor fields are byte quantities >> 4 (PTX ISA "Matrix Descriptor Format"). */
#define QK_WGMMA_DESC_UNIT_SHIFT 4
/* Descriptor swizzle mode 1: 128-byte swizzle (bits 62-63). */
#define QK_WGMMA_DESC_SWIZZLE_128B (1ull << 62)

/* The K-major, 128-byte-swizzled operand tile at shared address `tile` (rows of 128 B =
 * 64 f16 of K, chunk c of row r at r * 128 + ((c ^ (r % 8)) * 16): qk_swizzle_128's
 * layout) as a wgmma matrix descriptor for the k16 step starting at K element
 * 16 * `k_step` of the row.
 *   start address: tile + 32 B per k16 step (the swizzle is applied to the computed
 *                  address, so stepping inside the 128-byte row needs no other change);
 *   leading byte offset: unused for K-major swizzled layouts whose K extent (16) fits
 *                  in the 128-byte row; set to 1 (16 B) as the ISA's canonical value;
 *   stride byte offset: 1024 B between consecutive groups of 8 rows. */
__device__ __forceinline__ uint64_t qk_wgmma_desc_k_major_sw128(uint32_t tile, int k_step) {
    constexpr uint32_t kStepBytes = 16 * 2;  // 16 f16 of K
    const uint64_t start = (tile + k_step * kStepBytes) >> QK_WGMMA_DESC_UNIT_SHIFT;
    const uint64_t leading = QK_CHUNK_BYTES >> QK_WGMMA_DESC_UNIT_SHIFT;
    const uint64_t stride = QK_WGMMA_SW128_ATOM_BYTES >> QK_WGMMA_DESC_UNIT_SHIFT;
    return start | (leading << 16) | (stride << 32) | QK_WGMMA_DESC_SWIZZLE_128B;
}

/* Orders this warp's earlier register writes (accumulators, A fragments) before the
 * wgmma that read them; required before the first wgmma and whenever another
 * instruction wrote their registers (PTX ISA "wgmma.fence"). */
__device__ __forceinline__ void qk_wgmma_fence() {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}

/* Closes the warp's uncommitted wgmma operations into one group. */
__device__ __forceinline__ void qk_wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

/* Waits until at most PENDING of the warp's committed wgmma groups are in flight; only
 * then may other instructions touch their accumulators or A registers, or the shared
 * memory they read be overwritten. */
template <int PENDING>
__device__ __forceinline__ void qk_wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(PENDING) : "memory");
}

/* d[64 x 128] += a[64 x 16] * b[16 x 128], f16 inputs, f32 accumulators; a from
 * registers (this warp's 16 rows: a[0..3] as mma.m16n8k16's a0..a3), b through `desc_b`
 * (K-major: b's column n is row n of the tile). Lane 4g + t holds d[4j + 0..1] at
 * (row g, columns 8j + 2t, 8j + 2t + 1) and d[4j + 2..3] at row g + 8, j = 0..15 (PTX
 * ISA "Register Fragments and Shared Memory Matrix Layouts", wgmma .m64nNk16).
 * Scale-d is 1 (accumulate), A and B unscaled, B not transposed. */
__device__ __forceinline__ void qk_wgmma_m64n128k16_f32_f16(float (&d)[64], const uint32_t (&a)[4],
                                                            uint64_t desc_b) {
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
        "{%64, %65, %66, %67}, %68, 1, 1, 1, 0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]),
          "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
          "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]),
          "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
          "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),
          "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]),
          "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]),
          "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]),
          "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b)
        : "memory");
}

/* The pipeline readers of a stage whose B tile wgmma reads (see qk_pipeline_main_loop).
 * wgmma reads shared memory through the async proxy, and cp.async wrote it through the
 * generic proxy: each thread fences its landed copies into the async proxy before the
 * barrier that publishes them (PTX ISA "fence.proxy.async", memory consistency model
 * "Proxies"). A warp's last wgmma of a tile may still be reading that tile's stage while
 * it issues the next tile's loads, so loads target the stage of tile i - 2 (lag 2): by
 * then every warp has waited for that tile's wgmma (at most one group stays pending
 * across a k-step). drain() retires the last group before the stages are reused. */
struct QkWgmmaReaders {
    static constexpr int kLag = 2;
    __device__ __forceinline__ static void before_barrier() {
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    }
    __device__ __forceinline__ static void drain() { qk_wgmma_wait<0>(); }
};

#endif /* QK_WGMMA_CUH */
