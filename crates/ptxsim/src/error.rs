//! Errors of the simulator: interpreter/usage errors (`SimError`) kept apart from
//! faults of the simulated program (`Hazard`), which carry where they happened.

use std::fmt;

/// One memory access named in a hazard report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Thread index within the block (`%tid`).
    pub tid: [u32; 3],
    /// Warp index within the block.
    pub warp: u32,
    /// PTX source line of the instruction.
    pub line: u32,
    /// True for a write (stores, atomics, cp.async destinations).
    pub write: bool,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by thread ({},{},{}) warp {} at PTX line {}",
            if self.write { "write" } else { "read" },
            self.tid[0],
            self.tid[1],
            self.tid[2],
            self.warp,
            self.line
        )
    }
}

/// What went wrong in the simulated program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HazardKind {
    /// Access outside any allocation / past the block's shared size / past local memory.
    OutOfBounds {
        /// State space name (`global`, `shared`, `local`, `param`).
        space: &'static str,
        /// Access size in bytes.
        size: u32,
    },
    /// Address not a multiple of the access size.
    Misaligned {
        /// State space name.
        space: &'static str,
        /// Access size in bytes.
        size: u32,
    },
    /// Two threads touched the same shared bytes, one writing, with no barrier between.
    SharedRace {
        /// The earlier access.
        first: Access,
        /// The access that detected the race.
        second: Access,
    },
    /// Read of shared bytes never written.
    Uninitialized,
    /// Read of shared bytes that are the destination of a cp.async not yet waited for.
    CpAsyncNotWaited {
        /// The thread that issued the cp.async.
        issuer: [u32; 3],
        /// Line of the cp.async.
        issue_line: u32,
    },
    /// Barrier misuse: divergent barrier, or a barrier that can never complete.
    Barrier {
        /// What was observed.
        detail: String,
    },
    /// `trap` executed.
    Trap,
    /// Misuse of the asynchronous warpgroup MMA (PTX ISA 9.7.15 "Asynchronous
    /// Warpgroup Level Matrix Multiply-Accumulate Instructions"), or of the proxy
    /// fence its shared-memory operands need ("fence.proxy", "Memory consistency
    /// model: proxies"). The faulting side is the hazard's thread and line. Boxed so
    /// that the hot paths' error types stay small.
    Wgmma(Box<WgmmaHazard>),
    /// Misuse of a non-tensor bulk copy (`cp.async.bulk`, PTX ISA 9.7.9.25.4.1) or of
    /// the mbarrier transaction count that tracks it (9.7.13.15.5). The faulting side
    /// is the hazard's thread and line. Boxed like `Wgmma`.
    Bulk(Box<BulkHazard>),
    /// Misuse of `setmaxnreg.{inc,dec}.sync.aligned` (PTX ISA "setmaxnreg", sm_90a):
    /// not executed by whole warpgroups, differing between the warps of a warpgroup,
    /// moving the warp's register maximum the wrong way, or an `.inc` the register
    /// pool can never supply. The faulting side is the
    /// hazard's thread and line, except for [`SetMaxNRegRule::WarpgroupMissing`], whose
    /// line is the instruction the thread's warp skipped. Boxed like `Wgmma`.
    SetMaxNReg(Box<SetMaxNRegHazard>),
    /// A grid launched with programmatic stream serialization (PTX ISA "griddepcontrol";
    /// CUDA's programmatic dependent launch) touched global memory that an earlier grid
    /// which may still be running used, before the touching thread executed
    /// `griddepcontrol.wait`: a read of an allocation that grid wrote, or a write to one
    /// it read or wrote. That grid is the previous one, or one before it when a
    /// programmatic grid in between could let its dependents start early (no wait, or
    /// `launch_dependents` before its wait). Boxed like `Wgmma`.
    GridDependency(Box<GridDependencyHazard>),
    /// `ld.global.nc` (the non-coherent read-only path, PTX ISA "ld") of an allocation
    /// that is written while the kernel runs: by a thread of the same grid (at any time
    /// of the launch), or by an earlier grid still in flight under a programmatic launch.
    /// The read-only path does not see such writes reliably: the data must stay
    /// unwritten for the kernel's lifetime. Tracked per allocation, not per byte (so a
    /// grid that writes one part of an allocation and reads another part through the
    /// read-only path is reported too: keep such data in separate allocations). The
    /// faulting side is the load; the other side is the write. Boxed like `Wgmma`.
    NonCoherentLoad(Box<NonCoherentHazard>),
}

/// Details of a [`HazardKind::NonCoherentLoad`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonCoherentHazard {
    /// The write of the same grid: its block (`%ctaid`) and access; `None` when an
    /// earlier grid wrote the allocation.
    pub writer: Option<([u32; 3], Access)>,
    /// The earlier grid's kernel, when it was the writer.
    pub prior_kernel: Option<String>,
    /// Base address of the allocation.
    pub alloc_base: u64,
}

/// Details of a [`HazardKind::GridDependency`]: the faulting access is the hazard's
/// thread, line and address; the other side is the previous grid's use of the
/// allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridDependencyHazard {
    /// True when the faulting access writes (stores, atomics), false when it reads
    /// (loads, atomics' reads, cp.async and bulk-copy sources).
    pub write: bool,
    /// The earlier grid's kernel.
    pub prior_kernel: String,
    /// True when the earlier grid wrote the allocation, false when it only read it.
    pub prior_wrote: bool,
    /// Base address of the allocation.
    pub alloc_base: u64,
}

/// Details of a [`HazardKind::SetMaxNReg`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetMaxNRegHazard {
    /// The rule that was broken.
    pub rule: SetMaxNRegRule,
    /// The other side (lane 0 of the other warp, or of the same warp for
    /// [`SetMaxNRegRule::WrongDirection`]) and the line of its setmaxnreg; `write`
    /// is always false. `None` for [`SetMaxNRegRule::NotConverged`] and
    /// [`SetMaxNRegRule::PoolExhausted`], and for a `WrongDirection` against the
    /// launch's register count.
    pub other: Option<Access>,
    /// What was observed.
    pub detail: String,
}

/// Which `setmaxnreg` rule a [`HazardKind::SetMaxNReg`] broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMaxNRegRule {
    /// Executed by fewer than all 32 lanes of the warp, or by a warp whose warpgroup
    /// (warps 4i..4i+3 of the block) is incomplete.
    NotConverged,
    /// A warp's j-th setmaxnreg differs (`.inc`/`.dec` or count) from the j-th
    /// setmaxnreg of another warp of its warpgroup; reported when the later of the
    /// two executes, with the earlier as the other side.
    WarpgroupMismatch,
    /// When every warp of a warpgroup has exited, one of them executed fewer
    /// setmaxnreg instructions than another: the hazard names the warp that skipped
    /// the j-th one, at the line of the j-th setmaxnreg of the other side.
    WarpgroupMissing,
    /// `.inc` with a count below the warp's current count, or `.dec` with a count
    /// above it: the count of the warp's previous setmaxnreg (the other side), or for
    /// its first one the launch's register count when known
    /// ([`crate::SimConfig::launch_registers`]; no other side).
    WrongDirection,
    /// A warp waits at `setmaxnreg.inc` for registers that the block's pool can never
    /// supply: every other live warp of the block is blocked (at a barrier, another
    /// such `.inc`) or makes no progress, so no `.dec` will add to the pool (PTX ISA
    /// "setmaxnreg": `.inc` blocks until the pool can supply the new count; a GPU
    /// hangs). Checked only when the launch register count is known
    /// ([`crate::SimConfig::launch_registers`]); the detail gives the registers asked
    /// for, the pool's contents, the launch count and what each warp holds. No other
    /// side.
    PoolExhausted,
}

impl SetMaxNRegRule {
    fn describe(self) -> &'static str {
        match self {
            SetMaxNRegRule::NotConverged => "setmaxnreg not executed by all 32 lanes of each warp of a whole warpgroup",
            SetMaxNRegRule::WarpgroupMismatch => "warps of one warpgroup execute different setmaxnreg instructions",
            SetMaxNRegRule::WarpgroupMissing => {
                "a warp of the warpgroup did not execute a setmaxnreg that another warp of it executed"
            }
            SetMaxNRegRule::WrongDirection => {
                "setmaxnreg.inc below, or setmaxnreg.dec above, the warp's current register count"
            }
            SetMaxNRegRule::PoolExhausted => {
                "setmaxnreg.inc waits forever: the block's register pool cannot supply the new count"
            }
        }
    }
}

/// Details of a [`HazardKind::Bulk`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkHazard {
    /// The rule that was broken.
    pub rule: BulkRule,
    /// The other side: the bulk copy (or `cp.async`) in flight, the expect-tx or
    /// complete-tx that set the tx-count, as applicable.
    pub other: Option<Access>,
    /// What was observed.
    pub detail: String,
}

/// Which bulk-copy rule a [`HazardKind::Bulk`] broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkRule {
    /// A thread read or wrote shared bytes that a `cp.async.bulk` writes before any
    /// `mbarrier.test_wait`/`try_wait` observed the completion of the mbarrier phase
    /// the copy takes part in (9.7.9.25.2 "Async Proxy": the result is visible once the
    /// completion is observed, not before).
    InFlight,
    /// A `cp.async.bulk` or `cp.async` whose destination overlaps shared bytes that
    /// another copy not yet landed (bulk, or `cp.async` not yet waited for) writes.
    OverlappingCopies,
    /// The tx-count left its range -(2^20-1)..=2^20-1 (9.7.13.15.2 "Contents of the
    /// mbarrier object"), or was negative while no arrival was pending: more bytes
    /// completed than the phase expects.
    TxCount,
    /// A bulk copy address not 16-byte aligned, or a size not a multiple of 16
    /// (9.7.9.25.4.1); a tensor copy's shared destination not 128-byte aligned
    /// (9.7.9.25.5.1).
    Alignment,
    /// The block finished with a bulk copy whose completion no thread observed, or
    /// with an mbarrier whose tx-count is not zero.
    PendingAtExit,
    /// A `cp.async.bulk.tensor` whose tensor-map operand does not hold a valid tensor
    /// map (`crate::TensorMap::encode`'s encoding, with the driver's rules).
    TensorMap,
}

impl BulkRule {
    fn describe(self) -> &'static str {
        match self {
            BulkRule::InFlight => {
                "shared memory accessed while a cp.async.bulk writes it (no mbarrier wait observed its completion)"
            }
            BulkRule::OverlappingCopies => "copy destination overlaps a copy still in flight",
            BulkRule::TxCount => "invalid mbarrier tx-count",
            BulkRule::Alignment => {
                "cp.async.bulk address or size not a multiple of 16 (tensor copies: destination not 128-byte aligned)"
            }
            BulkRule::TensorMap => "invalid tensor map",
            BulkRule::PendingAtExit => "block finished with bulk-copy transactions pending",
        }
    }
}

/// Details of a [`HazardKind::Wgmma`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WgmmaHazard {
    /// The rule that was broken.
    pub rule: WgmmaRule,
    /// The register involved (PTX name), if any.
    pub register: Option<String>,
    /// The other side: the `wgmma.mma_async` in flight, the earlier register access,
    /// or the generic-proxy write, as applicable.
    pub other: Option<Access>,
    /// What was observed.
    pub detail: String,
}

/// Which `wgmma` rule a [`HazardKind::Wgmma`] broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WgmmaRule {
    /// An instruction read or wrote an accumulator register, or wrote an A register,
    /// of a `wgmma.mma_async` that no `wgmma.wait_group` has retired yet (9.7.15.7.3).
    RegisterInFlight,
    /// A register a `wgmma.mma_async` reads or writes (A or D) was accessed by another
    /// instruction since the warp's last `wgmma.fence`, or the warp never executed
    /// `wgmma.fence` (9.7.15.7.1).
    MissingFence,
    /// Shared memory read by a `wgmma.mma_async` was written before the wgmma was
    /// retired by `wgmma.wait_group`.
    SharedOverwritten,
    /// A `wgmma.mma_async` (async proxy) read shared bytes whose last generic-proxy
    /// write was not followed by a `fence.proxy.async` of the writing thread.
    MissingProxyFence,
    /// A matrix descriptor the layout rules forbid (a swizzle pattern that does not
    /// start on its repeat boundary, descriptors that differ between lanes).
    Descriptor,
    /// A warp exited with `wgmma.mma_async` operations not yet retired.
    PendingAtExit,
    /// A `.sync.aligned` wgmma instruction executed by fewer than all 32 lanes, or by
    /// a warp whose warpgroup (4 warps) is incomplete.
    NotConverged,
}

impl WgmmaRule {
    fn describe(self) -> &'static str {
        match self {
            WgmmaRule::RegisterInFlight => "register accessed before wgmma.wait_group retired the wgmma that uses it",
            WgmmaRule::MissingFence => "missing wgmma.fence",
            WgmmaRule::SharedOverwritten => "shared memory overwritten while a wgmma reading it is in flight",
            WgmmaRule::MissingProxyFence => {
                "missing fence.proxy.async between a generic-proxy shared write and a wgmma reading it"
            }
            WgmmaRule::Descriptor => "bad wgmma matrix descriptor",
            WgmmaRule::PendingAtExit => "exit with wgmma operations not retired by wgmma.wait_group",
            WgmmaRule::NotConverged => "wgmma .sync.aligned instruction not executed by the whole warpgroup",
        }
    }
}

/// A fault of the simulated program, with its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hazard {
    /// Kernel name.
    pub kernel: String,
    /// The kind of fault.
    pub kind: HazardKind,
    /// Block index (`%ctaid`).
    pub ctaid: [u32; 3],
    /// Thread index (`%tid`) of the faulting thread.
    pub tid: [u32; 3],
    /// PTX source line of the faulting instruction.
    pub line: u32,
    /// Address involved (space-relative for shared/local), if any.
    pub addr: Option<u64>,
}

impl fmt::Display for Hazard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            HazardKind::OutOfBounds { space, size } => format!("out of bounds {space} access of {size} bytes"),
            HazardKind::Misaligned { space, size } => format!("misaligned {space} access of {size} bytes"),
            HazardKind::SharedRace { first, second } => {
                format!("shared-memory race: {first} and {second} with no barrier between")
            }
            HazardKind::Uninitialized => "read of uninitialized shared memory (never written)".to_string(),
            HazardKind::CpAsyncNotWaited { issuer, issue_line } => format!(
                "read of uninitialized shared memory: destination of a cp.async (thread ({},{},{}), PTX line {issue_line}) not waited for",
                issuer[0], issuer[1], issuer[2]
            ),
            HazardKind::Barrier { detail } => format!("barrier error: {detail}"),
            HazardKind::Trap => "trap executed".to_string(),
            HazardKind::Wgmma(w) => {
                let mut s = format!("wgmma hazard: {}: {}", w.rule.describe(), w.detail);
                if let Some(r) = &w.register {
                    s += &format!(" (register {r})");
                }
                if let Some(o) = &w.other {
                    s += &format!("; other side: {o}");
                }
                s
            }
            HazardKind::SetMaxNReg(m) => {
                let mut s = format!("setmaxnreg hazard: {}: {}", m.rule.describe(), m.detail);
                if let Some(o) = &m.other {
                    s += &format!(
                        "; other side: thread ({},{},{}) warp {} at PTX line {}",
                        o.tid[0], o.tid[1], o.tid[2], o.warp, o.line
                    );
                }
                s
            }
            HazardKind::GridDependency(g) => format!(
                "grid-dependency hazard: global {} of the allocation at {:#x}, which an earlier grid (`{}`) {}, \
                 before this thread's griddepcontrol.wait (a programmatic launch may start while that grid still \
                 runs)",
                if g.write { "write" } else { "read" },
                g.alloc_base,
                g.prior_kernel,
                if g.prior_wrote { "wrote" } else { "read" }
            ),
            HazardKind::NonCoherentLoad(n) => {
                let writer = match (&n.writer, &n.prior_kernel) {
                    (Some((b, a)), _) => format!("this grid writes ({a}, block ({},{},{}))", b[0], b[1], b[2]),
                    (None, Some(k)) => format!("an earlier grid (`{k}`) wrote while this one ran"),
                    (None, None) => "is written while the kernel runs".to_string(),
                };
                format!(
                    "read-only-path hazard: ld.global.nc of the allocation at {:#x}, which {writer}: the \
                     non-coherent path may return stale data",
                    n.alloc_base
                )
            }
            HazardKind::Bulk(b) => {
                let mut s = format!("bulk-copy hazard: {}: {}", b.rule.describe(), b.detail);
                if let Some(o) = &b.other {
                    s += &format!("; other side: {o}");
                }
                s
            }
        };
        write!(
            f,
            "{what} in kernel `{}`, block ({},{},{}), thread ({},{},{}), PTX line {}",
            self.kernel, self.ctaid[0], self.ctaid[1], self.ctaid[2], self.tid[0], self.tid[1], self.tid[2], self.line
        )?;
        if let Some(a) = self.addr {
            write!(f, ", address {a:#x}")?;
        }
        Ok(())
    }
}

/// An error of the simulator: either a fault of the simulated program (`Hazard`,
/// `Deadlock`) or a usage/interpreter error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The PTX text could not be parsed.
    #[error("PTX parse error at line {line}: {message}")]
    Parse {
        /// Source line.
        line: u32,
        /// What was wrong.
        message: String,
    },
    /// An opcode the simulator does not know (reported at load time).
    #[error("unknown PTX instruction `{opcode}` at line {line}")]
    UnknownInstruction {
        /// The full opcode with modifiers.
        opcode: String,
        /// Source line.
        line: u32,
    },
    /// A known instruction used in a form the simulator does not implement.
    #[error("unsupported: {what} (PTX line {line})")]
    Unsupported {
        /// What is unsupported.
        what: String,
        /// Source line (0 when not tied to one).
        line: u32,
    },
    /// Kernel arguments do not match the parameters.
    #[error("bad kernel arguments for `{kernel}`: {message}")]
    BadArgs {
        /// Kernel name.
        kernel: String,
        /// What was wrong.
        message: String,
    },
    /// No `.entry` of that name.
    #[error("no kernel named `{0}` in the module")]
    UnknownKernel(String),
    /// A bad launch configuration (grid/block shape, shared size).
    #[error("bad launch configuration: {0}")]
    BadLaunch(String),
    /// Host-side memory API misuse (bad address or size).
    #[error("device memory error: {0}")]
    Memory(String),
    /// A fault of the simulated program.
    #[error("hazard: {0}")]
    Hazard(Box<Hazard>),
    /// No thread of any resident block can make progress.
    #[error("deadlock in kernel `{kernel}`: no resident block can make progress; waiting: {}", waiting.join("; "))]
    Deadlock {
        /// Kernel name.
        kernel: String,
        /// One entry per waiting block: block index and the PTX lines its warps wait at.
        waiting: Vec<String>,
    },
}
