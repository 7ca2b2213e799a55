//! The crate's error type: every failure of the public API is one of these variants,
//! never a panic.

use crate::formats::{FormatError, WeightOnlyError};

/// Errors of the qkernels API.
#[derive(Debug, thiserror::Error)]
pub enum QkError {
    /// No usable CUDA driver or device on this machine.
    #[error("no CUDA device: {reason}")]
    NoCudaDevice {
        /// Why (library missing, no device, driver error).
        reason: String,
    },
    /// A CUDA driver call failed.
    #[error("CUDA error in {op}: {message}")]
    Cuda {
        /// The operation that failed.
        op: &'static str,
        /// The driver's message.
        message: String,
    },
    /// The PTX simulator reported a hazard or failed to run a kernel.
    #[error("simulator: {0}")]
    Sim(#[from] ptxsim::SimError),
    /// A kernel argument is invalid (shape, length, alignment, range).
    #[error("invalid argument `{arg}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        arg: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Host-side quantization format error.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Weight-only (GPTQ / AWQ / int8) import, validation or repack error: which tensor or
    /// dimension, and what the format or the kernel layout requires.
    #[error(transparent)]
    WeightOnly(#[from] WeightOnlyError),
    /// A buffer belongs to another device than the one asked to use it.
    #[error("buffer `{arg}` belongs to another device")]
    ForeignBuffer {
        /// The argument's name.
        arg: &'static str,
    },
    /// A kernel is missing from the compiled modules (a build problem).
    #[error("kernel {module}::{name} is not in the compiled modules")]
    MissingKernel {
        /// Module (file stem).
        module: &'static str,
        /// Kernel name.
        name: &'static str,
    },
}

impl QkError {
    pub(crate) fn invalid(arg: &'static str, reason: impl Into<String>) -> Self {
        QkError::InvalidArgument { arg, reason: reason.into() }
    }
}
