//! The forward pass against PyTorch's float64 outputs of the reference networks.
//!
//! Fixtures (copied from `../shared/fixtures`): `jess-n2` (C = 64, N = 2, input 37×53) and
//! `jess-w8-n1` (C = 8, N = 1, input 29×41). Both have BatchNorm statistics drawn at random so
//! that folding is exercised. Contract: max abs error ≤ 1e-4 in f32.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use csgis::model::{load_weights, load_weights_file, CsgisNet, NetConfig};

fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    assert!(p.exists(), "missing test fixture {}", p.display());
    p
}

fn io(dir: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(dir).join("io.safetensors"), &Device::Cpu).expect("io")
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

fn check_parity(dir: &str, expected: NetConfig) {
    let model = load_weights_file(&fixture(dir).join("weights.safetensors"), &Device::Cpu, DType::F32)
        .expect("weights load");
    assert_eq!(model.arch, csgis::model::Arch::Csgis(expected));
    let io = io(dir);
    let out = model.net.forward_t(&io["input"], false).expect("forward");
    for (name, got) in [("edge_logits", &out.edge_logits), ("s0", &out.s0), ("s1", &out.s1)] {
        let err = max_abs(got, &io[name]);
        eprintln!("{dir} {name}: max abs error {err:.3e}");
        assert!(err <= 1e-4, "{dir} {name}: max abs error {err}");
    }
}

#[test]
fn jess_n2_matches_pytorch() {
    check_parity("jess-n2", NetConfig { blocks: 2, channels: 64 });
}

#[test]
fn jess_w8_n1_matches_pytorch() {
    check_parity("jess-w8-n1", NetConfig { blocks: 1, channels: 8 });
}

#[test]
fn folded_equals_unfolded_batch_norm() {
    let path = fixture("jess-w8-n1").join("weights.safetensors");
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).expect("load");
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let net = CsgisNet::new(&NetConfig::TINY, vb).expect("build");
    let x = &io("jess-w8-n1")["input"];
    let plain = net.forward_t(x, false).expect("forward");
    let folded = net.fold().expect("fold").forward_t(x, false).expect("forward");
    assert!(max_abs(&plain.s1, &folded.s1) < 1e-5);
    assert!(max_abs(&plain.edge_logits, &folded.edge_logits) < 1e-5);
}

fn tensors_with(edit: impl FnOnce(&mut HashMap<String, Tensor>)) -> Vec<u8> {
    let path = fixture("jess-w8-n1").join("weights.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).expect("load");
    edit(&mut tensors);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("w.safetensors");
    candle_core::safetensors::save(&tensors, &out).expect("save");
    std::fs::read(out).expect("read")
}

fn load_error(bytes: &[u8]) -> String {
    match load_weights(bytes, Path::new("w.safetensors"), &Device::Cpu, DType::F32) {
        Ok(_) => panic!("weights were accepted"),
        Err(e) => csgis::error::report(&e),
    }
}

#[test]
fn missing_extra_and_misshapen_keys_are_named() {
    let missing = tensors_with(|t| {
        t.remove("refine.9.bias");
    });
    assert!(load_error(&missing).contains("refine.9.bias"), "{}", load_error(&missing));

    let extra = tensors_with(|t| {
        t.insert("refine.10.weight".into(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
    });
    assert!(load_error(&extra).contains("unexpected key(s): refine.10.weight"));

    let misshapen = tensors_with(|t| {
        t.insert("interpreter1.6.weight".into(), Tensor::zeros((2, 8, 3, 3), DType::F32, &Device::Cpu).unwrap());
    });
    let msg = load_error(&misshapen);
    assert!(msg.contains("interpreter1.6.weight has shape [2, 8, 3, 3]"), "{msg}");

    let nan = tensors_with(|t| {
        t.insert("refine.9.bias".into(), Tensor::new(&[f32::NAN, 0.0, 0.0], &Device::Cpu).unwrap());
    });
    assert!(load_error(&nan).contains("NaN"));
}

#[test]
fn corrupt_and_truncated_files_are_errors() {
    let good = std::fs::read(fixture("jess-w8-n1").join("weights.safetensors")).expect("read");
    for bytes in [&b""[..], &b"not safetensors at all"[..], &good[..good.len() / 2], &good[..7]] {
        let msg = load_error(bytes);
        assert!(msg.starts_with("weights w.safetensors:"), "{msg}");
    }
}

#[test]
fn loads_in_half_precision() {
    let model = load_weights_file(&fixture("jess-w8-n1").join("weights.safetensors"), &Device::Cpu, DType::BF16)
        .expect("bf16 load");
    let x = io("jess-w8-n1")["input"].to_dtype(DType::BF16).unwrap();
    // CPU bf16 conv support varies with candle's build: when it runs, it must be close; when
    // it does not, the error must be the unsupported dtype, not some other failure.
    match model.net.forward_t(&x, false) {
        Ok(out) => {
            let err = max_abs(&out.s1.to_dtype(DType::F32).unwrap(), &io("jess-w8-n1")["s1"]);
            assert!(err < 5e-2, "bf16 s1: max abs error {err}");
        }
        Err(e) => {
            let msg = e.to_string();
            let dtype_refused = matches!(e, candle_core::Error::UnsupportedDTypeForOp(DType::BF16, _))
                || msg.to_ascii_lowercase().contains("bf16");
            assert!(dtype_refused, "bf16 forward failed for another reason than its dtype: {msg}");
        }
    }
}

/// The model shipped inside the binary loads, and its output on a real photo is finite and
/// (before the clip on writing) essentially inside [0, 1].
#[cfg(csgis_embedded_weights)]
#[test]
fn embedded_model_loads_and_gives_finite_in_range_output() {
    let bytes = csgis::model::EMBEDDED_WEIGHTS.expect("built with weights/csgis.safetensors");
    let model = load_weights(bytes, Path::new("<embedded>"), &Device::Cpu, DType::F32).expect("embedded weights load");
    let img = image::open(fixture("images/photos/structure_chelsea.png")).expect("photo").to_rgb8();
    let img = image::imageops::crop_imm(&img, 0, 0, 64, 48).to_image();
    let (w, h) = img.dimensions();
    let planar: Vec<f32> = (0..3).flat_map(|c| img.pixels().map(move |p| p.0[c] as f32 / 255.0)).collect();
    let x = Tensor::from_vec(planar, (1, 3, h as usize, w as usize), &Device::Cpu).unwrap();
    let s1 = model.net.forward_t(&x, false).expect("forward").s1.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(s1.iter().all(|v| v.is_finite()), "non-finite output");
    let (lo, hi) = s1.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(lo > -0.25 && hi < 1.25, "output range [{lo}, {hi}]");
}
