//! Non-tensor bulk copies (`cp.async.bulk` global -> shared, PTX ISA 9.7.9.25.4.1) and
//! the mbarrier transaction count that tracks them (9.7.13.15.5: expect-tx and
//! complete-tx; 9.7.13.15.6: a phase completes when no arrival and no transaction is
//! pending), on hand-written sm_90 kernels: a producer thread streams tiles into a
//! multi-stage ring that consumer warps fold, checked against the host on random
//! data (`common/bulk.rs`); the tx-count observed step by step; the accepted and
//! rejected instruction forms.

mod common;

use common::bulk::*;
use common::*;
use ptxsim::{Gpu, KernelArg, LaunchReport, Module, SimError};

/// Runs a ring and compares every consumer's hash with the host's; checks the
/// bulk-copy counters.
fn check(r: &Ring, seed: u64) -> LaunchReport {
    let d = data(r, seed);
    let run = run(r, &d);
    let report = run.result.unwrap_or_else(|e| panic!("{r:?}: {e}\n{}", run.ptx.text));
    assert_eq!(run.out, reference(r, &d), "{r:?}");
    let bytes = (r.blocks * r.tiles * r.tile) as u64;
    assert_eq!(report.bulk_copies, (r.blocks * r.tiles * r.copies) as u64, "{report}");
    assert_eq!(report.bulk_bytes, bytes);
    assert_eq!(report.per_alloc[&run.src].load_bytes, bytes);
    assert_eq!(report.shared_bank_conflicts, 0, "{report}");
    report
}

// Two stages, ten tiles of four chunks: the ring is refilled five times, the
// parities of `full` and `empty` flip every round.
#[test]
fn ring_arrive_expect_tx() {
    let r = Ring::new(2, 1024, 4, 10, 2);
    let report = check(&r, 1);
    assert!(report.to_string().contains("bulk copies: 40 (10240 B global -> shared)"), "{report}");
    // Each copy: one warp-level global access of 256 contiguous bytes (8 sectors).
    let copy_line = ring_ptx(&r).marks["copy0"];
    assert_eq!(report.per_line[&copy_line].global_sectors, 10 * 8);
}

// `mbarrier.expect_tx`, then the copies, then a plain arrive: the phase completes at
// the arrival, when the transactions are already done.
#[test]
fn ring_split_expect_tx() {
    let mut r = Ring::new(3, 512, 2, 11, 1);
    r.order = Order::SplitExpectTx;
    check(&r, 2);
}

// The copies complete before their expect-tx: the tx-count is negative while the
// producer's arrival is pending, which the ISA allows (9.7.13.15.2: the tx-count
// ranges over -(2^20-1)..=2^20-1); `arrive.expect_tx` brings it back to zero.
#[test]
fn ring_copies_before_expect_tx() {
    let mut r = Ring::new(2, 512, 4, 9, 1);
    r.order = Order::CopiesFirst;
    check(&r, 3);
}

// One stage: every tile waits for the previous one to be consumed; the parity flips
// on every tile.
#[test]
fn ring_single_stage() {
    check(&Ring::new(1, 256, 1, 7, 2), 4);
}

// Four blocks, each with its own ring and barriers, stream their own tiles.
#[test]
fn ring_four_blocks() {
    let mut r = Ring::new(4, 1024, 8, 12, 4);
    r.blocks = 4;
    check(&r, 5);
}

// With hazard checks off the copies still land (no shadow to update).
#[test]
fn ring_without_hazard_checks() {
    let r = Ring::new(2, 512, 2, 6, 1);
    let d = data(&r, 6);
    let ptx = ring_ptx(&r);
    let m = module(&ptx.text);
    let mut gpu = Gpu::new();
    gpu.set_hazard_checks(false);
    let src = up_u32(&mut gpu, &d);
    let out = gpu.alloc(r.consumers() as usize * 4).unwrap();
    gpu.launch(&m, "ring", [1, 1, 1], [r.threads(), 1, 1], 0, &[KernelArg::U64(src), KernelArg::U64(out)]).unwrap();
    assert_eq!(down_u32(&gpu, out, r.consumers() as usize), reference(&r, &d));
}

// The bytes all complete but `full` expects two arrivals and gets one: the phase
// never completes (9.7.13.15.6 needs both), the consumers spin forever.
#[test]
fn missing_arrival_deadlocks() {
    let mut r = Ring::new(2, 512, 2, 4, 1);
    r.bug = Bug::MissingArrival;
    let d = data(&r, 7);
    let run = run(&r, &d);
    let Err(SimError::Deadlock { waiting, .. }) = &run.result else {
        panic!("not a deadlock: {:?}", run.result.map(|_| ()))
    };
    let wait_line = run.ptx.marks["full_wait"].to_string();
    assert!(waiting[0].contains(&wait_line), "{waiting:?}");
    r.fixed = true;
    check(&r, 7);
}

// All arrivals are in but 16 expected bytes never come: no completion either.
#[test]
fn missing_bytes_deadlock() {
    let mut r = Ring::new(2, 512, 2, 4, 1);
    r.bug = Bug::ExpectTooMany;
    let run = run(&r, &data(&r, 8));
    assert!(matches!(run.result, Err(SimError::Deadlock { .. })), "{:?}", run.result.map(|_| ()));
    r.fixed = true;
    check(&r, 8);
}

// One thread walks an mbarrier through a phase, recording what test_wait sees: the
// phase needs the arrival and all 64 expected bytes, whether they complete through
// `mbarrier.complete_tx` or a bulk copy; the state token of the arrive names the
// phase; try_wait takes a suspend-time hint.
#[test]
fn tx_count_step_by_step() {
    let rec = |i: u32| format!("selp.u32 %r10, 1, 0, %p1;\nst.global.u32 [%rd2+{}], %r10;\n", 4 * i);
    let body = [
        "mbarrier.init.shared::cta.b64 [bar], 1;\n".to_string(),
        "mbarrier.test_wait.parity.shared::cta.b64 %p1, [bar], 0;\n".into(),
        rec(0),
        "mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [bar], 64;\n".into(),
        "mbarrier.arrive.release.cta.shared::cta.b64 %rd3, [bar];\n".into(),
        "mbarrier.pending_count.b64 %r11, %rd3;\nst.global.u32 [%rd2+4], %r11;\n".into(),
        "mbarrier.test_wait.shared::cta.b64 %p1, [bar], %rd3;\n".into(),
        rec(2),
        "mbarrier.complete_tx.relaxed.cta.shared::cta.b64 [bar], 32;\n".into(),
        "mbarrier.test_wait.acquire.cta.shared::cta.b64 %p1, [bar], %rd3;\n".into(),
        rec(3),
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [buf], [%rd1+32], 32, [bar];\n".into(),
        "mbarrier.test_wait.shared::cta.b64 %p1, [bar], %rd3;\n".into(),
        rec(4),
        "ld.shared.u32 %r12, [buf+4];\nst.global.u32 [%rd2+20], %r12;\n".into(),
        "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64 %p1, [bar], 0, 1000;\n".into(),
        rec(6),
        "mbarrier.try_wait.parity.shared::cta.b64 %p1, [bar], 1;\n".into(),
        rec(7),
    ]
    .concat();
    let m = module(&small(&body));
    let mut gpu = Gpu::new();
    let src = up_u32(&mut gpu, &(100..132).collect::<Vec<u32>>());
    let out = gpu.alloc(32).unwrap();
    let r = gpu.launch(&m, "k", [1, 1, 1], [1, 1, 1], 0, &[KernelArg::U64(src), KernelArg::U64(out)]).unwrap();
    // Not complete; pending 0 after the arrive; tx 64, then 32 pending; complete after
    // the copy, whose byte 4 (source word 9) has landed; phase 0 complete, phase 1 not.
    assert_eq!(down_u32(&gpu, out, 8), [0, 0, 0, 0, 1, 109, 1, 0], "{r}");
    assert_eq!((r.bulk_copies, r.bulk_bytes), (1, 32));
}

// A thread issues a copy and waits on the state token of its own arrive.expect_tx
// (the non-parity form), through generic addresses of the barrier and destination.
#[test]
fn state_token_wait_generic_addresses() {
    let body = "setp.ne.u32 %p2, %r1, 0;\n@%p2 bra $DONE;\n\
                cvta.shared.u64 %rd3, bar;\ncvta.shared.u64 %rd4, buf;\n\
                mbarrier.init.b64 [%rd3], 1;\n\
                mbarrier.arrive.expect_tx.b64 %rd5, [%rd3], 128;\n\
                cp.async.bulk.shared::cta.global.mbarrier::complete_tx::bytes.L2::cache_hint [%rd4], [%rd1], 128, [%rd3], %rd9;\n\
                $W:\nmbarrier.try_wait.b64 %p1, [%rd3], %rd5;\n@!%p1 bra $W;\n\
                ld.shared.v4.u32 {%r4, %r5, %r6, %r7}, [buf+112];\nst.global.v4.u32 [%rd2], {%r4, %r5, %r6, %r7};";
    let m = module(&small(body));
    let mut gpu = Gpu::new();
    let src = up_u32(&mut gpu, &(1..=32).collect::<Vec<u32>>());
    let out = gpu.alloc(16).unwrap();
    gpu.launch(&m, "k", [1, 1, 1], [32, 1, 1], 0, &[KernelArg::U64(src), KernelArg::U64(out)]).unwrap();
    assert_eq!(down_u32(&gpu, out, 4), [29, 30, 31, 32]);
}

fn load(body: &str) -> Result<Module, SimError> {
    Module::from_ptx(&small(body))
}

#[test]
fn accepted_forms() {
    for body in [
        "cp.async.bulk.shared::cta.global.mbarrier::complete_tx::bytes [%r2], [%rd1], 16, [%r3];",
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%r2], [%rd1], %r4, [%r3], %rd4;",
        "mbarrier.arrive.expect_tx.release.cluster.shared::cluster.b64 _, [%r3], 16;",
        "mbarrier.arrive.expect_tx.shared::cta.b64 %rd3, [%r3], %r4;",
        "mbarrier.arrive_drop.expect_tx.shared::cta.b64 _, [%r3], 16;",
        "mbarrier.expect_tx.relaxed.cluster.shared::cluster.b64 [%r3], 16;",
        "mbarrier.complete_tx.shared::cta.b64 [%r3], 16;",
        "mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 %p1, [%r3], %r4, 100;",
        "mbarrier.try_wait.relaxed.cta.shared::cta.b64 %p1, [%r3], %rd3;",
        "mbarrier.arrive.release.cta.shared::cta.b64 _, [%r3];",
        "cp.async.bulk.prefetch.L2.global [%rd1], 16;",
        "cp.async.bulk.prefetch.L2.global.L2::cache_hint [%rd1], %r4, %rd4;",
    ] {
        load(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
}

#[test]
fn rejected_forms() {
    let unsupported = [
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%r2], [%rd1], 16, [%r3], %r4;",
        "cp.async.bulk.global.shared::cta.bulk_group [%rd1], [%r2], 16;",
        "cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%r2], [%r5], 16, [%r3];",
        "cp.async.bulk.prefetch.tensor.1d.L2.global.tile [%rd1, {%r4}];",
        "mbarrier.try_wait.parity.shared::cluster.b64 %p1, [%r3], 0;",
        "mbarrier.init.shared::cluster.b64 [%r3], 1;",
        "mbarrier.arrive.phase_type::primary.shared::cta.b64 _, [%r3];",
    ];
    for body in unsupported {
        match load(body) {
            Err(SimError::Unsupported { .. }) => {}
            r => panic!("{body}: {:?}", r.map(|_| ())),
        }
    }
    // The ISA's .shared::cluster arrive returns no state: the sink is mandatory.
    match load("mbarrier.arrive.shared::cluster.b64 %rd3, [%r3];") {
        Err(SimError::Parse { message, .. }) => assert!(message.contains('_'), "{message}"),
        r => panic!("{:?}", r.map(|_| ())),
    }
    // arrive.expect_tx needs its tx count.
    assert!(matches!(load("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%r3];"), Err(SimError::Parse { .. })));
}

// A wgmma reads B (and A) tiles that a bulk copy brought in, after an mbarrier wait
// and without fence.proxy.async: the copy wrote through the async proxy, and its
// observed completion makes it visible (9.7.9.25.2).
#[test]
fn wgmma_reads_bulk_copied_tiles() {
    use common::wgmma::{self as wg, Layout, WgCase};
    for ss in [false, true] {
        let mut c = WgCase::new(64, 4, Layout::Swizzle { bytes: 128 });
        c.ss = ss;
        c.bulk = true;
        let d = wg::data(&c, 9);
        let r = wg::run(&c, &d);
        let report = r.result.unwrap_or_else(|e| panic!("{e}\n{}", r.ptx.text));
        assert!(!r.ptx.text.contains("fence.proxy.async.shared"));
        let want = wg::reference(&c, &d);
        for (got, want) in r.d.iter().zip(&want) {
            assert_eq!(
                got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
        assert_eq!(report.bulk_copies, 1);
    }
}

// cp.async.bulk.prefetch.L2 (PTX ISA "cp.async.bulk.prefetch") is a hint: no effect on
// memory, no SM traffic counted; its range must lie in one allocation, 16-byte aligned
// with a size a multiple of 16.
#[test]
fn l2_prefetch_is_a_checked_hint() {
    let run = |offset: u32, size: u32| {
        let body = format!(
            "add.u64 %rd3, %rd1, {offset};\ncp.async.bulk.prefetch.L2.global [%rd3], {size};\n\
             ld.global.u32 %r4, [%rd1];\nst.global.u32 [%rd2], %r4;"
        );
        let m = module(&small(&body));
        let mut gpu = Gpu::new();
        let src = up_u32(&mut gpu, &(7..39).collect::<Vec<u32>>());
        let out = gpu.alloc(4).unwrap();
        let r = gpu.launch(&m, "k", [1, 1, 1], [1, 1, 1], 0, &[KernelArg::U64(src), KernelArg::U64(out)]);
        (r.map(|r| (r.per_alloc[&src].load_bytes, r.l2_prefetch_bytes, down_u32(&gpu, out, 1)[0])), src)
    };
    // The whole 128-byte allocation: counted as prefetched, and only the one 4-byte load
    // as traffic.
    assert_eq!(run(0, 128).0.unwrap(), (4, 128, 7));
    for (offset, size, what) in [(16, 128, "out of bounds"), (8, 16, "misaligned"), (0, 24, "misaligned")] {
        let (r, src) = run(offset, size);
        match r {
            Err(SimError::Hazard(h)) => {
                assert!(h.to_string().contains(what), "{offset}+{size}: {h}");
                assert_eq!(h.addr, Some(src + offset as u64));
            }
            r => panic!("{offset}+{size}: {:?}", r.map(|_| ())),
        }
    }
}
