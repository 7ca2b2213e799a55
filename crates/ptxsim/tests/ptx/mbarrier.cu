// cuda::barrier + cuda::memcpy_async (libcu++), which compile to mbarrier.* and
// cp.async.mbarrier.arrive on sm_80: the block copies 256 ints to shared memory
// asynchronously, waits on the barrier, then each thread sums a neighbour pair.
#include <cuda/barrier>
#include <cooperative_groups.h>
#pragma nv_diag_suppress static_var_with_dynamic_init
extern "C" __global__ void mbar_copy(const int* in, int* out) {
    __shared__ __align__(16) int s[256];
    __shared__ cuda::barrier<cuda::thread_scope_block> bar;
    auto block = cooperative_groups::this_thread_block();
    if (block.thread_rank() == 0) init(&bar, block.size());
    block.sync();
    cuda::memcpy_async(block, s, in + blockIdx.x * 256, sizeof(int) * 256, bar);
    bar.arrive_and_wait();
    unsigned t = threadIdx.x;
    out[blockIdx.x * 256 + t] = s[t] + s[(t + 1) % 256];
}
