//! Seeded initialisation as PyTorch's defaults: candle's CPU random generator cannot be seeded,
//! so `--seed` would not make runs repeatable; this overwrites every convolution with
//! kaiming-uniform (a = √5) values, i.e. U(−1/√fan_in, 1/√fan_in) for weights and biases,
//! from a seeded generator. BatchNorm keeps its constant initialisation (γ 1, β 0, μ 0, σ² 1).

use candle_core::{Result, Tensor};
use candle_nn::VarMap;

use crate::data::rng::{combine, hash_str, Rng};

/// Re-initialises every `*.weight` of rank 4 and its `*.bias` in `varmap` from `seed`.
///
/// # Errors
/// Tensor errors while writing the variables.
pub fn seeded_pytorch_init(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("varmap lock poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let fan_in = if var.rank() == 4 {
            let (_, i, kh, kw) = var.dims4()?;
            i * kh * kw
        } else if let Some(prefix) = name.strip_suffix(".bias") {
            match data.get(&format!("{prefix}.weight")) {
                Some(w) if w.rank() == 4 => {
                    let (_, i, kh, kw) = w.dims4()?;
                    i * kh * kw
                }
                _ => continue, // BatchNorm β stays 0
            }
        } else {
            continue;
        };
        let bound = 1.0 / (fan_in as f32).sqrt();
        let mut rng = Rng::new(combine(&[seed, hash_str(name)]));
        let values: Vec<f32> = (0..var.elem_count()).map(|_| rng.uniform(-bound, bound)).collect();
        let t = Tensor::from_vec(values, var.shape(), var.device())?.to_dtype(var.dtype())?;
        var.set(&t)?;
    }
    Ok(())
}
