//! Kernel wrappers: one function per kernel, the same on every backend.
//!
//! Each wrapper validates every argument (shapes, buffer lengths, alignment, ranges)
//! and returns a typed [`QkError`] before anything is launched; a
//! kernel never sees an argument it cannot handle. `*_host` variants take and return
//! host slices for one-off calls.

mod dequant;
mod gemm_w4a16;
mod gemm_w8a16;
mod gemm_w8a8;
mod quantize;
mod split_k;

pub use dequant::{dequant_int4, dequant_int4_host, dequant_int8, dequant_int8_host, Int8Scales};
pub use gemm_w4a16::{
    gemm_w4a16_host, gemm_weight_only_host, DevicePackedWeights, GemmWeightOnlyPlan, WeightOnlyConfig,
    WeightOnlyTileShape,
};
pub use gemm_w8a16::{gemm_w8a16_host, pack_w8a16};
pub use gemm_w8a8::{gemm_w8a8, gemm_w8a8_host, GemmW8A8Config, GemmW8A8F16Plan, GemmW8A8Plan, W8A8TileShape};
pub use quantize::{quantize_int8_per_token, quantize_int8_per_token_host};

use crate::device::DeviceBuffer;
use crate::kernels::KernelRef;
use crate::{Device, QkError, Result};

/// Alignment the vectorized kernels need for their 16-byte loads and stores
/// (PTX ISA "ld"/"st": a `.v4.u32` access must be 16-byte aligned).
pub(crate) const VECTOR_ALIGN_BYTES: u64 = 16;

/// The elementwise kernels index with 32-bit integers (no 64-bit division on the GPU).
pub(crate) const MAX_ELEMENTS_U32_INDEX: usize = (u32::MAX as usize) - 64;

/// Checks a shape: both dimensions at least 1 and the element count addressable.
pub(crate) fn check_shape(rows: usize, cols: usize) -> Result<usize> {
    if rows == 0 || cols == 0 {
        return Err(QkError::invalid("shape", format!("[{rows}, {cols}] has a zero dimension")));
    }
    match rows.checked_mul(cols) {
        Some(n) if n <= MAX_ELEMENTS_U32_INDEX => Ok(n),
        _ => Err(QkError::invalid("shape", format!("[{rows}, {cols}] exceeds {MAX_ELEMENTS_U32_INDEX} elements"))),
    }
}

/// Checks that `buf` lives on `device`, holds `len` elements and is 16-byte aligned.
pub(crate) fn check_buffer<T>(device: &Device, buf: &DeviceBuffer<T>, arg: &'static str, len: usize) -> Result<()> {
    device.check_owned(buf, arg)?;
    if buf.len() != len {
        return Err(QkError::invalid(arg, format!("holds {} elements, expected {len}", buf.len())));
    }
    if !buf.device_addr().is_multiple_of(VECTOR_ALIGN_BYTES) {
        return Err(QkError::invalid(
            arg,
            format!("address {:#x} is not {VECTOR_ALIGN_BYTES}-byte aligned", buf.device_addr()),
        ));
    }
    Ok(())
}

/// Checks a host slice's length.
pub(crate) fn check_len<T>(data: &[T], arg: &'static str, len: usize) -> Result<()> {
    if data.len() != len {
        return Err(QkError::invalid(arg, format!("holds {} elements, expected {len}", data.len())));
    }
    Ok(())
}

/// Grid size of grid-stride `kernel` (blocks of `per_block` threads, one item per
/// thread per loop trip) for `work_items` items: at most one wave of the blocks the SMs
/// hold at once ([`Device::resident_blocks_per_sm`]). Every thread then loops the same
/// number of times, so a grid larger than one wave would end in a partial wave that
/// takes as long as a full one (dequant_int4's 48 registers per thread leave room for 5
/// blocks of 256 threads on an H100 SM; a grid of 8 per SM ran 1.6 waves).
pub(crate) fn grid_stride_blocks(device: &Device, kernel: KernelRef, work_items: usize, per_block: u32) -> Result<u32> {
    let needed = work_items.div_ceil(per_block as usize).max(1);
    Ok(needed.min(resident_wave(device, kernel, per_block)?) as u32)
}

/// Blocks of `kernel` (`block_threads` threads, no dynamic shared memory) all SMs hold
/// at once: one wave.
pub(crate) fn resident_wave(device: &Device, kernel: KernelRef, block_threads: u32) -> Result<usize> {
    let per_sm = device.resident_blocks_per_sm(kernel, block_threads, 0)?.max(1);
    Ok((device.properties().sm_count * per_sm) as usize)
}
