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
    launch_with(src, threads, hazards, None)
}

/// `launch` with warps starting at `regs` registers per thread (`None`: unknown, the
/// register pool is not modelled). `out` has one spare word past the threads' words.
fn launch_with(
    src: &str,
    threads: u32,
    hazards: bool,
    regs: Option<u32>,
) -> (Result<ptxsim::LaunchReport, SimError>, Gpu, u64) {
    let mut gpu = Gpu::new();
    gpu.set_hazard_checks(hazards);
    gpu.set_launch_registers(regs);
    let out = gpu.alloc(threads as usize * 4 + 4).unwrap();
    let r = run1(&mut gpu, &module(src), "k", threads, &[KernelArg::U64(out)]);
    (r, gpu, out)
}

/// Runs `src` on `threads` threads; returns the hazard and its setmaxnreg details.
fn broken(src: &str, threads: u32) -> (Hazard, SetMaxNRegRule, Option<Access>) {
    broken_with(src, threads, None)
}

/// `broken` with warps starting at `regs` registers per thread.
fn broken_with(src: &str, threads: u32, regs: Option<u32>) -> (Hazard, SetMaxNRegRule, Option<Access>) {
    match launch_with(src, threads, true, regs).0 {
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

// The register pool (PTX ISA "setmaxnreg"): a block of 384 threads launched with 168
// registers per thread holds 12 x 5376. The producer warpgroup's `.dec 40` releases
// 4 x (5376 - 1280) = 16384, exactly the 8 x (7424 - 5376) that the consumers' `.inc
// 232` takes: the hand-off fits.
const HAND_OFF: &str =
    "setp.eq.u32 %p1, %r3, 2;\n@%p1 bra PRODUCER;\nsetmaxnreg.inc.sync.aligned.u32 232;\nbra DONE;\n\
                        PRODUCER:\nsetmaxnreg.dec.sync.aligned.u32 40;";

#[test]
fn hand_off_that_exactly_fits_the_launch_registers_runs_clean() {
    let src = kernel(HAND_OFF);
    let (r, gpu, out) = launch_with(&src, 384, true, Some(168));
    let report = r.unwrap_or_else(|e| panic!("{e}\n{src}"));
    assert_eq!(down_u32(&gpu, out, 384), (0..384).collect::<Vec<u32>>());
    // The consumers ran first and waited for the producer's registers; waiting is not
    // executing: each warp's setmaxnreg counts once, as without the pool.
    let unpooled = launch(&src, 384, true).0.unwrap();
    assert_eq!(report.warp_instructions, unpooled.warp_instructions);
}

// Launched with 160 registers per thread, the producer releases 4 x (5120 - 1280) =
// 15360 and the consumers need 8 x (7424 - 5120) = 18432: six consumer warps get
// theirs, the last two wait forever once the producer has exited.
#[test]
fn hand_off_larger_than_the_launch_registers_exhausts_the_pool() {
    let src = kernel(HAND_OFF);
    let (h, rule, other) = broken_with(&src, 384, Some(160));
    assert_eq!(rule, SetMaxNRegRule::PoolExhausted, "{h}");
    assert!(other.is_none(), "{h}");
    // Warps run in order: warps 0..5 took 6 x 2304 of the 15360, warp 6 waits.
    assert_eq!((h.tid, h.line), ([192, 0, 0], line_of(&src, "setmaxnreg.inc")), "{h}");
    let text = h.to_string();
    for part in [
        "warp 6 waits at setmaxnreg.inc 232 for 2304 more registers",
        "the block's pool holds 1536",
        "launched with 160 registers per thread (5120 per warp, 61440 in all)",
        "warps 0..5 232 per thread (7424 each, exited)",
        "warps 6..7 160 per thread (5120 each, waiting at setmaxnreg.inc 232)",
        "warps 8..11 40 per thread (1280 each, exited)",
    ] {
        assert!(text.contains(part), "`{part}` not in {text}");
    }
    // Without the launch count the pool is not modelled and the kernel runs (a
    // documented limitation), as it does with hazard checks off.
    for (hazards, regs) in [(true, None), (false, Some(160))] {
        let (r, gpu, out) = launch_with(&src, 384, hazards, regs);
        r.unwrap_or_else(|e| panic!("{e}\n{src}"));
        assert_eq!(down_u32(&gpu, out, 384), (0..384).collect::<Vec<u32>>());
    }
}

// The consumers wait at a barrier after their `.inc`, so when the pool runs dry every
// live thread is blocked: the hang is still the pool's, not the barrier's.
#[test]
fn pool_exhausted_while_the_other_warps_wait_at_a_barrier() {
    let src = kernel(
        "setp.eq.u32 %p1, %r3, 2;\n@%p1 bra PRODUCER;\nsetmaxnreg.inc.sync.aligned.u32 232;\nbra WAIT;\n\
         PRODUCER:\nsetmaxnreg.dec.sync.aligned.u32 40;\nWAIT:\nbar.sync 0;",
    );
    let (h, rule, _) = broken_with(&src, 384, Some(160));
    assert_eq!(rule, SetMaxNRegRule::PoolExhausted, "{h}");
    assert_eq!(h.tid, [192, 0, 0], "{h}");
    assert!(h.to_string().contains("warps 8..11 40 per thread (1280 each)"), "{h}");
    launch_with(&src, 384, true, Some(168)).0.unwrap_or_else(|e| panic!("{e}\n{src}"));
}

// The producer spins on a flag that consumer warp 7 sets after its `.inc`: with 160
// registers per thread warp 7 never gets its registers, and the producer spins forever.
// The launch's deadlock detection finds the block stuck; a warp waiting for registers
// names the hang.
#[test]
fn pool_exhausted_while_the_producer_spins() {
    let src = kernel(
        "ld.param.u64 %rd3, [p0];\nsetp.eq.u32 %p1, %r3, 2;\n@%p1 bra PRODUCER;\n\
         setmaxnreg.inc.sync.aligned.u32 232;\nsetp.ne.u32 %p2, %r2, 7;\n@%p2 bra DONE;\nmov.u32 %r7, 1;\n\
         st.volatile.global.u32 [%rd3+1536], %r7;\nbra DONE;\n\
         PRODUCER:\nsetmaxnreg.dec.sync.aligned.u32 40;\nSPIN:\nld.volatile.global.u32 %r5, [%rd3+1536];\n\
         setp.ne.u32 %p3, %r5, 1;\n@%p3 bra SPIN;",
    );
    let (h, rule, _) = broken_with(&src, 384, Some(160));
    assert_eq!(rule, SetMaxNRegRule::PoolExhausted, "{h}");
    assert_eq!(h.tid, [192, 0, 0], "{h}");
    assert!(h.to_string().contains("warps 8..11 40 per thread (1280 each)"), "{h}");
    launch_with(&src, 384, true, Some(168)).0.unwrap_or_else(|e| panic!("{e}\n{src}"));
    // Unmodelled, the launch count unknown: the kernel runs.
    launch(&src, 384, true).0.unwrap_or_else(|e| panic!("{e}\n{src}"));
}

// The producer works (a loop longer than a scheduling quantum) and publishes a flag
// before its `.dec`; the consumers reach their `.inc` first and must wait for the
// registers it releases, then read the flag (a trap if it is not yet set).
#[test]
fn inc_before_the_dec_that_supplies_it_waits_and_proceeds() {
    let src = kernel(
        "ld.param.u64 %rd3, [p0];\nsetp.eq.u32 %p1, %r3, 2;\n@%p1 bra PRODUCER;\n\
         setmaxnreg.inc.sync.aligned.u32 232;\nld.volatile.global.u32 %r5, [%rd3+1536];\n\
         setp.ne.u32 %p2, %r5, 1;\n@%p2 trap;\nbra DONE;\n\
         PRODUCER:\nmov.u32 %r6, 0;\nWORK:\nadd.u32 %r6, %r6, 1;\nsetp.lt.u32 %p3, %r6, 3000;\n@%p3 bra WORK;\n\
         mov.u32 %r7, 1;\nst.volatile.global.u32 [%rd3+1536], %r7;\nsetmaxnreg.dec.sync.aligned.u32 40;",
    );
    let (r, gpu, out) = launch_with(&src, 384, true, Some(168));
    r.unwrap_or_else(|e| panic!("{e}\n{src}"));
    assert_eq!(down_u32(&gpu, out, 385), (0..384).chain([1]).collect::<Vec<u32>>());
    // Without the pool the consumers run ahead of the producer and trap.
    match launch_with(&src, 384, true, None).0 {
        Err(SimError::Hazard(h)) => assert!(matches!(h.kind, HazardKind::Trap), "{h}"),
        r => panic!("expected the trap: {r:?}"),
    }
}

// With the launch count known, a warp's first setmaxnreg is checked against it:
// `.dec` to 200 or `.inc` to 160 from 168 moves the count the wrong way.
#[test]
fn first_setmaxnreg_in_the_wrong_direction_for_the_launch_count() {
    for op in [".dec.sync.aligned.u32 200", ".inc.sync.aligned.u32 160"] {
        let src = kernel(&format!("setmaxnreg{op};"));
        let (h, rule, other) = broken_with(&src, 128, Some(168));
        assert_eq!(rule, SetMaxNRegRule::WrongDirection, "{h}");
        assert_eq!((h.tid, h.line), ([0, 0, 0], line_of(&src, op)), "{h}");
        assert!(other.is_none(), "{h}");
        assert!(h.to_string().contains("launched with 168 registers per thread"), "{h}");
        // Unknown launch count: the first one passes.
        launch(&src, 128, true).0.unwrap_or_else(|e| panic!("{e}\n{src}"));
    }
    // To the launch count itself is fine either way (no registers move).
    for op in ["dec", "inc"] {
        let src = kernel(&format!("setmaxnreg.{op}.sync.aligned.u32 168;"));
        launch_with(&src, 128, true, Some(168)).0.unwrap_or_else(|e| panic!("{e}\n{src}"));
    }
}

// A launch whose warps cannot all hold the launch count (more than an SM's 64 Ki
// registers) fails, as it does on a GPU.
#[test]
fn launch_registers_beyond_the_register_file_fail_the_launch() {
    let src = kernel("");
    match launch_with(&src, 1024, true, Some(72)).0 {
        Err(SimError::BadLaunch(m)) => assert!(m.contains("72 registers per thread"), "{m}"),
        r => panic!("expected BadLaunch: {r:?}"),
    }
    launch_with(&src, 1024, true, Some(64)).0.unwrap();
}
