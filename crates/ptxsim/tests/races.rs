//! The shared-memory race model: what orders two accesses (block barrier, warp sync
//! within a warp, atomics among themselves) and what does not.

mod common;
use common::*;
use ptxsim::{Gpu, HazardKind, KernelArg, SimError};

/// Runs `body` with `%r1` = tid, `%r7` = shared base, `%r8` = tid*4 + base,
/// `%rd1` = out, on `threads` threads; returns the hazard kind if any.
fn run(body: &str, threads: u32) -> Option<HazardKind> {
    let regs = ".reg .b64 %rd<4>;\n.reg .b32 %r<16>;\n.reg .pred %p<4>;\n.shared .align 16 .b8 sm[4096];";
    let pre = "ld.param.u64 %rd1, [p0];\nmov.u32 %r1, %tid.x;\nmov.u32 %r7, sm;\nshl.b32 %r2, %r1, 2;\nadd.u32 %r8, %r7, %r2;\n";
    let m = module(&wrap("k", 1, regs, &format!("{pre}{body}\nret;")));
    let mut gpu = Gpu::new();
    let out = gpu.alloc(4096).unwrap();
    match gpu.launch(&m, "k", [1, 1, 1], [threads, 1, 1], 0, &[KernelArg::U64(out)]) {
        Ok(_) => None,
        Err(SimError::Hazard(h)) => Some(h.kind),
        Err(e) => panic!("{e}"),
    }
}

fn is_race(k: Option<HazardKind>) -> bool {
    matches!(k, Some(HazardKind::SharedRace { .. }))
}

const NEIGHBOUR: &str = "xor.b32 %r3, %r1, 1;\nshl.b32 %r4, %r3, 2;\nadd.u32 %r5, %r7, %r4;\n";

#[test]
fn warp_sync_orders_lanes_of_one_warp() {
    let body = format!("st.shared.u32 [%r8], %r1;\nbar.warp.sync -1;\n{NEIGHBOUR}ld.shared.u32 %r6, [%r5];");
    assert_eq!(run(&body, 32), None);
    let body = format!("st.shared.u32 [%r8], %r1;\n{NEIGHBOUR}ld.shared.u32 %r6, [%r5];");
    assert!(is_race(run(&body, 32)));
}

#[test]
fn warp_sync_does_not_order_different_warps() {
    // Thread 31 reads the word of thread 32 (warp 1).
    let body = "st.shared.u32 [%r8], %r1;\nbar.warp.sync -1;\nadd.u32 %r5, %r8, 4;\n\
                setp.lt.u32 %p1, %r1, 63;\n@%p1 ld.shared.u32 %r6, [%r5];";
    assert!(is_race(run(body, 64)));
    let body = "st.shared.u32 [%r8], %r1;\nbar.sync 0;\nadd.u32 %r5, %r8, 4;\n\
                setp.lt.u32 %p1, %r1, 63;\n@%p1 ld.shared.u32 %r6, [%r5];";
    assert_eq!(run(body, 64), None);
}

#[test]
fn atomics_do_not_race_with_each_other_but_do_with_plain_reads() {
    let init = "setp.eq.u32 %p1, %r1, 0;\n@%p1 st.shared.u32 [%r7], 0;\nbar.sync 0;\n";
    let body = format!("{init}atom.shared.add.u32 %r3, [%r7], 1;\nbar.sync 0;\nld.shared.u32 %r4, [%r7];");
    assert_eq!(run(&body, 64), None);
    let body = format!("{init}atom.shared.add.u32 %r3, [%r7], 1;\nld.shared.u32 %r4, [%r7];");
    assert!(is_race(run(&body, 64)));
}

#[test]
fn concurrent_reads_are_fine_write_after_read_is_not() {
    let init = "st.shared.u32 [%r8], %r1;\nbar.sync 0;\n";
    assert_eq!(run(&format!("{init}ld.shared.u32 %r3, [%r7+4];"), 64), None);
    // Thread 40 overwrites word 1 that threads of warp 0 read in the same epoch.
    let body =
        format!("{init}ld.shared.u32 %r3, [%r7+4];\nsetp.eq.u32 %p1, %r1, 40;\n@%p1 st.shared.u32 [%r7+4], %r3;");
    match run(&body, 64) {
        Some(HazardKind::SharedRace { first, second }) => {
            assert!(!first.write && second.write);
            assert_eq!(second.tid, [40, 0, 0]);
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn same_thread_accesses_never_race_and_barriers_reset_epochs() {
    let body = "st.shared.u32 [%r8], %r1;\nld.shared.u32 %r3, [%r8];\nst.shared.u32 [%r8], %r3;\nbar.sync 0;\n\
                xor.b32 %r4, %r1, 32;\nshl.b32 %r4, %r4, 2;\nadd.u32 %r5, %r7, %r4;\nld.shared.u32 %r6, [%r5];\nbar.sync 0;\n\
                st.shared.u32 [%r5], %r6;";
    assert_eq!(run(body, 64), None);
}

#[test]
fn partial_warps_and_3d_blocks() {
    let src = wrap(
        "k",
        1,
        ".reg .b64 %rd<4>;\n.reg .b32 %r<16>;",
        "ld.param.u64 %rd1, [p0];\nmov.u32 %r1, %tid.x;\nmov.u32 %r2, %tid.y;\nmov.u32 %r3, %tid.z;\n\
         mov.u32 %r4, %ntid.x;\nmov.u32 %r5, %ntid.y;\nmad.lo.u32 %r6, %r3, %r5, %r2;\nmad.lo.u32 %r7, %r6, %r4, %r1;\n\
         mov.u32 %r8, %laneid;\nmov.u32 %r9, %warpid;\nshl.b32 %r10, %r9, 5;\nadd.u32 %r10, %r10, %r8;\n\
         mul.wide.u32 %rd2, %r7, 4;\nadd.u64 %rd3, %rd1, %rd2;\nst.global.u32 [%rd3], %r10;\nret;",
    );
    let m = module(&src);
    let mut gpu = Gpu::new();
    let out = gpu.alloc(4 * 105).unwrap();
    gpu.launch(&m, "k", [1, 1, 1], [5, 7, 3], 0, &[KernelArg::U64(out)]).unwrap();
    assert_eq!(down_u32(&gpu, out, 105), (0..105).collect::<Vec<u32>>());
}

#[test]
fn use_after_free_and_unallocated_global_are_out_of_bounds() {
    let src = wrap(
        "k",
        1,
        ".reg .b64 %rd<4>;\n.reg .b32 %r<4>;",
        "ld.param.u64 %rd1, [p0];\nld.global.u32 %r1, [%rd1];\nret;",
    );
    let m = module(&src);
    let mut gpu = Gpu::new();
    let a = gpu.alloc(64).unwrap();
    gpu.free(a).unwrap();
    let e = gpu.launch(&m, "k", [1, 1, 1], [1, 1, 1], 0, &[KernelArg::U64(a)]).unwrap_err();
    assert!(e.to_string().contains("out of bounds"), "{e}");
    let e = gpu.launch(&m, "k", [1, 1, 1], [1, 1, 1], 0, &[KernelArg::U64(0)]).unwrap_err();
    assert!(e.to_string().contains("out of bounds"), "{e}");
    assert!(gpu.free(a).is_err());
    assert!(gpu.write(a, &[1]).is_err());
}

#[test]
fn intra_warp_spin_lock_makes_progress() {
    // Every lane takes a global lock in turn (legal with independent thread scheduling).
    let src = wrap(
        "k",
        1,
        ".reg .b64 %rd<4>;\n.reg .b32 %r<8>;\n.reg .pred %p<2>;",
        "ld.param.u64 %rd1, [p0];\nLOOP:\natom.global.acquire.gpu.cas.b32 %r2, [%rd1], 0, 1;\nsetp.ne.u32 %p1, %r2, 0;\n\
         @%p1 bra LOOP;\nld.global.u32 %r3, [%rd1+4];\nadd.u32 %r3, %r3, 1;\nst.global.u32 [%rd1+4], %r3;\n\
         atom.global.release.gpu.exch.b32 %r4, [%rd1], 0;\nret;",
    );
    let m = module(&src);
    let mut gpu = Gpu::new();
    gpu.set_quantum(50);
    let buf = gpu.alloc(8).unwrap();
    gpu.launch(&m, "k", [2, 1, 1], [64, 1, 1], 0, &[KernelArg::U64(buf)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(down_u32(&gpu, buf, 2), vec![0, 128]);
}

#[test]
fn named_barriers_producer_consumer() {
    // Warp 0 produces into shared memory and arrives at barrier 1; warp 1 syncs on it.
    let body = "mov.u32 %r9, %warpid;\nsetp.ne.u32 %p1, %r9, 0;\n@%p1 bra CONSUME;\n\
                st.shared.u32 [%r8], %r1;\nbar.arrive 1, 64;\nbra END;\n\
                CONSUME:\nbar.sync 1, 64;\nsub.u32 %r5, %r8, 128;\nld.shared.u32 %r6, [%r5];\n\
                st.global.u32 [%rd1], %r6;\nEND:";
    assert_eq!(run(body, 64), None);
}

#[test]
fn trap_is_reported_with_its_line() {
    let k = run("setp.eq.u32 %p1, %r1, 5;\n@%p1 trap;", 32);
    assert_eq!(k, Some(HazardKind::Trap));
}

#[test]
fn collective_waiting_for_a_lane_at_a_barrier_never_completes() {
    // Lane 0 waits at bar.sync while the others wait in shfl.sync for it.
    let body = "setp.eq.u32 %p1, %r1, 0;\n@%p1 bra B;\nshfl.sync.idx.b32 %r3, %r1, 0, 31, -1;\nB:\nbar.sync 0;";
    match run(body, 32) {
        Some(HazardKind::Barrier { detail }) => assert!(detail.contains("never complete"), "{detail}"),
        k => panic!("{k:?}"),
    }
}

#[test]
fn config_and_counters() {
    let cfg = ptxsim::SimConfig { sm_count: 2, threads: 3, quantum: 10, ..Default::default() };
    let mut gpu = Gpu::with_config(cfg);
    assert_eq!(gpu.config().sm_count, 2);
    let src = wrap(
        "k",
        1,
        ".reg .b64 %rd<4>;\n.reg .b32 %r<8>;\n.reg .f32 %f<4>;\n.reg .pred %p<2>;",
        "ld.param.u64 %rd1, [p0];\nmov.u32 %r1, %tid.x;\ncvt.rn.f32.u32 %f1, %r1;\nadd.f32 %f2, %f1, %f1;\n\
         mov.u32 %r2, 0;\nLOOP:\nadd.u32 %r2, %r2, 1;\nsetp.lt.u32 %p1, %r2, 10;\n@%p1 bra LOOP;\n\
         mul.wide.u32 %rd2, %r1, 4;\nadd.u64 %rd3, %rd1, %rd2;\nst.global.f32 [%rd3], %f2;\nret;",
    );
    let m = module(&src);
    let out = gpu.alloc(64 * 4 * 8).unwrap();
    let r = gpu.launch(&m, "k", [8, 1, 1], [64, 1, 1], 0, &[KernelArg::U64(out)]).unwrap();
    let t = 64 * 8;
    assert_eq!(r.float, t);
    assert_eq!(r.conversion, t);
    // Guard-false lanes do not count: 9 taken branches + ret per thread.
    assert_eq!(r.control, t * 10);
    assert_eq!(r.warp_instructions, 8 * 2 * (5 + 3 * 10 + 4));
    assert_eq!(r.global_mem, t);
    assert_eq!(r.param_mem, t);
    assert_eq!(r.instructions, r.integer + r.float + r.conversion + r.control + r.global_mem + r.param_mem);
    assert_eq!(down_f32(&gpu, out, 3), vec![0.0, 2.0, 4.0]);
}

#[test]
fn many_blocks_waiting_on_one_producer_finish_quickly() {
    // Blocks 1..N spin until block 0, after a long computation, sets a flag.
    let src = wrap(
        "k",
        1,
        ".reg .b64 %rd<4>;\n.reg .b32 %r<8>;\n.reg .pred %p<2>;",
        "ld.param.u64 %rd1, [p0];\nmov.u32 %r1, %ctaid.x;\nsetp.ne.u32 %p1, %r1, 0;\n@%p1 bra WAIT;\n\
         mov.u32 %r2, 0;\nWORK:\nadd.u32 %r2, %r2, 1;\nsetp.lt.u32 %p1, %r2, 50000;\n@%p1 bra WORK;\n\
         st.release.gpu.global.u32 [%rd1], %r2;\nret;\n\
         WAIT:\nld.acquire.gpu.global.u32 %r3, [%rd1];\nsetp.eq.u32 %p1, %r3, 0;\n@%p1 bra WAIT;\nret;",
    );
    let m = module(&src);
    let mut gpu = Gpu::new();
    let f = gpu.alloc(4).unwrap();
    let t = std::time::Instant::now();
    gpu.launch(&m, "k", [132, 1, 1], [32, 1, 1], 0, &[KernelArg::U64(f)]).unwrap();
    assert_eq!(down_u32(&gpu, f, 1), vec![50000]);
    assert!(t.elapsed().as_secs_f64() < 20.0, "took {:?}", t.elapsed());
}
