//! The benchmark harness: CUDA-event timing of individual launches, the GEMM sweep and
//! decoder-layer workload, their statistics, and the reports. `cargo bench` (benches/)
//! and the `qk bench` CLI both call it, so there is one timing code path.
//!
//! Method (the user's document, `shared/seed`): warm-up launches are run and discarded;
//! then every timed launch is bracketed by CUDA events recorded on the kernel's stream
//! and read after synchronization — never a host timer around asynchronous GPU work.
//! Per-launch times are kept, so medians and tail percentiles can be reported (criterion
//! itself reports one value per sample). At each point the implementations run in
//! interleaved rounds, weights and activations rotate over more than twice the L2, and a
//! CUDA-graph mode replays many launches per event pair for launch-bound sizes.
//!
//! Modules: `timing` and `cublas` are crate-internal; [`point`] (interleaved
//! rounds), [`gemm`] (the issue-5 sweep), [`decoder`] (the decoder-layer workload),
//! [`run`] (a whole run), [`env`](mod@env) (environment capture), [`stats`], [`report`] (the
//! `qk-bench/1` schema), [`render`] (markdown, console, SVG), [`compare`].

pub mod compare;
mod cublas;
pub mod decoder;
pub mod env;
pub mod gemm;
pub mod point;
pub mod render;
pub mod report;
pub mod run;
pub mod stats;
mod timing;

use crate::{Device, Result};

/// Default warm-up launches, discarded: the first launches pay module loading, the
/// JIT of PTX on unknown architectures and cold caches/TLBs.
pub const DEFAULT_WARMUP_LAUNCHES: usize = 10;

/// The sentence printed when GPU timings cannot be taken.
pub fn skip_message(reason: &str) -> String {
    format!("GPU timings skipped: {reason}. Benchmarks need a CUDA device; nothing was timed.")
}

/// Runs `launch` `warmup` times untimed, then `reps` + 1 times back to back, each
/// followed by a CUDA event (see `timing`), and returns the GPU times in microseconds of
/// the last `reps` (the first is a lead-in, see [`point::Point::time_rounds`]).
///
/// Fails with [`QkError::NoCudaDevice`](crate::QkError::NoCudaDevice) on the simulator,
/// which has no clock.
pub fn time_launches(
    device: &Device,
    warmup: usize,
    reps: usize,
    mut launch: impl FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    let mut timeline = timing::Timeline::new(device)?;
    for _ in 0..warmup {
        launch()?;
    }
    // One more launch ahead of the timed ones, its time dropped: the first timed launch
    // is then queued behind work instead of starting on an idle GPU.
    let mut times = timeline.time(reps + 1, |_| launch())?;
    times.remove(0);
    Ok(times)
}
