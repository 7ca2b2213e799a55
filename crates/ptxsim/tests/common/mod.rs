//! Helpers shared by the integration tests: typed upload/download and launching.

#![allow(dead_code)]

use ptxsim::{Gpu, KernelArg, LaunchReport, Module, SimError};

pub mod bulk;
pub mod wgmma;

/// Uploads u32 values; returns the device address.
pub fn up_u32(gpu: &mut Gpu, v: &[u32]) -> u64 {
    let a = gpu.alloc(v.len() * 4).unwrap();
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    gpu.write(a, &bytes).unwrap();
    a
}

/// Uploads f32 values; returns the device address.
pub fn up_f32(gpu: &mut Gpu, v: &[f32]) -> u64 {
    up_u32(gpu, &v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
}

/// Downloads `n` u32 values.
pub fn down_u32(gpu: &Gpu, a: u64, n: usize) -> Vec<u32> {
    let mut b = vec![0u8; n * 4];
    gpu.read(a, &mut b).unwrap();
    b.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Downloads `n` f32 values.
pub fn down_f32(gpu: &Gpu, a: u64, n: usize) -> Vec<f32> {
    down_u32(gpu, a, n).into_iter().map(f32::from_bits).collect()
}

/// Parses PTX, panicking with the error text.
pub fn module(src: &str) -> Module {
    Module::from_ptx(src).unwrap_or_else(|e| panic!("{e}"))
}

/// Launches a one-block kernel.
pub fn run1(gpu: &mut Gpu, m: &Module, k: &str, threads: u32, args: &[KernelArg]) -> Result<LaunchReport, SimError> {
    gpu.launch(m, k, [1, 1, 1], [threads, 1, 1], 0, args)
}

/// Wraps a kernel body in a PTX module header with params `p0..pN` of type u64.
pub fn wrap(name: &str, nparams: usize, regs: &str, body: &str) -> String {
    let params: Vec<String> = (0..nparams).map(|i| format!("    .param .u64 p{i}")).collect();
    format!(
        ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry {name}(\n{}\n)\n{{\n{regs}\n{body}\n}}\n",
        params.join(",\n")
    )
}

/// Tiny deterministic generator for the semantics property tests (xorshift64*): the
/// same sequence on every machine, so a failing case reproduces exactly.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() >> 11) as i64 % (hi - lo + 1)
    }
}
