//! wgmma misuse (PTX ISA 9.7.15.7 "wgmma.fence", "wgmma.commit_group",
//! "wgmma.wait_group"; "fence.proxy" and "Memory consistency model: proxies"): each
//! broken kernel fails with a `Wgmma` hazard naming both sides, and the same kernel
//! with the fix (the instruction moved to where it is legal, or the missing fence
//! present) runs and computes the right D.

mod common;

use common::wgmma::*;
use ptxsim::{Access, Hazard, HazardKind, SimError, WgmmaRule};

/// Runs `c` with `bug`; returns the hazard, after checking that the fixed kernel passes.
fn broken(mut c: WgCase, bug: Bug) -> (Hazard, Ptx) {
    c.bug = bug;
    c.fixed = true;
    let d = data(&c, 42);
    let ok = run(&c, &d);
    ok.result.unwrap_or_else(|e| panic!("fixed kernel for {bug:?} failed: {e}\n{}", ok.ptx.text));
    assert_eq!(ok.d, reference(&c, &d), "fixed kernel for {bug:?} computes a wrong D");
    c.fixed = false;
    let r = run(&c, &d);
    match r.result {
        Err(SimError::Hazard(h)) => (*h, r.ptx),
        Err(e) => panic!("{bug:?}: not a hazard: {e}"),
        Ok(_) => panic!("{bug:?}: kernel passed\n{}", r.ptx.text),
    }
}

fn wgmma_kind(h: &Hazard) -> (WgmmaRule, Option<&str>, Option<&Access>) {
    match &h.kind {
        HazardKind::Wgmma(w) => (w.rule, w.register.as_deref(), w.other.as_ref()),
        k => panic!("not a wgmma hazard: {k:?} ({h})"),
    }
}

/// N = 64, K = 64 in the 128-byte swizzle.
fn base() -> WgCase {
    WgCase::new(64, 4, Layout::Swizzle { bytes: 128 })
}

#[test]
fn accumulator_read_before_wait() {
    let (h, p) = broken(base(), Bug::ReadDBeforeWait);
    let (rule, reg, other) = wgmma_kind(&h);
    assert_eq!(rule, WgmmaRule::RegisterInFlight);
    assert_eq!(reg, Some("%f0"));
    assert_eq!(h.line, p.marks["bad"]);
    let other = other.unwrap();
    assert_eq!(other.line, p.marks["wgmma3"], "{h}");
    assert_eq!((other.warp, other.tid), (0, h.tid));
    assert!(h.to_string().contains("wait_group"), "{h}");
}

#[test]
fn a_register_overwritten_before_wait() {
    let (h, p) = broken(base(), Bug::WriteABeforeWait);
    let (rule, reg, other) = wgmma_kind(&h);
    assert_eq!(rule, WgmmaRule::RegisterInFlight);
    assert_eq!(reg, Some("%a0"));
    assert_eq!(h.line, p.marks["bad"]);
    assert_eq!(other.unwrap().line, p.marks["wgmma0"], "{h}");
}

#[test]
fn missing_wgmma_fence() {
    let (h, p) = broken(base(), Bug::NoWgmmaFence);
    let (rule, _, _) = wgmma_kind(&h);
    assert_eq!(rule, WgmmaRule::MissingFence);
    assert_eq!(h.line, p.marks["wgmma0"]);
}

#[test]
fn wgmma_fence_before_a_is_loaded() {
    let (h, p) = broken(base(), Bug::FenceBeforeALoad);
    let (rule, reg, other) = wgmma_kind(&h);
    assert_eq!(rule, WgmmaRule::MissingFence);
    assert_eq!(reg, Some("%a0"));
    assert_eq!(h.line, p.marks["wgmma0"]);
    let other = other.unwrap();
    assert_eq!(other.line, p.marks["load_a0"], "{h}");
    assert!(other.write);
}

#[test]
fn b_tile_overwritten_while_pending() {
    let (h, p) = broken(base(), Bug::StoreBWhilePending);
    let (rule, _, other) = wgmma_kind(&h);
    assert_eq!(rule, WgmmaRule::SharedOverwritten);
    assert_eq!(h.line, p.marks["bad"]);
    assert_eq!(h.tid, [0, 0, 0]);
    assert_eq!(h.addr, Some(0));
    let other = other.unwrap();
    assert!(p.marks.iter().any(|(k, &l)| k.starts_with("wgmma") && l == other.line), "{h}");
}

#[test]
fn missing_proxy_fence_after_st_shared() {
    let (h, p) = broken(base(), Bug::NoProxyFence);
    let (rule, _, other) = wgmma_kind(&h);
    assert_eq!(rule, WgmmaRule::MissingProxyFence);
    assert_eq!(h.line, p.marks["wgmma0"]);
    let other = other.unwrap();
    assert_eq!(other.line, p.marks["store_b"], "{h}");
    assert!(other.write);
    assert!(h.to_string().contains("fence.proxy.async"), "{h}");
}

#[test]
fn missing_proxy_fence_after_cp_async() {
    let mut c = base();
    c.cp_async = true;
    let (h, p) = broken(c, Bug::NoProxyFence);
    let (rule, _, other) = wgmma_kind(&h);
    assert_eq!(rule, WgmmaRule::MissingProxyFence);
    assert_eq!(h.line, p.marks["wgmma0"]);
    assert_eq!(other.unwrap().line, p.marks["cp_b"], "{h}");
}

// The copy lands at cp.async.wait_group: a proxy fence before it does not cover it.
#[test]
fn proxy_fence_before_cp_async_lands() {
    let mut c = base();
    c.cp_async = true;
    let (h, p) = broken(c, Bug::ProxyFenceBeforeCpWait);
    let (rule, _, other) = wgmma_kind(&h);
    assert_eq!(rule, WgmmaRule::MissingProxyFence);
    assert_eq!(other.unwrap().line, p.marks["cp_b"], "{h}");
}

#[test]
fn misaligned_128b_swizzle_start() {
    let (h, p) = broken(base(), Bug::MisalignedStart);
    let (rule, _, _) = wgmma_kind(&h);
    assert_eq!(rule, WgmmaRule::Descriptor);
    assert_eq!(h.line, p.marks["wgmma0"]);
    assert_eq!(h.addr, Some(128));
    assert!(h.to_string().contains("1024"), "{h}");
}

// Every byte a wgmma reads must lie in the block's shared memory.
#[test]
fn b_tile_past_shared_memory() {
    let (h, p) = broken(base(), Bug::StartPastEnd);
    assert!(matches!(h.kind, HazardKind::OutOfBounds { space: "shared", size: 16 }), "{h}");
    assert_eq!(h.line, p.marks["wgmma0"]);
    assert!(h.addr.unwrap() >= base().region() as u64, "{h}");
}

#[test]
fn pending_at_exit() {
    let (h, p) = broken(base(), Bug::ExitPending);
    let (rule, _, other) = wgmma_kind(&h);
    assert_eq!(rule, WgmmaRule::PendingAtExit);
    assert_eq!(h.line, p.marks["bad"]);
    assert_eq!(other.unwrap().line, p.marks["wgmma0"], "{h}");
}

#[test]
fn wgmma_fence_by_half_a_warp() {
    let (h, p) = broken(base(), Bug::DivergentFence);
    let (rule, _, _) = wgmma_kind(&h);
    assert_eq!(rule, WgmmaRule::NotConverged);
    assert_eq!(h.line, p.marks["bad"]);
}

// Two warpgroups: the hazards are per warp, and the second warpgroup's B is its own.
#[test]
fn two_warpgroups_missing_proxy_fence() {
    let mut c = base();
    c.groups = 2;
    let (h, _) = broken(c, Bug::NoProxyFence);
    assert_eq!(wgmma_kind(&h).0, WgmmaRule::MissingProxyFence);
}

/// Two independent accumulators in two commit groups: `wait_group 1` retires only
/// the older group (PTX ISA 9.7.15.7.3), so reading the newer accumulator before
/// `wait_group 0` is a hazard.
fn two_groups_ptx(read_before_wait0: bool) -> String {
    let early = if read_before_wait0 { "    mov.b32 %r5, %f4;\n" } else { "" };
    let late = if read_before_wait0 { "" } else { "    mov.b32 %r5, %f4;\n" };
    let wg = |d: &str, a: &str| {
        format!("    wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 {d}, {a}, %rd1, 0, 1, 1, 0;\n")
    };
    format!(
        r#".version 8.4
.target sm_90a
.address_size 64
.visible .entry k(.param .u64 out)
{{
    .reg .b32 %r<8>;
    .reg .b32 %a<8>;
    .reg .f32 %f<8>;
    .reg .b64 %rd<4>;
    .shared .align 1024 .b8 sb[256];
    mov.u32 %r0, %tid.x;
    mov.u32 %r1, sb;
    shl.b32 %r2, %r0, 1;
    add.u32 %r3, %r1, %r2;
    st.shared.u16 [%r3], 15360;
    fence.proxy.async;
    bar.sync 0;
    mov.b32 %a0, 1006648320;
    mov.b32 %a1, 1006648320;
    mov.b32 %a2, 1006648320;
    mov.b32 %a3, 1006648320;
    mov.b32 %a4, 1073758208;
    mov.b32 %a5, 1073758208;
    mov.b32 %a6, 1073758208;
    mov.b32 %a7, 1073758208;
    mov.f32 %f0, 0f00000000;
    mov.f32 %f4, 0f00000000;
    cvt.u64.u32 %rd0, %r1;
    shr.u64 %rd0, %rd0, 4;
    or.b64 %rd1, %rd0, {desc};
    wgmma.fence.sync.aligned;
{wg0}    wgmma.commit_group.sync.aligned;
{wg1}    wgmma.commit_group.sync.aligned;
    wgmma.wait_group.sync.aligned 1;
    mov.b32 %r4, %f0;
{early}    wgmma.wait_group.sync.aligned 0;
{late}    ld.param.u64 %rd2, [out];
    mul.wide.u32 %rd3, %r0, 8;
    add.s64 %rd3, %rd2, %rd3;
    st.global.v2.u32 [%rd3], {{%r4, %r5}};
    ret;
}}
"#,
        desc = (128u64 >> 4) << 16 | (256u64 >> 4) << 32,
        wg0 = wg("{%f0, %f1, %f2, %f3}", "{%a0, %a1, %a2, %a3}"),
        wg1 = wg("{%f4, %f5, %f6, %f7}", "{%a4, %a5, %a6, %a7}"),
    )
}

#[test]
fn wait_group_n_retires_only_older_groups() {
    let mut gpu = ptxsim::Gpu::new();
    let out = gpu.alloc(128 * 8).unwrap();
    let ok = common::module(&two_groups_ptx(false));
    gpu.launch(&ok, "k", [1, 1, 1], [128, 1, 1], 0, &[ptxsim::KernelArg::U64(out)]).unwrap();
    // B all ones (16x8); A all ones, then all twos: D elements 16 and 32.
    let d = common::down_f32(&gpu, out, 256);
    assert!(d.chunks(2).all(|v| v == [16.0, 32.0]), "{d:?}");
    let bad = common::module(&two_groups_ptx(true));
    let e = gpu.launch(&bad, "k", [1, 1, 1], [128, 1, 1], 0, &[ptxsim::KernelArg::U64(out)]).unwrap_err();
    let SimError::Hazard(h) = e else { panic!("{e}") };
    let (rule, reg, other) = wgmma_kind(&h);
    assert_eq!((rule, reg), (WgmmaRule::RegisterInFlight, Some("%f4")));
    assert_eq!(other.unwrap().line, h.line - 4, "{h}");
    // A warpgroup needs all 4 warps: a 64-thread block cannot run it.
    let e = gpu.launch(&ok, "k", [1, 1, 1], [64, 1, 1], 0, &[ptxsim::KernelArg::U64(out)]).unwrap_err();
    let SimError::Hazard(h) = e else { panic!("{e}") };
    assert_eq!(wgmma_kind(&h).0, WgmmaRule::NotConverged, "{h}");
}
