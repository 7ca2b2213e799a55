/*
 * gemm_w4a16.cu — weight-only quantized GEMM: f16 activations x 4-bit (W4A16) or 8-bit
 * (W8A16) weights, dequantized in registers, f32 accumulation on tensor cores.
 *
 *   C[m, n] = f16( f32( sum_k A[m, k] * w[n, k] ) (+ bias[n]) )
 *   w[n, k] = f16( (q[n, k] - z[grp(k), n]) * s[grp(k), n] )
 *
 *   A  f16 [M, K] row-major (act-order: columns already permuted, see permute.cu)
 *   W  q in the packed kernel layout of qk_abi.h ("gemm_w4a16 / gemm_w8a16")
 *   C  f16 [M, N] row-major
 *
 * One template, gemm_weight_only<BITS, ...>, instantiated per configuration and weight
 * width by the macros at the bottom; nothing else differs between W4A16 and W8A16.
 *
 * Weight layout
 * -------------
 * An offline repack (src/formats/weight_only.rs) cuts W into units of 64 columns x 16 K:
 * exactly the B operands one warp needs for one mma.m16n8k16 k-step over its 8 n8-tiles.
 * Lane l = 4g + t of the warp reads its 16 bytes of a unit (4-bit: one chunk; 8-bit:
 * two), and those bytes hold column g of every n8-tile at K rows 2t, 2t+1 (b0) and
 * 2t+8, 2t+9 (b1) (PTX ISA "Matrix Fragments for mma.m16n8k16"), ordered so that each
 * b register comes out of one or two ALU instructions. Units are stored n-block-major:
 * a 64-column strip of W is one contiguous stream, copied by cp.async into shared memory
 * stage by stage (4 units = 64 K per stage) and read back by each lane as one
 * ld.shared.v4 at lane * 16 (consecutive lanes, consecutive 16 B: conflict-free). No
 * shared-memory round trip for the conversion itself.
 *
 * Dequantization
 * --------------
 * 4-bit. Word j of the lane's chunk holds n8-tiles 2j and 2j+1; nibble p (p = 0..3)
 * holds the lower K element of b register p % 2 of tile 2j + p / 2, nibble p + 4 the
 * upper one. Even nibbles (p = 0, 2):
 *     lop3.b32 d, w, 0x000f000f, 0x64006400, (0xF0 & 0xCC) | 0xAA
 * computes d = (w & 0x000f000f) | 0x64006400 in one instruction (PTX ISA "lop3": the
 * immLut is the truth table of the function evaluated on the canonical operands
 * a = 0xF0, b = 0xCC, c = 0xAA). Each 16-bit half is then 0x6400 | q: f16 0x6400 is
 * 1024.0 with a zero mantissa and the ulp at 1024 is exactly 1, so OR-ing q < 16 into
 * the mantissa gives the f16 value 1024 + q exactly. The zero point is kept as the f16
 * 1024 + z (built the same way), so sub.f16x2 gives q - z, an integer in [-15, 15],
 * exactly (both operands lie in [1024, 1040), their difference is representable).
 * Odd nibbles (p = 1, 3) use the mask 0x00f000f0 instead: the nibble lands on mantissa
 * bits 4-7, giving 1024 + 16 q exactly (16 q <= 240 stays inside the mantissa), and one
 * fma.rn.f16x2 d, x, 1/16, -(64 + z) yields q - z exactly: scaling by 1/16 is exact (a
 * power of two), so the fma's single rounding acts on the integer q - z, which is
 * representable. So w serves p = 0, 1 and w >> 8 serves p = 2, 3: one shift per four
 * b registers instead of three (Marlin's arrangement). One mul.f16x2 by the scale
 * then rounds once; the weight equals the host reference f16((q - z) * s) bit for bit.
 * 8-bit. Word j of chunk h holds tile 4h + j; bytes 0, 1 are b0's pair, bytes 2, 3 b1's.
 * Stored biased (u = q + 128). prmt.b32 d, word, 0x64646464, 0x4140 (PTX ISA "prmt",
 * default mode: each selector nibble picks a byte of the 8-byte {b, a}) builds
 * {u0, 0x64, u1, 0x64} = half2(1024 + u0, 1024 + u1), exact since u < 256 fits the
 * mantissa at ulp 1; subtracting 1152 = 1024 + 128 gives q exactly, and the scale
 * multiply rounds once.
 * Scales (and zero points) of a group are refreshed when a k-step starts a new group:
 * a lane's 8 scales are one 16-byte shared load (the layout shuffles them per 64-column
 * block), its 8 zero points one 32-bit load; prmt replicates each into both halves.
 *
 * Tiling and partitioning
 * -----------------------
 * A block computes a BM x BN tile of C over a range of K; warps are WARPS_M x WARPS_N,
 * each owns (BM / WARPS_M) rows x 64 columns (BN = WARPS_N * 64):
 *
 *     config        BM x BN    warps  warp tile  stages (4b/8b)  for
 *     gemv          16 x 256   1 x 4  16 x 64    6 / 4           M <= 8 (decode)
 *     gemv_swap_ab   8 x 256   1 x 4   8 x 64    6 / 4           M <= 8, explicit only
 *     gemv_direct    8 x 256   1 x 4   8 x 64    (registers)     M <= 8, explicit only
 *     small         32 x 256   1 x 4  32 x 64    4 / 4           M <= 32
 *     medium        64 x 256   1 x 4  64 x 64    4 / 3           M <= 64
 *     large        128 x 128   2 x 2  64 x 64    4 / 3           M > 64 (compute-bound)
 *
 * gemv_swap_ab (gemm_weight_only_swap_ab) is gemv with the mma operands swapped: the
 * dequantized weights are the A operand, 8 rows of A the n8, and the accumulators the
 * transposed tile. gemv multiplies a 16-row A tile of which at most 8 rows are real;
 * here no mma is spent on padding: 4 mma and half an ldmatrix per k-step instead of 8
 * and one, half the A copies and accumulators (112 -> 78 registers at 4 bits on
 * sm_90a), 0.156 instead of 0.168 instructions per 4-bit byte. Whether that is faster
 * on a GPU is not yet measured, so the host takes it only when asked.
 *
 * gemv_direct (gemm_weight_only_direct) keeps gemv_swap_ab's mma arrangement and drops
 * the shared-memory pipeline: the packed layout already gives each lane its own
 * fragments, so each lane loads its weights (a ring of 8 k-steps, 4 KiB per warp in
 * flight), A fragments and group constants from global memory into registers, and the
 * warps run without a block barrier until the split-K fix-up: no cp.async, no
 * ld.shared, no wait or __syncthreads per stage, no dynamic shared memory (occupancy is
 * bounded by registers: 127 at 4 bits on sm_90a, 4 blocks per SM against gemv's 3).
 * Also untimed, explicit only. The PTX count (0.181 per 4-bit byte) overstates it: each
 * predicated load is three PTX instructions that ptxas folds into one predicated LDG.
 *
 * On Hopper (compute capability 9.0) M > 64 goes to gemm_w4a16_sm90a.cu instead (128 x 256
 * tiles, split-K as here; large_wgmma_tma and large_wgmma_n256 there are explicit-only
 * variants): the same stages, copies and dequantization (qk_weight_only.cuh), fed to
 * wgmma.
 * At small M the GEMM is a weight stream: with a single M tile every weight byte is
 * loaded by exactly one block, and the host splits K (grid z) so that tiles x splits
 * spreads evenly over the SMs, about two blocks each (balanced_splits in
 * src/ops/split_k.rs), so at M = 1 all SMs stream:
 *
 *        N tiles ->                  K ->  split 0 | split 1 | split 2
 *     +----+----+----+--          W strip [========|========|========]
 *     | b0 | b1 | b2 | ..         each split is its own block; the last one to finish
 *     +----+----+----+--          a tile sums the f32 partials in split order.
 *
 * The fix-up (qk_gemm.cuh) sums all splits' partials from the workspace in split order
 * 0..S-1, so the result is deterministic whatever order the splits finish in. Only
 * fragments holding rows < M are stored and summed: at M = 1 a 16-row tile's partial
 * traffic (write, then the last split's read of every split) shrinks 8x.
 *
 * Pipeline and shared memory: qk_pipeline.cuh's cp.async main loop; per stage
 *   A      BM rows x 128 B (64 f16 of K), 128-byte XOR swizzle: ldmatrix.x4 phases and
 *          cp.async quarter-warps touch all 32 banks once (conflict-free);
 *   W      BN/64 strips x 4 units, copied and read in 16-byte lane order;
 *   scales 2 group slots x BN f16 (a 64-wide stage spans at most two groups of >= 32);
 *   zeros  2 group slots x BN nibbles (asymmetric 4-bit only).
 * A group's scale row is copied only by the stage where the group starts (or the first
 * stage of a split), so scales and zeros are read from global memory once per split.
 * Out-of-range rows of A and columns/K of W are zero-filled by cp.async's src-size;
 * k-steps past K run on those zeros (adding exact zeros) rather than branching.
 * At decode the tensor cores are nearly idle and few warps are resident, so the
 * instructions issued per weight byte bound how fast the SMs drain their pipelines:
 * an H100 SM must take 12.8 B per clock to stream at full HBM3 bandwidth, and the first
 * version of this kernel executed 0.30 warp instructions per 4-bit weight byte (3.8 per
 * SM clock of the 4 an SM can issue at best) and streamed at a third of copy
 * bandwidth, as an issue-bound kernel would. Hence: the copies of a stage are planned
 * once per block (QkTileCopy, WeightStreamCopy, GroupRowCopy: per chunk a compare and
 * the cp.async from one running address per thread and tensor, the weight passes at
 * constant offsets from it, no loop remainders; a thread's group-row chunk is skipped
 * by a branch in the stages that start no group), group boundaries are masks, not
 * remainders (Groups), the 4-bit dequantization shares one shift among four b
 * registers, the lane's shared-memory offsets and the symmetric zero points are set
 * once, not per group (LaneOffsets, GroupConsts::with_symmetric_zeros),
 * and no branch separates the k-steps of a stage (the next k-step's shared loads issue
 * early): 0.168 instructions per 4-bit byte, 0.084 per 8-bit byte (was 0.16), counted
 * by the simulator and held as budgets by tests/gemm_w4a16.rs and tests/gemm_w8a16.rs.
 * The SASS of a 4-bit stage has 4 x 62 instructions of k-step work (16 lop3, 4 shifts,
 * 8 sub, 8 fma, 16 mul, 8 mma, 2 shared loads); the group-row copies alone had been ~45
 * more per slot and warp, paid by every warp because predicated, and with a strip per
 * pass and a group slot per loop trip a stage's copies still took ~60 instructions per
 * warp, predicated, where they now take ~25, and the warps holding a group-row chunk
 * ~15 more at a group start (symmetric groups of 64 or more: warp 0 alone)
 * (scripts/sass-loops.py, sm_90a main loop 416 -> 395 static instructions; 8-bit
 * 365 -> 329; not yet timed). Timed on an H200: 1.4-1.8x faster at M = 1 than the
 * loop version (docs/results/h200-2026-11-26), and the group-row plan and fixed offsets
 * another 2-8% at decode
 * (docs/results/h200-2026-11-26b/ab-overhead-cut.txt), at a cost: the sm_90a W8A16
 * kernel got 4-5% slower at M >= 256, a sum of small scheduling changes that no single
 * one of them undoes (ab-planner-and-wgmma-bisect.txt there). The
 * "1.8x slower at 4096 x 4096 with 16 splits" that an earlier fixed-trip rewrite and
 * the first build of this one showed was the split-K fix-up, not the copies: compiled
 * with a branch around each of its loads, it waited for them one at a time
 * (qk_split_k_reduce_if now predicates them). The lane's ldmatrix offsets are computed
 * once and hidden from the compiler (gemm_weight_only), which otherwise rebuilt them
 * from %tid.x every stage.
 *
 * Programmatic dependent launch (qk_grid_dependency.cuh; opt-in on the host,
 * LaunchOrder::Programmatic, compute capability 9.0 with this sm_90a code): the splits
 * sweep's fit puts ~4.4 us of every decode launch outside the weight stream (launch,
 * first DRAM round trip, tail): twice the 2.1 us that an 8B o-projection's 8.4 MB of
 * 4-bit weights take at 4 TB/s (H200, docs/results/h200-2026-11-26b/splits-sweep.md).
 * Launched programmatically, a block may start while the previous kernel still runs: it
 * asks L2 for its prologue's weights (one cp.async.bulk.prefetch.L2 per strip: the
 * strip's first STAGES - 1 K tiles are one contiguous range of the packed layout), then
 * waits (griddepcontrol.wait) before anything the previous kernel may write or read: A's
 * copies, and after the loop the split-K workspace, the tile counters and C. A block that
 * has finished its loop lets the next kernel launch (griddepcontrol.launch_dependents),
 * late enough that the next kernel's prefetches are not evicted by this one's stream.
 * Launched normally (no QK_LAUNCH_PROGRAMMATIC in launch_flags), nothing is prefetched
 * and the wait returns at once: the timed stream-order kernels gained the wait and the
 * flag test.
 * gemv_direct waits before its first load (its ring's loads include A's, through L2:
 * A is written by the previous kernel during this one's lifetime, which the read-only
 * path does not allow) and triggers when its first warp is done: a block's first
 * launch_dependents counts for the block, and its warps run independently.
 *
 * Epilogue: acc (+ bias) rounded once to f16, staged in shared memory and written as
 * 16-byte row segments (qk_gemm.cuh).
 */
#include "qk_weight_only.cuh"

#include <cuda_fp16.h>
#include <stdint.h>

namespace {

using namespace qk_wo;

/* acc[mt][nt] += A_tile(mt) * dequant(W_tile(nt)) over the 64 K of one stage. */
template <class T, int BITS>
__device__ __forceinline__ void compute_stage(const QkGemmWeightOnlyArgs& args, const Groups& groups,
                                              float (&acc)[T::kMTiles][kNTiles][4], GroupConsts<kNTiles>& gc,
                                              const uint32_t (&a_offset)[kKSteps],
                                              const LaneOffsets<T, kNTiles>& offsets, uint32_t stage_addr, uint32_t kt,
                                              bool first_tile) {
    const uint32_t k0 = kt * kBk;
    // One remainder per stage, not per k-step: a stage starts at a multiple of 64, so
    // with groups >= 32 (or per-channel, where only k = 0 starts a group) a later k-step
    // k0 + 16 ks starts a group only for groups of 32 at ks = 2.
    const bool stage_starts_group = groups.starts(k0, first_tile);
    // No bounds check between k-steps: past K (the last stage when K % 64 != 0) A, W and
    // the scales are zero-filled, so those k-steps add exact zeros (0 * finite). A
    // branch there would keep the compiler from issuing a k-step's shared loads before
    // the previous k-step's dequantization and mma, exposing their latency every k-step.
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
        if (groups.step_starts(ks, stage_starts_group)) {
            load_group<T, BITS, kNTiles>(gc, stage_addr, groups.slot(ks), offsets, args.zeros != 0);
        }
        uint32_t a_frag[T::kMTiles][4];
#pragma unroll
        for (int mt = 0; mt < T::kMTiles; ++mt) {
            // m16 tile mt is 16 rows further: row % 8, and so the swizzle, is unchanged.
            qk_ldmatrix_x4(a_frag[mt], stage_addr + a_offset[ks] + mt * kMmaM * QK_SWIZZLE_ROW_BYTES);
        }
        uint32_t b[kNTiles][2];
        dequant_step<BITS, kNTiles>(b, stage_addr + offsets.unit + ks * T::kUnitBytes, 0, gc);
#pragma unroll
        for (int mt = 0; mt < T::kMTiles; ++mt) {
#pragma unroll
            for (int nt = 0; nt < kNTiles; ++nt) {
                qk_mma_f16_16816(acc[mt][nt], a_frag[mt], b[nt][0], b[nt][1]);
            }
        }
    }
}

/* m16 tiles of a warp's 64-column strip when the weights are the mma's A operand. */
constexpr int kStripM16Tiles = kNBlock / kMmaM;
/* k-steps whose activation fragments one ldmatrix.x4 loads in gemv_swap_ab. */
constexpr int kKStepsPerLdmatrix = 2;

/* The epilogue of the kernels whose accumulators are the transposed tile (weights as the
 * mma's A operand, 8 rows of A as its n8: gemv_swap_ab, gemv_direct): the split-K
 * fix-up, then bias in f32, one rounding to f16, C staged transposed in `c_tile`
 * ([8][C_STRIDE] halves of shared memory nothing else uses any more), and 16-byte row
 * stores. Splits that do not finish their tile return without storing. */
template <int BN, int THREADS, int C_STRIDE>
__device__ __forceinline__ void transposed_epilogue(const QkGemmWeightOnlyArgs& args,
                                                    float (&acc)[kStripM16Tiles][1][4], const QkGemmBlock& blk,
                                                    __half* c_tile) {
    // acc[i][0][e] is C row m0 + 2t + e % 2, column 16i + g + 8 (e / 2) of the strip: a
    // lane holds rows of C iff its first, 2t, lies inside.
    const int g = blk.lane / 4;
    const int t = blk.lane % 4;
    if (gridDim.z > 1 && !qk_split_k_reduce_if<float, kStripM16Tiles, 1, THREADS>(
                             acc, args.workspace, args.tile_counters,
                             [&](int, int) { return blk.m0 + 2 * t < args.m; })) {
        return;
    }

    // A warp's staging stores hit rows 2t (+ 1) and 8 consecutive columns: with the
    // 16-byte row padding rows 2 apart lie 8 banks apart, so distinct words.
    const __half* bias = reinterpret_cast<const __half*>(args.bias);  // [N] or null
#pragma unroll
    for (int i = 0; i < kStripM16Tiles; ++i) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const uint32_t col = blk.warp_n * kNBlock + i * kMmaM + g + kMmaN * h;
            const uint32_t gn = blk.n0 + col;
            const float bias_n = (bias != nullptr && gn < args.n) ? __half2float(bias[gn]) : 0.0f;
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                c_tile[(2 * t + e) * C_STRIDE + col] = __float2half_rn(__fadd_rn(acc[i][0][2 * h + e], bias_n));
            }
        }
    }
    __syncthreads();

    // Shared -> global, 16-byte row segments (N % 64 == 0).
    qk_store_c_tile<kMmaN, BN, THREADS, C_STRIDE>(c_tile, args.c, blk.m0, blk.n0, args.m, args.n);
}

/* gemv_swap_ab: acc[i] += dequant(W slice i) x A_tileᵀ over the 64 K of one stage, the
 * transposed product with the dequantized weights as the mma's A operand (16 columns of
 * C per m16 tile, slice i = columns 16i .. 16i + 15 of the warp's strip) and the tile's
 * 8 rows of A as its n8 (B operand). Two n8-tiles' B fragments side by side are exactly
 * an m16 x k16 A fragment (a0 = b0 of tile 2i, a1 = b0 of 2i + 1, a2 = b1 of 2i, a3 = b1
 * of 2i + 1: PTX ISA "Matrix Fragments for mma.m16n8k16"), so the packed layout and the
 * dequantization are gemv's. Per k-step: 4 mma instead of 8 (no padding rows 8-15 of
 * A multiplied), and one ldmatrix.x4 per two k-steps: lanes 8j .. 8j + 7 address rows
 * 0-7 of 16-byte chunk 4p + j, so register j holds b0 / b1 (j even / odd) of k-step
 * 2p + j / 2 for row g of A, elements 2t, 2t + 1 of the chunk: B's (k 2t, 2t + 1; n g). */
template <class T, int BITS>
__device__ __forceinline__ void compute_stage_swap_ab(const QkGemmWeightOnlyArgs& args, const Groups& groups,
                                                      float (&acc)[kStripM16Tiles][1][4], GroupConsts<kNTiles>& gc,
                                                      const uint32_t (&b_offset)[kKSteps / kKStepsPerLdmatrix],
                                                      const LaneOffsets<T, kNTiles>& offsets, uint32_t stage_addr,
                                                      uint32_t kt, bool first_tile) {
    const bool stage_starts_group = groups.starts(kt * kBk, first_tile);
    uint32_t act[4];  // b0, b1 of two k-steps
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
        if (groups.step_starts(ks, stage_starts_group)) {
            load_group<T, BITS, kNTiles>(gc, stage_addr, groups.slot(ks), offsets, args.zeros != 0);
        }
        if (ks % kKStepsPerLdmatrix == 0) {
            qk_ldmatrix_x4(act, stage_addr + b_offset[ks / kKStepsPerLdmatrix]);
        }
        uint32_t w[kNTiles][2];
        dequant_step<BITS, kNTiles>(w, stage_addr + offsets.unit + ks * T::kUnitBytes, 0, gc);
        const int j = 2 * (ks % kKStepsPerLdmatrix);
#pragma unroll
        for (int i = 0; i < kStripM16Tiles; ++i) {
            const uint32_t a[4] = {w[2 * i][0], w[2 * i + 1][0], w[2 * i][1], w[2 * i + 1][1]};
            qk_mma_f16_16816(acc[i][0], a, act[j], act[j + 1]);
        }
    }
}

/* gemv_swap_ab's block: BM = 8 rows of A (the mma's n8), 4 warps of one 64-column strip
 * each, the gemv pipeline and copies; the accumulators are the transposed tile, so the
 * split-K fix-up keeps the lanes holding rows < M and the epilogue stages C transposed. */
template <int BITS, int BM, int BN, int WARPS_M, int WARPS_N, int STAGES, int SMEM_BYTES>
__device__ __forceinline__ void gemm_weight_only_swap_ab(const QkGemmWeightOnlyArgs& args) {
    using T = Tile<BITS, BM, BN, WARPS_M, WARPS_N, STAGES>;
    static_assert(BM == kMmaN && WARPS_M == 1, "the tile's rows of A are the mma's n8");
    static_assert(T::kSmemBytes == SMEM_BYTES, "qk_abi.h's QK_WO_*_SMEM_BYTES must equal the tile's shared memory");
    extern __shared__ __align__(128) uint8_t smem[];
    const QkGemmBlock blk = qk_gemm_block<BM, BN, WARPS_N, kBk>(args.k, args.k_tiles_per_split);
    uint32_t smem_base = qk_smem_addr(smem);
    asm("" : "+r"(smem_base));  // kept in a register, as in gemm_weight_only

    float acc[kStripM16Tiles][1][4];
    qk_zero_acc(acc);
    GroupConsts<kNTiles> gc = GroupConsts<kNTiles>::with_symmetric_zeros<BITS>();
    const Groups groups(args.group_size);
    // The lane's ldmatrix.x4 row address of each k-step pair: row lane % 8, chunk
    // 4p + lane / 8 (computed once, hidden from the compiler as in gemm_weight_only).
    uint32_t b_offset[kKSteps / kKStepsPerLdmatrix];
#pragma unroll
    for (int p = 0; p < kKSteps / kKStepsPerLdmatrix; ++p) {
        b_offset[p] = qk_swizzle_128(blk.lane % kMmaN, 2 * kKStepsPerLdmatrix * p + blk.lane / kMmaN);
        asm("" : "+r"(b_offset[p]));
    }
    const LaneOffsets<T, kNTiles> offsets(blk.warp_n, 0, blk.lane);
    weight_only_main_loop<T>(args, blk, groups, smem_base, [&](uint32_t stage_addr, uint32_t kt, bool first_tile) {
        compute_stage_swap_ab<T, BITS>(args, groups, acc, gc, b_offset, offsets, stage_addr, kt, first_tile);
    });

    __half* c_tile = reinterpret_cast<__half*>(smem);  // [BM][kCStride], the stages drained
    transposed_epilogue<BN, T::kThreads, T::kCStride>(args, acc, blk, c_tile);
}

/* gemv_direct: one lane's view of a k-step unit in global memory, its 16 bytes (8-bit:
 * two chunks 512 bytes apart); for a k-step past the split (`in` false) nothing is read
 * and the words are unspecified: the ring never consumes them. */
template <int BITS>
__device__ __forceinline__ StepWords<BITS, kNTiles> load_step_global(bool in, uint64_t lane_addr) {
    StepWords<BITS, kNTiles> w;
#pragma unroll
    for (int c = 0; c < StepWords<BITS, kNTiles>::kChunks; ++c) {
        w.chunk[c] = qk_ld_stream_v4_when(in, lane_addr + c * kWarpThreads * QK_CHUNK_BYTES);
    }
    return w;
}

/* gemv_direct's block: gemv_swap_ab's mma arrangement (weights as the A operand, 8 rows
 * of A as the n8) over a 256-column tile, 4 warps of one strip each, with every operand
 * loaded by the lane that uses it, straight from global memory into registers:
 *   weights   its 16 bytes of each k-step unit (the packed layout hands each lane its
 *             own B fragments, so no exchange through shared memory is needed), through
 *             a ring of PREFETCH k-steps: the load of k-step s + PREFETCH is issued when
 *             k-step s is consumed, PREFETCH * 512 bytes in flight per warp;
 *   A         b0 and b1 of its row g (4 bytes each, in the same ring);
 *   groups    lane 4g loads the 8 scales (and zero-point word) of column g one group
 *             ahead, and shfl.sync hands them to lanes 4g + 1 .. 4g + 3 when the group
 *             starts: one global request per group instead of four identical ones.
 * No shared memory and no block barrier until the split-K fix-up: the warps of a block
 * run independently, and a k-step costs the dequantization, 4 mma, 3 loads and the ring
 * bookkeeping, without gemv's stage copies, waits and barrier. K steps are exact (no
 * zero-padded tail: the loop runs to the split's last 16-deep k-step). Loads past the
 * split, rows past M and strips past N are predicated off, never issued. */
template <int BITS, int PREFETCH>
__device__ __forceinline__ void gemm_weight_only_direct(const QkGemmWeightOnlyArgs& args) {
    constexpr int BM = QK_WO_GEMV_DIRECT_BM;
    constexpr int WARPS_N = QK_WO_GEMV_DIRECT_WARPS_N;
    constexpr int BN = WARPS_N * kNBlock;
    constexpr int kThreads = WARPS_N * kWarpThreads;
    constexpr int kCStride = BN + QK_C_ROW_PAD_HALVES;
    constexpr uint32_t kUnitBytes = kWarpThreads * QK_CHUNK_BYTES * StepWords<BITS, kNTiles>::kChunks;
    constexpr uint32_t kStepBytesOfA = kMmaK * kF16Bytes;   // 16 f16 of K per k-step
    constexpr uint32_t kB1OffsetBytes = kMmaN * kF16Bytes;  // b1: K 2t + 8, 2t + 9
    static_assert(BM == kMmaN, "the tile's rows of A are the mma's n8");
    __shared__ __align__(QK_CHUNK_BYTES) __half c_tile[BM * kCStride];
    const QkGemmBlock blk = qk_gemm_block<BM, BN, WARPS_N, kBk>(args.k, args.k_tiles_per_split);
    const int g = blk.lane / 4;
    const int t = blk.lane % 4;
    const uint32_t strip = blk.n0 / kNBlock + blk.warp_n;
    const uint32_t k_steps = args.k / kMmaK;
    const uint32_t s_begin = blk.kt_begin * kKSteps;
    const uint32_t s_end = min(k_steps, s_begin + blk.num_kt * kKSteps);
    const bool asymmetric = BITS == 4 && args.zeros != 0;
    const Groups groups(args.group_size);

    float acc[kStripM16Tiles][1][4];
    qk_zero_acc(acc);
    // Programmatic dependent launch (qk_grid_dependency.cuh): every thread waits for the
    // previous grid before its first load (the ring's loads include A's). Loading the
    // ring's weights before the wait would overlap them with the previous grid too, but
    // cost the 8-bit kernel 13 registers (96 -> 109 on sm_90a: 4 blocks per SM, not 5).
    qk_wait_for_prior_grid();
    if (strip < args.n / kNBlock) {  // warp-uniform: a strip past N only joins the fix-up
        // Global byte addresses, integers until a (predicated) load uses them.
        const uint64_t w_lane = args.w + static_cast<uint64_t>(strip) * k_steps * kUnitBytes + blk.lane * QK_CHUNK_BYTES;
        const uint64_t a_lane = args.a + (static_cast<uint64_t>(blk.m0 + g) * args.k + 2 * t) * kF16Bytes;
        const bool row_in = blk.m0 + g < args.m;
        // Scales f16 [K/g, N], position 8g + nt of the strip's 64 holds column 8nt + g:
        // lane 4g's 16 bytes are column g's 8 scales. Zero points: word 8 * strip + g.
        const bool group_lane = t == 0;
        const uint64_t scale_lane = args.scales + (static_cast<uint64_t>(strip) * kNBlock + g * kNTiles) * kF16Bytes;
        const uint64_t scale_row_bytes = static_cast<uint64_t>(args.n) * kF16Bytes;
        const uint64_t zero_lane = args.zeros + (static_cast<uint64_t>(strip) * kNTiles + g) * sizeof(uint32_t);
        const uint64_t zero_row_bytes = static_cast<uint64_t>(args.n) / kNibblesPerByte;
        // Only groups that start inside this split are fetched ahead (and the split's
        // first): the next split reads its own.
        // (The split's first group starts at or before its first K, so it passes too; with
        // per-channel groups shift = 31 and only group 0 starts below K.)
        const uint32_t k_end = s_end * kMmaK;
        uint4 next_scales;
        uint32_t next_zero;
        const auto fetch_group = [&](uint32_t group) {
            const bool in = group_lane && (group << groups.shift) < k_end;
            next_scales = qk_ld_nc_v4_if(in, scale_lane + group * scale_row_bytes);
            next_zero = qk_ld_nc_u32_if(in && asymmetric, zero_lane + group * zero_row_bytes);
        };
        GroupConsts<kNTiles> gc = GroupConsts<kNTiles>::with_symmetric_zeros<BITS>();

        // The ring: running addresses of the next k-step to load (one 64-bit add each per
        // k-step, not a multiply from s).
        StepWords<BITS, kNTiles> ring[PREFETCH];
        uint32_t ring_a[PREFETCH][2];
        uint64_t w_next = w_lane + static_cast<uint64_t>(s_begin) * kUnitBytes;
        uint64_t a_next = a_lane + static_cast<uint64_t>(s_begin) * kStepBytesOfA;
        const auto issue = [&](int j, uint32_t s) {
            const bool in = s < s_end;
            ring[j] = load_step_global<BITS>(in, w_next);
            // A through L2 (.cg), not the read-only path: launched programmatically, the
            // previous kernel wrote it while this one was resident.
            ring_a[j][0] = qk_ld_cg_u32_if(in && row_in, a_next);
            ring_a[j][1] = qk_ld_cg_u32_if(in && row_in, a_next + kB1OffsetBytes);
            w_next += kUnitBytes;
            a_next += kStepBytesOfA;
        };
        fetch_group(groups.of(s_begin * kMmaK));
#pragma unroll
        for (int j = 0; j < PREFETCH; ++j) {
            issue(j, s_begin + j);
        }
        for (uint32_t s0 = s_begin; s0 < s_end; s0 += PREFETCH) {
#pragma unroll
            for (int j = 0; j < PREFETCH; ++j) {
                const uint32_t s = s0 + j;
                if (s >= s_end) {
                    break;  // warp-uniform: the split's last partial ring
                }
                if (groups.starts(s * kMmaK, s == s_begin)) {
                    // The group fetched one group ahead becomes current: lane 4g hands
                    // column g's constants to its three neighbours.
                    const uint32_t src = blk.lane & ~3u;
                    const uint32_t pairs[kNTiles / 2] = {
                        __shfl_sync(~0u, next_scales.x, src), __shfl_sync(~0u, next_scales.y, src),
                        __shfl_sync(~0u, next_scales.z, src), __shfl_sync(~0u, next_scales.w, src)};
                    expand_scales(gc, pairs);
                    if (asymmetric) {
                        expand_zeros(gc, __shfl_sync(~0u, next_zero, src), 0);
                    }
                    fetch_group(groups.of(s * kMmaK) + 1);
                }
                uint32_t w[kNTiles][2];
                dequant_words<BITS, kNTiles>(w, ring[j], 0, gc);
#pragma unroll
                for (int i = 0; i < kStripM16Tiles; ++i) {
                    const uint32_t a[4] = {w[2 * i][0], w[2 * i + 1][0], w[2 * i][1], w[2 * i + 1][1]};
                    qk_mma_f16_16816(acc[i][0], a, ring_a[j][0], ring_a[j][1]);
                }
                // Slot j is consumed: refill it with k-step s + PREFETCH. Issued after its
                // last read, the load writes the registers the slot already has (issued
                // before, ptxas had to copy the slot aside every k-step).
                issue(j, s + PREFETCH);
            }
        }
    }
    qk_allow_dependent_grid();  // the block's first warp to get here lets the next grid launch
    transposed_epilogue<BN, kThreads, kCStride>(args, acc, blk, c_tile);
}

template <int BITS, int BM, int BN, int WARPS_M, int WARPS_N, int STAGES, int SMEM_BYTES>
__device__ __forceinline__ void gemm_weight_only(const QkGemmWeightOnlyArgs& args) {
    using T = Tile<BITS, BM, BN, WARPS_M, WARPS_N, STAGES>;
    static_assert(T::kSmemBytes == SMEM_BYTES, "qk_abi.h's QK_WO_*_SMEM_BYTES must equal the tile's shared memory");
    static_assert(T::kMTiles >= 1, "the weights are the B operand here: whole m16 tiles of A per warp");
    extern __shared__ __align__(128) uint8_t smem[];
    const QkGemmBlock blk = qk_gemm_block<BM, BN, WARPS_N, kBk>(args.k, args.k_tiles_per_split);
    uint32_t smem_base = qk_smem_addr(smem);
    // Kept in a register (the empty asm hides its origin): otherwise the compiler
    // re-derived the shared window's base every stage.
    asm("" : "+r"(smem_base));

    float acc[T::kMTiles][kNTiles][4];
    qk_zero_acc(acc);
    // The current group's scales and zero points.
    GroupConsts<kNTiles> gc = GroupConsts<kNTiles>::with_symmetric_zeros<BITS>();
    const Groups groups(args.group_size);

    // The lane's ldmatrix.x4 offset in a stage's A tile at each k-step (m16 tile 0).
    // Lanes 0-7: rows 0-7 / k 0-7, 8-15: rows 8-15 / k 0-7, 16-23: rows 0-7 / k 8-15,
    // 24-31: rows 8-15 / k 8-15 (-> a0..a3). Computed once; the empty asm hides how, so
    // the compiler keeps the four registers instead of rebuilding them from %tid.x every
    // stage (which it did, 10 instructions a stage, once the kernel's tail changed).
    uint32_t a_offset[kKSteps];
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
        a_offset[ks] = qk_swizzle_128(blk.warp_m * T::kWarpM + blk.lane % 16, ks * 2 + blk.lane / 16);
        asm("" : "+r"(a_offset[ks]));
    }
    const LaneOffsets<T, kNTiles> offsets(blk.warp_n, 0, blk.lane);
    weight_only_main_loop<T>(args, blk, groups, smem_base, [&](uint32_t stage_addr, uint32_t kt, bool first_tile) {
        compute_stage<T, BITS>(args, groups, acc, gc, a_offset, offsets, stage_addr, kt, first_tile);
    });

    if (gridDim.z > 1 &&
        !qk_split_k_reduce<float, T::kMTiles, kNTiles, T::kThreads>(
            acc, args.workspace, args.tile_counters, blk.m0 + blk.warp_m * T::kWarpM + blk.lane / 4, args.m)) {
        return;
    }

    // Epilogue 1: bias in f32, one rounding to f16, staged in shared memory.
    const __half* bias = reinterpret_cast<const __half*>(args.bias);  // [N] or null
    __half* c_tile = reinterpret_cast<__half*>(smem);                 // [BM][kCStride]
    qk_stage_c_fragments<T::kWarpM, kNBlock, T::kCStride>(c_tile, acc, blk, [&](uint32_t gn) {
        // N % 64 == 0: gn < N iff gn + 1 < N
        const float b0 = (bias != nullptr && gn < args.n) ? __half2float(bias[gn]) : 0.0f;
        const float b1 = (bias != nullptr && gn < args.n) ? __half2float(bias[gn + 1]) : 0.0f;
        return [b0, b1](uint32_t, float acc0, float acc1) {
            return __floats2half2_rn(__fadd_rn(acc0, b0), __fadd_rn(acc1, b1));
        };
    });
    __syncthreads();

    // Epilogue 2: shared -> global, 16-byte row segments (N % 64 == 0).
    qk_store_c_tile<BM, BN, T::kThreads, T::kCStride>(c_tile, args.c, blk.m0, blk.n0, args.m, args.n);
}

}  // namespace

/* One kernel per (weight width, configuration); the tile shape is a template argument
 * so that every loop over fragments unrolls into registers. BODY is gemm_weight_only, or
 * gemm_weight_only_swap_ab for the configuration with the weights as the A operand. */
#define QK_WO_INSTANCE_OF(BODY, NAME, BITS, CFG, STAGES, SMEM_BYTES)                                   \
    extern "C" __global__ void __launch_bounds__(QK_WO_##CFG##_WARPS_M * QK_WO_##CFG##_WARPS_N *     \
                                                 QK_WARP_THREADS)                                      \
        NAME(const QkGemmWeightOnlyArgs args) {                                                        \
        BODY<BITS, QK_WO_##CFG##_BM, QK_WO_##CFG##_WARPS_N * QK_WO_N_BLOCK, QK_WO_##CFG##_WARPS_M,     \
             QK_WO_##CFG##_WARPS_N, STAGES, SMEM_BYTES>(args);                                         \
    }
#define QK_WO_INSTANCE(NAME, BITS, CFG, STAGES, SMEM_BYTES) \
    QK_WO_INSTANCE_OF(gemm_weight_only, NAME, BITS, CFG, STAGES, SMEM_BYTES)

QK_WO_INSTANCE(qk_gemm_w4a16_gemv, 4, GEMV, QK_WO_GEMV_STAGES, QK_WO_GEMV_SMEM_BYTES)
QK_WO_INSTANCE(qk_gemm_w4a16_small, 4, SMALL, QK_WO_SMALL_STAGES, QK_WO_SMALL_SMEM_BYTES)
QK_WO_INSTANCE(qk_gemm_w4a16_medium, 4, MEDIUM, QK_WO_MEDIUM_STAGES, QK_WO_MEDIUM_SMEM_BYTES)
QK_WO_INSTANCE(qk_gemm_w4a16_large, 4, LARGE, QK_WO_LARGE_STAGES, QK_WO_LARGE_SMEM_BYTES)
QK_WO_INSTANCE(qk_gemm_w8a16_gemv, 8, GEMV, QK_WO_GEMV_STAGES_W8, QK_WO_GEMV_SMEM_BYTES_W8)
QK_WO_INSTANCE(qk_gemm_w8a16_small, 8, SMALL, QK_WO_SMALL_STAGES_W8, QK_WO_SMALL_SMEM_BYTES_W8)
QK_WO_INSTANCE(qk_gemm_w8a16_medium, 8, MEDIUM, QK_WO_MEDIUM_STAGES_W8, QK_WO_MEDIUM_SMEM_BYTES_W8)
QK_WO_INSTANCE(qk_gemm_w8a16_large, 8, LARGE, QK_WO_LARGE_STAGES_W8, QK_WO_LARGE_SMEM_BYTES_W8)
QK_WO_INSTANCE_OF(gemm_weight_only_swap_ab, qk_gemm_w4a16_gemv_swap_ab, 4, GEMV_SWAP_AB, QK_WO_GEMV_STAGES,
                  QK_WO_GEMV_SWAP_AB_SMEM_BYTES)
QK_WO_INSTANCE_OF(gemm_weight_only_swap_ab, qk_gemm_w8a16_gemv_swap_ab, 8, GEMV_SWAP_AB, QK_WO_GEMV_STAGES_W8,
                  QK_WO_GEMV_SWAP_AB_SMEM_BYTES_W8)

/* gemv_direct's kernels: no dynamic shared memory, the prefetch depth per width. */
#define QK_WO_DIRECT_INSTANCE(NAME, BITS, PREFETCH)                                                              \
    extern "C" __global__ void __launch_bounds__(QK_WO_GEMV_DIRECT_WARPS_M * QK_WO_GEMV_DIRECT_WARPS_N *       \
                                                 QK_WARP_THREADS)                                                \
        NAME(const QkGemmWeightOnlyArgs args) {                                                                  \
        gemm_weight_only_direct<BITS, PREFETCH>(args);                                                           \
    }
QK_WO_DIRECT_INSTANCE(qk_gemm_w4a16_gemv_direct, 4, QK_WO_GEMV_DIRECT_PREFETCH_STEPS)
QK_WO_DIRECT_INSTANCE(qk_gemm_w8a16_gemv_direct, 8, QK_WO_GEMV_DIRECT_PREFETCH_STEPS_W8)
