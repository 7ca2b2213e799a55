//! `gemm_w8a16`: the weight-only GEMM with symmetric 8-bit weights (the `qk_gemm_w8a16_*`
//! instances of the `gemm_w4a16.cu` template; plan and launch in
//! [`GemmWeightOnlyPlan`](super::GemmWeightOnlyPlan)). This file adds the int8 entry
//! point: signed int8 weights `[N, K]` with f16 scales, repacked on the host.

use half::f16;

use super::gemm_w4a16::gemm_weight_only_host;
use crate::formats::{pack_weight_only, PackedWeights, WeightOnlyWeights};
#[cfg(doc)]
use crate::QkError;
use crate::{Device, Result};

/// Repacks symmetric int8 weights `w_q` `[N, K]` with f16 scales `w_scale` `[K/group, N]`
/// (`group = K`: per-channel, `w_scale` `[N]`) into the `gemm_w8a16` kernel layout.
/// Errors: the layout's requirements (N % 64, K % 16, group 32/64/128/K dividing K) and
/// length mismatches, as [`QkError::WeightOnly`].
pub fn pack_w8a16(w_q: &[i8], w_scale: &[f16], n: usize, k: usize, group: usize) -> Result<PackedWeights> {
    let logical = WeightOnlyWeights::from_int8(w_q, w_scale.to_vec(), n, k, group)?;
    Ok(pack_weight_only(&logical)?)
}

/// One-shot `gemm_w8a16` on host data: `c = a · (w_q · w_scale)ᵀ (+ bias)`, with `a` f16
/// `[M, K]`, `w_q` int8 `[N, K]`, `w_scale` f16 `[K/group, N]`, `bias` f16 `[N]`; returns
/// C f16 `[M, N]` and the plan's description.
#[allow(clippy::too_many_arguments)]
pub fn gemm_w8a16_host(
    device: &Device,
    a: &[f16],
    w_q: &[i8],
    w_scale: &[f16],
    group: usize,
    bias: Option<&[f16]>,
    (m, n, k): (usize, usize, usize),
) -> Result<(Vec<f16>, String)> {
    let packed = pack_w8a16(w_q, w_scale, n, k, group)?;
    gemm_weight_only_host(device, a, &packed, bias, m)
}
