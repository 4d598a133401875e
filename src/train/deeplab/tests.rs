//! Shape, key-name, gradient and BatchNorm-mode tests of the DeepLab network on a tiny config.

use super::*;
use crate::train::gradcheck::{assert_grad_ok_subset, rand_f64, reseed_varmap};
use candle_nn::VarMap;

fn tiny(dtype: DType) -> Result<(VarMap, DeepLabV3Plus)> {
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, dtype, &Device::Cpu);
    let net = DeepLabV3Plus::new(&DeepLabConfig::tiny(5), vb)?;
    reseed_varmap(&map, 11)?;
    Ok((map, net))
}

fn var(map: &VarMap, key: &str) -> Result<Tensor> {
    let data = map.data().lock().map_err(|_| candle_core::Error::Msg("lock".into()))?;
    let v = data.get(key).ok_or_else(|| candle_core::Error::Msg(format!("no {key}")))?;
    v.as_tensor().copy()
}

#[test]
fn shapes_and_vainf_key_names() -> Result<()> {
    let (map, net) = tiny(DType::F32)?;
    let x = rand_f64(&[2, 3, 33, 29], 1)?.to_dtype(DType::F32)?;
    assert_eq!(net.forward_t(&imagenet_normalize(&x)?, false)?.dims(), &[2, 5, 33, 29]);
    let feats = net.backbone.forward_t(&x, false)?;
    assert_eq!(feats.low_level.dims(), &[2, 6, 8, 7]); // stride 4 (unpadded stem, then /2)
    assert_eq!(feats.out.dims(), &[2, 80, 2, 2]); // output stride 16
    let keys = [
        "backbone.low_level_features.0.0.weight",
        "backbone.low_level_features.1.conv.0.0.weight", // t = 1: depthwise first
        "backbone.low_level_features.1.conv.2.running_var",
        "backbone.low_level_features.3.conv.3.bias",
        "backbone.high_level_features.13.conv.2.weight",
        "classifier.project.0.weight",
        "classifier.aspp.convs.3.0.weight",
        "classifier.aspp.convs.4.1.weight",
        "classifier.aspp.project.1.running_mean",
        "classifier.classifier.0.weight",
        "classifier.classifier.3.bias",
    ];
    for k in keys {
        var(&map, k)?;
    }
    assert_eq!(var(&map, "backbone.low_level_features.1.conv.0.0.weight")?.dims(), &[8, 1, 3, 3]);
    assert_eq!(var(&map, "classifier.aspp.project.0.weight")?.dims(), &[8, 40, 1, 1]);
    assert_eq!(var(&map, "classifier.classifier.0.weight")?.dims(), &[8, 12, 3, 3]);
    // 17 inverted residuals: 3 low-level, 14 high-level.
    let data = map.data().lock().map_err(|_| candle_core::Error::Msg("lock".into()))?;
    assert!(data.contains_key("backbone.high_level_features.13.conv.0.0.weight"));
    assert!(!data.contains_key("backbone.high_level_features.14.conv.0.0.weight"));
    Ok(())
}

#[test]
fn full_size_channel_plan() -> Result<()> {
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    DeepLabV3Plus::new(&DeepLabConfig::default(), vb)?;
    assert_eq!(var(&map, "backbone.low_level_features.0.0.weight")?.dims(), &[32, 3, 3, 3]);
    assert_eq!(
        var(&map, "backbone.high_level_features.13.conv.2.weight")?.dims(),
        &[320, 960, 1, 1]
    );
    assert_eq!(var(&map, "classifier.project.0.weight")?.dims(), &[48, 24, 1, 1]);
    assert_eq!(var(&map, "classifier.aspp.project.0.weight")?.dims(), &[256, 1280, 1, 1]);
    assert_eq!(var(&map, "classifier.classifier.3.weight")?.dims(), &[21, 256, 1, 1]);
    let params: usize = map.all_vars().iter().map(|v| v.elem_count()).sum();
    // Trainable parameters plus BN running statistics.
    assert!(params > 5_000_000 && params < 6_500_000, "{params}");
    Ok(())
}

#[test]
fn gradients_reach_the_input() -> Result<()> {
    let (_map, net) = tiny(DType::F64)?;
    let x = rand_f64(&[2, 3, 19, 17], 2)?;
    assert_grad_ok_subset(&x, |x| net.forward_t(x, false), 3, 24, 1e-6)?;
    // Train-mode BatchNorm over 2x1 maps makes the net very curved: a 1e-6 step crosses
    // ReLU6 kinks and differs from the analytic gradient by up to 10 %; 1e-8 resolves it.
    assert_grad_ok_subset(&x, |x| net.forward_t(x, true), 4, 24, 1e-8)
}

#[test]
fn batchnorm_modes() -> Result<()> {
    let (map, net) = tiny(DType::F64)?;
    let x = rand_f64(&[2, 3, 24, 24], 5)?;
    let key = "backbone.low_level_features.0.1.running_mean";
    assert_eq!(var(&map, key)?.abs()?.sum_all()?.to_scalar::<f64>()?, 0.0);
    let eval1 = net.forward_t(&x, false)?;
    let eval2 = net.forward_t(&x, false)?;
    assert_eq!((&eval1 - &eval2)?.abs()?.max_all()?.to_scalar::<f64>()?, 0.0);
    assert_eq!(var(&map, key)?.abs()?.sum_all()?.to_scalar::<f64>()?, 0.0, "eval must not update");
    // Eval is per-sample: the first image's logits do not depend on the second.
    let alone = net.forward_t(&x.narrow(0, 0, 1)?, false)?;
    assert!((&alone - eval1.narrow(0, 0, 1)?)?.abs()?.max_all()?.to_scalar::<f64>()? < 1e-12);
    let train = net.forward_t(&x, true)?;
    assert!((&train - &eval1)?.abs()?.max_all()?.to_scalar::<f64>()? > 1e-6);
    assert!(var(&map, key)?.abs()?.sum_all()?.to_scalar::<f64>()? > 0.0, "train must update");
    assert!(net.forward_t(&x.narrow(0, 0, 1)?, true).is_err(), "batch 1 in train mode");
    Ok(())
}

#[test]
fn saved_weights_load_back() -> crate::Result<()> {
    let (map, net) = tiny(DType::F32)?;
    let dir = tempfile::tempdir().map_err(|e| crate::Error::io("tmp", e))?;
    let path = dir.path().join("deeplab.safetensors");
    map.save(&path)?;
    let loaded = DeepLabV3Plus::load(&path, &DeepLabConfig::tiny(5), DType::F32, &Device::Cpu)?;
    let x = rand_f64(&[1, 3, 20, 16], 6)?.to_dtype(DType::F32)?;
    let d = (net.forward_t(&x, false)? - loaded.forward_t(&x, false)?)?.abs()?.max_all()?;
    assert_eq!(d.to_scalar::<f32>()?, 0.0);
    assert!(DeepLabV3Plus::load(&path, &DeepLabConfig::tiny(7), DType::F32, &Device::Cpu).is_err());
    Ok(())
}
