//! Machine state: device (global) memory shared by all worker threads, and the
//! per-block state (warps with `[reg][lane]` register files, shared memory with its
//! hazard shadow, per-thread local memory, pending cp.async copies, in-flight bulk
//! copies and the mbarrier object encoding).
//!
//! Generic address space (PTX ISA "Generic Addressing"): global allocations live at
//! `GLOBAL_BASE..`; the shared window is `SHARED_WINDOW..+4 GiB` (generic = window +
//! shared offset), the local window `LOCAL_WINDOW..+4 GiB`, the kernel-param window
//! `PARAM_WINDOW..+4 GiB`. `cvta` adds/subtracts the window base.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::SimError;

/// First device address handed out by `Gpu::alloc`.
pub const GLOBAL_BASE: u64 = 0x0000_0001_0000_0000;
/// Base of the shared-memory window in the generic address space.
pub const SHARED_WINDOW: u64 = 0x0001_0000_0000_0000;
/// Base of the local-memory window in the generic address space.
pub const LOCAL_WINDOW: u64 = 0x0002_0000_0000_0000;
/// Base of the kernel-parameter window in the generic address space.
pub const PARAM_WINDOW: u64 = 0x0003_0000_0000_0000;
/// Size of each non-global window.
pub const WINDOW_SIZE: u64 = 1 << 32;

/// One device allocation, stored as atomic 64-bit words so blocks running on
/// different host threads can share it (Relaxed ordering: plain moves on x86).
pub struct Alloc {
    /// Device address of byte 0.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    words: Box<[AtomicU64]>,
}

impl Alloc {
    /// A zero-filled allocation, or an error when the host refuses it (device memory
    /// lives in host memory). The zeros come from the allocator (`alloc_zeroed`), not
    /// from writing every word: the host maps the pages lazily, so an allocation costs
    /// memory only where a kernel or an upload touches it.
    pub fn new(base: u64, size: u64) -> Result<Alloc, SimError> {
        let n = size.div_ceil(8) as usize;
        let words = bytemuck::try_zeroed_slice_box::<AtomicU64>(n)
            .map_err(|()| SimError::Memory(format!("allocation of {size} bytes: the host refused the memory")))?;
        Ok(Alloc { base, size, words })
    }

    /// Reads `size` (1, 2, 4, 8) bytes at offset `o`, little-endian; the access must
    /// not cross an 8-byte word unless it falls back to byte reads.
    #[inline]
    pub fn load(&self, o: u64, size: u32) -> u64 {
        let sh = (o % 8) * 8;
        if sh as u32 / 8 + size <= 8 {
            let w = self.words[(o / 8) as usize].load(Ordering::Relaxed);
            if size == 8 {
                w
            } else {
                (w >> sh) & ((1u64 << (size * 8)) - 1)
            }
        } else {
            let mut v = 0u64;
            for i in 0..size as u64 {
                v |= self.load(o + i, 1) << (8 * i);
            }
            v
        }
    }

    /// Writes `size` (1, 2, 4, 8) bytes at offset `o`.
    #[inline]
    pub fn store(&self, o: u64, size: u32, v: u64) {
        let sh = (o % 8) * 8;
        if size == 8 && sh == 0 {
            self.words[(o / 8) as usize].store(v, Ordering::Relaxed);
        } else if sh as u32 / 8 + size <= 8 {
            let mask = ((1u64 << (size * 8)) - 1) << sh;
            let w = &self.words[(o / 8) as usize];
            let mut cur = w.load(Ordering::Relaxed);
            loop {
                let new = (cur & !mask) | ((v << sh) & mask);
                match w.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => break,
                    Err(x) => cur = x,
                }
            }
        } else {
            for i in 0..size as u64 {
                self.store(o + i, 1, v >> (8 * i));
            }
        }
    }

    /// Atomic read-modify-write of an aligned 4- or 8-byte value: `f(old)` gives
    /// the new value (`None` = no write); returns the old value.
    pub fn rmw(&self, o: u64, size: u32, f: &mut dyn FnMut(u64) -> Option<u64>) -> u64 {
        let w = &self.words[(o / 8) as usize];
        let sh = (o % 8) * 8;
        let mask = if size == 8 { u64::MAX } else { ((1u64 << (size * 8)) - 1) << sh };
        let mut cur = w.load(Ordering::SeqCst);
        loop {
            let old = (cur & mask) >> sh;
            let Some(nv) = f(old) else { return old };
            let new = (cur & !mask) | ((nv << sh) & mask);
            match w.compare_exchange_weak(cur, new, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return old,
                Err(x) => cur = x,
            }
        }
    }
}

/// All device allocations, sorted by base address.
#[derive(Default)]
pub struct GlobalMem {
    /// Allocations sorted by `base`.
    pub allocs: Vec<Alloc>,
    /// Next free device address.
    pub next: u64,
}

impl GlobalMem {
    /// Index of the allocation containing `[addr, addr+len)`, if any.
    #[inline]
    pub fn find(&self, addr: u64, len: u64) -> Option<usize> {
        let i = self.allocs.partition_point(|a| a.base <= addr).checked_sub(1)?;
        let a = &self.allocs[i];
        (addr - a.base + len <= a.size).then_some(i)
    }
}

/// No thread has touched this shared byte.
pub const NO_TID: u16 = u16::MAX;

/// Record of one access in the shared-memory shadow.
#[derive(Clone, Copy, Debug)]
pub struct ShadowAcc {
    /// Linear thread index in the block (`NO_TID` = none).
    pub tid: u16,
    /// Flags: `F_ATOMIC`, `F_PENDING`, `F_BULK`.
    pub flags: u16,
    /// Block-barrier epoch at the access.
    pub epoch: u32,
    /// Warp-sync epoch of the accessing warp at the access.
    pub wsync: u32,
    /// Instruction index of the access.
    pub pc: u32,
}

/// Access was an atomic.
pub const F_ATOMIC: u16 = 1;
/// Write is a cp.async not yet landed by its issuing thread's wait.
pub const F_PENDING: u16 = 2;
/// Write is a `cp.async.bulk` whose completion no thread has observed yet (PTX ISA
/// 9.7.9.25.2 "Async Proxy": its result becomes visible once its completion is
/// observed through the mbarrier).
pub const F_BULK: u16 = 4;

impl ShadowAcc {
    /// The empty record.
    pub const NONE: ShadowAcc = ShadowAcc { tid: NO_TID, flags: 0, epoch: 0, wsync: 0, pc: 0 };
}

/// Shadow state of one shared byte: its last write and the last two reads by
/// different threads (see `step::SharedShadow::record` for the race model).
#[derive(Clone, Copy, Debug)]
pub struct ShadowByte {
    /// Last write.
    pub w: ShadowAcc,
    /// Latest read since the last write.
    pub r1: ShadowAcc,
    /// Latest read by a thread other than `r1`'s since the last write.
    pub r2: ShadowAcc,
}

impl ShadowByte {
    /// Never touched.
    pub const NONE: ShadowByte = ShadowByte { w: ShadowAcc::NONE, r1: ShadowAcc::NONE, r2: ShadowAcc::NONE };
}

/// One cp.async copy not yet landed in shared memory.
#[derive(Clone, Debug)]
pub struct CpPending {
    /// Shared destination offset.
    pub dst: u32,
    /// Data read from global memory at issue (zero-filled past src-size).
    pub data: [u8; 16],
    /// Bytes.
    pub len: u32,
    /// Commit group sequence number (`u32::MAX` = not yet committed).
    pub group: u32,
    /// Instruction index of the cp.async.
    pub pc: u32,
}

/// Per-warp state. Registers are `[reg][lane]`.
pub struct Warp {
    /// Register file, `regs[r * 32 + lane]`.
    pub regs: Vec<u64>,
    /// Per-lane program counter (stale while `uni` holds).
    pub pc: [u32; 32],
    /// True when every runnable lane is at `upc`.
    pub uni: bool,
    /// The common PC while `uni` holds.
    pub upc: u32,
    /// Lanes that exist and have not exited.
    pub live: u32,
    /// Lanes waiting at a block barrier.
    pub bar_wait: u32,
    /// Lanes waiting at a warp collective for the other members.
    pub coll_wait: u32,
    /// Barrier id and barrier instruction of each waiting lane.
    pub bar_at: [(u32, u32); 32],
    /// Warp-sync epoch (bumped by `bar.warp.sync` and every block barrier).
    pub wsync: u32,
    /// Per-lane local memory, `local_size` bytes each.
    pub local: Vec<u8>,
    /// Per-lane pending cp.async copies.
    pub cp: Vec<Vec<CpPending>>,
    /// Per-lane next commit-group number.
    pub cp_next_group: [u32; 32],
    /// While diverged, run the lane group with the highest PC first (set when a
    /// quantum ends inside a divergent loop, so a lane holding a lock that its
    /// spinning warp-mates wait for gets to run; cleared at its next backward branch).
    pub rr: bool,
    /// Warp instructions executed in the current quantum.
    pub budget_used: u64,
    /// The warp's `setmaxnreg` instructions so far, in order (recorded only with
    /// hazard checks on; empty, and never allocated, in kernels without setmaxnreg).
    pub maxnreg: Vec<MaxNReg>,
    /// Lanes that executed `griddepcontrol.wait` (read only by a programmatic launch's
    /// grid-dependency check).
    pub grid_waited: u32,
}

/// One executed `setmaxnreg` of a warp (PTX ISA "setmaxnreg").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxNReg {
    /// `.inc` (true) or `.dec`.
    pub inc: bool,
    /// The requested per-thread register count.
    pub regs: u32,
    /// Instruction index.
    pub pc: u32,
}

/// A block's register pool for `setmaxnreg` (PTX ISA "setmaxnreg": a pool of
/// registers is kept per CTA; `.dec` releases the warp's registers above the new count
/// into it, `.inc` blocks until it can supply the registers the new count needs).
/// Present only with hazard checks on, a known launch register count and a kernel
/// that contains setmaxnreg. Counts are per thread; a warp holds
/// `step::warp_registers` of its count.
#[derive(Clone, Debug)]
pub struct RegPool {
    /// Registers per thread every warp started with.
    pub launch: u32,
    /// Registers in the pool: released by `.dec`, not yet taken by `.inc`. Starts at 0.
    pub free: u32,
    /// Per warp: its current registers per thread.
    pub regs: Vec<u32>,
    /// Warps waiting at a `setmaxnreg.inc` for the pool, one bit per warp (a block has
    /// at most 32 warps). All lanes of such a warp are in `Warp::coll_wait` at the
    /// instruction; a `.dec` wakes them to retry.
    pub waiting: u32,
}

impl MaxNReg {
    /// `.inc N` / `.dec N`, for reports.
    pub fn name(self) -> String {
        format!(".{} {}", if self.inc { "inc" } else { "dec" }, self.regs)
    }
}

impl Warp {
    /// Whether lane `l` executed `griddepcontrol.wait`.
    #[inline(always)]
    pub fn grid_waited_lane(&self, l: usize) -> bool {
        (self.grid_waited >> l) & 1 != 0
    }

    /// Lanes that can execute now.
    #[inline]
    pub fn runnable(&self) -> u32 {
        self.live & !self.bar_wait & !self.coll_wait
    }

    /// Writes the common PC into the per-lane array and leaves uniform mode.
    #[inline]
    pub fn materialize(&mut self) {
        if self.uni {
            let mut m = self.runnable();
            while m != 0 {
                let l = m.trailing_zeros() as usize;
                m &= m - 1;
                self.pc[l] = self.upc;
            }
            self.uni = false;
        }
    }

    /// Re-enters uniform mode if all runnable lanes share a PC.
    #[inline]
    pub fn try_converge(&mut self) {
        if self.uni {
            return;
        }
        let r = self.runnable();
        if r == 0 {
            return;
        }
        let first = self.pc[r.trailing_zeros() as usize];
        let mut m = r;
        while m != 0 {
            let l = m.trailing_zeros() as usize;
            m &= m - 1;
            if self.pc[l] != first {
                return;
            }
        }
        self.uni = true;
        self.upc = first;
    }
}

/// Per-block barrier bookkeeping for one barrier id.
#[derive(Clone, Copy, Default)]
pub struct BarState {
    /// Threads arrived (sync and arrive).
    pub arrived: u32,
    /// Expected count given with the barrier, if any.
    pub count: Option<u32>,
}

impl Alloc {
    /// Host copy into the allocation (exclusive access: no atomics needed).
    pub fn write_bytes(&mut self, o: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let at = o + i as u64;
            let w = self.words[(at / 8) as usize].get_mut();
            let sh = (at % 8) * 8;
            *w = (*w & !(0xffu64 << sh)) | ((b as u64) << sh);
        }
    }

    /// Host copy out of the allocation.
    pub fn read_bytes(&self, o: u64, out: &mut [u8]) {
        let mut i = 0usize;
        while i < out.len() {
            let at = o + i as u64;
            let w = self.words[(at / 8) as usize].load(Ordering::Relaxed);
            out[i] = (w >> ((at % 8) * 8)) as u8;
            i += 1;
        }
    }
}

/// One `wgmma.mma_async` of one warp not yet retired (PTX ISA 9.7.15.7: results
/// reach the registers only when `wgmma.wait_group` retires its group).
#[derive(Clone, Debug)]
pub struct WgOp {
    /// Issue sequence number within the warp.
    pub seq: u32,
    /// Instruction index.
    pub pc: u32,
    /// Commit group (`u32::MAX` = not yet committed).
    pub group: u32,
    /// N of the shape (accumulators chain without a fence only between equal shapes).
    pub n: u32,
    /// Accumulator registers.
    pub ds: Vec<u32>,
    /// A registers (empty for the descriptor form).
    pub a: Vec<u32>,
    /// Results, `d[lane * ds.len() + i]` (f32 bits).
    pub d: Vec<u32>,
    /// Shared offsets of the 16-byte chunks the operation reads.
    pub chunks: Vec<u32>,
}

/// Per-warp wgmma state.
#[derive(Clone, Debug, Default)]
pub struct WgWarp {
    /// Pending operations, oldest first.
    pub ops: std::collections::VecDeque<WgOp>,
    /// Per register: `seq` of the newest pending operation writing it as D
    /// (`u32::MAX` = none).
    pub d_owner: Vec<u32>,
    /// Per register: pending operations reading it as A.
    pub a_users: Vec<u16>,
    /// Per register: the last access `(pc, write)` by a non-wgmma instruction since
    /// the warp's last `wgmma.fence` (registers of wgmma operands only).
    pub touched: Vec<Option<(u32, bool)>>,
    /// Registers with `touched` set (cleared by `wgmma.fence`).
    pub touched_list: Vec<u32>,
    /// The warp executed a `wgmma.fence`.
    pub fenced: bool,
    /// Next issue sequence number.
    pub next_seq: u32,
    /// Next commit-group number.
    pub next_group: u32,
}

/// The last generic-proxy write of one shared byte, for the proxy-fence check.
#[derive(Clone, Copy, Debug)]
pub struct GenericWrite {
    /// Writing thread (`NO_TID` = none).
    pub tid: u16,
    /// The writer's `fence.proxy.async` count at the write.
    pub fences: u32,
    /// Instruction index of the write.
    pub pc: u32,
}

impl GenericWrite {
    /// No generic write recorded.
    pub const NONE: GenericWrite = GenericWrite { tid: NO_TID, fences: 0, pc: 0 };
}

/// Per-block wgmma state, present only for kernels that use `wgmma.mma_async`.
#[derive(Clone, Debug)]
pub struct WgState {
    /// Per warp.
    pub warps: Vec<WgWarp>,
    /// Per thread: `fence.proxy.async` executed so far.
    pub fences: Vec<u32>,
    /// Per shared byte: last generic-proxy write (empty when hazard checks are off).
    pub generic: Vec<GenericWrite>,
    /// Per 16-byte shared chunk: pending wgmma operations (per warp) reading it
    /// (empty when hazard checks are off).
    pub reading: Vec<u16>,
}

impl WgState {
    /// Fresh state for `nwarps` warps of `nregs` registers and `smem` shared bytes.
    pub fn new(nwarps: usize, nregs: usize, nthreads: usize, smem: usize, hazards: bool) -> WgState {
        let w = WgWarp {
            d_owner: vec![u32::MAX; nregs],
            a_users: vec![0; nregs],
            touched: vec![None; nregs],
            ..Default::default()
        };
        WgState {
            warps: vec![w; nwarps],
            fences: vec![0; nthreads],
            generic: if hazards { vec![GenericWrite::NONE; smem] } else { Vec::new() },
            reading: if hazards { vec![0; smem.div_ceil(16)] } else { Vec::new() },
        }
    }
}

/// The contents of an mbarrier object (PTX ISA 9.7.13.15.2 "Contents of the mbarrier
/// object") in this simulator's packing of the opaque 64 bits: pending arrivals in bits
/// 0..20, expected arrivals in bits 20..40, the tx-count (21-bit two's complement) in
/// bits 40..61 and the phase modulo 8 in bits 61..64. `test_wait`/`try_wait` are only
/// valid for the current or the immediately preceding phase (9.7.13.15.16), so the
/// phase modulo 8 identifies the phase a state token names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mbar {
    /// Arrivals still missing in the current phase.
    pub pending: u32,
    /// Arrivals each phase expects (reloads `pending` when a phase completes).
    pub expected: u32,
    /// Transactions (bytes) the current phase still waits for; negative when more
    /// completed than were expected so far.
    pub tx: i32,
    /// Current phase, modulo 8.
    pub phase: u32,
}

impl Mbar {
    /// The largest arrival count, and the largest tx-count magnitude (9.7.13.15.2).
    pub const MAX: u32 = (1 << 20) - 1;

    /// Decodes an object from its 64 bits.
    pub fn unpack(v: u64) -> Mbar {
        let m = Mbar::MAX as u64;
        let tx = ((v >> 40) & ((1 << 21) - 1)) as u32;
        Mbar {
            pending: (v & m) as u32,
            expected: ((v >> 20) & m) as u32,
            tx: ((tx << 11) as i32) >> 11,
            phase: (v >> 61) as u32,
        }
    }

    /// Encodes the object (counts are truncated to their fields).
    pub fn pack(self) -> u64 {
        let m = Mbar::MAX as u64;
        (self.pending as u64 & m)
            | (self.expected as u64 & m) << 20
            | (self.tx as u32 as u64 & ((1 << 21) - 1)) << 40
            | (self.phase as u64 & 7) << 61
    }

    /// Completes the current phase when no arrival and no transaction is pending
    /// (9.7.13.15.6 "Phase Completion of the mbarrier object"): the phase advances and
    /// the pending count is reloaded from the expected count. Returns whether it did.
    pub fn try_complete(&mut self) -> bool {
        if self.pending != 0 || self.tx != 0 {
            return false;
        }
        self.phase = (self.phase + 1) & 7;
        self.pending = self.expected;
        true
    }
}

/// One `cp.async.bulk` whose completion no thread has observed yet. Its data was read
/// from global memory at issue; it lands in shared memory when a thread observes the
/// completion of its mbarrier phase (`mbarrier.test_wait`/`try_wait` returning true).
#[derive(Clone, Debug)]
pub struct BulkCopy {
    /// Shared destination offset.
    pub dst: u32,
    /// The bytes to land.
    pub data: Vec<u8>,
    /// Shared offset of the mbarrier object it performs complete-tx on.
    pub mbar: u32,
    /// The mbarrier phase it took part in has completed.
    pub done: bool,
    /// Issuing thread (linear index in the block).
    pub tid: u16,
    /// Instruction index of the `cp.async.bulk`.
    pub pc: u32,
}

/// The last transaction-count operations on one mbarrier object, for the other side
/// of a tx-count hazard: `(linear tid, instruction index)` of the last expect-tx and
/// of the last complete-tx.
#[derive(Clone, Copy, Debug)]
pub struct TxTrack {
    /// Shared offset of the mbarrier object.
    pub mbar: u32,
    /// Last expect-tx (`mbarrier.expect_tx`, `mbarrier.arrive.expect_tx`).
    pub expect: Option<(u16, u32)>,
    /// Last complete-tx (`cp.async.bulk`, `mbarrier.complete_tx`).
    pub complete: Option<(u16, u32)>,
}

/// Per-block state of bulk copies and mbarrier transaction counts, present only for
/// kernels that use them (`Kernel::uses_bulk`).
#[derive(Clone, Debug, Default)]
pub struct BulkState {
    /// Copies not yet landed, in issue order.
    pub copies: Vec<BulkCopy>,
    /// mbarrier objects that saw tx-count operations since their `init`.
    pub tracks: Vec<TxTrack>,
}

impl BulkState {
    /// The tx-count bookkeeping of the mbarrier at shared offset `mbar`, created on
    /// first use.
    pub fn track(&mut self, mbar: u32) -> &mut TxTrack {
        let i = match self.tracks.iter().position(|t| t.mbar == mbar) {
            Some(i) => i,
            None => {
                self.tracks.push(TxTrack { mbar, expect: None, complete: None });
                self.tracks.len() - 1
            }
        };
        &mut self.tracks[i]
    }

    /// The phase of the mbarrier at `mbar` completed: every copy that performed its
    /// complete-tx on it so far took part in that phase or an earlier one.
    pub fn phase_done(&mut self, mbar: u32) {
        for c in self.copies.iter_mut().filter(|c| c.mbar == mbar) {
            c.done = true;
        }
    }

    /// The mbarrier at `mbar` was initialized or invalidated: forget its history.
    pub fn forget(&mut self, mbar: u32) {
        self.tracks.retain(|t| t.mbar != mbar);
    }
}
