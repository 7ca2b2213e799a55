//! Wrapper of `kernels/quantize.cu`: `qk_quantize_int8_per_token`.
//! Host reference: [`crate::formats::quantize_int8_per_token`] (bit-exact).

use half::f16;

use super::{check_buffer, check_len, check_shape, resident_wave};
use crate::abi::{self, QkQuantizeInt8Args};
use crate::device::DeviceBuffer;
use crate::{kernels, Device, Result};

/// Quantizes each row of `x` to int8 with its own scale: `scale = absmax / 127`,
/// `q = clamp(rint(x * (127 / absmax)), -127, 127)`; an all-zero row gets scale 0.
///
/// Shapes: `x` f16 `[rows, cols]`, `q` int8 `[rows, cols]`, `scales` f32 `[rows]`.
pub fn quantize_int8_per_token(
    device: &Device,
    x: &DeviceBuffer<f16>,
    q: &DeviceBuffer<i8>,
    scales: &DeviceBuffer<f32>,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let total = check_shape(rows, cols)?;
    check_buffer(device, x, "x", total)?;
    check_buffer(device, q, "q", total)?;
    check_buffer(device, scales, "scales", rows)?;
    let args = QkQuantizeInt8Args {
        x: x.device_addr(),
        q: q.device_addr(),
        scales: scales.device_addr(),
        rows: rows as u32,
        cols: cols as u32,
    };
    // One block per row, grid-stride beyond one wave of resident blocks.
    let wave = resident_wave(device, kernels::QUANTIZE_INT8_PER_TOKEN, abi::QK_QUANTIZE_BLOCK_THREADS)?;
    let blocks = rows.min(wave) as u32;
    device.launch(kernels::QUANTIZE_INT8_PER_TOKEN, [blocks, 1, 1], [abi::QK_QUANTIZE_BLOCK_THREADS, 1, 1], 0, &args)
}

/// Host-slice form of [`quantize_int8_per_token`]: returns `(q, scales)`.
pub fn quantize_int8_per_token_host(
    device: &Device,
    x: &[f16],
    rows: usize,
    cols: usize,
) -> Result<(Vec<i8>, Vec<f32>)> {
    let total = check_shape(rows, cols)?;
    check_len(x, "x", total)?;
    let x_dev = device.upload(x)?;
    let q = device.alloc::<i8>(total)?;
    let scales = device.alloc::<f32>(rows)?;
    quantize_int8_per_token(device, &x_dev, &q, &scales, rows, cols)?;
    Ok((device.download(&q)?, device.download(&scales)?))
}
