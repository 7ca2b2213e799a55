//! The CUDA backend: cudarc's driver API with dynamic loading, so this compiles and links
//! everywhere and reports [`QkError::NoCudaDevice`] where no driver or device exists.
//!
//! Memory is managed as raw `CUdeviceptr`s (the wrappers put them into argument structs)
//! on one stream: cudarc's per-buffer event tracking, which multi-stream use turns on,
//! would add work to every launch and distort microbenchmarks.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::{result as cu, sys, CudaContext, CudaFunction, CudaModule, CudaStream};

use super::{Backend, BackendKind, DeviceProperties, Launch, LaunchOrder, TensorMap2dF16, TENSOR_MAP_BYTES};
use crate::kernels::{self, KernelRef};
use crate::{QkError, Result};

/// Kernels may use up to 48 KiB of dynamic shared memory without opting in
/// (CUDA Programming Guide, "Shared Memory"); above it the launch must raise the
/// function's `MAX_DYNAMIC_SHARED_SIZE_BYTES` attribute first.
const DEFAULT_DYNAMIC_SHARED_LIMIT_BYTES: u32 = 48 * 1024;

fn cuda_err(op: &'static str) -> impl Fn(cu::DriverError) -> QkError {
    move |e| QkError::Cuda { op, message: e.to_string() }
}

/// True when the CUDA driver library can be loaded and reports at least one device.
pub fn cuda_available() -> bool {
    CudaBackend::open(0).is_ok()
}

pub(crate) struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    props: DeviceProperties,
    modules: RefCell<HashMap<&'static str, Arc<CudaModule>>>,
    functions: RefCell<HashMap<(&'static str, &'static str), CudaFunction>>,
    /// Dynamic shared memory each kernel is opted in to (above the default limit), so a
    /// launch raises the attribute once, not every time.
    opted_in_shared_bytes: RefCell<HashMap<KernelRef, u32>>,
    /// Occupancy answers by (kernel, block threads, dynamic shared bytes): they size the
    /// grids of every elementwise launch (a decode step's quantize among them), so the
    /// driver is asked once per launch shape.
    occupancy: RefCell<HashMap<(KernelRef, u32, u32), u32>>,
}

impl CudaBackend {
    pub(crate) fn open(ordinal: usize) -> Result<CudaBackend> {
        // SAFETY: only probes whether the shared library can be loaded.
        if !unsafe { sys::is_culib_present() } {
            return Err(QkError::NoCudaDevice {
                reason: "the CUDA driver library (libcuda.so) is not installed".into(),
            });
        }
        // cudarc unwraps internally on some driver failures; keep a panic from crossing
        // our API (the default hook still prints it, which is acceptable for a fault).
        let ctx = std::panic::catch_unwind(|| CudaContext::new(ordinal))
            .map_err(|_| QkError::NoCudaDevice { reason: "the CUDA driver failed to initialize".into() })?
            .map_err(|e| QkError::NoCudaDevice { reason: e.to_string() })?;
        let attr = |a| ctx.attribute(a).ok().and_then(|v| u32::try_from(v).ok());
        use sys::CUdevice_attribute::*;
        let cc = ctx.compute_capability().map_err(cuda_err("cuDeviceGetAttribute"))?;
        let mut driver_version = 0;
        // SAFETY: cuDriverGetVersion writes one int.
        let driver_version =
            unsafe { sys::cuDriverGetVersion(&mut driver_version) }.result().ok().map(|_| driver_version as u32);
        let props = DeviceProperties {
            name: ctx.name().map_err(cuda_err("cuDeviceGetName"))?,
            compute_capability: (cc.0 as u32, cc.1 as u32),
            sm_count: attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).unwrap_or(1),
            total_memory_bytes: ctx.total_mem().ok().map(|b| b as u64),
            l2_cache_bytes: attr(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE).map(u64::from),
            max_sm_clock_khz: attr(CU_DEVICE_ATTRIBUTE_CLOCK_RATE),
            max_memory_clock_khz: attr(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE),
            memory_bus_width_bits: attr(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH),
            shared_bytes_per_sm: attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR)
                .unwrap_or(DEFAULT_DYNAMIC_SHARED_LIMIT_BYTES),
            max_shared_bytes_per_block: attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
                .unwrap_or(DEFAULT_DYNAMIC_SHARED_LIMIT_BYTES),
            driver_version,
        };
        // A created stream, not the legacy default stream: CUDA-graph capture (the bench
        // harness's graph mode) is not allowed on the legacy stream. This is still the only
        // stream we use, so cudarc's per-buffer event tracking (turned on by a second
        // stream) never matters: we pass raw pointers and never cudarc's tracked buffers.
        // The stream is non-blocking (it does not wait for the legacy stream), so `write`
        // ends with a context synchronize: a synchronous host-to-device copy may return
        // before its DMA has landed when the source is pageable memory.
        let stream = ctx.new_stream().map_err(cuda_err("cuStreamCreate"))?;
        Ok(CudaBackend {
            ctx,
            stream,
            props,
            modules: RefCell::new(HashMap::new()),
            functions: RefCell::new(HashMap::new()),
            opted_in_shared_bytes: RefCell::new(HashMap::new()),
            occupancy: RefCell::new(HashMap::new()),
        })
    }

    fn function(&self, module: &'static str, name: &'static str) -> Result<CudaFunction> {
        if let Some(f) = self.functions.borrow().get(&(module, name)) {
            return Ok(f.clone());
        }
        let mut modules = self.modules.borrow_mut();
        if !modules.contains_key(module) {
            let compiled = kernels::module(module).ok_or(QkError::MissingKernel { module, name })?;
            let loaded = self
                .ctx
                .load_module(cudarc::nvrtc::Ptx::from_binary(compiled.fatbin.to_vec()))
                .map_err(cuda_err("cuModuleLoadData"))?;
            modules.insert(compiled.name, loaded);
        }
        let f = modules[module].load_function(name).map_err(|_| QkError::MissingKernel { module, name })?;
        self.functions.borrow_mut().insert((module, name), f.clone());
        Ok(f)
    }

    /// `kernel`'s function, opted in to at least `dynamic_shared_bytes` of dynamic shared
    /// memory when that is above the default limit (launches and occupancy queries both
    /// need it; the attribute is an upper bound, so it is only ever raised).
    fn function_for_shared(&self, kernel: KernelRef, dynamic_shared_bytes: u32) -> Result<CudaFunction> {
        let f = self.function(kernel.module, kernel.name)?;
        let mut opted_in = self.opted_in_shared_bytes.borrow_mut();
        let current = opted_in.entry(kernel).or_insert(DEFAULT_DYNAMIC_SHARED_LIMIT_BYTES);
        if dynamic_shared_bytes > *current {
            f.set_attribute(
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                dynamic_shared_bytes as i32,
            )
            .map_err(cuda_err("cuFuncSetAttribute"))?;
            *current = dynamic_shared_bytes;
        }
        Ok(f)
    }

    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Copies `bytes` from `src` to `dst` on the device (the bandwidth reference of the
    /// benches).
    pub(crate) fn copy_device_to_device(&self, dst: u64, src: u64, bytes: usize) -> Result<()> {
        // SAFETY: both addresses are live allocations of at least `bytes` (caller).
        unsafe { cu::memcpy_dtod_async(dst, src, bytes, self.stream.cu_stream()) }
            .map_err(cuda_err("cuMemcpyDtoDAsync"))
    }
}

impl Backend for CudaBackend {
    fn encode_tensor_map(&self, map: &TensorMap2dF16) -> Result<[u8; TENSOR_MAP_BYTES]> {
        use sys::{
            CUtensorMapDataType, CUtensorMapFloatOOBfill, CUtensorMapInterleave, CUtensorMapL2promotion,
            CUtensorMapSwizzle,
        };
        const RANK: u32 = 2;
        self.ctx.bind_to_thread().map_err(cuda_err("cuCtxSetCurrent"))?;
        let mut encoded = sys::CUtensorMap { opaque: [0; TENSOR_MAP_BYTES / 8] };
        let dims = map.dims;
        // The driver takes the strides of dimensions 1.. only (dimension 0 is dense).
        let strides = [map.row_stride_bytes];
        let element_strides = [1u32; RANK as usize];
        // SAFETY: every pointer refers to a live local of the length the rank implies;
        // the driver only writes `encoded` (128 bytes) and reads the others.
        let status = unsafe {
            sys::cuTensorMapEncodeTiled(
                &mut encoded,
                CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
                RANK,
                map.base as *mut c_void,
                dims.as_ptr(),
                strides.as_ptr(),
                map.box_dims.as_ptr(),
                element_strides.as_ptr(),
                CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
                CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
                CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
            )
        };
        status.result().map_err(cuda_err("cuTensorMapEncodeTiled"))?;
        let mut bytes = [0u8; TENSOR_MAP_BYTES];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(encoded.opaque) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Ok(bytes)
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn properties(&self) -> &DeviceProperties {
        &self.props
    }

    fn alloc(&self, bytes: usize) -> Result<u64> {
        self.ctx.bind_to_thread().map_err(cuda_err("cuCtxSetCurrent"))?;
        // SAFETY: a plain cuMemAlloc; the returned pointer is owned by a DeviceBuffer.
        unsafe { cu::malloc_sync(bytes) }.map_err(cuda_err("cuMemAlloc"))
    }

    fn free(&self, addr: u64) {
        if self.ctx.bind_to_thread().is_ok() {
            // SAFETY: addr came from alloc and is freed exactly once (DeviceBuffer::drop).
            let _ = unsafe { cu::free_sync(addr) };
        }
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.ctx.bind_to_thread().map_err(cuda_err("cuCtxSetCurrent"))?;
        self.stream.synchronize().map_err(cuda_err("cuStreamSynchronize"))?;
        // SAFETY: addr is a live allocation of at least data.len() bytes (Device checks).
        unsafe { cu::memcpy_htod_sync(addr, data) }.map_err(cuda_err("cuMemcpyHtoD"))?;
        self.ctx.synchronize().map_err(cuda_err("cuCtxSynchronize"))
    }

    fn read(&self, addr: u64, out: &mut [u8]) -> Result<()> {
        self.ctx.bind_to_thread().map_err(cuda_err("cuCtxSetCurrent"))?;
        self.stream.synchronize().map_err(cuda_err("cuStreamSynchronize"))?;
        // SAFETY: addr is a live allocation of at least out.len() bytes (Device checks).
        unsafe { cu::memcpy_dtoh_sync(out, addr) }.map_err(cuda_err("cuMemcpyDtoH"))
    }

    fn launch(&self, launch: &Launch<'_>) -> Result<()> {
        self.ctx.bind_to_thread().map_err(cuda_err("cuCtxSetCurrent"))?;
        let f = self.function_for_shared(launch.kernel, launch.dynamic_shared_bytes)?;
        let mut args = launch.args.to_vec();
        let mut params = [args.as_mut_ptr().cast::<c_void>()];
        let [gx, gy, gz] = launch.grid;
        let [bx, by, bz] = launch.block;
        if launch.order == LaunchOrder::Programmatic {
            // Programmatic stream serialization: the kernel may start before the previous
            // one on the stream completes (Device::check_launch_order refused it below
            // compute capability 9.0).
            // SAFETY: CUlaunchAttributeValue is a C union of integers, raw pointers, event
            // handles and structs of them, for all of which all-zero bytes are a valid
            // value (0, null); the field written is the one the attribute id selects.
            let mut value: sys::CUlaunchAttributeValue = unsafe { std::mem::zeroed() };
            value.programmaticStreamSerializationAllowed = 1;
            let mut attr = sys::CUlaunchAttribute {
                id: sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
                pad: [0; 4],
                value,
            };
            let config = sys::CUlaunchConfig {
                gridDimX: gx,
                gridDimY: gy,
                gridDimZ: gz,
                blockDimX: bx,
                blockDimY: by,
                blockDimZ: bz,
                sharedMemBytes: launch.dynamic_shared_bytes,
                hStream: self.stream.cu_stream(),
                attrs: &mut attr,
                numAttrs: 1,
            };
            // SAFETY: as below for the parameter; `config` and the attribute it points to
            // outlive the call, which copies them.
            return unsafe {
                sys::cuLaunchKernelEx(&config, f.cu_function(), params.as_mut_ptr(), std::ptr::null_mut())
            }
            .result()
            .map_err(cuda_err("cuLaunchKernelEx"));
        }
        // SAFETY: the kernel takes exactly one by-value parameter, the argument struct
        // whose bytes `args` holds (the wrapper built it from qk_abi.h); cuLaunchKernel
        // copies the parameter before returning.
        unsafe {
            cu::launch_kernel(
                f.cu_function(),
                (gx, gy, gz),
                (bx, by, bz),
                launch.dynamic_shared_bytes,
                self.stream.cu_stream(),
                &mut params,
            )
        }
        .map_err(cuda_err("cuLaunchKernel"))
    }

    fn resident_blocks_per_sm(&self, kernel: KernelRef, block_threads: u32, dynamic_shared_bytes: u32) -> Result<u32> {
        if dynamic_shared_bytes > self.props.max_shared_bytes_per_block {
            return Ok(0); // no block fits (the opt-in attribute would be refused)
        }
        let key = (kernel, block_threads, dynamic_shared_bytes);
        if let Some(&blocks) = self.occupancy.borrow().get(&key) {
            return Ok(blocks);
        }
        self.ctx.bind_to_thread().map_err(cuda_err("cuCtxSetCurrent"))?;
        let f = self.function_for_shared(kernel, dynamic_shared_bytes)?;
        let blocks = f
            .occupancy_max_active_blocks_per_multiprocessor(block_threads, dynamic_shared_bytes as usize, None)
            .map_err(cuda_err("cuOccupancyMaxActiveBlocksPerMultiprocessor"))?;
        self.occupancy.borrow_mut().insert(key, blocks);
        Ok(blocks)
    }

    fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(cuda_err("cuStreamSynchronize"))
    }

    fn last_report(&self) -> Option<ptxsim::LaunchReport> {
        None
    }

    fn as_cuda(&self) -> Option<&CudaBackend> {
        Some(self)
    }
}

/// Times GPU work with CUDA events on the device's stream: the only honest clock for
/// asynchronous work (a host timer measures the launch, not the kernel).
pub struct CudaTimer {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
}

impl CudaTimer {
    pub(crate) fn new(backend: &CudaBackend) -> Result<CudaTimer> {
        Ok(CudaTimer { ctx: backend.ctx.clone(), stream: backend.stream().clone() })
    }

    /// Runs `work` (which enqueues GPU work on the device's stream) between two events
    /// and returns the GPU time between them in microseconds, after synchronizing.
    pub fn time_us(&self, work: impl FnOnce() -> Result<()>) -> Result<f64> {
        self.ctx.bind_to_thread().map_err(cuda_err("cuCtxSetCurrent"))?;
        // CU_EVENT_DEFAULT: timing-capable events (the disable-timing flag would make
        // elapsed_ms fail).
        let flags = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
        let start = self.stream.record_event(flags).map_err(cuda_err("cuEventRecord"))?;
        work()?;
        let end = self.stream.record_event(flags).map_err(cuda_err("cuEventRecord"))?;
        end.synchronize().map_err(cuda_err("cuEventSynchronize"))?;
        let ms = start.elapsed_ms(&end).map_err(cuda_err("cuEventElapsedTime"))?;
        Ok(f64::from(ms) * 1e3)
    }
}
