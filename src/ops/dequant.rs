//! Wrappers of `kernels/dequant.cu`: `qk_dequant_int8` and `qk_dequant_int4`.
//! Host references: [`crate::formats`] (`dequant_int8_reference`, `dequant_int4_reference`).

use half::f16;

use super::{check_buffer, check_len, check_shape, grid_stride_blocks};
use crate::abi::{self, QkDequantInt4Args, QkDequantInt8Args};
use crate::device::DeviceBuffer;
use crate::formats::GroupSize;
use crate::{kernels, Device, QkError, Result};

/// Per-row scales of an int8 tensor, in either precision the kernel reads.
#[derive(Debug, Clone, Copy)]
pub enum Int8Scales<'a> {
    /// f32 scales, one per row.
    F32(&'a DeviceBuffer<f32>),
    /// f16 scales, one per row.
    F16(&'a DeviceBuffer<f16>),
}

/// `out[r, c] = f16(q[r, c] * scale[r])` (f32 product, one rounding).
///
/// Shapes: `q` int8 `[rows, cols]`, `scales` `[rows]`, `out` f16 `[rows, cols]`, all
/// row-major; `rows, cols >= 1`. Buffers must be on `device` and 16-byte aligned.
pub fn dequant_int8(
    device: &Device,
    q: &DeviceBuffer<i8>,
    scales: Int8Scales<'_>,
    out: &DeviceBuffer<f16>,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let total = check_shape(rows, cols)?;
    check_buffer(device, q, "q", total)?;
    check_buffer(device, out, "out", total)?;
    let (scales_addr, scale_dtype) = match scales {
        Int8Scales::F32(s) => {
            check_buffer(device, s, "scales", rows)?;
            (s.device_addr(), abi::QK_SCALE_F32)
        }
        Int8Scales::F16(s) => {
            check_buffer(device, s, "scales", rows)?;
            (s.device_addr(), abi::QK_SCALE_F16)
        }
    };
    let args = QkDequantInt8Args {
        q: q.device_addr(),
        scales: scales_addr,
        out: out.device_addr(),
        rows: rows as u32,
        cols: cols as u32,
        scale_dtype,
        pad0: 0,
    };
    let vectors = total / abi::QK_DEQUANT_INT8_ELEMS_PER_THREAD as usize;
    let blocks = grid_stride_blocks(device, kernels::DEQUANT_INT8, vectors, abi::QK_DEQUANT_BLOCK_THREADS)?;
    device.launch(kernels::DEQUANT_INT8, [blocks, 1, 1], [abi::QK_DEQUANT_BLOCK_THREADS, 1, 1], 0, &args)
}

/// Host-slice form of [`dequant_int8`] with f32 scales.
pub fn dequant_int8_host(device: &Device, q: &[i8], scales: &[f32], rows: usize, cols: usize) -> Result<Vec<f16>> {
    let total = check_shape(rows, cols)?;
    check_len(q, "q", total)?;
    check_len(scales, "scales", rows)?;
    let q_dev = device.upload(q)?;
    let s_dev = device.upload(scales)?;
    let out = device.alloc::<f16>(total)?;
    dequant_int8(device, &q_dev, Int8Scales::F32(&s_dev), &out, rows, cols)?;
    device.download(&out)
}

/// `out[r, c] = f16((q[r, c] - z[r, c/g]) * s[r, c/g])`, exact up to the one f16 rounding.
///
/// Shapes: `packed` u8 `[rows, cols/2]` (column `2j` in the low nibble of byte `j`),
/// `scales` f16 `[rows, cols/g]`, `zeros` u8 `[rows, cols/g]` (values 0..=15) or `None`
/// for the symmetric format (zero point 8), `out` f16 `[rows, cols]`. `cols` must be even
/// and divisible by the group size.
#[allow(clippy::too_many_arguments)]
pub fn dequant_int4(
    device: &Device,
    packed: &DeviceBuffer<u8>,
    scales: &DeviceBuffer<f16>,
    zeros: Option<&DeviceBuffer<u8>>,
    out: &DeviceBuffer<f16>,
    rows: usize,
    cols: usize,
    group: GroupSize,
) -> Result<()> {
    let total = check_shape(rows, cols)?;
    if !cols.is_multiple_of(2) {
        return Err(QkError::invalid("cols", format!("{cols} is odd; int4 packs two columns per byte")));
    }
    let group_elems = group.elems(cols);
    if !cols.is_multiple_of(group_elems) {
        return Err(QkError::invalid("group", format!("cols {cols} is not divisible by the group size {group_elems}")));
    }
    let groups = rows * (cols / group_elems);
    check_buffer(device, packed, "packed", total / 2)?;
    check_buffer(device, scales, "scales", groups)?;
    if let Some(z) = zeros {
        check_buffer(device, z, "zeros", groups)?;
    }
    check_buffer(device, out, "out", total)?;
    let args = QkDequantInt4Args {
        packed: packed.device_addr(),
        scales: scales.device_addr(),
        zeros: zeros.map_or(0, |z| z.device_addr()),
        out: out.device_addr(),
        rows: rows as u32,
        cols: cols as u32,
        group_size: group_elems as u32,
        pad0: 0,
    };
    let vectors = total / abi::QK_DEQUANT_INT4_ELEMS_PER_THREAD as usize;
    let blocks = grid_stride_blocks(device, kernels::DEQUANT_INT4, vectors, abi::QK_DEQUANT_BLOCK_THREADS)?;
    device.launch(kernels::DEQUANT_INT4, [blocks, 1, 1], [abi::QK_DEQUANT_BLOCK_THREADS, 1, 1], 0, &args)
}

/// Host-slice form of [`dequant_int4`].
#[allow(clippy::too_many_arguments)]
pub fn dequant_int4_host(
    device: &Device,
    packed: &[u8],
    scales: &[f16],
    zeros: Option<&[u8]>,
    rows: usize,
    cols: usize,
    group: GroupSize,
) -> Result<Vec<f16>> {
    let total = check_shape(rows, cols)?;
    let packed_dev = device.upload(packed)?;
    let scales_dev = device.upload(scales)?;
    let zeros_dev = zeros.map(|z| device.upload(z)).transpose()?;
    let out = device.alloc::<f16>(total)?;
    dequant_int4(device, &packed_dev, &scales_dev, zeros_dev.as_ref(), &out, rows, cols, group)?;
    device.download(&out)
}
