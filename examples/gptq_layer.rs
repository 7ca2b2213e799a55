//! One layer of a GPTQ checkpoint, from its safetensors file to `gemm_w4a16`: read the
//! layer's `qweight`, `qzeros`, `scales` and `g_idx` by name, import them
//! ([`import_gptq`]), repack into the kernel layout, and run a decode step and a small
//! batch. The import also handles act-order checkpoints (`g_idx` not `k / group`); the
//! wrapper then permutes A's columns on the device before the GEMM.
//!
//!     cargo run --release --example gptq_layer [-- --sim]
//!
//! No checkpoint is downloaded: the example first writes a small act-order one
//! (AutoGPTQ's classic format, zero points stored minus one) from random codes, packed as
//! the format describes, and checks the kernel against those codes dequantized here,
//! not through the importer. Runs on a CUDA GPU when present, else on the PTX simulator
//! (`--sim` forces it); exits non-zero outside the stated tolerance.

mod common;

use std::collections::HashMap;
use std::error::Error;
use std::path::Path;

use half::f16;
use qkernels::formats::{import_gptq, pack_weight_only, GptqTensors, GptqVersion, RawTensor};
use qkernels::ops::{DevicePackedWeights, GemmWeightOnlyPlan};
use qkernels::reference::{f16_from_f64_rn, gemm_weight_only_reference, weight_only_tolerance};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// The layer's name in the checkpoint, as a Llama checkpoint would have it.
const LAYER: &str = "model.layers.0.mlp.down_proj";
/// Input features (K) and output features (N) of the layer; N a multiple of 64 (the
/// kernel layout's column block), K of the group.
const K: usize = 512;
const N: usize = 256;
/// GPTQ's most common group size.
const GROUP: usize = 128;
/// 4-bit codes per int32 word, lowest nibble first.
const PER_WORD: usize = 8;
/// A decode step and a small batch.
const BATCHES: [usize; 2] = [1, 8];
/// Fixed, so that a failure can be reproduced.
const SEED: u64 = 0x5eed_0009;

/// The layer as a quantizer produced it: codes and zero points 0..=15, f16 scales,
/// and each input row's group.
struct Layer {
    codes: Vec<u8>, // [K, N]
    zeros: Vec<u8>, // [K / GROUP, N]
    scales: Vec<f16>,
    g_idx: Vec<u32>, // [K]
}

fn main() -> Result<(), Box<dyn Error>> {
    let device = common::device_from_args()?;
    let mut rng = StdRng::seed_from_u64(SEED);
    let layer = random_layer(&mut rng);
    let path = std::env::temp_dir().join(format!("qk-example-gptq-{}.safetensors", std::process::id()));
    write_gptq_v1(&layer, &path)?;

    // What a user does with a real checkpoint: read the file, take the layer's tensors.
    let bytes = std::fs::read(&path)?;
    std::fs::remove_file(&path)?;
    let file = SafeTensors::deserialize(&bytes)?;
    let views: HashMap<&str, TensorView> = ["qweight", "qzeros", "scales", "g_idx"]
        .into_iter()
        .map(|t| Ok((t, file.tensor(&format!("{LAYER}.{t}"))?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    let raw =
        |name: &str| RawTensor { dtype: views[name].dtype(), shape: views[name].shape(), data: views[name].data() };
    let tensors = GptqTensors {
        qweight: raw("qweight"),
        qzeros: raw("qzeros"),
        scales: raw("scales"),
        g_idx: Some(raw("g_idx")),
    };
    let logical = import_gptq(&tensors, GptqVersion::V1)?;
    let weights = DevicePackedWeights::upload(&device, &pack_weight_only(&logical)?)?;
    println!("imported {LAYER}: {}, act-order {}", logical.shape(), logical.g_idx().is_some());

    // The reference's weights, [N, K], from the codes as written: w = f16((q - z) * s).
    let w: Vec<f16> = (0..N * K)
        .map(|i| {
            let (n, k) = (i / K, i % K);
            let g = layer.g_idx[k] as usize;
            let q_minus_z = f64::from(layer.codes[k * N + n]) - f64::from(layer.zeros[g * N + n]);
            f16_from_f64_rn(q_minus_z * layer.scales[g * N + n].to_f64())
        })
        .collect();

    let mut outside = 0;
    for m in BATCHES {
        let a: Vec<f16> = (0..m * K).map(|_| f16::from_f32(rng.random_range(-3.0f32..3.0))).collect();
        let plan = GemmWeightOnlyPlan::new(&device, &weights, m)?;
        println!("\nM = {m}: {}", plan.describe());
        let (a_dev, c_dev) = (device.upload(&a)?, device.alloc::<f16>(m * N)?);
        plan.run(&a_dev, &weights, None, &c_dev)?;
        let c = device.download(&c_dev)?;
        let (reference, magnitude) = gemm_weight_only_reference(&a, &w, None, m, N, K)?;
        // 1 f16 ulp + K * 2^-23 relative to sum |a * w|: f32 accumulation, f16 rounding.
        outside += common::count_outside(&c, &reference, &magnitude, |r, mag| weight_only_tolerance(r, mag, K));
    }
    common::verdict(outside)
}

/// Random codes, zero points in 1..=15 (the classic format stores z - 1, so it cannot
/// hold 0), scales in ±[2^-9, 2^-5] and an act-order `g_idx`: a random assignment of
/// the K rows to groups of GROUP rows each.
fn random_layer(rng: &mut StdRng) -> Layer {
    let groups = K / GROUP;
    let mut g_idx: Vec<u32> = (0..K).map(|k| (k / GROUP) as u32).collect();
    g_idx.shuffle(rng);
    Layer {
        codes: (0..K * N).map(|_| rng.random_range(0..16)).collect(),
        zeros: (0..groups * N).map(|_| rng.random_range(1..16)).collect(),
        scales: (0..groups * N)
            .map(|_| {
                let magnitude = 2f32.powf(rng.random_range(-9.0..-5.0));
                f16::from_f32(if rng.random() { magnitude } else { -magnitude })
            })
            .collect(),
        g_idx,
    }
}

/// Writes `layer` as AutoGPTQ's classic format describes it: `qweight` int32 [K/8, N]
/// (word (r, n) nibble i = code of row 8r + i), `qzeros` int32 [K/g, N/8] (word (j, c)
/// nibble i = zero point of column 8c + i, minus one), `scales` f16 [K/g, N], `g_idx`
/// int32 [K].
fn write_gptq_v1(layer: &Layer, path: &Path) -> Result<(), Box<dyn Error>> {
    let groups = K / GROUP;
    let pack = |nibbles: &mut dyn Iterator<Item = u8>| -> i32 {
        nibbles.take(PER_WORD).enumerate().fold(0u32, |word, (i, v)| word | u32::from(v) << (4 * i)) as i32
    };
    let qweight: Vec<i32> = (0..K / PER_WORD * N)
        .map(|i| {
            let (r, n) = (i / N, i % N);
            pack(&mut (0..PER_WORD).map(|j| layer.codes[(r * PER_WORD + j) * N + n]))
        })
        .collect();
    let qzeros: Vec<i32> = (0..groups * N / PER_WORD)
        .map(|i| {
            let (g, c) = (i / (N / PER_WORD), i % (N / PER_WORD));
            pack(&mut (0..PER_WORD).map(|j| layer.zeros[g * N + c * PER_WORD + j] - 1))
        })
        .collect();
    let g_idx: Vec<i32> = layer.g_idx.iter().map(|&g| g as i32).collect();
    let data = [
        ("qweight", Dtype::I32, vec![K / PER_WORD, N], bytemuck::cast_slice::<i32, u8>(&qweight).to_vec()),
        ("qzeros", Dtype::I32, vec![groups, N / PER_WORD], bytemuck::cast_slice(&qzeros).to_vec()),
        ("scales", Dtype::F16, vec![groups, N], bytemuck::cast_slice(&layer.scales).to_vec()),
        ("g_idx", Dtype::I32, vec![K], bytemuck::cast_slice(&g_idx).to_vec()),
    ];
    let views = data
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            Ok((format!("{LAYER}.{name}"), TensorView::new(*dtype, shape.clone(), bytes)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    safetensors::serialize_to_file(views, None, path)?;
    Ok(())
}
