//! Devices: one interface over a real CUDA GPU ([`Device::cuda`]) and the PTX simulator
//! ([`Device::sim`]), so every kernel wrapper and every test is written once.
//!
//! A [`Device`] is a cheap, clonable handle. Memory is typed: [`DeviceBuffer<T>`] owns
//! an allocation and frees it on drop. Kernel launches go through `Device::launch` (crate-internal),
//! which takes a kernel argument struct from [`crate::abi`]: on a GPU the struct's bytes
//! are the kernel's parameter, on the simulator the same bytes fill the same `.param`.

mod cuda;
mod sim;

use std::marker::PhantomData;
use std::rc::Rc;

use bytemuck::Pod;

use crate::abi::KernelArgs;
use crate::kernels::KernelRef;
use crate::{QkError, Result};

pub use cuda::{cuda_available, CudaTimer};

/// Which backend a [`Device`] runs kernels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// A real NVIDIA GPU through the CUDA driver API.
    Cuda,
    /// The PTX simulator on the CPU.
    Sim,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Cuda => "cuda",
            BackendKind::Sim => "sim",
        })
    }
}

/// What a device is: read once when it is opened.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceProperties {
    /// Device name (`NVIDIA H100 80GB HBM3`, or the simulator's description).
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (u32, u32),
    /// Streaming multiprocessors (the simulator's resident-block count).
    pub sm_count: u32,
    /// Global memory, bytes (`None` where unknown).
    pub total_memory_bytes: Option<u64>,
    /// L2 cache size, bytes.
    pub l2_cache_bytes: Option<u64>,
    /// Maximum SM clock, kHz.
    pub max_sm_clock_khz: Option<u32>,
    /// Maximum memory clock, kHz.
    pub max_memory_clock_khz: Option<u32>,
    /// Memory bus width, bits.
    pub memory_bus_width_bits: Option<u32>,
    /// Largest dynamic shared memory a block may opt into, bytes.
    pub max_shared_bytes_per_block: u32,
    /// Shared memory of one SM, bytes (one of the limits behind
    /// [`Device::resident_blocks_per_sm`]).
    pub shared_bytes_per_sm: u32,
    /// CUDA driver API version (e.g. 13000), `None` on the simulator.
    pub driver_version: Option<u32>,
}

/// The operations a backend provides; [`Device`] adds typing and validation on top.
pub(crate) trait Backend {
    fn kind(&self) -> BackendKind;
    fn properties(&self) -> &DeviceProperties;
    fn alloc(&self, bytes: usize) -> Result<u64>;
    fn free(&self, addr: u64);
    fn write(&self, addr: u64, data: &[u8]) -> Result<()>;
    fn read(&self, addr: u64, out: &mut [u8]) -> Result<()>;
    fn launch(&self, launch: &Launch<'_>) -> Result<()>;
    fn resident_blocks_per_sm(&self, kernel: KernelRef, block_threads: u32, dynamic_shared_bytes: u32) -> Result<u32>;
    fn synchronize(&self) -> Result<()>;
    /// Encodes the tensor map `map` for this backend's copy engine (128 bytes).
    fn encode_tensor_map(&self, map: &TensorMap2dF16) -> Result<[u8; TENSOR_MAP_BYTES]>;
    /// The simulator's counters of the last launch (`None` on a GPU).
    fn last_report(&self) -> Option<ptxsim::LaunchReport>;
    fn as_cuda(&self) -> Option<&cuda::CudaBackend> {
        None
    }
}

/// Threads a block may have on every supported GPU (compute capability 8.0 and newer).
const MAX_THREADS_PER_BLOCK: u32 = 1024;

/// The compute capability whose kernels here wait for the previous grid: the
/// `griddepcontrol` instructions exist from sm_90 on, and the fatbins carry them only in
/// their `sm_90a` SASS. Any other GPU runs SASS, or JIT-compiled compute_80 PTX, without
/// the wait, so a programmatic launch there would race the previous kernel.
const PROGRAMMATIC_LAUNCH_CC: (u32, u32) = (9, 0);
/// The SASS architecture that holds the waits.
const PROGRAMMATIC_LAUNCH_SASS: &str = "sm_90a";

/// Whether a device of compute capability `cc` that runs code built for sm_90a when its
/// capability is 9.0 (`has_sm90a_code`) can launch in `order`.
fn check_launch_order_on(cc: (u32, u32), has_sm90a_code: bool, order: LaunchOrder) -> Result<()> {
    if order == LaunchOrder::Programmatic && (cc != PROGRAMMATIC_LAUNCH_CC || !has_sm90a_code) {
        return Err(QkError::invalid(
            "launch order",
            format!(
                "programmatic dependent launch needs compute capability 9.0 and kernels built for \
                 {PROGRAMMATIC_LAUNCH_SASS} (QK_CUDA_ARCHS); this device is {}.{}{}",
                cc.0,
                cc.1,
                if has_sm90a_code { "" } else { " and the build has no sm_90a code" }
            ),
        ));
    }
    Ok(())
}

/// Bytes of an encoded tensor map (`CUtensorMap`; `ptxsim::TENSOR_MAP_BYTES`).
pub(crate) const TENSOR_MAP_BYTES: usize = ptxsim::TENSOR_MAP_BYTES;

/// A 2D f16 tensor in device memory and the box a tensor copy moves of it, 128-byte
/// swizzled in shared memory (what the TMA-fed kernels read their activations with):
/// element (i0, i1) at `base + i1 · row_stride_bytes + 2 · i0`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TensorMap2dF16 {
    /// Device address of element (0, 0), 16-byte aligned.
    pub base: u64,
    /// Elements of the inner (contiguous) and outer dimension.
    pub dims: [u64; 2],
    /// Bytes between consecutive outer indices, a multiple of 16.
    pub row_stride_bytes: u64,
    /// Box elements per dimension (inner: 64 f16 = the 128-byte swizzle span).
    pub box_dims: [u32; 2],
}

/// How a kernel launch is ordered after the previous kernel on the device's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LaunchOrder {
    /// The kernel starts after the previous one has completed: CUDA's stream order.
    #[default]
    AfterPrevious,
    /// Programmatic dependent launch (compute capability 9.0 with the kernels' sm_90a
    /// code, see [`Device::check_launch_order`]): the kernel may start while the previous
    /// one still runs, once every block of that one has signalled it
    /// (`griddepcontrol.launch_dependents`) or exited, and waits (`griddepcontrol.wait`)
    /// before it touches that kernel's results. Only kernels written for it may be
    /// launched this way; on the simulator, accesses that would race the previous kernel
    /// are reported as hazards. A CUDA graph captured from the stream keeps the
    /// programmatic edge with a CUDA 12.3 or newer driver (older ones serialize the two
    /// kernels: no overlap, still correct).
    Programmatic,
}

/// One kernel launch, as a backend receives it.
pub(crate) struct Launch<'a> {
    pub kernel: KernelRef,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub dynamic_shared_bytes: u32,
    /// The kernel's one by-value parameter: its argument struct's bytes.
    pub args: &'a [u8],
    /// Ordering after the previous kernel.
    pub order: LaunchOrder,
}

/// A handle to a GPU or to the simulator. Clones share the device.
#[derive(Clone)]
pub struct Device {
    backend: Rc<dyn Backend>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("kind", &self.kind()).field("name", &self.properties().name).finish()
    }
}

impl Device {
    /// Opens CUDA device `ordinal`. Returns [`QkError::NoCudaDevice`] (never panics) when
    /// the driver library is missing, no device exists or the driver fails to start.
    pub fn cuda(ordinal: usize) -> Result<Device> {
        Ok(Device { backend: Rc::new(cuda::CudaBackend::open(ordinal)?) })
    }

    /// A fresh simulated GPU (see `ptxsim`): every launch runs the kernel's PTX on the
    /// CPU with hazard checks on.
    pub fn sim() -> Device {
        Device { backend: Rc::new(sim::SimBackend::new()) }
    }

    /// CUDA device 0 when one is usable, else the simulator.
    pub fn auto() -> Result<Device> {
        match Device::cuda(0) {
            Ok(d) => Ok(d),
            Err(QkError::NoCudaDevice { .. }) => Ok(Device::sim()),
            Err(e) => Err(e),
        }
    }

    /// The backend this device runs on.
    pub fn kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// The device's properties.
    pub fn properties(&self) -> &DeviceProperties {
        self.backend.properties()
    }

    /// Allocates `len` elements of `T` (contents unspecified).
    pub fn alloc<T: Pod>(&self, len: usize) -> Result<DeviceBuffer<T>> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| QkError::invalid("len", format!("{len} elements overflow the address space")))?;
        // A zero-sized request still gets a real (tiny) allocation, so every buffer has a
        // valid, unique address.
        let addr = self.backend.alloc(bytes.max(1))?;
        Ok(DeviceBuffer { device: self.clone(), addr, len, _elem: PhantomData })
    }

    /// Allocates a buffer holding a copy of `data`.
    pub fn upload<T: Pod>(&self, data: &[T]) -> Result<DeviceBuffer<T>> {
        let buf = self.alloc::<T>(data.len())?;
        self.backend.write(buf.addr, bytemuck::cast_slice(data))?;
        Ok(buf)
    }

    /// Overwrites `buf` with `data` (lengths must match).
    pub fn write<T: Pod>(&self, buf: &DeviceBuffer<T>, data: &[T]) -> Result<()> {
        self.check_owned(buf, "buf")?;
        if data.len() != buf.len {
            return Err(QkError::invalid("data", format!("{} elements for a buffer of {}", data.len(), buf.len)));
        }
        self.backend.write(buf.addr, bytemuck::cast_slice(data))
    }

    /// Fills `buf` with copies of `value` (used to poison outputs before a test run).
    pub fn fill<T: Pod>(&self, buf: &DeviceBuffer<T>, value: T) -> Result<()> {
        self.write(buf, &vec![value; buf.len])
    }

    /// Copies `buf` to the host.
    pub fn download<T: Pod>(&self, buf: &DeviceBuffer<T>) -> Result<Vec<T>> {
        self.check_owned(buf, "buf")?;
        let mut out = vec![T::zeroed(); buf.len];
        self.backend.read(buf.addr, bytemuck::cast_slice_mut(&mut out))?;
        Ok(out)
    }

    /// Copies `src` into `dst` on the device (same length). On a GPU this is a
    /// device-to-device memcpy, the bandwidth reference of the benches.
    pub fn copy<T: Pod>(&self, dst: &DeviceBuffer<T>, src: &DeviceBuffer<T>) -> Result<()> {
        self.check_owned(dst, "dst")?;
        self.check_owned(src, "src")?;
        if dst.len != src.len {
            return Err(QkError::invalid("dst", format!("{} elements, source has {}", dst.len, src.len)));
        }
        match self.backend.as_cuda() {
            Some(cuda) => cuda.copy_device_to_device(dst.addr, src.addr, src.size_bytes()),
            None => {
                let data = self.download(src)?;
                self.write(dst, &data)
            }
        }
    }

    /// Waits for all queued work.
    pub fn synchronize(&self) -> Result<()> {
        self.backend.synchronize()
    }

    /// The simulator's counters and hazard-free report of the last launch on this device
    /// (`None` on a GPU or before any launch).
    pub fn last_sim_report(&self) -> Option<ptxsim::LaunchReport> {
        self.backend.last_report()
    }

    /// CUDA-event timing on this device (`None` on the simulator, which has no clock).
    pub fn cuda_timer(&self) -> Option<Result<CudaTimer>> {
        self.backend.as_cuda().map(CudaTimer::new)
    }

    /// The CUDA stream that every launch, copy and timing event of this device is ordered
    /// on (`None` on the simulator). The bench harness hands it to cuBLAS and captures CUDA
    /// graphs on it, so library calls and our kernels share one stream.
    pub(crate) fn cuda_stream(&self) -> Option<&std::sync::Arc<cudarc::driver::CudaStream>> {
        self.backend.as_cuda().map(|cuda| cuda.stream())
    }

    /// How many blocks of `kernel` (`block_threads` threads, `dynamic_shared_bytes` of
    /// dynamic shared memory each) one SM holds at once: the driver's occupancy
    /// calculator on a GPU (registers, shared memory, threads and block slots of this
    /// kernel on this device); on the simulator the same limits of an H100 SM, with the
    /// kernel's sm_90a register count from `ptxas` (see `kernels::RESOURCES`), so plans
    /// made on the simulator are the plans an H100 gets. 0 means the block cannot run
    /// (e.g. more dynamic shared memory than an SM has). Errors: `block_threads` outside
    /// 1 ..= 1024 (no block of that size can be launched).
    pub fn resident_blocks_per_sm(
        &self,
        kernel: KernelRef,
        block_threads: u32,
        dynamic_shared_bytes: u32,
    ) -> Result<u32> {
        if !(1..=MAX_THREADS_PER_BLOCK).contains(&block_threads) {
            return Err(QkError::invalid(
                "block_threads",
                format!("{block_threads} threads per block (1 to {MAX_THREADS_PER_BLOCK})"),
            ));
        }
        if dynamic_shared_bytes > self.properties().shared_bytes_per_sm {
            return Ok(0); // more than an SM has, whatever the kernel
        }
        self.backend.resident_blocks_per_sm(kernel, block_threads, dynamic_shared_bytes)
    }

    /// The tensor map of `map` for this device's copy engine.
    pub(crate) fn encode_tensor_map(&self, map: &TensorMap2dF16) -> Result<[u8; TENSOR_MAP_BYTES]> {
        self.backend.encode_tensor_map(map)
    }

    /// Launches `kernel` with `args` (its argument struct) after checking the launch
    /// shape, in stream order. Callers (the wrappers in [`crate::ops`]) validate the
    /// arguments first.
    pub(crate) fn launch<A: KernelArgs>(
        &self,
        kernel: KernelRef,
        grid: [u32; 3],
        block: [u32; 3],
        dynamic_shared_bytes: u32,
        args: &A,
    ) -> Result<()> {
        self.launch_ordered(LaunchOrder::AfterPrevious, kernel, grid, block, dynamic_shared_bytes, args)
    }

    /// [`Device::launch`] with an explicit [`LaunchOrder`]; `Programmatic` needs compute
    /// capability 9.0 ([`Device::check_launch_order`]) and a kernel that waits for the
    /// previous grid before touching its data.
    pub(crate) fn launch_ordered<A: KernelArgs>(
        &self,
        order: LaunchOrder,
        kernel: KernelRef,
        grid: [u32; 3],
        block: [u32; 3],
        dynamic_shared_bytes: u32,
        args: &A,
    ) -> Result<()> {
        if grid.contains(&0) || block.contains(&0) {
            return Err(QkError::invalid("launch", format!("empty grid {grid:?} or block {block:?}")));
        }
        self.check_launch_order(order)?;
        self.backend.launch(&Launch { kernel, grid, block, dynamic_shared_bytes, args: args.as_bytes(), order })
    }

    /// Whether this device can launch in `order`: programmatic dependent launch needs
    /// compute capability 9.0 and the kernels' sm_90a SASS (`QK_CUDA_ARCHS` with `90a`,
    /// the default): only that code waits for the previous grid. The simulator models an
    /// H100 and runs the compute_90a PTX that SASS is built from.
    pub fn check_launch_order(&self, order: LaunchOrder) -> Result<()> {
        if order == LaunchOrder::AfterPrevious {
            return Ok(()); // every launch of every decode step takes this path
        }
        let has_sm90a_code = match self.kind() {
            BackendKind::Sim => true,
            BackendKind::Cuda => crate::kernels::SASS_ARCHS.contains(&PROGRAMMATIC_LAUNCH_SASS),
        };
        check_launch_order_on(self.properties().compute_capability, has_sm90a_code, order)
    }

    pub(crate) fn check_owned<T>(&self, buf: &DeviceBuffer<T>, arg: &'static str) -> Result<()> {
        if Rc::ptr_eq(&self.backend, &buf.device.backend) {
            Ok(())
        } else {
            Err(QkError::ForeignBuffer { arg })
        }
    }
}

/// A typed device allocation of `len` elements of `T`, freed on drop.
pub struct DeviceBuffer<T> {
    device: Device,
    addr: u64,
    len: usize,
    _elem: PhantomData<T>,
}

impl<T> DeviceBuffer<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size in bytes.
    pub fn size_bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }

    /// The device address (a CUdeviceptr on a GPU, a simulator address otherwise).
    pub fn device_addr(&self) -> u64 {
        self.addr
    }

    /// Where the buffer lives, without access to its contents.
    pub fn region(&self) -> DeviceRegion {
        DeviceRegion { addr: self.addr, size_bytes: self.size_bytes() }
    }
}

/// The address range of a device allocation, and nothing else: what a type that owns
/// validated device buffers shows of them (for traffic accounting and profiling), so
/// that no caller can write them through [`Device::write`], [`Device::fill`] or
/// [`Device::copy`], which take a shared `&DeviceBuffer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRegion {
    addr: u64,
    size_bytes: usize,
}

impl DeviceRegion {
    /// The device address of the first byte.
    pub fn device_addr(&self) -> u64 {
        self.addr
    }

    /// Size in bytes.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }
}

impl<T> std::fmt::Debug for DeviceBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceBuffer<{}>[{}] @ {:#x}", std::any::type_name::<T>(), self.len, self.addr)
    }
}

impl<T> Drop for DeviceBuffer<T> {
    fn drop(&mut self) {
        self.device.backend.free(self.addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programmatic_launch_needs_hopper_and_its_code() {
        check_launch_order_on((9, 0), true, LaunchOrder::Programmatic).unwrap();
        // Before Hopper no griddepcontrol; after it (no SASS here) the JIT compiles the
        // compute_80 PTX, which has no wait; on an H100 without sm_90a code likewise.
        for (cc, code) in [((8, 0), true), ((8, 9), true), ((10, 0), true), ((12, 0), true), ((9, 0), false)] {
            let e = check_launch_order_on(cc, code, LaunchOrder::Programmatic).expect_err("no wait in the code");
            assert!(e.to_string().contains("compute capability 9.0"), "{cc:?} {code}: {e}");
            check_launch_order_on(cc, code, LaunchOrder::AfterPrevious).unwrap();
        }
    }
}
