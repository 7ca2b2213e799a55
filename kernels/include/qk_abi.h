/*
 * qk_abi.h — the one source of truth for everything the CUDA kernels and the Rust
 * crate share: kernel argument structs, format descriptors and launch constants.
 *
 * Rust sees this header through bindgen (build.rs); the kernels include it directly.
 * Rules that keep the two sides identical:
 *   - only fixed-width integer fields, in declaration order, padded explicitly so that
 *     the C and Rust layouts need no compiler-specific packing;
 *   - device addresses are `qk_dptr` (a 64-bit integer), never C pointers, so the Rust
 *     side can build an argument struct from any backend's buffers (a real GPU's
 *     CUdeviceptr or the PTX simulator's addresses) without pointer casts;
 *   - every kernel takes exactly one argument: its `Qk...Args` struct, by value
 *     (PTX ISA "Kernel Function Parameters": a `.param .align 8 .b8 name[size]`).
 */
#ifndef QK_ABI_H
#define QK_ABI_H

#include <stdint.h>

/** A device address (CUdeviceptr on a GPU, a simulator address on the simulator). */
typedef uint64_t qk_dptr;

/* ------------------------------------------------------------------------------- */
/* Launch constants of the bandwidth-bound kernels                                 */
/* ------------------------------------------------------------------------------- */

/** Threads per block of the elementwise dequant kernels: 8 warps, enough to keep
 *  several 16-byte loads per SM in flight while leaving room for many resident blocks. */
#define QK_DEQUANT_BLOCK_THREADS 256

/** int8 elements per thread per step of `qk_dequant_int8`: one 16-byte load. */
#define QK_DEQUANT_INT8_ELEMS_PER_THREAD 16

/** int4 elements per thread per step of `qk_dequant_int4`: one 16-byte load = 32 nibbles. */
#define QK_DEQUANT_INT4_ELEMS_PER_THREAD 32

/** Threads per block of `qk_quantize_int8_per_token` (one block per row): 4 warps
 *  cover a 4096-wide row in 4 vector steps per thread; the cross-warp reduction stays
 *  one shared-memory round. */
#define QK_QUANTIZE_BLOCK_THREADS 128

/** f16 elements per thread per vector step of `qk_quantize_int8_per_token`: two
 *  16-byte loads of f16 produce exactly one 16-byte store of int8. */
#define QK_QUANTIZE_VEC_ELEMS 16

/** The largest magnitude of a symmetric int8 value; -128 is never produced, so that
 *  negation and the scale stay symmetric. */
#define QK_INT8_QMAX 127

/* ------------------------------------------------------------------------------- */
/* Format descriptors                                                              */
/* ------------------------------------------------------------------------------- */

/** Element type of a scale tensor. */
typedef enum QkScaleDtype {
    QK_SCALE_F32 = 0, /**< IEEE binary32 scales */
    QK_SCALE_F16 = 1, /**< IEEE binary16 scales */
} QkScaleDtype;

/* ------------------------------------------------------------------------------- */
/* Kernel argument structs                                                         */
/* ------------------------------------------------------------------------------- */

/** `qk_dequant_int8`: out[r, c] = f16(f32(q[r, c]) * f32(scale[r])), row-major. */
typedef struct QkDequantInt8Args {
    qk_dptr q;            /**< int8 [rows, cols], row-major, 16-byte aligned */
    qk_dptr scales;       /**< f32 or f16 [rows] (see scale_dtype) */
    qk_dptr out;          /**< f16 [rows, cols], row-major, 16-byte aligned */
    uint32_t rows;        /**< rows >= 1 (output channels N) */
    uint32_t cols;        /**< cols >= 1 (reduction dimension K) */
    uint32_t scale_dtype; /**< a QkScaleDtype */
    uint32_t pad0;        /**< explicit padding to a multiple of 8 bytes */
} QkDequantInt8Args;

/** `qk_dequant_int4`: out[r, c] = f16((q[r, c] - z[r, c/g]) * s[r, c/g]), row-major.
 *  Packed layout: byte j of row r holds column 2j in its low nibble and 2j+1 in its
 *  high nibble (unsigned stored values 0..15). Symmetric formats have zero 8. */
typedef struct QkDequantInt4Args {
    qk_dptr packed;       /**< u8 [rows, cols/2], 16-byte aligned */
    qk_dptr scales;       /**< f16 [rows, groups_per_row] */
    qk_dptr zeros;        /**< u8 [rows, groups_per_row] values 0..15, or 0 = symmetric (zero 8) */
    qk_dptr out;          /**< f16 [rows, cols], row-major, 16-byte aligned */
    uint32_t rows;        /**< rows >= 1 */
    uint32_t cols;        /**< cols >= 2, even */
    uint32_t group_size;  /**< elements per group along cols: 32, 64, 128 or cols */
    uint32_t pad0;        /**< explicit padding to a multiple of 8 bytes */
} QkDequantInt4Args;

/** `qk_quantize_int8_per_token`: per row of x, absmax -> scale = absmax / 127,
 *  q = clamp(rint(x * (127 / absmax)), -127, 127); a zero row gives scale 0, q 0. */
typedef struct QkQuantizeInt8Args {
    qk_dptr x;            /**< f16 [rows, cols], row-major, 16-byte aligned */
    qk_dptr q;            /**< int8 [rows, cols], row-major, 16-byte aligned */
    qk_dptr scales;       /**< f32 [rows] */
    uint32_t rows;        /**< rows >= 1 (tokens M) */
    uint32_t cols;        /**< cols >= 1 (K) */
} QkQuantizeInt8Args;


/* ------------------------------------------------------------------------------- */
/* gemm_w8a8: INT8 x INT8 tensor-core GEMM with fused scale epilogue               */
/* ------------------------------------------------------------------------------- */

/** Bytes (= int8 elements) of K per pipeline stage: one 128-byte shared-memory row per
 *  operand row, i.e. all 32 banks once, which the XOR swizzle needs (8 chunks of 16 B). */
#define QK_W8A8_BK 128
/** K must be a multiple of this: one 16-byte cp.async chunk, so a chunk is either fully
 *  inside K or fully outside (zero-filled) and rows stay 16-byte aligned. */
#define QK_W8A8_K_MULTIPLE 16
/** Largest K: |a*w| <= 128*128 = 2^14 per product, so 2^17 products stay below 2^31
 *  and the int32 accumulation cannot overflow. */
#define QK_W8A8_MAX_K 131072

/* Tile configurations (template arguments of the kernel instances in gemm_w8a8.cu).
 * small:  decode, M <= 16. One 16-row M tile: W is streamed exactly once; split-K
 *         spreads K across blocks so every SM streams at M = 1.
 * medium: M <= 64. 64 x 128 tiles, 4 warps of 32 x 64.
 * large:  M > 64, compute-bound. 128 x 128 tiles, 8 warps of 64 x 32.
 * Stages x (BM + BN) x 128 B of shared memory stays <= 96 KiB, under the 99 KiB
 * opt-in limit of sm_86/sm_89 (the smallest of our targets). */
#define QK_W8A8_SMALL_BM 16
#define QK_W8A8_SMALL_BN 64
#define QK_W8A8_SMALL_WARPS_M 1
#define QK_W8A8_SMALL_WARPS_N 4
#define QK_W8A8_SMALL_STAGES 4
#define QK_W8A8_MEDIUM_BM 64
#define QK_W8A8_MEDIUM_BN 128
#define QK_W8A8_MEDIUM_WARPS_M 2
#define QK_W8A8_MEDIUM_WARPS_N 2
#define QK_W8A8_MEDIUM_STAGES 4
#define QK_W8A8_LARGE_BM 128
#define QK_W8A8_LARGE_BN 128
#define QK_W8A8_LARGE_WARPS_M 2
#define QK_W8A8_LARGE_WARPS_N 4
#define QK_W8A8_LARGE_STAGES 3

/** `qk_gemm_w8a8_{small,medium,large}`:
 *  C[m, n] = f16(f32(sum_k A[m, k] * W[n, k]) * a_scale[m] * w_scale[n] (+ bias[n])).
 *  Grid: (ceil(N / BN), ceil(M / BM), splits); split z handles K tiles
 *  [z * k_tiles_per_split, (z + 1) * k_tiles_per_split). With splits > 1 every split
 *  stores its int32 partial tile in `workspace`; the last split to finish a tile (a
 *  counter in `tile_counters`) adds them (integer addition: order-independent, exact),
 *  runs the epilogue and resets the counter to 0 for the next launch. */
typedef struct QkGemmW8A8Args {
    qk_dptr a_q;               /**< int8 [M, K] row-major, 16-byte aligned */
    qk_dptr a_scale;           /**< f32 [M] */
    qk_dptr w_q;               /**< int8 [N, K] row-major ("TN": K contiguous), 16-byte aligned */
    qk_dptr w_scale;           /**< f32 [N] */
    qk_dptr bias;              /**< f16 [N], or 0 for none */
    qk_dptr c;                 /**< f16 [M, N] row-major, 16-byte aligned */
    qk_dptr workspace;         /**< int32 [tiles * splits * BM * BN] when splits > 1, else 0 */
    qk_dptr tile_counters;     /**< u32 [tiles], all 0 before the launch (and after it) */
    uint32_t m;                /**< M >= 1 */
    uint32_t n;                /**< N >= 1 */
    uint32_t k;                /**< K: multiple of 16, 16..=131072 */
    uint32_t k_tiles_per_split;/**< BK-tiles per split (grid z) */
} QkGemmW8A8Args;

#endif /* QK_ABI_H */
