//! Differentiable SSIM, the similarity inside L_re (paper eq. 6).
//!
//! The definition is the authors' `pytorch_ssim` (`shared/docs/reference-implementation.md`
//! §2.1), which is also the one every reported SSIM uses: an 11×11 Gaussian window with σ = 1.5
//! (normalised), per channel, zero padding 5 (same-size map, borders included),
//! C1 = 0.01², C2 = 0.03² (data range 1), and the map averaged over batch, channels and pixels.
//! The window is separable: [`super::blur::blur_same`] runs it on `(B·C, 1, H, W)` with all five
//! local statistics (μx, μy, E(x²), E(y²), E(xy)) stacked into one batch.

use candle_core::{Result, Tensor};

/// Window side of the SSIM Gaussian.
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of the SSIM Gaussian, in pixels.
pub const SSIM_SIGMA: f64 = 1.5;
/// Stabiliser of the luminance term, (0.01·L)² with data range L = 1.
pub const SSIM_C1: f64 = 0.01 * 0.01;
/// Stabiliser of the contrast-structure term, (0.03·L)² with L = 1.
pub const SSIM_C2: f64 = 0.03 * 0.03;

/// The normalised 1-D Gaussian `exp(−(i − size/2)² / 2σ²) / Σ` for `i = 0..size`.
pub fn gaussian_window(size: usize, sigma: f64) -> Vec<f64> {
    let centre = (size / 2) as f64;
    let g: Vec<f64> =
        (0..size).map(|i| (-((i as f64 - centre).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let sum: f64 = g.iter().sum();
    g.into_iter().map(|v| v / sum).collect()
}

/// Mean SSIM of two `(N, C, H, W)` images in [0, 1], as the authors' `pytorch_ssim.ssim`
/// (window 11, σ 1.5, zero padding 5, C1 = 0.01², C2 = 0.03², mean over everything).
///
/// Differentiable with respect to both inputs. Used by L_re (eq. 6) at every pyramid scale; it
/// must agree with `csgis::metrics::ssim`, which reports the same quantity.
pub fn ssim(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    ssim_map(x, y)?.mean_all()
}

/// The per-pixel SSIM map of [`ssim`], shape `(N, C, H, W)`.
pub fn ssim_map(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    if x.dims() != y.dims() {
        candle_core::bail!("ssim: shapes {:?} and {:?} differ", x.shape(), y.shape())
    }
    let (n, c, h, w) = x.dims4()?;
    let planes = n * c;
    let x1 = x.reshape((planes, 1, h, w))?;
    let y1 = y.reshape((planes, 1, h, w))?;
    let stacked = Tensor::cat(&[&x1, &y1, &x1.sqr()?, &y1.sqr()?, &(&x1 * &y1)?], 0)?;
    let blurred = super::blur::blur_same(&stacked, &gaussian_window(SSIM_WINDOW, SSIM_SIGMA))?;
    let stat = |i: usize| blurred.narrow(0, i * planes, planes);
    let (mu_x, mu_y) = (stat(0)?, stat(1)?);
    let (mu_xx, mu_yy, mu_xy) = (mu_x.sqr()?, mu_y.sqr()?, (&mu_x * &mu_y)?);
    let sigma_x = (stat(2)? - &mu_xx)?;
    let sigma_y = (stat(3)? - &mu_yy)?;
    let sigma_xy = (stat(4)? - &mu_xy)?;
    let num = ((mu_xy * 2.0)? + SSIM_C1)?.mul(&((sigma_xy * 2.0)? + SSIM_C2)?)?;
    let den = ((mu_xx + mu_yy)? + SSIM_C1)?.mul(&((sigma_x + sigma_y)? + SSIM_C2)?)?;
    (num / den)?.reshape((n, c, h, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64};

    /// Direct 2-D windowed SSIM in f64 loops, zero padding, as pytorch_ssim.
    fn naive_ssim(x: &[f64], y: &[f64], n: usize, h: usize, w: usize) -> f64 {
        let g = gaussian_window(11, 1.5);
        let at = |v: &[f64], p: usize, i: isize, j: isize| -> f64 {
            if i < 0 || j < 0 || i >= h as isize || j >= w as isize {
                0.0
            } else {
                v[p * h * w + i as usize * w + j as usize]
            }
        };
        let mut total = 0.0;
        for p in 0..n {
            for i in 0..h as isize {
                for j in 0..w as isize {
                    let (mut mx, mut my, mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0, 0.0, 0.0);
                    for a in 0..11isize {
                        for b in 0..11isize {
                            let wgt = g[a as usize] * g[b as usize];
                            let (vx, vy) =
                                (at(x, p, i + a - 5, j + b - 5), at(y, p, i + a - 5, j + b - 5));
                            mx += wgt * vx;
                            my += wgt * vy;
                            xx += wgt * vx * vx;
                            yy += wgt * vy * vy;
                            xy += wgt * vx * vy;
                        }
                    }
                    let (sx, sy, sxy) = (xx - mx * mx, yy - my * my, xy - mx * my);
                    total += ((2.0 * mx * my + SSIM_C1) * (2.0 * sxy + SSIM_C2))
                        / ((mx * mx + my * my + SSIM_C1) * (sx + sy + SSIM_C2));
                }
            }
        }
        total / (n * h * w) as f64
    }

    #[test]
    fn window_is_normalised_and_symmetric() {
        let g = gaussian_window(11, 1.5);
        assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert_eq!(g[0], g[10]);
        assert!(g[5] > g[4]);
    }

    #[test]
    fn matches_naive_reference() -> Result<()> {
        let x = rand_f64(&[2, 3, 13, 17], 1)?;
        let y = ((&x * 0.6)? + (rand_f64(&[2, 3, 13, 17], 2)? * 0.4)?)?;
        let got = ssim(&x, &y)?.to_scalar::<f64>()?;
        let want = naive_ssim(
            &x.flatten_all()?.to_vec1::<f64>()?,
            &y.flatten_all()?.to_vec1::<f64>()?,
            6,
            13,
            17,
        );
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        let same = ssim(&x, &x)?.to_scalar::<f64>()?;
        assert!((same - 1.0).abs() < 1e-12);
        Ok(())
    }

    fn fixture(name: &str) -> crate::ops::Planes {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/metrics").join(name);
        let img = image::open(&path).expect("metrics fixture").to_rgb16();
        let (w, h) = (img.width() as usize, img.height() as usize);
        crate::ops::Planes::from_fn(3, h, w, |c, y, x| {
            f32::from(img.get_pixel(x as u32, y as u32)[c]) / 65535.0
        })
    }

    #[test]
    fn agrees_with_the_metrics_module_on_a_real_image() -> Result<()> {
        let a = fixture("astronaut_96x96__blur1_noise002_a.png");
        let b = fixture("astronaut_96x96__blur1_noise002_b.png");
        let want = crate::metrics::ssim(&a, &b);
        let to_t = |p: &crate::ops::Planes| {
            Tensor::from_vec(p.data.clone(), (1, p.c, p.h, p.w), &candle_core::Device::Cpu)
        };
        let (ta, tb) = (to_t(&a)?, to_t(&b)?);
        let got32 = f64::from(ssim(&ta, &tb)?.to_scalar::<f32>()?);
        let got64 =
            ssim(&ta.to_dtype(candle_core::DType::F64)?, &tb.to_dtype(candle_core::DType::F64)?)?
                .to_scalar::<f64>()?;
        assert!((got64 - want).abs() < 1e-5, "{got64} vs metrics {want}");
        assert!((got32 - want).abs() < 1e-5, "{got32} (f32) vs metrics {want}");
        Ok(())
    }

    #[test]
    fn gradients_both_inputs() -> Result<()> {
        let x = rand_f64(&[1, 2, 6, 7], 3)?;
        let y = rand_f64(&[1, 2, 6, 7], 4)?;
        assert_grad_ok(&x, |x| ssim_map(x, &y), 5)?;
        assert_grad_ok(&y, |y| ssim(&x, y), 6)
    }
}
