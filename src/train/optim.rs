//! Adam (Kingma & Ba 2015) with saveable state, and the step learning-rate schedules.
//!
//! The paper (§4.2) trains with Adam, β = (0.9, 0.999), lr 1e-3 halved every 30 epochs, 250
//! epochs; the authors' code uses MultiStepLR at epochs 40/80/120/150/190 with γ = 0.5 and no
//! weight decay (`shared/docs/reference-implementation.md` §4). candle's `AdamW` keeps its moments
//! private, so a resumed run would restart them (`candle-notes.md` §3); [`Adam`] exposes its
//! state as named tensors and saves it to safetensors, so a resume continues bit for bit.
//! The update is PyTorch's `torch.optim.Adam` (coupled L2 weight decay, bias correction, eps
//! added after the bias-corrected square root).

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;

use crate::train::files::write_safetensors;

/// Adam hyper-parameters; the defaults are PyTorch's and the paper's.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    /// Learning rate (1e-3).
    pub lr: f64,
    /// First-moment decay β1 (0.9).
    pub beta1: f64,
    /// Second-moment decay β2 (0.999).
    pub beta2: f64,
    /// Denominator stabiliser (1e-8).
    pub eps: f64,
    /// L2 penalty added to the gradient, PyTorch `Adam` style (0).
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

#[derive(Debug)]
struct Slot {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
}

/// Adam over named candle [`Var`]s with inspectable, saveable moments and step count.
#[derive(Debug)]
pub struct Adam {
    slots: Vec<Slot>,
    step: u64,
    cfg: AdamConfig,
}

const STEP_KEY: &str = "adam.step";

fn is_running_stat(name: &str) -> bool {
    name.ends_with("running_mean")
        || name.ends_with("running_var")
        || name.ends_with("num_batches_tracked")
}

impl Adam {
    /// Optimises the floating-point `vars`; names key the saved state.
    pub fn new(vars: Vec<(String, Var)>, cfg: AdamConfig) -> Result<Self> {
        let slots = vars
            .into_iter()
            .filter(|(_, v)| v.dtype().is_float())
            .map(|(name, var)| {
                let m = var.zeros_like()?;
                let v = var.zeros_like()?;
                Ok(Slot { name, var, m, v })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { slots, step: 0, cfg })
    }

    /// Optimises every variable of `map` except BatchNorm running statistics, in name order.
    pub fn from_varmap(map: &VarMap, cfg: AdamConfig) -> Result<Self> {
        let mut vars: Vec<(String, Var)> = map
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?
            .iter()
            .filter(|(k, _)| !is_running_stat(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        Self::new(vars, cfg)
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.cfg
    }

    /// Number of steps taken (PyTorch's `state["step"]`).
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The current learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.cfg.lr
    }

    /// Sets the learning rate (for a schedule; see [`LrSchedule::lr`]).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// One Adam update of every variable that has a gradient in `grads`; others are untouched.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let AdamConfig { lr, beta1, beta2, eps, weight_decay } = self.cfg;
        let t = self.step as i32;
        let step_size = lr / (1.0 - beta1.powi(t));
        let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        for slot in self.slots.iter_mut() {
            let Some(g) = grads.get(&slot.var) else { continue };
            // Gradients can carry the op history of the step that made them; moments built from
            // them would chain every step's graph to the next and memory would grow without
            // bound, so everything kept across steps is detached.
            let g = g.detach();
            let theta = slot.var.as_detached_tensor();
            let g = if weight_decay != 0.0 { (g + (&theta * weight_decay)?)? } else { g.clone() };
            slot.m = ((&slot.m * beta1)? + (&g * (1.0 - beta1))?)?.detach();
            slot.v = ((&slot.v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?.detach();
            let denom = ((slot.v.sqrt()? / bc2_sqrt)? + eps)?;
            let update = ((&slot.m / denom)? * step_size)?;
            slot.var.set(&(theta - update)?)?;
        }
        Ok(())
    }

    /// `loss.backward()` followed by [`Adam::step`].
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }

    /// The state as named tensors: `adam.m.<name>`, `adam.v.<name>` and `adam.step` (I64).
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for s in &self.slots {
            out.insert(format!("adam.m.{}", s.name), s.m.clone());
            out.insert(format!("adam.v.{}", s.name), s.v.clone());
        }
        out.insert(STEP_KEY.to_string(), Tensor::new(&[self.step as i64], &Device::Cpu)?);
        Ok(out)
    }

    /// Restores state from [`Adam::state_tensors`]' layout. Every slot must be present with its
    /// shape; extra entries are ignored.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let get = |key: &str, like: &Tensor| -> Result<Tensor> {
            let t = state
                .get(key)
                .ok_or_else(|| candle_core::Error::Msg(format!("optimizer state lacks {key}")))?;
            if t.dims() != like.dims() {
                candle_core::bail!(
                    "optimizer state {key}: shape {:?}, expected {:?}",
                    t.shape(),
                    like.shape()
                )
            }
            t.to_dtype(like.dtype())?.to_device(like.device())
        };
        let step = state
            .get(STEP_KEY)
            .ok_or_else(|| candle_core::Error::Msg(format!("optimizer state lacks {STEP_KEY}")))?
            .to_dtype(DType::I64)?
            .flatten_all()?
            .to_vec1::<i64>()?;
        let mut restored = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            restored.push((
                get(&format!("adam.m.{}", s.name), &s.m)?,
                get(&format!("adam.v.{}", s.name), &s.v)?,
            ));
        }
        for (s, (m, v)) in self.slots.iter_mut().zip(restored) {
            s.m = m;
            s.v = v;
        }
        self.step = step.first().copied().unwrap_or(0).max(0) as u64;
        Ok(())
    }

    /// Writes the state to a safetensors file, atomically.
    pub fn save(&self, path: &Path) -> crate::Result<()> {
        write_safetensors(path, &self.state_tensors()?, None)
    }

    /// Reads state written by [`Adam::save`] into this optimizer (same variable names/shapes).
    pub fn load(&mut self, path: &Path) -> crate::Result<()> {
        let dev = self.slots.first().map(|s| s.var.device().clone()).unwrap_or(Device::Cpu);
        let state = candle_core::safetensors::load(path, &dev).map_err(|e| {
            crate::Error::Checkpoint { path: path.to_path_buf(), reason: e.to_string() }
        })?;
        self.load_state(&state).map_err(|e| crate::Error::Checkpoint {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

/// A learning rate as a function of the 0-based epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum LrSchedule {
    /// `base · gamma^⌊epoch / step_size⌋` (PyTorch `StepLR`); the paper: every 30 epochs, ½.
    Step {
        /// Initial learning rate.
        base: f64,
        /// Epochs between decays.
        step_size: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// `base · gamma^(number of milestones ≤ epoch)` (PyTorch `MultiStepLR`).
    MultiStep {
        /// Initial learning rate.
        base: f64,
        /// Epochs at which the rate is multiplied by `gamma`.
        milestones: Vec<usize>,
        /// Decay factor.
        gamma: f64,
    },
}

impl Default for LrSchedule {
    /// The paper: 1e-3, halved every 30 epochs.
    fn default() -> Self {
        Self::Step { base: 1e-3, step_size: 30, gamma: 0.5 }
    }
}

impl LrSchedule {
    /// The authors' code: 1e-3, halved at epochs 40, 80, 120, 150 and 190.
    pub fn reference_code() -> Self {
        Self::MultiStep { base: 1e-3, milestones: vec![40, 80, 120, 150, 190], gamma: 0.5 }
    }

    /// The learning rate for 0-based `epoch`.
    pub fn lr(&self, epoch: usize) -> f64 {
        match self {
            Self::Step { base, step_size, gamma } => {
                base * gamma.powi((epoch / (*step_size).max(1)) as i32)
            }
            Self::MultiStep { base, milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|&&m| m <= epoch).count() as i32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quadratic_grads(x: &Var, target: &Tensor) -> Result<GradStore> {
        (x.as_tensor() - target)?.sqr()?.sum_all()?.backward()
    }

    #[test]
    fn first_steps_match_hand_computation() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::new(&[1.0f64, -2.0], &dev)?;
        let target = Tensor::new(&[0.0f64, 0.0], &dev)?;
        let cfg = AdamConfig { lr: 0.1, weight_decay: 0.01, ..Default::default() };
        let mut opt = Adam::new(vec![("x".into(), x.clone())], cfg)?;
        // Reference loop, PyTorch Adam semantics, in plain f64.
        let (mut p, mut m, mut v) = ([1.0f64, -2.0], [0.0f64; 2], [0.0f64; 2]);
        for t in 1..=3 {
            opt.step(&quadratic_grads(&x, &target)?)?;
            for i in 0..2 {
                let g = 2.0 * p[i] + 0.01 * p[i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let denom = v[i].sqrt() / (1.0 - 0.999f64.powi(t)).sqrt() + 1e-8;
                p[i] -= 0.1 / (1.0 - 0.9f64.powi(t)) * m[i] / denom;
            }
            let got = x.as_tensor().to_vec1::<f64>()?;
            for i in 0..2 {
                assert!((got[i] - p[i]).abs() < 1e-15, "step {t}: {got:?} vs {p:?}");
            }
        }
        // The first step moves each coordinate by about lr against its gradient's sign.
        assert_eq!(opt.step_count(), 3);
        Ok(())
    }

    #[test]
    fn save_load_resume_is_bit_exact() -> crate::Result<()> {
        let dev = Device::Cpu;
        let target = Tensor::new(&[0.5f32, -0.25, 3.0], &dev)?;
        let make = || -> Result<(Var, Adam)> {
            let x = Var::new(&[1.0f32, 2.0, -1.0], &dev)?;
            let opt = Adam::new(vec![("w".into(), x.clone())], AdamConfig::default())?;
            Ok((x, opt))
        };
        let (xa, mut a) = make()?;
        for _ in 0..3 {
            a.step(&quadratic_grads(&xa, &target)?)?;
        }
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io("tmp", e))?;
        let path = dir.path().join("opt.safetensors");
        a.save(&path)?;
        let snapshot = xa.as_tensor().copy()?;
        a.step(&quadratic_grads(&xa, &target)?)?;

        let (xb, mut b) = make()?;
        xb.set(&snapshot)?;
        b.load(&path)?;
        assert_eq!(b.step_count(), 3);
        b.step(&quadratic_grads(&xb, &target)?)?;
        let (va, vb) = (xa.as_tensor().to_vec1::<f32>()?, xb.as_tensor().to_vec1::<f32>()?);
        assert_eq!(
            va.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            vb.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        // A fresh optimizer (no load) would diverge: moments matter.
        let (xc, mut c) = make()?;
        xc.set(&snapshot)?;
        c.step(&quadratic_grads(&xc, &target)?)?;
        assert_ne!(xc.as_tensor().to_vec1::<f32>()?, va);
        Ok(())
    }

    #[test]
    fn load_rejects_missing_slots() -> Result<()> {
        let x = Var::new(&[1.0f32], &Device::Cpu)?;
        let mut opt = Adam::new(vec![("x".into(), x)], AdamConfig::default())?;
        assert!(opt.load_state(&HashMap::new()).is_err());
        Ok(())
    }

    #[test]
    fn varmap_skips_running_stats() -> Result<()> {
        let map = VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let _bn = candle_nn::batch_norm(4, 1e-5, vb.pp("bn"))?;
        let opt = Adam::from_varmap(&map, AdamConfig::default())?;
        let names: Vec<&str> = opt.slots.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["bn.bias", "bn.weight"]);
        Ok(())
    }

    #[test]
    fn schedules() {
        let paper = LrSchedule::default();
        assert_eq!(paper.lr(0), 1e-3);
        assert_eq!(paper.lr(29), 1e-3);
        assert_eq!(paper.lr(30), 5e-4);
        assert_eq!(paper.lr(95), 1.25e-4);
        let code = LrSchedule::reference_code();
        assert_eq!(code.lr(39), 1e-3);
        assert_eq!(code.lr(40), 5e-4);
        assert_eq!(code.lr(150), 1e-3 / 16.0);
        assert_eq!(code.lr(249), 1e-3 / 32.0);
    }
}
