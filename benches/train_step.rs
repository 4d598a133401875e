//! CPU training speed: steps per second of the smoother's training step (forward, eq. 11's
//! edge + reconstruction + DTV terms on S0 and S1, backward, Adam) for the tiny, the shipped
//! preliminary and the full network, at the trainer's default batch 8 of 128² and at the
//! preliminary model's batch 4 of 64² (the full network only at the latter: a 128² batch of 8
//! takes minutes a step on two cores), and csgis-lite (widths 16/32/64/128) at the lite
//! campaign's batch 12 of 96².
//!
//! `CSGIS_BENCH_SKIP_FULL=1` leaves out the full network (its row takes the longest).
//! `CSGIS_BENCH_ONLY=TEXT` runs only the rows whose "network | batch × crop" contains TEXT
//! (for profiling one row, e.g. `CSGIS_BENCH_ONLY="16) | 8 × 128"`).
//! `bench/side_by_side.sh` parses this table; keep its columns.
//!
//! Run with `cargo bench --bench train_step`. Prints a Markdown table (median of 3 steps after
//! one warm-up). Random images: the speed does not depend on the pixels. The contrastive and
//! semantic terms are not included (they need VGG16/DeepLab weights; their cost is the VGG16
//! or DeepLab forward on 4 batches plus its input gradient).

use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use csgis::model::{CsgisNet, LiteConfig, LiteNet, NetConfig, NetOutput};
use csgis::train::losses::{dtv_loss, edge_loss, recon_loss_pair, ReconConfig};
use csgis::train::optim::{Adam, AdamConfig};

/// The networks this bench trains.
#[derive(Clone, Copy)]
enum Net {
    Csgis(NetConfig),
    Lite(LiteConfig),
}

enum Built {
    Csgis(CsgisNet),
    Lite(LiteNet),
}

impl Built {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<NetOutput> {
        match self {
            Self::Csgis(n) => n.forward_t(xs, train),
            Self::Lite(n) => n.forward_t(xs, train),
        }
    }
}

/// The median of 3 steps after one warm-up, split into forward, loss, backward and Adam seconds.
fn step_seconds(arch: Net, batch: usize, crop: usize) -> Result<[f64; 4]> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    // Random (PyTorch-default) weights everywhere; the lite heads' zero start does not
    // change the work of a step.
    let net = match arch {
        Net::Csgis(cfg) => Built::Csgis(CsgisNet::new(&cfg, vb)?),
        Net::Lite(cfg) => Built::Lite(LiteNet::new(&cfg, vb)?),
    };
    let mut adam = Adam::from_varmap(&varmap, AdamConfig::default())?;
    let input = Tensor::rand(0f32, 1f32, (batch, 3, crop, crop), &dev)?;
    let gt = Tensor::rand(0f32, 1f32, (batch, 3, crop, crop), &dev)?;
    let edge = Tensor::rand(0f32, 1f32, (batch, 1, crop, crop), &dev)?.ge(0.9)?.to_dtype(DType::F32)?;
    // Seconds of one step in four phases: forward, loss, backward, Adam.
    let mut step = || -> Result<[f64; 4]> {
        let t = Instant::now();
        let out = net.forward_t(&input, true)?;
        let t_fwd = t.elapsed().as_secs_f64();
        let loss = (edge_loss(&out.edge_logits, &edge)? * 0.001)?;
        let loss = (loss + recon_loss_pair(&out.s0, &out.s1, &gt, &ReconConfig::default())?)?;
        let loss = (loss + dtv_loss(&out.s0, &gt, &edge)? + dtv_loss(&out.s1, &gt, &edge)?)?;
        let t_loss = t.elapsed().as_secs_f64();
        let grads = loss.backward()?;
        let t_bwd = t.elapsed().as_secs_f64();
        adam.step(&grads)?;
        let t_all = t.elapsed().as_secs_f64();
        Ok([t_fwd, t_loss - t_fwd, t_bwd - t_loss, t_all - t_bwd])
    };
    step()?;
    let mut times = vec![step()?, step()?, step()?];
    times.sort_by(|a, b| a.iter().sum::<f64>().total_cmp(&b.iter().sum::<f64>()));
    Ok(times[1])
}

fn main() -> Result<()> {
    csgis::memory::keep_freed_memory();
    println!(
        "# csgis training step on the CPU, {} threads, f32, gemm kernels {}, 3×3 conv {}\n",
        candle_core::utils::get_num_threads(),
        csgis::model::kernel_isa(),
        csgis::model::conv_kernel()
    );
    println!("| network | batch × crop | s / step | steps / s | forward / loss / backward / Adam (s) |");
    println!("|---|---|---|---|---|");
    let skip_full = std::env::var("CSGIS_BENCH_SKIP_FULL").is_ok_and(|v| !v.is_empty() && v != "0");
    let only = std::env::var("CSGIS_BENCH_ONLY").unwrap_or_default();
    let lite = LiteConfig::default();
    let [w0, w1, w2, w3] = lite.widths;
    let lite_name = format!("lite ({w0}, {w1}, {w2}, {w3})");
    let configs: Vec<(String, Net, &[(usize, usize)])> = vec![
        ("tiny (N 1, C 8)".into(), Net::Csgis(NetConfig::TINY), &[(4, 64), (8, 128)]),
        ("preliminary (N 3, C 16)".into(), Net::Csgis(NetConfig { blocks: 3, channels: 16 }), &[(4, 64), (8, 128)]),
        ("full (N 12, C 64)".into(), Net::Csgis(NetConfig::CSGIS), &[(4, 64)]),
        (lite_name, Net::Lite(lite), &[(12, 96)]),
    ];
    for (name, arch, shapes) in configs {
        if skip_full && matches!(arch, Net::Csgis(c) if c == NetConfig::CSGIS) {
            continue;
        }
        for &(batch, crop) in shapes {
            if !format!("{name} | {batch} × {crop}²").contains(&only) {
                continue;
            }
            let [fwd, loss, bwd, adam] = step_seconds(arch, batch, crop)?;
            let s = fwd + loss + bwd + adam;
            println!(
                "| {name} | {batch} × {crop}² | {s:.3} | {:.3} | {fwd:.3} / {loss:.3} / {bwd:.3} / {adam:.3} |",
                1.0 / s
            );
        }
    }
    Ok(())
}
