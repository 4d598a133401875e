//! One 3×3 convolution, 64→64, on 1×64×256×256 f32: candle's `conv2d` against csgis's CPU
//! path ([`csgis::model::conv3x3_same`]), forward and forward + backward, in one run.
//!
//! Then the forward, and forward + backward, of every layer shape csgis-lite and CSGIS-Net
//! run, in GFLOP/s.
//!
//! Run with `cargo bench --bench conv`. Prints Markdown tables (median of 5 after a warm-up).
//! `CSGIS_BENCH_SHAPES_ONLY=1` skips the first table; `CSGIS_BENCH_ONLY=TEXT` keeps the shapes
//! whose name contains TEXT.

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
    csgis::memory::keep_freed_memory();
    if std::env::var_os("CSGIS_BENCH_SHAPES_ONLY").is_none() {
        candle_against_ours()?;
    }
    per_shape()
}

/// GFLOP/s of the forward per layer shape (batch, c_in, c_out, side, dilation).
fn per_shape() -> Result<()> {
    let dev = Device::Cpu;
    // csgis-lite inference at 1024² (full, 1/2, 1/4, 1/8 scale), its training batch (12 × 96²),
    // and CSGIS-Net's 64-channel layers at 256².
    let shapes: [(&str, usize, usize, usize, usize, usize); 19] = [
        ("lite enc0.0, 1024²", 1, 3, 16, 1024, 1),
        ("lite 16→16, 1024²", 1, 16, 16, 1024, 1),
        ("lite refine.0 20→16, 1024²", 1, 20, 16, 1024, 1),
        ("lite smooth 16→3, 1024²", 1, 16, 3, 1024, 1),
        ("lite edge 16→1, 1024²", 1, 16, 1, 1024, 1),
        ("lite up0 32→16, 512²", 1, 32, 16, 512, 1),
        ("lite enc1.0 16→32, 512²", 1, 16, 32, 512, 1),
        ("lite 32→32, 512²", 1, 32, 32, 512, 1),
        ("lite 64→64, 256²", 1, 64, 64, 256, 1),
        ("lite 128→128 d4, 128²", 1, 128, 128, 128, 4),
        ("lite train 16→16, 12×96²", 12, 16, 16, 96, 1),
        ("lite train 64→64, 12×24²", 12, 64, 64, 24, 1),
        ("lite train 128→128 d2, 12×12²", 12, 128, 128, 12, 2),
        ("CSGIS 64→64 d1, 256²", 1, 64, 64, 256, 1),
        ("CSGIS 64→64 d2, 256²", 1, 64, 64, 256, 2),
        ("CSGIS 64→64 d3, 256²", 1, 64, 64, 256, 3),
        ("CSGIS 64→64 d8, 256²", 1, 64, 64, 256, 8),
        ("CSGIS 64→64 d2, 4×64²", 4, 64, 64, 64, 2),
        ("CSGIS N3/C16 16→16 d2, 8×128²", 8, 16, 16, 128, 2),
    ];
    println!(
        "\n# 3×3 conv forward per shape, f32, {} threads (GFLOP/s; median of 5)\n",
        candle_core::utils::get_num_threads()
    );
    println!("| layer | forward GFLOP/s | forward + backward GFLOP/s | dW alone GFLOP/s (estimate) |");
    println!("|---|---|---|---|");
    let only = std::env::var("CSGIS_BENCH_ONLY").ok();
    for (name, n, c_in, c_out, side, d) in shapes {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let x = Var::from_tensor(&Tensor::rand(0f32, 1f32, (n, c_in, side, side), &dev)?)?;
        let w = Var::from_tensor(&(Tensor::rand(0f32, 1f32, (c_out, c_in, 3, 3), &dev)? * 0.05)?)?;
        let gflop = 2.0 * (n * c_in * c_out * 9 * side * side) as f64 / 1e9;
        let ms = median_ms(5, || conv3x3_same(x.as_tensor(), w.as_tensor(), d).map(|_| ()));
        let both = median_ms(5, || {
            conv3x3_same(x.as_tensor(), w.as_tensor(), d)?
                .sum_all()?
                .backward()
                .map(|_| ())
        });
        // The input gradient is a forward conv (flipped kernel) of the same cost, so what is
        // left after two forwards is, roughly, the kernel gradient.
        let dw_ms = (both - 2.0 * ms).max(1e-3);
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            gflop / ms * 1e3,
            3.0 * gflop / both * 1e3,
            gflop / dw_ms * 1e3
        );
    }
    Ok(())
}

/// The 64→64 layer through candle's conv2d and ours, forward and forward + backward.
fn candle_against_ours() -> Result<()> {
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
