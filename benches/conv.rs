//! One 3×3 convolution, 64→64, on 1×64×256×256 f32: candle's `conv2d` against csgis's CPU
//! path ([`csgis::model::conv3x3_same`]), forward and forward + backward, in one run.
//!
//! Run with `cargo bench --bench conv`. Prints a Markdown table (median of 5 after a warm-up).

use std::time::Instant;

use candle_core::{Device, Result, Tensor, Var};
use csgis::model::conv3x3_same;

fn median_ms(repeats: usize, mut f: impl FnMut() -> Result<()>) -> f64 {
    f().expect("warm-up");
    let mut v: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f().expect("run");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let dev = Device::Cpu;
    let (c, side, dilation) = (64, 256, 2);
    let x = Var::from_tensor(&Tensor::rand(0f32, 1f32, (1, c, side, side), &dev)?)?;
    let w = Var::from_tensor(&(Tensor::rand(0f32, 1f32, (c, c, 3, 3), &dev)? * 0.05)?)?;
    let gflop = 2.0 * (c * c * 9 * side * side) as f64 / 1e9;
    type Conv = fn(&Tensor, &Tensor, usize) -> Result<Tensor>;
    let candle: Conv = |x, w, d| x.conv2d(w, d, 1, d, 1);
    let ours: Conv = conv3x3_same;
    println!(
        "# 3×3 conv 64→64, 1×64×{side}², dilation {dilation}, f32, {} threads\n",
        candle_core::utils::get_num_threads()
    );
    println!("| path | forward ms | GFLOP/s | forward + backward (dx, dW) ms | GFLOP/s |");
    println!("|---|---|---|---|---|");
    for (name, conv) in [("candle conv2d", candle), ("csgis conv3x3_same", ours)] {
        let fwd = median_ms(5, || {
            conv(x.as_tensor(), w.as_tensor(), dilation)?
                .sum_all()
                .map(|_| ())
        });
        let both = median_ms(5, || {
            conv(x.as_tensor(), w.as_tensor(), dilation)?
                .sum_all()?
                .backward()
                .map(|_| ())
        });
        println!(
            "| {name} | {fwd:.1} | {:.1} | {both:.1} | {:.1} |",
            gflop / fwd * 1e3,
            3.0 * gflop / both * 1e3
        );
    }
    Ok(())
}
