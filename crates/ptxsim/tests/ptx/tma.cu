// cp.async.bulk.tensor (TMA) through a __grid_constant__ tensor map on sm_90: thread 0
// arms an mbarrier with the box's bytes and issues one tiled 2D copy into shared memory;
// every thread waits for the phase, then the block writes the box out word by word.
#include <cuda.h>
#include <stdint.h>
#define BOX_BYTES 1024
extern "C" __global__ void tma_tile(const __grid_constant__ CUtensorMap tmap, int x, int y, unsigned* out) {
    __shared__ alignas(1024) unsigned char tile[BOX_BYTES];
    __shared__ alignas(8) uint64_t bar;
    const unsigned sbar = static_cast<unsigned>(__cvta_generic_to_shared(&bar));
    const unsigned stile = static_cast<unsigned>(__cvta_generic_to_shared(tile));
    if (threadIdx.x == 0) {
        asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(sbar) : "memory");
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(sbar), "r"(BOX_BYTES) : "memory");
        asm volatile(
            "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
            ::"r"(stile), "l"(&tmap), "r"(x), "r"(y), "r"(sbar) : "memory");
    }
    asm volatile(
        "{\n .reg .pred p;\n WAIT_%=:\n mbarrier.try_wait.parity.shared::cta.b64 p, [%0], 0;\n @!p bra WAIT_%=;\n}"
        ::"r"(sbar) : "memory");
    for (unsigned i = threadIdx.x; i < BOX_BYTES / 4; i += blockDim.x) {
        out[i] = reinterpret_cast<const unsigned*>(tile)[i];
    }
}
