//! One measured point: several implementations of the same work (a GEMM shape at batch
//! M, or a decoder layer at batch M), the first being the baseline, timed in interleaved
//! rounds (baseline, candidate, baseline, candidate …) so that clock drift during a long
//! sweep affects every implementation alike rather than whichever ran last.
//!
//! Every launch is timed by the `Timeline` (crate-internal); in graph mode an implementation's launch is
//! one replay of a CUDA graph holding several launches, and its sample is the replay's
//! time divided by that count.

use cudarc::driver::CudaGraph;

use super::report::BenchResult;
use super::timing::{capture_graph, launch_graph, Timeline};
use crate::{Device, Result};

/// Enqueues one launch of an implementation; the argument is the launch's index, used to
/// rotate among buffer copies.
pub(crate) type LaunchFn<'a> = Box<dyn FnMut(usize) -> Result<()> + 'a>;

/// How an implementation is launched.
enum Runner<'a> {
    /// Direct launches.
    Direct(LaunchFn<'a>),
    /// Replays of a graph holding `launches` launches.
    Graph { graph: CudaGraph, launches: usize },
}

/// One implementation at this point.
struct Entry<'a> {
    result: BenchResult,
    runner: Option<Runner<'a>>,
    /// Launches run so far (rotates buffer copies across rounds).
    launches: usize,
}

/// Whether a round's samples are kept or discarded as warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Keep the samples.
    Keep,
    /// Discard them, counting the launches as warm-up.
    Discard,
}

/// A point under measurement (see the module documentation).
pub struct Point<'a> {
    device: Device,
    group: String,
    m: usize,
    entries: Vec<Entry<'a>>,
    timeline: Timeline,
}

impl<'a> Point<'a> {
    pub(crate) fn new(device: &Device, group: String, m: usize) -> Result<Point<'a>> {
        Ok(Point { device: device.clone(), group, m, entries: Vec::new(), timeline: Timeline::new(device)? })
    }

    /// Adds an implementation: `result` carries its identity and metadata (kernel, label,
    /// m, n, k, flops, bytes); `launch` is `Err` when it could not be prepared (then it is
    /// recorded as skipped with that reason).
    pub(crate) fn add(&mut self, mut result: BenchResult, launch: Result<LaunchFn<'a>, String>) {
        let runner = match launch {
            Ok(f) => Some(Runner::Direct(f)),
            Err(reason) => {
                result.skipped = Some(reason);
                None
            }
        };
        result.warmup = Some(0);
        self.entries.push(Entry { result, runner, launches: 0 });
    }

    /// Group name (criterion group), e.g. `gemm/4096x4096`.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Batch size M.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Kernel names of the implementations still runnable, baseline first.
    pub fn runnable(&self) -> Vec<(usize, String)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.runner.is_some())
            .map(|(i, e)| (i, e.result.kernel.clone()))
            .collect()
    }

    /// Index of the baseline (entry 0) if it is runnable.
    pub fn baseline(&self) -> Option<usize> {
        self.entries.first().filter(|e| e.runner.is_some()).map(|_| 0)
    }

    /// Marks entry `i` skipped with `reason` (dropping its runner and samples).
    fn skip(&mut self, i: usize, reason: String) {
        let e = &mut self.entries[i];
        e.runner = None;
        e.result.samples_us.clear();
        e.result.skipped = Some(reason);
    }

    /// Replaces every direct runner by a graph of `launches` launches captured from it.
    /// An implementation whose capture fails is skipped with the CUDA error.
    pub(crate) fn capture_graphs(&mut self, launches: usize) {
        for i in 0..self.entries.len() {
            let Some(Runner::Direct(mut f)) = self.entries[i].runner.take() else { continue };
            let start = self.entries[i].launches;
            let captured = capture_graph(&self.device, || (0..launches).try_for_each(|j| f(start + j)));
            match captured {
                Ok(graph) => self.entries[i].runner = Some(Runner::Graph { graph, launches }),
                Err(e) => self.skip(i, format!("CUDA graph capture failed: {e}")),
            }
        }
    }

    /// Runs `rounds` interleaved rounds over `which` (entry indices) and returns, per entry
    /// of `which`, the per-launch times in µs (empty for an entry that failed and is now
    /// skipped). With [`Record::Keep`] the times are also added to the entries' samples.
    ///
    /// A launch that fails skips its implementation (with the error) and the round
    /// sequence continues without it; an error that leaves the device unusable (a sticky
    /// CUDA fault: the stream no longer synchronizes) is returned.
    pub fn time_rounds(&mut self, which: &[usize], rounds: usize, record: Record) -> Result<Vec<Vec<f64>>> {
        let mut out = vec![Vec::new(); which.len()];
        let mut active: Vec<usize> = (0..which.len()).filter(|&w| self.runnable_entry(which[w])).collect();
        let mut remaining = rounds;
        while remaining > 0 && !active.is_empty() {
            let n = active.len();
            let failed = std::cell::Cell::new(None);
            let entries = &mut self.entries;
            // Sequence index 0 is an untimed lead-in launch of the first implementation:
            // it absorbs the GPU's idle gap after the last synchronization, so the first
            // timed launch is already queued behind work, like every other one.
            let times = self.timeline.time(n * remaining + 1, |i| {
                let w = active[i.saturating_sub(1) % n];
                let e = &mut entries[which[w]];
                let launch_index = e.launches;
                e.launches += 1;
                let r = match e.runner.as_mut() {
                    Some(Runner::Direct(f)) => f(launch_index),
                    Some(Runner::Graph { graph, .. }) => launch_graph(graph),
                    None => Ok(()),
                };
                if r.is_err() {
                    failed.set(Some(w));
                }
                r
            });
            match times {
                Ok(times) => {
                    for (i, t) in times.into_iter().skip(1).enumerate() {
                        let w = active[i % n];
                        let per_launch = match &self.entries[which[w]].runner {
                            Some(Runner::Graph { launches, .. }) => t / *launches as f64,
                            _ => t,
                        };
                        out[w].push(per_launch);
                    }
                    remaining = 0;
                }
                Err(e) => {
                    // The device must still work for the sweep to go on.
                    self.device.synchronize()?;
                    let Some(w) = failed.get() else { return Err(e) };
                    self.skip(which[w], e.to_string());
                    out[w].clear();
                    active.retain(|&a| a != w);
                    // Rounds already timed are lost with the failed sequence: rerun them all.
                    remaining = rounds;
                    out.iter_mut().for_each(Vec::clear);
                }
            }
        }
        for (w, samples) in out.iter().enumerate() {
            let e = &mut self.entries[which[w]];
            if e.runner.is_none() {
                continue;
            }
            match record {
                Record::Keep => e.result.samples_us.extend_from_slice(samples),
                Record::Discard => *e.result.warmup.get_or_insert(0) += samples.len(),
            }
        }
        Ok(out)
    }

    fn runnable_entry(&self, i: usize) -> bool {
        self.entries.get(i).is_some_and(|e| e.runner.is_some())
    }

    /// The label of implementation `kernel`, to annotate (e.g. with the cuBLAS path chosen).
    pub(crate) fn label_mut(&mut self, kernel: &str) -> Option<&mut Option<String>> {
        self.entries.iter_mut().find(|e| e.result.kernel == kernel).map(|e| &mut e.result.label)
    }

    /// The results, samples included.
    pub(crate) fn into_results(self) -> Vec<BenchResult> {
        self.entries.into_iter().map(|e| e.result).collect()
    }
}
