//! Simulator speed: runs a shared-memory tiled SGEMM (real nvcc output) and prints
//! simulated thread-instructions per second, with hazard checks on and off, on one
//! worker thread and on all of them. Run: `cargo bench -p ptxsim --bench speed`;
//! `-- on 1` (or `off 2`, ...) runs one configuration only, for `perf stat`.

use std::time::Instant;

use ptxsim::{Gpu, KernelArg, Module};

fn run(hazards: bool, threads: usize, n: usize) -> (u64, f64) {
    let m = Module::from_ptx(include_str!("../tests/ptx/tiled_sgemm.ptx")).expect("parse");
    let mut gpu = Gpu::new();
    gpu.set_hazard_checks(hazards);
    gpu.set_threads(threads);
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32).collect();
    let (da, db, dc) = (gpu.alloc(n * n * 4).unwrap(), gpu.alloc(n * n * 4).unwrap(), gpu.alloc(n * n * 4).unwrap());
    gpu.write(da, &bytes(&a)).unwrap();
    gpu.write(db, &bytes(&a)).unwrap();
    let g = (n / 16) as u32;
    let args = [
        KernelArg::U64(da),
        KernelArg::U64(db),
        KernelArg::U64(dc),
        KernelArg::I32(n as i32),
        KernelArg::I32(n as i32),
        KernelArg::I32(n as i32),
    ];
    let t = Instant::now();
    let r = gpu.launch(&m, "tiled_sgemm", [g, g, 1], [16, 16, 1], 0, &args).expect("launch");
    (r.instructions, t.elapsed().as_secs_f64())
}

fn main() {
    let n = 256;
    let all = std::thread::available_parallelism().map_or(1, |x| x.get());
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let configs = match (args.first().map(String::as_str), args.get(1).and_then(|t| t.parse().ok())) {
        (Some(h), Some(t)) => vec![(h == "on", t)],
        _ => vec![(true, 1), (false, 1), (true, all), (false, all)],
    };
    for (hazards, threads) in configs {
        let (instrs, secs) = run(hazards, threads, n);
        println!(
            "tiled_sgemm {n}^3, hazards {:>3}, {threads} worker(s): {instrs} thread-instructions in {secs:.3} s = {:.1} M instr/s ({:.1} M/s per worker)",
            if hazards { "on" } else { "off" },
            instrs as f64 / secs / 1e6,
            instrs as f64 / secs / 1e6 / threads as f64
        );
    }
}
