//! setmaxnreg misuse (PTX ISA "setmaxnreg", sm_90a): each broken kernel fails with a
//! `SetMaxNReg` hazard of the broken rule, naming the other warp or the earlier
//! setmaxnreg where there is one; a correct warp-specialized hand-off runs clean.

mod common;

use common::*;
use ptxsim::{Access, Gpu, Hazard, HazardKind, KernelArg, SetMaxNRegRule, SimError};

/// A one-parameter sm_90a kernel `k`; `out[tid] = tid` after `body` (which may branch
/// to `DONE`).
fn kernel(body: &str) -> String {
    let body = format!(
        "mov.u32 %r1, %tid.x;\nshr.u32 %r2, %r1, 5;\nshr.u32 %r3, %r1, 7;\nmov.u32 %r4, %laneid;\n\
         {body}\nDONE:\nld.param.u64 %rd1, [p0];\nmul.wide.u32 %rd2, %r1, 4;\nadd.u64 %rd1, %rd1, %rd2;\n\
         st.global.u32 [%rd1], %r1;\nret;"
    );
    wrap("k", 1, ".reg .b64 %rd<4>;\n.reg .b32 %r<8>;\n.reg .pred %p<4>;", &body)
        .replace(".target sm_80", ".target sm_90a")
}

/// The 1-based line of the (only) line of `src` containing `needle`.
fn line_of(src: &str, needle: &str) -> u32 {
    let mut hits = src.lines().enumerate().filter(|(_, l)| l.contains(needle));
    let (i, _) = hits.next().unwrap_or_else(|| panic!("`{needle}` not in\n{src}"));
    assert!(hits.next().is_none(), "`{needle}` twice in\n{src}");
    i as u32 + 1
}

/// Launches `src` on one block of `threads` threads with hazard checks on or off.
fn launch(src: &str, threads: u32, hazards: bool) -> (Result<ptxsim::LaunchReport, SimError>, Gpu, u64) {
    let mut gpu = Gpu::new();
    gpu.set_hazard_checks(hazards);
    let out = gpu.alloc(threads as usize * 4).unwrap();
    let r = run1(&mut gpu, &module(src), "k", threads, &[KernelArg::U64(out)]);
    (r, gpu, out)
}

/// Runs `src` on `threads` threads; returns the hazard and its setmaxnreg details.
fn broken(src: &str, threads: u32) -> (Hazard, SetMaxNRegRule, Option<Access>) {
    match launch(src, threads, true).0 {
        Err(SimError::Hazard(h)) => match &h.kind {
            HazardKind::SetMaxNReg(m) => {
                let (rule, other) = (m.rule, m.other.clone());
                assert!(h.to_string().contains("setmaxnreg hazard"), "{h}");
                (*h, rule, other)
            }
            k => panic!("not a setmaxnreg hazard: {k:?} ({h})"),
        },
        Err(e) => panic!("not a hazard: {e}\n{src}"),
        Ok(_) => panic!("kernel passed\n{src}"),
    }
}

// Three warpgroups: 0 and 1 (consumers) raise their maximum to 232, 2 (producer)
// lowers it to 40; every warp of each warpgroup executes the same one.
#[test]
fn warp_specialized_hand_off_runs_clean() {
    let src = kernel(
        "setp.eq.u32 %p1, %r3, 2;\n@%p1 bra PRODUCER;\nsetmaxnreg.inc.sync.aligned.u32 232;\nbra DONE;\n\
         PRODUCER:\nsetmaxnreg.dec.sync.aligned.u32 40;",
    );
    let (r, gpu, out) = launch(&src, 384, true);
    r.unwrap_or_else(|e| panic!("{e}\n{src}"));
    assert_eq!(down_u32(&gpu, out, 384), (0..384).collect::<Vec<u32>>());
}

// Half the lanes of each warp predicated off.
#[test]
fn setmaxnreg_by_half_the_lanes() {
    let src = kernel("setp.lt.u32 %p1, %r4, 16;\n@%p1 setmaxnreg.inc.sync.aligned.u32 232;");
    let (h, rule, other) = broken(&src, 128);
    assert_eq!(rule, SetMaxNRegRule::NotConverged, "{h}");
    assert_eq!(h.line, line_of(&src, "setmaxnreg.inc"));
    assert_eq!(h.tid, [0, 0, 0]);
    assert!(other.is_none());
    assert!(h.to_string().contains("0x0000ffff"), "{h}");
    // Without hazard checks the kernel runs (the instruction has no effect on values).
    let (r, gpu, out) = launch(&src, 128, false);
    r.unwrap();
    assert_eq!(down_u32(&gpu, out, 128), (0..128).collect::<Vec<u32>>());
}

// 96 threads: warps 0..2 of a warpgroup whose warp 3 does not exist.
#[test]
fn setmaxnreg_in_an_incomplete_warpgroup() {
    let src = kernel("setmaxnreg.dec.sync.aligned.u32 40;");
    let (h, rule, other) = broken(&src, 96);
    assert_eq!(rule, SetMaxNRegRule::NotConverged, "{h}");
    assert_eq!(h.line, line_of(&src, "setmaxnreg.dec"));
    assert!(other.is_none());
    assert!(h.to_string().contains("block of 96 threads"), "{h}");
    // The full warpgroup runs clean.
    launch(&src, 128, true).0.unwrap();
}

// Warp 1 asks for 240 registers, warps 0, 2 and 3 for 232.
#[test]
fn warps_of_a_warpgroup_with_different_counts() {
    let src = kernel(
        "setp.eq.u32 %p1, %r2, 1;\n@%p1 bra ODD;\nsetmaxnreg.inc.sync.aligned.u32 232;\nbra DONE;\n\
         ODD:\nsetmaxnreg.inc.sync.aligned.u32 240;",
    );
    let (h, rule, other) = broken(&src, 128);
    assert_eq!(rule, SetMaxNRegRule::WarpgroupMismatch, "{h}");
    // Warp 0 runs first: the later one, warp 1's, is the faulting side.
    assert_eq!(h.line, line_of(&src, "u32 240"));
    assert_eq!(h.tid, [32, 0, 0]);
    let other = other.unwrap();
    assert_eq!((other.warp, other.tid, other.line), (0, [0, 0, 0], line_of(&src, "u32 232")), "{h}");
    let text = h.to_string();
    assert!(text.contains("is setmaxnreg.inc 240") && text.contains("was setmaxnreg.inc 232"), "{text}");
}

// Warp 3 branches around the warpgroup's setmaxnreg.
#[test]
fn warp_of_a_warpgroup_skips_setmaxnreg() {
    let src = kernel("setp.eq.u32 %p1, %r2, 3;\n@%p1 bra DONE;\nsetmaxnreg.dec.sync.aligned.u32 56;");
    let (h, rule, other) = broken(&src, 128);
    assert_eq!(rule, SetMaxNRegRule::WarpgroupMissing, "{h}");
    // Reported for the warp that skipped it, at the setmaxnreg it skipped.
    assert_eq!(h.tid, [96, 0, 0]);
    assert_eq!(h.line, line_of(&src, "setmaxnreg.dec"));
    let other = other.unwrap();
    assert_eq!((other.warp, other.line), (0, line_of(&src, "setmaxnreg.dec")), "{h}");
    assert!(h.to_string().contains("warp 3 exited after 0 setmaxnreg"), "{h}");
    // A second warpgroup that skips it altogether is fine.
    let src = kernel("setp.eq.u32 %p1, %r3, 1;\n@%p1 bra DONE;\nsetmaxnreg.dec.sync.aligned.u32 56;");
    launch(&src, 256, true).0.unwrap_or_else(|e| panic!("{e}\n{src}"));
}

// `.inc` may not lower the warp's maximum, nor `.dec` raise it: `.inc` to 32 after
// `.dec` to 40, and `.dec` to 240 after `.inc` to 232, each reported at the second
// instruction with the first as the other side.
#[test]
fn setmaxnreg_in_the_wrong_direction_for_the_previous_count() {
    for (first, second) in [
        (".dec.sync.aligned.u32 40", ".inc.sync.aligned.u32 32"),
        (".inc.sync.aligned.u32 232", ".dec.sync.aligned.u32 240"),
    ] {
        let src = kernel(&format!("setmaxnreg{first};\nsetmaxnreg{second};"));
        let (h, rule, other) = broken(&src, 128);
        assert_eq!(rule, SetMaxNRegRule::WrongDirection, "{h}");
        assert_eq!((h.tid, h.line), ([0, 0, 0], line_of(&src, second)), "{h}");
        let other = other.unwrap();
        assert_eq!((other.warp, other.line), (0, line_of(&src, first)), "{h}");
    }
    // Raising it again is fine, and so is an `.inc` to the same count.
    for second in ["232", "40"] {
        let ok = kernel(&format!("setmaxnreg.dec.sync.aligned.u32 40;\nsetmaxnreg.inc.sync.aligned.u32 {second};"));
        launch(&ok, 128, true).0.unwrap_or_else(|e| panic!("{e}\n{ok}"));
    }
}

// 160 threads: warpgroup 0 complete, warp 4 alone in an incomplete warpgroup. The
// complete one may hand registers around while warp 4 stays out of it; warp 4 may not
// execute setmaxnreg.
#[test]
fn setmaxnreg_in_a_block_ending_in_a_partial_warpgroup() {
    let ok = kernel("setp.eq.u32 %p1, %r2, 4;\n@%p1 bra DONE;\nsetmaxnreg.inc.sync.aligned.u32 232;");
    launch(&ok, 160, true).0.unwrap_or_else(|e| panic!("{e}\n{ok}"));
    let src = kernel("setp.ne.u32 %p1, %r2, 4;\n@%p1 bra DONE;\nsetmaxnreg.inc.sync.aligned.u32 232;");
    let (h, rule, _) = broken(&src, 160);
    assert_eq!(rule, SetMaxNRegRule::NotConverged, "{h}");
    assert_eq!(h.tid, [128, 0, 0], "{h}");
}
