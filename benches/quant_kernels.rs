//! CUDA-event benchmarks of the bandwidth-bound kernels: `dequant_int8`,
//! `dequant_int4` (g128, sym and asym) and `quantize_int8_per_token`, each reported as
//! bytes/s and as a ratio to a device-to-device copy of the same bytes timed in the same
//! run (the practical bandwidth ceiling of an elementwise pass).
//!
//! Every launch is timed by its own pair of CUDA events after discarded warm-ups
//! (`qkernels::bench::time_launches`); criterion gets the sum of the per-launch event
//! times through `iter_custom`, and the per-launch samples are kept for the printed
//! p50/p95/p99. Without a CUDA device the bench prints why nothing was timed and exits 0.
//!
//! Workloads: Llama-3-8B weight matrices (N x K) 14336 x 4096 and 4096 x 14336: 58.7 M
//! elements, far above any GPU's L2 (50 MB on H100), so every launch streams from HBM.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use half::f16;
use qkernels::bench::{self, stats::Summary};
use qkernels::formats::GroupSize;
use qkernels::ops::{self, Int8Scales};
use qkernels::{Device, DeviceBuffer, QkError};

/// Weight shapes (N, K) of the benches.
const WEIGHT_SHAPES: &[(usize, usize)] = &[(14336, 4096), (4096, 14336)];
/// Activation shapes (M tokens, K) of the quantize bench.
const ACTIVATION_SHAPES: &[(usize, usize)] = &[(1, 4096), (16, 4096), (512, 4096), (4096, 4096)];

fn main() {
    let device = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            println!("{}", bench::skip_message(&e.to_string()));
            return;
        }
    };
    println!(
        "device: {} (sm_{}{}), {} SMs",
        device.properties().name,
        device.properties().compute_capability.0,
        device.properties().compute_capability.1,
        device.properties().sm_count
    );
    let mut criterion = Criterion::default().configure_from_args().warm_up_time(Duration::from_millis(500));
    if let Err(e) = run(&device, &mut criterion) {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
    criterion.final_summary();
}

/// Times `launch` for criterion and keeps every per-launch sample for percentiles.
fn bench_launches(
    c: &mut Criterion,
    device: &Device,
    group: &str,
    id: BenchmarkId,
    bytes: u64,
    samples: &mut Vec<f64>,
    mut launch: impl FnMut() -> qkernels::Result<()>,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let times = bench::time_launches(device, 0, iters as usize, &mut launch).expect("timed launch");
            samples.extend_from_slice(&times);
            Duration::from_secs_f64(times.iter().sum::<f64>() * 1e-6)
        })
    });
    g.finish();
}

fn report(label: &str, bytes: u64, samples: &[f64], copy_p50_us: f64) {
    if let Some(s) = Summary::from_samples(samples) {
        let gbps = bytes as f64 / (s.p50_us * 1e-6) / 1e9;
        println!(
            "{label:<48} p50 {:>9.2} us  p95 {:>9.2}  p99 {:>9.2}  {:>7.1} GB/s  {:>5.1}% of copy",
            s.p50_us,
            s.p95_us,
            s.p99_us,
            gbps,
            100.0 * copy_p50_us / s.p50_us
        );
    }
}

fn copy_p50_us(device: &Device, bytes: usize) -> Result<f64, QkError> {
    let src: DeviceBuffer<u8> = device.alloc(bytes)?;
    let dst: DeviceBuffer<u8> = device.alloc(bytes)?;
    let samples = bench::time_launches(device, bench::DEFAULT_WARMUP_LAUNCHES, 50, || device.copy(&dst, &src))?;
    Ok(Summary::from_samples(&samples).map_or(f64::NAN, |s| s.p50_us))
}

fn run(device: &Device, c: &mut Criterion) -> Result<(), QkError> {
    println!("\nratio = copy time of the same bytes (read + write) / kernel time, both p50");
    for &(n, k) in WEIGHT_SHAPES {
        let elems = n * k;
        // dequant_int8: read int8 + scales, write f16.
        let q = device.upload(&vec![3i8; elems])?;
        let scales = device.upload(&vec![0.01f32; n])?;
        let out = device.alloc::<f16>(elems)?;
        let bytes = (elems + 4 * n + 2 * elems) as u64;
        let copy = copy_p50_us(device, bytes as usize / 2)?;
        let mut samples = Vec::new();
        bench_launches(
            c,
            device,
            "dequant_int8",
            BenchmarkId::from_parameter(format!("{n}x{k}")),
            bytes,
            &mut samples,
            || ops::dequant_int8(device, &q, Int8Scales::F32(&scales), &out, n, k),
        );
        report(&format!("dequant_int8 {n}x{k}"), bytes, &samples, copy);

        // dequant_int4 g128: read nibbles + f16 scales (+ zeros), write f16.
        let groups = n * (k / 128);
        let packed = device.upload(&vec![0x5au8; elems / 2])?;
        let s4 = device.upload(&vec![f16::from_f32(0.01); groups])?;
        let z4 = device.upload(&vec![7u8; groups])?;
        for (label, zeros) in [("sym", None), ("asym", Some(&z4))] {
            let bytes = (elems / 2 + 2 * groups + zeros.map_or(0, |_| groups) + 2 * elems) as u64;
            let copy = copy_p50_us(device, bytes as usize / 2)?;
            let mut samples = Vec::new();
            let id = BenchmarkId::new(format!("g128_{label}"), format!("{n}x{k}"));
            bench_launches(c, device, "dequant_int4", id, bytes, &mut samples, || {
                ops::dequant_int4(device, &packed, &s4, zeros, &out, n, k, GroupSize::G128)
            });
            report(&format!("dequant_int4 g128 {label} {n}x{k}"), bytes, &samples, copy);
        }
    }
    for &(m, k) in ACTIVATION_SHAPES {
        let x = device.upload(&(0..m * k).map(|i| f16::from_f32((i % 97) as f32 * 0.03 - 1.4)).collect::<Vec<_>>())?;
        let q = device.alloc::<i8>(m * k)?;
        let scales = device.alloc::<f32>(m)?;
        // Two reads of x (absmax, then quantize; the second mostly from L2), one write of q.
        let bytes = (2 * m * k + m * k + 4 * m) as u64;
        let copy = copy_p50_us(device, bytes as usize / 2)?;
        let mut samples = Vec::new();
        bench_launches(
            c,
            device,
            "quantize_int8_per_token",
            BenchmarkId::from_parameter(format!("{m}x{k}")),
            bytes,
            &mut samples,
            || ops::quantize_int8_per_token(device, &x, &q, &scales, m, k),
        );
        report(&format!("quantize_int8_per_token {m}x{k}"), bytes, &samples, copy);
    }
    Ok(())
}
