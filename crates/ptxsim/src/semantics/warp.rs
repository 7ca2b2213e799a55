//! Warp-collective operations as pure functions of the 32 lanes' operands:
//! `ldmatrix` (PTX ISA 9.7.14.5.15 "ldmatrix"), `shfl.sync` (9.7.9.6 "shfl.sync"),
//! `vote.sync` (9.7.13.8 "vote.sync") and `redux.sync` (9.7.13.10 "redux.sync").
//! Memory is reached only through the caller's `read16` callback.

/// `ldmatrix.sync.aligned.m8n8{.x1,.x2,.x4}{.trans}{.shared}.b16` (PTX ISA "ldmatrix").
///
/// Matrix `i < count` is 8 rows of eight 16-bit elements; lanes `8i..8i+7` supply
/// the addresses of its rows 0..7 (for `.x1`/`.x2` the other lanes' addresses are
/// ignored). Every lane receives one register per matrix: `result[lane][i]` holds,
/// in its low then high half,
/// - plain: row `lane/4`, columns `2(lane%4)` and `2(lane%4)+1`;
/// - `.trans`: rows `2(lane%4)` and `2(lane%4)+1`, column `lane/4`.
///
/// Each row address must be 16-byte aligned (rows are 16 contiguous bytes); a
/// misaligned address, a `count` other than 1, 2 or 4, or a failing `read16` is an
/// `Err`. Registers past `count` are zero.
pub fn ldmatrix(
    count: u32,
    trans: bool,
    row_addr: &[u32; 32],
    read16: &mut dyn FnMut(u32) -> Result<[u8; 16], String>,
) -> Result<[[u32; 4]; 32], String> {
    if !matches!(count, 1 | 2 | 4) {
        return Err(format!("ldmatrix: .num must be x1, x2 or x4, got x{count}"));
    }
    let mut out = [[0u32; 4]; 32];
    for i in 0..count as usize {
        // rows[r][c]: element (r, c) of matrix i.
        let mut rows = [[0u16; 8]; 8];
        for (r, row) in rows.iter_mut().enumerate() {
            let lane = 8 * i + r;
            let addr = row_addr[lane];
            if addr & 15 != 0 {
                return Err(format!(
                    "ldmatrix: misaligned row address {addr:#x} from lane {lane} (must be 16-byte aligned)"
                ));
            }
            let bytes = read16(addr)?;
            for (c, v) in row.iter_mut().enumerate() {
                *v = u16::from_le_bytes([bytes[2 * c], bytes[2 * c + 1]]);
            }
        }
        for (lane, regs) in out.iter_mut().enumerate() {
            let (q, p) = (lane / 4, 2 * (lane % 4));
            let (lo, hi) = if trans { (rows[p][q], rows[p + 1][q]) } else { (rows[q][p], rows[q][p + 1]) };
            regs[i] = lo as u32 | (hi as u32) << 16;
        }
    }
    Ok(out)
}

/// Mode of `shfl.sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShflMode {
    /// `.up`: source lane `lane - b`.
    Up,
    /// `.down`: source lane `lane + b`.
    Down,
    /// `.bfly`: source lane `lane ^ b`.
    Bfly,
    /// `.idx`: source lane `b` within the segment.
    Idx,
}

/// `shfl.sync.mode.b32 d|p, a, b, c, membermask` for the whole warp (PTX ISA
/// "shfl.sync"): `vals[l]`, `b[l]`, `c[l]` are lane `l`'s operands. `c` packs the
/// clamp value (bits 4:0) and the segment mask (bits 12:8).
///
/// Per the ISA pseudocode: `maxLane = (lane & mask) | (clamp & !mask)`,
/// `minLane = lane & mask`; `.up` takes `j = lane - b` valid when `j >= maxLane`;
/// `.down` `j = lane + b`, `.bfly` `j = lane ^ b`, `.idx` `j = minLane | (b & !mask)`,
/// each valid when `j <= maxLane`. An invalid `j` copies the lane's own value. The
/// returned predicate is that validity. Lanes outside `member_mask` get their own
/// value and `false` (the ISA leaves them unspecified); a source lane outside the
/// mask still supplies its `vals` entry (undefined on hardware).
pub fn shfl(
    mode: ShflMode,
    vals: &[u32; 32],
    b: &[u32; 32],
    c: &[u32; 32],
    member_mask: u32,
) -> ([u32; 32], [bool; 32]) {
    let mut out = *vals;
    let mut pred = [false; 32];
    for lane in 0..32usize {
        if member_mask >> lane & 1 == 0 {
            continue;
        }
        let l = lane as i32;
        let bval = (b[lane] & 0x1f) as i32;
        let cval = (c[lane] & 0x1f) as i32;
        let mask = ((c[lane] >> 8) & 0x1f) as i32;
        let max_lane = (l & mask) | (cval & !mask);
        let min_lane = l & mask;
        let (j, ok) = match mode {
            ShflMode::Up => (l - bval, l - bval >= max_lane),
            ShflMode::Down => (l + bval, l + bval <= max_lane),
            ShflMode::Bfly => (l ^ bval, (l ^ bval) <= max_lane),
            ShflMode::Idx => {
                let j = min_lane | (bval & !mask);
                (j, j <= max_lane)
            }
        };
        // A valid j always lies in 0..32: max_lane <= 31, and for .up j >= max_lane >= 0.
        if ok && (0..32).contains(&j) {
            out[lane] = vals[j as usize];
            pred[lane] = true;
        }
    }
    (out, pred)
}

/// Mode of `vote.sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteMode {
    /// `.all.pred`: true when every member's predicate is true.
    All,
    /// `.any.pred`: true when some member's predicate is true.
    Any,
    /// `.uni.pred`: true when all members' predicates are equal.
    Uni,
    /// `.ballot.b32`: bit `l` set when member lane `l`'s predicate is true.
    Ballot,
}

/// `vote.sync.mode d, p, membermask` for the whole warp (PTX ISA "vote.sync"):
/// every lane receives the same value, 0/1 for the predicate modes and the mask of
/// members with a true predicate for `.ballot` (non-member lanes contribute 0 bits).
/// An empty `member_mask` gives `all` = 1, `any` = 0, `uni` = 1, `ballot` = 0.
pub fn vote(mode: VoteMode, preds: &[bool; 32], member_mask: u32) -> [u32; 32] {
    let ballot = (0..32).filter(|&l| preds[l] && member_mask >> l & 1 == 1).fold(0u32, |m, l| m | 1 << l);
    let v = match mode {
        VoteMode::All => (ballot == member_mask) as u32,
        VoteMode::Any => (ballot != 0) as u32,
        VoteMode::Uni => (ballot == 0 || ballot == member_mask) as u32,
        VoteMode::Ballot => ballot,
    };
    [v; 32]
}

/// Operation of `redux.sync` on 32-bit integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduxOp {
    /// `.add` (result truncated to 32 bits).
    Add,
    /// `.min` (`.s32` or `.u32` ordering).
    Min,
    /// `.max` (`.s32` or `.u32` ordering).
    Max,
    /// `.and.b32`
    And,
    /// `.or.b32`
    Or,
    /// `.xor.b32`
    Xor,
}

/// `redux.sync.op.type d, a, membermask` (PTX ISA "redux.sync"): reduces `vals`
/// over the lanes in `member_mask`; `signed` selects `.s32` over `.u32` ordering for
/// min/max (and is irrelevant for the others). `.add` wraps to 32 bits. An empty
/// mask (undefined on hardware) returns the operation's identity.
pub fn redux(op: ReduxOp, signed: bool, vals: &[u32; 32], member_mask: u32) -> u32 {
    let members = (0..32).filter(|&l| member_mask >> l & 1 == 1).map(|l| vals[l]);
    match op {
        ReduxOp::Add => members.fold(0u32, u32::wrapping_add),
        ReduxOp::And => members.fold(u32::MAX, |x, y| x & y),
        ReduxOp::Or => members.fold(0, |x, y| x | y),
        ReduxOp::Xor => members.fold(0, |x, y| x ^ y),
        ReduxOp::Min if signed => members.map(|v| v as i32).fold(i32::MAX, i32::min) as u32,
        ReduxOp::Max if signed => members.map(|v| v as i32).fold(i32::MIN, i32::max) as u32,
        ReduxOp::Min => members.fold(u32::MAX, u32::min),
        ReduxOp::Max => members.fold(0, u32::max),
    }
}
