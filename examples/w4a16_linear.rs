//! A 4-bit weight-only linear layer, end to end: quantize f32 weights group-wise
//! (group 128, asymmetric), repack them into `gemm_w4a16`'s kernel layout, upload once,
//! and run the GEMM for a decode step (M = 1) and a short prefill (M = 33), checking
//! every output against an f64 reference. The decode step is also run twice back to
//! back with programmatic dependent launch where the device has it (an H100/H200, or
//! the simulator): the same bits as in stream order.
//!
//!     cargo run --release --example w4a16_linear [-- --sim]
//!
//! Runs on a CUDA GPU when one is present, else on the PTX simulator (`--sim` forces
//! the simulator). Exits non-zero if any output is outside the stated tolerance.

mod common;

use std::error::Error;

use half::f16;
use qkernels::formats::{pack_weight_only, quantize_int4, GroupSize, Int4Scheme, WeightOnlyWeights};
use qkernels::ops::{DevicePackedWeights, GemmWeightOnlyPlan};
use qkernels::reference::{gemm_weight_only_reference, weight_only_tolerance};
use qkernels::{Device, LaunchOrder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Output features (N): a multiple of 64, the kernel layout's column block.
const N: usize = 512;
/// Input features (K): a multiple of 16 (the layout's K unit) and of the group, 128.
const K: usize = 1024;
/// Decode (one token, the GEMV configuration) and a prefill that is not a tile multiple.
const BATCHES: [usize; 2] = [1, 33];
/// Fixed, so that a failure can be reproduced.
const SEED: u64 = 0x5eed_0004;

fn main() -> Result<(), Box<dyn Error>> {
    let device = common::device_from_args()?;
    let mut rng = StdRng::seed_from_u64(SEED);

    // Weights [N, K] with the scale of a trained layer's: normal, standard deviation 0.02.
    let w_f32: Vec<f32> = (0..N * K).map(|_| gaussian(&mut rng) * 0.02).collect();
    let int4 = quantize_int4(&w_f32, N, K, GroupSize::G128, Int4Scheme::Asymmetric)?;
    let logical = WeightOnlyWeights::from_int4(&int4)?;
    // The f16 weights the kernel computes with, (q - z) * s rounded once: the reference's.
    let w_dequant = logical.dequantize();
    let weights = DevicePackedWeights::upload(&device, &pack_weight_only(&logical)?)?;
    let bias: Vec<f16> = (0..N).map(|_| f16::from_f32(gaussian(&mut rng) * 0.1)).collect();
    let bias_dev = device.upload(&bias)?;

    let mut outside = 0;
    for m in BATCHES {
        let a: Vec<f16> = (0..m * K).map(|_| f16::from_f32(gaussian(&mut rng))).collect();
        let plan = GemmWeightOnlyPlan::new(&device, &weights, m)?;
        println!("\nM = {m}: {}", plan.describe());
        let a_dev = device.upload(&a)?;
        let c_dev = device.alloc::<f16>(m * N)?;
        plan.run(&a_dev, &weights, Some(&bias_dev), &c_dev)?;
        let c = device.download(&c_dev)?;
        if m == 1 {
            outside += programmatic_decode(&device, &plan, &a_dev, &weights, &bias_dev, &c)?;
        }

        // Kernel vs reference on the same f16 weights: they differ only by the f32
        // accumulation and the final rounding to f16 (the bound weight_only_tolerance
        // states: 1 f16 ulp + K * 2^-23 relative to sum |a * w|).
        let (reference, magnitude) = gemm_weight_only_reference(&a, &w_dequant, Some(&bias), m, N, K)?;
        outside += common::count_outside(&c, &reference, &magnitude, |r, mag| weight_only_tolerance(r, mag, K));
        // What quantization itself costs: the same layer with the original f32 weights.
        let (exact, _) = gemm_weight_only_reference(&a, &to_f16(&w_f32), Some(&bias), m, N, K)?;
        let rms = |v: &[f16], ref_: &[f16]| {
            let sq: f64 = v.iter().zip(ref_).map(|(x, y)| (x.to_f64() - y.to_f64()).powi(2)).sum();
            (sq / v.len() as f64).sqrt()
        };
        println!(
            "  4-bit vs f16 weights: rms difference {:.4} (output rms {:.4})",
            rms(&reference, &exact),
            rms(&exact, &vec![f16::ZERO; exact.len()]),
        );
    }
    common::verdict(outside)
}

/// Runs `plan` as a decode loop would on Hopper: two launches back to back with
/// programmatic dependent launch, each allowed to start (and prefetch its weights)
/// while the previous one finishes, and waiting for it before reading A or writing C.
/// The split-K fix-up sums in a fixed order, so C must equal `stream_order` bit for bit.
/// Returns 1 when it does not, 0 when it does or the device cannot launch so.
fn programmatic_decode(
    device: &Device,
    plan: &GemmWeightOnlyPlan,
    a: &qkernels::DeviceBuffer<f16>,
    weights: &DevicePackedWeights,
    bias: &qkernels::DeviceBuffer<f16>,
    stream_order: &[f16],
) -> Result<usize, Box<dyn Error>> {
    if let Err(e) = device.check_launch_order(LaunchOrder::Programmatic) {
        println!("  programmatic launch: skipped: {e}");
        return Ok(0);
    }
    let (m, n, k) = plan.dims();
    let programmatic = GemmWeightOnlyPlan::new(device, weights, m)?.with_launch_order(LaunchOrder::Programmatic)?;
    let c = device.alloc::<f16>(m * n)?;
    for _ in 0..2 {
        programmatic.run(a, weights, Some(bias), &c)?;
    }
    let same = device.download(&c)?.iter().zip(stream_order).all(|(x, y)| x.to_bits() == y.to_bits());
    println!(
        "  programmatic launch, twice back to back (K = {k}): {}",
        if same { "the same bits as stream order" } else { "DIFFERENT from stream order" }
    );
    Ok(usize::from(!same))
}

/// A standard normal sample (Box-Muller), so the example needs no distribution crate.
fn gaussian(rng: &mut StdRng) -> f32 {
    let (u1, u2): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

fn to_f16(v: &[f32]) -> Vec<f16> {
    v.iter().map(|&x| f16::from_f32(x)).collect()
}
