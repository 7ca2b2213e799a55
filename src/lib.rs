//! # qkernels — quantized GEMM, GEMV, dequant and quantize kernels for LLM inference
//!
//! Hand-written CUDA kernels (`kernels/*.cu`) with Rust wrappers that run on a real GPU
//! or, with no GPU at all, on the project's PTX simulator (`ptxsim`), which executes the
//! exact PTX that `build.rs` produced.
//!
//! A walkthrough:
//! 1. Pick a device: [`Device::auto`] (a CUDA GPU when one exists, else the simulator),
//!    [`Device::cuda`] or [`Device::sim`].
//! 2. Quantize on the host with [`formats`] (the reference quantizers and packers), or on
//!    the device with [`ops::quantize_int8_per_token`].
//! 3. Upload with [`Device::upload`], run a kernel wrapper from [`ops`] (every argument is
//!    validated before launch; bad shapes give a typed [`QkError`]), download the result.
//!
//! ```no_run
//! use qkernels::{Device, ops};
//! # fn main() -> Result<(), qkernels::QkError> {
//! let device = Device::auto()?;
//! let (rows, cols) = (4, 64);
//! let q: Vec<i8> = (0..rows * cols).map(|i| (i % 255) as i8).collect();
//! let scales = vec![0.02f32; rows];
//! let out = ops::dequant_int8_host(&device, &q, &scales, rows, cols)?;
//! assert_eq!(out.len(), rows * cols);
//! # Ok(()) }
//! ```
//!
//! Runnable end-to-end programs, each checking its outputs against a reference, are in
//! `examples/`: `w4a16_linear` (quantize, repack, decode and prefill GEMMs),
//! `gptq_layer` (a GPTQ checkpoint's layer from safetensors to `gemm_w4a16`) and
//! `w8a8_linear` (per-token activation quantization fused with `gemm_w8a8`).
//!
//! Layout of the crate: [`abi`] (generated from the one shared C header), [`formats`]
//! (host formats and references), [`device`] (backends), [`kernels`] (the compiled kernel
//! index), [`ops`] (kernel wrappers), [`bench`](mod@bench) (the CUDA-event timing harness), [`cli`]
//! (the `qk` command).

#![warn(missing_docs)]

pub mod abi;
pub mod bench;
pub mod cli;
pub mod device;
mod error;
pub mod formats;
pub mod kernels;
pub mod ops;
pub mod reference;

pub use device::{BackendKind, Device, DeviceBuffer, DeviceProperties, DeviceRegion, LaunchOrder};
pub use error::QkError;

/// Result type of this crate.
pub type Result<T, E = QkError> = std::result::Result<T, E>;
