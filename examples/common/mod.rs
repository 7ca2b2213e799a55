//! What every example shares: choosing the device and checking outputs against a
//! reference. (A directory without `main.rs`, so Cargo does not build it as an example.)

use half::f16;
use qkernels::{Device, QkError};

/// A CUDA GPU when one is present, else the PTX simulator; `--sim` on the command line
/// forces the simulator. Prints which.
pub fn device_from_args() -> Result<Device, QkError> {
    let device = if std::env::args().any(|a| a == "--sim") { Device::sim() } else { Device::auto()? };
    println!("device: {} ({})", device.kind(), device.properties().name);
    Ok(device)
}

/// How many outputs `c` differ from `reference` by more than `tolerance(reference,
/// magnitude)` (the bounds of `qkernels::reference`); prints the count.
pub fn count_outside(c: &[f16], reference: &[f16], magnitude: &[f64], tolerance: impl Fn(f64, f64) -> f64) -> usize {
    let outside = c
        .iter()
        .zip(reference)
        .zip(magnitude)
        .filter(|((c, r), &mag)| {
            let error = (c.to_f64() - r.to_f64()).abs();
            // A NaN error (a NaN or infinite output) is outside, whatever the tolerance.
            error.is_nan() || error > tolerance(r.to_f64(), mag)
        })
        .count();
    println!("  {} outputs, {outside} outside the tolerance of the reference", c.len());
    outside
}

/// The example's verdict: an error (non-zero exit) if any output was outside.
pub fn verdict(outside: usize) -> Result<(), Box<dyn std::error::Error>> {
    if outside > 0 {
        return Err(format!("{outside} outputs outside the tolerance").into());
    }
    println!("\nall outputs within tolerance");
    Ok(())
}
