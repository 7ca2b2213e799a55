//! The one timing primitive of the harness: a sequence of launches enqueued back to back
//! on the device's stream with a CUDA event recorded before the first and after each,
//! read after one synchronization. Launch `i` takes `event[i+1] − event[i]`: GPU time,
//! never a host clock around asynchronous work.
//!
//! Back to back (rather than synchronizing after every launch) keeps the GPU busy, so an
//! event pair measures the kernel, not the host's launch latency — as long as the host
//! enqueues faster than the GPU executes. At M = 1 a launch lasts about as long as the
//! host takes to issue it; then the gaps show up in the times, and graph mode
//! ([`capture_graph`]: many launches replayed by one graph launch) is the honest measure.

use std::sync::Arc;

use cudarc::driver::sys::{CUevent_flags, CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{CudaEvent, CudaGraph, CudaStream};

use crate::{Device, QkError, Result};

fn cuda_err(op: &'static str) -> impl Fn(cudarc::driver::DriverError) -> QkError {
    move |e| QkError::Cuda { op, message: e.to_string() }
}

/// The device's CUDA stream, or the "no clock" error on the simulator.
pub(crate) fn stream_of(device: &Device) -> Result<Arc<CudaStream>> {
    device
        .cuda_stream()
        .cloned()
        .ok_or_else(|| QkError::NoCudaDevice { reason: "the simulator has no GPU clock".into() })
}

/// Reusable timing events on one stream (creating events per launch would put
/// `cuEventCreate` between the launches being timed).
pub(crate) struct Timeline {
    stream: Arc<CudaStream>,
    events: Vec<CudaEvent>,
}

impl Timeline {
    /// A timeline on `device`'s stream.
    pub(crate) fn new(device: &Device) -> Result<Timeline> {
        Ok(Timeline { stream: stream_of(device)?, events: Vec::new() })
    }

    /// Enqueues `count` launches (`launch(i)` enqueues the i-th) back to back, each
    /// followed by an event, waits once, and returns each launch's GPU time in µs.
    pub(crate) fn time(&mut self, count: usize, mut launch: impl FnMut(usize) -> Result<()>) -> Result<Vec<f64>> {
        let ctx = self.stream.context().clone();
        while self.events.len() < count + 1 {
            // CU_EVENT_DEFAULT: timing-capable (cudarc's default disables timing).
            self.events.push(ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(cuda_err("cuEventCreate"))?);
        }
        self.events[0].record(&self.stream).map_err(cuda_err("cuEventRecord"))?;
        for i in 0..count {
            launch(i)?;
            self.events[i + 1].record(&self.stream).map_err(cuda_err("cuEventRecord"))?;
        }
        self.events[count].synchronize().map_err(cuda_err("cuEventSynchronize"))?;
        (0..count)
            .map(|i| {
                let ms = self.events[i].elapsed_ms(&self.events[i + 1]).map_err(cuda_err("cuEventElapsedTime"))?;
                Ok(f64::from(ms) * 1e3)
            })
            .collect()
    }
}

/// Captures the work `enqueue` puts on `device`'s stream into an instantiated CUDA graph.
///
/// Capture uses the relaxed mode, so a driver call that is "unsafe during capture" in
/// another part of the process cannot invalidate it; everything `enqueue` does must be
/// asynchronous stream work (launches, cuBLAS calls), with modules already loaded (run
/// the work once before capturing). The capture is always ended, also on error, so the
/// stream stays usable.
pub(crate) fn capture_graph(device: &Device, enqueue: impl FnOnce() -> Result<()>) -> Result<CudaGraph> {
    let stream = stream_of(device)?;
    stream
        .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
        .map_err(cuda_err("cuStreamBeginCapture"))?;
    let enqueued = enqueue();
    let ended = stream.end_capture(CUgraphInstantiate_flags(0)).map_err(cuda_err("cuStreamEndCapture"));
    enqueued?;
    let graph = ended?.ok_or_else(|| QkError::Cuda { op: "cuStreamEndCapture", message: "captured no work".into() })?;
    graph.upload().map_err(cuda_err("cuGraphUpload"))?;
    Ok(graph)
}

/// Replays `graph` on its stream.
pub(crate) fn launch_graph(graph: &CudaGraph) -> Result<()> {
    graph.launch().map_err(cuda_err("cuGraphLaunch"))
}
