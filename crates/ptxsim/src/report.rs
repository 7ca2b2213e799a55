//! Per-launch counters (`LaunchReport`) and the per-block accumulator they are
//! summed from.

use std::collections::BTreeMap;
use std::fmt;

use crate::ir::{Class, NUM_CLASSES};

/// Global traffic to one allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocTraffic {
    /// Bytes requested by loads (incl. atomics' reads, cp.async and cp.async.bulk
    /// sources).
    pub load_bytes: u64,
    /// Bytes requested by stores (incl. atomics' writes).
    pub store_bytes: u64,
}

/// Memory traffic of the warp-level accesses issued by one PTX line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineTraffic {
    /// Warp-level global accesses.
    pub global_warp_accesses: u64,
    /// Distinct 32-byte sectors summed over those accesses.
    pub global_sectors: u64,
    /// Warp-level shared accesses.
    pub shared_warp_accesses: u64,
    /// Shared wavefronts.
    pub shared_wavefronts: u64,
    /// Conflict-free minimum wavefronts.
    pub shared_min_wavefronts: u64,
}

impl LineTraffic {
    /// Shared bank conflicts of this line (`wavefronts - minimum`).
    pub fn shared_bank_conflicts(&self) -> u64 {
        self.shared_wavefronts - self.shared_min_wavefronts
    }
}

/// Counters of one launch. Instruction counts are thread-instructions (one per
/// active, guard-true lane) unless named `warp_`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchReport {
    /// Blocks run.
    pub blocks: u64,
    /// Threads per block.
    pub threads_per_block: u32,
    /// All thread-instructions.
    pub instructions: u64,
    /// Warp-level instructions issued (one per lockstep group).
    pub warp_instructions: u64,
    /// Integer/bit arithmetic, `mov`, `setp`, `selp`.
    pub integer: u64,
    /// f32/f64 arithmetic.
    pub float: u64,
    /// f16/bf16 arithmetic.
    pub half: u64,
    /// Global-memory instructions (incl. atomics, cp.async, prefetch).
    pub global_mem: u64,
    /// Shared-memory instructions (incl. ldmatrix).
    pub shared_mem: u64,
    /// Local-memory instructions.
    pub local_mem: u64,
    /// Param/const-space loads.
    pub param_mem: u64,
    /// Branches and exits.
    pub control: u64,
    /// Barriers, fences, warp collectives, cp.async group ops.
    pub sync: u64,
    /// `mma` thread-instructions.
    pub tensor: u64,
    /// `cvt`/`cvta`.
    pub conversion: u64,
    /// Everything else.
    pub other: u64,
    /// Warp-level `mma` instructions.
    pub mma_count: u64,
    /// Warp-level `wgmma.mma_async` instructions (each warp of a warpgroup counts one).
    pub wgmma_count: u64,
    /// Shared bytes read by `wgmma.mma_async` (B, and A in the descriptor form; each
    /// warp counts what it reads). Also counted in the shared wavefronts as
    /// conflict-free accesses: no bank-conflict model for wgmma.
    pub wgmma_shared_bytes: u64,
    /// `cp.async.bulk` copies issued (one per issuing thread).
    pub bulk_copies: u64,
    /// Bytes copied by `cp.async.bulk`: read from global memory (also counted in the
    /// global load bytes and sectors) and written to shared memory (also counted in
    /// the shared wavefronts as conflict-free accesses, like wgmma).
    pub bulk_bytes: u64,
    /// Bytes `cp.async.bulk.prefetch.L2` asked L2 to fetch (a hint: not in the global
    /// load bytes, which count what the SMs read).
    pub l2_prefetch_bytes: u64,
    /// Threads that executed `griddepcontrol.wait`.
    pub grid_dependency_waits: u64,
    /// Threads that executed `griddepcontrol.launch_dependents` before their
    /// `griddepcontrol.wait` (or without one): under a programmatic launch they let the
    /// next grid start while the grid before this one may still run.
    pub early_dependent_launches: u64,
    /// Global bytes requested by loads.
    pub global_load_bytes: u64,
    /// Global bytes requested by stores.
    pub global_store_bytes: u64,
    /// Global traffic per allocation, keyed by the allocation's base address.
    pub per_alloc: BTreeMap<u64, AllocTraffic>,
    /// Sum over warp-level global accesses of the distinct 32-byte sectors touched.
    pub global_sectors: u64,
    /// Warp-level global accesses.
    pub global_warp_accesses: u64,
    /// Shared-memory wavefronts (32 banks x 4 bytes; per phase, the max over banks of
    /// distinct words in that bank).
    pub shared_wavefronts: u64,
    /// Conflict-free minimum wavefronts for the same accesses (one per phase).
    pub shared_min_wavefronts: u64,
    /// `shared_wavefronts - shared_min_wavefronts`.
    pub shared_bank_conflicts: u64,
    /// Warp-level shared accesses.
    pub shared_warp_accesses: u64,
    /// Global/shared traffic per PTX source line (memory instructions only).
    pub per_line: BTreeMap<u32, LineTraffic>,
}

impl fmt::Display for LaunchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "blocks: {} x {} threads", self.blocks, self.threads_per_block)?;
        writeln!(f, "instructions: {} thread / {} warp", self.instructions, self.warp_instructions)?;
        writeln!(
            f,
            "  integer {}  float {}  half {}  tensor {} ({} mma, {} wgmma)  conversion {}",
            self.integer, self.float, self.half, self.tensor, self.mma_count, self.wgmma_count, self.conversion
        )?;
        writeln!(
            f,
            "  global {}  shared {}  local {}  param {}  control {}  sync {}  other {}",
            self.global_mem, self.shared_mem, self.local_mem, self.param_mem, self.control, self.sync, self.other
        )?;
        writeln!(
            f,
            "global: {} B loaded, {} B stored, {} sectors in {} warp accesses",
            self.global_load_bytes, self.global_store_bytes, self.global_sectors, self.global_warp_accesses
        )?;
        for (base, t) in &self.per_alloc {
            writeln!(f, "  alloc {base:#x}: {} B loaded, {} B stored", t.load_bytes, t.store_bytes)?;
        }
        if self.bulk_copies > 0 {
            writeln!(f, "bulk copies: {} ({} B global -> shared)", self.bulk_copies, self.bulk_bytes)?;
        }
        if self.l2_prefetch_bytes > 0 {
            writeln!(f, "L2 prefetches: {} B", self.l2_prefetch_bytes)?;
        }
        write!(
            f,
            "shared: {} wavefronts (minimum {}, {} bank conflicts) in {} warp accesses",
            self.shared_wavefronts, self.shared_min_wavefronts, self.shared_bank_conflicts, self.shared_warp_accesses
        )?;
        for (line, t) in self.per_line.iter().filter(|(_, t)| t.shared_bank_conflicts() > 0) {
            write!(
                f,
                "\n  PTX line {line}: {} bank conflicts in {} warp accesses",
                t.shared_bank_conflicts(),
                t.shared_warp_accesses
            )?;
        }
        Ok(())
    }
}

/// Per-block counters, merged into the `LaunchReport` when the block finishes.
#[derive(Clone, Debug)]
pub struct Counters {
    /// Thread-instructions per class.
    pub class: [u64; NUM_CLASSES],
    /// Warp instructions.
    pub warp_insts: u64,
    /// Warp-level mma.
    pub mma: u64,
    /// Warp-level wgmma.mma_async.
    pub wgmma: u64,
    /// Shared bytes read by wgmma.mma_async.
    pub wgmma_bytes: u64,
    /// cp.async.bulk copies.
    pub bulk: u64,
    /// Bytes copied by cp.async.bulk.
    pub bulk_bytes: u64,
    /// Bytes of cp.async.bulk.prefetch.L2.
    pub prefetch_bytes: u64,
    /// Threads that executed griddepcontrol.wait.
    pub grid_waits: u64,
    /// Threads that executed griddepcontrol.launch_dependents before their wait.
    pub early_launches: u64,
    /// Per allocation index: (load bytes, store bytes).
    pub alloc: Vec<(u64, u64)>,
    /// Per allocation index: the block's first `ld.global.nc` of it (pc, warp, lane).
    pub first_nc_load: Vec<Option<(u32, u32, u32)>>,
    /// Per allocation index: the block's first global write to it (pc, warp, lane).
    pub first_write: Vec<Option<(u32, u32, u32)>>,
    /// Global sectors.
    pub sectors: u64,
    /// Warp-level global accesses.
    pub gaccesses: u64,
    /// Shared wavefronts.
    pub wavefronts: u64,
    /// Shared minimum wavefronts.
    pub min_wavefronts: u64,
    /// Warp-level shared accesses.
    pub saccesses: u64,
    /// Per instruction index (grown on demand).
    pub per_pc: Vec<LineTraffic>,
}

impl Counters {
    /// Zeroed counters for `nallocs` allocations.
    pub fn new(nallocs: usize) -> Counters {
        Counters {
            class: [0; NUM_CLASSES],
            warp_insts: 0,
            mma: 0,
            wgmma: 0,
            wgmma_bytes: 0,
            bulk: 0,
            bulk_bytes: 0,
            prefetch_bytes: 0,
            grid_waits: 0,
            early_launches: 0,
            alloc: vec![(0, 0); nallocs],
            first_nc_load: vec![None; nallocs],
            first_write: vec![None; nallocs],
            sectors: 0,
            gaccesses: 0,
            wavefronts: 0,
            min_wavefronts: 0,
            saccesses: 0,
            per_pc: Vec::new(),
        }
    }

    /// Adds these counters into a report (`bases[i]` = base address of allocation i,
    /// `lines[pc]` = PTX line of instruction pc).
    pub fn merge_into(&self, r: &mut LaunchReport, bases: &[u64], lines: &[u32]) {
        for (pc, t) in self.per_pc.iter().enumerate() {
            if t.global_warp_accesses + t.shared_warp_accesses == 0 {
                continue;
            }
            let e = r.per_line.entry(lines.get(pc).copied().unwrap_or(0)).or_default();
            e.global_warp_accesses += t.global_warp_accesses;
            e.global_sectors += t.global_sectors;
            e.shared_warp_accesses += t.shared_warp_accesses;
            e.shared_wavefronts += t.shared_wavefronts;
            e.shared_min_wavefronts += t.shared_min_wavefronts;
        }
        let c = &self.class;
        let at = |k: Class| c[k as usize];
        r.integer += at(Class::Integer);
        r.float += at(Class::Float);
        r.half += at(Class::Half);
        r.global_mem += at(Class::Global);
        r.shared_mem += at(Class::Shared);
        r.local_mem += at(Class::Local);
        r.param_mem += at(Class::Param);
        r.control += at(Class::Control);
        r.sync += at(Class::Sync);
        r.tensor += at(Class::Tensor);
        r.conversion += at(Class::Conversion);
        r.other += at(Class::Other);
        r.instructions += c.iter().sum::<u64>();
        r.warp_instructions += self.warp_insts;
        r.mma_count += self.mma;
        r.wgmma_count += self.wgmma;
        r.wgmma_shared_bytes += self.wgmma_bytes;
        r.bulk_copies += self.bulk;
        r.bulk_bytes += self.bulk_bytes;
        r.l2_prefetch_bytes += self.prefetch_bytes;
        r.grid_dependency_waits += self.grid_waits;
        r.early_dependent_launches += self.early_launches;
        for (i, &(l, s)) in self.alloc.iter().enumerate() {
            if l + s > 0 {
                let e = r.per_alloc.entry(bases[i]).or_default();
                e.load_bytes += l;
                e.store_bytes += s;
                r.global_load_bytes += l;
                r.global_store_bytes += s;
            }
        }
        r.global_sectors += self.sectors;
        r.global_warp_accesses += self.gaccesses;
        r.shared_wavefronts += self.wavefronts;
        r.shared_min_wavefronts += self.min_wavefronts;
        r.shared_bank_conflicts = r.shared_wavefronts - r.shared_min_wavefronts;
        r.shared_warp_accesses += self.saccesses;
    }
}
