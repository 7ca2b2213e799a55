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
