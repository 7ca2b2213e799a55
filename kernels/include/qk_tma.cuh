/*
 * qk_tma.cuh — Hopper's asynchronous copy engine (sm_90): bulk copies and tensor (TMA)
 * copies from global to shared memory that complete on an mbarrier's transaction
 * count, and the mbarrier operations of a producer/consumer pipeline.
 *
 * Model (PTX ISA 9.7.13.15 "mbarrier", 9.7.9.25 "cp.async.bulk"): a phase completes when
 * its pending arrivals reach zero and its transaction count (bytes announced by
 * expect-tx minus bytes the copies completed) is zero. The producer arrives with
 * expect-tx of a stage's bytes and issues the copies; each copy completes its bytes
 * once they are in shared memory; a consumer that observes the phase complete
 * (try_wait.parity) sees the data. The copies write through the async proxy, which
 * wgmma reads through, so no proxy fence sits between them.
 */
#ifndef QK_TMA_CUH
#define QK_TMA_CUH

#include <stdint.h>

/* Initializes the mbarrier at shared address `bar` for `count` arrivals per phase. */
__device__ __forceinline__ void qk_mbar_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

/* Orders this thread's earlier generic-proxy shared writes (the mbarrier
 * initializations) before later async-proxy accesses, which the copies' complete-tx
 * are (PTX ISA "membar/fence": fence.proxy.async). */
__device__ __forceinline__ void qk_fence_proxy_async_shared() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

/* Arrives on `bar` and adds `bytes` to the transaction count of its current phase. */
__device__ __forceinline__ void qk_mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

/* Arrives on `bar`, releasing this thread's earlier shared-memory accesses. */
__device__ __forceinline__ void qk_mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

/* Waits (acquire) until the phase of `bar` with parity `parity` has completed. */
__device__ __forceinline__ void qk_mbar_wait_parity(uint32_t bar, uint32_t parity) {
    asm volatile(
        "{\n"
        " .reg .pred done;\n"
        "QK_MBAR_WAIT_%=:\n"
        " mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        " @!done bra QK_MBAR_WAIT_%=;\n"
        "}\n" ::"r"(bar),
        "r"(parity)
        : "memory");
}

/* Copies `bytes` (a multiple of 16, both addresses 16-byte aligned) from global `src`
 * to shared `dst`, completing them on `bar` (PTX ISA 9.7.9.25.4.1, non-tensor). */
__device__ __forceinline__ void qk_bulk_copy_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
        "l"(src), "r"(bytes), "r"(bar)
        : "memory");
}

/* Copies the box of the 2D tensor map at `map` (a __grid_constant__ parameter or global
 * memory) whose first element is (c0 inner, c1 outer) to shared `dst` (128-byte
 * aligned; 1024 for the 128-byte swizzle to start at pattern row 0), completing the
 * box's bytes on `bar` (PTX ISA 9.7.9.25.5.1). Elements outside the tensor arrive as
 * zeros and count toward the box's bytes. */
__device__ __forceinline__ void qk_tma_load_2d(uint32_t dst, const void* map, int32_t c0, int32_t c1,
                                               uint32_t bar) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], "
        "[%4];\n" ::"r"(dst),
        "l"(map), "r"(c0), "r"(c1), "r"(bar)
        : "memory");
}

/* setmaxnreg's register counts (PTX ISA "setmaxnreg"): 24 to 256, multiples of 8. */
#define QK_SETMAXNREG_MIN 24
#define QK_SETMAXNREG_MAX 256
#define QK_SETMAXNREG_STEP 8

/* Hands registers between warpgroups (PTX ISA "setmaxnreg", sm_90a): every warp
 * of the executing warpgroup runs it; a producer warpgroup lowers its per-thread count
 * (INC = false) so the consumers can raise theirs (INC = true, which waits until the
 * register file has them) within the register file. */
template <bool INC, int REGS>
__device__ __forceinline__ void qk_setmaxnreg() {
    static_assert(REGS >= QK_SETMAXNREG_MIN && REGS <= QK_SETMAXNREG_MAX && REGS % QK_SETMAXNREG_STEP == 0,
                  "setmaxnreg takes 24..256, multiples of 8");
    if constexpr (INC) {
        asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(REGS));
    } else {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(REGS));
    }
}

#endif /* QK_TMA_CUH */
