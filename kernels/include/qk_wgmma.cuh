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

/* The operand lists of the wgmma wrappers below: 64 accumulator registers of d (d[j] for
 * 16 consecutive 8-column blocks from J, as "+f" operands) and their operand numbers in the
 * instruction text. One list per 64 accumulators, so the n128 and n256 forms share them. */
#define QK_WGMMA_D4(J) "+f"(d[J][0]), "+f"(d[J][1]), "+f"(d[J][2]), "+f"(d[J][3])
#define QK_WGMMA_D16(J) QK_WGMMA_D4(J), QK_WGMMA_D4((J) + 1), QK_WGMMA_D4((J) + 2), QK_WGMMA_D4((J) + 3)
#define QK_WGMMA_D64(J) QK_WGMMA_D16(J), QK_WGMMA_D16((J) + 4), QK_WGMMA_D16((J) + 8), QK_WGMMA_D16((J) + 12)
#define QK_WGMMA_REGS_0_63 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define QK_WGMMA_REGS_64_127 "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"

/* d[64 x N] += a[64 x 16] * b[16 x N], N = 128 or 256, f16 inputs, f32 accumulators; a
 * from registers (this warp's 16 rows: a[0..3] as mma.m16n8k16's a0..a3), b through
 * `desc_b` (K-major: b's column n is row n of the tile). Lane 4g + t holds d[j][0..1] at
 * (row g, columns 8j + 2t, 8j + 2t + 1) and d[j][2..3] at row g + 8, j = 0 .. N/8 - 1
 * (PTX ISA "Register Fragments and Shared Memory Matrix Layouts", wgmma .m64nNk16): the
 * mma.m16n8 accumulator fragment of each 8-column block j. The instruction names every
 * accumulator register (N / 2 of them), so each N is its own asm statement.
 * Scale-d is 1 (accumulate), A and B unscaled, B not transposed. */
template <int N>
__device__ __forceinline__ void qk_wgmma_m64nNk16_f32_f16(float (&d)[N / 8][4], const uint32_t (&a)[4],
                                                          uint64_t desc_b) {
    static_assert(N == 128 || N == 256, "the wgmma shapes the weight-only kernels use");
    if constexpr (N == 128) {
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
                     "{" QK_WGMMA_REGS_0_63 "}, {%64, %65, %66, %67}, %68, 1, 1, 1, 0;\n"
                     : QK_WGMMA_D64(0)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b)
                     : "memory");
    } else {
        asm volatile("wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 "
                     "{" QK_WGMMA_REGS_0_63 ", " QK_WGMMA_REGS_64_127 "}, "
                     "{%128, %129, %130, %131}, %132, 1, 1, 1, 0;\n"
                     : QK_WGMMA_D64(0), QK_WGMMA_D64(16)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b)
                     : "memory");
    }
}
#undef QK_WGMMA_D4
#undef QK_WGMMA_D16
#undef QK_WGMMA_D64
#undef QK_WGMMA_REGS_0_63
#undef QK_WGMMA_REGS_64_127

/* Pins accumulator registers in program order: an empty asm that reads and writes each
 * one, so the compiler cannot move another instruction's access to them across this
 * point. Placed after the zeroing (before the first wgmma.fence) and after the last
 * wgmma.wait_group: between those points only wgmma may touch the accumulators (PTX ISA
 * 9.7.15.7 "wgmma.fence": other accesses while a wgmma is in flight are undefined), and
 * the asm statements' order is all that keeps an optimizer from hoisting a read above
 * the wait, as the "memory" clobbers order memory, not registers. */
template <int R, int C>
__device__ __forceinline__ void qk_wgmma_fence_operands(float (&acc)[R][C][4]) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int c = 0; c < C; ++c) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                asm volatile("" : "+f"(acc[r][c][i])::"memory");
            }
        }
    }
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
