//! The one conversion point between planar images and (1, C, H, W) tensors.
//!
//! RGB order is kept: the network is fed RGB in [0, 1] with no normalisation (the CSGIS
//! training code reads through PIL, so in RGB).

use candle_core::{DType, Device, Tensor};

use crate::ops::Planes;

/// A (1, c, h, w) tensor of `img` on `device` in `dtype`.
pub fn planes_to_tensor(img: &Planes, device: &Device, dtype: DType) -> candle_core::Result<Tensor> {
    Tensor::from_slice(&img.data, (1, img.c, img.h, img.w), &Device::Cpu)?.to_dtype(dtype)?.to_device(device)
}

/// The planar image of a (1, c, h, w) or (c, h, w) tensor, as f32 on the CPU.
pub fn tensor_to_planes(t: &Tensor) -> candle_core::Result<Planes> {
    let t = if t.rank() == 4 { t.squeeze(0)? } else { t.clone() };
    let (c, h, w) = t.dims3()?;
    let data = t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(Planes::from_vec(c, h, w, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_on_a_non_square_image() {
        let img = Planes::from_fn(3, 5, 7, |c, y, x| (c * 35 + y * 7 + x) as f32 / 105.0);
        let t = planes_to_tensor(&img, &Device::Cpu, DType::F32).unwrap();
        assert_eq!(t.dims(), &[1, 3, 5, 7]);
        let v: f32 = t.get(0).unwrap().get(2).unwrap().get(4).unwrap().get(6).unwrap().to_scalar().unwrap();
        assert_eq!(v, img.get(2, 4, 6));
        assert_eq!(tensor_to_planes(&t).unwrap(), img);
    }
}
