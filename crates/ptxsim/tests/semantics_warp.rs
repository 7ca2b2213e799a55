//! Conformance tests of `ptxsim::semantics::warp` (ldmatrix, shfl.sync, vote.sync,
//! redux.sync), each pinned to the PTX ISA section named in its comment.

// Lane-indexed loops mirror the ISA tables, which index several arrays by lane.
#![allow(clippy::needless_range_loop)]

use ptxsim::semantics::warp::*;
use std::collections::HashMap;

/// Shared memory where the 16-bit element at byte address `x` (even) holds `x/2`
/// mixed with a tag, so every element is distinguishable.
fn mem_read(addr: u32) -> Result<[u8; 16], String> {
    let mut out = [0u8; 16];
    for c in 0..8 {
        let v = (((addr / 2) + c as u32) as u16).wrapping_mul(0x9e37) ^ 0x5a5a;
        out[2 * c..2 * c + 2].copy_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

fn elem(addr: u32) -> u16 {
    let row = mem_read(addr & !15).unwrap();
    let c = ((addr & 15) / 2) as usize;
    u16::from_le_bytes([row[2 * c], row[2 * c + 1]])
}

// PTX ISA "ldmatrix": lanes 8i..8i+7 give matrix i's row addresses; thread l gets
// (row l/4, cols 2(l%4), 2(l%4)+1); .trans gives the transposed fragment.
#[test]
fn ldmatrix_x1_x2_x4_plain_and_trans() {
    for count in [1u32, 2, 4] {
        for trans in [false, true] {
            // Scattered, non-contiguous row addresses.
            let mut addrs = [0u32; 32];
            for (lane, a) in addrs.iter_mut().enumerate() {
                *a = 0x1000 + ((lane as u32 * 7) % 32) * 48;
            }
            let mut reads = 0;
            let mut rd = |a: u32| {
                reads += 1;
                mem_read(a)
            };
            let out = ldmatrix(count, trans, &addrs, &mut rd).unwrap();
            assert_eq!(reads, 8 * count);
            for lane in 0..32usize {
                for i in 0..4usize {
                    let reg = out[lane][i];
                    if i >= count as usize {
                        assert_eq!(reg, 0);
                        continue;
                    }
                    let at = |r: usize, c: usize| elem(addrs[8 * i + r] + 2 * c as u32);
                    let (lo, hi) = if trans {
                        (at(2 * (lane % 4), lane / 4), at(2 * (lane % 4) + 1, lane / 4))
                    } else {
                        (at(lane / 4, 2 * (lane % 4)), at(lane / 4, 2 * (lane % 4) + 1))
                    };
                    assert_eq!(reg & 0xffff, lo as u32, "x{count} trans={trans} lane {lane} m{i}");
                    assert_eq!(reg >> 16, hi as u32);
                }
            }
        }
    }
}

// .x1/.x2 ignore the addresses of lanes 8..31 / 16..31 (even misaligned ones).
#[test]
fn ldmatrix_ignores_unused_lanes_and_checks_alignment() {
    let mut addrs = [3u32; 32];
    for a in addrs.iter_mut().take(16) {
        *a = 0x200;
    }
    assert!(ldmatrix(2, false, &addrs, &mut mem_read).is_ok());
    let e = ldmatrix(4, false, &addrs, &mut mem_read).unwrap_err();
    assert!(e.contains("misaligned"), "{e}");
    assert!(ldmatrix(3, false, &addrs, &mut mem_read).is_err());
    let mut failing = |_a: u32| -> Result<[u8; 16], String> { Err("out of bounds".into()) };
    assert_eq!(ldmatrix(1, true, &[0; 32], &mut failing).unwrap_err(), "out of bounds");
}

fn lanes() -> [u32; 32] {
    std::array::from_fn(|l| 100 + l as u32)
}

// PTX ISA "shfl.sync" pseudocode, full warp, c = 0x1f (bfly/down/idx) or 0 (up).
#[test]
fn shfl_full_warp_modes() {
    let v = lanes();
    let (d, p) = shfl(ShflMode::Bfly, &v, &[1; 32], &[0x1f; 32], u32::MAX);
    for l in 0..32 {
        assert_eq!((d[l], p[l]), (v[l ^ 1], true));
    }
    let (d, p) = shfl(ShflMode::Down, &v, &[4; 32], &[0x1f; 32], u32::MAX);
    for l in 0..32 {
        if l + 4 <= 31 {
            assert_eq!((d[l], p[l]), (v[l + 4], true));
        } else {
            assert_eq!((d[l], p[l]), (v[l], false));
        }
    }
    let (d, p) = shfl(ShflMode::Up, &v, &[3; 32], &[0; 32], u32::MAX);
    for l in 0..32 {
        if l >= 3 {
            assert_eq!((d[l], p[l]), (v[l - 3], true));
        } else {
            assert_eq!((d[l], p[l]), (v[l], false));
        }
    }
    // idx with per-lane source, b uses bits 4:0 only (b = 37 -> 5).
    let b: [u32; 32] = std::array::from_fn(|l| if l == 9 { 37 } else { (31 - l) as u32 });
    let (d, p) = shfl(ShflMode::Idx, &v, &b, &[0x1f; 32], u32::MAX);
    for l in 0..32 {
        let src = if l == 9 { 5 } else { 31 - l };
        assert_eq!((d[l], p[l]), (v[src], true));
    }
}

// PTX ISA "shfl.sync": c[12:8] splits the warp into segments, c[4:0] clamps.
#[test]
fn shfl_segments_and_clamp() {
    let v = lanes();
    // Segments of 8 lanes: mask 0x18 in bits 12:8, clamp 7 (the usual width-8 encoding).
    let c = [(0x18 << 8) | 0x7; 32];
    let (d, p) = shfl(ShflMode::Idx, &v, &[2; 32], &c, u32::MAX);
    for l in 0..32 {
        assert_eq!((d[l], p[l]), (v[(l & !7) | 2], true));
    }
    let (d, p) = shfl(ShflMode::Down, &v, &[2; 32], &c, u32::MAX);
    for l in 0..32 {
        let ok = (l & 7) + 2 <= 7;
        assert_eq!((d[l], p[l]), (if ok { v[l + 2] } else { v[l] }, ok), "lane {l}");
    }
    // .up within 8-lane segments: c = mask only (clamp bits 0): maxLane = segment start.
    let (d, p) = shfl(ShflMode::Up, &v, &[1; 32], &[0x18 << 8; 32], u32::MAX);
    for l in 0..32 {
        let ok = l & 7 != 0;
        assert_eq!((d[l], p[l]), (if ok { v[l - 1] } else { v[l] }, ok));
    }
    // Non-members keep their own value with a false predicate.
    let (d, p) = shfl(ShflMode::Bfly, &v, &[1; 32], &[0x1f; 32], 0x0000_00ff);
    assert_eq!((d[3], p[3]), (v[2], true));
    assert_eq!((d[20], p[20]), (v[20], false));
}

// PTX ISA "vote.sync": .all/.any/.uni over member lanes; .ballot returns the mask.
#[test]
fn vote_modes() {
    let mut preds = [false; 32];
    for l in (0..32).step_by(3) {
        preds[l] = true;
    }
    let want_ballot = (0..32).step_by(3).fold(0u32, |m, l| m | 1 << l);
    assert_eq!(vote(VoteMode::Ballot, &preds, u32::MAX), [want_ballot; 32]);
    assert_eq!(vote(VoteMode::Ballot, &preds, 0xffff), [want_ballot & 0xffff; 32]);
    assert_eq!(vote(VoteMode::All, &preds, u32::MAX)[0], 0);
    assert_eq!(vote(VoteMode::All, &preds, 0x9249_2492 >> 1 & want_ballot)[5], 1);
    assert_eq!(vote(VoteMode::Any, &preds, u32::MAX)[7], 1);
    assert_eq!(vote(VoteMode::Any, &preds, !want_ballot)[7], 0);
    assert_eq!(vote(VoteMode::Uni, &preds, !want_ballot)[0], 1);
    assert_eq!(vote(VoteMode::Uni, &preds, want_ballot)[0], 1);
    assert_eq!(vote(VoteMode::Uni, &preds, u32::MAX)[0], 0);
}

// PTX ISA "redux.sync": .add truncates to 32 bits; .min/.max per .s32/.u32.
#[test]
fn redux_ops() {
    let mut v = [0u32; 32];
    for (l, x) in v.iter_mut().enumerate() {
        *x = (l as u32).wrapping_mul(0x9e37_79b9);
    }
    let mut oracle: HashMap<&str, u32> = HashMap::new();
    let mask = 0xf0f0_1234u32;
    let m: Vec<u32> = (0..32).filter(|&l| mask >> l & 1 == 1).map(|l| v[l]).collect();
    oracle.insert("add", m.iter().fold(0u32, |a, &b| a.wrapping_add(b)));
    oracle.insert("umin", *m.iter().min().unwrap());
    oracle.insert("umax", *m.iter().max().unwrap());
    oracle.insert("smin", m.iter().map(|&x| x as i32).min().unwrap() as u32);
    oracle.insert("smax", m.iter().map(|&x| x as i32).max().unwrap() as u32);
    assert_eq!(redux(ReduxOp::Add, false, &v, mask), oracle["add"]);
    assert_eq!(redux(ReduxOp::Add, true, &v, mask), oracle["add"]);
    assert_eq!(redux(ReduxOp::Min, false, &v, mask), oracle["umin"]);
    assert_eq!(redux(ReduxOp::Max, false, &v, mask), oracle["umax"]);
    assert_eq!(redux(ReduxOp::Min, true, &v, mask), oracle["smin"]);
    assert_eq!(redux(ReduxOp::Max, true, &v, mask), oracle["smax"]);
    assert_ne!(oracle["umin"], oracle["smin"]);
    assert_eq!(redux(ReduxOp::And, false, &[0xff0f; 32], u32::MAX), 0xff0f);
    assert_eq!(redux(ReduxOp::Or, false, &v, 0b110), v[1] | v[2]);
    assert_eq!(redux(ReduxOp::Xor, false, &v, 0b110), v[1] ^ v[2]);
    assert_eq!(redux(ReduxOp::Add, false, &[u32::MAX; 32], u32::MAX), u32::MAX.wrapping_mul(32));
}
