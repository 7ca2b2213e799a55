//! The decoder-layer workload (issue 7, item 6; the seed's forward-pass view): the four
//! linear layers of one decoder layer (fused QKV, O, fused gate+up, down) at batch M,
//! captured as one CUDA graph per precision and timed with events. Layer time × layer
//! count is the projected step time of the *linear part* of the forward pass, and
//! M / step time its tokens per second — attention, norms, activations, sampling and
//! communication are excluded, and the reports say so.
//!
//! M ≤ [`DECODE_MAX_M`] is labelled decode (M = concurrent sequences, one token each),
//! larger M prefill (M = prompt tokens).
//!

use half::f16;

use super::cublas::Blas;
use super::gemm::{GemmImpl, Model, Weights};
use super::point::{LaunchFn, Point, Record};
use super::report::BenchResult;
use crate::ops::{GemmW8A8F16Plan, GemmWeightOnlyPlan};
use crate::{Device, DeviceBuffer, Result};

/// Largest M labelled decode; above it a batch is a prefill of M prompt tokens.
pub const DECODE_MAX_M: usize = 256;

/// A precision of the decoder-layer workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerPrecision {
    /// FP16 weights and activations, cuBLAS GEMMs.
    Fp16,
    /// INT8 weights, activations quantized per token on the fly, `gemm_w8a8`.
    W8A8,
    /// 4-bit weights, groups of 128, symmetric; f16 activations (`gemm_w4a16`).
    W4A16,
    /// 8-bit per-channel weights; f16 activations (`gemm_w8a16`).
    W8A16,
    /// [`LayerPrecision::W4A16`] with the four GEMMs launched with programmatic dependent
    /// launch (compute capability 9.0, sm_90a code): each may start, and fetch its first weights,
    /// while the previous one finishes. Untimed yet, so run only when named.
    W4A16Pdl,
}

impl LayerPrecision {
    /// Every precision, baseline first.
    pub const ALL: [LayerPrecision; 5] = [
        LayerPrecision::Fp16,
        LayerPrecision::W8A8,
        LayerPrecision::W4A16,
        LayerPrecision::W8A16,
        LayerPrecision::W4A16Pdl,
    ];

    /// Kernel name in reports.
    pub fn name(self) -> &'static str {
        match self {
            LayerPrecision::Fp16 => super::report::BASELINE_LAYER,
            LayerPrecision::W8A8 => "layer_w8a8",
            LayerPrecision::W4A16 => "layer_w4a16_g128",
            LayerPrecision::W8A16 => "layer_w8a16",
            LayerPrecision::W4A16Pdl => "layer_w4a16_g128_pdl",
        }
    }

    /// Whether the precision runs only when named (`--kernels`): an untimed experiment.
    pub fn explicit_only(self) -> bool {
        self.gemm_impl().explicit_only()
    }

    /// The precision called `name`.
    pub fn from_name(name: &str) -> Option<LayerPrecision> {
        LayerPrecision::ALL.into_iter().find(|p| p.name() == name)
    }

    fn gemm_impl(self) -> GemmImpl {
        match self {
            LayerPrecision::Fp16 => GemmImpl::CublasF16,
            LayerPrecision::W8A8 => GemmImpl::QuantW8A8,
            LayerPrecision::W4A16 => GemmImpl::W4A16G128Sym,
            LayerPrecision::W8A16 => GemmImpl::W8A16,
            LayerPrecision::W4A16Pdl => GemmImpl::W4A16G128SymPdl,
        }
    }
}

/// Decode or prefill, by M.
pub fn phase(m: usize) -> &'static str {
    if m <= DECODE_MAX_M {
        "decode"
    } else {
        "prefill"
    }
}

/// Weights of one decoder layer for the selected precisions (one copy: a layer's weights
/// are hundreds of MB, far beyond any L2).
pub(crate) struct LayerWeights {
    linears: Vec<Weights>,
}

impl LayerWeights {
    pub(crate) fn new(device: &Device, model: &Model, precisions: &[LayerPrecision]) -> Result<LayerWeights> {
        let impls: Vec<_> = precisions.iter().map(|p| p.gemm_impl()).collect();
        let linears = model.linears.iter().map(|l| Weights::new(device, l.n, l.k, &impls, 1)).collect::<Result<_>>()?;
        Ok(LayerWeights { linears })
    }

    /// Bytes of one layer's weights for `precisions`.
    pub(crate) fn bytes(model: &Model, precisions: &[LayerPrecision]) -> u64 {
        let impls: Vec<_> = precisions.iter().map(|p| p.gemm_impl()).collect();
        model.linears.iter().map(|l| Weights::bytes_per_copy(l.n, l.k, &impls)).sum()
    }
}

/// Activations of one layer at batch M: an f16 input `[M, K]` and an f16 output `[M, N]`
/// per linear. The data flow between the linears (attention, activation function) is
/// not part of the workload, so each linear has its own input.
pub(crate) struct LayerActivations {
    m: usize,
    inputs: Vec<DeviceBuffer<f16>>,
    outputs: Vec<DeviceBuffer<f16>>,
}

/// Value of every input activation: non-zero (all-zero operands run faster on tensor
/// cores) and far from f16 overflow through K = 28672 products.
const INPUT_VALUE: f32 = 0.5;

impl LayerActivations {
    pub(crate) fn new(device: &Device, model: &Model, m: usize) -> Result<LayerActivations> {
        let inputs = model
            .linears
            .iter()
            .map(|l| device.upload(&vec![f16::from_f32(INPUT_VALUE); m * l.k]))
            .collect::<Result<_>>()?;
        let outputs = model.linears.iter().map(|l| device.alloc::<f16>(m * l.n)).collect::<Result<_>>()?;
        Ok(LayerActivations { m, inputs, outputs })
    }

    /// Bytes at batch M.
    pub(crate) fn bytes(model: &Model, m: usize) -> u64 {
        model.linears.iter().map(|l| 2 * m as u64 * (l.n + l.k) as u64).sum()
    }
}

/// Plans of one (model, M).
pub(crate) struct LayerPlans {
    blas: Option<std::result::Result<Blas, String>>,
    w8a8: Option<std::result::Result<Vec<GemmW8A8F16Plan>, String>>,
    /// Per weight-only precision, one plan per linear.
    weight_only: Vec<(LayerPrecision, std::result::Result<Vec<GemmWeightOnlyPlan>, String>)>,
}

impl LayerPlans {
    pub(crate) fn new(
        device: &Device,
        model: &Model,
        m: usize,
        precisions: &[LayerPrecision],
        w: &LayerWeights,
    ) -> LayerPlans {
        let has = |p| precisions.contains(&p);
        let weight_only = precisions
            .iter()
            .filter(|p| matches!(p, LayerPrecision::W4A16 | LayerPrecision::W8A16 | LayerPrecision::W4A16Pdl))
            .map(|&p| {
                let plans = w
                    .linears
                    .iter()
                    .map(|l| {
                        let packed = l.packed(p.gemm_impl())?;
                        GemmWeightOnlyPlan::new(device, &packed[0], m)
                            .and_then(|plan| plan.with_launch_order(p.gemm_impl().launch_order()))
                            .map_err(|e| e.to_string())
                    })
                    .collect::<std::result::Result<Vec<_>, String>>();
                (p, plans)
            })
            .collect();
        LayerPlans {
            weight_only,
            blas: has(LayerPrecision::Fp16).then(|| Blas::new(device).map_err(|e| e.to_string())),
            w8a8: has(LayerPrecision::W8A8).then(|| {
                model
                    .linears
                    .iter()
                    .map(|l| GemmW8A8F16Plan::new(device, m, l.n, l.k))
                    .collect::<Result<Vec<_>>>()
                    .map_err(|e| e.to_string())
            }),
        }
    }
}

/// One layer's four linears at `precision` as a launcher.
fn enqueue<'a>(
    precision: LayerPrecision,
    model: &'a Model,
    w: &'a LayerWeights,
    a: &'a LayerActivations,
    plans: &'a LayerPlans,
) -> std::result::Result<LaunchFn<'a>, String> {
    let m = a.m;
    match precision {
        LayerPrecision::Fp16 => {
            let blas = match &plans.blas {
                Some(Ok(b)) => b,
                Some(Err(e)) => return Err(e.clone()),
                None => return Err("not planned".into()),
            };
            Ok(Box::new(move |_| {
                for (i, l) in model.linears.iter().enumerate() {
                    blas.gemm_f16((m, l.n, l.k), &a.inputs[i], w.linears[i].f16_weights(), &a.outputs[i])?;
                }
                Ok(())
            }))
        }
        LayerPrecision::W8A8 => {
            let gemms = match &plans.w8a8 {
                Some(Ok(p)) => p,
                Some(Err(e)) => return Err(e.clone()),
                None => return Err("not planned".into()),
            };
            Ok(Box::new(move |_| {
                for (i, plan) in gemms.iter().enumerate() {
                    let (wq, ws) = w.linears[i].i8_weights();
                    plan.run(&a.inputs[i], wq, ws, None, &a.outputs[i])?;
                }
                Ok(())
            }))
        }
        LayerPrecision::W4A16 | LayerPrecision::W8A16 | LayerPrecision::W4A16Pdl => {
            let gemms = match plans.weight_only.iter().find(|(p, _)| *p == precision) {
                Some((_, Ok(p))) => p,
                Some((_, Err(e))) => return Err(e.clone()),
                None => return Err("not planned".into()),
            };
            let weights = w
                .linears
                .iter()
                .map(|l| l.packed(precision.gemm_impl()).map(|p| &p[0]))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Box::new(move |_| {
                for (i, plan) in gemms.iter().enumerate() {
                    plan.run(&a.inputs[i], weights[i], None, &a.outputs[i])?;
                }
                Ok(())
            }))
        }
    }
}

/// Builds the decoder-layer point of `model` at batch M: one launcher per precision
/// (baseline first), warmed up, then captured as one CUDA graph each (always: the
/// workload is defined as graph replays, so host launch overhead between the linears is
/// excluded).
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_point<'a>(
    device: &Device,
    model: &'a Model,
    precisions: &[LayerPrecision],
    w: &'a LayerWeights,
    a: &'a LayerActivations,
    plans: &'a LayerPlans,
    warmup: usize,
) -> Result<Point<'a>> {
    let m = a.m;
    let mut point = Point::new(device, format!("decoder_layer/{}", model.key), m)?;
    for &p in precisions {
        let imp = p.gemm_impl();
        let flops: f64 = model.linears.iter().map(|l| 2.0 * (m * l.n * l.k) as f64).sum();
        let bytes: f64 = model.linears.iter().map(|l| imp.bytes(m, l.n, l.k)).sum();
        let result = BenchResult {
            kernel: p.name().into(),
            label: Some(format!("{} {} (linear layers only)", model.name, phase(m))),
            m: m as u64,
            n: model.hidden as u64,
            k: model.intermediate as u64,
            flops: Some(flops),
            bytes: Some(bytes),
            tensor_rate_vs_fp16: Some(imp.tensor_rate_vs_fp16()),
            layers: Some(model.layers),
            ..BenchResult::default()
        };
        point.add(result, enqueue(p, model, w, a, plans));
    }
    let all: Vec<usize> = point.runnable().into_iter().map(|(i, _)| i).collect();
    point.time_rounds(&all, warmup.max(1), Record::Discard)?;
    point.capture_graphs(1);
    let all: Vec<usize> = point.runnable().into_iter().map(|(i, _)| i).collect();
    point.time_rounds(&all, 1, Record::Discard)?;
    Ok(point)
}
