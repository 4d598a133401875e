//! Test support: central finite differences in f64 against candle's `backward()`.
//!
//! The check follows `shared/docs/candle-notes.md` §1: the scalar is `L = Σ f(x) ⊙ R` with a fixed
//! random `R`, the step is 1e-6 unless a test needs a smaller one, and every element of `x` (or a random subset for large inputs)
//! is perturbed.

use candle_core::{Device, Result, Tensor, Var};

/// A deterministic uniform [0, 1) f64 tensor of `shape` from a small xorshift generator.
pub fn rand_f64(shape: &[usize], seed: u64) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<f64> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    Tensor::from_vec(data, shape, &Device::Cpu)
}

/// Checks every element of `x`'s gradient of `Σ f(x) ⊙ R`.
pub fn assert_grad_ok<F>(x: &Tensor, f: F, seed: u64) -> Result<()>
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    assert_grad_ok_subset(x, f, seed, usize::MAX, 1e-6)
}

/// Like [`assert_grad_ok`], checking at most `max_elems` elements spread over `x`, with step `eps`.
pub fn assert_grad_ok_subset<F>(
    x: &Tensor,
    f: F,
    seed: u64,
    max_elems: usize,
    eps: f64,
) -> Result<()>
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    let probe = f(x)?;
    let r = (rand_f64(probe.dims(), seed)? - 0.5)?;
    let loss = |t: &Tensor| -> Result<f64> { (f(t)? * &r)?.sum_all()?.to_scalar::<f64>() };
    let var = Var::from_tensor(x)?;
    let grads = (f(var.as_tensor())? * &r)?.sum_all()?.backward()?;
    let analytic = match grads.get(&var) {
        Some(g) => g.flatten_all()?.to_vec1::<f64>()?,
        None => vec![0.0; x.elem_count()],
    };
    let base = x.flatten_all()?.to_vec1::<f64>()?;
    let n = base.len();
    let stride = n.div_ceil(max_elems.min(n)).max(1);
    let mut worst = 0f64;
    let mut scale = 0f64;
    let mut rows = Vec::new();
    for i in (0..n).step_by(stride) {
        let mut plus = base.clone();
        plus[i] += eps;
        let mut minus = base.clone();
        minus[i] -= eps;
        let lp = loss(&Tensor::from_vec(plus, x.dims(), x.device())?)?;
        let lm = loss(&Tensor::from_vec(minus, x.dims(), x.device())?)?;
        let numeric = (lp - lm) / (2.0 * eps);
        worst = worst.max((numeric - analytic[i]).abs());
        scale = scale.max(numeric.abs());
        rows.push((i, numeric, analytic[i]));
    }
    let rel = worst / scale.max(1e-12);
    assert!(
        rel < 1e-5 && scale > 0.0,
        "gradient mismatch: max |num - ana| / max |num| = {rel:e} (scale {scale:e}); first rows {:?}",
        &rows[..rows.len().min(8)]
    );
    Ok(())
}

/// Overwrites every rank-4 variable of `map` (convolution kernels) with deterministic
/// He-scaled uniform values; candle's CPU random generator cannot be seeded, so tests that need
/// repeatable networks build them with a `VarMap` and call this. Other variables keep their
/// constant initialisation (BatchNorm 1/0, running statistics 0/1, biases).
pub fn reseed_varmap(map: &candle_nn::VarMap, seed: u64) -> Result<()> {
    let data = map.data().lock().map_err(|_| candle_core::Error::Msg("VarMap lock".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for (i, name) in names.into_iter().enumerate() {
        let var = &data[name];
        if var.rank() != 4 {
            continue;
        }
        let dims = var.dims().to_vec();
        let fan_in = (dims[1] * dims[2] * dims[3]) as f64;
        let u = rand_f64(&dims, seed.wrapping_add(i as u64 * 7919))?;
        let w = ((u - 0.5)? * (12.0 * 2.0 / fan_in).sqrt())?;
        var.set(&w.to_dtype(var.dtype())?)?;
    }
    Ok(())
}
