//! The `fail/` corpus: small broken kernels, each expected to fail with a named
//! hazard kind; plus checks that the reports carry block, thread, line and both
//! accesses of a race.

mod common;
use common::*;
use ptxsim::{Gpu, HazardKind, KernelArg, SimError};

fn run_fail(src: &str, grid: u32, threads: u32, args: &[KernelArg], gpu: &mut Gpu) -> SimError {
    let m = module(src);
    let e = gpu.launch(&m, "k", [grid, 1, 1], [threads, 1, 1], 0, args).expect_err("kernel should fail");
    let expect = src.lines().next().unwrap().trim_start_matches("// expect: ").split(" --").next().unwrap();
    let text = e.to_string();
    assert!(text.contains(expect), "expected `{expect}` in: {text}");
    e
}

fn hazard(e: SimError) -> ptxsim::Hazard {
    match e {
        SimError::Hazard(h) => *h,
        e => panic!("not a hazard: {e}"),
    }
}

#[test]
fn missing_barrier_is_a_race_with_both_accesses() {
    let mut gpu = Gpu::new();
    let out = gpu.alloc(4).unwrap();
    let h = hazard(run_fail(include_str!("fail/race.ptx"), 1, 64, &[KernelArg::U64(out)], &mut gpu));
    let HazardKind::SharedRace { first, second } = &h.kind else { panic!("{h}") };
    assert!(first.write && !second.write);
    assert_eq!(first.line, 14);
    assert_eq!(second.line, 15);
    assert_eq!(h.line, 15);
    assert_eq!(h.kernel, "k");
    assert_ne!(first.tid, second.tid);
}

#[test]
fn missing_cp_async_wait_is_uninitialized() {
    let mut gpu = Gpu::new();
    let src = up_u32(&mut gpu, &[7; 256]);
    let out = gpu.alloc(4).unwrap();
    let h = hazard(run_fail(
        include_str!("fail/cp_async_no_wait.ptx"),
        1,
        64,
        &[KernelArg::U64(src), KernelArg::U64(out)],
        &mut gpu,
    ));
    assert!(matches!(h.kind, HazardKind::CpAsyncNotWaited { issue_line: 17, .. }), "{h}");
    assert!(h.to_string().contains("cp.async"));
}

#[test]
fn off_by_one_is_out_of_bounds() {
    let mut gpu = Gpu::new();
    let a = up_u32(&mut gpu, &[0; 32]);
    let h = hazard(run_fail(
        include_str!("fail/off_by_one.ptx"),
        1,
        64,
        &[KernelArg::U64(a), KernelArg::U32(32)],
        &mut gpu,
    ));
    assert_eq!(h.tid, [32, 0, 0]);
    assert_eq!(h.addr, Some(a + 128));
    assert_eq!(h.line, 17);
}

#[test]
fn misaligned_vector_load() {
    let mut gpu = Gpu::new();
    let a = up_u32(&mut gpu, &[0; 32]);
    let h = hazard(run_fail(include_str!("fail/misaligned_v4.ptx"), 1, 32, &[KernelArg::U64(a)], &mut gpu));
    assert!(matches!(h.kind, HazardKind::Misaligned { size: 16, .. }));
}

#[test]
fn divergent_barrier() {
    let mut gpu = Gpu::new();
    hazard(run_fail(include_str!("fail/divergent_barrier.ptx"), 1, 64, &[KernelArg::U64(0)], &mut gpu));
}

#[test]
fn spin_lock_never_released_deadlocks() {
    let mut gpu = Gpu::new();
    let lock = up_u32(&mut gpu, &[0]);
    let e = run_fail(include_str!("fail/spin_deadlock.ptx"), 3, 64, &[KernelArg::U64(lock)], &mut gpu);
    let SimError::Deadlock { waiting, .. } = &e else { panic!("{e}") };
    assert_eq!(waiting.len(), 2, "{e}");
}

#[test]
fn shared_out_of_bounds() {
    let mut gpu = Gpu::new();
    let h = hazard(run_fail(include_str!("fail/shared_oob.ptx"), 1, 128, &[KernelArg::U64(0)], &mut gpu));
    assert_eq!(h.tid, [64, 0, 0]);
}

#[test]
fn uninitialized_shared_read() {
    let mut gpu = Gpu::new();
    let a = gpu.alloc(4).unwrap();
    let h = hazard(run_fail(include_str!("fail/uninit_shared.ptx"), 1, 32, &[KernelArg::U64(a)], &mut gpu));
    assert!(matches!(h.kind, HazardKind::Uninitialized));
}

#[test]
fn hazard_checks_off_runs_the_racy_kernel() {
    let mut gpu = Gpu::new();
    gpu.set_hazard_checks(false);
    let out = gpu.alloc(4).unwrap();
    let m = module(include_str!("fail/race.ptx"));
    gpu.launch(&m, "k", [1, 1, 1], [64, 1, 1], 0, &[KernelArg::U64(out)]).unwrap();
}

/// `ld.global.nc` reads through the non-coherent read-only path, which must not serve
/// data the grid writes while it runs (PTX ISA "ld"): a grid that writes an allocation
/// and loads it through that path, in whatever order and from whatever blocks, is
/// reported at the load, naming the write.
#[test]
fn read_only_path_load_of_memory_the_grid_writes() {
    // Block 0, thread 0 stores word 0; block 1 loads word 1 (`load`) and stores it into
    // `out`. Blocks run concurrently, so the load may come first.
    let src = |load: &str| {
        let body = format!(
            "ld.param.u64 %rd1, [p0];\nld.param.u64 %rd2, [p1];\nmov.u32 %r1, %ctaid.x;\nmov.u32 %r2, %tid.x;\n\
             or.b32 %r3, %r1, %r2;\nsetp.ne.u32 %p1, %r3, 0;\n@%p1 bra $LOAD;\nst.global.u32 [%rd1], 5;\nbra $DONE;\n\
             $LOAD:\nsetp.ne.u32 %p2, %r1, 1;\n@%p2 bra $DONE;\n{load} %r4, [%rd1+4];\nst.global.u32 [%rd2], %r4;\n\
             $DONE:\nret;"
        );
        wrap("k", 2, ".reg .pred %p<4>;\n.reg .b32 %r<8>;\n.reg .b64 %rd<4>;", &body)
    };
    let launch = |load: &str| {
        let mut gpu = Gpu::new();
        let x = up_u32(&mut gpu, &[1, 2]);
        let out = gpu.alloc(4).unwrap();
        let m = module(&src(load));
        (gpu.launch(&m, "k", [2, 1, 1], [32, 1, 1], 0, &[KernelArg::U64(x), KernelArg::U64(out)]), x)
    };
    let (r, x) = launch("ld.global.nc.u32");
    let h = hazard(r.expect_err("the grid writes what it loads through the read-only path"));
    let HazardKind::NonCoherentLoad(n) = &h.kind else { panic!("{h}") };
    let (block, write) = n.writer.clone().expect("the writer is in this grid");
    assert_eq!((block, write.tid, write.write, n.alloc_base), ([0, 0, 0], [0, 0, 0], true, x));
    assert_eq!((h.ctaid, h.line), ([1, 0, 0], common::bulk::line_of(&src("ld.global.nc.u32"), "ld.global.nc")));
    assert_eq!(write.line, common::bulk::line_of(&src("ld.global.nc.u32"), "st.global.u32 [%rd1], 5"));
    assert!(h.to_string().contains("this grid writes"), "{h}");
    // A coherent load of the same word is fine.
    launch("ld.global.u32").0.unwrap_or_else(|e| panic!("{e}"));
}
