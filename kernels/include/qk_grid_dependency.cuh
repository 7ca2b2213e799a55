/*
 * qk_grid_dependency.cuh — the device side of programmatic dependent launch (PDL).
 *
 * At decode a layer's GEMM lasts a few microseconds, and a fixed part of each is spent
 * before the first weight byte arrives: the launch itself, then a DRAM round trip. When
 * the host launches a kernel with programmatic stream serialization
 * (CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, compute capability 9.0+), its
 * blocks may start while the previous kernel of the stream is still running, once every
 * block of that kernel has executed griddepcontrol.launch_dependents or exited. They can
 * then fetch what no earlier kernel writes (the weights) and must wait, with
 * griddepcontrol.wait, before they read what it writes (A) or write what it may still
 * read or write (C, the split-K workspace and counters). PTX ISA "griddepcontrol"
 * (PTX 7.8, sm_90): wait blocks the thread until the prerequisite grids have completed
 * and their memory operations are visible to it; without a programmatic launch there is
 * nothing to wait for and it returns at once.
 *
 * Below sm_90 no launch is programmatic and the instructions do not exist: the helpers
 * compile to nothing there. The simulator runs the compute_90a PTX and reports any
 * access that would race the previous grid (ptxsim's grid-dependency hazard).
 */
#ifndef QK_GRID_DEPENDENCY_CUH
#define QK_GRID_DEPENDENCY_CUH

#include <stdint.h>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define QK_HAS_GRID_DEPENDENCY 1
#else
#define QK_HAS_GRID_DEPENDENCY 0
#endif

/* Waits until the grid this one was programmatically launched after has completed and
 * its writes are visible. Every thread that touches the previous grid's data calls it
 * (the wait is per thread). */
__device__ __forceinline__ void qk_wait_for_prior_grid() {
#if QK_HAS_GRID_DEPENDENCY
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

/* Lets the next programmatically launched grid start once every block of this one has
 * called it (or exited). Called when a block has no more weights to stream, so that the
 * next grid's early weight fetches (qk_prefetch_l2) do not compete with this one's
 * stream for L2 and get evicted before they are used. */
__device__ __forceinline__ void qk_allow_dependent_grid() {
#if QK_HAS_GRID_DEPENDENCY
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/* Granule of a bulk L2 prefetch: address and size are multiples of 16 bytes (PTX ISA
 * "cp.async.bulk.prefetch"). */
#define QK_PREFETCH_GRANULE_BYTES 16

/* Asks L2 to fetch `bytes` (a multiple of 16) at global `addr` (16-byte aligned): one
 * instruction for a contiguous range, no registers or shared memory, no completion to
 * wait for (PTX ISA "cp.async.bulk.prefetch", sm_90). Below sm_90: nothing. */
__device__ __forceinline__ void qk_prefetch_l2(uint64_t addr, uint32_t bytes) {
#if QK_HAS_GRID_DEPENDENCY
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(addr), "r"(bytes) : "memory");
#endif
}

#endif /* QK_GRID_DEPENDENCY_CUH */
