//! Classical operators as a method: one enum over every operator's parameters, so that the
//! CLI, `eval --sweep` and the dataset builder can pass "an operator with its settings" around.

use super::{
    bilateral_filter, fgs_smooth, guided_filter, ils_smooth, l0_smooth, rolling_guidance, rtv_smooth, sdf_smooth,
    wls_smooth, BilateralParams, FgsParams, GuidedParams, IlsParams, L0Params, Planes, RgfParams, RtvParams, SdfParams,
    WlsParams,
};

/// A classical operator together with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Bilateral filter.
    Bilateral(BilateralParams),
    /// He et al.'s guided filter, self-guided.
    Guided(GuidedParams),
    /// Rolling guidance filter.
    Rgf(RgfParams),
    /// L0 gradient minimisation.
    L0(L0Params),
    /// Relative total variation.
    Rtv(RtvParams),
    /// Weighted least squares.
    Wls(WlsParams),
    /// Iterative least squares.
    Ils(IlsParams),
    /// Static/dynamic filter.
    Sdf(SdfParams),
    /// Fast global smoother.
    Fgs(FgsParams),
}

impl Method {
    /// Runs the operator on `img`.
    #[must_use]
    pub fn apply(&self, img: &Planes) -> Planes {
        match self {
            Self::Bilateral(p) => bilateral_filter(img, p),
            Self::Guided(p) => guided_filter(img, p),
            Self::Rgf(p) => rolling_guidance(img, p),
            Self::L0(p) => l0_smooth(img, p),
            Self::Rtv(p) => rtv_smooth(img, p),
            Self::Wls(p) => wls_smooth(img, p),
            Self::Ils(p) => ils_smooth(img, p),
            Self::Sdf(p) => sdf_smooth(img, p),
            Self::Fgs(p) => fgs_smooth(img, p),
        }
    }

    /// The operator's CLI name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Bilateral(_) => "bilateral",
            Self::Guided(_) => "guided",
            Self::Rgf(_) => "rgf",
            Self::L0(_) => "l0",
            Self::Rtv(_) => "rtv",
            Self::Wls(_) => "wls",
            Self::Ils(_) => "ils",
            Self::Sdf(_) => "sdf",
            Self::Fgs(_) => "fgs",
        }
    }

    /// Its settings as `name=value` pairs, for reports.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Bilateral(p) => format!("sigma_s={} sigma_r={}", p.sigma_s, p.sigma_r),
            Self::Guided(p) => format!("radius={} eps={}", p.radius, p.eps),
            Self::Rgf(p) => format!("sigma_s={} sigma_r={} iterations={}", p.sigma_s, p.sigma_r, p.iterations),
            Self::L0(p) => format!("lambda={} kappa={}", p.lambda, p.kappa),
            Self::Rtv(p) => format!("lambda={} sigma={} iterations={}", p.lambda, p.sigma, p.iterations),
            Self::Wls(p) => format!("lambda={} alpha={}", p.lambda, p.alpha),
            Self::Ils(p) => format!("lambda={} p={} eps={} iterations={}", p.lambda, p.p, p.eps, p.iterations),
            Self::Sdf(p) => format!("lambda={} mu={} nu={} iterations={}", p.lambda, p.mu, p.nu, p.iterations),
            Self::Fgs(p) => format!(
                "lambda={} sigma_r={} iterations={} attenuation={}",
                p.lambda, p.sigma_r, p.iterations, p.attenuation
            ),
        }
    }

    /// The small parameter grid `eval --sweep` tries (the protocol of the paper's Table 1:
    /// each operator at its best setting). Around the defaults and the authors' baselines.
    #[must_use]
    pub fn sweep(&self) -> Vec<Method> {
        match self {
            Self::Bilateral(_) => grid2(&[2.0, 4.0, 8.0], &[0.05, 0.1, 0.2], |s, r| {
                Self::Bilateral(BilateralParams { sigma_s: s, sigma_r: r })
            }),
            Self::Guided(_) => grid2(&[4.0, 8.0, 16.0], &[0.01, 0.04, 0.16], |r, e| {
                Self::Guided(GuidedParams { radius: r as usize, eps: e })
            }),
            Self::Rgf(p) => grid2(&[3.0, 5.0, 8.0], &[0.05, 0.1, 0.2], |s, r| {
                Self::Rgf(RgfParams { sigma_s: s, sigma_r: r, ..*p })
            }),
            Self::L0(p) => [0.005, 0.01, 0.02, 0.04, 0.08].iter().map(|&l| Self::L0(L0Params { lambda: l, ..*p })).collect(),
            Self::Rtv(p) => grid2(&[0.005, 0.01, 0.015, 0.03], &[2.0, 3.0, 5.0], |l, s| {
                Self::Rtv(RtvParams { lambda: l, sigma: s, ..*p })
            }),
            Self::Wls(_) => grid2(&[0.35, 1.0, 2.0, 4.0], &[1.2, 1.8], |l, a| Self::Wls(WlsParams { lambda: l, alpha: a })),
            Self::Ils(p) => [0.3, 1.0, 3.0, 10.0].iter().map(|&l| Self::Ils(IlsParams { lambda: l, ..*p })).collect(),
            Self::Sdf(p) => grid2(&[1.0, 3.0, 10.0], &[25.0, 50.0, 100.0], |l, m| Self::Sdf(SdfParams { lambda: l, mu: m, ..*p })),
            // A decade apart in λ (10 barely touches texture, 1000 flattens most of it).
            Self::Fgs(p) => grid2(&[10.0, 100.0, 1000.0], &[0.03, 0.06, 0.12], |l, s| {
                Self::Fgs(FgsParams { lambda: l, sigma_r: s, ..*p })
            }),
        }
    }
}

fn grid2(a: &[f32], b: &[f32], make: impl Fn(f32, f32) -> Method) -> Vec<Method> {
    a.iter().flat_map(|&x| b.iter().map(move |&y| (x, y))).map(|(x, y)| make(x, y)).collect()
}
