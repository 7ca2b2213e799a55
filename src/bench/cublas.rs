//! The cuBLAS baselines, on the device's own stream and raw device pointers:
//! FP16 GEMM (`cublasGemmEx` or `cublasLtMatmul`: f16 in/out, f32 accumulate, tensor
//! ops) and INT8 GEMM (`cublasLtMatmul`: s8 in, s32 out, `CUBLAS_COMPUTE_32I`).
//!
//! Row-major `C[M,N] = A[M,K] · W[N,K]ᵀ` is the column-major `Cᵀ[N,M] = W · Aᵀ` with W
//! transposed and A not ("TN"), which is also the layout INT8 IMMA requires.
//!
//! cudarc loads the libraries on first use and panics when one is missing or lacks a
//! symbol; every entry point here checks presence first and catches such a panic, so a
//! missing cuBLAS becomes an error string for that baseline, never an aborted sweep.
//! (`cudarc::cublas::result::hgemm` is never used: it loads the unversioned
//! `libcublas.so`, which runtime-only installations lack.)

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use cudarc::cublas::sys as blas;
use cudarc::cublaslt::sys as lt;

use super::timing::stream_of;
use crate::{Device, DeviceBuffer, QkError, Result};

/// cuBLAS workspace, bytes: NVIDIA recommends 32 MiB on Hopper (cuBLAS docs,
/// "cublasSetWorkspace"), more than enough elsewhere; set explicitly so no call allocates
/// during CUDA-graph capture.
const WORKSPACE_BYTES: usize = 32 << 20;

/// Candidate algorithms asked of the cuBLASLt heuristic; the first one that works is used.
const LT_HEURISTIC_ALGOS: usize = 8;

fn blas_err(op: &'static str, status: impl std::fmt::Debug) -> QkError {
    QkError::Cuda { op, message: format!("{status:?}") }
}

/// Runs a cuBLAS call, turning a panic inside cudarc (missing library or symbol) into an error.
fn guarded<T>(op: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(QkError::Cuda { op, message: "cudarc panicked loading the library (missing or incomplete)".into() })
    })
}

fn cublas_present() -> bool {
    // SAFETY: only probes whether the shared library can be loaded.
    catch_unwind(|| unsafe { blas::is_culib_present() }).unwrap_or(false)
}

fn cublaslt_present() -> bool {
    // SAFETY: as above.
    catch_unwind(|| unsafe { lt::is_culib_present() }).unwrap_or(false)
}

/// The cuBLAS version as `major.minor.patch`, `None` when the library is absent.
pub(crate) fn cublas_version() -> Option<String> {
    if !cublas_present() {
        return None;
    }
    let prop = |p| {
        let mut v = 0;
        // SAFETY: cublasGetProperty writes one int.
        let status = unsafe { blas::cublasGetProperty(p, &mut v) };
        (status == blas::cublasStatus_t::CUBLAS_STATUS_SUCCESS).then_some(v)
    };
    catch_unwind(|| {
        use blas::libraryPropertyType_t::*;
        Some(format!("{}.{}.{}", prop(MAJOR_VERSION)?, prop(MINOR_VERSION)?, prop(PATCH_LEVEL)?))
    })
    .ok()
    .flatten()
}

/// The cuBLASLt version number (`cublasLtGetVersion`, e.g. 130001), `None` when absent.
pub(crate) fn cublaslt_version() -> Option<String> {
    if !cublaslt_present() {
        return None;
    }
    // SAFETY: cublasLtGetVersion takes no arguments.
    catch_unwind(|| unsafe { lt::cublasLtGetVersion() }).ok().map(|v| v.to_string())
}

/// A cuBLAS handle bound to the device's stream, with its own workspace.
pub(crate) struct Blas {
    handle: blas::cublasHandle_t,
    _workspace: DeviceBuffer<u8>,
}

impl Blas {
    /// Creates the handle on `device`'s stream (tensor-op math allowed).
    pub(crate) fn new(device: &Device) -> Result<Blas> {
        if !cublas_present() {
            return Err(QkError::Cuda { op: "cublasCreate", message: "libcublas is not installed".into() });
        }
        let stream = stream_of(device)?;
        let workspace = device.alloc::<u8>(WORKSPACE_BYTES)?;
        guarded("cublasCreate", || {
            let handle = cudarc::cublas::result::create_handle().map_err(|e| blas_err("cublasCreate", e))?;
            let blas = Blas { handle, _workspace: workspace };
            // SAFETY: a live handle, the device's live stream and a live workspace of the
            // size given; the handle is destroyed (Drop) before the workspace is freed.
            unsafe {
                cudarc::cublas::result::set_stream(blas.handle, stream.cu_stream().cast())
                    .map_err(|e| blas_err("cublasSetStream", e))?;
                blas::cublasSetWorkspace_v2(blas.handle, blas._workspace.device_addr() as *mut c_void, WORKSPACE_BYTES)
                    .result()
                    .map_err(|e| blas_err("cublasSetWorkspace", e))?;
                blas::cublasSetMathMode(blas.handle, blas::cublasMath_t::CUBLAS_TENSOR_OP_MATH)
                    .result()
                    .map_err(|e| blas_err("cublasSetMathMode", e))?;
            }
            Ok(blas)
        })
    }

    /// The compute type [`Blas::gemm_f16`] uses, for reports.
    pub(crate) const F16_COMPUTE_TYPE: &'static str =
        "CUBLAS_COMPUTE_32F (f16 inputs and output, f32 accumulate, tensor ops)";

    /// `c[M,N] = a[M,K] · w[N,K]ᵀ`, all f16 row-major, f32 accumulation.
    pub(crate) fn gemm_f16(
        &self,
        (m, n, k): (usize, usize, usize),
        a: &DeviceBuffer<half::f16>,
        w: &DeviceBuffer<half::f16>,
        c: &DeviceBuffer<half::f16>,
    ) -> Result<()> {
        check_len("a", a.len(), m * k)?;
        check_len("w", w.len(), n * k)?;
        check_len("c", c.len(), m * n)?;
        let (mi, ni, ki) = (to_i32(m)?, to_i32(n)?, to_i32(k)?);
        let (alpha, beta) = (1.0f32, 0.0f32);
        guarded("cublasGemmEx", || {
            // SAFETY: live buffers of the checked lengths; column-major TN view of the
            // row-major product (module docs); alpha/beta are f32 host scalars, matching
            // CUBLAS_COMPUTE_32F.
            unsafe {
                cudarc::cublas::result::gemm_ex(
                    self.handle,
                    blas::cublasOperation_t::CUBLAS_OP_T,
                    blas::cublasOperation_t::CUBLAS_OP_N,
                    ni,
                    mi,
                    ki,
                    (&alpha as *const f32).cast(),
                    w.device_addr() as *const c_void,
                    blas::cudaDataType::CUDA_R_16F,
                    ki,
                    a.device_addr() as *const c_void,
                    blas::cudaDataType::CUDA_R_16F,
                    ki,
                    (&beta as *const f32).cast(),
                    c.device_addr() as *mut c_void,
                    blas::cudaDataType::CUDA_R_16F,
                    ni,
                    blas::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    blas::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT_TENSOR_OP,
                )
            }
            .map_err(|e| blas_err("cublasGemmEx", e))
        })
    }
}

impl Drop for Blas {
    fn drop(&mut self) {
        // SAFETY: the handle is live and destroyed once.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe { cudarc::cublas::result::destroy_handle(self.handle) }));
    }
}

fn to_i32(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| QkError::InvalidArgument { arg: "shape", reason: format!("{v} exceeds i32") })
}

fn check_len(arg: &'static str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(QkError::InvalidArgument { arg, reason: format!("holds {got} elements, expected {want}") })
    }
}

/// Element types of a cuBLASLt GEMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LtKind {
    /// f16 in/out, f32 accumulate and scale.
    F16,
    /// s8 in, s32 out, s32 accumulate and scale (IMMA).
    Int8,
}

impl LtKind {
    fn types(self) -> (lt::cudaDataType, lt::cudaDataType, lt::cublasComputeType_t, lt::cudaDataType) {
        use lt::cudaDataType::*;
        match self {
            LtKind::F16 => (CUDA_R_16F, CUDA_R_16F, lt::cublasComputeType_t::CUBLAS_COMPUTE_32F, CUDA_R_32F),
            LtKind::Int8 => (CUDA_R_8I, CUDA_R_32I, lt::cublasComputeType_t::CUBLAS_COMPUTE_32I, CUDA_R_32I),
        }
    }
}

/// A planned `cublasLtMatmul` for one (M, N, K) and element kind, with its algorithm.
pub(crate) struct LtGemm {
    handle: lt::cublasLtHandle_t,
    desc: lt::cublasLtMatmulDesc_t,
    layouts: [lt::cublasLtMatrixLayout_t; 3],
    algo: lt::cublasLtMatmulAlgo_t,
    stream: lt::cudaStream_t,
    kind: LtKind,
    dims: (usize, usize, usize),
    workspace: DeviceBuffer<u8>,
}

impl LtGemm {
    /// Plans `C[M,N] = A[M,K] · W[N,K]ᵀ` (row-major) on `device`'s stream. Fails with the
    /// cuBLAS status when the library is absent or no algorithm supports the problem.
    pub(crate) fn new(device: &Device, kind: LtKind, (m, n, k): (usize, usize, usize)) -> Result<LtGemm> {
        if !cublaslt_present() {
            return Err(QkError::Cuda { op: "cublasLtCreate", message: "libcublasLt is not installed".into() });
        }
        let stream = stream_of(device)?;
        let workspace = device.alloc::<u8>(WORKSPACE_BYTES)?;
        guarded("cublasLtMatmul plan", || {
            use cudarc::cublaslt::result as r;
            let (in_type, out_type, compute, scale) = kind.types();
            let handle = r::create_handle().map_err(|e| blas_err("cublasLtCreate", e))?;
            // Build step by step into `plan` so Drop releases whatever was created.
            let mut plan = LtGemm {
                handle,
                desc: std::ptr::null_mut(),
                layouts: [std::ptr::null_mut(); 3],
                // SAFETY: a plain C struct of integers; overwritten by the heuristic below.
                algo: unsafe { std::mem::zeroed() },
                stream: stream.cu_stream().cast(),
                kind,
                dims: (m, n, k),
                workspace,
            };
            let (m64, n64, k64) = (m as u64, n as u64, k as u64);
            plan.desc = r::create_matmul_desc(compute, scale).map_err(|e| blas_err("cublasLtMatmulDescCreate", e))?;
            let trans_t = blas::cublasOperation_t::CUBLAS_OP_T as i32;
            // SAFETY: a live descriptor; TRANSA is an int32 cublasOperation_t by value
            // (cublasLt.h), which cudarc's cublaslt bindings do not re-export.
            unsafe {
                r::set_matmul_desc_attribute(
                    plan.desc,
                    lt::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
                    (&trans_t as *const i32).cast(),
                    std::mem::size_of::<i32>(),
                )
            }
            .map_err(|e| blas_err("cublasLtMatmulDescSetAttribute", e))?;
            // W: column-major [K, N] (ld K), transposed by TRANSA; A: column-major [K, M]
            // (ld K); C: column-major [N, M] (ld N).
            plan.layouts[0] =
                r::create_matrix_layout(in_type, k64, n64, k64 as i64).map_err(|e| blas_err("layout", e))?;
            plan.layouts[1] =
                r::create_matrix_layout(in_type, k64, m64, k64 as i64).map_err(|e| blas_err("layout", e))?;
            plan.layouts[2] =
                r::create_matrix_layout(out_type, n64, m64, n64 as i64).map_err(|e| blas_err("layout", e))?;
            let pref = r::create_matmul_pref().map_err(|e| blas_err("cublasLtMatmulPreferenceCreate", e))?;
            let max_ws = WORKSPACE_BYTES as u64;
            let mut results: Vec<lt::cublasLtMatmulHeuristicResult_t> = Vec::with_capacity(LT_HEURISTIC_ALGOS);
            let mut found = 0i32;
            // SAFETY: live descriptors; the results array holds LT_HEURISTIC_ALGOS entries,
            // of which the call initializes `found`.
            let status = unsafe {
                r::set_matmul_pref_attribute(
                    pref,
                    lt::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                    (&max_ws as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                )
                .and_then(|_| {
                    lt::cublasLtMatmulAlgoGetHeuristic(
                        plan.handle,
                        plan.desc,
                        plan.layouts[0],
                        plan.layouts[1],
                        plan.layouts[2],
                        plan.layouts[2],
                        pref,
                        LT_HEURISTIC_ALGOS as i32,
                        results.as_mut_ptr(),
                        &mut found,
                    )
                    .result()
                })
            };
            // SAFETY: the preference is live and destroyed once.
            let _ = unsafe { r::destroy_matmul_pref(pref) };
            status.map_err(|e| blas_err("cublasLtMatmulAlgoGetHeuristic", e))?;
            // SAFETY: the heuristic initialized the first `found` entries.
            unsafe { results.set_len(found.clamp(0, LT_HEURISTIC_ALGOS as i32) as usize) };
            let best = results
                .iter()
                .find(|h| h.state == lt::cublasStatus_t::CUBLAS_STATUS_SUCCESS && h.workspaceSize <= WORKSPACE_BYTES)
                .ok_or_else(|| blas_err("cublasLtMatmulAlgoGetHeuristic", "no algorithm supports this problem"))?;
            plan.algo = best.algo;
            Ok(plan)
        })
    }

    /// The problem kind.
    pub(crate) fn kind(&self) -> LtKind {
        self.kind
    }

    /// Runs the planned product: `a` `[M,K]`, `w` `[N,K]` (f16 or i8), `c` `[M,N]` (f16 or
    /// i32), all row-major device buffers of the planned shape (lengths checked by the
    /// caller through [`LtGemm::check`]).
    pub(crate) fn run(&self, a_addr: u64, w_addr: u64, c_addr: u64) -> Result<()> {
        let (alpha_f, beta_f) = (1.0f32, 0.0f32);
        let (alpha_i, beta_i) = (1i32, 0i32);
        let (alpha, beta): (*const c_void, *const c_void) = match self.kind {
            LtKind::F16 => ((&alpha_f as *const f32).cast(), (&beta_f as *const f32).cast()),
            LtKind::Int8 => ((&alpha_i as *const i32).cast(), (&beta_i as *const i32).cast()),
        };
        guarded("cublasLtMatmul", || {
            // SAFETY: live descriptors and algorithm from `new`; buffers of the planned
            // shapes (caller); scalars match the scale type; C is both input (beta = 0)
            // and output.
            unsafe {
                cudarc::cublaslt::result::matmul(
                    self.handle,
                    self.desc,
                    alpha,
                    beta,
                    w_addr as *const c_void,
                    self.layouts[0],
                    a_addr as *const c_void,
                    self.layouts[1],
                    c_addr as *const c_void,
                    self.layouts[2],
                    c_addr as *mut c_void,
                    self.layouts[2],
                    &self.algo,
                    self.workspace.device_addr() as *mut c_void,
                    WORKSPACE_BYTES,
                    self.stream,
                )
            }
            .map_err(|e| blas_err("cublasLtMatmul", e))
        })
    }

    /// Checks buffer lengths (elements) against the plan: `a` M·K, `w` N·K, `c` M·N.
    pub(crate) fn check(&self, a_len: usize, w_len: usize, c_len: usize) -> Result<()> {
        let (m, n, k) = self.dims;
        check_len("a", a_len, m * k)?;
        check_len("w", w_len, n * k)?;
        check_len("c", c_len, m * n)
    }
}

impl Drop for LtGemm {
    fn drop(&mut self) {
        use cudarc::cublaslt::result as r;
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: each object is live (or null, skipped) and destroyed once.
            unsafe {
                for layout in self.layouts {
                    if !layout.is_null() {
                        let _ = r::destroy_matrix_layout(layout);
                    }
                }
                if !self.desc.is_null() {
                    let _ = r::destroy_matmul_desc(self.desc);
                }
                let _ = r::destroy_handle(self.handle);
            }
        }));
    }
}
