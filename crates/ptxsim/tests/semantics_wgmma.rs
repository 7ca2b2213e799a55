//! `wgmma.mma_async.sync.aligned.m64nNk16` (PTX ISA 9.7.15) on hand-written sm_90a
//! kernels: operands staged through shared memory in the canonical K-major layouts
//! (computed on the host from the ISA's layout formulas, `common/wgmma.rs`), D checked
//! element by element against an f64 reference rounded once per wgmma; plus the pure
//! descriptor and swizzle functions.

mod common;

use common::wgmma::*;
use ptxsim::semantics::wgmma::{MatrixDesc, Swizzle};

/// Runs a case and compares every element of D with the reference.
fn check(c: &WgCase, seed: u64) -> ptxsim::LaunchReport {
    let d = data(c, seed);
    let r = run(c, &d);
    let report = r.result.unwrap_or_else(|e| panic!("{e}\n{}", r.ptx.text));
    let want = reference(c, &d);
    for (g, (got, want)) in r.d.iter().zip(&want).enumerate() {
        for (i, (x, y)) in got.iter().zip(want).enumerate() {
            assert_eq!(
                x.to_bits(),
                y.to_bits(),
                "{c:?}: warpgroup {g} D[{}][{}] = {x}, want {y}",
                i / c.n as usize,
                i % c.n as usize
            );
        }
    }
    // Counters: one wgmma per warp per k16 step; B (and A in the SS form) bytes read.
    let per_warp = c.ksteps as u64 * c.groups as u64 * 4;
    assert_eq!(report.wgmma_count, per_warp, "{report}");
    let bytes_per = c.n as u64 * 32 + if c.ss { 16 * 32 } else { 0 };
    assert_eq!(report.wgmma_shared_bytes, per_warp * bytes_per);
    assert_eq!(report.shared_bank_conflicts, 0, "{report}");
    report
}

// 128B swizzle, K = 64 (the whole 128-byte row: k16 steps advance the start by 32
// bytes), C accumulated, two commit groups retired by wait_group 1 then 0.
#[test]
fn n64_sw128_k64_accumulate_two_groups() {
    let mut c = WgCase::new(64, 4, Layout::Swizzle { bytes: 128 });
    c.split_commit = true;
    check(&c, 1);
}

// No swizzle, N = 8, K = 32, scale-d = 0 on the first step: C is ignored.
#[test]
fn n8_interleave_k32_overwrite() {
    let mut c = WgCase::new(8, 2, Layout::Interleave { lbo: 128, sbo: 32 * 16 });
    c.scale_d = false;
    check(&c, 2);
}

// Two warpgroups, each with its own A, B and C; N = 256, 128B swizzle.
#[test]
fn n256_sw128_two_warpgroups() {
    let mut c = WgCase::new(256, 4, Layout::Swizzle { bytes: 128 });
    c.groups = 2;
    check(&c, 3);
}

// No swizzle with the K core matrices outermost (LBO large, SBO = 128: the two
// offsets are not interchangeable), imm-scale-a = -1.
#[test]
fn n64_interleave_k_outer_negated_a() {
    let mut c = WgCase::new(64, 2, Layout::Interleave { lbo: 64 * 16, sbo: 128 });
    c.neg_a = true;
    check(&c, 4);
}

// A from shared memory through a descriptor (SS form), 128B swizzle.
#[test]
fn ss_form_n64_sw128() {
    let mut c = WgCase::new(64, 4, Layout::Swizzle { bytes: 128 });
    c.ss = true;
    check(&c, 5);
}

// .bf16 inputs with the 64-byte swizzle (K = 32 fills one 64-byte row).
#[test]
fn bf16_n32_sw64() {
    let mut c = WgCase::new(32, 2, Layout::Swizzle { bytes: 64 });
    c.el = El::Bf16;
    check(&c, 6);
}

// 32-byte swizzle: one k16 step per swizzled row, the next step in the next atoms.
#[test]
fn n16_sw32_k32() {
    check(&WgCase::new(16, 2, Layout::Swizzle { bytes: 32 }), 7);
}

// B staged with cp.async (landed by cp.async.wait_group, then fence.proxy.async).
#[test]
fn cp_async_staged_b() {
    let mut c = WgCase::new(64, 4, Layout::Swizzle { bytes: 128 });
    c.cp_async = true;
    check(&c, 8);
}

// Hazard checks off: same results (the pending queue is semantics, not a check).
#[test]
fn hazard_checks_off_same_result() {
    let mut c = WgCase::new(64, 4, Layout::Swizzle { bytes: 128 });
    c.hazards = false;
    let d = data(&c, 9);
    let off = run(&c, &d);
    off.result.unwrap();
    assert_eq!(off.d, reference(&c, &d));
}

// Matrix descriptor bit fields (9.7.15.5.1.2.2): 14-bit start/LBO/SBO >> 4, base
// offset in bits 49-51, swizzle mode in bits 62-63.
#[test]
fn descriptor_fields() {
    let v = (0x1230u64 >> 4) | (0x80u64 >> 4) << 16 | (0x400u64 >> 4) << 32 | 3u64 << 49 | 1u64 << 62;
    let d = MatrixDesc::decode(v);
    assert_eq!((d.start, d.lbo, d.sbo, d.base_offset, d.swizzle), (0x1230, 0x80, 0x400, 3, Swizzle::B128));
    assert_eq!(d.encode(), v);
    for (mode, sw) in [(0u64, Swizzle::None), (1, Swizzle::B128), (2, Swizzle::B64), (3, Swizzle::B32)] {
        assert_eq!(MatrixDesc::decode(mode << 62).swizzle, sw);
    }
    // The swizzle pattern must start on its repeat boundary (base offset 0).
    let at = |start: u64, sw: Swizzle| MatrixDesc { start, lbo: 16, sbo: 1024, base_offset: 0, swizzle: sw };
    assert!(!at(0x400 + 96, Swizzle::B128).misaligned_pattern());
    assert!(at(0x400 + 128, Swizzle::B128).misaligned_pattern());
    assert!(!at(0x200 + 32, Swizzle::B64).misaligned_pattern());
    assert!(at(0x200 + 256, Swizzle::B64).misaligned_pattern());
    assert!(at(0x180, Swizzle::B32).misaligned_pattern());
    assert!(!at(0x180, Swizzle::None).misaligned_pattern());
}

// The simulator's address function agrees with the test's transcription of the
// canonical layouts for every element of a 64-row operand.
#[test]
fn k_major_addresses_match_canonical_layouts() {
    for (layout, sw) in [
        (Layout::Swizzle { bytes: 128 }, Swizzle::B128),
        (Layout::Swizzle { bytes: 64 }, Swizzle::B64),
        (Layout::Swizzle { bytes: 32 }, Swizzle::B32),
        (Layout::Interleave { lbo: 128, sbo: 512 }, Swizzle::None),
        (Layout::Interleave { lbo: 1024, sbo: 128 }, Swizzle::None),
    ] {
        let bits = layout.desc_bits();
        let d = MatrixDesc::decode(bits | (1024 >> 4));
        assert_eq!(d.swizzle, sw);
        for row in 0..64 {
            for k in 0..16 {
                assert_eq!(d.k_major_addr(row, k), 1024 + layout.addr(64, row, k) as u64, "{layout:?} ({row}, {k})");
            }
        }
    }
}

// `setmaxnreg` (a warpgroup's register-allocation request, no effect on values) decodes
// with a valid count (24..=256, a multiple of 8) and is refused at load time otherwise.
#[test]
fn setmaxnreg_is_checked_and_has_no_effect() {
    let kernel = |n: u32| {
        let body = format!(
            "ld.param.u64 %rd1, [p0];\nmov.u32 %r1, 7;\nsetmaxnreg.dec.sync.aligned.u32 {n};\n\
             setmaxnreg.inc.sync.aligned.u32 232;\nst.global.u32 [%rd1], %r1;\nret;"
        );
        common::wrap("k", 1, ".reg .b64 %rd<4>;\n.reg .b32 %r<4>;", &body).replace(".target sm_80", ".target sm_90a")
    };
    let mut gpu = ptxsim::Gpu::new();
    let out = gpu.alloc(4).unwrap();
    common::run1(&mut gpu, &common::module(&kernel(40)), "k", 128, &[ptxsim::KernelArg::U64(out)]).unwrap();
    assert_eq!(common::down_u32(&gpu, out, 1), [7]);
    for bad in [20, 41, 264] {
        assert!(ptxsim::Module::from_ptx(&kernel(bad)).is_err(), "setmaxnreg {bad} must be refused");
    }
}
