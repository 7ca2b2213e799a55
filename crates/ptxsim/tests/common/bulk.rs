//! A generator of hand-written sm_90 bulk-copy pipelines, shared by
//! `semantics_bulk.rs` and `hazards_bulk.rs`: the producer-warp pattern of a Hopper
//! GEMM, reduced to streaming contiguous global data into a multi-stage ring in
//! shared memory.
//!
//! Thread 0 (the producer) loops over the tiles: it waits until the consumers freed
//! the tile's stage (`empty[s]`, phase parity flipped per round; round 0 passes at
//! once), arms the stage's `full[s]` mbarrier with the tile's byte count (expect-tx)
//! and issues the tile as `copies` `cp.async.bulk` chunks completing on `full[s]`.
//! The consumer warps wait on `full[s]` with the round's parity, fold their words of
//! the tile into a hash (word `c`, `c + 32 * warps`, ... for consumer thread `c`) and
//! arrive on `empty[s]`. Each consumer thread stores its hash; `reference` computes
//! the same on the host.
//!
//! Every line a test may want to locate gets a mark (`Ptx::marks`).

use std::collections::HashMap;

use ptxsim::{Gpu, KernelArg, LaunchReport, SimError};

use super::{module, wrap, Rng};

/// How the producer sets the tile's transaction count (PTX ISA 9.7.13.15.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// `mbarrier.arrive.expect_tx` of the tile, then the copies (the CUTLASS order).
    ArriveExpectTx,
    /// `mbarrier.expect_tx`, the copies, then a plain `mbarrier.arrive`.
    SplitExpectTx,
    /// The copies first (their complete-tx take the tx-count below zero while the
    /// producer's arrival is pending), then `mbarrier.arrive.expect_tx`.
    CopiesFirst,
}

/// A seeded mistake; with `Ring::fixed` the kernel is its corrected twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// None.
    None,
    /// Consumers read the stage before waiting on `full` (fixed: after).
    ReadBeforeWait,
    /// Consumers store to their word of the stage before waiting on `full` (fixed:
    /// after reading it, before releasing the stage).
    WriteBeforeWait,
    /// The producer does not wait on `empty` before refilling a stage.
    NoEmptyWait,
    /// The producer expects 16 bytes fewer than it copies.
    ExpectTooFew,
    /// The producer expects 16 bytes more than it copies.
    ExpectTooMany,
    /// `full` expects two arrivals; only the producer arrives.
    MissingArrival,
    /// Chunks of `chunk - 8` bytes.
    SizeNot16,
    /// Destination 8 bytes into the stage.
    MisalignedDst,
    /// Source 8 bytes into the tile.
    MisalignedSrc,
    /// The producer copies tile `i + 1` for tile `i`: the last one is past the end.
    SrcPastEnd,
}

/// One pipeline configuration.
#[derive(Clone, Debug)]
pub struct Ring {
    /// Ring stages.
    pub stages: u32,
    /// Bytes per tile (a multiple of `128 * consumer_warps` and of `16 * copies`).
    pub tile: u32,
    /// Bulk copies per tile.
    pub copies: u32,
    /// Tiles per block.
    pub tiles: u32,
    /// Consumer warps (the producer is warp 0).
    pub consumer_warps: u32,
    /// Blocks (each streams its own tiles).
    pub blocks: u32,
    /// How the transaction count is set.
    pub order: Order,
    /// The seeded mistake.
    pub bug: Bug,
    /// Emit the corrected twin of `bug`.
    pub fixed: bool,
}

impl Ring {
    /// A ring with the CUTLASS order and no bug.
    pub fn new(stages: u32, tile: u32, copies: u32, tiles: u32, consumer_warps: u32) -> Ring {
        Ring {
            stages,
            tile,
            copies,
            tiles,
            consumer_warps,
            blocks: 1,
            order: Order::ArriveExpectTx,
            bug: Bug::None,
            fixed: false,
        }
    }

    /// Threads per block.
    pub fn threads(&self) -> u32 {
        32 * (self.consumer_warps + 1)
    }

    /// Consumer threads per block (one output word each).
    pub fn consumers(&self) -> u32 {
        32 * self.consumer_warps
    }

    /// 32-bit words of source data.
    pub fn words(&self) -> usize {
        (self.blocks * self.tiles * self.tile / 4) as usize
    }

    fn bad(&self, b: Bug) -> bool {
        self.bug == b && !self.fixed
    }
}

/// PTX text and the line numbers of its marked lines.
pub struct Ptx {
    /// The module.
    pub text: String,
    /// Mark -> 1-based line.
    pub marks: HashMap<String, u32>,
}

struct Emit {
    lines: Vec<String>,
    marks: HashMap<String, u32>,
}

impl Emit {
    /// Tile %r10's stage %r11 = tile % stages, the phase parity %r13 of its use
    /// (tile / stages, low bit), and the stage's mbarriers: %r15 = empty, %r16 = full.
    fn stage_of_tile(&mut self, stages: impl std::fmt::Display) {
        self.l(format!("    rem.u32 %r11, %r10, {stages};"));
        self.l(format!("    div.u32 %r12, %r10, {stages};"));
        self.l("    and.b32 %r13, %r12, 1;");
        self.l("    shl.b32 %r14, %r11, 3;");
        self.l("    add.u32 %r15, %r4, %r14;");
        self.l("    add.u32 %r16, %r3, %r14;");
    }

    fn l(&mut self, s: impl Into<String>) {
        self.lines.push(s.into());
    }
    fn m(&mut self, mark: &str, s: impl Into<String>) {
        self.marks.insert(mark.to_string(), self.lines.len() as u32 + 1);
        self.l(s);
    }
}

/// The FNV-1a style fold the consumers apply to their words.
pub fn fold(acc: u32, v: u32) -> u32 {
    acc.wrapping_mul(16_777_619) ^ v
}

/// The fold's start value.
pub const FOLD0: u32 = 0x811c_9dc5;

/// The kernel `ring(src, out)` for `r`.
pub fn ring_ptx(r: &Ring) -> Ptx {
    let mut e = Emit { lines: Vec::new(), marks: HashMap::new() };
    let (st, tile) = (r.stages, r.tile);
    let chunk = tile / r.copies;
    let expect = match r.bug {
        Bug::ExpectTooFew if !r.fixed => tile - 16,
        Bug::ExpectTooMany if !r.fixed => tile + 16,
        _ => tile,
    };
    let size = if r.bad(Bug::SizeNot16) { chunk - 8 } else { chunk };
    for s in [
        ".version 8.0",
        ".target sm_90",
        ".address_size 64",
        ".visible .entry ring(",
        "    .param .u64 p_src,",
        "    .param .u64 p_out",
        ")",
        "{",
        "    .reg .pred %p<8>;",
        "    .reg .b32 %r<48>;",
        "    .reg .b64 %rd<16>;",
    ] {
        e.l(s);
    }
    e.l(format!("    .shared .align 128 .b8 ring[{}];", st * tile));
    e.l(format!("    .shared .align 8 .b64 full[{st}];"));
    e.l(format!("    .shared .align 8 .b64 empty[{st}];"));
    e.l("    ld.param.u64 %rd1, [p_src];");
    e.l("    ld.param.u64 %rd2, [p_out];");
    e.l("    cvta.to.global.u64 %rd1, %rd1;");
    e.l("    cvta.to.global.u64 %rd2, %rd2;");
    e.l("    mov.u32 %r30, %ctaid.x;");
    e.l(format!("    mul.wide.u32 %rd3, %r30, {};", r.tiles * tile));
    e.l("    add.s64 %rd1, %rd1, %rd3;");
    e.l(format!("    mul.wide.u32 %rd3, %r30, {};", r.consumers() * 4));
    e.l("    add.s64 %rd2, %rd2, %rd3;");
    e.l("    mov.u32 %r1, %tid.x;");
    e.l("    mov.u32 %r2, ring;");
    e.l("    mov.u32 %r3, full;");
    e.l("    mov.u32 %r4, empty;");
    e.l("    setp.ne.u32 %p1, %r1, 0;");
    e.l("    @%p1 bra $INIT_DONE;");
    let full_count = if r.bad(Bug::MissingArrival) { 2 } else { 1 };
    for s in 0..st {
        e.m(&format!("init_full{s}"), format!("    mbarrier.init.shared::cta.b64 [full+{}], {full_count};", 8 * s));
        e.l(format!("    mbarrier.init.shared::cta.b64 [empty+{}], {};", 8 * s, r.consumers()));
    }
    e.l("$INIT_DONE:");
    e.l("    bar.sync 0;");
    e.l("    setp.ge.u32 %p1, %r1, 32;");
    e.l("    @%p1 bra $CONSUMER;");
    e.l("    setp.ne.u32 %p1, %r1, 0;");
    e.l("    @%p1 bra $EXIT;");
    // Producer.
    e.l("    mov.u32 %r10, 0;");
    e.l("$P_LOOP:");
    e.stage_of_tile(st);
    e.l("    xor.b32 %r13, %r13, 1;");
    if !r.bad(Bug::NoEmptyWait) {
        e.l("$P_WAIT:");
        e.m("empty_wait", "    mbarrier.try_wait.parity.shared::cta.b64 %p3, [%r15], %r13;");
        e.l("    @!%p3 bra $P_WAIT;");
    }
    e.l(format!("    mul.lo.u32 %r17, %r11, {tile};"));
    e.l("    add.u32 %r17, %r2, %r17;");
    if r.bad(Bug::MisalignedDst) {
        e.l("    add.u32 %r17, %r17, 8;");
    }
    e.l(if r.bad(Bug::SrcPastEnd) { "    add.u32 %r19, %r10, 1;" } else { "    mov.u32 %r19, %r10;" });
    e.l(format!("    mul.wide.u32 %rd4, %r19, {tile};"));
    e.l("    add.s64 %rd4, %rd1, %rd4;");
    if r.bad(Bug::MisalignedSrc) {
        e.l("    add.s64 %rd4, %rd4, 8;");
    }
    match r.order {
        Order::ArriveExpectTx => {
            e.m("expect", format!("    mbarrier.arrive.expect_tx.release.cta.shared::cta.b64 _, [%r16], {expect};"))
        }
        Order::SplitExpectTx => {
            e.m("expect", format!("    mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%r16], {expect};"))
        }
        Order::CopiesFirst => {}
    }
    for j in 0..r.copies {
        e.l(format!("    add.u32 %r18, %r17, {};", j * chunk));
        e.l(format!("    add.s64 %rd5, %rd4, {};", j * chunk));
        e.m(
            &format!("copy{j}"),
            format!(
                "    cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%r18], [%rd5], {size}, [%r16];"
            ),
        );
    }
    match r.order {
        Order::ArriveExpectTx => {}
        Order::SplitExpectTx => e.m("arrive", "    mbarrier.arrive.release.cta.shared::cta.b64 _, [%r16];"),
        Order::CopiesFirst => {
            e.m("expect", format!("    mbarrier.arrive.expect_tx.shared::cta.b64 %rd6, [%r16], {expect};"))
        }
    }
    e.l("    add.u32 %r10, %r10, 1;");
    e.l(format!("    setp.lt.u32 %p4, %r10, {};", r.tiles));
    e.l("    @%p4 bra $P_LOOP;");
    e.l("$EXIT:");
    e.l("    ret;");
    // Consumers.
    e.l("$CONSUMER:");
    e.l("    sub.u32 %r20, %r1, 32;");
    e.l(format!("    mov.u32 %r21, {FOLD0};"));
    e.l("    mov.u32 %r10, 0;");
    e.l("$C_LOOP:");
    e.stage_of_tile(st);
    e.l(format!("    mul.lo.u32 %r17, %r11, {tile};"));
    e.l("    add.u32 %r17, %r2, %r17;");
    e.l("    shl.b32 %r22, %r20, 2;");
    e.l("    add.u32 %r26, %r17, %r22;");
    let wait = |e: &mut Emit| {
        e.l("$C_WAIT:");
        e.m("full_wait", "    mbarrier.try_wait.parity.shared::cta.b64 %p3, [%r16], %r13;");
        e.l("    @!%p3 bra $C_WAIT;");
    };
    if r.bad(Bug::WriteBeforeWait) {
        e.m("store", "    st.shared.u32 [%r26], 0;");
    }
    let late_wait = r.bad(Bug::ReadBeforeWait);
    if !late_wait {
        wait(&mut e);
    }
    e.l("    mov.u32 %r23, %r22;");
    e.l("$C_READ:");
    e.l("    add.u32 %r24, %r17, %r23;");
    e.m("read", "    ld.shared.u32 %r25, [%r24];");
    e.l("    mul.lo.u32 %r21, %r21, 16777619;");
    e.l("    xor.b32 %r21, %r21, %r25;");
    e.l(format!("    add.u32 %r23, %r23, {};", r.consumers() * 4));
    e.l(format!("    setp.lt.u32 %p5, %r23, {tile};"));
    e.l("    @%p5 bra $C_READ;");
    if late_wait {
        wait(&mut e);
    }
    if r.bug == Bug::WriteBeforeWait && r.fixed {
        e.m("store", "    st.shared.u32 [%r26], 0;");
    }
    e.m("release", "    mbarrier.arrive.release.cta.shared::cta.b64 _, [%r15];");
    e.l("    add.u32 %r10, %r10, 1;");
    e.l(format!("    setp.lt.u32 %p4, %r10, {};", r.tiles));
    e.l("    @%p4 bra $C_LOOP;");
    e.l("    mul.wide.u32 %rd6, %r20, 4;");
    e.l("    add.s64 %rd7, %rd2, %rd6;");
    e.l("    st.global.u32 [%rd7], %r21;");
    e.l("    ret;");
    e.l("}");
    let mut text = e.lines.join("\n");
    text.push('\n');
    Ptx { text, marks: e.marks }
}

/// Random non-zero source words.
pub fn data(r: &Ring, seed: u64) -> Vec<u32> {
    let mut rng = Rng(seed);
    (0..r.words()).map(|_| (rng.next() >> 32) as u32 | 1).collect()
}

/// The consumers' hashes computed on the host: `blocks * consumers()` words.
pub fn reference(r: &Ring, src: &[u32]) -> Vec<u32> {
    let (tw, nc) = ((r.tile / 4) as usize, r.consumers() as usize);
    let mut out = Vec::new();
    for b in 0..r.blocks as usize {
        let blk = &src[b * r.tiles as usize * tw..];
        for c in 0..nc {
            let mut acc = FOLD0;
            for t in 0..r.tiles as usize {
                for w in (c..tw).step_by(nc) {
                    acc = fold(acc, blk[t * tw + w]);
                }
            }
            out.push(acc);
        }
    }
    out
}

/// The outcome of one run.
pub struct Run {
    /// The launch result.
    pub result: Result<LaunchReport, SimError>,
    /// The output words (meaningful when the launch succeeded).
    pub out: Vec<u32>,
    /// The kernel.
    pub ptx: Ptx,
    /// Device address of the source.
    pub src: u64,
}

/// Builds, uploads `src` and launches `r` on a fresh GPU.
pub fn run(r: &Ring, src: &[u32]) -> Run {
    let ptx = ring_ptx(r);
    let m = module(&ptx.text);
    let mut gpu = Gpu::new();
    let bytes: Vec<u8> = src.iter().flat_map(|x| x.to_le_bytes()).collect();
    let dsrc = gpu.alloc(bytes.len()).unwrap();
    gpu.write(dsrc, &bytes).unwrap();
    let n = (r.blocks * r.consumers()) as usize;
    let dout = gpu.alloc(n * 4).unwrap();
    let result =
        gpu.launch(&m, "ring", [r.blocks, 1, 1], [r.threads(), 1, 1], 0, &[KernelArg::U64(dsrc), KernelArg::U64(dout)]);
    let mut ob = vec![0u8; n * 4];
    gpu.read(dout, &mut ob).unwrap();
    let out = ob.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
    Run { result, out, ptx, src: dsrc }
}

/// Wraps `body` in an sm_90 kernel `k(p0 = src, p1 = out)` with a 512-byte shared
/// `buf` (offset 0) and two mbarriers `bar` (512) and `bar2` (520); the body starts
/// with `%r1` = tid, `%r2` = buf, `%r3` = bar, `%rd1` = src, `%rd2` = out and may end
/// at the label `$DONE`.
pub fn small(body: &str) -> String {
    let regs = ".reg .b64 %rd<16>;\n.reg .b32 %r<32>;\n.reg .pred %p<8>;\n\
                .shared .align 128 .b8 buf[512];\n.shared .align 8 .b64 bar;\n.shared .align 8 .b64 bar2;";
    let pre = "ld.param.u64 %rd1, [p0];\nld.param.u64 %rd2, [p1];\nmov.u32 %r1, %tid.x;\nmov.u32 %r2, buf;\n\
               mov.u32 %r3, bar;\n";
    wrap("k", 2, regs, &format!("{pre}{body}\n$DONE:\nret;")).replace(".target sm_80", ".target sm_90")
}

/// The 1-based line of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> u32 {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("`{needle}` not in the kernel")) as u32 + 1
}
