//! Torch storages and tensors as `torch.save` pickles them, rebuilt into contiguous `f32`.
//!
//! Reference: PyTorch `torch/serialization.py` (`persistent_id`: `('storage', storage_type,
//! key, location, numel[, view_metadata])`) and `torch/_utils.py` (`_rebuild_tensor_v2(storage,
//! storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`,
//! `_rebuild_tensor`, `_rebuild_parameter[_with_state]`) and `torch/_tensor.py`
//! (`_rebuild_from_type_v2`). Offsets and strides count elements, not bytes. Any view (strided,
//! offset, transposed, expanded) is gathered into row-major order; every index is bounds-checked
//! against the storage before any data is read.

use super::pickle::{Reason, Value};
use super::RawTensor;

/// The element type of a storage, from its pickled class name (`torch.FloatStorage`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageDtype {
    /// float32.
    F32,
    /// float64.
    F64,
    /// float16.
    F16,
    /// bfloat16.
    BF16,
    /// int64 (recognised so `num_batches_tracked` can be dropped; never converted).
    I64,
    /// Other integer and bool storages: sized, so a legacy file can be walked, never converted.
    Other(&'static str, usize),
}

impl StorageDtype {
    /// Maps `torch.<Name>Storage` to a dtype.
    fn from_class(module: &str, name: &str) -> Option<Self> {
        if module != "torch" {
            return None;
        }
        Some(match name {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::Other("int32", 4),
            "ShortStorage" => Self::Other("int16", 2),
            "CharStorage" => Self::Other("int8", 1),
            "ByteStorage" => Self::Other("uint8", 1),
            "BoolStorage" => Self::Other("bool", 1),
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F64 | Self::I64 => 8,
            Self::F16 | Self::BF16 => 2,
            Self::Other(_, size) => size,
        }
    }

    /// The torch name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::F64 => "float64",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
            Self::I64 => "int64",
            Self::Other(name, _) => name,
        }
    }
}

/// A storage named by a persistent id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StorageRef {
    /// The key of the root storage (`data/<key>` in a zip, a record in a legacy file).
    pub key: String,
    /// Element type.
    pub dtype: StorageDtype,
    /// Elements in the root storage, as declared.
    pub numel: usize,
    /// Legacy storage views: (element offset into the root, elements in the view).
    pub view: Option<(usize, usize)>,
}

/// Parses `('storage', storage_type, key, location, numel[, (view_key, offset, view_size)])`.
pub(crate) fn parse_persistent_id(pid: &Value) -> Result<StorageRef, Reason> {
    let bad = || format!("unsupported persistent id {}", pid.kind());
    let items = pid.as_items().ok_or_else(bad)?;
    let [tag, class, key, _location, numel, rest @ ..] = items else { return Err(bad()) };
    if tag.as_str() != Some("storage") {
        return Err(bad());
    }
    let dtype = match class {
        Value::Global(g) => {
            StorageDtype::from_class(&g.0, &g.1).ok_or_else(|| format!("unsupported storage type {}.{}", g.0, g.1))?
        }
        other => return Err(format!("storage type is a {}, not a class", other.kind())),
    };
    let key = key.as_str().ok_or("storage key is not a string")?.to_owned();
    let numel = to_usize(numel, "storage size")?;
    let view = match rest {
        [] | [Value::None] => None,
        [meta] => match meta.as_items() {
            Some([_view_key, offset, size]) => Some((to_usize(offset, "view offset")?, to_usize(size, "view size")?)),
            _ => return Err("malformed storage view metadata".into()),
        },
        _ => return Err(bad()),
    };
    Ok(StorageRef { key, dtype, numel, view })
}

fn to_usize(v: &Value, what: &str) -> Result<usize, Reason> {
    v.as_int()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| format!("{what} is not a non-negative integer ({})", v.kind()))
}

fn to_dims(v: &Value, what: &str) -> Result<Vec<usize>, Reason> {
    let items = v.as_items().ok_or_else(|| format!("tensor {what} is a {}, not a tuple", v.kind()))?;
    items.iter().map(|d| to_usize(d, what)).collect()
}

/// A tensor as pickled: a view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorSpec {
    /// The storage it views.
    pub storage: StorageRef,
    /// Element offset into the storage.
    pub offset: usize,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Element strides, one per dimension.
    pub stride: Vec<usize>,
}

impl TensorSpec {
    /// Interprets a `_rebuild_*` call (parameters and tensor subclasses are unwrapped).
    pub fn from_value(v: &Value) -> Result<Self, Reason> {
        match v {
            Value::Call(call) => Self::from_call(&call.items[0], &call.items[1]),
            other => Err(format!("a {}, not a tensor", other.kind())),
        }
    }

    fn from_call(func: &Value, args: &Value) -> Result<Self, Reason> {
        let (Value::Global(func), Some(args)) = (func, args.as_items()) else {
            return Err(format!("a {}(...), not a tensor", func.kind()));
        };
        match (func.0.as_str(), func.1.as_str(), args) {
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor", [storage, offset, size, stride, ..]) => {
                let Value::PersId(pid) = storage else {
                    return Err(format!("tensor storage is a {}, not a persistent id", storage.kind()));
                };
                let storage = parse_persistent_id(&pid.items[0])?;
                let (shape, stride) = (to_dims(size, "size")?, to_dims(stride, "stride")?);
                if shape.len() != stride.len() {
                    return Err(format!("tensor has {} sizes but {} strides", shape.len(), stride.len()));
                }
                Ok(Self { storage, offset: to_usize(offset, "storage offset")?, shape, stride })
            }
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state", [data, ..]) => {
                Self::from_value(data)
            }
            ("torch._tensor", "_rebuild_from_type_v2", [inner_func, _new_type, inner_args, ..]) => {
                Self::from_call(inner_func, inner_args)
            }
            (m, n, _) => Err(format!("unsupported tensor constructor {m}.{n}")),
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> Result<usize, Reason> {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(|| "tensor size overflows".into())
    }

    /// Gathers the view out of the root storage's bytes into contiguous `f32`.
    pub fn materialize(&self, root: &[u8]) -> Result<RawTensor, Reason> {
        let es = self.storage.dtype.size();
        let decode: fn(&[u8]) -> f32 = match self.storage.dtype {
            StorageDtype::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            StorageDtype::F64 => |b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
            StorageDtype::F16 => |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            StorageDtype::BF16 => |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            other => return Err(format!("unsupported dtype {}", other.name())),
        };
        let (base, len) = self.storage.view.unwrap_or((0, root.len() / es));
        let storage = base
            .checked_mul(es)
            .zip(len.checked_mul(es))
            .and_then(|(start, n)| root.get(start..start.checked_add(n)?))
            .ok_or_else(|| format!("storage view of {len} elements at {base} exceeds its root storage"))?;
        let numel = self.numel()?;
        let mut data = Vec::new();
        if numel == 0 {
            return Ok(RawTensor { shape: self.shape.clone(), data });
        }
        let last = self
            .shape
            .iter()
            .zip(&self.stride)
            .try_fold(self.offset, |acc, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x)));
        if last.is_none_or(|l| l >= len) {
            return Err(format!(
                "tensor view (offset {}, size {:?}, stride {:?}) exceeds its storage of {len} elements",
                self.offset, self.shape, self.stride
            ));
        }
        data.try_reserve_exact(numel).map_err(|_| format!("cannot allocate {numel} elements"))?;
        if is_contiguous(&self.shape, &self.stride) {
            let bytes = &storage[self.offset * es..(self.offset + numel) * es];
            data.extend(bytes.chunks_exact(es).map(decode));
        } else {
            let mut index = vec![0usize; self.shape.len()];
            for _ in 0..numel {
                let at = self.offset + index.iter().zip(&self.stride).map(|(i, s)| i * s).sum::<usize>();
                data.push(decode(&storage[at * es..(at + 1) * es]));
                for d in (0..index.len()).rev() {
                    index[d] += 1;
                    if index[d] < self.shape[d] {
                        break;
                    }
                    index[d] = 0;
                }
            }
        }
        Ok(RawTensor { shape: self.shape.clone(), data })
    }
}

/// Row-major contiguity, ignoring the stride of dimensions of size 1 (as torch does).
fn is_contiguous(shape: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1;
    for (&d, &s) in shape.iter().zip(stride).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected *= d;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dtype: StorageDtype, offset: usize, shape: &[usize], stride: &[usize]) -> TensorSpec {
        let storage = StorageRef { key: "0".into(), dtype, numel: 0, view: None };
        TensorSpec { storage, offset, shape: shape.to_vec(), stride: stride.to_vec() }
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn transposed_view_is_gathered_row_major() {
        let root = f32_bytes(&[0., 1., 2., 3., 4., 5.]); // a 2×3 matrix, read as its 3×2 transpose
        let t = spec(StorageDtype::F32, 0, &[3, 2], &[1, 3]).materialize(&root).unwrap();
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.data, vec![0., 3., 1., 4., 2., 5.]);
    }

    #[test]
    fn offset_and_legacy_view_are_applied() {
        let root = f32_bytes(&[9., 9., 9., 1., 2., 3., 4.]);
        let mut s = spec(StorageDtype::F32, 1, &[2], &[2]);
        s.storage.view = Some((2, 5));
        assert_eq!(s.materialize(&root).unwrap().data, vec![1., 3.]);
    }

    #[test]
    fn half_types_and_doubles_convert_exactly() {
        let h: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
        assert_eq!(spec(StorageDtype::F16, 0, &[2], &[1]).materialize(&h).unwrap().data, vec![1.5, -2.0]);
        let b: Vec<u8> = [0.25f32].iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect();
        assert_eq!(spec(StorageDtype::BF16, 0, &[], &[]).materialize(&b).unwrap().data, vec![0.25]);
        let d: Vec<u8> = 0.1f64.to_le_bytes().to_vec();
        assert_eq!(spec(StorageDtype::F64, 0, &[1], &[1]).materialize(&d).unwrap().data, vec![0.1f32]);
    }

    #[test]
    fn out_of_bounds_views_and_integer_dtypes_are_errors() {
        let root = f32_bytes(&[0.; 4]);
        assert!(spec(StorageDtype::F32, 1, &[4], &[1]).materialize(&root).unwrap_err().contains("exceeds"));
        assert!(spec(StorageDtype::F32, 0, &[2, 2], &[usize::MAX, 1]).materialize(&root).is_err());
        let e = spec(StorageDtype::I64, 0, &[2], &[1]).materialize(&root).unwrap_err();
        assert!(e.contains("int64"), "{e}");
        assert_eq!(spec(StorageDtype::F32, 9, &[0, 3], &[3, 1]).materialize(&root).unwrap().data, Vec::<f32>::new());
    }
}
