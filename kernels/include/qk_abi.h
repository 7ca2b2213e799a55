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

/** Threads per warp (the SIMT width of every supported GPU): block sizes below are
 *  counted in warps. */
#define QK_WARP_THREADS 32

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
    qk_dptr tile_counters;     /**< u32 [tiles], all 0 before the launch (and after it), when splits > 1, else 0 */
    uint32_t m;                /**< M >= 1 */
    uint32_t n;                /**< N >= 1 */
    uint32_t k;                /**< K: multiple of 16, 16..=131072 */
    uint32_t k_tiles_per_split;/**< BK-tiles per split (grid z) */
} QkGemmW8A8Args;

/* ------------------------------------------------------------------------------- */
/* gemm_w4a16 / gemm_w8a16: weight-only quantized GEMM, f16 activations             */
/* ------------------------------------------------------------------------------- */

/* Kernel weight layout ("packed", produced offline by src/formats/weight_only.rs)
 * ===========================================================================
 * Logical weights W[n, k] (N output channels x K) are cut into units of 64 columns
 * (QK_WO_N_BLOCK) x 16 K (QK_WO_K_STEP, one mma.m16n8k16 k-step). A unit is what one
 * warp consumes per k-step: its 8 n8-tiles. Units are stored n-block-major, so each
 * 64-column strip of W is one contiguous stream along K:
 *
 *     unit(nb, ks) at byte offset (nb * K/16 + ks) * UNIT_BYTES   (nb = n / 64, ks = k / 16)
 *     UNIT_BYTES = 512 (4-bit) or 1024 (8-bit)
 *
 * Inside a unit, lane l = 4 * g + t (g = l / 4, t = l % 4; mma fragment notation) owns
 * 16 bytes (4-bit: one chunk at l * 16; 8-bit: two chunks at h * 512 + l * 16, h = 0, 1)
 * holding exactly its B fragments: column g of each n8-tile, K rows 2t, 2t+1 (b0) and
 * 2t+8, 2t+9 (b1) of the k-step (PTX ISA "Matrix Fragments for mma.m16n8k16").
 * A logical element (c = n % 64, kk = k % 16) lives at
 *     nt = c / 8 (n8-tile), g = c % 8, r = kk / 8 (b0/b1), t = (kk % 8) / 2, hi = kk % 2
 *   4-bit: 32-bit word j = nt / 2 of the lane's chunk, nibble (2 * (nt % 2) + r) + 4 * hi.
 *          So `(word >> 4p) & 0x000f000f` holds the (k, k+1) pair of one b register in
 *          bits 0-3 and 16-19: one lop3 with 0x64006400 makes the half2 directly.
 *   8-bit: chunk h = nt / 4, word j = nt % 4, byte 2r + hi, stored biased: u = q + 128.
 *          `prmt` with 0x64 bytes makes the half2 (1024 + u_k, 1024 + u_k+1).
 * Scales: f16 [K/g, N]; inside each 64-column block, position 8 * g + nt holds column
 *   8 * nt + g, so a lane's 8 scales (one per n8-tile) are one 16-byte load.
 * Zero points (4-bit asymmetric only): u32 [K/g, N/8]; word 8 * nb + g of a group row
 *   holds in nibble nt the zero point of column 64 * nb + 8 * nt + g.
 * Symmetric 4-bit weights have the implicit zero point 8; 8-bit weights are symmetric.
 *
 * Requirements (validated by the host, each for a layout reason):
 *   N % 64 == 0  -- a unit spans 64 columns (a warp's 8 n8-tiles share one 16-byte load);
 *   K % 16 == 0  -- a unit spans one k16 mma step;
 *   group g in {32, 64, 128} or g = K (per-channel), K % g == 0; g >= 32 keeps at most
 *                   two groups per 64-wide K stage (QK_WO_MAX_GROUPS_PER_STAGE).
 * Act-order GPTQ (g_idx) is stored with K permuted so that groups are contiguous; the
 * permutation travels with the weights and A's columns are permuted on the device
 * (qk_permute_cols_f16) before the GEMM. */

/** f16 elements of K per pipeline stage: one 128-byte swizzled shared-memory row of A. */
#define QK_WO_BK 64
/** K of one mma.m16n8k16 step: the K granule of the weight layout (K must be a multiple). */
#define QK_WO_K_STEP 16
/** Columns of one weight unit: a warp's 8 n8-tiles (N must be a multiple). */
#define QK_WO_N_BLOCK 64
/** Smallest supported group: 32. A 64-wide stage then spans at most 2 groups. */
#define QK_WO_MIN_GROUP 32
#define QK_WO_MAX_GROUPS_PER_STAGE 2

/* Tile configurations. Every warp owns 64 columns (one weight unit per k-step), so
 * BN = WARPS_N * 64. Shared memory per stage: BM * 128 (A) + BN/64 * 4 * UNIT_BYTES (W)
 * + 2 * BN * 2 (scales) + BN (zeros, two slots); stages * that stays <= 96 KiB, under
 * the 99 KiB opt-in limit of sm_86/sm_89 (QK_WO_*_SMEM_BYTES below: 4-bit 53 to 82.5 KiB,
 * 8-bit with the *_W8 stage counts 73.9 to 85 KiB).
 * gemv:   M <= 8 (decode). One 16-row M tile: W is streamed exactly once; 6 stages keep
 *         enough weight bytes in flight per SM; split-K spreads K over all SMs. Measured
 *         on an H200: 8 warps, two per strip each taking half of every stage's k-steps
 *         (twice the warps per scheduler, partial sums added in shared memory), made
 *         decode 13-19% slower than these 4, so more warps are not what it lacks.
 * small:  M <= 32. One 32-row M tile (warp tile 32 x 64), split-K.
 * medium: M <= 64. Warp tile 64 x 64.
 * large:  M > 64, compute-bound. 128 x 128 tiles, warp tile 64 x 64: 32 mma per
 *         k-step per warp against 16 dequantized B registers. */
/** Largest M the decode (gemv) configuration is chosen for. */
#define QK_WO_GEMV_MAX_M 8
#define QK_WO_GEMV_BM 16
#define QK_WO_GEMV_WARPS_M 1
#define QK_WO_GEMV_WARPS_N 4
#define QK_WO_GEMV_STAGES 6
/* gemv_swap_ab: gemv's strips, stages and split-K with the operands swapped: the
 * dequantized weights are the mma's A operand (16 columns of C per m16 tile) and the
 * tile's 8 rows of A its n8, so no mma multiplies the 8 padding rows of a 16-row tile:
 * 4 mma per k-step instead of 8, an ldmatrix.x4 per two k-steps, half the A copies and
 * accumulators. Not yet timed on a GPU: chosen only explicitly. */
#define QK_WO_GEMV_SWAP_AB_BM 8
#define QK_WO_GEMV_SWAP_AB_WARPS_M 1
#define QK_WO_GEMV_SWAP_AB_WARPS_N 4
/* gemv_direct: gemv_swap_ab's mma arrangement with no shared memory in the main loop:
 * each warp streams its 64-column strip's weights from global memory straight into
 * registers (a ring of QK_WO_GEMV_DIRECT_PREFETCH_STEPS k-steps in flight per warp, 4 KiB
 * at either width), loads its A fragments and group constants itself, and passes no
 * block barrier until the split-K fix-up. No cp.async, no ld.shared, no __syncthreads
 * per stage; occupancy is bounded by registers alone. Not yet timed on a GPU: chosen
 * only explicitly. */
#define QK_WO_GEMV_DIRECT_BM 8
#define QK_WO_GEMV_DIRECT_WARPS_M 1
#define QK_WO_GEMV_DIRECT_WARPS_N 4
#define QK_WO_GEMV_DIRECT_PREFETCH_STEPS 8
#define QK_WO_GEMV_DIRECT_PREFETCH_STEPS_W8 4
#define QK_WO_SMALL_BM 32
#define QK_WO_SMALL_WARPS_M 1
#define QK_WO_SMALL_WARPS_N 4
#define QK_WO_SMALL_STAGES 4
#define QK_WO_MEDIUM_BM 64
#define QK_WO_MEDIUM_WARPS_M 1
#define QK_WO_MEDIUM_WARPS_N 4
#define QK_WO_MEDIUM_STAGES 4
#define QK_WO_LARGE_BM 128
#define QK_WO_LARGE_WARPS_M 2
#define QK_WO_LARGE_WARPS_N 2
#define QK_WO_LARGE_STAGES 4
/* 8-bit weights double the W bytes of a stage; these stage counts keep them <= 96 KiB. */
#define QK_WO_GEMV_STAGES_W8 4
#define QK_WO_SMALL_STAGES_W8 4
#define QK_WO_MEDIUM_STAGES_W8 3
#define QK_WO_LARGE_STAGES_W8 3
/* large_wgmma (gemm_w4a16_sm90a.cu, sm_90a only): M > 64 on Hopper, split-K as the
 * others when the tiles are few. wgmma.m64n128k16 with the dequantized weights as its
 * A operand (from registers) and a 128-row tile of the activations as B (shared memory): 8 warps =
 * 2 warpgroups, two warps per 64-column strip (WARPS_M = 2: each dequantizes one half),
 * so BN = 4 * 64 = 256 and 128 f32 accumulators per thread. Stages start on 1024-byte
 * boundaries (QK_WO_WGMMA_STAGE_ALIGN: the 128-byte swizzle's pattern repeats every
 * 8 rows x 128 B) and the block asks for one extra alignment unit to align its base.
 * 5 stages of 26 KiB (4-bit) or 34 KiB (8-bit): 131 or 171 KiB, within sm_90's 227 KiB. */
#define QK_WO_WGMMA_BM 128
#define QK_WO_WGMMA_WARPS_M 2
#define QK_WO_WGMMA_WARPS_N 4
#define QK_WO_WGMMA_STAGES 5
#define QK_WO_WGMMA_STAGES_W8 5
#define QK_WO_WGMMA_STAGE_ALIGN 1024
/* large_wgmma_tma (same file, sm_90a): the large_wgmma tile fed by Hopper's copy engine
 * instead of cp.async. A third warpgroup produces: one thread issues each stage's copies
 * (A as one TMA box of 64 K x 128 rows, each 64-column weight strip and each group row as
 * one bulk copy, all contiguous in global memory), completing on the stage's "full"
 * mbarrier; the two consumer warpgroups wait on it, compute, and release the stage on
 * its "empty" mbarrier. The consumers issue no copy, compute no copy address and pass no
 * __syncthreads in the main loop. setmaxnreg hands the producer's registers to the
 * consumers (QK_WO_WGMMA_TMA_*_REGS: 2 x 232 + 40 = 3 x 168, the register file split
 * three ways at launch). Needs N % 256 == 0 and K % 64 == 0 (a bulk copy cannot
 * zero-fill a partial strip or stage); rows of A past M arrive as zeros. Stages and
 * dynamic shared memory as large_wgmma's. large_wgmma_n256_tma: the same feed for the
 * large_wgmma_n256 tile below (A's box 64 K x 256 rows; N % 128 == 0). */
#define QK_WO_WGMMA_TMA_PRODUCER_WARPS 4
#define QK_WO_WGMMA_TMA_PRODUCER_REGS 40
#define QK_WO_WGMMA_TMA_CONSUMER_REGS 232
/* large_wgmma_n256 (same file, sm_90a; explicit only until timed): 256 rows of A x 128
 * columns of W per block, one wgmma.m64n256k16 per warpgroup and k-step. Four warps
 * share each 64-column strip (WARPS_M = 4: each dequantizes one 16-column quarter, the
 * A fragment of its 16 rows of the wgmma), two strips (WARPS_N = 2), so 8 warps = 2
 * warpgroups and 128 f32 accumulators per thread as large_wgmma. Every dequantized
 * weight feeds 256 rows of A instead of 128: half the dequantization per multiply-add,
 * for L2->SM bytes per multiply-add of 2/BN + (bits/8)/BM = 0.0176 (4-bit) instead of
 * large_wgmma's 0.0117. 5 stages of 37 KiB (4-bit) or 41 KiB (8-bit) and one alignment
 * unit: 186 or 206 KiB. */
#define QK_WO_WGMMA_N256_BM 256
#define QK_WO_WGMMA_N256_WARPS_M 4
#define QK_WO_WGMMA_N256_WARPS_N 2
#define QK_WO_WGMMA_N256_STAGES 5
#define QK_WO_WGMMA_N256_STAGES_W8 5
/** Dynamic shared memory per block of each weight-only configuration, bytes: STAGES x
 *  [A: BM rows x 128 B | W: BN / 64 strips x 4 units of 64 x 16 weights | 2 scale slots of
 *  BN f16 | 2 zero slots of BN nibbles]; large_wgmma rounds each stage up to
 *  QK_WO_WGMMA_STAGE_ALIGN and adds one alignment unit for its base. The host launches
 *  with these; each kernel static_asserts its tile layout against them (a change to a
 *  configuration above fails the build until these agree). */
#define QK_WO_GEMV_SMEM_BYTES 69120
#define QK_WO_GEMV_SMEM_BYTES_W8 78848
#define QK_WO_GEMV_SWAP_AB_SMEM_BYTES 62976
#define QK_WO_GEMV_SWAP_AB_SMEM_BYTES_W8 74752
#define QK_WO_SMALL_SMEM_BYTES 54272
#define QK_WO_SMALL_SMEM_BYTES_W8 87040
#define QK_WO_MEDIUM_SMEM_BYTES 70656
#define QK_WO_MEDIUM_SMEM_BYTES_W8 77568
#define QK_WO_LARGE_SMEM_BYTES 84480
#define QK_WO_LARGE_SMEM_BYTES_W8 75648
#define QK_WO_WGMMA_SMEM_BYTES 134144
#define QK_WO_WGMMA_SMEM_BYTES_W8 175104
#define QK_WO_WGMMA_N256_SMEM_BYTES 190464
#define QK_WO_WGMMA_N256_SMEM_BYTES_W8 210944

/** `qk_gemm_w4a16_*` and `qk_gemm_w8a16_*`:
 *  C[m, n] = f16( f32( sum_k A[m, k] * w[n, k] ) (+ bias[n]) ),
 *  w[n, k] = f16((q[n, k] - z[grp(k), n]) * s[grp(k), n]) dequantized in registers.
 *  Grid: (ceil(N / BN), ceil(M / BM), splits); split z covers BK-tiles
 *  [z * k_tiles_per_split, (z + 1) * k_tiles_per_split). With splits > 1 each split
 *  writes its f32 partial tile to `workspace`; the last to finish a tile sums all
 *  partials in split order 0..splits-1 (deterministic), runs the epilogue and resets
 *  the tile's counter to 0. */
typedef struct QkGemmWeightOnlyArgs {
    qk_dptr a;                 /**< f16 [M, K] row-major (K permuted for act-order), 16-byte aligned */
    qk_dptr w;                 /**< packed weights (layout above), 16-byte aligned */
    qk_dptr scales;            /**< f16 [K/g, N], shuffled per 64-column block */
    qk_dptr zeros;             /**< u32 [K/g, N/8] 4-bit zero points, or 0 = symmetric */
    qk_dptr bias;              /**< f16 [N], or 0 for none */
    qk_dptr c;                 /**< f16 [M, N] row-major, 16-byte aligned */
    qk_dptr workspace;         /**< f32 [tiles * splits * BM * BN] when splits > 1, else 0 */
    qk_dptr tile_counters;     /**< u32 [tiles], all 0 before the launch (and after it), when splits > 1, else 0 */
    uint32_t m;                /**< M >= 1 */
    uint32_t n;                /**< N: multiple of 64 */
    uint32_t k;                /**< K: multiple of 16 and of group_size */
    uint32_t group_size;       /**< K elements per group: 32, 64, 128 or K */
    uint32_t k_tiles_per_split;/**< BK-tiles per split (grid z) */
    uint32_t launch_flags;     /**< QK_LAUNCH_* bits: how the host launched the kernel */
} QkGemmWeightOnlyArgs;

/** `QkGemmWeightOnlyArgs::launch_flags`: launched with programmatic dependent launch, so
 *  the blocks may start before the previous kernel ends and prefetch their first weights
 *  into L2 while they wait for it (qk_grid_dependency.cuh). Unset, the kernels still
 *  execute griddepcontrol.wait (it returns at once) but prefetch nothing. */
#define QK_LAUNCH_PROGRAMMATIC 1u

/** Columns of A gathered per thread by `qk_permute_cols_f16`: one 16-byte store. */
#define QK_PERMUTE_VEC 8
/** Threads per block of `qk_permute_cols_f16`. */
#define QK_PERMUTE_BLOCK_THREADS 256

/** An encoded tensor map, opaque: on a GPU what cuTensorMapEncodeTiled writes, on the
 *  simulator ptxsim::TensorMap's encoding (PTX ISA 9.7.9.25.5.1: 128 bytes; the hardware
 *  needs 64-byte alignment, CUDA 13's CUtensorMap declares 128). */
typedef struct QkTensorMap {
    uint8_t bytes[128];
} __attribute__((aligned(128))) QkTensorMap;

/** `qk_gemm_w{4,8}a16_large_wgmma{,_n256}_tma`: the weight-only GEMM arguments and the tensor
 *  map of A (f16 [M, K] row-major: dimensions {K, M}, box {QK_WO_BK, a_box_rows},
 *  128-byte swizzle), passed by value as a __grid_constant__ parameter so the copy
 *  engine reads the map from the parameter space (no upload per launch). */
/** Explicit padding of QkGemmWeightOnlyTmaArgs: 88 bytes of base + 4 of a_box_rows + this
 *  = 128, the tensor map's alignment (no implicit padding: Rust asserts the layout). */
#define QK_WO_TMA_ARGS_PAD_BYTES 36
typedef struct QkGemmWeightOnlyTmaArgs {
    QkGemmWeightOnlyArgs base; /**< as for the other configurations (A is read through a_map) */
    uint32_t a_box_rows;       /**< rows of A's box: min(M, the configuration's BM) (a box no taller than A) */
    uint8_t pad[QK_WO_TMA_ARGS_PAD_BYTES]; /**< explicit padding: a_map starts at byte 128 */
    QkTensorMap a_map;         /**< A's tensor map */
} QkGemmWeightOnlyTmaArgs;

/** `qk_permute_cols_f16`: dst[r, j] = src[r, perm[j]] (act-order: A's K into the
 *  weights' permuted K order). Grid-stride over rows x cols / QK_PERMUTE_VEC. */
typedef struct QkPermuteColsArgs {
    qk_dptr src;               /**< f16 [rows, cols] row-major */
    qk_dptr dst;               /**< f16 [rows, cols] row-major, 16-byte aligned */
    qk_dptr perm;              /**< u32 [cols], a permutation of 0..cols */
    uint32_t rows;             /**< rows >= 1 */
    uint32_t cols;             /**< cols: multiple of QK_PERMUTE_VEC */
} QkPermuteColsArgs;

#endif /* QK_ABI_H */
