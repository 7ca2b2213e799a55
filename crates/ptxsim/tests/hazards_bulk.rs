//! Bulk-copy misuse (PTX ISA 9.7.9.25.4.1 "cp.async.bulk", 9.7.9.25.2 "Async Proxy",
//! 9.7.13.15 "mbarrier": tx-count range and phase completion): each broken kernel
//! fails with a `Bulk` hazard naming both sides (or the existing out-of-bounds
//! hazard), and its corrected twin runs clean and, for the ring pipelines, computes
//! the right result.

mod common;

use common::bulk::*;
use common::*;
use ptxsim::{Access, BulkRule, Gpu, Hazard, HazardKind, KernelArg, SimError};

/// Runs `r` with `bug`; returns the hazard, after checking that the fixed kernel passes.
fn broken(mut r: Ring, bug: Bug) -> (Hazard, Ptx) {
    r.bug = bug;
    r.fixed = true;
    let d = data(&r, 42);
    let ok = run(&r, &d);
    ok.result.unwrap_or_else(|e| panic!("fixed kernel for {bug:?} failed: {e}\n{}", ok.ptx.text));
    assert_eq!(ok.out, reference(&r, &d), "fixed kernel for {bug:?} computes wrong hashes");
    r.fixed = false;
    let b = run(&r, &d);
    match b.result {
        Err(SimError::Hazard(h)) => (*h, b.ptx),
        Err(e) => panic!("{bug:?}: not a hazard: {e}"),
        Ok(_) => panic!("{bug:?}: kernel passed\n{}", b.ptx.text),
    }
}

fn bulk_kind(h: &Hazard) -> (BulkRule, Option<&Access>) {
    match &h.kind {
        HazardKind::Bulk(b) => (b.rule, b.other.as_ref()),
        k => panic!("not a bulk-copy hazard: {k:?} ({h})"),
    }
}

/// Two stages of 512 bytes in two chunks, six tiles, one consumer warp.
fn base() -> Ring {
    Ring::new(2, 512, 2, 6, 1)
}

/// Runs `small(fixed)` (must pass and store `want` first words) and `small(bug)`
/// (must fail with a hazard, returned with the broken kernel's text).
fn small_pair(fixed: &str, bug: &str, want: &[u32]) -> (Hazard, String) {
    let launch = |body: &str| {
        let text = small(body);
        let m = module(&text);
        let mut gpu = Gpu::new();
        let src = up_u32(&mut gpu, &(0..256).map(|i| 1000 + i).collect::<Vec<u32>>());
        let out = gpu.alloc(64).unwrap();
        let r = gpu.launch(&m, "k", [1, 1, 1], [32, 1, 1], 0, &[KernelArg::U64(src), KernelArg::U64(out)]);
        (r, down_u32(&gpu, out, want.len()), text)
    };
    let (r, got, text) = launch(fixed);
    r.unwrap_or_else(|e| panic!("fixed kernel failed: {e}\n{text}"));
    assert_eq!(got, want, "fixed kernel\n{text}");
    match launch(bug) {
        (Err(SimError::Hazard(h)), _, text) => (*h, text),
        (r, _, text) => panic!("not a hazard: {:?}\n{text}", r.map(|_| ())),
    }
}

/// Thread 0 only; `init` = `bar` initialized for one arrival.
const T0: &str = "setp.ne.u32 %p2, %r1, 0;\n@%p2 bra $DONE;\nmbarrier.init.shared::cta.b64 [bar], 1;\n";
/// Waits for phase 0 of `bar`.
const WAIT0: &str = "$W:\nmbarrier.try_wait.parity.shared::cta.b64 %p1, [bar], 0;\n@!%p1 bra $W;\n";
/// Stores shared word 4 (`buf+16`) to out[0].
const STORE: &str = "ld.shared.u32 %r4, [buf+16];\nst.global.u32 [%rd2], %r4;\n";

// (a) The consumers read the stage before waiting on `full`: the copy is still in
// flight (no wait observed its phase complete).
#[test]
fn read_before_the_full_wait() {
    let (h, p) = broken(base(), Bug::ReadBeforeWait);
    let (rule, other) = bulk_kind(&h);
    assert_eq!(rule, BulkRule::InFlight);
    assert_eq!((h.line, h.tid, h.addr), (p.marks["read"], [32, 0, 0], Some(0)));
    let other = other.unwrap();
    assert_eq!((other.line, other.tid, other.warp), (p.marks["copy0"], [0, 0, 0], 0));
    assert!(other.write);
    assert!(h.to_string().contains("read of shared byte 0x0,"), "{h}");
}

// (a) A store into the stage before the wait (fixed: after the wait, before the
// stage is released).
#[test]
fn write_before_the_full_wait() {
    let (h, p) = broken(base(), Bug::WriteBeforeWait);
    let (rule, other) = bulk_kind(&h);
    assert_eq!(rule, BulkRule::InFlight);
    assert_eq!((h.line, h.tid), (p.marks["store"], [32, 0, 0]));
    assert_eq!(other.unwrap().line, p.marks["copy0"]);
    assert!(h.to_string().contains("write of shared byte"), "{h}");
}

// (b) Without the `empty` wait the producer refills stage 0 while its first copy is
// still in flight.
#[test]
fn refill_before_the_empty_wait() {
    let (h, p) = broken(base(), Bug::NoEmptyWait);
    let (rule, other) = bulk_kind(&h);
    assert_eq!(rule, BulkRule::OverlappingCopies);
    assert_eq!((h.line, h.tid, h.addr), (p.marks["copy0"], [0, 0, 0], Some(0)));
    assert_eq!(other.unwrap().line, p.marks["copy0"]);
    assert!(h.to_string().contains("cp.async.bulk"), "{h}");
}

// (b) A bulk copy over a cp.async not yet waited for (fixed: wait_all first).
#[test]
fn bulk_copy_over_pending_cp_async() {
    let cp = "cp.async.ca.shared.global [buf+16], [%rd1], 16;\ncp.async.commit_group;\n";
    let bulk = "mbarrier.arrive.expect_tx.shared::cta.b64 _, [bar], 64;\n\
                cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [buf], [%rd1+64], 64, [bar];\n";
    let fixed = format!("{T0}{cp}cp.async.wait_all;\n{bulk}{WAIT0}{STORE}");
    let bug = format!("{T0}{cp}{bulk}{WAIT0}cp.async.wait_all;\n{STORE}");
    let (h, text) = small_pair(&fixed, &bug, &[1020]);
    let (rule, other) = bulk_kind(&h);
    assert_eq!(rule, BulkRule::OverlappingCopies);
    assert_eq!((h.line, h.addr), (line_of(&text, "cp.async.bulk"), Some(16)), "the first byte in both");
    assert_eq!(other.unwrap().line, line_of(&text, "cp.async.ca"));
    assert!(h.to_string().contains("a cp.async (PTX line"), "{h}");
}

// (b) A cp.async over a bulk copy in flight (fixed: after the mbarrier wait).
#[test]
fn cp_async_over_bulk_copy_in_flight() {
    let bulk = "mbarrier.arrive.expect_tx.shared::cta.b64 _, [bar], 64;\n\
                cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [buf], [%rd1+64], 64, [bar];\n";
    let cp = "cp.async.ca.shared.global [buf+16], [%rd1], 16;\ncp.async.wait_all;\n";
    let fixed = format!("{T0}{bulk}{WAIT0}{cp}{STORE}");
    let bug = format!("{T0}{bulk}{cp}{WAIT0}{STORE}");
    let (h, text) = small_pair(&fixed, &bug, &[1000]);
    let (rule, other) = bulk_kind(&h);
    assert_eq!(rule, BulkRule::OverlappingCopies);
    assert_eq!((h.line, h.addr), (line_of(&text, "cp.async.ca"), Some(16)));
    assert_eq!(other.unwrap().line, line_of(&text, "cp.async.bulk"));
}

// (c) 16 bytes fewer expected than copied: the last copy's complete-tx takes the
// tx-count below zero with no arrival pending. The other side is the expect-tx.
#[test]
fn more_bytes_completed_than_expected() {
    let (h, p) = broken(base(), Bug::ExpectTooFew);
    let (rule, other) = bulk_kind(&h);
    assert_eq!(rule, BulkRule::TxCount);
    assert_eq!(h.line, p.marks["copy1"]);
    assert_eq!(h.addr, Some(1024), "the mbarrier full[0]");
    assert_eq!(other.unwrap().line, p.marks["expect"]);
    assert!(h.to_string().contains("is -16 with no arrival pending"), "{h}");
}

// (c) The same with the copies first: the arrive.expect_tx that closes the phase
// leaves the tx-count at -16. The other side is the last complete-tx.
#[test]
fn more_bytes_completed_than_expected_copies_first() {
    let mut r = base();
    r.order = Order::CopiesFirst;
    let (h, p) = broken(r, Bug::ExpectTooFew);
    let (rule, other) = bulk_kind(&h);
    assert_eq!(rule, BulkRule::TxCount);
    assert_eq!(h.line, p.marks["expect"]);
    assert_eq!(other.unwrap().line, p.marks["copy1"]);
}

// (c) The tx-count range is -(2^20-1)..=2^20-1 (9.7.13.15.2): an expect-tx of 2^20
// is out of range; 2^20-1 is fine.
#[test]
fn tx_count_above_range() {
    let ok = format!(
        "{T0}mbarrier.expect_tx.shared::cta.b64 [bar], 1048575;\nmbarrier.complete_tx.shared::cta.b64 [bar], 1048575;\n\
         mbarrier.arrive.shared::cta.b64 _, [bar];\n{WAIT0}mov.u32 %r4, 7;\nst.global.u32 [%rd2], %r4;\n"
    );
    let bug = ok.replace("[bar], 1048575;\nmbarrier.complete", "[bar], 1048576;\nmbarrier.complete");
    let (h, text) = small_pair(&ok, &bug, &[7]);
    let (rule, other) = bulk_kind(&h);
    assert_eq!(rule, BulkRule::TxCount);
    assert_eq!((h.line, h.addr), (line_of(&text, "expect_tx"), Some(512)));
    assert!(other.is_none());
    assert!(h.to_string().contains("from 0 to 1048576"), "{h}");
}

// (c) ... and a complete-tx of 2^20 before any expect-tx is below it. A complete-tx
// of 2^20-1 first is legal: the arrival still pending keeps the phase open.
#[test]
fn tx_count_below_range() {
    let ok = format!(
        "{T0}mbarrier.complete_tx.shared::cta.b64 [bar], 1048575;\nmbarrier.expect_tx.shared::cta.b64 [bar], 1048575;\n\
         mbarrier.arrive.shared::cta.b64 _, [bar];\n{WAIT0}mov.u32 %r4, 7;\nst.global.u32 [%rd2], %r4;\n"
    );
    let bug = ok.replace("[bar], 1048575;\nmbarrier.expect", "[bar], 1048576;\nmbarrier.expect");
    let (h, text) = small_pair(&ok, &bug, &[7]);
    assert_eq!(bulk_kind(&h).0, BulkRule::TxCount);
    assert_eq!(h.line, line_of(&text, "complete_tx"));
    assert!(h.to_string().contains("to -1048576"), "{h}");
}

// (d) Sizes must be multiples of 16 and both addresses 16-byte aligned.
#[test]
fn size_not_a_multiple_of_16() {
    let (h, p) = broken(base(), Bug::SizeNot16);
    assert_eq!(bulk_kind(&h).0, BulkRule::Alignment);
    assert_eq!(h.line, p.marks["copy0"]);
    assert!(h.to_string().contains("248 bytes"), "{h}");
}

#[test]
fn misaligned_destination() {
    let (h, p) = broken(base(), Bug::MisalignedDst);
    assert_eq!(bulk_kind(&h).0, BulkRule::Alignment);
    assert_eq!((h.line, h.addr), (p.marks["copy0"], Some(8)));
}

#[test]
fn misaligned_source() {
    let (h, p) = broken(base(), Bug::MisalignedSrc);
    assert_eq!(bulk_kind(&h).0, BulkRule::Alignment);
    assert_eq!(h.line, p.marks["copy0"]);
    assert_eq!(h.addr.unwrap() % 16, 8, "{h}");
}

// (e) The block ends with a copy whose completion no wait observed (fixed: the
// issuing thread waits).
#[test]
fn exit_with_copy_not_observed() {
    let copy = "mbarrier.arrive.expect_tx.shared::cta.b64 _, [bar], 64;\n\
                cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [buf], [%rd1], 64, [bar];\n";
    let (h, text) = small_pair(&format!("{T0}{copy}{WAIT0}{STORE}"), &format!("{T0}{copy}"), &[1004]);
    let (rule, other) = bulk_kind(&h);
    assert_eq!(rule, BulkRule::PendingAtExit);
    assert_eq!(h.line, line_of(&text, "ret;"));
    assert_eq!(other.unwrap().line, line_of(&text, "cp.async.bulk"));
    assert!(h.to_string().contains("no mbarrier wait observed it"), "{h}");
}

// (e) ... or whose phase never completed (80 bytes expected, 64 copied; nobody waits).
#[test]
fn exit_with_copy_never_completed() {
    let copy = |n| {
        format!(
            "mbarrier.arrive.expect_tx.shared::cta.b64 _, [bar], {n};\n\
             cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [buf], [%rd1], 64, [bar];\n"
        )
    };
    let (h, _) = small_pair(&format!("{T0}{}{WAIT0}{STORE}", copy(64)), &format!("{T0}{}", copy(80)), &[1004]);
    assert_eq!(bulk_kind(&h).0, BulkRule::PendingAtExit);
    assert!(h.to_string().contains("never completed its mbarrier phase"), "{h}");
}

// (e) ... or with an mbarrier whose tx-count is not zero (an expect-tx that no
// transaction completed; fixed: a complete_tx balances it).
#[test]
fn exit_with_pending_tx_count() {
    let expect = "mbarrier.expect_tx.shared::cta.b64 [bar], 48;\n";
    let fixed = format!("{T0}{expect}mbarrier.complete_tx.shared::cta.b64 [bar], 48;\nst.global.u32 [%rd2], %r1;\n");
    let bug = format!("{T0}{expect}st.global.u32 [%rd2], %r1;\n");
    let (h, text) = small_pair(&fixed, &bug, &[0]);
    let (rule, other) = bulk_kind(&h);
    assert_eq!(rule, BulkRule::PendingAtExit);
    assert_eq!(h.addr, Some(512));
    assert_eq!(other.unwrap().line, line_of(&text, "expect_tx"));
    assert!(h.to_string().contains("tx-count 48"), "{h}");
}

// (f) The source is checked like any global access: the last tile is read past the
// end of the allocation.
#[test]
fn source_past_the_allocation() {
    let (h, p) = broken(base(), Bug::SrcPastEnd);
    assert!(matches!(h.kind, HazardKind::OutOfBounds { space: "global", size: 256 }), "{h}");
    assert_eq!(h.line, p.marks["copy0"]);
    assert_eq!(h.tid, [0, 0, 0]);
}

// The destination must lie in the block's shared memory (528 bytes here).
#[test]
fn destination_past_shared_memory() {
    let copy = |n| {
        format!(
            "mbarrier.arrive.expect_tx.shared::cta.b64 _, [bar], {n};\n\
             cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [buf+448], [%rd1], {n}, [bar];\n"
        )
    };
    let (h, text) = small_pair(
        &format!("{T0}{}{WAIT0}ld.shared.u32 %r4, [buf+448];\nst.global.u32 [%rd2], %r4;\n", copy(64)),
        &format!("{T0}{}{WAIT0}", copy(128)),
        &[1000],
    );
    assert!(matches!(h.kind, HazardKind::OutOfBounds { space: "shared", size: 128 }), "{h}");
    assert_eq!((h.line, h.addr), (line_of(&text, "cp.async.bulk"), Some(448)));
}
