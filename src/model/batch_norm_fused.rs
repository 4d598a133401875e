//! BatchNorm in training mode, with its ReLU, as one custom op forward and one backward.
//!
//! candle-nn's `BatchNorm::forward_t(x, true)` transposes, copies, and runs about a dozen graph
//! nodes (mean, subtract, square, mean, add, sqrt, divide, scale, shift, transpose back), and the
//! ReLU after it four more in the backward; each node allocates a full-size tensor and, in the
//! backward, a zeroed gradient buffer. Here the forward makes two passes (per-channel statistics
//! accumulated in f64, then normalise, scale, shift and clamp in the tensor's own type) and the
//! backward two (per-channel sums of `dz` and `dz·x̂` in f64, then
//! `dx = γ/σ · (dz − mean(dz) − x̂·mean(dz·x̂))` in the tensor's type). The running statistics
//! are updated as PyTorch and candle do (momentum, unbiased variance).
//!
//! f32 and f64 on the CPU with an affine BatchNorm; anything else falls back to candle-nn.

use std::sync::{Arc, Mutex};

use candle_core::{backend::BackendStorage, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, Var, WithDType};
use candle_nn::{BatchNorm, ModuleT};
use rayon::prelude::*;

use super::conv_cpu::{contiguous, cpu_float, dims4};

/// `relu?(bn(x))` with `bn` in training mode (batch statistics), updating its running
/// statistics. The BatchNorm must subtract the mean (PyTorch's and this project's default).
///
/// # Shapes
/// (n, c, h, w) → (n, c, h, w).
pub fn batch_norm_train(bn: &BatchNorm, x: &Tensor, relu: bool) -> Result<Tensor> {
    let fast = cpu_float(&[x]) && x.rank() == 4;
    let Some((gamma, beta)) = bn.weight_and_bias().filter(|_| fast) else {
        let y = bn.forward_t(x, true)?;
        return if relu { y.relu() } else { Ok(y) };
    };
    let shared: Slot<Stats> = Arc::default();
    let op = BnTrain { eps: bn.eps(), relu, stats: shared.clone() };
    let y = x.contiguous()?.apply_op3(&gamma.to_dtype(x.dtype())?, &beta.to_dtype(x.dtype())?, op)?;
    let s = get(&shared, "batch statistics")?;
    let (n, _, h, w) = x.dims4()?;
    let count = (n * h * w) as f64;
    let m = bn.momentum();
    let dev = x.device();
    let mean = Tensor::new(s.mean.as_slice(), dev)?.to_dtype(bn.running_mean().dtype())?;
    let var = Tensor::new(s.var.as_slice(), dev)?.to_dtype(bn.running_var().dtype())?;
    let unbiased = if count > 1.0 { count / (count - 1.0) } else { 1.0 };
    // The running statistics are variables of the network's VarMap: `from_tensor` shares them.
    Var::from_tensor(bn.running_mean())?.set(&((bn.running_mean() * (1.0 - m))? + (mean * m)?)?)?;
    Var::from_tensor(bn.running_var())?.set(&((bn.running_var() * (1.0 - m))? + (var * (m * unbiased))?)?)?;
    Ok(y)
}

/// The value a forward op left for its caller or its backward (a side channel: a custom op
/// returns one tensor).
type Slot<T> = Arc<Mutex<Option<T>>>;

/// Puts `value` into `slot`.
fn put<T>(slot: &Mutex<Option<T>>, value: T) -> Result<()> {
    *slot.lock().map_err(|_| candle_core::Error::Msg("batch-norm: a lock was poisoned".into()))? = Some(value);
    Ok(())
}

/// A copy of what `slot` holds; `what` names it when it is empty.
fn get<T: Clone>(slot: &Mutex<Option<T>>, what: &str) -> Result<T> {
    let held = slot.lock().map_err(|_| candle_core::Error::Msg("batch-norm: a lock was poisoned".into()))?.clone();
    held.ok_or_else(|| candle_core::Error::Msg(format!("batch-norm: no {what} yet")))
}

/// Per-channel batch statistics: mean and biased variance (f64).
#[derive(Debug, Clone)]
struct Stats {
    mean: Vec<f64>,
    var: Vec<f64>,
}

/// The forward op: (x, γ, β) → relu?(γ·(x − μ)/√(σ² + ε) + β). It keeps the statistics it
/// computed for the running averages and for its backward.
#[derive(Debug)]
struct BnTrain {
    eps: f64,
    relu: bool,
    stats: Slot<Stats>,
}

/// Sizes: images, channels, pixels per plane.
#[derive(Debug, Clone, Copy)]
struct Dims {
    n: usize,
    c: usize,
    hw: usize,
}

impl Dims {
    fn of(l: &Layout) -> Result<Self> {
        let (n, c, h, w) = dims4(l, "input")?;
        Ok(Self { n, c, hw: h * w })
    }

    /// The planes of channel `ch`, one per image.
    fn planes<'a, T>(&self, data: &'a [T], ch: usize) -> impl Iterator<Item = &'a [T]> + 'a {
        let (c, hw) = (self.c, self.hw);
        (0..self.n).map(move |img| &data[(img * c + ch) * hw..(img * c + ch + 1) * hw])
    }
}

/// Lanes of the f64 accumulators in the per-channel sums: eight independent partial sums let
/// the compiler vectorise the loops (a single running sum is one add per 4 cycles, bound by
/// its latency).
const LANES: usize = 8;

/// `Σ f(v)` over the values of `plane`, in [`LANES`] partial sums added at the end
/// ([`lane_sum2`] with an empty second sum, which the compiler drops).
#[inline(always)]
fn lane_sum<T: Copy>(plane: &[T], f: impl Fn(T) -> f64) -> f64 {
    lane_sum2([plane], |[v]| (f(v), 0.0)).0
}

/// `(Σ f(v).0, Σ f(v).1)` over the values at each index of `K` planes of equal length, in
/// [`LANES`] partial sums each (value i goes to lane i mod LANES). The planes are read in
/// blocks of `LANES` fixed-size arrays, so the loop has no bounds checks and vectorises
/// (indexing the slices through a closure left a check per value and a scalar loop: the
/// BatchNorm gradient sums were 18 % of an N 12 training step).
#[inline(always)]
fn lane_sum2<T: Copy, const K: usize>(planes: [&[T]; K], f: impl Fn([T; K]) -> (f64, f64)) -> (f64, f64) {
    let len = planes.first().map_or(0, |p| p.len());
    let planes = planes.map(|p| &p[..len]);
    let (mut acc_a, mut acc_b) = ([0.0f64; LANES], [0.0f64; LANES]);
    let mut i = 0;
    while i + LANES <= len {
        let blocks: [&[T; LANES]; K] = planes.map(|p| p[i..i + LANES].try_into().expect("a block of LANES values"));
        for l in 0..LANES {
            let (a, b) = f(blocks.map(|blk| blk[l]));
            acc_a[l] += a;
            acc_b[l] += b;
        }
        i += LANES;
    }
    for i in i..len {
        let (a, b) = f(planes.map(|p| p[i]));
        acc_a[0] += a;
        acc_b[0] += b;
    }
    (acc_a.iter().sum(), acc_b.iter().sum())
}

crate::multiversion! {
    /// `Σ (v − mean)²` over one plane, in f64 lanes.
    fn plane_moment<T: WithDType>(p: &[T], mean: f64) -> f64 {
        lane_sum(p, |v| (v.to_f64() - mean).powi(2))
    }
}

crate::multiversion! {
    /// `Σ v` over one plane, in f64 lanes.
    fn plane_sum<T: WithDType>(p: &[T]) -> f64 {
        lane_sum(p, |v| v.to_f64())
    }
}

crate::multiversion! {
    /// `dst = relu?(src · scale + shift)` over one plane.
    fn normalise_plane<T: WithDType>(dst: &mut [T], src: &[T], scale: T, shift: T, relu: bool) -> () {
        let zero = T::zero();
        let src = &src[..dst.len()];
        for i in 0..dst.len() {
            let y = src[i] * scale + shift;
            dst[i] = if relu && y < zero { zero } else { y };
        }
    }
}

crate::multiversion! {
    /// `(Σ dz, Σ dz·(x − mean))` over one plane, dz = dy masked by the ReLU (`relu`: where the
    /// output y is ≤ 0).
    fn plane_grad_sums<T: WithDType>(xs: &[T], gs: &[T], ys: &[T], mean: f64, relu: bool) -> (f64, f64) {
        let zero = T::zero();
        let n = xs.len();
        lane_sum2([xs, &gs[..n], &ys[..n]], |[x, g, y]| {
            let v = if relu && y <= zero { 0.0 } else { g.to_f64() };
            (v, v * (x.to_f64() - mean))
        })
    }
}

crate::multiversion! {
    /// `dst = k·dz + kx·x + k0` over one plane, dz as in [`plane_grad_sums`].
    fn plane_grad<T: WithDType>(dst: &mut [T], xs: &[T], gs: &[T], ys: &[T], k: [T; 3], relu: bool) -> () {
        let zero = T::zero();
        let n = dst.len();
        let (xs, gs, ys) = (&xs[..n], &gs[..n], &ys[..n]);
        for i in 0..n {
            let dz = if relu && ys[i] <= zero { zero } else { gs[i] };
            dst[i] = k[0] * dz + k[1] * xs[i] + k[2];
        }
    }
}

fn stats_of<T: WithDType>(x: &[T], d: Dims) -> Stats {
    let count = (d.n * d.hw).max(1) as f64;
    let (mean, var): (Vec<f64>, Vec<f64>) = (0..d.c)
        .into_par_iter()
        .map(|ch| {
            let mean = d.planes(x, ch).map(plane_sum).sum::<f64>() / count;
            let var = d.planes(x, ch).map(|p| plane_moment(p, mean)).sum::<f64>() / count;
            (mean, var)
        })
        .unzip();
    Stats { mean, var }
}

impl BnTrain {
    fn inv_std(&self, s: &Stats) -> Vec<f64> {
        s.var.iter().map(|v| 1.0 / (v + self.eps).sqrt()).collect()
    }

    fn forward<T: WithDType>(&self, x: &[T], gamma: &[T], beta: &[T], d: Dims) -> (Vec<T>, Stats) {
        let stats = stats_of(x, d);
        let inv_std = self.inv_std(&stats);
        let mut out = vec![T::zero(); x.len()];
        out.par_chunks_mut(d.hw.max(1)).zip(x.par_chunks(d.hw.max(1))).enumerate().for_each(|(p, (dst, src))| {
            let ch = p % d.c;
            let scale = gamma[ch].to_f64() * inv_std[ch];
            // Scale and shift in the tensor's own type, so that f32 runs 16 lanes at a time.
            let shift = beta[ch].to_f64() - stats.mean[ch] * scale;
            normalise_plane(dst, src, T::from_f64(scale), T::from_f64(shift), self.relu);
        });
        (out, stats)
    }
}

impl CustomOp3 for BnTrain {
    fn name(&self) -> &'static str {
        "batch-norm-train"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        fn run<T: WithDType>(op: &BnTrain, s: [(&CpuStorage, &Layout); 3], d: Dims) -> Result<(CpuStorage, Stats)> {
            let x = contiguous::<T>(s[0].0, s[0].1, "input")?;
            let gamma = contiguous::<T>(s[1].0, s[1].1, "weight")?;
            let beta = contiguous::<T>(s[2].0, s[2].1, "bias")?;
            let (out, stats) = op.forward(x, gamma, beta, d);
            Ok((T::to_cpu_storage_owned(out), stats))
        }
        let d = Dims::of(l1)?;
        if l2.dims() != [d.c] || l3.dims() != [d.c] || s1.dtype() != s2.dtype() || s1.dtype() != s3.dtype() {
            candle_core::bail!("batch-norm-train: weight {:?} / bias {:?} do not fit input {:?}", l2.dims(), l3.dims(), l1.dims())
        }
        let s = [(s1, l1), (s2, l2), (s3, l3)];
        let (out, stats) = match s1.dtype() {
            DType::F32 => run::<f32>(self, s, d)?,
            DType::F64 => run::<f64>(self, s, d)?,
            dt => candle_core::bail!("batch-norm-train: unsupported dtype {dt:?}"),
        };
        put(&self.stats, stats)?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, gamma: &Tensor, _beta: &Tensor, y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = get(&self.stats, "batch statistics")?;
        let gamma_values: Vec<f64> = gamma.to_dtype(DType::F64)?.to_vec1()?;
        let sums: Slot<(Vec<f64>, Vec<f64>)> = Arc::default();
        let grad = BnTrainGrad { relu: self.relu, inv_std: self.inv_std(&stats), stats, gamma: gamma_values, sums: sums.clone() };
        let dx = x.apply_op3_no_bwd(&dy.contiguous()?, y, &grad)?;
        let (sum_dz, sum_dz_xhat) = get(&sums, "gradient sums")?;
        let dgamma = Tensor::new(sum_dz_xhat.as_slice(), x.device())?.to_dtype(gamma.dtype())?;
        let dbeta = Tensor::new(sum_dz.as_slice(), x.device())?.to_dtype(gamma.dtype())?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// The backward op: (x, dy, y) → dx; it keeps Σdz and Σdz·x̂ per channel (the gradients of β
/// and γ), where dz is dy masked by the ReLU.
#[derive(Debug)]
struct BnTrainGrad {
    relu: bool,
    stats: Stats,
    inv_std: Vec<f64>,
    gamma: Vec<f64>,
    sums: Slot<(Vec<f64>, Vec<f64>)>,
}

impl BnTrainGrad {
    fn run<T: WithDType>(&self, x: &[T], dy: &[T], y: &[T], d: Dims) -> (Vec<T>, Vec<f64>, Vec<f64>) {
        let relu = self.relu;
        let (sum_dz, sum_dz_xhat): (Vec<f64>, Vec<f64>) = (0..d.c)
            .into_par_iter()
            .map(|ch| {
                let (mean, inv) = (self.stats.mean[ch], self.inv_std[ch]);
                let (mut a, mut b) = (0.0, 0.0);
                for ((xs, gs), ys) in d.planes(x, ch).zip(d.planes(dy, ch)).zip(d.planes(y, ch)) {
                    let (pa, pb) = plane_grad_sums(xs, gs, ys, mean, relu);
                    a += pa;
                    b += pb;
                }
                (a, b * inv)
            })
            .unzip();
        let count = (d.n * d.hw).max(1) as f64;
        let mut dx = vec![T::zero(); x.len()];
        let hw = d.hw.max(1);
        dx.par_chunks_mut(hw).enumerate().for_each(|(p, dst)| {
            let ch = p % d.c;
            let (mean, inv) = (self.stats.mean[ch], self.inv_std[ch]);
            let (mean_dz, mean_dz_xhat) = (sum_dz[ch] / count, sum_dz_xhat[ch] / count);
            let k = self.gamma[ch] * inv;
            // dx = k·(dz − mean(dz) − x̂·mean(dz·x̂)) = k·dz + kx·x + k0, in the tensor's type.
            let kx = -k * inv * mean_dz_xhat;
            let k0 = -k * mean_dz - kx * mean;
            let range = p * hw..(p + 1) * hw;
            plane_grad(dst, &x[range.clone()], &dy[range.clone()], &y[range], [T::from_f64(k), T::from_f64(kx), T::from_f64(k0)], relu);
        });
        (dx, sum_dz, sum_dz_xhat)
    }
}

impl CustomOp3 for BnTrainGrad {
    fn name(&self) -> &'static str {
        "batch-norm-train-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        fn typed<T: WithDType>(op: &BnTrainGrad, s: [(&CpuStorage, &Layout); 3], d: Dims) -> Result<(CpuStorage, Vec<f64>, Vec<f64>)> {
            let x = contiguous::<T>(s[0].0, s[0].1, "input")?;
            let dy = contiguous::<T>(s[1].0, s[1].1, "gradient")?;
            let y = contiguous::<T>(s[2].0, s[2].1, "output")?;
            let (dx, a, b) = op.run(x, dy, y, d);
            Ok((T::to_cpu_storage_owned(dx), a, b))
        }
        if l1.dims() != l2.dims() || l1.dims() != l3.dims() {
            candle_core::bail!("batch-norm-train-grad: shapes differ")
        }
        let d = Dims::of(l1)?;
        let s = [(s1, l1), (s2, l2), (s3, l3)];
        let (dx, a, b) = match s1.dtype() {
            DType::F32 => typed::<f32>(self, s, d)?,
            DType::F64 => typed::<f64>(self, s, d)?,
            dt => candle_core::bail!("batch-norm-train-grad: unsupported dtype {dt:?}"),
        };
        put(&self.sums, (a, b))?;
        Ok((dx, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradcheck::{assert_grad_ok, rand_f64};
    use candle_nn::{VarBuilder, VarMap};

    fn layer(c: usize, seed: u64) -> Result<(VarMap, BatchNorm)> {
        let vm = VarMap::new();
        let bn = crate::model::layers::batch_norm(c, VarBuilder::from_varmap(&vm, DType::F64, &candle_core::Device::Cpu))?;
        // Non-trivial affine parameters.
        for (name, var) in vm.data().lock().expect("lock").iter() {
            if name.ends_with("weight") || name.ends_with("bias") {
                var.set(&(rand_f64(&[c], seed + name.len() as u64)? + 0.5)?)?;
            }
        }
        Ok((vm, bn))
    }

    #[test]
    fn matches_candle_values_and_running_statistics() -> Result<()> {
        for relu in [false, true] {
            let (_a, ours) = layer(3, 1)?;
            let (_b, theirs) = layer(3, 1)?;
            let x = (rand_f64(&[2, 3, 5, 4], 2)? * 3.0)?;
            let y_ours = batch_norm_train(&ours, &x, relu)?;
            let y = theirs.forward_t(&x, true)?;
            let y_theirs = if relu { y.relu()? } else { y };
            let diff = (y_ours - y_theirs)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(diff < 1e-12, "{diff}");
            for (a, b) in [(ours.running_mean(), theirs.running_mean()), (ours.running_var(), theirs.running_var())] {
                let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f64>()?;
                assert!(diff < 1e-12, "running statistics differ by {diff}");
            }
        }
        Ok(())
    }

    #[test]
    fn f32_matches_f64_in_values_and_gradients() -> Result<()> {
        for relu in [false, true] {
            let (_vm, bn64) = layer(5, 8)?;
            let f32_of = |t: &Tensor| t.to_dtype(DType::F32);
            let (gamma, beta) = bn64.weight_and_bias().expect("affine");
            let bn32 = BatchNorm::new(5, f32_of(bn64.running_mean())?, f32_of(bn64.running_var())?, f32_of(gamma)?, f32_of(beta)?, 1e-5)?;
            // 37 pixels a plane: the 8-lane sums and their tails.
            let x = ((rand_f64(&[3, 5, 37, 1], 9)? * 4.0)? - 1.0)?;
            let r = rand_f64(&[3, 5, 37, 1], 10)?;
            let run = |bn: &BatchNorm, dtype: DType| -> Result<(Tensor, Tensor)> {
                let xv = Var::from_tensor(&x.to_dtype(dtype)?)?;
                let y = batch_norm_train(bn, &xv, relu)?;
                let g = y.mul(&r.to_dtype(dtype)?)?.sum_all()?.backward()?;
                Ok((y.to_dtype(DType::F64)?, g.get(xv.as_tensor()).expect("dx").to_dtype(DType::F64)?))
            };
            let (y64, dx64) = run(&bn64, DType::F64)?;
            let (y32, dx32) = run(&bn32, DType::F32)?;
            for (a, b, what) in [(&y64, &y32, "y"), (&dx64, &dx32, "dx")] {
                let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f64>()?;
                assert!(diff < 1e-5, "relu {relu}: {what} differs by {diff}");
            }
        }
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences_and_candle() -> Result<()> {
        for relu in [false, true] {
            let (vm, bn) = layer(3, 4)?;
            let x = rand_f64(&[2, 3, 4, 5], 5)?;
            assert_grad_ok(&x, |x| batch_norm_train(&bn, x, relu), 6)?;
            // γ and β against candle's own composition.
            let r = rand_f64(&[2, 3, 4, 5], 7)?;
            let xv = Var::from_tensor(&x)?;
            let ours = batch_norm_train(&bn, &xv, relu)?.mul(&r)?.sum_all()?.backward()?;
            let y = bn.forward_t(&xv, true)?;
            let theirs = if relu { y.relu()? } else { y }.mul(&r)?.sum_all()?.backward()?;
            let (gamma, beta) = bn.weight_and_bias().expect("affine");
            for t in [xv.as_tensor(), gamma, beta] {
                let diff = (ours.get(t).expect("ours") - theirs.get(t).expect("theirs"))?.abs()?.max_all()?.to_scalar::<f64>()?;
                assert!(diff < 1e-10, "relu {relu}: {diff}");
            }
            drop(vm);
        }
        Ok(())
    }
}
