//! Reading PyTorch checkpoints (`torch.save` files) without Python, and converting them to
//! safetensors.
//!
//! Both container formats are read: the zip format of PyTorch ≥ 1.6 (`archive.rs`) and the
//! legacy pickle stream of earlier versions (`legacy.rs`), which is what the JESS/Easy2Hard
//! checkpoints (PyTorch 1.3.1) are in. The object inside is evaluated by a small pickle VM
//! (`pickle.rs`) that executes nothing; tensors are rebuilt from storages as contiguous `f32`
//! (`tensor.rs`). See `docs/reference-implementation.md` §1.5 for the checkpoint layout.

mod archive;
mod checkpoint;
mod convert;
mod legacy;
mod pickle;
mod tensor;

use std::borrow::Cow;

pub use checkpoint::read_state_dict;
pub use convert::{convert_checkpoint, ConvertSummary, STATE_DICT_KEY};

/// One tensor read from a checkpoint, as `f32` contiguous (row-major) data.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// Dimensions; empty for a scalar.
    pub shape: Vec<usize>,
    /// The elements in row-major order; `shape`'s product long.
    pub data: Vec<f32>,
}

/// The container format of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// The zip archive of PyTorch ≥ 1.6 (`data.pkl` plus `data/<key>` storages).
    Zip,
    /// The legacy pickle stream of PyTorch < 1.6.
    Legacy,
}

impl CheckpointFormat {
    /// The name recorded in converted files' metadata: `pth-zip` or `pth-legacy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zip => "pth-zip",
            Self::Legacy => "pth-legacy",
        }
    }
}

impl std::fmt::Display for CheckpointFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a container keeps its storages' bytes.
trait StorageSource {
    /// The bytes of the root storage `storage` names.
    fn storage(&mut self, storage: &tensor::StorageRef) -> Result<Cow<'_, [u8]>, pickle::Reason>;
}
