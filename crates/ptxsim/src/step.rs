//! Semantics of one warp-level step: picks the lanes at the lowest PC (all runnable
//! lanes when converged), evaluates the guard and executes one decoded instruction
//! for them, including memory accesses with hazard checks and traffic counters.
//!
//! Shared-memory race model (documented contract: may miss a race, never reports a
//! false one): each shared byte records its last write and the last two reads by
//! different threads, with the block-barrier epoch and the accessing warp's
//! warp-sync epoch. Two accesses by different threads are ordered iff their block
//! epochs differ, or they are in the same warp and its warp-sync epoch (bumped by
//! `bar.warp.sync` and every block barrier) differs; two atomics never race. An
//! unordered pair with at least one write is a race. Named barriers with a thread
//! count also bump the block epoch, so races across them may be missed. A `cp.async`
//! destination is a write that stays pending until its issuing thread lands it (a
//! wait, or `cp.async.mbarrier.arrive`); reading it before then is an unwaited copy.
//! `SharedShadow::record` implements the model. A `wgmma.mma_async` reads its shared
//! operands as lane 0 of its warp, after bumping the warp-sync epoch (as does
//! `wgmma.wait_group`): the `.sync.aligned` rendezvous orders the warp's own accesses.
//!
//! Bulk copies (PTX ISA 9.7.9.25.4.1 `cp.async.bulk`, 9.7.13.15.5 mbarrier tx-count):
//! `cp_async_bulk` reads the source at issue and completes the copy at once,
//! performing its complete-tx on the mbarrier (which may complete the phase); the
//! destination is an in-flight write (shadow flag `F_BULK`) until a thread's
//! `test_wait`/`try_wait` observes the phase complete, when `land_bulk` writes the
//! data and clears the flag (9.7.9.25.2: the result is visible once the completion is
//! observed). Any access to in-flight bytes, and a copy onto bytes of a copy not yet
//! landed, is a hazard; `mbar_tx`/`mbar_settle` check the tx-count rules.
//!
//! wgmma (PTX ISA 9.7.15): `wgmma_op` keeps a per-warp queue of issued operations
//! with their results; `wg_touch` checks instructions that access registers of wgmma
//! operands (flagged at load time, `Inst::wg`); `wg_shared_write` checks and records
//! generic-proxy shared writes for the proxy-fence rule.
//!
//! setmaxnreg (PTX ISA "setmaxnreg"): `set_max_nreg` checks each execution against
//! the warp's log (`Warp::maxnreg`) and its warpgroup's logs; `setmaxnreg_group_end`
//! compares the log lengths once a warpgroup has exited. With the launch register
//! count known, `set_max_nreg` also moves registers between the warp and the block's
//! pool (`RegPool`): an `.inc` the pool cannot supply leaves the warp waiting at the
//! instruction like a collective whose members have not all arrived (`coll_wait`),
//! until a `.dec` wakes it to retry; `pool_exhausted` names the hang once the
//! driver finds the block can make no progress.

use crate::error::{
    Access, BulkHazard, BulkRule, GridDependencyHazard, HazardKind, NonCoherentHazard, SetMaxNRegHazard,
    SetMaxNRegRule, SimError, WgmmaHazard, WgmmaRule,
};
use crate::ir::*;
use crate::report::{Counters, LaunchReport};
use crate::semantics::types::{Rounding, ScalarType};
use crate::semantics::wgmma::{wgmma_warp, MatrixDesc, WgmmaDesc};
use crate::semantics::{bits, convert, float, mma, warp};
use crate::state::*;
use crate::tensor_map::{TensorMap, TENSOR_MAP_BYTES};

/// Alignment of a tensor copy's shared destination, bytes (PTX ISA 9.7.9.25.5.1).
const TENSOR_COPY_DST_ALIGN: u64 = 128;

/// Launch-wide read-only context.
pub struct Ctx<'a> {
    /// The kernel.
    pub k: &'a Kernel,
    /// Device memory.
    pub mem: &'a GlobalMem,
    /// Param buffer.
    pub params: &'a [u8],
    /// Addresses of module-scope globals.
    pub gsyms: &'a [u64],
    /// Grid shape.
    pub grid: [u32; 3],
    /// Block shape.
    pub block: [u32; 3],
    /// Threads per block.
    pub nthreads: u32,
    /// Shared bytes per block (static + dynamic).
    pub smem_size: u32,
    /// Dynamic shared bytes.
    pub dyn_smem: u32,
    /// Hazard checks on.
    pub hazards: bool,
    /// Simulated SM count.
    pub nsm: u32,
    /// Registers per thread each warp starts with (`ptxas`'s count), when known.
    pub launch_regs: Option<u32>,
    /// Of a programmatic launch with hazard checks on: what the previous grid did to
    /// each allocation (indexed like `mem.allocs`).
    pub prior_grid: Option<&'a PriorFlags>,
}

/// What the grids that may still run when the next one starts did to global memory:
/// the allocations they read and wrote, by base address (from their launch reports'
/// per-allocation traffic; atomics count as both). Usually one grid, the previous; more
/// when a programmatic grid could let the next one start before the grid before it had
/// completed (see [`PriorGrid::after`]).
pub struct PriorGrid {
    /// (base, wrote, kernel): every allocation a grid read or wrote, newest grid first.
    used: Vec<(u64, bool, String)>,
}

/// A [`PriorGrid`] laid over the allocations of the next launch.
pub struct PriorFlags {
    /// Per allocation index: [`PRIOR_READ`] | [`PRIOR_WROTE`], or 0.
    flags: Vec<u8>,
    /// Per allocation index: the kernel to name (one that wrote it, if any did).
    kernels: Vec<String>,
}

const PRIOR_READ: u8 = 1;
const PRIOR_WROTE: u8 = 2;

impl PriorGrid {
    /// The grids that may still run when the grid after the launch of `kernel` that
    /// produced `report` starts: that launch, and `before` too when the launch was
    /// `programmatic` and could let its dependents start before `before` had completed,
    /// i.e. when none of its threads executed `griddepcontrol.wait` (its blocks can exit
    /// early) or one executed `griddepcontrol.launch_dependents` before its wait.
    pub fn after(kernel: &str, report: &LaunchReport, programmatic: bool, before: Option<PriorGrid>) -> PriorGrid {
        let mut used: Vec<_> =
            report.per_alloc.iter().map(|(&base, t)| (base, t.store_bytes > 0, kernel.into())).collect();
        let overlapped = programmatic && (report.grid_dependency_waits == 0 || report.early_dependent_launches > 0);
        if let (true, Some(b)) = (overlapped, before) {
            used.extend(b.used);
        }
        PriorGrid { used }
    }

    /// Flags per allocation, for allocations with these base addresses in order.
    pub fn flags_for(&self, bases: impl Iterator<Item = u64>) -> PriorFlags {
        let (mut flags, mut kernels) = (Vec::new(), Vec::new());
        for b in bases {
            let mut f = 0;
            let mut name = "";
            for (_, wrote, kernel) in self.used.iter().filter(|u| u.0 == b) {
                if *wrote && f & PRIOR_WROTE == 0 || name.is_empty() {
                    name = kernel;
                }
                f |= if *wrote { PRIOR_READ | PRIOR_WROTE } else { PRIOR_READ };
            }
            flags.push(f);
            kernels.push(name.to_string());
        }
        PriorFlags { flags, kernels }
    }
}

/// The grid-dependency check of a programmatic launch (see
/// `SimConfig::programmatic_launch`): lane `l` of warp `wi`, which has or has not
/// executed `griddepcontrol.wait` (`waited`), accesses allocation `ai` at `addr`.
/// A read races the previous grid's writes; a write races its reads and writes.
#[inline(always)]
fn check_grid_dependency(ctx: &Ctx, waited: bool, ai: usize, write: bool, at: (usize, usize, u32, u64)) -> R<()> {
    let Some(prior) = ctx.prior_grid else { return Ok(()) };
    let flags = prior.flags[ai];
    if waited || flags & PRIOR_WROTE == 0 && !(write && flags & PRIOR_READ != 0) {
        return Ok(());
    }
    let (wi, l, pc, addr) = at;
    let hazard = GridDependencyHazard {
        write,
        prior_kernel: prior.kernels[ai].clone(),
        prior_wrote: flags & PRIOR_WROTE != 0,
        alloc_base: ctx.mem.allocs[ai].base,
    };
    Err(fault_at(HazardKind::GridDependency(Box::new(hazard)), wi, l, pc, addr))
}

/// The programmatic-launch half of the read-only-path check (see
/// `HazardKind::NonCoherentLoad`): an `ld.global.nc` by lane `l` of warp `wi` of
/// allocation `ai` that an earlier grid still in flight wrote. (The same-grid half is
/// checked when the launch ends, from every block's first such load and write.)
fn check_non_coherent(ctx: &Ctx, ai: usize, at: (usize, usize, u32, u64)) -> R<()> {
    let Some(prior) = ctx.prior_grid else { return Ok(()) };
    if prior.flags[ai] & PRIOR_WROTE == 0 {
        return Ok(());
    }
    let (wi, l, pc, addr) = at;
    let hazard = NonCoherentHazard {
        writer: None,
        prior_kernel: Some(prior.kernels[ai].clone()),
        alloc_base: ctx.mem.allocs[ai].base,
    };
    Err(fault_at(HazardKind::NonCoherentLoad(Box::new(hazard)), wi, l, pc, addr))
}

/// 32-bit registers of an SM, the most one block may hold (CUDA Programming Guide,
/// "Technical Specifications per Compute Capability", 8.0 to 9.0).
pub const REGISTERS_PER_SM: u32 = 64 * 1024;

/// Registers a warp holds at `regs` per thread: allocated per warp in units of 256.
pub fn warp_registers(regs: u32) -> u32 {
    (regs * 32).next_multiple_of(256)
}

/// State of one resident block.
pub struct Block {
    /// Block index.
    pub ctaid: [u32; 3],
    /// Warps.
    pub warps: Vec<Warp>,
    /// Shared memory.
    pub shared: Vec<u8>,
    /// Hazard shadow of shared memory (empty when checks are off).
    pub shadow: Vec<ShadowByte>,
    /// Block-barrier epoch.
    pub epoch: u32,
    /// Barrier state per id.
    pub bars: [BarState; 16],
    /// Counters.
    pub c: Counters,
    /// Wrote global memory in the current quantum.
    pub wrote_global: bool,
    /// First read of never-written shared bytes in the current epoch: (linear tid,
    /// pc, shared offset).
    pub uninit: Option<(u32, u32, u32)>,
    /// A lane exited in the current quantum.
    pub progressed: bool,
    /// Clock counter.
    pub clock: u64,
    /// Linear block index in the grid.
    pub idx: u64,
    /// Scheduler: the progress epoch when the current quantum started.
    pub start_epoch: u64,
    /// Scheduler: state hash at the end of the last quantum.
    pub last_hash: u64,
    /// Scheduler: this block's current quantum (shrinks while it makes no progress,
    /// so blocks spinning on a flag cost little while the producer runs).
    pub quantum: u64,
    /// wgmma state (`Some` only for kernels that use `wgmma.mma_async`).
    pub wg: Option<Box<WgState>>,
    /// Bulk-copy state (`Some` only for kernels that use `cp.async.bulk` or mbarrier
    /// tx-count operations).
    pub bulk: Option<Box<BulkState>>,
    /// setmaxnreg register pool (`Some` only for kernels that use setmaxnreg, with
    /// hazard checks on and the launch register count known).
    pub pool: Option<Box<RegPool>>,
}

/// A fault raised while executing, located by warp, lane and instruction.
pub enum Fault {
    /// A hazard of the simulated program.
    Hazard { kind: HazardKind, warp: usize, lane: usize, pc: u32, addr: Option<u64> },
    /// An interpreter error.
    Error(SimError),
}

/// Outcome of one step.
pub enum Step {
    /// No runnable lane.
    Blocked,
    /// Executed; `backward` = a taken backward branch (quantum boundary candidate).
    Ran { backward: bool },
}

type R<T> = Result<T, Fault>;

#[inline(always)]
fn lanes(mut m: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if m == 0 {
            None
        } else {
            let l = m.trailing_zeros() as usize;
            m &= m - 1;
            Some(l)
        }
    })
}

#[inline(always)]
fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

#[inline(always)]
fn sext(v: u64, bits: u32) -> i64 {
    if bits >= 64 {
        v as i64
    } else {
        ((v << (64 - bits)) as i64) >> (64 - bits)
    }
}

fn unsup(what: String, line: u32) -> Fault {
    Fault::Error(SimError::Unsupported { what, line })
}

/// Values of special registers and symbols for one warp.
struct Env<'a> {
    ctx: &'a Ctx<'a>,
    ctaid: [u32; 3],
    wi: usize,
    clock: u64,
}

impl Env<'_> {
    fn tid(&self, lane: usize) -> [u32; 3] {
        let t = self.wi as u32 * 32 + lane as u32;
        let [bx, by, _] = self.ctx.block;
        [t % bx, (t / bx) % by, t / (bx * by)]
    }
    #[inline(always)]
    fn rd(&self, regs: &[u64], o: &Operand, l: usize) -> u64 {
        match o {
            Operand::Reg(r) => regs[*r as usize * 32 + l],
            Operand::Imm(v) => *v,
            Operand::Sreg(s) => self.sreg(*s, l),
            Operand::GlobalSym(i) => self.ctx.gsyms[*i as usize],
        }
    }
    fn sreg(&self, s: Sreg, l: usize) -> u64 {
        let c = self.ctx;
        let lm = 1u64 << l;
        (match s {
            Sreg::Tid(d) => self.tid(l)[d as usize],
            Sreg::Ntid(d) => c.block[d as usize],
            Sreg::Ctaid(d) => self.ctaid[d as usize],
            Sreg::Nctaid(d) => c.grid[d as usize],
            Sreg::LaneId => l as u32,
            Sreg::WarpId => self.wi as u32,
            Sreg::NWarpId => c.nthreads.div_ceil(32),
            Sreg::SmId => 0,
            Sreg::NSmId => c.nsm,
            Sreg::Clock => return self.clock,
            Sreg::LanemaskEq => lm as u32,
            Sreg::LanemaskLe => ((lm << 1) - 1) as u32,
            Sreg::LanemaskLt => (lm - 1) as u32,
            Sreg::LanemaskGe => !((lm - 1) as u32),
            Sreg::LanemaskGt => !(((lm << 1) - 1) as u32),
            Sreg::DynSmem => c.dyn_smem,
            Sreg::TotalSmem => c.smem_size,
        }) as u64
    }
}

/// Where an address points.
#[derive(Clone, Copy)]
enum Loc {
    Global(usize, u64),
    Shared(u32),
    Local(u32),
    Param(u32),
}

/// Why an address could not be resolved (converted to a `HazardKind` on the cold path).
#[derive(Clone, Copy)]
enum BadAddr {
    Oob(&'static str, u32),
    Misaligned(&'static str, u32),
}

impl From<BadAddr> for HazardKind {
    fn from(b: BadAddr) -> HazardKind {
        match b {
            BadAddr::Oob(space, size) => HazardKind::OutOfBounds { space, size },
            BadAddr::Misaligned(space, size) => HazardKind::Misaligned { space, size },
        }
    }
}

/// Translates an address of `space` to a location, checking bounds and alignment.
#[inline(always)]
fn resolve(ctx: &Ctx, space: Space, addr: u64, size: u32, align: u32, local_size: u32) -> Result<Loc, BadAddr> {
    let (space, a) = match space {
        Space::Generic => {
            if (SHARED_WINDOW..SHARED_WINDOW + WINDOW_SIZE).contains(&addr) {
                (Space::Shared, addr - SHARED_WINDOW)
            } else if (LOCAL_WINDOW..LOCAL_WINDOW + WINDOW_SIZE).contains(&addr) {
                (Space::Local, addr - LOCAL_WINDOW)
            } else if (PARAM_WINDOW..PARAM_WINDOW + WINDOW_SIZE).contains(&addr) {
                (Space::Param, addr - PARAM_WINDOW)
            } else {
                (Space::Global, addr)
            }
        }
        s => (s, addr),
    };
    let name = match space {
        Space::Shared => "shared",
        Space::Local => "local",
        Space::Param => "param",
        _ => "global",
    };
    let misaligned = if align.is_power_of_two() { a & (align as u64 - 1) != 0 } else { a % align as u64 != 0 };
    if ctx.hazards && misaligned {
        return Err(BadAddr::Misaligned(name, align));
    }
    let oob = BadAddr::Oob(name, size);
    let end = a.checked_add(size as u64).ok_or(oob)?;
    match space {
        Space::Shared if end <= ctx.smem_size as u64 => Ok(Loc::Shared(a as u32)),
        Space::Local if end <= local_size as u64 => Ok(Loc::Local(a as u32)),
        Space::Param if end <= ctx.params.len() as u64 => Ok(Loc::Param(a as u32)),
        Space::Global | Space::Const => {
            ctx.mem.find(a, size as u64).map(|i| Loc::Global(i, a - ctx.mem.allocs[i].base)).ok_or(oob)
        }
        _ => Err(oob),
    }
}

#[inline(always)]
fn rd_bytes(b: &[u8], o: usize, size: u32) -> u64 {
    // Fixed-size loads (a byte-wise copy into a buffer stalls store forwarding).
    match size {
        1 => b[o] as u64,
        2 => u16::from_le_bytes([b[o], b[o + 1]]) as u64,
        4 => u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4])) as u64,
        8 => u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8])),
        _ => {
            let mut v = [0u8; 8];
            v[..size as usize].copy_from_slice(&b[o..o + size as usize]);
            u64::from_le_bytes(v)
        }
    }
}

#[inline(always)]
fn wr_bytes(b: &mut [u8], o: usize, size: u32, v: u64) {
    match size {
        1 => b[o] = v as u8,
        2 => b[o..o + 2].copy_from_slice(&(v as u16).to_le_bytes()),
        4 => b[o..o + 4].copy_from_slice(&(v as u32).to_le_bytes()),
        8 => b[o..o + 8].copy_from_slice(&v.to_le_bytes()),
        _ => b[o..o + size as usize].copy_from_slice(&v.to_le_bytes()[..size as usize]),
    }
}

/// Per-warp-instruction memory access log for the sector/wavefront counters.
struct AccLog {
    n: usize,
    addr: [u64; 32],
    lane: [u8; 32],
}

impl AccLog {
    fn new() -> AccLog {
        AccLog { n: 0, addr: [0; 32], lane: [0; 32] }
    }
    fn push(&mut self, lane: usize, a: u64) {
        if self.n < 32 {
            self.addr[self.n] = a;
            self.lane[self.n] = lane as u8;
            self.n += 1;
        }
    }
}

/// True when lane i of the log accesses `addr[0] + (lane[i] - lane[0]) * size`
/// (consecutive elements in lane order; the common coalesced case).
fn is_lane_linear(log: &AccLog, size: u32) -> bool {
    let (a0, l0) = (log.addr[0], log.lane[0] as u64);
    (1..log.n).all(|i| log.addr[i] == a0.wrapping_add((log.lane[i] as u64 - l0) * size as u64))
}

/// Distinct 32-byte sectors touched by a warp-level global access of `size` bytes per lane.
fn sectors(log: &AccLog, size: u32) -> u64 {
    if log.n == 0 {
        return 0;
    }
    let sz = size as u64;
    let contiguous = log.lane[log.n - 1] as usize - log.lane[0] as usize + 1 == log.n;
    if contiguous && is_lane_linear(log, size) {
        let first = log.addr[0] >> 5;
        let last = (log.addr[log.n - 1] + sz - 1) >> 5;
        return last - first + 1;
    }
    // Count distinct sectors with a small open-addressing set (at most 64 entries).
    let mut set = [u64::MAX; 128];
    let mut count = 0;
    for &a in &log.addr[..log.n] {
        let (first, last) = (a >> 5, (a + sz - 1) >> 5);
        for x in first..=last.min(first + 1) {
            let mut h = (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 57) as usize;
            loop {
                if set[h] == x {
                    break;
                }
                if set[h] == u64::MAX {
                    set[h] = x;
                    count += 1;
                    break;
                }
                h = (h + 1) & 127;
            }
        }
    }
    count
}

/// Wavefronts of a warp-level shared access (32 banks x 4 bytes): lanes are split into
/// phases of 128 bytes (8-byte: half-warps, 16-byte: quarter-warps); per phase the
/// wavefronts are the max over banks of distinct words. Returns (wavefronts, minimum).
fn wavefronts(log: &AccLog, size: u32) -> (u64, u64) {
    // Lanes per phase: 32 (<= 4 bytes), 16 (8 bytes), 8 (16 bytes) -> phase = lane >> sh.
    let sh = (128 / size.clamp(4, 16)).trailing_zeros();
    let mut active = [false; 4];
    for &l in &log.lane[..log.n] {
        active[((l >> sh) as usize).min(3)] = true;
    }
    let min = active.iter().filter(|&&a| a).count() as u64;
    if log.n == 0 || (size >= 4 && log.addr[0].is_multiple_of(4) && is_lane_linear(log, size)) {
        // Consecutive words: each bank at most once per phase.
        return (min, min);
    }
    let mut total = 0;
    for (ph, _) in active.iter().enumerate().filter(|(_, &a)| a) {
        let mut ws = [0u64; 128];
        let mut n = 0;
        for i in 0..log.n {
            if ((log.lane[i] >> sh) as usize).min(3) != ph {
                continue;
            }
            let a = log.addr[i];
            for wd in (a >> 2)..=((a + size as u64 - 1) >> 2) {
                // Skipping repeats of the previous word keeps broadcasts cheap.
                if n < ws.len() && (n == 0 || ws[n - 1] != wd) {
                    ws[n] = wd;
                    n += 1;
                }
            }
        }
        let ws = &mut ws[..n];
        // Fast path: no bank holds two different words.
        let mut bank_word = [u64::MAX; 32];
        let mut conflict = false;
        for &w in ws.iter() {
            let b = &mut bank_word[(w % 32) as usize];
            if *b == u64::MAX {
                *b = w;
            } else if *b != w {
                conflict = true;
                break;
            }
        }
        if !conflict {
            total += 1;
            continue;
        }
        ws.sort_unstable();
        let mut banks = [0u8; 32];
        for (i, w) in ws.iter().enumerate() {
            if i == 0 || ws[i - 1] != *w {
                banks[(w % 32) as usize] += 1;
            }
        }
        total += *banks.iter().max().unwrap_or(&1) as u64;
    }
    (total, min)
}

/// What one shared-memory access does, as the race model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SharedAccessKind {
    /// Plain load (`ld`, `ldmatrix`).
    Read,
    /// Plain store (`st`, `mbarrier.init`/`inval`).
    Write,
    /// Atomic that only observes the value (`mbarrier.test_wait`/`try_wait`): ordered
    /// against other atomics, racing with unordered plain writes.
    AtomicRead,
    /// Atomic read-modify-write (`atom`, `red`, `mbarrier.arrive`).
    AtomicRmw,
    /// `cp.async` destination: a write that stays pending until its issuing thread
    /// lands it (`land_cp`), so an earlier read is an unwaited copy, not a race.
    AsyncCopyWrite,
    /// `cp.async.bulk` destination: a write that stays in flight until a thread
    /// observes the completion of its mbarrier phase (`land_bulk`); any access before
    /// then is a bulk-copy hazard, not a race.
    BulkCopyWrite,
}

impl SharedAccessKind {
    /// Writes the bytes: a race needs at least one write, and a write replaces the
    /// byte's record (it orders after everything it did not race with).
    #[inline(always)]
    fn writes(self) -> bool {
        !matches!(self, Self::Read | Self::AtomicRead)
    }

    /// Observes the bytes' value, so it can see never-written bytes or a copy still
    /// in flight.
    #[inline(always)]
    fn reads(self) -> bool {
        !matches!(self, Self::Write | Self::AsyncCopyWrite | Self::BulkCopyWrite)
    }

    /// Atomic: never races with another atomic.
    #[inline(always)]
    fn atomic(self) -> bool {
        matches!(self, Self::AtomicRead | Self::AtomicRmw)
    }

    /// Shadow flags recorded for the access; they let a later access (and the fault
    /// report) recover what this one was.
    #[inline(always)]
    fn flags(self) -> u16 {
        match self {
            Self::AtomicRead | Self::AtomicRmw => F_ATOMIC,
            Self::AsyncCopyWrite => F_PENDING,
            Self::BulkCopyWrite => F_BULK,
            Self::Read | Self::Write => 0,
        }
    }

    /// Flags of a byte's last write that make this access a hazard: a copy not yet
    /// landed. Every access conflicts with an in-flight bulk copy; reads and copies
    /// also with a cp.async not yet waited for (a plain write over one is judged by
    /// the race rules, as before bulk copies existed).
    #[inline(always)]
    fn pending_mask(self) -> u16 {
        match self {
            Self::Write | Self::AsyncCopyWrite => F_BULK,
            _ => F_PENDING | F_BULK,
        }
    }
}

/// One shared-memory access of `[off, off+size)` by one lane of the stepping warp.
#[derive(Clone, Copy, Debug)]
struct SharedAccess {
    /// Lane in the stepping warp.
    lane: usize,
    /// Shared offset of the first byte (also the address a fault reports).
    off: u32,
    /// Bytes.
    size: u32,
    /// What the access does.
    kind: SharedAccessKind,
}

/// The block's shared-memory race shadow, borrowed for one step of one warp: the
/// state the race model (module doc) checks each access against and records it
/// into, and what is common to all accesses of the step. Built inside each memory
/// instruction's arm rather than once per step, so its fields do not hold registers
/// across the whole of `exec_simple` (measurably slower, hazard checks on or off).
struct SharedShadow<'a> {
    /// Launch context: whether checks are on, and what locates a fault.
    ctx: &'a Ctx<'a>,
    /// Per-byte shadow (empty when hazard checks are off).
    bytes: &'a mut [ShadowByte],
    /// First read of a never-written byte in the current epoch (`Block::uninit`).
    uninit: &'a mut Option<(u32, u32, u32)>,
    /// Block-barrier epoch. Borrowed, not copied: an mbarrier phase completing
    /// mid-step advances it for the lanes after it.
    epoch: &'a mut u32,
    /// Warp-sync epoch of the stepping warp. Copied: within a step only
    /// `bar.warp.sync` changes it, and that accesses no memory.
    wsync: u32,
    /// The stepping warp.
    wi: usize,
    /// Instruction index of the step.
    pc: u32,
}

impl SharedShadow<'_> {
    /// Checks and records `a` when hazard checks are on; a hazard becomes a fault at
    /// the accessing lane.
    #[inline(always)]
    fn check(&mut self, a: SharedAccess) -> R<()> {
        if !self.ctx.hazards {
            return Ok(());
        }
        self.record(a).map_err(|e| self.race_fault(e, a.lane, a.off, a.kind))
    }

    /// Checks `a` against each byte's record and records it (see the module doc for
    /// the model). The error carries the conflicting earlier access, whose details
    /// only `race_fault` needs: `Uninitialized` with an access stands for a race, and
    /// `CpAsyncNotWaited` for a copy not yet landed (turned into a bulk-copy hazard
    /// there when a bulk copy is involved; its issuer is filled in there).
    #[inline(always)]
    fn record(&mut self, a: SharedAccess) -> Result<(), (HazardKind, Option<ShadowAcc>)> {
        let (epoch, wsync, pc) = (*self.epoch, self.wsync, self.pc);
        let (write, atomic, reads) = (a.kind.writes(), a.kind.atomic(), a.kind.reads());
        let pending = a.kind.pending_mask();
        let tid = (self.wi * 32 + a.lane) as u32;
        let t = tid as u16;
        let me = ShadowAcc { tid: t, flags: a.kind.flags(), epoch, wsync, pc };
        let ordered = |p: &ShadowAcc| {
            p.tid == NO_TID
                || p.tid == t
                || p.epoch != epoch
                || (p.tid / 32 == t / 32 && p.wsync != wsync)
                || (atomic && p.flags & F_ATOMIC != 0)
        };
        for s in &mut self.bytes[a.off as usize..(a.off + a.size) as usize] {
            if reads && s.w.tid == NO_TID {
                // Reported when the epoch ends (barrier or block end) unless a write by
                // another thread in this epoch turns it into a race first.
                self.uninit.get_or_insert((tid, pc, a.off));
            }
            if s.w.flags & pending != 0 {
                return Err((HazardKind::CpAsyncNotWaited { issuer: [0; 3], issue_line: 0 }, Some(s.w)));
            }
            if !ordered(&s.w) {
                return Err((HazardKind::Uninitialized, Some(s.w)));
            }
            if write {
                for r in [s.r1, s.r2] {
                    if !ordered(&r) {
                        return Err((HazardKind::Uninitialized, Some(r)));
                    }
                }
                s.w = me;
                s.r1 = ShadowAcc::NONE;
                s.r2 = ShadowAcc::NONE;
            } else if s.r1.tid == t || s.r1.tid == NO_TID {
                s.r1 = me;
            } else {
                s.r2 = s.r1;
                s.r1 = me;
            }
        }
        Ok(())
    }

    /// Turns a hazard found by `record` for an access by `lane` at shared offset `off`
    /// into a fault there, naming the earlier access it conflicts with. Takes the
    /// access's fields rather than the access: a by-value aggregate would be stored
    /// to the stack on every access, hazard or not.
    #[cold]
    fn race_fault(
        &self,
        (kind, prev): (HazardKind, Option<ShadowAcc>),
        lane: usize,
        off: u32,
        acc: SharedAccessKind,
    ) -> Fault {
        let write = acc.writes();
        let (ctx, wi, pc) = (self.ctx, self.wi, self.pc);
        let env = Env { ctx, ctaid: [0; 3], wi, clock: 0 };
        let line_of = |p: u32| ctx.k.insts.get(p as usize).map_or(0, |i| i.line);
        let tid3 = |t: u16| {
            let e = Env { ctx, ctaid: [0; 3], wi: t as usize / 32, clock: 0 };
            e.tid(t as usize % 32)
        };
        let kind = match (kind, prev) {
            (HazardKind::CpAsyncNotWaited { .. }, Some(p))
                if p.flags & F_BULK != 0 || acc == SharedAccessKind::BulkCopyWrite =>
            {
                // The first byte still holding the copy's record (bytes before it in
                // the access were not in flight, and now hold this access's record).
                let same = |w: &ShadowAcc| w.tid == p.tid && w.pc == p.pc && w.flags == p.flags && w.epoch == p.epoch;
                let off =
                    (off as usize..self.bytes.len()).find(|&i| same(&self.bytes[i].w)).unwrap_or(off as usize) as u32;
                let copy = matches!(acc, SharedAccessKind::BulkCopyWrite | SharedAccessKind::AsyncCopyWrite);
                let other = access_of(ctx, p.tid as usize / 32, p.tid as usize % 32, p.pc, true);
                let what = if p.flags & F_BULK != 0 { "cp.async.bulk" } else { "cp.async" };
                let (rule, detail) = if copy {
                    (
                        BulkRule::OverlappingCopies,
                        format!(
                            "shared byte {off:#x} is also the destination of a {what} (PTX line {}) not yet landed",
                            other.line
                        ),
                    )
                } else {
                    (
                        BulkRule::InFlight,
                        format!(
                            "{} of shared byte {off:#x}, a destination of the cp.async.bulk at PTX line {}",
                            if write { "write" } else { "read" },
                            other.line
                        ),
                    )
                };
                return bulk_fault(rule, Some(other), detail, (wi, lane, pc, Some(off as u64)));
            }
            (HazardKind::CpAsyncNotWaited { .. }, Some(p)) => {
                HazardKind::CpAsyncNotWaited { issuer: tid3(p.tid), issue_line: line_of(p.pc) }
            }
            (HazardKind::Uninitialized, Some(p)) => HazardKind::SharedRace {
                first: Access {
                    tid: tid3(p.tid),
                    warp: p.tid as u32 / 32,
                    line: line_of(p.pc),
                    write: p.flags & (F_ATOMIC | F_PENDING | F_BULK) != 0 || is_write_pc(ctx, p.pc),
                },
                second: Access { tid: env.tid(lane), warp: wi as u32, line: line_of(pc), write },
            },
            (k, _) => k,
        };
        fault_at(kind, wi, lane, pc, off as u64)
    }
}

/// Executes one step of warp `wi`.
pub fn step(ctx: &Ctx, b: &mut Block, wi: usize) -> R<Step> {
    let w = &mut b.warps[wi];
    let run = w.runnable();
    if run == 0 {
        return Ok(Step::Blocked);
    }
    let (pc, mask) = if w.uni {
        (w.upc, run)
    } else {
        // Lowest PC first (reconverges forward branches); highest first while `rr`.
        let mut best = if w.rr { 0 } else { u32::MAX };
        let mut m = 0u32;
        for l in lanes(run) {
            let p = w.pc[l];
            if p == best {
                m |= 1 << l;
            } else if (p < best) != w.rr {
                best = p;
                m = 1 << l;
            }
        }
        (best, m)
    };
    let Some(inst) = ctx.k.insts.get(pc as usize) else {
        return Err(unsup(format!("program counter {pc} past the end of the kernel"), 0));
    };
    let exec = match inst.guard {
        None => mask,
        Some((r, neg)) => {
            let base = r as usize * 32;
            let mut e = 0;
            for l in lanes(mask) {
                if (w.regs[base + l] & 1 != 0) != neg {
                    e |= 1 << l;
                }
            }
            e
        }
    };
    b.clock += 1;
    b.c.warp_insts += 1;
    b.c.class[inst.class as usize] += exec.count_ones() as u64;
    // Kernels with wgmma: accesses to registers of wgmma operands.
    if inst.wg && exec != 0 && ctx.hazards {
        wg_touch(ctx, b.wg.as_deref_mut(), wi, pc, exec, &ctx.k.wg_access[pc as usize])?;
    }
    let next = pc + 1;
    let mut backward = false;
    match &inst.kind {
        Kind::Bra { target } => {
            let t = *target;
            if exec == mask {
                advance(w, mask, t);
            } else {
                advance(w, exec, t);
                advance(w, mask & !exec, next);
            }
            backward = exec != 0 && t <= pc;
            if backward {
                w.rr = false;
            }
        }
        Kind::Exit => {
            if let Some(g) = b.wg.as_deref() {
                wg_exit(ctx, g, wi, exec, pc)?;
            }
            w.materialize();
            w.live &= !exec;
            for l in lanes(mask & !exec) {
                w.pc[l] = next;
            }
            if exec != 0 {
                if ctx.k.uses_setmaxnreg && ctx.hazards && w.live == 0 {
                    setmaxnreg_group_end(ctx, &b.warps, wi)?;
                }
                b.progressed = true;
                if let Some(bs) = b.bulk.as_deref() {
                    if ctx.hazards && b.warps.iter().all(|w| w.live == 0) {
                        bulk_exit(ctx, bs, &b.shared, (wi, exec.trailing_zeros() as usize, pc))?;
                    }
                }
            }
        }
        Kind::Trap => {
            if exec != 0 {
                let lane = exec.trailing_zeros() as usize;
                return Err(Fault::Hazard { kind: HazardKind::Trap, warp: wi, lane, pc, addr: None });
            }
            advance(w, mask, next);
        }
        Kind::Bar { id, count, arrive } => {
            let env = Env { ctx, ctaid: b.ctaid, wi, clock: b.clock };
            w.materialize();
            if exec != 0 {
                let l0 = exec.trailing_zeros() as usize;
                let idv = env.rd(&w.regs, id, l0) as u32;
                if idv >= 16 {
                    return Err(unsup(format!("barrier id {idv}"), inst.line));
                }
                let cnt = count.as_ref().map(|c| env.rd(&w.regs, c, l0) as u32);
                let bs = &mut b.bars[idv as usize];
                bs.arrived += exec.count_ones();
                if cnt.is_some() {
                    bs.count = cnt;
                }
                if !*arrive {
                    w.bar_wait |= exec;
                    for l in lanes(exec) {
                        w.bar_at[l] = (idv, pc);
                    }
                }
            }
            for l in lanes(mask) {
                w.pc[l] = next;
            }
        }
        _ if inst.collective => {
            let env = Env { ctx, ctaid: b.ctaid, wi, clock: b.clock };
            w.materialize();
            let mut here = mask;
            for l in lanes(w.coll_wait & w.live & !w.bar_wait) {
                if w.pc[l] == pc {
                    here |= 1 << l;
                }
            }
            let l0 = mask.trailing_zeros() as usize;
            let required = match &inst.kind {
                Kind::Shfl { mask: m, .. }
                | Kind::Vote { mask: m, .. }
                | Kind::Redux { mask: m, .. }
                | Kind::WarpSync { mask: m } => env.rd(&w.regs, m, l0) as u32,
                _ => w.live,
            };
            if required & !w.live != 0 {
                return Err(Fault::Hazard {
                    kind: HazardKind::Barrier {
                        detail: format!(
                            "warp collective member mask names lanes {:#010x} that are not active (exited or outside the block)",
                            required & !w.live
                        ),
                    },
                    warp: wi,
                    lane: l0,
                    pc,
                    addr: None,
                });
            }
            if required & !here != 0 {
                w.coll_wait |= mask;
                for l in lanes(mask) {
                    w.pc[l] = pc;
                }
            } else {
                let exec = match inst.guard {
                    None => here,
                    Some((r, neg)) => {
                        let mut e = 0;
                        for l in lanes(here) {
                            if (w.regs[r as usize * 32 + l] & 1 != 0) != neg {
                                e |= 1 << l;
                            }
                        }
                        e
                    }
                };
                w.coll_wait &= !here;
                for l in lanes(here) {
                    w.pc[l] = next;
                }
                collective(ctx, b, wi, inst, exec, pc)?;
            }
        }
        _ => {
            if exec != 0 {
                exec_simple(ctx, b, wi, inst, exec, pc)?;
            }
            let w = &mut b.warps[wi];
            advance(w, mask, next);
        }
    }
    let w = &mut b.warps[wi];
    w.try_converge();
    w.budget_used += 1;
    Ok(Step::Ran { backward })
}

#[inline(always)]
fn advance(w: &mut Warp, m: u32, to: u32) {
    if w.uni && m == w.runnable() {
        w.upc = to;
        return;
    }
    w.materialize();
    for l in lanes(m) {
        w.pc[l] = to;
    }
}

#[cold]
fn fault_at(kind: impl Into<HazardKind>, wi: usize, lane: usize, pc: u32, addr: u64) -> Fault {
    Fault::Hazard { kind: kind.into(), warp: wi, lane, pc, addr: Some(addr) }
}

fn is_write_pc(ctx: &Ctx, pc: u32) -> bool {
    matches!(
        ctx.k.insts.get(pc as usize).map(|i| &i.kind),
        Some(
            Kind::St { .. }
                | Kind::Atom { .. }
                | Kind::CpAsync { .. }
                | Kind::CpAsyncBulk { .. }
                | Kind::CpAsyncBulkTensor { .. }
                | Kind::CpWait(_)
                | Kind::CpWaitAll
        )
    )
}

/// Reads `size` bytes at a resolved location.
fn load(ctx: &Ctx, shared: &[u8], local: &[u8], lane: usize, lsize: u32, loc: Loc, size: u32) -> u64 {
    match loc {
        Loc::Global(i, o) => ctx.mem.allocs[i].load(o, size),
        Loc::Shared(o) => rd_bytes(shared, o as usize, size),
        Loc::Local(o) => rd_bytes(local, lane * lsize as usize + o as usize, size),
        Loc::Param(o) => rd_bytes(ctx.params, o as usize, size),
    }
}

fn elem_size(ty: ScalarType) -> u32 {
    ty.bits().max(8) / 8
}

fn f32_of(v: u64) -> f32 {
    f32::from_bits(v as u32)
}

fn ftz32(x: f32, ftz: bool) -> f32 {
    if ftz && x.is_subnormal() {
        0.0f32.copysign(x)
    } else {
        x
    }
}

fn sat32(x: f32, sat: bool) -> f32 {
    if !sat {
        x
    } else if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// Integer compare (PTX ISA "setp": `lo/ls/hi/hs` are the unsigned forms).
fn cmp_int(c: Cmp, a: u64, b: u64, ty: ScalarType) -> bool {
    let bits = ty.bits();
    let (x, y) = if ty.is_signed_int() {
        (sext(a, bits) as i128, sext(b, bits) as i128)
    } else {
        ((a & mask(bits)) as i128, (b & mask(bits)) as i128)
    };
    match c {
        Cmp::Eq => x == y,
        Cmp::Ne => x != y,
        Cmp::Lt => x < y,
        Cmp::Le => x <= y,
        Cmp::Gt => x > y,
        Cmp::Ge => x >= y,
        _ => false,
    }
}

/// Integer two-operand op (PTX ISA "Integer Arithmetic Instructions"; shift amounts
/// larger than the width clamp to the width; division by zero is unspecified in the
/// ISA: unsigned gives all ones, signed gives -1, `rem` by zero gives the dividend).
fn int2(op: IntOp, ty: ScalarType, a: u64, b: u64) -> u64 {
    let bits = ty.bits();
    let m = mask(bits);
    let s = ty.is_signed_int();
    let (a, b) = (a & m, b & m);
    let r = match op {
        IntOp::Add => a.wrapping_add(b),
        IntOp::Sub => a.wrapping_sub(b),
        IntOp::MulLo => a.wrapping_mul(b),
        IntOp::MulHi => {
            let p = if s { (sext(a, bits) as i128 * sext(b, bits) as i128) as u128 } else { a as u128 * b as u128 };
            (p >> bits) as u64
        }
        IntOp::Mul24Lo => {
            let (x, y) = if s {
                (sext(a, 24) as i128, sext(b, 24) as i128)
            } else {
                ((a & 0xff_ffff) as i128, (b & 0xff_ffff) as i128)
            };
            (x * y) as u64
        }
        IntOp::Div => {
            if b == 0 {
                u64::MAX
            } else if s {
                sext(a, bits).wrapping_div(sext(b, bits)) as u64
            } else {
                a / b
            }
        }
        IntOp::Rem => {
            if b == 0 {
                a
            } else if s {
                sext(a, bits).wrapping_rem(sext(b, bits)) as u64
            } else {
                a % b
            }
        }
        IntOp::Min => {
            if s {
                sext(a, bits).min(sext(b, bits)) as u64
            } else {
                a.min(b)
            }
        }
        IntOp::Max => {
            if s {
                sext(a, bits).max(sext(b, bits)) as u64
            } else {
                a.max(b)
            }
        }
        IntOp::And => a & b,
        IntOp::Or => a | b,
        IntOp::Xor => a ^ b,
        IntOp::Shl => {
            let sh = (b & 0xffff_ffff) as u32;
            if sh >= bits {
                0
            } else {
                a << sh
            }
        }
        IntOp::Shr => {
            let sh = (b & 0xffff_ffff) as u32;
            if s {
                (sext(a, bits) >> sh.min(bits - 1)) as u64
            } else if sh >= bits {
                0
            } else {
                a >> sh
            }
        }
    };
    r & m
}

fn int1(op: IntUn, ty: ScalarType, a: u64) -> u64 {
    let bits = ty.bits();
    let m = mask(bits);
    let a = a & m;
    match op {
        IntUn::Not => !a & m,
        IntUn::Cnot => (a == 0) as u64,
        IntUn::Neg => a.wrapping_neg() & m,
        IntUn::Abs => (sext(a, bits).wrapping_abs() as u64) & m,
        IntUn::Popc => a.count_ones() as u64,
        IntUn::Clz => (a.leading_zeros() - (64 - bits)) as u64,
        IntUn::Brev => a.reverse_bits() >> (64 - bits),
    }
}

/// Integer-to-integer `cvt` (PTX ISA "cvt": `.sat` clamps to the destination range).
fn cvt_int(v: u64, sty: ScalarType, dty: ScalarType, sat: bool) -> u64 {
    let sb = sty.bits();
    let db = dty.bits();
    let x: i128 = if sty.is_signed_int() { sext(v, sb) as i128 } else { (v & mask(sb)) as i128 };
    let y = if sat {
        let (lo, hi) =
            if dty.is_signed_int() { (-(1i128 << (db - 1)), (1i128 << (db - 1)) - 1) } else { (0, (1i128 << db) - 1) };
        x.clamp(lo, hi)
    } else {
        x
    };
    // Sign-extend into the (possibly wider) register when the destination is signed.
    if dty.is_signed_int() {
        (sext(y as u64, db) as u64) & mask(db.max(32))
    } else {
        y as u64 & mask(db)
    }
}

fn is_int(t: ScalarType) -> bool {
    !t.is_float() && t != ScalarType::Pred
}

fn rnd_default(m: &FMods) -> bool {
    matches!(m.rnd, None | Some(Rounding::Rn))
}

fn f2(op: float::FBinOp, ty: ScalarType, m: &FMods, a: u64, b: u64, line: u32) -> R<u64> {
    use float::FBinOp as F;
    let rnd = m.rnd.unwrap_or(Rounding::Rn);
    Ok(match ty {
        ScalarType::F32 => {
            let (x, y) = (ftz32(f32_of(a), m.ftz), ftz32(f32_of(b), m.ftz));
            let r = if rnd_default(m) {
                match op {
                    F::Add => x + y,
                    F::Sub => x - y,
                    F::Mul => x * y,
                    F::Min => x.min(y),
                    F::Max => x.max(y),
                    F::MinNaN => {
                        if x.is_nan() || y.is_nan() {
                            f32::NAN
                        } else {
                            x.min(y)
                        }
                    }
                    F::MaxNaN => {
                        if x.is_nan() || y.is_nan() {
                            f32::NAN
                        } else {
                            x.max(y)
                        }
                    }
                }
            } else {
                float::f32_bin(op, x, y, rnd, m.ftz, false)
            };
            sat32(ftz32(r, m.ftz), m.sat).to_bits() as u64
        }
        ScalarType::F64 => {
            let (x, y) = (f64::from_bits(a), f64::from_bits(b));
            let r = if rnd_default(m) {
                match op {
                    F::Add => x + y,
                    F::Sub => x - y,
                    F::Mul => x * y,
                    F::Min | F::MinNaN => x.min(y),
                    F::Max | F::MaxNaN => x.max(y),
                }
            } else {
                float::f64_bin(op, x, y, rnd)
            };
            r.to_bits()
        }
        ScalarType::F16 => float::f16_bin(op, a as u16, b as u16, rnd, m.ftz, m.sat) as u64,
        ScalarType::Bf16 => float::bf16_bin(op, a as u16, b as u16, rnd, m.ftz, m.sat) as u64,
        ScalarType::F16x2 => float::f16x2_bin(op, a as u32, b as u32, rnd, m.ftz, m.sat) as u64,
        ScalarType::Bf16x2 => float::bf16x2_bin(op, a as u32, b as u32, rnd, m.ftz, m.sat) as u64,
        _ => return Err(unsup(format!("float op on {ty:?}"), line)),
    })
}

fn f1(op: FUn, ty: ScalarType, m: &FMods, a: u64, line: u32) -> R<u64> {
    Ok(match ty {
        ScalarType::F32 => {
            let x = ftz32(f32_of(a), m.ftz);
            let r = match op {
                FUn::Neg => -x,
                FUn::Abs => x.abs(),
                FUn::Sqrt => {
                    if rnd_default(m) {
                        x.sqrt()
                    } else {
                        float::f32_sqrt(x, m.rnd, m.ftz)
                    }
                }
                FUn::Rcp => {
                    if rnd_default(m) {
                        1.0 / x
                    } else {
                        float::f32_rcp(x, m.rnd, m.ftz)
                    }
                }
                FUn::Rsqrt => float::f32_rsqrt(x, m.ftz),
                FUn::Ex2 => float::f32_ex2_approx(x, m.ftz),
                FUn::Lg2 => float::f32_lg2_approx(x, m.ftz),
                FUn::Sin => float::f32_sin_approx(x, m.ftz),
                FUn::Cos => float::f32_cos_approx(x, m.ftz),
                FUn::Tanh => x.tanh(),
            };
            sat32(ftz32(r, m.ftz), m.sat).to_bits() as u64
        }
        ScalarType::F64 => {
            let x = f64::from_bits(a);
            let r = match op {
                FUn::Neg => -x,
                FUn::Abs => x.abs(),
                FUn::Sqrt if rnd_default(m) => x.sqrt(),
                FUn::Rcp if rnd_default(m) || m.rnd.is_none() => 1.0 / x,
                FUn::Rsqrt => 1.0 / x.sqrt(),
                _ => return Err(unsup(format!("{op:?} on f64 with {:?}", m.rnd), line)),
            };
            r.to_bits()
        }
        ScalarType::F16 | ScalarType::Bf16 => match op {
            FUn::Neg => float::f16_neg(a as u16) as u64,
            FUn::Abs => float::f16_abs(a as u16) as u64,
            _ => return Err(unsup(format!("{op:?} on {ty:?}"), line)),
        },
        ScalarType::F16x2 | ScalarType::Bf16x2 => match op {
            FUn::Neg => float::f16x2_neg(a as u32) as u64,
            FUn::Abs => float::f16x2_abs(a as u32) as u64,
            _ => return Err(unsup(format!("{op:?} on {ty:?}"), line)),
        },
        _ => return Err(unsup(format!("float op on {ty:?}"), line)),
    })
}

/// Atomic update (PTX ISA "atom": `inc`/`dec` wrap at `b`).
fn atom_new(op: AtomOp, ty: ScalarType, old: u64, b: u64, c: u64) -> Option<u64> {
    let bits = ty.bits();
    Some(
        match (op, ty) {
            (AtomOp::Add, ScalarType::F32) => (f32_of(old) + f32_of(b)).to_bits() as u64,
            (AtomOp::Min, ScalarType::F32) => f32_of(old).min(f32_of(b)).to_bits() as u64,
            (AtomOp::Max, ScalarType::F32) => f32_of(old).max(f32_of(b)).to_bits() as u64,
            (AtomOp::Add, ScalarType::F64) => (f64::from_bits(old) + f64::from_bits(b)).to_bits(),
            (AtomOp::Add, ScalarType::F16x2) => {
                float::f16x2_bin(float::FBinOp::Add, old as u32, b as u32, Rounding::Rn, false, false) as u64
            }
            (AtomOp::Add, ScalarType::Bf16x2) => {
                float::bf16x2_bin(float::FBinOp::Add, old as u32, b as u32, Rounding::Rn, false, false) as u64
            }
            (AtomOp::Add, ScalarType::F16) => {
                float::f16_bin(float::FBinOp::Add, old as u16, b as u16, Rounding::Rn, false, false) as u64
            }
            (AtomOp::Add, _) => old.wrapping_add(b),
            (AtomOp::Min, _) => int2(IntOp::Min, ty, old, b),
            (AtomOp::Max, _) => int2(IntOp::Max, ty, old, b),
            (AtomOp::Inc, _) => {
                if old >= b {
                    0
                } else {
                    old + 1
                }
            }
            (AtomOp::Dec, _) => {
                if old == 0 || old > b {
                    b
                } else {
                    old - 1
                }
            }
            (AtomOp::And, _) => old & b,
            (AtomOp::Or, _) => old | b,
            (AtomOp::Xor, _) => old ^ b,
            (AtomOp::Exch, _) => b,
            (AtomOp::Cas, _) => {
                if old & mask(bits) == b & mask(bits) {
                    c
                } else {
                    return None;
                }
            }
        } & mask(bits),
    )
}

/// Executes a non-control, non-collective instruction for lanes `exec`.
fn exec_simple(ctx: &Ctx, b: &mut Block, wi: usize, inst: &Inst, exec: u32, pc: u32) -> R<()> {
    let Block { warps, shared, shadow, c, ctaid, epoch, clock, wrote_global, uninit, wg, bulk, .. } = b;
    let w = &mut warps[wi];
    let env = Env { ctx, ctaid: *ctaid, wi, clock: *clock };
    let line = inst.line;
    macro_rules! each {
        ($d:expr, |$l:ident, $regs:ident| $e:expr) => {{
            let d = *$d as usize * 32;
            for $l in lanes(exec) {
                let $regs = &w.regs;
                let v = $e;
                w.regs[d + $l] = v;
            }
        }};
    }
    macro_rules! each_r {
        ($d:expr, |$l:ident, $regs:ident| $e:expr) => {{
            let d = *$d as usize * 32;
            for $l in lanes(exec) {
                let $regs = &w.regs;
                let v = $e?;
                w.regs[d + $l] = v;
            }
        }};
    }
    match &inst.kind {
        Kind::Mov { d, a, bits } => each!(d, |l, r| env.rd(r, a, l) & mask(*bits)),
        Kind::Pack { d, parts, part_bits } => each!(d, |l, r| {
            let mut v = 0u64;
            for (i, p) in parts.iter().enumerate() {
                v |= (env.rd(r, p, l) & mask(*part_bits)) << (i as u32 * part_bits);
            }
            v
        }),
        Kind::Unpack { ds, a, part_bits } => {
            for l in lanes(exec) {
                let v = env.rd(&w.regs, a, l);
                for (i, d) in ds.iter().enumerate() {
                    if let Some(d) = d {
                        w.regs[*d as usize * 32 + l] = (v >> (i as u32 * part_bits)) & mask(*part_bits);
                    }
                }
            }
        }
        Kind::Int2 { op, ty, d, a, b } => each!(d, |l, r| int2(*op, *ty, env.rd(r, a, l), env.rd(r, b, l))),
        Kind::MulWide { ty, d, a, b } => {
            let bits = ty.bits();
            each!(d, |l, r| {
                let (x, y) = (env.rd(r, a, l), env.rd(r, b, l));
                if ty.is_signed_int() {
                    (sext(x, bits).wrapping_mul(sext(y, bits)) as u64) & mask(2 * bits)
                } else {
                    ((x & mask(bits)).wrapping_mul(y & mask(bits))) & mask(2 * bits)
                }
            })
        }
        Kind::Int1 { op, ty, d, a } => each!(d, |l, r| int1(*op, *ty, env.rd(r, a, l))),
        Kind::AddCarry { sub, cin, cout, ty, d, a, b, cc } => {
            let bits = ty.bits();
            for l in lanes(exec) {
                let (x, y) = (env.rd(&w.regs, a, l) & mask(bits), env.rd(&w.regs, b, l) & mask(bits));
                let cf = if *cin { w.regs[*cc as usize * 32 + l] & 1 } else { 0 } as u128;
                let (v, carry) = if *sub {
                    // Borrow out of a - (b + CF).
                    let rhs = y as u128 + cf;
                    ((x as u128).wrapping_sub(rhs), (x as u128) < rhs)
                } else {
                    let t = x as u128 + y as u128 + cf;
                    (t, t >> bits != 0)
                };
                w.regs[*d as usize * 32 + l] = v as u64 & mask(bits);
                if *cout {
                    w.regs[*cc as usize * 32 + l] = carry as u64;
                }
            }
        }
        Kind::MadCarry { hi, cin, cout, ty, d, a, b, c: cc3, cc } => {
            let bits = ty.bits();
            for l in lanes(exec) {
                let (x, y, z) = (env.rd(&w.regs, a, l), env.rd(&w.regs, b, l), env.rd(&w.regs, cc3, l) & mask(bits));
                let prod = if *hi { int2(IntOp::MulHi, *ty, x, y) } else { int2(IntOp::MulLo, *ty, x, y) };
                let cf = if *cin { w.regs[*cc as usize * 32 + l] & 1 } else { 0 } as u128;
                let t = prod as u128 + z as u128 + cf;
                w.regs[*d as usize * 32 + l] = t as u64 & mask(bits);
                if *cout {
                    w.regs[*cc as usize * 32 + l] = (t >> bits != 0) as u64;
                }
            }
        }
        Kind::SatAdd { sub, d, a, b } => each!(d, |l, r| {
            let (x, y) = (env.rd(r, a, l) as u32 as i32 as i64, env.rd(r, b, l) as u32 as i32 as i64);
            let v = if *sub { x - y } else { x + y };
            v.clamp(i32::MIN as i64, i32::MAX as i64) as i32 as u32 as u64
        }),
        Kind::Dp { two, hi, sa, sb, d, a, b, c: cc } => each!(d, |l, r| {
            // PTX ISA "dp4a"/"dp2a": byte (and for dp2a, half-word) dot product plus c.
            let (x, y, z) = (env.rd(r, a, l) as u32, env.rd(r, b, l) as u32, env.rd(r, cc, l) as u32);
            let byte = |v: u32, i: u32, s: bool| {
                if s {
                    (v >> (8 * i)) as u8 as i8 as i64
                } else {
                    ((v >> (8 * i)) & 0xff) as i64
                }
            };
            let half = |v: u32, i: u32, s: bool| {
                if s {
                    (v >> (16 * i)) as u16 as i16 as i64
                } else {
                    ((v >> (16 * i)) & 0xffff) as i64
                }
            };
            let mut acc = z as i32 as i64;
            if *two {
                let base = if *hi { 2 } else { 0 };
                for i in 0..2 {
                    acc += half(x, i, *sa) * byte(y, base + i, *sb);
                }
            } else {
                for i in 0..4 {
                    acc += byte(x, i, *sa) * byte(y, i, *sb);
                }
            }
            acc as u32 as u64
        }),
        Kind::Shf { left, clamp, d, a, b, c: cc } => each!(d, |l, r| {
            // PTX ISA "shf": shift the 64-bit b:a; `.wrap` takes the amount mod 32,
            // `.clamp` clamps it to 32.
            let v = (env.rd(r, b, l) & 0xffff_ffff) << 32 | (env.rd(r, a, l) & 0xffff_ffff);
            let n = env.rd(r, cc, l) as u32;
            let n = if *clamp { n.min(32) } else { n & 31 };
            if *left {
                (v << n) >> 32 & 0xffff_ffff
            } else {
                (v >> n) & 0xffff_ffff
            }
        }),
        Kind::Bfind { ty, shiftamt, d, a } => each!(d, |l, r| {
            // PTX ISA "bfind": most significant non-sign bit, 0xffffffff if none.
            let bits = ty.bits();
            let mut v = env.rd(r, a, l) & mask(bits);
            if ty.is_signed_int() && sext(v, bits) < 0 {
                v = !v & mask(bits);
            }
            if v == 0 {
                0xffff_ffff
            } else {
                let pos = 63 - v.leading_zeros() as u64;
                if *shiftamt {
                    bits as u64 - 1 - pos
                } else {
                    pos
                }
            }
        }),
        Kind::Copysign { ty, d, a, b } => each!(d, |l, r| {
            let (x, y) = (env.rd(r, a, l), env.rd(r, b, l));
            let sign = if *ty == ScalarType::F64 { 1u64 << 63 } else { 1u64 << 31 };
            (y & !sign) | (x & sign)
        }),
        Kind::Testp { op, ty, d, a } => each!(d, |l, r| {
            let v = env.rd(r, a, l);
            let x = if *ty == ScalarType::F64 { f64::from_bits(v) } else { f32_of(v) as f64 };
            let sub = if *ty == ScalarType::F64 { x.is_subnormal() } else { f32_of(v).is_subnormal() };
            (match op {
                TestOp::Finite => x.is_finite(),
                TestOp::Infinite => x.is_infinite(),
                TestOp::Number => !x.is_nan(),
                TestOp::NotANumber => x.is_nan(),
                TestOp::Normal => x.is_finite() && x != 0.0 && !sub,
                TestOp::Subnormal => sub,
            }) as u64
        }),
        Kind::Isspacep { space, d, a } => each!(d, |l, r| {
            let v = env.rd(r, a, l);
            let in_win = |base: u64| (base..base + WINDOW_SIZE).contains(&v);
            (match space {
                Space::Shared => in_win(SHARED_WINDOW),
                Space::Local => in_win(LOCAL_WINDOW),
                Space::Param => in_win(PARAM_WINDOW),
                _ => !in_win(SHARED_WINDOW) && !in_win(LOCAL_WINDOW) && !in_win(PARAM_WINDOW),
            }) as u64
        }),
        Kind::Mad { mode, ty, d, a, b, c: cc } => {
            let bits = ty.bits();
            let s = ty.is_signed_int();
            each!(d, |l, r| {
                let (x, y, z) = (env.rd(r, a, l), env.rd(r, b, l), env.rd(r, cc, l));
                match mode {
                    MadMode::Lo => x.wrapping_mul(y).wrapping_add(z) & mask(bits),
                    MadMode::Hi => int2(IntOp::MulHi, *ty, x, y).wrapping_add(z) & mask(bits),
                    MadMode::Wide => {
                        let p = if s {
                            sext(x, bits).wrapping_mul(sext(y, bits)) as u64
                        } else {
                            (x & mask(bits)).wrapping_mul(y & mask(bits))
                        };
                        p.wrapping_add(z) & mask(2 * bits)
                    }
                }
            })
        }
        Kind::F2 { op, ty, m, d, a, b } => each_r!(d, |l, r| f2(*op, *ty, m, env.rd(r, a, l), env.rd(r, b, l), line)),
        Kind::FDiv { ty, m, d, a, b } => each!(d, |l, r| {
            let (x, y) = (env.rd(r, a, l), env.rd(r, b, l));
            if *ty == ScalarType::F64 {
                if rnd_default(m) {
                    (f64::from_bits(x) / f64::from_bits(y)).to_bits()
                } else {
                    float::f64_div(f64::from_bits(x), f64::from_bits(y), m.rnd.unwrap_or(Rounding::Rn)).to_bits()
                }
            } else {
                let (x, y) = (ftz32(f32_of(x), m.ftz), ftz32(f32_of(y), m.ftz));
                let q = if rnd_default(m) { x / y } else { float::f32_div(x, y, m.rnd, m.ftz) };
                sat32(ftz32(q, m.ftz), m.sat).to_bits() as u64
            }
        }),
        Kind::F1 { op, ty, m, d, a } => each_r!(d, |l, r| f1(*op, *ty, m, env.rd(r, a, l), line)),
        Kind::Fma { ty, m, d, a, b, c: cc } => {
            let rnd = m.rnd.unwrap_or(Rounding::Rn);
            each_r!(d, |l, r| {
                let (x, y, z) = (env.rd(r, a, l), env.rd(r, b, l), env.rd(r, cc, l));
                Ok::<u64, Fault>(match ty {
                    ScalarType::F32 => {
                        let (x, y, z) = (ftz32(f32_of(x), m.ftz), ftz32(f32_of(y), m.ftz), ftz32(f32_of(z), m.ftz));
                        let v =
                            if rnd_default(m) { x.mul_add(y, z) } else { float::f32_fma(x, y, z, rnd, m.ftz, false) };
                        sat32(ftz32(v, m.ftz), m.sat).to_bits() as u64
                    }
                    ScalarType::F64 => {
                        let (x, y, z) = (f64::from_bits(x), f64::from_bits(y), f64::from_bits(z));
                        if rnd_default(m) { x.mul_add(y, z) } else { float::f64_fma(x, y, z, rnd) }.to_bits()
                    }
                    ScalarType::F16 => float::f16_fma(x as u16, y as u16, z as u16, rnd, m.ftz, m.sat, m.relu) as u64,
                    ScalarType::Bf16 => float::bf16_fma(x as u16, y as u16, z as u16, rnd, m.ftz, m.sat, m.relu) as u64,
                    ScalarType::F16x2 => {
                        float::f16x2_fma(x as u32, y as u32, z as u32, rnd, m.ftz, m.sat, m.relu) as u64
                    }
                    ScalarType::Bf16x2 => {
                        float::bf16x2_fma(x as u32, y as u32, z as u32, rnd, m.ftz, m.sat, m.relu) as u64
                    }
                    _ => return Err(unsup(format!("fma on {ty:?}"), line)),
                })
            })
        }
        Kind::Setp { cmp, ty, d, d2, a, b, comb } => {
            for l in lanes(exec) {
                let (x, y) = (env.rd(&w.regs, a, l), env.rd(&w.regs, b, l));
                let t = match ty {
                    ScalarType::F32 => float::setp_f32(*cmp, f32_of(x), f32_of(y)),
                    ScalarType::F64 => float::setp_f64(*cmp, f64::from_bits(x), f64::from_bits(y)),
                    ScalarType::F16 => float::setp_f16(*cmp, x as u16, y as u16),
                    ScalarType::Bf16 => float::setp_bf16(*cmp, x as u16, y as u16),
                    t if is_int(*t) => cmp_int(*cmp, x, y, *t),
                    _ => return Err(unsup(format!("setp on {ty:?}"), line)),
                };
                let (p, q) = match comb {
                    None => (t, !t),
                    Some((op, cp, neg)) => {
                        let cv = (env.rd(&w.regs, cp, l) & 1 != 0) != *neg;
                        let f = |v: bool| match op {
                            BoolOp::And => v && cv,
                            BoolOp::Or => v || cv,
                            BoolOp::Xor => v ^ cv,
                        };
                        (f(t), f(!t))
                    }
                };
                if let Some(d) = d {
                    w.regs[*d as usize * 32 + l] = p as u64;
                }
                if let Some(d2) = d2 {
                    w.regs[*d2 as usize * 32 + l] = q as u64;
                }
            }
        }
        Kind::Selp { bits, d, a, b, p } => each!(d, |l, r| {
            if env.rd(r, p, l) & 1 != 0 {
                env.rd(r, a, l) & mask(*bits)
            } else {
                env.rd(r, b, l) & mask(*bits)
            }
        }),
        Kind::Slct { bits, float_c, d, a, b, c: cc } => each!(d, |l, r| {
            let cv = env.rd(r, cc, l);
            let pos = if *float_c { f32_of(cv) >= 0.0 } else { cv as u32 as i32 >= 0 };
            if pos {
                env.rd(r, a, l) & mask(*bits)
            } else {
                env.rd(r, b, l) & mask(*bits)
            }
        }),
        Kind::Lop3 { d, a, b, c: cc, lut } => {
            each!(d, |l, r| bits::lop3(env.rd(r, a, l) as u32, env.rd(r, b, l) as u32, env.rd(r, cc, l) as u32, *lut)
                as u64)
        }
        Kind::Prmt { d, a, b, c: cc, mode } => {
            each!(d, |l, r| bits::prmt(env.rd(r, a, l) as u32, env.rd(r, b, l) as u32, env.rd(r, cc, l) as u32, *mode)
                as u64)
        }
        Kind::Bfe { ty, d, a, b, c: cc } => each!(d, |l, r| {
            let (x, p, n) = (env.rd(r, a, l), env.rd(r, b, l) as u32, env.rd(r, cc, l) as u32);
            match ty {
                ScalarType::S32 => bits::bfe_s32(x as u32, p, n) as u64,
                ScalarType::U64 | ScalarType::B64 => bits::bfe_u64(x, p, n),
                ScalarType::S64 => bits::bfe_s64(x, p, n),
                _ => bits::bfe_u32(x as u32, p, n) as u64,
            }
        }),
        Kind::Bfi { bits: nb, d, f, b, c: cc, e } => each!(d, |l, r| {
            let (x, y, p, n) = (env.rd(r, f, l), env.rd(r, b, l), env.rd(r, cc, l) as u32, env.rd(r, e, l) as u32);
            if *nb == 64 {
                bits::bfi_b64(x, y, p, n)
            } else {
                bits::bfi_b32(x as u32, y as u32, p, n) as u64
            }
        }),
        Kind::Cvt { dty, sty, m, d, a } => {
            let both_int = is_int(*dty) && is_int(*sty);
            each_r!(d, |l, r| {
                let v = env.rd(r, a, l);
                if both_int {
                    Ok(cvt_int(v, *sty, *dty, m.sat))
                } else if *dty == *sty && m.rnd.is_none() && !m.sat && !m.ftz {
                    Ok(v & mask(dty.bits()))
                } else {
                    convert::cvt(v & mask(sty.bits()), *sty, *dty, m.rnd, m.sat, m.ftz)
                        .map_err(|e| unsup(format!("cvt: {e}"), line))
                }
            })
        }
        Kind::CvtPack { bf16, m, d, a, b } => each!(d, |l, r| convert::cvt_pack_f16x2(
            f32_of(env.rd(r, a, l)),
            f32_of(env.rd(r, b, l)),
            m.rnd.unwrap_or(Rounding::Rn),
            *bf16,
            m.relu,
            m.sat
        ) as u64),
        Kind::Cvta { to, space, bits: nb, d, a } => {
            let base = match space {
                Space::Shared => SHARED_WINDOW,
                Space::Local => LOCAL_WINDOW,
                Space::Param => PARAM_WINDOW,
                _ => 0,
            };
            each!(d, |l, r| {
                let v = env.rd(r, a, l);
                (if *to { v.wrapping_sub(base) } else { v.wrapping_add(base) }) & mask(*nb)
            })
        }
        Kind::CreatePolicy { d } => each!(d, |_l, _r| 0x1000_0000_0000_0000u64),
        Kind::ActiveMask { d } => each!(d, |_l, _r| exec as u64),
        Kind::Nop => {}
        Kind::GridDepWait => {
            w.grid_waited |= exec;
            c.grid_waits += exec.count_ones() as u64;
        }
        Kind::GridDepLaunch => c.early_launches += (exec & !w.grid_waited).count_ones() as u64,
        Kind::BulkPrefetchL2 { src, size } => {
            for l in lanes(exec) {
                let n = env.rd(&w.regs, size, l) as u32;
                c.prefetch_bytes += n as u64;
                if ctx.hazards {
                    let a = env.rd(&w.regs, &src.base, l).wrapping_add(src.offset as u64);
                    let at = |k: BadAddr| fault_at(k, wi, l, pc, a);
                    // 16-byte granules (PTX ISA "cp.async.bulk.prefetch"): a misaligned
                    // address or size is reported as a misaligned access of 16 bytes.
                    if !(a.is_multiple_of(16) && n.is_multiple_of(16)) {
                        return Err(at(BadAddr::Misaligned("global", 16)));
                    }
                    resolve(ctx, Space::Global, a, n, 1, 0).map_err(at)?;
                }
            }
        }
        Kind::ProxyFence => {
            if let Some(g) = wg.as_deref_mut() {
                for l in lanes(exec) {
                    g.fences[wi * 32 + l] += 1;
                }
            }
        }
        Kind::Ld { space, ty, ds, addr, nc } => {
            let es = elem_size(*ty);
            let total = es * ds.len() as u32;
            let mut log = AccLog::new();
            let mut space_seen = None;
            let lsize = ctx.k.local_size;
            let mut race = SharedShadow { ctx, bytes: shadow, uninit, epoch, wsync: w.wsync, wi, pc };
            for l in lanes(exec) {
                let a = env.rd(&w.regs, &addr.base, l).wrapping_add(addr.offset as u64);
                let loc = resolve(ctx, *space, a, total, total, lsize).map_err(|k| fault_at(k, wi, l, pc, a))?;
                log.push(l, a);
                match loc {
                    Loc::Global(i, _) => {
                        check_grid_dependency(ctx, w.grid_waited_lane(l), i, false, (wi, l, pc, a))?;
                        if *nc && ctx.hazards {
                            check_non_coherent(ctx, i, (wi, l, pc, a))?;
                            c.first_nc_load[i].get_or_insert((pc, wi as u32, l as u32));
                        }
                        c.alloc[i].0 += total as u64;
                        space_seen = Some(Space::Global);
                    }
                    Loc::Shared(o) => {
                        space_seen = Some(Space::Shared);
                        race.check(SharedAccess { lane: l, off: o, size: total, kind: SharedAccessKind::Read })?;
                    }
                    _ => {}
                }
                for (i, d) in ds.iter().enumerate() {
                    let el = match loc {
                        Loc::Global(ai, o) => Loc::Global(ai, o + (i as u32 * es) as u64),
                        Loc::Shared(o) => Loc::Shared(o + i as u32 * es),
                        Loc::Local(o) => Loc::Local(o + i as u32 * es),
                        Loc::Param(o) => Loc::Param(o + i as u32 * es),
                    };
                    let v = load(ctx, shared, &w.local, l, lsize, el, es);
                    if let Some(d) = d {
                        // Signed loads sign-extend into the register (PTX ISA "ld").
                        w.regs[*d as usize * 32 + l] = if ty.is_signed_int() { sext(v, es * 8) as u64 } else { v };
                    }
                }
            }
            account(c, pc, space_seen, &log, total);
        }
        Kind::St { space, ty, srcs, addr } => {
            let es = elem_size(*ty);
            let total = es * srcs.len() as u32;
            let mut log = AccLog::new();
            let mut space_seen = None;
            let lsize = ctx.k.local_size as usize;
            let mut race = SharedShadow { ctx, bytes: shadow, uninit, epoch, wsync: w.wsync, wi, pc };
            for l in lanes(exec) {
                let a = env.rd(&w.regs, &addr.base, l).wrapping_add(addr.offset as u64);
                let loc = resolve(ctx, *space, a, total, total, lsize as u32).map_err(|k| fault_at(k, wi, l, pc, a))?;
                log.push(l, a);
                match loc {
                    Loc::Shared(o) => {
                        space_seen = Some(Space::Shared);
                        race.check(SharedAccess { lane: l, off: o, size: total, kind: SharedAccessKind::Write })?;
                    }
                    Loc::Global(ai, _) => {
                        check_grid_dependency(ctx, w.grid_waited_lane(l), ai, true, (wi, l, pc, a))?;
                        c.first_write[ai].get_or_insert((pc, wi as u32, l as u32));
                    }
                    _ => {}
                }
                for (i, s) in srcs.iter().enumerate() {
                    let v = env.rd(&w.regs, s, l);
                    let off = i as u32 * es;
                    match loc {
                        Loc::Global(ai, o) => {
                            ctx.mem.allocs[ai].store(o + off as u64, es, v);
                            c.alloc[ai].1 += es as u64;
                            space_seen = Some(Space::Global);
                            *wrote_global = true;
                        }
                        Loc::Shared(o) => wr_bytes(shared, (o + off) as usize, es, v),
                        Loc::Local(o) => wr_bytes(&mut w.local, l * lsize + (o + off) as usize, es, v),
                        Loc::Param(_) => return Err(unsup("store to the param space".into(), line)),
                    }
                }
            }
            if let Some(g) = wg.as_deref_mut() {
                // Out of the lane loop: one check per store for kernels without wgmma.
                wg_store(ctx, g, &env, w, addr, *space, total, exec, pc)?;
            }
            account(c, pc, space_seen, &log, total);
        }
        Kind::Atom { space, op, ty, d, addr, b: bo, c: co } => {
            let es = elem_size(*ty);
            let mut log = AccLog::new();
            let mut space_seen = None;
            let mut race = SharedShadow { ctx, bytes: shadow, uninit, epoch, wsync: w.wsync, wi, pc };
            for l in lanes(exec) {
                let a = env.rd(&w.regs, &addr.base, l).wrapping_add(addr.offset as u64);
                let loc = resolve(ctx, *space, a, es, es, 0).map_err(|k| fault_at(k, wi, l, pc, a))?;
                log.push(l, a);
                let bv = env.rd(&w.regs, bo, l) & mask(ty.bits());
                let cv = co.as_ref().map_or(0, |x| env.rd(&w.regs, x, l)) & mask(ty.bits());
                let old = match loc {
                    Loc::Global(ai, o) => {
                        // An atomic reads and writes: the write check covers both.
                        check_grid_dependency(ctx, w.grid_waited_lane(l), ai, true, (wi, l, pc, a))?;
                        c.first_write[ai].get_or_insert((pc, wi as u32, l as u32));
                        space_seen = Some(Space::Global);
                        c.alloc[ai].0 += es as u64;
                        c.alloc[ai].1 += es as u64;
                        let mut changed = false;
                        let old = ctx.mem.allocs[ai].rmw(o, es, &mut |old| {
                            let n = atom_new(*op, *ty, old, bv, cv)?;
                            changed = n != old;
                            Some(n)
                        });
                        // An atomic that leaves the value unchanged (failed CAS, add 0)
                        // is not progress for deadlock detection.
                        *wrote_global |= changed;
                        old
                    }
                    Loc::Shared(o) => {
                        space_seen = Some(Space::Shared);
                        race.check(SharedAccess { lane: l, off: o, size: es, kind: SharedAccessKind::AtomicRmw })?;
                        if let Some(g) = wg.as_deref_mut() {
                            wg_shared_write(ctx, g, wi, l, pc, o, es, true)?;
                        }
                        let old = rd_bytes(shared, o as usize, es);
                        if let Some(nv) = atom_new(*op, *ty, old, bv, cv) {
                            wr_bytes(shared, o as usize, es, nv);
                        }
                        old
                    }
                    _ => return Err(unsup("atomic outside global/shared".into(), line)),
                };
                if let Some(d) = d {
                    w.regs[*d as usize * 32 + l] = if ty.is_signed_int() { sext(old, es * 8) as u64 } else { old };
                }
            }
            account(c, pc, space_seen, &log, es);
        }
        Kind::CpAsync { dst, src, size, src_size } => {
            let mut glog = AccLog::new();
            let mut slog = AccLog::new();
            let mut race = SharedShadow { ctx, bytes: shadow, uninit, epoch, wsync: w.wsync, wi, pc };
            for l in lanes(exec) {
                let ga = env.rd(&w.regs, &src.base, l).wrapping_add(src.offset as u64);
                let sa = env.rd(&w.regs, &dst.base, l).wrapping_add(dst.offset as u64);
                let n = src_size.as_ref().map_or(*size, |s| (env.rd(&w.regs, s, l) as u32).min(*size));
                let mut data = [0u8; 16];
                if n > 0 {
                    let loc = resolve(ctx, Space::Global, ga, n, *size, 0).map_err(|k| fault_at(k, wi, l, pc, ga))?;
                    if let Loc::Global(ai, o) = loc {
                        check_grid_dependency(ctx, w.grid_waited_lane(l), ai, false, (wi, l, pc, ga))?;
                        for (i, byte) in data.iter_mut().enumerate().take(n as usize) {
                            *byte = ctx.mem.allocs[ai].load(o + i as u64, 1) as u8;
                        }
                        c.alloc[ai].0 += n as u64;
                    }
                    glog.push(l, ga);
                }
                let Loc::Shared(so) =
                    resolve(ctx, Space::Shared, sa, *size, *size, 0).map_err(|k| fault_at(k, wi, l, pc, sa))?
                else {
                    return Err(unsup("cp.async destination".into(), line));
                };
                slog.push(l, sa);
                race.check(SharedAccess { lane: l, off: so, size: *size, kind: SharedAccessKind::AsyncCopyWrite })?;
                if let Some(g) = wg.as_deref_mut() {
                    // Lands later (recorded then, by `land_cp`); overwriting a pending
                    // wgmma's operand is a hazard from the issue on.
                    wg_shared_write(ctx, g, wi, l, pc, so, *size, false)?;
                }
                w.cp[l].push(CpPending { dst: so, data, len: *size, group: u32::MAX, pc });
            }
            account(c, pc, Some(Space::Global), &glog, *size);
            account(c, pc, Some(Space::Shared), &slog, *size);
        }
        Kind::Mbar { op, d, addr, b: bo } => {
            // The object's contents are `Mbar` (PTX ISA 9.7.13.15.2). A phase completion
            // orders all earlier accesses before all later ones (block epoch).
            let mut race = SharedShadow { ctx, bytes: shadow, uninit, epoch, wsync: w.wsync, wi, pc };
            for l in lanes(exec) {
                let bv = bo.as_ref().map_or(1, |x| env.rd(&w.regs, x, l));
                if *op == MbarOp::PendingCount {
                    if let Some(d) = d {
                        w.regs[*d as usize * 32 + l] = Mbar::unpack(bv).pending as u64;
                    }
                    continue;
                }
                let Some(addr) = addr else { continue };
                let a = env.rd(&w.regs, &addr.base, l).wrapping_add(addr.offset as u64);
                let Loc::Shared(o) =
                    resolve(ctx, shared_space(a), a, 8, 8, 0).map_err(|k| fault_at(k, wi, l, pc, a))?
                else {
                    return Err(unsup("mbarrier object outside shared memory".into(), line));
                };
                let kind = match op {
                    MbarOp::Init | MbarOp::Inval => SharedAccessKind::Write,
                    MbarOp::TestWait { .. } => SharedAccessKind::AtomicRead,
                    // `pending_count` has no address and never gets here.
                    MbarOp::Arrive { .. } | MbarOp::ExpectTx | MbarOp::CompleteTx | MbarOp::PendingCount => {
                        SharedAccessKind::AtomicRmw
                    }
                };
                race.check(SharedAccess { lane: l, off: o, size: 8, kind })?;
                if let (Some(g), true) = (wg.as_deref_mut(), kind.writes()) {
                    wg_shared_write(ctx, g, wi, l, pc, o, 8, true)?;
                }
                let mut m = Mbar::unpack(rd_bytes(shared, o as usize, 8));
                let at = (wi, l, pc);
                let completed = match op {
                    MbarOp::Init | MbarOp::Inval => {
                        let n = if *op == MbarOp::Init { bv as u32 & Mbar::MAX } else { 0 };
                        m = Mbar { pending: n, expected: n, tx: 0, phase: 0 };
                        if let Some(bs) = bulk.as_deref_mut() {
                            bs.forget(o);
                        }
                        false
                    }
                    MbarOp::Arrive { drop, expect_tx } => {
                        // 9.7.13.15.13: `.expect_tx` performs an expect-tx of the operand
                        // before an arrive-on with count 1.
                        let count = if *expect_tx {
                            mbar_tx(ctx, bulk.as_deref_mut(), &mut m, o, bv as u32 as i64, at)?;
                            1
                        } else {
                            bv as u32
                        };
                        let phase = m.phase;
                        if *drop {
                            m.expected = m.expected.saturating_sub(1);
                        }
                        m.pending = m.pending.saturating_sub(count);
                        if let Some(d) = d {
                            // The state token: the phase before the arrive-on, and the
                            // pending count after it (for `pending_count`).
                            w.regs[*d as usize * 32 + l] =
                                Mbar { pending: m.pending, expected: 0, tx: 0, phase }.pack();
                        }
                        mbar_settle(ctx, bulk.as_deref_mut(), &mut m, o, false, at)?
                    }
                    MbarOp::ExpectTx | MbarOp::CompleteTx => {
                        let n = bv as u32 as i64;
                        let complete = *op == MbarOp::CompleteTx;
                        mbar_tx(ctx, bulk.as_deref_mut(), &mut m, o, if complete { -n } else { n }, at)?;
                        mbar_settle(ctx, bulk.as_deref_mut(), &mut m, o, complete, at)?
                    }
                    MbarOp::TestWait { parity } => {
                        // 9.7.13.15.16: valid for the current phase (not complete) or the
                        // immediately preceding one (complete).
                        let done =
                            if *parity { (m.phase as u64 & 1) != (bv & 1) } else { m.phase != Mbar::unpack(bv).phase };
                        if let Some(d) = d {
                            w.regs[*d as usize * 32 + l] = done as u64;
                        }
                        if let (true, Some(bs)) = (done, bulk.as_deref_mut()) {
                            land_bulk(shared, race.bytes, wg.as_deref_mut(), bs, o);
                        }
                        continue;
                    }
                    MbarOp::PendingCount => continue,
                };
                wr_bytes(shared, o as usize, 8, m.pack());
                if completed {
                    *race.epoch += 1;
                }
            }
        }
        Kind::CpMbarArrive { noinc, addr } => {
            for l in lanes(exec) {
                // All earlier cp.async of this thread complete before the arrive-on.
                land_cp(shared, shadow, *epoch, w, wi, l, None, wg.as_deref_mut());
                if !*noinc {
                    continue;
                }
                let a = env.rd(&w.regs, &addr.base, l).wrapping_add(addr.offset as u64);
                let Loc::Shared(o) = resolve(ctx, Space::Shared, a, 8, 8, 0).map_err(|k| fault_at(k, wi, l, pc, a))?
                else {
                    return Err(unsup("mbarrier object outside shared memory".into(), line));
                };
                let mut m = Mbar::unpack(rd_bytes(shared, o as usize, 8));
                m.pending = m.pending.saturating_sub(1);
                if mbar_settle(ctx, bulk.as_deref_mut(), &mut m, o, false, (wi, l, pc))? {
                    *epoch += 1;
                }
                wr_bytes(shared, o as usize, 8, m.pack());
            }
        }
        Kind::CpAsyncBulk { .. } | Kind::CpAsyncBulkTensor { .. } => {
            let sh = WgShared { shared, shadow, uninit, epoch };
            cp_async_bulk(ctx, sh, bulk.as_deref_mut(), wg.as_deref_mut(), c, w, &env, inst, exec, pc)?;
        }
        Kind::CpCommit => {
            for l in lanes(exec) {
                let g = w.cp_next_group[l];
                for p in w.cp[l].iter_mut().filter(|p| p.group == u32::MAX) {
                    p.group = g;
                }
                w.cp_next_group[l] += 1;
            }
        }
        Kind::CpWait(n) => {
            for l in lanes(exec) {
                let keep_from = w.cp_next_group[l].saturating_sub(*n);
                land_cp(shared, shadow, *epoch, w, wi, l, Some(keep_from), wg.as_deref_mut());
            }
        }
        Kind::CpWaitAll => {
            for l in lanes(exec) {
                land_cp(shared, shadow, *epoch, w, wi, l, None, wg.as_deref_mut());
            }
        }
        _ => return Err(unsup(format!("instruction at pc {pc}"), line)),
    }
    Ok(())
}

/// Lands lane `l`'s pending cp.async copies: all of them (`None`), or those of
/// committed groups older than `keep_from` (PTX ISA "cp.async.wait_group"). Landing
/// is a write by the issuing thread now, through the generic proxy (recorded in `wg`
/// for the proxy-fence check of wgmma).
#[allow(clippy::too_many_arguments)]
fn land_cp(
    shared: &mut [u8],
    shadow: &mut [ShadowByte],
    epoch: u32,
    w: &mut Warp,
    wi: usize,
    l: usize,
    keep_from: Option<u32>,
    mut wg: Option<&mut WgState>,
) {
    let tid = (wi * 32 + l) as u16;
    let pend = std::mem::take(&mut w.cp[l]);
    for p in pend {
        let keep = match keep_from {
            None => false,
            Some(k) => p.group == u32::MAX || p.group >= k,
        };
        if keep {
            w.cp[l].push(p);
            continue;
        }
        shared[p.dst as usize..(p.dst + p.len) as usize].copy_from_slice(&p.data[..p.len as usize]);
        if let Some(g) = wg.as_deref_mut() {
            wg_land(g, tid, p.dst, p.len, p.pc);
        }
        if let Some(sh) = shadow.get_mut(p.dst as usize..(p.dst + p.len) as usize) {
            for s in sh {
                if s.w.tid == tid && s.w.flags & F_PENDING != 0 {
                    s.w = ShadowAcc { tid, flags: 0, epoch, wsync: w.wsync, pc: p.pc };
                }
            }
        }
    }
}

/// Records a landed cp.async copy as a generic-proxy write by its issuing thread.
#[inline(never)]
fn wg_land(g: &mut WgState, tid: u16, dst: u32, len: u32, pc: u32) {
    let fences = g.fences[tid as usize];
    if let Some(gw) = g.generic.get_mut(dst as usize..(dst + len) as usize) {
        gw.fill(GenericWrite { tid, fences, pc });
    }
}

/// The state space of an mbarrier or bulk-copy shared address operand: a generic
/// address when it lies in the shared window, else a shared-space offset.
fn shared_space(a: u64) -> Space {
    if a >= SHARED_WINDOW {
        Space::Generic
    } else {
        Space::Shared
    }
}

/// Applies a tx-count change by lane `l` of warp `wi` to the mbarrier at shared offset
/// `o` (`delta` > 0: expect-tx, < 0: complete-tx; PTX ISA 9.7.13.15.5), recording it
/// for later hazard reports. A tx-count outside -(2^20-1)..=2^20-1 is a hazard
/// (9.7.13.15.2); it is not wrapped silently.
fn mbar_tx(
    ctx: &Ctx,
    bulk: Option<&mut BulkState>,
    m: &mut Mbar,
    o: u32,
    delta: i64,
    (wi, l, pc): (usize, usize, u32),
) -> R<()> {
    let tid = (wi * 32 + l) as u16;
    let prev = bulk.map(|bs| {
        let t = bs.track(o);
        let prev = if delta >= 0 { t.expect } else { t.complete };
        if delta >= 0 {
            t.expect = Some((tid, pc));
        } else {
            t.complete = Some((tid, pc));
        }
        prev
    });
    let tx = m.tx as i64 + delta;
    if ctx.hazards && tx.abs() > Mbar::MAX as i64 {
        let other = prev.flatten().map(|(t, p)| access_of(ctx, t as usize / 32, t as usize % 32, p, true));
        return Err(bulk_fault(
            BulkRule::TxCount,
            other,
            format!(
                "{} of {} takes the tx-count of the mbarrier at shared {o:#x} from {} to {tx}, outside \
                 -(2^20-1)..=2^20-1",
                if delta >= 0 { "expect-tx" } else { "complete-tx" },
                delta.abs(),
                m.tx
            ),
            (wi, l, pc, Some(o as u64)),
        ));
    }
    m.tx = tx as i32;
    Ok(())
}

/// After an update of the mbarrier at shared offset `o` by lane `l` of warp `wi`
/// (`by_complete`: a complete-tx): a negative tx-count with no arrival pending is a
/// hazard, more bytes completed than the phase expects (the ISA allows a negative
/// tx-count while arrivals are pending: a complete-tx may precede its expect-tx,
/// 9.7.13.15.2). Then completes the phase if nothing is pending (9.7.13.15.6) and
/// marks the bulk copies that took part in it. Returns whether it completed; the
/// caller ends the block epoch.
fn mbar_settle(
    ctx: &Ctx,
    bulk: Option<&mut BulkState>,
    m: &mut Mbar,
    o: u32,
    by_complete: bool,
    (wi, l, pc): (usize, usize, u32),
) -> R<bool> {
    if ctx.hazards && m.pending == 0 && m.tx < 0 {
        return Err(tx_overshoot(ctx, bulk.as_deref(), m, o, by_complete, (wi, l, pc)));
    }
    let done = m.try_complete();
    if let (true, Some(bs)) = (done, bulk) {
        bs.phase_done(o);
    }
    Ok(done)
}

#[cold]
fn tx_overshoot(
    ctx: &Ctx,
    bulk: Option<&BulkState>,
    m: &Mbar,
    o: u32,
    by_complete: bool,
    (wi, l, pc): (usize, usize, u32),
) -> Fault {
    let t = bulk.and_then(|bs| bs.tracks.iter().find(|t| t.mbar == o));
    // The other side: the expectation exceeded, or the complete-tx that exceeded it.
    let other = t.and_then(|t| if by_complete { t.expect } else { t.complete });
    bulk_fault(
        BulkRule::TxCount,
        other.map(|(t, p)| access_of(ctx, t as usize / 32, t as usize % 32, p, true)),
        format!(
            "tx-count of the mbarrier at shared {o:#x} is {} with no arrival pending: {} bytes more completed \
             than the phase expects",
            m.tx, -m.tx
        ),
        (wi, l, pc, Some(o as u64)),
    )
}

/// Issues `cp.async.bulk` (PTX ISA 9.7.9.25.4.1) or `cp.async.bulk.tensor`
/// (9.7.9.25.5.1) global -> shared for lanes `exec` of warp `w`. Each lane issues one
/// copy: the source bytes are read now (a tensor copy's box gathered through its tensor
/// map, `crate::tensor_map`), the destination becomes an in-flight write
/// (`BulkCopyWrite`), and the copy completes at once (a valid schedule: the ISA bounds
/// no latency), performing complete-tx of its size on the mbarrier, which it accesses
/// through the generic proxy as an atomic. The data lands when a thread observes the
/// phase complete (`land_bulk`).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn cp_async_bulk(
    ctx: &Ctx,
    sh: WgShared,
    bulk: Option<&mut BulkState>,
    mut wg: Option<&mut WgState>,
    c: &mut Counters,
    w: &Warp,
    env: &Env,
    inst: &Inst,
    exec: u32,
    pc: u32,
) -> R<()> {
    let Some(bs) = bulk else {
        return Err(unsup("bulk-copy state missing".into(), inst.line));
    };
    let wi = env.wi;
    let WgShared { shared, shadow, uninit, epoch } = sh;
    let mut race = SharedShadow { ctx, bytes: shadow, uninit, epoch, wsync: w.wsync, wi, pc };
    for l in lanes(exec) {
        let rd = |a: &Addr| env.rd(&w.regs, &a.base, l).wrapping_add(a.offset as u64);
        let fault = |a: u64| move |k: BadAddr| fault_at(k, wi, l, pc, a);
        // The copy's shared destination and its bytes, read from global memory now.
        // The copy's shared destination (address and resolved offset), its mbarrier and
        // its bytes, read from global memory now.
        let dst_of = |sa: u64, n: u32| match resolve(ctx, shared_space(sa), sa, n, 1, 0) {
            Ok(Loc::Shared(so)) => Ok(so),
            Ok(_) => Err(unsup("cp.async.bulk destination outside shared memory".into(), inst.line)),
            Err(k) => Err(fault_at(k, wi, l, pc, sa)),
        };
        let (so, ma, data) = match &inst.kind {
            Kind::CpAsyncBulk { dst, src, size, mbar } => {
                let (sa, ga, ma) = (rd(dst), rd(src), rd(mbar));
                let n = env.rd(&w.regs, size, l) as u32;
                if ctx.hazards && !(n.is_multiple_of(16) && sa.is_multiple_of(16) && ga.is_multiple_of(16)) {
                    return Err(bulk_fault(
                        BulkRule::Alignment,
                        None,
                        format!(
                            "cp.async.bulk of {n} bytes from global {ga:#x} to shared {sa:#x}: both addresses \
                             must be 16-byte aligned and the size a multiple of 16"
                        ),
                        (wi, l, pc, Some(if ga.is_multiple_of(16) { sa } else { ga })),
                    ));
                }
                let mut data = vec![0u8; n as usize];
                bulk_read_global(ctx, c, (wi, l, pc), w.grid_waited_lane(l), inst.line, ga, &mut data)?;
                (dst_of(sa, n)?, ma, data)
            }
            Kind::CpAsyncBulkTensor { dst, tmap, coords, mbar } => {
                let (sa, ta, ma) = (rd(dst), rd(tmap), rd(mbar));
                let at = (wi, l, pc, Some(ta));
                // The tensor map lives in global memory or, as a `__grid_constant__`
                // kernel parameter, in the param space (a generic address there).
                let mut raw = [0u8; TENSOR_MAP_BYTES];
                match resolve(ctx, Space::Generic, ta, TENSOR_MAP_BYTES as u32, 1, 0).map_err(fault(ta))? {
                    Loc::Global(ti, to) => ctx.mem.allocs[ti].read_bytes(to, &mut raw),
                    Loc::Param(o) => raw.copy_from_slice(&ctx.params[o as usize..o as usize + TENSOR_MAP_BYTES]),
                    _ => return Err(unsup("tensor map outside global and param memory".into(), inst.line)),
                }
                let map = TensorMap::decode(&raw)
                    .map_err(|e| bulk_fault(BulkRule::TensorMap, None, format!("tensor map at {ta:#x}: {e}"), at))?;
                // 9.7.9.25.5.1: the shared destination of a tensor copy is 128-byte
                // aligned; the swizzle keys on address bits 7 and up, so an unaligned box
                // would not even be contiguous. Checked with or without hazard checks.
                if !sa.is_multiple_of(TENSOR_COPY_DST_ALIGN) {
                    return Err(bulk_fault(
                        BulkRule::Alignment,
                        None,
                        format!("cp.async.bulk.tensor to shared {sa:#x}: the destination must be 128-byte aligned"),
                        (wi, l, pc, Some(sa)),
                    ));
                }
                if coords.len() != map.rank() {
                    return Err(bulk_fault(
                        BulkRule::TensorMap,
                        None,
                        format!("a {}d copy through the rank-{} tensor map at {ta:#x}", coords.len(), map.rank()),
                        at,
                    ));
                }
                let coords: Vec<i64> = coords.iter().map(|o| env.rd(&w.regs, o, l) as u32 as i32 as i64).collect();
                // The box must fit the block's shared memory (checked before it is
                // gathered: a valid map's box can reach 2^43 bytes). The swizzle keys on
                // the shared-space address, not a generic one.
                let so = dst_of(sa, u32::try_from(map.box_bytes()).unwrap_or(u32::MAX))?;
                let data = map.gather(&coords, so as u64, |ga, buf: &mut [u8]| {
                    bulk_read_global(ctx, c, (wi, l, pc), w.grid_waited_lane(l), inst.line, ga, buf)
                })?;
                (so, ma, data)
            }
            _ => return Err(unsup(format!("cp.async.bulk at pc {pc}"), inst.line)),
        };
        let n = data.len() as u32;
        let Loc::Shared(mo) = resolve(ctx, shared_space(ma), ma, 8, 8, 0).map_err(fault(ma))? else {
            return Err(unsup("cp.async.bulk mbarrier outside shared memory".into(), inst.line));
        };
        race.check(SharedAccess { lane: l, off: so, size: n, kind: SharedAccessKind::BulkCopyWrite })?;
        race.check(SharedAccess { lane: l, off: mo, size: 8, kind: SharedAccessKind::AtomicRmw })?;
        if let Some(g) = wg.as_deref_mut() {
            if n > 0 {
                // Lands later, through the async proxy; overwriting a pending wgmma's
                // operand is a hazard from the issue on.
                wg_shared_write(ctx, g, wi, l, pc, so, n, false)?;
            }
            wg_shared_write(ctx, g, wi, l, pc, mo, 8, true)?;
        }
        let tid = (wi * 32 + l) as u16;
        bs.copies.push(BulkCopy { dst: so, data, mbar: mo, done: false, tid, pc });
        let at = (wi, l, pc);
        let mut m = Mbar::unpack(rd_bytes(shared, mo as usize, 8));
        mbar_tx(ctx, Some(&mut *bs), &mut m, mo, -(n as i64), at)?;
        let done = mbar_settle(ctx, Some(&mut *bs), &mut m, mo, true, at)?;
        wr_bytes(shared, mo as usize, 8, m.pack());
        if done {
            *race.epoch += 1;
        }
        c.bulk += 1;
        c.bulk_bytes += n as u64;
        if n > 0 {
            account_async_shared(c, pc, n as u64);
        }
    }
    Ok(())
}

/// Reads `buf.len()` bytes of a bulk or tensor copy's source at global `ga` for lane `l`
/// of warp `wi` at `pc`, bounds-checked like other global accesses, and counts them as
/// the instruction's global traffic.
fn bulk_read_global(
    ctx: &Ctx,
    c: &mut Counters,
    (wi, l, pc): (usize, usize, u32),
    grid_waited: bool,
    line: u32,
    ga: u64,
    buf: &mut [u8],
) -> R<()> {
    let n = buf.len() as u32;
    let Loc::Global(ai, go) = resolve(ctx, Space::Global, ga, n, 1, 0).map_err(|k| fault_at(k, wi, l, pc, ga))? else {
        return Err(unsup("bulk-copy source outside global memory".into(), line));
    };
    check_grid_dependency(ctx, grid_waited, ai, false, (wi, l, pc, ga))?;
    ctx.mem.allocs[ai].read_bytes(go, buf);
    c.alloc[ai].0 += n as u64;
    if n > 0 {
        let mut glog = AccLog::new();
        glog.push(l, ga);
        account(c, pc, Some(Space::Global), &glog, n);
    }
    Ok(())
}

/// Lands the copies on the mbarrier at shared offset `mbar` whose phase has completed,
/// now that a thread observed that completion: PTX ISA 9.7.9.25.2 "Async Proxy", the
/// completion of a bulk copy is followed by an implicit generic-async proxy fence, so
/// its result is visible to the generic proxy once its completion is observed (no
/// `fence.proxy.async` needed); 9.7.13.15.16, the waiting thread's acquire makes it
/// visible. The shadow keeps each byte's record as a write by the issuing thread at
/// its issue epoch, which the phase completion ended: every later access is ordered
/// after it. The bytes were written through the async proxy, so later wgmma reads owe
/// no proxy fence for them.
#[inline(never)]
fn land_bulk(shared: &mut [u8], shadow: &mut [ShadowByte], wg: Option<&mut WgState>, bs: &mut BulkState, mbar: u32) {
    if !bs.copies.iter().any(|c| c.mbar == mbar && c.done) {
        return;
    }
    let mut wg = wg;
    for c in std::mem::take(&mut bs.copies) {
        if c.mbar != mbar || !c.done {
            bs.copies.push(c);
            continue;
        }
        let r = c.dst as usize..c.dst as usize + c.data.len();
        shared[r.clone()].copy_from_slice(&c.data);
        if let Some(sh) = shadow.get_mut(r.clone()) {
            for s in sh.iter_mut().filter(|s| s.w.flags & F_BULK != 0 && s.w.tid == c.tid && s.w.pc == c.pc) {
                s.w.flags &= !F_BULK;
            }
        }
        if let Some(gw) = wg.as_deref_mut().and_then(|g| g.generic.get_mut(r)) {
            gw.fill(GenericWrite::NONE);
        }
    }
}

/// The block's last thread exits (lane `l` of warp `wi` at `pc`): a bulk copy not yet
/// landed (no wait observed its completion, so it may still write the block's shared
/// memory) or an mbarrier with a nonzero tx-count is a hazard.
#[cold]
fn bulk_exit(ctx: &Ctx, bs: &BulkState, shared: &[u8], (wi, l, pc): (usize, usize, u32)) -> R<()> {
    let other = |t: u16, p: u32| access_of(ctx, t as usize / 32, t as usize % 32, p, true);
    if let Some(c) = bs.copies.first() {
        return Err(bulk_fault(
            BulkRule::PendingAtExit,
            Some(other(c.tid, c.pc)),
            format!(
                "{} cp.async.bulk cop{} not landed; the first, {} bytes to shared {:#x}, {}",
                bs.copies.len(),
                if bs.copies.len() == 1 { "y" } else { "ies" },
                c.data.len(),
                c.dst,
                if c.done {
                    "completed its mbarrier phase but no mbarrier wait observed it"
                } else {
                    "never completed its mbarrier phase"
                }
            ),
            (wi, l, pc, Some(c.dst as u64)),
        ));
    }
    for t in &bs.tracks {
        let m = Mbar::unpack(rd_bytes(shared, t.mbar as usize, 8));
        if m.tx != 0 {
            let last = if m.tx > 0 { t.expect } else { t.complete };
            return Err(bulk_fault(
                BulkRule::PendingAtExit,
                last.map(|(t, p)| other(t, p)),
                format!(
                    "the mbarrier at shared {:#x} has tx-count {} ({})",
                    t.mbar,
                    m.tx,
                    if m.tx > 0 { "bytes expected but never completed" } else { "more bytes completed than expected" }
                ),
                (wi, l, pc, Some(t.mbar as u64)),
            ));
        }
    }
    Ok(())
}

/// A bulk-copy hazard at (warp, lane, pc, address).
#[cold]
fn bulk_fault(
    rule: BulkRule,
    other: Option<Access>,
    detail: String,
    (wi, lane, pc, addr): (usize, usize, u32, Option<u64>),
) -> Fault {
    Fault::Hazard { kind: HazardKind::Bulk(Box::new(BulkHazard { rule, other, detail })), warp: wi, lane, pc, addr }
}

/// Counts `bytes` of shared traffic by an async-proxy operation (wgmma operands, bulk
/// copy destinations) as one conflict-free warp access: one wavefront per 128 bytes,
/// with no bank model for the async proxy.
fn account_async_shared(c: &mut Counters, pc: u32, bytes: u64) {
    let wf = bytes.div_ceil(128);
    c.wavefronts += wf;
    c.min_wavefronts += wf;
    c.saccesses += 1;
    let at = pc as usize;
    if c.per_pc.len() <= at {
        c.per_pc.resize(at + 1, Default::default());
    }
    let e = &mut c.per_pc[at];
    e.shared_warp_accesses += 1;
    e.shared_wavefronts += wf;
    e.shared_min_wavefronts += wf;
}

fn account(c: &mut Counters, pc: u32, space: Option<Space>, log: &AccLog, size: u32) {
    let at = pc as usize;
    if c.per_pc.len() <= at {
        c.per_pc.resize(at + 1, Default::default());
    }
    match space {
        Some(Space::Global) => {
            let n = sectors(log, size);
            c.sectors += n;
            c.gaccesses += 1;
            let e = &mut c.per_pc[at];
            e.global_warp_accesses += 1;
            e.global_sectors += n;
        }
        Some(Space::Shared) => {
            let (wf, min) = wavefronts(log, size);
            c.wavefronts += wf;
            c.min_wavefronts += min;
            c.saccesses += 1;
            let e = &mut c.per_pc[at];
            e.shared_warp_accesses += 1;
            e.shared_wavefronts += wf;
            e.shared_min_wavefronts += min;
        }
        _ => {}
    }
}

/// Executes a warp collective for lanes `exec` (all required members are present).
fn collective(ctx: &Ctx, b: &mut Block, wi: usize, inst: &Inst, exec: u32, pc: u32) -> R<()> {
    if let Kind::SetMaxNReg { inc, regs } = inst.kind {
        if exec == 0 || !ctx.hazards {
            return Ok(());
        }
        let done = set_max_nreg(ctx, &mut b.warps, b.pool.as_deref_mut(), wi, MaxNReg { inc, regs, pc }, exec)?;
        if !done {
            // The warp waits for the pool: it has not executed the instruction (the
            // counters count it once, when the pool supplies the registers).
            b.c.warp_insts -= 1;
            b.c.class[inst.class as usize] -= exec.count_ones() as u64;
        }
        return Ok(());
    }
    let Block { warps, shared, shadow, c, ctaid, epoch, clock, uninit, wg, .. } = b;
    let w = &mut warps[wi];
    let env = Env { ctx, ctaid: *ctaid, wi, clock: *clock };
    let line = inst.line;
    let gather = |w: &Warp, o: &Operand| {
        let mut v = [0u32; 32];
        for l in lanes(exec) {
            v[l] = env.rd(&w.regs, o, l) as u32;
        }
        v
    };
    let l0 = exec.trailing_zeros() as usize;
    if exec == 0 {
        return Ok(());
    }
    match &inst.kind {
        Kind::WarpSync { .. } => w.wsync += 1,
        Kind::Shfl { mode, d, dp, a, b: bo, c: co, mask: mo } => {
            let m = env.rd(&w.regs, mo, l0) as u32;
            let (va, vb, vc) = (gather(w, a), gather(w, bo), gather(w, co));
            let (res, ok) = warp::shfl(*mode, &va, &vb, &vc, m & exec);
            for l in lanes(exec) {
                w.regs[*d as usize * 32 + l] = res[l] as u64;
                if let Some(p) = dp {
                    w.regs[*p as usize * 32 + l] = ok[l] as u64;
                }
            }
        }
        Kind::Vote { mode, d, a, neg, mask: mo } => {
            let m = env.rd(&w.regs, mo, l0) as u32;
            let mut preds = [false; 32];
            for l in lanes(exec) {
                preds[l] = (env.rd(&w.regs, a, l) & 1 != 0) != *neg;
            }
            let res = warp::vote(*mode, &preds, m & exec);
            for l in lanes(exec) {
                w.regs[*d as usize * 32 + l] = res[l] as u64;
            }
        }
        Kind::Redux { op, signed, d, a, mask: mo } => {
            let m = env.rd(&w.regs, mo, l0) as u32;
            let res = warp::redux(*op, *signed, &gather(w, a), m & exec);
            for l in lanes(exec) {
                w.regs[*d as usize * 32 + l] = res as u64;
            }
        }
        Kind::Mma { desc, ds, a, b: bo, c: co } => {
            let pack = |w: &Warp, ops: &[Operand]| -> R<[[u32; 4]; 32]> {
                if ops.len() > 4 {
                    return Err(unsup(format!("mma with {} registers per operand", ops.len()), line));
                }
                let mut v = [[0u32; 4]; 32];
                for l in lanes(exec) {
                    for (i, o) in ops.iter().enumerate() {
                        v[l][i] = env.rd(&w.regs, o, l) as u32;
                    }
                }
                Ok(v)
            };
            let (va, vb, vc) = (pack(w, a)?, pack(w, bo)?, pack(w, co)?);
            let res = mma::mma_sync(desc, &va, &vb, &vc).map_err(|e| unsup(format!("mma: {e}"), line))?;
            if ds.len() > 4 {
                return Err(unsup("mma with more than 4 destination registers".into(), line));
            }
            for l in lanes(exec) {
                for (i, d) in ds.iter().enumerate() {
                    w.regs[*d as usize * 32 + l] = res[l][i] as u64;
                }
            }
            c.mma += 1;
        }
        Kind::Ldmatrix { count, trans, ds, addr } => {
            let mut race = SharedShadow { ctx, bytes: shadow, uninit, epoch, wsync: w.wsync, wi, pc };
            let mut rows = [0u32; 32];
            let mut log = AccLog::new();
            for l in lanes(exec) {
                rows[l] = env.rd(&w.regs, &addr.base, l).wrapping_add(addr.offset as u64) as u32;
            }
            // Lanes 8i..8i+7 give the row addresses of matrix i (PTX ISA "ldmatrix").
            for (l, &row) in rows.iter().enumerate().take(*count as usize * 8) {
                let a = row as u64;
                if exec & (1 << l) == 0 {
                    return Err(Fault::Hazard {
                        kind: HazardKind::Barrier { detail: format!("ldmatrix row-address lane {l} is not active") },
                        warp: wi,
                        lane: l0,
                        pc,
                        addr: None,
                    });
                }
                let Loc::Shared(o) =
                    resolve(ctx, Space::Shared, a, 16, 16, 0).map_err(|k| fault_at(k, wi, l, pc, a))?
                else {
                    return Err(unsup("ldmatrix address".into(), line));
                };
                race.check(SharedAccess { lane: l, off: o, size: 16, kind: SharedAccessKind::Read })?;
                log.push(l, a);
            }
            let sh: &[u8] = shared;
            let mut read16 = |a: u32| -> Result<[u8; 16], String> {
                let s =
                    sh.get(a as usize..a as usize + 16).ok_or_else(|| format!("row address {a:#x} out of bounds"))?;
                let mut r = [0u8; 16];
                r.copy_from_slice(s);
                Ok(r)
            };
            let res = warp::ldmatrix(*count, *trans, &rows, &mut read16)
                .map_err(|e| unsup(format!("ldmatrix: {e}"), line))?;
            for l in lanes(exec) {
                for (i, d) in ds.iter().enumerate() {
                    w.regs[*d as usize * 32 + l] = res[l][i] as u64;
                }
            }
            account(c, pc, Some(Space::Shared), &log, 16);
        }
        Kind::WgFence | Kind::WgCommit | Kind::WgWait(_) | Kind::Wgmma { .. } => {
            let sh = WgShared { shared, shadow, uninit, epoch };
            wgmma_op(ctx, wg.as_deref_mut(), sh, c, w, wi, inst, exec, pc, &env)?;
        }
        _ => return Err(unsup(format!("collective at pc {pc}"), line)),
    }
    Ok(())
}

/// A setmaxnreg hazard of lane `lane` of warp `wi` at instruction `pc`.
#[cold]
fn setmaxnreg_fault(
    rule: SetMaxNRegRule,
    other: Option<Access>,
    detail: String,
    (wi, lane, pc): (usize, usize, u32),
) -> Fault {
    Fault::Hazard {
        kind: HazardKind::SetMaxNReg(Box::new(SetMaxNRegHazard { rule, other, detail })),
        warp: wi,
        lane,
        pc,
        addr: None,
    }
}

/// Lanes `exec` of warp `wi` execute `setmaxnreg` `op` (PTX ISA "setmaxnreg"; hazard
/// checks on). `.sync.aligned`: all 32 lanes of the warp, in a complete warpgroup;
/// `.inc` may not lower the warp's maximum, nor `.dec` raise it (compared with the
/// warp's previous setmaxnreg, or for its first with the launch count when known);
/// the same setmaxnreg for every warp of the warpgroup, so the warp's j-th one must
/// equal the j-th one of each warp of its warpgroup that already executed one. With a
/// register pool, `.dec` releases the registers above the new count into it (waking
/// the warps waiting for it) and `.inc` takes what the new count needs, or, when the
/// pool holds less, leaves the warp waiting at the instruction and returns false. The
/// op is then logged in `Warp::maxnreg` (`setmaxnreg_group_end` checks the counts at
/// the end).
#[inline(never)]
fn set_max_nreg(
    ctx: &Ctx,
    warps: &mut [Warp],
    pool: Option<&mut RegPool>,
    wi: usize,
    op: MaxNReg,
    exec: u32,
) -> R<bool> {
    let at = (wi, exec.trailing_zeros() as usize, op.pc);
    let group = wi / 4 * 4;
    if exec != u32::MAX || (group + 4) * 32 > ctx.nthreads as usize {
        return Err(setmaxnreg_fault(
            SetMaxNRegRule::NotConverged,
            None,
            format!(
                "warp {wi} executes setmaxnreg{} with lanes {exec:#010x} in a block of {} threads (all 32 lanes of the 4 warps {group}..{} must)",
                op.name(),
                ctx.nthreads,
                group + 3
            ),
            at,
        ));
    }
    let line_of = |pc: u32| ctx.k.insts.get(pc as usize).map_or(0, |i| i.line);
    let log = &warps[wi].maxnreg;
    let wrong = |cur: u32| (op.inc && op.regs < cur) || (!op.inc && op.regs > cur);
    let verb = if op.inc { "keep or raise" } else { "keep or lower" };
    match (log.last(), ctx.launch_regs) {
        (Some(&prev), _) if wrong(prev.regs) => {
            return Err(setmaxnreg_fault(
                SetMaxNRegRule::WrongDirection,
                Some(access_of(ctx, wi, 0, prev.pc, false)),
                format!(
                    "warp {wi} executes setmaxnreg{} after its setmaxnreg{} at PTX line {}: {} may only {verb} the warp's register maximum",
                    op.name(),
                    prev.name(),
                    line_of(prev.pc),
                    if op.inc { ".inc" } else { ".dec" },
                ),
                at,
            ));
        }
        (None, Some(launch)) if wrong(launch) => {
            return Err(setmaxnreg_fault(
                SetMaxNRegRule::WrongDirection,
                None,
                format!(
                    "warp {wi} executes setmaxnreg{} as its first setmaxnreg, launched with {launch} registers per thread: {} may only {verb} the warp's register maximum",
                    op.name(),
                    if op.inc { ".inc" } else { ".dec" },
                ),
                at,
            ));
        }
        _ => {}
    }
    let j = log.len();
    for (ow, other) in warps.iter().enumerate().skip(group).take(4) {
        match other.maxnreg.get(j) {
            Some(&o) if ow != wi && (o.inc, o.regs) != (op.inc, op.regs) => {
                return Err(setmaxnreg_fault(
                    SetMaxNRegRule::WarpgroupMismatch,
                    Some(access_of(ctx, ow, 0, o.pc, false)),
                    format!(
                        "setmaxnreg #{} of warp {wi} is setmaxnreg{} (PTX line {}); that of warp {ow} of its warpgroup was setmaxnreg{} (PTX line {})",
                        j + 1,
                        op.name(),
                        line_of(op.pc),
                        o.name(),
                        line_of(o.pc)
                    ),
                    at,
                ));
            }
            _ => {}
        }
    }
    if let Some(pool) = pool {
        // The direction checks above keep `.dec` at or below, and `.inc` at or above,
        // the warp's current count.
        let (now, new) = (warp_registers(pool.regs[wi]), warp_registers(op.regs));
        if op.inc {
            let need = new.saturating_sub(now);
            if pool.free < need {
                let w = &mut warps[wi];
                w.coll_wait |= exec;
                for l in lanes(exec) {
                    w.pc[l] = op.pc;
                }
                pool.waiting |= 1 << wi;
                return Ok(false);
            }
            pool.free -= need;
        } else {
            pool.free += now.saturating_sub(new);
            let mut m = std::mem::take(&mut pool.waiting);
            while m != 0 {
                let ow = m.trailing_zeros() as usize;
                m &= m - 1;
                let w = &mut warps[ow];
                w.coll_wait &= !w.live;
                w.try_converge();
            }
        }
        pool.regs[wi] = op.regs;
    }
    warps[wi].maxnreg.push(op);
    Ok(true)
}

/// The setmaxnreg hang of a block that can make no progress (the driver found every
/// live thread blocked, or the whole launch stuck): `Some` when a warp waits at a
/// `setmaxnreg.inc` the block's register pool cannot supply (PTX ISA "setmaxnreg":
/// `.inc` blocks until the pool can), reported for the lowest such warp with the
/// pool's contents and what every warp holds.
#[cold]
pub fn pool_exhausted(ctx: &Ctx, b: &Block) -> Option<Fault> {
    let pool = b.pool.as_deref()?;
    if pool.waiting == 0 {
        return None;
    }
    let wi = pool.waiting.trailing_zeros() as usize;
    let pc = b.warps[wi].pc[b.warps[wi].live.trailing_zeros() as usize % 32];
    let requested = |pc: u32| match ctx.k.insts.get(pc as usize).map(|i| &i.kind) {
        Some(Kind::SetMaxNReg { regs, .. }) => *regs,
        _ => 0,
    };
    let regs = requested(pc);
    let need = warp_registers(regs).saturating_sub(warp_registers(pool.regs[wi]));
    // What each warp holds, runs of equal state merged.
    let state = |ow: usize| {
        let w = &b.warps[ow];
        let doing = if pool.waiting & (1 << ow) != 0 {
            format!(", waiting at setmaxnreg.inc {}", requested(w.pc[w.live.trailing_zeros() as usize % 32]))
        } else if w.live == 0 {
            ", exited".to_string()
        } else {
            String::new()
        };
        (pool.regs[ow], doing)
    };
    let mut runs: Vec<(usize, usize, (u32, String))> = Vec::new();
    for ow in 0..b.warps.len() {
        let s = state(ow);
        match runs.last_mut() {
            Some((_, end, last)) if *last == s => *end = ow,
            _ => runs.push((ow, ow, s)),
        }
    }
    let holds: Vec<String> = runs
        .iter()
        .map(|(first, last, (r, doing))| {
            let warps = if first == last { format!("warp {first}") } else { format!("warps {first}..{last}") };
            format!("{warps} {r} per thread ({} each{doing})", warp_registers(*r))
        })
        .collect();
    let nw = b.warps.len() as u32;
    Some(setmaxnreg_fault(
        SetMaxNRegRule::PoolExhausted,
        None,
        format!(
            "warp {wi} waits at setmaxnreg.inc {regs} for {need} more registers, and the block's pool holds {} that no \
             warp of the block can add to (every live warp is blocked or makes no progress); the {nw} warps were \
             launched with {} registers per thread ({} per warp, {} in all) and hold: {}",
            pool.free,
            pool.launch,
            warp_registers(pool.launch),
            nw * warp_registers(pool.launch),
            holds.join("; ")
        ),
        (wi, 0, pc),
    ))
}

/// Warp `wi` has exited (hazard checks on, kernel with setmaxnreg): once every warp
/// of its warpgroup has, each must have executed as many setmaxnreg instructions as
/// the others (PTX ISA "setmaxnreg": the same setmaxnreg for all warps of the
/// warpgroup). Reports the first warp that skipped one, at the line of the one it
/// skipped, with a warp that executed it as the other side.
#[inline(never)]
fn setmaxnreg_group_end(ctx: &Ctx, warps: &[Warp], wi: usize) -> R<()> {
    let group = &warps[wi / 4 * 4..(wi / 4 * 4 + 4).min(warps.len())];
    if group.iter().any(|w| w.live != 0) {
        return Ok(());
    }
    let most = group.iter().map(|w| w.maxnreg.len()).max().unwrap_or(0);
    let Some((short, n)) = group.iter().map(|w| w.maxnreg.len()).enumerate().find(|&(_, n)| n < most) else {
        return Ok(());
    };
    let Some((long, w)) = group.iter().enumerate().find(|(_, w)| w.maxnreg.len() > n) else {
        return Ok(());
    };
    let op = w.maxnreg[n];
    let (short, long) = (wi / 4 * 4 + short, wi / 4 * 4 + long);
    let line = ctx.k.insts.get(op.pc as usize).map_or(0, |i| i.line);
    Err(setmaxnreg_fault(
        SetMaxNRegRule::WarpgroupMissing,
        Some(access_of(ctx, long, 0, op.pc, false)),
        format!(
            "warp {short} exited after {n} setmaxnreg instruction(s); warp {long} of its warpgroup executed setmaxnreg #{} ({} at PTX line {line})",
            n + 1,
            op.name()
        ),
        (short, 0, op.pc),
    ))
}

/// The block's shared memory and race shadow, lent to `wgmma_op` and `cp_async_bulk`.
struct WgShared<'a> {
    shared: &'a mut Vec<u8>,
    shadow: &'a mut Vec<ShadowByte>,
    uninit: &'a mut Option<(u32, u32, u32)>,
    epoch: &'a mut u32,
}

/// A wgmma hazard at (warp, lane, pc, address).
#[cold]
fn wg_fault(
    rule: WgmmaRule,
    register: Option<String>,
    other: Option<Access>,
    detail: String,
    (wi, lane, pc, addr): (usize, usize, u32, Option<u64>),
) -> Fault {
    Fault::Hazard {
        kind: HazardKind::Wgmma(Box::new(WgmmaHazard { rule, register, other, detail })),
        warp: wi,
        lane,
        pc,
        addr,
    }
}

/// Lanes `exec` of warp `wi` exit: a hazard while the warp has wgmma operations not
/// retired by `wgmma.wait_group`.
#[inline(never)]
fn wg_exit(ctx: &Ctx, g: &WgState, wi: usize, exec: u32, pc: u32) -> R<()> {
    let ops = &g.warps[wi].ops;
    match ops.front() {
        Some(op) if exec != 0 && ctx.hazards => {
            let l = exec.trailing_zeros() as usize;
            Err(wg_fault(
                WgmmaRule::PendingAtExit,
                None,
                Some(access_of(ctx, wi, l, op.pc, true)),
                format!("{} wgmma.mma_async operation(s) of warp {wi} pending at exit", ops.len()),
                (wi, l, pc, None),
            ))
        }
        _ => Ok(()),
    }
}

/// The access of lane `l` of warp `wi` by instruction `pc`, for a hazard's other side.
fn access_of(ctx: &Ctx, wi: usize, l: usize, pc: u32, write: bool) -> Access {
    let env = Env { ctx, ctaid: [0; 3], wi, clock: 0 };
    Access { tid: env.tid(l), warp: wi as u32, line: ctx.k.insts.get(pc as usize).map_or(0, |i| i.line), write }
}

/// Checks the accesses `acc` of instruction `pc` (lanes `exec` of warp `wi`) to
/// registers of wgmma operands: reading or writing the accumulator, or writing an A
/// register, of a wgmma not yet retired is a hazard (PTX ISA 9.7.15.7.3
/// "wgmma.wait_group"); otherwise the access is remembered until the next
/// `wgmma.fence` (9.7.15.7.1 "wgmma.fence").
#[inline(never)]
fn wg_touch(ctx: &Ctx, wg: Option<&mut WgState>, wi: usize, pc: u32, exec: u32, acc: &[(Reg, bool)]) -> R<()> {
    let Some(g) = wg else { return Ok(()) };
    let ws = &mut g.warps[wi];
    for &(r, write) in acc {
        let ri = r as usize;
        let owner = ws.d_owner[ri];
        if owner != u32::MAX || (write && ws.a_users[ri] > 0) {
            let l = exec.trailing_zeros() as usize;
            let (op, as_d) = match ws.ops.iter().find(|o| o.seq == owner) {
                Some(op) => (op, true),
                None => (ws.ops.iter().find(|o| o.a.contains(&r)).unwrap_or(&ws.ops[0]), false),
            };
            return Err(wg_fault(
                WgmmaRule::RegisterInFlight,
                Some(ctx.k.reg_name(r)),
                Some(access_of(ctx, wi, l, op.pc, as_d)),
                format!(
                    "{} {} {} of a wgmma.mma_async not yet retired by wgmma.wait_group",
                    if write { "write to" } else { "read of" },
                    if as_d { "accumulator register" } else { "A register" },
                    ctx.k.reg_name(r)
                ),
                (wi, l, pc, None),
            ));
        }
        if ws.touched[ri].is_none() {
            ws.touched_list.push(r);
        }
        ws.touched[ri] = Some((pc, write));
    }
    Ok(())
}

/// A generic-proxy write of shared `[off, off+size)` by lane `l` of warp `wi`: a
/// hazard if a pending wgmma reads those bytes; recorded (`record`) with the writer's
/// `fence.proxy.async` count for the proxy check of later wgmma reads, which go
/// through the async proxy (PTX ISA "Memory consistency model: proxies"; 9.7.15.7.1:
/// "An async proxy fence must be used to establish an ordering between prior writes
/// to shared memory matrices and subsequent reads of the same matrices in a
/// wgmma.mma_async instruction"). No-op when hazard checks are off.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn wg_shared_write(
    ctx: &Ctx,
    g: &mut WgState,
    wi: usize,
    l: usize,
    pc: u32,
    off: u32,
    size: u32,
    record: bool,
) -> R<()> {
    if g.reading.is_empty() {
        return Ok(());
    }
    let (c0, c1) = (off / 16, (off + size - 1) / 16);
    if g.reading[c0 as usize..=c1 as usize].iter().any(|&n| n != 0) {
        return Err(wg_overwrite_fault(ctx, g, wi, l, pc, off, size));
    }
    if record {
        let tid = (wi * 32 + l) as u16;
        let fences = g.fences[tid as usize];
        g.generic[off as usize..(off + size) as usize].fill(GenericWrite { tid, fences, pc });
    }
    Ok(())
}

/// `wg_shared_write` for each lane of a store whose address is in shared memory.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn wg_store(
    ctx: &Ctx,
    g: &mut WgState,
    env: &Env,
    w: &Warp,
    addr: &Addr,
    space: Space,
    size: u32,
    exec: u32,
    pc: u32,
) -> R<()> {
    if g.reading.is_empty() {
        return Ok(());
    }
    for l in lanes(exec) {
        let a = env.rd(&w.regs, &addr.base, l).wrapping_add(addr.offset as u64);
        if let Ok(Loc::Shared(o)) = resolve(ctx, space, a, size, size, ctx.k.local_size) {
            wg_shared_write(ctx, g, env.wi, l, pc, o, size, true)?;
        }
    }
    Ok(())
}

#[cold]
fn wg_overwrite_fault(ctx: &Ctx, g: &WgState, wi: usize, l: usize, pc: u32, off: u32, size: u32) -> Fault {
    let hit = |c: u32| c + 16 > off && c < off + size;
    let found = g.warps.iter().enumerate().find_map(|(w, ws)| {
        ws.ops
            .iter()
            .find(|o| o.chunks.iter().any(|&c| hit(c)))
            .map(|o| (w, o.pc, o.chunks.iter().copied().find(|&c| hit(c))))
    });
    let (other, at) = match found {
        Some((w, opc, c)) => (Some(access_of(ctx, w, 0, opc, false)), c.map(|c| c.max(off))),
        None => (None, None),
    };
    wg_fault(
        WgmmaRule::SharedOverwritten,
        None,
        other,
        format!("write of shared bytes {off:#x}..{:#x} read by a wgmma.mma_async not yet retired", off + size),
        (wi, l, pc, Some(at.unwrap_or(off) as u64)),
    )
}

/// Executes `wgmma.fence` / `commit_group` / `wait_group` / `mma_async` for warp `wi`
/// (all lanes present; PTX ISA 9.7.15.7). `mma_async` computes its result at issue
/// from the current registers (a pending accumulator chains on the pending value) and
/// shared memory, and queues it; `wait_group` writes retired results into the
/// registers. A warp's wgmma instructions and `wait_group` also bump its warp-sync
/// epoch: the `.sync.aligned` rendezvous orders the warp's lanes for the race model,
/// so a wgmma's reads (attributed to lane 0) do not race with its own warp's writes.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn wgmma_op(
    ctx: &Ctx,
    g: Option<&mut WgState>,
    sh: WgShared,
    c: &mut Counters,
    w: &mut Warp,
    wi: usize,
    inst: &Inst,
    exec: u32,
    pc: u32,
    env: &Env,
) -> R<()> {
    let line = inst.line;
    let Some(g) = g else {
        return Err(unsup("wgmma state missing".into(), line));
    };
    if ctx.hazards && (exec != u32::MAX || (wi / 4 + 1) * 128 > ctx.nthreads as usize) {
        return Err(wg_fault(
            WgmmaRule::NotConverged,
            None,
            None,
            format!(
                "warp {wi} executes it with lanes {exec:#010x} (all 32 lanes of the 4 warps {}..{} must)",
                wi / 4 * 4,
                wi / 4 * 4 + 3
            ),
            (wi, exec.trailing_zeros() as usize, pc, None),
        ));
    }
    let ws = &mut g.warps[wi];
    match &inst.kind {
        Kind::WgFence => {
            ws.fenced = true;
            for r in ws.touched_list.drain(..) {
                ws.touched[r as usize] = None;
            }
        }
        Kind::WgCommit => {
            let grp = ws.next_group;
            for op in ws.ops.iter_mut().filter(|o| o.group == u32::MAX) {
                op.group = grp;
            }
            ws.next_group += 1;
        }
        Kind::WgWait(n) => {
            let keep_from = ws.next_group.saturating_sub(*n);
            // Committed groups form a prefix of the queue (commit takes every
            // uncommitted operation), so retiring pops from the front.
            while ws.ops.front().is_some_and(|o| o.group != u32::MAX && o.group < keep_from) {
                let Some(op) = ws.ops.pop_front() else { break };
                let nd = op.ds.len();
                for (i, &d) in op.ds.iter().enumerate() {
                    for lane in 0..32 {
                        w.regs[d as usize * 32 + lane] = op.d[lane * nd + i] as u64;
                    }
                    if ws.d_owner[d as usize] == op.seq {
                        ws.d_owner[d as usize] = u32::MAX;
                    }
                }
                for &a in &op.a {
                    ws.a_users[a as usize] -= 1;
                }
                if !g.reading.is_empty() {
                    for &ch in &op.chunks {
                        g.reading[ch as usize / 16] -= 1;
                    }
                }
            }
            w.wsync += 1;
        }
        Kind::Wgmma { desc, ds, a, b, scale_d } => {
            wgmma_issue(ctx, g, sh, c, w, wi, pc, env, (desc, ds, a, b, scale_d))?;
        }
        _ => return Err(unsup(format!("wgmma at pc {pc}"), line)),
    }
    Ok(())
}

/// Issues one `wgmma.mma_async` of warp `wi` (see `wgmma_op`).
#[allow(clippy::too_many_arguments)]
fn wgmma_issue(
    ctx: &Ctx,
    g: &mut WgState,
    sh: WgShared,
    c: &mut Counters,
    w: &mut Warp,
    wi: usize,
    pc: u32,
    env: &Env,
    (desc, ds, a, b, scale_d): (&WgmmaDesc, &[Reg], &WgA, &Operand, &Operand),
) -> R<()> {
    let line = ctx.k.insts.get(pc as usize).map_or(0, |i| i.line);
    desc.validate().map_err(|e| unsup(e, line))?;
    let nd = desc.d_regs();
    if ds.len() != nd {
        return Err(unsup(
            format!("wgmma.mma_async .m64n{} .f32 with {} accumulator registers (needs {nd})", desc.n, ds.len()),
            line,
        ));
    }
    let a_regs: &[Reg] = match a {
        WgA::Regs(v) if v.len() == 4 => v,
        WgA::Regs(v) => return Err(unsup(format!("wgmma.mma_async A with {} registers (needs 4)", v.len()), line)),
        WgA::Desc(_) => &[],
    };
    let at = |l: usize| (wi, l, pc, None);
    let ws = &mut g.warps[wi];
    if ctx.hazards {
        if !ws.fenced {
            return Err(wg_fault(
                WgmmaRule::MissingFence,
                None,
                None,
                format!("warp {wi} issues wgmma.mma_async without any earlier wgmma.fence"),
                at(0),
            ));
        }
        for &r in a_regs.iter().chain(ds) {
            if let Some((p, write)) = ws.touched[r as usize] {
                return Err(wg_fault(
                    WgmmaRule::MissingFence,
                    Some(ctx.k.reg_name(r)),
                    Some(access_of(ctx, wi, 0, p, write)),
                    format!(
                        "register {} {} since warp {wi}'s last wgmma.fence",
                        ctx.k.reg_name(r),
                        if write { "written" } else { "read" }
                    ),
                    at(0),
                ));
            }
        }
        let in_flight = |r: Reg, op_pc: u32, what: &str| {
            wg_fault(
                WgmmaRule::RegisterInFlight,
                Some(ctx.k.reg_name(r)),
                Some(access_of(ctx, wi, 0, op_pc, true)),
                format!("{what} {} of a wgmma.mma_async not yet retired", ctx.k.reg_name(r)),
                at(0),
            )
        };
        for &r in a_regs {
            let owner = ws.d_owner[r as usize];
            if let Some(op) = ws.ops.iter().find(|o| o.seq == owner) {
                return Err(in_flight(r, op.pc, "A operand is the accumulator register"));
            }
        }
        for &r in ds {
            if ws.a_users[r as usize] > 0 {
                let op_pc = ws.ops.iter().find(|o| o.a.contains(&r)).map_or(pc, |o| o.pc);
                return Err(in_flight(r, op_pc, "accumulator overwrites the A register"));
            }
            let owner = ws.d_owner[r as usize];
            if let Some(op) = ws.ops.iter().find(|o| o.seq == owner && o.n != desc.n) {
                // Accumulators chain without a fence only between wgmma of the same shape.
                return Err(in_flight(
                    r,
                    op.pc,
                    "accumulator (chained from a different shape) is the accumulator register",
                ));
            }
        }
    }
    // Operands: scale-d and the descriptors are warp-uniform; take lane 0's.
    let sd = env.rd(&w.regs, scale_d, 0) != 0;
    let read_desc = |o: &Operand| -> R<MatrixDesc> {
        let v = env.rd(&w.regs, o, 0);
        if ctx.hazards && (1..32).any(|l| env.rd(&w.regs, o, l) != v) {
            return Err(wg_fault(
                WgmmaRule::Descriptor,
                None,
                None,
                "matrix descriptor differs between the lanes of the warp".into(),
                at(0),
            ));
        }
        let d = MatrixDesc::decode(v);
        if d.base_offset != 0 {
            return Err(unsup(format!("wgmma matrix descriptor with base offset {}", d.base_offset), line));
        }
        if ctx.hazards && d.misaligned_pattern() {
            return Err(wg_fault(
                WgmmaRule::Descriptor,
                None,
                None,
                format!(
                    "descriptor start {:#x} with {:?} swizzle and base offset 0: the swizzle pattern must \
                     start on a {}-byte boundary (only offsets below 128 bytes, inside the swizzled row, may \
                     be added)",
                    d.start,
                    d.swizzle,
                    d.swizzle.pattern_bytes()
                ),
                (wi, 0, pc, Some(d.start)),
            ));
        }
        Ok(d)
    };
    let bdesc = read_desc(b)?;
    let adesc = match a {
        WgA::Desc(o) => Some(read_desc(o)?),
        WgA::Regs(_) => None,
    };
    // Shared chunks read: 16 bytes = 8 consecutive k of one row (the swizzle only
    // permutes 16-byte units). B: rows n < N; A (descriptor form): this warp's rows.
    let quarter = (wi % 4) as u32 * 16;
    let mut chunks = Vec::with_capacity(2 * desc.n as usize + 32);
    for n in 0..desc.n {
        for kc in 0..2 {
            chunks.push(bdesc.k_major_addr(n, 8 * kc));
        }
    }
    if let Some(ad) = &adesc {
        for m in quarter..quarter + 16 {
            for kc in 0..2 {
                chunks.push(ad.k_major_addr(m, 8 * kc));
            }
        }
    }
    w.wsync += 1;
    let WgShared { shared, shadow, uninit, epoch } = sh;
    let mut race = SharedShadow { ctx, bytes: shadow, uninit, epoch, wsync: w.wsync, wi, pc };
    for &ch in &chunks {
        if ch + 16 > ctx.smem_size as u64 {
            return Err(fault_at(HazardKind::OutOfBounds { space: "shared", size: 16 }, wi, 0, pc, ch));
        }
        let off = ch as u32;
        if ctx.hazards {
            race.check(SharedAccess { lane: 0, off, size: 16, kind: SharedAccessKind::Read })?;
            for byte in off..off + 16 {
                let gw = g.generic[byte as usize];
                if gw.tid != NO_TID && g.fences[gw.tid as usize] == gw.fences {
                    return Err(wg_fault(
                        WgmmaRule::MissingProxyFence,
                        None,
                        Some(access_of(ctx, gw.tid as usize / 32, gw.tid as usize % 32, gw.pc, true)),
                        format!(
                            "shared byte {byte:#x} read by wgmma.mma_async (async proxy) was last written \
                             through the generic proxy by thread {} with no fence.proxy.async of that thread since",
                            gw.tid
                        ),
                        (wi, 0, pc, Some(byte as u64)),
                    ));
                }
            }
        }
    }
    let sh16 = |addr: u64| -> u16 {
        let o = addr as usize;
        u16::from_le_bytes([shared.get(o).copied().unwrap_or(0), shared.get(o + 1).copied().unwrap_or(0)])
    };
    let ws = &mut g.warps[wi];
    let mut af = [[0u32; 4]; 32];
    for (lane, regs) in af.iter_mut().enumerate() {
        match &adesc {
            None => {
                for (i, &r) in a_regs.iter().enumerate() {
                    regs[i] = w.regs[r as usize * 32 + lane] as u32;
                }
            }
            Some(ad) => {
                // A register r: row 16w + g + 8(r & 1), columns 2t + 8(r >> 1) and +1.
                let (gg, t) = (lane as u32 >> 2, lane as u32 & 3);
                for (r, reg) in regs.iter_mut().enumerate() {
                    let r = r as u32;
                    let (row, k) = (quarter + gg + 8 * (r & 1), 2 * t + 8 * (r >> 1));
                    *reg = sh16(ad.k_major_addr(row, k)) as u32 | (sh16(ad.k_major_addr(row, k + 1)) as u32) << 16;
                }
            }
        }
    }
    let mut cv = vec![0u32; 32 * nd];
    if sd {
        for (i, &d) in ds.iter().enumerate() {
            let owner = ws.d_owner[d as usize];
            let pend =
                ws.ops.iter().find(|o| o.seq == owner).and_then(|o| Some((o, o.ds.iter().position(|&x| x == d)?)));
            for lane in 0..32 {
                cv[lane * nd + i] = match pend {
                    Some((o, j)) => o.d[lane * o.ds.len() + j],
                    None => w.regs[d as usize * 32 + lane] as u32,
                };
            }
        }
    }
    let bval = |k: u32, n: u32| sh16(bdesc.k_major_addr(n, k));
    let d = wgmma_warp(desc, &af, &bval, &cv, sd).map_err(|e| unsup(format!("wgmma: {e}"), line))?;
    let seq = ws.next_seq;
    ws.next_seq += 1;
    for &r in ds {
        ws.d_owner[r as usize] = seq;
    }
    for &r in a_regs {
        ws.a_users[r as usize] += 1;
    }
    let chunks: Vec<u32> = chunks.into_iter().map(|c| c as u32).collect();
    if !g.reading.is_empty() {
        for &ch in &chunks {
            g.reading[ch as usize / 16] += 1;
        }
    }
    // Counters: one warp-level tensor op; its shared bytes as conflict-free traffic
    // (no bank model for wgmma: one wavefront per 128 bytes).
    let bytes = chunks.len() as u64 * 16;
    c.wgmma += 1;
    c.wgmma_bytes += bytes;
    account_async_shared(c, pc, bytes);
    g.warps[wi].ops.push_back(WgOp {
        seq,
        pc,
        group: u32::MAX,
        n: desc.n,
        ds: ds.to_vec(),
        a: a_regs.to_vec(),
        d,
        chunks,
    });
    Ok(())
}
