//! The paper's §4.1 screening of smoothing candidates: a smoothness test (eq. 12) in
//! edge-free windows and a structure test (SSIM, eq. 13) in structure regions.
//!
//! **Smoothness (eq. 12).** A `window × window` square slides over the candidate's grey
//! image (luma, [0, 1]) with step `stride`. Windows holding no Sobel edge pixel of the
//! candidate (the [`edge_labels`] rule, threshold 50) are measured:
//! `smooth_value = std(patch) + mean |L|`, L the 4-neighbour Laplacian
//! ∂²I/∂x² + ∂²I/∂y² (reflect border). The candidate's smoothness is the mean over those
//! windows and passes when it is below 0.05 (the paper's threshold). The paper does not
//! say how window values are pooled; the mean is our choice. Because a candidate that
//! keeps strong texture would hide it behind its own Sobel "edges", we add one guard:
//! among the windows that touch no structure region, at most `max_residue` (10 %) may
//! contain a candidate edge; otherwise the candidate fails as under-smoothed.
//!
//! **Structure (eq. 13).** The paper's volunteers marked the patches that contain
//! semantic structure and rejected visibly distorted candidates. We replace the vote by
//! an automatic rule: **structure regions are the Sobel edges (threshold 50) of the
//! original image after a Gaussian blur of σ = 2 px, dilated by 2 px**. The blur removes
//! texture finer than about 4 px, so what survives is object-scale contrast (a step of
//! about 0.25 or more in [0, 1] luma). SSIM (Wang et al. 2004: 11 × 11 Gaussian window,
//! σ 1.5, C1 = 0.01², C2 = 0.03², α = β = γ = 1) between the original's and the
//! candidate's luma ([`crate::metrics::ssim_map`], the CSGIS convention) is averaged over those pixels (over the whole image when there are
//! none). The volunteers' "reject on distortion" becomes a floor: a structure SSIM
//! below `min_structure_ssim` fails. The passing candidate with the largest structure
//! SSIM becomes the GT ([`crate::data::build`]).

use crate::data::edges::{edge_labels, EdgeChannel};
use crate::metrics::ssim_map;
use crate::ops::{gaussian_blur, Border, GaussianParams, Planes};

/// Thresholds and window sizes of the screening.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScreenParams {
    /// Side of the sliding window in pixels (16).
    pub window: usize,
    /// Step of the sliding window in pixels (8).
    pub stride: usize,
    /// Pass threshold on the pooled eq. 12 smooth value (0.05, the paper's).
    pub smooth_threshold: f32,
    /// Largest fraction of structure-free windows that may hold a candidate edge (0.1).
    pub max_residue: f32,
    /// Gaussian σ in pixels of the blur that defines structure regions (2).
    pub structure_sigma: f32,
    /// Dilation radius in pixels of the structure regions (2).
    pub structure_dilate: usize,
    /// Lowest structure-region SSIM that passes (0.7).
    pub min_structure_ssim: f32,
}

impl Default for ScreenParams {
    fn default() -> Self {
        Self {
            window: 16,
            stride: 8,
            smooth_threshold: 0.05,
            max_residue: 0.1,
            structure_sigma: 2.0,
            structure_dilate: 2,
            min_structure_ssim: 0.7,
        }
    }
}

/// One candidate's screening figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Screening {
    /// Pooled eq. 12 value over edge-free windows (infinite when there are none).
    pub smoothness: f32,
    /// Number of edge-free windows measured.
    pub edge_free_windows: usize,
    /// Fraction of structure-free windows holding a candidate edge.
    pub residue: f32,
    /// Mean SSIM against the original over structure regions.
    pub structure_ssim: f32,
    /// Whether the smoothness test passed.
    pub smooth_pass: bool,
    /// Whether the structure test passed.
    pub structure_pass: bool,
}

impl Screening {
    /// Both tests passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.smooth_pass && self.structure_pass
    }
}

/// The automatic structure regions of an original image (see the module header).
#[must_use]
pub fn structure_regions(original: &Planes, p: &ScreenParams) -> Vec<bool> {
    let (h, w) = (original.h, original.w);
    let radius = (3.0 * p.structure_sigma).ceil() as usize;
    let blurred = gaussian_blur(&original.luma(), &GaussianParams { sigma: p.structure_sigma, radius });
    let edges = edge_labels(&blurred, EdgeChannel::Luma);
    let d = p.structure_dilate as isize;
    let mut out = vec![false; h * w];
    for y in 0..h as isize {
        for x in 0..w as isize {
            if edges.data[y as usize * w + x as usize] == 0 {
                continue;
            }
            for yy in (y - d).max(0)..(y + d + 1).min(h as isize) {
                for xx in (x - d).max(0)..(x + d + 1).min(w as isize) {
                    out[yy as usize * w + xx as usize] = true;
                }
            }
        }
    }
    out
}

/// The 4-neighbour Laplacian of a plane (reflect-101 border).
fn laplacian(g: &[f32], h: usize, w: usize) -> Vec<f32> {
    let at = |y: isize, x: isize| g[Border::Reflect101.index(y, h) * w + Border::Reflect101.index(x, w)];
    let mut out = Vec::with_capacity(h * w);
    for y in 0..h as isize {
        for x in 0..w as isize {
            out.push(at(y, x - 1) + at(y, x + 1) + at(y - 1, x) + at(y + 1, x) - 4.0 * at(y, x));
        }
    }
    out
}

/// Window origins along one axis: every `stride`, plus the last full window.
fn window_starts(n: usize, win: usize, stride: usize) -> Vec<usize> {
    if n <= win {
        return vec![0];
    }
    let mut v: Vec<usize> = (0..=n - win).step_by(stride.max(1)).collect();
    if v.last() != Some(&(n - win)) {
        v.push(n - win);
    }
    v
}

/// Screens one candidate against its original; `regions` from [`structure_regions`].
///
/// # Panics
/// 1. When the candidate, original and regions differ in size.
#[must_use]
pub fn screen(original: &Planes, candidate: &Planes, regions: &[bool], p: &ScreenParams) -> Screening {
    let (h, w) = (candidate.h, candidate.w);
    assert!(original.h == h && original.w == w && regions.len() == h * w, "screen: size mismatch");
    let gray = candidate.luma().data;
    let lap = laplacian(&gray, h, w);
    let edges = edge_labels(candidate, EdgeChannel::Luma).data;
    let win = p.window.min(h).min(w).max(1);
    let (mut sum, mut free) = (0.0f64, 0usize);
    let (mut unstructured, mut residue) = (0usize, 0usize);
    for y0 in window_starts(h, win, p.stride) {
        for x0 in window_starts(w, win, p.stride) {
            let idx = || (y0..y0 + win).flat_map(move |y| (x0..x0 + win).map(move |x| y * w + x));
            let has_edge = idx().any(|i| edges[i] != 0);
            if !idx().any(|i| regions[i]) {
                unstructured += 1;
                residue += usize::from(has_edge);
            }
            if has_edge {
                continue;
            }
            let n = (win * win) as f64;
            let mean = idx().map(|i| f64::from(gray[i])).sum::<f64>() / n;
            let var = idx().map(|i| (f64::from(gray[i]) - mean).powi(2)).sum::<f64>() / n;
            let lap_mean = idx().map(|i| f64::from(lap[i].abs())).sum::<f64>() / n;
            sum += var.sqrt() + lap_mean;
            free += 1;
        }
    }
    let smoothness = if free == 0 { f32::INFINITY } else { (sum / free as f64) as f32 };
    let residue = if unstructured == 0 { 0.0 } else { residue as f32 / unstructured as f32 };
    let ssim = ssim_map(&original.luma(), &candidate.luma()).data;
    let in_region: Vec<f32> = ssim.iter().zip(regions).filter(|(_, &r)| r).map(|(s, _)| *s).collect();
    let pool = if in_region.is_empty() { &ssim } else { &in_region };
    let structure_ssim = pool.iter().map(|&v| f64::from(v)).sum::<f64>() as f32 / pool.len().max(1) as f32;
    Screening {
        smoothness,
        edge_free_windows: free,
        residue,
        structure_ssim,
        smooth_pass: smoothness < p.smooth_threshold && residue <= p.max_residue,
        structure_pass: structure_ssim >= p.min_structure_ssim,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::rng::Rng;

    fn two_tone(h: usize, w: usize) -> Planes {
        Planes::from_fn(3, h, w, |_, _, x| if x < w / 2 { 0.2 } else { 0.8 })
    }

    fn noisy(p: &Planes, amp: f32, seed: u64) -> Planes {
        let mut r = Rng::new(seed);
        Planes { data: p.data.iter().map(|v| (v + r.uniform(-amp, amp)).clamp(0.0, 1.0)).collect(), ..*p }
    }

    #[test]
    fn a_clean_two_tone_image_passes_and_a_noisy_one_fails() {
        let p = ScreenParams::default();
        let clean = two_tone(48, 64);
        let regions = structure_regions(&clean, &p);
        assert!(regions.iter().any(|&r| r) && !regions.iter().all(|&r| r));
        let s = screen(&clean, &clean, &regions, &p);
        assert!(s.passed(), "{s:?}");
        assert!(s.smoothness < 1e-6 && (s.structure_ssim - 1.0).abs() < 1e-4);
        let rough = screen(&clean, &noisy(&clean, 0.08, 3), &regions, &p);
        assert!(!rough.smooth_pass, "{rough:?}");
    }

    #[test]
    fn a_blurred_structure_fails_the_structure_test() {
        let p = ScreenParams::default();
        let clean = two_tone(48, 64);
        let regions = structure_regions(&clean, &p);
        let blurred = gaussian_blur(&clean, &GaussianParams { sigma: 4.0, radius: 12 });
        let s = screen(&clean, &blurred, &regions, &p);
        assert!(s.structure_ssim < screen(&clean, &clean, &regions, &p).structure_ssim);
        assert!(!s.structure_pass, "{s:?}");
    }

    #[test]
    fn fine_texture_is_not_structure() {
        let p = ScreenParams::default();
        let tex = Planes::from_fn(3, 40, 40, |_, y, x| if (x + y) % 2 == 0 { 0.4 } else { 0.6 });
        assert!(structure_regions(&tex, &p).iter().all(|&r| !r));
    }
}
