//! The smoothing candidates that [`crate::data::build`] screens for each image: the five
//! operators the paper names in §4.1 (BF, L0, RGF, RTV, SDF), each at several settings.
//!
//! The settings bracket the "plausible GT on easy images" values shown in Easy2Hard's
//! `intro.png` (reference-implementation.md §2.4): BF σc 0.08 σs 6, RTV ε 0.008,
//! RGF σc 0.08 σs 6 × 2, L0 λ 0.003, SDF λ 3; one step weaker and one stronger each, so
//! that the screening has an under-, a well- and an over-smoothed option to choose from.

use crate::ops::Planes;

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

/// Gaussian blurs at the given σ (px), a cheap stand-in set for tests and previews.
#[must_use]
pub fn gaussian_candidates(sigmas: &[f32]) -> Vec<Candidate> {
    sigmas
        .iter()
        .map(|&s| {
            Candidate::new(format!("gaussian(sigma={s})"), move |p: &Planes| {
                let r = (3.0 * s).ceil() as usize;
                let data = (0..p.c)
                    .flat_map(|ch| crate::data::screen::gaussian_blur(p.plane(ch), p.h, p.w, s, r))
                    .collect();
                Planes::from_vec(p.c, p.h, p.w, data)
            })
        })
        .collect()
}
