//! Checkpoints: `last.safetensors` and `best.safetensors` are weights files with the authors'
//! key names that `smooth --weights` runs directly; `optimizer.safetensors` holds Adam's moments
//! and `state.json` the step and the best validation SSIM, so that `--resume` continues
//! exactly. Every file is written atomically (temporary file, then rename).

use std::collections::HashMap;
use std::path::Path;

use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use super::files::{varmap_tensors, write_atomic, write_safetensors};
use super::optim::Adam;
use crate::model::Arch;
use crate::{Error, Result};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Steps completed.
    pub step: usize,
    /// Best validation SSIM so far (−1 before the first validation).
    pub best_val_ssim: f64,
}

/// Writes the network's variables (weights, biases, BatchNorm statistics) as safetensors.
///
/// # Errors
/// I/O or serialisation errors.
pub fn save_weights(varmap: &VarMap, arch: &Arch, path: &Path, step: usize) -> Result<()> {
    let tensors = varmap_tensors(varmap)?;
    let mut metadata: HashMap<String, String> = arch.metadata().into_iter().collect();
    metadata.extend([
        ("channel_order".to_string(), "RGB".to_string()),
        ("step".to_string(), step.to_string()),
        ("producer".to_string(), format!("csgis {}", env!("CARGO_PKG_VERSION"))),
    ]);
    write_safetensors(path, &tensors, Some(metadata))
}

/// Saves weights as `last.safetensors`, the optimizer, and the run state.
///
/// # Errors
/// I/O or serialisation errors.
pub fn save_checkpoint(out: &Path, varmap: &VarMap, arch: &Arch, adam: &Adam, state: &RunState) -> Result<()> {
    save_weights(varmap, arch, &out.join("last.safetensors"), state.step)?;
    adam.save(&out.join("optimizer.safetensors"))?;
    let json = serde_json::to_vec_pretty(state).map_err(|e| Error::json(out.join("state.json"), "cannot serialise the run state", e))?;
    write_atomic(&out.join("state.json"), &json)
}

/// Restores weights, optimizer and state from `out`.
///
/// # Errors
/// Missing or mismatched checkpoint files.
pub fn load_checkpoint(out: &Path, varmap: &mut VarMap, adam: &mut Adam) -> Result<RunState> {
    let state_path = out.join("state.json");
    let text = std::fs::read(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let state: RunState = serde_json::from_slice(&text)
        .map_err(|e| Error::json(&state_path, "not a run state", e))?;
    let weights = out.join("last.safetensors");
    varmap.load(&weights).map_err(|e| Error::Weights { path: weights.clone(), reason: e.to_string() })?;
    adam.load(&out.join("optimizer.safetensors"))?;
    Ok(state)
}
