//! Execution tests for the instruction families the interpreter owns, written from
//! the PTX ISA: integer arithmetic edge cases, setp/selp/slct, cvt between integer
//! types, mov pack/unpack, memory (vector, generic, local), cp.async groups,
//! atomics, warp collectives and the traffic counters.

mod common;
use common::*;
use ptxsim::{Gpu, HazardKind, KernelArg, SimError};

/// Runs `body` in one thread with `%rd1` = output pointer; returns `n` u64 results.
fn eval(body: &str, n: usize) -> Vec<u64> {
    let src = wrap(
        "k",
        1,
        ".reg .b64 %d<32>;\n.reg .b32 %r<32>;\n.reg .pred %p<8>;\n.reg .b64 %rd<4>;\n.reg .f32 %f<8>;",
        &format!("ld.param.u64 %rd1, [p0];\n{body}\nret;"),
    );
    let m = module(&src);
    let mut gpu = Gpu::new();
    let out = gpu.alloc(n * 8).unwrap();
    run1(&mut gpu, &m, "k", 1, &[KernelArg::U64(out)]).unwrap_or_else(|e| panic!("{e}"));
    let mut b = vec![0u8; n * 8];
    gpu.read(out, &mut b).unwrap();
    b.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Evaluates `op dst, a, b` with 64-bit immediates, storing the 64-bit register.
fn bin(op: &str, a: i64, b: i64) -> u64 {
    eval(&format!("mov.b64 %d1, {a};\nmov.b64 %d2, {b};\n{op} %d3, %d1, %d2;\nst.global.u64 [%rd1], %d3;"), 1)[0]
}

#[test]
fn shifts_clamp_at_the_width() {
    // PTX ISA "shl"/"shr": shift amounts greater than the width are clamped to it.
    assert_eq!(bin("shl.b32", 1, 31), 0x8000_0000);
    assert_eq!(bin("shl.b32", 1, 32), 0);
    assert_eq!(bin("shl.b32", 1, 1000), 0);
    assert_eq!(bin("shl.b64", 1, 64), 0);
    assert_eq!(bin("shr.u32", 0x8000_0000, 32), 0);
    assert_eq!(bin("shr.s32", 0x8000_0000, 40), 0xffff_ffff);
    assert_eq!(bin("shr.s32", 0x4000_0000, 40), 0);
    assert_eq!(bin("shr.s64", -16, 2), (-4i64) as u64);
    assert_eq!(bin("shr.b32", 0xffff_fff0, 4), 0x0fff_ffff);
}

#[test]
fn multiply_high_wide_and_mad() {
    assert_eq!(bin("mul.hi.u32", 0xffff_ffff, 0xffff_ffff), 0xffff_fffe);
    assert_eq!(bin("mul.hi.s32", -1, -1), 0);
    assert_eq!(bin("mul.hi.s32", 0x8000_0000, 2), 0xffff_ffff);
    assert_eq!(bin("mul.lo.s32", 0x10000, 0x10000), 0);
    assert_eq!(bin("mul.hi.u64", -1, 2), 1);
    assert_eq!(bin("mul.wide.u32", 0xffff_ffff, 2), 0x1_ffff_fffe);
    assert_eq!(bin("mul.wide.s32", -3, 5), (-15i64) as u64);
    assert_eq!(bin("mul.wide.u16", 0xffff, 0xffff), 0xfffe_0001);
    assert_eq!(bin("mul24.lo.u32", 0x0100_0003, 2), 6);
    let r = eval(
        "mov.b32 %r1, -3;\nmov.b32 %r2, 7;\nmov.b64 %d1, 100;\nmad.wide.s32 %d2, %r1, %r2, %d1;\nst.global.u64 [%rd1], %d2;\n\
         mad.lo.s32 %r3, %r1, %r2, 1;\ncvt.s64.s32 %d3, %r3;\nst.global.u64 [%rd1+8], %d3;\n\
         mov.b32 %r4, 0xffffffff;\nmad.hi.u32 %r5, %r4, %r4, 2;\ncvt.u64.u32 %d4, %r5;\nst.global.u64 [%rd1+16], %d4;",
        3,
    );
    assert_eq!(r, vec![79, (-20i64) as u64, 0x1_0000_0000 & 0xffff_ffff]);
}

#[test]
fn division_and_remainder() {
    assert_eq!(bin("div.s32", -7, 2), (-3i32) as u32 as u64);
    assert_eq!(bin("rem.s32", -7, 2), (-1i32) as u32 as u64);
    assert_eq!(bin("div.u32", 7, 2), 3);
    assert_eq!(bin("div.u32", 7, 0), 0xffff_ffff);
    assert_eq!(bin("div.s32", i32::MIN as i64, -1), 0x8000_0000);
    assert_eq!(bin("rem.u64", 10, 4), 2);
}

#[test]
fn min_max_abs_neg_and_bit_counts() {
    assert_eq!(bin("min.s32", -1, 1), 0xffff_ffff);
    assert_eq!(bin("min.u32", -1, 1), 1);
    assert_eq!(bin("max.s64", -5, -6), (-5i64) as u64);
    let un = |op: &str, a: i64| eval(&format!("mov.b64 %d1, {a};\n{op} %d2, %d1;\nst.global.u64 [%rd1], %d2;"), 1)[0];
    assert_eq!(un("abs.s32", i32::MIN as i64), 0x8000_0000);
    assert_eq!(un("abs.s32", -5), 5);
    assert_eq!(un("neg.s32", 1), 0xffff_ffff);
    assert_eq!(un("not.b32", 0), 0xffff_ffff);
    assert_eq!(un("cnot.b32", 0), 1);
    assert_eq!(un("cnot.b32", 7), 0);
    assert_eq!(un("popc.b32", 0xf0f0), 8);
    assert_eq!(un("popc.b64", -1), 64);
    assert_eq!(un("clz.b32", 0), 32);
    assert_eq!(un("clz.b32", 1), 31);
    assert_eq!(un("clz.b64", 1), 63);
    assert_eq!(un("brev.b32", 1), 0x8000_0000);
    assert_eq!(un("brev.b64", 1), 1 << 63);
}

#[test]
fn setp_selp_slct() {
    let r = eval(
        "mov.b32 %r1, -1;\nmov.b32 %r2, 1;\n\
         setp.lt.s32 %p1, %r1, %r2;\nselp.u64 %d1, 1, 0, %p1;\nst.global.u64 [%rd1], %d1;\n\
         setp.lt.u32 %p2, %r1, %r2;\nselp.u64 %d2, 1, 0, %p2;\nst.global.u64 [%rd1+8], %d2;\n\
         setp.hi.u32 %p3|%p4, %r1, %r2;\nselp.u64 %d3, 1, 0, %p4;\nst.global.u64 [%rd1+16], %d3;\n\
         mov.f32 %f1, 0f7FC00000;\nmov.f32 %f2, 0f3F800000;\n\
         setp.gtu.f32 %p5, %f1, %f2;\nselp.u64 %d4, 1, 0, %p5;\nst.global.u64 [%rd1+24], %d4;\n\
         setp.gt.f32 %p5, %f1, %f2;\nselp.u64 %d5, 1, 0, %p5;\nst.global.u64 [%rd1+32], %d5;\n\
         setp.eq.and.s32 %p6, %r1, %r1, !%p1;\nselp.u64 %d6, 1, 0, %p6;\nst.global.u64 [%rd1+40], %d6;\n\
         setp.nan.f32 %p6, %f1, %f2;\nselp.u64 %d7, 1, 0, %p6;\nst.global.u64 [%rd1+48], %d7;\n\
         slct.s32.s32 %r3, 10, 20, %r1;\ncvt.u64.u32 %d8, %r3;\nst.global.u64 [%rd1+56], %d8;\n\
         mov.f32 %f3, 0f80000000;\nslct.u32.f32 %r4, 10, 20, %f3;\ncvt.u64.u32 %d9, %r4;\nst.global.u64 [%rd1+64], %d9;",
        9,
    );
    assert_eq!(r, vec![1, 0, 0, 1, 0, 0, 1, 20, 10]);
}

#[test]
fn integer_cvt_and_mov_pack() {
    let r = eval(
        "mov.b32 %r1, -2;\ncvt.s64.s32 %d1, %r1;\nst.global.u64 [%rd1], %d1;\n\
         cvt.u64.u32 %d2, %r1;\nst.global.u64 [%rd1+8], %d2;\n\
         mov.b32 %r2, 300;\ncvt.u8.u32 %r3, %r2;\ncvt.u64.u32 %d3, %r3;\nst.global.u64 [%rd1+16], %d3;\n\
         cvt.sat.s8.s32 %r4, %r2;\ncvt.u64.u32 %d4, %r4;\nst.global.u64 [%rd1+24], %d4;\n\
         cvt.sat.u8.s32 %r5, %r1;\ncvt.u64.u32 %d5, %r5;\nst.global.u64 [%rd1+32], %d5;\n\
         mov.b32 %r6, 0x11223344;\nmov.b32 %r7, 0x55667788;\nmov.b64 %d6, {%r6, %r7};\nst.global.u64 [%rd1+40], %d6;\n\
         mov.b64 {%r8, _}, %d6;\ncvt.u64.u32 %d7, %r8;\nst.global.u64 [%rd1+48], %d7;",
        7,
    );
    assert_eq!(r[0], (-2i64) as u64);
    assert_eq!(r[1], 0xffff_fffe);
    assert_eq!(r[2], 44);
    assert_eq!(r[3], 127);
    assert_eq!(r[4], 0);
    assert_eq!(r[5], 0x5566_7788_1122_3344);
    assert_eq!(r[6], 0x1122_3344);
}

#[test]
fn generic_and_local_addressing() {
    let src = wrap(
        "k",
        1,
        ".reg .b64 %rd<16>;\n.reg .b32 %r<8>;\n.shared .align 8 .b8 sm[64];\n.local .align 8 .b8 __local_depot0[16];",
        "ld.param.u64 %rd1, [p0];\ncvta.to.global.u64 %rd2, %rd1;\n\
         mov.u64 %rd3, sm;\ncvta.shared.u64 %rd4, %rd3;\nst.u32 [%rd4+4], 77;\n\
         mov.u32 %r1, sm;\nld.shared.u32 %r2, [%r1+4];\n\
         mov.u64 %rd5, __local_depot0;\ncvta.local.u64 %rd6, %rd5;\nst.u32 [%rd6+8], 5;\nld.local.u32 %r3, [%rd5+8];\n\
         cvta.to.shared.u64 %rd7, %rd4;\ncvt.u32.u64 %r4, %rd7;\nld.shared.u32 %r5, [%r4+4];\n\
         add.u32 %r2, %r2, %r3;\nadd.u32 %r2, %r2, %r5;\nst.u32 [%rd1], %r2;\n\
         ld.global.u32 %r6, [%rd2];\nst.global.u32 [%rd2+4], %r6;\nret;",
    );
    let m = module(&src);
    let mut gpu = Gpu::new();
    let out = gpu.alloc(8).unwrap();
    run1(&mut gpu, &m, "k", 1, &[KernelArg::U64(out)]).unwrap();
    assert_eq!(down_u32(&gpu, out, 2), vec![159, 159]);
}

#[test]
fn by_value_struct_param_and_arg_checks() {
    let src = ".version 8.0\n.target sm_80\n.address_size 64\n\
        .visible .entry k(.param .align 8 .b8 s[16], .param .u64 out)\n{\n.reg .b32 %r<4>;\n.reg .b64 %rd<4>;\n\
        ld.param.u32 %r1, [s+4];\nld.param.u64 %rd1, [s+8];\nld.param.u64 %rd2, [out];\n\
        cvt.u32.u64 %r2, %rd1;\nadd.u32 %r3, %r1, %r2;\nst.global.u32 [%rd2], %r3;\nret;\n}\n";
    let m = module(src);
    let mut gpu = Gpu::new();
    let out = gpu.alloc(4).unwrap();
    let mut s = vec![0u8; 16];
    s[4..8].copy_from_slice(&40u32.to_le_bytes());
    s[8..16].copy_from_slice(&2u64.to_le_bytes());
    run1(&mut gpu, &m, "k", 1, &[KernelArg::Bytes(s), KernelArg::U64(out)]).unwrap();
    assert_eq!(down_u32(&gpu, out, 1), vec![42]);
    let e = run1(&mut gpu, &m, "k", 1, &[KernelArg::U64(1), KernelArg::U64(out)]).unwrap_err();
    assert!(matches!(e, SimError::BadArgs { .. }), "{e}");
    let e = run1(&mut gpu, &m, "k", 1, &[KernelArg::U64(out)]).unwrap_err();
    assert!(matches!(e, SimError::BadArgs { .. }), "{e}");
    assert!(matches!(run1(&mut gpu, &m, "nope", 1, &[]), Err(SimError::UnknownKernel(_))));
}

#[test]
fn unknown_instruction_fails_at_load_with_line() {
    let src = wrap("k", 0, ".reg .b32 %r<4>;", "mov.u32 %r1, 1;\nfrobnicate.u32 %r2, %r1;\nret;");
    match ptxsim::Module::from_ptx(&src) {
        Err(SimError::UnknownInstruction { opcode, line }) => {
            assert_eq!(opcode, "frobnicate.u32");
            assert_eq!(line, 10);
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted an unknown instruction"),
    }
}

const CP_GROUPS: &str = "ld.param.u64 %rd1, [p0];\nld.param.u64 %rd2, [p1];\nmov.u32 %r1, sm;\n\
    cp.async.ca.shared.global [%r1], [%rd1], 4;\ncp.async.commit_group;\n\
    cp.async.ca.shared.global [%r1+4], [%rd1+4], 4;\ncp.async.commit_group;\n\
    cp.async.ca.shared.global [%r1+8], [%rd1+8], 8, 4;\ncp.async.commit_group;\n\
    cp.async.wait_group 1;\n\
    ld.shared.u32 %r2, [%r1];\nld.shared.u32 %r3, [%r1+4];\nst.global.u32 [%rd2], %r2;\nst.global.u32 [%rd2+4], %r3;\n\
    READ_THIRD\ncp.async.wait_all;\nld.shared.v2.u32 {%r4, %r5}, [%r1+8];\nst.global.u32 [%rd2+8], %r4;\nst.global.u32 [%rd2+12], %r5;\nret;";

#[test]
fn cp_async_wait_group_lands_all_but_the_newest() {
    let regs = ".reg .b64 %rd<4>;\n.reg .b32 %r<8>;\n.shared .align 16 .b8 sm[16];";
    let m = module(&wrap("k", 2, regs, &CP_GROUPS.replace("READ_THIRD", "")));
    let mut gpu = Gpu::new();
    let src = up_u32(&mut gpu, &[1, 2, 3, 4]);
    let out = gpu.alloc(16).unwrap();
    let r = run1(&mut gpu, &m, "k", 1, &[KernelArg::U64(src), KernelArg::U64(out)]).unwrap();
    // src-size 4 < cp-size 8 zero-fills the rest.
    assert_eq!(down_u32(&gpu, out, 4), vec![1, 2, 3, 0]);
    assert_eq!(r.per_alloc[&src].load_bytes, 12);
    // Reading the newest group before it is waited for is a hazard.
    let m = module(&wrap("k", 2, regs, &CP_GROUPS.replace("READ_THIRD", "ld.shared.u32 %r6, [%r1+8];")));
    let e = run1(&mut gpu, &m, "k", 1, &[KernelArg::U64(src), KernelArg::U64(out)]).unwrap_err();
    let SimError::Hazard(h) = e else { panic!() };
    assert!(matches!(h.kind, HazardKind::CpAsyncNotWaited { .. }), "{h}");
}

#[test]
fn atomics_global_and_shared() {
    let src = wrap(
        "k",
        1,
        ".reg .b64 %rd<4>;\n.reg .b32 %r<12>;\n.reg .f32 %f<4>;\n.reg .pred %p<2>;\n.shared .align 4 .b8 cnt[4];",
        "ld.param.u64 %rd1, [p0];\nmov.u32 %r1, %tid.x;\nmov.u32 %r9, cnt;\n\
         setp.ne.u32 %p1, %r1, 0;\n@!%p1 st.shared.u32 [%r9], 0;\nbar.sync 0;\n\
         atom.global.add.u32 %r2, [%rd1], 1;\n\
         atom.global.max.s32 %r3, [%rd1+4], %r1;\n\
         atom.global.inc.u32 %r4, [%rd1+8], 9;\n\
         mov.f32 %f1, 0f3F000000;\natom.global.add.f32 %f2, [%rd1+12], %f1;\n\
         atom.shared.add.u32 %r5, [%r9], 2;\n\
         atom.global.cas.b32 %r6, [%rd1+16], 0, %r1;\n\
         red.global.add.u64 [%rd1+24], 3;\n\
         atom.global.exch.b32 %r7, [%rd1+32], 5;\n\
         bar.sync 0;\n@%p1 bra DONE;\nld.shared.u32 %r8, [%r9];\nst.global.u32 [%rd1+36], %r8;\nDONE:\nret;",
    );
    let m = module(&src);
    let mut gpu = Gpu::new();
    let out = gpu.alloc(40).unwrap();
    gpu.write(out + 4, &(-5i32).to_le_bytes()).unwrap();
    gpu.write(out + 16, &0u32.to_le_bytes()).unwrap();
    run1(&mut gpu, &m, "k", 64, &[KernelArg::U64(out)]).unwrap();
    let v = down_u32(&gpu, out, 10);
    assert_eq!(v[0], 64);
    assert_eq!(v[1], 63);
    assert_eq!(v[2], 64 % 10);
    assert_eq!(f32::from_bits(v[3]), 32.0);
    assert_eq!(v[4], 1, "first CAS wins with tid 0? got {}", v[4]);
    assert_eq!(v[6] as u64 | (v[7] as u64) << 32, 192);
    assert_eq!(v[8], 5);
    assert_eq!(v[9], 128);
}

#[test]
fn warp_collectives_rendezvous_after_divergence() {
    // Half the warp takes a detour; shfl.sync waits for all 32 members.
    let src = wrap(
        "k",
        1,
        ".reg .b64 %rd<4>;\n.reg .b32 %r<8>;\n.reg .pred %p<2>;",
        "ld.param.u64 %rd1, [p0];\nmov.u32 %r1, %laneid;\nmov.u32 %r2, %r1;\nsetp.lt.u32 %p1, %r1, 16;\n\
         @%p1 bra SKIP;\nadd.u32 %r2, %r2, 100;\nSKIP:\n\
         shfl.sync.bfly.b32 %r3, %r2, 16, 31, -1;\n\
         vote.sync.ballot.b32 %r4, %p1, -1;\n\
         mul.wide.u32 %rd2, %r1, 8;\nadd.u64 %rd3, %rd1, %rd2;\nst.global.v2.u32 [%rd3], {%r3, %r4};\nret;",
    );
    let m = module(&src);
    let mut gpu = Gpu::new();
    let out = gpu.alloc(256).unwrap();
    run1(&mut gpu, &m, "k", 32, &[KernelArg::U64(out)]).unwrap();
    let v = down_u32(&gpu, out, 64);
    for l in 0..32u32 {
        let partner = l ^ 16;
        let want = if partner < 16 { partner } else { partner + 100 };
        assert_eq!(v[2 * l as usize], want, "lane {l}");
        assert_eq!(v[2 * l as usize + 1], 0xffff);
    }
}

fn count(body: &str, threads: u32, smem: bool) -> ptxsim::LaunchReport {
    let regs = ".reg .b64 %rd<8>;\n.reg .b32 %r<8>;\n.shared .align 16 .b8 sm[8192];";
    let m = module(&wrap(
        "k",
        1,
        regs,
        &format!("ld.param.u64 %rd1, [p0];\nmov.u32 %r1, %tid.x;\nmov.u32 %r7, sm;\n{body}\nret;"),
    ));
    let mut gpu = Gpu::new();
    gpu.set_hazard_checks(!smem);
    let buf = gpu.alloc(64 * 1024).unwrap();
    run1(&mut gpu, &m, "k", threads, &[KernelArg::U64(buf)]).unwrap()
}

#[test]
fn global_sector_counters() {
    // 32 consecutive u32 = 128 bytes = 4 sectors.
    let r = count("mul.wide.u32 %rd2, %r1, 4;\nadd.u64 %rd3, %rd1, %rd2;\nld.global.u32 %r2, [%rd3];", 32, false);
    assert_eq!((r.global_sectors, r.global_warp_accesses), (4, 1));
    assert_eq!(r.global_load_bytes, 128);
    // Stride 32 bytes: one sector per lane.
    let r = count("mul.wide.u32 %rd2, %r1, 32;\nadd.u64 %rd3, %rd1, %rd2;\nld.global.u32 %r2, [%rd3];", 32, false);
    assert_eq!(r.global_sectors, 32);
    // 16-byte vectors: 512 bytes = 16 sectors.
    let r = count(
        "mul.wide.u32 %rd2, %r1, 16;\nadd.u64 %rd3, %rd1, %rd2;\nld.global.v4.u32 {%r2,%r3,%r4,%r5}, [%rd3];",
        32,
        false,
    );
    assert_eq!(r.global_sectors, 16);
}

#[test]
fn shared_wavefront_counters() {
    // Conflict-free: lane i -> word i.
    let r = count("shl.b32 %r2, %r1, 2;\nadd.u32 %r3, %r7, %r2;\nst.shared.u32 [%r3], %r1;", 32, true);
    assert_eq!((r.shared_wavefronts, r.shared_min_wavefronts, r.shared_bank_conflicts), (1, 1, 0));
    // Stride 2 words: 2-way conflict.
    let r = count("shl.b32 %r2, %r1, 3;\nadd.u32 %r3, %r7, %r2;\nst.shared.u32 [%r3], %r1;", 32, true);
    assert_eq!((r.shared_wavefronts, r.shared_bank_conflicts), (2, 1));
    // Stride 32 words: 32-way conflict.
    let r = count("shl.b32 %r2, %r1, 7;\nadd.u32 %r3, %r7, %r2;\nst.shared.u32 [%r3], %r1;", 32, true);
    assert_eq!(r.shared_wavefronts, 32);
    // Broadcast read of one word: 1 wavefront.
    let r = count("ld.shared.u32 %r3, [%r7];", 32, true);
    assert_eq!(r.shared_wavefronts, 1);
    // 16-byte vectors, consecutive: 4 quarter-warp phases, conflict-free.
    let r = count("shl.b32 %r2, %r1, 4;\nadd.u32 %r3, %r7, %r2;\nst.shared.v4.u32 [%r3], {%r1,%r1,%r1,%r1};", 32, true);
    assert_eq!((r.shared_wavefronts, r.shared_min_wavefronts), (4, 4));
}

#[test]
fn blocks_interleave_so_a_waiting_block_sees_a_later_one() {
    // Block 0 spins until block 1 sets a flag (needs residency + quanta).
    let src = wrap(
        "k",
        1,
        ".reg .b64 %rd<4>;\n.reg .b32 %r<4>;\n.reg .pred %p<2>;",
        "ld.param.u64 %rd1, [p0];\nmov.u32 %r1, %ctaid.x;\nsetp.eq.u32 %p1, %r1, 0;\n@%p1 bra WAIT;\n\
         st.release.gpu.global.u32 [%rd1], 1;\nret;\n\
         WAIT:\nld.acquire.gpu.global.u32 %r2, [%rd1];\nsetp.eq.u32 %p1, %r2, 0;\n@%p1 bra WAIT;\nst.global.u32 [%rd1+4], 7;\nret;",
    );
    let m = module(&src);
    for threads in [1, 2] {
        let mut gpu = Gpu::new();
        gpu.set_threads(threads);
        gpu.set_quantum(100);
        let f = gpu.alloc(8).unwrap();
        gpu.launch(&m, "k", [2, 1, 1], [32, 1, 1], 0, &[KernelArg::U64(f)]).unwrap();
        assert_eq!(down_u32(&gpu, f, 2), vec![1, 7]);
    }
}

#[test]
fn report_display_and_kernel_list() {
    let m = module(include_str!("ptx/vecadd.ptx"));
    assert_eq!(m.kernels(), vec!["vecadd"]);
    let r = count("mul.wide.u32 %rd2, %r1, 4;\nadd.u64 %rd3, %rd1, %rd2;\nst.global.u32 [%rd3], %r1;", 64, false);
    let s = r.to_string();
    assert!(s.contains("sectors") && s.contains("wavefronts"), "{s}");
    assert_eq!(r.global_store_bytes, 256);
}

#[test]
fn carry_chains_dp4a_bfind_and_friends() {
    let r = eval(
        "mov.b32 %r1, 0xffffffff;\nmov.b32 %r2, 1;\nadd.cc.u32 %r3, %r1, %r2;\naddc.u32 %r4, 0, 0;\n\
         cvt.u64.u32 %d1, %r3;\nst.global.u64 [%rd1], %d1;\ncvt.u64.u32 %d2, %r4;\nst.global.u64 [%rd1+8], %d2;\n\
         sub.cc.u32 %r5, 0, 1;\nsubc.u32 %r6, 5, 0;\ncvt.u64.u32 %d3, %r6;\nst.global.u64 [%rd1+16], %d3;\n\
         mov.b32 %r7, 0x01FF02FE;\nmov.b32 %r8, 0x03040506;\ndp4a.s32.s32 %r9, %r7, %r8, 10;\n\
         cvt.s64.s32 %d4, %r9;\nst.global.u64 [%rd1+24], %d4;\n\
         dp4a.u32.u32 %r10, %r7, %r8, 0;\ncvt.u64.u32 %d5, %r10;\nst.global.u64 [%rd1+32], %d5;\n\
         bfind.u32 %r11, 0x00010000;\ncvt.u64.u32 %d6, %r11;\nst.global.u64 [%rd1+40], %d6;\n\
         bfind.s32 %r12, -1;\ncvt.u64.u32 %d7, %r12;\nst.global.u64 [%rd1+48], %d7;\n\
         bfind.shiftamt.u32 %r13, 1;\ncvt.u64.u32 %d8, %r13;\nst.global.u64 [%rd1+56], %d8;\n\
         add.sat.s32 %r14, 0x7fffffff, 5;\ncvt.u64.u32 %d9, %r14;\nst.global.u64 [%rd1+64], %d9;\n\
         mov.f32 %f1, 0fBF800000;\nmov.f32 %f2, 0f40000000;\ncopysign.f32 %f3, %f1, %f2;\n\
         mov.b32 %r15, %f3;\ncvt.u64.u32 %d10, %r15;\nst.global.u64 [%rd1+72], %d10;\n\
         testp.notanumber.f32 %p1, %f1;\nselp.u64 %d11, 1, 0, %p1;\nst.global.u64 [%rd1+80], %d11;",
        11,
    );
    assert_eq!(r[0], 0);
    assert_eq!(r[1], 1);
    assert_eq!(r[2], 4);
    // bytes a = [-2, 2, -1, 1], b = [6, 5, 4, 3] -> -12 + 10 - 4 + 3 = -3, + 10.
    assert_eq!(r[3], 7);
    assert_eq!(r[4], 254 * 6 + 2 * 5 + 255 * 4 + 3);
    assert_eq!(r[5], 16);
    assert_eq!(r[6], 0xffff_ffff);
    assert_eq!(r[7], 31);
    assert_eq!(r[8], 0x7fff_ffff);
    assert_eq!(r[9], 0xc000_0000);
    assert_eq!(r[10], 0);
}
