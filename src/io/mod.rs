//! Image input and output: decoding, encoding, atomic writes and the job list.
//!
//! This is the only place that touches image files; `tensor` is the only place that converts
//! between planar images and NCHW tensors.

pub mod atomic;
pub mod decode;
pub mod encode;
pub mod job;
pub mod tensor;

pub use atomic::{write_atomic, Existing};
pub use decode::{decode, decode_file, Decoded};
pub use encode::{encode, quantize8, quantized, EncodeOptions, OutFormat};
pub use job::{expand_inputs, parse_file_list, plan_jobs, same_file, Input, Job, Naming, Output, Source};
