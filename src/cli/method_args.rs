//! `--method NAME` and the classical operators' flags, resolved into an [`ops::Method`].
//!
//! Every flag is on the [0, 1] intensity scale for colour parameters and in pixels for spatial
//! ones. A flag that the chosen method does not take is an error rather than silently ignored.

use anyhow::bail;
use clap::{Args, ValueEnum};

use crate::ops::{
    self, BilateralParams, FgsParams, GuidedParams, IlsParams, L0Params, RgfParams, RtvParams, SdfParams, WlsParams,
};

/// The methods on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodName {
    /// CSGIS-Net (the default).
    Csgis,
    /// Bilateral filter (--sigma-s, --sigma-r).
    Bilateral,
    /// Guided filter, self-guided (--radius, --eps).
    Guided,
    /// Rolling guidance filter (--sigma-s, --sigma-r, --iterations).
    Rgf,
    /// L0 gradient minimisation (--lambda, --kappa).
    L0,
    /// Relative total variation (--lambda, --sigma, --iterations).
    Rtv,
    /// Weighted least squares (--lambda, --alpha).
    Wls,
    /// Iterative least squares (--lambda, --p, --eps, --iterations).
    Ils,
    /// Static/dynamic filter (--lambda, --mu, --nu, --iterations).
    Sdf,
    /// Fast global smoother (--lambda, --sigma-r, --iterations, --attenuation).
    Fgs,
}

/// The method and its parameters.
#[derive(Debug, Clone, Args)]
pub struct MethodArgs {
    /// Smoothing method.
    #[arg(long, value_enum, default_value = "csgis")]
    pub method: MethodName,
    /// Spatial sigma in pixels (bilateral, rgf).
    #[arg(long, help_heading = "Classical operators")]
    pub sigma_s: Option<f32>,
    /// Range sigma on the [0, 1] scale (bilateral, rgf, fgs; OpenCV's sigmaColor / 255 on 8-bit data).
    #[arg(long, help_heading = "Classical operators")]
    pub sigma_r: Option<f32>,
    /// Window radius in pixels (guided).
    #[arg(long, help_heading = "Classical operators")]
    pub radius: Option<usize>,
    /// Regularisation in [0, 1]² units (guided; OpenCV's eps·255² on 8-bit data), or the
    /// Charbonnier epsilon (ils).
    #[arg(long, help_heading = "Classical operators")]
    pub eps: Option<f32>,
    /// Iterations (rgf, rtv, ils, sdf, fgs).
    #[arg(long, help_heading = "Classical operators")]
    pub iterations: Option<usize>,
    /// Smoothness weight (l0, rtv, wls, ils, sdf, fgs; for fgs OpenCV's lambda).
    #[arg(long, help_heading = "Classical operators")]
    pub lambda: Option<f32>,
    /// β growth factor (l0).
    #[arg(long, help_heading = "Classical operators")]
    pub kappa: Option<f32>,
    /// Texture scale in pixels (rtv).
    #[arg(long, help_heading = "Classical operators")]
    pub sigma: Option<f32>,
    /// Gradient sensitivity exponent (wls).
    #[arg(long, help_heading = "Classical operators")]
    pub alpha: Option<f32>,
    /// Norm exponent (ils).
    #[arg(long, help_heading = "Classical operators")]
    pub p: Option<f32>,
    /// Fidelity weight (sdf).
    #[arg(long, help_heading = "Classical operators")]
    pub mu: Option<f32>,
    /// Welsch scale (sdf).
    #[arg(long, help_heading = "Classical operators")]
    pub nu: Option<f32>,
    /// Factor on lambda from one iteration to the next, in (0, 1] (fgs).
    #[arg(long, help_heading = "Classical operators")]
    pub attenuation: Option<f32>,
}

impl MethodArgs {
    /// `None` for CSGIS-Net, else the classical operator with the given flags over its defaults.
    ///
    /// # Errors
    /// A flag the method does not take, or a parameter out of range.
    pub fn resolve(&self) -> anyhow::Result<Option<ops::Method>> {
        let given: Vec<(&str, bool)> = vec![
            ("sigma-s", self.sigma_s.is_some()),
            ("sigma-r", self.sigma_r.is_some()),
            ("radius", self.radius.is_some()),
            ("eps", self.eps.is_some()),
            ("iterations", self.iterations.is_some()),
            ("lambda", self.lambda.is_some()),
            ("kappa", self.kappa.is_some()),
            ("sigma", self.sigma.is_some()),
            ("alpha", self.alpha.is_some()),
            ("p", self.p.is_some()),
            ("mu", self.mu.is_some()),
            ("nu", self.nu.is_some()),
            ("attenuation", self.attenuation.is_some()),
        ];
        let takes: &[&str] = match self.method {
            MethodName::Csgis => &[],
            MethodName::Bilateral => &["sigma-s", "sigma-r"],
            MethodName::Guided => &["radius", "eps"],
            MethodName::Rgf => &["sigma-s", "sigma-r", "iterations"],
            MethodName::L0 => &["lambda", "kappa"],
            MethodName::Rtv => &["lambda", "sigma", "iterations"],
            MethodName::Wls => &["lambda", "alpha"],
            MethodName::Ils => &["lambda", "p", "eps", "iterations"],
            MethodName::Sdf => &["lambda", "mu", "nu", "iterations"],
            MethodName::Fgs => &["lambda", "sigma-r", "iterations", "attenuation"],
        };
        if let Some((flag, _)) = given.iter().find(|(f, set)| *set && !takes.contains(f)) {
            let name = self.method.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
            bail!("--{flag} does not apply to --method {name}");
        }
        let m = match self.method {
            MethodName::Csgis => return Ok(None),
            MethodName::Bilateral => {
                let d = BilateralParams::default();
                ops::Method::Bilateral(BilateralParams::new(self.sigma_s.unwrap_or(d.sigma_s), self.sigma_r.unwrap_or(d.sigma_r))?)
            }
            MethodName::Guided => {
                let d = GuidedParams::default();
                ops::Method::Guided(GuidedParams::new(self.radius.unwrap_or(d.radius), self.eps.unwrap_or(d.eps))?)
            }
            MethodName::Rgf => {
                let d = RgfParams::default();
                let p = RgfParams::new(
                    self.sigma_s.unwrap_or(d.sigma_s),
                    self.sigma_r.unwrap_or(d.sigma_r),
                    self.iterations.unwrap_or(d.iterations),
                )?;
                ops::Method::Rgf(p)
            }
            MethodName::L0 => {
                let d = L0Params::default();
                ops::Method::L0(L0Params::new(self.lambda.unwrap_or(d.lambda), self.kappa.unwrap_or(d.kappa))?)
            }
            MethodName::Rtv => {
                let d = RtvParams::default();
                let p = RtvParams::new(
                    self.lambda.unwrap_or(d.lambda),
                    self.sigma.unwrap_or(d.sigma),
                    d.sharpness,
                    self.iterations.unwrap_or(d.iterations),
                )?;
                ops::Method::Rtv(p)
            }
            MethodName::Wls => {
                let d = WlsParams::default();
                ops::Method::Wls(WlsParams::new(self.lambda.unwrap_or(d.lambda), self.alpha.unwrap_or(d.alpha))?)
            }
            MethodName::Ils => {
                let d = IlsParams::default();
                let p = IlsParams::new(
                    self.lambda.unwrap_or(d.lambda),
                    self.p.unwrap_or(d.p),
                    self.eps.unwrap_or(d.eps),
                    self.iterations.unwrap_or(d.iterations),
                )?;
                ops::Method::Ils(p)
            }
            MethodName::Sdf => {
                let d = SdfParams::default();
                let p = SdfParams::new(
                    self.lambda.unwrap_or(d.lambda),
                    self.mu.unwrap_or(d.mu),
                    self.nu.unwrap_or(d.nu),
                    self.iterations.unwrap_or(d.iterations),
                )?;
                ops::Method::Sdf(p)
            }
            MethodName::Fgs => {
                let d = FgsParams::default();
                let p = FgsParams::new(
                    self.lambda.unwrap_or(d.lambda),
                    self.sigma_r.unwrap_or(d.sigma_r),
                    self.iterations.unwrap_or(d.iterations),
                    self.attenuation.unwrap_or(d.attenuation),
                )?;
                ops::Method::Fgs(p)
            }
        };
        Ok(Some(m))
    }
}
