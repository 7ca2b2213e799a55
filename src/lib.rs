//! qkernels
