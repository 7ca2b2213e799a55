//! safetensors input/output for `qk run`: named tensors with checked dtypes and shapes.

use std::collections::HashMap;
use std::path::Path;

use half::f16;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

/// A tensor read from a file: dtype, shape and raw little-endian bytes.
pub struct HostTensor {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Raw bytes (row-major).
    pub data: Vec<u8>,
}

/// The tensors of one input file, by name. Its errors name the tensor, not the file: the
/// commands prefix everything that goes wrong with a file's contents with its path
/// ([`in_file`]).
pub struct TensorFile {
    tensors: HashMap<String, HostTensor>,
}

/// `error` about the contents of the input file `path`, prefixed with that path so every
/// such error names the file the same way.
pub fn in_file(path: &Path) -> impl Fn(String) -> String + '_ {
    move |error| format!("{}: {error}", path.display())
}

impl TensorFile {
    /// Reads every tensor of a safetensors file.
    pub fn read(path: &Path) -> Result<TensorFile, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| format!("{} is not a valid safetensors file: {e}", path.display()))?;
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                (name, HostTensor { dtype: view.dtype(), shape: view.shape().to_vec(), data: view.data().to_vec() })
            })
            .collect();
        Ok(TensorFile { tensors })
    }

    /// The tensor `name`, which must exist, have one of `dtypes` and `rank` dimensions.
    pub fn get(&self, name: &str, dtypes: &[Dtype], rank: usize) -> Result<&HostTensor, String> {
        let t = self.tensors.get(name).ok_or_else(|| {
            let mut have: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
            have.sort();
            format!("missing tensor `{name}` (file has: {})", have.join(", "))
        })?;
        if !dtypes.contains(&t.dtype) {
            return Err(format!(
                "tensor `{name}` has dtype {:?}, expected {}",
                t.dtype,
                dtypes.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(" or ")
            ));
        }
        if t.shape.len() != rank {
            return Err(format!("tensor `{name}` has shape {:?}, expected {rank} dimensions", t.shape));
        }
        Ok(t)
    }

    /// Like [`TensorFile::get`] for an optional tensor.
    pub fn get_optional(&self, name: &str, dtypes: &[Dtype], rank: usize) -> Result<Option<&HostTensor>, String> {
        if self.tensors.contains_key(name) {
            self.get(name, dtypes, rank).map(Some)
        } else {
            Ok(None)
        }
    }
}

impl HostTensor {
    /// The data as `T` (the dtype was checked by [`TensorFile::get`]).
    pub fn values<T: bytemuck::Pod>(&self) -> Vec<T> {
        bytemuck::pod_collect_to_vec(&self.data)
    }
}

/// An output tensor to write.
pub struct OutTensor {
    /// Name in the output file.
    pub name: &'static str,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Raw bytes.
    pub data: Vec<u8>,
}

impl OutTensor {
    /// An f16 tensor.
    pub fn f16(name: &'static str, shape: Vec<usize>, values: &[f16]) -> OutTensor {
        OutTensor { name, dtype: Dtype::F16, shape, data: bytemuck::cast_slice(values).to_vec() }
    }
    /// An f32 tensor.
    pub fn f32(name: &'static str, shape: Vec<usize>, values: &[f32]) -> OutTensor {
        OutTensor { name, dtype: Dtype::F32, shape, data: bytemuck::cast_slice(values).to_vec() }
    }
    /// An int32 tensor.
    pub fn i32(name: &'static str, shape: Vec<usize>, values: &[i32]) -> OutTensor {
        OutTensor { name, dtype: Dtype::I32, shape, data: bytemuck::cast_slice(values).to_vec() }
    }
    /// An int8 tensor.
    pub fn i8(name: &'static str, shape: Vec<usize>, values: &[i8]) -> OutTensor {
        OutTensor { name, dtype: Dtype::I8, shape, data: bytemuck::cast_slice(values).to_vec() }
    }
}

/// Writes `tensors` to a safetensors file.
pub fn write(path: &Path, tensors: &[OutTensor]) -> Result<(), String> {
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            TensorView::new(t.dtype, t.shape.clone(), &t.data)
                .map(|v| (t.name, v))
                .map_err(|e| format!("cannot build output tensor `{}`: {e}", t.name))
        })
        .collect::<Result<_, _>>()?;
    safetensors::serialize_to_file(views, None, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
