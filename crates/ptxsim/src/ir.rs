//! The decoded instruction form: every operand already resolved to a register slot,
//! an immediate or a special register, every label to an instruction index. Built by
//! `parse`, executed by `step`.

use crate::semantics::bits::PrmtMode;
use crate::semantics::float::{FBinOp, FCmp};
use crate::semantics::mma::MmaDesc;
use crate::semantics::types::{Rounding, ScalarType};
use crate::semantics::warp::{ReduxOp, ShflMode, VoteMode};
use crate::semantics::wgmma::WgmmaDesc;

/// Index of a register slot (predicates are slots too, holding 0 or 1).
pub type Reg = u32;

/// A special register (PTX ISA "Special Registers").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sreg {
    /// `%tid.{x,y,z}`
    Tid(u8),
    /// `%ntid.{x,y,z}`
    Ntid(u8),
    /// `%ctaid.{x,y,z}`
    Ctaid(u8),
    /// `%nctaid.{x,y,z}`
    Nctaid(u8),
    /// `%laneid`
    LaneId,
    /// `%warpid`
    WarpId,
    /// `%nwarpid`
    NWarpId,
    /// `%smid`
    SmId,
    /// `%nsmid`
    NSmId,
    /// `%clock`, `%clock64`, `%globaltimer` (monotonic counter)
    Clock,
    /// `%lanemask_eq`
    LanemaskEq,
    /// `%lanemask_le`
    LanemaskLe,
    /// `%lanemask_lt`
    LanemaskLt,
    /// `%lanemask_ge`
    LanemaskGe,
    /// `%lanemask_gt`
    LanemaskGt,
    /// `%dynamic_smem_size`
    DynSmem,
    /// `%total_smem_size`
    TotalSmem,
}

/// A source operand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Operand {
    /// A register slot.
    Reg(Reg),
    /// An immediate (raw bits; negative decimals sign-extended to 64 bits).
    Imm(u64),
    /// A special register, evaluated per lane.
    Sreg(Sreg),
    /// The address of module-scope `.global`/`.const` variable `n` (known at launch).
    GlobalSym(u32),
}

/// A state space of a memory instruction (PTX ISA "State Spaces").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// No space: generic addressing.
    Generic,
    /// `.global`
    Global,
    /// `.shared` (`.shared::cta`)
    Shared,
    /// `.local`
    Local,
    /// `.param`
    Param,
    /// `.const`
    Const,
}

/// An address operand `[base+offset]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Addr {
    /// Base register, symbol address or immediate.
    pub base: Operand,
    /// Constant byte offset.
    pub offset: i64,
}

/// Integer two-operand operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOp {
    /// `add`
    Add,
    /// `sub`
    Sub,
    /// `mul.lo`
    MulLo,
    /// `mul.hi`
    MulHi,
    /// `mul24.lo`
    Mul24Lo,
    /// `div`
    Div,
    /// `rem`
    Rem,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `and`
    And,
    /// `or`
    Or,
    /// `xor`
    Xor,
    /// `shl`
    Shl,
    /// `shr`
    Shr,
}

/// Integer one-operand operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntUn {
    /// `not`
    Not,
    /// `cnot`
    Cnot,
    /// `neg`
    Neg,
    /// `abs`
    Abs,
    /// `popc`
    Popc,
    /// `clz`
    Clz,
    /// `brev`
    Brev,
}

/// Floating-point one-operand operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FUn {
    /// `neg`
    Neg,
    /// `abs`
    Abs,
    /// `sqrt`
    Sqrt,
    /// `rcp`
    Rcp,
    /// `rsqrt.approx`
    Rsqrt,
    /// `ex2.approx`
    Ex2,
    /// `lg2.approx`
    Lg2,
    /// `sin.approx`
    Sin,
    /// `cos.approx`
    Cos,
    /// `tanh.approx`
    Tanh,
}

/// An `mbarrier` operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MbarOp {
    /// `init [a], count`
    Init,
    /// `arrive{.noComplete} state, [a]{, count}` (`drop`: `arrive_drop`), or
    /// `arrive.expect_tx state, [a], txCount` (`expect_tx`: an expect-tx of `txCount`
    /// before an arrive-on with count 1, PTX ISA 9.7.13.15.13).
    Arrive {
        /// `arrive_drop`: also lowers the expected count for later phases.
        drop: bool,
        /// `.expect_tx`: the operand is the tx count, the arrival count is 1.
        expect_tx: bool,
    },
    /// `expect_tx [a], txCount`: raises the tx-count (9.7.13.15.11).
    ExpectTx,
    /// `complete_tx [a], txCount`: lowers the tx-count (9.7.13.15.12).
    CompleteTx,
    /// `test_wait`/`try_wait` with a state token (`parity`: with a phase parity).
    TestWait {
        /// `.parity` form.
        parity: bool,
    },
    /// `pending_count count, state`
    PendingCount,
    /// `inval [a]`
    Inval,
}

/// Property tested by `testp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestOp {
    /// `.finite`
    Finite,
    /// `.infinite`
    Infinite,
    /// `.number`
    Number,
    /// `.notanumber`
    NotANumber,
    /// `.normal`
    Normal,
    /// `.subnormal`
    Subnormal,
}

/// Boolean combine of `setp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoolOp {
    /// `.and`
    And,
    /// `.or`
    Or,
    /// `.xor`
    Xor,
}

/// Comparison of `setp` (integer forms use `Eq..Ge`, with `lo/ls/hi/hs` mapped).
pub type Cmp = FCmp;

/// Atomic operation (PTX ISA "atom").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtomOp {
    /// `.add`
    Add,
    /// `.min`
    Min,
    /// `.max`
    Max,
    /// `.inc`
    Inc,
    /// `.dec`
    Dec,
    /// `.and`
    And,
    /// `.or`
    Or,
    /// `.xor`
    Xor,
    /// `.exch`
    Exch,
    /// `.cas`
    Cas,
}

/// Mode of `mad`/`mul` on integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MadMode {
    /// `.lo`
    Lo,
    /// `.hi`
    Hi,
    /// `.wide`
    Wide,
}

/// Rounding/flags of a floating-point instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FMods {
    /// Explicit rounding modifier, if any.
    pub rnd: Option<Rounding>,
    /// `.ftz`
    pub ftz: bool,
    /// `.sat`
    pub sat: bool,
    /// `.relu`
    pub relu: bool,
}

/// One decoded instruction kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `mov` of a scalar (also special registers and symbol addresses).
    Mov { d: Reg, a: Operand, bits: u32 },
    /// `mov.bN d, {a, b, ..}`: packs parts (element 0 in the low bits).
    Pack { d: Reg, parts: Vec<Operand>, part_bits: u32 },
    /// `mov.bN {a, b, ..}, s`: unpacks.
    Unpack { ds: Vec<Option<Reg>>, a: Operand, part_bits: u32 },
    /// Integer two-operand operation.
    Int2 { op: IntOp, ty: ScalarType, d: Reg, a: Operand, b: Operand },
    /// `add.cc`/`addc`/`sub.cc`/`subc` (carry flag in slot `cc`, PTX ISA "Extended-Precision Integer Arithmetic").
    AddCarry { sub: bool, cin: bool, cout: bool, ty: ScalarType, d: Reg, a: Operand, b: Operand, cc: Reg },
    /// `mad{c}.{lo,hi}{.cc}`.
    MadCarry { hi: bool, cin: bool, cout: bool, ty: ScalarType, d: Reg, a: Operand, b: Operand, c: Operand, cc: Reg },
    /// `add.sat.s32` / `sub.sat.s32`.
    SatAdd { sub: bool, d: Reg, a: Operand, b: Operand },
    /// `dp4a` / `dp2a.{lo,hi}` (`sa`/`sb`: operand signedness).
    Dp { two: bool, hi: bool, sa: bool, sb: bool, d: Reg, a: Operand, b: Operand, c: Operand },
    /// `shf.{l,r}.{wrap,clamp}.b32` funnel shift.
    Shf { left: bool, clamp: bool, d: Reg, a: Operand, b: Operand, c: Operand },
    /// `bfind{.shiftamt}`
    Bfind { ty: ScalarType, shiftamt: bool, d: Reg, a: Operand },
    /// `copysign` (sign of `a`, magnitude of `b`).
    Copysign { ty: ScalarType, d: Reg, a: Operand, b: Operand },
    /// `testp.op`
    Testp { op: TestOp, ty: ScalarType, d: Reg, a: Operand },
    /// `isspacep.space`
    Isspacep { space: Space, d: Reg, a: Operand },
    /// `mul.wide`
    MulWide { ty: ScalarType, d: Reg, a: Operand, b: Operand },
    /// Integer one-operand operation.
    Int1 { op: IntUn, ty: ScalarType, d: Reg, a: Operand },
    /// `mad.{lo,hi,wide}` on integers.
    Mad { mode: MadMode, ty: ScalarType, d: Reg, a: Operand, b: Operand, c: Operand },
    /// Floating-point two-operand operation (f16/bf16 scalar and packed, f32, f64).
    F2 { op: FBinOp, ty: ScalarType, m: FMods, d: Reg, a: Operand, b: Operand },
    /// `div` on f32/f64.
    FDiv { ty: ScalarType, m: FMods, d: Reg, a: Operand, b: Operand },
    /// Floating-point one-operand operation.
    F1 { op: FUn, ty: ScalarType, m: FMods, d: Reg, a: Operand },
    /// `fma` (and float `mad`).
    Fma { ty: ScalarType, m: FMods, d: Reg, a: Operand, b: Operand, c: Operand },
    /// `setp` with optional second destination and boolean combine.
    Setp {
        cmp: Cmp,
        ty: ScalarType,
        d: Option<Reg>,
        d2: Option<Reg>,
        a: Operand,
        b: Operand,
        comb: Option<(BoolOp, Operand, bool)>,
    },
    /// `selp`
    Selp { bits: u32, d: Reg, a: Operand, b: Operand, p: Operand },
    /// `slct.dtype.{s32,f32}`
    Slct { bits: u32, float_c: bool, d: Reg, a: Operand, b: Operand, c: Operand },
    /// `lop3.b32`
    Lop3 { d: Reg, a: Operand, b: Operand, c: Operand, lut: u8 },
    /// `prmt.b32`
    Prmt { d: Reg, a: Operand, b: Operand, c: Operand, mode: PrmtMode },
    /// `bfe`
    Bfe { ty: ScalarType, d: Reg, a: Operand, b: Operand, c: Operand },
    /// `bfi`
    Bfi { bits: u32, d: Reg, f: Operand, b: Operand, c: Operand, e: Operand },
    /// `cvt`
    Cvt { dty: ScalarType, sty: ScalarType, m: FMods, d: Reg, a: Operand },
    /// `cvt.rn{.relu}{.satfinite}.{f16x2,bf16x2}.f32 d, a, b`
    CvtPack { bf16: bool, m: FMods, d: Reg, a: Operand, b: Operand },
    /// `cvta` (`to` = generic to space) in 32- or 64-bit form.
    Cvta { to: bool, space: Space, bits: u32, d: Reg, a: Operand },
    /// `ld` (scalar or vector); `nc`: `ld.global.nc`, through the non-coherent
    /// read-only path, valid only for data no grid writes while the kernel runs.
    Ld { space: Space, ty: ScalarType, ds: Vec<Option<Reg>>, addr: Addr, nc: bool },
    /// `st` (scalar or vector).
    St { space: Space, ty: ScalarType, srcs: Vec<Operand>, addr: Addr },
    /// `atom` (`d = None`: `red`).
    Atom { space: Space, op: AtomOp, ty: ScalarType, d: Option<Reg>, addr: Addr, b: Operand, c: Option<Operand> },
    /// `cp.async.{ca,cg}.shared.global`
    CpAsync { dst: Addr, src: Addr, size: u32, src_size: Option<Operand> },
    /// `cp.async.bulk.shared::{cluster,cta}.global.mbarrier::complete_tx::bytes
    /// [dst], [src], size, [mbar]` (PTX ISA 9.7.9.25.4.1, non-tensor): copies `size`
    /// bytes from global to shared memory, then performs complete-tx of `size` on the
    /// mbarrier.
    CpAsyncBulk { dst: Addr, src: Addr, size: Operand, mbar: Addr },
    /// `cp.async.bulk.tensor.Nd.shared::{cluster,cta}.global{.tile}.mbarrier::complete_tx::bytes
    /// [dst], [tmap, {c0, …}], [mbar]` (PTX ISA 9.7.9.25.5.1, tiled): copies the box of
    /// the tensor map at global address `tmap` whose first element is at `coords`
    /// (innermost first, signed) into shared memory at `dst`, then performs complete-tx
    /// of the box bytes on the mbarrier (see `crate::tensor_map`).
    CpAsyncBulkTensor { dst: Addr, tmap: Addr, coords: Vec<Operand>, mbar: Addr },
    /// `cp.async.commit_group`
    CpCommit,
    /// `cp.async.wait_group N`
    CpWait(u32),
    /// `cp.async.wait_all`
    CpWaitAll,
    /// `mbarrier.*` on a shared-memory barrier object (PTX ISA "Parallel
    /// Synchronization and Communication Instructions: mbarrier").
    Mbar { op: MbarOp, d: Option<Reg>, addr: Option<Addr>, b: Option<Operand> },
    /// `cp.async.mbarrier.arrive{.noinc}.shared.b64 [addr]`
    CpMbarArrive { noinc: bool, addr: Addr },
    /// `bar.sync`/`barrier.sync`/`bar.arrive` (block barrier).
    Bar { id: Operand, count: Option<Operand>, arrive: bool },
    /// `bar.warp.sync`
    WarpSync { mask: Operand },
    /// `bra`
    Bra { target: u32 },
    /// `ret` / `exit`
    Exit,
    /// `trap`
    Trap,
    /// Instructions with no architectural effect here (fences, prefetch, nanosleep).
    Nop,
    /// `setmaxnreg.{inc,dec}.sync.aligned.u32 regs` (PTX ISA "setmaxnreg", sm_90a): a
    /// warpgroup's request to raise (`inc`) or lower its per-thread register maximum
    /// to `regs` (24..=256, a multiple of 8). No effect on values; with hazard checks
    /// on, its warpgroup-wide execution and count order are checked (`step`).
    SetMaxNReg { inc: bool, regs: u32 },
    /// `createpolicy` (writes an opaque 64-bit policy).
    CreatePolicy { d: Reg },
    /// `activemask.b32`
    ActiveMask { d: Reg },
    /// `shfl.sync`
    Shfl { mode: ShflMode, d: Reg, dp: Option<Reg>, a: Operand, b: Operand, c: Operand, mask: Operand },
    /// `vote.sync`
    Vote { mode: VoteMode, d: Reg, a: Operand, neg: bool, mask: Operand },
    /// `redux.sync`
    Redux { op: ReduxOp, signed: bool, d: Reg, a: Operand, mask: Operand },
    /// `mma.sync.aligned`
    Mma { desc: MmaDesc, ds: Vec<Reg>, a: Vec<Operand>, b: Vec<Operand>, c: Vec<Operand> },
    /// `ldmatrix.sync.aligned.m8n8`
    Ldmatrix { count: u32, trans: bool, ds: Vec<Reg>, addr: Addr },
    /// `wgmma.mma_async.sync.aligned.m64nNk16` (PTX ISA 9.7.15.5.2): D registers,
    /// A as four registers or a shared-memory descriptor, B descriptor, `scale-d`.
    Wgmma { desc: WgmmaDesc, ds: Vec<Reg>, a: WgA, b: Operand, scale_d: Operand },
    /// `wgmma.fence.sync.aligned` (PTX ISA 9.7.15.7.1).
    WgFence,
    /// `wgmma.commit_group.sync.aligned` (PTX ISA 9.7.15.7.2).
    WgCommit,
    /// `wgmma.wait_group.sync.aligned N` (PTX ISA 9.7.15.7.3).
    WgWait(u32),
    /// `fence.proxy.async{.shared::cta,.shared::cluster}`: orders the executing
    /// thread's earlier generic-proxy shared writes before later async-proxy reads
    /// (PTX ISA "fence.proxy", "Memory consistency model: proxies").
    ProxyFence,
    /// `griddepcontrol.wait` (PTX ISA "griddepcontrol", sm_90): the executing thread
    /// waits until the grids it depends on have completed and their memory operations
    /// are visible. The simulator runs launches one after another, so the wait itself
    /// never blocks; it marks the lane as having waited, which the programmatic-launch
    /// hazard check reads (see `SimConfig::programmatic_launch`).
    GridDepWait,
    /// `griddepcontrol.launch_dependents` (PTX ISA "griddepcontrol"): lets the next
    /// programmatically launched grid start once every block has executed it or exited.
    /// No effect here on values or memory; counted, for the grid-dependency check of the
    /// grid after the next one (see `PriorGrid::after`).
    GridDepLaunch,
    /// `cp.async.bulk.prefetch.L2.global{.L2::cache_hint} [src], size{, policy}` (PTX ISA
    /// "cp.async.bulk.prefetch"): a hint to bring `size` bytes into L2. No effect on
    /// values and no SM traffic; with hazard checks on, the range must lie in one
    /// allocation, 16-byte aligned with a size a multiple of 16.
    BulkPrefetchL2 { src: Addr, size: Operand },
}

/// Operand A of `wgmma.mma_async`.
#[derive(Clone, Debug, PartialEq)]
pub enum WgA {
    /// Four `.f16x2`/`.bf16x2` registers (the register form).
    Regs(Vec<Reg>),
    /// A 64-bit shared-memory matrix descriptor.
    Desc(Operand),
}

impl Kind {
    /// Calls `f(reg, write)` for each register slot the instruction reads (`false`)
    /// or writes (`true`) through its operands; `wgmma.mma_async` operands are not
    /// visited (it keeps its own books). Used only for kernels with `wgmma`, to find
    /// the instructions that touch a register of a `wgmma.mma_async`.
    pub fn visit_regs(&self, f: &mut dyn FnMut(Reg, bool)) {
        let r = |o: &Operand, f: &mut dyn FnMut(Reg, bool)| {
            if let Operand::Reg(x) = o {
                f(*x, false);
            }
        };
        let rs = |os: &[&Operand], f: &mut dyn FnMut(Reg, bool)| {
            for o in os {
                if let Operand::Reg(x) = o {
                    f(*x, false);
                }
            }
        };
        match self {
            Kind::Mov { d, a, .. } => {
                r(a, f);
                f(*d, true);
            }
            Kind::Pack { d, parts, .. } => {
                for p in parts {
                    r(p, f);
                }
                f(*d, true);
            }
            Kind::Unpack { ds, a, .. } => {
                r(a, f);
                for d in ds.iter().flatten() {
                    f(*d, true);
                }
            }
            Kind::Int2 { d, a, b, .. }
            | Kind::SatAdd { d, a, b, .. }
            | Kind::Copysign { d, a, b, .. }
            | Kind::MulWide { d, a, b, .. }
            | Kind::F2 { d, a, b, .. }
            | Kind::FDiv { d, a, b, .. }
            | Kind::CvtPack { d, a, b, .. } => {
                rs(&[a, b], f);
                f(*d, true);
            }
            Kind::AddCarry { d, a, b, cc, .. } => {
                rs(&[a, b], f);
                f(*cc, false);
                f(*d, true);
                f(*cc, true);
            }
            Kind::MadCarry { d, a, b, c, cc, .. } => {
                rs(&[a, b, c], f);
                f(*cc, false);
                f(*d, true);
                f(*cc, true);
            }
            Kind::Dp { d, a, b, c, .. }
            | Kind::Shf { d, a, b, c, .. }
            | Kind::Mad { d, a, b, c, .. }
            | Kind::Fma { d, a, b, c, .. }
            | Kind::Slct { d, a, b, c, .. }
            | Kind::Lop3 { d, a, b, c, .. }
            | Kind::Prmt { d, a, b, c, .. }
            | Kind::Bfe { d, a, b, c, .. } => {
                rs(&[a, b, c], f);
                f(*d, true);
            }
            Kind::Bfi { d, f: x, b, c, e, .. } => {
                rs(&[x, b, c, e], f);
                f(*d, true);
            }
            Kind::Bfind { d, a, .. }
            | Kind::Testp { d, a, .. }
            | Kind::Isspacep { d, a, .. }
            | Kind::Int1 { d, a, .. }
            | Kind::F1 { d, a, .. }
            | Kind::Cvt { d, a, .. }
            | Kind::Cvta { d, a, .. } => {
                r(a, f);
                f(*d, true);
            }
            Kind::Setp { d, d2, a, b, comb, .. } => {
                rs(&[a, b], f);
                if let Some((_, c, _)) = comb {
                    r(c, f);
                }
                for x in [d, d2].into_iter().flatten() {
                    f(*x, true);
                }
            }
            Kind::Selp { d, a, b, p, .. } => {
                rs(&[a, b, p], f);
                f(*d, true);
            }
            Kind::Ld { ds, addr, .. } => {
                r(&addr.base, f);
                for d in ds.iter().flatten() {
                    f(*d, true);
                }
            }
            Kind::St { srcs, addr, .. } => {
                r(&addr.base, f);
                for s in srcs {
                    r(s, f);
                }
            }
            Kind::Atom { d, addr, b, c, .. } => {
                r(&addr.base, f);
                r(b, f);
                if let Some(c) = c {
                    r(c, f);
                }
                if let Some(d) = d {
                    f(*d, true);
                }
            }
            Kind::CpAsync { dst, src, src_size, .. } => {
                rs(&[&dst.base, &src.base], f);
                if let Some(s) = src_size {
                    r(s, f);
                }
            }
            Kind::CpAsyncBulk { dst, src, size, mbar } => rs(&[&dst.base, &src.base, size, &mbar.base], f),
            Kind::CpAsyncBulkTensor { dst, tmap, coords, mbar } => {
                rs(&[&dst.base, &tmap.base, &mbar.base], f);
                coords.iter().for_each(|c| r(c, f));
            }
            Kind::Mbar { d, addr, b, .. } => {
                if let Some(a) = addr {
                    r(&a.base, f);
                }
                if let Some(b) = b {
                    r(b, f);
                }
                if let Some(d) = d {
                    f(*d, true);
                }
            }
            Kind::CpMbarArrive { addr, .. } => r(&addr.base, f),
            Kind::Bar { id, count, .. } => {
                r(id, f);
                if let Some(c) = count {
                    r(c, f);
                }
            }
            Kind::WarpSync { mask } => r(mask, f),
            Kind::CreatePolicy { d } | Kind::ActiveMask { d } => f(*d, true),
            Kind::Shfl { d, dp, a, b, c, mask, .. } => {
                rs(&[a, b, c, mask], f);
                f(*d, true);
                if let Some(p) = dp {
                    f(*p, true);
                }
            }
            Kind::Vote { d, a, mask, .. } => {
                rs(&[a, mask], f);
                f(*d, true);
            }
            Kind::Redux { d, a, mask, .. } => {
                rs(&[a, mask], f);
                f(*d, true);
            }
            Kind::Mma { ds, a, b, c, .. } => {
                for o in a.iter().chain(b).chain(c) {
                    r(o, f);
                }
                for d in ds {
                    f(*d, true);
                }
            }
            Kind::Ldmatrix { ds, addr, .. } => {
                r(&addr.base, f);
                for d in ds {
                    f(*d, true);
                }
            }
            Kind::CpCommit
            | Kind::CpWait(_)
            | Kind::CpWaitAll
            | Kind::Bra { .. }
            | Kind::Exit
            | Kind::Trap
            | Kind::Nop
            | Kind::SetMaxNReg { .. }
            | Kind::Wgmma { .. }
            | Kind::WgFence
            | Kind::WgCommit
            | Kind::WgWait(_)
            | Kind::ProxyFence
            | Kind::GridDepWait
            | Kind::GridDepLaunch => {}
            Kind::BulkPrefetchL2 { src, size } => {
                r(&src.base, f);
                r(size, f);
            }
        }
    }
}

/// Instruction class for the dynamic instruction counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Integer and bit arithmetic, `mov`, `setp`, `selp`.
    Integer,
    /// f32/f64 arithmetic.
    Float,
    /// f16/bf16 arithmetic.
    Half,
    /// Global-memory access (incl. atomics, cp.async, cp.async.bulk).
    Global,
    /// Shared-memory access (incl. ldmatrix).
    Shared,
    /// Local-memory access.
    Local,
    /// Param/const access.
    Param,
    /// Branches, exit.
    Control,
    /// Barriers, fences, warp collectives.
    Sync,
    /// `mma`, `wgmma.mma_async`.
    Tensor,
    /// `cvt`, `cvta`.
    Conversion,
    /// Anything else.
    Other,
}

/// Number of counter classes.
pub const NUM_CLASSES: usize = 12;

/// One decoded instruction.
#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    /// What it does.
    pub kind: Kind,
    /// Guard predicate `(slot, negated)`.
    pub guard: Option<(Reg, bool)>,
    /// Source line in the PTX text (1-based).
    pub line: u32,
    /// Counter class.
    pub class: Class,
    /// True for `.aligned`/`.sync` warp collectives that need a lane rendezvous.
    pub collective: bool,
    /// Accesses registers of `wgmma.mma_async` operands (`Kernel::wg_access`).
    pub wg: bool,
}

/// A kernel parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Name in the PTX.
    pub name: String,
    /// Offset in the param buffer.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// Declared type (`B8` for byte arrays).
    pub ty: ScalarType,
    /// True for `.b8 name[N]` arrays (by-value structs).
    pub is_array: bool,
}

/// A decoded `.entry`.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// Entry name.
    pub name: String,
    /// Parameters in order.
    pub params: Vec<Param>,
    /// Total param buffer size.
    pub param_size: u32,
    /// Instructions.
    pub insts: Vec<Inst>,
    /// Number of register slots.
    pub nregs: u32,
    /// Bytes of static shared memory (the dynamic array starts at `dyn_smem_offset`).
    pub static_smem: u32,
    /// Offset of the extern dynamic shared array.
    pub dyn_smem_offset: u32,
    /// Bytes of per-thread local memory.
    pub local_size: u32,
    /// `.maxntid` / `.reqntid` bound on threads per block, if declared.
    pub max_threads: Option<u32>,
    /// `.reqntid` exact shape, if declared.
    pub reqntid: Option<[u32; 3]>,
    /// Register names: `(first slot, count, name)`; a count above 1 is a
    /// parameterized declaration `name<count>` (slot `first + i` is `name{i}`).
    pub reg_names: Vec<(Reg, u32, String)>,
    /// True when the kernel contains `wgmma.mma_async`.
    pub uses_wgmma: bool,
    /// Per instruction (empty unless `uses_wgmma`): the `(register, write)` accesses
    /// it makes to registers that are A or D operands of some `wgmma.mma_async`
    /// (guard included), checked against the warp's pending wgmma operations;
    /// `Inst::wg` flags the non-empty entries.
    pub wg_access: Vec<Vec<(Reg, bool)>>,
    /// True when the kernel contains `cp.async.bulk` or an mbarrier tx-count operation
    /// (`expect_tx`, `arrive.expect_tx`, `complete_tx`): its blocks carry a `BulkState`.
    pub uses_bulk: bool,
    /// True when the kernel contains `setmaxnreg`: warps that exit check their
    /// warpgroup's setmaxnreg logs (`Warp::maxnreg`) once the whole warpgroup is done.
    pub uses_setmaxnreg: bool,
}

impl Kernel {
    /// The PTX name of register slot `r` (`%r12`, `p`, ...).
    pub fn reg_name(&self, r: Reg) -> String {
        for (first, count, name) in &self.reg_names {
            if (*first..first + count).contains(&r) {
                return if *count == 1 { name.clone() } else { format!("{name}{}", r - first) };
            }
        }
        format!("register slot {r}")
    }
}

/// A module-scope `.global`/`.const` variable.
#[derive(Clone, Debug)]
pub struct GlobalVar {
    /// Name.
    pub name: String,
    /// Size in bytes.
    pub size: u32,
    /// Initial bytes (zero-filled to `size`).
    pub init: Vec<u8>,
}
