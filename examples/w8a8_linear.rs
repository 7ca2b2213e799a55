//! An INT8 (W8A8) linear layer as a serving engine runs it: weights quantized per
//! output channel once on the host, activations quantized per token on the device at
//! every step, fused with `gemm_w8a8` in one plan ([`GemmW8A8F16Plan`]). Each output is
//! checked against the exact-integer reference.
//!
//!     cargo run --release --example w8a8_linear [-- --sim]
//!
//! Runs on a CUDA GPU when one is present, else on the PTX simulator (`--sim` forces
//! the simulator). Exits non-zero if any output is outside the stated tolerance.

mod common;

use std::error::Error;

use half::f16;
use qkernels::formats::{quantize_int8_per_channel, quantize_int8_per_token, ScaleDtype};
use qkernels::ops::GemmW8A8F16Plan;
use qkernels::reference::{gemm_w8a8_reference, gemm_w8a8_tolerance};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Output features (N): any count; 360 is a multiple of neither tile width (64, 128).
const N: usize = 360;
/// Input features (K): a multiple of 16 (int8 rows are read in 16-byte chunks), here
/// not of the 64-deep K tile.
const K: usize = 1040;
/// A decode batch of 4 tokens and a 50-token prefill.
const BATCHES: [usize; 2] = [4, 50];
/// Fixed, so that a failure can be reproduced.
const SEED: u64 = 0x5eed_0008;

fn main() -> Result<(), Box<dyn Error>> {
    let device = common::device_from_args()?;
    let mut rng = StdRng::seed_from_u64(SEED);

    let w: Vec<f32> = (0..N * K).map(|_| rng.random_range(-0.05f32..0.05)).collect();
    let w_int8 = quantize_int8_per_channel(&w, N, K, ScaleDtype::F32)?;
    let w_scale = w_int8.scales().to_f32();
    let w_q_dev = device.upload(w_int8.q())?;
    let w_scale_dev = device.upload(&w_scale)?;

    let mut outside = 0;
    for m in BATCHES {
        let a: Vec<f16> = (0..m * K).map(|_| f16::from_f32(rng.random_range(-2.0f32..2.0))).collect();
        let plan = GemmW8A8F16Plan::new(&device, m, N, K)?;
        println!("\nM = {m}: {}", plan.gemm().describe());
        let a_dev = device.upload(&a)?;
        let c_dev = device.alloc::<f16>(m * N)?;
        plan.run(&a_dev, &w_q_dev, &w_scale_dev, None, &c_dev)?;
        let c = device.download(&c_dev)?;

        // The device quantizer is bit-exact with the host one, so the reference starts
        // from the same int8 activations and scales the kernel multiplied.
        let a_int8 = quantize_int8_per_token(&a, m, K)?;
        let (reference, magnitude) =
            gemm_w8a8_reference(a_int8.q(), a_int8.scales(), w_int8.q(), &w_scale, None, m, N, K)?;
        // The int32 dot products are exact: only the f32 epilogue and the f16 rounding
        // remain (gemm_w8a8_tolerance: 1 f16 ulp + 2^-22 relative).
        outside += common::count_outside(&c, &reference, &magnitude, gemm_w8a8_tolerance);
    }
    common::verdict(outside)
}
