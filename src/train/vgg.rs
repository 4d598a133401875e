//! Frozen VGG16 feature extractor (Simonyan & Zisserman 2015) for the contrastive term, paper
//! §3.3 eq. 8–9, which compares S1, the GT and the negatives at relu1_2 and relu2_2.
//!
//! Weights are the Keras/Caffe ImageNet VGG16 convolutions (`shared/weights/README.md`), stored
//! as `block{B}_conv{C}.weight` (OIHW) and `.bias`; [`crate::train::vgg_extract`] produces them.
//! They expect **BGR, 0–255, minus the mean [103.939, 116.779, 123.68]**, so
//! [`caffe_preprocess`] converts the RGB [0, 1] images first. The authors fed [0, 1] RGB into
//! torchvision's VGG16 without any normalisation (`shared/docs/reference-implementation.md`
//! §2.4); the feature scale therefore differs from theirs, which matters for the fixed margins.
//! Pooling uses [`max_pool2x2`], whose gradient is correct (candle's `max_pool2d` is not).

use std::path::Path;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use crate::train::files::build_from_safetensors;
use crate::train::layers::max_pool2x2;

/// Per-channel means subtracted after the BGR ×255 conversion (B, G, R).
pub const CAFFE_MEAN_BGR: [f64; 3] = [103.939, 116.779, 123.68];

/// How deep the extractor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VggDepth {
    /// Up to relu2_2 (blocks 1–2), all that the CSGIS contrastive loss uses.
    Relu2_2,
    /// Up to relu3_3 (blocks 1–3), computed but unused by the authors.
    Relu3_3,
}

/// The feature maps a forward pass returns, each `(N, C, H/s, W/s)`.
#[derive(Debug, Clone)]
pub struct VggTaps {
    /// relu1_2: 64 channels, full resolution.
    pub relu1_2: Tensor,
    /// relu2_2: 128 channels, ½ resolution.
    pub relu2_2: Tensor,
    /// relu3_3: 256 channels, ¼ resolution, when built with [`VggDepth::Relu3_3`].
    pub relu3_3: Option<Tensor>,
}

impl VggTaps {
    /// The taps that are present, shallowest first.
    pub fn all(&self) -> Vec<&Tensor> {
        let mut v = vec![&self.relu1_2, &self.relu2_2];
        v.extend(self.relu3_3.as_ref());
        v
    }
}

/// (block, conv, in channels, out channels) of the 13 VGG16 convolutions, in order.
pub const VGG16_CONVS: [(usize, usize, usize, usize); 13] = [
    (1, 1, 3, 64),
    (1, 2, 64, 64),
    (2, 1, 64, 128),
    (2, 2, 128, 128),
    (3, 1, 128, 256),
    (3, 2, 256, 256),
    (3, 3, 256, 256),
    (4, 1, 256, 512),
    (4, 2, 512, 512),
    (4, 3, 512, 512),
    (5, 1, 512, 512),
    (5, 2, 512, 512),
    (5, 3, 512, 512),
];

/// A frozen VGG16 convolution trunk; its weights are constants, never `Var`s.
#[derive(Debug, Clone)]
pub struct Vgg16Features {
    /// (weight OIHW, bias) per layer, in [`VGG16_CONVS`] order.
    convs: Vec<(Tensor, Tensor)>,
}

/// Converts RGB in [0, 1] to the Caffe input of the weights: BGR, ×255, minus [`CAFFE_MEAN_BGR`].
pub fn caffe_preprocess(rgb01: &Tensor) -> Result<Tensor> {
    let (_, c, _, _) = rgb01.dims4()?;
    if c != 3 {
        candle_core::bail!("vgg: expected 3 channels, got {:?}", rgb01.shape())
    }
    let dev = rgb01.device();
    let bgr = rgb01.index_select(&Tensor::new(&[2u32, 1, 0], dev)?, 1)?;
    let mean = Tensor::new(&CAFFE_MEAN_BGR, dev)?.to_dtype(rgb01.dtype())?.reshape((1, 3, 1, 1))?;
    (bgr * 255.0)?.broadcast_sub(&mean)
}

impl Vgg16Features {
    /// Builds the trunk from `block{B}_conv{C}.weight/.bias` tensors in `vb`.
    pub fn new(vb: VarBuilder, depth: VggDepth) -> Result<Self> {
        let count = match depth {
            VggDepth::Relu2_2 => 4,
            VggDepth::Relu3_3 => 7,
        };
        let convs = VGG16_CONVS[..count]
            .iter()
            .map(|&(b, c, cin, cout)| {
                let vb = vb.pp(format!("block{b}_conv{c}"));
                Ok((vb.get((cout, cin, 3, 3), "weight")?, vb.get(cout, "bias")?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { convs })
    }

    /// Loads the trunk from a safetensors file (float16 or float32 tensors) as `dtype`.
    pub fn load(path: &Path, depth: VggDepth, dtype: DType, dev: &Device) -> crate::Result<Self> {
        build_from_safetensors(path, dtype, dev, |vb| Self::new(vb, depth))
    }

    /// Runs RGB images in [0, 1], `(N, 3, H, W)` with H and W even (≥ 4 for relu3_3), through
    /// [`caffe_preprocess`] and the trunk. Differentiable with respect to the input.
    pub fn forward(&self, rgb01: &Tensor) -> Result<VggTaps> {
        let conv = |x: &Tensor, i: usize| -> Result<Tensor> {
            let (w, b) = &self.convs[i];
            crate::model::conv3x3_bias(x, w, b, 1, true)
        };
        let x = caffe_preprocess(rgb01)?;
        let relu1_2 = conv(&conv(&x, 0)?, 1)?;
        let x = max_pool2x2(&relu1_2)?;
        let relu2_2 = conv(&conv(&x, 2)?, 3)?;
        let relu3_3 = if self.convs.len() == 7 {
            let x = max_pool2x2(&relu2_2)?;
            Some(conv(&conv(&conv(&x, 4)?, 5)?, 6)?)
        } else {
            None
        };
        Ok(VggTaps { relu1_2, relu2_2, relu3_3 })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok_subset, rand_f64, reseed_varmap};
    use candle_nn::{Init, VarMap};

    /// A VGG trunk with deterministic kernels of standard deviation `gain/√(9·cin)` and constant
    /// `bias`, in f64.
    pub(crate) fn random_vgg(depth: VggDepth, gain: f64, bias: f64) -> Result<Vgg16Features> {
        let (map, dev) = (VarMap::new(), Device::Cpu);
        let vb = VarBuilder::from_varmap(&map, DType::F64, &dev);
        for &(b, c, cin, cout) in &VGG16_CONVS[..7] {
            let name = format!("block{b}_conv{c}");
            map.get(
                (cout, cin, 3, 3),
                &format!("{name}.weight"),
                Init::Const(0.0),
                DType::F64,
                &dev,
            )?;
            map.get(cout, &format!("{name}.bias"), Init::Const(bias), DType::F64, &dev)?;
        }
        // He scale is sqrt(2); rescale the deterministic kernels to the requested gain.
        reseed_varmap(&map, 21)?;
        for (name, var) in
            map.data().lock().map_err(|_| candle_core::Error::Msg("lock".into()))?.iter()
        {
            if name.ends_with("weight") {
                var.set(&(var.as_tensor() * (gain / 2f64.sqrt()))?)?;
            }
        }
        Vgg16Features::new(vb, depth)
    }

    #[test]
    fn preprocessing_is_caffe_bgr() -> Result<()> {
        let x = Tensor::new(&[0.0f64, 0.5, 1.0], &Device::Cpu)?.reshape((1, 3, 1, 1))?;
        let y = caffe_preprocess(&x)?.flatten_all()?.to_vec1::<f64>()?;
        assert_eq!(y, vec![255.0 - 103.939, 127.5 - 116.779, -123.68]);
        Ok(())
    }

    #[test]
    fn tap_shapes() -> Result<()> {
        let vgg = random_vgg(VggDepth::Relu3_3, 2f64.sqrt(), 0.1)?;
        let taps = vgg.forward(&rand_f64(&[2, 3, 8, 12], 1)?)?;
        assert_eq!(taps.relu1_2.dims(), &[2, 64, 8, 12]);
        assert_eq!(taps.relu2_2.dims(), &[2, 128, 4, 6]);
        assert_eq!(taps.relu3_3.as_ref().map(|t| t.dims().to_vec()), Some(vec![2, 256, 2, 3]));
        assert_eq!(taps.all().len(), 3);
        let shallow = random_vgg(VggDepth::Relu2_2, 2f64.sqrt(), 0.1)?
            .forward(&rand_f64(&[1, 3, 4, 4], 2)?)?;
        assert!(shallow.relu3_3.is_none());
        Ok(())
    }

    #[test]
    fn input_gradients() -> Result<()> {
        let vgg = random_vgg(VggDepth::Relu2_2, 2f64.sqrt(), 0.1)?;
        let x = rand_f64(&[1, 3, 4, 6], 3)?;
        // The input is scaled by 255 inside; keep the step relative to that.
        assert_grad_ok_subset(&x, |x| Ok(vgg.forward(x)?.relu2_2), 4, 24, 1e-6)
    }

    /// The real ImageNet weights are 29 MB and live outside the repository, so this test only
    /// runs on request: `CSGIS_VGG16=PATH cargo test -- --ignored loads_real_vgg16`. It fails when
    /// the file is missing.
    #[test]
    #[ignore = "needs the ImageNet VGG16 weights: set CSGIS_VGG16 and pass --ignored"]
    fn loads_real_vgg16_weights() -> crate::Result<()> {
        let path = std::path::PathBuf::from(std::env::var("CSGIS_VGG16").expect("CSGIS_VGG16=path of vgg16 safetensors"));
        let vgg = Vgg16Features::load(&path, VggDepth::Relu3_3, DType::F32, &Device::Cpu)?;
        let w = vgg.convs[0].0.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(w[0], 0.429_470_57);
        let taps = vgg.forward(&Tensor::full(0.5f32, (1, 3, 8, 8), &Device::Cpu)?)?;
        let m = taps.relu2_2.mean_all()?.to_scalar::<f32>()?;
        assert!(m.is_finite() && m > 0.0);
        Ok(())
    }
}
