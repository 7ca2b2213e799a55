//! A generator of hand-written sm_90a `wgmma` kernels and their host-side data, shared
//! by `semantics_wgmma.rs` and `hazards_wgmma.rs`.
//!
//! Every layout here is transcribed from the PTX ISA text (9.7.15.5.1 "Register
//! Fragments and Shared Memory Matrix Layouts": the `.m64nNk16` fragment figures,
//! the canonical K-major layouts and the matrix descriptor format), written out
//! independently of the simulator's code.

use std::collections::HashMap;

use ptxsim::{Gpu, KernelArg, LaunchReport, Module, SimError};

use super::Rng;

/// Element type of A and B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum El {
    /// `.f16`
    F16,
    /// `.bf16`
    Bf16,
}

/// K-major shared-memory layout of an operand (ISA "Canonical Layouts", T = 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// No swizzle: 8x16-byte core matrices; LBO between core matrices along K, SBO
    /// between groups of 8 rows.
    Interleave { lbo: u32, sbo: u32 },
    /// 32/64/128-byte swizzle: rows of `bytes` bytes, 8-row atoms, SBO = 8 rows.
    Swizzle { bytes: u32 },
}

impl Layout {
    /// Byte offset of element (`row`, `k`) before swizzling, for an operand of
    /// `rows` rows and `kdim` columns.
    fn linear(self, rows: u32, row: u32, k: u32) -> u32 {
        match self {
            // ((8,m),(T,2k)):((1T,SBO),(1,LBO)) in 16-bit elements.
            Layout::Interleave { lbo, sbo } => (row / 8) * sbo + (k / 8) * lbo + (row % 8) * 16 + (k % 8) * 2,
            // ((8,m),(T,2k)):((sT,SBO),(1,T)); K beyond one swizzled row continues in
            // the next block of atoms (a separate descriptor start per k16 step).
            Layout::Swizzle { bytes } => {
                let kw = bytes / 2;
                let atoms = (rows / 8) * 8 * bytes;
                (k / kw) * atoms + (row / 8) * (8 * bytes) + (row % 8) * bytes + 2 * (k % kw)
            }
        }
    }

    /// Byte offset of element (`row`, `k`) in the operand image.
    pub fn addr(self, rows: u32, row: u32, k: u32) -> u32 {
        let lin = self.linear(rows, row, k);
        match self {
            Layout::Interleave { .. } => lin,
            // Swizzle<b,4,3>: the 16-byte unit (bits 4..4+b) XOR the row inside the
            // repeating 8-row pattern (bits 7..7+b).
            Layout::Swizzle { bytes } => {
                let mask = bytes / 16 - 1;
                lin ^ (((lin >> 7) & mask) << 4)
            }
        }
    }

    /// Descriptor start offset of k16 step `s` (K offsets inside a swizzled row).
    pub fn step_start(self, rows: u32, s: u32) -> u32 {
        self.linear(rows, 0, 16 * s)
    }

    /// Descriptor bits 16..64 (LBO, SBO, swizzle mode): the start is or-ed in.
    pub fn desc_bits(self) -> u64 {
        let (lbo, sbo, mode) = match self {
            Layout::Interleave { lbo, sbo } => ((lbo >> 4) as u64, (sbo >> 4) as u64, 0u64),
            Layout::Swizzle { bytes } => {
                // LBO is unused for swizzled K-major layouts ("assumed to be 1").
                let mode = match bytes {
                    128 => 1,
                    64 => 2,
                    _ => 3,
                };
                (1, ((8 * bytes) >> 4) as u64, mode)
            }
        };
        lbo << 16 | sbo << 32 | mode << 62
    }
}

/// (row, k) of element `j` of A register `r` held by `lane` of warp `w` of the
/// warpgroup (ISA Figure "WGMMA .m64nNk16 register fragment layout for matrix A").
pub fn a_pos(w: u32, lane: u32, r: u32, j: u32) -> (u32, u32) {
    let (g, t) = (lane / 4, lane % 4);
    match r {
        0 => (16 * w + g, 2 * t + j),
        1 => (16 * w + g + 8, 2 * t + j),
        2 => (16 * w + g, 2 * t + 8 + j),
        _ => (16 * w + g + 8, 2 * t + 8 + j),
    }
}

/// (row, col) of accumulator register `i` of `lane` of warp `w` (ISA Figure "WGMMA
/// .m64nNk16 register fragment layout for accumulator matrix D": the 8-column pattern
/// of d0..d3 repeats every 8 columns).
pub fn d_pos(w: u32, lane: u32, i: u32) -> (u32, u32) {
    let (g, t, j) = (lane / 4, lane % 4, i / 4);
    match i % 4 {
        0 => (16 * w + g, 8 * j + 2 * t),
        1 => (16 * w + g, 8 * j + 2 * t + 1),
        2 => (16 * w + g + 8, 8 * j + 2 * t),
        _ => (16 * w + g + 8, 8 * j + 2 * t + 1),
    }
}

/// A misuse injected into the generated kernel; with `fixed` the same instruction is
/// emitted where it is legal instead (or the missing fence is present).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// Correct kernel.
    None,
    /// `mov.b32 %r21, %f0` (reads D) between commit and wait.
    ReadDBeforeWait,
    /// `mov.b32 %a0, 0` (writes A) between commit and wait.
    WriteABeforeWait,
    /// No `wgmma.fence` at all.
    NoWgmmaFence,
    /// `wgmma.fence` before the A registers are loaded.
    FenceBeforeALoad,
    /// `st.shared.u32` into the B tile between commit and wait.
    StoreBWhilePending,
    /// No `fence.proxy.async` after the `st.shared` copy of B.
    NoProxyFence,
    /// `fence.proxy.async` before `cp.async.wait_group` has landed the copy (cp.async
    /// kernels; with `fixed`, after it).
    ProxyFenceBeforeCpWait,
    /// B descriptor start 128 bytes into a 128B-swizzle pattern.
    MisalignedStart,
    /// B descriptor start one region further: past the block's shared memory.
    StartPastEnd,
    /// `ret` between commit and wait.
    ExitPending,
    /// `wgmma.fence` executed by half of the warp only.
    DivergentFence,
}

/// One generated kernel and its data.
#[derive(Clone, Debug)]
pub struct WgCase {
    /// N.
    pub n: u32,
    /// k16 steps (K = 16 * ksteps).
    pub ksteps: u32,
    /// Layout of B (and of A in the descriptor form).
    pub layout: Layout,
    /// Element type.
    pub el: El,
    /// `imm-scale-a` = -1.
    pub neg_a: bool,
    /// A from shared memory through a descriptor (SS form).
    pub ss: bool,
    /// Warpgroups (128 threads each), each with its own A, B and C.
    pub groups: u32,
    /// Commit the first half of the steps as their own group, then `wait_group 1`.
    pub split_commit: bool,
    /// scale-d of the first step (later steps accumulate).
    pub scale_d: bool,
    /// Copy B to shared memory with cp.async instead of ld/st.
    pub cp_async: bool,
    /// Copy the shared images with one `cp.async.bulk` completing on an mbarrier that
    /// every thread waits on, and no `fence.proxy.async` (9.7.9.25.2: the copy's
    /// result is visible to both proxies once its completion is observed).
    pub bulk: bool,
    /// Injected misuse.
    pub bug: Bug,
    /// Emit the bug's instruction in its legal place instead.
    pub fixed: bool,
    /// Hazard checks on.
    pub hazards: bool,
}

impl WgCase {
    /// A correct 128-thread f16 case.
    pub fn new(n: u32, ksteps: u32, layout: Layout) -> WgCase {
        WgCase {
            n,
            ksteps,
            layout,
            el: El::F16,
            neg_a: false,
            ss: false,
            groups: 1,
            split_commit: false,
            scale_d: true,
            cp_async: false,
            bulk: false,
            bug: Bug::None,
            fixed: false,
            hazards: true,
        }
    }

    fn k(&self) -> u32 {
        16 * self.ksteps
    }

    fn img_b(&self) -> u32 {
        self.n * self.k() * 2
    }

    fn img_a(&self) -> u32 {
        if self.ss {
            64 * self.k() * 2
        } else {
            0
        }
    }

    /// Shared bytes per warpgroup: B image, then (SS form) A image.
    pub fn region(&self) -> u32 {
        (self.img_b() + self.img_a()).div_ceil(1024) * 1024
    }
}

/// PTX text plus the line numbers of marked instructions.
pub struct Ptx {
    /// The module text.
    pub text: String,
    /// Marked lines (`wgmma0`, `bad`, `store_b`, `cp_b`, `proxy_fence`, ...).
    pub marks: HashMap<String, u32>,
}

struct Gen {
    out: String,
    line: u32,
    marks: HashMap<String, u32>,
}

impl Gen {
    fn l(&mut self, s: impl AsRef<str>) {
        self.out += s.as_ref();
        self.out += "\n";
        self.line += 1;
    }
    fn mark(&mut self, name: &str, s: impl AsRef<str>) {
        self.marks.insert(name.to_string(), self.line + 1);
        self.l(s);
    }
}

fn list(prefix: &str, from: u32, n: u32) -> String {
    let v: Vec<String> = (from..from + n).map(|i| format!("{prefix}{i}")).collect();
    format!("{{{}}}", v.join(", "))
}

/// Generates the kernel `wg(pa, pb, pd, pscale, pbytes)`: copy the operand images
/// (B, and A for the SS form) from `pb` into shared memory, `fence.proxy.async`,
/// `bar.sync`; load the A fragments (register form) from `pa` and C from `pd`; build
/// the descriptors; `wgmma.fence`; one `wgmma.mma_async` per k16 step; commit; wait;
/// store D to `pd`.
pub fn ptx(c: &WgCase) -> Ptx {
    let mut g = Gen { out: String::new(), line: 0, marks: HashMap::new() };
    let (n, s_n, ty) = (c.n, c.ksteps, if c.el == El::F16 { "f16" } else { "bf16" });
    let nd = n / 2;
    let bug = |b: Bug| c.bug == b && !c.fixed;
    let fixed = |b: Bug| c.bug == b && c.fixed;
    for s in [".version 8.3", ".target sm_90a", ".address_size 64", "", ".extern .shared .align 1024 .b8 smem[];", ""] {
        g.l(s);
    }
    g.l(".visible .entry wg(");
    g.l("    .param .u64 pa,");
    g.l("    .param .u64 pb,");
    g.l("    .param .u64 pd,");
    g.l("    .param .u32 pscale,");
    g.l("    .param .u32 pbytes");
    g.l(")");
    g.l("{");
    g.l("    .reg .pred %p<4>;");
    g.l("    .reg .b32 %r<32>;");
    g.l("    .reg .b32 %a<16>;");
    g.l("    .reg .f32 %f<128>;");
    g.l("    .reg .b64 %rd<40>;");
    if c.bulk {
        g.l("    .shared .align 8 .b64 wgbar;");
    }
    g.l("    mov.u32 %r0, %tid.x;");
    g.l("    mov.u32 %r4, smem;");
    g.l("    ld.param.u64 %rd1, [pb];");
    g.l("    ld.param.u32 %r1, [pbytes];");
    g.l("    mov.u32 %r2, %ntid.x;");
    g.l("    shl.b32 %r10, %r2, 4;");
    g.l("    shl.b32 %r3, %r0, 4;");
    if c.bulk {
        g.l("    setp.ne.u32 %p0, %r0, 0;");
        g.l("    @%p0 bra $Lbulk;");
        g.l("    mbarrier.init.shared::cta.b64 [wgbar], 1;");
        g.l("    mbarrier.arrive.expect_tx.shared::cta.b64 _, [wgbar], %r1;");
        g.mark(
            "bulk_b",
            "    cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%r4], [%rd1], %r1, [wgbar];",
        );
        g.l("$Lbulk:");
        g.l("    bar.sync 0;");
        g.l("$Lbulk_wait:");
        g.l("    mbarrier.try_wait.parity.shared::cta.b64 %p0, [wgbar], 0;");
        g.l("    @!%p0 bra $Lbulk_wait;");
        // The element-wise copy below then copies nothing.
        g.l("    mov.u32 %r1, 0;");
    }
    g.l("$Lcopy:");
    g.l("    setp.ge.u32 %p0, %r3, %r1;");
    g.l("    @%p0 bra $Ldone;");
    g.l("    cvt.u64.u32 %rd2, %r3;");
    g.l("    add.s64 %rd3, %rd1, %rd2;");
    g.l("    add.u32 %r9, %r4, %r3;");
    if c.cp_async {
        g.mark("cp_b", "    cp.async.cg.shared.global [%r9], [%rd3], 16;");
    } else {
        g.l("    ld.global.v4.u32 {%r5, %r6, %r7, %r8}, [%rd3];");
        g.mark("store_b", "    st.shared.v4.u32 [%r9], {%r5, %r6, %r7, %r8};");
    }
    g.l("    add.u32 %r3, %r3, %r10;");
    g.l("    bra $Lcopy;");
    g.l("$Ldone:");
    if c.cp_async {
        g.l("    cp.async.commit_group;");
        if bug(Bug::ProxyFenceBeforeCpWait) {
            g.mark("proxy_fence", "    fence.proxy.async.shared::cta;");
        }
        g.mark("cp_wait", "    cp.async.wait_group 0;");
    }
    if !c.bulk && !bug(Bug::NoProxyFence) && !bug(Bug::ProxyFenceBeforeCpWait) {
        g.mark("proxy_fence", "    fence.proxy.async.shared::cta;");
    }
    // Proxy fences for global memory only do not count for shared memory.
    g.l("    fence.proxy.async.global;");
    g.l("    bar.sync 0;");
    if bug(Bug::FenceBeforeALoad) {
        g.mark("wg_fence", "    wgmma.fence.sync.aligned;");
    }
    if !c.ss {
        g.l("    ld.param.u64 %rd4, [pa];");
        g.l(format!("    mul.wide.u32 %rd5, %r0, {};", 16 * s_n));
        g.l("    add.s64 %rd6, %rd4, %rd5;");
        for s in 0..s_n {
            g.mark(&format!("load_a{s}"), format!("    ld.global.v4.u32 {}, [%rd6+{}];", list("%a", 4 * s, 4), 16 * s));
        }
    }
    g.l("    ld.param.u64 %rd7, [pd];");
    g.l(format!("    mul.wide.u32 %rd8, %r0, {};", 2 * n));
    g.l("    add.s64 %rd9, %rd7, %rd8;");
    for i in 0..nd / 4 {
        g.l(format!("    ld.global.v4.f32 {}, [%rd9+{}];", list("%f", 4 * i, 4), 16 * i));
    }
    // Descriptors: start = (smem + group * region) encoded, or-ed with LBO/SBO/mode.
    g.l("    shr.u32 %r11, %r0, 7;");
    g.l(format!("    mul.lo.u32 %r12, %r11, {};", c.region()));
    g.l("    add.u32 %r13, %r4, %r12;");
    g.l("    and.b32 %r14, %r13, 262143;");
    g.l("    shr.u32 %r15, %r14, 4;");
    g.l("    cvt.u64.u32 %rd10, %r15;");
    if bug(Bug::MisalignedStart) {
        g.l("    add.s64 %rd10, %rd10, 8;");
    }
    if bug(Bug::StartPastEnd) {
        g.l(format!("    add.s64 %rd10, %rd10, {};", c.region() >> 4));
    }
    g.l(format!("    or.b64 %rd11, %rd10, {};", c.layout.desc_bits()));
    for s in 0..s_n {
        g.l(format!("    add.s64 %rd{}, %rd11, {};", 14 + s, c.layout.step_start(n, s) >> 4));
    }
    if c.ss {
        g.l(format!("    add.u32 %r16, %r13, {};", c.img_b()));
        g.l("    and.b32 %r17, %r16, 262143;");
        g.l("    shr.u32 %r18, %r17, 4;");
        g.l("    cvt.u64.u32 %rd12, %r18;");
        g.l(format!("    or.b64 %rd13, %rd12, {};", c.layout.desc_bits()));
        for s in 0..s_n {
            g.l(format!("    add.s64 %rd{}, %rd13, {};", 24 + s, c.layout.step_start(64, s) >> 4));
        }
    }
    g.l("    ld.param.u32 %r20, [pscale];");
    if bug(Bug::DivergentFence) {
        g.l("    and.b32 %r22, %r0, 31;");
        g.l("    setp.lt.u32 %p1, %r22, 16;");
        g.mark("bad", "    @%p1 wgmma.fence.sync.aligned;");
    } else if !bug(Bug::NoWgmmaFence) && !bug(Bug::FenceBeforeALoad) {
        g.mark("wg_fence", "    wgmma.fence.sync.aligned;");
    }
    let dl = list("%f", 0, nd);
    let sa = if c.neg_a { "-1" } else { "1" };
    for s in 0..s_n {
        let sd = if s == 0 { "p" } else { "1" };
        let a = if c.ss { format!("%rd{}", 24 + s) } else { list("%a", 4 * s, 4) };
        let tail = if c.ss { "0, 0" } else { "0" };
        let op = format!(
            "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{ty}.{ty} {dl}, {a}, %rd{}, {sd}, {sa}, 1, {tail};",
            14 + s
        );
        if s == 0 {
            // scale-d from a register, as nvcc emits it for inline asm.
            g.l("    {");
            g.l("    .reg .pred p;");
            g.l("    setp.ne.b32 p, %r20, 0;");
            g.mark("wgmma0", format!("    {op}"));
            g.l("    }");
        } else {
            g.mark(&format!("wgmma{s}"), format!("    {op}"));
        }
        if c.split_commit && s + 1 == s_n / 2 {
            g.l("    wgmma.commit_group.sync.aligned;");
        }
    }
    g.l("    wgmma.commit_group.sync.aligned;");
    if bug(Bug::ReadDBeforeWait) {
        g.mark("bad", "    mov.b32 %r21, %f0;");
    }
    if bug(Bug::WriteABeforeWait) {
        g.mark("bad", "    mov.b32 %a0, 0;");
    }
    if bug(Bug::StoreBWhilePending) {
        g.l("    setp.eq.u32 %p2, %r0, 0;");
        g.mark("bad", "    @%p2 st.shared.u32 [%r13], %r0;");
    }
    if bug(Bug::ExitPending) {
        g.mark("bad", "    ret;");
    }
    if c.split_commit {
        g.mark("wait1", "    wgmma.wait_group.sync.aligned 1;");
    }
    g.mark("wait", "    wgmma.wait_group.sync.aligned 0;");
    if fixed(Bug::ReadDBeforeWait) {
        g.l("    mov.b32 %r21, %f0;");
    }
    if fixed(Bug::WriteABeforeWait) {
        g.l("    mov.b32 %a0, 0;");
    }
    if fixed(Bug::StoreBWhilePending) {
        g.l("    bar.sync 0;");
        g.l("    setp.eq.u32 %p2, %r0, 0;");
        g.l("    @%p2 st.shared.u32 [%r13], %r0;");
    }
    for i in 0..nd / 4 {
        g.l(format!("    st.global.v4.f32 [%rd9+{}], {};", 16 * i, list("%f", 4 * i, 4)));
    }
    g.l("    ret;");
    g.l("}");
    Ptx { text: g.out, marks: g.marks }
}

/// Random A/B element codes: sign, exponent -1 or 0, random fraction (never zero).
fn rand_el(rng: &mut Rng, el: El) -> u16 {
    let sign = (rng.next() & 1) as u16;
    let e = (rng.next() & 1) as u16;
    match el {
        El::F16 => sign << 15 | (14 + e) << 10 | (rng.next() & 0x3ff) as u16,
        El::Bf16 => sign << 15 | (126 + e) << 7 | (rng.next() & 0x7f) as u16,
    }
}

fn val(el: El, code: u16) -> f64 {
    match el {
        El::F16 => half::f16::from_bits(code).to_f64(),
        El::Bf16 => half::bf16::from_bits(code).to_f64(),
    }
}

/// Host data of a case: per warpgroup A (64 x K), B (K x N), C (64 x N).
pub struct Data {
    /// `a[g][row * K + k]`
    pub a: Vec<Vec<u16>>,
    /// `b[g][k * N + n]`
    pub b: Vec<Vec<u16>>,
    /// `c[g][row * N + col]`
    pub c: Vec<Vec<f32>>,
}

/// Random data for a case.
pub fn data(c: &WgCase, seed: u64) -> Data {
    let mut rng = Rng(seed);
    let k = c.k();
    let mut d = Data { a: Vec::new(), b: Vec::new(), c: Vec::new() };
    for _ in 0..c.groups {
        d.a.push((0..64 * k).map(|_| rand_el(&mut rng, c.el)).collect());
        d.b.push((0..k * c.n).map(|_| rand_el(&mut rng, c.el)).collect());
        d.c.push(
            (0..64 * c.n)
                .map(|_| {
                    let v = rng.range(1, 1 << 20) as f32 / (1 << 18) as f32;
                    if rng.next() & 1 == 0 {
                        v
                    } else {
                        -v
                    }
                })
                .collect(),
        );
    }
    d
}

/// Reference D: per k16 step the exact f64 sum of the step's products and the
/// accumulator, rounded to f32 (one rounding per wgmma.mma_async).
pub fn reference(c: &WgCase, d: &Data) -> Vec<Vec<f32>> {
    let k = c.k();
    let sa = if c.neg_a { -1.0 } else { 1.0 };
    (0..c.groups as usize)
        .map(|g| {
            let mut out = vec![0f32; 64 * c.n as usize];
            for row in 0..64u32 {
                for col in 0..c.n {
                    let mut acc = if c.scale_d { d.c[g][(row * c.n + col) as usize] } else { 0.0 };
                    for s in 0..c.ksteps {
                        let mut sum = acc as f64;
                        for kk in 16 * s..16 * s + 16 {
                            sum += sa
                                * val(c.el, d.a[g][(row * k + kk) as usize])
                                * val(c.el, d.b[g][(kk * c.n + col) as usize]);
                        }
                        acc = sum as f32;
                    }
                    out[(row * c.n + col) as usize] = acc;
                }
            }
            out
        })
        .collect()
}

/// Result of a run: the launch outcome and D per warpgroup (row-major 64 x N).
pub struct Run {
    /// The launch result.
    pub result: Result<LaunchReport, SimError>,
    /// D read back (meaningful when the launch succeeded).
    pub d: Vec<Vec<f32>>,
    /// The generated PTX.
    pub ptx: Ptx,
}

/// Generates, uploads and launches a case.
pub fn run(c: &WgCase, d: &Data) -> Run {
    let p = ptx(c);
    let m = Module::from_ptx(&p.text).unwrap_or_else(|e| panic!("{e}\n{}", p.text));
    let mut gpu = Gpu::new();
    gpu.set_hazard_checks(c.hazards);
    let (k, n, nd) = (c.k(), c.n, c.n / 2);
    let threads = 128 * c.groups;
    // Shared images: per warpgroup region, B then A, in the layout under test.
    let region = c.region();
    let mut img = vec![0u8; (region * c.groups) as usize];
    for g in 0..c.groups as usize {
        let base = g * region as usize;
        for kk in 0..k {
            for col in 0..n {
                let o = base + c.layout.addr(n, col, kk) as usize;
                img[o..o + 2].copy_from_slice(&d.b[g][(kk * n + col) as usize].to_le_bytes());
            }
        }
        if c.ss {
            for row in 0..64 {
                for kk in 0..k {
                    let o = base + c.img_b() as usize + c.layout.addr(64, row, kk) as usize;
                    img[o..o + 2].copy_from_slice(&d.a[g][(row * k + kk) as usize].to_le_bytes());
                }
            }
        }
    }
    // A fragments per thread: step s, register r (f16x2, low half = lower k).
    let mut afr = Vec::new();
    let mut cin = Vec::new();
    for tid in 0..threads {
        let (g, w, lane) = ((tid / 128) as usize, (tid % 128) / 32, tid % 32);
        for s in 0..c.ksteps {
            for r in 0..4 {
                let (row, kk) = a_pos(w, lane, r, 0);
                let at = |j: u32| d.a[g][(row * k + 16 * s + kk + j) as usize] as u32;
                afr.push(at(0) | at(1) << 16);
            }
        }
        for i in 0..nd {
            let (row, col) = d_pos(w, lane, i);
            cin.push(d.c[g][(row * n + col) as usize]);
        }
    }
    let pa = up_u32(&mut gpu, &afr);
    let pb = gpu.alloc(img.len()).unwrap();
    gpu.write(pb, &img).unwrap();
    let pd = up_f32(&mut gpu, &cin);
    let args = [
        KernelArg::U64(pa),
        KernelArg::U64(pb),
        KernelArg::U64(pd),
        KernelArg::U32(c.scale_d as u32),
        KernelArg::U32(img.len() as u32),
    ];
    let result = gpu.launch(&m, "wg", [1, 1, 1], [threads, 1, 1], img.len() as u32, &args);
    let raw = down_f32(&gpu, pd, (threads * nd) as usize);
    let mut out = vec![vec![0f32; (64 * n) as usize]; c.groups as usize];
    for tid in 0..threads {
        let (g, w, lane) = ((tid / 128) as usize, (tid % 128) / 32, tid % 32);
        for i in 0..nd {
            let (row, col) = d_pos(w, lane, i);
            out[g][(row * n + col) as usize] = raw[(tid * nd + i) as usize];
        }
    }
    Run { result, d: out, ptx: p }
}

use super::{down_f32, up_f32, up_u32};
