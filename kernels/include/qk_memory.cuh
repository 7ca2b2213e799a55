/*
 * qk_memory.cuh — global-memory access helpers shared by all kernels.
 *
 * Each helper exists for a hardware reason given in its comment; the inline PTX is
 * what lets a kernel choose a cache policy that plain C++ loads do not express.
 */
#ifndef QK_MEMORY_CUH
#define QK_MEMORY_CUH

#include <stdint.h>

/* Streams 16 bytes that this kernel reads exactly once (quantized weights, inputs of
 * an elementwise pass). `.nc` routes the load through the read-only (texture) path,
 * legal because no thread of the launch writes these bytes; `L1::no_allocate` keeps
 * the stream from evicting L1 lines that other data of the block reuses.
 * PTX ISA: "Data Movement and Conversion Instructions: ld" (.nc, eviction priority).
 * The address must be 16-byte aligned (the wrappers validate it). */
__device__ __forceinline__ uint4 qk_ld_stream_v4(const void* ptr) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(ptr));
    return v;
}

/* The PTX of a predicated 16-byte global load into operands %0-%3 from the address in
 * operand %4 when operand %5 is nonzero: CACHE is the ld's qualifiers ("cg", "nc", ...),
 * ZERO_FILL is QK_ZERO_V4_PTX (the outputs are zeros when the load is off) or "" (they
 * are unspecified then). One PTX scope per use, so the predicate's name is private. */
#define QK_PRED_LD_V4_PTX(CACHE, ZERO_FILL)                                                   \
    "{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %5, 0;\n\t" ZERO_FILL "@p ld.global." CACHE \
    ".v4.b32 {%0, %1, %2, %3}, [%4];\n\t}\n"
#define QK_ZERO_V4_PTX "mov.b32 %0, 0;\n\tmov.b32 %1, 0;\n\tmov.b32 %2, 0;\n\tmov.b32 %3, 0;\n\t"
/* The same for 4 bytes into operand %0 from the address in %1 when %2 is nonzero, zeros
 * when off. */
#define QK_PRED_LD_U32_PTX(CACHE) \
    "{\n\t.reg .pred p;\n\tsetp.ne.b32 p, %2, 0;\n\tmov.b32 %0, 0;\n\t@p ld.global." CACHE ".u32 %0, [%1];\n\t}\n"

/* qk_ld_stream_v4 of global address `addr` if `pred`; otherwise nothing is read and the
 * result is unspecified, for a caller that never uses it then (a prefetch ring's slots
 * past the end of its stream). Predicated in the PTX ("@p ld"), not branched around, so
 * that a run of them is all in flight before any result is used (see qk_ld_cg_v4_if for
 * what a branch per load costs). PTX ISA: "ld" (.nc, eviction priority), "Predicated
 * Execution". 16-byte aligned address. */
__device__ __forceinline__ uint4 qk_ld_stream_v4_when(bool pred, uint64_t addr) {
    uint4 v;
    asm volatile(QK_PRED_LD_V4_PTX("nc.L1::no_allocate", "")
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(addr), "r"(static_cast<uint32_t>(pred)));
    return v;
}

/* The 16 bytes at global address `addr` through the read-only path (`.nc`: no thread of
 * the launch writes them; L1 may keep them for the block's other warps), or zeros when
 * `pred` is false (never read then). PTX ISA: "ld" (.nc). 16-byte aligned address. */
__device__ __forceinline__ uint4 qk_ld_nc_v4_if(bool pred, uint64_t addr) {
    uint4 v;
    asm volatile(QK_PRED_LD_V4_PTX("nc", QK_ZERO_V4_PTX)
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(addr), "r"(static_cast<uint32_t>(pred)));
    return v;
}

/* 4 bytes at global address `addr` through L2 only (`.cg`), or 0 when `pred` is false
 * (never read then): for data another grid may have written during this kernel's
 * lifetime (its input under a programmatic launch, read after griddepcontrol.wait),
 * which the read-only path (`.nc`) must not be used for. PTX ISA: "ld" (.cg).
 * 4-byte aligned address. */
__device__ __forceinline__ uint32_t qk_ld_cg_u32_if(bool pred, uint64_t addr) {
    uint32_t v;
    // "memory": never hoisted above the caller's griddepcontrol.wait.
    asm volatile(QK_PRED_LD_U32_PTX("cg") : "=r"(v) : "l"(addr), "r"(static_cast<uint32_t>(pred)) : "memory");
    return v;
}

/* qk_ld_nc_v4_if for 4 bytes (4-byte aligned address). */
__device__ __forceinline__ uint32_t qk_ld_nc_u32_if(bool pred, uint64_t addr) {
    uint32_t v;
    asm volatile(QK_PRED_LD_U32_PTX("nc") : "=r"(v) : "l"(addr), "r"(static_cast<uint32_t>(pred)));
    return v;
}

/* Loads the 16 bytes at global address `addr` through L2 only (`.cg`: the coherence
 * point, never a stale L1 line, for data other blocks wrote in this launch), or returns
 * zeros when `pred` is false (the address is then never dereferenced). The load is
 * predicated in the PTX ("@p ld"), not branched around: a branch per load puts each
 * load's consumer right behind it, and the loads then run one L2 round trip at a time
 * (measured on an H200: a split-K fix-up compiled that way made the GEMM 3.5-3.7x slower).
 * The "memory" clobber keeps the load after the caller's acquire fence in program order.
 * PTX ISA: "ld" (.cg), "Predicated Execution". 16-byte aligned address. */
__device__ __forceinline__ uint4 qk_ld_cg_v4_if(bool pred, uint64_t addr) {
    uint4 v;
    asm volatile(QK_PRED_LD_V4_PTX("cg", QK_ZERO_V4_PTX)
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(addr), "r"(static_cast<uint32_t>(pred))
        : "memory");
    return v;
}

/* Stores 16 bytes that no thread of this launch reads back. `.cs` (cache streaming)
 * marks the lines evict-first so a large output does not flush the L2 working set
 * of the next kernel. PTX ISA: "st" cache operators. 16-byte aligned address. */
__device__ __forceinline__ void qk_st_stream_v4(void* ptr, uint4 v) {
    asm volatile("st.global.cs.v4.u32 [%0], {%1, %2, %3, %4};"
                 :
                 : "l"(ptr), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
                 : "memory");
}

#endif /* QK_MEMORY_CUH */
