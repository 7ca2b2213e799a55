//! `ptxsim`: a pure-Rust simulator of the PTX that nvcc emits, for testing CUDA
//! kernels on machines without a GPU. It checks the simulated program for hazards
//! (out-of-bounds and misaligned accesses, shared-memory races, uninitialized shared
//! reads, cp.async and bulk-copy misuse, barrier misuse, wgmma/proxy-fence misuse,
//! deadlocks) and counts instructions and memory traffic.
//!
//! # Execution model
//!
//! Each warp executes in lockstep over the lanes that share the lowest PC (per-lane
//! PCs, so divergence needs no reconvergence heuristics); registers are stored
//! `[reg][lane]`. Blocks become resident up to the simulated SM count and run in
//! quanta on worker threads; a block spinning on a flag set by another block of the
//! same launch makes progress. Global memory is shared atomically between workers;
//! `atom`/`red`/fences are sequentially consistent, plain accesses relaxed.
//!
//! Generic addressing: global allocations are at their device addresses; the shared
//! window is [`SHARED_WINDOW`]`..+4 GiB`, the local window [`LOCAL_WINDOW`]`..+4 GiB`,
//! the kernel-param window [`PARAM_WINDOW`]`..+4 GiB` (`cvta` adds/subtracts the base).
//! Shared-space addresses (`mov.u32 %r, smem_var`) are offsets into the block's shared
//! memory: static variables first, then the `extern` dynamic array at the largest
//! shared alignment.
//!
//! # Hazards
//!
//! With checks on (the default) a launch fails with [`SimError::Hazard`] on:
//! out-of-bounds / unallocated / freed global accesses, shared or local accesses past
//! their size, misaligned accesses (address not a multiple of the access size, vector
//! size included), shared-memory races (see `step` for the model: block-barrier and
//! warp-sync epochs; atomics never race with atomics; may miss races, never reports a
//! false one), reads of never-written shared bytes, reads of cp.async destinations not
//! yet waited for, divergent or never-completing barriers, `trap`, misuse of the
//! warpgroup MMA ([`HazardKind::Wgmma`]) and of bulk copies ([`HazardKind::Bulk`]),
//! both below. A launch in which no resident block can make progress (a `try_wait`
//! loop on a phase that never completes included) fails with [`SimError::Deadlock`].
//!
//! # mbarrier
//!
//! PTX ISA 9.7.13.15: `mbarrier.init`, `inval`, `arrive{.noComplete}`, `arrive_drop`,
//! `arrive.expect_tx`, `arrive_drop.expect_tx`, `expect_tx`, `complete_tx`,
//! `test_wait`/`try_wait` (state or `.parity`; `try_wait` with or without a
//! suspend-time hint, returning at once when the phase is not complete),
//! `pending_count`, and `cp.async.mbarrier.arrive{.noinc}`, on objects in shared
//! memory (`.shared`, `.shared::cta` or generic addresses). The object holds the
//! phase, the pending and expected arrival counts and the tx-count (9.7.13.15.2); a
//! phase completes when no arrival and no transaction is pending (9.7.13.15.6).
//! `.sem`/`.scope` qualifiers are accepted: every phase completion orders the whole
//! block for the race model (it ends the block epoch, so races across it may be
//! missed). Launches have no clusters: a CTA is its own cluster, so `.cluster` scope
//! acts as `.cta`, and `.shared::cluster` addresses (allowed, as in the ISA, for
//! `arrive` with the sink `_`, `expect_tx` and `complete_tx`) name the executing CTA's
//! own shared memory.
//!
//! # Bulk copies (sm_90 `cp.async.bulk`, `cp.async.bulk.tensor`)
//!
//! PTX ISA 9.7.9.25.4.1, non-tensor, global to shared with mbarrier completion:
//! `cp.async.bulk.{shared::cluster,shared::cta}.global.mbarrier::complete_tx::bytes{.L2::cache_hint}
//! [dstMem], [srcMem], size, [mbar]{, cache-policy}` (the cache policy is a hint and
//! ignored). Each executing thread issues one copy. Model: the source is read at
//! issue and the copy completes at once, performing complete-tx of `size` bytes on
//! the mbarrier (which may complete its phase); the data lands in shared memory when
//! a thread's `test_wait`/`try_wait` first observes that phase complete (9.7.9.25.2
//! "Async Proxy": the completion is followed by an implicit generic-async proxy fence,
//! so the result is visible once the completion is observed: no `fence.proxy.async`
//! is needed before reading it, nor before a wgmma reads it). Landing at the first
//! observation makes early readers detectable; a thread that reads the data after
//! another thread observed the phase, without waiting itself, is not reported (the
//! phase completion orders the block, as above). A complete-tx before its expect-tx
//! (tx-count negative while an arrival is pending) is legal, as in the ISA. Hazards,
//! each naming both sides ([`BulkRule`]): a read or write of bytes a copy has not
//! landed yet; a `cp.async.bulk` or `cp.async` onto bytes of a copy not yet landed (or
//! of a `cp.async` not yet waited for); a tx-count outside -(2^20-1)..=2^20-1, or
//! negative once no arrival is pending (more bytes completed than the phase expects);
//! addresses not 16-byte aligned or a size not a multiple of 16; a block finishing
//! with a copy not landed or an mbarrier whose tx-count is not zero. Sources are
//! bounds-checked like other global accesses, destinations and the mbarrier like
//! shared ones. `.relaxed` waits land copies like `.acquire` ones (a missing fence
//! after a relaxed wait is not reported). Counters: `bulk_copies`, `bulk_bytes` (the
//! bytes also count as global loads, and as conflict-free shared wavefronts). Not
//! checked: a generic-proxy write followed by a bulk copy onto the same bytes without
//! `fence.proxy.async` between them. Kernels without bulk copies or tx-count
//! operations pay one flag test per byte of a checked shared store and one per exit.
//!
//! Tensor copies, PTX ISA 9.7.9.25.5.1, tiled, global to shared, same completion:
//! `cp.async.bulk.tensor.{1..5}d.{shared::cluster,shared::cta}.global{.tile}.mbarrier::complete_tx::bytes{.L2::cache_hint}
//! [dstMem], [tensorMap, {c0, …}], [mbar]{, cache-policy}`, coordinates signed,
//! innermost first. The tensor map (global memory, or a `__grid_constant__` parameter)
//! is the simulator's encoding of the driver's tiled tensor map, built by
//! [`TensorMap::encode`]: the box is gathered at issue (elements outside the tensor read
//! as zeros), laid out densely and swizzled as [`TensorSwizzle`] describes, and completes
//! `box_bytes` on the mbarrier; from there it is a bulk copy as above (landing, hazards,
//! counters: the bytes read count as global loads). Extra faults, reported even with
//! hazard checks off (the copy could not be modelled otherwise): a destination not
//! 128-byte aligned ([`BulkRule::Alignment`]); a tensor-map operand that does not decode
//! or whose rank differs from the instruction's dimension ([`BulkRule::TensorMap`]); a
//! box larger than the block's shared memory (out of bounds). [`TensorMap`] refuses,
//! besides the driver's rules, boxes larger than their tensor and swizzled boxes that
//! end inside a 128-byte row.
//!
//! # Warpgroup MMA (sm_90a `wgmma`)
//!
//! PTX ISA 9.7.15 "Asynchronous Warpgroup Level Matrix Multiply-Accumulate
//! Instructions": `wgmma.mma_async.sync.aligned.m64nNk16.f32.{f16,bf16}.{f16,bf16}`
//! with A in registers or behind a shared-memory descriptor, both K-major, any
//! swizzling mode (`semantics::wgmma` has the layouts), plus `wgmma.fence`,
//! `wgmma.commit_group`, `wgmma.wait_group` and `fence.proxy.async`. A warpgroup is
//! warps 4i..4i+3 of the block; each warp executes the instruction on its own rows
//! (16 per warp) of A and D. The result is computed at issue and queued per warp; it
//! reaches the registers when `wgmma.wait_group` retires its group (a later wgmma of
//! the same shape on the same accumulator chains on the queued value). Hazards, each
//! naming both sides ([`WgmmaRule`]): an instruction reading or writing the
//! accumulator, or writing an A register, of a wgmma not yet retired; a wgmma whose A
//! or D registers were accessed (read or written) by another instruction since the
//! warp's last `wgmma.fence`, or with no fence at all (9.7.15.7.1); a shared write to
//! bytes a pending wgmma reads; a wgmma reading shared bytes whose last generic-proxy
//! write (st/atom/red on shared, mbarrier writes, cp.async as it lands) was not
//! followed by a `fence.proxy.async` (plain, `.shared::cta` or `.shared::cluster`;
//! not `.global`) of the writing thread ("Memory consistency model: proxies"); a
//! swizzled descriptor whose pattern does not start on its 1024/512/256-byte boundary
//! with base offset 0; wgmma instructions not executed by all 32 lanes of all 4 warps
//! of the warpgroup; a warp exiting with wgmma pending. The shared reads of a wgmma
//! also go through the race and uninitialized checks (as reads by lane 0 of the
//! warp; the wgmma and `wait_group` rendezvous bump the warp-sync epoch). Counters:
//! `wgmma_count`, `wgmma_shared_bytes` (also counted as conflict-free shared
//! wavefronts). Kernels without wgmma pay one flag test per instruction.
//!
//! `setmaxnreg.{inc,dec}.sync.aligned.u32` (PTX ISA "setmaxnreg", a warpgroup's
//! register-allocation request) decodes with its count checked at load time (24..=256,
//! a multiple of 8) and has no effect on values; like the other `.sync.aligned`
//! instructions it is a lane rendezvous of the warp. With hazard checks on, each warp
//! logs its setmaxnreg instructions, and these are hazards ([`SetMaxNRegRule`], naming
//! the other warp or the earlier instruction where there is one): execution by fewer
//! than all 32 lanes of the warp, or by a warp whose warpgroup (warps 4i..4i+3) the
//! block does not complete; a warp's j-th setmaxnreg differing (compared by `.inc`/`.dec`
//! and count, not by instruction address) from the j-th of another warp of its
//! warpgroup (reported when the later one executes); once all warps of a warpgroup
//! have exited, one that executed fewer setmaxnreg instructions than another; `.inc` to
//! a count below the warp's current count, `.dec` to one above it (the count of its
//! previous setmaxnreg, or for its first the launch's register count when known).
//!
//! The register pool (PTX ISA "setmaxnreg": one per CTA; `.dec` releases the warp's
//! registers above the new count into it, `.inc` blocks until it can supply those the
//! new count needs) is modelled when the caller gives the launch's register count
//! ([`Gpu::set_launch_registers`], what `ptxas -v` reports) and hazard checks are on:
//! every warp starts with that count, allocated per warp in units of 256 registers, and
//! the pool starts empty. An `.inc` the pool cannot supply leaves the warp waiting at
//! the instruction (uncounted) until a `.dec` of another warp adds to the pool; when
//! every live thread of the block is blocked, or the launch can make no progress, with a
//! warp still waiting, the hang is a [`SetMaxNRegRule::PoolExhausted`] hazard (rather
//! than a barrier or `Deadlock` error) naming the registers asked for, the pool, the
//! launch count and what each warp holds. Exiting warps return nothing to the pool.
//! With a count given, a launch whose block cannot hold its warps' registers (64 Ki)
//! fails whatever the kernel. Without the count (the default) or with hazard checks
//! off, `.inc` never blocks, so a hand-off that would wait forever on a GPU runs here.
//! Not checked: the explicit warpgroup synchronization required between two
//! setmaxnreg instructions. Kernels without setmaxnreg pay a flag test per warp exit, a
//! kind test per collective instruction, an empty log per warp and an empty pool slot
//! per block.
//!
//! # Not supported (fails at load time, or with `Unsupported` when executed)
//!
//! Indirect calls and recursion (direct `call`s of `.func`s are inlined), textures
//! and surfaces, `.b128` accesses, sm_90 features other than the `wgmma`, `mbarrier`
//! and bulk-copy subsets above (clusters: `mapa`, `barrier.cluster`, distributed
//! shared memory; `cp.async.bulk.tensor` in im2col mode, shared to global or with
//! `.cta_group`, tensor maps in the driver's opaque encoding, multicast, bulk copies other
//! than global to shared (`.bulk_group` completion, `cp.async.bulk.commit_group`/
//! `wait_group`, shared to shared::cluster), `cp.reduce.async.bulk`,
//! `cp.async.bulk.prefetch`, `mbarrier.try_wait` `.phase_type`,
//! `elect.sync`; `wgmma` with `.f16` accumulators, integer/fp8/tf32 inputs, shapes
//! other than `k16`, transposed (MN-major) operands, sparse `.sp`, descriptor base
//! offsets), `bar.red`, video (SIMD) instructions, `set`, `mul24.hi`, `mad.sat` and
//! other rarities that `ir` does not decode.
//!
//! Layout: `lex`/`parse` read PTX into the decoded form of `ir`; `state` holds device
//! memory and per-block state; `step` executes one warp instruction; `driver` runs a
//! launch (block residency, scheduling, barriers, deadlock detection); `report` has
//! the counters; `semantics` holds pure bit-level instruction semantics.
//!
//! ```no_run
//! let m = ptxsim::Module::from_ptx(include_str!("../tests/ptx/vecadd.ptx")).unwrap();
//! let mut gpu = ptxsim::Gpu::new();
//! let a = gpu.alloc(1024).unwrap();
//! # let (b, c) = (a, a);
//! let r = gpu
//!     .launch(&m, "vecadd", [1, 1, 1], [256, 1, 1], 0, &[
//!         ptxsim::KernelArg::U64(a),
//!         ptxsim::KernelArg::U64(b),
//!         ptxsim::KernelArg::U64(c),
//!         ptxsim::KernelArg::I32(256),
//!     ])
//!     .unwrap();
//! println!("{r}");
//! ```

#![warn(missing_docs)]

mod driver;
mod error;
mod ir;
mod lex;
mod parse;
mod report;
pub mod semantics;
mod state;
mod step;
mod tensor_map;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

pub use error::{
    Access, BulkHazard, BulkRule, GridDependencyHazard, Hazard, HazardKind, NonCoherentHazard, SetMaxNRegHazard,
    SetMaxNRegRule, SimError, WgmmaHazard, WgmmaRule,
};
pub use report::{AllocTraffic, LaunchReport, LineTraffic};
pub use state::{LOCAL_WINDOW, PARAM_WINDOW, SHARED_WINDOW};
pub use step::{warp_registers, REGISTERS_PER_SM};
pub use tensor_map::{TensorMap, TensorMapError, TensorSwizzle, TENSOR_MAP_BYTES};

use state::{Alloc, GlobalMem, GLOBAL_BASE};

static NEXT_MODULE_ID: AtomicU64 = AtomicU64::new(1);

/// A loaded PTX module: its kernels decoded and ready to launch.
pub struct Module {
    kernels: Vec<ir::Kernel>,
    globals: Vec<ir::GlobalVar>,
    id: u64,
}

impl Module {
    /// Parses and decodes PTX text. Unknown instructions fail here with their line.
    pub fn from_ptx(src: &str) -> Result<Module, SimError> {
        let p = parse::parse_module(src)?;
        Ok(Module { kernels: p.kernels, globals: p.globals, id: NEXT_MODULE_ID.fetch_add(1, Ordering::Relaxed) })
    }

    /// Names of the `.entry` kernels, in file order.
    pub fn kernels(&self) -> Vec<&str> {
        self.kernels.iter().map(|k| k.name.as_str()).collect()
    }
}

/// One kernel argument; each fills one `.param` in order.
#[derive(Clone, Debug, PartialEq)]
pub enum KernelArg {
    /// A 32-bit unsigned scalar.
    U32(u32),
    /// A 32-bit signed scalar.
    I32(i32),
    /// A 64-bit scalar or device pointer.
    U64(u64),
    /// A 32-bit float.
    F32(f32),
    /// A by-value struct (`.param .align N .b8 name[M]`): exactly M bytes.
    Bytes(Vec<u8>),
}

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Simulated SM count = max resident blocks (default 132).
    pub sm_count: u32,
    /// Worker threads (default: `PTXSIM_THREADS` or the available parallelism).
    pub threads: usize,
    /// Max dynamic shared bytes per block (default 227 KiB = 232448).
    pub max_dynamic_shared: u32,
    /// Hazard checks on (default true).
    pub hazard_checks: bool,
    /// Warp instructions a warp runs before its block may yield (default 20000).
    pub quantum: u64,
    /// Registers per thread that launches start each warp with: the kernel's count
    /// from `ptxas -v`, which only the caller knows (default `None`). With a count and
    /// hazard checks on, a kernel's `setmaxnreg` instructions draw on and return to the
    /// block's register pool (see the crate docs); the count applies to every later
    /// launch until changed ([`Gpu::set_launch_registers`]).
    pub launch_registers: Option<u32>,
    /// Launches are made with programmatic stream serialization (CUDA's programmatic
    /// dependent launch, default false): on a GPU such a grid may start while the
    /// previous one still runs, and its threads must execute `griddepcontrol.wait`
    /// (PTX ISA "griddepcontrol") before touching what that grid used. The simulator
    /// still runs the grids one after the other; with hazard checks on it reports a
    /// [`HazardKind::GridDependency`] for any global access that would race an earlier
    /// grid still in flight: a read of an allocation it wrote, or a write to one it read
    /// or wrote, before the accessing thread's wait. In flight are the last launch since
    /// the last host write ([`Gpu::write`]: on a GPU a copy between two kernels orders
    /// them; a read, [`Gpu::read`], takes `&self` and is not counted, which can only
    /// report more, never less), and the grids it kept in flight: a programmatic grid
    /// none of whose threads waited, or one of whose threads executed
    /// `griddepcontrol.launch_dependents` before its wait, lets the next grid start while
    /// the grid before it may still run. Applies to every later launch until changed
    /// ([`Gpu::set_programmatic_launch`]).
    pub programmatic_launch: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        let threads = std::env::var("PTXSIM_THREADS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        SimConfig {
            sm_count: 132,
            threads,
            max_dynamic_shared: 232_448,
            hazard_checks: true,
            quantum: 20_000,
            launch_registers: None,
            programmatic_launch: false,
        }
    }
}

/// A simulated GPU: device memory plus settings.
pub struct Gpu {
    mem: GlobalMem,
    cfg: SimConfig,
    module_globals: HashMap<(u64, usize), u64>,
    /// What the last launch since the last host copy used, for the next programmatic
    /// launch's grid-dependency check.
    prior: Option<step::PriorGrid>,
}

impl Default for Gpu {
    fn default() -> Self {
        Gpu::new()
    }
}

fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

impl Gpu {
    /// A GPU with the default configuration.
    pub fn new() -> Gpu {
        Gpu::with_config(SimConfig::default())
    }

    /// A GPU with the given configuration.
    pub fn with_config(cfg: SimConfig) -> Gpu {
        Gpu {
            mem: GlobalMem { allocs: Vec::new(), next: GLOBAL_BASE },
            cfg,
            module_globals: HashMap::new(),
            prior: None,
        }
    }

    /// The current configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Sets the simulated SM count (max resident blocks, at least 1).
    pub fn set_sm_count(&mut self, n: u32) {
        self.cfg.sm_count = n.max(1);
    }

    /// Sets the number of worker threads (at least 1).
    pub fn set_threads(&mut self, n: usize) {
        self.cfg.threads = n.max(1);
    }

    /// Sets the max dynamic shared bytes per block.
    pub fn set_max_dynamic_shared(&mut self, bytes: u32) {
        self.cfg.max_dynamic_shared = bytes;
    }

    /// Turns hazard checks on or off.
    pub fn set_hazard_checks(&mut self, on: bool) {
        self.cfg.hazard_checks = on;
    }

    /// Sets the scheduling quantum (warp instructions, at least 1).
    pub fn set_quantum(&mut self, q: u64) {
        self.cfg.quantum = q.max(1);
    }

    /// Sets the registers per thread that later launches start each warp with (the
    /// launched kernel's `ptxas -v` count; `None`, the default, when unknown). Needed
    /// to model the register pool of `setmaxnreg`; see [`SimConfig::launch_registers`].
    pub fn set_launch_registers(&mut self, regs: Option<u32>) {
        self.cfg.launch_registers = regs;
    }

    /// Makes later launches programmatic (`true`) or ordinary; see
    /// [`SimConfig::programmatic_launch`].
    pub fn set_programmatic_launch(&mut self, on: bool) {
        self.cfg.programmatic_launch = on;
    }

    /// Allocates zeroed device memory; returns its 256-byte aligned, nonzero address.
    /// Allocations are separated by unmapped gaps so overruns fault.
    pub fn alloc(&mut self, bytes: usize) -> Result<u64, SimError> {
        if bytes as u64 > 1 << 36 {
            return Err(SimError::Memory(format!("allocation of {bytes} bytes is too large")));
        }
        let base = align_up(self.mem.next, 256);
        let alloc = Alloc::new(base, bytes as u64)?;
        self.mem.next = base + align_up(bytes.max(1) as u64, 256) + 256;
        self.mem.allocs.push(alloc);
        Ok(base)
    }

    /// Frees an allocation by its base address; its addresses are never reused.
    pub fn free(&mut self, addr: u64) -> Result<(), SimError> {
        let i = self
            .mem
            .allocs
            .iter()
            .position(|a| a.base == addr)
            .ok_or_else(|| SimError::Memory(format!("free of {addr:#x}, which is not an allocation's base")))?;
        self.mem.allocs.remove(i);
        Ok(())
    }

    fn locate(&self, addr: u64, len: usize) -> Result<(usize, u64), SimError> {
        let i = self
            .mem
            .find(addr, len as u64)
            .ok_or_else(|| SimError::Memory(format!("{len} bytes at {addr:#x} are not inside one allocation")))?;
        Ok((i, addr - self.mem.allocs[i].base))
    }

    /// Copies host bytes to device memory (`addr` may point inside an allocation).
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), SimError> {
        self.prior = None;
        let (i, o) = self.locate(addr, data.len())?;
        self.mem.allocs[i].write_bytes(o, data);
        Ok(())
    }

    /// Copies device memory to host bytes.
    pub fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), SimError> {
        let (i, o) = self.locate(addr, out.len())?;
        self.mem.allocs[i].read_bytes(o, out);
        Ok(())
    }

    /// Runs `kernel` over `grid` blocks of `block` threads and returns its counters,
    /// or the first hazard / deadlock / interpreter error.
    #[allow(clippy::too_many_arguments)]
    pub fn launch(
        &mut self,
        module: &Module,
        kernel: &str,
        grid: [u32; 3],
        block: [u32; 3],
        dynamic_shared_bytes: u32,
        args: &[KernelArg],
    ) -> Result<LaunchReport, SimError> {
        let k = module
            .kernels
            .iter()
            .find(|k| k.name == kernel)
            .ok_or_else(|| SimError::UnknownKernel(kernel.to_string()))?;
        let params = build_params(k, args)?;
        let nthreads = block.iter().map(|&b| b as u64).product::<u64>();
        if grid.contains(&0) || block.contains(&0) {
            return Err(SimError::BadLaunch(format!("empty grid {grid:?} or block {block:?}")));
        }
        if nthreads > 1024 || block[2] > 64 || grid[1] > 65535 || grid[2] > 65535 {
            return Err(SimError::BadLaunch(format!("grid {grid:?} / block {block:?} exceed the hardware limits")));
        }
        if let Some(m) = k.max_threads {
            if nthreads > m as u64 {
                return Err(SimError::BadLaunch(format!("block of {nthreads} threads exceeds .maxntid/.reqntid {m}")));
            }
        }
        if let Some(r) = k.reqntid {
            if r != block {
                return Err(SimError::BadLaunch(format!("block {block:?} differs from .reqntid {r:?}")));
            }
        }
        if dynamic_shared_bytes > self.cfg.max_dynamic_shared {
            return Err(SimError::BadLaunch(format!(
                "{dynamic_shared_bytes} dynamic shared bytes exceed the limit {}",
                self.cfg.max_dynamic_shared
            )));
        }
        if let Some(r) = self.cfg.launch_registers {
            // PTX ISA "setmaxnreg": counts are at most 256 per thread; a block's warps
            // must fit the 64 Ki registers of an SM (per-warp allocation in units of 256).
            let block_regs = nthreads.div_ceil(32) * step::warp_registers(r.min(256)) as u64;
            if r == 0 || r > 256 || block_regs > step::REGISTERS_PER_SM as u64 {
                return Err(SimError::BadLaunch(format!(
                    "{r} registers per thread ({block_regs} for the block of {nthreads} threads) exceed the limits \
                     (1..=256 per thread, {} per block)",
                    step::REGISTERS_PER_SM
                )));
            }
        }
        let smem_size = if dynamic_shared_bytes > 0 { k.dyn_smem_offset + dynamic_shared_bytes } else { k.static_smem };
        if smem_size > self.cfg.max_dynamic_shared.max(48 * 1024) {
            return Err(SimError::BadLaunch(format!(
                "{smem_size} bytes of shared memory per block (static {} + dynamic {dynamic_shared_bytes}) exceed the limit {}",
                k.static_smem, self.cfg.max_dynamic_shared
            )));
        }
        let mut gsyms = Vec::with_capacity(module.globals.len());
        for (i, g) in module.globals.iter().enumerate() {
            let addr = match self.module_globals.get(&(module.id, i)) {
                Some(&a) => a,
                None => {
                    let a = self.alloc(g.size as usize)?;
                    self.write(a, &g.init)?;
                    self.module_globals.insert((module.id, i), a);
                    a
                }
            };
            gsyms.push(addr);
        }
        // Of a programmatic launch: what the previous grid did to each allocation.
        let prior_flags = match &self.prior {
            Some(p) if self.cfg.programmatic_launch && self.cfg.hazard_checks => {
                Some(p.flags_for(self.mem.allocs.iter().map(|a| a.base)))
            }
            _ => None,
        };
        let ctx = step::Ctx {
            k,
            mem: &self.mem,
            params: &params,
            gsyms: &gsyms,
            grid,
            block,
            nthreads: nthreads as u32,
            smem_size,
            dyn_smem: dynamic_shared_bytes,
            hazards: self.cfg.hazard_checks,
            nsm: self.cfg.sm_count,
            launch_regs: self.cfg.launch_registers,
            prior_grid: prior_flags.as_ref(),
        };
        let cfg = driver::RunCfg {
            max_resident: self.cfg.sm_count.max(1) as u64,
            threads: self.cfg.threads,
            quantum: self.cfg.quantum.max(1),
            bases: self.mem.allocs.iter().map(|a| a.base).collect(),
            lines: k.insts.iter().map(|i| i.line).collect(),
        };
        let result = driver::run(&ctx, &cfg);
        let before = self.prior.take();
        self.prior =
            result.as_ref().ok().map(|r| step::PriorGrid::after(kernel, r, self.cfg.programmatic_launch, before));
        result
    }
}

/// Lays the arguments out in the param buffer, checking count, size and kind.
fn build_params(k: &ir::Kernel, args: &[KernelArg]) -> Result<Vec<u8>, SimError> {
    let bad = |message: String| SimError::BadArgs { kernel: k.name.clone(), message };
    if args.len() != k.params.len() {
        return Err(bad(format!("{} arguments given, the kernel has {} parameters", args.len(), k.params.len())));
    }
    let mut buf = vec![0u8; k.param_size as usize];
    for (i, (p, a)) in k.params.iter().zip(args).enumerate() {
        let bytes: Vec<u8> = match a {
            KernelArg::U32(v) => v.to_le_bytes().to_vec(),
            KernelArg::I32(v) => v.to_le_bytes().to_vec(),
            KernelArg::F32(v) => v.to_le_bytes().to_vec(),
            KernelArg::U64(v) => v.to_le_bytes().to_vec(),
            KernelArg::Bytes(b) => b.clone(),
        };
        let scalar_in_array = p.is_array && !matches!(a, KernelArg::Bytes(_));
        if bytes.len() != p.size as usize || scalar_in_array {
            return Err(bad(format!(
                "argument {i} ({a:?}) does not fit parameter `{}` of {} bytes{}",
                p.name,
                p.size,
                if p.is_array { " (a by-value array: pass KernelArg::Bytes)" } else { "" }
            )));
        }
        buf[p.offset as usize..p.offset as usize + bytes.len()].copy_from_slice(&bytes);
    }
    Ok(buf)
}
