//! The smoothing candidates that [`crate::data::build`] screens for each image: the five
//! operators the paper names in §4.1 (BF, L0, RGF, RTV, SDF), each at several settings.
//!
//! The settings bracket the "plausible GT on easy images" values shown in Easy2Hard's
//! `intro.png` (reference-implementation.md §2.4): BF σc 0.08 σs 6, RTV ε 0.008,
//! RGF σc 0.08 σs 6 × 2, L0 λ 0.003, SDF λ 3; one step weaker and one stronger each, so
//! that the screening has an under-, a well- and an over-smoothed option to choose from.

use crate::ops::{
    bilateral_filter, gaussian_blur, l0_smooth, rolling_guidance, rtv_smooth, sdf_smooth, BilateralParams, GaussianParams, L0Params,
    Planes, RgfParams, RtvParams, SdfParams,
};

/// A named smoothing operator at one setting.
pub struct Candidate {
    /// Operator and setting, e.g. `l0(lambda=0.005)`.
    pub name: String,
    /// The operator.
    pub run: Box<dyn Fn(&Planes) -> Planes + Send + Sync>,
}

impl std::fmt::Debug for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candidate").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Candidate {
    /// A candidate from a name and a function.
    pub fn new(name: impl Into<String>, run: impl Fn(&Planes) -> Planes + Send + Sync + 'static) -> Self {
        Self { name: name.into(), run: Box::new(run) }
    }
}

/// The candidates `dataset build` and `synth` screen: 16 settings of BF, L0, RGF, RTV
/// and SDF (see the module header).
#[must_use]
pub fn default_candidates() -> Vec<Candidate> {
    let mut v = Vec::new();
    for (sigma_s, sigma_r) in [(3.0, 0.05), (6.0, 0.08), (6.0, 0.12)] {
        let p = BilateralParams { sigma_s, sigma_r };
        v.push(Candidate::new(format!("bf(sigma_s={sigma_s},sigma_r={sigma_r})"), move |x: &Planes| bilateral_filter(x, &p)));
    }
    for lambda in [0.002, 0.005, 0.01, 0.02] {
        let p = L0Params { lambda, ..L0Params::default() };
        v.push(Candidate::new(format!("l0(lambda={lambda})"), move |x: &Planes| l0_smooth(x, &p)));
    }
    for (sigma_s, sigma_r, iterations) in [(3.0, 0.05, 4), (6.0, 0.08, 2), (6.0, 0.1, 4)] {
        let p = RgfParams { sigma_s, sigma_r, iterations, ..RgfParams::default() };
        v.push(Candidate::new(format!("rgf(sigma_s={sigma_s},sigma_r={sigma_r},iter={iterations})"), move |x: &Planes| rolling_guidance(x, &p)));
    }
    for lambda in [0.005, 0.01, 0.02] {
        let p = RtvParams { lambda, ..RtvParams::default() };
        v.push(Candidate::new(format!("rtv(lambda={lambda})"), move |x: &Planes| rtv_smooth(x, &p)));
    }
    for lambda in [1.0, 3.0, 10.0] {
        let p = SdfParams { lambda, ..SdfParams::default() };
        v.push(Candidate::new(format!("sdf(lambda={lambda})"), move |x: &Planes| sdf_smooth(x, &p)));
    }
    v
}

/// Gaussian blurs at the given σ (px), a cheap stand-in set for tests and previews.
#[must_use]
pub fn gaussian_candidates(sigmas: &[f32]) -> Vec<Candidate> {
    sigmas
        .iter()
        .map(|&sigma| {
            let p = GaussianParams { sigma, radius: (3.0 * sigma).ceil() as usize };
            Candidate::new(format!("gaussian(sigma={sigma})"), move |x: &Planes| gaussian_blur(x, &p))
        })
        .collect()
}
