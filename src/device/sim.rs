//! The simulator backend: kernels run as PTX on `ptxsim`, with its hazard checks on.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{Backend, BackendKind, DeviceProperties, Launch, LaunchOrder, TensorMap2dF16, TENSOR_MAP_BYTES};
use crate::kernels::{self, KernelRef};
use crate::{QkError, Result};

/// Simulated SMs: as many resident blocks as an H100 SXM has SMs, so kernels that size
/// their grids from the SM count partition work as they would on the GPU we bench.
const SIM_SM_COUNT: u32 = 132;
/// The simulator stands in for an H100 (compute capability 9.0): plans made on it pick
/// the configurations an H100 gets, including the sm_90a (wgmma) kernels, whose
/// `compute_90a` PTX it executes.
const SIM_COMPUTE_CAPABILITY: (u32, u32) = (9, 0);
/// Dynamic shared memory limit of sm_90 (227 KiB), which the simulator enforces.
const SIM_MAX_SHARED_BYTES: u32 = 227 * 1024;
/// Shared memory per SM of sm_90 (228 KiB), so kernels plan the residency they get on an
/// H100.
const SIM_SHARED_BYTES_PER_SM: u32 = 228 * 1024;

/// The H100 SM whose residency limits [`SimBackend`] reports (CUDA Programming Guide,
/// "Technical Specifications per Compute Capability", 9.0), with the kernels' register
/// counts for this architecture from `ptxas -v`: the simulator schedules blocks its own
/// way, but plans made on it (grid sizes, split-K) should be the plans an H100 gets.
mod h100_sm {
    /// SASS architecture whose `ptxas` register counts are used.
    pub const ARCH: &str = "sm_90a";
    /// Resident threads per SM.
    pub const THREADS: u32 = 2048;
    /// Resident blocks per SM.
    pub const BLOCKS: u32 = 32;
    /// Shared memory the driver reserves per resident block, bytes.
    pub const RESERVED_SHARED_BYTES_PER_BLOCK: u32 = 1024;
}

/// The `ptxas` resource usage of `kernel` for the simulated H100 ([`h100_sm::ARCH`]),
/// when the build compiled that architecture (`QK_CUDA_ARCHS`).
fn h100_resources(kernel: KernelRef) -> Option<&'static kernels::KernelResources> {
    kernels::resources_of(kernel.name).find(|r| r.arch == h100_sm::ARCH)
}

pub(crate) struct SimBackend {
    props: DeviceProperties,
    gpu: RefCell<ptxsim::Gpu>,
    /// Parsed modules by file stem: parsing is paid once per device.
    modules: RefCell<HashMap<&'static str, ptxsim::Module>>,
    last_report: RefCell<Option<ptxsim::LaunchReport>>,
}

impl SimBackend {
    pub(crate) fn new() -> SimBackend {
        SimBackend {
            props: DeviceProperties {
                name: format!("ptxsim (simulated H100, {SIM_SM_COUNT} SMs; PTX {})", kernels::SIM_PTX_ARCH),
                compute_capability: SIM_COMPUTE_CAPABILITY,
                sm_count: SIM_SM_COUNT,
                total_memory_bytes: None,
                l2_cache_bytes: None,
                max_sm_clock_khz: None,
                max_memory_clock_khz: None,
                memory_bus_width_bits: None,
                max_shared_bytes_per_block: SIM_MAX_SHARED_BYTES,
                shared_bytes_per_sm: SIM_SHARED_BYTES_PER_SM,
                driver_version: None,
            },
            gpu: RefCell::new(ptxsim::Gpu::new()),
            modules: RefCell::new(HashMap::new()),
            last_report: RefCell::new(None),
        }
    }
}

impl Backend for SimBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sim
    }

    fn properties(&self) -> &DeviceProperties {
        &self.props
    }

    fn alloc(&self, bytes: usize) -> Result<u64> {
        Ok(self.gpu.borrow_mut().alloc(bytes)?)
    }

    fn free(&self, addr: u64) {
        // Freeing an address this backend handed out cannot fail; nothing to report.
        let _ = self.gpu.borrow_mut().free(addr);
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<()> {
        Ok(self.gpu.borrow_mut().write(addr, data)?)
    }

    fn read(&self, addr: u64, out: &mut [u8]) -> Result<()> {
        Ok(self.gpu.borrow().read(addr, out)?)
    }

    fn resident_blocks_per_sm(&self, kernel: KernelRef, block_threads: u32, dynamic_shared_bytes: u32) -> Result<u32> {
        let resources = h100_resources(kernel);
        // Without sm_90a figures (QK_CUDA_ARCHS built other archs) registers are not a limit.
        let (registers, static_shared) = resources.map_or((0, 0), |r| (r.registers, r.shared_bytes));
        // Device bounds the arguments (1 ..= 1024 threads, dynamic shared bytes at most an
        // SM's), so neither warps * 32 nor the shared sum can overflow.
        let warps = block_threads.div_ceil(32).max(1);
        // The simulator's register pool rule: per warp, in units of 256, 64 Ki per SM.
        let by_registers =
            ptxsim::REGISTERS_PER_SM.checked_div(ptxsim::warp_registers(registers)).map_or(u32::MAX, |w| w / warps);
        let block_shared = dynamic_shared_bytes + static_shared + h100_sm::RESERVED_SHARED_BYTES_PER_BLOCK;
        let by_shared = self.props.shared_bytes_per_sm / block_shared;
        let by_threads = h100_sm::THREADS / (warps * 32);
        Ok(by_registers.min(by_shared).min(by_threads).min(h100_sm::BLOCKS))
    }

    fn launch(&self, launch: &Launch<'_>) -> Result<()> {
        let mut modules = self.modules.borrow_mut();
        let name = launch.kernel.module;
        if !modules.contains_key(name) {
            let compiled =
                kernels::module(name).ok_or(QkError::MissingKernel { module: name, name: launch.kernel.name })?;
            modules.insert(compiled.name, ptxsim::Module::from_ptx(compiled.ptx)?);
        }
        let module = &modules[name];
        let mut gpu = self.gpu.borrow_mut();
        // Warps start with ptxas's register count (the one residency is planned with),
        // so the simulator can model the register pool that setmaxnreg hands around.
        gpu.set_launch_registers(h100_resources(launch.kernel).map(|r| r.registers));
        // A programmatic launch is checked against what the previous launch touched.
        gpu.set_programmatic_launch(launch.order == LaunchOrder::Programmatic);
        let report = gpu.launch(
            module,
            launch.kernel.name,
            launch.grid,
            launch.block,
            launch.dynamic_shared_bytes,
            &[ptxsim::KernelArg::Bytes(launch.args.to_vec())],
        )?;
        *self.last_report.borrow_mut() = Some(report);
        Ok(())
    }

    fn encode_tensor_map(&self, map: &TensorMap2dF16) -> Result<[u8; TENSOR_MAP_BYTES]> {
        let f16_bytes = std::mem::size_of::<half::f16>() as u32;
        ptxsim::TensorMap {
            global_address: map.base,
            elem_bytes: f16_bytes,
            dims: map.dims.to_vec(),
            strides_bytes: vec![map.row_stride_bytes],
            box_dims: map.box_dims.to_vec(),
            swizzle: ptxsim::TensorSwizzle::Bytes128,
        }
        .encode()
        .map_err(|e| QkError::invalid("tensor map", e.to_string()))
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    fn last_report(&self) -> Option<ptxsim::LaunchReport> {
        self.last_report.borrow().clone()
    }
}
