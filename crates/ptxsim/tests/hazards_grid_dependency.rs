//! Programmatic dependent launch (PTX ISA "griddepcontrol"): a grid launched with
//! programmatic stream serialization may start while the previous grid still runs, so
//! each thread must execute `griddepcontrol.wait` before it reads what that grid wrote
//! or writes what it used. These tests pair a producer grid with consumers that do and
//! do not wait, and check that the simulator reports exactly the accesses that race.

mod common;
use common::*;
use ptxsim::{Gpu, HazardKind, KernelArg, SimError};

/// An sm_90 kernel `name(p0, p1)` (griddepcontrol needs sm_90) whose body starts with
/// `%rd1` = p0, `%rd2` = p1, `%r1` = tid and `%rd4`, `%rd5` = the addresses of word tid
/// of p0 and p1.
fn kernel(name: &str, body: &str) -> String {
    let regs = ".reg .b32 %r<8>;\n.reg .b64 %rd<8>;\n.shared .align 4 .b8 stage[256];";
    let pre = "ld.param.u64 %rd1, [p0];\nld.param.u64 %rd2, [p1];\nmov.u32 %r1, %tid.x;\n\
               mul.wide.u32 %rd3, %r1, 4;\nadd.u64 %rd4, %rd1, %rd3;\nadd.u64 %rd5, %rd2, %rd3;";
    wrap(name, 2, regs, &format!("{pre}\n{body}\nret;")).replace(".target sm_80", ".target sm_90")
}

/// The producer (src = p0, dst = p1): thread t writes `src[t] + 1` to `dst[t]`.
fn producer() -> String {
    kernel(
        "producer",
        "ld.global.u32 %r2, [%rd4];\nadd.u32 %r2, %r2, 1;\nst.global.u32 [%rd5], %r2;\n\
         griddepcontrol.launch_dependents;",
    )
}

/// A consumer (input = p0, out = p1): thread t loads `input[t]` (by `ld`, or by
/// `cp.async` when `cp_async`) and stores it times 2 to `out[t]`, with
/// `griddepcontrol.wait` where `wait` says: "first", "between" (after the load) or
/// "none".
fn consumer(wait: &str, cp_async: bool) -> String {
    consumer_loading(wait, cp_async, "ld.global.u32")
}

/// [`consumer`] with the plain load written as `load` (e.g. `ld.global.nc.u32`).
fn consumer_loading(wait: &str, cp_async: bool, load: &str) -> String {
    let (before, after) = match wait {
        "first" => ("griddepcontrol.wait;", ""),
        "between" => ("", "griddepcontrol.wait;"),
        _ => ("", ""),
    };
    let load: &str = if cp_async {
        "mov.u32 %r4, stage;\nmul.lo.u32 %r6, %r1, 4;\nadd.u32 %r5, %r4, %r6;\n\
         cp.async.ca.shared.global [%r5], [%rd4], 4;\ncp.async.wait_all;\nld.shared.u32 %r2, [%r5];"
    } else {
        &format!("{load} %r2, [%rd4];")
    };
    kernel("consumer", &format!("{before}\n{load}\n{after}\nshl.b32 %r2, %r2, 1;\nst.global.u32 [%rd5], %r2;"))
}

const THREADS: u32 = 32;

struct Buffers {
    src: u64,
    mid: u64,
    out: u64,
}

/// Uploads `src` = 10, 11, .., runs the producer (src -> mid) with an ordinary launch,
/// then makes later launches programmatic.
fn produce(gpu: &mut Gpu) -> Buffers {
    let values: Vec<u32> = (0..THREADS).map(|t| 10 + t).collect();
    let src = up_u32(gpu, &values);
    let mid = up_u32(gpu, &[0xdead_beef; THREADS as usize]);
    let out = up_u32(gpu, &[0xdead_beef; THREADS as usize]);
    let m = module(&producer());
    gpu.launch(&m, "producer", [1, 1, 1], [THREADS, 1, 1], 0, &[KernelArg::U64(src), KernelArg::U64(mid)]).unwrap();
    gpu.set_programmatic_launch(true);
    Buffers { src, mid, out }
}

fn launch_consumer(gpu: &mut Gpu, src: &str, input: u64, out: u64) -> Result<(), SimError> {
    let m = module(src);
    gpu.launch(&m, "consumer", [1, 1, 1], [THREADS, 1, 1], 0, &[KernelArg::U64(input), KernelArg::U64(out)]).map(|_| ())
}

fn grid_hazard(e: SimError) -> (ptxsim::Hazard, ptxsim::GridDependencyHazard) {
    match e {
        SimError::Hazard(h) => match &h.kind {
            HazardKind::GridDependency(g) => {
                let g = (**g).clone();
                (*h, g)
            }
            _ => panic!("not a grid-dependency hazard: {h}"),
        },
        e => panic!("not a hazard: {e}"),
    }
}

#[test]
fn reading_the_previous_grids_output_before_the_wait_is_a_hazard() {
    for cp_async in [false, true] {
        let mut gpu = Gpu::new();
        let b = produce(&mut gpu);
        let e = launch_consumer(&mut gpu, &consumer("none", cp_async), b.mid, b.out).expect_err("must race");
        let (h, g) = grid_hazard(e);
        assert!(!g.write && g.prior_wrote, "{h}");
        assert_eq!(g.prior_kernel, "producer");
        assert_eq!(g.alloc_base, b.mid);
        assert_eq!(h.addr, Some(b.mid + 4 * h.tid[0] as u64));
        let src = consumer("none", cp_async);
        let load = if cp_async { "cp.async.ca" } else { "ld.global" };
        assert_eq!(h.line, common::bulk::line_of(&src, load), "{h}");
        let text = h.to_string();
        assert!(
            text.contains("griddepcontrol.wait") && text.contains("`producer`") && text.contains("wrote"),
            "{text}"
        );
    }
}

#[test]
fn waiting_first_or_before_the_dependent_read_is_clean_and_correct() {
    for (wait, cp_async) in [("first", false), ("first", true), ("between", false)] {
        let mut gpu = Gpu::new();
        let b = produce(&mut gpu);
        // "between": the wait comes after the load of `input` in program order, so only
        // an input the producer did not write may be read there; here that is `src`.
        let input = if wait == "between" { b.src } else { b.mid };
        launch_consumer(&mut gpu, &consumer(wait, cp_async), input, b.out).unwrap_or_else(|e| panic!("{e}"));
        let got = down_u32(&gpu, b.out, THREADS as usize);
        let expect: Vec<u32> =
            (0..THREADS).map(|t| if input == b.mid { 2 * (10 + t + 1) } else { 2 * (10 + t) }).collect();
        assert_eq!(got, expect, "wait {wait}, cp.async {cp_async}");
    }
}

#[test]
fn writing_what_the_previous_grid_read_before_the_wait_is_a_hazard() {
    // The consumer's store is after its wait in "between", so write before any wait:
    // read the untouched `out`, store into `src`, which the producer read.
    let mut gpu = Gpu::new();
    let b = produce(&mut gpu);
    let e = launch_consumer(&mut gpu, &consumer("none", false), b.out, b.src).expect_err("must race");
    let (h, g) = grid_hazard(e);
    assert!(g.write && !g.prior_wrote, "{h}");
    assert_eq!(g.alloc_base, b.src);
}

#[test]
fn memory_the_previous_grid_did_not_write_may_be_read_before_the_wait() {
    // Both grids read `src` (weights, in a GEMM): no race, no wait needed for it.
    let mut gpu = Gpu::new();
    let b = produce(&mut gpu);
    launch_consumer(&mut gpu, &consumer("none", false), b.src, b.out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(down_u32(&gpu, b.out, 2), vec![20, 22]);
}

#[test]
fn ordinary_launches_and_host_writes_order_the_grids() {
    // Without the programmatic attribute the next grid starts after the previous one
    // completed: nothing to wait for.
    let mut gpu = Gpu::new();
    let b = produce(&mut gpu);
    gpu.set_programmatic_launch(false);
    launch_consumer(&mut gpu, &consumer("none", false), b.mid, b.out).unwrap_or_else(|e| panic!("{e}"));

    // A host write between the grids orders them too (on a GPU the copy waits for the
    // producer and the consumer for the copy).
    let mut gpu = Gpu::new();
    let b = produce(&mut gpu);
    gpu.write(b.out, &[0; 4]).unwrap();
    launch_consumer(&mut gpu, &consumer("none", false), b.mid, b.out).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn without_hazard_checks_the_wait_is_only_an_instruction() {
    let mut gpu = Gpu::new();
    gpu.set_hazard_checks(false);
    let b = produce(&mut gpu);
    launch_consumer(&mut gpu, &consumer("none", false), b.mid, b.out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(down_u32(&gpu, b.out, 1), vec![22]);
}

/// A programmatic grid between the producer and the consumer: copies p0 to p1 (buffers
/// the other two do not touch), with `prologue` first (a wait, a trigger, both or
/// nothing).
fn middle(prologue: &str) -> String {
    kernel("middle", &format!("{prologue}\nld.global.u32 %r2, [%rd4];\nst.global.u32 [%rd5], %r2;"))
}

#[test]
fn a_grid_that_lets_its_dependents_start_early_keeps_the_grid_before_it_in_flight() {
    // The consumer reads the producer's output before its wait, with a programmatic
    // grid in between. That grid's dependents (the consumer) start only when each of its
    // blocks triggered or exited: if one of its threads waits before triggering, the
    // producer had completed by then; if none waits, or one triggers before its wait,
    // the producer may still be running when the consumer starts.
    for (prologue, races) in [
        ("griddepcontrol.wait;", false),
        ("griddepcontrol.wait;\ngriddepcontrol.launch_dependents;", false),
        ("", true),
        ("griddepcontrol.launch_dependents;\ngriddepcontrol.wait;", true),
    ] {
        let mut gpu = Gpu::new();
        let b = produce(&mut gpu);
        let x = gpu.alloc(4 * THREADS as usize).unwrap();
        let y = gpu.alloc(4 * THREADS as usize).unwrap();
        let m = module(&middle(prologue));
        let r = gpu.launch(&m, "middle", [1, 1, 1], [THREADS, 1, 1], 0, &[KernelArg::U64(x), KernelArg::U64(y)]);
        let r = r.unwrap_or_else(|e| panic!("{prologue}: {e}"));
        let waits = if prologue.contains("wait") { THREADS as u64 } else { 0 };
        let early = if prologue.starts_with("griddepcontrol.launch") { THREADS as u64 } else { 0 };
        assert_eq!((r.grid_dependency_waits, r.early_dependent_launches), (waits, early), "{prologue}");
        match launch_consumer(&mut gpu, &consumer("none", false), b.mid, b.out) {
            Ok(()) => assert!(!races, "`{prologue}`: the consumer's read of the producer's output must race"),
            Err(e) => {
                let (h, g) = grid_hazard(e);
                assert!(races, "`{prologue}`: {h}");
                assert_eq!((g.prior_kernel.as_str(), g.prior_wrote, g.alloc_base), ("producer", true, b.mid));
            }
        }
    }
}

#[test]
fn the_read_only_path_must_not_load_what_an_earlier_grid_in_flight_wrote() {
    // After its wait the consumer may read the producer's output, but not through
    // ld.global.nc: the producer wrote it while the consumer was resident.
    let mut gpu = Gpu::new();
    let b = produce(&mut gpu);
    let src = consumer_loading("first", false, "ld.global.nc.u32");
    let e = launch_consumer(&mut gpu, &src, b.mid, b.out).expect_err("a non-coherent load of the producer's output");
    let SimError::Hazard(h) = e else { panic!("not a hazard: {e}") };
    let HazardKind::NonCoherentLoad(n) = &h.kind else { panic!("not a read-only-path hazard: {h}") };
    assert_eq!((n.prior_kernel.as_deref(), n.writer.is_none(), n.alloc_base), (Some("producer"), true, b.mid));
    assert_eq!(h.line, common::bulk::line_of(&src, "ld.global.nc"));
    assert!(h.to_string().contains("stale"), "{h}");
    // The weights (read by both, written by neither) may go through it.
    let mut gpu = Gpu::new();
    let b = produce(&mut gpu);
    launch_consumer(&mut gpu, &consumer_loading("none", false, "ld.global.nc.u32"), b.src, b.out)
        .unwrap_or_else(|e| panic!("{e}"));
}
