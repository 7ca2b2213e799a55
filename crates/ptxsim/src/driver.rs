//! Launch driver: makes blocks resident (up to the simulated SM count), runs them in
//! quanta on worker threads (`std::thread::scope`), completes barriers, detects
//! deadlocks and merges the per-block counters into the `LaunchReport`.
//!
//! Scheduling: within a block, warps run round-robin, each until it blocks (barrier,
//! collective rendezvous, exit) or, past its instruction quantum, takes a backward
//! branch. A block yields when a warp's quantum ran out. Deadlock: a yielding block
//! that wrote no global memory, completed no barrier, lost no lane and whose state
//! hash (PCs, registers, shared memory) is unchanged made no progress. Progress bumps
//! a launch-wide epoch. When every resident block's last quantum ran entirely within
//! the current epoch and made no progress, and no new block can become resident, the
//! launch fails with `Deadlock` (execution is deterministic given the block state and
//! memory, so rerunning any of them cannot make progress either), or with a
//! setmaxnreg `PoolExhausted` hazard when a warp of a stuck block waits at a
//! `setmaxnreg.inc` for registers (`step::pool_exhausted`; also when every live lane
//! of a block is blocked).

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};

use crate::error::{Access, Hazard, HazardKind, NonCoherentHazard, SimError};
use crate::report::{Counters, LaunchReport};
use crate::state::*;
use crate::step::{pool_exhausted, step, Block, Ctx, Fault, Step};

/// Scheduler knobs for one launch.
pub struct RunCfg {
    /// Max resident blocks.
    pub max_resident: u64,
    /// Worker threads.
    pub threads: usize,
    /// Warp instructions per warp per quantum.
    pub quantum: u64,
    /// Base address of each allocation (counter keys).
    pub bases: Vec<u64>,
    /// PTX line of each instruction.
    pub lines: Vec<u32>,
}

enum Outcome {
    Done,
    Yield { progress: bool },
}

fn new_block(ctx: &Ctx, idx: u64) -> Box<Block> {
    let [gx, gy, _] = ctx.grid;
    let ctaid =
        [(idx % gx as u64) as u32, ((idx / gx as u64) % gy as u64) as u32, (idx / (gx as u64 * gy as u64)) as u32];
    let nw = ctx.nthreads.div_ceil(32) as usize;
    let nregs = ctx.k.nregs as usize;
    let lsize = ctx.k.local_size as usize;
    let warps = (0..nw)
        .map(|wi| {
            let n = (ctx.nthreads as usize - wi * 32).min(32);
            Warp {
                regs: vec![0; nregs * 32],
                pc: [0; 32],
                uni: true,
                upc: 0,
                live: if n == 32 { u32::MAX } else { (1u32 << n) - 1 },
                bar_wait: 0,
                coll_wait: 0,
                bar_at: [(0, 0); 32],
                wsync: 0,
                local: vec![0; lsize * 32],
                cp: vec![Vec::new(); 32],
                cp_next_group: [0; 32],
                rr: false,
                budget_used: 0,
                maxnreg: Vec::new(),
                grid_waited: 0,
            }
        })
        .collect();
    let smem = ctx.smem_size as usize;
    let wg = ctx.k.uses_wgmma.then(|| Box::new(WgState::new(nw, nregs, ctx.nthreads as usize, smem, ctx.hazards)));
    Box::new(Block {
        ctaid,
        warps,
        shared: vec![0; smem],
        shadow: if ctx.hazards { vec![ShadowByte::NONE; smem] } else { Vec::new() },
        epoch: 0,
        bars: Default::default(),
        c: Counters::new(ctx.mem.allocs.len()),
        wrote_global: false,
        progressed: false,
        uninit: None,
        clock: 0,
        idx,
        start_epoch: 0,
        last_hash: 0,
        quantum: u64::MAX / 16,
        wg,
        bulk: ctx.k.uses_bulk.then(Box::default),
        pool: match ctx.launch_regs {
            Some(launch) if ctx.k.uses_setmaxnreg && ctx.hazards => {
                Some(Box::new(RegPool { launch, free: 0, regs: vec![launch; nw], waiting: 0 }))
            }
            _ => None,
        },
    })
}

fn line_of(ctx: &Ctx, pc: u32) -> u32 {
    ctx.k.insts.get(pc as usize).map_or(0, |i| i.line)
}

/// Completes barriers whose arrival count is reached (PTX ISA "bar.sync": without a
/// count, all non-exited threads of the block participate).
fn check_barriers(ctx: &Ctx, b: &mut Block) -> Result<bool, Fault> {
    let live: u32 = b.warps.iter().map(|w| w.live.count_ones()).sum();
    let mut released = false;
    for id in 0..16u32 {
        let bs = b.bars[id as usize];
        if bs.arrived == 0 || bs.arrived < bs.count.unwrap_or(live) {
            continue;
        }
        let mut first: Option<(usize, usize, u32)> = None;
        for (wi, w) in b.warps.iter_mut().enumerate() {
            w.materialize();
            let mut m = w.bar_wait;
            while m != 0 {
                let l = m.trailing_zeros() as usize;
                m &= m - 1;
                let (bid, pc) = w.bar_at[l];
                if bid != id {
                    continue;
                }
                match first {
                    None => first = Some((wi, l, pc)),
                    Some((_, _, p0)) if bs.count.is_none() && p0 != pc => {
                        return Err(Fault::Hazard {
                            kind: HazardKind::Barrier {
                                detail: format!(
                                    "divergent barrier: threads of the block wait at different barriers (PTX lines {} and {})",
                                    line_of(ctx, p0),
                                    line_of(ctx, pc)
                                ),
                            },
                            warp: wi,
                            lane: l,
                            pc,
                            addr: None,
                        });
                    }
                    _ => {}
                }
                w.bar_wait &= !(1 << l);
            }
        }
        b.bars[id as usize] = Default::default();
        released = true;
    }
    if released {
        b.epoch += 1;
        for w in &mut b.warps {
            w.wsync += 1;
            w.try_converge();
        }
    }
    Ok(released)
}

/// Reports a read of never-written shared bytes once its epoch has ended without a
/// racing write having been found.
fn flush_uninit(b: &mut Block) -> Result<(), Fault> {
    match b.uninit.take() {
        Some((tid, pc, off)) => Err(Fault::Hazard {
            kind: HazardKind::Uninitialized,
            warp: tid as usize / 32,
            lane: tid as usize % 32,
            pc,
            addr: Some(off as u64),
        }),
        None => Ok(()),
    }
}

fn state_hash(b: &Block) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |x: u64| h = (h ^ x).wrapping_mul(0x0100_0000_01b3).rotate_left(5);
    for w in &b.warps {
        mix(w.live as u64 | (w.bar_wait as u64) << 32);
        mix(w.coll_wait as u64);
        if w.uni {
            mix(w.upc as u64);
        } else {
            for l in 0..32 {
                mix(w.pc[l] as u64);
            }
        }
        for &r in &w.regs {
            mix(r);
        }
    }
    for c in b.shared.chunks(8) {
        let mut v = [0u8; 8];
        v[..c.len()].copy_from_slice(c);
        mix(u64::from_le_bytes(v));
    }
    h
}

fn run_quantum(ctx: &Ctx, b: &mut Block, quantum: u64) -> Result<Outcome, Fault> {
    for w in &mut b.warps {
        w.budget_used = 0;
    }
    b.wrote_global = false;
    b.progressed = false;
    loop {
        let mut ran = false;
        let mut expired = false;
        for wi in 0..b.warps.len() {
            if b.warps[wi].live == 0 {
                continue;
            }
            if b.warps[wi].budget_used >= quantum {
                expired = true;
                continue;
            }
            while let Step::Ran { backward } = step(ctx, b, wi)? {
                ran = true;
                if backward && b.warps[wi].budget_used >= quantum {
                    expired = true;
                    let w = &mut b.warps[wi];
                    w.rr = !w.uni;
                    break;
                }
            }
        }
        if b.warps.iter().all(|w| w.live == 0) {
            flush_uninit(b)?;
            return Ok(Outcome::Done);
        }
        if check_barriers(ctx, b)? {
            flush_uninit(b)?;
            continue;
        }
        if expired {
            let mut progress = b.wrote_global || b.progressed;
            if !progress {
                let h = state_hash(b);
                progress = h != b.last_hash;
                b.last_hash = h;
            }
            return Ok(Outcome::Yield { progress });
        }
        if !ran {
            // Every live lane is blocked and no barrier can complete: a warp waiting
            // for setmaxnreg registers waits forever.
            if let Some(f) = pool_exhausted(ctx, b) {
                return Err(f);
            }
            let (wi, w) = b.warps.iter().enumerate().find(|(_, w)| w.live != 0).ok_or_else(|| {
                Fault::Error(SimError::Unsupported { what: "scheduler: no live warp".into(), line: 0 })
            })?;
            let blocked = w.live & (w.bar_wait | w.coll_wait);
            let l = blocked.trailing_zeros().min(31) as usize;
            let pc = if w.bar_wait & (1 << l) != 0 { w.bar_at[l].1 } else { w.pc[l] };
            let what = if w.bar_wait & (1 << l) != 0 { "a block barrier" } else { "a warp collective" };
            return Err(Fault::Hazard {
                kind: HazardKind::Barrier {
                    detail: format!(
                        "barrier can never complete: threads wait at {what} (PTX line {}) that other live threads of the block never reach",
                        line_of(ctx, pc)
                    ),
                },
                warp: wi,
                lane: l,
                pc,
                addr: None,
            });
        }
    }
}

/// Converts a fault into the launch's error.
fn to_error(ctx: &Ctx, b: &Block, f: Fault) -> SimError {
    match f {
        Fault::Error(e) => e,
        Fault::Hazard { kind, warp, lane, pc, addr } => SimError::Hazard(Box::new(Hazard {
            kernel: ctx.k.name.clone(),
            kind,
            ctaid: b.ctaid,
            tid: tid_of(ctx.block, warp as u32, lane as u32),
            line: line_of(ctx, pc),
            addr,
        })),
    }
}

fn describe(ctx: &Ctx, b: &Block) -> String {
    let mut lines: Vec<(u32, bool)> = Vec::new();
    for w in &b.warps {
        for l in 0..32 {
            if w.live & (1 << l) == 0 {
                continue;
            }
            let at_bar = w.bar_wait & (1 << l) != 0;
            let pc = if at_bar {
                w.bar_at[l].1
            } else if w.uni && w.runnable() & (1 << l) != 0 {
                w.upc
            } else {
                w.pc[l]
            };
            lines.push((line_of(ctx, pc), at_bar));
        }
    }
    lines.sort_unstable();
    lines.dedup();
    let ls: Vec<String> =
        lines.iter().map(|&(l, bar)| if bar { format!("{l} (waiting at a barrier)") } else { l.to_string() }).collect();
    format!("block ({},{},{}) at PTX lines {}", b.ctaid[0], b.ctaid[1], b.ctaid[2], ls.join(", "))
}

struct Sched {
    queue: VecDeque<Box<Block>>,
    /// Resident blocks whose last quantum made no progress: block index -> epoch.
    stuck: HashMap<u64, u64>,
    next: u64,
    resident: u64,
    running: u64,
    epoch: u64,
    error: Option<SimError>,
    report: LaunchReport,
    /// Per allocation: the first `ld.global.nc` of it and the first write to it of the
    /// blocks finished so far (block, pc, warp, lane), for the read-only-path check.
    first_nc_load: Vec<Option<SeenAt>>,
    first_write: Vec<Option<SeenAt>>,
}

/// Where a block's instruction touched an allocation: (block, pc, warp, lane).
type SeenAt = ([u32; 3], u32, u32, u32);

/// Thread index (`%tid`) of lane `lane` of warp `warp` in a block of `block` threads.
fn tid_of(block: [u32; 3], warp: u32, lane: u32) -> [u32; 3] {
    let t = warp * 32 + lane;
    let [bx, by, _] = block;
    [t % bx, (t / bx) % by, t / (bx * by)]
}

/// The same-grid half of the read-only-path check (`HazardKind::NonCoherentLoad`): an
/// allocation both loaded through `ld.global.nc` and written by the grid, in whatever
/// order, is a hazard at the (first) load, naming the (first) write.
fn non_coherent_hazard(ctx: &Ctx, s: &Sched) -> Option<SimError> {
    let (i, load, write) =
        s.first_nc_load.iter().zip(&s.first_write).enumerate().find_map(|(i, (l, w))| Some((i, (*l)?, (*w)?)))?;
    let (wb, wpc, ww, wl) = write;
    let writer = Access { tid: tid_of(ctx.block, ww, wl), warp: ww, line: line_of(ctx, wpc), write: true };
    let base = ctx.mem.allocs[i].base;
    let kind = HazardKind::NonCoherentLoad(Box::new(NonCoherentHazard {
        writer: Some((wb, writer)),
        prior_kernel: None,
        alloc_base: base,
    }));
    let (lb, lpc, lw, ll) = load;
    Some(SimError::Hazard(Box::new(Hazard {
        kernel: ctx.k.name.clone(),
        kind,
        ctaid: lb,
        tid: tid_of(ctx.block, lw, ll),
        line: line_of(ctx, lpc),
        addr: Some(base),
    })))
}

/// Runs all blocks of a launch.
pub fn run(ctx: &Ctx, cfg: &RunCfg) -> Result<LaunchReport, SimError> {
    let total = ctx.grid.iter().map(|&g| g as u64).product::<u64>();
    let sched = Mutex::new(Sched {
        queue: VecDeque::new(),
        stuck: HashMap::new(),
        next: 0,
        resident: 0,
        running: 0,
        epoch: 0,
        error: None,
        report: LaunchReport { threads_per_block: ctx.nthreads, blocks: total, ..Default::default() },
        first_nc_load: vec![None; cfg.bases.len()],
        first_write: vec![None; cfg.bases.len()],
    });
    let cv = Condvar::new();
    let threads = cfg.threads.clamp(1, total.max(1) as usize);
    let worker = || worker(ctx, cfg, &sched, &cv, total);
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(worker);
        }
        worker();
    });
    let s = sched.into_inner().unwrap_or_else(|e| e.into_inner());
    match s.error {
        Some(e) => Err(e),
        None if ctx.hazards => match non_coherent_hazard(ctx, &s) {
            Some(e) => Err(e),
            None => Ok(s.report),
        },
        None => Ok(s.report),
    }
}

fn worker(ctx: &Ctx, cfg: &RunCfg, sched: &Mutex<Sched>, cv: &Condvar, total: u64) {
    let lock = || sched.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let mut g = lock();
        let mut b = loop {
            if g.error.is_some() || (g.next == total && g.resident == 0) {
                cv.notify_all();
                return;
            }
            if g.resident < cfg.max_resident && g.next < total {
                let idx = g.next;
                g.next += 1;
                g.resident += 1;
                g.running += 1;
                drop(g);
                let b = new_block(ctx, idx);
                g = lock();
                break b;
            }
            if let Some(b) = g.queue.pop_front() {
                g.running += 1;
                break b;
            }
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        };
        b.start_epoch = g.epoch;
        drop(g);
        // A new block starts with a short quantum (a block that spins from the start
        // costs little); any progress restores the full quantum.
        let q = if b.quantum == u64::MAX / 16 { (cfg.quantum / 16).max(64) } else { b.quantum.min(cfg.quantum) };
        let res = run_quantum(ctx, &mut b, q);
        let mut g = lock();
        g.running -= 1;
        match res {
            Err(f) => {
                if g.error.is_none() {
                    g.error = Some(to_error(ctx, &b, f));
                }
            }
            Ok(Outcome::Done) => {
                g.resident -= 1;
                g.epoch += 1;
                g.stuck.remove(&b.idx);
                b.c.merge_into(&mut g.report, &cfg.bases, &cfg.lines);
                let ctaid = b.ctaid;
                let seen = |first: &mut Vec<Option<SeenAt>>, mine: &[Option<(u32, u32, u32)>]| {
                    for (f, m) in first.iter_mut().zip(mine) {
                        if let (None, Some((pc, w, l))) = (*f, *m) {
                            *f = Some((ctaid, pc, w, l));
                        }
                    }
                };
                seen(&mut g.first_nc_load, &b.c.first_nc_load);
                seen(&mut g.first_write, &b.c.first_write);
            }
            Ok(Outcome::Yield { progress }) => {
                b.quantum = if progress { cfg.quantum } else { (q / 4).max(64) };
                if progress {
                    g.epoch += 1;
                    g.stuck.remove(&b.idx);
                } else if b.start_epoch == g.epoch {
                    // The whole quantum saw unchanged global memory and ended in the
                    // state it started from: rerunning it cannot make progress.
                    let epoch = g.epoch;
                    g.stuck.insert(b.idx, epoch);
                    let can_grow = g.resident < cfg.max_resident && g.next < total;
                    if !can_grow && g.stuck.len() as u64 == g.resident && g.stuck.values().all(|&e| e == epoch) {
                        // A warp waiting for setmaxnreg registers in a stuck block waits
                        // forever: that names the hang better than the stuck lines.
                        let blocks = std::iter::once(&*b).chain(g.queue.iter().map(|q| &**q));
                        let pool = blocks.filter(|q| q.pool.is_some()).find_map(|q| Some((q, pool_exhausted(ctx, q)?)));
                        let error = match pool {
                            Some((q, f)) => to_error(ctx, q, f),
                            None => {
                                let mut waiting: Vec<String> = g.queue.iter().map(|q| describe(ctx, q)).collect();
                                waiting.insert(0, describe(ctx, &b));
                                SimError::Deadlock { kernel: ctx.k.name.clone(), waiting }
                            }
                        };
                        g.error = Some(error);
                    }
                } else {
                    g.stuck.remove(&b.idx);
                }
                g.queue.push_back(b);
            }
        }
        cv.notify_all();
    }
}
