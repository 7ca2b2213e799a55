//! Host-side launch planning shared by the tiled GEMM kernels (`gemm_w8a8.cu` and the
//! weight-only `gemm_w4a16.cu` template): the 32-bit index and shared-memory limits, the
//! (N tiles, M tiles, K splits) grid, the split-K factor, and the buffers the in-kernel
//! split-K fix-up (`qk_split_k_reduce` in `qk_gemm.cuh`) reads: the partial-tile
//! workspace and the per-tile arrival counters.
//!
//! Both kernels share one fix-up, so they share one planner: what differs per kernel
//! (which splits are worth their partial traffic) is a [`SplitKRule`].

use bytemuck::Pod;

use crate::device::DeviceBuffer;
use crate::kernels::KernelRef;
use crate::{Device, QkError, Result};

/// Blocks per SM that split-K aims for at small M: two resident blocks per SM keep
/// enough 16-byte copies in flight to cover DRAM latency while the split count (and so
/// the partial-tile traffic) stays small (fewer when fewer fit). It caps the automatic
/// count, so counts that spread as evenly with more blocks are not considered: on an
/// H200 at 57344 × 8192, M = 1, 4 splits (6.8 blocks per SM) beat the 1 chosen for
/// gemm_w4a16 (79.0 against 86.9 µs) but lost for gemm_w8a16 (125.2 against 111.7 µs),
/// so the cap stays (docs/results/h200-2026-11-26b/splits-sweep.md).
const SPLIT_K_BLOCKS_PER_SM: usize = 2;

/// The largest grid y and z dimension a launch may have (CUDA's `maxGridSize[1..3]`,
/// 65535 on every architecture since compute capability 2.0): grid y counts M tiles,
/// grid z K splits. A larger grid would fail at launch instead of at planning.
const MAX_GRID_YZ: usize = 65535;

/// The shortest split, in K tiles, that the automatic choice prefers among equally even
/// counts: with the decode GEMV's 6 stages a split of 4 K tiles is little but its
/// pipeline prologue and fix-up. H200, 4096 × 4096, M = 1: 8 splits of 8 K tiles
/// 9.1 µs against 16 splits of 4 K tiles 9.8 µs (gemm_w4a16), 10.5 against 12.4 µs
/// (gemm_w8a16): 128 and 256 blocks of 16 tiles, equally even over 132 SMs.
const MIN_K_TILES_PER_SPLIT: usize = 8;

/// The per-kernel part of the automatic split-K choice. Neither bound applies to an
/// explicit split count (a caller asking for N splits gets N, clamped to the K tiles, or
/// an error past the grid's z limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SplitKRule {
    /// Most splits the automatic choice may pick (e.g. to cap re-read scale rows).
    pub max_splits: usize,
    /// The automatic K tiles per split are rounded up to a multiple of this (e.g. so a
    /// quantization group spanning several K tiles is never cut); 1 = no rounding.
    pub k_tiles_multiple: usize,
}

impl SplitKRule {
    /// No kernel-specific bound: split until every SM has its target number of blocks.
    pub const UNBOUNDED: SplitKRule = SplitKRule { max_splits: usize::MAX, k_tiles_multiple: 1 };
}

/// What one GEMM launch tiles: C `[m, n]` in `block_m x block_n` tiles, K in tiles of
/// `bk`, with blocks of `threads` threads of `kernel` and `shared_bytes` of dynamic
/// shared memory each.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GemmTiling {
    /// Rows of C (M).
    pub m: usize,
    /// Columns of C (N).
    pub n: usize,
    /// Reduction depth (K).
    pub k: usize,
    /// Rows of C per block.
    pub block_m: u32,
    /// Columns of C per block.
    pub block_n: u32,
    /// K elements per pipeline stage (one K tile).
    pub bk: usize,
    /// The kernel launched (its registers limit how many blocks an SM holds).
    pub kernel: KernelRef,
    /// Threads per block.
    pub threads: u32,
    /// Dynamic shared memory per block, bytes.
    pub shared_bytes: u32,
}

/// A planned split-K GEMM grid and the buffers its fix-up needs: built once per plan,
/// read by every launch. `P` is the accumulator type of the partial tiles (i32, f32).
#[derive(Debug)]
pub(crate) struct SplitKGrid<P: Pod> {
    grid: [u32; 3],
    k_tiles_per_split: u32,
    /// Blocks of the kernel one SM holds at once (what the split count was planned for).
    resident_per_sm: u32,
    /// Partial tiles `[tile][split][block_m * block_n]`, present when splits > 1.
    workspace: Option<DeviceBuffer<P>>,
    /// One u32 per C tile, zero between launches (the last split resets it); present
    /// when splits > 1.
    tile_counters: Option<DeviceBuffer<u32>>,
}

impl<P: Pod> SplitKGrid<P> {
    /// Plans the grid of `tiling` on `device`. `config` names the kernel configuration
    /// in the shared-memory error; `splits` is an explicit split count (clamped to the
    /// K tiles), `None` for the automatic choice bounded by `rule`.
    pub fn plan(
        device: &Device,
        tiling: GemmTiling,
        config: &dyn std::fmt::Debug,
        splits: Option<usize>,
        rule: SplitKRule,
    ) -> Result<SplitKGrid<P>> {
        let GemmTiling { m, n, k, block_m, block_n, bk, kernel, threads, shared_bytes } = tiling;
        // The kernels index rows, columns and K with 32-bit integers (no 64-bit
        // arithmetic in the inner loops); half the range leaves room for tile overhang.
        if m > u32::MAX as usize / 2 || n > u32::MAX as usize / 2 || k > u32::MAX as usize / 2 {
            return Err(QkError::invalid("shape", format!("M = {m}, N = {n}, K = {k}: too large for 32-bit indices")));
        }
        let max_shared = device.properties().max_shared_bytes_per_block;
        if shared_bytes > max_shared {
            return Err(QkError::invalid(
                "config",
                format!("{config:?} needs {shared_bytes} bytes of shared memory; the device allows {max_shared}"),
            ));
        }
        let tiles_n = n.div_ceil(block_n as usize);
        let tiles_m = m.div_ceil(block_m as usize);
        if tiles_m > MAX_GRID_YZ {
            return Err(QkError::invalid(
                "m",
                format!("M = {m} needs {tiles_m} row tiles; grid y allows {MAX_GRID_YZ}"),
            ));
        }
        let tiles = tiles_n * tiles_m;
        let k_tiles = k.div_ceil(bk);
        // Blocks an SM holds at once, from its registers, shared memory and thread slots.
        let per_sm = device.resident_blocks_per_sm(kernel, threads, shared_bytes)? as usize;
        if per_sm == 0 {
            return Err(QkError::invalid(
                "config",
                format!("{config:?}: a block of {threads} threads and {shared_bytes} bytes of shared memory does not fit an SM"),
            ));
        }
        let wanted = splits.unwrap_or_else(|| {
            let sm_count = device.properties().sm_count as usize;
            let target_blocks = sm_count * SPLIT_K_BLOCKS_PER_SM.min(per_sm);
            let most = target_blocks.div_ceil(tiles).min(rule.max_splits).max(1);
            balanced_splits(tiles, k_tiles, sm_count, per_sm, most)
        });
        let mut k_tiles_per_split = k_tiles.div_ceil(wanted.clamp(1, k_tiles));
        if splits.is_none() {
            k_tiles_per_split = k_tiles_per_split.next_multiple_of(rule.k_tiles_multiple.max(1));
        }
        // No empty split: recompute the count from the per-split length.
        let splits = k_tiles.div_ceil(k_tiles_per_split);
        if splits > MAX_GRID_YZ {
            return Err(QkError::invalid("splits", format!("{splits} K splits; grid z allows {MAX_GRID_YZ}")));
        }
        // The partial tiles and the per-tile counters exist only with splits: the kernels
        // touch them only when grid z > 1 (one split has nothing to sum).
        let (workspace, tile_counters) = if splits > 1 {
            let partials = tiles.checked_mul(splits).and_then(|t| t.checked_mul((block_m * block_n) as usize));
            let partials = partials.ok_or_else(|| {
                QkError::invalid("splits", format!("{tiles} tiles x {splits} splits of partial tiles overflow"))
            })?;
            (Some(device.alloc::<P>(partials)?), Some(device.upload(&vec![0u32; tiles])?))
        } else {
            (None, None)
        };
        Ok(SplitKGrid {
            grid: [tiles_n as u32, tiles_m as u32, splits as u32],
            k_tiles_per_split: k_tiles_per_split as u32,
            resident_per_sm: per_sm as u32,
            workspace,
            tile_counters,
        })
    }

    /// Launch grid (N tiles, M tiles, K splits).
    pub fn grid(&self) -> [u32; 3] {
        self.grid
    }

    /// Number of K splits (grid z).
    pub fn splits(&self) -> usize {
        self.grid[2] as usize
    }

    /// The launch as one line: `kernel (config: BMxBN tiles, threads, stages, smem) grid
    /// [..] splits s`, the common head of the GEMM plans' `describe`. `tile` is
    /// (block_m, block_n, threads, stages, shared bytes).
    pub fn describe_launch(&self, kernel: &str, config: &dyn std::fmt::Debug, tile: [u32; 5]) -> String {
        let [block_m, block_n, threads, stages, shared_bytes] = tile;
        format!(
            "{kernel} ({config:?}: {block_m}x{block_n} tiles, {threads} threads, {stages} stages, {shared_bytes} B smem) grid {:?} splits {}",
            self.grid(),
            self.splits()
        )
    }

    /// Blocks of the kernel one SM holds at once, as planned for.
    pub fn resident_per_sm(&self) -> u32 {
        self.resident_per_sm
    }

    /// K tiles each split reduces (the last split may get fewer).
    pub fn k_tiles_per_split(&self) -> u32 {
        self.k_tiles_per_split
    }

    /// Device address of the partial-tile workspace, 0 when there is one split.
    pub fn workspace_addr(&self) -> u64 {
        self.workspace.as_ref().map_or(0, |w| w.device_addr())
    }

    /// Device address of the per-tile counters, 0 when there is one split.
    pub fn tile_counters_addr(&self) -> u64 {
        self.tile_counters.as_ref().map_or(0, |c| c.device_addr())
    }
}

/// The split count in `1..=most` that spreads `tiles × s` blocks most evenly over
/// `sm_count` SMs: the largest fraction of busy SM-rounds, `tiles × s` over
/// `⌈tiles × s / sm_count⌉ × sm_count` (the busiest SM sets the time: it holds that many
/// blocks, each `1 / s` of a tile's `k_tiles` K tiles). Among equally even counts, those
/// whose blocks are all resident at once (at most `per_sm` per SM: more blocks in
/// flight, no second wave) win, and of those the largest that keeps splits of at least
/// [`MIN_K_TILES_PER_SPLIT`] K tiles, else the smallest; with none resident at once, the
/// smallest count (the fewest partial tiles to sum).
///
/// Why per SM and not per resident slot: with 3 resident blocks per SM, 288 blocks fill
/// 73% of the 396 slots but leave 24 SMs with a third block, so those run 1.5× as long.
/// Measured on an H200 (132 SMs), gemm_w4a16 at M = 1 (3 blocks per SM fit):
/// 8192 × 28672 (32 tiles) 42.4 µs with 8 splits against 51.7 µs with the 9 that
/// filling slots chose; 57344 × 8192 (224 tiles) 86.9 µs with 1 split against 93.1 µs
/// with 2 (448 blocks: 4 on some SMs, two waves); 4096 × 14336 (16 tiles) 16.5 µs with
/// 16 splits (2 per SM) against 18.4 µs with 8. On an H100, gemm_w8a16's 112 tiles
/// (2 blocks per SM) ran 145 → 90 µs with 2 splits instead of 3, and gemm_w8a8 at
/// 8192 × 10240, M = 256 (160 tiles) was faster with 2 splits than with 1.
fn balanced_splits(tiles: usize, k_tiles: usize, sm_count: usize, per_sm: usize, most: usize) -> usize {
    let sm_count = sm_count.max(1);
    let most = most.max(1);
    // Blocks on the busiest SM.
    let rounds = |s: usize| (tiles * s).div_ceil(sm_count);
    // utilization(s) = tiles·s / (rounds(s)·sm_count): compared by cross-multiplying,
    // s · rounds(t) against t · rounds(s), exact in integers.
    let more_even = |s: usize, t: usize| s * rounds(t) > t * rounds(s);
    let best = (1..=most).fold(1, |best, s| if more_even(s, best) { s } else { best });
    let tied = (1..=most).filter(|&s| !more_even(best, s));
    let co_resident = tied.clone().filter(|&s| rounds(s) <= per_sm);
    let long_enough = co_resident.clone().filter(|&s| k_tiles.div_ceil(s) >= MIN_K_TILES_PER_SPLIT).max();
    long_enough.or_else(|| co_resident.min()).unwrap_or_else(|| tied.min().unwrap_or(best))
}

#[cfg(test)]
mod tests {
    use super::{balanced_splits, GemmTiling, SplitKGrid, SplitKRule, MAX_GRID_YZ};
    use crate::{kernels, Device, QkError};

    #[test]
    fn split_counts_past_the_grid_z_limit_are_refused() {
        // K = 65536 tiles of 64 and an explicit split per tile: grid z would be 65536.
        let bk = 64;
        let tiling = GemmTiling {
            m: 1,
            n: 256,
            k: (MAX_GRID_YZ + 1) * bk,
            block_m: 16,
            block_n: 256,
            bk,
            kernel: kernels::GEMM_W4A16_GEMV,
            threads: 128,
            shared_bytes: 0,
        };
        let rule = SplitKRule { max_splits: usize::MAX, k_tiles_multiple: 1 };
        let planned = SplitKGrid::<f32>::plan(&Device::sim(), tiling, &"test", Some(MAX_GRID_YZ + 1), rule);
        assert!(matches!(planned, Err(QkError::InvalidArgument { arg: "splits", .. })), "{planned:?}");
    }

    #[test]
    fn split_count_spreads_blocks_evenly_over_the_sms() {
        // H200 (132 SMs), gemm_w4a16 decode, 3 blocks per SM: the measured best counts
        // (docs/results/h200-2026-11-26b/splits-sweep.md), K tiles of 64.
        assert_eq!(balanced_splits(32, 448, 132, 3, 9), 8, "256 blocks, 2 per SM, not 288");
        assert_eq!(balanced_splits(224, 128, 132, 3, 2), 1, "448 blocks would need a second wave");
        assert_eq!(balanced_splits(112, 64, 132, 3, 3), 3, "all equally even: the most co-resident");
        assert_eq!(balanced_splits(16, 224, 132, 3, 17), 16, "K = 14336: 2 blocks per SM, not 1");
        assert_eq!(balanced_splits(16, 64, 132, 3, 17), 8, "K = 4096: 16 splits would be 4 K tiles each");
        assert_eq!(balanced_splits(24, 64, 132, 3, 11), 11, "264 blocks, 2 on every SM: no tie to break");
        // H100, 2 blocks per SM: w8a16 gemv (112 tiles) and w8a8 (64 and 160 tiles).
        assert_eq!(balanced_splits(112, 128, 132, 2, 3), 2);
        assert_eq!(balanced_splits(64, 128, 132, 2, 5), 4);
        assert_eq!(balanced_splits(160, 128, 132, 2, 2), 2);
        // One count allowed; none (most = 0 means 1).
        assert_eq!(balanced_splits(300, 128, 132, 2, 1), 1);
        assert_eq!(balanced_splits(5, 128, 132, 2, 0), 1);
    }
}
