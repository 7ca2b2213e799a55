//! `Device::resident_blocks_per_sm`, which sizes grid-stride grids and bounds split-K
//! plans. On the simulator it models an H100 SM (65536 registers allocated per warp in
//! units of 256, 2048 threads, 32 blocks, 228 KiB of shared memory with 1 KiB reserved per
//! block) with each kernel's sm_90a register count from `ptxas`; on a GPU it is the
//! driver's occupancy calculator, checked against the limits every NVIDIA SM has.

mod common;

use common::{devices, ran};
use qkernels::kernels::{self, KernelRef};
use qkernels::{BackendKind, QkError};

/// Registers of `kernel` on sm_90a, as `ptxas -v` reported them; 0 (no register limit)
/// when the build left sm_90a out (`QK_CUDA_ARCHS`).
fn sm90_registers(kernel: KernelRef) -> u32 {
    kernels::resources_of(kernel.name).find(|r| r.arch == "sm_90a").map_or(0, |r| r.registers)
}

#[test]
fn residency_follows_register_thread_and_shared_memory_limits() {
    let test = "device_residency";
    for device in devices(test) {
        let resident = |kernel, threads, shared| device.resident_blocks_per_sm(kernel, threads, shared).unwrap();
        let kernel = kernels::DEQUANT_INT4;
        let threads = 256;
        let blocks = resident(kernel, threads, 0);
        // A block larger than the SM's shared memory cannot run.
        let too_big = device.properties().shared_bytes_per_sm + 1;
        assert_eq!(resident(kernel, 32, too_big), 0);
        match device.kind() {
            BackendKind::Sim => {
                // Registers: 8 warps of `regs * 32` registers each, rounded up to 256.
                let warp_registers = common::warp_registers(sm90_registers(kernel));
                let by_registers = 65536u32.checked_div(warp_registers).map_or(u32::MAX, |w| w / (threads / 32));
                assert_eq!(blocks, by_registers.min(2048 / threads));
                // Shared memory: 100 KiB blocks (+1 KiB reserved each) -> 2 of 228 KiB.
                assert_eq!(resident(kernel, 32, 100 * 1024), 2);
            }
            BackendKind::Cuda => {
                // At most the 2048 thread slots of any SM from sm_80 on, at least one.
                assert!((1..=2048 / threads).contains(&blocks), "{blocks} blocks of {threads} threads per SM");
            }
        }
        // More shared memory per block never fits more blocks.
        assert!(resident(kernel, threads, 64 * 1024) <= blocks);
        ran(test, &device);
    }
}

// Hostile arguments: a block size no GPU launches is a typed error, and any amount of
// shared memory (up to u32::MAX, past what an SM has) gives 0 blocks, not an overflow.
#[test]
fn residency_of_impossible_blocks_is_an_error_or_zero() {
    let test = "device_residency_hostile";
    for device in devices(test) {
        let kernel = kernels::DEQUANT_INT8;
        for threads in [0, 1025, u32::MAX] {
            let r = device.resident_blocks_per_sm(kernel, threads, 0);
            assert!(matches!(r, Err(QkError::InvalidArgument { arg: "block_threads", .. })), "{threads}: {r:?}");
        }
        for shared in [u32::MAX - 1023, u32::MAX] {
            assert_eq!(device.resident_blocks_per_sm(kernel, 256, shared).unwrap(), 0, "{shared} bytes");
        }
        // Just inside the limits still runs.
        assert!(device.resident_blocks_per_sm(kernel, 1024, 0).unwrap() >= 1);
        ran(test, &device);
    }
}

// The simulator keeps device memory in host memory: an allocation the host cannot hold
// (twice its RAM and swap, or past the simulator's 64 GiB per allocation) is a typed
// error, not an aborted process.
#[test]
fn simulator_allocation_larger_than_the_host_is_an_error() {
    let Some(device) = common::sim_only("sim_alloc_too_large") else { return };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |field: &str| -> u64 {
        meminfo
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // Without /proc/meminfo, past the simulator's own limit.
    let host_bytes = (kib("MemTotal:") + kib("SwapTotal:")) * 1024;
    let request = if host_bytes == 0 { (1usize << 36) + 1 } else { (2 * host_bytes) as usize };
    let r = device.alloc::<u8>(request);
    assert!(r.is_err(), "allocated {request} bytes on the simulator");
    // The device still works afterwards.
    assert_eq!(device.download(&device.upload(&[7u8, 9]).unwrap()).unwrap(), [7, 9]);
    ran("sim_alloc_too_large", &device);
}
