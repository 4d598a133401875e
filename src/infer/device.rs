//! Choosing the compute device and precision from `--device` and `--dtype`.

use std::str::FromStr;

use candle_core::{DType, Device};

use crate::{Error, Result};

/// `--device auto|cpu|cuda[:N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first CUDA GPU when this build has CUDA and one is present, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA GPU number N.
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| Error::UnknownChoice { what: "device", value: s.into(), expected: "auto, cpu, cuda or cuda:N" }),
        }
    }
}

/// Opens the chosen device.
///
/// # Errors
/// [`Error::NoCuda`] when CUDA is asked for and this build lacks the `cuda` feature,
/// [`Error::DeviceOpen`] when the GPU cannot be opened.
pub fn open_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => {
            if cfg!(feature = "cuda") && candle_core::utils::cuda_is_available() {
                Device::new_cuda(0).or(Ok(Device::Cpu))
            } else {
                Ok(Device::Cpu)
            }
        }
        DeviceChoice::Cuda(n) => {
            if !cfg!(feature = "cuda") {
                return Err(Error::NoCuda);
            }
            Device::new_cuda(n).map_err(|source| Error::DeviceOpen { device: format!("cuda:{n}"), source })
        }
    }
}

/// `--dtype f32|f16|bf16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit float.
    #[default]
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "bf16" => Ok(Self::Bf16),
            _ => Err(Error::UnknownChoice { what: "dtype", value: s.into(), expected: "f32, f16 or bf16" }),
        }
    }
}

/// The dtype to run in on `device`, and a note when the request was changed: half precision
/// runs only on GPUs; on the CPU it falls back to f32.
#[must_use]
pub fn effective_dtype(device: &Device, precision: Precision) -> (DType, Option<String>) {
    let wanted = match precision {
        Precision::F32 => DType::F32,
        Precision::F16 => DType::F16,
        Precision::Bf16 => DType::BF16,
    };
    if device.is_cpu() && wanted != DType::F32 {
        (DType::F32, Some(format!("{wanted:?} is not used on the CPU; running in f32")))
    } else {
        (wanted, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cuda:3".parse::<DeviceChoice>().ok(), Some(DeviceChoice::Cuda(3)));
        assert_eq!("cuda".parse::<DeviceChoice>().ok(), Some(DeviceChoice::Cuda(0)));
        let err = "gpu".parse::<DeviceChoice>().expect_err("gpu");
        assert!(matches!(err, Error::UnknownChoice { what: "device", .. }), "{err}");
        assert_eq!(err.to_string(), "unknown device 'gpu': expected auto, cpu, cuda or cuda:N");
    }

    #[test]
    fn cpu_half_precision_falls_back_with_a_note() {
        let (dt, note) = effective_dtype(&Device::Cpu, Precision::Bf16);
        assert_eq!(dt, DType::F32);
        assert!(note.is_some());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_so() {
        let err = open_device(DeviceChoice::Cuda(0)).expect_err("no cuda");
        assert!(matches!(err, Error::NoCuda) && err.to_string().contains("--features cuda"), "{err}");
        assert!(open_device(DeviceChoice::Auto).unwrap().is_cpu());
    }
}
