//! The environment of a bench run, captured at its start (and the GPU temperature and
//! throttle reasons again at its end): everything needed to reproduce or to distrust a
//! number. A field that cannot be read is `None` (JSON `null`, shown as "unknown"),
//! never guessed.
//!
//! Sources: the CUDA driver API (through [`Device::properties`]), NVML through
//! `nvml-wrapper` (loaded at run time: absent on CPU-only machines), the cuBLAS and
//! cuBLASLt libraries, `libcudart` (runtime API version), the build (`qkernels::kernels`:
//! nvcc and architectures), `git`, `rustc` and `/proc` on the host.

use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::{kernels, Device};

/// GPU temperature from which results are flagged: data-center GPUs begin to reduce
/// clocks in the mid-80s °C (H100 slowdown threshold ≈ 87 °C per `nvidia-smi -q`); 80 °C
/// leaves margin for the heating a long sweep adds.
pub const HOT_GPU_CELSIUS: u32 = 80;

/// Everything known about the machine a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    /// Start of the run, UTC, ISO 8601.
    pub utc_time: Option<String>,
    /// "ok", or "no CUDA device (`reason`)".
    pub cuda_device: Option<String>,
    /// GPU name.
    pub gpu_name: Option<String>,
    /// Compute capability, `major.minor`.
    pub compute_capability: Option<String>,
    /// Streaming multiprocessors.
    pub sm_count: Option<u32>,
    /// Global memory, bytes.
    pub memory_bytes: Option<u64>,
    /// L2 cache, bytes.
    pub l2_bytes: Option<u64>,
    /// SM clock at the start, MHz (NVML).
    pub sm_clock_mhz: Option<u32>,
    /// Maximum SM clock, MHz.
    pub sm_clock_max_mhz: Option<u32>,
    /// Memory clock at the start, MHz (NVML).
    pub memory_clock_mhz: Option<u32>,
    /// Maximum memory clock, MHz.
    pub memory_clock_max_mhz: Option<u32>,
    /// Applications (target) SM clock, MHz (NVML).
    pub applications_sm_clock_mhz: Option<u32>,
    /// Whether the SM clock is locked. NVML has no query for `nvidia-smi -lgc` locks, so
    /// this is known only when the caller states it (`QK_CLOCKS_LOCKED=1|0`).
    pub clocks_locked: Option<bool>,
    /// Enforced power limit, W.
    pub power_limit_w: Option<f64>,
    /// ECC enabled.
    pub ecc_enabled: Option<bool>,
    /// Persistence mode enabled.
    pub persistence_mode: Option<bool>,
    /// GPU temperature at the start, °C.
    pub temperature_start_c: Option<u32>,
    /// GPU temperature at the end, °C.
    pub temperature_end_c: Option<u32>,
    /// Clock throttle reasons at the end of the run (NVML), `|`-separated.
    pub throttle_reasons_end: Option<String>,
    /// Driver version (NVML, e.g. `580.65.06`).
    pub driver_version: Option<String>,
    /// CUDA driver API version, `major.minor`.
    pub cuda_driver_api: Option<String>,
    /// CUDA runtime API version, `major.minor` (libcudart).
    pub cuda_runtime_api: Option<String>,
    /// cuBLAS version.
    pub cublas_version: Option<String>,
    /// cuBLASLt version.
    pub cublaslt_version: Option<String>,
    /// nvcc that built the kernels.
    pub nvcc_version: Option<String>,
    /// Architectures the kernels were built for (SASS, then PTX).
    pub kernel_archs: Option<String>,
    /// qkernels version.
    pub crate_version: Option<String>,
    /// Git commit of the working tree.
    pub git_commit: Option<String>,
    /// Whether the working tree had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// rustc version.
    pub rustc_version: Option<String>,
    /// Build profile: "release" (no debug assertions) or "debug".
    pub build_profile: Option<String>,
    /// CPU model.
    pub cpu_model: Option<String>,
    /// Operating system.
    pub os: Option<String>,
    /// Kernel release.
    pub kernel_release: Option<String>,
}

impl Environment {
    /// Captures the host fields, and the GPU fields when `device` is a CUDA device;
    /// `no_device_reason` fills `cuda_device` when there is none.
    pub fn capture(device: Option<&Device>, no_device_reason: Option<&str>) -> Environment {
        let mut env = Environment::host();
        match device.filter(|d| d.cuda_stream().is_some()) {
            Some(d) => {
                env.cuda_device = Some("ok".into());
                env.fill_device(d);
            }
            None => {
                let reason = no_device_reason.unwrap_or("none found");
                let reason = reason.strip_prefix("no CUDA device: ").unwrap_or(reason);
                env.cuda_device = Some(format!("no CUDA device ({reason})"));
            }
        }
        env
    }

    /// The host and build fields only.
    pub fn host() -> Environment {
        let git = |args: &[&str]| run_command("git", args);
        let os = std::fs::read_to_string("/etc/os-release").ok().and_then(|text| {
            text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_string())
        });
        Environment {
            utc_time: utc_now(),
            nvcc_version: Some(kernels::NVCC_VERSION.to_string()),
            kernel_archs: Some(format!("{} + {}", kernels::SASS_ARCHS.join(","), kernels::PTX_ARCH)),
            crate_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            // A build script may bake these in (binaries carried to a machine without git
            // or rustc); otherwise ask the tools at run time.
            git_commit: option_env!("QK_GIT_COMMIT").map(String::from).or_else(|| git(&["rev-parse", "HEAD"])),
            git_dirty: option_env!("QK_GIT_DIRTY")
                .map(|v| v == "1" || v == "true")
                .or_else(|| run_command_ok("git", &["status", "--porcelain"]).map(|out| !out.trim().is_empty())),
            rustc_version: option_env!("QK_RUSTC_VERSION")
                .map(String::from)
                .or_else(|| run_command("rustc", &["--version"])),
            build_profile: Some(if cfg!(debug_assertions) { "debug" } else { "release" }.into()),
            cpu_model: std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|v| v.trim().into())
            }),
            os,
            kernel_release: std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|v| v.trim().to_string()),
            clocks_locked: std::env::var("QK_CLOCKS_LOCKED").ok().map(|v| v == "1" || v == "true"),
            ..Environment::default()
        }
    }

    fn fill_device(&mut self, device: &Device) {
        let p = device.properties();
        self.gpu_name = Some(p.name.clone());
        self.compute_capability = Some(format!("{}.{}", p.compute_capability.0, p.compute_capability.1));
        self.sm_count = Some(p.sm_count);
        self.memory_bytes = p.total_memory_bytes;
        self.l2_bytes = p.l2_cache_bytes;
        self.sm_clock_max_mhz = p.max_sm_clock_khz.map(|k| k / 1000);
        self.memory_clock_max_mhz = p.max_memory_clock_khz.map(|k| k / 1000);
        self.cuda_driver_api = p.driver_version.map(api_version);
        self.cuda_runtime_api = cudart_version().map(api_version);
        self.cublas_version = super::cublas::cublas_version();
        self.cublaslt_version = super::cublas::cublaslt_version();
        self.fill_nvml(true);
    }

    /// Reads the NVML fields (device 0); `start` selects the start-of-run fields, else
    /// the end-of-run ones (temperature, throttle reasons).
    fn fill_nvml(&mut self, start: bool) {
        use nvml_wrapper::enum_wrappers::device::{Clock, ClockId, TemperatureSensor};
        let Ok(nvml) = nvml_wrapper::Nvml::init() else { return };
        let Ok(gpu) = nvml.device_by_index(0) else { return };
        let temperature = gpu.temperature(TemperatureSensor::Gpu).ok();
        if !start {
            self.temperature_end_c = temperature;
            self.throttle_reasons_end = gpu.current_throttle_reasons().ok().map(|r| format!("{r:?}"));
            return;
        }
        self.temperature_start_c = temperature;
        self.driver_version = nvml.sys_driver_version().ok();
        self.sm_clock_mhz = gpu.clock(Clock::SM, ClockId::Current).ok();
        self.memory_clock_mhz = gpu.clock(Clock::Memory, ClockId::Current).ok();
        self.applications_sm_clock_mhz = gpu.clock(Clock::SM, ClockId::TargetAppClock).ok();
        if let Ok(max) = gpu.max_clock_info(Clock::SM) {
            self.sm_clock_max_mhz = Some(max);
        }
        if let Ok(max) = gpu.max_clock_info(Clock::Memory) {
            self.memory_clock_max_mhz = Some(max);
        }
        self.power_limit_w = gpu.enforced_power_limit().ok().map(|mw| f64::from(mw) / 1000.0);
        self.ecc_enabled = gpu.is_ecc_enabled().ok().map(|e| e.currently_enabled);
        self.persistence_mode = gpu.is_in_persistent_mode().ok();
    }

    /// Reads the end-of-run fields (temperature, throttle reasons).
    pub fn capture_end(&mut self) {
        if self.cuda_device.as_deref() == Some("ok") {
            self.fill_nvml(false);
        }
    }

    /// Warnings about conditions that skew timings: clocks not known to be locked, a hot
    /// GPU. Empty without a device.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.cuda_device.as_deref() != Some("ok") {
            return out;
        }
        if self.clocks_locked != Some(true) {
            out.push(
                "GPU clocks are not known to be locked (set QK_CLOCKS_LOCKED=1 after `nvidia-smi -lgc`): boost \
                 clocks drift with temperature and power, expect percent-level noise"
                    .into(),
            );
        }
        for (when, t) in [("start", self.temperature_start_c), ("end", self.temperature_end_c)] {
            if let Some(t) = t.filter(|t| *t >= HOT_GPU_CELSIUS) {
                out.push(format!(
                    "GPU is hot at the {when} of the run ({t} °C >= {HOT_GPU_CELSIUS} °C): clocks may throttle"
                ));
            }
        }
        out
    }

    /// Fields that make two runs incomparable (GPU, driver, clock state) and differ
    /// between `self` and `other`: `(field, self's value, other's value)`. A field unknown
    /// on either side is not a difference.
    pub fn incompatibilities(&self, other: &Environment) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        let mut check = |name: &'static str, a: Option<String>, b: Option<String>| {
            if let (Some(a), Some(b)) = (a, b) {
                if a != b {
                    out.push((name, a, b));
                }
            }
        };
        let s = |v: &Option<String>| v.clone();
        let n = |v: &Option<u32>| v.map(|v| v.to_string());
        check("gpu_name", s(&self.gpu_name), s(&other.gpu_name));
        check("driver_version", s(&self.driver_version), s(&other.driver_version));
        check("cuda_driver_api", s(&self.cuda_driver_api), s(&other.cuda_driver_api));
        check("clocks_locked", self.clocks_locked.map(|v| v.to_string()), other.clocks_locked.map(|v| v.to_string()));
        check("applications_sm_clock_mhz", n(&self.applications_sm_clock_mhz), n(&other.applications_sm_clock_mhz));
        check("sm_clock_max_mhz", n(&self.sm_clock_max_mhz), n(&other.sm_clock_max_mhz));
        check("power_limit_w", self.power_limit_w.map(|v| v.to_string()), other.power_limit_w.map(|v| v.to_string()));
        out
    }

    /// `(field, value)` pairs in declaration order, `"unknown"` for missing values: the
    /// environment block of the markdown report.
    pub fn fields(&self) -> Vec<(String, String)> {
        let value = serde_json::to_value(self).unwrap_or_default();
        let Some(map) = value.as_object() else { return Vec::new() };
        map.iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::Null => "unknown".to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect()
    }
}

/// `major.minor` of a CUDA API version number (13000 → 13.0).
fn api_version(v: u32) -> String {
    format!("{}.{}", v / 1000, v % 1000 / 10)
}

/// `cudaRuntimeGetVersion` of the installed libcudart, if one loads.
fn cudart_version() -> Option<u32> {
    const CANDIDATES: &[&str] = &["libcudart.so.13", "libcudart.so.12", "libcudart.so"];
    CANDIDATES.iter().find_map(|name| {
        // SAFETY: loading libcudart runs its (side-effect free) initializers; the symbol
        // has the documented signature `cudaError_t cudaRuntimeGetVersion(int*)`.
        unsafe {
            let lib = libloading::Library::new(name).ok()?;
            let f: libloading::Symbol<unsafe extern "C" fn(*mut i32) -> i32> =
                lib.get(b"cudaRuntimeGetVersion\0").ok()?;
            let mut v = 0;
            (f(&mut v) == 0).then_some(v as u32)
        }
    })
}

/// Trimmed stdout of a successful command with non-empty output.
fn run_command(program: &str, args: &[&str]) -> Option<String> {
    run_command_ok(program, args).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Stdout of a successful command (possibly empty).
fn run_command_ok(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn utc_now() -> Option<String> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(utc_timestamp(secs))
}

/// ISO 8601 UTC time of `secs` since the Unix epoch (days-to-civil conversion of
/// H. Hinnant's date algorithms, valid for the proleptic Gregorian calendar).
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps_match_known_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_735_689_599), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn unknown_fields_are_not_differences() {
        let a = Environment { gpu_name: Some("H100".into()), driver_version: None, ..Default::default() };
        let b = Environment { gpu_name: Some("H100".into()), driver_version: Some("580".into()), ..Default::default() };
        assert!(a.incompatibilities(&b).is_empty());
        let c = Environment { gpu_name: Some("H200".into()), ..Default::default() };
        assert_eq!(a.incompatibilities(&c), vec![("gpu_name", "H100".to_string(), "H200".to_string())]);
    }
}
