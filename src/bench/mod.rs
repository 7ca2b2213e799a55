//! The benchmark harness: CUDA-event timing of individual launches and their
//! statistics. `cargo bench` (benches/) and the `qk` CLI both use it, so there is one
//! timing code path.
//!
//! Method (the user's document, `shared/seed`): warm-up launches are run and discarded;
//! then every timed launch is bracketed by its own pair of CUDA events recorded on the
//! kernel's stream and read after synchronization — never a host timer around
//! asynchronous GPU work. Per-launch times are kept, so medians and tail percentiles can
//! be reported (criterion itself reports one value per sample).

pub mod stats;

use crate::{Device, QkError, Result};

/// Default warm-up launches, discarded: the first launches pay module loading, the
/// JIT of PTX on unknown architectures and cold caches/TLBs.
pub const DEFAULT_WARMUP_LAUNCHES: usize = 10;

/// The sentence printed when GPU timings cannot be taken.
pub fn skip_message(reason: &str) -> String {
    format!("GPU timings skipped: {reason}. Benchmarks need a CUDA device; nothing was timed.")
}

/// Runs `launch` `warmup` times untimed, then `reps` times, each bracketed by CUDA
/// events; returns the per-launch GPU times in microseconds.
///
/// Fails with [`QkError::NoCudaDevice`] on the simulator, which has no clock.
pub fn time_launches(
    device: &Device,
    warmup: usize,
    reps: usize,
    mut launch: impl FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    let timer = device
        .cuda_timer()
        .ok_or_else(|| QkError::NoCudaDevice { reason: "the simulator has no GPU clock".into() })??;
    for _ in 0..warmup {
        launch()?;
    }
    device.synchronize()?;
    (0..reps).map(|_| timer.time_us(&mut launch)).collect()
}
